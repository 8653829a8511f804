/* cmd_run.c — `mpirun -np P lmdisp run SPEC [--out DIR]`: runs every cell of a study.
 *
 * This file is the command: its flags, the spec (or the frozen spec and manifest of a Slurm
 * array task), the output directory and the signals. The cells themselves run in the study
 * engine (runner/engine.h) over MPI_COMM_WORLD: most expensive first on groups of
 * `ranks_per_model` ranks (or a moldable plan with `auto`), finished cells skipped, unfinished
 * ones resumed from their newest checkpoint. On SIGINT/SIGUSR1/SIGTERM each running cell
 * checkpoints at its next step boundary and the run exits with code 3 (LMD_EXIT_INTERRUPTED).
 * Rank 0 holds DIR/lock while it runs (runner/studydir.h) and refuses a spec that would change
 * the study already in DIR. */
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "engine.h"
#include "measrun.h"
#include "slurm.h"
#include "spec.h"
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

/* lmd_engine_run of the cells subset[0..n) over MPI_COMM_WORLD. For tests,
 * LMDISP_TEST_ENGINE_RANKS=N runs them on a sub-communicator, world ranks 0..N-1, while the
 * other ranks wait for the engine's result (then the study file, collective over all): the
 * engine must need no rank outside the communicator it is given. Same return on all ranks. */
static int run_engine(const lmd_spec *spec, const char *out, const size_t *subset, size_t n,
                      int *any_failed) {
    const char *hook = getenv("LMDISP_TEST_ENGINE_RANKS");
    if (!hook) return lmd_engine_run(spec, out, subset, n, MPI_COMM_WORLD, &g_stop, any_failed);
    int wrank, v[2] = {0, 0}; /* status, any_failed */
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    MPI_Comm sub;
    int n_sub = atoi(hook) > 1 ? atoi(hook) : 1; /* world rank 0 is always in: it reports */
    LMD_MPI(MPI_Comm_split(MPI_COMM_WORLD, wrank < n_sub ? 0 : MPI_UNDEFINED, wrank, &sub));
    if (sub != MPI_COMM_NULL) {
        v[0] = lmd_engine_run(spec, out, subset, n, sub, &g_stop, &v[1]);
        LMD_MPI(MPI_Comm_free(&sub));
    }
    LMD_MPI(MPI_Bcast(v, 2, MPI_INT, 0, MPI_COMM_WORLD));
    *any_failed = v[1];
    return v[0];
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
    if (lmd_mpi_any(MPI_COMM_WORLD, rc != 0, &err)) {
        if (wrank == 0) fprintf(stderr, "lmdisp run: array task %d: %s\n", task, err.msg);
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
    int status = run_engine(&spec, out, cells, (size_t)n, &failed);
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
    const char *out = lmd_args_str(&a, "out");
    const char *manifest = lmd_args_str(&a, "manifest");
    int task = -1;
    lmd_args_int(&a, "array-task", &task, 0, 100000000);
    lmd_cmd_line cl;
    if (lmd_cmd_line_end(&a, usage, &cl)) return 0;
    int array_mode = task >= 0;
    int bad = cl.bad || (array_mode ? (cl.npos != 0 || !out) : (cl.npos != 1 || manifest));
    install_signal_handlers();
    if (lmd_mpi_init("run")) return 1;
    int wrank;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    if (bad) {
        if (wrank == 0) usage(stderr);
        return lmd_mpi_finalize(2);
    }
    lmd_err err = {{0}};
    if (array_mode && lmd_mstudy_dir_is(out)) { /* kind: measure (runner/measrun.c) */
        int status = lmd_mstudy_run_task(out, task, manifest, &g_stop);
        return lmd_mpi_finalize(status);
    }
    if (array_mode) {
        /* array tasks of one study run side by side: a shared lock, which keeps a plain
         * `lmdisp run` or `aggregate` of the same directory out while they work */
        int lock = -1;
        if (wrank == 0) lock = lmd_studydir_lock(out, 0, "lmdisp run --array-task", &err);
        if (lmd_mpi_any(MPI_COMM_WORLD, wrank == 0 && lock < 0, NULL)) {
            if (wrank == 0) fprintf(stderr, "lmdisp run: array task %d: %s\n", task, err.msg);
            return lmd_mpi_finalize(2);
        }
        int status = run_array_task(out, task, manifest, wrank);
        lmd_studydir_unlock(lock);
        return lmd_mpi_finalize(status);
    }
    if (lmd_mspec_detect(cl.pos[0])) { /* kind: measure (runner/measrun.c) */
        int status = lmd_mstudy_run(cl.pos[0], out, &g_stop);
        return lmd_mpi_finalize(status);
    }
    lmd_spec spec;
    int rc = lmd_spec_load(&spec, cl.pos[0], &err);
    if (lmd_mpi_any(MPI_COMM_WORLD, rc != 0, &err)) {
        if (wrank == 0) fprintf(stderr, "lmdisp run: %s\n", err.msg);
        lmd_spec_free(&spec);
        return lmd_mpi_finalize(2);
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
        return lmd_mpi_finalize(fail);
    }
    size_t *all = lmd_calloc(spec.n_cells, sizeof *all);
    for (size_t i = 0; i < spec.n_cells; i++) all[i] = i;
    double t_start = lmd_now();
    int failed = 0;
    int status = run_engine(&spec, out, all, spec.n_cells, &failed);
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
    return lmd_mpi_finalize(status);
}
