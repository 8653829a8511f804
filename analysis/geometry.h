/* geometry.h — condensation metrics of one model's hidden states (DESIGN.md section 1):
 * per-layer mean cosine similarity, its histogram, singular-value entropy and MEV, and the
 * layer-depth trend (Spearman, Kendall, last-N means). Pure numerics: no MPI, no files.
 *
 * Typical use, with hidden states coming from forward passes in chunks of sequences:
 *
 *     lmd_geom_acc acc;
 *     if (lmd_geom_acc_init(&acc, n_layer + 1, T, n_embd, LMD_GEOM_NBINS, &err)) ...
 *     for each chunk of B sequences:
 *         for l in 0..n_layer: lmd_geom_acc_add(&acc, l, hidden_l, B, &err);  // (B, T, d)
 *     lmd_geom g;
 *     if (lmd_geom_acc_finish(&acc, &g, &err)) ...
 *     lmd_geom_print_json(stdout, &g, &err);
 *     lmd_geom_free(&g); lmd_geom_acc_free(&acc);
 *
 * Definitions (X is the T x d hidden-state matrix of one sequence at one layer):
 *   - cosine matrix: rows x̂ = x / max(||x||_2, 1e-3); C = X̂ X̂ᵀ clipped to [-1, 1];
 *     C is averaged over all sequences added to that layer, giving C̄ (T x T).
 *     Precision: when the spectrum is computed and T <= d (every pretrained model measured
 *     with 512-token sequences), C comes from the spectrum's own double Gram G = X Xᵀ:
 *     C_ij = G_ij / (max(sqrt(G_ii), 1e-3) max(sqrt(G_jj), 1e-3)), one product for both,
 *     rounded to float32 (error ~6e-8 per entry, from that rounding only). Otherwise (no_spectrum, or T > d as in small models with
 *     long sequences) ||x|| is computed in double, X̂ and C = X̂ X̂ᵀ in float32
 *     (cblas_ssyrk; error ~1e-7 per entry). Either way the clipped C of every sequence is
 *     summed into a double T x T accumulator, so the average does not drift with the
 *     number of sequences.
 *   - layer_mean: mean of all T*T entries of C̄ (diagonal included, as the paper's code).
 *     offdiag_mean: mean of the T*(T-1) entries with i != j (NaN when T = 1).
 *   - hist: nbins bins of equal width w = 2/nbins on [-1, 1]; bin k (0-based) holds the
 *     entries v with -1 + k*w <= v < -1 + (k+1)*w, except the last bin, which is closed and
 *     so holds v = 1.0 exactly (as numpy.histogram(range=(-1, 1)) does). Values are densities:
 *     count_k / (T*T * w), so sum_k hist[k] * w = 1.
 *   - sv_entropy and mev: from the singular values s_1 >= s_2 >= ... of the RAW (not
 *     row-normalized) X of each sequence: p_i = s_i / sum_j s_j, entropy = -sum p_i log2 p_i
 *     (0 log 0 = 0), MEV = s_1^2 / sum_i s_i^2; each averaged over the sequences. The s_i^2
 *     are the eigenvalues of the smaller Gram matrix (XᵀX if d <= T, else XXᵀ), formed in
 *     double and diagonalized with LAPACK dsyevd; negative round-off eigenvalues are set to 0.
 *     Singular values below ~1e-8 * s_1 are therefore not resolved, which moves the entropy
 *     by less than ~1e-6 — far below the float32 precision of the hidden states themselves.
 *     A sequence whose X is all zeros has no defined spectrum: its entropy and MEV are NaN.
 *   - spearman, kendall: rank correlations (rankcorr.h) between layer_mean[0..L1) and the
 *     layer index 0..L1-1. NaN when they are undefined (e.g. all layer means equal, L1 < 2).
 *   - last_n_mean[N-1], N = 1..5: mean of layer_mean over the last N layers;
 *     last_n_mean[5]: the same with N = floor(L1 / 2) (stored in half_n). NaN when N > L1 or
 *     N = 0.
 * Non-finite hidden states (a diverged model) never crash: they make the affected layer's
 * means, histogram (all bins NaN), entropy and MEV NaN. */
#ifndef LMDISP_GEOMETRY_H
#define LMDISP_GEOMETRY_H

#include <stddef.h>
#include <stdio.h>

#include "util.h"

#define LMD_GEOM_NBINS 128       /* default histogram bin count (DESIGN.md section 1) */
#define LMD_GEOM_NORM_FLOOR 1e-3 /* rows are divided by max(||x||, this) */
#define LMD_GEOM_NLAST 6         /* last_n_mean entries: N = 1..5, then N = floor(L1/2) */

/* All metrics of one model (L1 = n_layer + 1 hidden states). Arrays are owned; free with
 * lmd_geom_free. */
typedef struct {
    int n_layers; /* L1 */
    int nbins;
    int T, d;             /* sequence length and hidden width measured */
    long n_seq;           /* sequences averaged over (the same for every layer) */
    double *layer_mean;   /* (L1) */
    double *offdiag_mean; /* (L1) */
    double *hist;         /* (L1, nbins) densities; row l is hist + l*nbins */
    double *sv_entropy;   /* (L1) bits */
    double *mev;          /* (L1) */
    double spearman;      /* layer_mean vs layer index */
    double kendall;       /* tau-b, layer_mean vs layer index */
    int half_n;           /* floor(L1 / 2), the N of last_n_mean[5] */
    double last_n_mean[LMD_GEOM_NLAST];
} lmd_geom;

/* Running sums for all L1 layers of one model; sequences may arrive in any number of calls
 * per layer. Memory: L1*T*(T+1)/2 doubles for the cosine sums (13 layers, T = 1024: 55 MB)
 * plus one sequence's worth of scratch (per thread when sequences run in parallel, below).
 * Not thread-safe: one accumulator per thread.
 * Threads: the n_seq sequences of one lmd_geom_acc_add are measured in parallel, whole
 * sequences per thread (normalization, X̂ X̂ᵀ, spectrum), when OpenMP and OpenBLAS both run
 * more than one thread and n_seq >= 2 (dsyevd itself scales poorly with threads); each with
 * OpenBLAS at one thread, and their cosine matrices and spectra are summed in sequence order,
 * so the results do not depend on the thread count (tests/test_geompipe.c). A single
 * sequence uses OpenBLAS's threads for the float32 X̂ X̂ᵀ (the shared Gram always runs
 * OpenBLAS at one thread, so its bits do not depend on the thread count either). Scratch: one sequence's worth per thread. */
/* The packed upper triangle of a T x T matrix, row after row: lmd_geom_tri_size(T) entries,
 * and entry (i, j >= i) at lmd_geom_tri_row(T, i)[j] with row = packed + lmd_geom_tri_row(T, i)
 * (the offset of row i minus i, so that the row is indexed by the column j). */
static inline size_t lmd_geom_tri_size(int T) { return (size_t)T * ((size_t)T + 1) / 2; }
static inline size_t lmd_geom_tri_row(int T, int i) {
    return (size_t)i * (size_t)T - (size_t)i * ((size_t)i + 1) / 2;
}

typedef struct {
    int n_layers, T, d, nbins;
    double *csum;    /* (L1, T(T+1)/2) sum over sequences of the clipped C: its upper triangle
                       * (j >= i), row after row (lmd_geom_tri_row); the lower one is
                       * mirrored in acc_finish */
    double *ent_sum; /* (L1) sum over sequences of the entropy */
    double *mev_sum; /* (L1) */
    long *n_seq;     /* (L1) sequences added per layer */
    /* scratch for one sequence */
    float *xn;    /* (T, d) normalized rows */
    float *c;     /* (T, T) X̂ X̂ᵀ, upper triangle */
    double *xd;   /* (T, d) X in double */
    double *gram; /* (k, k), k = min(T, d); with the spectrum on and T <= d also the
                   * cosine matrix's product (the shared Gram) */
    double *inv;  /* (T) inverse row norms, for C from the shared Gram */
    double *eig;  /* (k) */
    double *work; /* dsyevd workspace */
    int *iwork;
    int lwork, liwork;
    /* spectrum scratch of each thread when the sequences of one add are measured in
     * parallel (allocated on first use) */
    int n_tws;
    struct lmd_geom_tws *tws;
    /* 0 after init. Set to 1 to skip the spectra (sv_entropy and mev then come out NaN), for
     * callers that want only the cosine geometry, e.g. bench/bench_cossim.c. */
    int no_spectrum;
} lmd_geom_acc;

/* Prepares an accumulator for n_layers layers of (T, d) hidden states and nbins histogram
 * bins (pass LMD_GEOM_NBINS). Returns 0, or -1 with a message for invalid sizes. */
int lmd_geom_acc_init(lmd_geom_acc *a, int n_layers, int T, int d, int nbins, lmd_err *err);

/* Adds n_seq sequences of one layer: x is (n_seq, T, d) floats, row-major, sequence after
 * sequence. n_seq = 0 is allowed and does nothing. Returns 0, or -1 for a bad layer index,
 * negative n_seq or NULL data. */
int lmd_geom_acc_add(lmd_geom_acc *a, int layer, const float *x, long n_seq, lmd_err *err);

/* Computes every metric from the sums so far into *g (allocated here; free with
 * lmd_geom_free), including lmd_geom_finish. Fails (-1, message, *g left empty) if some
 * layer has no sequences or layers have different sequence counts. The accumulator is not
 * changed, so more sequences may be added and finish called again. */
int lmd_geom_acc_finish(const lmd_geom_acc *a, lmd_geom *g, lmd_err *err);

void lmd_geom_acc_free(lmd_geom_acc *a);

/* One-shot: hidden is (L1, n_seq, T, d) floats, e.g. /hidden_states of a `lmdisp step`
 * dump. Equivalent to init + one add per layer + finish + acc_free. */
int lmd_geom_compute(lmd_geom *g, const float *hidden, int n_layers, long n_seq, int T, int d,
                     int nbins, lmd_err *err);

/* Allocates the arrays of *g for n_layers and nbins, filled with NaN. Returns 0 or -1. */
int lmd_geom_alloc(lmd_geom *g, int n_layers, int nbins, lmd_err *err);

/* (Re)computes spearman, kendall, half_n and last_n_mean from g->layer_mean. Called by
 * lmd_geom_acc_finish; public for callers that fill layer_mean by other means. */
void lmd_geom_finish(lmd_geom *g);

void lmd_geom_free(lmd_geom *g);

/* Singular-value entropy (bits) and MEV of one raw (T, d) matrix, as defined above.
 * Allocates its own workspace: for tests and one-off use; the accumulator reuses its own.
 * Returns 0, or -1 for invalid sizes. All-zero or non-finite x gives NaN results (rc 0). */
int lmd_geom_spectrum(const float *x, int T, int d, double *entropy, double *mev, lmd_err *err);

/* Writes g as one JSON object (no trailing newline), with keys
 *   n_layers, n_sequences, seq_len, n_embd, hist_bins,
 *   layer_mean_cossim, offdiag_mean_cossim (arrays of L1), spearman, kendall,
 *   last_n_mean {"1".."5", "half"}, last_n_half (the N of "half"),
 *   singular_value_entropy, mev (arrays of L1), cossim_hist (L1 arrays of nbins densities).
 * NaN and +-Inf are written as null. Numbers use 17 significant digits, so doubles round-trip.
 * Returns 0, or -1 with a message if writing to f failed. */
int lmd_geom_print_json(FILE *f, const lmd_geom *g, lmd_err *err);

/* The same object as a jansson tree (a new reference), for writers that add fields to it. */
struct json_t *lmd_geom_json(const lmd_geom *g);

#endif
