/* cmd_status.c — `lmdisp status DIR [--json]`: the state of every cell of a study directory,
 * laid out by the grid (mlp_dim x dispersion x seed), with the latest tracked step, validation
 * loss and condensation. Reads DIR/spec.yaml and DIR/cells/ only; needs no MPI. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cell.h"
#include "commands.h"
#include "measrun.h"
#include "meassubmit.h"
#include "h5io.h"
#include "jsonout.h"
#include "slurm.h"
#include "spec.h"
#include "studydir.h"

typedef struct {
    char status[32];
    long long step;    /* from the state file; -1 if none */
    long long tracked; /* newest tracked step with metrics; -1 if none */
    double val_loss, last_cossim, spearman, kendall;
    char slurm[32]; /* Slurm state of the newest array task holding the cell, or "" */
} cell_view;

/* Slurm states in which a task is gone without having finished its cells */
static int dead_state(const char *st) {
    static const char *const DEAD[] = {"TIMEOUT",   "OUT_OF_MEMORY", "NODE_FAIL", "FAILED",
                                       "CANCELLED", "PREEMPTED",     "BOOT_FAIL", "DEADLINE"};
    for (size_t i = 0; i < sizeof DEAD / sizeof DEAD[0]; i++)
        if (!strcmp(st, DEAD[i])) return 1;
    return 0;
}

/* Fills v[i].slurm from one batched squeue/sacct query: each cell maps to the task of the
 * newest round (manifest, then slurm/resubmit-R.manifest) that holds it. Returns what
 * answered ("" if the study was never submitted or Slurm is not reachable). */
static const char *slurm_view(const char *dir, const lmd_spec *spec, cell_view *v, char *src,
                              size_t nsrc) {
    src[0] = '\0';
    lmd_slurm_task_state *st = NULL;
    size_t n_st = lmd_slurm_query(dir, &st, src, nsrc);
    if (n_st == 0) return src;
    int *round = lmd_calloc(spec->n_cells ? spec->n_cells : 1, sizeof *round);
    int *task = lmd_calloc(spec->n_cells ? spec->n_cells : 1, sizeof *task);
    for (size_t i = 0; i < spec->n_cells; i++) round[i] = task[i] = -1;
    for (int r = 0; r < 10000; r++) {
        char path[4400];
        if (r == 0)
            lmd_pathf(path, "%s/manifest", dir);
        else
            lmd_pathf(path, "%s/slurm/resubmit-%d.manifest", dir, r);
        lmd_manifest m;
        lmd_err err;
        if (lmd_manifest_read(&m, path, &err)) {
            if (r > 0) break;
            continue;
        }
        for (size_t k = 0; k < m.n; k++)
            if (m.e[k].index < spec->n_cells && !strcmp(spec->cells[m.e[k].index].id, m.e[k].id)) {
                round[m.e[k].index] = r;
                task[m.e[k].index] = m.e[k].task;
            }
        lmd_manifest_free(&m);
    }
    /* (round, task) -> state slot, so the lookup is linear in cells + tasks */
    int max_round = 0, max_task = 0;
    for (size_t k = 0; k < n_st; k++) {
        if (st[k].round > max_round) max_round = st[k].round;
        if (st[k].task > max_task) max_task = st[k].task;
    }
    size_t width = (size_t)max_task + 1;
    long *slot = lmd_calloc(((size_t)max_round + 1) * width, sizeof *slot);
    for (size_t k = 0; k < ((size_t)max_round + 1) * width; k++) slot[k] = -1;
    for (size_t k = 0; k < n_st; k++)
        if (st[k].round >= 0 && st[k].task >= 0)
            slot[(size_t)st[k].round * width + (size_t)st[k].task] = (long)k;
    for (size_t i = 0; i < spec->n_cells; i++) {
        if (round[i] < 0 || round[i] > max_round || task[i] < 0 || task[i] > max_task) continue;
        long k = slot[(size_t)round[i] * width + (size_t)task[i]];
        if (k >= 0) snprintf(v[i].slurm, sizeof v[i].slurm, "%s", st[k].state);
    }
    free(slot);
    free(round);
    free(task);
    free(st);
    return src;
}

static void newest_track(const char *cell_dir, cell_view *v) {
    char path[8800];
    lmd_pathf(path, "%s/track", cell_dir);
    DIR *d = opendir(path);
    v->tracked = -1;
    v->val_loss = v->last_cossim = v->spearman = v->kendall = NAN;
    if (!d) return;
    struct dirent *e;
    long long best = -1;
    while ((e = readdir(d))) {
        long long s;
        char tail[8];
        if (sscanf(e->d_name, "step%lld.%7s", &s, tail) == 2 && !strcmp(tail, "h5") && s > best)
            best = s;
    }
    closedir(d);
    if (best < 0) return;
    lmd_pathf(path, "%s/track/step%07lld.h5", cell_dir, best);
    lmd_err err;
    hid_t f = lmd_h5_open(path, &err);
    if (f < 0) return;
    double lm[1024];
    size_t n = 0;
    if (lmd_h5_read(f, "/layer_mean_cossim", H5T_NATIVE_DOUBLE, lm, 1024, &n, &err) == 0 && n > 0)
        v->last_cossim = lm[n - 1];
    lmd_h5_read(f, "/val_loss", H5T_NATIVE_DOUBLE, &v->val_loss, 1, NULL, &err);
    lmd_h5_read(f, "/spearman", H5T_NATIVE_DOUBLE, &v->spearman, 1, NULL, &err);
    lmd_h5_read(f, "/kendall", H5T_NATIVE_DOUBLE, &v->kendall, 1, NULL, &err);
    H5Fclose(f);
    v->tracked = best;
}

int cmd_status(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "status", argc, argv);
    int help = lmd_args_flag(&a, "help");
    int json = lmd_args_flag(&a, "json");
    const char *pos[2];
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (help || bad || npos != 1) {
        fprintf(help ? stdout : stderr,
                "usage: lmdisp status DIR [--json]\n\n"
                "State of every cell of the study in DIR (from DIR/spec.yaml and DIR/cells/):\n"
                "pending (never started), running/interrupted (has a checkpoint to resume from),\n"
                "done, diverged or failed, with the newest tracked step and its metrics.\n"
                "For a study submitted with `lmdisp submit`, also each cell's Slurm task state\n"
                "(one squeue call, plus sacct when accounting is enabled) and the cells whose\n"
                "task ended (timeout, out of memory, node failure) without finishing them.\n");
        return help ? 0 : 2;
    }
    const char *dir = pos[0];
    if (lmd_mstudy_dir_is(dir)) return lmd_mstudy_status(dir, json); /* kind: measure */
    lmd_spec spec;
    lmd_err err = {{0}};
    if (lmd_studydir_load_spec(dir, &spec, &err)) {
        fprintf(stderr, "lmdisp status: %s is not a study directory (no readable spec.yaml): %s\n",
                dir, err.msg);
        lmd_spec_free(&spec);
        return 2;
    }
    cell_view *v = lmd_calloc(spec.n_cells ? spec.n_cells : 1, sizeof *v);
    int counts[6] = {0}, n_gone = 0;
    const char *names[6] = {"pending", "running", "interrupted", "done", "diverged", "failed"};
    for (size_t i = 0; i < spec.n_cells; i++) {
        const lmd_cell *c = &spec.cells[i];
        char cdir[4300];
        lmd_pathf(cdir, "%s/cells/%s", dir, c->id);
        int64_t step = -1;
        char st[32] = "";
        lmd_cell_finished(cdir, st, sizeof st, &step);
        snprintf(v[i].status, sizeof v[i].status, "%s", st[0] ? st : "pending");
        /* a run killed without a chance to update the state file (kill -9, a crash, mpirun
         * ending its ranks) must not look like one still running */
        char why[400];
        if (!strcmp(st, "running") && lmd_cell_holder_gone(cdir, why, sizeof why)) {
            snprintf(v[i].status, sizeof v[i].status, "interrupted");
            n_gone++;
        }
        v[i].step = step;
        newest_track(cdir, &v[i]);
        for (int k = 0; k < 6; k++)
            if (!strcmp(v[i].status, names[k])) counts[k]++;
    }
    char src[32];
    slurm_view(dir, &spec, v, src, sizeof src);
    int n_dead = 0;
    for (size_t i = 0; i < spec.n_cells; i++)
        if (strcmp(v[i].status, "done") && strcmp(v[i].status, "diverged") &&
            dead_state(v[i].slurm))
            n_dead++;
    if (json) {
        json_t *o = json_object(), *cnt = json_object(), *cells = json_array();
        if (!o || !cnt || !cells) lmd_die("jansson could not build the status (out of memory?)");
        lmd_json_set(o, "dir", lmd_json_str(dir));
        lmd_json_set(o, "name", lmd_json_str(spec.name));
        lmd_json_set(o, "n_cells", json_integer((json_int_t)spec.n_cells));
        lmd_json_set(o, "slurm", lmd_json_str(src));
        lmd_json_set(o, "died_in_slurm", json_integer(n_dead));
        for (int k = 0; k < 6; k++) lmd_json_set(cnt, names[k], json_integer(counts[k]));
        lmd_json_set(o, "counts", cnt);
        for (size_t i = 0; i < spec.n_cells; i++) {
            const lmd_cell *c = &spec.cells[i];
            json_t *e = json_object();
            if (!e) lmd_die("jansson could not build the status (out of memory?)");
            lmd_json_set(e, "index", json_integer((json_int_t)c->index));
            lmd_json_set(e, "id", lmd_json_str(c->id));
            lmd_json_set(e, "mlp_dim", json_integer(c->cfg.mlp_dim));
            lmd_json_set(e, "dispersion",
                         lmd_json_str(lmd_disp_variant_name(c->train.disp.variant)));
            lmd_json_set(e, "seed", json_integer((json_int_t)c->train.seed));
            lmd_json_set(e, "status", lmd_json_str(v[i].status));
            lmd_json_set(e, "step", json_integer(v[i].step));
            lmd_json_set(e, "steps", json_integer((json_int_t)c->train.steps));
            lmd_json_set(e, "tracked_step", json_integer(v[i].tracked));
            lmd_json_set(e, "slurm_state", lmd_json_str(v[i].slurm));
            lmd_json_set(e, "val_loss", lmd_json_num(v[i].val_loss));
            lmd_json_set(e, "last_layer_cossim", lmd_json_num(v[i].last_cossim));
            lmd_json_set(e, "spearman", lmd_json_num(v[i].spearman));
            lmd_json_set(e, "kendall", lmd_json_num(v[i].kendall));
            lmd_json_append(cells, e);
        }
        lmd_json_set(o, "cells", cells);
        /* 10 significant digits, as before: the metrics are read back for display */
        if (lmd_json_dump(stdout, o, 10, &err) || fputc('\n', stdout) == EOF) {
            fprintf(stderr, "lmdisp status: %s\n", err.msg[0] ? err.msg : "writing stdout failed");
            free(v);
            lmd_spec_free(&spec);
            return 1;
        }
    } else {
        printf("study %s (%s): %zu cells —", spec.name, dir, spec.n_cells);
        for (int k = 0; k < 6; k++)
            if (counts[k]) printf(" %d %s", counts[k], names[k]);
        printf("\n");
        if (n_gone)
            printf("%d cell(s) interrupted: the state file says running, but the run that held "
                   "them is gone (killed?); rerun the same command to resume them\n",
                   n_gone);
        if (src[0]) {
            /* Slurm's view: tasks by state, and cells whose task died without finishing them */
            char seen[16][32];
            int cnt[16], ns = 0;
            for (size_t i = 0; i < spec.n_cells; i++) {
                if (!v[i].slurm[0]) continue;
                int k = 0;
                while (k < ns && strcmp(seen[k], v[i].slurm)) k++;
                if (k == ns && ns < 16) {
                    snprintf(seen[ns], sizeof seen[ns], "%s", v[i].slurm);
                    cnt[ns++] = 0;
                }
                if (k < ns) cnt[k]++;
            }
            printf("slurm (%s), cells by task state:", src);
            for (int k = 0; k < ns; k++) printf(" %d %s", cnt[k], seen[k]);
            if (!ns) printf(" no task known to Slurm any more");
            printf("\n");
            if (n_dead)
                printf(
                    "%d cell(s) not finished whose Slurm task ended (timeout, out of memory, node "
                    "failure, cancel): `lmdisp resubmit %s` runs them again\n",
                    n_dead, dir);
        }
        printf("\n%8s  %-18s %6s  %-11s %13s %9s %11s %8s %8s%s\n", "mlp_dim", "dispersion", "seed",
               "status", "step", "val_loss", "last_cossim", "rho", "tau", src[0] ? "  slurm" : "");
        /* grid order: sort by (mlp_dim, dispersion, seed), then index */
        size_t *ord = lmd_calloc(spec.n_cells ? spec.n_cells : 1, sizeof *ord);
        for (size_t i = 0; i < spec.n_cells; i++) ord[i] = i;
        for (size_t i = 1; i < spec.n_cells; i++)
            for (size_t j = i; j > 0; j--) {
                const lmd_cell *x = &spec.cells[ord[j - 1]], *y = &spec.cells[ord[j]];
                int cmp =
                    x->cfg.mlp_dim != y->cfg.mlp_dim ? (x->cfg.mlp_dim > y->cfg.mlp_dim ? 1 : -1)
                    : x->train.disp.variant != y->train.disp.variant
                        ? ((int)x->train.disp.variant > (int)y->train.disp.variant ? 1 : -1)
                    : x->train.seed != y->train.seed ? (x->train.seed > y->train.seed ? 1 : -1)
                                                     : (x->index > y->index ? 1 : -1);
                if (cmp <= 0) break;
                size_t t = ord[j];
                ord[j] = ord[j - 1];
                ord[j - 1] = t;
            }
        for (size_t k = 0; k < spec.n_cells; k++) {
            size_t i = ord[k];
            const lmd_cell *c = &spec.cells[i];
            char stepbuf[32];
            if (v[i].step >= 0)
                snprintf(stepbuf, sizeof stepbuf, "%lld/%lld", v[i].step,
                         (long long)c->train.steps);
            else
                snprintf(stepbuf, sizeof stepbuf, "-/%lld", (long long)c->train.steps);
            printf("%8d  %-18s %6llu  %-11s %13s %9.4f %11.4f %8.3f %8.3f%s%s\n", c->cfg.mlp_dim,
                   lmd_disp_variant_name(c->train.disp.variant), (unsigned long long)c->train.seed,
                   v[i].status, stepbuf, v[i].val_loss, v[i].last_cossim, v[i].spearman,
                   v[i].kendall, src[0] ? "  " : "",
                   src[0] ? (v[i].slurm[0] ? v[i].slurm : "-") : "");
        }
        free(ord);
        printf("\n(metrics are those of the newest tracked checkpoint of each cell)\n");
    }
    free(v);
    lmd_spec_free(&spec);
    return 0;
}
