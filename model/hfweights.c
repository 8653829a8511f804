/* hfweights.c — the weights side of the pretrained forward passes (hfarch_internal.h): the
 * tensors of one block of each architecture (names, shapes; HF num_parameters), loading them
 * as float32, and the weight and activation buffers kept from one forward for the next. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "hfarch_internal.h"

/* 64-byte aligned and NOT zeroed (lmd_aligned_alloc zeroes): for weight buffers the source
 * overwrites whole, where zeroing first would touch a block's or a vocabulary's worth of memory
 * for nothing. Aborts like lmd_aligned_alloc when the system refuses. */
#define HUGE_BYTES ((size_t)2 << 20) /* buffers of >= 2 MB ask for transparent huge pages */

float *hf_weights_alloc(size_t n) {
    void *p = NULL;
    size_t bytes = (n ? n : 1) * sizeof(float);
    size_t align = bytes >= HUGE_BYTES ? HUGE_BYTES : 64;
    bytes = (bytes + align - 1) / align * align;
    if (posix_memalign(&p, align, bytes) != 0)
        lmd_die("out of memory allocating %zu bytes of weights", bytes);
#ifdef MADV_HUGEPAGE
    /* a fresh block buffer per forward would otherwise take one page fault per 4 kB (65k for
     * a 1B-class block, ~6 % of a forward in perf); with THP in "madvise" mode 2 MB pages */
    if (align == HUGE_BYTES) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

/* Buffers kept from one hf_forward call for the next (hf_forward_release frees them): a
 * fresh 268 MB block buffer plus ~60 MB of activations per call is ~0.2 s of the kernel
 * zeroing new pages per pass on the 1B shape (perf: clear_page 11 % of a 2-layer
 * bench_hf_forward run), paid again by every pass over the same model. A buffer is taken
 * back by a request of at most its size (the smallest that fits) and is not zeroed: every
 * buffer of hf_forward is written whole (embedding lookup, norms, sgemm with beta 0 or onto
 * a bias fill, attention's per-head products) before it is read, so zeroing would be a
 * wasted pass. */
#define POOL_SLOTS 10
static struct {
    float *p;
    size_t n;
} pool[POOL_SLOTS];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;

float *hf_pool_alloc(size_t n) {
    pthread_mutex_lock(&pool_mu);
    int best = -1;
    for (int i = 0; i < POOL_SLOTS; i++)
        if (pool[i].p && pool[i].n >= n && (best < 0 || pool[i].n < pool[best].n)) best = i;
    float *p = NULL;
    if (best >= 0) {
        p = pool[best].p;
        pool[best].p = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    return p ? p : hf_weights_alloc(n);
}

/* gives p (from hf_pool_alloc(n'), n' <= n the size it was allocated with) back to the pool */
void hf_pool_free(float *p, size_t n) {
    if (!p) return;
    pthread_mutex_lock(&pool_mu);
    int slot = -1;
    for (int i = 0; i < POOL_SLOTS && slot < 0; i++)
        if (!pool[i].p) slot = i;
    if (slot >= 0) pool[slot].p = p, pool[slot].n = n;
    pthread_mutex_unlock(&pool_mu);
    if (slot < 0) free(p);
}

void hf_forward_release(void) {
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; i < POOL_SLOTS; i++) {
        free(pool[i].p);
        pool[i].p = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
}

void hf_arch_config_free(hf_arch_config *c) {
    if (!c) return;
    free(c->layer_sliding);
    c->layer_sliding = NULL;
}

static void add_w(block_layout *b, int slot, const char *prefix, const char *suffix, int ndim,
                  int64_t r, int64_t c) {
    wdesc *w = &b->d[slot];
    snprintf(w->name, sizeof w->name, "%s%s", prefix, suffix);
    w->ndim = ndim;
    w->shape[0] = r;
    w->shape[1] = ndim == 2 ? c : 1;
    b->present[slot] = 1;
    b->numel[slot] = (size_t)r * (size_t)(ndim == 2 ? c : 1);
    b->total += b->numel[slot];
}

/* gpt2 tensor-name prefix: "transformer." (saved from GPT2LMHeadModel) or "" */
const char *hf_gpt2_prefix(const hf_tensor_source *src) {
    if (src && src->has && src->has(src->ctx, "transformer.wte.weight")) return "transformer.";
    return "";
}

void hf_block_describe(const hf_arch_config *c, const char *gprefix, int layer, block_layout *b) {
    memset(b, 0, sizeof *b);
    int64_t d = c->hidden_size, IM = c->intermediate_size, hd = c->head_dim;
    int64_t qd = (int64_t)c->n_head * hd, kd = (int64_t)c->n_kv_head * hd;
    char p[96];
    if (c->arch == HF_GPT2) {
        snprintf(p, sizeof p, "%sh.%d.", gprefix ? gprefix : "", layer);
        add_w(b, W_LN1W, p, "ln_1.weight", 1, d, 0);
        add_w(b, W_LN1B, p, "ln_1.bias", 1, d, 0);
        add_w(b, W_QKV, p, "attn.c_attn.weight", 2, d, 3 * d);
        add_w(b, W_QKVB, p, "attn.c_attn.bias", 1, 3 * d, 0);
        add_w(b, W_O, p, "attn.c_proj.weight", 2, d, d);
        add_w(b, W_OB, p, "attn.c_proj.bias", 1, d, 0);
        add_w(b, W_LN2W, p, "ln_2.weight", 1, d, 0);
        add_w(b, W_LN2B, p, "ln_2.bias", 1, d, 0);
        add_w(b, W_UP, p, "mlp.c_fc.weight", 2, d, IM);
        add_w(b, W_UPB, p, "mlp.c_fc.bias", 1, IM, 0);
        add_w(b, W_DOWN, p, "mlp.c_proj.weight", 2, IM, d);
        add_w(b, W_DOWNB, p, "mlp.c_proj.bias", 1, d, 0);
        return;
    }
    snprintf(p, sizeof p, "model.layers.%d.", layer);
    if (!is_olmo(c)) add_w(b, W_LN1W, p, "input_layernorm.weight", 1, d, 0);
    add_w(b, W_Q, p, "self_attn.q_proj.weight", 2, qd, d);
    add_w(b, W_K, p, "self_attn.k_proj.weight", 2, kd, d);
    add_w(b, W_V, p, "self_attn.v_proj.weight", 2, kd, d);
    if (c->qkv_bias) {
        add_w(b, W_QB, p, "self_attn.q_proj.bias", 1, qd, 0);
        add_w(b, W_KB, p, "self_attn.k_proj.bias", 1, kd, 0);
        add_w(b, W_VB, p, "self_attn.v_proj.bias", 1, kd, 0);
    }
    if (c->arch == HF_QWEN3) {
        add_w(b, W_QN, p, "self_attn.q_norm.weight", 1, hd, 0);
        add_w(b, W_KN, p, "self_attn.k_norm.weight", 1, hd, 0);
    } else if (is_olmo(c)) {
        add_w(b, W_QN, p, "self_attn.q_norm.weight", 1, qd, 0);
        add_w(b, W_KN, p, "self_attn.k_norm.weight", 1, kd, 0);
    }
    add_w(b, W_O, p, "self_attn.o_proj.weight", 2, d, qd);
    if (c->o_bias) add_w(b, W_OB, p, "self_attn.o_proj.bias", 1, d, 0);
    add_w(b, W_LN2W, p, "post_attention_layernorm.weight", 1, d, 0);
    if (is_olmo(c)) add_w(b, W_PFN, p, "post_feedforward_layernorm.weight", 1, d, 0);
    add_w(b, W_GATE, p, "mlp.gate_proj.weight", 2, IM, d);
    add_w(b, W_UP, p, "mlp.up_proj.weight", 2, IM, d);
    add_w(b, W_DOWN, p, "mlp.down_proj.weight", 2, d, IM);
    if (c->mlp_bias) {
        add_w(b, W_GATEB, p, "mlp.gate_proj.bias", 1, IM, 0);
        add_w(b, W_UPB, p, "mlp.up_proj.bias", 1, IM, 0);
        add_w(b, W_DOWNB, p, "mlp.down_proj.bias", 1, d, 0);
    }
}

int64_t hf_num_params(const hf_arch_config *c) {
    block_layout b;
    hf_block_describe(c, "", 0, &b);
    int64_t V = c->vocab_size, d = c->hidden_size;
    int64_t n = V * d + (int64_t)b.total * c->n_layer;
    if (c->arch == HF_GPT2)
        n += (int64_t)c->max_position * d + 2 * d; /* wpe, ln_f */
    else
        n += d; /* model.norm */
    if (!c->tie_word_embeddings) n += V * d;
    return n;
}

/* Fills the block buffer: every tensor of layer `layer` converted to float32. */
int hf_load_block(const hf_arch_config *c, const hf_tensor_source *src, const char *gprefix,
                  int layer, float *buf, float *w[W_NUM], lmd_err *err) {
    block_layout b;
    hf_block_describe(c, gprefix, layer, &b);
    float *p = buf;
    for (int k = 0; k < W_NUM; k++) {
        w[k] = NULL;
        if (!b.present[k]) continue;
        w[k] = p;
        if (src->get_f32(src->ctx, b.d[k].name, b.d[k].ndim, b.d[k].shape, p, err))
            return lmd_err_prefix(err, "layer %d", layer);
        p += b.numel[k];
    }
    return 0;
}

int hf_load_tensor(const hf_tensor_source *src, const char *name, int ndim, int64_t r, int64_t cols,
                   float *dst, lmd_err *err) {
    int64_t shape[2] = {r, cols};
    return src->get_f32(src->ctx, name, ndim, shape, dst, err);
}

/* rows [row0, row0 + nrows) of the (r, cols) tensor `name` (src->get_rows_f32 non-NULL) */
int hf_load_rows(const hf_tensor_source *src, const char *name, int64_t r, int64_t cols,
                 int64_t row0, int64_t nrows, float *dst, lmd_err *err) {
    int64_t shape[2] = {r, cols};
    return src->get_rows_f32(src->ctx, name, shape, row0, nrows, dst, err);
}
