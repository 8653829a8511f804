/* test_accum.c — gradient accumulation (lmd_train_opts.accumulate, model/train.c): one
 * optimizer step of batch 2 x accumulate 4 against one step of batch 8 on the same tokens —
 * the gradient, the losses, the weights after AdamW and the token count — without and with a
 * dispersion loss (angular_spread; seq <= max_tokens, so no random token subset) and with a
 * distillation teacher; plus accumulate 4 of sharded micro-batches (shards 2) against batch 8
 * with shards 8 and accumulate 1.
 *
 * The two compute the same mean over 8 sequences but add in different orders (a micro-batch's
 * gradient is a mean over 2 sequences, the 4 are summed then divided by 4), so they agree to
 * float32 rounding: tolerance |diff| <= 1e-6 * max|g| + 1e-7 on the gradient, 1e-6 relative on
 * the losses, 1e-5 on the updated weights (lr 1e-3: an update is at most ~lr). Worst differences
 * are printed. Bitwise equality across rank counts is tested by tests/test_midtrain.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "gpt.h"
#include "train.h"
#include "testutil.h"

static void one_step(const lmd_tokens *tok, int B, int N, int shards, int disp, gpt_model *teacher,
                     float **grad, float **params, lmd_losses *l, int64_t *tokens, size_t *np) {
    gpt_config cfg = {
        .vocab_size = 64, .n_ctx = 16, .n_layer = 2, .n_embd = 16, .n_head = 2, .mlp_dim = 32};
    gpt_model m;
    lmd_err err;
    TU_CHECK(gpt_create(&m, &cfg, &err) == 0, "%s", err.msg);
    gpt_init(&m, 5);
    lmd_train_opts o = lmd_train_default();
    o.B = B, o.T = 12, o.steps = 10, o.warmup_ratio = 0.0, o.lr = 1e-3;
    o.accumulate = N, o.shards = shards;
    if (disp) o.disp.variant = DISP_ANGULAR_SPREAD, o.disp.coeff = 0.1;
    if (teacher) o.kd.teacher = teacher, o.kd.alpha = 0.5, o.kd.temperature = 2.0;
    lmd_span span = {tok->tok, tok->n, tok->vocab_size};
    lmd_trainer tr;
    TU_CHECK(lmd_trainer_init(&tr, &o, &m, span, NULL, &err) == 0, "%s", err.msg);
    lmd_trainer_grads(&tr);
    *np = tr.model.num_params;
    *grad = lmd_calloc(*np, 4);
    memcpy(*grad, tr.model.grads_memory, *np * 4);
    *l = tr.last;
    lmd_trainer_apply(&tr);
    *params = lmd_calloc(*np, 4);
    memcpy(*params, tr.model.params_memory, *np * 4);
    *tokens = tr.state.tokens;
    lmd_trainer_free(&tr);
}

static void compare(const char *what, const lmd_tokens *tok, int disp, gpt_model *teacher,
                    int shardsA, int shardsB) {
    float *ga, *pa, *gb, *pb;
    lmd_losses la, lb;
    int64_t ta, tb;
    size_t n;
    one_step(tok, 8, 1, shardsA, disp, teacher, &ga, &pa, &la, &ta, &n);
    one_step(tok, 2, 4, shardsB, disp, teacher, &gb, &pb, &lb, &tb, &n);
    double gmax = 0;
    double *ref = lmd_calloc(n, 8), *pref = lmd_calloc(n, 8);
    for (size_t i = 0; i < n; i++) ref[i] = ga[i], pref[i] = pa[i], gmax = fmax(gmax, fabs(ga[i]));
    char label[160];
    snprintf(label, sizeof label, "%s: grad 2x4 vs 8", what);
    tu_compare(label, gb, ref, n, 1e-7 + 1e-6 * gmax, 0.0);
    snprintf(label, sizeof label, "%s: weights after AdamW", what);
    tu_compare(label, pb, pref, n, 1e-5, 0.0);
    printf("%s: loss %.9f vs %.9f, ce %.9f vs %.9f, disp %.9f vs %.9f, kl %.9f vs %.9f, tokens "
           "%lld vs %lld\n",
           what, lb.loss, la.loss, lb.ce, la.ce, lb.disp, la.disp, lb.kl, la.kl, (long long)tb,
           (long long)ta);
    TU_CHECK(fabs(lb.loss - la.loss) <= 1e-6 * fabs(la.loss), "%s loss", what);
    TU_CHECK(fabs(lb.ce - la.ce) <= 1e-6 * fabs(la.ce), "%s ce", what);
    TU_CHECK(fabs(lb.disp - la.disp) <= 1e-6 * fabs(la.disp) + 1e-12, "%s disp", what);
    TU_CHECK(fabs(lb.kl - la.kl) <= 1e-6 * fabs(la.kl) + 1e-12, "%s kl", what);
    TU_CHECK(ta == tb && ta == 8 * 12, "%s tokens %lld %lld", what, (long long)ta, (long long)tb);
    /* a different batch would not pass: the gradient is not trivially equal */
    TU_CHECK(gmax > 1e-3, "%s: gradient too small to compare (%g)", what, gmax);
    free(ga), free(pa), free(gb), free(pb), free(ref), free(pref);
}

int main(void) {
    lmd_tokens tok;
    lmd_synth_opts so = lmd_synth_default();
    so.vocab_size = 64, so.n_tokens = 4000;
    lmd_err err;
    if (lmd_data_synthetic(&tok, &so, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    compare("ce", &tok, 0, NULL, 1, 1);
    compare("ce+angular_spread", &tok, 1, NULL, 1, 1);
    gpt_config tc = {
        .vocab_size = 64, .n_ctx = 16, .n_layer = 2, .n_embd = 16, .n_head = 2, .mlp_dim = 64};
    gpt_model t;
    gpt_create(&t, &tc, &err);
    gpt_init(&t, 77);
    for (size_t i = 0; i < t.num_params; i++) t.params_memory[i] *= 5.0f;
    compare("distill", &tok, 0, &t, 1, 1);
    compare("ce, shards 8 vs accumulate 4 x shards 2", &tok, 0, NULL, 8, 2);
    gpt_free(&t);
    lmd_tokens_free(&tok);
    return tu_summary("test_accum");
}
