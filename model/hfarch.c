/* hfarch.c — forward passes of the pretrained Hugging Face architectures (hfarch.h), streamed
 * one block at a time.
 *
 * Semantics from transformers' modeling files (HF.md): gpt2 (pre-LayerNorm, Conv1D [in,out]
 * weights, gelu_new, learned positions), llama (RMSNorm, half-split RoPE, GQA, SwiGLU),
 * qwen2 (q/k/v biases), qwen3 (per-head q/k RMSNorm before RoPE), olmo2 (post-norms on the
 * branch outputs, whole-projection q/k RMSNorm), olmo3 (olmo2 + sliding-window layers; YaRN
 * on the full-attention layers only). The tensors of a block per architecture and the reusable
 * buffers are in hfweights.c.
 *
 * Memory: all n_seq x T rows go through every matmul together (sgemm-sized products), and
 * only one block's weights are resident: one buffer sized for a block is refilled per layer.
 * The MLP runs in row chunks, so its (rows, intermediate) scratch does not grow with n_seq.
 * With a row source (hf_tensor_source.get_rows_f32) only the tokens' embedding rows are read
 * and the logits stream the head in 4 MB vocabulary chunks; without one the embedding table
 * lives only while the lookup runs, unless the logits need it again.
 *
 * Precision: float32 throughout; row statistics of the norms and softmax sums in double;
 * RoPE angles and YaRN frequencies in double (HF uses float32 there: ours is the more exact
 * of the two, well inside HF.md's tolerance). */
#include "hfarch_internal.h"
#include "ops.h"
#include "par.h"
#include "vmath.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAR_ROWS 64                    /* loops over fewer rows stay serial */
#define ATT_BLK 64                     /* query rows per score block */
#define MLP_ROWS 2048                  /* rows per MLP chunk */
#define LOGIT_FLOATS ((size_t)1 << 20) /* lm_head floats per vocabulary chunk (4 MB) */

/* ------------------------------------------------------------------------------------------
 * elementwise and per-row pieces
 * ------------------------------------------------------------------------------------------ */

/* out (N,C) = (x - mean) / sqrt(var + eps) * w + b (biased variance, HF nn.LayerNorm) */
static void layernorm(float *out, const float *x, const float *w, const float *b, size_t N, int C,
                      double eps) {
#pragma omp parallel for schedule(static) if (N >= PAR_ROWS)
    for (size_t r = 0; r < N; r++) {
        const float *xr = x + r * C;
        float *o = out + r * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += xr[i];
        double mu = s / C, v = 0.0;
        for (int i = 0; i < C; i++) {
            double dv = xr[i] - mu;
            v += dv * dv;
        }
        float rs = (float)(1.0 / sqrt(v / C + eps)), m = (float)mu;
        for (int i = 0; i < C; i++) o[i] = (xr[i] - m) * rs * w[i] + b[i];
    }
}

/* o (C) = x / sqrt(mean(x^2) + eps) * w (HF LlamaRMSNorm; o == x allowed) */
static inline void rms_row(float *o, const float *x, const float *w, int C, double eps) {
    double s = 0.0;
    for (int i = 0; i < C; i++) s += (double)x[i] * x[i];
    float rs = (float)(1.0 / sqrt(s / C + eps));
    for (int i = 0; i < C; i++) o[i] = x[i] * rs * w[i];
}

/* out (N,C) = rms_row of every row (in place allowed) */
static void rmsnorm(float *out, const float *x, const float *w, size_t N, int C, double eps) {
#pragma omp parallel for schedule(static) if (N >= PAR_ROWS)
    for (size_t r = 0; r < N; r++) rms_row(out + r * C, x + r * C, w, C, eps);
}

/* rows (N,C) += bias (C) */
static void add_bias(float *y, const float *bias, size_t N, int C) {
    if (!bias) return;
#pragma omp parallel for schedule(static) if (N >= PAR_ROWS)
    for (size_t r = 0; r < N; r++) {
        float *o = y + r * C;
        for (int j = 0; j < C; j++) o[j] += bias[j];
    }
}

/* rows (N,C) = bias (C) */
static void fill_bias(float *y, const float *bias, size_t N, int C) {
#pragma omp parallel for schedule(static) if (N >= PAR_ROWS)
    for (size_t r = 0; r < N; r++) memcpy(y + r * C, bias, (size_t)C * sizeof(float));
}

/* y = x W' + b, or y += that when acc. Without acc the bias is written first and the sgemm
 * accumulates onto it (beta 1): one pass over y instead of sgemm's zeroing (beta 0) plus a
 * bias pass. W' = W^T (trans_w) or W. */
static void affine(float *y, const float *x, const float *W, int trans_w, int ldw, const float *b,
                   size_t N, int IC, int OC, int acc) {
    float beta = acc ? 1.0f : 0.0f;
    if (b && !acc) {
        fill_bias(y, b, N, OC);
        beta = 1.0f;
    }
    lmd_sgemm(0, trans_w, (int)N, OC, IC, 1.0f, x, IC, W, ldw, beta, y, OC);
    if (acc) add_bias(y, b, N, OC);
}

/* y (N,OC) = x (N,IC) W^T + b with W (OC,IC) (nn.Linear), or y += that when acc */
static void linear(float *y, const float *x, const float *W, const float *b, size_t N, int IC,
                   int OC, int acc) {
    affine(y, x, W, 1, IC, b, N, IC, OC, acc);
}

/* y (N,OC) = x (N,IC) W + b with W (IC,OC) (GPT-2 Conv1D), or y += that when acc */
static void conv1d(float *y, const float *x, const float *W, const float *b, size_t N, int IC,
                   int OC, int acc) {
    affine(y, x, W, 0, OC, b, N, IC, OC, acc);
}

/* g (n) = silu(g) * u = g / (1 + e^-g) * u */
static void swiglu(float *g, const float *u, size_t n) {
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) {
        double x = g[i];
        g[i] = (float)(x / (1.0 + exp_vec_d(-x)) * u[i]);
    }
}

/* h (n) += y (n) */
static void add_into(float *h, const float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) h[i] += y[i];
}

/* ------------------------------------------------------------------------------------------
 * RoPE
 * ------------------------------------------------------------------------------------------ */

/* inv_freq (hd/2) for the default rope, or YaRN's blend (modeling_rope_utils.py
 * _compute_yarn_parameters); *scaling = the factor applied to cos and sin. */
static void rope_inv_freq(const hf_arch_config *c, int yarn, double *inv_freq, double *scaling) {
    int hd = c->head_dim, half = hd / 2;
    double base = c->rope_theta;
    *scaling = 1.0;
    for (int i = 0; i < half; i++) inv_freq[i] = 1.0 / pow(base, (2.0 * i) / hd);
    if (!yarn) return;
    double factor = c->yarn.factor;
    double omax =
        c->yarn.original_max_position > 0 ? c->yarn.original_max_position : (double)c->max_position;
    /* get_mscale(scale, m) = 1 if scale <= 1 else 0.1 m ln(scale) + 1 */
#define GET_MSCALE(s, m) ((s) <= 1.0 ? 1.0 : 0.1 * (m)*log(s) + 1.0)
    double af = c->yarn.attention_factor;
    if (!(af > 0)) {
        if (c->yarn.mscale != 0 && c->yarn.mscale_all_dim != 0)
            af = GET_MSCALE(factor, c->yarn.mscale) / GET_MSCALE(factor, c->yarn.mscale_all_dim);
        else
            af = GET_MSCALE(factor, 1.0);
    }
#undef GET_MSCALE
    *scaling = af;
    double beta_fast = c->yarn.beta_fast > 0 ? c->yarn.beta_fast : 32.0;
    double beta_slow = c->yarn.beta_slow > 0 ? c->yarn.beta_slow : 1.0;
    /* find_correction_dim(rot) = dim ln(omax / (rot 2 pi)) / (2 ln base) */
    double low = hd * log(omax / (beta_fast * 2.0 * M_PI)) / (2.0 * log(base));
    double high = hd * log(omax / (beta_slow * 2.0 * M_PI)) / (2.0 * log(base));
    if (c->yarn.truncate) {
        low = floor(low);
        high = ceil(high);
    }
    if (low < 0) low = 0;
    if (high > hd - 1) high = hd - 1;
    if (low == high) high += 0.001;
    for (int i = 0; i < half; i++) {
        double ramp = (i - low) / (high - low);
        ramp = ramp < 0 ? 0 : (ramp > 1 ? 1 : ramp);
        double extra = 1.0 - ramp; /* inv_freq_extrapolation_factor */
        double interp = inv_freq[i] / factor;
        inv_freq[i] = interp * (1.0 - extra) + inv_freq[i] * extra;
    }
}

/* cos/sin tables (T, hd/2), already multiplied by the attention scaling */
static void rope_tables(const hf_arch_config *c, int yarn, int T, float *cosb, float *sinb) {
    int half = c->head_dim / 2;
    double *inv = lmd_calloc((size_t)half, sizeof *inv), sc;
    rope_inv_freq(c, yarn, inv, &sc);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double a = (double)t * inv[i];
            cosb[(size_t)t * half + i] = (float)(cos(a) * sc);
            sinb[(size_t)t * half + i] = (float)(sin(a) * sc);
        }
    free(inv);
}

/* the nh heads of hd of one row x, at the position whose (hd/2) cos/sin rows are cr, sr,
 * rotated in place: pairs (j, j + hd/2), as x cos + rotate_half(x) sin */
static inline void rope_row(float *x, int nh, int hd, const float *cr, const float *sr) {
    int half = hd / 2;
    for (int h = 0; h < nh; h++) {
        float *v = x + (size_t)h * hd;
        for (int i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * cr[i] - b * sr[i];
            v[i + half] = b * cr[i] + a * sr[i];
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * attention
 * ------------------------------------------------------------------------------------------ */

/* softmax over keys [lo, t] of a score row that covers keys [k0, k1) (row[0] = key k0);
 * everything else in the row becomes 0. Max subtracted; exp in float (vmath.h exp_vec,
 * vectorized), the sum in double. */
static void softmax_window(float *row, int k0, int k1, int lo, int t) {
    float *r = row - k0; /* r[j] = key j */
    float mx = r[lo];
#pragma omp simd reduction(max : mx)
    for (int j = lo; j <= t; j++) mx = r[j] > mx ? r[j] : mx;
    float *restrict x = r + lo;
    const int n = t - lo + 1;
#pragma omp simd
    for (int j = 0; j < n; j++) x[j] = exp_vec(x[j] - mx);
    /* the sum in LANES fixed double lanes (par.h): vectorizes, and its order is fixed */
    double acc[LANES] = {0};
    int j = 0;
    for (; j + LANES <= n; j += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += x[j + l];
    for (int l = 0; j < n; j++, l++) acc[l] += x[j];
    float inv = (float)(1.0 / lanes_total(acc));
#pragma omp simd
    for (int j = lo; j <= t; j++) r[j] *= inv;
    for (int j = k0; j < lo; j++) r[j] = 0.0f;
    for (int j = t + 1; j < k1; j++) r[j] = 0.0f;
}

/* out (n_seq*T, H*hd) = softmax(scale q k^T + mask) v per (sequence, head); q rows of stride
 * ldq (head h at column h*hd), k, v rows of stride ldk (kv head g at column g*hd); query head h
 * reads kv head h / (H/KV). window 0 = causal; W > 0: keys i - W < j <= i. scratch: one
 * ATT_BLK x T score block per thread. */
static void attention(float *out, int ldo, const float *q, int ldq, const float *k, const float *v,
                      int ldk, int n_seq, int T, int H, int KV, int hd, float scale, int window,
                      float *scratch, int nthreads) {
    int pairs = n_seq * H, group = H / KV;
    int nt = nthreads < pairs ? nthreads : pairs;
    if (nt < 1) nt = 1;
    int blas_threads = openblas_get_num_threads();
    if (nt > 1) openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int p = 0; p < pairs; p++) {
        int s = p / H, h = p % H, g = h / group;
        size_t row0 = (size_t)s * T;
        const float *qh = q + row0 * ldq + (size_t)h * hd;
        const float *kh = k + row0 * ldk + (size_t)g * hd;
        const float *vh = v + row0 * ldk + (size_t)g * hd;
        float *oh = out + row0 * ldo + (size_t)h * hd;
        float *sc = scratch + (size_t)par_thread_id() * ATT_BLK * T;
        for (int r0 = 0; r0 < T; r0 += ATT_BLK) {
            int r1 = r0 + ATT_BLK < T ? r0 + ATT_BLK : T, nr = r1 - r0;
            int k0 = window > 0 ? r0 - window + 1 : 0;
            if (k0 < 0) k0 = 0;
            int nk = r1 - k0;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, nk, hd, scale,
                        qh + (size_t)r0 * ldq, ldq, kh + (size_t)k0 * ldk, ldk, 0.0f, sc, nk);
            for (int t = r0; t < r1; t++) {
                int lo = window > 0 ? t - window + 1 : 0;
                if (lo < 0) lo = 0;
                softmax_window(sc + (size_t)(t - r0) * nk, k0, r1, lo, t);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hd, nk, 1.0f, sc, nk,
                        vh + (size_t)k0 * ldk, ldk, 0.0f, oh + (size_t)r0 * ldo, ldo);
        }
    }
    if (nt > 1) openblas_set_num_threads(blas_threads);
}

/* ------------------------------------------------------------------------------------------
 * the forward pass
 * ------------------------------------------------------------------------------------------ */

int hf_forward(const hf_arch_config *c, const hf_tensor_source *src, const int32_t *tokens,
               int n_seq, int T, hf_hidden_fn on_hidden, void *ctx, float *logits, lmd_err *err) {
    if (!c || !src || !src->get_f32 || !tokens)
        return lmd_errf(err, "hf_forward: missing config, weights or tokens");
    if (n_seq < 1 || T < 1)
        return lmd_errf(err, "hf_forward: need at least one sequence of length >= 1 (got %d x %d)",
                        n_seq, T);
    const int d = c->hidden_size, V = c->vocab_size, H = c->n_head, KV = c->n_kv_head,
              hd = c->head_dim, IM = c->intermediate_size, L = c->n_layer;
    if (d < 1 || V < 1 || H < 1 || KV < 1 || hd < 1 || IM < 1 || L < 1 || H % KV != 0)
        return lmd_errf(err,
                        "hf_forward: invalid %s config (hidden %d, vocab %d, heads %d/%d, "
                        "head_dim %d, intermediate %d, layers %d)",
                        c->model_type, d, V, H, KV, hd, IM, L);
    if (c->arch == HF_GPT2 && (hd * H != d))
        return lmd_errf(err, "hf_forward: gpt2 needs n_embd %d divisible by n_head %d", d, H);
    if (is_llama_family(c) && hd % 2 != 0)
        return lmd_errf(err, "hf_forward: RoPE needs an even head_dim (got %d)", hd);
    if (c->arch == HF_GPT2 && T > c->max_position)
        return lmd_errf(err, "hf_forward: sequence length %d exceeds gpt2's n_positions %d", T,
                        c->max_position);
    const size_t N = (size_t)n_seq * T;
    for (size_t i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return lmd_errf(err,
                            "hf_forward: token id %d (sequence %zu, position %zu) is outside "
                            "the vocabulary of %d",
                            (int)tokens[i], i / T, i % T, V);

    const char *gp = c->arch == HF_GPT2 ? hf_gpt2_prefix(src) : "";
    const int qd = H * hd, kd = KV * hd;
    const size_t dd = (size_t)d;
    block_layout bl;
    hf_block_describe(c, gp, 0, &bl);
    int rc = 0;
    char name[192];

    /* activations of all sequences */
    size_t qkv_w = c->arch == HF_GPT2 ? 3 * dd : (size_t)qd + 2 * (size_t)kd;
    size_t mrows = N < MLP_ROWS ? N : MLP_ROWS;
    const size_t n_h = N * dd, n_qkv = N * qkv_w, n_ao = N * (size_t)qd, n_m = mrows * (size_t)IM;
    float *h = hf_pool_alloc(n_h);  /* residual stream */
    float *xn = hf_pool_alloc(n_h); /* normed input / branch output */
    float *qkv = hf_pool_alloc(n_qkv);
    float *ao = hf_pool_alloc(n_ao); /* attention output */
    float *m1 = hf_pool_alloc(n_m);
    float *m2 = is_llama_family(c) ? hf_pool_alloc(n_m) : NULL;
    int nthreads = par_max_threads();
    float *scratch = lmd_aligned_alloc((size_t)nthreads * ATT_BLK * T * sizeof(float));
    float *cos0 = NULL, *sin0 = NULL, *cosy = NULL, *siny = NULL;
    float *wbuf = NULL, *emb = NULL, *fn_w = NULL, *fn_b = NULL, *head = NULL;
    size_t head_n = 0; /* > 0: head came from hf_pool_alloc(head_n) */
    float *w[W_NUM];

    /* embeddings: h = embed[tok] (+ wpe[t]); with a row source only the tokens' rows are
     * read (and wpe's first T), never the (vocab x d) table */
    const int rows_src = src->get_rows_f32 != NULL;
    char emb_name[192];
    snprintf(emb_name, sizeof emb_name,
             c->arch == HF_GPT2 ? "%swte.weight" : "model.embed_tokens.weight", gp);
    if (rows_src) {
        for (size_t r = 0; r < N; r++)
            if (hf_load_rows(src, emb_name, V, d, tokens[r], 1, h + r * dd, err)) goto fail;
    } else {
        emb = hf_weights_alloc((size_t)V * dd);
        if (hf_load_tensor(src, emb_name, 2, V, d, emb, err)) goto fail;
        for (size_t r = 0; r < N; r++)
            memcpy(h + r * dd, emb + (size_t)tokens[r] * dd, dd * sizeof(float));
    }
    if (c->arch == HF_GPT2) {
        size_t npos = rows_src ? (size_t)T : (size_t)c->max_position;
        float *wpe = hf_weights_alloc(npos * dd);
        snprintf(name, sizeof name, "%swpe.weight", gp);
        if (rows_src ? hf_load_rows(src, name, c->max_position, d, 0, T, wpe, err)
                     : hf_load_tensor(src, name, 2, c->max_position, d, wpe, err)) {
            free(wpe);
            goto fail;
        }
        for (size_t r = 0; r < N; r++) {
            const float *pe = wpe + (r % T) * dd;
            float *o = h + r * dd;
            for (int i = 0; i < d; i++) o[i] += pe[i];
        }
        free(wpe);
    }
    if (!(logits && c->tie_word_embeddings && !rows_src)) {
        free(emb);
        emb = NULL;
    }
    if (on_hidden && on_hidden(ctx, 0, h, n_seq, T, d, err)) goto fail;

    if (is_llama_family(c)) {
        size_t tab = (size_t)T * (hd / 2);
        cos0 = lmd_calloc(tab, sizeof(float));
        sin0 = lmd_calloc(tab, sizeof(float));
        rope_tables(c, 0, T, cos0, sin0);
        if (c->rope_type == HF_ROPE_YARN) {
            cosy = lmd_calloc(tab, sizeof(float));
            siny = lmd_calloc(tab, sizeof(float));
            rope_tables(c, 1, T, cosy, siny);
        }
    }

    wbuf = hf_pool_alloc(bl.total);
    for (int l = 0; l < L; l++) {
        if (hf_load_block(c, src, gp, l, wbuf, w, err)) goto fail;
        int sliding = c->layer_sliding && c->layer_sliding[l];
        int window = sliding ? c->sliding_window : 0;
        if (sliding && window < 1) {
            lmd_errf(err, "hf_forward: layer %d slides but sliding_window is %d", l, window);
            goto fail;
        }
        float *q, *k, *v;
        int ldq, ldk;
        float scale;
        if (c->arch == HF_GPT2) {
            /* h += c_proj(attn(ln_1(h))) */
            layernorm(xn, h, w[W_LN1W], w[W_LN1B], N, d, c->norm_eps);
            conv1d(qkv, xn, w[W_QKV], w[W_QKVB], N, d, 3 * d, 0);
            q = qkv, k = qkv + d, v = qkv + 2 * d, ldq = ldk = 3 * d;
            scale = c->scale_attn_weights ? 1.0f / sqrtf((float)hd) : 1.0f;
            if (c->scale_attn_by_inverse_layer_idx) scale /= (float)(l + 1);
        } else {
            /* llama/qwen: x = rms(h); olmo: the block input itself */
            const float *x = h;
            if (!is_olmo(c)) {
                rmsnorm(xn, h, w[W_LN1W], N, d, c->norm_eps);
                x = xn;
            }
            ldq = ldk = (int)qkv_w;
            q = qkv, k = qkv + qd, v = qkv + qd + kd;
            lmd_sgemm(0, 1, (int)N, qd, d, 1.0f, x, d, w[W_Q], d, 0.0f, q, ldq);
            lmd_sgemm(0, 1, (int)N, kd, d, 1.0f, x, d, w[W_K], d, 0.0f, k, ldk);
            lmd_sgemm(0, 1, (int)N, kd, d, 1.0f, x, d, w[W_V], d, 0.0f, v, ldk);
            if (w[W_QB]) {
#pragma omp parallel for schedule(static) if (N >= PAR_ROWS)
                for (size_t r = 0; r < N; r++) {
                    float *qr = q + r * ldq, *kr = k + r * ldk, *vr = v + r * ldk;
                    for (int j = 0; j < qd; j++) qr[j] += w[W_QB][j];
                    for (int j = 0; j < kd; j++) kr[j] += w[W_KB][j];
                    for (int j = 0; j < kd; j++) vr[j] += w[W_VB][j];
                }
            }
            /* qk-norm (qwen3: per head, [hd] weights; olmo: the whole projection), then
             * RoPE; olmo3's sliding layers always use the default rope */
            int yarn = c->rope_type == HF_ROPE_YARN && !sliding;
            const float *cs = yarn ? cosy : cos0, *sn = yarn ? siny : sin0;
            const int half = hd / 2;
#pragma omp parallel for schedule(static) if (N >= PAR_ROWS)
            for (size_t r = 0; r < N; r++) {
                float *qr = q + r * ldq, *kr = k + r * ldk;
                if (c->arch == HF_QWEN3) {
                    for (int hh = 0; hh < H; hh++)
                        rms_row(qr + (size_t)hh * hd, qr + (size_t)hh * hd, w[W_QN], hd,
                                c->norm_eps);
                    for (int hh = 0; hh < KV; hh++)
                        rms_row(kr + (size_t)hh * hd, kr + (size_t)hh * hd, w[W_KN], hd,
                                c->norm_eps);
                } else if (is_olmo(c)) {
                    rms_row(qr, qr, w[W_QN], qd, c->norm_eps);
                    rms_row(kr, kr, w[W_KN], kd, c->norm_eps);
                }
                size_t t = r % (size_t)T;
                rope_row(qr, H, hd, cs + t * half, sn + t * half);
                rope_row(kr, KV, hd, cs + t * half, sn + t * half);
            }
            scale = (float)(1.0 / sqrt((double)hd));
        }
        attention(ao, qd, q, ldq, k, v, ldk, n_seq, T, H, KV, hd, scale, window, scratch, nthreads);
        if (c->arch == HF_GPT2) {
            conv1d(h, ao, w[W_O], w[W_OB], N, d, d, 1);
            /* h += mlp.c_proj(gelu_new(c_fc(ln_2(h)))), in row chunks */
            layernorm(xn, h, w[W_LN2W], w[W_LN2B], N, d, c->norm_eps);
            for (size_t r0 = 0; r0 < N; r0 += mrows) {
                size_t nr = N - r0 < mrows ? N - r0 : mrows;
                conv1d(m1, xn + r0 * dd, w[W_UP], w[W_UPB], nr, d, IM, 0);
                lmd_gelu_forward(m1, m1, nr * (size_t)IM);
                conv1d(h + r0 * dd, m1, w[W_DOWN], w[W_DOWNB], nr, IM, d, 1);
            }
        } else if (!is_olmo(c)) {
            /* h += o(attn); h += down(silu(gate(x)) * up(x)), x = rms(h) */
            linear(h, ao, w[W_O], w[W_OB], N, qd, d, 1);
            rmsnorm(xn, h, w[W_LN2W], N, d, c->norm_eps);
            for (size_t r0 = 0; r0 < N; r0 += mrows) {
                size_t nr = N - r0 < mrows ? N - r0 : mrows;
                linear(m1, xn + r0 * dd, w[W_GATE], w[W_GATEB], nr, d, IM, 0);
                linear(m2, xn + r0 * dd, w[W_UP], w[W_UPB], nr, d, IM, 0);
                swiglu(m1, m2, nr * (size_t)IM);
                linear(h + r0 * dd, m1, w[W_DOWN], w[W_DOWNB], nr, IM, d, 1);
            }
        } else {
            /* olmo: h += rms(o(attn), post_attention_layernorm);
             *       h += rms(mlp(h), post_feedforward_layernorm) */
            linear(xn, ao, w[W_O], w[W_OB], N, qd, d, 0);
            rmsnorm(xn, xn, w[W_LN2W], N, d, c->norm_eps);
            add_into(h, xn, N * dd);
            for (size_t r0 = 0; r0 < N; r0 += mrows) {
                size_t nr = N - r0 < mrows ? N - r0 : mrows;
                linear(m1, h + r0 * dd, w[W_GATE], w[W_GATEB], nr, d, IM, 0);
                linear(m2, h + r0 * dd, w[W_UP], w[W_UPB], nr, d, IM, 0);
                swiglu(m1, m2, nr * (size_t)IM);
                linear(xn + r0 * dd, m1, w[W_DOWN], w[W_DOWNB], nr, IM, d, 0);
            }
            rmsnorm(xn, xn, w[W_PFN], N, d, c->norm_eps);
            add_into(h, xn, N * dd);
        }
        if (l < L - 1 && on_hidden && on_hidden(ctx, l + 1, h, n_seq, T, d, err)) goto fail;
    }
    hf_pool_free(wbuf, bl.total);
    wbuf = NULL;

    /* final norm -> hidden state L -> logits */
    fn_w = lmd_aligned_alloc(dd * sizeof(float));
    if (c->arch == HF_GPT2) {
        fn_b = lmd_aligned_alloc(dd * sizeof(float));
        snprintf(name, sizeof name, "%sln_f.weight", gp);
        if (hf_load_tensor(src, name, 1, d, 0, fn_w, err)) goto fail;
        snprintf(name, sizeof name, "%sln_f.bias", gp);
        if (hf_load_tensor(src, name, 1, d, 0, fn_b, err)) goto fail;
        layernorm(xn, h, fn_w, fn_b, N, d, c->norm_eps);
    } else {
        if (hf_load_tensor(src, "model.norm.weight", 1, d, 0, fn_w, err)) goto fail;
        rmsnorm(xn, h, fn_w, N, d, c->norm_eps);
    }
    if (on_hidden && on_hidden(ctx, L, xn, n_seq, T, d, err)) goto fail;
    if (logits) {
        /* the activations no longer needed make room for the head */
        if (rows_src) { /* the head takes 4 MB: keep them for the next call */
            hf_pool_free(qkv, n_qkv), qkv = NULL;
            hf_pool_free(m1, n_m), m1 = NULL;
            hf_pool_free(m2, n_m), m2 = NULL;
        } else {
            free(qkv), qkv = NULL;
            free(m1), m1 = NULL;
            free(m2), m2 = NULL;
        }
        const char *hname = c->tie_word_embeddings ? emb_name : "lm_head.weight";
        if (rows_src) {
            /* vocabulary chunks: convert vc rows of the head, logits[:, v0:v0+vc] = xn head^T,
             * next; one 4 MB buffer instead of the (vocab x d) table */
            size_t vc = LOGIT_FLOATS / dd;
            vc = vc >= 64 ? vc / 64 * 64 : (vc ? vc : 1);
            if (vc > (size_t)V) vc = (size_t)V;
            head_n = vc * dd;
            head = hf_pool_alloc(head_n);
            for (size_t v0 = 0; v0 < (size_t)V; v0 += vc) {
                size_t nv = (size_t)V - v0 < vc ? (size_t)V - v0 : vc;
                if (hf_load_rows(src, hname, V, d, (int64_t)v0, (int64_t)nv, head, err)) goto fail;
                lmd_sgemm(0, 1, (int)N, (int)nv, d, 1.0f, xn, d, head, d, 0.0f, logits + v0, V);
            }
        } else {
            if (c->tie_word_embeddings) {
                head = emb;
                emb = NULL;
            } else {
                head = hf_weights_alloc((size_t)V * dd);
                if (hf_load_tensor(src, hname, 2, V, d, head, err)) goto fail;
            }
            lmd_sgemm(0, 1, (int)N, V, d, 1.0f, xn, d, head, d, 0.0f, logits, V);
        }
    }
    goto done;
fail:
    rc = -1;
    if (!err || !err->msg[0]) lmd_errf(err, "hf_forward failed");
done:
    hf_pool_free(h, n_h);
    hf_pool_free(xn, n_h);
    hf_pool_free(qkv, n_qkv);
    hf_pool_free(ao, n_ao);
    hf_pool_free(m1, n_m);
    hf_pool_free(m2, n_m);
    free(scratch);
    free(cos0);
    free(sin0);
    free(cosy);
    free(siny);
    hf_pool_free(wbuf, bl.total);
    free(emb);
    free(fn_w);
    free(fn_b);
    if (head_n)
        hf_pool_free(head, head_n);
    else
        free(head);
    return rc;
}
