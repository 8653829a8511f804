/* meassubmit.c — a measurement study on Slurm (docs/SLURM.md "Measurement studies"): `submit`
 * freezes DIR/spec.yaml + spec.dir and a manifest (array task -> cells, most expensive first,
 * balanced by cost), the array and aggregation scripts are those of training studies
 * (lmd_slurm_submit_round); `resubmit` submits the cells without a result; `status` lists
 * every cell's state with its Slurm task's. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonout.h"
#include "measrun.h"
#include "meassubmit.h"
#include "slurm.h"

static int absolute(const char *path, char *out, size_t n) {
    if (path[0] == '/') return snprintf(out, n, "%s", path) < (int)n ? 0 : -1;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    while (path[0] == '.' && path[1] == '/') path += 2;
    return snprintf(out, n, "%s/%s", cwd, path) < (int)n ? 0 : -1;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* "measured", "failed" or "pending" */
static const char *cell_state(const char *dir, const lmd_mcell *c) {
    char p[PATH_MAX + 200];
    snprintf(p, sizeof p, "%s/cells/%s/result.json", dir, c->id);
    if (exists(p)) return "measured";
    snprintf(p, sizeof p, "%s/cells/%s/failed", dir, c->id);
    return exists(p) ? "failed" : "pending";
}

/* cells sel[0..n) into tasks of at most cpt cells: most expensive first, each to the task with
 * the least cost so far (ties: lowest task) */
static void build_manifest(lmd_manifest *m, const lmd_mspec *s, const size_t *sel, size_t n,
                           int cpt, int round) {
    memset(m, 0, sizeof *m);
    memcpy(m->spec_sha256, s->sha256, sizeof m->spec_sha256);
    m->round = round;
    m->n_tasks = (int)((n + (size_t)cpt - 1) / (size_t)cpt);
    m->e = lmd_calloc(n + 1, sizeof *m->e);
    m->n = n;
    size_t *order = lmd_calloc(s->n_cells + 1, sizeof *order), k = 0;
    lmd_mspec_order(s, order);
    double *load = lmd_calloc((size_t)m->n_tasks + 1, sizeof *load);
    int *count = lmd_calloc((size_t)m->n_tasks + 1, sizeof *count);
    char *want = lmd_calloc(s->n_cells + 1, 1);
    for (size_t j = 0; j < n; j++)
        if (sel[j] < s->n_cells) want[sel[j]] = 1;
    for (size_t i = 0; i < s->n_cells; i++) {
        if (!want[order[i]]) continue;
        int best = -1;
        for (int t = 0; t < m->n_tasks; t++)
            if (count[t] < cpt && (best < 0 || load[t] < load[best])) best = t;
        load[best] += s->cells[order[i]].cost;
        count[best]++;
        m->e[k].task = best;
        m->e[k].index = order[i];
        snprintf(m->e[k].id, sizeof m->e[k].id, "%s", s->cells[order[i]].id);
        k++;
    }
    free(order), free(load), free(count), free(want);
}

static void print_manifest(const lmd_mspec *s, const lmd_manifest *m) {
    printf("%5s  %-50s %-30s %-10s %14s\n", "task", "cell", "model", "dataset", "cost");
    for (size_t i = 0; i < m->n; i++) {
        const lmd_mcell *c = &s->cells[m->e[i].index];
        printf("%5d  %-50s %-30s %-10s %14.4g\n", m->e[i].task, c->id, s->models[c->model].name,
               s->datasets[c->dataset].name, c->cost);
    }
}

static int submit_common(const lmd_mspec *s, const char *dir, const char *man, int round,
                         const size_t *sel, size_t n, const char *templates, int throttle, int cpt,
                         int dry, const char *cmd) {
    lmd_err err = {{0}};
    lmd_spec view = lmd_mspec_slurm_view(s);
    lmd_slurm_res res;
    if (lmd_slurm_resources(&view, &res, &err)) {
        fprintf(stderr, "lmdisp %s: %s\n", cmd, err.msg);
        return 2;
    }
    lmd_manifest m;
    build_manifest(&m, s, sel, n, cpt, round);
    printf("measurement study %s: %zu cell(s) in %d array task(s) (round %d), %d rank(s) x %d "
           "thread(s) per task, output %s\n",
           s->name, n, m.n_tasks, round, res.ntasks, res.cpus_per_task, dir);
    if (dry) print_manifest(s, &m);
    int rc = 0;
    if (!dry) {
        char *probe[] = {"sbatch", "--version", NULL};
        char logs[PATH_MAX + 32];
        snprintf(logs, sizeof logs, "%s/slurm/logs", dir);
        if (lmd_run_capture(probe, NULL, 1) != 0) {
            fprintf(stderr,
                    "lmdisp %s: sbatch is not available (install Slurm, or try "
                    "slurm/local-cluster start for a one-node Slurm on this machine)\n",
                    cmd);
            rc = 1;
        } else if (lmd_mkdirs(logs, &err) || (round == 0 && lmd_mstudy_save_spec(s, dir, &err)) ||
                   lmd_manifest_write(&m, man, &err)) {
            fprintf(stderr, "lmdisp %s: %s\n", cmd, err.msg);
            rc = 1;
        }
    }
    int n_sub = 0;
    if (!rc && lmd_slurm_submit_round(&res, &m, dir, templates, throttle ? throttle : res.throttle,
                                      dry, man, &n_sub, &err)) {
        fprintf(stderr, "lmdisp %s: %s\n", cmd, err.msg);
        rc = 1;
        if (!dry && n_sub == 0 && unlink(man) == 0)
            fprintf(stderr,
                    "lmdisp %s: nothing was submitted; %s removed, the same command can "
                    "be retried\n",
                    cmd, man);
    }
    if (!rc && !dry) printf("watch it with: lmdisp status %s\n", dir);
    if (!rc && dry) printf("dry run: nothing written, nothing submitted\n");
    lmd_manifest_free(&m);
    return rc;
}

int lmd_mstudy_submit(const char *spec_path, const char *out, const char *templates, int throttle,
                      int cpt, int dry) {
    lmd_mspec s;
    lmd_err err = {{0}};
    if (lmd_mspec_load(&s, spec_path, &err)) {
        fprintf(stderr, "lmdisp submit: %s\n", err.msg);
        return 2;
    }
    char outbuf[PATH_MAX], dir[PATH_MAX], man[PATH_MAX + 16];
    snprintf(outbuf, sizeof outbuf, "results/%s", s.name);
    if (absolute(out ? out : outbuf, dir, sizeof dir) || !lmd_slurm_path_ok(dir)) {
        fprintf(stderr,
                "lmdisp submit: --out %s: the study directory must be a path of letters, "
                "digits and / . _ + , = @ ~ - (it appears unquoted in #SBATCH lines)\n",
                out ? out : outbuf);
        lmd_mspec_free(&s);
        return 2;
    }
    snprintf(man, sizeof man, "%s/manifest", dir);
    int rc;
    if (exists(man)) {
        fprintf(stderr,
                "lmdisp submit: %s was already submitted (%s exists); use `lmdisp "
                "resubmit %s` for the cells not measured, or another --out\n",
                dir, man, dir);
        rc = 2;
    } else {
        size_t *all = lmd_calloc(s.n_cells + 1, sizeof *all);
        for (size_t i = 0; i < s.n_cells; i++) all[i] = i;
        rc =
            submit_common(&s, dir, man, 0, all, s.n_cells, templates, throttle, cpt, dry, "submit");
        free(all);
    }
    lmd_mspec_free(&s);
    return rc;
}

int lmd_mstudy_resubmit(const char *dir_arg, const char *templates, int throttle, int cpt, int dry,
                        int force, int want_failed, int want_missing) {
    char dir[PATH_MAX], man[PATH_MAX + 16];
    if (absolute(dir_arg, dir, sizeof dir) || !lmd_slurm_path_ok(dir)) {
        fprintf(stderr, "lmdisp resubmit: %s: not a usable study directory path\n", dir_arg);
        return 2;
    }
    snprintf(man, sizeof man, "%s/manifest", dir);
    lmd_mspec s;
    lmd_err err = {{0}};
    lmd_manifest m0;
    if (lmd_manifest_read(&m0, man, &err)) {
        fprintf(stderr, "lmdisp resubmit: %s (was %s submitted with lmdisp submit?)\n", err.msg,
                dir);
        return 2;
    }
    if (lmd_mstudy_load_dir(&s, dir, &err)) {
        fprintf(stderr, "lmdisp resubmit: %s\n", err.msg);
        lmd_manifest_free(&m0);
        return 2;
    }
    int rc = 0;
    if (strcmp(m0.spec_sha256, s.sha256)) {
        fprintf(stderr, "lmdisp resubmit: %s/spec.yaml changed since submission; refusing\n", dir);
        rc = 2;
    }
    if (!rc) rc = lmd_slurm_refuse_live(dir, force);
    size_t *sel = lmd_calloc(s.n_cells + 1, sizeof *sel), n = 0, n_done = 0;
    for (size_t i = 0; !rc && i < s.n_cells; i++) {
        const char *state = cell_state(dir, &s.cells[i]);
        if (!strcmp(state, "measured"))
            n_done++;
        else if (!strcmp(state, "failed") ? want_failed : want_missing)
            sel[n++] = i;
    }
    if (!rc && n == 0) {
        printf("lmdisp resubmit: nothing to resubmit in %s (%zu of %zu cells measured)\n", dir,
               n_done, s.n_cells);
    } else if (!rc) {
        lmd_slurm_job *jobs;
        size_t n_jobs;
        int round = 1;
        if (lmd_slurm_jobs_read(dir, &jobs, &n_jobs) == 0)
            for (size_t j = 0; j < n_jobs; j++)
                if (jobs[j].round >= round) round = jobs[j].round + 1;
        free(jobs);
        char rman[PATH_MAX + 64];
        for (;; round++) {
            snprintf(rman, sizeof rman, "%s/slurm/resubmit-%d.manifest", dir, round);
            if (!exists(rman)) break;
        }
        rc = submit_common(&s, dir, rman, round, sel, n, templates, throttle, cpt, dry, "resubmit");
    }
    free(sel);
    lmd_manifest_free(&m0);
    lmd_mspec_free(&s);
    return rc;
}

int lmd_mstudy_status(const char *dir, int json) {
    lmd_mspec s;
    lmd_err err = {{0}};
    if (lmd_mstudy_load_dir(&s, dir, &err)) {
        fprintf(stderr, "lmdisp status: %s\n", err.msg);
        return 2;
    }
    /* the Slurm task of each cell: the newest round's manifest that names it */
    lmd_slurm_task_state *st = NULL;
    char source[32] = "";
    size_t n_st = lmd_slurm_query(dir, &st, source, sizeof source);
    char(*task_state)[32] = lmd_calloc(s.n_cells + 1, sizeof *task_state);
    for (int round = 0; round < 1000; round++) {
        char p[PATH_MAX + 64];
        if (round == 0)
            snprintf(p, sizeof p, "%s/manifest", dir);
        else
            snprintf(p, sizeof p, "%s/slurm/resubmit-%d.manifest", dir, round);
        lmd_manifest m;
        if (!exists(p)) {
            if (round > 0) break;
            continue;
        }
        if (lmd_manifest_read(&m, p, &err)) continue;
        for (size_t i = 0; i < m.n; i++)
            for (size_t j = 0; j < n_st; j++)
                if (st[j].round == round && st[j].task == m.e[i].task && m.e[i].index < s.n_cells)
                    snprintf(task_state[m.e[i].index], 32, "%s", st[j].state);
        lmd_manifest_free(&m);
    }
    int counts[3] = {0, 0, 0};
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("measurement study %s (%s): %zu cells\n%-50s %-34s %-10s %-9s %s\n", s.name, dir,
               s.n_cells, "cell", "model", "dataset", "state", n_st ? "slurm" : "");
    for (size_t i = 0; i < s.n_cells; i++) {
        const lmd_mcell *c = &s.cells[i];
        const char *state = cell_state(dir, c);
        counts[!strcmp(state, "measured") ? 0 : !strcmp(state, "failed") ? 1 : 2]++;
        if (json) {
            json_t *o = json_object();
            lmd_json_set(o, "id", lmd_json_str(c->id));
            lmd_json_set(o, "model", lmd_json_str(s.models[c->model].name));
            lmd_json_set(o, "dataset", lmd_json_str(s.datasets[c->dataset].name));
            lmd_json_set(o, "state", lmd_json_str(state));
            lmd_json_set(o, "slurm", lmd_json_str(task_state[i]));
            lmd_json_append(arr, o);
        } else {
            printf("%-50s %-34s %-10s %-9s %s\n", c->id, s.models[c->model].name,
                   s.datasets[c->dataset].name, state, task_state[i]);
        }
    }
    if (json) {
        json_t *o = json_object();
        lmd_json_set(o, "study", lmd_json_str(s.name));
        lmd_json_set(o, "kind", lmd_json_str("measure"));
        lmd_json_set(o, "cells", arr);
        lmd_json_set(o, "measured", json_integer(counts[0]));
        lmd_json_set(o, "failed", json_integer(counts[1]));
        lmd_json_set(o, "pending", json_integer(counts[2]));
        lmd_json_set(o, "slurm_source", lmd_json_str(source));
        lmd_json_dump(stdout, o, 17, &err); /* takes the reference */
        printf("\n");
    } else {
        printf("%d measured, %d failed, %d pending%s%s\n", counts[0], counts[1], counts[2],
               n_st ? "; Slurm states from " : "", n_st ? source : "");
    }
    free(task_state);
    free(st);
    lmd_mspec_free(&s);
    return 0;
}
