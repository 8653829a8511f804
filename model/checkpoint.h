/* checkpoint.h — one HDF5 file per checkpoint (DESIGN.md 4.1): config as root attributes,
 * parameters in /params, and the optimizer moments and training state for bitwise resume. */
#ifndef LMDISP_CHECKPOINT_H
#define LMDISP_CHECKPOINT_H

#include <stdint.h>

#include "gpt.h"
#include "util.h"

/* Everything besides parameters and moments that a resumed run needs. */
typedef struct {
    int64_t step;      /* optimizer steps taken */
    int64_t tokens;    /* tokens trained on so far */
    int64_t seed;      /* the run's seed */
    uint64_t data_pos; /* lmd_loader.pos */
    lmd_rng rng_disp;  /* dispersion subset RNG */
    int has_state;     /* on load: 1 if the file had /optimizer and /state (full resume) */
} lmd_train_state;

/* Writes path atomically (temporary name, then rename), Fletcher32 on every dataset.
 * Writes /optimizer (m, v, adam_t) when m has moments, and /state. */
int lmd_ckpt_save(const char *path, const gpt_model *m, const lmd_train_state *st, lmd_err *err);

/* Reads only the root-attribute config of a checkpoint. */
int lmd_ckpt_read_config(const char *path, gpt_config *cfg, lmd_err *err);

/* Loads a checkpoint into m: creates m from the file's config (m must be unallocated),
 * reads /params and, if present, the moments and state (st may be NULL). Validates format,
 * version, config and every shape, naming the dataset that is wrong. A file with only the
 * root attributes and /params loads (st->has_state = 0). */
int lmd_ckpt_load(const char *path, gpt_model *m, lmd_train_state *st, lmd_err *err);

#endif
