/* gpt.h — the GPT-2-like transformer of DESIGN.md section 2: config, parameter layout,
 * forward (keeping the n_layer+1 hidden states), backward, AdamW, clipping, LR schedule. */
#ifndef LMDISP_GPT_H
#define LMDISP_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct {
    int vocab_size;
    int n_ctx;
    int n_layer;
    int n_embd;
    int n_head;
    int mlp_dim;
} gpt_config;

/* Parameter tensors in storage order. Per-layer tensors are stored for all layers
 * contiguously: e.g. qkvw is (L, 3C, C); layer i is qkvw + i * 3C*C.
 * Linear weights are (out_features, in_features) like torch.nn.Linear: y = x W^T + b. */
enum {
    GPT_WTE,      /* (V, C) */
    GPT_WPE,      /* (n_ctx, C) */
    GPT_LN1W,     /* (L, C) */
    GPT_LN1B,     /* (L, C) */
    GPT_QKVW,     /* (L, 3C, C): rows all q, then all k, then all v */
    GPT_QKVB,     /* (L, 3C) */
    GPT_ATTPROJW, /* (L, C, C) */
    GPT_ATTPROJB, /* (L, C) */
    GPT_LN2W,     /* (L, C) */
    GPT_LN2B,     /* (L, C) */
    GPT_FCW,      /* (L, M, C) */
    GPT_FCB,      /* (L, M) */
    GPT_FCPROJW,  /* (L, C, M) */
    GPT_FCPROJB,  /* (L, C) */
    GPT_LNFW,     /* (C) */
    GPT_LNFB,     /* (C) */
    GPT_NUM_TENSORS
};

/* Pointers into one allocation, by name or by index. */
typedef union {
    struct {
        float *wte, *wpe, *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw,
            *fcb, *fcprojw, *fcprojb, *lnfw, *lnfb;
    };
    float *t[GPT_NUM_TENSORS];
} gpt_tensors;

/* Describes tensor k: its checkpoint name pattern (with %d for the layer when layered),
 * whether it is per layer, and the shape of one layer's slice (ndim 1 or 2). */
typedef struct {
    const char *name; /* e.g. "h.%d.attn.qkv.weight" or "wte" */
    int layered;      /* 1 if the tensor has one slice per layer */
    int ndim;         /* 1 or 2 */
    size_t shape[2];  /* slice shape */
    int decay;        /* 1 if AdamW weight decay applies (2-D weights) */
} gpt_tensor_info;

void gpt_tensor_describe(const gpt_config *cfg, int k, gpt_tensor_info *info);
/* Number of floats of tensor k (all layers). */
size_t gpt_tensor_numel(const gpt_config *cfg, int k);
/* Total number of parameters. */
size_t gpt_num_params(const gpt_config *cfg);
/* Largest vocabulary: token ids are int32 in memory and uint16 or uint32 on disk (DESIGN 4.2);
 * Llama-3's 128,256 and Qwen2's 151,936 fit with room. */
#define GPT_MAX_VOCAB (1 << 24)
/* Validates a config (positive sizes, n_embd % n_head == 0, 2 <= vocab <= GPT_MAX_VOCAB).
 * Returns 0 or -1 with a message. */
int gpt_config_validate(const gpt_config *cfg, lmd_err *err);
/* The shape trained when none is given (`lmdisp train`, and the spec's model.* defaults);
 * vocab_size 0 = the data's. */
gpt_config gpt_config_default(void);

/* Activations, laid out for the (B, T) they were allocated for; forward may run with any
 * B*T <= capacity and T <= T capacity, indexing with the B, T of the call. */
typedef struct {
    float *encoded;   /* (B,T,C) hidden state 0 */
    float *ln1;       /* (L,B,T,C) */
    float *ln1_mean;  /* (L,B,T) */
    float *ln1_rstd;  /* (L,B,T) */
    float *qkv;       /* (L,B,T,3C) */
    float *atty;      /* (L,B,T,C) attention output before the projection */
    float *att;       /* (L,B,NH,T,T) softmax probabilities (upper triangle 0) */
    float *residual2; /* (L,B,T,C) residual after attention */
    float *ln2;       /* (L,B,T,C) */
    float *ln2_mean;  /* (L,B,T) */
    float *ln2_rstd;  /* (L,B,T) */
    float *fch;       /* (L,B,T,M) pre-GELU */
    float *fch_gelu;  /* (L,B,T,M) */
    float *residual3; /* (L,B,T,C) block outputs: hidden states 1..L */
    float *lnf;       /* (B,T,C) hidden state L */
    float *lnf_mean;  /* (B,T) */
    float *lnf_rstd;  /* (B,T) */
    float *logits;    /* (B,T,V) */
    float *losses;    /* (B,T) per-position cross-entropy */
} gpt_acts;

/* Scratch gradients of activations, reused across layers in backward. */
typedef struct {
    float *dresidual; /* (B,T,C) running gradient of the residual stream */
    float *dln;       /* (B,T,C) */
    float *dqkv;      /* (B,T,3C) */
    float *datty;     /* (B,T,C) */
    float *datt;      /* (B,NH,T,T) */
    float *dfch;      /* (B,T,M) */
    float *dlogits;   /* (B,T,V) */
} gpt_grad_acts;

typedef struct {
    gpt_config cfg;
    size_t num_params;
    float *params_memory; /* one allocation of num_params floats */
    gpt_tensors params;
    float *grads_memory; /* same layout as params, allocated on first backward */
    gpt_tensors grads;
    float *m_memory; /* AdamW first moments, allocated on first update */
    float *v_memory; /* AdamW second moments */
    int64_t adam_t;  /* number of AdamW updates taken */

    int B_cap, T_cap; /* activation capacity */
    size_t num_acts;
    float *acts_memory;
    gpt_acts acts;
    size_t num_grad_acts;
    float *grad_acts_memory;
    gpt_grad_acts grad_acts;

    int B, T;           /* shape of the last forward */
    int has_targets;    /* last forward had targets */
    float mean_loss;    /* mean cross-entropy of the last forward with targets */
    const int *inputs;  /* (B,T) of the last forward (not owned) */
    const int *targets; /* (B,T) of the last forward (not owned) */
} gpt_model;

/* Allocates parameters for cfg (zeroed). Returns 0 or -1 with a message. */
int gpt_create(gpt_model *m, const gpt_config *cfg, lmd_err *err);
void gpt_free(gpt_model *m);
/* DESIGN.md init: N(0, 0.02) weights, residual projections N(0, 0.02/sqrt(2L)), biases 0,
 * LayerNorm weight 1 bias 0. Deterministic in seed. */
void gpt_init(gpt_model *m, uint64_t seed);
/* Ensures activation buffers for (B, T). */
void gpt_alloc_acts(gpt_model *m, int B, int T);
/* Ensures gradient and AdamW moment buffers exist (zeroed on creation). */
void gpt_alloc_grads(gpt_model *m);
void gpt_alloc_moments(gpt_model *m);

/* Forward. inputs (B,T) token ids < vocab; targets (B,T) or NULL. With targets, fills
 * acts.losses and m->mean_loss (mean cross-entropy over B*T). Requires T <= n_ctx. */
void gpt_forward(gpt_model *m, const int *inputs, const int *targets, int B, int T);

/* Hidden state l in 0..n_layer of the last forward: (B,T,C), Hugging Face convention. */
float *gpt_hidden_state(const gpt_model *m, int l);

/* Sets all parameter gradients to zero. */
void gpt_zero_grad(gpt_model *m);

/* Backward of loss_scale * mean cross-entropy, plus extra gradients with respect to the
 * hidden states: dhidden is (n_layer+1, B, T, C) or NULL (e.g. from the dispersion loss).
 * Accumulates into m->grads (call gpt_zero_grad first). Requires a forward with targets. */
void gpt_backward(gpt_model *m, const float *dhidden);
/* As gpt_backward, but the gradient of the loss with respect to the logits of the last
 * forward is already in m->grad_acts.dlogits (B*T*V floats), e.g. a distillation loss. */
void gpt_backward_dlogits(gpt_model *m, const float *dhidden);

/* Global L2 norm of all gradients (computed in double). If max_norm > 0 and the norm
 * exceeds it, scales gradients by max_norm / (norm + 1e-6) as torch does. Returns the norm
 * before clipping. */
double gpt_clip_grad_norm(gpt_model *m, double max_norm);

/* AdamW hyperparameters; the learning rate is the schedule's, passed to each update. */
typedef struct {
    double beta1, beta2, eps, weight_decay;
} gpt_adamw;

/* Default AdamW hyperparameters of DESIGN.md section 2. */
gpt_adamw gpt_adamw_default(void);
/* One AdamW step (torch.optim.AdamW semantics, decoupled decay on 2-D weights only). */
void gpt_adamw_update(gpt_model *m, const gpt_adamw *opt, double lr);

/* Learning rate at step (0-based, the step about to be taken) of total: linear warmup over
 * floor(warmup_ratio * total) steps from 0, then cosine decay to min_lr_ratio * max_lr
 * (Hugging Face get_cosine_schedule_with_warmup when min_lr_ratio = 0). */
double gpt_lr_at(int64_t step, int64_t total, double max_lr, double warmup_ratio,
                 double min_lr_ratio);

/* Model FLOPs of one training step (forward + backward = 3x forward matmul FLOPs). */
double gpt_flops_per_step(const gpt_config *cfg, int B, int T);

/* Sets the thread count of BLAS and of lmdisp's own loops for this process. */
void gpt_set_threads(int n);

#endif
