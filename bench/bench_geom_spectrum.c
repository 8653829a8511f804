/* bench_geom_spectrum.c — cost of the spectra in the streamed measurement (analysis/geometry.c)
 * at one sequence: the Gram (float -> double, dsyrk), the eigenvalues with LAPACK's one-stage
 * dsyevd('N') that geometry.c calls against the two-stage dsyevd_2stage('N') (BLAS3 band
 * reduction + bulge chasing; measured here at T 512, d 768: 0.6-0.9x the speed of dsyevd, so
 * not used), and the whole lmd_geom_acc_add with and without spectra. Each round runs both
 * solvers; prints each round, the medians and max |s_i - s_i'| / s_1 between them.
 *
 *   bench_geom_spectrum [--seq T] [--hidden d] [--rounds R] [--threads N]
 *
 * X: random rows with a shared offset direction (like hidden states: one dominant s_1). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blascore.h"
#include "geometry.h"
#include "gpt.h"

extern void dsyevd_(const char *, const char *, const int *, double *, const int *, double *,
                    double *, const int *, int *, const int *, int *, size_t, size_t);
extern void dsyevd_2stage_(const char *, const char *, const int *, double *, const int *, double *,
                           double *, const int *, int *, const int *, int *, size_t, size_t);

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double med(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

int main(int argc, char **argv) {
    lmd_blas_core_select(argv);
    int T = 512, d = 768, R = 7, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seq"))
            T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden"))
            d = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            R = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_geom_spectrum: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    gpt_set_threads(threads);
    int k = T < d ? T : d;
    size_t Td = (size_t)T * d;
    float *x = lmd_aligned_alloc(Td * sizeof(float));
    double *xd = lmd_aligned_alloc(Td * sizeof(double));
    double *g0 = lmd_aligned_alloc((size_t)k * k * sizeof(double));
    double *g = lmd_aligned_alloc((size_t)k * k * sizeof(double));
    double *w1 = lmd_calloc((size_t)k, sizeof(double)), *w2 = lmd_calloc((size_t)k, sizeof(double));
    lmd_rng r;
    lmd_rng_seed(&r, 7, 1);
    float *dir = lmd_calloc((size_t)d, sizeof(float));
    for (int j = 0; j < d; j++) dir[j] = (float)lmd_rng_normal(&r);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < d; j++)
            x[(size_t)t * d + j] = (float)(lmd_rng_normal(&r) + 3.0 * dir[j]);
    int m1 = -1, lw1, liw1, lw2, liw2, info = 0, i1, i2;
    double q;
    dsyevd_("N", "L", &k, g, &k, w1, &q, &m1, &i1, &m1, &info, 1, 1);
    lw1 = (int)q, liw1 = i1 > 1 ? i1 : 1;
    dsyevd_2stage_("N", "L", &k, g, &k, w2, &q, &m1, &i2, &m1, &info, 1, 1);
    lw2 = (int)q, liw2 = i2 > 1 ? i2 : 1;
    double *wk1 = lmd_calloc((size_t)lw1, 8), *wk2 = lmd_calloc((size_t)lw2, 8);
    int *iw1 = lmd_calloc((size_t)liw1, 4), *iw2 = lmd_calloc((size_t)liw2, 4);
    double *tg = lmd_calloc((size_t)R, 8), *t1 = lmd_calloc((size_t)R, 8),
           *t2 = lmd_calloc((size_t)R, 8), *ta = lmd_calloc((size_t)R, 8),
           *tn = lmd_calloc((size_t)R, 8);
    lmd_err err = {{0}};
    lmd_geom_acc acc, accn;
    if (lmd_geom_acc_init(&acc, 1, T, d, LMD_GEOM_NBINS, &err) ||
        lmd_geom_acc_init(&accn, 1, T, d, LMD_GEOM_NBINS, &err))
        lmd_die("%s", err.msg);
    accn.no_spectrum = 1;
    printf("bench_geom_spectrum: T %d, d %d, Gram %d x %d, %d thread(s)\n", T, d, k, k, threads);
    for (int rr = -1; rr < R; rr++) {
        double a = lmd_now();
        for (size_t i = 0; i < Td; i++) xd[i] = x[i];
        if (d <= T)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, T, 1.0, xd, d, 0.0, g0, d);
        else
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, T, d, 1.0, xd, d, 0.0, g0, T);
        double b = lmd_now();
        memcpy(g, g0, (size_t)k * k * sizeof(double));
        double b1 = lmd_now();
        dsyevd_("N", "L", &k, g, &k, w1, wk1, &lw1, iw1, &liw1, &info, 1, 1);
        double c = lmd_now();
        memcpy(g, g0, (size_t)k * k * sizeof(double));
        double c1 = lmd_now();
        dsyevd_2stage_("N", "L", &k, g, &k, w2, wk2, &lw2, iw2, &liw2, &info, 1, 1);
        double e = lmd_now();
        if (lmd_geom_acc_add(&acc, 0, x, 1, &err)) lmd_die("%s", err.msg);
        double f = lmd_now();
        if (lmd_geom_acc_add(&accn, 0, x, 1, &err)) lmd_die("%s", err.msg);
        double h = lmd_now();
        printf(
            "  round %d%s: gram %.1f ms, dsyevd %.1f ms, dsyevd_2stage %.1f ms; acc_add %.1f ms, "
            "without spectrum %.1f ms\n",
            rr, rr < 0 ? " (warm-up)" : "", 1e3 * (b - a), 1e3 * (c - b1), 1e3 * (e - c1),
            1e3 * (f - e), 1e3 * (h - f));
        if (rr >= 0)
            tg[rr] = b - a, t1[rr] = c - b1, t2[rr] = e - c1, ta[rr] = f - e, tn[rr] = h - f;
    }
    double s1 = sqrt(fabs(w1[k - 1])), md = 0;
    for (int i = 0; i < k; i++) {
        double dv = fabs(sqrt(fabs(w1[i])) - sqrt(fabs(w2[i])));
        if (dv > md) md = dv;
    }
    printf("median: gram %.1f ms, dsyevd %.1f ms, dsyevd_2stage %.1f ms (%.2fx); acc_add %.1f ms "
           "(spectrum share %.0f %%), without spectrum %.1f ms; max|s - s'|/s_1 %.2e\n",
           1e3 * med(tg, R), 1e3 * med(t1, R), 1e3 * med(t2, R), med(t1, R) / med(t2, R),
           1e3 * med(ta, R), 100 * (1 - med(tn, R) / med(ta, R)), 1e3 * med(tn, R), md / s1);
    return 0;
}
