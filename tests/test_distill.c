/* test_distill.c — the distillation loss (model/distill.c) against the PyTorch reference of
 * tests/gen_distill_ref.py (tests/ref/distill_ref.h5) and by central finite differences at the
 * logits; then through the whole student (lmd_forward_backward_kd: every parameter tensor by
 * finite differences, with a wider teacher, without and with a dispersion loss — decorrelation,
 * whose value is smooth: angular_spread's straight-through clamp makes its gradient differ from
 * the derivative of its value by design, DESIGN 3). The teacher gets no gradient or moment
 * buffers and its weights do not change.
 *
 * Tolerances: loss/ce/kl vs PyTorch |diff| <= 1e-9 + 1e-9 |ref| (both float64 from the same
 * float32 logits); grad vs PyTorch |diff| <= 1e-7 + 1e-6 |ref| (the C gradient is stored as
 * float32: relative rounding 6e-8); logits finite differences (loss in double, h = 1e-3 on
 * float32 logits, the step taken as the float difference actually applied) |diff| <= 1e-6;
 * whole model in float32 with h = 1e-2: |diff| <= 1e-4 + 5e-4 max|g| per tensor, as
 * test_gpt_grad.c. The worst difference of each is printed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill.h"
#include "gpt.h"
#include "h5io.h"
#include "train.h"
#include "testutil.h"

static int read_case(hid_t f, int k, const char *name, hid_t type, void *buf, size_t n) {
    char path[64];
    snprintf(path, sizeof path, "/case_%d/%s", k, name);
    size_t cnt;
    lmd_err err;
    if (lmd_h5_read(f, path, type, buf, n, &cnt, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static void test_reference(void) {
    lmd_err err;
    hid_t f = lmd_h5_open("ref/distill_ref.h5", &err);
    TU_CHECK(f >= 0, "%s", err.msg);
    if (f < 0) return;
    int64_t nc = 0;
    size_t cnt;
    lmd_h5_read(f, "/n_cases", H5T_NATIVE_INT64, &nc, 1, &cnt, &err);
    TU_CHECK(nc == 4, "n_cases %lld", (long long)nc);
    for (int k = 0; k < nc; k++) {
        char path[64];
        int rank;
        hsize_t dims[4];
        snprintf(path, sizeof path, "/case_%d/s", k);
        lmd_h5_dims(f, path, &rank, dims, &err);
        size_t N = dims[0], V = dims[1], NV = N * V;
        float *s = lmd_calloc(NV, 4), *t = lmd_calloc(NV, 4), *g = lmd_calloc(NV, 4);
        double *gref = lmd_calloc(NV, 8), alpha, T, loss, ce, kl;
        int *y = lmd_calloc(N, sizeof(int));
        int bad = read_case(f, k, "s", H5T_NATIVE_FLOAT, s, NV) ||
                  read_case(f, k, "t", H5T_NATIVE_FLOAT, t, NV) ||
                  read_case(f, k, "targets", H5T_NATIVE_INT, y, N) ||
                  read_case(f, k, "grad", H5T_NATIVE_DOUBLE, gref, NV) ||
                  read_case(f, k, "alpha", H5T_NATIVE_DOUBLE, &alpha, 1) ||
                  read_case(f, k, "T", H5T_NATIVE_DOUBLE, &T, 1) ||
                  read_case(f, k, "loss", H5T_NATIVE_DOUBLE, &loss, 1) ||
                  read_case(f, k, "ce", H5T_NATIVE_DOUBLE, &ce, 1) ||
                  read_case(f, k, "kl", H5T_NATIVE_DOUBLE, &kl, 1);
        TU_CHECK(!bad, "case %d unreadable", k);
        lmd_distill_losses out = lmd_distill_forward_backward(s, t, y, N, (int)V, alpha, T, g);
        char label[96];
        double d_loss = fabs(out.loss - loss), d_ce = fabs(out.ce - ce), d_kl = fabs(out.kl - kl);
        printf("case %d (N=%zu V=%zu alpha=%g T=%g): loss %.12f ref %.12f |diff| %.2e; ce |diff| "
               "%.2e; kl |diff| %.2e\n",
               k, N, V, alpha, T, out.loss, loss, d_loss, d_ce, d_kl);
        TU_CHECK(d_loss <= 1e-9 + 1e-9 * fabs(loss), "case %d loss", k);
        TU_CHECK(d_ce <= 1e-9 + 1e-9 * fabs(ce), "case %d ce", k);
        TU_CHECK(d_kl <= 1e-9 + 1e-9 * fabs(kl), "case %d kl", k);
        snprintf(label, sizeof label, "torch grad case %d", k);
        tu_compare(label, g, gref, NV, 1e-7, 1e-6);
        /* finite differences of the loss in the student logits */
        double *fd = lmd_calloc(NV, 8);
        for (size_t i = 0; i < NV; i++) {
            float old = s[i];
            s[i] = old + 1e-3f;
            float up = s[i];
            double lp = lmd_distill_forward_backward(s, t, y, N, (int)V, alpha, T, NULL).loss;
            s[i] = old - 1e-3f;
            float dn = s[i];
            double lm = lmd_distill_forward_backward(s, t, y, N, (int)V, alpha, T, NULL).loss;
            s[i] = old;
            fd[i] = (lp - lm) / ((double)up - (double)dn);
        }
        snprintf(label, sizeof label, "fd logits case %d", k);
        tu_compare(label, g, fd, NV, 1e-6, 0.0);
        free(fd);
        free(s), free(t), free(g), free(gref), free(y);
    }
    H5Fclose(f);
}

/* ---- the whole student: every parameter tensor by finite differences ---- */
typedef struct {
    gpt_model *m;
    const int *in, *tg;
    int B, T;
    lmd_disp_opts disp;
    lmd_kd_opts kd;
} model_ctx;

static double model_loss(model_ctx *c) {
    lmd_rng rng;
    lmd_rng_seed(&rng, 7, 3);
    return lmd_forward_backward_kd(c->m, c->in, c->tg, c->B, c->T, &c->disp, &c->kd, &rng, NULL, 0)
        .loss;
}

static void test_model(int with_disp, int no_teacher) {
    gpt_config sc = {
        .vocab_size = 13, .n_ctx = 8, .n_layer = 2, .n_embd = 8, .n_head = 2, .mlp_dim = 12};
    gpt_config tc = sc;
    tc.mlp_dim = 32; /* a wider teacher */
    gpt_model m, t;
    lmd_err err;
    gpt_create(&m, &sc, &err);
    gpt_init(&m, 11);
    gpt_create(&t, &tc, &err);
    gpt_init(&t, 12);
    /* as test_gpt_grad.c: weights N(0, 0.3), LayerNorm weights 1 + N(0, 0.3), so every path
     * carries signal; the teacher N(0, 1): sharper distributions than the student's */
    lmd_rng r;
    lmd_rng_seed(&r, 99, 1);
    for (size_t i = 0; i < m.num_params; i++)
        m.params_memory[i] = (float)(0.3 * lmd_rng_normal(&r));
    for (size_t i = 0; i < t.num_params; i++) t.params_memory[i] = (float)lmd_rng_normal(&r);
    for (int l = 0; l < sc.n_layer; l++)
        for (int i = 0; i < sc.n_embd; i++)
            m.params.ln1w[l * sc.n_embd + i] += 1.0f, m.params.ln2w[l * sc.n_embd + i] += 1.0f;
    for (int i = 0; i < sc.n_embd; i++) m.params.lnfw[i] += 1.0f;
    float *tcopy = lmd_calloc(t.num_params, 4);
    memcpy(tcopy, t.params_memory, t.num_params * 4);
    int B = 2, T = 6;
    int in[12], tg[12];
    for (int i = 0; i < B * T; i++) in[i] = (i * 5 + 3) % 13, tg[i] = (i * 7 + 1) % 13;
    model_ctx c = {&m, in, tg, B, T, lmd_disp_default(), {&t, 0.6, 2.0}};
    c.disp.variant = with_disp ? DISP_DECORRELATION : DISP_OFF;
    if (no_teacher) c.kd.teacher = NULL;
    c.disp.coeff = 0.5;
    size_t L1BTC = (size_t)(sc.n_layer + 1) * B * T * sc.n_embd;
    float *dh = lmd_calloc(L1BTC, 4);
    lmd_rng rng;
    lmd_rng_seed(&rng, 7, 3);
    lmd_losses l = lmd_forward_backward_kd(&m, in, tg, B, T, &c.disp, &c.kd, &rng, dh, 1);
    printf("student (%s%s): loss %.6f = (1-a) ce %.6f + a T^2 kl %.6f + coeff disp %.6f\n",
           with_disp ? "decorrelation" : "no dispersion", no_teacher ? ", no teacher" : "", l.loss,
           l.ce, l.kl, l.disp);
    double want = no_teacher ? l.ce + 0.5 * l.disp : 0.4 * l.ce + 0.6 * 4.0 * l.kl + 0.5 * l.disp;
    TU_CHECK(fabs(l.loss - want) < 1e-9, "loss composition");
    TU_CHECK(t.grads_memory == NULL && t.m_memory == NULL, "the teacher got gradient buffers");
    float *grads = lmd_calloc(m.num_params, 4);
    memcpy(grads, m.grads_memory, m.num_params * 4);
    const double h = 1e-2;
    for (int k = 0; k < GPT_NUM_TENSORS; k++) {
        size_t n = gpt_tensor_numel(&sc, k), off = (size_t)(m.params.t[k] - m.params_memory);
        size_t stride = n > 40 ? n / 40 : 1, cnt = 0;
        double gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grads[off + i]));
        double *fd = lmd_calloc(n, 8);
        float *an = lmd_calloc(n, 4);
        for (size_t i = 0; i < n; i += stride) {
            float *p = m.params_memory + off + i, old = *p;
            *p = old + (float)h;
            double lp = model_loss(&c);
            *p = old - (float)h;
            double lm = model_loss(&c);
            *p = old;
            fd[cnt] = (lp - lm) / (2 * h);
            an[cnt++] = grads[off + i];
        }
        gpt_tensor_info info;
        gpt_tensor_describe(&sc, k, &info);
        char label[128];
        snprintf(label, sizeof label, "fd %s%s %s (max|g|=%.2e)", no_teacher ? "ce" : "kd",
                 with_disp ? "+disp" : "", info.name, gmax);
        tu_compare(label, an, fd, cnt, 1e-4 + 5e-4 * gmax, 0.0);
        free(fd), free(an);
    }
    TU_CHECK(!memcmp(tcopy, t.params_memory, t.num_params * 4), "the teacher's weights changed");
    free(grads), free(dh), free(tcopy);
    gpt_free(&m), gpt_free(&t);
}

int main(void) {
    test_reference();
    test_model(0, 0);
    test_model(1, 0);
    return tu_summary("test_distill");
}
