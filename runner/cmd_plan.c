/* cmd_plan.c — `lmdisp plan SPEC [--json]`: validates a spec and prints its cells with their
 * size and estimated cost; writes nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "jsonout.h"
#include "measrun.h"
#include "slurm.h"
#include "spec.h"

/* Training throughput assumed for the time estimate, in GFLOP/s per BLAS thread. Measured:
 * n_layer 4, n_embd 64, mlp_dim 64..512, batch 8 x 64 ran at about 7.5 GFLOP/s of
 * gpt_flops_per_step on one core of the 2-core development machine (shared with other jobs);
 * 6 is a slightly pessimistic round figure. Override with --gflops. */
#define PLAN_DEFAULT_GFLOPS 6.0

int cmd_plan(int argc, char **argv);

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmdisp plan SPEC.yaml [--json] [--gflops X]\n"
            "\n"
            "Validates the experiment spec and lists its cells (grid points) in run order with\n"
            "their id, size and estimated training cost. Writes nothing.\n"
            "\n"
            "  --json       one JSON object: spec info, axes, cells and totals\n"
            "  --gflops X   assumed training throughput per thread in GFLOP/s (default %g);\n"
            "               a cell's time = its FLOPs / (X * threads_per_rank * ranks_per_model).\n"
            "               Only training is estimated: checkpoint measurements are extra.\n"
            "\n"
            "Exit status: 0 ok, 2 bad usage or invalid spec (messages name file:line:column).\n",
            PLAN_DEFAULT_GFLOPS);
}

/* seconds to the millisecond, as the table shows them (a rounded double prints short at 15
 * significant digits) */
static double ms(double secs) { return round(secs * 1000.0) / 1000.0; }

static int print_json(const lmd_spec *s, double gflops, lmd_err *err) {
    double par = (double)(s->ranks_per_model > 0 ? s->ranks_per_model : 1) * s->threads_per_rank;
    double tot_flops = 0, tot_params = 0;
    json_t *o = json_object(), *axes = json_array(), *cells = json_array(), *tot = json_object();
    if (!o || !axes || !cells || !tot) lmd_die("jansson could not build the plan (out of memory?)");
    lmd_json_set(o, "spec", lmd_json_str(s->path));
    lmd_json_set(o, "name", lmd_json_str(s->name));
    lmd_json_set(o, "spec_sha256", lmd_json_str(s->sha256));
    lmd_json_set(o, "ranks_per_model",
                 s->ranks_per_model > 0 ? json_integer(s->ranks_per_model) : json_string("auto"));
    lmd_json_set(o, "threads_per_rank", json_integer(s->threads_per_rank));
    lmd_json_set(o, "assumed_gflops_per_thread", lmd_json_num(gflops));
    lmd_json_set(o, "uniform_tracking", json_boolean(s->uniform_tracking));
    for (int a = 0; a < s->n_axes; a++) {
        json_t *ax = json_object();
        if (!ax) lmd_die("jansson could not build the plan (out of memory?)");
        lmd_json_set(ax, "names", lmd_json_str(s->axes[a].names));
        lmd_json_set(ax, "values", json_integer(s->axes[a].n_values));
        lmd_json_append(axes, ax);
    }
    lmd_json_set(o, "axes", axes);
    for (size_t i = 0; i < s->n_cells; i++) {
        const lmd_cell *c = &s->cells[i];
        double secs = c->flops / (gflops * 1e9 * par);
        tot_flops += c->flops;
        tot_params += (double)c->n_params;
        json_t *e = json_object(), *tr = json_array();
        if (!e || !tr) lmd_die("jansson could not build the plan (out of memory?)");
        lmd_json_set(e, "index", json_integer((json_int_t)c->index));
        lmd_json_set(e, "id", lmd_json_str(c->id));
        lmd_json_set(e, "mlp_dim", json_integer(c->cfg.mlp_dim));
        lmd_json_set(e, "dispersion", lmd_json_str(lmd_disp_variant_name(c->train.disp.variant)));
        lmd_json_set(e, "seed", json_integer((json_int_t)c->train.seed));
        lmd_json_set(e, "n_layer", json_integer(c->cfg.n_layer));
        lmd_json_set(e, "n_embd", json_integer(c->cfg.n_embd));
        lmd_json_set(e, "n_head", json_integer(c->cfg.n_head));
        lmd_json_set(e, "steps", json_integer((json_int_t)c->train.steps));
        lmd_json_set(e, "batch", json_integer(c->train.B));
        lmd_json_set(e, "seq", json_integer(c->train.T));
        lmd_json_set(e, "n_params", json_integer((json_int_t)c->n_params));
        lmd_json_set(e, "flops", lmd_json_num(c->flops));
        lmd_json_set(e, "est_seconds", lmd_json_num(ms(secs)));
        for (int k = 0; k < c->tracking.n_steps; k++)
            lmd_json_append(tr, json_integer((json_int_t)c->tracking.steps[k]));
        lmd_json_set(e, "tracking_steps", tr);
        /* issue 19: pretrained start, accumulation, distillation (docs/DISTILL.md) */
        lmd_json_set(e, "accumulate", json_integer(c->train.accumulate));
        lmd_json_set(e, "init", c->init ? lmd_json_str(c->init) : json_null());
        lmd_json_set(e, "teacher",
                     c->kd.model          ? lmd_json_str(c->kd.model)
                     : c->kd.teacher >= 0 ? lmd_json_str(c->kd.teacher_id)
                                          : json_null());
        lmd_json_set(e, "level", json_integer(c->kd.level));
        lmd_json_append(cells, e);
    }
    lmd_json_set(o, "cells", cells);
    lmd_json_set(tot, "cells", json_integer((json_int_t)s->n_cells));
    lmd_json_set(tot, "n_params", json_integer((json_int_t)tot_params));
    lmd_json_set(tot, "flops", lmd_json_num(tot_flops));
    lmd_json_set(tot, "est_seconds", lmd_json_num(ms(tot_flops / (gflops * 1e9 * par))));
    lmd_json_set(o, "totals", tot);
    if (lmd_json_dump(stdout, o, 15, err)) return -1;
    if (fputc('\n', stdout) == EOF) return lmd_errf(err, "writing JSON to stdout failed");
    return 0;
}

static void print_table(const lmd_spec *s, double gflops) {
    double par = (double)(s->ranks_per_model > 0 ? s->ranks_per_model : 1) * s->threads_per_rank;
    printf("spec %s  name %s  sha256 %.16s\n", s->path, s->name, s->sha256);
    printf("grid:");
    for (int a = 0; a < s->n_axes; a++)
        printf("%s %s (%d)", a ? " x" : "", s->axes[a].names, s->axes[a].n_values);
    printf(" = %zu cells (first axis varies slowest)\n\n", s->n_cells);
    size_t idw = 2;
    for (size_t i = 0; i < s->n_cells; i++)
        if (strlen(s->cells[i].id) > idw) idw = strlen(s->cells[i].id);
    printf("%5s  %-*s %8s  %-17s %6s %12s %7s %12s %10s\n", "index", (int)idw, "id", "mlp_dim",
           "dispersion", "seed", "n_params", "steps", "GFLOP", "est_s");
    double tot_flops = 0, tot_params = 0;
    for (size_t i = 0; i < s->n_cells; i++) {
        const lmd_cell *c = &s->cells[i];
        double secs = c->flops / (gflops * 1e9 * par);
        tot_flops += c->flops;
        tot_params += (double)c->n_params;
        printf("%5zu  %-*s %8d  %-17s %6llu %12zu %7lld %12.1f %10.1f\n", c->index, (int)idw, c->id,
               c->cfg.mlp_dim, lmd_disp_variant_name(c->train.disp.variant),
               (unsigned long long)c->train.seed, c->n_params, (long long)c->train.steps,
               c->flops / 1e9, secs);
    }
    double tot_s = tot_flops / (gflops * 1e9 * par);
    printf("\ntotal: %zu cells, %.0f parameters, %.1f GFLOP, est. %.1f s of training "
           "(%.1f min)\n",
           s->n_cells, tot_params, tot_flops / 1e9, tot_s, tot_s / 60.0);
    char rpm[16];
    if (s->ranks_per_model > 0)
        snprintf(rpm, sizeof rpm, "%d", s->ranks_per_model);
    else
        snprintf(rpm, sizeof rpm, "1 (auto)");
    printf("assumed: %g GFLOP/s per thread x %d threads/rank x %s ranks/model; training only "
           "(measurement at %d tracked steps per cell is extra); with R model groups running in "
           "parallel, wall time is about total / R\n",
           gflops, s->threads_per_rank, rpm, s->n_cells ? s->cells[0].tracking.n_steps : 0);
    if (!s->uniform_tracking)
        printf("note: cells have different tracking steps or batch*seq, so they do not share "
               "one /tracking/step axis\n");
}

int cmd_plan(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    lmd_args a;
    lmd_args_init(&a, "plan", argc, argv);
    int json = lmd_args_flag(&a, "json");
    double gflops = PLAN_DEFAULT_GFLOPS;
    lmd_args_double(&a, "gflops", &gflops);
    const char *pos[2];
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad) return 2;
    if (npos != 1) {
        fprintf(stderr, "lmdisp plan: expected exactly one spec file\n\n");
        usage(stderr);
        return 2;
    }
    if (!(gflops > 0)) {
        fprintf(stderr, "lmdisp plan: --gflops must be > 0\n");
        return 2;
    }
    if (lmd_mspec_detect(pos[0])) return lmd_mstudy_plan(pos[0], json); /* kind: measure */
    lmd_spec s;
    lmd_err err;
    if (lmd_spec_load(&s, pos[0], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    lmd_slurm_res res; /* the slurm: section is checked here too, not first at submission */
    if (lmd_slurm_resources(&s, &res, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        lmd_spec_free(&s);
        return 2;
    }
    int rc = 0;
    if (json && print_json(&s, gflops, &err)) {
        fprintf(stderr, "lmdisp plan: %s\n", err.msg);
        rc = 1;
    } else if (!json) {
        print_table(&s, gflops);
    }
    lmd_spec_free(&s);
    return rc;
}
