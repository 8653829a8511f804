/* hfarch_internal.h — shared by the parts of the pretrained forward passes (hfweights.c: the
 * tensors of one block per architecture and the reusable buffers; hfarch.c: the forward pass).
 * Not for use outside model/: hfarch.h is the API. */
#ifndef LMDISP_HFARCH_INTERNAL_H
#define LMDISP_HFARCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hfarch.h"

static inline int is_llama_family(const hf_arch_config *c) { return c->arch != HF_GPT2; }
static inline int is_olmo(const hf_arch_config *c) {
    return c->arch == HF_OLMO2 || c->arch == HF_OLMO3;
}

/* the tensors of one block, in the order they sit in the block buffer */
enum {
    W_LN1W,
    W_LN1B, /* gpt2 ln_1; llama/qwen input_layernorm */
    W_QKV,
    W_QKVB, /* gpt2 c_attn (Conv1D [d,3d]) */
    W_Q,
    W_QB,
    W_K,
    W_KB,
    W_V,
    W_VB,
    W_QN,
    W_KN, /* qwen3 per head [hd]; olmo whole projection [H*hd], [KV*hd] */
    W_O,
    W_OB,
    W_LN2W,
    W_LN2B, /* gpt2 ln_2; llama post_attention_layernorm (pre-MLP); olmo post-attn */
    W_PFN,  /* olmo post_feedforward_layernorm */
    W_GATE,
    W_GATEB,
    W_UP,
    W_UPB,
    W_DOWN,
    W_DOWNB, /* gpt2: UP = c_fc, DOWN = mlp.c_proj */
    W_NUM
};

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[2];
} wdesc;

typedef struct {
    wdesc d[W_NUM];
    int present[W_NUM];
    size_t numel[W_NUM];
    size_t total;
} block_layout;

/* 64-byte aligned (2 MB, with transparent huge pages, from 2 MB up) and NOT zeroed; aborts when
 * the system refuses. */
float *hf_weights_alloc(size_t n);
/* A kept buffer of at least n floats (not zeroed), else a new one; hf_pool_free gives it back
 * (n: the size it was asked with); hf_forward_release frees the kept ones. */
float *hf_pool_alloc(size_t n);
void hf_pool_free(float *p, size_t n);
/* gpt2 tensor-name prefix: "transformer." (saved from GPT2LMHeadModel) or "" */
const char *hf_gpt2_prefix(const hf_tensor_source *src);
/* Names, shapes and sizes of the tensors of block `layer`. */
void hf_block_describe(const hf_arch_config *c, const char *gprefix, int layer, block_layout *b);
/* Fills the block buffer: every tensor of layer `layer` converted to float32. */
int hf_load_block(const hf_arch_config *c, const hf_tensor_source *src, const char *gprefix,
                  int layer, float *buf, float *w[W_NUM], lmd_err *err);
/* A whole tensor of shape (r, cols) (ndim 1: (r)) as float32. */
int hf_load_tensor(const hf_tensor_source *src, const char *name, int ndim, int64_t r, int64_t cols,
                   float *dst, lmd_err *err);
/* rows [row0, row0 + nrows) of the (r, cols) tensor `name` (src->get_rows_f32 non-NULL) */
int hf_load_rows(const hf_tensor_source *src, const char *name, int64_t r, int64_t cols,
                 int64_t row0, int64_t nrows, float *dst, lmd_err *err);

#endif
