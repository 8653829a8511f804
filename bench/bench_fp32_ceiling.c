/* bench_fp32_ceiling.c — the fastest any fp32 forward of a shape can run on this machine: the
 * cores' fp32 FMA peak (measured: independent AVX-512, else AVX2, FMA chains on every thread
 * at once) and OpenBLAS's sgemm on the forward's own weight products (M = batch x seq rows),
 * turned into tokens/s for the forward's matrix-product flops alone (norms, attention's
 * softmax and everything else free). bench/compare_hf_torch.sh divides these ceilings by
 * PyTorch's measured tokens/s: a ratio target above the ceiling ratio cannot be met by any fp32
 * forward on these cores, whatever its code (issue 15, docs/PERFORMANCE.md).
 *
 *   bench_fp32_ceiling [--hidden d] [--heads H] [--kv-heads K] [--inter I] [--layers L]
 *                      [--seq T] [--batch B] [--gated 0|1] [--threads N] [--reps R]
 *
 * Flops per token (multiply-add = 2): per layer 2 d (d + 2 d K/H) + 2 d^2 (projections),
 * 2 (2 + gated) d I (MLP) and 4 d (T+1)/2 (causal QK^T and AV, averaged over positions). */
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blascore.h"
#include "util.h"

#define FMA_ITERS 10000000L /* 160 M FMAs a thread: ~50 ms at 3.6 GHz */

/* 16 independent chains of fused multiply-adds in registers (latency 4, two pipes: 8 would
 * do); written out so that no chain goes through memory */
#define FMA16(F)                                                                                   \
    do {                                                                                           \
        a0 = F(a0, m, c), a1 = F(a1, m, c), a2 = F(a2, m, c), a3 = F(a3, m, c);                    \
        a4 = F(a4, m, c), a5 = F(a5, m, c), a6 = F(a6, m, c), a7 = F(a7, m, c);                    \
        a8 = F(a8, m, c), a9 = F(a9, m, c), a10 = F(a10, m, c), a11 = F(a11, m, c);                \
        a12 = F(a12, m, c), a13 = F(a13, m, c), a14 = F(a14, m, c), a15 = F(a15, m, c);            \
    } while (0)
#define SUM16(ADD)                                                                                 \
    ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))),                         \
        ADD(ADD(ADD(a8, a9), ADD(a10, a11)), ADD(ADD(a12, a13), ADD(a14, a15))))

__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
    __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2),
           a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5),
           a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7), a8 = _mm512_set1_ps(8),
           a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11),
           a12 = _mm512_set1_ps(12), a13 = _mm512_set1_ps(13), a14 = _mm512_set1_ps(14),
           a15 = _mm512_set1_ps(15);
    for (long n = 0; n < iters; n++) FMA16(_mm512_fmadd_ps);
    return _mm512_reduce_add_ps(SUM16(_mm512_add_ps));
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long iters) {
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2),
           a3 = _mm256_set1_ps(3), a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5),
           a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7), a8 = _mm256_set1_ps(8),
           a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11),
           a12 = _mm256_set1_ps(12), a13 = _mm256_set1_ps(13), a14 = _mm256_set1_ps(14),
           a15 = _mm256_set1_ps(15);
    for (long n = 0; n < iters; n++) FMA16(_mm256_fmadd_ps);
    float v[8], s = 0;
    _mm256_storeu_ps(v, SUM16(_mm256_add_ps));
    for (int i = 0; i < 8; i++) s += v[i];
    return s;
}

/* Aggregate fp32 GFLOP/s of nt threads running FMA chains at once; *isa names the ISA. */
static double fma_peak(int nt, const char **isa) {
    int w512 = __builtin_cpu_supports("avx512f");
    int w256 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!w512 && !w256) {
        *isa = "none (no AVX2/FMA)";
        return 0;
    }
    *isa = w512 ? "AVX-512" : "AVX2";
    int lanes = w512 ? 16 : 8;
    double best = 0, sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double g = 0; /* the threads' own rates, summed: they run at once, after one barrier */
#pragma omp parallel num_threads(nt) reduction(+ : sink, g)
        {
#pragma omp barrier
            double t0 = lmd_now();
            sink += w512 ? fma_avx512(FMA_ITERS) : fma_avx2(FMA_ITERS);
            g += (double)FMA_ITERS * 16 * lanes * 2 / (lmd_now() - t0) / 1e9;
        }
        if (g > best) best = g;
    }
    if (sink == 12345.678) printf("%g\n", sink); /* keeps the chains */
    return best;
}

/* Best-of-reps seconds of one C[M,N] = A[M,K] B[K,N]^T (a Linear layer). */
static double sgemm_time(int M, int K, int N, int reps) {
    float *A = lmd_calloc((size_t)M * K, sizeof *A), *B = lmd_calloc((size_t)N * K, sizeof *B),
          *C = lmd_calloc((size_t)M * N, sizeof *C);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f;
    for (size_t i = 0; i < (size_t)N * K; i++) B[i] = (float)((i * 40503u) % 1000) * 1e-3f;
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) { /* the first is a warm-up */
        double t0 = lmd_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        double t = lmd_now() - t0;
        if (r > 0 && t < best) best = t;
    }
    free(A);
    free(B);
    free(C);
    return best;
}

int main(int argc, char **argv) {
    lmd_blas_core_select(argv);
    int d = 2048, H = 16, K = 0, inter = 8192, L = 2, T = 512, B = 1, gated = 1, nt = 1, reps = 3;
    const struct {
        const char *name;
        int *v;
    } opts[] = {{"--hidden", &d},   {"--heads", &H},  {"--kv-heads", &K}, {"--inter", &inter},
                {"--layers", &L},   {"--seq", &T},    {"--batch", &B},    {"--gated", &gated},
                {"--threads", &nt}, {"--reps", &reps}};
    for (int i = 1; i < argc; i += 2) {
        size_t o = 0;
        while (o < sizeof opts / sizeof opts[0] && strcmp(argv[i], opts[o].name)) o++;
        char *end = NULL;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
        if (o == sizeof opts / sizeof opts[0] || !end || *end || end == argv[i + 1] || v < 0 ||
            v > 1 << 30) {
            fprintf(stderr, "bench_fp32_ceiling: bad option or value: %s %s\n", argv[i],
                    i + 1 < argc ? argv[i + 1] : "(missing)");
            return 2;
        }
        *opts[o].v = (int)v;
    }
    if (K <= 0) K = H;
    if (d <= 0 || H <= 0 || d % H || K > H || inter <= 0 || L <= 0 || T <= 0 || B <= 0 || nt <= 0 ||
        reps <= 0) {
        fprintf(stderr, "bench_fp32_ceiling: bad shape or counts\n");
        return 2;
    }
    openblas_set_num_threads(nt);
    int kvd = d / H * K, M = B * T;
    /* the layer's products: fused qkv (one output of d + 2 kvd), o, the MLP's up (and gate), down */
    double proj = 2.0 * d * (d + 2.0 * kvd) + 2.0 * d * d;
    double mlp = 2.0 * (2 + (gated != 0)) * d * (double)inter;
    double attn = 4.0 * d * (T + 1) / 2.0;
    double per_tok = L * (proj + mlp + attn);
    const char *isa;
    double peak = fma_peak(nt, &isa);
    double tg = sgemm_time(M, d, d + 2 * kvd, reps) + sgemm_time(M, d, d, reps) +
                (1 + (gated != 0)) * sgemm_time(M, d, inter, reps) + sgemm_time(M, inter, d, reps);
    double gemm_flops = M * (proj + mlp);
    double sg = gemm_flops / tg / 1e9;
    double tok_peak = peak * 1e9 / per_tok;
    double tok_gemm =
        (double)M / (tg * L); /* every layer's products at sgemm's rate, nothing else */
    printf("shape: d %d, heads %d/%d, inter %d%s, %d layers, %d x %d tokens; %d thread(s)\n", d, H,
           K, inter, gated ? " (gated)" : "", L, B, T, nt);
    printf("fp32 FMA peak (%s, %d thread(s) at once): %.1f GFLOP/s\n", isa, nt, peak);
    printf("OpenBLAS sgemm on the layer's products: %.1f GFLOP/s (%.0f %% of that peak)\n", sg,
           100.0 * sg / peak);
    printf("forward: %.1f MFLOP per token; at the FMA peak %.1f tokens/s, with sgemm's products "
           "alone %.1f tokens/s\n",
           per_tok / 1e6, tok_peak, tok_gemm);
    printf("RESULT threads=%d peak_gflops=%.1f sgemm_gflops=%.1f tokens_per_s_peak=%.1f "
           "tokens_per_s_sgemm=%.1f\n",
           nt, peak, sg, tok_peak, tok_gemm);
    return 0;
}
