/* train.c — the training step shared by `lmdisp train`, `lmdisp step` and the runner. */
#include "train.h"
#include "par.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lmd_train_opts lmd_train_default(void) {
    lmd_train_opts o;
    memset(&o, 0, sizeof o);
    o.B = 8;
    o.T = 64;
    o.steps = 200;
    o.lr = 1e-3;
    o.warmup_ratio = 0.2;
    o.min_lr_ratio = 0.0;
    o.clip = 1.0;
    o.adamw = gpt_adamw_default();
    o.disp = lmd_disp_default();
    o.seed = 0;
    o.shards = 1;
    o.accumulate = 1;
    o.kd.alpha = 0.5;
    o.kd.temperature = 1.0;
    return o;
}

int lmd_train_validate(const lmd_train_opts *o, const gpt_config *cfg, lmd_err *err) {
    if (o->B < 1) return lmd_errf(err, "batch must be >= 1 (got %d)", o->B);
    if (o->T < 1) return lmd_errf(err, "seq must be >= 1 (got %d)", o->T);
    if (cfg && o->T > cfg->n_ctx)
        return lmd_errf(err, "seq (%d) must not exceed the model's n_ctx (%d)", o->T, cfg->n_ctx);
    if (o->steps < 0) return lmd_errf(err, "steps must be >= 0 (got %lld)", (long long)o->steps);
    if (!(o->lr >= 0.0) || !isfinite(o->lr))
        return lmd_errf(err, "lr must be >= 0 (got %g)", o->lr);
    if (!(o->warmup_ratio >= 0.0 && o->warmup_ratio <= 1.0))
        return lmd_errf(err, "warmup_ratio must be in [0, 1] (got %g)", o->warmup_ratio);
    if (!(o->min_lr_ratio >= 0.0 && o->min_lr_ratio <= 1.0))
        return lmd_errf(err, "min_lr_ratio must be in [0, 1] (got %g)", o->min_lr_ratio);
    if (!(o->adamw.beta1 >= 0.0 && o->adamw.beta1 < 1.0))
        return lmd_errf(err, "beta1 must be in [0, 1) (got %g)", o->adamw.beta1);
    if (!(o->adamw.beta2 >= 0.0 && o->adamw.beta2 < 1.0))
        return lmd_errf(err, "beta2 must be in [0, 1) (got %g)", o->adamw.beta2);
    if (!(o->adamw.eps > 0.0)) return lmd_errf(err, "eps must be > 0 (got %g)", o->adamw.eps);
    if (!(o->adamw.weight_decay >= 0.0))
        return lmd_errf(err, "weight_decay must be >= 0 (got %g)", o->adamw.weight_decay);
    if (!(o->clip == o->clip)) return lmd_errf(err, "clip must be a number");
    if (o->shards < 1 || (o->shards & (o->shards - 1)))
        return lmd_errf(err, "shards must be a power of 2 >= 1 (got %d)", o->shards);
    if (o->B % o->shards != 0)
        return lmd_errf(err, "batch (%d) must be divisible by shards (%d)", o->B, o->shards);
    if (o->accumulate < 1) return lmd_errf(err, "accumulate must be >= 1 (got %d)", o->accumulate);
    if (o->kd.teacher) {
        if (!(o->kd.alpha > 0.0 && o->kd.alpha <= 1.0))
            return lmd_errf(err, "distill alpha must be in (0, 1] (got %g)", o->kd.alpha);
        if (!(o->kd.temperature > 0.0) || !isfinite(o->kd.temperature))
            return lmd_errf(err, "distill temperature must be > 0 (got %g)", o->kd.temperature);
        if (cfg && o->kd.teacher->cfg.vocab_size != cfg->vocab_size)
            return lmd_errf(err, "the teacher's vocabulary (%d) differs from the student's (%d)",
                            o->kd.teacher->cfg.vocab_size, cfg->vocab_size);
        if (o->T > o->kd.teacher->cfg.n_ctx)
            return lmd_errf(err, "seq (%d) exceeds the teacher's n_ctx (%d)", o->T,
                            o->kd.teacher->cfg.n_ctx);
    }
    if (o->disp.variant != DISP_OFF && o->T < 2)
        return lmd_errf(err, "the dispersion loss compares tokens, so seq must be >= 2 (got %d)",
                        o->T);
    if (o->disp.variant == DISP_DECORRELATION && cfg && cfg->n_embd < 2)
        return lmd_errf(err, "decorrelation standardizes over features: n_embd must be >= 2");
    return lmd_disp_validate(&o->disp, err);
}

lmd_losses lmd_forward_backward(gpt_model *m, const int *inputs, const int *targets, int B, int T,
                                const lmd_disp_opts *disp, lmd_rng *rng, float *dhidden,
                                int backward) {
    return lmd_forward_backward_kd(m, inputs, targets, B, T, disp, NULL, rng, dhidden, backward);
}

lmd_losses lmd_forward_backward_kd(gpt_model *m, const int *inputs, const int *targets, int B,
                                   int T, const lmd_disp_opts *disp, const lmd_kd_opts *kd,
                                   lmd_rng *rng, float *dhidden, int backward) {
    lmd_losses out = {0.0, 0.0, 0.0, 0.0};
    gpt_forward(m, inputs, targets, B, T);
    out.ce = m->mean_loss;
    double base = out.ce; /* the loss before the dispersion term */
    int distill = kd && kd->teacher;
    if (distill) {
        /* the teacher: forward only, no targets, no parameter gradients */
        gpt_forward(kd->teacher, inputs, NULL, B, T);
        lmd_distill_losses dl = lmd_distill_forward_backward(
            m->acts.logits, kd->teacher->acts.logits, targets, (size_t)B * T, m->cfg.vocab_size,
            kd->alpha, kd->temperature, backward ? m->grad_acts.dlogits : NULL);
        out.ce = dl.ce;
        out.kl = dl.kl;
        base = dl.loss;
    }
    int L = m->cfg.n_layer;
    int on = disp && disp->variant != DISP_OFF;
    if (on) {
        size_t BTC = (size_t)B * T * m->cfg.n_embd;
        float *hidden[L + 1], *dh[L + 1];
        for (int l = 0; l <= L; l++) {
            hidden[l] = gpt_hidden_state(m, l);
            dh[l] = dhidden ? dhidden + (size_t)l * BTC : NULL;
        }
        if (backward) par_zero_floats(dhidden, (size_t)(L + 1) * BTC);
        out.disp = lmd_disp_forward_backward(disp, hidden, L, B, T, m->cfg.n_embd,
                                             backward ? dh : NULL, rng);
        out.loss = base + disp->coeff * out.disp;
    } else {
        out.loss = base;
    }
    if (backward) {
        gpt_zero_grad(m);
        if (distill)
            gpt_backward_dlogits(m, on ? dhidden : NULL);
        else
            gpt_backward(m, on ? dhidden : NULL);
    }
    return out;
}

int lmd_trainer_init(lmd_trainer *tr, const lmd_train_opts *o, gpt_model *model, lmd_span train,
                     const lmd_train_state *st, lmd_err *err) {
    memset(tr, 0, sizeof *tr);
    if (lmd_train_validate(o, &model->cfg, err)) return -1;
    if (train.vocab_size > model->cfg.vocab_size)
        return lmd_errf(err,
                        "the data's vocabulary (%d) is larger than the model's vocab_size (%d)",
                        train.vocab_size, model->cfg.vocab_size);
    tr->opts = *o;
    if (lmd_loader_init(&tr->loader, train, o->B, o->T, err)) return -1;
    if (st && lmd_loader_seek(&tr->loader, st->data_pos, err)) return -1;
    tr->model = *model;
    memset(model, 0, sizeof *model);
    if (st) {
        tr->state = *st;
    } else {
        tr->state.step = 0;
        tr->state.tokens = 0;
        tr->state.seed = (int64_t)o->seed;
        tr->state.data_pos = 0;
        lmd_rng_seed(&tr->state.rng_disp, o->seed, LMD_STREAM_DISPERSION);
    }
    tr->last.loss = tr->last.ce = tr->last.disp = tr->last.kl = NAN; /* no step taken yet */
    size_t BT = (size_t)o->B * o->T;
    tr->inputs = lmd_calloc(BT, sizeof(int));
    tr->targets = lmd_calloc(BT, sizeof(int));
    /* activations for the rows one forward/backward sees: a shard's when sharded */
    int Ba = o->shards > 1 ? o->B / o->shards : o->B;
    size_t BTa = (size_t)Ba * o->T;
    if (o->disp.variant != DISP_OFF)
        tr->dhidden = lmd_calloc((size_t)(tr->model.cfg.n_layer + 1) * BTa * tr->model.cfg.n_embd,
                                 sizeof(float));
    gpt_alloc_acts(&tr->model, Ba, o->T);
    gpt_alloc_grads(&tr->model);
    gpt_alloc_moments(&tr->model);
    if (o->accumulate > 1) tr->acc = lmd_aligned_alloc(tr->model.num_params * sizeof(float));
    return 0;
}

void lmd_trainer_free(lmd_trainer *tr) {
    for (int i = 0; i < tr->tree_levels; i++) free(tr->tree[i]);
    free(tr->tree);
    gpt_free(&tr->model);
    free(tr->inputs);
    free(tr->targets);
    free(tr->dhidden);
    free(tr->acc);
    memset(tr, 0, sizeof *tr);
}

/* dst[i] += src[i] over the threads (elementwise: the same bits for any thread count) */
static void add_floats(float *dst, const float *src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

static void scale_floats(float *x, size_t n, float a) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

/* Stream of shard s's dispersion subsets at one step: distinct from the trainer's own streams */
#define SHARD_STREAM_BASE 0x5348415244000000ull /* "SHARD" */

/* shards > 1: this rank's m = S/g shards, each a forward/backward on B/S sequences, summed as
 * a balanced binary tree: a binary counter over the shards (tree[k] holds the sum of the last
 * complete block of 2^k shards), so shard k joins the partial sums of the blocks it closes. */
static void grads_sharded(lmd_trainer *tr) {
    const lmd_train_opts *o = &tr->opts;
    int S = o->shards, g = tr->nshards > 1 ? tr->nshards : 1;
    if (S % g != 0) lmd_die("shards %d is not divisible by the group size %d", S, g);
    int m = S / g, Bs = o->B / S, first = (g > 1 ? tr->shard : 0) * m;
    size_t n = tr->model.num_params;
    int levels = 0;
    while ((1 << levels) < m) levels++;
    if (tr->tree_levels < levels) {
        tr->tree = realloc(tr->tree, (size_t)levels * sizeof(float *));
        if (!tr->tree) lmd_die("out of memory");
        for (int i = tr->tree_levels; i < levels; i++)
            tr->tree[i] = lmd_aligned_alloc(n * sizeof(float));
        tr->tree_levels = levels;
    }
    /* one draw per step from the trainer's stream, whatever g: every rank advances it alike */
    uint64_t base = lmd_rng_u64(&tr->state.rng_disp);
    double lt[32][4];
    lmd_losses sum = {0, 0, 0, 0};
    for (int k = 0; k < m; k++) {
        int s = first + k;
        lmd_rng rng;
        lmd_rng_seed(&rng, base, SHARD_STREAM_BASE + (uint64_t)s);
        size_t off = (size_t)s * Bs * o->T;
        lmd_losses l = lmd_forward_backward_kd(&tr->model, tr->inputs + off, tr->targets + off, Bs,
                                               o->T, &o->disp, &o->kd, &rng, tr->dhidden, 1);
        /* combine: the new shard is the right operand of every block it completes */
        float *cur = tr->model.grads_memory;
        double c3[4] = {l.loss, l.ce, l.disp, l.kl};
        int lev = 0;
        for (int j = k; j & 1; j >>= 1, lev++) {
            add_floats(tr->tree[lev], cur, n); /* left block + right block */
            cur = tr->tree[lev];
            for (int q = 0; q < 4; q++) c3[q] = lt[lev][q] + c3[q];
        }
        if (k == m - 1) { /* m is a power of 2: the last shard closes the whole tree */
            if (cur != tr->model.grads_memory)
                memcpy(tr->model.grads_memory, cur, n * sizeof(float));
            sum.loss = c3[0], sum.ce = c3[1], sum.disp = c3[2], sum.kl = c3[3];
        } else {
            memcpy(tr->tree[lev], cur, n * sizeof(float)); /* becomes a left block */
            for (int q = 0; q < 4; q++) lt[lev][q] = c3[q];
        }
    }
    tr->last = sum;
    if (g == 1) lmd_trainer_shards_scale(tr);
}

void lmd_trainer_shards_scale(lmd_trainer *tr) {
    int S = tr->opts.shards;
    if (S <= 1) return;
    float inv = 1.0f / (float)S; /* a power of 2: scaling is exact */
    scale_floats(tr->model.grads_memory, tr->model.num_params, inv);
    tr->last.loss /= S, tr->last.ce /= S, tr->last.disp /= S, tr->last.kl /= S;
}

/* The gradient of one micro-batch of B sequences (this rank's part of it when data parallel). */
static void micro_grads(lmd_trainer *tr) {
    lmd_loader_next(&tr->loader, tr->inputs, tr->targets);
    if (tr->opts.shards > 1) {
        grads_sharded(tr);
        return;
    }
    int n = tr->nshards > 1 ? tr->nshards : 1;
    int Bs = tr->opts.B / n;
    size_t off = (size_t)(n > 1 ? tr->shard : 0) * Bs * tr->opts.T;
    tr->last =
        lmd_forward_backward_kd(&tr->model, tr->inputs + off, tr->targets + off, Bs, tr->opts.T,
                                &tr->opts.disp, &tr->opts.kd, &tr->state.rng_disp, tr->dhidden, 1);
}

void lmd_trainer_grads(lmd_trainer *tr) {
    const int N = tr->opts.accumulate > 1 ? tr->opts.accumulate : 1;
    const size_t n = tr->model.num_params;
    lmd_losses sum = {0, 0, 0, 0};
    tr->failed = 0;
    for (int j = 0; j < N; j++) {
        micro_grads(tr);
        if (tr->reduce && tr->reduce(tr, tr->reduce_ctx)) {
            tr->failed = 1;
            return;
        }
        if (N == 1) return;
        /* the micro-batch gradients are added in order 0, 1, ..., N-1 (left to right) */
        if (j == 0)
            memcpy(tr->acc, tr->model.grads_memory, n * sizeof(float));
        else
            add_floats(tr->acc, tr->model.grads_memory, n);
        sum.loss += tr->last.loss, sum.ce += tr->last.ce, sum.disp += tr->last.disp;
        sum.kl += tr->last.kl;
    }
    float fN = (float)N;
    float *g = tr->model.grads_memory;
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (size_t i = 0; i < n; i++) g[i] = tr->acc[i] / fN;
    tr->last.loss = sum.loss / N, tr->last.ce = sum.ce / N, tr->last.disp = sum.disp / N;
    tr->last.kl = sum.kl / N;
}

void lmd_trainer_apply(lmd_trainer *tr) {
    const lmd_train_opts *o = &tr->opts;
    tr->grad_norm = gpt_clip_grad_norm(&tr->model, o->clip);
    tr->lr = gpt_lr_at(tr->state.step, o->steps, o->lr, o->warmup_ratio, o->min_lr_ratio);
    gpt_adamw_update(&tr->model, &o->adamw, tr->lr);
    tr->state.step++;
    tr->state.tokens += (int64_t)o->B * o->T * (o->accumulate > 1 ? o->accumulate : 1);
    tr->state.data_pos = tr->loader.pos;
}

int lmd_trainer_step(lmd_trainer *tr) {
    lmd_trainer_grads(tr);
    if (tr->failed || !isfinite(tr->last.loss)) return 1;
    lmd_trainer_apply(tr);
    if (!isfinite(tr->grad_norm)) return 1;
    return 0;
}

double lmd_eval_loss(gpt_model *m, lmd_span span, int B, int T, int max_batches) {
    lmd_loader ld;
    if (lmd_loader_init(&ld, span, B, T, NULL)) return NAN;
    size_t per = (size_t)B * T;
    size_t avail = (span.n - 1) / per;
    size_t nb = max_batches > 0 && (size_t)max_batches < avail ? (size_t)max_batches : avail;
    int *inp = lmd_calloc(per, sizeof(int)), *tgt = lmd_calloc(per, sizeof(int));
    double total = 0.0;
    for (size_t i = 0; i < nb; i++) {
        lmd_loader_next(&ld, inp, tgt);
        gpt_forward(m, inp, tgt, B, T);
        total += m->mean_loss;
    }
    free(inp);
    free(tgt);
    return nb ? total / (double)nb : NAN;
}
