/* gpt.c — GPT-2-like transformer (DESIGN.md section 2) on cblas_sgemm.
 *
 * Layout follows the llm.c idea: parameters, gradients, AdamW moments and activations each
 * live in one allocation carved into named tensors. Every matmul, attention included, runs on
 * cblas_sgemm (ops.c splits the large ones over OpenMP threads). Backward functions accumulate into parameter gradients; each quotes the
 * forward line it differentiates. */
#include "gpt.h"
#include "ops.h"
#include "par.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------------------------------------
 * parameter layout
 * ------------------------------------------------------------------------------------------ */

void gpt_tensor_describe(const gpt_config *cfg, int k, gpt_tensor_info *info) {
    size_t V = (size_t)cfg->vocab_size, P = (size_t)cfg->n_ctx, C = (size_t)cfg->n_embd,
           M = (size_t)cfg->mlp_dim;
    memset(info, 0, sizeof *info);
#define T1(nm, lay, a, dec)                                                                        \
    (info->name = (nm), info->layered = (lay), info->ndim = 1, info->shape[0] = (a),               \
     info->decay = (dec))
#define T2(nm, lay, a, b, dec)                                                                     \
    (info->name = (nm), info->layered = (lay), info->ndim = 2, info->shape[0] = (a),               \
     info->shape[1] = (b), info->decay = (dec))
    switch (k) {
    case GPT_WTE: T2("wte", 0, V, C, 1); break;
    case GPT_WPE: T2("wpe", 0, P, C, 1); break;
    case GPT_LN1W: T1("h.%d.ln_1.weight", 1, C, 0); break;
    case GPT_LN1B: T1("h.%d.ln_1.bias", 1, C, 0); break;
    case GPT_QKVW: T2("h.%d.attn.qkv.weight", 1, 3 * C, C, 1); break;
    case GPT_QKVB: T1("h.%d.attn.qkv.bias", 1, 3 * C, 0); break;
    case GPT_ATTPROJW: T2("h.%d.attn.proj.weight", 1, C, C, 1); break;
    case GPT_ATTPROJB: T1("h.%d.attn.proj.bias", 1, C, 0); break;
    case GPT_LN2W: T1("h.%d.ln_2.weight", 1, C, 0); break;
    case GPT_LN2B: T1("h.%d.ln_2.bias", 1, C, 0); break;
    case GPT_FCW: T2("h.%d.mlp.fc.weight", 1, M, C, 1); break;
    case GPT_FCB: T1("h.%d.mlp.fc.bias", 1, M, 0); break;
    case GPT_FCPROJW: T2("h.%d.mlp.proj.weight", 1, C, M, 1); break;
    case GPT_FCPROJB: T1("h.%d.mlp.proj.bias", 1, C, 0); break;
    case GPT_LNFW: T1("ln_f.weight", 0, C, 0); break;
    case GPT_LNFB: T1("ln_f.bias", 0, C, 0); break;
    default: lmd_die("bad tensor index %d", k);
    }
#undef T1
#undef T2
}

size_t gpt_tensor_numel(const gpt_config *cfg, int k) {
    gpt_tensor_info info;
    gpt_tensor_describe(cfg, k, &info);
    size_t n = info.shape[0] * (info.ndim == 2 ? info.shape[1] : 1);
    return info.layered ? n * (size_t)cfg->n_layer : n;
}

size_t gpt_num_params(const gpt_config *cfg) {
    size_t n = 0;
    for (int k = 0; k < GPT_NUM_TENSORS; k++) n += gpt_tensor_numel(cfg, k);
    return n;
}

gpt_config gpt_config_default(void) {
    gpt_config c = {
        .vocab_size = 0, .n_ctx = 128, .n_layer = 4, .n_embd = 128, .n_head = 4, .mlp_dim = 512};
    return c;
}

int gpt_config_validate(const gpt_config *c, lmd_err *err) {
    if (c->vocab_size < 2) return lmd_errf(err, "vocab_size must be >= 2 (got %d)", c->vocab_size);
    if (c->vocab_size > GPT_MAX_VOCAB)
        return lmd_errf(err, "vocab_size must be <= %d, got %d", GPT_MAX_VOCAB, c->vocab_size);
    if (c->n_ctx < 1) return lmd_errf(err, "n_ctx must be >= 1 (got %d)", c->n_ctx);
    if (c->n_layer < 1) return lmd_errf(err, "n_layer must be >= 1 (got %d)", c->n_layer);
    if (c->n_embd < 1) return lmd_errf(err, "n_embd must be >= 1 (got %d)", c->n_embd);
    if (c->n_head < 1) return lmd_errf(err, "n_head must be >= 1 (got %d)", c->n_head);
    if (c->mlp_dim < 1) return lmd_errf(err, "mlp_dim must be >= 1 (got %d)", c->mlp_dim);
    if (c->n_embd % c->n_head != 0)
        return lmd_errf(err, "n_embd (%d) must be divisible by n_head (%d)", c->n_embd, c->n_head);
    return 0;
}

static void carve_tensors(const gpt_config *cfg, float *base, gpt_tensors *t) {
    float *p = base;
    for (int k = 0; k < GPT_NUM_TENSORS; k++) {
        t->t[k] = p;
        p += gpt_tensor_numel(cfg, k);
    }
}

int gpt_create(gpt_model *m, const gpt_config *cfg, lmd_err *err) {
    memset(m, 0, sizeof *m);
    if (gpt_config_validate(cfg, err)) return -1;
    m->cfg = *cfg;
    m->num_params = gpt_num_params(cfg);
    m->params_memory = lmd_aligned_alloc(m->num_params * sizeof(float));
    carve_tensors(cfg, m->params_memory, &m->params);
    return 0;
}

void gpt_free(gpt_model *m) {
    free(m->params_memory);
    free(m->grads_memory);
    free(m->m_memory);
    free(m->v_memory);
    free(m->acts_memory);
    free(m->grad_acts_memory);
    memset(m, 0, sizeof *m);
}

void gpt_init(gpt_model *m, uint64_t seed) {
    lmd_rng rng;
    lmd_rng_seed(&rng, seed, LMD_STREAM_INIT);
    const gpt_config *cfg = &m->cfg;
    const double std = 0.02, std_proj = 0.02 / sqrt(2.0 * cfg->n_layer);
    for (int k = 0; k < GPT_NUM_TENSORS; k++) {
        float *p = m->params.t[k];
        size_t n = gpt_tensor_numel(cfg, k);
        switch (k) {
        case GPT_LN1W:
        case GPT_LN2W:
        case GPT_LNFW:
            for (size_t i = 0; i < n; i++) p[i] = 1.0f;
            break;
        case GPT_WTE:
        case GPT_WPE:
        case GPT_QKVW:
        case GPT_FCW:
            for (size_t i = 0; i < n; i++) p[i] = (float)(std * lmd_rng_normal(&rng));
            break;
        case GPT_ATTPROJW:
        case GPT_FCPROJW:
            for (size_t i = 0; i < n; i++) p[i] = (float)(std_proj * lmd_rng_normal(&rng));
            break;
        default: /* biases */ memset(p, 0, n * sizeof(float));
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * buffers
 * ------------------------------------------------------------------------------------------ */

void gpt_alloc_acts(gpt_model *m, int B, int T) {
    if (m->acts_memory && (size_t)B * T <= (size_t)m->B_cap * m->T_cap && T <= m->T_cap) return;
    int Bc = B, Tc = T;
    if (m->acts_memory) { /* grow to cover both old and new shapes */
        if (m->T_cap > Tc) Tc = m->T_cap;
        size_t need = (size_t)B * T > (size_t)m->B_cap * m->T_cap ? (size_t)B * T
                                                                  : (size_t)m->B_cap * m->T_cap;
        Bc = (int)((need + Tc - 1) / Tc);
    }
    free(m->acts_memory);
    free(m->grad_acts_memory);
    const gpt_config *c = &m->cfg;
    size_t L = c->n_layer, C = c->n_embd, NH = c->n_head, M = c->mlp_dim, V = c->vocab_size;
    size_t BT = (size_t)Bc * Tc, TT = (size_t)Tc * Tc;
    size_t sizes[] = {
        BT * C,
        BT * C * L,
        BT * L,
        BT * L,
        BT * 3 * C * L,
        BT * C * L,
        Bc * NH * TT * L,
        BT * C * L,
        BT * C * L,
        BT * L,
        BT * L,
        BT * M * L,
        BT * M * L,
        BT * C * L,
        BT * C,
        BT,
        BT,
        BT * V,
        BT,
    };
    size_t n = sizeof sizes / sizeof sizes[0], total = 0;
    for (size_t i = 0; i < n; i++) total += sizes[i];
    m->num_acts = total;
    m->acts_memory = lmd_aligned_alloc(total * sizeof(float));
    float **ptrs[] = {&m->acts.encoded,  &m->acts.ln1,       &m->acts.ln1_mean, &m->acts.ln1_rstd,
                      &m->acts.qkv,      &m->acts.atty,      &m->acts.att,      &m->acts.residual2,
                      &m->acts.ln2,      &m->acts.ln2_mean,  &m->acts.ln2_rstd, &m->acts.fch,
                      &m->acts.fch_gelu, &m->acts.residual3, &m->acts.lnf,      &m->acts.lnf_mean,
                      &m->acts.lnf_rstd, &m->acts.logits,    &m->acts.losses};
    float *p = m->acts_memory;
    for (size_t i = 0; i < n; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    /* backward scratch: datt is one T x T tile, split by lmd_attention_backward into a block
     * of rows per thread */
    size_t gsizes[] = {BT * C, BT * C, BT * 3 * C, BT * C, TT, BT * M, BT * V};
    float **gptrs[] = {&m->grad_acts.dresidual, &m->grad_acts.dln,  &m->grad_acts.dqkv,
                       &m->grad_acts.datty,     &m->grad_acts.datt, &m->grad_acts.dfch,
                       &m->grad_acts.dlogits};
    size_t gn = sizeof gsizes / sizeof gsizes[0], gtotal = 0;
    for (size_t i = 0; i < gn; i++) gtotal += gsizes[i];
    m->num_grad_acts = gtotal;
    m->grad_acts_memory = lmd_aligned_alloc(gtotal * sizeof(float));
    p = m->grad_acts_memory;
    for (size_t i = 0; i < gn; i++) {
        *gptrs[i] = p;
        p += gsizes[i];
    }
    m->B_cap = Bc;
    m->T_cap = Tc;
}

void gpt_alloc_grads(gpt_model *m) {
    if (m->grads_memory) return;
    m->grads_memory = lmd_aligned_alloc(m->num_params * sizeof(float));
    carve_tensors(&m->cfg, m->grads_memory, &m->grads);
}

void gpt_alloc_moments(gpt_model *m) {
    if (m->m_memory) return;
    m->m_memory = lmd_aligned_alloc(m->num_params * sizeof(float));
    m->v_memory = lmd_aligned_alloc(m->num_params * sizeof(float));
}

void gpt_zero_grad(gpt_model *m) {
    gpt_alloc_grads(m);
    par_zero_floats(m->grads_memory, m->num_params);
}

/* ------------------------------------------------------------------------------------------
 * layers: forward and backward side by side
 * ------------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------------
 * model forward / backward
 * ------------------------------------------------------------------------------------------ */

float *gpt_hidden_state(const gpt_model *m, int l) {
    int L = m->cfg.n_layer;
    size_t BTC = (size_t)m->B * m->T * m->cfg.n_embd;
    if (l < 0 || l > L) lmd_die("hidden state %d out of range 0..%d", l, L);
    if (l == 0) return m->acts.encoded;
    if (l == L) return m->acts.lnf;
    return m->acts.residual3 + (size_t)(l - 1) * BTC;
}

void gpt_forward(gpt_model *m, const int *inputs, const int *targets, int B, int T) {
    const gpt_config *c = &m->cfg;
    if (T > c->n_ctx) lmd_die("sequence length %d exceeds n_ctx %d", T, c->n_ctx);
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (inputs[i] < 0 || inputs[i] >= c->vocab_size)
            lmd_die("token id %d at %zu outside vocab %d", inputs[i], i, c->vocab_size);
    gpt_alloc_acts(m, B, T);
    m->B = B;
    m->T = T;
    m->inputs = inputs;
    m->targets = targets;
    m->has_targets = targets != NULL;

    int L = c->n_layer, C = c->n_embd, NH = c->n_head, M = c->mlp_dim, V = c->vocab_size;
    size_t BT = (size_t)B * T, BTC = BT * C;
    gpt_tensors *P = &m->params;
    gpt_acts *A = &m->acts;

    lmd_encoder_forward(A->encoded, inputs, P->wte, P->wpe, B, T, C);
    for (int l = 0; l < L; l++) {
        const float *residual = l == 0 ? A->encoded : A->residual3 + (size_t)(l - 1) * BTC;
        float *ln1 = A->ln1 + l * BTC, *ln1_mean = A->ln1_mean + l * BT,
              *ln1_rstd = A->ln1_rstd + l * BT;
        float *qkv = A->qkv + l * BTC * 3, *atty = A->atty + l * BTC;
        float *att = A->att + (size_t)l * B * NH * T * T;
        float *residual2 = A->residual2 + l * BTC;
        float *ln2 = A->ln2 + l * BTC, *ln2_mean = A->ln2_mean + l * BT,
              *ln2_rstd = A->ln2_rstd + l * BT;
        float *fch = A->fch + l * BT * M, *fch_gelu = A->fch_gelu + l * BT * M;
        float *residual3 = A->residual3 + l * BTC;

        lmd_layernorm_forward(ln1, ln1_mean, ln1_rstd, residual, P->ln1w + l * C, P->ln1b + l * C,
                              BT, C);
        lmd_matmul_forward(qkv, ln1, P->qkvw + (size_t)l * 3 * C * C, P->qkvb + (size_t)l * 3 * C,
                           BT, C, 3 * C, 0);
        lmd_attention_forward(atty, att, qkv, B, T, C, NH);
        lmd_matmul_forward_residual(residual2, residual, atty, P->attprojw + (size_t)l * C * C,
                                    P->attprojb + l * C, BT, C, C);
        lmd_layernorm_forward(ln2, ln2_mean, ln2_rstd, residual2, P->ln2w + l * C, P->ln2b + l * C,
                              BT, C);
        lmd_matmul_forward(fch, ln2, P->fcw + (size_t)l * M * C, P->fcb + (size_t)l * M, BT, C, M,
                           0);
        lmd_gelu_forward(fch_gelu, fch, BT * M);
        lmd_matmul_forward_residual(residual3, residual2, fch_gelu, P->fcprojw + (size_t)l * C * M,
                                    P->fcprojb + l * C, BT, M, C);
    }
    const float *last = A->residual3 + (size_t)(L - 1) * BTC;
    lmd_layernorm_forward(A->lnf, A->lnf_mean, A->lnf_rstd, last, P->lnfw, P->lnfb, BT, C);
    lmd_matmul_forward(A->logits, A->lnf, P->wte, NULL, BT, C, V, 0);
    if (targets) {
        for (size_t i = 0; i < BT; i++)
            if (targets[i] < 0 || targets[i] >= V)
                lmd_die("target id %d at %zu outside vocab %d", targets[i], i, V);
        m->mean_loss = (float)lmd_crossentropy_forward(A->losses, A->logits, targets, BT, V);
    } else {
        m->mean_loss = NAN;
    }
}

static void add_inplace(float *dst, const float *src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 32768)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

static void backward_impl(gpt_model *m, const float *dhidden, int dlogits_given);

void gpt_backward(gpt_model *m, const float *dhidden) { backward_impl(m, dhidden, 0); }

void gpt_backward_dlogits(gpt_model *m, const float *dhidden) { backward_impl(m, dhidden, 1); }

static void backward_impl(gpt_model *m, const float *dhidden, int dlogits_given) {
    if (!m->has_targets) lmd_die("gpt_backward needs a forward with targets");
    gpt_alloc_grads(m);
    const gpt_config *c = &m->cfg;
    int B = m->B, T = m->T, L = c->n_layer, C = c->n_embd, NH = c->n_head, M = c->mlp_dim,
        V = c->vocab_size;
    size_t BT = (size_t)B * T, BTC = BT * C;
    gpt_tensors *P = &m->params, *G = &m->grads;
    gpt_acts *A = &m->acts;
    gpt_grad_acts *D = &m->grad_acts;

    /* loss = mean CE;  logits = lnf wte^T */
    if (!dlogits_given)
        lmd_crossentropy_backward(D->dlogits, A->logits, m->targets, BT, V, 1.0f / (float)BT);
    lmd_matmul_backward(D->dln, G->wte, NULL, D->dlogits, A->lnf, P->wte, BT, C, V);
    if (dhidden) add_inplace(D->dln, dhidden + (size_t)L * BTC, BTC);
    /* lnf = layernorm(residual3[L-1]) */
    par_zero_floats(D->dresidual, BTC);
    lmd_layernorm_backward(D->dresidual, G->lnfw, G->lnfb, D->dln,
                           A->residual3 + (size_t)(L - 1) * BTC, P->lnfw, A->lnf_mean, A->lnf_rstd,
                           BT, C);

    for (int l = L - 1; l >= 0; l--) {
        /* hidden state l+1 (for l+1 < L) is this block's output: its extra gradient joins here */
        if (dhidden && l + 1 < L) add_inplace(D->dresidual, dhidden + (size_t)(l + 1) * BTC, BTC);
        const float *residual = l == 0 ? A->encoded : A->residual3 + (size_t)(l - 1) * BTC;
        const float *ln1 = A->ln1 + l * BTC, *qkv = A->qkv + l * BTC * 3, *atty = A->atty + l * BTC;
        const float *att = A->att + (size_t)l * B * NH * T * T;
        const float *residual2 = A->residual2 + l * BTC, *ln2 = A->ln2 + l * BTC;
        const float *fch = A->fch + l * BT * M, *fch_gelu = A->fch_gelu + l * BT * M;

        /* residual3 = residual2 + fch_gelu fcprojw^T + fcprojb */
        lmd_matmul_backward(D->dfch, G->fcprojw + (size_t)l * C * M, G->fcprojb + l * C,
                            D->dresidual, fch_gelu, P->fcprojw + (size_t)l * C * M, BT, M, C);
        /* fch_gelu = gelu(fch) */
        lmd_gelu_backward(D->dfch, fch, BT * M);
        /* fch = ln2 fcw^T + fcb */
        lmd_matmul_backward(D->dln, G->fcw + (size_t)l * M * C, G->fcb + (size_t)l * M, D->dfch,
                            ln2, P->fcw + (size_t)l * M * C, BT, C, M);
        /* ln2 = layernorm(residual2); dresidual now holds d residual2 */
        lmd_layernorm_backward(D->dresidual, G->ln2w + l * C, G->ln2b + l * C, D->dln, residual2,
                               P->ln2w + l * C, A->ln2_mean + l * BT, A->ln2_rstd + l * BT, BT, C);
        /* residual2 = residual + atty attprojw^T + attprojb */
        lmd_matmul_backward(D->datty, G->attprojw + (size_t)l * C * C, G->attprojb + l * C,
                            D->dresidual, atty, P->attprojw + (size_t)l * C * C, BT, C, C);
        /* atty = attention(qkv) */
        lmd_attention_backward(D->dqkv, D->datt, (size_t)m->T_cap * m->T_cap, D->datty, qkv, att, B,
                               T, C, NH);
        /* qkv = ln1 qkvw^T + qkvb */
        lmd_matmul_backward(D->dln, G->qkvw + (size_t)l * 3 * C * C, G->qkvb + (size_t)l * 3 * C,
                            D->dqkv, ln1, P->qkvw + (size_t)l * 3 * C * C, BT, C, 3 * C);
        /* ln1 = layernorm(residual) */
        lmd_layernorm_backward(D->dresidual, G->ln1w + l * C, G->ln1b + l * C, D->dln, residual,
                               P->ln1w + l * C, A->ln1_mean + l * BT, A->ln1_rstd + l * BT, BT, C);
    }
    /* encoded = wte[inp] + wpe: hidden state 0 */
    if (dhidden) add_inplace(D->dresidual, dhidden, BTC);
    lmd_encoder_backward(G->wte, G->wpe, D->dresidual, m->inputs, B, T, C);
}

/* ------------------------------------------------------------------------------------------
 * optimizer
 * ------------------------------------------------------------------------------------------ */

/* The sum of squares is split into fixed chunks, each summed in 8 double lanes, and the
 * chunk sums are added in chunk order: the same bits for any thread count. */
#define NORM_CHUNK 65536
double gpt_clip_grad_norm(gpt_model *m, double max_norm) {
    const float *g = m->grads_memory;
    size_t n = m->num_params, nchunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double *partial = lmd_calloc(nchunks, sizeof(double));
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i = c * NORM_CHUNK, end = i + NORM_CHUNK < n ? i + NORM_CHUNK : n;
        double acc[8] = {0};
        for (; i + 8 <= end; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += (double)g[i + l] * g[i + l];
        for (int l = 0; i < end; i++, l++) acc[l] += (double)g[i] * g[i];
        partial[c] =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
    double s = 0.0;
    for (size_t c = 0; c < nchunks; c++) s += partial[c];
    free(partial);
    double norm = sqrt(s);
    if (max_norm > 0.0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float fc = (float)coef;
            float *gm = m->grads_memory;
#pragma omp parallel for simd schedule(static) if (n >= 32768)
            for (size_t i = 0; i < n; i++) gm[i] *= fc;
        }
    }
    return norm;
}

gpt_adamw gpt_adamw_default(void) {
    gpt_adamw o = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
    return o;
}

void gpt_adamw_update(gpt_model *m, const gpt_adamw *o, double lr) {
    gpt_alloc_moments(m);
    m->adam_t++;
    double bc1 = 1.0 - pow(o->beta1, (double)m->adam_t);
    double bc2 = 1.0 - pow(o->beta2, (double)m->adam_t);
    float b1 = (float)o->beta1, b2 = (float)o->beta2;
    float step_size = (float)(lr / bc1), sqrt_bc2 = (float)sqrt(bc2), eps = (float)o->eps;
    /* one parallel region; each tensor's elements are split over the threads without a
     * barrier between tensors (elements are independent) */
#pragma omp parallel if (m->num_params >= 32768)
    {
        size_t off = 0;
        for (int k = 0; k < GPT_NUM_TENSORS; k++) {
            gpt_tensor_info info;
            gpt_tensor_describe(&m->cfg, k, &info);
            size_t n = gpt_tensor_numel(&m->cfg, k);
            float decay = info.decay ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
            float *p = m->params_memory + off, *g = m->grads_memory + off;
            float *mm = m->m_memory + off, *vv = m->v_memory + off;
#pragma omp for schedule(static) nowait
            for (size_t i = 0; i < n; i++) {
                /* torch.optim.AdamW: decoupled decay first, then the Adam update */
                p[i] *= decay;
                mm[i] = b1 * mm[i] + (1.0f - b1) * g[i];
                vv[i] = b2 * vv[i] + (1.0f - b2) * g[i] * g[i];
                float denom = sqrtf(vv[i]) / sqrt_bc2 + eps;
                p[i] -= step_size * (mm[i] / denom);
            }
            off += n;
        }
    }
}

double gpt_lr_at(int64_t step, int64_t total, double max_lr, double warmup_ratio,
                 double min_lr_ratio) {
    int64_t W = (int64_t)floor(warmup_ratio * (double)total);
    if (step < W) return max_lr * (double)step / (double)W;
    int64_t span = total - W > 1 ? total - W : 1;
    double progress = (double)(step - W) / (double)span;
    if (progress > 1.0) progress = 1.0;
    double cosine = 0.5 * (1.0 + cos(M_PI * progress));
    return max_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine);
}

double gpt_flops_per_step(const gpt_config *c, int B, int T) {
    double C = c->n_embd, M = c->mlp_dim, V = c->vocab_size, L = c->n_layer;
    /* per token forward: 2 * (weights touched by matmuls) + attention scores and mixing */
    double per_layer = 2.0 * (3 * C * C + C * C + 2 * C * M) + 2.0 * 2.0 * T * C;
    double fwd = (L * per_layer + 2.0 * C * V) * (double)B * T;
    return 3.0 * fwd;
}

void gpt_set_threads(int n) {
    if (n < 1) n = 1;
    openblas_set_num_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}
