/* engine.c — the study engine (engine.h): the claim loop over groups of ranks, and the
 * training study on top of it (plan, settings check, data cache, the per-cell run). */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cell.h"
#include "mpicheck.h"
#include "schedule.h"
#include "spec_kd.h"
#include "util.h"

/* ---- the claim loop ---- */

void lmd_engine_plan_free(lmd_engine_plan *p) {
    free(p->size), free(p->n_groups), free(p->start), free(p->cells);
    memset(p, 0, sizeof *p);
}

void lmd_engine_plan_alloc(lmd_engine_plan *p, int n_classes, int64_t n_cells) {
    p->n_classes = n_classes;
    p->n_cells = n_cells;
    p->size = lmd_calloc(n_classes ? (size_t)n_classes : 1, sizeof *p->size);
    p->n_groups = lmd_calloc(n_classes ? (size_t)n_classes : 1, sizeof *p->n_groups);
    p->start = lmd_calloc((size_t)n_classes + 1, sizeof *p->start);
    p->cells = lmd_calloc(n_cells ? (size_t)n_cells : 1, sizeof *p->cells);
}

void lmd_engine_plan_fixed(lmd_engine_plan *p, int size, int64_t n_groups, const size_t *cells,
                           size_t n) {
    lmd_engine_plan_alloc(p, 1, (int64_t)n);
    for (size_t k = 0; k < n; k++) p->cells[k] = (int64_t)cells[k];
    p->size[0] = size, p->n_groups[0] = n_groups, p->start[0] = 0, p->start[1] = (int64_t)n;
}

/* Counters in the window at comm's rank 0: progress, then one claim counter per class. */
enum { CTR_DONE = 0, CTR_WEIGHT_DONE, CTR_CLAIMED, CTR_N, CTR_CLASS0 = CTR_N };

struct lmd_engine {
    const lmd_engine_job *job;
    MPI_Win win;
    int rank;
    double t0, last_print;
    double total_weight;
};

static void read_counters(lmd_engine *e, int64_t c[CTR_N]) {
    int64_t zero = 0;
    for (int i = 0; i < CTR_N; i++)
        LMD_MPI(MPI_Fetch_and_op(&zero, &c[i], MPI_INT64_T, 0, i, MPI_NO_OP, e->win));
    LMD_MPI(MPI_Win_flush(0, e->win));
}

static void print_progress(lmd_engine *e, int force) {
    if (e->rank != 0 || !e->job->label) return;
    double now = lmd_now();
    if (!force && now - e->last_print < 10.0) return;
    e->last_print = now;
    int64_t c[CTR_N];
    read_counters(e, c);
    int64_t n_cells = e->job->plan->n_cells;
    int64_t claimed = c[CTR_CLAIMED] < n_cells ? c[CTR_CLAIMED] : n_cells;
    int64_t done = c[CTR_DONE];
    double el = now - e->t0,
           frac = e->total_weight > 0 ? (double)c[CTR_WEIGHT_DONE] / e->total_weight : 0;
    char eta[64] = "?";
    if (frac > 0.01) snprintf(eta, sizeof eta, "%.0fs", el * (1.0 - frac) / frac);
    printf("[%s %6.0fs] cells: %lld done, %lld running, %lld pending; ETA %s\n", e->job->label, el,
           (long long)done, (long long)(claimed - done), (long long)(n_cells - claimed), eta);
    fflush(stdout);
}

void lmd_engine_progress(lmd_engine *e) { print_progress(e, 0); }

/* the weight counted for a cell: whole units, as the counter holds them */
static int64_t cell_weight(const lmd_engine_job *job, int64_t cell) {
    return job->weight ? (int64_t)job->weight[cell] : 0;
}

int lmd_engine_claim(const lmd_engine_job *job) {
    const lmd_engine_plan *rp = job->plan;
    MPI_Comm comm = job->comm;
    lmd_engine e;
    memset(&e, 0, sizeof e);
    e.job = job;
    LMD_MPI(MPI_Comm_rank(comm, &e.rank));
    /* this rank's class and group (engine.h: class by class, largest groups first) */
    int my_class = -1, color = MPI_UNDEFINED;
    {
        int64_t first = 0, gid = 0;
        for (int k = rp->n_classes - 1; k >= 0 && my_class < 0; k--) {
            int64_t span = rp->n_groups[k] * rp->size[k];
            if (e.rank < first + span) {
                my_class = k;
                color = (int)(gid + (e.rank - first) / rp->size[k]);
            }
            first += span;
            gid += rp->n_groups[k];
        }
    }
    MPI_Comm group = MPI_COMM_NULL;
    LMD_MPI(MPI_Comm_split(comm, color, e.rank, &group));
    int grank = 0;
    if (group != MPI_COMM_NULL) LMD_MPI(MPI_Comm_rank(group, &grank));

    int64_t *base = NULL;
    int n_ctr = CTR_CLASS0 + rp->n_classes;
    LMD_MPI(MPI_Win_allocate(e.rank == 0 ? (MPI_Aint)(n_ctr * sizeof(int64_t)) : 0, sizeof(int64_t),
                             MPI_INFO_NULL, comm, &base, &e.win));
    if (e.rank == 0) memset(base, 0, (size_t)n_ctr * sizeof(int64_t));
    LMD_MPI(MPI_Barrier(comm));
    LMD_MPI(MPI_Win_lock_all(0, e.win));
    e.t0 = e.last_print = lmd_now();
    for (int64_t k = 0; k < rp->n_cells; k++)
        e.total_weight += job->weight ? job->weight[rp->cells[k]] : 0;

    int stopped = 0;
    for (; group != MPI_COMM_NULL;) {
        /* a stop request on any rank of the group: claim nothing more */
        if (lmd_mpi_any(group, job->stop && *job->stop, NULL)) {
            stopped = 1;
            break;
        }
        int64_t k = 0, cls_n = rp->start[my_class + 1] - rp->start[my_class];
        if (grank == 0) {
            int64_t one = 1, old;
            LMD_MPI(
                MPI_Fetch_and_op(&one, &k, MPI_INT64_T, 0, CTR_CLASS0 + my_class, MPI_SUM, e.win));
            if (k < cls_n)
                LMD_MPI(MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, CTR_CLAIMED, MPI_SUM, e.win));
            LMD_MPI(MPI_Win_flush(0, e.win));
        }
        LMD_MPI(MPI_Bcast(&k, 1, MPI_INT64_T, 0, group));
        if (k >= cls_n) break;
        int64_t cell = rp->cells[rp->start[my_class] + k];
        if (job->run(job->ctx, &e, cell, group)) {
            stopped = 1;
            break;
        }
        if (grank == 0) {
            int64_t one = 1, w = cell_weight(job, cell), old;
            LMD_MPI(MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, CTR_DONE, MPI_SUM, e.win));
            LMD_MPI(MPI_Fetch_and_op(&w, &old, MPI_INT64_T, 0, CTR_WEIGHT_DONE, MPI_SUM, e.win));
            LMD_MPI(MPI_Win_flush(0, e.win));
        }
        print_progress(&e, 0);
    }
    LMD_MPI(MPI_Barrier(comm)); /* every group has finished: the counters are final */
    print_progress(&e, 1);
    LMD_MPI(MPI_Win_unlock_all(e.win));
    LMD_MPI(MPI_Win_free(&e.win));
    if (group != MPI_COMM_NULL) LMD_MPI(MPI_Comm_free(&group));
    return lmd_mpi_any(comm, stopped, NULL);
}

/* ---- training studies ---- */

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

/* ranks_per_model: auto. Rank 0 plans: the unfinished cells, sizes 1, 2, 4, ... <= P that
 * divide the cell's train.shards (other sizes would change its numbers), modeled times from
 * the cost model (runner/schedule.c), lmd_sched_plan_moldable with a 10 % model error; the plan
 * is broadcast so every rank forms the same groups. Finished cells are left out (nothing to
 * do). Returns 0, or -1 with a message on rank 0. */
static int plan_auto(const lmd_spec *spec, const char *out, const size_t *subset, size_t n_subset,
                     MPI_Comm comm, lmd_engine_plan *rp, lmd_err *err) {
    int wrank, wsize;
    LMD_MPI(MPI_Comm_rank(comm, &wrank));
    LMD_MPI(MPI_Comm_size(comm, &wsize));
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
            lmd_engine_plan_alloc(rp, nc, (int64_t)n);
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
    LMD_MPI(MPI_Bcast(&fail, 1, MPI_INT, 0, comm));
    if (fail) {
        if (wrank == 0) lmd_engine_plan_free(rp);
        return -1;
    }
    LMD_MPI(MPI_Bcast(hdr, 2, MPI_INT64_T, 0, comm));
    if (wrank != 0) lmd_engine_plan_alloc(rp, (int)hdr[0], hdr[1]);
    int nc = (int)hdr[0];
    if (nc > 0) {
        LMD_MPI(MPI_Bcast(rp->size, nc, MPI_INT, 0, comm));
        LMD_MPI(MPI_Bcast(rp->n_groups, nc, MPI_INT64_T, 0, comm));
        LMD_MPI(MPI_Bcast(rp->start, nc + 1, MPI_INT64_T, 0, comm));
    }
    if (hdr[1] > 0) LMD_MPI(MPI_Bcast(rp->cells, (int)hdr[1], MPI_INT64_T, 0, comm));
    return 0;
}

/* What the cells of one level share while they run (the context of train_cell). */
typedef struct {
    const lmd_spec *spec;
    const char *out;
    volatile sig_atomic_t *stop;
    data_cache dc;
    int failed; /* a cell of this rank's groups failed */
} train_run;

/* lmd_cell_run's tick: a progress line now and then while a cell trains */
static void tick(void *ctx, int64_t step, int64_t total) {
    (void)step;
    (void)total;
    lmd_engine_progress(ctx);
}

/* The cell callback of the claim loop: one training cell on its group, skipped when finished. */
static int train_cell(void *ctx, lmd_engine *e, int64_t cell, MPI_Comm group) {
    train_run *t = ctx;
    const lmd_spec *spec = t->spec;
    int grank;
    LMD_MPI(MPI_Comm_rank(group, &grank));
    lmd_err err = {{0}};
    const lmd_cell *c = &spec->cells[cell];
    char *settings = lmd_cell_settings(c);
    lmd_cell_job job;
    cell_job(spec, c, t->out, &job, settings);
    char st[64];
    int64_t st_step;
    int finished = lmd_cell_finished(job.dir, st, sizeof st, &st_step);
    lmd_cell_status cs = CELL_DONE;
    if (!finished && teacher_cell_path(spec, c, t->out, &job, &err)) {
        if (grank == 0) fprintf(stderr, "lmdisp run: cell %s: %s\n", c->id, err.msg);
        cs = CELL_FAILED;
    } else if (!finished) {
        if (lmd_mpi_any(group, get_data(&t->dc, c, &err) != 0, &err)) {
            if (grank == 0) fprintf(stderr, "lmdisp run: cell %s: %s\n", c->id, err.msg);
            cs = CELL_FAILED;
        } else {
            lmd_cell_data data = {t->dc.train, t->dc.val, t->dc.eval_inputs};
            gpt_set_threads(spec->threads_per_rank);
            cs = lmd_cell_run(&job, &data, group, t->stop, tick, e, &err);
            if (cs == CELL_FAILED && grank == 0)
                fprintf(stderr, "lmdisp run: cell %s failed: %s\n", c->id, err.msg);
        }
    }
    free(settings);
    if (cs == CELL_FAILED) t->failed = 1;
    return cs == CELL_INTERRUPTED;
}

/* One level: the cells subset[0..n_subset) with the claim loop over comm (lmd_engine_run). */
static int run_level(const lmd_spec *spec, const char *out, const size_t *subset, size_t n_subset,
                     MPI_Comm comm, volatile sig_atomic_t *stop, int *any_failed) {
    int wrank, wsize;
    LMD_MPI(MPI_Comm_rank(comm, &wrank));
    LMD_MPI(MPI_Comm_size(comm, &wsize));
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
    if (lmd_mpi_any(comm, bad, NULL)) return 2;

    /* The groups and what each claims. Fixed ranks_per_model R: P/R groups of R ranks, all
     * cells most expensive first (ties by grid index; docs/SCHEDULING.md). auto: a plan. */
    lmd_engine_plan rp;
    memset(&rp, 0, sizeof rp);
    if (R > 0) {
        size_t *order = lmd_calloc(n_subset ? n_subset : 1, sizeof *order);
        lmd_schedule_order(spec, subset, n_subset, order);
        lmd_engine_plan_fixed(&rp, R, wsize / R, order, n_subset);
        free(order);
    } else if (plan_auto(spec, out, subset, n_subset, comm, &rp, &err)) {
        if (wrank == 0) fprintf(stderr, "lmdisp run: ranks_per_model auto: %s\n", err.msg);
        return 2;
    }
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

    /* progress counts MFLOPs, the ETA's unit */
    double *mflop = lmd_calloc(spec->n_cells ? spec->n_cells : 1, sizeof *mflop);
    for (size_t i = 0; i < spec->n_cells; i++) mflop[i] = spec->cells[i].flops / 1e6;
    train_run t;
    memset(&t, 0, sizeof t);
    t.spec = spec, t.out = out, t.stop = stop;
    lmd_engine_job job = {comm, &rp, stop, train_cell, &t, mflop, "run"};
    int interrupted = lmd_engine_claim(&job);
    if (t.dc.loaded) {
        lmd_tokens_free(&t.dc.toks);
        free(t.dc.eval_inputs);
    }
    free(mflop);
    lmd_engine_plan_free(&rp);
    *any_failed = lmd_mpi_any(comm, t.failed, NULL);
    return interrupted ? LMD_EXIT_INTERRUPTED : 0;
}

int lmd_engine_run(const lmd_spec *spec, const char *out, const size_t *subset, size_t n,
                   MPI_Comm comm, volatile sig_atomic_t *stop, int *any_failed) {
    int max_level = 0, status = 0;
    size_t *lv = lmd_calloc(n ? n : 1, sizeof *lv);
    lmd_spec_level_cells(spec, subset, n, 0, lv, &max_level);
    *any_failed = 0;
    for (int level = 0; level <= max_level && status == 0; level++) {
        size_t k = lmd_spec_level_cells(spec, subset, n, level, lv, NULL);
        if (!k) continue;
        int failed = 0;
        status = run_level(spec, out, lv, k, comm, stop, &failed);
        if (failed) *any_failed = 1;
    }
    free(lv);
    return status;
}
