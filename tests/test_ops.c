/* test_ops.c — every op of model/ops.h, forward and backward, at several shapes (edge sizes:
 * one row, odd widths, T around the 64-row attention blocks, shapes big enough to run threaded)
 * against independent float64 loops written from the op's definition, each op with its own
 * stated tolerance (worst difference printed); the same results bitwise at 1 and 2 threads; and
 * the op preconditions (attention's head split and its backward scratch) enforced.
 * test_gpt_grad.c checks the same ops by finite differences at one shape each. */
#include "gpt.h"
#include "ops.h"
#include "testutil.h"
#include "util.h"
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* splitmix64 -> [0, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}
static float *randf(size_t n, double lo, double hi) {
    float *x = lmd_calloc(n ? n : 1, sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * urand());
    return x;
}
static double *dzeros(size_t n) { return lmd_calloc(n ? n : 1, sizeof(double)); }
static float *fdup(const float *x, size_t n) {
    float *y = lmd_calloc(n ? n : 1, sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

/* Per-op tolerances: |got - want| <= atol + rtol |want|. Float32 arithmetic against float64;
 * the matmul-like ops accumulate K products, so their atol scales with sqrt(K) (random
 * entries in [-1, 1]: a dot product of K terms is ~sqrt(K/9) in size). */
typedef struct {
    const char *op;
    double atol, rtol;
} tol;
static const tol TOL_ENCODER = {"encoder", 0.0, 1.2e-7}; /* one float add: exactly rounded */
static const tol TOL_LN_FWD = {"layernorm", 2e-6, 2e-6};
static const tol TOL_LN_BWD = {"layernorm_backward", 1e-5, 1e-5};
static const tol TOL_MM = {"matmul", 2e-6, 1e-6}; /* x sqrt(K) */
static const tol TOL_ATT_FWD = {"attention", 2e-6, 1e-5};
static const tol TOL_ATT_BWD = {"attention_backward", 1e-5, 1e-5};
static const tol TOL_GELU = {"gelu", 2e-7, 2e-6};
static const tol TOL_GELU_BWD = {"gelu_backward", 1e-6, 0.0};
static const tol TOL_CE = {"crossentropy", 1e-5, 1e-6};
static const tol TOL_CE_BWD = {"crossentropy_backward", 1e-7, 1e-5};

static void cmp(const tol *t, const char *what, const char *shape, const float *got,
                const double *want, size_t n, double scale) {
    char name[96];
    snprintf(name, sizeof name, "%s %s %s", t->op, what, shape);
    tu_compare(name, got, want, n, t->atol * scale, t->rtol);
}

/* runs fn at 1 and 2 threads and checks the outputs are bitwise the same */
typedef void (*op_fn)(void *ctx, float **outs, size_t *ns, int *nout);
static void check_threads(const char *what, op_fn fn, void *ctx) {
    float *o1[4], *o2[4];
    size_t n1[4], n2[4];
    int k1 = 0, k2 = 0;
    gpt_set_threads(1);
    fn(ctx, o1, n1, &k1);
    gpt_set_threads(2);
    fn(ctx, o2, n2, &k2);
    gpt_set_threads(1);
    int same = k1 == k2;
    for (int i = 0; same && i < k1; i++)
        same = n1[i] == n2[i] && memcmp(o1[i], o2[i], n1[i] * sizeof(float)) == 0;
    printf("%-40s 1 vs 2 threads: %s\n", what, same ? "bitwise equal" : "DIFFER");
    TU_CHECK(same, "%s: results differ between 1 and 2 threads", what);
    for (int i = 0; i < k1; i++) free(o1[i]);
    for (int i = 0; i < k2; i++) free(o2[i]);
}

/* ---------------------------------------------------------------- encoder */
typedef struct {
    int B, T, C, V;
    int *inp;
    float *wte, *wpe, *dout;
} enc_case;
static void enc_run(void *p, float **outs, size_t *ns, int *nout) {
    enc_case *e = p;
    size_t BTC = (size_t)e->B * e->T * e->C;
    float *out = lmd_calloc(BTC, 4), *dwte = lmd_calloc((size_t)e->V * e->C, 4),
          *dwpe = lmd_calloc((size_t)e->T * e->C, 4);
    lmd_encoder_forward(out, e->inp, e->wte, e->wpe, e->B, e->T, e->C);
    lmd_encoder_backward(dwte, dwpe, e->dout, e->inp, e->B, e->T, e->C);
    outs[0] = out, ns[0] = BTC, outs[1] = dwte, ns[1] = (size_t)e->V * e->C, outs[2] = dwpe;
    ns[2] = (size_t)e->T * e->C, *nout = 3;
}
static void test_encoder(int B, int T, int C, int V, int threads) {
    enc_case e = {B,
                  T,
                  C,
                  V,
                  lmd_calloc((size_t)B * T, sizeof(int)),
                  randf((size_t)V * C, -1, 1),
                  randf((size_t)T * C, -1, 1),
                  randf((size_t)B * T * C, -1, 1)};
    for (int i = 0; i < B * T; i++) e.inp[i] = (int)(urand() * V) % V;
    char shape[64];
    snprintf(shape, sizeof shape, "B%d T%d C%d V%d", B, T, C, V);
    size_t BTC = (size_t)B * T * C;
    double *out = dzeros(BTC), *dwte = dzeros((size_t)V * C), *dwpe = dzeros((size_t)T * C);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)b * T + t) * C + c;
                int tok = e.inp[b * T + t];
                out[i] = (double)e.wte[(size_t)tok * C + c] + e.wpe[(size_t)t * C + c];
                dwte[(size_t)tok * C + c] += e.dout[i];
                dwpe[(size_t)t * C + c] += e.dout[i];
            }
    float *o[4];
    size_t n[4];
    int k;
    enc_run(&e, o, n, &k);
    cmp(&TOL_ENCODER, "out", shape, o[0], out, BTC, 1);
    /* the gradients sum up to B*T terms: their rounding is that of a float sum */
    tol tb = {"encoder_backward", 1e-6 * sqrt((double)B * T), 1e-6};
    cmp(&tb, "dwte", shape, o[1], dwte, (size_t)V * C, 1);
    cmp(&tb, "dwpe", shape, o[2], dwpe, (size_t)T * C, 1);
    for (int i = 0; i < k; i++) free(o[i]);
    if (threads) check_threads("encoder fwd+bwd", enc_run, &e);
    free(out), free(dwte), free(dwpe), free(e.inp), free(e.wte), free(e.wpe), free(e.dout);
}

/* ---------------------------------------------------------------- layernorm */
typedef struct {
    size_t N;
    int C;
    float *x, *w, *b, *dout;
} ln_case;
static void ln_run(void *p, float **outs, size_t *ns, int *nout) {
    ln_case *l = p;
    size_t NC = l->N * l->C;
    float *out = lmd_calloc(NC, 4), *mean = lmd_calloc(l->N, 4), *rstd = lmd_calloc(l->N, 4);
    float *dx = lmd_calloc(NC, 4), *dw = lmd_calloc(l->C, 4), *db = lmd_calloc(l->C, 4);
    lmd_layernorm_forward(out, mean, rstd, l->x, l->w, l->b, l->N, l->C);
    lmd_layernorm_backward(dx, dw, db, l->dout, l->x, l->w, mean, rstd, l->N, l->C);
    free(mean), free(rstd);
    outs[0] = out, ns[0] = NC, outs[1] = dx, ns[1] = NC, outs[2] = dw, ns[2] = l->C;
    outs[3] = db, ns[3] = l->C, *nout = 4;
}
static void test_layernorm(size_t N, int C, int threads) {
    ln_case l = {
        N, C, randf(N * C, -2, 3), randf(C, 0.5, 1.5), randf(C, -0.5, 0.5), randf(N * C, -1, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "N%zu C%d", N, C);
    size_t NC = N * C;
    double *out = dzeros(NC), *dx = dzeros(NC), *dw = dzeros(C), *db = dzeros(C);
    for (size_t r = 0; r < N; r++) {
        const float *x = l.x + r * C, *d = l.dout + r * C;
        double mu = 0, var = 0;
        for (int i = 0; i < C; i++) mu += x[i];
        mu /= C;
        for (int i = 0; i < C; i++) var += (x[i] - mu) * (x[i] - mu);
        double rs = 1.0 / sqrt(var / C + 1e-5), a = 0, bb = 0;
        for (int i = 0; i < C; i++) {
            double nrm = (x[i] - mu) * rs;
            out[r * C + i] = nrm * l.w[i] + l.b[i];
            dw[i] += nrm * d[i];
            db[i] += d[i];
            a += l.w[i] * d[i];
            bb += l.w[i] * d[i] * nrm;
        }
        a /= C, bb /= C;
        for (int i = 0; i < C; i++)
            dx[r * C + i] = (l.w[i] * d[i] - a - (x[i] - mu) * rs * bb) * rs;
    }
    float *o[4];
    size_t n[4];
    int k;
    ln_run(&l, o, n, &k);
    cmp(&TOL_LN_FWD, "out", shape, o[0], out, NC, 1);
    cmp(&TOL_LN_BWD, "dinp", shape, o[1], dx, NC, 1);
    cmp(&TOL_LN_BWD, "dw", shape, o[2], dw, C, sqrt((double)N));
    cmp(&TOL_LN_BWD, "db", shape, o[3], db, C, sqrt((double)N));
    for (int i = 0; i < k; i++) free(o[i]);
    if (threads) check_threads("layernorm fwd+bwd", ln_run, &l);
    free(out), free(dx), free(dw), free(db), free(l.x), free(l.w), free(l.b), free(l.dout);
}

/* ---------------------------------------------------------------- matmul (+ residual) */
typedef struct {
    size_t N;
    int IC, OC;
    float *x, *W, *bias, *res, *dout;
} mm_case;
static void mm_run(void *p, float **outs, size_t *ns, int *nout) {
    mm_case *m = p;
    size_t NO = m->N * m->OC, NI = m->N * m->IC, WN = (size_t)m->OC * m->IC;
    float *out = lmd_calloc(NO, 4), *outr = lmd_calloc(NO, 4), *dx = lmd_calloc(NI, 4);
    float *dW = lmd_calloc(WN, 4), *db = lmd_calloc(m->OC, 4);
    lmd_matmul_forward(out, m->x, m->W, m->bias, m->N, m->IC, m->OC, 0);
    lmd_matmul_forward_residual(outr, m->res, m->x, m->W, m->bias, m->N, m->IC, m->OC);
    lmd_matmul_backward(dx, dW, db, m->dout, m->x, m->W, m->N, m->IC, m->OC);
    /* dW accumulates: merge it with db into one output so 4 slots suffice */
    float *g = lmd_calloc(WN + m->OC, 4);
    memcpy(g, dW, WN * 4), memcpy(g + WN, db, (size_t)m->OC * 4);
    free(dW), free(db);
    outs[0] = out, ns[0] = NO, outs[1] = outr, ns[1] = NO, outs[2] = dx, ns[2] = NI;
    outs[3] = g, ns[3] = WN + m->OC, *nout = 4;
}
static void test_matmul(size_t N, int IC, int OC, int threads) {
    mm_case m = {N,
                 IC,
                 OC,
                 randf(N * IC, -1, 1),
                 randf((size_t)OC * IC, -1, 1),
                 randf(OC, -1, 1),
                 randf(N * OC, -1, 1),
                 randf(N * OC, -1, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "N%zu IC%d OC%d", N, IC, OC);
    size_t NO = N * OC, NI = N * IC, WN = (size_t)OC * IC;
    double *out = dzeros(NO), *outr = dzeros(NO), *dx = dzeros(NI), *g = dzeros(WN + OC);
    for (size_t r = 0; r < N; r++)
        for (int o = 0; o < OC; o++) {
            double s = m.bias[o];
            for (int i = 0; i < IC; i++) s += (double)m.x[r * IC + i] * m.W[(size_t)o * IC + i];
            out[r * OC + o] = s;
            outr[r * OC + o] = s + m.res[r * OC + o];
            double d = m.dout[r * OC + o];
            for (int i = 0; i < IC; i++) {
                dx[r * IC + i] += d * m.W[(size_t)o * IC + i];
                g[(size_t)o * IC + i] += d * m.x[r * IC + i];
            }
            g[WN + o] += d;
        }
    float *o[4];
    size_t n[4];
    int k;
    mm_run(&m, o, n, &k);
    cmp(&TOL_MM, "out", shape, o[0], out, NO, sqrt((double)IC));
    cmp(&TOL_MM, "out+residual", shape, o[1], outr, NO, sqrt((double)IC));
    cmp(&TOL_MM, "dinp", shape, o[2], dx, NI, sqrt((double)OC));
    cmp(&TOL_MM, "dW,dbias", shape, o[3], g, WN + OC, sqrt((double)N));
    for (int i = 0; i < k; i++) free(o[i]);
    if (threads) check_threads("matmul fwd+bwd", mm_run, &m);
    free(out), free(outr), free(dx), free(g);
    free(m.x), free(m.W), free(m.bias), free(m.res), free(m.dout);
}

/* ---------------------------------------------------------------- attention */
typedef struct {
    int B, T, C, NH;
    float *qkv, *dout;
} at_case;
static void at_run(void *p, float **outs, size_t *ns, int *nout) {
    at_case *a = p;
    size_t BTC = (size_t)a->B * a->T * a->C, TT = lmd_attention_scratch_floats(a->T);
    float *out = lmd_calloc(BTC, 4), *att = lmd_calloc((size_t)a->B * a->NH * TT, 4);
    float *dqkv = lmd_calloc(3 * BTC, 4), *datt = lmd_calloc(TT, 4); /* exactly the stated size */
    lmd_attention_forward(out, att, a->qkv, a->B, a->T, a->C, a->NH);
    lmd_attention_backward(dqkv, datt, TT, a->dout, a->qkv, att, a->B, a->T, a->C, a->NH);
    free(att), free(datt);
    outs[0] = out, ns[0] = BTC, outs[1] = dqkv, ns[1] = 3 * BTC, *nout = 2;
}
static void test_attention(int B, int T, int C, int NH, int threads) {
    size_t BTC = (size_t)B * T * C;
    at_case a = {B, T, C, NH, randf(3 * BTC, -1, 1), randf(BTC, -1, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "B%d T%d C%d NH%d", B, T, C, NH);
    int hd = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hd);
    double *out = dzeros(BTC), *dqkv = dzeros(3 * BTC);
    double *p = dzeros(T), *dp = dzeros(T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const float *q = a.qkv + ((size_t)b * T + t) * C3 + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const float *kk = a.qkv + ((size_t)b * T + j) * C3 + C + h * hd;
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += (double)q[i] * kk[i];
                    p[j] = s * scale;
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j <= t; j++) sum += (p[j] = exp(p[j] - mx));
                for (int j = 0; j <= t; j++) p[j] /= sum;
                const float *dO = a.dout + ((size_t)b * T + t) * C + h * hd;
                double pdp = 0;
                for (int j = 0; j <= t; j++) {
                    const float *v = a.qkv + ((size_t)b * T + j) * C3 + 2 * C + h * hd;
                    double *dv = dqkv + ((size_t)b * T + j) * C3 + 2 * C + h * hd;
                    dp[j] = 0;
                    for (int i = 0; i < hd; i++) {
                        out[((size_t)b * T + t) * C + h * hd + i] += p[j] * v[i];
                        dv[i] += p[j] * dO[i];
                        dp[j] += (double)dO[i] * v[i];
                    }
                    pdp += p[j] * dp[j];
                }
                double *dq = dqkv + ((size_t)b * T + t) * C3 + h * hd;
                for (int j = 0; j <= t; j++) {
                    double ds = p[j] * (dp[j] - pdp) * scale;
                    const float *kk = a.qkv + ((size_t)b * T + j) * C3 + C + h * hd;
                    double *dk = dqkv + ((size_t)b * T + j) * C3 + C + h * hd;
                    for (int i = 0; i < hd; i++) {
                        dq[i] += ds * kk[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
    float *o[4];
    size_t n[4];
    int k;
    at_run(&a, o, n, &k);
    cmp(&TOL_ATT_FWD, "out", shape, o[0], out, BTC, 1);
    cmp(&TOL_ATT_BWD, "dqkv", shape, o[1], dqkv, 3 * BTC, sqrt((double)T));
    for (int i = 0; i < k; i++) free(o[i]);
    if (threads) check_threads("attention fwd+bwd", at_run, &a);
    free(out), free(dqkv), free(p), free(dp), free(a.qkv), free(a.dout);
}

/* ---------------------------------------------------------------- gelu */
typedef struct {
    size_t n;
    float *x, *dout;
} ge_case;
static void ge_run(void *p, float **outs, size_t *ns, int *nout) {
    ge_case *g = p;
    float *y = lmd_calloc(g->n, 4), *d = fdup(g->dout, g->n);
    lmd_gelu_forward(y, g->x, g->n);
    lmd_gelu_backward(d, g->x, g->n);
    outs[0] = y, ns[0] = g->n, outs[1] = d, ns[1] = g->n, *nout = 2;
}
static void test_gelu(size_t n, int threads) {
    ge_case g = {n, randf(n, -12, 12), randf(n, -1, 1)};
    char shape[64];
    snprintf(shape, sizeof shape, "n%zu", n);
    double *y = dzeros(n), *d = dzeros(n);
    const double K = sqrt(2 / M_PI);
    for (size_t i = 0; i < n; i++) {
        double x = g.x[i], u = K * (x + 0.044715 * x * x * x), th = tanh(u);
        y[i] = 0.5 * x * (1 + th);
        d[i] =
            g.dout[i] * (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * K * (1 + 3 * 0.044715 * x * x));
    }
    float *o[4];
    size_t ns[4];
    int k;
    ge_run(&g, o, ns, &k);
    cmp(&TOL_GELU, "out", shape, o[0], y, n, 1);
    cmp(&TOL_GELU_BWD, "dinp", shape, o[1], d, n, 1);
    for (int i = 0; i < k; i++) free(o[i]);
    if (threads) check_threads("gelu fwd+bwd", ge_run, &g);
    free(y), free(d), free(g.x), free(g.dout);
}

/* ---------------------------------------------------------------- cross-entropy */
typedef struct {
    size_t N;
    int V;
    float *logits;
    int *tg;
} ce_case;
static void ce_run(void *p, float **outs, size_t *ns, int *nout) {
    ce_case *c = p;
    float *losses = lmd_calloc(c->N + 1, 4), *d = lmd_calloc(c->N * c->V, 4);
    losses[c->N] = (float)lmd_crossentropy_forward(losses, c->logits, c->tg, c->N, c->V);
    lmd_crossentropy_backward(d, c->logits, c->tg, c->N, c->V, 1.0f / (float)c->N);
    outs[0] = losses, ns[0] = c->N + 1, outs[1] = d, ns[1] = c->N * c->V, *nout = 2;
}
static void test_crossentropy(size_t N, int V, double range, int threads) {
    ce_case c = {N, V, randf(N * V, -range, range), lmd_calloc(N, sizeof(int))};
    for (size_t i = 0; i < N; i++) c.tg[i] = (int)(urand() * V) % V;
    char shape[64];
    snprintf(shape, sizeof shape, "N%zu V%d range%g", N, V, range);
    double *loss = dzeros(N + 1), *d = dzeros(N * V);
    for (size_t r = 0; r < N; r++) {
        const float *z = c.logits + r * V;
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, z[j]);
        for (int j = 0; j < V; j++) s += exp(z[j] - mx);
        double lse = mx + log(s);
        loss[r] = lse - z[c.tg[r]];
        loss[N] += loss[r] / N;
        for (int j = 0; j < V; j++) d[r * V + j] = (exp(z[j] - lse) - (j == c.tg[r])) / (double)N;
    }
    float *o[4];
    size_t ns[4];
    int k;
    ce_run(&c, o, ns, &k);
    cmp(&TOL_CE, "losses,mean", shape, o[0], loss, N + 1, 1 + range);
    cmp(&TOL_CE_BWD, "dlogits", shape, o[1], d, N * V, 1.0 / N);
    for (int i = 0; i < k; i++) free(o[i]);
    if (threads) check_threads("crossentropy fwd+bwd", ce_run, &c);
    free(loss), free(d), free(c.logits), free(c.tg);
}

/* ---------------------------------------------------------------- preconditions */
/* runs fn in a child; passes when it dies of SIGABRT (the op's check), not by ASan or a crash */
static void expect_abort(const char *what, void (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    int ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    printf("%-40s %s\n", what, ok ? "refused (abort)" : "NOT refused");
    TU_CHECK(ok, "%s: child status %d", what, st);
}
static void small_scratch(void) {
    int B = 1, T = 70, C = 8, NH = 2;
    size_t BTC = (size_t)B * T * C, TT = lmd_attention_scratch_floats(T);
    float *qkv = randf(3 * BTC, -1, 1), *att = lmd_calloc(TT * NH, 4), *out = lmd_calloc(BTC, 4);
    float *dqkv = lmd_calloc(3 * BTC, 4), *datt = lmd_calloc(TT, 4);
    lmd_attention_forward(out, att, qkv, B, T, C, NH);
    lmd_attention_backward(dqkv, datt, TT - 1, out, qkv, att, B, T, C, NH);
}
static void bad_heads(void) {
    float *x = lmd_calloc(3 * 10 * 4, 4), *att = lmd_calloc(48, 4), *out = lmd_calloc(40, 4);
    lmd_attention_forward(out, att, x, 1, 4, 10, 3);
}
static void zero_len(void) {
    float x[24] = {0}, att[1] = {0}, out[8] = {0};
    lmd_attention_forward(out, att, x, 1, 0, 8, 2);
}

int main(void) {
    gpt_set_threads(1);
    test_encoder(1, 1, 1, 2, 0);
    test_encoder(2, 5, 7, 11, 0);
    test_encoder(3, 64, 33, 50, 0);
    test_encoder(4, 128, 96, 300, 1);
    test_layernorm(1, 1, 0);
    test_layernorm(1, 3, 0);
    test_layernorm(7, 17, 0);
    test_layernorm(65, 129, 0);
    test_layernorm(512, 96, 1);
    test_matmul(1, 1, 1, 0);
    test_matmul(7, 9, 5, 0);
    test_matmul(33, 65, 17, 0);
    test_matmul(256, 96, 288, 1);
    test_attention(1, 1, 4, 1, 0);
    test_attention(2, 5, 8, 2, 0);
    test_attention(1, 63, 16, 4, 0);
    test_attention(1, 64, 16, 2, 0);
    test_attention(2, 65, 24, 3, 0);
    test_attention(1, 130, 32, 4, 1);
    test_attention(2, 200, 64, 4, 1);
    test_gelu(1, 0);
    test_gelu(17, 0);
    test_gelu(100000, 1);
    test_crossentropy(1, 2, 1, 0);
    test_crossentropy(6, 7, 2, 0);
    test_crossentropy(33, 1000, 30, 0);
    test_crossentropy(64, 5000, 8, 1);
    expect_abort("attention_backward scratch T*T-1", small_scratch);
    expect_abort("attention C=10 NH=3", bad_heads);
    expect_abort("attention T=0", zero_len);
    return tu_summary("test_ops");
}
