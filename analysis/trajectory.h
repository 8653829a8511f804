/* trajectory.h — the condensation trajectory of one training run: one row per checkpoint
 * (step, tokens, validation loss, geometry of every layer), written as an HDF5 file whose
 * layout is documented in docs/ANALYSIS.md. Used by `lmdisp track`. */
#ifndef LMDISP_TRAJECTORY_H
#define LMDISP_TRAJECTORY_H

#include <stdint.h>

#include "geometry.h"
#include "util.h"

/* One measured checkpoint. */
typedef struct {
    const char *checkpoint; /* source path, stored in /checkpoint */
    int64_t step;           /* optimizer steps (0 = initialization) */
    int64_t tokens;         /* tokens trained on; -1 when unknown */
    double val_loss;        /* NaN when not measured */
    lmd_geom geom;          /* all n_layer + 1 hidden states */
} lmd_traj_row;

/* How the rows were measured; stored as root attributes. */
typedef struct {
    const char *data_source; /* "synthetic", "shards:...", or the --tokens file */
    const char *eval_set;    /* "validation" (first windows of the validation split) or "tokens" */
    double val_fraction;     /* of the split; NaN with --tokens */
    int eval_batches;        /* validation-loss batches (0 = no validation loss) */
    int eval_batch_size;     /* sequences per validation-loss batch */
    const char *lmdisp_version;
} lmd_traj_meta;

/* Writes rows[0..K) to path, replacing it atomically (written to "<path>.tmp.<pid>", then
 * renamed), so a reader never sees a half-written file and a series interrupted after
 * checkpoint k leaves a valid trajectory of its first k rows. Every row must have the same
 * layer count, bin count, sequence length, width and sequence count (one model config, one
 * evaluation set). K >= 1. Returns 0, or -1 with a message naming the file and dataset. */
int lmd_traj_write(const char *path, const lmd_traj_meta *meta, const lmd_traj_row *rows, int K,
                   lmd_err *err);

#endif
