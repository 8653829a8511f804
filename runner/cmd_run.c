/* cmd_run.c — `mpirun -np P lmdisp run SPEC [--out DIR]`: runs every cell of a study.
 *
 * Scheduling: cells are ordered most expensive first (estimated FLOPs, ties by grid index).
 * Ranks form groups of `ranks_per_model`; the leader of each group claims the next cell with
 * an atomic fetch-and-add on a counter held by world rank 0 (MPI one-sided), so any rank count
 * works and uneven cells don't leave ranks idle. A cell's numbers depend only on the spec and
 * its seed (and on ranks_per_model, which splits each batch), never on which rank runs it.
 * Finished cells (state done or diverged) are skipped; unfinished ones resume from their newest
 * checkpoint. On SIGUSR1/SIGTERM each running cell checkpoints at its next step boundary and the
 * run exits with code 3 (LMD_EXIT_INTERRUPTED). */
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
#include "run.h"
#include "schedule.h"
#include "slurm.h"
#include "spec.h"
#include "study.h"
#include "studydir.h"
#include "util.h"

static volatile sig_atomic_t g_stop = 0;
static volatile int g_stop_int = 0;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
    g_stop_int = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: mpirun -np P lmdisp run SPEC.yaml [--out DIR]\n"
            "       mpirun -np P lmdisp run --out DIR --array-task I [--manifest FILE]\n"
            "\n"
            "Runs every cell of the study (train, track from step 0, checkpoints) and writes\n"
            "DIR/study.h5. Default DIR: results/<spec name>. Running again skips finished cells\n"
            "and resumes unfinished ones from their newest checkpoint.\n"
            "With --array-task (what the scripts of `lmdisp submit` run): only the cells of task I\n"
            "of the manifest (default DIR/manifest), from the frozen DIR/spec.yaml; no study.h5\n"
            "(the aggregation job writes it).\n"
            "Exit codes: 0 all cells finished (done or diverged), 1 a cell failed,\n"
            "2 bad spec or usage, 3 interrupted by SIGUSR1/SIGTERM (checkpoints saved).\n");
}

/* Counters in the window at world rank 0. */
enum { CTR_NEXT = 0, CTR_DONE, CTR_MFLOP_DONE, CTR_N };

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
        MPI_Fetch_and_op(&zero, &c[i], MPI_INT64_T, 0, i, MPI_NO_OP, p->win);
    MPI_Win_flush(0, p->win);
}

static void print_progress(progress_ctx *p, int force) {
    double now = lmd_now();
    if (!force && now - p->last_print < 10.0) return;
    p->last_print = now;
    int64_t c[CTR_N];
    read_counters(p, c);
    int64_t claimed = c[CTR_NEXT] < (int64_t)p->n_cells ? c[CTR_NEXT] : (int64_t)p->n_cells;
    int64_t done = c[CTR_DONE];
    double el = now - p->t0, frac = p->total_mflop > 0 ? (double)c[CTR_MFLOP_DONE] / p->total_mflop : 0;
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

static void cell_job(const lmd_cell *c, const char *out, lmd_cell_job *job, char *settings) {
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
}

/* Every rank returns the same value: max over ranks. */
static int agree(int v) {
    int out = v;
    MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return out;
}

int lmd_run_cells(const lmd_spec *spec, const char *out, const size_t *subset, size_t n_subset,
                  int *any_failed) {
    int wrank, wsize;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    MPI_Comm_size(MPI_COMM_WORLD, &wsize);
    int R = spec->ranks_per_model;
    lmd_err err = {{0}};
    *any_failed = 0;

    if (wsize % R != 0) {
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
            cell_job(c, out, &job, settings);
            if (lmd_cell_check_settings(&job, &err)) {
                fprintf(stderr, "lmdisp run: %s\n", err.msg);
                bad = 1;
            }
            free(settings);
        }
    }
    if (agree(bad)) return 2;

    /* most expensive first; ties by grid index (docs/SCHEDULING.md) */
    size_t *order = lmd_calloc(n_subset ? n_subset : 1, sizeof *order);
    lmd_schedule_order(spec, subset, n_subset, order);

    MPI_Comm group;
    MPI_Comm_split(MPI_COMM_WORLD, wrank / R, wrank, &group);
    int grank;
    MPI_Comm_rank(group, &grank);

    int64_t *base = NULL;
    progress_ctx prog;
    memset(&prog, 0, sizeof prog);
    MPI_Win_allocate(wrank == 0 ? (MPI_Aint)(CTR_N * sizeof(int64_t)) : 0, sizeof(int64_t),
                     MPI_INFO_NULL, MPI_COMM_WORLD, &base, &prog.win);
    if (wrank == 0) memset(base, 0, CTR_N * sizeof(int64_t));
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_lock_all(0, prog.win);
    prog.t0 = prog.last_print = lmd_now();
    prog.n_cells = n_subset;
    prog.world_rank = wrank;
    for (size_t k = 0; k < n_subset; k++) prog.total_mflop += spec->cells[order[k]].flops / 1e6;
    if (wrank == 0) {
        printf("lmdisp run: %zu cells on %d rank(s) (%d group(s) of %d), output %s\n", n_subset,
               wsize, wsize / R, R, out);
        fflush(stdout);
    }

    data_cache dc;
    memset(&dc, 0, sizeof dc);
    int failed = 0, interrupted = 0;
    for (;;) {
        int64_t k = 0;
        if (grank == 0) {
            int64_t one = 1;
            MPI_Fetch_and_op(&one, &k, MPI_INT64_T, 0, CTR_NEXT, MPI_SUM, prog.win);
            MPI_Win_flush(0, prog.win);
        }
        MPI_Bcast(&k, 1, MPI_INT64_T, 0, group);
        if (k >= (int64_t)n_subset) break;
        const lmd_cell *c = &spec->cells[order[k]];
        char *settings = lmd_cell_settings(c);
        lmd_cell_job job;
        cell_job(c, out, &job, settings);
        char st[64];
        int64_t st_step;
        int finished = lmd_cell_finished(job.dir, st, sizeof st, &st_step);
        lmd_cell_status cs = CELL_DONE;
        if (!finished) {
            int derr = get_data(&dc, c, &err);
            int any_derr = derr;
            MPI_Allreduce(&derr, &any_derr, 1, MPI_INT, MPI_MAX, group);
            if (any_derr) {
                if (grank == 0) fprintf(stderr, "lmdisp run: cell %s: %s\n", c->id, err.msg);
                cs = CELL_FAILED;
            } else {
                lmd_cell_data data = {dc.train, dc.val, dc.eval_inputs};
                gpt_set_threads(spec->threads_per_rank);
                cs = lmd_cell_run(&job, &data, group, &g_stop_int, tick, &prog, &err);
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
            MPI_Fetch_and_op(&one, &old, MPI_INT64_T, 0, CTR_DONE, MPI_SUM, prog.win);
            MPI_Fetch_and_op(&mf, &old, MPI_INT64_T, 0, CTR_MFLOP_DONE, MPI_SUM, prog.win);
            MPI_Win_flush(0, prog.win);
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
    MPI_Barrier(MPI_COMM_WORLD); /* every group has finished: the counters are final */
    if (wrank == 0) print_progress(&prog, 1);
    MPI_Win_unlock_all(prog.win);
    MPI_Win_free(&prog.win);
    MPI_Comm_free(&group);
    free(order);
    *any_failed = agree(failed);
    return agree(interrupted) ? LMD_EXIT_INTERRUPTED : 0;
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
        if (wrank == 0) fprintf(stderr, "lmdisp run: array task %d: %s\n", task, rc ? err.msg : "failed on another rank");
        free(cells);
        lmd_manifest_free(&m);
        lmd_spec_free(&spec);
        return 2;
    }
    if (wrank == 0) {
        printf("lmdisp run: array task %d of %s (round %d): %ld cell(s):", task, manifest, m.round, n);
        for (long k = 0; k < n; k++) printf(" %s", spec.cells[cells[k]].id);
        printf("\n");
        fflush(stdout);
    }
    int failed = 0;
    int status = lmd_run_cells(&spec, out, cells, (size_t)n, &failed);
    if (status == 0 && failed) status = 1;
    if (wrank == 0)
        printf("lmdisp run: array task %d %s\n", task,
               status == 0 ? "finished" : status == 1 ? "finished; a cell failed"
               : status == LMD_EXIT_INTERRUPTED ? "interrupted; checkpoints saved" : "stopped");
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
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    int wrank;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    if (bad) {
        if (wrank == 0) usage(stderr);
        MPI_Finalize();
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (array_mode) {
        int status = run_array_task(out, task, manifest, wrank);
        MPI_Finalize();
        return status;
    }
    lmd_spec spec;
    lmd_err err = {{0}};
    int rc = lmd_spec_load(&spec, pos[0], &err);
    if (agree(rc != 0)) {
        if (wrank == 0) fprintf(stderr, "lmdisp run: %s\n", rc ? err.msg : "spec failed to load on another rank");
        lmd_spec_free(&spec);
        MPI_Finalize();
        return 2;
    }
    char outbuf[4096];
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "results/%s", spec.name);
        out = outbuf;
    }
    int mk = wrank == 0 ? lmd_mkdirs(out, &err) : 0;
    if (agree(mk)) {
        if (wrank == 0) fprintf(stderr, "lmdisp run: %s\n", err.msg);
        lmd_spec_free(&spec);
        MPI_Finalize();
        return 1;
    }
    if (wrank == 0 && lmd_studydir_save_spec(out, &spec, &err)) /* for status and aggregate */
        fprintf(stderr, "lmdisp run: warning: %s\n", err.msg);
    size_t *all = lmd_calloc(spec.n_cells, sizeof *all);
    for (size_t i = 0; i < spec.n_cells; i++) all[i] = i;
    double t_start = lmd_now();
    int failed = 0;
    int status = lmd_run_cells(&spec, out, all, spec.n_cells, &failed);
    free(all);
    if (status == 0) {
        int serr = lmd_study_write(&spec, out, t_start, MPI_COMM_WORLD, &err);
        if (serr && wrank == 0) fprintf(stderr, "lmdisp run: %s\n", err.msg);
        if (serr) status = 1;
        if (!serr && wrank == 0) lmd_study_print_summary(out, stdout);
    }
    if (status == 0 && failed) status = 1;
    lmd_spec_free(&spec);
    MPI_Finalize();
    return status;
}
