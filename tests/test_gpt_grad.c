/* test_gpt_grad.c — central finite differences for every backward op of ops.h and for the
 * whole model (every parameter tensor, including gradients injected at the hidden states).
 *
 * Each op is reduced to a scalar L = sum_i r_i * out_i with fixed random r (accumulated in
 * double), so dout = r. Forward runs in float32, so the central difference with step h has a
 * rounding error of about eps_f32 * |L| / h plus a truncation error O(h^2); with h = 1e-2 both
 * are near 1e-4. Tolerance: |fd - analytic| <= 1e-4 + 5e-4 * max|analytic| over the tensor
 * (a wrong gradient is off by O(max|analytic|)). The worst difference is printed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"
#include "ops.h"
#include "testutil.h"

static lmd_rng rng;

static void fill(float *x, size_t n, double std, double mean) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(mean + std * lmd_rng_normal(&rng));
}

static double dot(const float *a, const float *r, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * r[i];
    return s;
}

/* Checks grad (analytic) of the scalar function f against central differences at up to
 * `samples` indices of x. f recomputes everything from x. */
typedef double (*scalar_fn)(void *ctx);
static void check_fd(const char *what, float *x, const float *grad, size_t n, scalar_fn f,
                     void *ctx, int samples) {
    const double h = 1e-2;
    double gmax = 0.0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
    double tol_scale = 1e-4 + 5e-4 * gmax;
    size_t stride = n <= (size_t)samples ? 1 : n / (size_t)samples;
    size_t count = 0;
    double *fd = lmd_calloc(n, sizeof(double));
    float *an = lmd_calloc(n, sizeof(float));
    for (size_t i = 0; i < n; i += stride) {
        float old = x[i];
        x[i] = old + (float)h;
        double lp = f(ctx);
        x[i] = old - (float)h;
        double lm = f(ctx);
        x[i] = old;
        fd[count] = (lp - lm) / (2 * h);
        an[count] = grad[i];
        count++;
    }
    char label[128];
    snprintf(label, sizeof label, "fd %s (max|g|=%.2e)", what, gmax);
    tu_compare(label, an, fd, count, tol_scale, 0.0);
    free(fd);
    free(an);
}

/* ---------------------------------------------------------------- layernorm */
typedef struct {
    float *inp, *w, *b, *out, *mean, *rstd, *r;
    size_t N;
    int C;
} ln_ctx;
static double ln_f(void *p) {
    ln_ctx *c = p;
    lmd_layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    return dot(c->out, c->r, c->N * c->C);
}
static void test_layernorm(void) {
    ln_ctx c = {.N = 6, .C = 10};
    size_t n = c.N * c.C;
    c.inp = lmd_calloc(n, 4), c.out = lmd_calloc(n, 4), c.r = lmd_calloc(n, 4);
    c.w = lmd_calloc(c.C, 4), c.b = lmd_calloc(c.C, 4);
    c.mean = lmd_calloc(c.N, 4), c.rstd = lmd_calloc(c.N, 4);
    fill(c.inp, n, 1.0, 0.3), fill(c.r, n, 1.0, 0), fill(c.w, c.C, 0.5, 1.0),
        fill(c.b, c.C, 0.5, 0);
    float *dinp = lmd_calloc(n, 4), *dw = lmd_calloc(c.C, 4), *db = lmd_calloc(c.C, 4);
    ln_f(&c);
    lmd_layernorm_backward(dinp, dw, db, c.r, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    check_fd("layernorm dinp", c.inp, dinp, n, ln_f, &c, 1000);
    check_fd("layernorm dw", c.w, dw, c.C, ln_f, &c, 1000);
    check_fd("layernorm db", c.b, db, c.C, ln_f, &c, 1000);
    free(c.inp), free(c.out), free(c.r), free(c.w), free(c.b), free(c.mean), free(c.rstd);
    free(dinp), free(dw), free(db);
}

/* ---------------------------------------------------------------- matmul */
typedef struct {
    float *inp, *W, *bias, *out, *r;
    size_t N;
    int IC, OC;
} mm_ctx;
static double mm_f(void *p) {
    mm_ctx *c = p;
    lmd_matmul_forward(c->out, c->inp, c->W, c->bias, c->N, c->IC, c->OC, 0);
    return dot(c->out, c->r, c->N * c->OC);
}
static void test_matmul(void) {
    mm_ctx c = {.N = 7, .IC = 9, .OC = 5};
    c.inp = lmd_calloc(c.N * c.IC, 4), c.W = lmd_calloc((size_t)c.OC * c.IC, 4);
    c.bias = lmd_calloc(c.OC, 4), c.out = lmd_calloc(c.N * c.OC, 4),
    c.r = lmd_calloc(c.N * c.OC, 4);
    fill(c.inp, c.N * c.IC, 1, 0), fill(c.W, (size_t)c.OC * c.IC, 1, 0), fill(c.bias, c.OC, 1, 0);
    fill(c.r, c.N * c.OC, 1, 0);
    float *dinp = lmd_calloc(c.N * c.IC, 4), *dW = lmd_calloc((size_t)c.OC * c.IC, 4),
          *db = lmd_calloc(c.OC, 4);
    mm_f(&c);
    lmd_matmul_backward(dinp, dW, db, c.r, c.inp, c.W, c.N, c.IC, c.OC);
    check_fd("matmul dinp", c.inp, dinp, c.N * c.IC, mm_f, &c, 1000);
    check_fd("matmul dW", c.W, dW, (size_t)c.OC * c.IC, mm_f, &c, 1000);
    check_fd("matmul dbias", c.bias, db, c.OC, mm_f, &c, 1000);
    /* accumulate mode adds to out (recompute first: the difference loop left a perturbed out) */
    mm_f(&c);
    float *o2 = lmd_calloc(c.N * c.OC, 4);
    for (size_t i = 0; i < c.N * c.OC; i++) o2[i] = 1.0f;
    lmd_matmul_forward(o2, c.inp, c.W, c.bias, c.N, c.IC, c.OC, 1);
    double worst = 0;
    for (size_t i = 0; i < c.N * c.OC; i++) worst = fmax(worst, fabs(o2[i] - 1.0f - c.out[i]));
    TU_CHECK(worst < 1e-5, "accumulate mode: worst %.3e", worst);
    free(o2);
    free(c.inp), free(c.W), free(c.bias), free(c.out), free(c.r), free(dinp), free(dW), free(db);
}

/* ---------------------------------------------------------------- attention */
typedef struct {
    float *qkv, *out, *att, *r;
    int B, T, C, NH;
} at_ctx;
static double at_f(void *p) {
    at_ctx *c = p;
    lmd_attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->NH);
    return dot(c->out, c->r, (size_t)c->B * c->T * c->C);
}
static void test_attention(void) {
    at_ctx c = {.B = 2, .T = 5, .C = 8, .NH = 2};
    size_t nq = (size_t)c.B * c.T * 3 * c.C, no = (size_t)c.B * c.T * c.C;
    c.qkv = lmd_calloc(nq, 4), c.out = lmd_calloc(no, 4), c.r = lmd_calloc(no, 4);
    c.att = lmd_calloc((size_t)c.B * c.NH * c.T * c.T, 4);
    fill(c.qkv, nq, 1.0, 0), fill(c.r, no, 1.0, 0);
    float *dqkv = lmd_calloc(nq, 4), *datt = lmd_calloc((size_t)c.T * c.T, 4);
    at_f(&c);
    /* causality: future tokens must not change earlier outputs */
    float *o1 = lmd_calloc(no, 4);
    memcpy(o1, c.out, no * 4);
    c.qkv[(size_t)(c.T - 1) * 3 * c.C + 1] += 1.0f;           /* q of last token, batch 0 */
    c.qkv[(size_t)(c.T - 1) * 3 * c.C + c.C + 2] += 1.0f;     /* k of last token */
    c.qkv[(size_t)(c.T - 1) * 3 * c.C + 2 * c.C + 3] += 1.0f; /* v of last token */
    at_f(&c);
    double leak = 0;
    for (int t = 0; t < c.T - 1; t++)
        for (int i = 0; i < c.C; i++)
            leak = fmax(leak, fabs(c.out[(size_t)t * c.C + i] - o1[(size_t)t * c.C + i]));
    TU_CHECK(leak == 0.0, "causal mask: earlier outputs changed by %.3e", leak);
    c.qkv[(size_t)(c.T - 1) * 3 * c.C + 1] -= 1.0f;
    c.qkv[(size_t)(c.T - 1) * 3 * c.C + c.C + 2] -= 1.0f;
    c.qkv[(size_t)(c.T - 1) * 3 * c.C + 2 * c.C + 3] -= 1.0f;
    at_f(&c);
    lmd_attention_backward(dqkv, datt, (size_t)c.T * c.T, c.r, c.qkv, c.att, c.B, c.T, c.C, c.NH);
    check_fd("attention dqkv", c.qkv, dqkv, nq, at_f, &c, 1000);
    free(o1), free(c.qkv), free(c.out), free(c.r), free(c.att), free(dqkv), free(datt);
}

/* ---------------------------------------------------------------- gelu, encoder, crossentropy */
typedef struct {
    float *inp, *out, *r;
    size_t n;
} ge_ctx;
static double ge_f(void *p) {
    ge_ctx *c = p;
    lmd_gelu_forward(c->out, c->inp, c->n);
    return dot(c->out, c->r, c->n);
}
static void test_gelu(void) {
    ge_ctx c = {.n = 200};
    c.inp = lmd_calloc(c.n, 4), c.out = lmd_calloc(c.n, 4), c.r = lmd_calloc(c.n, 4);
    fill(c.inp, c.n, 2.0, 0), fill(c.r, c.n, 1.0, 0);
    float *d = lmd_calloc(c.n, 4);
    memcpy(d, c.r, c.n * 4);
    ge_f(&c);
    lmd_gelu_backward(d, c.inp, c.n);
    check_fd("gelu dinp", c.inp, d, c.n, ge_f, &c, 1000);
    /* value check against the tanh formula in double */
    ge_f(&c);
    double worst = 0;
    for (size_t i = 0; i < c.n; i++) {
        double x = c.inp[i];
        double y = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        worst = fmax(worst, fabs(y - c.out[i]));
    }
    TU_CHECK(worst < 1e-6, "gelu value vs double formula: worst %.3e", worst);
    free(c.inp), free(c.out), free(c.r), free(d);

    /* value and derivative on a grid over [-12, 12] against the tanh formula in double. Value:
     * relative error where |f| > 1e-3, absolute elsewhere (the far negative tail is ~0).
     * Derivative (within [-0.17, 1.13]): absolute error, as it crosses 0 near x = -0.75 */
    enum { NG = 4801 };
    float *x = lmd_calloc(NG, 4), *y = lmd_calloc(NG, 4), *g = lmd_calloc(NG, 4);
    for (int i = 0; i < NG; i++) x[i] = (float)(-12.0 + 24.0 * i / (NG - 1)), g[i] = 1.0f;
    lmd_gelu_forward(y, x, NG);
    lmd_gelu_backward(g, x, NG);
    double wv = 0, wd = 0;
    int iv = 0, id = 0;
    const double K = sqrt(2 / M_PI);
    for (int i = 0; i < NG; i++) {
        double xd = x[i], u = K * (xd + 0.044715 * xd * xd * xd), th = tanh(u);
        double f = 0.5 * xd * (1 + th);
        double df = 0.5 * (1 + th) + 0.5 * xd * (1 - th * th) * K * (1 + 3 * 0.044715 * xd * xd);
        double ev = fabs(y[i] - f) / (fabs(f) > 1e-3 ? fabs(f) : 1e-3);
        double ed = fabs(g[i] - df);
        if (ev > wv) wv = ev, iv = i;
        if (ed > wd) wd = ed, id = i;
    }
    printf("gelu on [-12,12] vs double: value worst rel err %.3e at x=%g (tol 2e-6), "
           "derivative worst abs err %.3e at x=%g (tol 1e-6)\n",
           wv, x[iv], wd, x[id]);
    TU_CHECK(wv < 2e-6, "gelu value on [-12,12]: worst rel err %.3e at x=%g", wv, x[iv]);
    TU_CHECK(wd < 1e-6, "gelu derivative on [-12,12]: worst abs err %.3e at x=%g", wd, x[id]);
    free(x), free(y), free(g);
}

typedef struct {
    float *wte, *wpe, *out, *r;
    int *inp;
    int B, T, C;
} en_ctx;
static double en_f(void *p) {
    en_ctx *c = p;
    lmd_encoder_forward(c->out, c->inp, c->wte, c->wpe, c->B, c->T, c->C);
    return dot(c->out, c->r, (size_t)c->B * c->T * c->C);
}
static void test_encoder(void) {
    en_ctx c = {.B = 2, .T = 4, .C = 3};
    int V = 5;
    int inp[8] = {0, 3, 3, 1, 4, 0, 2, 3};
    c.inp = inp;
    size_t no = (size_t)c.B * c.T * c.C;
    c.wte = lmd_calloc((size_t)V * c.C, 4), c.wpe = lmd_calloc((size_t)c.T * c.C, 4);
    c.out = lmd_calloc(no, 4), c.r = lmd_calloc(no, 4);
    fill(c.wte, (size_t)V * c.C, 1, 0), fill(c.wpe, (size_t)c.T * c.C, 1, 0), fill(c.r, no, 1, 0);
    float *dwte = lmd_calloc((size_t)V * c.C, 4), *dwpe = lmd_calloc((size_t)c.T * c.C, 4);
    en_f(&c);
    lmd_encoder_backward(dwte, dwpe, c.r, c.inp, c.B, c.T, c.C);
    check_fd("encoder dwte", c.wte, dwte, (size_t)V * c.C, en_f, &c, 1000);
    check_fd("encoder dwpe", c.wpe, dwpe, (size_t)c.T * c.C, en_f, &c, 1000);
    free(c.wte), free(c.wpe), free(c.out), free(c.r), free(dwte), free(dwpe);
}

typedef struct {
    float *logits, *losses;
    int *targets;
    size_t N;
    int V;
} ce_ctx;
static double ce_f(void *p) {
    ce_ctx *c = p;
    return lmd_crossentropy_forward(c->losses, c->logits, c->targets, c->N, c->V);
}
static void test_crossentropy(void) {
    ce_ctx c = {.N = 6, .V = 7};
    int tg[6] = {0, 6, 3, 3, 2, 5};
    c.targets = tg;
    c.logits = lmd_calloc(c.N * c.V, 4), c.losses = lmd_calloc(c.N, 4);
    fill(c.logits, c.N * c.V, 2.0, 0);
    float *d = lmd_calloc(c.N * c.V, 4);
    double mean = ce_f(&c);
    lmd_crossentropy_backward(d, c.logits, c.targets, c.N, c.V, 1.0f / (float)c.N);
    check_fd("crossentropy dlogits", c.logits, d, c.N * c.V, ce_f, &c, 1000);
    /* value: uniform logits give ln V */
    for (size_t i = 0; i < c.N * c.V; i++) c.logits[i] = 0.25f;
    mean = ce_f(&c);
    TU_CHECK(fabs(mean - log(7.0)) < 1e-6, "uniform logits: %.8f vs ln 7 = %.8f", mean, log(7.0));
    free(c.logits), free(c.losses), free(d);
}

/* ---------------------------------------------------------------- whole model */
typedef struct {
    gpt_model *m;
    int *inp, *tgt;
    float *r; /* (L+1,B,T,C) weights on hidden states: L = CE + sum r . hidden */
    int B, T;
} model_ctx;
static double model_f(void *p) {
    model_ctx *c = p;
    gpt_forward(c->m, c->inp, c->tgt, c->B, c->T);
    double L = c->m->mean_loss;
    size_t BTC = (size_t)c->B * c->T * c->m->cfg.n_embd;
    for (int l = 0; l <= c->m->cfg.n_layer; l++)
        L += dot(gpt_hidden_state(c->m, l), c->r + (size_t)l * BTC, BTC);
    return L;
}
static void test_model_at(gpt_config cfg, int B, int T, double scale, int samples,
                          const char *tag) {
    gpt_model m;
    lmd_err err;
    TU_CHECK(gpt_create(&m, &cfg, &err) == 0, "%s", err.msg);
    /* parameters well away from init so every path carries signal */
    fill(m.params_memory, m.num_params, scale, 0.0);
    for (int l = 0; l < cfg.n_layer; l++)
        for (int i = 0; i < cfg.n_embd; i++) {
            m.params.ln1w[l * cfg.n_embd + i] += 1.0f;
            m.params.ln2w[l * cfg.n_embd + i] += 1.0f;
        }
    for (int i = 0; i < cfg.n_embd; i++) m.params.lnfw[i] += 1.0f;
    int *inp = lmd_calloc((size_t)B * T, sizeof(int)),
        *tgt = lmd_calloc((size_t)B * T, sizeof(int));
    for (int i = 0; i < B * T; i++) {
        inp[i] = (int)lmd_rng_below(&rng, (uint64_t)cfg.vocab_size);
        tgt[i] = (int)lmd_rng_below(&rng, (uint64_t)cfg.vocab_size);
    }
    size_t BTC = (size_t)B * T * cfg.n_embd;
    float *r = lmd_calloc((size_t)(cfg.n_layer + 1) * BTC, 4);
    fill(r, (size_t)(cfg.n_layer + 1) * BTC, 0.05, 0);
    model_ctx c = {&m, inp, tgt, r, B, T};
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: cross-entropy alone; pass 1: plus gradients injected at every hidden state */
        if (pass == 0)
            memset(r, 0, (size_t)(cfg.n_layer + 1) * BTC * 4);
        else
            fill(r, (size_t)(cfg.n_layer + 1) * BTC, 0.05, 0);
        model_f(&c);
        gpt_zero_grad(&m);
        gpt_backward(&m, pass ? r : NULL);
        for (int k = 0; k < GPT_NUM_TENSORS; k++) {
            gpt_tensor_info info;
            gpt_tensor_describe(&cfg, k, &info);
            char what[96];
            snprintf(what, sizeof what, "model%s%s %s", tag, pass ? "+dhidden" : "", info.name);
            check_fd(what, m.params.t[k], m.grads.t[k], gpt_tensor_numel(&cfg, k), model_f, &c,
                     samples);
        }
    }
    free(r);
    free(inp);
    free(tgt);
    gpt_free(&m);
}

static void test_model(void) {
    gpt_config cfg = {
        .vocab_size = 23, .n_ctx = 8, .n_layer = 2, .n_embd = 8, .n_head = 2, .mlp_dim = 12};
    test_model_at(cfg, 2, 6, 0.3, 60, "");
}

/* Above every parallel threshold (ops.c PAR_MIN = 32768 <= B*T*C = 8*64*64; the sgemm row split
 * needs M*N*K >= 4e6: 512*256*64) on 2 threads: the split paths get the same check. */
static void test_model_threads(void) {
    gpt_config cfg = {
        .vocab_size = 64, .n_ctx = 64, .n_layer = 1, .n_embd = 64, .n_head = 4, .mlp_dim = 256};
    gpt_set_threads(2);
    test_model_at(cfg, 8, 64, 0.05, 3, "[2 threads, large]");
    gpt_set_threads(1);
}

int main(void) {
    lmd_rng_seed(&rng, 42, 0);
    test_layernorm();
    test_matmul();
    test_attention();
    test_gelu();
    test_encoder();
    test_crossentropy();
    test_model();
    test_model_threads();
    return tu_summary("test_gpt_grad");
}
