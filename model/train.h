/* train.h — one training step of one model: forward, dispersion, backward, clipping, AdamW
 * with the cosine schedule; validation loss. Knows nothing of MPI: data-parallel callers
 * all-reduce gradients between lmd_trainer_grads and lmd_trainer_apply. */
#ifndef LMDISP_TRAIN_H
#define LMDISP_TRAIN_H

#include <stdint.h>

#include "checkpoint.h"
#include "data.h"
#include "dispersion.h"
#include "distill.h"
#include "gpt.h"

/* Knowledge distillation (docs/DISTILL.md). The teacher is only run forward: it has no
 * parameter gradients or moments. Not owned by the options. */
typedef struct {
    gpt_model *teacher; /* NULL: no distillation */
    double alpha;       /* weight of the KL term, in (0, 1] */
    double temperature; /* T > 0 */
} lmd_kd_opts;

typedef struct {
    int B, T;            /* batch size (of one micro-batch) and sequence length */
    int64_t steps;       /* total optimizer steps (defines the LR schedule) */
    double lr;           /* peak learning rate */
    double warmup_ratio; /* default 0.2 */
    double min_lr_ratio; /* cosine floor as a fraction of lr, default 0 */
    double clip;         /* global grad-norm clip, default 1.0; <= 0 disables */
    gpt_adamw adamw;     /* betas, eps, weight decay */
    lmd_disp_opts disp;  /* dispersion regularizer (variant DISP_OFF = none) */
    uint64_t seed;       /* init, data and dispersion streams */
    int shards;          /* 1, or S > 1 (a power of 2 dividing B): the batch gradient is the
                            * mean of S shard gradients (B/S sequences each) added in a fixed
                            * binary tree, so any data-parallel group of g ranks, g dividing S,
                            * gives the same bits (lmd_trainer_grads, lmd_tree_allreduce) */
    int accumulate;      /* N >= 1 micro-batches of B sequences per optimizer step (batch B x N):
                            * their gradients are added in micro-batch order, then divided by N */
    lmd_kd_opts kd;      /* distillation (teacher NULL = none) */
} lmd_train_opts;

/* The defaults of a training run: the one source of the spec's train.*, dispersion.* and
 * distill.* defaults (runner/specsettings.c) and of `lmdisp train`'s flags and help; AdamW's
 * from gpt_adamw_default, the dispersion's from lmd_disp_default. (A spec has no default for
 * steps: train.steps or train.tokens is required.) */
lmd_train_opts lmd_train_default(void);
int lmd_train_validate(const lmd_train_opts *o, const gpt_config *cfg, lmd_err *err);

/* Losses of one forward (and optional backward). */
typedef struct {
    double loss; /* ce + coeff * dispersion; with distillation
                  * (1 - alpha) ce + alpha T^2 kl + coeff * dispersion */
    double ce;
    double disp; /* dispersion value (0 when off) */
    double kl;   /* distillation KL(teacher/T || student/T) per token (0 when off) */
} lmd_losses;

/* Forward on (inputs, targets) and, if backward, zero grads then backward of the total loss.
 * dhidden: scratch of (n_layer+1)*B*T*C floats, needed when the dispersion is on. */
lmd_losses lmd_forward_backward(gpt_model *m, const int *inputs, const int *targets, int B, int T,
                                const lmd_disp_opts *disp, lmd_rng *rng, float *dhidden,
                                int backward);
/* The same with distillation (kd NULL or kd->teacher NULL: none): the teacher runs forward on
 * the same inputs, and the student's logit gradient is that of lmd_distill_forward_backward. */
lmd_losses lmd_forward_backward_kd(gpt_model *m, const int *inputs, const int *targets, int B,
                                   int T, const lmd_disp_opts *disp, const lmd_kd_opts *kd,
                                   lmd_rng *rng, float *dhidden, int backward);

typedef struct lmd_trainer_s {
    gpt_model model;
    lmd_train_opts opts;
    lmd_train_state state;
    lmd_loader loader;
    int *inputs, *targets; /* B*T each */
    float *dhidden;        /* (n_layer+1)*B*T*C when dispersion is on */
    int shard, nshards; /* data parallel: this process computes rows [shard*B/n, (shard+1)*B/n) */
    float **tree;       /* shards > 1: partial sums of the gradient tree, one per level */
    int tree_levels;
    float *acc; /* accumulate > 1: sum of the micro-batch gradients */
    /* Called after each micro-batch's gradient (data parallel: combine the group's ranks so
     * that tr->model.grads holds the micro-batch gradient). Returns 0 or -1 (tr->failed). */
    int (*reduce)(struct lmd_trainer_s *tr, void *ctx);
    void *reduce_ctx;
    int failed; /* reduce failed during the last lmd_trainer_grads */
    /* statistics of the last step */
    lmd_losses last;
    double grad_norm;
    double lr;
} lmd_trainer;

/* Sets up training on `train`. The model is taken over from *model (moved: the caller must not
 * free it). If st is NULL a fresh run starts at step 0 (moments zero, loader at 0); otherwise
 * training continues from st (a resumed checkpoint). */
int lmd_trainer_init(lmd_trainer *tr, const lmd_train_opts *o, gpt_model *model, lmd_span train,
                     const lmd_train_state *st, lmd_err *err);
void lmd_trainer_free(lmd_trainer *tr);
/* One optimizer step's gradient: for each of opts.accumulate micro-batches (in order) the
 * micro-batch gradient below, then tr->reduce when set; with accumulate N > 1 the N results
 * are summed in micro-batch order and divided by N (gradients and losses alike).
 * Per micro-batch: next batch, forward, backward: gradients in tr->model.grads, losses in tr->last.
 * opts.shards == 1: with nshards > 1 only this rank's rows of the batch are used (B must divide
 * evenly); the caller averages gradients and losses over the ranks before lmd_trainer_apply.
 * opts.shards == S > 1: nshards (the group size g) must divide S; this rank computes shards
 * [shard*S/g, (shard+1)*S/g), each a full forward/backward on its B/S sequences, and adds their
 * gradients and losses in a balanced binary tree, unscaled. With g == 1 the result is then
 * scaled by 1/S (exact: S is a power of 2) and ready; with g > 1 the caller combines the ranks
 * with lmd_tree_allreduce-style pairwise exchanges and then calls lmd_trainer_shards_scale.
 * Each shard's dispersion subsets come from its own RNG stream, seeded from one draw of the
 * trainer's stream per step, so they do not depend on g either. */
void lmd_trainer_grads(lmd_trainer *tr);
/* Scales the tree sums of lmd_trainer_grads by 1/shards (shards > 1). */
void lmd_trainer_shards_scale(lmd_trainer *tr);
/* Clip, LR schedule and AdamW; advances step and token counters. */
void lmd_trainer_apply(lmd_trainer *tr);
/* Both; returns 0, or 1 if the loss or gradient norm was not finite (no update applied). */
int lmd_trainer_step(lmd_trainer *tr);

/* Mean cross-entropy over up to max_batches sequential B x T batches of span (all that fit
 * when max_batches <= 0). Uses the model's activation buffers. */
double lmd_eval_loss(gpt_model *m, lmd_span span, int B, int T, int max_batches);

#endif
