/* anymodel.c — lmdisp checkpoints and HF models behind one forward (anymodel.h). */
#include "anymodel.h"
#include "tokfile.h"
#include "datasrc.h"
#include "geompipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lmd_anymodel_open(lmd_anymodel *m, const char *spec, lmd_err *err) {
    memset(m, 0, sizeof *m);
    if (hub_is_model_form(spec)) {
        if (hub_model_open(&m->hm, spec, err)) return -1;
        m->is_hf = 1;
        const hf_arch_config *c = &m->hm.cfg;
        snprintf(m->model_type, sizeof m->model_type, "%s", c->model_type);
        m->n_layer = c->n_layer;
        m->hidden_size = c->hidden_size;
        m->vocab_size = c->vocab_size;
        m->max_T = c->arch == HF_GPT2 ? c->max_position : 0;
        m->n_params = m->hm.n_params > 0 ? m->hm.n_params : hf_num_params(c);
        return 0;
    }
    if (lmd_ckpt_load(spec, &m->gm, &m->st, err)) return -1;
    const gpt_config *c = &m->gm.cfg;
    snprintf(m->model_type, sizeof m->model_type, "lmdisp-gpt");
    m->n_layer = c->n_layer;
    m->hidden_size = c->n_embd;
    m->vocab_size = c->vocab_size;
    m->max_T = c->n_ctx;
    m->n_params = (int64_t)gpt_num_params(c);
    return 0;
}

void lmd_anymodel_close(lmd_anymodel *m) {
    if (m->is_hf) {
        hub_model_close(&m->hm);
        hf_forward_release();
    } else
        gpt_free(&m->gm);
    memset(m, 0, sizeof *m);
}

int lmd_anymodel_forward(lmd_anymodel *m, const int32_t *tokens, int n_seq, int T,
                         hf_hidden_fn on_hidden, void *ctx, float *logits, lmd_err *err) {
    if (m->max_T > 0 && T > m->max_T)
        return lmd_errf(err, "sequence length %d exceeds the model's %d positions", T, m->max_T);
    if (m->is_hf)
        return hf_forward(&m->hm.cfg, &m->hm.src, tokens, n_seq, T, on_hidden, ctx, logits, err);
    const size_t N = (size_t)n_seq * T;
    int *inp = lmd_calloc(N, sizeof *inp);
    for (size_t i = 0; i < N; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->vocab_size) {
            free(inp);
            return lmd_errf(err,
                            "token id %d (sequence %zu, position %zu) is outside the "
                            "vocabulary of %d",
                            (int)tokens[i], i / T, i % T, m->vocab_size);
        }
        inp[i] = tokens[i];
    }
    gpt_forward(&m->gm, inp, NULL, n_seq, T);
    free(inp);
    for (int l = 0; l <= m->n_layer; l++)
        if (on_hidden &&
            on_hidden(ctx, l, gpt_hidden_state(&m->gm, l), n_seq, T, m->hidden_size, err))
            return -1;
    if (logits) memcpy(logits, m->gm.acts.logits, N * (size_t)m->vocab_size * sizeof(float));
    return 0;
}

typedef struct {
    lmd_geom_acc *acc;
    lmd_geom_pipe *pipe; /* NULL: add on this thread */
    const char *label;
    int n_layer, pass, n_pass;
    double t0, last;
} measure_ctx;

static int measure_hidden(void *ctx, int layer, const float *h, int n_seq, int T, int d,
                          lmd_err *err) {
    measure_ctx *c = ctx;
    if (c->pipe ? lmd_geom_pipe_add(c->pipe, layer, h, n_seq, err)
                : lmd_geom_acc_add(c->acc, layer, h, n_seq, err))
        return -1;
    if (c->label) {
        double now = lmd_now();
        if (now - c->last >= 5.0) {
            double done = (double)c->pass * (c->n_layer + 1) + layer + 1,
                   all = (double)c->n_pass * (c->n_layer + 1);
            double el = now - c->t0;
            fprintf(stderr, "%s: layer %d/%d%s, %.0f s elapsed, ETA %.0f s\n", c->label, layer,
                    c->n_layer, c->n_pass > 1 ? " (one pass of several)" : "", el,
                    el / done * (all - done));
            c->last = now;
        }
    }
    return 0;
}

int lmd_anymodel_measure(lmd_anymodel *m, const int32_t *tokens, int n_seq, int T, int nbins,
                         int chunk, int measure_thread, const char *progress, lmd_geom *out,
                         lmd_err *err) {
    memset(out, 0, sizeof *out);
    if (n_seq < 1 || T < 1)
        return lmd_errf(err, "measure: need at least one sequence of length >= 1 (got %d x %d)",
                        n_seq, T);
    if (chunk <= 0 || chunk > n_seq) chunk = n_seq;
    lmd_geom_acc acc;
    if (lmd_geom_acc_init(&acc, m->n_layer + 1, T, m->hidden_size, nbins, err)) return -1;
    double now = lmd_now();
    measure_ctx c = {&acc, NULL, progress, m->n_layer, 0, (n_seq + chunk - 1) / chunk, now, now};
    if (measure_thread && lmd_geom_pipe_start(&c.pipe, &acc, err)) {
        lmd_geom_acc_free(&acc);
        return -1;
    }
    int rc = 0;
    for (int s = 0; s < n_seq && rc == 0; s += chunk, c.pass++) {
        int b = n_seq - s < chunk ? n_seq - s : chunk;
        rc = lmd_anymodel_forward(m, tokens + (size_t)s * T, b, T, measure_hidden, &c, NULL, err);
    }
    lmd_err perr = {{0}};
    if (lmd_geom_pipe_stop(c.pipe, &perr) && rc == 0) { /* the worker's error, if any */
        *err = perr;
        rc = -1;
    }
    if (rc == 0) rc = lmd_geom_acc_finish(&acc, out, err);
    lmd_geom_acc_free(&acc);
    return rc;
}

int lmd_anymodel_eval_tokens(const lmd_anymodel *m, const char *tokens, int n_seq, int *T,
                             int32_t **ids, lmd_err *err) {
    *ids = NULL;
    if (!tokens)
        return lmd_errf(err, "a pretrained model is measured on a token file of its own "
                             "tokenizer: give --tokens FILE.bin (e.g. from lmdisp tokenize)");
    if (*T == 0) {
        *T = LMD_HF_DEFAULT_SEQ_LEN;
        if (m->max_T > 0 && *T > m->max_T) *T = m->max_T;
    }
    if (m->max_T > 0 && *T > m->max_T)
        return lmd_errf(err, "--seq-len %d exceeds the model's %d positions", *T, m->max_T);
    size_t n = 0, want = (size_t)n_seq * (size_t)*T;
    if (lmd_tokfile_read(tokens, m->vocab_size, 0, want, ids, &n, err))
        return lmd_err_prefix(err, "evaluation set of %d windows of %d tokens", n_seq, *T);
    return 0;
}

int lmd_anymodel_eval_data(const lmd_anymodel *m, const char *data, lmd_paper_sampling *ps,
                           int32_t **ids, size_t **starts, size_t *n_docs, lmd_err *err) {
    *ids = NULL;
    *starts = NULL;
    if (strncmp(data, "tok:", 4) != 0)
        return lmd_errf(err,
                        "--data %s: a pretrained model is measured on text in its own "
                        "tokenization: give --data tok:TOKENIZER:PATH or --tokens FILE.bin",
                        data);
    if (ps->T == 0) {
        ps->T = LMD_HF_DEFAULT_SEQ_LEN;
        if (m->max_T > 0 && ps->T > m->max_T) ps->T = m->max_T;
    }
    if (m->max_T > 0 && ps->T > m->max_T)
        return lmd_errf(err, "--seq-len %d exceeds the model's %d positions", ps->T, m->max_T);
    return lmd_datasrc_paper_sample(data, m->vocab_size, ps, ids, starts, n_docs, err);
}
