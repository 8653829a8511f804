/* engine.h — the study engine: runs a study's cells on groups of ranks of the communicator it
 * is given (the whole job or a part of it), most expensive first, with progress and ETA. */
#ifndef LMDISP_ENGINE_H
#define LMDISP_ENGINE_H

#include <mpi.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "spec.h"

#define LMD_VAL_BATCHES 8      /* validation batches behind each tracked validation loss */
#define LMD_EXIT_INTERRUPTED 3 /* a signal stopped the run; checkpoints are saved */

/* ---- the claim loop, shared by every kind of study ---- */

/* Which groups exist and which cells each claims. Classes k = 0..n_classes-1: n_groups[k]
 * groups of size[k] ranks; the groups of class k claim, in order, cells[start[k] ..
 * start[k+1]) (cell numbers of the caller's, e.g. indices into spec->cells). Ranks are laid out
 * class by class, largest groups first (class n_classes-1 takes ranks 0, 1, ...), so a group
 * of 8 starts at a multiple of 8 and stays within a node of a multiple of 8 ranks; ranks beyond
 * the groups idle. */
typedef struct {
    int n_classes;
    int *size;
    int64_t *n_groups;
    int64_t *start;
    int64_t *cells;
    int64_t n_cells;
} lmd_engine_plan;

/* Paired lifecycle of a plan: alloc zeroes n_classes classes and n_cells cells. */
void lmd_engine_plan_alloc(lmd_engine_plan *p, int n_classes, int64_t n_cells);
void lmd_engine_plan_free(lmd_engine_plan *p);
/* One class: n_groups groups of size ranks claiming cells[0..n) in that order. */
void lmd_engine_plan_fixed(lmd_engine_plan *p, int size, int64_t n_groups, const size_t *cells,
                           size_t n);

/* The state of a running claim loop (engine.c), handed to the cell callback. */
typedef struct lmd_engine lmd_engine;

/* Runs one claimed cell on group (every rank of the group calls it with the same cell).
 * Returns 0 to claim the next cell, 1 to stop claiming (the run is interrupted); the same on
 * every rank of the group. */
typedef int (*lmd_engine_cell_fn)(void *ctx, lmd_engine *e, int64_t cell, MPI_Comm group);

typedef struct {
    MPI_Comm comm;               /* the ranks that run the cells */
    const lmd_engine_plan *plan; /* the same on every rank of comm */
    volatile sig_atomic_t *stop; /* a stop request: no group claims a cell once any of its
                                  * ranks has it set */
    lmd_engine_cell_fn run;
    void *ctx;
    const double *weight; /* per cell number: its share of the work, for the ETA of progress */
    const char *label;    /* progress lines "[LABEL ...] cells: ..." on comm's rank 0 every
                           * 10 s at most and at the end; NULL: none */
} lmd_engine_job;

/* The claim loop, collective over job->comm: the groups of the plan (sub-communicators of
 * comm) claim cells with an atomic MPI_Fetch_and_op on counters held by comm's rank 0, so
 * uneven cells keep every group busy. Returns 1 on every rank when a group stopped early (stop
 * request or the callback's 1), else 0. */
int lmd_engine_claim(const lmd_engine_job *job);

/* A progress line now if 10 s have passed since the last one (comm's rank 0 only; elsewhere
 * nothing): for cell callbacks that run long, e.g. after each optimizer step. */
void lmd_engine_progress(lmd_engine *e);

/* ---- training studies ---- */

/* Runs the cells spec->cells[subset[0..n_subset)] under output directory out, collectively
 * over comm, level by level (distillation teachers before their students, spec_kd.h: every
 * rank of comm finishes a level before the next starts). Fixed ranks_per_model R: the ranks
 * of comm form size/R groups of R; ranks_per_model auto: a moldable plan (runner/schedule.h).
 * Finished cells are skipped, unfinished ones resume from their newest checkpoint; *stop is
 * polled at step boundaries. Returns 0 when every cell ended (done, diverged or failed —
 * *any_failed tells), LMD_EXIT_INTERRUPTED when a stop request ended it, 2 on a usage error
 * (settings of an existing cell changed, rank count not a multiple of ranks_per_model). Same
 * value on all ranks. */
int lmd_engine_run(const lmd_spec *spec, const char *out, const size_t *subset, size_t n_subset,
                   MPI_Comm comm, volatile sig_atomic_t *stop, int *any_failed);

#endif
