/* measure.h — condensation metrics of one model on a fixed evaluation set: forward passes in
 * chunks of sequences, every hidden state 0..n_layer fed to the geometry accumulator
 * (geometry.h). The same call serves `lmdisp measure`, `lmdisp track` and in-training tracking;
 * it knows nothing of files, flags or MPI. */
#ifndef LMDISP_MEASURE_H
#define LMDISP_MEASURE_H

#include "geometry.h"
#include "gpt.h"
#include "util.h"

/* Sequences per forward pass when the caller has no better idea: bounds activation memory to
 * that of an 8 x T batch, so measuring during training never grows a B >= 8 model's buffers. */
#define LMD_MEASURE_CHUNK 8

/* Measures model m on n_seq sequences of length T.
 *   inputs: (n_seq, T) token ids, sequence after sequence (e.g. from lmd_eval_windows);
 *   nbins:  histogram bins (LMD_GEOM_NBINS for the study's 128);
 *   chunk:  sequences per forward pass (<= 0 means LMD_MEASURE_CHUNK).
 * Fills *out (free with lmd_geom_free) with all n_layer + 1 hidden states measured.
 * Returns 0, or -1 with a message (out left empty) for T > n_ctx, a token id outside the
 * vocabulary, or invalid sizes. Overwrites m's activation buffers (growing them only if they
 * hold less than chunk x T), so a training caller must run its next forward afterwards, which
 * it does anyway. Deterministic for a given chunk; another chunk changes
 * only the float rounding of the forward pass (BLAS blocking), not the metrics' meaning. */
int lmd_measure_model(gpt_model *m, const int *inputs, int n_seq, int T, int nbins, int chunk,
                      lmd_geom *out, lmd_err *err);

#endif
