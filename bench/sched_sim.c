/* sched_sim.c — the scheduler of `lmdisp run` at cluster scale, by simulation (issue 8,
 * docs/SCHEDULING.md). Loads a spec with lmd_spec_load (the same cells, FLOP estimates and
 * claim order the runner sees), models every cell's wall time on groups of 1, 2, 4, 8 ranks
 * (lmd_cost_cell_seconds), and for P ranks simulates event by event:
 *   - the current scheduler: uniform groups of g = ranks_per_model, cells claimed most FLOPs
 *     first (lmd_schedule_order) from one shared counter;
 *   - the moldable plan (lmd_sched_plan_moldable): a group size per cell, one queue per size.
 * Prints markdown tables: makespan, lower bounds, ratio and utilization.
 *
 *   sched_sim SPEC.yaml [--ranks 64,128,...] [--sizes 1,2,4,8] [--threads N]
 *             [--model-error S] [--jitter SIGMA --reps N --seed S] [--plan P] [--times]
 *
 * --jitter: actual durations are the modeled ones times exp(SIGMA * N(0,1)) (one factor per
 * cell, the same on every group size), so the plan (made from the model) is tested against a wrong
 * model. --plan P prints the moldable plan for P ranks cell by cell; --times prints every cell's
 * modeled seconds per size and nothing else. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispersion.h"
#include "schedule.h"
#include "spec.h"
#include "util.h"

#define MAX_LIST 32

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1 << 24 || n == max) return -1;
        out[n++] = (int)v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return n;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s SPEC.yaml [--ranks 64,128,...,4096] [--sizes 1,2,4,8] [--threads N]\n"
            "          [--model-error S] [--jitter SIGMA --reps N --seed S] [--plan P] [--times]\n",
            argv0);
}

/* Results of the current (uniform g) scheduler on one set of durations. */
typedef struct {
    double makespan, lb_rigid, util;
} uniform_result;

static uniform_result run_uniform(const double *time, size_t n, int ns, int k, int g, int P,
                                  const size_t *order) {
    uniform_result r = {0, 0, 0};
    double *col = lmd_calloc(n, sizeof *col);
    double busy = 0.0;
    for (size_t j = 0; j < n; j++) {
        col[j] = time[j * (size_t)ns + k];
        busy += g * col[j];
    }
    size_t m = (size_t)(P / g);
    r.makespan = lmd_sched_simulate(col, order, n, m, NULL, NULL);
    r.lb_rigid = lmd_sched_lower_bound_rigid(col, n, m);
    r.util = busy / ((double)P * r.makespan);
    free(col);
    return r;
}

int main(int argc, char **argv) {
    const char *spec_path = NULL;
    int ranks[MAX_LIST] = {64, 128, 256, 512, 1024, 2048, 4096}, n_ranks = 7;
    int sizes[MAX_LIST] = {1, 2, 4, 8}, ns = 4;
    int threads = -1, reps = 0, plan_P = 0, dump_times = 0;
    double jitter = 0.0, model_error = 0.1;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--ranks") && more) {
            if ((n_ranks = parse_list(argv[++i], ranks, MAX_LIST)) < 1) goto bad;
        } else if (!strcmp(a, "--sizes") && more) {
            if ((ns = parse_list(argv[++i], sizes, MAX_LIST)) < 1) goto bad;
        } else if (!strcmp(a, "--threads") && more) {
            threads = atoi(argv[++i]);
            if (threads < 1) goto bad;
        } else if (!strcmp(a, "--jitter") && more) {
            jitter = atof(argv[++i]);
            if (!(jitter >= 0 && jitter < 5)) goto bad;
        } else if (!strcmp(a, "--model-error") && more) {
            model_error = atof(argv[++i]);
            if (!(model_error >= 0 && model_error < 5)) goto bad;
        } else if (!strcmp(a, "--reps") && more) {
            reps = atoi(argv[++i]);
            if (reps < 1) goto bad;
        } else if (!strcmp(a, "--seed") && more) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--plan") && more) {
            plan_P = atoi(argv[++i]);
            if (plan_P < 1) goto bad;
        } else if (!strcmp(a, "--times")) {
            dump_times = 1;
        } else if (!strcmp(a, "--help")) {
            usage(stdout, argv[0]);
            return 0;
        } else if (a[0] != '-' && !spec_path) {
            spec_path = a;
        } else {
            goto bad;
        }
    }
    if (!spec_path) goto bad;
    qsort(sizes, (size_t)ns, sizeof *sizes, cmp_int);
    for (int k = 1; k < ns; k++)
        if (sizes[k] == sizes[k - 1]) goto bad;
    if (jitter > 0 && reps == 0) reps = 20;
    if (jitter == 0) reps = 0;

    lmd_spec spec;
    lmd_err err = {{0}};
    if (lmd_spec_load(&spec, spec_path, &err)) {
        fprintf(stderr, "sched_sim: %s\n", err.msg);
        return 2;
    }
    if (threads < 0) threads = spec.threads_per_rank;
    size_t n = spec.n_cells;
    lmd_cost_model cm = lmd_cost_model_default();
    double *time = lmd_calloc(n * (size_t)ns, sizeof *time);
    double total1 = 0.0;
    for (size_t j = 0; j < n; j++)
        for (int k = 0; k < ns; k++)
            time[j * (size_t)ns + k] =
                lmd_cost_cell_seconds(&cm, &spec.cells[j], sizes[k], threads);
    for (size_t j = 0; j < n; j++) total1 += time[j * (size_t)ns];

    /* the claim order of the study engine (FLOPs), and the order by modeled time */
    size_t *all = lmd_calloc(n, sizeof *all), *order = lmd_calloc(n, sizeof *order);
    for (size_t j = 0; j < n; j++) all[j] = j;
    lmd_schedule_order(&spec, all, n, order);

    double tmin = INFINITY, tmax = 0.0;
    for (size_t j = 0; j < n; j++) {
        tmin = fmin(tmin, time[j * (size_t)ns]);
        tmax = fmax(tmax, time[j * (size_t)ns]);
    }
    printf("# sched_sim %s: %zu cells, threads/rank %d; modeled cell time on %d rank(s): "
           "%.0f .. %.0f s (total %.0f rank-h)\n\n",
           spec.name, n, threads, sizes[0], tmin, tmax, total1 * sizes[0] / 3600.0);
    printf("Per-size speedup of the most expensive cell (claimed first):");
    for (int k = 0; k < ns; k++)
        printf(" g=%d %.2fx", sizes[k],
               time[order[0] * (size_t)ns] / time[order[0] * (size_t)ns + k]);
    printf("\n\n");

    if (dump_times) { /* cell id, then modeled seconds per size: for external checks */
        for (size_t j = 0; j < n; j++) {
            printf("%s", spec.cells[j].id);
            for (int k = 0; k < ns; k++) printf(" %.3f", time[j * (size_t)ns + k]);
            printf("\n");
        }
        goto out;
    }

    /* plans for every P: [2r] trusts the model, [2r+1] is scored against model errors */
    lmd_sched_plan *plans = lmd_calloc(2 * (size_t)n_ranks, sizeof *plans);
    for (int r = 0; r < n_ranks; r++)
        for (int robust = 0; robust < 2; robust++)
            if (lmd_sched_plan_moldable(time, n, sizes, ns, ranks[r], robust ? model_error : 0.0,
                                        &plans[2 * r + robust], &err)) {
                fprintf(stderr, "sched_sim: %s\n", err.msg);
                return 1;
            }

    /* ---- modeled durations ---- */
    printf("## Current scheduler (uniform ranks_per_model g, most FLOPs first) and the moldable "
           "plan, modeled durations\n\n");
    printf("LB = moldable lower bound over sizes {");
    for (int k = 0; k < ns; k++) printf("%s%d", k ? "," : "", sizes[k]);
    printf("} (schedule.h); LB_g = identical-machines bound for P/g groups of g.\n\n");
    printf("| P | policy | groups | makespan h | LB_g h | LB h | makespan/LB | utilization |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int r = 0; r < n_ranks; r++) {
        int P = ranks[r];
        double lb = lmd_sched_lower_bound_moldable(time, n, sizes, ns, P);
        double best = INFINITY;
        int best_g = 0;
        for (int k = 0; k < ns; k++) {
            int g = sizes[k];
            if (g > P || P % g) continue;
            uniform_result u = run_uniform(time, n, ns, k, g, P, order);
            printf("| %d | uniform g=%d | %d x %d | %.2f | %.2f | %.2f | %.3f | %.3f |\n", P, g,
                   P / g, g, u.makespan / 3600, u.lb_rigid / 3600, lb / 3600, u.makespan / lb,
                   u.util);
            if (u.makespan < best) best = u.makespan, best_g = g;
        }
        for (int robust = 0; robust < 2; robust++) {
            double me = robust ? model_error : 0.0;
            if (robust && me == 0.0) break;
            const lmd_sched_plan *pl = &plans[2 * r + robust];
            double busy;
            double mk = lmd_sched_plan_simulate(pl, time, &busy);
            char groups[256] = "";
            size_t off = 0;
            for (int k = 0; k < ns; k++)
                if (pl->n_groups[k])
                    off += (size_t)snprintf(groups + off, sizeof groups - off, "%s%zu x %d",
                                            off ? " + " : "", pl->n_groups[k], sizes[k]);
            printf("| %d | **moldable plan, s=%.2g** | %s | %.2f | | %.2f | **%.3f** | %.3f |\n", P,
                   me, groups, mk / 3600, lb / 3600, mk / lb, busy / ((double)P * mk));
            if (robust || model_error == 0.0) { /* the plan the runner uses, with stealing */
                mk = lmd_sched_plan_simulate_steal(pl, time, &busy);
                printf(
                    "| %d | **moldable plan, s=%.2g, stealing** | %s | %.2f | | %.2f | **%.3f** | "
                    "%.3f |\n",
                    P, me, groups, mk / 3600, lb / 3600, mk / lb, busy / ((double)P * mk));
            }
        }
        (void)best_g;
    }

    /* ---- durations off the model ---- */
    if (reps > 0) {
        printf("\n## Robustness: actual durations = model x exp(%.2f N(0,1)), %d draws\n\n", jitter,
               reps);
        printf("Plans and orders are made from the model; makespans and bounds use the actual "
               "durations. Mean (max) of makespan/LB over the draws.\n\n");
        printf("| P | best uniform g (by model) | uniform: mean (max) | plan s=0: mean (max) | "
               "plan s=%.2g: mean (max) | plan s=%.2g + stealing: mean (max) |\n",
               model_error, model_error);
        printf("|---|---|---|---|---|---|\n");
        double *act = lmd_calloc(n * (size_t)ns, sizeof *act);
        for (int r = 0; r < n_ranks; r++) {
            int P = ranks[r];
            /* the uniform g the model says is best: what `ranks_per_model: auto` would pick */
            int bk = -1;
            double bm = INFINITY;
            for (int k = 0; k < ns; k++) {
                if (sizes[k] > P || P % sizes[k]) continue;
                uniform_result u = run_uniform(time, n, ns, k, sizes[k], P, order);
                if (u.makespan < bm) bm = u.makespan, bk = k;
            }
            const lmd_sched_plan *plan0 = &plans[2 * r], *planr = &plans[2 * r + 1];
            lmd_rng rng;
            lmd_rng_seed(&rng, seed, (uint64_t)P); /* independent of the planner's draws */
            double su = 0, mu = 0, s0 = 0, m0 = 0, sr = 0, mr = 0, ss = 0, ms = 0;
            for (int rep = 0; rep < reps; rep++) {
                for (size_t j = 0; j < n; j++) {
                    double f = exp(jitter * lmd_rng_normal(&rng)); /* one error per cell */
                    for (int k = 0; k < ns; k++)
                        act[j * (size_t)ns + k] = time[j * (size_t)ns + k] * f;
                }
                double lb = lmd_sched_lower_bound_moldable(act, n, sizes, ns, P);
                uniform_result u = run_uniform(act, n, ns, bk, sizes[bk], P, order);
                double p0 = lmd_sched_plan_simulate(plan0, act, NULL) / lb;
                double pr = lmd_sched_plan_simulate(planr, act, NULL) / lb;
                double ps = lmd_sched_plan_simulate_steal(planr, act, NULL) / lb;
                ss += ps, ms = fmax(ms, ps);
                su += u.makespan / lb, mu = fmax(mu, u.makespan / lb);
                s0 += p0, m0 = fmax(m0, p0);
                sr += pr, mr = fmax(mr, pr);
            }
            printf("| %d | %d | %.3f (%.3f) | %.3f (%.3f) | %.3f (%.3f) | %.3f (%.3f) |\n", P,
                   sizes[bk], su / reps, mu, s0 / reps, m0, sr / reps, mr, ss / reps, ms);
        }
        free(act);
    }

    /* ---- one plan in detail ---- */
    if (plan_P > 0) {
        lmd_sched_plan plan;
        if (lmd_sched_plan_moldable(time, n, sizes, ns, plan_P, model_error, &plan, &err)) {
            fprintf(stderr, "sched_sim: %s\n", err.msg);
            return 1;
        }
        printf("\n## Moldable plan for P = %d: modeled makespan %.2f h\n\n", plan_P,
               plan.makespan / 3600);
        printf("| size | groups | cells in claim order: count x mlp_dim/dispersion (modeled hours "
               "each) |\n"
               "|---|---|---|\n");
        for (int k = 0; k < ns; k++) {
            size_t a = plan.class_start[k], b = plan.class_start[k + 1];
            if (a == b) continue;
            printf("| %d | %zu |", sizes[k], plan.n_groups[k]);
            /* runs of cells with the same width, dispersion and modeled time (the seeds) */
            for (size_t i = a; i < b;) {
                const lmd_cell *c = &spec.cells[plan.order[i]];
                double t = time[plan.order[i] * (size_t)ns + k];
                size_t e = i + 1;
                while (e < b && spec.cells[plan.order[e]].cfg.mlp_dim == c->cfg.mlp_dim &&
                       spec.cells[plan.order[e]].train.disp.variant == c->train.disp.variant &&
                       time[plan.order[e] * (size_t)ns + k] == t)
                    e++;
                printf(" %zu x %d/%s (%.2f)", e - i, c->cfg.mlp_dim,
                       lmd_disp_variant_name(c->train.disp.variant), t / 3600);
                i = e;
            }
            printf(" |\n");
        }
        lmd_sched_plan_free(&plan);
    }
    for (int r = 0; r < 2 * n_ranks; r++) lmd_sched_plan_free(&plans[r]);
    free(plans);
out:
    free(time);
    free(all);
    free(order);
    lmd_spec_free(&spec);
    return 0;
bad:
    usage(stderr, argv[0]);
    return 2;
}
