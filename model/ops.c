/* ops.c — forward and backward of the transformer's layers (see ops.h).
 *
 * Threading and determinism: elementwise and per-row loops are split over rows with OpenMP;
 * sums over rows into a parameter gradient (LayerNorm dw/db, bias gradients, embeddings) are
 * split over columns instead, each column summed over rows in ascending order. Every float
 * reduction therefore has one fixed order, whatever the thread count: results are bitwise
 * identical for 1, 2 or more threads (cblas_sgemm aside). Sums along a row use a fixed number
 * of double accumulator lanes so the compiler vectorizes them without reassociating anything. */
#include "ops.h"
#include "util.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "par.h"
#include "vmath.h"

#define LN_EPS 1e-5f

/* Loops touching fewer elements than this stay serial: a parallel region costs a few
 * microseconds, and the small shapes of the unit tests should not pay it. */
#define PAR_MIN 32768

/* Part p of np of the range [0, C): [*c0, *c1), cut at multiples of 16 so that parts stay on
 * separate cache lines (columns) and on whole register blocks of the sgemm kernels (rows). */
static void split_range(int p, int np, int C, int *c0, int *c1) {
    int chunks = (C + 15) / 16, per = chunks / np, extra = chunks % np;
    int first = p * per + (p < extra ? p : extra), count = per + (p < extra ? 1 : 0);
    *c0 = first * 16 < C ? first * 16 : C;
    *c1 = (first + count) * 16 < C ? (first + count) * 16 : C;
}

/* Inside a parallel region: this thread's part [*c0, *c1) of the columns [0, C). */
static void thread_columns(int C, int *c0, int *c1) {
    int np = 1, p = 0;
#ifdef _OPENMP
    np = omp_get_num_threads(), p = omp_get_thread_num();
#endif
    split_range(p, np, C, c0, c1);
}

/* ------------------------------------------------------------------------------------------
 * row reductions in fixed lanes (vectorizable, order independent of the build's vector width)
 * ------------------------------------------------------------------------------------------ */

/* sum_i x[i] in double */
static double row_sum(const float *x, int n) {
    double acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += x[i + l];
    for (int l = 0; i < n; i++, l++) acc[l] += x[i];
    return lanes_total(acc);
}

/* sum_i (x[i] - mu)^2 in double */
static double row_sqdev(const float *x, double mu, int n) {
    double acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            double d = x[i + l] - mu;
            acc[l] += d * d;
        }
    for (int l = 0; i < n; i++, l++) {
        double d = x[i] - mu;
        acc[l] += d * d;
    }
    return lanes_total(acc);
}

/* sum_i a[i] b[i] in double */
static double row_dot(const float *a, const float *b, int n) {
    double acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += (double)a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) acc[l] += (double)a[i] * b[i];
    return lanes_total(acc);
}

/* max_i x[i], n >= 1 (max is exact, so the lane order does not matter) */
static float row_max(const float *x, int n) {
    float acc[2 * LANES];
    for (int l = 0; l < 2 * LANES; l++) acc[l] = x[0];
    int i = 0;
    for (; i + 2 * LANES <= n; i += 2 * LANES)
        for (int l = 0; l < 2 * LANES; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    float m = x[0];
    for (int l = 0; l < 2 * LANES; l++) m = acc[l] > m ? acc[l] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* ------------------------------------------------------------------------------------------
 * layers
 * ------------------------------------------------------------------------------------------ */

/* out (B,T,C) = wte[inp] + wpe[t] */
void lmd_encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B,
                         int T, int C) {
    size_t BT = (size_t)B * T;
#pragma omp parallel for schedule(static) if (BT * C >= PAR_MIN)
    for (size_t bt = 0; bt < BT; bt++) {
        float *o = out + bt * C;
        const float *we = wte + (size_t)inp[bt] * C, *pe = wpe + (bt % T) * C;
#pragma omp simd
        for (int i = 0; i < C; i++) o[i] = we[i] + pe[i];
    }
}

/* dwte[inp] += dout; dwpe[t] += dout. Tokens repeat, so rows scatter into shared rows of dwte:
 * threads split the columns and each walks all rows in order. */
void lmd_encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B, int T,
                          int C) {
    size_t BT = (size_t)B * T;
#pragma omp parallel if (BT * C >= PAR_MIN)
    {
        int c0, c1;
        thread_columns(C, &c0, &c1);
        for (size_t bt = 0; bt < BT; bt++) {
            const float *d = dout + bt * C;
            float *dw = dwte + (size_t)inp[bt] * C, *dp = dwpe + (bt % T) * C;
#pragma omp simd
            for (int i = c0; i < c1; i++) {
                dw[i] += d[i];
                dp[i] += d[i];
            }
        }
    }
}

/* out (N,C) = (inp - mean) * rstd * w + b, row statistics kept for backward */
void lmd_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, size_t N, int C) {
#pragma omp parallel for schedule(static) if (N * C >= PAR_MIN)
    for (size_t r = 0; r < N; r++) {
        const float *x = inp + r * C;
        double mu = row_sum(x, C) / C;
        double v = row_sqdev(x, mu, C);
        float rs = (float)(1.0 / sqrt(v / C + (double)LN_EPS));
        float m = (float)mu;
        float *o = out + r * C;
#pragma omp simd
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * rs * w[i] + b[i];
        mean[r] = m;
        rstd[r] = rs;
    }
}

/* dinp += d/dinp of layernorm; dw += dout * norm; db += dout.
 * Rows in parallel for dinp; columns in parallel for dw and db (sums over rows). */
void lmd_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, size_t N, int C) {
#pragma omp parallel if (N * C >= PAR_MIN)
    {
        /* the two loops write different outputs, so threads go on without a barrier */
#pragma omp for schedule(static) nowait
        for (size_t r = 0; r < N; r++) {
            const float *x = inp + r * C, *d = dout + r * C;
            float m = mean[r], rs = rstd[r];
            /* dnorm = w * dout; a = mean(dnorm), bb = mean(dnorm * norm) */
            double acc_a[LANES] = {0}, acc_b[LANES] = {0};
            int i = 0;
            for (; i + LANES <= C; i += LANES)
                for (int l = 0; l < LANES; l++) {
                    float norm = (x[i + l] - m) * rs;
                    float dnorm = w[i + l] * d[i + l];
                    acc_a[l] += dnorm;
                    acc_b[l] += (double)dnorm * norm;
                }
            for (int l = 0; i < C; i++, l++) {
                float norm = (x[i] - m) * rs;
                float dnorm = w[i] * d[i];
                acc_a[l] += dnorm;
                acc_b[l] += (double)dnorm * norm;
            }
            float a = (float)(lanes_total(acc_a) / C), bb = (float)(lanes_total(acc_b) / C);
            float *dx = dinp + r * C;
#pragma omp simd
            for (int j = 0; j < C; j++) {
                float norm = (x[j] - m) * rs;
                float dnorm = w[j] * d[j];
                dx[j] += (dnorm - a - norm * bb) * rs;
            }
        }
        int c0, c1;
        thread_columns(C, &c0, &c1);
        for (size_t r = 0; r < N; r++) {
            const float *x = inp + r * C, *d = dout + r * C;
            float m = mean[r], rs = rstd[r];
#pragma omp simd
            for (int i = c0; i < c1; i++) {
                float norm = (x[i] - m) * rs;
                db[i] += d[i];
                dw[i] += norm * d[i];
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * matmuls split over OpenMP threads
 *
 * libgomp's idle workers spin for a while after each parallel region, and so do OpenBLAS's
 * pthreads after each threaded call: alternating the two pools on the same cores makes each
 * wait for the other's spinning. So the large products are split here too: each OpenMP thread
 * runs a single-threaded sgemm on its own rows of C. Rows are split, never the summed
 * dimension, so every element is the same dot product in the same order for any thread count.
 * ------------------------------------------------------------------------------------------ */

/* C (M,N) = alpha op(A) op(B) + beta C, row-major, rows of C split over the threads */
static void sgemm_rows(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *Bm, int ldb, float beta, float *Cm, int ldc) {
    int nt = par_max_threads();
    if ((double)M * N * K < 4e6 || M < 32) nt = 1; /* too small to split */
    if (nt <= 1) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, Bm, ldb, beta, Cm,
                    ldc);
        return;
    }
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(nt)
    {
        int p = par_thread_id();
        int c0, c1;
        split_range(p, nt, M, &c0, &c1);
        if (c1 > c0) {
            /* row r of op(A) starts at A + r*lda when A is not transposed, at A + r otherwise */
            const float *Ap = transA ? A + c0 : A + (size_t)c0 * lda;
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                        transB ? CblasTrans : CblasNoTrans, c1 - c0, N, K, alpha, Ap, lda, Bm, ldb,
                        beta, Cm + (size_t)c0 * ldc, ldc);
        }
    }
    openblas_set_num_threads(blas_threads);
}

void lmd_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_rows(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* out (N,OC) = inp (N,IC) W^T + bias, or out += that when accumulate */
void lmd_matmul_forward(float *out, const float *inp, const float *W, const float *bias, size_t N,
                        int IC, int OC, int accumulate) {
    if (bias) {
#pragma omp parallel for schedule(static) if (N * OC >= PAR_MIN)
        for (size_t r = 0; r < N; r++) {
            float *o = out + r * OC;
            if (accumulate) {
#pragma omp simd
                for (int j = 0; j < OC; j++) o[j] += bias[j];
            } else {
                memcpy(o, bias, (size_t)OC * sizeof(float));
            }
        }
        accumulate = 1;
    }
    sgemm_rows(0, 1, (int)N, OC, IC, 1.0f, inp, IC, W, IC, accumulate ? 1.0f : 0.0f, out, OC);
}

/* out (N,OC) = res (N,OC) + inp (N,IC) W^T + bias: a residual connection, without a separate
 * copy of res into out */
void lmd_matmul_forward_residual(float *out, const float *res, const float *inp, const float *W,
                                 const float *bias, size_t N, int IC, int OC) {
#pragma omp parallel for schedule(static) if (N * OC >= PAR_MIN)
    for (size_t r = 0; r < N; r++) {
        float *o = out + r * OC;
        const float *x = res + r * OC;
        if (bias) {
#pragma omp simd
            for (int j = 0; j < OC; j++) o[j] = x[j] + bias[j];
        } else {
            memcpy(o, x, (size_t)OC * sizeof(float));
        }
    }
    sgemm_rows(0, 1, (int)N, OC, IC, 1.0f, inp, IC, W, IC, 1.0f, out, OC);
}

/* dinp (N,IC) = dout W (overwritten); dW (OC,IC) += dout^T inp; dbias += column sums of dout */
void lmd_matmul_backward(float *dinp, float *dW, float *dbias, const float *dout, const float *inp,
                         const float *W, size_t N, int IC, int OC) {
    sgemm_rows(0, 0, (int)N, IC, OC, 1.0f, dout, OC, W, IC, 0.0f, dinp, IC);
    sgemm_rows(1, 0, OC, IC, (int)N, 1.0f, dout, OC, inp, IC, 1.0f, dW, IC);
    if (dbias) {
#pragma omp parallel if (N * OC >= PAR_MIN)
        {
            int c0, c1;
            thread_columns(OC, &c0, &c1);
            for (size_t r = 0; r < N; r++) {
                const float *d = dout + r * OC;
#pragma omp simd
                for (int j = c0; j < c1; j++) dbias[j] += d[j];
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * causal attention
 *
 * Rows are processed in blocks of ATT_BLK: row block [r0, r1) only sees keys [0, r1), so the
 * score and mixing products cover the diagonal blocks and those below it (10/16 of the full
 * T x T at T = 256) instead of the whole square. The (b, h) pairs run in parallel with
 * single-threaded sgemms: the blocks are too small for a threaded sgemm to pay, and two
 * concurrent threaded calls into the pthread OpenBLAS would serialize on its lock.
 * ------------------------------------------------------------------------------------------ */

#ifndef ATT_BLK
#define ATT_BLK 64
#endif

/* A violated precondition of an op is a bug in the caller: say which and stop. */
static void op_require(int ok, const char *op, const char *cond, long a, long b) {
    if (ok) return;
    fprintf(stderr, "lmdisp: internal error: %s called with %s (%ld, %ld)\n", op, cond, a, b);
    abort();
}

static void attention_check(const char *op, int B, int T, int C, int NH) {
    op_require(B >= 1 && T >= 1, op, "B < 1 or T < 1: B, T =", B, T);
    op_require(NH >= 1 && C >= NH && C % NH == 0, op, "C not a positive multiple of NH: C, NH =", C,
               NH);
}

size_t lmd_attention_scratch_floats(int T) { return (size_t)T * (size_t)T; }

/* Threads for the (b, h) loop; when more than one, OpenBLAS is set to one thread for the
 * region and restored afterwards (returned in *blas_threads). */
static int attention_threads(int pairs, int limit, int *blas_threads) {
    int nt = par_max_threads();
    if (nt > pairs) nt = pairs;
    if (nt > limit) nt = limit;
    if (nt < 1) nt = 1;
    *blas_threads = openblas_get_num_threads();
    if (nt > 1) openblas_set_num_threads(1);
    return nt;
}

/* Softmax of row t of a score block in place: p_j = exp(s_j - max) / sum over j <= t, zeros
 * for j in (t, end). The row is processed in whole chunks of SM_LANES columns up to the chunk
 * holding t (columns past t masked to 0), so the loops vectorize without a scalar tail: with
 * rows of 1..256 keys, tails of up to 15 scalar exps were most of the softmax. The sum is kept
 * in SM_LANES float lanes added in a fixed tree (the bits do not depend on the vector width);
 * terms below e^-80 are exactly 0 (they could only become denormals, which x86 handles in
 * microcode, ~100x slower). */
#define SM_LANES 16
static void softmax_causal_row(float *row, int t, int end) {
    int n = t + 1;
    int nc = (n + SM_LANES - 1) / SM_LANES * SM_LANES; /* chunked columns: [0, nc) */
    if (nc > end) nc = end / SM_LANES * SM_LANES;      /* the block's end is not a whole chunk */
    float mxl[SM_LANES];
    for (int l = 0; l < SM_LANES; l++) mxl[l] = -INFINITY;
    for (int j = 0; j < nc; j += SM_LANES)
        for (int l = 0; l < SM_LANES; l++) {
            float x = row[j + l];
            mxl[l] = j + l < n && x > mxl[l] ? x : mxl[l];
        }
    float mx = -INFINITY;
    for (int l = 0; l < SM_LANES; l++) mx = mxl[l] > mx ? mxl[l] : mx;
    for (int j = nc; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    float acc[SM_LANES] = {0};
    for (int j = 0; j < nc; j += SM_LANES)
        for (int l = 0; l < SM_LANES; l++) {
            float d = row[j + l] - mx;
            float e = j + l < n && d >= -80.0f ? exp_vec(d) : 0.0f;
            row[j + l] = e;
            acc[l] += e;
        }
    for (int j = nc, l = 0; j < n; j++, l = (l + 1) % SM_LANES) {
        float d = row[j] - mx;
        float e = d >= -80.0f ? exp_vec(d) : 0.0f;
        row[j] = e;
        acc[l] += e;
    }
    for (int w = SM_LANES / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    float inv = 1.0f / acc[0];
    int m = n > nc ? n : nc;
#pragma omp simd
    for (int i = 0; i < m; i++) row[i] *= inv;
    for (int i = m; i < end; i++) row[i] = 0.0f;
}

/* Causal multi-head attention. qkv (B,T,3C) -> out (B,T,C); att (B,NH,T,T) keeps the
 * softmax probabilities for backward: row t holds p_j for keys j <= t and zeros up to the end
 * of t's 64-row block; entries beyond that are never written (nor read). */
void lmd_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    attention_check("lmd_attention_forward", B, T, C, NH);
    int hd = C / NH, C3 = 3 * C, pairs = B * NH, blas_threads;
    float scale = 1.0f / sqrtf((float)hd);
    int nt = attention_threads(pairs, pairs, &blas_threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int bh = 0; bh < pairs; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hd;
        const float *k = q + C, *v = q + 2 * C;
        float *a = att + (size_t)bh * T * T;
        float *o = out + (size_t)b * T * C + (size_t)h * hd;
        for (int r0 = 0; r0 < T; r0 += ATT_BLK) {
            int r1 = r0 + ATT_BLK < T ? r0 + ATT_BLK : T, nr = r1 - r0;
            float *ab = a + (size_t)r0 * T;
            /* s = scale * q k^T for rows [r0, r1), keys [0, r1) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, r1, hd, scale,
                        q + (size_t)r0 * C3, C3, k, C3, 0.0f, ab, T);
            for (int t = r0; t < r1; t++) softmax_causal_row(a + (size_t)t * T, t, r1);
            /* out_h = a v */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, r1, 1.0f, ab, T, v, C3,
                        0.0f, o + (size_t)r0 * C, C);
        }
    }
    if (nt > 1) openblas_set_num_threads(blas_threads);
}

/* dqkv (B,T,3C) = d/dqkv of attention (overwritten); datt is scratch of datt_n floats, used as
 * one ATT_BLK x T tile per thread: with at most T / ATT_BLK threads that is within T*T. */
void lmd_attention_backward(float *dqkv, float *datt, size_t datt_n, const float *dout,
                            const float *qkv, const float *att, int B, int T, int C, int NH) {
    attention_check("lmd_attention_backward", B, T, C, NH);
    op_require(datt_n >= lmd_attention_scratch_floats(T), "lmd_attention_backward",
               "scratch below T*T floats: datt_n, T =", (long)datt_n, T);
    int hd = C / NH, C3 = 3 * C, pairs = B * NH, blas_threads;
    float scale = 1.0f / sqrtf((float)hd);
    int blk = ATT_BLK < T ? ATT_BLK : T;
    size_t BT = (size_t)B * T;
#pragma omp parallel for schedule(static) if (BT * C3 >= PAR_MIN)
    for (size_t r = 0; r < BT; r++) memset(dqkv + r * C3, 0, (size_t)C3 * sizeof(float));
    int nt = attention_threads(pairs, T / blk, &blas_threads);
    op_require((size_t)nt * blk * T <= datt_n, "lmd_attention_backward",
               "threads x tile over the scratch: threads, T =", nt, T);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int bh = 0; bh < pairs; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t off = (size_t)b * T * C3 + (size_t)h * hd;
        const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
        float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
        const float *a = att + (size_t)bh * T * T;
        const float *dO = dout + (size_t)b * T * C + (size_t)h * hd;
        float *ds = datt + (size_t)par_thread_id() * blk * T;
        for (int r0 = 0; r0 < T; r0 += blk) {
            int r1 = r0 + blk < T ? r0 + blk : T, nr = r1 - r0;
            const float *ab = a + (size_t)r0 * T;
            const float *dOb = dO + (size_t)r0 * C;
            /* out_h = a v:  da = dO v^T,  dv += a^T dO  (keys [0, r1) only: a is 0 beyond) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, r1, hd, 1.0f, dOb, C, v, C3,
                        0.0f, ds, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, nr, 1.0f, ab, T, dOb, C,
                        1.0f, dv, C3);
            /* a = softmax(s):  ds = a * (da - sum_j a da), j <= t */
            for (int t = r0; t < r1; t++) {
                const float *ar = a + (size_t)t * T;
                float *dr = ds + (size_t)(t - r0) * T;
                int n = t + 1;
                float fd = (float)row_dot(ar, dr, n);
#pragma omp simd
                for (int j = 0; j < n; j++) dr[j] = ar[j] * (dr[j] - fd);
                for (int j = n; j < r1; j++) dr[j] = 0.0f;
            }
            /* s = scale q k^T:  dq += scale ds k,  dk += scale ds^T q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, r1, scale, ds, T, k, C3,
                        1.0f, dq + (size_t)r0 * C3, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hd, nr, scale, ds, T,
                        q + (size_t)r0 * C3, C3, 1.0f, dk, C3);
        }
    }
    if (nt > 1) openblas_set_num_threads(blas_threads);
}

/* ------------------------------------------------------------------------------------------
 * GELU and cross-entropy
 * ------------------------------------------------------------------------------------------ */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed as x / (1 + e^(-2u)) */
/* GELU with the tanh approximation, written as x * sigmoid(2u):
 *   0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 * (the same function; one exp and one division, no cancellation near u = 0 or for large
 * negative x). The exp argument is capped at 80, so 1 / (1 + e^(-2u)) >= 1.8e-35 stays a normal
 * float: below x ~ -9 the result is then ~1e-34 instead of the true ~1e-35 or less. */
static inline float gelu_ex(float x) {
    float u = GELU_K * fmaf(GELU_C * x, x * x, x);
    float a = -2.0f * u;
    return exp_vec(a < 80.0f ? a : 80.0f);
}

void lmd_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x / (1.0f + gelu_ex(x));
    }
}

/* d (in place, dout on entry) = dout * gelu'(inp); with s = sigmoid(2u),
 * gelu' = s + 2 x s (1 - s) u'(x) = s + 2 x e s^2 u'(x) with e = e^(-2u),  u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2) */
void lmd_gelu_backward(float *d, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float e = gelu_ex(x), s = 1.0f / (1.0f + e); /* 1 - s = e s, without cancellation */
        float du = GELU_K * fmaf(3.0f * GELU_C * x, x, 1.0f);
        float g = fmaf(2.0f * x * e * s * s, du, s);
        d[i] *= g;
    }
}

/* sum_j exp(l_j - mx) in double, LANES fixed lanes (vectorizable; the order does not depend on
 * the vector width) */
static double row_sumexp(const float *l, float mx, int V) {
    double acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= V; j += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += exp_vec_d((double)(l[j + k] - mx));
    for (int k = 0; j < V; j++, k++) acc[k] += exp_vec_d((double)(l[j] - mx));
    return lanes_total(acc);
}

/* losses (N) = logsumexp(logits) - logits[target]; returns the mean (summed in row order) */
double lmd_crossentropy_forward(float *losses, const float *logits, const int *targets, size_t N,
                                int V) {
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN)
    for (size_t r = 0; r < N; r++) {
        const float *l = logits + r * V;
        float mx = row_max(l, V);
        double s = row_sumexp(l, mx, V);
        losses[r] = (float)(log(s) + mx - l[targets[r]]);
    }
    double total = 0.0;
    for (size_t r = 0; r < N; r++) total += losses[r];
    return total / (double)N;
}

/* dlogits (N,V) = (softmax(logits) - onehot(target)) * scale */
void lmd_crossentropy_backward(float *dlogits, const float *logits, const int *targets, size_t N,
                               int V, float scale) {
#pragma omp parallel for schedule(static) if (N * V >= PAR_MIN)
    for (size_t r = 0; r < N; r++) {
        const float *l = logits + r * V;
        float *d = dlogits + r * V;
        float mx = row_max(l, V);
        double inv = 1.0 / row_sumexp(l, mx, V);
#pragma omp simd
        for (int j = 0; j < V; j++) d[j] = (float)(exp_vec_d((double)(l[j] - mx)) * inv) * scale;
        d[targets[r]] -= scale;
    }
}
