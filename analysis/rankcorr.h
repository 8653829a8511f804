/* rankcorr.h — rank correlations between two paired samples: Spearman's rho and Kendall's
 * tau-b, both tie-aware, as scipy.stats.spearmanr / kendalltau (variant 'b') define them.
 *
 * Conventions shared by both functions:
 *   - x and y hold n paired values (x[i], y[i]); neither array is modified.
 *   - The result is NaN (never a crash) when the correlation is undefined:
 *       n < 2; either variable constant (all values equal, so its rank variance is 0);
 *       any NaN among the inputs (ranks of NaN are meaningless).
 *     +-Inf are ordinary values for ranking (they compare as the extremes); scipy 1.10's
 *     rankdata instead turns a sample holding an infinity into NaN.
 *   - n = 2 with both variables non-constant gives +1 or -1.
 * Used for the condensation trend of one model (layer means vs layer index) and for the
 * cross-grid trend (mlp_dim vs per-model rho), see DESIGN.md section 1. */
#ifndef LMDISP_RANKCORR_H
#define LMDISP_RANKCORR_H

#include <stddef.h>

/* Writes the average ranks of x[0..n) into rank[0..n): rank 1 is the smallest value, and a
 * run of k equal values all get the mean of the k ranks they span (1-based "fractional"
 * ranking, as scipy.stats.rankdata(method='average')). x must hold no NaN (their order is
 * undefined). Scratch memory comes from lmd_calloc, which aborts if the system refuses. */
void lmd_rank_average(double *rank, const double *x, size_t n);

/* Spearman's rho: the Pearson correlation of the average ranks of x and of y. The Pearson
 * step is done in double with centred sums (two passes), so ties do not bias the result.
 * O(n log n) time, O(n) scratch. */
double lmd_spearman(const double *x, const double *y, size_t n);

/* Kendall's tau-b:
 *   tau_b = (n_c - n_d) / sqrt((n0 - n1) (n0 - n2)),
 * n0 = n(n-1)/2 pairs, n_c / n_d concordant / discordant pairs, n1 = pairs tied in x,
 * n2 = pairs tied in y (a pair tied in both counts in n1 and n2 and in neither n_c nor n_d).
 * Counted exactly with 64-bit integers by visiting every pair: O(n^2) time, O(1) memory —
 * ~10 ms for n = 3000, which covers layer counts and grid sizes; switch to Knight's
 * O(n log n) algorithm before using it on tens of thousands of points. */
double lmd_kendall_tau_b(const double *x, const double *y, size_t n);

#endif
