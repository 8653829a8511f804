/* test_geometry.c — cosine geometry, histogram, spectra and depth trend of analysis/geometry.h:
 * constructed cases with known answers, edge cases (zero rows, NaN, bad calls), and the
 * float64 numpy/scipy reference tests/ref/geometry_ref.h5 (from gen_geometry_ref.py).
 * Tolerances are stated per check; the cosine path runs in float32 (ssyrk), the spectra and
 * all reductions in double. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geometry.h"
#include "testutil.h"

/* Compares doubles: |got - want| <= atol + rtol*|want|, NaN matching NaN. Prints the worst
 * difference either way; counts one check. */
static int cmp_d(const char *what, const double *got, const double *want, size_t n, double atol,
                 double rtol) {
    double worst = 0.0;
    size_t worst_i = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        int ok;
        double d;
        if (isnan(want[i]) || isnan(got[i])) {
            ok = isnan(want[i]) && isnan(got[i]);
            d = ok ? 0.0 : INFINITY;
        } else {
            d = fabs(got[i] - want[i]);
            ok = d <= atol + rtol * fabs(want[i]);
        }
        if (!ok) bad++;
        if (d > worst) {
            worst = d;
            worst_i = i;
        }
    }
    tu_checks++;
    printf(
        "%-44s n=%-5zu worst |diff| = %.3e at %zu (got %.10g, want %.10g) atol=%.0e rtol=%.0e %s\n",
        what, n, worst, worst_i, n ? got[worst_i] : 0.0, n ? want[worst_i] : 0.0, atol, rtol,
        bad ? "FAIL" : "ok");
    if (bad) tu_failures++;
    return bad ? 1 : 0;
}

static int cmp1(const char *what, double got, double want, double atol) {
    return cmp_d(what, &got, &want, 1, atol, 0.0);
}

static double *dvec(size_t n) {
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static float *fvec(size_t n) {
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* One-layer, one-call metrics of x (n_seq, T, d). */
static int geom1(lmd_geom *g, const float *x, long n_seq, int T, int d, int nbins) {
    lmd_err err = {{0}};
    int rc = lmd_geom_compute(g, x, 1, n_seq, T, d, nbins, &err);
    TU_CHECK(rc == 0, "lmd_geom_compute: %s", err.msg);
    return rc;
}

static double hist_integral(const lmd_geom *g, int layer) {
    double s = 0.0;
    for (int b = 0; b < g->nbins; b++) s += g->hist[(size_t)layer * g->nbins + b];
    return s * 2.0 / g->nbins;
}

/* Rows all positive multiples of one vector: every cosine is 1. In float32 many products
 * come out a few ulp above 1 for this data; the clip must bring them back, so the means are
 * checked one-sided (<= 1 exactly) as well as to 1e-6 (float32 products). */
static void test_parallel(void) {
    enum { NS = 2, T = 9, D = 24 };
    float *x = fvec((size_t)NS * T * D);
    for (int s = 0; s < NS; s++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < D; j++)
                x[((size_t)s * T + t) * D + j] =
                    (float)((0.3 + 1.7 * t + s) * sin(1.0 + 2.3 * j + 0.1 * j * j));
    lmd_geom g;
    if (geom1(&g, x, NS, T, D, LMD_GEOM_NBINS) == 0) {
        TU_CHECK(g.layer_mean[0] <= 1.0 && g.offdiag_mean[0] <= 1.0,
                 "parallel: means above 1 (clip missing?): %.17g %.17g", g.layer_mean[0],
                 g.offdiag_mean[0]);
        cmp1("parallel: layer mean = 1", g.layer_mean[0], 1.0, 1e-6);
        cmp1("parallel: off-diagonal mean = 1", g.offdiag_mean[0], 1.0, 1e-6);
        cmp1("parallel: last bin density = 1/w", g.hist[LMD_GEOM_NBINS - 1], LMD_GEOM_NBINS / 2.0,
             1e-12);
        cmp1("parallel: histogram integral", hist_integral(&g, 0), 1.0, 1e-12);
        // rank one: a single nonzero singular value -> entropy 0, MEV 1 (up to float rounding
        // of x, which makes it rank one only to ~1e-7 relative)
        cmp1("parallel: MEV of a rank-1 matrix", g.mev[0], 1.0, 1e-9);
        lmd_geom_free(&g);
    }
    free(x);
}

/* Rows mutually orthogonal (T <= d): C = I, so off-diagonal mean 0, layer mean 1/T, and the
 * histogram has T of T*T entries at 1 and the rest at 0. First exact axis rows, then rows of
 * a Householder reflection (orthonormal in double, rounded to float: tolerance 1e-6). */
static void test_orthogonal(void) {
    enum { T = 8, D = 12 };
    float *x = fvec((size_t)T * D);
    for (int t = 0; t < T; t++) x[(size_t)t * D + (t * 5) % D] = (float)(t % 2 ? -(t + 1) : t + 1);
    lmd_geom g;
    if (geom1(&g, x, 1, T, D, LMD_GEOM_NBINS) == 0) {
        cmp1("axis rows: off-diagonal mean = 0", g.offdiag_mean[0], 0.0, 1e-12);
        cmp1("axis rows: layer mean = 1/T", g.layer_mean[0], 1.0 / T, 1e-12);
        double w = 2.0 / LMD_GEOM_NBINS;
        cmp1("axis rows: density of bin [0, w)", g.hist[LMD_GEOM_NBINS / 2],
             (double)(T * T - T) / (T * T) / w, 1e-12);
        cmp1("axis rows: density of last bin", g.hist[LMD_GEOM_NBINS - 1], 1.0 / T / w, 1e-12);
        lmd_geom_free(&g);
    }
    // H = I - 2 v vᵀ / vᵀv; its first T rows are orthonormal
    double v[D], vv = 0.0;
    for (int j = 0; j < D; j++) {
        v[j] = 1.0 + 0.37 * j - 0.05 * j * j;
        vv += v[j] * v[j];
    }
    for (int t = 0; t < T; t++)
        for (int j = 0; j < D; j++)
            x[(size_t)t * D + j] = (float)((t + 1) * ((t == j) - 2.0 * v[t] * v[j] / vv));
    if (geom1(&g, x, 1, T, D, LMD_GEOM_NBINS) == 0) {
        cmp1("rotated orthogonal rows: off-diagonal mean = 0", g.offdiag_mean[0], 0.0, 1e-6);
        cmp1("rotated orthogonal rows: layer mean = 1/T", g.layer_mean[0], 1.0 / T, 1e-6);
        lmd_geom_free(&g);
    }
    free(x);
}

/* The density integrates to 1 for arbitrary data and bin counts. Tolerance 1e-12. */
static void test_hist_integral(void) {
    enum { NS = 3, T = 11, D = 5 };
    float *x = fvec((size_t)NS * T * D);
    unsigned s = 7u;
    for (size_t i = 0; i < (size_t)NS * T * D; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((double)(s >> 8) / (1u << 24) - 0.5);
    }
    int bins[3] = {128, 7, 1};
    for (int k = 0; k < 3; k++) {
        lmd_geom g;
        if (geom1(&g, x, NS, T, D, bins[k]) == 0) {
            char what[64];
            snprintf(what, sizeof what, "histogram integral, %d bins", bins[k]);
            cmp1(what, hist_integral(&g, 0), 1.0, 1e-12);
            lmd_geom_free(&g);
        }
    }
    free(x);
}

static double entropy_of(const double *s, int k) {
    double sum = 0.0, h = 0.0;
    for (int i = 0; i < k; i++) sum += s[i];
    for (int i = 0; i < k; i++)
        if (s[i] > 0) h -= s[i] / sum * log2(s[i] / sum);
    return h;
}

static double mev_of(const double *s, int k) {
    double mx = 0.0, sum = 0.0;
    for (int i = 0; i < k; i++) {
        if (s[i] > mx) mx = s[i];
        sum += s[i] * s[i];
    }
    return mx * mx / sum;
}

/* Known spectra: X = U diag(s) Vᵀ.
 * (1) U, V signed permutations — X is exact in float, so entropy and MEV must match the
 *     formulas to 1e-12, including a zero singular value; both Gram branches (T<d, T>d).
 * (2) Scaled identity block c [I_k 0]: entropy log2 k, MEV 1/k.
 * (3) U, V Householder reflections (dense X, rounded to float): tolerance 1e-5, from the
 *     ~1e-7 relative rounding of X's entries. */
static void test_spectra(void) {
    lmd_err err = {{0}};
    double h, m;
    {
        enum { T = 6, D = 10, K = 6 };
        double s[K] = {4, 3, 2, 1, 0.5, 0};
        float x[T * D] = {0}, xt[D * T] = {0};
        for (int i = 0; i < K; i++) {
            int row = (i * 5) % T, col = (i * 3 + 1) % D;
            float v = (float)(i % 2 ? -s[i] : s[i]);
            x[row * D + col] = v;
            xt[col * T + row] = v; // the transpose: same singular values, other branch
        }
        TU_CHECK(lmd_geom_spectrum(x, T, D, &h, &m, &err) == 0, "%s", err.msg);
        cmp1("permutation spectrum T<d: entropy", h, entropy_of(s, K), 1e-12);
        cmp1("permutation spectrum T<d: MEV", m, mev_of(s, K), 1e-12);
        TU_CHECK(lmd_geom_spectrum(xt, D, T, &h, &m, &err) == 0, "%s", err.msg);
        cmp1("permutation spectrum T>d: entropy", h, entropy_of(s, K), 1e-12);
        cmp1("permutation spectrum T>d: MEV", m, mev_of(s, K), 1e-12);
    }
    {
        enum { T = 10, D = 16, K = 7 };
        float x[T * D] = {0};
        for (int i = 0; i < K; i++) x[i * D + i] = 2.5f;
        TU_CHECK(lmd_geom_spectrum(x, T, D, &h, &m, &err) == 0, "%s", err.msg);
        cmp1("scaled identity block: entropy = log2 k", h, log2((double)K), 1e-12);
        cmp1("scaled identity block: MEV = 1/k", m, 1.0 / K, 1e-12);
    }
    {
        enum { T = 12, D = 5, K = 5 };
        double s[K] = {10, 4, 2.5, 1, 0.1};
        double u[T], v[D], uu = 0, vv = 0;
        for (int i = 0; i < T; i++) {
            u[i] = sin(1.0 + i);
            uu += u[i] * u[i];
        }
        for (int j = 0; j < D; j++) {
            v[j] = cos(0.5 + 2 * j);
            vv += v[j] * v[j];
        }
        float x[T * D];
        for (int i = 0; i < T; i++)
            for (int j = 0; j < D; j++) {
                double acc = 0.0;
                for (int k = 0; k < K; k++) {
                    double U = (i == k) - 2.0 * u[i] * u[k] / uu;
                    double V = (j == k) - 2.0 * v[j] * v[k] / vv;
                    acc += U * s[k] * V;
                }
                x[i * D + j] = (float)acc;
            }
        TU_CHECK(lmd_geom_spectrum(x, T, D, &h, &m, &err) == 0, "%s", err.msg);
        cmp1("rotated spectrum: entropy", h, entropy_of(s, K), 1e-5);
        cmp1("rotated spectrum: MEV", m, mev_of(s, K), 1e-6);
    }
    {
        float z[4 * 3] = {0};
        TU_CHECK(lmd_geom_spectrum(z, 4, 3, &h, &m, &err) == 0, "%s", err.msg);
        TU_CHECK(isnan(h) && isnan(m), "all-zero matrix: entropy %g MEV %g, want NaN", h, m);
        TU_CHECK(lmd_geom_spectrum(z, 0, 3, &h, &m, &err) == -1, "T = 0 accepted");
    }
}

/* Zero and tiny rows: the 1e-3 norm floor keeps everything finite.
 * Rows: e0, 2 e0, 0, 1e-4 e1 -> x̂ = e0, e0, 0, 0.1 e1, so
 *   C = [[1,1,0,0],[1,1,0,0],[0,0,0,0],[0,0,0,0.01]]: total 4.01, trace 2.01,
 *   layer mean 4.01/16, off-diagonal mean 2/12. Tolerance 1e-6 (float32 of 0.1^2). */
static void test_zero_rows(void) {
    enum { T = 4, D = 3 };
    float x[T * D] = {1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1e-4f, 0};
    lmd_geom g;
    if (geom1(&g, x, 1, T, D, LMD_GEOM_NBINS) == 0) {
        cmp1("zero/tiny rows: layer mean", g.layer_mean[0], 4.01 / 16, 1e-6);
        cmp1("zero/tiny rows: off-diagonal mean", g.offdiag_mean[0], 2.0 / 12, 1e-6);
        cmp1("zero/tiny rows: histogram integral", hist_integral(&g, 0), 1.0, 1e-12);
        TU_CHECK(isfinite(g.sv_entropy[0]) && isfinite(g.mev[0]),
                 "zero rows: spectrum not finite (%g, %g)", g.sv_entropy[0], g.mev[0]);
        lmd_geom_free(&g);
    }
    // a whole sequence of zeros: cosines are 0 (finite), the spectrum is undefined (NaN)
    float z[T * D] = {0};
    if (geom1(&g, z, 1, T, D, LMD_GEOM_NBINS) == 0) {
        cmp1("all-zero sequence: layer mean", g.layer_mean[0], 0.0, 0.0);
        TU_CHECK(isnan(g.sv_entropy[0]), "all-zero sequence: entropy %g, want NaN",
                 g.sv_entropy[0]);
        lmd_geom_free(&g);
    }
}

/* A NaN hidden state (diverged model) gives NaN metrics for that layer, no crash. */
static void test_nan_input(void) {
    enum { T = 5, D = 4 };
    float x[T * D];
    for (int i = 0; i < T * D; i++) x[i] = (float)(i % 7) - 2.0f;
    x[6] = NAN;
    lmd_geom g;
    if (geom1(&g, x, 1, T, D, LMD_GEOM_NBINS) == 0) {
        TU_CHECK(isnan(g.layer_mean[0]) && isnan(g.offdiag_mean[0]), "NaN input: means %g %g",
                 g.layer_mean[0], g.offdiag_mean[0]);
        TU_CHECK(isnan(g.hist[0]) && isnan(g.hist[LMD_GEOM_NBINS - 1]), "NaN input: hist not NaN");
        TU_CHECK(isnan(g.sv_entropy[0]) && isnan(g.mev[0]), "NaN input: spectrum not NaN");
        lmd_geom_free(&g);
    }
}

/* Misuse is reported through lmd_err, never a crash. */
static void test_errors(void) {
    lmd_err err = {{0}};
    lmd_geom_acc a;
    TU_CHECK(lmd_geom_acc_init(&a, 0, 4, 4, 128, &err) == -1, "0 layers accepted");
    TU_CHECK(lmd_geom_acc_init(&a, 2, 4, 4, 0, &err) == -1, "0 bins accepted");
    TU_CHECK(lmd_geom_acc_init(&a, 2, 4, 3, 16, &err) == 0, "init: %s", err.msg);
    float x[2 * 4 * 3];
    for (int i = 0; i < 24; i++) x[i] = (float)sin(i);
    TU_CHECK(lmd_geom_acc_add(&a, 2, x, 1, &err) == -1, "layer 2 of 2 accepted");
    TU_CHECK(strstr(err.msg, "layer 2") != NULL, "message does not name the layer: %s", err.msg);
    TU_CHECK(lmd_geom_acc_add(&a, 0, x, -1, &err) == -1, "negative n_seq accepted");
    TU_CHECK(lmd_geom_acc_add(&a, 0, NULL, 1, &err) == -1, "NULL data accepted");
    TU_CHECK(lmd_geom_acc_add(&a, 0, NULL, 0, &err) == 0, "empty add rejected: %s", err.msg);
    lmd_geom g;
    TU_CHECK(lmd_geom_acc_finish(&a, &g, &err) == -1, "finish with no sequences accepted");
    TU_CHECK(lmd_geom_acc_add(&a, 0, x, 2, &err) == 0, "add: %s", err.msg);
    TU_CHECK(lmd_geom_acc_add(&a, 1, x, 1, &err) == 0, "add: %s", err.msg);
    TU_CHECK(lmd_geom_acc_finish(&a, &g, &err) == -1, "finish with 2 vs 1 sequences accepted");
    printf("  expected error: %s\n", err.msg);
    TU_CHECK(lmd_geom_acc_add(&a, 1, x + 12, 1, &err) == 0, "add: %s", err.msg);
    TU_CHECK(lmd_geom_acc_finish(&a, &g, &err) == 0, "finish: %s", err.msg);
    TU_CHECK(g.n_seq == 2 && g.n_layers == 2, "n_seq %ld n_layers %d", g.n_seq, g.n_layers);
    // both layers saw the same two sequences -> identical metrics
    cmp1("same sequences, same layer mean", g.layer_mean[1], g.layer_mean[0], 0.0);
    lmd_geom_free(&g);
    lmd_geom_acc_free(&a);
}

/* Depth trend from given layer means: last-N by hand, NaN for N > L1, rho/tau of a monotone
 * and of a constant profile. */
static void test_trend(void) {
    lmd_err err = {{0}};
    lmd_geom g;
    TU_CHECK(lmd_geom_alloc(&g, 13, 4, &err) == 0, "%s", err.msg);
    for (int l = 0; l < 13; l++) g.layer_mean[l] = 0.1 + 0.01 * l * l; // increasing
    lmd_geom_finish(&g);
    cmp1("13 layers increasing: spearman", g.spearman, 1.0, 1e-15);
    cmp1("13 layers increasing: kendall", g.kendall, 1.0, 1e-15);
    double want[LMD_GEOM_NLAST];
    for (int k = 0; k < LMD_GEOM_NLAST; k++) {
        int N = k < 5 ? k + 1 : 6; // floor(13/2) = 6
        double s = 0.0;
        for (int l = 13 - N; l < 13; l++) s += g.layer_mean[l];
        want[k] = s / N;
    }
    TU_CHECK(g.half_n == 6, "half_n %d, want 6", g.half_n);
    cmp_d("13 layers: last-N means", g.last_n_mean, want, LMD_GEOM_NLAST, 1e-15, 0.0);
    lmd_geom_free(&g);

    TU_CHECK(lmd_geom_alloc(&g, 3, 4, &err) == 0, "%s", err.msg);
    for (int l = 0; l < 3; l++) g.layer_mean[l] = 0.25; // constant: no trend
    lmd_geom_finish(&g);
    TU_CHECK(isnan(g.spearman) && isnan(g.kendall), "constant profile: rho %g tau %g", g.spearman,
             g.kendall);
    TU_CHECK(isnan(g.last_n_mean[3]) && isnan(g.last_n_mean[4]), "N > L1 not NaN");
    cmp1("3 layers: last-3 mean", g.last_n_mean[2], 0.25, 0.0);
    cmp1("3 layers: half (N=1)", g.last_n_mean[5], 0.25, 0.0);

    // JSON: NaN written as null, keys present
    FILE *f = tmpfile();
    TU_CHECK(f != NULL, "tmpfile failed");
    if (f) {
        g.n_seq = 1;
        TU_CHECK(lmd_geom_print_json(f, &g, &err) == 0, "print_json: %s", err.msg);
        long len = ftell(f);
        char *buf = calloc((size_t)len + 1, 1);
        rewind(f);
        size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
        TU_CHECK(buf && got == (size_t)len, "reading back JSON");
        if (buf) {
            const char *keys[] = {"\"layer_mean_cossim\": [",
                                  "\"offdiag_mean_cossim\": [",
                                  "\"spearman\": null",
                                  "\"kendall\": null",
                                  "\"last_n_mean\": {\"1\": 0.25",
                                  "\"4\": null, \"5\": null",
                                  "\"half\": 0.25}",
                                  "\"singular_value_entropy\": [",
                                  "\"mev\": [",
                                  "\"cossim_hist\": ["};
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
                TU_CHECK(strstr(buf, keys[k]) != NULL, "JSON lacks %s:\n%s", keys[k], buf);
            TU_CHECK(strstr(buf, "nan") == NULL && strstr(buf, "inf") == NULL,
                     "JSON holds nan/inf:\n%s", buf);
            free(buf);
        }
        fclose(f);
    }
    lmd_geom_free(&g);
}

/* ---- the numpy reference ---- */

static int h5_read(hid_t g, const char *name, hid_t memtype, void *buf, size_t n) {
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) {
        TU_CHECK(0, "geometry_ref.h5: cannot open dataset %s", name);
        return -1;
    }
    hid_t sp = H5Dget_space(d);
    hssize_t npts = H5Sget_simple_extent_npoints(sp);
    int rc = 0;
    if (npts != (hssize_t)n) {
        TU_CHECK(0, "geometry_ref.h5: %s has %lld values, expected %zu", name, (long long)npts, n);
        rc = -1;
    } else if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        TU_CHECK(0, "geometry_ref.h5: reading %s failed", name);
        rc = -1;
    }
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

static void test_reference_group(hid_t file, const char *name) {
    hid_t g = H5Gopen2(file, name, H5P_DEFAULT);
    if (g < 0) {
        TU_CHECK(0, "geometry_ref.h5: no group /%s", name);
        return;
    }
    hid_t ds = H5Dopen2(g, "hidden", H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hsize_t dims[4] = {0};
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd == 4) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    long long nbins = 0;
    hid_t at = H5Aopen(g, "nbins", H5P_DEFAULT);
    if (at >= 0) {
        if (H5Aread(at, H5T_NATIVE_LLONG, &nbins) < 0) nbins = 0;
        H5Aclose(at);
    }
    TU_CHECK(nd == 4 && nbins > 0, "/%s: hidden must be 4-D (got %d) and nbins > 0 (got %lld)",
             name, nd, nbins);
    if (nd != 4 || nbins <= 0) {
        H5Gclose(g);
        return;
    }
    int L1 = (int)dims[0], T = (int)dims[2], D = (int)dims[3];
    long NS = (long)dims[1];
    int NB = (int)nbins;
    size_t per_layer = (size_t)NS * T * D;
    float *hidden = fvec((size_t)L1 * per_layer);
    double *lm = dvec(L1), *om = dvec(L1), *he = dvec(L1), *mv = dvec(L1);
    double *hist = dvec((size_t)L1 * NB), lastn[LMD_GEOM_NLAST], rho = 0, tau = 0;
    int rc = h5_read(g, "hidden", H5T_NATIVE_FLOAT, hidden, (size_t)L1 * per_layer);
    rc |= h5_read(g, "layer_mean", H5T_NATIVE_DOUBLE, lm, L1);
    rc |= h5_read(g, "offdiag_mean", H5T_NATIVE_DOUBLE, om, L1);
    rc |= h5_read(g, "sv_entropy", H5T_NATIVE_DOUBLE, he, L1);
    rc |= h5_read(g, "mev", H5T_NATIVE_DOUBLE, mv, L1);
    rc |= h5_read(g, "hist", H5T_NATIVE_DOUBLE, hist, (size_t)L1 * NB);
    rc |= h5_read(g, "last_n_mean", H5T_NATIVE_DOUBLE, lastn, LMD_GEOM_NLAST);
    rc |= h5_read(g, "spearman", H5T_NATIVE_DOUBLE, &rho, 1);
    rc |= h5_read(g, "kendall", H5T_NATIVE_DOUBLE, &tau, 1);
    H5Gclose(g);
    if (rc == 0) {
        printf("reference /%s: L1=%d n_seq=%ld T=%d d=%d bins=%d\n", name, L1, NS, T, D, NB);
        // Accumulate in uneven chunks (1 sequence, then the rest) to exercise several adds.
        lmd_err err = {{0}};
        lmd_geom_acc a;
        lmd_geom g1, g2;
        int ok = lmd_geom_acc_init(&a, L1, T, D, NB, &err) == 0;
        for (int l = 0; l < L1 && ok; l++) {
            const float *xl = hidden + (size_t)l * per_layer;
            ok = lmd_geom_acc_add(&a, l, xl, 1, &err) == 0 &&
                 lmd_geom_acc_add(&a, l, xl + (size_t)T * D, NS - 1, &err) == 0;
        }
        ok = ok && lmd_geom_acc_finish(&a, &g1, &err) == 0;
        lmd_geom_acc_free(&a);
        TU_CHECK(ok, "/%s: chunked accumulation: %s", name, err.msg);
        if (ok) {
            char w[96];
            // float32 X̂ X̂ᵀ: entries are good to ~1e-7; the means of 256-400 of them to 2e-6
            snprintf(w, sizeof w, "/%s layer_mean", name);
            cmp_d(w, g1.layer_mean, lm, L1, 2e-6, 0.0);
            snprintf(w, sizeof w, "/%s offdiag_mean", name);
            cmp_d(w, g1.offdiag_mean, om, L1, 2e-6, 0.0);
            // every averaged cosine is > 1e-5 from an interior edge (generator), so the bin
            // counts must agree exactly: densities to rounding
            snprintf(w, sizeof w, "/%s cossim_hist", name);
            cmp_d(w, g1.hist, hist, (size_t)L1 * NB, 1e-9, 0.0);
            // double Gram + dsyevd vs numpy SVD of the same float32 data; the exactly-zero
            // singular value of a matrix with a zero row comes out as ~1e-8 s_1 via the Gram
            // matrix, hence 1e-6 rather than 1e-12 for the entropy
            snprintf(w, sizeof w, "/%s singular_value_entropy", name);
            cmp_d(w, g1.sv_entropy, he, L1, 1e-6, 0.0);
            snprintf(w, sizeof w, "/%s mev", name);
            cmp_d(w, g1.mev, mv, L1, 1e-9, 0.0);
            // layer means are far apart, so ranks are exact
            snprintf(w, sizeof w, "/%s spearman", name);
            cmp_d(w, &g1.spearman, &rho, 1, 1e-12, 0.0);
            snprintf(w, sizeof w, "/%s kendall", name);
            cmp_d(w, &g1.kendall, &tau, 1, 1e-12, 0.0);
            snprintf(w, sizeof w, "/%s last_n_mean", name);
            cmp_d(w, g1.last_n_mean, lastn, LMD_GEOM_NLAST, 2e-6, 0.0);
            // one-shot must equal the chunked accumulation bit for bit (same operation order)
            if (lmd_geom_compute(&g2, hidden, L1, NS, T, D, NB, &err) == 0) {
                snprintf(w, sizeof w, "/%s one-shot vs chunked layer_mean", name);
                cmp_d(w, g2.layer_mean, g1.layer_mean, L1, 0.0, 0.0);
                snprintf(w, sizeof w, "/%s one-shot vs chunked entropy", name);
                cmp_d(w, g2.sv_entropy, g1.sv_entropy, L1, 0.0, 0.0);
                lmd_geom_free(&g2);
            } else {
                TU_CHECK(0, "/%s: lmd_geom_compute: %s", name, err.msg);
            }
            lmd_geom_free(&g1);
        }
    }
    free(hidden);
    free(lm);
    free(om);
    free(he);
    free(mv);
    free(hist);
}

static void test_reference(void) {
    const char *dir = getenv("LMDISP_TESTS");
    char path[1024];
    snprintf(path, sizeof path, "%s/ref/geometry_ref.h5", dir ? dir : ".");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); // we report failures ourselves
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    TU_CHECK(f >= 0, "cannot open %s (run tests/gen_geometry_ref.py)", path);
    if (f < 0) return;
    test_reference_group(f, "a");
    test_reference_group(f, "b");
    H5Fclose(f);
}

int main(void) {
    test_parallel();
    test_orthogonal();
    test_hist_integral();
    test_spectra();
    test_zero_rows();
    test_nan_input();
    test_errors();
    test_trend();
    test_reference();
    return tu_summary("test_geometry");
}
