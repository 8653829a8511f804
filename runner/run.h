/* run.h — the study run loop shared by `lmdisp run` and the Slurm array tasks: dynamic
 * most-expensive-first scheduling of cells over MPI rank groups. */
#ifndef LMDISP_RUN_H
#define LMDISP_RUN_H

#include <stddef.h>

#include "spec.h"

#define LMD_VAL_BATCHES 8      /* validation batches behind each tracked validation loss */
#define LMD_EXIT_INTERRUPTED 3 /* a signal stopped the run; checkpoints are saved */

/* Runs the cells spec->cells[subset[0..n_subset)] under output directory out, collectively
 * over MPI_COMM_WORLD. Returns 0 when every cell ended (done, diverged or failed — *any_failed
 * tells), LMD_EXIT_INTERRUPTED when a signal stopped it, 2 on a usage error (settings of an
 * existing cell changed, rank count not a multiple of ranks_per_model). Same value on all
 * ranks. */
int lmd_run_cells(const lmd_spec *spec, const char *out, const size_t *subset, size_t n_subset,
                  int *any_failed);

#endif
