/* ops.c — forward and backward of the transformer's layers (see ops.h). */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define LN_EPS 1e-5f

/* out (B,T,C) = wte[inp] + wpe[t] */
void lmd_encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B,
                            int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *we = wte + (size_t)inp[b * T + t] * C, *pe = wpe + (size_t)t * C;
            for (int i = 0; i < C; i++) o[i] = we[i] + pe[i];
        }
}

/* dwte[inp] += dout; dwpe[t] += dout */
void lmd_encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B,
                             int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *dw = dwte + (size_t)inp[b * T + t] * C, *dp = dwpe + (size_t)t * C;
            for (int i = 0; i < C; i++) {
                dw[i] += d[i];
                dp[i] += d[i];
            }
        }
}

/* out (N,C) = (inp - mean) * rstd * w + b, row statistics kept for backward */
void lmd_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *w, const float *b, size_t N, int C) {
    for (size_t r = 0; r < N; r++) {
        const float *x = inp + r * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += x[i];
        double mu = s / C, v = 0.0;
        for (int i = 0; i < C; i++) {
            double d = x[i] - mu;
            v += d * d;
        }
        float rs = (float)(1.0 / sqrt(v / C + (double)LN_EPS));
        float m = (float)mu;
        float *o = out + r * C;
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * rs * w[i] + b[i];
        mean[r] = m;
        rstd[r] = rs;
    }
}

/* dinp += d/dinp of layernorm; dw += dout * norm; db += dout */
void lmd_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean,
                               const float *rstd, size_t N, int C) {
    for (size_t r = 0; r < N; r++) {
        const float *x = inp + r * C, *d = dout + r * C;
        float m = mean[r], rs = rstd[r];
        double dnorm_mean = 0.0, dnorm_norm_mean = 0.0;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * rs;
            float dnorm = w[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += (double)dnorm * norm;
        }
        float a = (float)(dnorm_mean / C), bb = (float)(dnorm_norm_mean / C);
        float *dx = dinp + r * C;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * rs;
            float dnorm = w[i] * d[i];
            db[i] += d[i];
            dw[i] += norm * d[i];
            dx[i] += (dnorm - a - norm * bb) * rs;
        }
    }
}

/* out (N,OC) = inp (N,IC) W^T + bias, or out += that when accumulate */
void lmd_matmul_forward(float *out, const float *inp, const float *W, const float *bias,
                           size_t N, int IC, int OC, int accumulate) {
    if (bias) {
        for (size_t r = 0; r < N; r++) {
            float *o = out + r * OC;
            if (accumulate)
                for (int j = 0; j < OC; j++) o[j] += bias[j];
            else
                memcpy(o, bias, (size_t)OC * sizeof(float));
        }
        accumulate = 1;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, IC, 1.0f, inp, IC, W, IC,
                accumulate ? 1.0f : 0.0f, out, OC);
}

/* dinp (N,IC) = dout W (overwritten); dW (OC,IC) += dout^T inp; dbias += column sums of dout */
void lmd_matmul_backward(float *dinp, float *dW, float *dbias, const float *dout,
                            const float *inp, const float *W, size_t N, int IC, int OC) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, IC, OC, 1.0f, dout, OC, W, IC,
                0.0f, dinp, IC);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, (int)N, 1.0f, dout, OC, inp, IC,
                1.0f, dW, IC);
    if (dbias) {
        for (size_t r = 0; r < N; r++) {
            const float *d = dout + r * OC;
            for (int j = 0; j < OC; j++) dbias[j] += d[j];
        }
    }
}

/* Causal multi-head attention. qkv (B,T,3C) -> out (B,T,C); att (B,NH,T,T) keeps the
 * softmax probabilities (zeros above the diagonal) for backward. */
void lmd_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                              int NH) {
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hd;
            const float *k = q + C, *v = q + 2 * C;
            float *a = att + ((size_t)b * NH + h) * T * T;
            /* a = scale * q k^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, q, C3, k, C3,
                        0.0f, a, T);
            for (int t = 0; t < T; t++) {
                float *row = a + (size_t)t * T;
                float mx = row[0];
                for (int j = 1; j <= t; j++) mx = row[j] > mx ? row[j] : mx;
                double sum = 0.0;
                for (int j = 0; j <= t; j++) {
                    row[j] = expf(row[j] - mx);
                    sum += row[j];
                }
                float inv = (float)(1.0 / sum);
                for (int j = 0; j <= t; j++) row[j] *= inv;
                for (int j = t + 1; j < T; j++) row[j] = 0.0f;
            }
            /* out_h = a v */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, a, T, v, C3,
                        0.0f, out + (size_t)b * T * C + (size_t)h * hd, C);
        }
}

/* dqkv (B,T,3C) = d/dqkv of attention (overwritten); datt is T x T scratch */
void lmd_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                               const float *att, int B, int T, int C, int NH) {
    int hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    memset(dqkv, 0, (size_t)B * T * C3 * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t off = (size_t)b * T * C3 + (size_t)h * hd;
            const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
            float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
            const float *a = att + ((size_t)b * NH + h) * T * T;
            const float *dO = dout + (size_t)b * T * C + (size_t)h * hd;
            /* out_h = a v:  da = dO v^T,  dv += a^T dO */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dO, C, v, C3,
                        0.0f, datt, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, a, T, dO, C,
                        1.0f, dv, C3);
            /* a = softmax(s):  ds = a * (da - sum_j a da) ; zero above the diagonal since a is */
            for (int t = 0; t < T; t++) {
                const float *ar = a + (size_t)t * T;
                float *dr = datt + (size_t)t * T;
                double dot = 0.0;
                for (int j = 0; j <= t; j++) dot += (double)ar[j] * dr[j];
                float fd = (float)dot;
                for (int j = 0; j <= t; j++) dr[j] = ar[j] * (dr[j] - fd);
                for (int j = t + 1; j < T; j++) dr[j] = 0.0f;
            }
            /* s = scale q k^T:  dq += scale ds k,  dk += scale ds^T q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, datt, T, k,
                        C3, 1.0f, dq, C3);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, datt, T, q, C3,
                        1.0f, dk, C3);
        }
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void lmd_gelu_forward(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x)));
    }
}

/* d (in place, dout on entry) = dout * gelu'(inp) */
void lmd_gelu_backward(float *d, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_C * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        d[i] *= g;
    }
}

/* losses (N) = logsumexp(logits) - logits[target]; returns the mean */
double lmd_crossentropy_forward(float *losses, const float *logits, const int *targets,
                                   size_t N, int V) {
    double total = 0.0;
    for (size_t r = 0; r < N; r++) {
        const float *l = logits + r * V;
        float mx = l[0];
        for (int j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        double s = 0.0;
        for (int j = 0; j < V; j++) s += exp((double)(l[j] - mx));
        double loss = log(s) + mx - l[targets[r]];
        losses[r] = (float)loss;
        total += loss;
    }
    return total / (double)N;
}

/* dlogits (N,V) = (softmax(logits) - onehot(target)) * scale */
void lmd_crossentropy_backward(float *dlogits, const float *logits, const int *targets,
                                  size_t N, int V, float scale) {
    for (size_t r = 0; r < N; r++) {
        const float *l = logits + r * V;
        float *d = dlogits + r * V;
        float mx = l[0];
        for (int j = 1; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        double s = 0.0;
        for (int j = 0; j < V; j++) s += exp((double)(l[j] - mx));
        double inv = 1.0 / s;
        for (int j = 0; j < V; j++) d[j] = (float)(exp((double)(l[j] - mx)) * inv) * scale;
        d[targets[r]] -= scale;
    }
}

