/* hfarch.h — forward passes of the pretrained Hugging Face architectures (DESIGN 4.6, HF.md):
 * gpt2, llama, qwen2, qwen3, olmo2, olmo3, float32 compute, streamed one block at a time.
 * Pure model code: it knows nothing of files, JSON or safetensors. Its weights come through a
 * tensor source (hub/ implements one over memory-mapped safetensors; a test may implement one
 * over arrays), and its configuration is the plain struct below, filled by hub/hfconfig.c.
 *
 * Streaming: hf_forward pushes ALL n_seq sequences through block 0, then block 1, ...; only
 * one block's float32 weights are resident at a time, and the activations of all sequences
 * (n_seq x T x d); with a source that reads rows (get_rows_f32) the embedding table and
 * lm_head are never converted whole (rows of the tokens; vocabulary chunks for the logits).
 * So peak memory does not grow with depth. */
#ifndef LMDISP_HFARCH_H
#define LMDISP_HFARCH_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef enum { HF_GPT2, HF_LLAMA, HF_QWEN2, HF_QWEN3, HF_OLMO2, HF_OLMO3 } hf_arch;

typedef enum { HF_ROPE_DEFAULT = 0, HF_ROPE_YARN = 1 } hf_rope_type;

/* Everything the forward pass needs from config.json, with HF's per-class defaults already
 * applied (HF.md "config.json fields that matter"). Settings lmdisp does not implement are
 * refused by the parser, so every value here is meant exactly. */
typedef struct {
    hf_arch arch;
    char model_type[32]; /* as written in config.json */
    int vocab_size;
    int hidden_size; /* d */
    int n_layer;
    int n_head;              /* H */
    int n_kv_head;           /* KV (= H when absent/null); H % KV == 0 */
    int head_dim;            /* hd: config.head_dim, else d / H */
    int intermediate_size;   /* I (gpt2: n_inner, null -> 4d) */
    int max_position;        /* n_positions / max_position_embeddings */
    double norm_eps;         /* rms_norm_eps or layer_norm_epsilon */
    int attention_bias;      /* llama: q,k,v and o biases; qwen2: forced q,k,v only (below) */
    int qkv_bias;            /* q/k/v projections carry biases (qwen2, llama attention_bias) */
    int o_bias;              /* o_proj bias (llama attention_bias) */
    int mlp_bias;            /* llama mlp_bias: gate, up, down biases */
    int tie_word_embeddings; /* lm_head = embed_tokens */
    /* gpt2 only */
    int scale_attn_weights;              /* default 1 */
    int scale_attn_by_inverse_layer_idx; /* default 0 */
    /* RoPE (llama family) */
    double rope_theta;      /* default 10000 */
    hf_rope_type rope_type; /* applies to full-attention layers only (olmo3) */
    struct {                /* HF modeling_rope_utils _compute_yarn_parameters */
        double factor;
        double original_max_position;  /* original_max_position_embeddings */
        double beta_fast, beta_slow;   /* defaults 32, 1 */
        double attention_factor;       /* <= 0: HF's default from factor (and mscale*) */
        double mscale, mscale_all_dim; /* 0 when absent */
        int truncate;                  /* default 1 */
    } yarn;
    /* Sliding-window attention (olmo3 layer_types): layer_sliding[i] != 0 means layer i sees
     * keys j with i - W < j <= i, W = sliding_window. NULL = no sliding layer. Owned. */
    int sliding_window;
    unsigned char *layer_sliding; /* (n_layer) */
} hf_arch_config;

void hf_arch_config_free(hf_arch_config *c);

/* Where weights come from. get_f32 copies tensor `name` converted to float32 into dst, which
 * holds exactly n floats (n = product of the shape the caller expects; a source whose tensor
 * has another shape or is missing returns -1 with a message naming the file and tensor).
 * shape: the expected shape (ndim entries), for the message and the check. */
typedef struct {
    void *ctx;
    int (*get_f32)(void *ctx, const char *name, int ndim, const int64_t *shape, float *dst,
                   lmd_err *err);
    /* 1 if a tensor of this name exists (used for optional tensors: e.g. gpt2's prefix). */
    int (*has)(void *ctx, const char *name);
    /* Optional (NULL = absent; a source initialised as {ctx, get_f32, has} has none): rows
     * [row0, row0 + nrows) of the 2-D tensor `name` whose full expected shape is shape[0] x
     * shape[1], converted to float32 into dst (nrows x shape[1] floats), with get_f32's
     * checks and messages (and row0 + nrows <= shape[0]). With it hf_forward gathers only the
     * embedding rows of its tokens and streams lm_head (or the tied embedding) through the
     * logits in vocabulary chunks, never converting a whole (vocab x hidden) table; without
     * it those tensors are read whole, as before. */
    int (*get_rows_f32)(void *ctx, const char *name, const int64_t *shape, int64_t row0,
                        int64_t nrows, float *dst, lmd_err *err);
} hf_tensor_source;

/* Called once per hidden state l = 0..n_layer with the states of all sequences, (n_seq, T, d)
 * row-major, valid only during the call. Hidden states follow HF's output_hidden_states:
 * 0 = embedding output, i = output of block i (1-based), n_layer = final norm applied.
 * Return 0 to continue, -1 (with err set) to stop. */
typedef int (*hf_hidden_fn)(void *ctx, int layer, const float *h, int n_seq, int T, int d,
                            lmd_err *err);

/* Runs the forward pass of all n_seq sequences of T tokens (tokens: (n_seq, T), positions
 * 0..T-1 per sequence, no padding) block by block. Calls on_hidden (may be NULL) for every
 * hidden state; when logits is non-NULL writes (n_seq, T, vocab_size) float32 logits.
 * Returns 0, or -1 with a message (bad token id, T > max_position for gpt2, a weight the
 * source cannot give). */
int hf_forward(const hf_arch_config *cfg, const hf_tensor_source *src, const int32_t *tokens,
               int n_seq, int T, hf_hidden_fn on_hidden, void *ctx, float *logits, lmd_err *err);

/* hf_forward keeps its block weight buffer and activation buffers for the next call (a pass
 * over the same model then touches no fresh pages); this frees them. Called by
 * lmd_anymodel_close; harmless at any time when no hf_forward runs. */
void hf_forward_release(void);

/* Parameter count as HF counts it (model.num_parameters()): every weight tensor once, a tied
 * lm_head not counted twice, gpt2's legacy mask buffers not counted. */
int64_t hf_num_params(const hf_arch_config *cfg);

#endif
