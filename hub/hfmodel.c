/* hfmodel.c — an HF model opened for the forward passes (hfmodel.h): the tensor list each
 * architecture expects (HF.md "Tensor names and shapes") checked against the weights before
 * the first forward, and the hf_tensor_source that serves them as float32. */
#include "hfmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One expected tensor; dims labelled with the config fields they come from. */
typedef struct {
    char name[160];
    int ndim;
    int64_t shape[2];
    const char *label[2];
} expect;

typedef struct {
    expect *e;
    int n, cap;
} expect_list;

static void want(expect_list *l, const char *prefix, const char *suffix, int ndim, int64_t r,
                 const char *lr, int64_t c, const char *lc) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        expect *ne = realloc(l->e, (size_t)l->cap * sizeof *ne);
        if (!ne) lmd_die("out of memory");
        l->e = ne;
    }
    expect *x = &l->e[l->n++];
    memset(x, 0, sizeof *x);
    if (snprintf(x->name, sizeof x->name, "%s%s", prefix, suffix) >= (int)sizeof x->name)
        lmd_die("tensor name too long: %s%s", prefix, suffix);
    x->ndim = ndim;
    x->shape[0] = r;
    x->label[0] = lr;
    x->shape[1] = c;
    x->label[1] = lc;
}

static int is_olmo(const hf_arch_config *c) { return c->arch == HF_OLMO2 || c->arch == HF_OLMO3; }

/* Every tensor the architecture reads, prefix = gpt2's "transformer." or "". The lm_head is
 * listed iff untied. */
static void expected_tensors(const hf_arch_config *c, const char *prefix, expect_list *l) {
    int64_t V = c->vocab_size, d = c->hidden_size, I = c->intermediate_size, hd = c->head_dim;
    int64_t qd = (int64_t)c->n_head * hd, kd = (int64_t)c->n_kv_head * hd;
    char p[128];
    if (c->arch == HF_GPT2) {
        const char *D = "n_embd", *D3 = "3 x n_embd", *NI = "n_inner";
        want(l, prefix, "wte.weight", 2, V, "vocab_size", d, D);
        want(l, prefix, "wpe.weight", 2, c->max_position, "n_positions", d, D);
        for (int i = 0; i < c->n_layer; i++) {
            snprintf(p, sizeof p, "%sh.%d.", prefix, i);
            want(l, p, "ln_1.weight", 1, d, D, 0, NULL);
            want(l, p, "ln_1.bias", 1, d, D, 0, NULL);
            want(l, p, "attn.c_attn.weight", 2, d, D, 3 * d, D3); /* Conv1D: [in, out] */
            want(l, p, "attn.c_attn.bias", 1, 3 * d, D3, 0, NULL);
            want(l, p, "attn.c_proj.weight", 2, d, D, d, D);
            want(l, p, "attn.c_proj.bias", 1, d, D, 0, NULL);
            want(l, p, "ln_2.weight", 1, d, D, 0, NULL);
            want(l, p, "ln_2.bias", 1, d, D, 0, NULL);
            want(l, p, "mlp.c_fc.weight", 2, d, D, I, NI);
            want(l, p, "mlp.c_fc.bias", 1, I, NI, 0, NULL);
            want(l, p, "mlp.c_proj.weight", 2, I, NI, d, D);
            want(l, p, "mlp.c_proj.bias", 1, d, D, 0, NULL);
        }
        want(l, prefix, "ln_f.weight", 1, d, D, 0, NULL);
        want(l, prefix, "ln_f.bias", 1, d, D, 0, NULL);
        if (!c->tie_word_embeddings) want(l, "", "lm_head.weight", 2, V, "vocab_size", d, D);
        return;
    }
    const char *D = "hidden_size", *IS = "intermediate_size",
               *QD = "num_attention_heads x head_dim", *KD = "num_key_value_heads x head_dim",
               *HD = "head_dim";
    want(l, "", "model.embed_tokens.weight", 2, V, "vocab_size", d, D);
    for (int i = 0; i < c->n_layer; i++) {
        snprintf(p, sizeof p, "model.layers.%d.", i);
        if (!is_olmo(c)) want(l, p, "input_layernorm.weight", 1, d, D, 0, NULL);
        want(l, p, "self_attn.q_proj.weight", 2, qd, QD, d, D);
        want(l, p, "self_attn.k_proj.weight", 2, kd, KD, d, D);
        want(l, p, "self_attn.v_proj.weight", 2, kd, KD, d, D);
        if (c->qkv_bias) {
            want(l, p, "self_attn.q_proj.bias", 1, qd, QD, 0, NULL);
            want(l, p, "self_attn.k_proj.bias", 1, kd, KD, 0, NULL);
            want(l, p, "self_attn.v_proj.bias", 1, kd, KD, 0, NULL);
        }
        if (c->arch == HF_QWEN3) {
            want(l, p, "self_attn.q_norm.weight", 1, hd, HD, 0, NULL);
            want(l, p, "self_attn.k_norm.weight", 1, hd, HD, 0, NULL);
        } else if (is_olmo(c)) {
            want(l, p, "self_attn.q_norm.weight", 1, qd, QD, 0, NULL);
            want(l, p, "self_attn.k_norm.weight", 1, kd, KD, 0, NULL);
        }
        want(l, p, "self_attn.o_proj.weight", 2, d, D, qd, QD);
        if (c->o_bias) want(l, p, "self_attn.o_proj.bias", 1, d, D, 0, NULL);
        want(l, p, "post_attention_layernorm.weight", 1, d, D, 0, NULL);
        if (is_olmo(c)) want(l, p, "post_feedforward_layernorm.weight", 1, d, D, 0, NULL);
        want(l, p, "mlp.gate_proj.weight", 2, I, IS, d, D);
        want(l, p, "mlp.up_proj.weight", 2, I, IS, d, D);
        want(l, p, "mlp.down_proj.weight", 2, d, D, I, IS);
        if (c->mlp_bias) {
            want(l, p, "mlp.gate_proj.bias", 1, I, IS, 0, NULL);
            want(l, p, "mlp.up_proj.bias", 1, I, IS, 0, NULL);
            want(l, p, "mlp.down_proj.bias", 1, d, D, 0, NULL);
        }
    }
    want(l, "", "model.norm.weight", 1, d, D, 0, NULL);
    if (!c->tie_word_embeddings) want(l, "", "lm_head.weight", 2, V, "vocab_size", d, D);
}

/* Buffers that old checkpoints carry and HF ignores on load (not parameters). */
static int ignored_buffer(const hf_arch_config *c, const char *name) {
    size_t n = strlen(name);
#define ENDS(s) (n >= sizeof(s) - 1 && strcmp(name + n - (sizeof(s) - 1), s) == 0)
    if (c->arch == HF_GPT2) return ENDS(".attn.bias") || ENDS(".attn.masked_bias");
    return ENDS(".self_attn.rotary_emb.inv_freq");
#undef ENDS
}

static void shape_str(char *out, size_t n, int ndim, const int64_t *shape,
                      const char *const *label) {
    size_t w = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < ndim && w < n; i++) {
        if (label && label[i])
            w += (size_t)snprintf(out + w, n - w, "%s%lld (%s)", i ? ", " : "", (long long)shape[i],
                                  label[i]);
        else
            w += (size_t)snprintf(out + w, n - w, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (w < n) snprintf(out + w, n - w, "]");
}

/* What the tensor source needs, on the heap so a hub_model may be copied or moved. */
typedef struct {
    const st_set *weights;
    hf_arch arch;
    char dir[4096];
} source_ctx;

/* The weights' file to name in a message: the single file, or the index. */
static const char *weights_name(const st_set *w, const char *dir, char *buf, size_t n) {
    if (st_file_count(w) == 1) return st_file_path(w, 0);
    snprintf(buf, n, "%s/model.safetensors.index.json", dir);
    return buf;
}

/* name as stored: the name itself, or with gpt2's "transformer." prefix added or removed, so
 * the forward pass may ask with either spelling. */
static const st_tensor *lookup(const source_ctx *m, const char *name) {
    const st_tensor *t = st_find(m->weights, name);
    if (t || m->arch != HF_GPT2) return t;
    static const char pre[] = "transformer.";
    if (strncmp(name, pre, sizeof pre - 1) == 0) return st_find(m->weights, name + sizeof pre - 1);
    char alt[512];
    if ((size_t)snprintf(alt, sizeof alt, "%s%s", pre, name) >= sizeof alt) return NULL;
    return st_find(m->weights, alt);
}

static int src_has(void *ctx, const char *name) { return lookup(ctx, name) != NULL; }

/* The tensor `name` with the expected shape and a readable dtype, or NULL with a message. */
static const st_tensor *src_checked(const source_ctx *m, const char *name, int ndim,
                                    const int64_t *shape, lmd_err *err) {
    const st_tensor *t = lookup(m, name);
    char buf[4200];
    if (!t) {
        lmd_errf(err, "%s: no tensor \"%s\"", weights_name(m->weights, m->dir, buf, sizeof buf),
                 name);
        return NULL;
    }
    const char *file = st_file_path(m->weights, t->file);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[256], b[256];
        shape_str(a, sizeof a, t->ndim, t->shape, NULL);
        shape_str(b, sizeof b, ndim, shape, NULL);
        lmd_errf(err, "%s: tensor \"%s\" has shape %s, the forward pass expects %s", file, t->name,
                 a, b);
        return NULL;
    }
    if (!st_dtype_readable(t->dtype)) {
        lmd_errf(err, "%s: tensor \"%s\" has dtype %s; lmdisp reads F32, BF16 and F16", file,
                 t->name, st_dtype_name(t->dtype));
        return NULL;
    }
    return t;
}

static int src_get_f32(void *ctx, const char *name, int ndim, const int64_t *shape, float *dst,
                       lmd_err *err) {
    const source_ctx *m = ctx;
    const st_tensor *t = src_checked(m, name, ndim, shape, err);
    if (!t) return -1;
    st_read_f32(m->weights, t, dst);
    return 0;
}

/* rows [row0, row0 + nrows) of a 2-D tensor (hf_tensor_source.get_rows_f32) */
static int src_get_rows_f32(void *ctx, const char *name, const int64_t *shape, int64_t row0,
                            int64_t nrows, float *dst, lmd_err *err) {
    const source_ctx *m = ctx;
    const st_tensor *t = src_checked(m, name, 2, shape, err);
    if (!t) return -1;
    if (row0 < 0 || nrows < 0 || row0 > shape[0] || nrows > shape[0] - row0)
        return lmd_errf(err, "%s: rows [%lld, %lld) of tensor \"%s\" asked, it has %lld",
                        st_file_path(m->weights, t->file), (long long)row0,
                        (long long)(row0 + nrows), t->name, (long long)shape[0]);
    st_read_f32_range(m->weights, t, (uint64_t)row0 * (uint64_t)shape[1],
                      (uint64_t)nrows * (uint64_t)shape[1], dst);
    return 0;
}

/* Every expected tensor present with its shape and a readable dtype; nothing else but ignored
 * buffers (and a tied model's redundant lm_head). Counts n_params. */
static int validate(hub_model *m, lmd_err *err) {
    const hf_arch_config *c = &m->cfg;
    char cfgpath[4200], wbuf[4200];
    lmd_pathf(cfgpath, "%s/config.json", m->dir);
    const char *wname = weights_name(m->weights, m->dir, wbuf, sizeof wbuf);
    const char *prefix = "";
    if (c->arch == HF_GPT2) {
        if (st_find(m->weights, "transformer.wte.weight"))
            prefix = "transformer.";
        else if (!st_find(m->weights, "wte.weight"))
            return lmd_errf(
                err,
                "%s: no tensor \"wte.weight\" (nor \"transformer.wte.weight\"): not gpt2 weights",
                wname);
    }
    expect_list l = {0};
    expected_tensors(c, prefix, &l);
    int rc = 0, ns = st_count(m->weights);
    unsigned char *used = lmd_calloc((size_t)ns + 1, 1);
    int64_t nparams = 0;
    for (int i = 0; i < l.n && !rc; i++) {
        const expect *x = &l.e[i];
        const st_tensor *t = st_find(m->weights, x->name);
        char es[320];
        shape_str(es, sizeof es, x->ndim, x->shape, x->label);
        if (!t) {
            if (strcmp(x->name, "lm_head.weight") == 0)
                rc = lmd_errf(
                    err,
                    "%s: no tensor \"lm_head.weight\", but %s says tie_word_embeddings is "
                    "false%s; HF would initialise the head at random, lmdisp refuses",
                    wname, cfgpath,
                    c->arch == HF_GPT2 ? "" : " (the default for this model_type when absent)");
            else
                rc = lmd_errf(err,
                              "%s: tensor \"%s\" %s is missing (model_type %s, as %s describes it)",
                              wname, x->name, es, c->model_type, cfgpath);
            break;
        }
        const char *file = st_file_path(m->weights, t->file);
        int same = t->ndim == x->ndim;
        for (int k = 0; same && k < x->ndim; k++) same = t->shape[k] == x->shape[k];
        if (!same) {
            char ts[256];
            shape_str(ts, sizeof ts, t->ndim, t->shape, NULL);
            rc = lmd_errf(
                err,
                "%s: tensor \"%s\" has shape %s, but %s implies %s: weights and config disagree",
                file, x->name, ts, cfgpath, es);
            break;
        }
        if (!st_dtype_readable(t->dtype)) {
            rc = lmd_errf(err, "%s: tensor \"%s\" has dtype %s; lmdisp reads F32, BF16 and F16",
                          file, x->name, st_dtype_name(t->dtype));
            break;
        }
        used[t - st_at(m->weights, 0)] = 1;
        nparams += (int64_t)st_numel(t);
    }
    /* Anything else is a weight lmdisp would silently drop: refused (except known buffers,
     * and lm_head.weight of a tied model, which HF overwrites with the embedding). */
    for (int i = 0; i < ns && !rc; i++) {
        const st_tensor *t = st_at(m->weights, i);
        if (used[i] || ignored_buffer(c, t->name)) continue;
        if (c->tie_word_embeddings && strcmp(t->name, "lm_head.weight") == 0) continue;
        const char *file = st_file_path(m->weights, t->file);
        int layer = -1;
        const char *lp = c->arch == HF_GPT2 ? "h." : "model.layers.";
        const char *nm = t->name;
        if (c->arch == HF_GPT2 && strncmp(nm, "transformer.", 12) == 0) nm += 12;
        if (strncmp(nm, lp, strlen(lp)) == 0) layer = atoi(nm + strlen(lp));
        if (layer >= c->n_layer)
            rc = lmd_errf(
                err,
                "%s: tensor \"%s\" belongs to layer %d, but %s says %s is %d: weights and config "
                "disagree",
                file, t->name, layer, cfgpath, c->arch == HF_GPT2 ? "n_layer" : "num_hidden_layers",
                c->n_layer);
        else
            rc = lmd_errf(
                err,
                "%s: unexpected tensor \"%s\": model_type %s as %s describes it has no such "
                "weight (lmdisp refuses weights it would ignore)",
                file, t->name, c->model_type, cfgpath);
    }
    free(used);
    free(l.e);
    m->n_params = nparams;
    return rc;
}

int hub_model_open(hub_model *m, const char *spec, lmd_err *err) {
    memset(m, 0, sizeof *m);
    snprintf(m->spec, sizeof m->spec, "%s", spec);
    if (hub_resolve(spec, m->dir, sizeof m->dir, err)) return -1;
    char cfgpath[4200];
    lmd_pathf(cfgpath, "%s/config.json", m->dir);
    if (hub_config_load(cfgpath, &m->cfg, err)) return -1;
    if (st_open_dir(&m->weights, m->dir, err)) {
        char hint[1200], old[LMD_ERR_LEN];
        if (err && hub_fetch_hint(spec, hint, sizeof hint) == 0) {
            memcpy(old, err->msg, sizeof old);
            lmd_errf(err, "%.700s; fetch it with: %s", old, hint);
        }
        hf_arch_config_free(&m->cfg);
        return -1;
    }
    if (validate(m, err)) {
        hub_model_close(m);
        return -1;
    }
    source_ctx *sc = lmd_calloc(1, sizeof *sc);
    sc->weights = m->weights;
    sc->arch = m->cfg.arch;
    snprintf(sc->dir, sizeof sc->dir, "%s", m->dir);
    m->src.ctx = sc;
    m->src.get_f32 = src_get_f32;
    m->src.has = src_has;
    m->src.get_rows_f32 = src_get_rows_f32;
    return 0;
}

void hub_model_close(hub_model *m) {
    if (!m) return;
    st_close(m->weights);
    m->weights = NULL;
    hf_arch_config_free(&m->cfg);
    free(m->src.ctx);
    memset(&m->src, 0, sizeof m->src);
}
