/* bench_cossim.c — speed of the cosine-similarity part of the geometry accumulator
 * (analysis/geometry.c: per sequence row normalization, X̂ X̂ᵀ with cblas_ssyrk, clipping and
 * accumulation into the T x T double sums) against a plain cblas_sgemm doing the same number
 * of FLOPs, in the same process and at the same thread count.
 *
 * FLOP count used for both: ssyrk forms only the upper triangle, T(T+1)/2 dot products of
 * length d, i.e. T(T+1)·d FLOPs (a multiply and an add each) — the work actually needed, not
 * the 2·T²·d of a full product. The sgemm reference is (T x d) · (d x ceil((T+1)/2)), which has
 * 2·T·ceil((T+1)/2)·d ≈ the same count. Ratio = accumulator GFLOP/s / sgemm GFLOP/s
 * (target >= 0.5: the O(T²) clipping and double accumulation must not dominate the O(T²d)
 * product). Spectra (entropy, MEV) are switched off (lmd_geom_acc.no_spectrum) since they are
 * a different computation.
 *
 *   bench_cossim [--threads N] [--seqs N] [--reps N]   (default 1 thread, 16 sequences, best of 10) */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blascore.h"
#include "geometry.h"
#include "gpt.h"

typedef struct {
    int T, d;
} shape;

/* Seconds for adding n_seq sequences (n_seq, T, d) to layer 0 of acc. */
static double time_acc(lmd_geom_acc *acc, const float *x, int n_seq) {
    lmd_err err = {{0}};
    double t0 = lmd_now();
    if (lmd_geom_acc_add(acc, 0, x, n_seq, &err)) lmd_die("%s", err.msg);
    return lmd_now() - t0;
}

/* Seconds for n_seq products (T x d)·(d x N) into one (T x N) output c. */
static double time_sgemm(const float *x, float *c, int T, int d, int N, int n_seq) {
    double t0 = lmd_now();
    for (int s = 0; s < n_seq; s++) {
        const float *xs = x + (size_t)s * T * d;
        // B = the first N rows of the same sequence, transposed: same data as the syrk
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, d, 1.0f, xs, d, xs, d, 0.0f, c,
                    N);
    }
    return lmd_now() - t0;
}

int main(int argc, char **argv) {
    lmd_blas_core_select(argv); /* before any BLAS call: see model/blascore.h */
    int threads = 1, n_seq = 16, reps = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seqs"))
            n_seq = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_cossim [--threads N] [--seqs N] [--reps N]\n");
            return 2;
        }
    }
    if (threads < 1 || n_seq < 1 || reps < 1) {
        fprintf(stderr, "bench_cossim: --threads, --seqs and --reps must be >= 1\n");
        return 2;
    }
    gpt_set_threads(threads);
    const shape shapes[] = {{128, 64}, {512, 256}, {512, 768}, {1024, 256}};
    printf("bench_cossim: %d thread(s), %d sequences per timing, best of %d\n", threads, n_seq,
           reps);
    printf("FLOPs per sequence = T(T+1)·d (upper triangle, as ssyrk computes it)\n");
    printf("%6s %5s %12s %12s %12s %7s\n", "T", "d", "acc GFLOP/s", "sgemm GFLOP/s", "acc ms/seq",
           "ratio");
    int below = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int T = shapes[k].T, d = shapes[k].d;
        const size_t n = (size_t)n_seq * T * d;
        float *x = lmd_aligned_alloc(n * sizeof(float));
        lmd_rng rng;
        lmd_rng_seed(&rng, 7, 1);
        // a shared direction plus noise, so cosines spread over (-1, 1) as in a real model
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(0.5 * ((i % (size_t)d) % 7 == 0) + lmd_rng_normal(&rng));
        double flops = (double)n_seq * (double)T * (double)(T + 1) * (double)d;
        int N = (T + 2) / 2;
        double sgemm_flops = (double)n_seq * 2.0 * T * (double)N * d;
        lmd_geom_acc acc;
        lmd_err err = {{0}};
        if (lmd_geom_acc_init(&acc, 1, T, d, LMD_GEOM_NBINS, &err)) lmd_die("%s", err.msg);
        acc.no_spectrum = 1;
        float *c = lmd_aligned_alloc((size_t)T * (size_t)N * sizeof(float));
        // Alternate the two, best of reps each after a warm-up round: on a shared machine
        // both then see the same background load, which keeps the ratio meaningful.
        double ta = INFINITY, tg = INFINITY;
        for (int r = 0; r <= reps; r++) {
            double a1 = time_acc(&acc, x, n_seq), g1 = time_sgemm(x, c, T, d, N, n_seq);
            if (r > 0) {
                ta = fmin(ta, a1);
                tg = fmin(tg, g1);
            }
        }
        free(c);
        lmd_geom_acc_free(&acc);
        double ga = flops / ta / 1e9, gg = sgemm_flops / tg / 1e9;
        printf("%6d %5d %12.2f %12.2f %12.3f %7.2f\n", T, d, ga, gg, 1e3 * ta / n_seq, ga / gg);
        if (ga / gg < 0.5) below++;
        free(x);
    }
    if (below) printf("%d shape(s) below the 0.5 target\n", below);
    return 0;
}
