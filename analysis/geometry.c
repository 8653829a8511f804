/* geometry.c — cosine-similarity geometry, histograms and spectra of hidden states
 * (definitions in geometry.h). */
#include "geometry.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonout.h"
#include "par.h"
#include "rankcorr.h"

extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int);

/* one thread's spectrum scratch (lmd_geom_acc.tws) */
struct lmd_geom_tws {
    float *xn, *c; /* (T, d) normalized rows, (T, T) X̂ X̂ᵀ */
    double *xd, *gram, *eig, *work;
    int *iwork;
    double *inv; /* (T) 1 / max(||x_t||, floor), for C from the shared Gram */
};

/* LAPACK's symmetric eigensolver (divide and conquer), Fortran interface. Debian's OpenBLAS
 * exports it from libopenblas but ships no LAPACKE, so we declare it ourselves; the two
 * trailing arguments are the hidden lengths of the character arguments that gfortran
 * expects (harmless for LAPACKs built otherwise). Column-major storage. */
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork,
                    int *info, size_t jobz_len, size_t uplo_len);

/* Workspace sizes dsyevd wants for eigenvalues only of an n x n matrix (asked, not assumed,
 * so a LAPACK with different needs still gets enough). */
static void geom_eig_query(int n, int *lwork, int *liwork) {
    double wq = 0.0, a = 0.0, w = 0.0;
    int iq = 0, info = 0, m1 = -1;
    dsyevd_("N", "L", &n, &a, &n, &w, &wq, &m1, &iq, &m1, &info, 1, 1);
    if (info != 0) lmd_die("dsyevd workspace query failed for n=%d (info=%d)", n, info);
    *lwork = (int)wq > 1 ? (int)wq : 1;
    *liwork = iq > 1 ? iq : 1;
    // The documented minimum for JOBZ='N' is 2n+1 / 1; never go below it.
    if (*lwork < 2 * n + 1) *lwork = 2 * n + 1;
}

/* NaN-preserving clip to [-1, 1] (fmin/fmax would turn NaN into a bound). */
static inline float geom_clip1(float v) {
    if (v > 1.0f) return 1.0f;
    if (v < -1.0f) return -1.0f;
    return v;
}

static int geom_check_sizes(int n_layers, int T, int d, int nbins, lmd_err *err) {
    if (n_layers < 1) return lmd_errf(err, "geometry: need at least 1 layer, got %d", n_layers);
    if (T < 1) return lmd_errf(err, "geometry: sequence length must be >= 1, got %d", T);
    if (d < 1) return lmd_errf(err, "geometry: hidden width must be >= 1, got %d", d);
    if (nbins < 1) return lmd_errf(err, "geometry: histogram bins must be >= 1, got %d", nbins);
    return 0;
}

int lmd_geom_acc_init(lmd_geom_acc *a, int n_layers, int T, int d, int nbins, lmd_err *err) {
    memset(a, 0, sizeof *a);
    if (geom_check_sizes(n_layers, T, d, nbins, err)) return -1;
    a->n_layers = n_layers;
    a->T = T;
    a->d = d;
    a->nbins = nbins;
    size_t TT = (size_t)T * (size_t)T, Td = (size_t)T * (size_t)d;
    int k = T < d ? T : d;
    a->csum = lmd_calloc((size_t)n_layers * lmd_geom_tri_size(T), sizeof *a->csum);
    a->ent_sum = lmd_calloc((size_t)n_layers, sizeof *a->ent_sum);
    a->mev_sum = lmd_calloc((size_t)n_layers, sizeof *a->mev_sum);
    a->n_seq = lmd_calloc((size_t)n_layers, sizeof *a->n_seq);
    a->xn = lmd_calloc(Td, sizeof *a->xn);
    a->c = lmd_calloc(TT, sizeof *a->c);
    a->xd = lmd_calloc(Td, sizeof *a->xd);
    a->gram = lmd_calloc((size_t)k * (size_t)k, sizeof *a->gram);
    a->eig = lmd_calloc((size_t)k, sizeof *a->eig);
    a->inv = lmd_calloc((size_t)T, sizeof *a->inv);
    geom_eig_query(k, &a->lwork, &a->liwork);
    a->work = lmd_calloc((size_t)a->lwork, sizeof *a->work);
    a->iwork = lmd_calloc((size_t)a->liwork, sizeof *a->iwork);
    return 0;
}

void lmd_geom_acc_free(lmd_geom_acc *a) {
    if (!a) return;
    free(a->csum);
    free(a->ent_sum);
    free(a->mev_sum);
    free(a->n_seq);
    free(a->xn);
    free(a->c);
    free(a->xd);
    free(a->gram);
    free(a->eig);
    free(a->inv);
    free(a->work);
    free(a->iwork);
    for (int i = 1; i < a->n_tws; i++) { /* slot 0 is the accumulator's own scratch */
        free(a->tws[i].xn);
        free(a->tws[i].c);
        free(a->tws[i].xd);
        free(a->tws[i].gram);
        free(a->tws[i].eig);
        free(a->tws[i].work);
        free(a->tws[i].iwork);
        free(a->tws[i].inv);
    }
    free(a->tws);
    memset(a, 0, sizeof *a);
}

/* Entropy and MEV from the eigenvalues lam[0..k) of XᵀX (= squared singular values of X),
 * any order. NaN if X is zero or anything is non-finite. */
static void geom_sv_stats(const double *lam, int k, double *entropy, double *mev) {
    double sum_s = 0.0, sum_l = 0.0, max_l = 0.0;
    for (int i = 0; i < k; i++) {
        double l = lam[i] > 0.0 ? lam[i] : 0.0; // round-off can make zero eigenvalues < 0
        if (isnan(lam[i])) l = NAN;
        sum_s += sqrt(l);
        sum_l += l;
        if (l > max_l) max_l = l;
    }
    if (!(sum_s > 0.0) || !isfinite(sum_s) || !isfinite(sum_l)) {
        *entropy = NAN;
        *mev = NAN;
        return;
    }
    double h = 0.0;
    for (int i = 0; i < k; i++) {
        double l = lam[i] > 0.0 ? lam[i] : 0.0;
        double p = sqrt(l) / sum_s;
        if (p > 0.0) h -= p * log2(p);
    }
    *entropy = h;
    *mev = max_l / sum_l;
}

/* X in double into xd; 0 if some entry is not finite (no spectrum is defined then). */
static int geom_to_double(const float *x, size_t Td, double *xd) {
    for (size_t i = 0; i < Td; i++) {
        if (!isfinite(x[i])) return 0;
        xd[i] = (double)x[i];
    }
    return 1;
}

/* Entropy and MEV from the eigenvalues of the k x k Gram matrix in gram (row-major upper
 * triangle == column-major lower triangle, hence "L"); gram is overwritten. */
static void geom_spectrum_gram(double *gram, int k, double *eig, double *work, int lwork,
                               int *iwork, int liwork, double *entropy, double *mev) {
    int info = 0;
    dsyevd_("N", "L", &k, gram, &k, eig, work, &lwork, iwork, &liwork, &info, 1, 1);
    if (info < 0) lmd_die("dsyevd rejected argument %d", -info);
    if (info > 0) { // failed to converge: report no spectrum rather than a wrong one
        *entropy = NAN;
        *mev = NAN;
        return;
    }
    geom_sv_stats(eig, k, entropy, mev);
}

/* Spectrum of one raw sequence matrix using caller-provided scratch.
 * x is (T, d); xd is (T, d); gram is (k, k); eig is (k), k = min(T, d). */
static void geom_spectrum_ws(const float *x, int T, int d, double *xd, double *gram, double *eig,
                             double *work, int lwork, int *iwork, int liwork, double *entropy,
                             double *mev) {
    if (!geom_to_double(x, (size_t)T * (size_t)d, xd)) {
        *entropy = NAN;
        *mev = NAN;
        return;
    }
    // The smaller Gram matrix has the same nonzero eigenvalues s_i^2 and is cheaper to
    // diagonalize.
    if (d <= T)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, T, 1.0, xd, d, 0.0, gram, d);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, T, d, 1.0, xd, d, 0.0, gram, T);
    geom_spectrum_gram(gram, T < d ? T : d, eig, work, lwork, iwork, liwork, entropy, mev);
}

/* The shared Gram (spectrum on and T <= d): G = X Xᵀ of the raw X in double, upper triangle
 * row-major in gram (T x T), and inv[t] = 1 / max(sqrt(G_tt), floor). The cosine matrix is
 * then C_ij = G_ij inv_i inv_j (geom_csum_gram) and the spectrum the eigenvalues of G: one
 * product for both. Returns 0 when X has a non-finite entry; gram then holds NaN, so the
 * cosine sums turn NaN as the float path's do, and there is no spectrum. */
static int geom_gram_ws(const float *x, int T, int d, double *xd, double *gram, double *inv) {
    size_t Td = (size_t)T * (size_t)d;
    int finite = geom_to_double(x, Td, xd);
    if (!finite) {
        for (size_t i = 0; i < (size_t)T * (size_t)T; i++) gram[i] = NAN;
        for (int t = 0; t < T; t++) inv[t] = NAN;
        return 0;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, T, d, 1.0, xd, d, 0.0, gram, T);
    for (int t = 0; t < T; t++) {
        double nrm = sqrt(gram[(size_t)t * T + t]);
        inv[t] = 1.0 / (nrm > LMD_GEOM_NORM_FLOOR ? nrm : LMD_GEOM_NORM_FLOOR);
    }
    return 1;
}

int lmd_geom_spectrum(const float *x, int T, int d, double *entropy, double *mev, lmd_err *err) {
    if (geom_check_sizes(1, T, d, 1, err)) return -1;
    if (!x) return lmd_errf(err, "geometry: spectrum of NULL data");
    int k = T < d ? T : d, lwork, liwork;
    geom_eig_query(k, &lwork, &liwork);
    double *xd = lmd_calloc((size_t)T * (size_t)d, sizeof *xd);
    double *gram = lmd_calloc((size_t)k * (size_t)k, sizeof *gram);
    double *eig = lmd_calloc((size_t)k, sizeof *eig);
    double *work = lmd_calloc((size_t)lwork, sizeof *work);
    int *iwork = lmd_calloc((size_t)liwork, sizeof *iwork);
    geom_spectrum_ws(x, T, d, xd, gram, eig, work, lwork, iwork, liwork, entropy, mev);
    free(xd);
    free(gram);
    free(eig);
    free(work);
    free(iwork);
    return 0;
}

/* scratch for nt threads; slot 0 is the accumulator's own */
static void geom_tws_ensure(lmd_geom_acc *a, int nt) {
    if (a->n_tws >= nt) return;
    int k = a->T < a->d ? a->T : a->d;
    size_t Td = (size_t)a->T * (size_t)a->d;
    a->tws = realloc(a->tws, (size_t)nt * sizeof *a->tws);
    if (!a->tws) lmd_die("out of memory");
    a->tws[0] =
        (struct lmd_geom_tws){a->xn, a->c, a->xd, a->gram, a->eig, a->work, a->iwork, a->inv};
    if (a->n_tws == 0) a->n_tws = 1;
    for (int i = a->n_tws; i < nt; i++) {
        a->tws[i].xn = lmd_calloc(Td, sizeof(float));
        a->tws[i].c = lmd_calloc((size_t)a->T * (size_t)a->T, sizeof(float));
        a->tws[i].xd = lmd_calloc(Td, sizeof(double));
        a->tws[i].gram = lmd_calloc((size_t)k * (size_t)k, sizeof(double));
        a->tws[i].eig = lmd_calloc((size_t)k, sizeof(double));
        a->tws[i].work = lmd_calloc((size_t)a->lwork, sizeof(double));
        a->tws[i].iwork = lmd_calloc((size_t)a->liwork, sizeof(int));
        a->tws[i].inv = lmd_calloc((size_t)a->T, sizeof(double));
    }
    a->n_tws = nt;
}

/* X̂ (row-normalized, the norm in double so long rows do not lose bits) and the upper
 * triangle of C = X̂ X̂ᵀ (row-major) of one (T, d) sequence into xn and c */
static void geom_cosine_ws(const float *xs, int T, int d, float *xn, float *c) {
    for (int t = 0; t < T; t++) {
        const float *row = xs + (size_t)t * d;
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)row[j] * (double)row[j];
        double nrm = sqrt(ss);
        double inv = 1.0 / (nrm > LMD_GEOM_NORM_FLOOR ? nrm : LMD_GEOM_NORM_FLOOR);
        float *out = xn + (size_t)t * d;
        for (int j = 0; j < d; j++) out[j] = (float)((double)row[j] * inv);
    }
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, T, d, 1.0f, xn, d, 0.0f, c, T);
}

/* adds the clipped upper triangle of c to rows [i0, i1) of csum */
static void geom_csum_rows(double *csum, const float *c, int T, int i0, int i1) {
    // Only the upper triangle is summed, row by row: contiguous and half the adds. Writing
    // the mirror entry too (a column walk through T*T doubles) cost 6x more than this
    // loop and ~30% of the whole similarity step at T = 512 (bench/bench_cossim.c).
    for (int i = i0; i < i1; i++) {
        const float *ci = c + (size_t)i * T;
        double *si = csum + lmd_geom_tri_row(T, i);
        for (int j = i; j < T; j++) si[j] += (double)geom_clip1(ci[j]);
    }
}

/* adds the clipped upper triangle of C = G_ij inv_i inv_j (the shared Gram) to rows [i0, i1)
 * of csum. Each C_ij is rounded to float32 before it is added, as the float path's are: sums
 * of float32 values in [-1, 1] are (all but) exact in double, so the totals do not depend on
 * how the sequences were split over ranks and reduced (test_meas_study: ranks_per_model 2
 * equals 1 rank bit for bit); double summands would make them depend on the order. */
static void geom_csum_gram(double *csum, const double *g, const double *inv, int T, int i0,
                           int i1) {
    for (int i = i0; i < i1; i++) {
        const double *gi = g + (size_t)i * T;
        double *si = csum + lmd_geom_tri_row(T, i), vi = inv[i];
        for (int j = i; j < T; j++) si[j] += (double)geom_clip1((float)(gi[j] * vi * inv[j]));
    }
}

// x is (n_seq, T, d); adds to layer `layer` of the accumulator
int lmd_geom_acc_add(lmd_geom_acc *a, int layer, const float *x, long n_seq, lmd_err *err) {
    if (layer < 0 || layer >= a->n_layers)
        return lmd_errf(err, "geometry: layer %d out of range 0..%d", layer, a->n_layers - 1);
    if (n_seq < 0) return lmd_errf(err, "geometry: negative sequence count %ld", n_seq);
    if (n_seq == 0) return 0;
    if (!x) return lmd_errf(err, "geometry: NULL hidden states for layer %d", layer);
    const int T = a->T, d = a->d;
    const size_t Td = (size_t)T * (size_t)d;
    double *csum = a->csum + (size_t)layer * lmd_geom_tri_size(T);
    double *hs = lmd_calloc((size_t)n_seq * 2, sizeof *hs), *ms = hs + n_seq;
    int blas = openblas_get_num_threads(), omp = par_max_threads();
    int nt = blas < omp ? blas : omp;
    if (nt > n_seq) nt = (int)n_seq;
    /* With the spectrum on and T <= d, the spectrum's Gram is X Xᵀ, T x T, and the cosine
     * matrix is that Gram scaled by the inverse norms: one double product serves both
     * (geometry.h, "Precision"). Otherwise C = X̂ X̂ᵀ in float32 and the spectrum forms the
     * smaller Gram itself. */
    const int shared = !a->no_spectrum && T <= d;
    if (nt > 1) {
        /* Several sequences and threads: each thread measures whole sequences (the product,
         * spectrum) with OpenBLAS at one thread, in rounds of nt sequences; each round's C
         * are then summed into csum in sequence order, the rows split over the threads, so
         * every csum entry gets the same additions in the same order as on one thread.
         * Measured (docs/PERFORMANCE.md, 2026-12-02): at 2 threads the previous way (a
         * serial normalization and sum around a 2-thread ssyrk, then only the spectra in
         * parallel) took as long as one thread. */
        geom_tws_ensure(a, nt);
        openblas_set_num_threads(1);
        for (long s0 = 0; s0 < n_seq; s0 += nt) {
            int nr = n_seq - s0 < nt ? (int)(n_seq - s0) : nt;
#pragma omp parallel num_threads(nt)
            {
                int id = par_thread_id();
                const struct lmd_geom_tws *w = &a->tws[id];
                const float *xs = x + (size_t)(s0 + id) * Td;
                int finite = 1;
                if (id < nr) {
                    if (shared)
                        finite = geom_gram_ws(xs, T, d, w->xd, w->gram, w->inv);
                    else
                        geom_cosine_ws(xs, T, d, w->xn, w->c);
                }
#pragma omp barrier
                /* rows in equal-work slices of the upper triangle would balance better;
                 * a static split is close enough for nt <= 4 and keeps it simple */
                int i0 = (int)((long)T * id / nt), i1 = (int)((long)T * (id + 1) / nt);
                for (int k = 0; k < nr; k++) {
                    if (shared)
                        geom_csum_gram(csum, a->tws[k].gram, a->tws[k].inv, T, i0, i1);
                    else
                        geom_csum_rows(csum, a->tws[k].c, T, i0, i1);
                }
                if (shared) { /* every thread past the sums before a gram is overwritten */
#pragma omp barrier
                }
                if (id < nr && !a->no_spectrum) {
                    if (!shared)
                        geom_spectrum_ws(xs, T, d, w->xd, w->gram, w->eig, w->work, a->lwork,
                                         w->iwork, a->liwork, &hs[s0 + id], &ms[s0 + id]);
                    else if (finite)
                        geom_spectrum_gram(w->gram, T, w->eig, w->work, a->lwork, w->iwork,
                                           a->liwork, &hs[s0 + id], &ms[s0 + id]);
                    else
                        hs[s0 + id] = ms[s0 + id] = NAN;
                }
            }
        }
        openblas_set_num_threads(blas);
    } else if (shared) {
        /* the same calls as one thread of the parallel path: OpenBLAS at one thread */
        if (blas > 1) openblas_set_num_threads(1);
        for (long s = 0; s < n_seq; s++) {
            int finite = geom_gram_ws(x + (size_t)s * Td, T, d, a->xd, a->gram, a->inv);
            geom_csum_gram(csum, a->gram, a->inv, T, 0, T);
            if (finite)
                geom_spectrum_gram(a->gram, T, a->eig, a->work, a->lwork, a->iwork, a->liwork,
                                   &hs[s], &ms[s]);
            else
                hs[s] = ms[s] = NAN;
        }
        if (blas > 1) openblas_set_num_threads(blas);
    } else {
        for (long s = 0; s < n_seq; s++) {
            geom_cosine_ws(x + (size_t)s * Td, T, d, a->xn, a->c);
            geom_csum_rows(csum, a->c, T, 0, T);
        }
        /* spectra: OpenBLAS at one thread (the same bits at any thread count) */
        if (!a->no_spectrum) {
            if (blas > 1) openblas_set_num_threads(1);
            for (long s = 0; s < n_seq; s++)
                geom_spectrum_ws(x + (size_t)s * Td, T, d, a->xd, a->gram, a->eig, a->work,
                                 a->lwork, a->iwork, a->liwork, &hs[s], &ms[s]);
            if (blas > 1) openblas_set_num_threads(blas);
        }
    }
    if (a->no_spectrum)
        for (long s = 0; s < n_seq; s++) hs[s] = ms[s] = NAN;
    for (long s = 0; s < n_seq; s++) { /* in sequence order, as one thread adds them */
        a->ent_sum[layer] += hs[s];
        a->mev_sum[layer] += ms[s];
    }
    free(hs);
    a->n_seq[layer] += n_seq;
    return 0;
}

int lmd_geom_alloc(lmd_geom *g, int n_layers, int nbins, lmd_err *err) {
    memset(g, 0, sizeof *g);
    if (n_layers < 1 || nbins < 1)
        return lmd_errf(err, "geometry: invalid result size (%d layers, %d bins)", n_layers, nbins);
    g->n_layers = n_layers;
    g->nbins = nbins;
    g->layer_mean = lmd_calloc((size_t)n_layers, sizeof(double));
    g->offdiag_mean = lmd_calloc((size_t)n_layers, sizeof(double));
    g->hist = lmd_calloc((size_t)n_layers * (size_t)nbins, sizeof(double));
    g->sv_entropy = lmd_calloc((size_t)n_layers, sizeof(double));
    g->mev = lmd_calloc((size_t)n_layers, sizeof(double));
    for (int l = 0; l < n_layers; l++) {
        g->layer_mean[l] = g->offdiag_mean[l] = g->sv_entropy[l] = g->mev[l] = NAN;
    }
    for (size_t i = 0; i < (size_t)n_layers * (size_t)nbins; i++) g->hist[i] = NAN;
    g->spearman = g->kendall = NAN;
    for (int i = 0; i < LMD_GEOM_NLAST; i++) g->last_n_mean[i] = NAN;
    g->half_n = n_layers / 2;
    return 0;
}

void lmd_geom_free(lmd_geom *g) {
    if (!g) return;
    free(g->layer_mean);
    free(g->offdiag_mean);
    free(g->hist);
    free(g->sv_entropy);
    free(g->mev);
    memset(g, 0, sizeof *g);
}

static double geom_last_n(const double *m, int L1, int N) {
    if (N < 1 || N > L1) return NAN;
    double s = 0.0;
    for (int l = L1 - N; l < L1; l++) s += m[l];
    return s / N;
}

void lmd_geom_finish(lmd_geom *g) {
    int L1 = g->n_layers;
    double *idx = lmd_calloc((size_t)L1, sizeof *idx);
    for (int l = 0; l < L1; l++) idx[l] = (double)l;
    g->spearman = lmd_spearman(g->layer_mean, idx, (size_t)L1);
    g->kendall = lmd_kendall_tau_b(g->layer_mean, idx, (size_t)L1);
    free(idx);
    for (int N = 1; N <= 5; N++) g->last_n_mean[N - 1] = geom_last_n(g->layer_mean, L1, N);
    g->half_n = L1 / 2;
    g->last_n_mean[5] = geom_last_n(g->layer_mean, L1, g->half_n);
}

/* Metrics of one layer from its averaged cosine matrix. cavg is (T, T); hist is (nbins). */
static void geom_layer_stats(const double *cavg, int T, int nbins, double *mean, double *offdiag,
                             double *hist) {
    size_t TT = (size_t)T * (size_t)T;
    double total = 0.0, trace = 0.0;
    int finite = 1;
    for (size_t i = 0; i < TT; i++) {
        total += cavg[i];
        if (!isfinite(cavg[i])) finite = 0;
    }
    for (int i = 0; i < T; i++) trace += cavg[(size_t)i * T + i];
    *mean = total / (double)TT;
    *offdiag = T > 1 ? (total - trace) / ((double)T * (double)(T - 1)) : NAN;
    if (!finite) {
        for (int b = 0; b < nbins; b++) hist[b] = NAN;
        return;
    }
    for (int b = 0; b < nbins; b++) hist[b] = 0.0;
    for (size_t i = 0; i < TT; i++) {
        // (v + 1) / w with w = 2 / nbins; entries are within [-1, 1] because every summand
        // was clipped, and the closed last bin takes v = 1.
        long b = (long)floor((cavg[i] + 1.0) * 0.5 * (double)nbins);
        if (b < 0) b = 0;
        if (b >= nbins) b = nbins - 1;
        hist[b] += 1.0;
    }
    double w = 2.0 / (double)nbins;
    for (int b = 0; b < nbins; b++) hist[b] /= (double)TT * w;
}

int lmd_geom_acc_finish(const lmd_geom_acc *a, lmd_geom *g, lmd_err *err) {
    memset(g, 0, sizeof *g);
    for (int l = 0; l < a->n_layers; l++) {
        if (a->n_seq[l] <= 0)
            return lmd_errf(err, "geometry: layer %d has no sequences to average", l);
        if (a->n_seq[l] != a->n_seq[0])
            return lmd_errf(err,
                            "geometry: layer %d has %ld sequences but layer 0 has %ld; every "
                            "layer must see the same sequences",
                            l, a->n_seq[l], a->n_seq[0]);
    }
    if (lmd_geom_alloc(g, a->n_layers, a->nbins, err)) return -1;
    g->T = a->T;
    g->d = a->d;
    g->n_seq = a->n_seq[0];
    size_t TT = (size_t)a->T * (size_t)a->T;
    double *cavg = lmd_calloc(TT, sizeof *cavg);
    for (int l = 0; l < a->n_layers; l++) {
        const double *cs = a->csum + (size_t)l * lmd_geom_tri_size(a->T);
        double n = (double)a->n_seq[l];
        // cs holds the upper triangle (acc_add); C̄ is symmetric, so mirror it
        for (int i = 0; i < a->T; i++)
            for (int j = i; j < a->T; j++)
                cavg[(size_t)i * a->T + j] = cavg[(size_t)j * a->T + i] =
                    cs[lmd_geom_tri_row(a->T, i) + j] / n;
        geom_layer_stats(cavg, a->T, a->nbins, &g->layer_mean[l], &g->offdiag_mean[l],
                         g->hist + (size_t)l * a->nbins);
        g->sv_entropy[l] = a->ent_sum[l] / n;
        g->mev[l] = a->mev_sum[l] / n;
    }
    free(cavg);
    lmd_geom_finish(g);
    return 0;
}

// hidden is (L1, n_seq, T, d)
int lmd_geom_compute(lmd_geom *g, const float *hidden, int n_layers, long n_seq, int T, int d,
                     int nbins, lmd_err *err) {
    memset(g, 0, sizeof *g);
    lmd_geom_acc a;
    if (lmd_geom_acc_init(&a, n_layers, T, d, nbins, err)) return -1;
    size_t per_layer = (size_t)n_seq * (size_t)T * (size_t)d;
    int rc = 0;
    for (int l = 0; l < n_layers && rc == 0; l++)
        rc = lmd_geom_acc_add(&a, l, hidden ? hidden + (size_t)l * per_layer : NULL, n_seq, err);
    if (rc == 0) rc = lmd_geom_acc_finish(&a, g, err);
    lmd_geom_acc_free(&a);
    return rc;
}

/* ---- JSON ---- */

json_t *lmd_geom_json(const lmd_geom *g) {
    size_t L1 = (size_t)g->n_layers;
    json_t *o = json_object();
    if (!o) lmd_die("jansson could not build the geometry object (out of memory?)");
    lmd_json_set(o, "n_layers", json_integer(g->n_layers));
    lmd_json_set(o, "n_sequences", json_integer(g->n_seq));
    lmd_json_set(o, "seq_len", json_integer(g->T));
    lmd_json_set(o, "n_embd", json_integer(g->d));
    lmd_json_set(o, "hist_bins", json_integer(g->nbins));
    lmd_json_set(o, "layer_mean_cossim", lmd_json_nums(g->layer_mean, L1));
    lmd_json_set(o, "offdiag_mean_cossim", lmd_json_nums(g->offdiag_mean, L1));
    lmd_json_set(o, "spearman", lmd_json_num(g->spearman));
    lmd_json_set(o, "kendall", lmd_json_num(g->kendall));
    json_t *last = json_object();
    if (!last) lmd_die("jansson could not build the geometry object (out of memory?)");
    for (int N = 1; N <= 5; N++) {
        char key[4];
        snprintf(key, sizeof key, "%d", N);
        lmd_json_set(last, key, lmd_json_num(g->last_n_mean[N - 1]));
    }
    lmd_json_set(last, "half", lmd_json_num(g->last_n_mean[5]));
    lmd_json_set(o, "last_n_mean", last);
    lmd_json_set(o, "last_n_half", json_integer(g->half_n));
    lmd_json_set(o, "singular_value_entropy", lmd_json_nums(g->sv_entropy, L1));
    lmd_json_set(o, "mev", lmd_json_nums(g->mev, L1));
    json_t *hist = json_array();
    if (!hist) lmd_die("jansson could not build the geometry object (out of memory?)");
    for (size_t l = 0; l < L1; l++)
        lmd_json_append(hist, lmd_json_nums(g->hist + l * (size_t)g->nbins, (size_t)g->nbins));
    lmd_json_set(o, "cossim_hist", hist);
    return o;
}

int lmd_geom_print_json(FILE *f, const lmd_geom *g, lmd_err *err) {
    if (lmd_json_dump(f, lmd_geom_json(g), 17, err))
        return lmd_err_prefix(err, "writing geometry JSON");
    return 0;
}
