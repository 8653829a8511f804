/* cmd_run.c — `mpirun -np P lmdisp run SPEC [--out DIR]`: runs every cell of a study.
 *
 * Scheduling: cells are ordered most expensive first (estimated FLOPs, ties by grid index).
 * Ranks form groups of `ranks_per_model`; the leader of each group claims the next cell with
 * an atomic fetch-and-add on a counter held by world rank 0 (MPI one-sided), so any rank count
 * works and uneven cells don't leave ranks idle. With `ranks_per_model: auto`, a moldable plan
 * (runner/schedule.h) gives each cell a group size and the groups of each size claim from
 * their own queue. A cell's numbers depend only on the spec and its seed (and on the group
 * size, unless train.shards makes them independent of it), never on which rank runs it.
 * Finished cells (state done or diverged) are skipped; unfinished ones resume from their newest
 * checkpoint. On SIGINT/SIGUSR1/SIGTERM each running cell checkpoints at its next step boundary
 * and the run exits with code 3 (LMD_EXIT_INTERRUPTED). Rank 0 holds DIR/lock while it runs
 * (runner/studydir.h) and refuses a spec that would change the study already in DIR. */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cell.h"
#include "commands.h"
#include "measrun.h"
#include "run.h"
#include "schedule.h"
#include "slurm.h"
#include "spec.h"
#include "spec_kd.h"
#include "study.h"
#include "studydir.h"
#include "util.h"
#include "mpicheck.h"

/* Set by SIGUSR1, SIGTERM and SIGINT; polled at step boundaries (the only globals). */
static volatile sig_atomic_t g_stop = 0;

/* A first Ctrl-C asks for a clean stop at the next step boundary; a second one ends the
 * process at once (the default action), for a user who cannot wait for the checkpoint. */
static void on_signal(int sig) {
    if (sig == SIGINT && g_stop) {
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    g_stop = 1;
}

/* Installed before MPI_Init, so a signal during start-up is a clean stop, not a kill. */
static void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGUSR1, SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            fprintf(stderr,
                    "lmdisp run: warning: cannot install the handler of signal %d: %s; "
                    "that signal will kill the run without a checkpoint\n",
                    sigs[i], strerror(errno));
}

static void usage(FILE *f) {
    fprintf(
        f, "usage: mpirun -np P lmdisp run SPEC.yaml [--out DIR]\n"
           "       mpirun -np P lmdisp run --out DIR --array-task I [--manifest FILE]\n"
           "\n"
           "Runs every cell of the study (train, track from step 0, checkpoints) and writes\n"
           "DIR/study.h5. Default DIR: results/<spec name>. Running again skips finished cells\n"
           "and resumes unfinished ones from their newest checkpoint.\n"
           "With --array-task (what the scripts of `lmdisp submit` run): only the cells of task I\n"
           "of the manifest (default DIR/manifest), from the frozen DIR/spec.yaml; no study.h5\n"
           "(the aggregation job writes it).\n"
           "A measurement spec (kind: measure, docs/SPEC.md) measures its model x dataset\n"
           "cells instead (no training); a rerun skips the measured ones.\n"
           "Exit codes: 0 all cells finished (done or diverged), 1 a cell failed,\n"
           "2 bad spec or usage (also: DIR holds a different study, or is locked by another\n"
           "run), 3 interrupted by SIGINT (Ctrl-C), SIGTERM or SIGUSR1 (checkpoints saved; a\n"
           "second Ctrl-C kills at once).\n");
}

/* Counters in the window at world rank 0: progress, then one claim counter per size class. */
enum { CTR_DONE = 0, CTR_MFLOP_DONE, CTR_CLAIMED, CTR_N, CTR_CLASS0 = CTR_N };

typedef struct {
    MPI_Win win;
    double t0, last_print;
    size_t n_cells;
    double total_mflop;
    int world_rank;
} progress_ctx;

static void read_counters(progress_ctx *p, int64_t c[CTR_N]) {
    int64_t zero = 0;
    for (int i = 0; i < CTR_N; i++)
        LMD_MPI(MPI_Fetch_and_op(&zero, &c[i], MPI_INT64_T, 0, i, MPI_NO_OP, p->win));
    LMD_MPI(MPI_Win_flush(0, p->win));
}

static void print_progress(progress_ctx *p, int force) {
    double now = lmd_now();
    if (!force && now - p->last_print < 10.0) return;
    p->last_print = now;
    int64_t c[CTR_N];
    read_counters(p, c);
    int64_t claimed = c[CTR_CLAIMED] < (int64_t)p->n_cells ? c[CTR_CLAIMED] : (int64_t)p->n_cells;
    int64_t done = c[CTR_DONE];
    double el = now - p->t0,
           frac = p->total_mflop > 0 ? (double)c[CTR_MFLOP_DONE] / p->total_mflop : 0;
    char eta[64] = "?";
    if (frac > 0.01) snprintf(eta, sizeof eta, "%.0fs", el * (1.0 - frac) / frac);
    printf("[run %6.0fs] cells: %lld done, %lld running, %lld pending; ETA %s\n", el,
           (long long)done, (long long)(claimed - done), (long long)(p->n_cells - claimed), eta);
    fflush(stdout);
}

static void tick(void *ctx, int64_t step, int64_t total) {
    (void)step;
    (void)total;
    progress_ctx *p = ctx;
    if (p->world_rank == 0) print_progress(p, 0);
}

/* Data cache: cells with the same data settings share one load. */
typedef struct {
    char key[5000];
    lmd_tokens toks;
    lmd_span train, val;
    int *eval_inputs;
    int eval_n, eval_T;
    int loaded;
} data_cache;

static int data_key(const lmd_cell *c, char *buf, size_t n) {
    return snprintf(buf, n, "%d|%s|%d|%llu|%lld|%.17g|%d|%d|%d|%d", (int)c->data.source,
                    c->data.resolved ? c->data.resolved : "", c->data.vocab,
                    (unsigned long long)c->data.synthetic_seed, (long long)c->data.synthetic_tokens,
                    c->data.val_fraction, c->train.B, c->train.T, c->tracking.eval_sequences,
                    c->tracking.eval_seq_len);
}

static int get_data(data_cache *dc, const lmd_cell *c, lmd_err *err) {
    char key[sizeof dc->key];
    data_key(c, key, sizeof key);
    if (dc->loaded && !strcmp(key, dc->key)) return 0;
    if (dc->loaded) {
        lmd_tokens_free(&dc->toks);
        free(dc->eval_inputs);
        dc->loaded = 0;
    }
    if (lmd_cell_load_data(c, &dc->toks, err)) return -1;
    if (lmd_data_split(&dc->toks, c->data.val_fraction, c->train.B, c->train.T, &dc->train,
                       &dc->val, err) ||
        lmd_eval_windows(&dc->val, c->tracking.eval_sequences, c->tracking.eval_seq_len,
                         &dc->eval_inputs, err)) {
        lmd_tokens_free(&dc->toks);
        return -1;
    }
    snprintf(dc->key, sizeof dc->key, "%s", key);
    dc->loaded = 1;
    return 0;
}

static void cell_job(const lmd_spec *spec, const lmd_cell *c, const char *out, lmd_cell_job *job,
                     char *settings) {
    memset(job, 0, sizeof *job);
    snprintf(job->id, sizeof job->id, "%s", c->id);
    snprintf(job->dir, sizeof job->dir, "%s/cells/%s", out, c->id);
    job->cfg = c->cfg;
    job->opts = c->train;
    job->track_steps = c->tracking.steps;
    job->n_track = c->tracking.n_steps;
    job->eval_sequences = c->tracking.eval_sequences;
    job->eval_seq_len = c->tracking.eval_seq_len;
    job->hist_bins = c->tracking.hist_bins;
    job->val_batches = LMD_VAL_BATCHES;
    job->keep_checkpoints = c->tracking.save_checkpoints;
    job->settings = settings;
    job->init = c->init;
    job->save_final = c->kd.is_teacher;
    if (c->kd.on) {
        job->opts.kd.alpha = c->kd.alpha;
        job->opts.kd.temperature = c->kd.temperature;
        job->teacher = c->kd.model ? c->kd.model : job->teacher_buf;
    }
    job->eval_tasks = (const char *const *)spec->eval_tasks; /* tracking.eval_tasks */
    job->n_eval_tasks = spec->n_eval_tasks;
    job->eval_tokenizer = c->data.tokenizer_resolved;
}

/* A student of a teacher cell loads the teacher's last checkpoint; the runner runs the cells
 * level by level (spec_kd.h), so the teacher has finished unless it failed or diverged. */
static int teacher_cell_path(const lmd_spec *spec, const lmd_cell *c, const char *out,
                             lmd_cell_job *job, lmd_err *err) {
    if (!c->kd.on || c->kd.model) return 0;
    const lmd_cell *t = &spec->cells[c->kd.teacher];
    char dir[4200], st[64] = "";
    int64_t step;
    lmd_pathf(dir, "%s/cells/%s", out, t->id);
    int fin = lmd_cell_finished(dir, st, sizeof st, &step);
    if (!fin || strcmp(st, "done"))
        return lmd_errf(err, "its teacher cell %s is %s, not done: the student cannot start", t->id,
                        st[0] ? st : "not run");
    lmd_cell_ckpt_path(job->teacher_buf, sizeof job->teacher_buf, dir, t->train.steps);
    job->teacher = job->teacher_buf;
    return 0;
}

/* Which groups exist and which cells each claims from. Classes k = 0..n_classes-1: n_groups[k]
 * groups of size[k] ranks (consecutive world ranks, class by class); the groups of class k
 * claim, most expensive first, from cells[start[k] .. start[k+1]) (indices into spec->cells). */
typedef struct {
    int n_classes;
    int *size;
    int64_t *n_groups;
    int64_t *start;
    int64_t *cells;
    int64_t n_cells;
} run_plan;

static void run_plan_free(run_plan *p) {
    free(p->size), free(p->n_groups), free(p->start), free(p->cells);
    memset(p, 0, sizeof *p);
}

static void run_plan_alloc(run_plan *p, int n_classes, int64_t n_cells) {
    p->n_classes = n_classes;
    p->n_cells = n_cells;
    p->size = lmd_calloc((size_t)n_classes, sizeof *p->size);
    p->n_groups = lmd_calloc((size_t)n_classes, sizeof *p->n_groups);
    p->start = lmd_calloc((size_t)n_classes + 1, sizeof *p->start);
    p->cells = lmd_calloc(n_cells ? (size_t)n_cells : 1, sizeof *p->cells);
}

/* ranks_per_model: auto. Rank 0 plans: the unfinished cells, sizes 1, 2, 4, ... <= P that
 * divide the cell's train.shards (other sizes would change its numbers), modeled times from
 * the cost model (runner/schedule.c), lmd_sched_plan_moldable with a 10 % model error; the plan
 * is broadcast so every rank forms the same groups. Finished cells are left out (nothing to
 * do). Returns 0, or -1 with a message on rank 0. */
static int plan_auto(const lmd_spec *spec, const char *out, const size_t *subset, size_t n_subset,
                     int wsize, run_plan *rp, lmd_err *err) {
    int wrank;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    int fail = 0;
    int64_t hdr[2] = {0, 0}; /* classes, cells */
    if (wrank == 0) {
        int sizes[32], ns = 0;
        for (int g = 1; g <= wsize && ns < 31; g *= 2) sizes[ns++] = g;
        size_t *jobs = lmd_calloc(n_subset ? n_subset : 1, sizeof *jobs), n = 0;
        for (size_t k = 0; k < n_subset; k++) {
            const lmd_cell *c = &spec->cells[subset[k]];
            char dir[4200], st[64];
            int64_t st_step;
            lmd_pathf(dir, "%s/cells/%s", out, c->id);
            if (!lmd_cell_finished(dir, st, sizeof st, &st_step)) jobs[n++] = subset[k];
        }
        double *time = lmd_calloc(n > 0 ? n * (size_t)ns : 1, sizeof *time);
        lmd_cost_model cm = lmd_cost_model_default();
        for (size_t j = 0; j < n; j++) {
            const lmd_cell *c = &spec->cells[jobs[j]];
            for (int k = 0; k < ns; k++)
                time[j * ns + k] =
                    c->train.shards % sizes[k] == 0
                        ? lmd_cost_cell_seconds(&cm, c, sizes[k], spec->threads_per_rank)
                        : INFINITY;
        }
        lmd_sched_plan plan;
        memset(&plan, 0, sizeof plan);
        if (n && lmd_sched_plan_moldable(time, n, sizes, ns, wsize, 0.1, &plan, err)) {
            fail = 1;
        } else {
            /* keep the classes that have cells */
            int nc = 0;
            for (int k = 0; k < plan.n_sizes && n; k++)
                if (plan.class_start[k + 1] > plan.class_start[k]) nc++;
            run_plan_alloc(rp, nc, (int64_t)n);
            int q = 0;
            for (int k = 0; k < plan.n_sizes && n; k++) {
                if (plan.class_start[k + 1] == plan.class_start[k]) continue;
                if (plan.n_groups[k] == 0) {
                    fail =
                        lmd_errf(err, "plan without groups for its %zu cell(s) of size %d",
                                 plan.class_start[k + 1] - plan.class_start[k], plan.sizes[k]) != 0;
                    break;
                }
                rp->size[q] = plan.sizes[k];
                rp->n_groups[q] = (int64_t)plan.n_groups[k];
                rp->start[q] = (int64_t)plan.class_start[k];
                q++;
            }
            rp->start[nc] = (int64_t)n;
            for (size_t j = 0; j < n; j++) rp->cells[j] = (int64_t)jobs[plan.order[j]];
            hdr[0] = nc, hdr[1] = (int64_t)n;
        }
        lmd_sched_plan_free(&plan);
        free(time);
        free(jobs);
    }
    LMD_MPI(MPI_Bcast(&fail, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (fail) {
        if (wrank == 0) run_plan_free(rp);
        return -1;
    }
    LMD_MPI(MPI_Bcast(hdr, 2, MPI_INT64_T, 0, MPI_COMM_WORLD));
    if (wrank != 0) run_plan_alloc(rp, (int)hdr[0], hdr[1]);
    int nc = (int)hdr[0];
    if (nc > 0) {
        LMD_MPI(MPI_Bcast(rp->size, nc, MPI_INT, 0, MPI_COMM_WORLD));
        LMD_MPI(MPI_Bcast(rp->n_groups, nc, MPI_INT64_T, 0, MPI_COMM_WORLD));
        LMD_MPI(MPI_Bcast(rp->start, nc + 1, MPI_INT64_T, 0, MPI_COMM_WORLD));
    }
    if (hdr[1] > 0) LMD_MPI(MPI_Bcast(rp->cells, (int)hdr[1], MPI_INT64_T, 0, MPI_COMM_WORLD));
    return 0;
}

/* Every rank returns the same value: max over ranks. */
static int agree(int v) {
    int out = v;
    LMD_MPI(MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    return out;
}

int lmd_run_cells(const lmd_spec *spec, const char *out, const size_t *subset, size_t n_subset,
                  int *any_failed) {
    int wrank, wsize;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    LMD_MPI(MPI_Comm_size(MPI_COMM_WORLD, &wsize));
    int R = spec->ranks_per_model; /* 0: auto */
    lmd_err err = {{0}};
    *any_failed = 0;

    if (R > 0 && wsize % R != 0) {
        if (wrank == 0)
            fprintf(stderr,
                    "lmdisp run: resources.ranks_per_model is %d, so the rank count must be a "
                    "multiple of it (got %d ranks)\n",
                    R, wsize);
        return 2;
    }
    /* refuse changed settings of existing cells before anything runs */
    int bad = 0;
    if (wrank == 0) {
        for (size_t k = 0; k < n_subset && !bad; k++) {
            const lmd_cell *c = &spec->cells[subset[k]];
            char *settings = lmd_cell_settings(c);
            lmd_cell_job job;
            cell_job(spec, c, out, &job, settings);
            if (lmd_cell_check_settings(&job, &err)) {
                fprintf(stderr, "lmdisp run: %s\n", err.msg);
                bad = 1;
            }
            free(settings);
        }
    }
    if (agree(bad)) return 2;

    /* The groups and what each claims. Fixed ranks_per_model R: P/R groups of R ranks, all
     * cells most expensive first (ties by grid index; docs/SCHEDULING.md). auto: a plan. */
    run_plan rp;
    memset(&rp, 0, sizeof rp);
    if (R > 0) {
        run_plan_alloc(&rp, 1, (int64_t)n_subset);
        size_t *order = lmd_calloc(n_subset ? n_subset : 1, sizeof *order);
        lmd_schedule_order(spec, subset, n_subset, order);
        for (size_t k = 0; k < n_subset; k++) rp.cells[k] = (int64_t)order[k];
        free(order);
        rp.size[0] = R, rp.n_groups[0] = wsize / R, rp.start[0] = 0,
        rp.start[1] = (int64_t)n_subset;
    } else if (plan_auto(spec, out, subset, n_subset, wsize, &rp, &err)) {
        if (wrank == 0) fprintf(stderr, "lmdisp run: ranks_per_model auto: %s\n", err.msg);
        return 2;
    }
    /* this rank's class and group: classes take consecutive ranks, largest groups first (so a
     * group of 8 starts at a multiple of 8 and stays in a node that holds a multiple of 8
     * ranks); ranks the plan does not use idle */
    int my_class = -1, color = MPI_UNDEFINED;
    {
        int64_t first = 0, gid = 0;
        for (int k = rp.n_classes - 1; k >= 0 && my_class < 0; k--) {
            int64_t span = rp.n_groups[k] * rp.size[k];
            if (wrank < first + span) {
                my_class = k;
                color = (int)(gid + (wrank - first) / rp.size[k]);
            }
            first += span;
            gid += rp.n_groups[k];
        }
    }
    MPI_Comm group = MPI_COMM_NULL;
    LMD_MPI(MPI_Comm_split(MPI_COMM_WORLD, color, wrank, &group));
    int grank = 0;
    if (group != MPI_COMM_NULL) LMD_MPI(MPI_Comm_rank(group, &grank));

    int64_t *base = NULL;
    progress_ctx prog;
    memset(&prog, 0, sizeof prog);
    int n_ctr = CTR_CLASS0 + rp.n_classes;
    LMD_MPI(MPI_Win_allocate(wrank == 0 ? (MPI_Aint)(n_ctr * sizeof(int64_t)) : 0, sizeof(int64_t),
                             MPI_INFO_NULL, MPI_COMM_WORLD, &base, &prog.win));
    if (wrank == 0) memset(base, 0, (size_t)n_ctr * sizeof(int64_t));
    LMD_MPI(MPI_Barrier(MPI_COMM_WORLD));
    LMD_MPI(MPI_Win_lock_all(0, prog.win));
    prog.t0 = prog.last_print = lmd_now();
    prog.n_cells = (size_t)rp.n_cells;
    prog.world_rank = wrank;
    for (int64_t k = 0; k < rp.n_cells; k++)
        prog.total_mflop += spec->cells[rp.cells[k]].flops / 1e6;
    if (wrank == 0) {
        if (R > 0) {
            printf("lmdisp run: %zu cells on %d rank(s) (%d group(s) of %d), output %s\n", n_subset,
                   wsize, wsize / R, R, out);
        } else {
            int64_t used = 0;
            printf("lmdisp run: %zu cells (%lld to run) on %d rank(s), ranks_per_model auto: ",
                   n_subset, (long long)rp.n_cells, wsize);
            for (int k = 0; k < rp.n_classes; k++) {
                printf("%s%lld group(s) of %d for %lld cell(s)", k ? " + " : "",
                       (long long)rp.n_groups[k], rp.size[k],
                       (long long)(rp.start[k + 1] - rp.start[k]));
                used += rp.n_groups[k] * rp.size[k];
            }
            if (!rp.n_classes) printf("nothing to run");
            if (used < wsize) printf(" (%lld rank(s) idle)", (long long)(wsize - used));
            printf(", output %s\n", out);
        }
        fflush(stdout);
    }

    data_cache dc;
    memset(&dc, 0, sizeof dc);
    int failed = 0, interrupted = 0;
    for (; group != MPI_COMM_NULL;) {
        int64_t k = 0, cls_n = rp.start[my_class + 1] - rp.start[my_class];
        if (grank == 0) {
            int64_t one = 1, old;
            LMD_MPI(MPI_Fetch_and_op(&one, &k, MPI_INT64_T, 0, CTR_CLASS0 + my_class, MPI_SUM,
                                     prog.win));
            if (k < cls_n)
                LMD_MPI(
                    MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, CTR_CLAIMED, MPI_SUM, prog.win));
            LMD_MPI(MPI_Win_flush(0, prog.win));
        }
        LMD_MPI(MPI_Bcast(&k, 1, MPI_INT64_T, 0, group));
        if (k >= cls_n) break;
        const lmd_cell *c = &spec->cells[rp.cells[rp.start[my_class] + k]];
        char *settings = lmd_cell_settings(c);
        lmd_cell_job job;
        cell_job(spec, c, out, &job, settings);
        char st[64];
        int64_t st_step;
        int finished = lmd_cell_finished(job.dir, st, sizeof st, &st_step);
        lmd_cell_status cs = CELL_DONE;
        if (!finished && teacher_cell_path(spec, c, out, &job, &err)) {
            if (grank == 0) fprintf(stderr, "lmdisp run: cell %s: %s\n", c->id, err.msg);
            cs = CELL_FAILED;
        } else if (!finished) {
            int derr = get_data(&dc, c, &err);
            int any_derr = derr;
            LMD_MPI(MPI_Allreduce(&derr, &any_derr, 1, MPI_INT, MPI_MAX, group));
            if (any_derr) {
                if (grank == 0) fprintf(stderr, "lmdisp run: cell %s: %s\n", c->id, err.msg);
                cs = CELL_FAILED;
            } else {
                lmd_cell_data data = {dc.train, dc.val, dc.eval_inputs};
                gpt_set_threads(spec->threads_per_rank);
                cs = lmd_cell_run(&job, &data, group, &g_stop, tick, &prog, &err);
                if (cs == CELL_FAILED && grank == 0)
                    fprintf(stderr, "lmdisp run: cell %s failed: %s\n", c->id, err.msg);
            }
        }
        free(settings);
        if (cs == CELL_FAILED) failed = 1;
        if (cs == CELL_INTERRUPTED) {
            interrupted = 1;
            break;
        }
        if (grank == 0) {
            int64_t one = 1, mf = (int64_t)(c->flops / 1e6), old;
            LMD_MPI(MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, CTR_DONE, MPI_SUM, prog.win));
            LMD_MPI(MPI_Fetch_and_op(&mf, &old, MPI_INT64_T, 0, CTR_MFLOP_DONE, MPI_SUM, prog.win));
            LMD_MPI(MPI_Win_flush(0, prog.win));
        }
        if (wrank == 0) print_progress(&prog, 0);
        if (g_stop) {
            interrupted = 1;
            break;
        }
    }
    if (dc.loaded) {
        lmd_tokens_free(&dc.toks);
        free(dc.eval_inputs);
    }
    LMD_MPI(MPI_Barrier(MPI_COMM_WORLD)); /* every group has finished: the counters are final */
    if (wrank == 0) print_progress(&prog, 1);
    LMD_MPI(MPI_Win_unlock_all(prog.win));
    LMD_MPI(MPI_Win_free(&prog.win));
    if (group != MPI_COMM_NULL) LMD_MPI(MPI_Comm_free(&group));
    run_plan_free(&rp);
    *any_failed = agree(failed);
    return agree(interrupted) ? LMD_EXIT_INTERRUPTED : 0;
}

/* lmd_run_cells level by level (distillation teachers before their students, spec_kd.h): all
 * ranks finish a level before the next starts, so no student ever waits on a rank. */
static int lmd_run_levels(const lmd_spec *spec, const char *out, const size_t *subset, size_t n,
                          int *any_failed) {
    int max_level = 0, status = 0;
    size_t *lv = lmd_calloc(n ? n : 1, sizeof *lv);
    lmd_spec_level_cells(spec, subset, n, 0, lv, &max_level);
    *any_failed = 0;
    for (int level = 0; level <= max_level && status == 0; level++) {
        size_t k = lmd_spec_level_cells(spec, subset, n, level, lv, NULL);
        if (!k) continue;
        int failed = 0;
        status = lmd_run_cells(spec, out, lv, k, &failed);
        if (failed) *any_failed = 1;
    }
    free(lv);
    return status;
}

/* --array-task: the cells of one manifest task, from the frozen DIR/spec.yaml. */
static int run_array_task(const char *out, int task, const char *manifest, int wrank) {
    lmd_spec spec;
    lmd_err err = {{0}};
    char man[4200];
    snprintf(man, sizeof man, "%s/manifest", out);
    if (!manifest) manifest = man;
    size_t *cells = NULL;
    long n = -1;
    lmd_manifest m;
    memset(&m, 0, sizeof m);
    int rc = lmd_studydir_load_spec(out, &spec, &err);
    if (!rc) rc = lmd_manifest_read(&m, manifest, &err);
    if (!rc) {
        n = lmd_manifest_task_cells(&m, &spec, task, &cells, &err);
        rc = n < 0;
    }
    if (agree(rc != 0)) {
        if (wrank == 0)
            fprintf(stderr, "lmdisp run: array task %d: %s\n", task,
                    rc ? err.msg : "failed on another rank");
        free(cells);
        lmd_manifest_free(&m);
        lmd_spec_free(&spec);
        return 2;
    }
    if (wrank == 0) {
        printf("lmdisp run: array task %d of %s (round %d): %ld cell(s):", task, manifest, m.round,
               n);
        for (long k = 0; k < n; k++) printf(" %s", spec.cells[cells[k]].id);
        printf("\n");
        fflush(stdout);
    }
    int failed = 0;
    int status = lmd_run_levels(&spec, out, cells, (size_t)n, &failed);
    if (status == 0 && failed) status = 1;
    if (wrank == 0)
        printf("lmdisp run: array task %d %s\n", task,
               status == 0                      ? "finished"
               : status == 1                    ? "finished; a cell failed"
               : status == LMD_EXIT_INTERRUPTED ? "interrupted; checkpoints saved"
                                                : "stopped");
    free(cells);
    lmd_manifest_free(&m);
    lmd_spec_free(&spec);
    return status;
}

int cmd_run(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "run", argc, argv);
    int help = lmd_args_flag(&a, "help");
    const char *out = lmd_args_str(&a, "out");
    const char *manifest = lmd_args_str(&a, "manifest");
    int task = -1;
    lmd_args_int(&a, "array-task", &task, 0, 100000000);
    const char *pos[2];
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (help) {
        usage(stdout);
        return 0;
    }
    int array_mode = task >= 0;
    if (array_mode ? (npos != 0 || !out) : (npos != 1 || manifest)) bad = 1;
    install_signal_handlers();
    if (lmd_mpi_init("run")) return 1;
    int wrank;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    if (bad) {
        if (wrank == 0) usage(stderr);
        MPI_Finalize();
        return 2;
    }
    lmd_err err = {{0}};
    if (array_mode && lmd_mstudy_dir_is(out)) { /* kind: measure (runner/measrun.c) */
        int status = lmd_mstudy_run_task(out, task, manifest, &g_stop);
        MPI_Finalize();
        return status;
    }
    if (array_mode) {
        /* array tasks of one study run side by side: a shared lock, which keeps a plain
         * `lmdisp run` or `aggregate` of the same directory out while they work */
        int lock = -1;
        if (wrank == 0) lock = lmd_studydir_lock(out, 0, "lmdisp run --array-task", &err);
        if (agree(wrank == 0 && lock < 0)) {
            if (wrank == 0) fprintf(stderr, "lmdisp run: array task %d: %s\n", task, err.msg);
            MPI_Finalize();
            return 2;
        }
        int status = run_array_task(out, task, manifest, wrank);
        lmd_studydir_unlock(lock);
        MPI_Finalize();
        return status;
    }
    if (lmd_mspec_detect(pos[0])) { /* kind: measure (runner/measrun.c) */
        int status = lmd_mstudy_run(pos[0], out, &g_stop);
        MPI_Finalize();
        return status;
    }
    lmd_spec spec;
    int rc = lmd_spec_load(&spec, pos[0], &err);
    if (agree(rc != 0)) {
        if (wrank == 0)
            fprintf(stderr, "lmdisp run: %s\n",
                    rc ? err.msg : "spec failed to load on another rank");
        lmd_spec_free(&spec);
        MPI_Finalize();
        return 2;
    }
    char outbuf[4096];
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "results/%s", spec.name);
        out = outbuf;
    }
    /* Rank 0 alone touches the directory: the existing study must fit the spec (refused:
     * exit 2 with nothing changed), then the lock, then the stale temporary files of a killed
     * run, then the spec copy for status and aggregate. */
    int lock = -1, fail = 0;
    if (wrank == 0) {
        char note[1024];
        int chk = lmd_studydir_check_paths(out, &spec, &err)
                      ? -1
                      : lmd_studydir_check_spec(out, &spec, note, sizeof note, &err);
        if (chk < 0) {
            fail = 2;
        } else if (lmd_mkdirs(out, &err)) {
            fail = 1;
        } else if ((lock = lmd_studydir_lock(out, 1, "lmdisp run", &err)) < 0) {
            fail = 2;
        } else if (lmd_studydir_check_spec(out, &spec, note, sizeof note, &err) < 0) {
            fail = 2; /* another run changed it between the first check and the lock */
        } else if (lmd_studydir_clean_tmp(out, stdout, &err) < 0 ||
                   lmd_studydir_save_spec(out, &spec, &err)) {
            fail = 1;
        } else if (chk == 1) {
            printf("lmdisp run: %s\n", note);
        }
        if (fail) fprintf(stderr, "lmdisp run: %s\n", err.msg);
        fflush(stdout);
    }
    LMD_MPI(MPI_Bcast(&fail, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (fail) {
        lmd_studydir_unlock(lock);
        lmd_spec_free(&spec);
        MPI_Finalize();
        return fail;
    }
    size_t *all = lmd_calloc(spec.n_cells, sizeof *all);
    for (size_t i = 0; i < spec.n_cells; i++) all[i] = i;
    double t_start = lmd_now();
    int failed = 0;
    int status = lmd_run_levels(&spec, out, all, spec.n_cells, &failed);
    free(all);
    if (status == 0) {
        int serr = lmd_study_write(&spec, out, t_start, MPI_COMM_WORLD, &err);
        if (serr && wrank == 0) fprintf(stderr, "lmdisp run: %s\n", err.msg);
        if (serr) status = 1;
        if (!serr && wrank == 0) lmd_study_print_summary(out, stdout);
    }
    if (status == 0 && failed) status = 1;
    lmd_studydir_unlock(lock);
    lmd_spec_free(&spec);
    MPI_Finalize();
    return status;
}
