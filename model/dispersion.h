/* dispersion.h — the dispersion losses of DESIGN.md section 3 (angular_spread, decorrelation,
 * l2_repel, orthogonalization): value and analytic gradient w.r.t. the hidden states. */
#ifndef LMDISP_DISPERSION_H
#define LMDISP_DISPERSION_H

#include <stddef.h>

#include "util.h"

typedef enum {
    DISP_OFF = 0,
    DISP_ANGULAR_SPREAD,
    DISP_DECORRELATION,
    DISP_L2_REPEL,
    DISP_ORTHOGONALIZATION
} lmd_disp_variant;

typedef enum { DISP_LOC_ALL = 0, DISP_LOC_LAST } lmd_disp_location;

typedef struct {
    lmd_disp_variant variant;   /* default DISP_OFF */
    double coeff;               /* default 0.1 */
    lmd_disp_location location; /* default all */
    double tau_cos;             /* default 1.0 */
    double tau_l2;              /* default 1.0 */
    int max_tokens;             /* default 256 */
} lmd_disp_opts;

lmd_disp_opts lmd_disp_default(void);
/* "off", "angular_spread", ... <-> enum. Parse returns -1 with a message listing the valid
 * names when unknown. */
int lmd_disp_parse_variant(const char *s, lmd_disp_variant *v, lmd_err *err);
const char *lmd_disp_variant_name(lmd_disp_variant v);
int lmd_disp_parse_location(const char *s, lmd_disp_location *loc, lmd_err *err);
const char *lmd_disp_location_name(lmd_disp_location loc);
/* Rejects negative coeff or tau, max_tokens < 2, with a clear message. */
int lmd_disp_validate(const lmd_disp_opts *o, lmd_err *err);

/* Loss of one sequence z (L x F, row-major) and, if dz != NULL, ACCUMULATES scale * dloss/dz
 * into dz (L x F). No subsetting here. work: scratch of lmd_disp_work_floats(L, F) floats.
 * Preconditions (checked, abort): L >= 2 except for l2_repel; F >= 2 for decorrelation. */
double lmd_disp_seq(lmd_disp_variant v, const float *z, int L, int F, double tau_cos, double tau_l2,
                    float *dz, double scale, float *work);
size_t lmd_disp_work_floats(int L, int F);

/* The dispersion term of a model forward: hidden is (n_layer+1, B, T, C) as a list of
 * n_layer+1 pointers to (B,T,C) arrays. Averages over sequences of the batch and over the
 * hidden states chosen by location (1..n_layer for all; n_layer for last). When
 * T > max_tokens, each (sequence, hidden state) uses a random subset of max_tokens
 * positions drawn from rng (same subset for every feature). If dhidden != NULL (same layout,
 * n_layer+1 pointers), ACCUMULATES coeff * d(dispersion)/d(hidden). Returns the dispersion
 * value (not multiplied by coeff). */
double lmd_disp_forward_backward(const lmd_disp_opts *o, float *const *hidden, int n_layer, int B,
                                 int T, int C, float *const *dhidden, lmd_rng *rng);

/* Draw order of the subsets (so a run is reproducible and a test can replay it): hidden
 * states l = first..n_layer in increasing order (first = 1 for all, n_layer for last), within
 * each l the sequences b = 0..B-1, one lmd_disp_subset(rng, T, max_tokens, .) per (l, b).
 * When T <= max_tokens the rng is not touched. Scratch is allocated once per call. */

/* As lmd_disp_forward_backward; if subsets != NULL and T > max_tokens, also writes the chosen
 * positions, (n_loc, B, max_tokens) ints in draw order, n_loc = number of hidden states used. */
double lmd_disp_forward_backward_ex(const lmd_disp_opts *o, float *const *hidden, int n_layer,
                                    int B, int T, int C, float *const *dhidden, lmd_rng *rng,
                                    int *subsets);

/* A uniformly random k-subset of 0..T-1, sorted ascending, in idx[0..k-1] (idx holds T ints
 * of scratch). Partial Fisher-Yates: exactly k calls of lmd_rng_below(rng, T - i), i = 0..k-1. */
void lmd_disp_subset(lmd_rng *rng, int T, int k, int *idx);

#endif
