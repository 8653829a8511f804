/* test_hfarch.c — consistency checks of the pretrained forward passes (model/hfarch.c) on tiny
 * random models held in memory (a test hf_tensor_source over named arrays; tensor names and
 * shapes written here from HF.md, not taken from hfarch.c).
 *
 * These catch semantic slips cheaply; the real check is tests/hf's PyTorch reference.
 *   - gpt2 equals lmdisp's own GPT (DESIGN 2 is GPT-2) with its weights transposed into
 *     Conv1D layout, with and without the "transformer." prefix: hidden states and logits;
 *   - GQA with KV < H equals KV = H with each kv head repeated for its group h / (H/KV);
 *   - YaRN with factor 1 equals the default rope;
 *   - a sliding window >= T equals full attention; olmo3 with every layer full equals olmo2;
 *     a window of 2 differs (the mask is applied);
 *   - hf_num_params equals the number of floats the source holds;
 *   - bad token ids, T > n_positions and a missing tensor are refused with the name.
 * Tolerance: max|a - b| / rms(b) per hidden state, bound stated at each check (float32 sums
 * in another order: ~1e-6; identical math: 1e-6 or exact). The worst ratio is printed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"
#include "hfarch.h"
#include "testutil.h"

static lmd_rng rng;

/* ---- an in-memory tensor source ---- */
typedef struct {
    char name[160];
    int ndim;
    int64_t shape[2];
    float *data;
} mem_tensor;

typedef struct {
    mem_tensor t[512];
    int n;
} mem_src;

static mem_tensor *mem_find(mem_src *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

static int mem_get(void *ctx, const char *name, int ndim, const int64_t *shape, float *dst,
                   lmd_err *err) {
    mem_tensor *t = mem_find(ctx, name);
    if (!t) return lmd_errf(err, "memory: tensor %s missing", name);
    if (t->ndim != ndim) return lmd_errf(err, "memory: tensor %s has %d dims", name, t->ndim);
    size_t n = 1;
    for (int k = 0; k < ndim; k++) {
        if (t->shape[k] != shape[k]) return lmd_errf(err, "memory: tensor %s shape", name);
        n *= (size_t)shape[k];
    }
    memcpy(dst, t->data, n * sizeof(float));
    return 0;
}

static int mem_has(void *ctx, const char *name) { return mem_find(ctx, name) != NULL; }

/* row ranges of a 2-D tensor (hf_tensor_source.get_rows_f32) */
static int mem_rows(void *ctx, const char *name, const int64_t *shape, int64_t row0, int64_t nrows,
                    float *dst, lmd_err *err) {
    mem_tensor *t = mem_find(ctx, name);
    if (!t) return lmd_errf(err, "memory: tensor %s missing", name);
    if (t->ndim != 2 || t->shape[0] != shape[0] || t->shape[1] != shape[1])
        return lmd_errf(err, "memory: tensor %s shape", name);
    if (row0 < 0 || nrows < 0 || row0 + nrows > shape[0])
        return lmd_errf(err, "memory: rows of %s out of range", name);
    memcpy(dst, t->data + (size_t)row0 * (size_t)shape[1],
           (size_t)nrows * (size_t)shape[1] * sizeof(float));
    return 0;
}

/* without row reads: the forward converts whole embedding / lm_head tables */
static hf_tensor_source mem_source(mem_src *m) {
    hf_tensor_source s = {m, mem_get, mem_has, NULL};
    return s;
}

static float *mem_add(mem_src *m, const char *name, int ndim, int64_t r, int64_t c) {
    if (m->n >= 512) lmd_die("too many tensors");
    mem_tensor *t = &m->t[m->n++];
    if (snprintf(t->name, sizeof t->name, "%s", name) >= (int)sizeof t->name)
        lmd_die("tensor name too long: %s", name);
    t->ndim = ndim;
    t->shape[0] = r;
    t->shape[1] = ndim == 2 ? c : 1;
    t->data = lmd_calloc((size_t)r * (size_t)t->shape[1], sizeof(float));
    return t->data;
}

static float *mem_rand(mem_src *m, const char *name, int ndim, int64_t r, int64_t c, double std,
                       double mean) {
    float *p = mem_add(m, name, ndim, r, c);
    size_t n = (size_t)r * (size_t)(ndim == 2 ? c : 1);
    for (size_t i = 0; i < n; i++) p[i] = (float)(mean + std * lmd_rng_normal(&rng));
    return p;
}

static size_t mem_numel(const mem_src *m) {
    size_t n = 0;
    for (int i = 0; i < m->n; i++) n += (size_t)m->t[i].shape[0] * (size_t)m->t[i].shape[1];
    return n;
}

static void mem_free(mem_src *m) {
    for (int i = 0; i < m->n; i++) free(m->t[i].data);
    m->n = 0;
}

/* A random llama-family model of config c (names and shapes of HF.md). */
static void make_llama_family(mem_src *m, const hf_arch_config *c) {
    int64_t d = c->hidden_size, IM = c->intermediate_size, hd = c->head_dim;
    int64_t qd = c->n_head * hd, kd = c->n_kv_head * hd;
    int olmo = c->arch == HF_OLMO2 || c->arch == HF_OLMO3;
    char nm[192];
    mem_rand(m, "model.embed_tokens.weight", 2, c->vocab_size, d, 1.0, 0);
    for (int l = 0; l < c->n_layer; l++) {
#define P(s) (snprintf(nm, sizeof nm, "model.layers.%d.%s", l, s), nm)
        if (!olmo) mem_rand(m, P("input_layernorm.weight"), 1, d, 0, 0.1, 1);
        mem_rand(m, P("self_attn.q_proj.weight"), 2, qd, d, 0.3, 0);
        mem_rand(m, P("self_attn.k_proj.weight"), 2, kd, d, 0.3, 0);
        mem_rand(m, P("self_attn.v_proj.weight"), 2, kd, d, 0.3, 0);
        if (c->qkv_bias) {
            mem_rand(m, P("self_attn.q_proj.bias"), 1, qd, 0, 0.1, 0);
            mem_rand(m, P("self_attn.k_proj.bias"), 1, kd, 0, 0.1, 0);
            mem_rand(m, P("self_attn.v_proj.bias"), 1, kd, 0, 0.1, 0);
        }
        if (c->arch == HF_QWEN3) {
            mem_rand(m, P("self_attn.q_norm.weight"), 1, hd, 0, 0.1, 1);
            mem_rand(m, P("self_attn.k_norm.weight"), 1, hd, 0, 0.1, 1);
        } else if (olmo) {
            mem_rand(m, P("self_attn.q_norm.weight"), 1, qd, 0, 0.1, 1);
            mem_rand(m, P("self_attn.k_norm.weight"), 1, kd, 0, 0.1, 1);
        }
        mem_rand(m, P("self_attn.o_proj.weight"), 2, d, qd, 0.2, 0);
        if (c->o_bias) mem_rand(m, P("self_attn.o_proj.bias"), 1, d, 0, 0.1, 0);
        mem_rand(m, P("post_attention_layernorm.weight"), 1, d, 0, 0.1, 1);
        if (olmo) mem_rand(m, P("post_feedforward_layernorm.weight"), 1, d, 0, 0.1, 1);
        mem_rand(m, P("mlp.gate_proj.weight"), 2, IM, d, 0.3, 0);
        mem_rand(m, P("mlp.up_proj.weight"), 2, IM, d, 0.3, 0);
        mem_rand(m, P("mlp.down_proj.weight"), 2, d, IM, 0.2, 0);
        if (c->mlp_bias) {
            mem_rand(m, P("mlp.gate_proj.bias"), 1, IM, 0, 0.1, 0);
            mem_rand(m, P("mlp.up_proj.bias"), 1, IM, 0, 0.1, 0);
            mem_rand(m, P("mlp.down_proj.bias"), 1, d, 0, 0.1, 0);
        }
#undef P
    }
    mem_rand(m, "model.norm.weight", 1, d, 0, 0.1, 1);
    if (!c->tie_word_embeddings) mem_rand(m, "lm_head.weight", 2, c->vocab_size, d, 0.3, 0);
}

static hf_arch_config base_config(hf_arch arch) {
    hf_arch_config c;
    memset(&c, 0, sizeof c);
    c.arch = arch;
    static const char *names[] = {"gpt2", "llama", "qwen2", "qwen3", "olmo2", "olmo3"};
    snprintf(c.model_type, sizeof c.model_type, "%s", names[arch]);
    c.vocab_size = 37;
    c.hidden_size = 32;
    c.n_layer = 3;
    c.n_head = 4;
    c.n_kv_head = 2;
    c.head_dim = 8;
    c.intermediate_size = 48;
    c.max_position = 64;
    c.norm_eps = 1e-5;
    c.rope_theta = 10000.0;
    c.scale_attn_weights = 1;
    c.yarn.truncate = 1;
    return c;
}

/* ---- running a model and comparing ---- */
typedef struct {
    float *h; /* (L1, N, d) */
    int calls, order_ok;
    size_t per;
} collect;

static int on_hidden(void *ctx, int layer, const float *h, int n_seq, int T, int d, lmd_err *e) {
    collect *c = ctx;
    if (layer != c->calls) c->order_ok = 0;
    memcpy(c->h + (size_t)layer * c->per, h, c->per * sizeof(float));
    c->calls++;
    return 0;
}

/* max|a - b| / rms(b) */
static double rel_diff(const float *a, const float *b, size_t n) {
    double ss = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        ss += (double)b[i] * b[i];
        double dd = fabs((double)a[i] - b[i]);
        if (dd > worst || isnan(dd)) worst = dd;
    }
    return worst / sqrt(ss / (double)n);
}

typedef struct {
    float *h, *logits;
    int L1;
    size_t per, nlog;
} run_out;

static int run(const hf_arch_config *c, mem_src *m, const int32_t *tok, int n_seq, int T,
               run_out *o, lmd_err *err) {
    o->L1 = c->n_layer + 1;
    o->per = (size_t)n_seq * T * c->hidden_size;
    o->nlog = (size_t)n_seq * T * c->vocab_size;
    o->h = lmd_calloc((size_t)o->L1 * o->per, sizeof(float));
    o->logits = lmd_calloc(o->nlog, sizeof(float));
    collect col = {o->h, 0, 1, o->per};
    hf_tensor_source s = mem_source(m);
    int rc = hf_forward(c, &s, tok, n_seq, T, on_hidden, &col, o->logits, err);
    TU_CHECK(rc != 0 || (col.calls == o->L1 && col.order_ok),
             "on_hidden called %d times (want %d), in order %d", col.calls, o->L1, col.order_ok);
    if (rc == 0) {
        /* the same forward through row reads (embedding rows gathered, the head streamed in
         * vocabulary chunks) gives the same hidden states and logits */
        float *h2 = lmd_calloc((size_t)o->L1 * o->per, sizeof(float));
        float *l2 = lmd_calloc(o->nlog, sizeof(float));
        collect col2 = {h2, 0, 1, o->per};
        s.get_rows_f32 = mem_rows;
        lmd_err e2 = {{0}};
        int rc2 = hf_forward(c, &s, tok, n_seq, T, on_hidden, &col2, l2, &e2);
        TU_CHECK(rc2 == 0, "forward with row reads failed: %s", e2.msg);
        if (rc2 == 0) {
            double dh = rel_diff(h2, o->h, (size_t)o->L1 * o->per),
                   dl = rel_diff(l2, o->logits, o->nlog);
            TU_CHECK(dh <= 1e-6 && dl <= 1e-6,
                     "row reads change the forward: hidden %.3g, logits %.3g", dh, dl);
        }
        free(h2);
        free(l2);
    }
    return rc;
}

static void run_free(run_out *o) {
    free(o->h);
    free(o->logits);
}

static void compare_runs(const char *what, const run_out *a, const run_out *b, double tol) {
    double worst = 0;
    int wl = 0;
    for (int l = 0; l < a->L1; l++) {
        double r = rel_diff(a->h + (size_t)l * a->per, b->h + (size_t)l * b->per, a->per);
        if (r > worst || isnan(r)) worst = r, wl = l;
    }
    double rl = rel_diff(a->logits, b->logits, a->nlog);
    int ok = worst <= tol && rl <= tol;
    printf("%-52s worst max|diff|/rms: hidden %.2e (layer %d), logits %.2e; bound %.0e %s\n", what,
           worst, wl, rl, tol, ok ? "ok" : "FAIL");
    TU_CHECK(ok, "%s", what);
}

static void random_tokens(int32_t *tok, size_t n, int V) {
    for (size_t i = 0; i < n; i++) tok[i] = (int32_t)lmd_rng_below(&rng, (uint64_t)V);
}

/* ---- gpt2 against lmdisp's GPT ---- */
static void transpose_into(float *dst, const float *src, int rows, int cols) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

static void test_gpt2_vs_lmdisp(const char *prefix) {
    gpt_config gc = {
        .vocab_size = 41, .n_ctx = 24, .n_layer = 3, .n_embd = 32, .n_head = 4, .mlp_dim = 56};
    gpt_model g;
    lmd_err err = {{0}};
    if (gpt_create(&g, &gc, &err)) lmd_die("%s", err.msg);
    gpt_init(&g, 7);
    /* LayerNorm weights and biases away from 1 and 0, so a swapped or missing one shows */
    for (size_t i = 0; i < g.num_params; i++)
        g.params_memory[i] += (float)(0.05 * lmd_rng_normal(&rng));
    const int B = 2, T = 20, C = gc.n_embd, M = gc.mlp_dim, L = gc.n_layer;
    int32_t tok[2 * 20];
    int itok[2 * 20];
    random_tokens(tok, (size_t)B * T, gc.vocab_size);
    for (int i = 0; i < B * T; i++) itok[i] = tok[i];
    gpt_forward(&g, itok, NULL, B, T);

    mem_src m = {0};
    char nm[192];
#define P(s) (snprintf(nm, sizeof nm, "%s%s", prefix, s), nm)
#define PL(s) (snprintf(nm, sizeof nm, "%sh.%d.%s", prefix, l, s), nm)
    memcpy(mem_add(&m, P("wte.weight"), 2, gc.vocab_size, C), g.params.wte,
           (size_t)gc.vocab_size * C * sizeof(float));
    memcpy(mem_add(&m, P("wpe.weight"), 2, gc.n_ctx, C), g.params.wpe,
           (size_t)gc.n_ctx * C * sizeof(float));
    for (int l = 0; l < L; l++) {
        size_t c = C;
        memcpy(mem_add(&m, PL("ln_1.weight"), 1, C, 0), g.params.ln1w + l * c, c * 4);
        memcpy(mem_add(&m, PL("ln_1.bias"), 1, C, 0), g.params.ln1b + l * c, c * 4);
        transpose_into(mem_add(&m, PL("attn.c_attn.weight"), 2, C, 3 * C),
                       g.params.qkvw + l * 3 * c * c, 3 * C, C);
        memcpy(mem_add(&m, PL("attn.c_attn.bias"), 1, 3 * C, 0), g.params.qkvb + l * 3 * c,
               3 * c * 4);
        transpose_into(mem_add(&m, PL("attn.c_proj.weight"), 2, C, C),
                       g.params.attprojw + l * c * c, C, C);
        memcpy(mem_add(&m, PL("attn.c_proj.bias"), 1, C, 0), g.params.attprojb + l * c, c * 4);
        memcpy(mem_add(&m, PL("ln_2.weight"), 1, C, 0), g.params.ln2w + l * c, c * 4);
        memcpy(mem_add(&m, PL("ln_2.bias"), 1, C, 0), g.params.ln2b + l * c, c * 4);
        transpose_into(mem_add(&m, PL("mlp.c_fc.weight"), 2, C, M),
                       g.params.fcw + l * (size_t)M * c, M, C);
        memcpy(mem_add(&m, PL("mlp.c_fc.bias"), 1, M, 0), g.params.fcb + l * (size_t)M,
               (size_t)M * 4);
        transpose_into(mem_add(&m, PL("mlp.c_proj.weight"), 2, M, C),
                       g.params.fcprojw + l * (size_t)M * c, C, M);
        memcpy(mem_add(&m, PL("mlp.c_proj.bias"), 1, C, 0), g.params.fcprojb + l * c, c * 4);
    }
    memcpy(mem_add(&m, P("ln_f.weight"), 1, C, 0), g.params.lnfw, (size_t)C * 4);
    memcpy(mem_add(&m, P("ln_f.bias"), 1, C, 0), g.params.lnfb, (size_t)C * 4);
#undef P
#undef PL
    hf_arch_config c = base_config(HF_GPT2);
    c.vocab_size = gc.vocab_size, c.hidden_size = C, c.n_layer = L, c.n_head = gc.n_head;
    c.n_kv_head = gc.n_head, c.head_dim = C / gc.n_head, c.intermediate_size = M;
    c.max_position = gc.n_ctx, c.tie_word_embeddings = 1;
    run_out o;
    if (run(&c, &m, tok, B, T, &o, &err)) {
        TU_CHECK(0, "gpt2 forward failed: %s", err.msg);
    } else {
        run_out ref = {lmd_calloc((size_t)(L + 1) * o.per, 4), g.acts.logits, L + 1, o.per, o.nlog};
        for (int l = 0; l <= L; l++)
            memcpy(ref.h + (size_t)l * o.per, gpt_hidden_state(&g, l), o.per * 4);
        char what[96];
        snprintf(what, sizeof what, "gpt2 (prefix \"%s\") = lmdisp GPT", prefix);
        compare_runs(what, &o, &ref, 2e-5);
        free(ref.h);
        TU_CHECK(hf_num_params(&c) == (int64_t)mem_numel(&m) &&
                     hf_num_params(&c) == (int64_t)gpt_num_params(&gc),
                 "gpt2 n_params %lld, source %zu, lmdisp %zu", (long long)hf_num_params(&c),
                 mem_numel(&m), gpt_num_params(&gc));
        run_free(&o);
    }
    /* T > n_positions refused */
    int32_t *longtok = lmd_calloc(2 * 25, sizeof(int32_t));
    hf_tensor_source s = mem_source(&m);
    err.msg[0] = 0;
    int rc = hf_forward(&c, &s, longtok, 2, 25, NULL, NULL, NULL, &err);
    TU_CHECK(rc != 0 && strstr(err.msg, "n_positions"), "T > n_positions: rc %d '%s'", rc, err.msg);
    free(longtok);
    mem_free(&m);
    gpt_free(&g);
}

/* ---- llama family ---- */
static void test_gqa_repeat(hf_arch arch) {
    hf_arch_config c = base_config(arch);
    c.qkv_bias = arch == HF_QWEN2 || arch == HF_LLAMA;
    c.o_bias = arch == HF_LLAMA;
    c.mlp_bias = arch == HF_LLAMA;
    mem_src a = {0}, b = {0};
    make_llama_family(&a, &c);
    hf_arch_config cb = c;
    cb.n_kv_head = c.n_head;
    /* b: the same tensors, with k/v (weights, biases, olmo's k_norm) repeated per group */
    int group = c.n_head / c.n_kv_head, hd = c.head_dim, d = c.hidden_size;
    for (int i = 0; i < a.n; i++) {
        mem_tensor *t = &a.t[i];
        int kv = strstr(t->name, "k_proj") || strstr(t->name, "v_proj") ||
                 (strstr(t->name, "k_norm") && arch != HF_QWEN3);
        if (!kv) {
            size_t n = (size_t)t->shape[0] * (size_t)t->shape[1];
            memcpy(mem_add(&b, t->name, t->ndim, t->shape[0], t->shape[1]), t->data, n * 4);
            continue;
        }
        /* rows (or elements) of kv head g = h / group for every query head h */
        int cols = t->ndim == 2 ? d : 1;
        float *dst = mem_add(&b, t->name, t->ndim, (int64_t)c.n_head * hd, t->ndim == 2 ? d : 0);
        for (int h = 0; h < c.n_head; h++)
            memcpy(dst + (size_t)h * hd * cols, t->data + (size_t)(h / group) * hd * cols,
                   (size_t)hd * cols * 4);
    }
    int32_t tok[3 * 17];
    random_tokens(tok, 3 * 17, c.vocab_size);
    lmd_err err = {{0}};
    run_out oa, ob;
    int ra = run(&c, &a, tok, 3, 17, &oa, &err);
    TU_CHECK(ra == 0, "%s GQA forward: %s", c.model_type, err.msg);
    int rb = run(&cb, &b, tok, 3, 17, &ob, &err);
    TU_CHECK(rb == 0, "%s MHA forward: %s", c.model_type, err.msg);
    if (!ra && !rb) {
        char what[96];
        snprintf(what, sizeof what, "%s GQA KV=2 = KV=H with kv heads repeated", c.model_type);
        /* The same function in float32 along different paths: k/v products with 2 heads'
         * columns, shared by each group in attention, against H heads' products. Their sums
         * round differently: up to 4.1e-6 after 4 layers on the AMD EPYC host of 2026-12-02
         * (any OPENBLAS_CORETYPE), below 1e-6 on the Skylake-X host before. 1e-5 is ~100
         * float32 ulps, while a wrong head mapping differs by O(1); accuracy itself is the
         * float64 reference's test (2e-4). */
        compare_runs(what, &oa, &ob, 1e-5);
        TU_CHECK(hf_num_params(&c) == (int64_t)mem_numel(&a), "%s n_params %lld vs %zu",
                 c.model_type, (long long)hf_num_params(&c), mem_numel(&a));
    }
    if (!ra) run_free(&oa);
    if (!rb) run_free(&ob);
    mem_free(&a);
    mem_free(&b);
}

static void test_rope_and_windows(void) {
    lmd_err err = {{0}};
    int32_t tok[2 * 40];
    random_tokens(tok, 2 * 40, 37);
    /* olmo3 all-full with default rope = olmo2 */
    hf_arch_config c2 = base_config(HF_OLMO2);
    c2.n_layer = 4;
    c2.max_position = 4096;
    mem_src m = {0};
    make_llama_family(&m, &c2);
    run_out o2, o3, o3y, o3w, o3s;
    TU_CHECK(run(&c2, &m, tok, 2, 40, &o2, &err) == 0, "olmo2: %s", err.msg);

    hf_arch_config c3 = c2;
    c3.arch = HF_OLMO3;
    snprintf(c3.model_type, sizeof c3.model_type, "olmo3");
    unsigned char full[4] = {0, 0, 0, 0}, wide[4] = {1, 1, 1, 0}, narrow[4] = {1, 1, 1, 0};
    c3.layer_sliding = full;
    c3.sliding_window = 4096;
    TU_CHECK(run(&c3, &m, tok, 2, 40, &o3, &err) == 0, "olmo3: %s", err.msg);
    compare_runs("olmo3 with every layer full = olmo2", &o3, &o2, 0.0);

    /* YaRN with factor 1 (attention factor 1, interpolation = extrapolation) = default */
    hf_arch_config cy = c3;
    cy.rope_type = HF_ROPE_YARN;
    cy.yarn.factor = 1.0;
    cy.yarn.original_max_position = 4096;
    cy.yarn.beta_fast = 32, cy.yarn.beta_slow = 1;
    TU_CHECK(run(&cy, &m, tok, 2, 40, &o3y, &err) == 0, "olmo3 yarn: %s", err.msg);
    compare_runs("olmo3 YaRN factor 1 = default rope", &o3y, &o2, 1e-6);

    /* sliding layers with a window >= T = full attention */
    hf_arch_config cw = c3;
    cw.layer_sliding = wide;
    cw.sliding_window = 40;
    TU_CHECK(run(&cw, &m, tok, 2, 40, &o3w, &err) == 0, "olmo3 window 40: %s", err.msg);
    compare_runs("olmo3 sliding window 40 >= T = full", &o3w, &o2, 0.0);

    /* a window of 2 changes layer 1 on (the mask is applied) but not the embedding */
    hf_arch_config cs = c3;
    cs.layer_sliding = narrow;
    cs.sliding_window = 2;
    TU_CHECK(run(&cs, &m, tok, 2, 40, &o3s, &err) == 0, "olmo3 window 2: %s", err.msg);
    double r0 = rel_diff(o3s.h, o2.h, o2.per), r1 = rel_diff(o3s.h + o2.per, o2.h + o2.per, o2.per);
    printf("olmo3 window 2 vs full: layer 0 %.2e (want 0), layer 1 %.2e (want > 1e-2)\n", r0, r1);
    TU_CHECK(r0 == 0.0 && r1 > 1e-2, "window 2: %.2e %.2e", r0, r1);
    /* a window of 2 at position 0 and 1 sees everything causal: rows 0,1 of layer 1 agree */
    double r01 = rel_diff(o3s.h + o2.per, o2.h + o2.per, 2 * (size_t)c2.hidden_size);
    TU_CHECK(r01 < 1e-6, "window 2, positions 0-1 differ from full by %.2e", r01);

    /* YaRN factor 8 changes the full layer (3) only: layers 1..3 equal the default with
     * sliding 1..3 ... check that the full layer's output moves */
    hf_arch_config cy8 = cw;
    cy8.rope_type = HF_ROPE_YARN;
    cy8.yarn.factor = 8.0;
    cy8.yarn.original_max_position = 512;
    run_out o8;
    TU_CHECK(run(&cy8, &m, tok, 2, 40, &o8, &err) == 0, "olmo3 yarn 8: %s", err.msg);
    double e3 = rel_diff(o8.h + 3 * o2.per, o3w.h + 3 * o2.per, o2.per);
    double e4 = rel_diff(o8.h + 4 * o2.per, o3w.h + 4 * o2.per, o2.per);
    printf("olmo3 YaRN factor 8: layers 1-3 (sliding, default rope) %.2e (want 0), "
           "layer 4 (full) %.2e (want > 1e-3)\n",
           e3, e4);
    TU_CHECK(e3 == 0.0 && e4 > 1e-3, "yarn 8: %.2e %.2e", e3, e4);
    run_free(&o8);
    run_free(&o2);
    run_free(&o3);
    run_free(&o3y);
    run_free(&o3w);
    run_free(&o3s);

    /* refusals: bad token id, missing tensor named */
    hf_tensor_source s = mem_source(&m);
    int32_t bad[4] = {1, 2, 37, 3};
    err.msg[0] = 0;
    int rc = hf_forward(&c2, &s, bad, 1, 4, NULL, NULL, NULL, &err);
    TU_CHECK(rc != 0 && strstr(err.msg, "37"), "bad token: rc %d '%s'", rc, err.msg);
    mem_tensor *t = mem_find(&m, "model.layers.2.mlp.up_proj.weight");
    t->name[0] = 'X';
    err.msg[0] = 0;
    rc = hf_forward(&c2, &s, tok, 1, 4, NULL, NULL, NULL, &err);
    printf("missing tensor: %s\n", err.msg);
    TU_CHECK(rc != 0 && strstr(err.msg, "model.layers.2.mlp.up_proj.weight"), "missing: '%s'",
             err.msg);
    mem_free(&m);
}

int main(void) {
    lmd_rng_seed(&rng, 15, 0);
    test_gpt2_vs_lmdisp("");
    test_gpt2_vs_lmdisp("transformer.");
    test_gqa_repeat(HF_LLAMA);
    test_gqa_repeat(HF_QWEN2);
    test_gqa_repeat(HF_QWEN3);
    test_gqa_repeat(HF_OLMO2);
    test_rope_and_windows();
    return tu_summary("test_hfarch");
}
