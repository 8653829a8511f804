/* cmd_aggregate.c — `mpirun -np P lmdisp aggregate DIR`: rebuilds DIR/study.h5 from the spec
 * kept in DIR/spec.yaml and the per-cell results under DIR/cells alone, e.g. after some cells
 * were rerun, deleted, or run by Slurm array tasks. Cells without results are `missing` with
 * NaN rows. The dataset contents depend only on those files, so aggregating twice gives the
 * same datasets (only the time, host and rank-count attributes differ). */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "measrun.h"
#include "mpicheck.h"
#include "spec.h"
#include "study.h"
#include "studydir.h"
#include "ph5write.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: mpirun -np P lmdisp aggregate DIR [--spec SPEC.yaml] [--quiet]\n"
            "\n"
            "Rebuilds DIR/study.h5 (DESIGN.md 4.4, docs/STUDY.md) from DIR/spec.yaml and the\n"
            "results under DIR/cells, then prints its tables (unless --quiet). Cells with no\n"
            "final state are marked `missing` with NaN rows. --spec: read this spec instead of\n"
            "DIR/spec.yaml — needed when the spec names data files by relative paths, which\n"
            "resolve against the spec's own directory and are part of the cell ids.\n"
            "Exit codes: 0 written, 1 a file could not be read or written, 2 bad usage or spec.\n");
}

int cmd_aggregate(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "aggregate", argc, argv);
    int quiet = lmd_args_flag(&a, "quiet");
    const char *spec_arg = lmd_args_str(&a, "spec");
    lmd_cmd_line cl;
    if (lmd_cmd_line_end(&a, usage, &cl)) return 0;
    if (lmd_mpi_init("aggregate")) return 1;
    double t_start = lmd_now();
    int rank;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    if (cl.bad || cl.npos != 1) {
        if (rank == 0) usage(stderr);
        return lmd_mpi_finalize(2);
    }
    const char *dir = cl.pos[0];
    if (!spec_arg && lmd_mstudy_dir_is(dir)) { /* kind: measure (runner/measrun.c) */
        int st = lmd_mstudy_aggregate(dir);
        return lmd_mpi_finalize(st);
    }
    char spec_path[4200];
    lmd_pathf(spec_path, "%s/spec.yaml", dir);
    if (spec_arg) lmd_pathf(spec_path, "%s", spec_arg);

    lmd_err err = {{0}};
    lmd_spec spec;
    struct stat sb;
    int rc = 0;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        rc = lmd_errf(&err, "%s is not a directory (expected the --out directory of a run)", dir);
    else if (spec_arg ? lmd_spec_load(&spec, spec_path, &err)
                      : lmd_studydir_load_spec(dir, &spec, &err))
        rc = lmd_err_prefix(&err, "cannot load the study's spec%s",
                            spec_arg ? "" : " (kept by `lmdisp run`; or pass --spec)");
    if (lmd_mpi_any(MPI_COMM_WORLD, rc, &err)) {
        if (rank == 0) fprintf(stderr, "lmdisp aggregate: %s\n", err.msg);
        if (!rc) lmd_spec_free(&spec);
        return lmd_mpi_finalize(2);
    }
    /* one writer of study.h5 at a time (a plain `lmdisp run` of the same directory writes it
     * too), and the temporary files of a killed writer go */
    int lock = -1;
    if (rank == 0) {
        lock = lmd_studydir_lock(dir, 1, "lmdisp aggregate", &err);
        if (lock < 0 || lmd_studydir_clean_tmp(dir, stdout, &err) < 0) rc = -1;
    }
    if (lmd_mpi_any(MPI_COMM_WORLD, rc, &err)) {
        if (rank == 0) fprintf(stderr, "lmdisp aggregate: %s\n", err.msg);
        lmd_studydir_unlock(lock);
        lmd_spec_free(&spec);
        return lmd_mpi_finalize(2);
    }
    if (rank == 0) {
        /* ids include resolved data paths: say so when none of the spec's cells has a
         * directory, rather than silently writing an all-missing study */
        size_t found = 0;
        for (size_t i = 0; i < spec.n_cells; i++) {
            char p[4400];
            snprintf(p, sizeof p, "%s/cells/%s", dir, spec.cells[i].id);
            found += stat(p, &sb) == 0;
        }
        if (found == 0 && spec.n_cells > 0)
            fprintf(stderr,
                    "lmdisp aggregate: warning: none of the %zu cells of %s has a directory under "
                    "%s/cells (all will be `missing`). If the spec reads data by a relative path, "
                    "pass the original spec with --spec.\n",
                    spec.n_cells, spec_path, dir);
    }
    rc = lmd_study_write(&spec, dir, t_start, MPI_COMM_WORLD, &err);
    if (rc && rank == 0) fprintf(stderr, "lmdisp aggregate: %s\n", err.msg);
    if (!rc && rank == 0 && !quiet) lmd_study_print_summary(dir, stdout);
    lmd_studydir_unlock(lock);
    lmd_spec_free(&spec);
    return lmd_mpi_finalize(rc ? 1 : 0);
}
