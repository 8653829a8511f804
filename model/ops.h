/* ops.h — the transformer's layers as free functions, forward and backward side by side:
 * outputs first, then inputs, then dimensions. Backward functions accumulate into parameter
 * gradients. Matmuls are cblas_sgemm; the other loops are split over OpenMP threads (the
 * count set by gpt_set_threads) with results that do not depend on the thread count. */
#ifndef LMDISP_OPS_H
#define LMDISP_OPS_H

#include <stddef.h>

/* out (B,T,C) = wte[inp] + wpe[t] */
void lmd_encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B,
                         int T, int C);

/* dwte[inp] += dout; dwpe[t] += dout */
void lmd_encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B, int T,
                          int C);

/* out (N,C) = (inp - mean) * rstd * w + b, row statistics kept for backward */
void lmd_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, size_t N, int C);

/* dinp += d/dinp of layernorm; dw += dout * norm; db += dout */
void lmd_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, size_t N, int C);

/* C (M,N) = alpha op(A) op(B) + beta C, row-major cblas_sgemm with the rows of C split over the
 * OpenMP threads (each a single-threaded sgemm; bitwise the same for any thread count). */
void lmd_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* out (N,OC) = inp (N,IC) W^T + bias, or out += that when accumulate */
void lmd_matmul_forward(float *out, const float *inp, const float *W, const float *bias, size_t N,
                        int IC, int OC, int accumulate);

/* out (N,OC) = res (N,OC) + inp (N,IC) W^T + bias (bias may be NULL) */
void lmd_matmul_forward_residual(float *out, const float *res, const float *inp, const float *W,
                                 const float *bias, size_t N, int IC, int OC);

/* dinp (N,IC) = dout W (overwritten); dW (OC,IC) += dout^T inp; dbias += column sums of dout */
void lmd_matmul_backward(float *dinp, float *dW, float *dbias, const float *dout, const float *inp,
                         const float *W, size_t N, int IC, int OC);

/* Causal multi-head attention: qkv (B,T,3C) -> out (B,T,C); att (B,NH,T,T) keeps the
 * softmax probabilities for backward: row t holds p_j for keys j <= t and zeros up to the end
 * of t's 64-row block; entries beyond that are never written (nor read). */
void lmd_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
/* (both attention functions abort on B, T, NH < 1 or C not a positive multiple of NH) */

/* dqkv (B,T,3C) = d/dqkv of attention (overwritten); datt is scratch of datt_n floats, at least
 * lmd_attention_scratch_floats(T) (one block of 64 rows per thread, at most T/64 threads).
 * Preconditions (checked; a violation is a programming error and aborts with a message):
 * B, T, NH >= 1, C a positive multiple of NH, datt_n >= lmd_attention_scratch_floats(T). */
void lmd_attention_backward(float *dqkv, float *datt, size_t datt_n, const float *dout,
                            const float *qkv, const float *att, int B, int T, int C, int NH);

/* the scratch lmd_attention_backward needs for sequences of T tokens: T*T floats */
size_t lmd_attention_scratch_floats(int T);

/* out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), computed as x / (1 + e^(-2u)) */
void lmd_gelu_forward(float *out, const float *inp, size_t n);

/* d (in place, dout on entry) = dout * gelu'(inp) */
void lmd_gelu_backward(float *d, const float *inp, size_t n);

/* losses (N) = logsumexp(logits) - logits[target]; returns the mean */
double lmd_crossentropy_forward(float *losses, const float *logits, const int *targets, size_t N,
                                int V);

/* dlogits (N,V) = (softmax(logits) - onehot(target)) * scale */
void lmd_crossentropy_backward(float *dlogits, const float *logits, const int *targets, size_t N,
                               int V, float scale);

#endif
