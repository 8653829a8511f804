/* cmd_submit.c — `lmdisp submit SPEC` and `lmdisp resubmit DIR`: freeze the array task ->
 * cell mapping in a manifest, render the sbatch scripts from the templates in slurm/ and
 * submit an array job (split at MaxArraySize) plus an aggregation job that runs after it.
 * Nothing here goes through a shell: sbatch is exec'ed directly, and every value that reaches
 * a rendered script was validated (lmd_slurm_resources) or quoted (lmd_shell_quote). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "cell.h"
#include "commands.h"
#include "measrun.h"
#include "meassubmit.h"
#include "slurm.h"
#include "spec.h"
#include "studydir.h"

typedef struct {
    const char *dir;       /* absolute study directory */
    const char *templates; /* NULL = compiled-in templates */
    int throttle;          /* %K of --array, 0 = none */
    int dry_run;
    const char *manifest; /* absolute manifest path the tasks read */
} submit_opts;

/* Absolute form of path without creating anything ("." and ".." are kept; sbatch and the
 * batch scripts see the same path either way). */
static int absolute(const char *path, char *out, size_t n) {
    if (path[0] == '/') return snprintf(out, n, "%s", path) < (int)n ? 0 : -1;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    while (path[0] == '.' && path[1] == '/') path += 2;
    return snprintf(out, n, "%s/%s", cwd, path) < (int)n ? 0 : -1;
}

static int self_path(char *out, size_t n) {
    ssize_t r = readlink("/proc/self/exe", out, n - 1);
    if (r <= 0) return -1;
    out[r] = '\0';
    return 0;
}

static void print_table(const lmd_spec *s, const lmd_manifest *m) {
    printf("%5s  %-44s %8s  %-16s %6s %14s\n", "task", "cell", "mlp_dim", "dispersion", "seed",
           "est. TFLOP");
    for (size_t i = 0; i < m->n; i++) {
        const lmd_cell *c = &s->cells[m->e[i].index];
        printf("%5d  %-44s %8d  %-16s %6llu %14.3f\n", m->e[i].task, c->id, c->cfg.mlp_dim,
               lmd_disp_variant_name(c->train.disp.variant), (unsigned long long)c->train.seed,
               c->flops / 1e12);
    }
}

/* sbatch --parsable SCRIPT -> job id (digits) */
static int sbatch(const char *script, char *job_id, size_t n, lmd_err *err) {
    char *argv[] = {"sbatch", "--parsable", (char *)script, NULL};
    char *out = NULL;
    int rc = lmd_run_capture(argv, &out, 0);
    if (rc < 0) return lmd_errf(err, "cannot run sbatch (is Slurm installed and on PATH?)");
    size_t d = out ? strspn(out, "0123456789") : 0;
    if (rc != 0 || d == 0 || d >= n) {
        lmd_errf(err, "sbatch %s failed (exit %d)%s%.200s", script, rc, out && *out ? ": " : "",
                 out ? out : "");
        free(out);
        return -1;
    }
    memcpy(job_id, out, d);
    job_id[d] = '\0';
    free(out);
    return 0;
}

static int write_script(const char *path, const char *text, lmd_err *err) {
    if (lmd_file_write_atomic(path, text, strlen(text), err)) return -1;
    if (chmod(path, 0755) != 0)
        return lmd_errf(err, "cannot make %s executable: %s", path, strerror(errno));
    return 0;
}

/* After a failed submission: only a submission that reached Slurm counts. With no job
 * submitted, the manifest goes, so that the same command can be retried; with some jobs in
 * Slurm, it stays (they read it) and the user is told what to do. */
static void forget_manifest(const char *cmd, const char *manifest, int n_submitted, int dry) {
    if (dry) return;
    if (n_submitted == 0) {
        if (unlink(manifest) != 0 && errno != ENOENT)
            fprintf(stderr, "lmdisp %s: cannot remove %s: %s; remove it by hand before retrying\n",
                    cmd, manifest, strerror(errno));
        else
            fprintf(stderr,
                    "lmdisp %s: nothing was submitted; %s removed, the same command can "
                    "be retried\n",
                    cmd, manifest);
    } else {
        fprintf(stderr,
                "lmdisp %s: %d job(s) did reach Slurm (see slurm/jobs.tsv) and read %s, "
                "which is kept; cancel them (scancel) and delete the directory, or let them run "
                "and use `lmdisp resubmit` for what is missing\n",
                cmd, n_submitted, manifest);
    }
}

/* Renders and (unless dry run) submits the array pieces and the aggregation job of
 * manifest m. Returns 0, or 1 with a message. */
static int submit_round(const lmd_spec *s, const lmd_slurm_res *res, const lmd_manifest *m,
                        const submit_opts *o, int *n_submitted, lmd_err *err) {
    *n_submitted = 0;
    char exe[PATH_MAX];
    if (self_path(exe, sizeof exe)) return lmd_errf(err, "cannot find the lmdisp binary's path");
    char q_exe[3 * PATH_MAX] = "", q_dir[3 * PATH_MAX] = "", q_man[3 * PATH_MAX] = "";
    if (lmd_shell_quote(q_exe, sizeof q_exe, exe) || lmd_shell_quote(q_dir, sizeof q_dir, o->dir) ||
        lmd_shell_quote(q_man, sizeof q_man, o->manifest))
        return lmd_errf(err, "path too long to quote");
    char *t_array = lmd_slurm_template(o->templates, "array", err);
    if (!t_array) return 1;
    char *t_agg = lmd_slurm_template(o->templates, "aggregate", err);
    if (!t_agg) {
        free(t_array);
        return 1;
    }
    int max_array = lmd_slurm_max_array_size();
    /* pieces: at most max_array tasks, never across a distillation level (lmd_manifest_build
     * gives each level consecutive tasks); a level's pieces wait (afterok) for the previous
     * level's, so teachers finish before their students start */
    int *p_first = lmd_calloc((size_t)m->n_tasks + 1, sizeof(int)),
        *p_count = lmd_calloc((size_t)m->n_tasks + 1, sizeof(int)),
        *p_level = lmd_calloc((size_t)m->n_tasks + 1, sizeof(int));
    int n_pieces = 0;
    if (!s) { /* a measurement study (lmd_slurm_submit_round): one level, tasks 0..n_tasks-1 */
        for (int t = 0; t < m->n_tasks; t += max_array) {
            p_first[n_pieces] = t;
            p_count[n_pieces] = m->n_tasks - t < max_array ? m->n_tasks - t : max_array;
            p_level[n_pieces++] = 0;
        }
    }
    for (size_t i = 0; s && i < m->n;) {
        int level = s->cells[m->e[i].index].kd.level, first = m->e[i].task, last = first;
        while (i < m->n && s->cells[m->e[i].index].kd.level == level) last = m->e[i++].task;
        for (int t = first; t <= last; t += max_array) {
            p_first[n_pieces] = t;
            p_count[n_pieces] = last - t + 1 < max_array ? last - t + 1 : max_array;
            p_level[n_pieces++] = level;
        }
    }
    char prev_level_deps[4096] = "", level_deps[4096] = "";
    char np[16], threads[16], maxrq[16];
    snprintf(np, sizeof np, "%d", res->ntasks);
    snprintf(threads, sizeof threads, "%d", res->cpus_per_task);
    snprintf(maxrq, sizeof maxrq, "%d", res->max_requeue);
    char deps[4096] = "";
    int rc = 0;
    for (int p = 0; p < n_pieces && !rc; p++) {
        int first = p_first[p], count = p_count[p];
        if (p > 0 && p_level[p] != p_level[p - 1]) {
            snprintf(prev_level_deps, sizeof prev_level_deps, "%s", level_deps);
            level_deps[0] = '\0';
        }
        char after[4200] = "";
        if (prev_level_deps[0])
            snprintf(after, sizeof after, "#SBATCH --dependency=afterok%s\n", prev_level_deps);
        char sb[16384], throttle[32] = "", offset[16];
        if (o->throttle > 0) snprintf(throttle, sizeof throttle, "%%%d", o->throttle);
        snprintf(offset, sizeof offset, "%d", first);
        snprintf(sb, sizeof sb,
                 "#SBATCH --job-name=%s\n"
                 "#SBATCH --array=0-%d%s\n"
                 "#SBATCH --output=%s/slurm/logs/%%A_%%a.out\n"
                 "#SBATCH --requeue\n"
                 "#SBATCH --open-mode=append\n"
                 "#SBATCH --signal=B:USR1@%d\n"
                 "#SBATCH --ntasks=%d\n"
                 "#SBATCH --cpus-per-task=%d\n"
                 "%s%s%s%s%s",
                 res->job_name, count - 1, throttle, o->dir, res->grace, res->ntasks,
                 res->cpus_per_task, after, res->time[0] ? "#SBATCH --time=" : "", res->time,
                 res->time[0] ? "\n" : "", res->sbatch);
        const char *keys[] = {"SBATCH",      "SETUP",       "LMDISP", "OUT",    "MANIFEST",
                              "TASK_OFFSET", "MAX_REQUEUE", "NP",     "THREADS"};
        const char *vals[] = {sb, res->setup, q_exe, q_dir, q_man, offset, maxrq, np, threads};
        char *text = lmd_slurm_render(t_array, keys, vals, 9, err);
        if (!text) {
            rc = 1;
            break;
        }
        char path[PATH_MAX + 64];
        lmd_pathf(path, "%s/slurm/array-%d-%d.sbatch", o->dir, m->round, p);
        if (o->dry_run) {
            printf("==== %s (array tasks %d..%d of %d) ====\n%s\n", path, first, first + count - 1,
                   m->n_tasks, text);
            snprintf(deps + strlen(deps), sizeof deps - strlen(deps), ":<array job %d>", p);
            snprintf(level_deps + strlen(level_deps), sizeof level_deps - strlen(level_deps),
                     ":<array job %d>", p);
        } else {
            lmd_slurm_job j;
            memset(&j, 0, sizeof j);
            if (write_script(path, text, err) || sbatch(path, j.job_id, sizeof j.job_id, err)) {
                rc = 1;
            } else {
                ++*n_submitted;
                j.round = m->round;
                snprintf(j.kind, sizeof j.kind, "array");
                j.first_task = first;
                j.n_tasks = count;
                rc = lmd_slurm_jobs_append(o->dir, &j, err) ? 1 : 0;
                snprintf(deps + strlen(deps), sizeof deps - strlen(deps), ":%s", j.job_id);
                snprintf(level_deps + strlen(level_deps), sizeof level_deps - strlen(level_deps),
                         ":%s", j.job_id);
                printf("submitted array job %s: tasks %d..%d of %d (%s)%s%s\n", j.job_id, first,
                       first + count - 1, m->n_tasks, path,
                       prev_level_deps[0] ? ", after (ok) " : "",
                       prev_level_deps[0] ? prev_level_deps + 1 : "");
            }
        }
        free(text);
    }
    if (!rc) {
        char sb[16384];
        const char *tl = res->aggregate_time[0] ? res->aggregate_time : res->time;
        snprintf(sb, sizeof sb,
                 "#SBATCH --job-name=%s-aggregate\n"
                 "#SBATCH --output=%s/slurm/logs/aggregate-%d_%%j.out\n"
                 "#SBATCH --dependency=afterany%s\n"
                 "#SBATCH --ntasks=%d\n"
                 "#SBATCH --cpus-per-task=1\n"
                 "%s%s%s%s",
                 res->job_name, o->dir, m->round, deps, res->ntasks, tl[0] ? "#SBATCH --time=" : "",
                 tl, tl[0] ? "\n" : "", res->sbatch);
        const char *keys[] = {"SBATCH", "SETUP", "LMDISP", "OUT", "NP"};
        const char *vals[] = {sb, res->setup, q_exe, q_dir, np};
        char *text = lmd_slurm_render(t_agg, keys, vals, 5, err);
        if (!text) {
            rc = 1;
        } else {
            char path[PATH_MAX + 64];
            lmd_pathf(path, "%s/slurm/aggregate-%d.sbatch", o->dir, m->round);
            if (o->dry_run) {
                printf("==== %s ====\n%s\n", path, text);
            } else {
                lmd_slurm_job j;
                memset(&j, 0, sizeof j);
                if (write_script(path, text, err) || sbatch(path, j.job_id, sizeof j.job_id, err)) {
                    rc = 1;
                } else {
                    ++*n_submitted;
                    j.round = m->round;
                    snprintf(j.kind, sizeof j.kind, "aggregate");
                    rc = lmd_slurm_jobs_append(o->dir, &j, err) ? 1 : 0;
                    printf("submitted aggregation job %s (after %s) -> %s/study.h5\n", j.job_id,
                           deps + 1, o->dir);
                }
            }
            free(text);
        }
    }
    free(t_array);
    free(t_agg);
    free(p_first), free(p_count), free(p_level);
    return rc;
}

static int make_dirs(const char *dir, lmd_err *err) {
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/slurm/logs", dir);
    return lmd_mkdirs(p, err);
}

static void usage_submit(FILE *f) {
    fprintf(
        f,
        "usage: lmdisp submit SPEC [--out DIR] [--throttle K] [--cells-per-task N] [--dry-run]\n"
        "                          [--templates TDIR]\n\n"
        "Submits the study as a Slurm array job plus an aggregation job:\n"
        "  DIR/manifest        the frozen array task -> cells mapping (tasks never re-read SPEC)\n"
        "  DIR/slurm/*.sbatch  the rendered scripts; logs in DIR/slurm/logs/%%A_%%a.out\n"
        "Each array task runs `lmdisp run --out DIR --array-task I` under mpirun with the\n"
        "slurm: section's resources; on SIGUSR1/SIGTERM (preemption, time limit) it checkpoints\n"
        "and requeues itself up to slurm.max_requeues times. The aggregation job\n"
        "(--dependency=afterany) writes DIR/study.h5.\n\n"
        "  --out DIR            study directory (default results/<name>)\n"
        "  --throttle K         at most K tasks of the array run at once (%%K; default "
        "slurm.throttle)\n"
        "  --cells-per-task N   cells per array task (default 1); cells of similar total cost\n"
        "  --dry-run            print the cell table and the scripts; submit and write nothing\n"
        "  --templates TDIR     TDIR/array.sbatch.in and TDIR/aggregate.sbatch.in instead of\n"
        "                       the built-in copies of slurm/*.sbatch.in\n");
}

int cmd_submit(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "submit", argc, argv);
    int help = lmd_args_flag(&a, "help");
    int dry = lmd_args_flag(&a, "dry-run");
    const char *out = lmd_args_str(&a, "out");
    const char *templates = lmd_args_str(&a, "templates");
    int throttle = 0, cpt = 1;
    lmd_args_int(&a, "throttle", &throttle, 1, 1000000);
    lmd_args_int(&a, "cells-per-task", &cpt, 1, 1000000);
    const char *pos[2];
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (help || bad || npos != 1) {
        usage_submit(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    if (lmd_mspec_detect(pos[0])) /* kind: measure (runner/meassubmit.c) */
        return lmd_mstudy_submit(pos[0], out, templates, throttle, cpt, dry);
    lmd_spec spec;
    lmd_err err = {{0}};
    if (lmd_spec_load(&spec, pos[0], &err)) {
        fprintf(stderr, "lmdisp submit: %s\n", err.msg);
        lmd_spec_free(&spec);
        return 2;
    }
    lmd_slurm_res res;
    if (lmd_slurm_resources(&spec, &res, &err)) {
        fprintf(stderr, "lmdisp submit: %s\n", err.msg);
        lmd_spec_free(&spec);
        return 2;
    }
    char outbuf[PATH_MAX], dir[PATH_MAX], man[PATH_MAX + 16];
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "results/%s", spec.name);
        out = outbuf;
    }
    int rc = 0;
    if (absolute(out, dir, sizeof dir) || !lmd_slurm_path_ok(dir)) {
        fprintf(stderr,
                "lmdisp submit: --out %s: the study directory must be a path of letters, digits "
                "and / . _ + , = @ ~ - (it appears unquoted in #SBATCH lines)\n",
                out);
        lmd_spec_free(&spec);
        return 2;
    }
    snprintf(man, sizeof man, "%s/manifest", dir);
    if (access(man, F_OK) == 0) {
        fprintf(stderr,
                "lmdisp submit: %s was already submitted (%s exists); use `lmdisp resubmit %s` "
                "for the cells that are not done, or another --out\n",
                dir, man, dir);
        lmd_spec_free(&spec);
        return 2;
    }
    size_t *all = lmd_calloc(spec.n_cells ? spec.n_cells : 1, sizeof *all);
    for (size_t i = 0; i < spec.n_cells; i++) all[i] = i;
    lmd_manifest m;
    lmd_manifest_build(&m, &spec, all, spec.n_cells, cpt, 0);
    free(all);
    printf("study %s: %zu cells in %d array task(s), %d rank(s) x %d thread(s) per task, "
           "output %s\n",
           spec.name, spec.n_cells, m.n_tasks, res.ntasks, res.cpus_per_task, dir);
    int rpm = spec.ranks_per_model > 0 ? spec.ranks_per_model : 1;
    if (res.ntasks / rpm > cpt)
        fprintf(stderr,
                "lmdisp submit: warning: each task has %d rank group(s) (slurm.ntasks %d / "
                "ranks_per_model %d) but at most %d cell(s): groups will idle; raise "
                "--cells-per-task or lower slurm.ntasks\n",
                res.ntasks / rpm, res.ntasks, rpm, cpt);
    if (dry) print_table(&spec, &m);
    submit_opts o = {dir, templates, throttle ? throttle : res.throttle, dry, man};
    if (!dry) {
        /* everything that can fail before a job exists fails first */
        char *probe[] = {"sbatch", "--version", NULL};
        if (lmd_run_capture(probe, NULL, 1) != 0) {
            fprintf(stderr, "lmdisp submit: sbatch is not available (install Slurm, or try "
                            "slurm/local-cluster start for a one-node Slurm on this machine)\n");
            rc = 1;
        } else if (make_dirs(dir, &err) || lmd_studydir_save_spec(dir, &spec, &err) ||
                   lmd_manifest_write(&m, man, &err)) {
            fprintf(stderr, "lmdisp submit: %s\n", err.msg);
            rc = 1;
        }
    }
    int n_sub = 0;
    if (!rc && submit_round(&spec, &res, &m, &o, &n_sub, &err)) {
        fprintf(stderr, "lmdisp submit: %s\n", err.msg);
        rc = 1;
        forget_manifest("submit", man, n_sub, dry);
    }
    if (!rc && !dry) printf("watch it with: lmdisp status %s   (cells and Slurm tasks)\n", dir);
    if (!rc && dry) printf("dry run: nothing written, nothing submitted\n");
    lmd_manifest_free(&m);
    lmd_spec_free(&spec);
    return rc;
}

/* ------------------------------------------------------------------ resubmit */

int cmd_resubmit(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "resubmit", argc, argv);
    int help = lmd_args_flag(&a, "help");
    int dry = lmd_args_flag(&a, "dry-run");
    int force = lmd_args_flag(&a, "force");
    const char *only = lmd_args_str(&a, "only");
    const char *templates = lmd_args_str(&a, "templates");
    int throttle = 0, cpt = 1;
    lmd_args_int(&a, "throttle", &throttle, 1, 1000000);
    lmd_args_int(&a, "cells-per-task", &cpt, 1, 1000000);
    const char *pos[2];
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    int want_failed = 1, want_missing = 1, want_diverged = 0;
    if (only) {
        want_failed = want_missing = want_diverged = 0;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", only);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            if (!strcmp(t, "failed"))
                want_failed = 1;
            else if (!strcmp(t, "missing"))
                want_missing = 1;
            else if (!strcmp(t, "diverged"))
                want_diverged = 1;
            else {
                fprintf(stderr,
                        "lmdisp resubmit: --only: unknown class '%s' (expected a comma "
                        "list of failed, missing, diverged)\n",
                        t);
                bad = 1;
            }
        }
    }
    if (help || bad || npos != 1) {
        fprintf(
            help ? stdout : stderr,
            "usage: lmdisp resubmit DIR [--only failed,missing,diverged] [--throttle K]\n"
            "                           [--cells-per-task N] [--dry-run] [--force] [--templates "
            "TDIR]\n\n"
            "Submits a new array of just the cells of DIR's manifest that did not finish:\n"
            "  missing   never started, or stopped before the end (resumes from its checkpoint)\n"
            "  failed    ended with an error (resumes from its newest checkpoint)\n"
            "  diverged  loss became NaN/inf (its state is moved aside; it resumes from its\n"
            "            newest checkpoint, so it only helps if something changed)\n"
            "Default: --only failed,missing. Finished cells are never retrained. Refuses while\n"
            "tasks of the study are still queued or running in Slurm, unless --force.\n"
            "Then an aggregation job rewrites DIR/study.h5.\n");
        return help ? 0 : 2;
    }
    if (lmd_mstudy_dir_is(pos[0])) /* kind: measure (runner/meassubmit.c) */
        return lmd_mstudy_resubmit(pos[0], templates, throttle, cpt, dry, force, want_failed,
                                   want_missing);
    char dir[PATH_MAX], man[PATH_MAX + 16];
    if (absolute(pos[0], dir, sizeof dir) || !lmd_slurm_path_ok(dir)) {
        fprintf(stderr, "lmdisp resubmit: %s: not a usable study directory path\n", pos[0]);
        return 2;
    }
    lmd_spec spec;
    lmd_err err = {{0}};
    snprintf(man, sizeof man, "%s/manifest", dir);
    lmd_manifest m0;
    if (lmd_manifest_read(&m0, man, &err)) {
        fprintf(stderr, "lmdisp resubmit: %s (was %s submitted with lmdisp submit?)\n", err.msg,
                dir);
        return 2;
    }
    if (lmd_studydir_load_spec(dir, &spec, &err)) {
        fprintf(stderr, "lmdisp resubmit: %s\n", err.msg);
        lmd_manifest_free(&m0);
        lmd_spec_free(&spec);
        return 2;
    }
    int rc = 0;
    lmd_slurm_res res;
    if (strcmp(m0.spec_sha256, spec.sha256) != 0) {
        fprintf(stderr,
                "lmdisp resubmit: %s/spec.yaml changed since submission (sha256 %.12s, "
                "manifest %.12s); refusing\n",
                dir, spec.sha256, m0.spec_sha256);
        rc = 2;
    } else if (lmd_slurm_resources(&spec, &res, &err)) {
        fprintf(stderr, "lmdisp resubmit: %s\n", err.msg);
        rc = 2;
    }
    /* refuse while tasks are still live: they would race with the new ones */
    if (!rc) rc = lmd_slurm_refuse_live(dir, force);
    size_t *sel = lmd_calloc(m0.n ? m0.n : 1, sizeof *sel);
    size_t n_sel = 0, n_done = 0, n_div_sel = 0;
    for (size_t i = 0; !rc && i < m0.n; i++) {
        const lmd_cell *c = &spec.cells[m0.e[i].index];
        if (m0.e[i].index >= spec.n_cells || strcmp(c->id, m0.e[i].id) != 0) {
            fprintf(stderr, "lmdisp resubmit: manifest cell %s is not in %s/spec.yaml\n",
                    m0.e[i].id, dir);
            rc = 2;
            break;
        }
        char cdir[PATH_MAX + 200], s[32] = "";
        int64_t step;
        lmd_pathf(cdir, "%s/cells/%s", dir, c->id);
        lmd_cell_finished(cdir, s, sizeof s, &step);
        int take = 0;
        if (!strcmp(s, "done"))
            n_done++;
        else if (!strcmp(s, "diverged"))
            take = want_diverged, n_div_sel += (size_t)take;
        else if (!strcmp(s, "failed"))
            take = want_failed;
        else
            take = want_missing;
        if (take) sel[n_sel++] = c->index;
    }
    if (!rc && n_sel == 0) {
        printf("lmdisp resubmit: nothing to resubmit in %s (%zu of %zu cells done)\n", dir, n_done,
               m0.n);
    } else if (!rc) {
        /* the next round number: one past every round submitted so far */
        lmd_slurm_job *jobs;
        size_t n_jobs;
        int round = 1;
        if (lmd_slurm_jobs_read(dir, &jobs, &n_jobs) == 0)
            for (size_t j = 0; j < n_jobs; j++)
                if (jobs[j].round >= round) round = jobs[j].round + 1;
        free(jobs);
        char rman[PATH_MAX + 64];
        for (;; round++) { /* skip rounds whose manifest exists (e.g. a failed sbatch) */
            snprintf(rman, sizeof rman, "%s/slurm/resubmit-%d.manifest", dir, round);
            if (access(rman, F_OK) != 0) break;
        }
        lmd_manifest m;
        lmd_manifest_build(&m, &spec, sel, n_sel, cpt, round);
        printf("study %s: resubmitting %zu of %zu cells (%zu done) as round %d: %d array task(s)\n",
               spec.name, n_sel, m0.n, n_done, round, m.n_tasks);
        print_table(&spec, &m);
        if (!dry) {
            if (make_dirs(dir, &err) || lmd_manifest_write(&m, rman, &err)) {
                fprintf(stderr, "lmdisp resubmit: %s\n", err.msg);
                rc = 1;
            }
            /* a diverged cell's state would make the runner skip it: move it aside */
            for (size_t i = 0; !rc && n_div_sel && i < n_sel; i++) {
                char cdir[PATH_MAX + 200], s[32] = "", from[PATH_MAX + 300], to[PATH_MAX + 300];
                int64_t step;
                if (lmd_path(cdir, sizeof cdir, &err, "%s/cells/%s", dir, spec.cells[sel[i]].id)) {
                    fprintf(stderr, "lmdisp resubmit: %s\n", err.msg);
                    rc = 1;
                    break;
                }
                lmd_cell_finished(cdir, s, sizeof s, &step);
                if (strcmp(s, "diverged") != 0) continue;
                if (lmd_path(from, sizeof from, &err, "%s/state", cdir) ||
                    lmd_path(to, sizeof to, &err, "%s/state.diverged-round%d", cdir, round)) {
                    fprintf(stderr, "lmdisp resubmit: %s\n", err.msg);
                    rc = 1;
                } else if (rename(from, to) != 0) {
                    fprintf(stderr, "lmdisp resubmit: cannot move %s aside: %s\n", from,
                            strerror(errno));
                    rc = 1;
                }
            }
        }
        submit_opts o = {dir, templates, throttle ? throttle : res.throttle, dry, rman};
        int n_sub = 0;
        if (!rc && submit_round(&spec, &res, &m, &o, &n_sub, &err)) {
            fprintf(stderr, "lmdisp resubmit: %s\n", err.msg);
            rc = 1;
            forget_manifest("resubmit", rman, n_sub, dry);
        }
        if (!rc && dry) printf("dry run: nothing written, nothing submitted\n");
        lmd_manifest_free(&m);
    }
    free(sel);
    lmd_manifest_free(&m0);
    lmd_spec_free(&spec);
    return rc;
}

/* For other kinds of studies (runner/meassubmit.c): one round, as submit_round. */
int lmd_slurm_submit_round(const lmd_slurm_res *res, const lmd_manifest *m, const char *dir,
                           const char *templates, int throttle, int dry, const char *manifest,
                           int *n_submitted, lmd_err *err) {
    submit_opts o = {dir, templates, throttle, dry, manifest};
    return submit_round(NULL, res, m, &o, n_submitted, err);
}
