/* test_hub_model.c — hub_model_open on tiny models of every architecture written here (gpt2
 * with and without "transformer." and its legacy buffers, llama biases, qwen2 q/k/v biases,
 * qwen3 head_dim != hidden/heads with GQA, olmo2, olmo3 sharded), the tensor source fed to
 * hf_forward, each mismatch between config and weights refused with file and tensor named,
 * and the offline HF cache: refs -> snapshots (symlinks into blobs), missing pieces named with
 * the command that fetches them, and an OLMo series ordered as DESIGN 4.6 says. */
#include "hfmodel.h"
#include "hubtest.h"

#include <math.h>

static char dir[4096];

/* ---- a tiny model writer ---------------------------------------------------------------- */

typedef struct {
    const char *arch; /* model_type */
    int V, d, L, H, KV, hd, I, P;
    int tie, attn_bias, mlp_bias, prefix, legacy;
    const char *dtype; /* F32, BF16 or F16 for every weight */
} tiny;

typedef struct {
    ht_tensor t[512];
    char names[512][96];
    void *bufs[512];
    int n;
    uint64_t seed;
} tlist;

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) / 9007199254740992.0 - 0.5) * 0.2f;
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

static uint16_t to_f16(float f) { /* values here are small normals: truncating rebias is enough */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t s = (u >> 16) & 0x8000, e = (u >> 23) & 0xFF, m = (u >> 13) & 0x3FF;
    if (e < 113) return (uint16_t)s; /* below half's normal range: 0 */
    return (uint16_t)(s | ((e - 112) << 10) | m);
}

static void add(tlist *l, const char *dtype, const char *name, int ndim, int64_t r, int64_t c) {
    int i = l->n++;
    snprintf(l->names[i], sizeof l->names[i], "%s", name);
    size_t numel = (size_t)(ndim >= 1 ? r : 1) * (size_t)(ndim == 2 ? c : 1);
    size_t isz = strcmp(dtype, "F32") == 0 ? 4 : 2;
    unsigned char *b = malloc(numel * isz + 1);
    for (size_t k = 0; k < numel; k++) {
        float v =
            strstr(name, "norm") || strstr(name, "ln_") ? 1.0f + frand(&l->seed) : frand(&l->seed);
        if (isz == 4)
            memcpy(b + 4 * k, &v, 4);
        else {
            uint16_t h = strcmp(dtype, "BF16") == 0 ? to_bf16(v) : to_f16(v);
            b[2 * k] = (unsigned char)h;
            b[2 * k + 1] = (unsigned char)(h >> 8);
        }
    }
    l->bufs[i] = b;
    l->t[i] = (ht_tensor){l->names[i], dtype, ndim, {r, c}, b, numel * isz};
}

static void tl_free(tlist *l) {
    for (int i = 0; i < l->n; i++) free(l->bufs[i]);
    l->n = 0;
}

static void build(const tiny *m, tlist *l) {
    l->n = 0;
    l->seed = 12345;
    const char *D = m->dtype;
    int64_t d = m->d, q = (int64_t)m->H * m->hd, k = (int64_t)m->KV * m->hd;
    char n[128];
    if (strcmp(m->arch, "gpt2") == 0) {
        const char *p = m->prefix ? "transformer." : "";
#define G(s, nd, r, c) (snprintf(n, sizeof n, "%s" s, p), add(l, D, n, nd, r, c))
#define GL(s, nd, r, c) (snprintf(n, sizeof n, "%sh.%d." s, p, i), add(l, D, n, nd, r, c))
        G("wte.weight", 2, m->V, d);
        G("wpe.weight", 2, m->P, d);
        for (int i = 0; i < m->L; i++) {
            GL("ln_1.weight", 1, d, 0);
            GL("ln_1.bias", 1, d, 0);
            GL("attn.c_attn.weight", 2, d, 3 * d);
            GL("attn.c_attn.bias", 1, 3 * d, 0);
            GL("attn.c_proj.weight", 2, d, d);
            GL("attn.c_proj.bias", 1, d, 0);
            GL("ln_2.weight", 1, d, 0);
            GL("ln_2.bias", 1, d, 0);
            GL("mlp.c_fc.weight", 2, d, m->I);
            GL("mlp.c_fc.bias", 1, m->I, 0);
            GL("mlp.c_proj.weight", 2, m->I, d);
            GL("mlp.c_proj.bias", 1, d, 0);
            if (m->legacy) { /* the causal-mask buffer (U8 in old files) and masked_bias (scalar) */
                static unsigned char mask[1024];
                int j = l->n++;
                snprintf(l->names[j], sizeof l->names[j], "%sh.%d.attn.bias", p, i);
                l->bufs[j] = NULL;
                l->t[j] = (ht_tensor){l->names[j], "U8", 4, {1, 1}, mask, 0};
                l->t[j].shape[2] = m->P;
                l->t[j].shape[3] = m->P;
                l->t[j].nbytes = (size_t)m->P * m->P;
                static float masked_bias = -1e4f; /* fixed: the other weights stay as without */
                j = l->n++;
                snprintf(l->names[j], sizeof l->names[j], "%sh.%d.attn.masked_bias", p, i);
                l->bufs[j] = NULL;
                l->t[j] = (ht_tensor){l->names[j], "F32", 0, {0}, &masked_bias, 4};
            }
        }
        G("ln_f.weight", 1, d, 0);
        G("ln_f.bias", 1, d, 0);
        if (!m->tie) add(l, D, "lm_head.weight", 2, m->V, d);
#undef G
#undef GL
        return;
    }
    int olmo = strncmp(m->arch, "olmo", 4) == 0, qwen3 = strcmp(m->arch, "qwen3") == 0,
        qkvb = strcmp(m->arch, "qwen2") == 0 || m->attn_bias;
    add(l, D, "model.embed_tokens.weight", 2, m->V, d);
    for (int i = 0; i < m->L; i++) {
#define LL(s, nd, r, c) (snprintf(n, sizeof n, "model.layers.%d." s, i), add(l, D, n, nd, r, c))
        if (!olmo) LL("input_layernorm.weight", 1, d, 0);
        LL("self_attn.q_proj.weight", 2, q, d);
        LL("self_attn.k_proj.weight", 2, k, d);
        LL("self_attn.v_proj.weight", 2, k, d);
        if (qkvb) {
            LL("self_attn.q_proj.bias", 1, q, 0);
            LL("self_attn.k_proj.bias", 1, k, 0);
            LL("self_attn.v_proj.bias", 1, k, 0);
        }
        if (qwen3) {
            LL("self_attn.q_norm.weight", 1, m->hd, 0);
            LL("self_attn.k_norm.weight", 1, m->hd, 0);
        }
        if (olmo) {
            LL("self_attn.q_norm.weight", 1, q, 0);
            LL("self_attn.k_norm.weight", 1, k, 0);
        }
        LL("self_attn.o_proj.weight", 2, d, q);
        if (m->attn_bias) LL("self_attn.o_proj.bias", 1, d, 0);
        LL("post_attention_layernorm.weight", 1, d, 0);
        if (olmo) LL("post_feedforward_layernorm.weight", 1, d, 0);
        LL("mlp.gate_proj.weight", 2, m->I, d);
        LL("mlp.up_proj.weight", 2, m->I, d);
        LL("mlp.down_proj.weight", 2, d, m->I);
        if (m->mlp_bias) {
            LL("mlp.gate_proj.bias", 1, m->I, 0);
            LL("mlp.up_proj.bias", 1, m->I, 0);
            LL("mlp.down_proj.bias", 1, d, 0);
        }
#undef LL
    }
    add(l, D, "model.norm.weight", 1, d, 0);
    if (!m->tie) add(l, D, "lm_head.weight", 2, m->V, d);
}

static void config_text(const tiny *m, char *out, size_t n, const char *extra) {
    if (strcmp(m->arch, "gpt2") == 0)
        snprintf(out, n,
                 "{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\", "
                 "\"vocab_size\": %d,"
                 " \"n_embd\": %d, \"n_layer\": %d, \"n_head\": %d, \"n_inner\": %d, "
                 "\"n_positions\": %d,"
                 " \"activation_function\": \"gelu_new\"%s%s%s}",
                 m->V, m->d, m->L, m->H, m->I, m->P,
                 m->tie ? "" : ", \"tie_word_embeddings\": false", extra ? ", " : "",
                 extra ? extra : "");
    else
        snprintf(
            out, n,
            "{\"model_type\": \"%s\", \"vocab_size\": %d, \"hidden_size\": %d, "
            "\"num_hidden_layers\": %d,"
            " \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": %d,"
            " \"intermediate_size\": %d, \"max_position_embeddings\": %d, \"tie_word_embeddings\": "
            "%s,"
            " \"attention_bias\": %s, \"rms_norm_eps\": 1e-6, \"torch_dtype\": \"bfloat16\"%s%s%s}",
            m->arch, m->V, m->d, m->L, m->H, m->KV, m->hd, m->I, m->P, m->tie ? "true" : "false",
            m->attn_bias ? "true" : "false", m->mlp_bias ? ", \"mlp_bias\": true" : "",
            extra ? ", " : "", extra ? extra : "");
}

/* Writes DIR/<name>/ with config.json and model.safetensors (data order reversed), or shards. */
static void write_model(char *out, size_t n, const char *name, const tiny *m, const tlist *l,
                        const char *extra_cfg, int shards) {
    snprintf(out, n, "%s/%s", dir, name);
    mkdir(out, 0755);
    char p[4400], cfg[4096];
    config_text(m, cfg, sizeof cfg, extra_cfg);
    snprintf(p, sizeof p, "%s/config.json", out);
    ht_write_text(p, cfg);
    int order[512];
    for (int i = 0; i < l->n; i++) order[i] = l->n - 1 - i;
    if (shards <= 1) {
        snprintf(p, sizeof p, "%s/model.safetensors", out);
        ht_write_st(p, l->t, l->n, order);
        return;
    }
    size_t cap = 65536, w = 0;
    char *idx = malloc(cap);
    w +=
        (size_t)snprintf(idx + w, cap - w, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    int per = (l->n + shards - 1) / shards;
    for (int s = 0; s < shards; s++) {
        int a = s * per, b = a + per > l->n ? l->n : a + per;
        snprintf(p, sizeof p, "%s/model-%05d-of-%05d.safetensors", out, s + 1, shards);
        ht_write_st(p, l->t + a, b - a, NULL);
        for (int i = a; i < b; i++)
            w += (size_t)snprintf(idx + w, cap - w, "%s\"%s\": \"model-%05d-of-%05d.safetensors\"",
                                  i ? ", " : "", l->t[i].name, s + 1, shards);
    }
    snprintf(idx + w, cap - w, "}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", out);
    ht_write_text(p, idx);
    free(idx);
}

/* ---- models of every architecture open, count their parameters and run ----------------- */

static int run_forward(hub_model *hm, float *logits, int T) {
    int32_t tok[8] = {1, 5, 3, 7, 2, 0, 4, 6};
    lmd_err e = {{0}};
    int rc = hf_forward(&hm->cfg, &hm->src, tok, 1, T, NULL, NULL, logits, &e);
    TU_CHECK(rc == 0, "%s: hf_forward: %s", hm->spec, e.msg);
    return rc;
}

static void open_ok(const char *what, const tiny *m, const char *extra, int shards, float *logits) {
    tlist *l = calloc(1, sizeof *l);
    build(m, l);
    char d[4200];
    write_model(d, sizeof d, what, m, l, extra, shards);
    hub_model hm;
    lmd_err e = {{0}};
    int rc = hub_model_open(&hm, d, &e);
    TU_CHECK(rc == 0, "%s: %s", what, e.msg);
    if (!rc) {
        int64_t want = 0;
        for (int i = 0; i < l->n; i++) {
            const char *nm = l->t[i].name;
            size_t k = strlen(nm);
            int buffer =
                (k > 10 && !strcmp(nm + k - 10, ".attn.bias")) || strstr(nm, ".attn.masked_bias");
            if (!buffer) want += (int64_t)(l->t[i].nbytes / (strcmp(m->dtype, "F32") ? 2 : 4));
        }
        TU_CHECK(hm.n_params == want && hm.n_params == hf_num_params(&hm.cfg),
                 "%s: n_params %lld, tensors %lld, hf_num_params %lld", what,
                 (long long)hm.n_params, (long long)want, (long long)hf_num_params(&hm.cfg));
        TU_CHECK(hm.src.has(hm.src.ctx, l->t[0].name) && !hm.src.has(hm.src.ctx, "no.such.weight"),
                 "%s: has", what);
        if (hm.cfg.arch == HF_GPT2)
            TU_CHECK(hm.src.has(hm.src.ctx, "wte.weight") &&
                         hm.src.has(hm.src.ctx, "transformer.h.1.ln_2.bias") &&
                         hm.src.has(hm.src.ctx, "h.1.ln_2.bias"),
                     "%s: gpt2 names resolve with and without transformer.", what);
        /* the embedding through the source equals the file's values converted */
        float *buf = malloc((size_t)m->V * m->d * sizeof *buf);
        int64_t shp[2] = {m->V, m->d};
        rc = hm.src.get_f32(hm.src.ctx, l->t[0].name, 2, shp, buf, &e);
        TU_CHECK(rc == 0, "%s: get_f32 %s: %s", what, l->t[0].name, e.msg);
        int same = 1;
        for (int i = 0; rc == 0 && i < m->V * m->d && same; i++) {
            const unsigned char *b = l->t[0].data;
            float v;
            if (!strcmp(m->dtype, "F32"))
                memcpy(&v, b + 4 * i, 4);
            else {
                uint16_t h = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
                v = !strcmp(m->dtype, "BF16") ? st_bf16_to_f32(h) : st_f16_to_f32(h);
            }
            same = v == buf[i];
        }
        TU_CHECK(same, "%s: get_f32 values", what);
        /* row reads: rows [V-2, V) equal the same rows of the whole read; shape and range
         * checked */
        if (rc == 0 && m->V >= 2) {
            float *rows = malloc(2 * (size_t)m->d * sizeof *rows);
            TU_CHECK(hm.src.get_rows_f32 != NULL, "%s: the hub source reads rows", what);
            rc = hm.src.get_rows_f32(hm.src.ctx, l->t[0].name, shp, m->V - 2, 2, rows, &e);
            TU_CHECK(rc == 0 && !memcmp(rows, buf + (size_t)(m->V - 2) * m->d,
                                        2 * (size_t)m->d * sizeof *rows),
                     "%s: get_rows_f32 = the rows of get_f32 (%s)", what, rc ? e.msg : "values");
            rc = hm.src.get_rows_f32(hm.src.ctx, l->t[0].name, shp, m->V - 1, 2, rows, &e);
            HT_EXPECT_ERR("get_rows_f32 past the last row", rc, &e, l->t[0].name, "rows", "asked");
            free(rows);
        }
        int64_t bad[2] = {m->d, m->V};
        rc = hm.src.get_f32(hm.src.ctx, l->t[0].name, 2, bad, buf, &e);
        HT_EXPECT_ERR("get_f32 with another shape", rc, &e, l->t[0].name, "has shape", "expects");
        rc = hm.src.get_rows_f32(hm.src.ctx, l->t[0].name, bad, 0, 1, buf, &e);
        HT_EXPECT_ERR("get_rows_f32 with another shape", rc, &e, l->t[0].name, "has shape",
                      "expects");
        free(buf);
        if (logits) run_forward(&hm, logits, 8);
        printf("ok   %-34s opened: %s, %d layers, %lld parameters\n", what, hm.cfg.model_type,
               hm.cfg.n_layer, (long long)hm.n_params);
        hub_model_close(&hm);
    }
    tl_free(l);
    free(l);
}

static int same_floats(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) return 0;
    return 1;
}

static void test_architectures(void) {
    tiny g = {"gpt2", 16, 8, 2, 2, 2, 4, 32, 8, 1, 0, 0, 1, 1, "F32"};
    float *l1 = malloc(8 * 16 * sizeof *l1), *l2 = malloc(8 * 16 * sizeof *l2);
    open_ok("gpt2 transformer. + legacy buffers", &g, NULL, 1, l1);
    g.prefix = 0;
    g.legacy = 0;
    open_ok("gpt2 without prefix", &g, NULL, 1, l2);
    TU_CHECK(same_floats(l1, l2, 8 * 16),
             "gpt2: the same weights with and without prefix give other logits");
    g.tie = 0;
    g.dtype = "BF16";
    open_ok("gpt2 untied, BF16", &g, NULL, 1, NULL);

    tiny ll = {"llama", 16, 8, 2, 2, 1, 4, 12, 64, 0, 1, 1, 0, 0, "F16"};
    open_ok("llama attention_bias mlp_bias F16", &ll, NULL, 1, l1);
    tiny q2 = {"qwen2", 16, 8, 2, 2, 2, 4, 12, 64, 1, 0, 0, 0, 0, "BF16"};
    open_ok("qwen2 tied", &q2, NULL, 1, l1);
    tiny q3 = {"qwen3", 16, 8, 2, 4, 2, 6, 12, 64, 1, 0, 0, 0, 0, "BF16"}; /* H*hd = 24 != d */
    open_ok("qwen3 head_dim 6, GQA", &q3, NULL, 1, l1);
    tiny o2 = {"olmo2", 16, 8, 2, 2, 2, 4, 12, 64, 0, 0, 0, 0, 0, "BF16"};
    open_ok("olmo2", &o2, NULL, 1, l1);
    tiny o3 = {"olmo3", 16, 8, 4, 2, 1, 4, 12, 64, 0, 0, 0, 0, 0, "BF16"};
    open_ok("olmo3 single", &o3, "\"sliding_window\": 3", 1, l1);
    open_ok("olmo3 in 3 shards", &o3, "\"sliding_window\": 3", 3, l2);
    TU_CHECK(same_floats(l1, l2, 8 * 16), "olmo3: sharded and single files give other logits");
    free(l1);
    free(l2);
}

/* ---- mismatches between config and weights ------------------------------------------- */

static void refuse_model(const char *what, const tiny *m, const char *extra, void (*edit)(tlist *),
                         const char *s1, const char *s2, const char *s3) {
    tlist *l = calloc(1, sizeof *l);
    build(m, l);
    if (edit) edit(l);
    char d[4200];
    write_model(d, sizeof d, "bad", m, l, extra, 1);
    hub_model hm;
    lmd_err e = {{0}};
    int rc = hub_model_open(&hm, d, &e);
    if (!rc) hub_model_close(&hm);
    HT_EXPECT_ERR(what, rc, &e, s1, s2, s3);
    tl_free(l);
    free(l);
}

static int find(tlist *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name)) return i;
    fprintf(stderr, "test bug: no %s\n", name);
    exit(1);
}
static void drop(tlist *l, int i) {
    free(l->bufs[i]);
    for (int k = i; k + 1 < l->n; k++) {
        l->t[k] = l->t[k + 1];
        l->bufs[k] = l->bufs[k + 1];
        memcpy(l->names[k], l->names[k + 1], sizeof l->names[k]);
        l->t[k].name = l->names[k];
    }
    l->n--;
}
static void e_transpose_q(tlist *l) {
    ht_tensor *t = &l->t[find(l, "model.layers.1.self_attn.k_proj.weight")];
    int64_t r = t->shape[0];
    t->shape[0] = t->shape[1];
    t->shape[1] = r;
}
static void e_drop_knorm(tlist *l) { drop(l, find(l, "model.layers.0.self_attn.k_norm.weight")); }
static void e_drop_lmhead(tlist *l) { drop(l, find(l, "lm_head.weight")); }
static void e_extra(tlist *l) { add(l, "F32", "model.layers.0.mlp.extra_proj.bias", 1, 8, 0); }
static void e_extra_layer(tlist *l) {
    add(l, "F32", "model.layers.2.input_layernorm.weight", 1, 8, 0);
}
static void e_i64(tlist *l) { l->t[find(l, "model.norm.weight")].dtype = "I32"; }
static void e_gpt2_cfc(tlist *l) { /* nn.Linear layout [out, in] instead of Conv1D [in, out] */
    ht_tensor *t = &l->t[find(l, "h.0.mlp.c_fc.weight")];
    int64_t r = t->shape[0];
    t->shape[0] = t->shape[1];
    t->shape[1] = r;
}

static void test_mismatches(void) {
    tiny ll = {"llama", 16, 8, 2, 2, 1, 4, 12, 64, 0, 0, 0, 0, 0, "F32"};
    refuse_model("wrong shape for a name", &ll, NULL, e_transpose_q,
                 "model.layers.1.self_attn.k_proj.weight", "has shape [8, 4]",
                 "[4 (num_key_value_heads x head_dim), 8 (hidden_size)]");
    tiny v = ll;
    v.V = 20; /* weights with vocab 20, config says 16 */
    tlist *l = calloc(1, sizeof *l);
    build(&v, l);
    char d[4200];
    write_model(d, sizeof d, "vocab", &ll, l, NULL, 1);
    hub_model hm;
    lmd_err e = {{0}};
    int rc = hub_model_open(&hm, d, &e);
    HT_EXPECT_ERR("config and weights disagree (vocab)", rc, &e, "model.embed_tokens.weight",
                  "has shape [20, 8]", "config.json implies [16 (vocab_size), 8 (hidden_size)]");
    tl_free(l);
    free(l);
    refuse_model("untied without lm_head", &ll, NULL, e_drop_lmhead, "no tensor \"lm_head.weight\"",
                 "tie_word_embeddings is false", "config.json");
    refuse_model("unexpected extra tensor", &ll, NULL, e_extra, "unexpected tensor",
                 "model.layers.0.mlp.extra_proj.bias", "model.safetensors");
    refuse_model("weights of a deeper model", &ll, NULL, e_extra_layer, "belongs to layer 2",
                 "num_hidden_layers is 2", "model.layers.2.input_layernorm.weight");
    refuse_model("needed tensor of dtype I32", &ll, NULL, e_i64, "model.norm.weight", "dtype I32",
                 "model.safetensors");
    tiny o2 = {"olmo2", 16, 8, 2, 2, 2, 4, 12, 64, 0, 0, 0, 0, 0, "F32"};
    refuse_model("missing tensor", &o2, NULL, e_drop_knorm,
                 "model.layers.0.self_attn.k_norm.weight", "is missing", "olmo2");
    /* llama weights under a config that claims mlp_bias: the biases are missing */
    refuse_model("config claims mlp_bias", &ll, "\"mlp_bias\": true", NULL, "mlp.gate_proj.bias",
                 "is missing", "model.safetensors");
    tiny g = {"gpt2", 16, 8, 2, 2, 2, 4, 32, 8, 1, 0, 0, 0, 0, "F32"};
    refuse_model("gpt2 c_fc in nn.Linear layout", &g, NULL, e_gpt2_cfc, "h.0.mlp.c_fc.weight",
                 "has shape [32, 8]", "[8 (n_embd), 32 (n_inner)]");
    tiny mx = ll;
    mx.arch = "mixtral";
    refuse_model("unknown model_type (model open)", &mx, NULL, NULL, "config.json",
                 "model_type \"mixtral\"", "not implemented");
}

/* ---- the HF cache --------------------------------------------------------------------------- */

static const char *SHA_A = "0123456789abcdef0123456789abcdef01234567";

static void mkdirs(const char *p) {
    lmd_err e;
    if (lmd_mkdirs(p, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
}

static void put_ref(const char *repo, const char *ref, const char *sha) {
    char p[4400], q[4400];
    snprintf(p, sizeof p, "%s/%s/refs/%s", dir, repo, ref);
    snprintf(q, sizeof q, "%s", p);
    *strrchr(q, '/') = '\0';
    mkdirs(q);
    ht_write_text(p, sha); /* huggingface_hub writes no newline; a trailing one is tolerated too */
}

static void test_cache(void) {
    char cache[4200], p[4400], q[9000];
    snprintf(cache, sizeof cache, "%s", dir);
    setenv("HF_HUB_CACHE", cache, 1);
    /* a snapshot whose files are symlinks into blobs/ */
    tiny o2 = {"olmo2", 16, 8, 2, 2, 2, 4, 12, 64, 0, 0, 0, 0, 0, "BF16"};
    tlist *l = calloc(1, sizeof *l);
    build(&o2, l);
    const char *repo = "models--allenai--OLMo-2-tiny";
    snprintf(p, sizeof p, "%s/%s/blobs", dir, repo);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/%s/snapshots/%s", dir, repo, SHA_A);
    mkdirs(p);
    char cfg[4096];
    config_text(&o2, cfg, sizeof cfg, NULL);
    snprintf(p, sizeof p, "%s/%s/blobs/aaaa1111", dir, repo);
    ht_write_text(p, cfg);
    snprintf(p, sizeof p, "%s/%s/blobs/bbbb2222", dir, repo);
    ht_write_st(p, l->t, l->n, NULL);
    snprintf(p, sizeof p, "%s/%s/snapshots/%s/config.json", dir, repo, SHA_A);
    TU_CHECK(symlink("../../blobs/aaaa1111", p) == 0, "symlink");
    snprintf(p, sizeof p, "%s/%s/snapshots/%s/model.safetensors", dir, repo, SHA_A);
    TU_CHECK(symlink("../../blobs/bbbb2222", p) == 0, "symlink");
    tl_free(l);
    free(l);
    put_ref(repo, "main", SHA_A);
    put_ref(repo, "stage1-step1000-tokens5B", SHA_A);
    put_ref(repo, "stage1-step0-tokens0B", "1111111111111111111111111111111111111111\n");
    put_ref(repo, "stage2-ingredient1-step11931-tokens50B", SHA_A);
    put_ref(repo, "stage2-ingredient2-step200-tokens1B", SHA_A);
    put_ref(repo, "step1000-tokens4B", SHA_A);
    put_ref(repo, "stage1-step20000-tokens42B", SHA_A);
    put_ref(repo, "experiments/stage1-step500", SHA_A); /* a ref name with '/' */
    put_ref(repo, "olmo-2-preview", SHA_A);             /* no step: skipped */
    put_ref(repo, "pr/1", SHA_A);                       /* no step: skipped */

    hub_model hm;
    lmd_err e = {{0}};
    char want[4400];
    snprintf(want, sizeof want, "%s/%s/snapshots/%s", dir, repo, SHA_A);
    char got[4096];
    int rc = hub_resolve("hf:allenai/OLMo-2-tiny", got, sizeof got, &e);
    TU_CHECK(rc == 0 && strcmp(got, want) == 0, "@main by default: %s %s", got, e.msg);
    rc = hub_resolve("hf:allenai/OLMo-2-tiny@experiments/stage1-step500", got, sizeof got, &e);
    TU_CHECK(rc == 0 && strcmp(got, want) == 0, "ref with '/': %s", e.msg);
    snprintf(q, sizeof q, "hf:allenai/OLMo-2-tiny@%s", SHA_A);
    rc = hub_resolve(q, got, sizeof got, &e);
    TU_CHECK(rc == 0 && strcmp(got, want) == 0, "40-hex revision: %s", e.msg);
    rc = hub_model_open(&hm, "hf:allenai/OLMo-2-tiny@stage1-step1000-tokens5B", &e);
    TU_CHECK(rc == 0 && hm.cfg.arch == HF_OLMO2 && strcmp(hm.dir, want) == 0,
             "open from the cache: %s", e.msg);
    if (!rc) hub_model_close(&hm);
    TU_CHECK(hub_is_model_form("hf:allenai/OLMo-2-tiny") && hub_is_model_form(want) &&
                 !hub_is_model_form(dir) && !hub_is_model_form("ck.h5"),
             "hub_is_model_form");

    rc = hub_resolve("hf:allenai/OLMo-2-tiny@stage9-step1", got, sizeof got, &e);
    HT_EXPECT_ERR("revision missing from the cache", rc, &e, "refs/stage9-step1",
                  "huggingface-cli download allenai/OLMo-2-tiny --revision stage9-step1");
    rc = hub_resolve("hf:allenai/OLMo-2-tiny@stage1-step0-tokens0B", got, sizeof got, &e);
    HT_EXPECT_ERR("ref without its snapshot", rc, &e,
                  "snapshots/1111111111111111111111111111111111111111",
                  "huggingface-cli download allenai/OLMo-2-tiny --revision stage1-step0-tokens0B");
    rc = hub_resolve("hf:allenai/OLMo-9", got, sizeof got, &e);
    HT_EXPECT_ERR("repo missing from the cache", rc, &e, "models--allenai--OLMo-9",
                  "huggingface-cli download allenai/OLMo-9 --revision main");
    rc = hub_resolve("hf:allenai/OLMo-2-tiny@../../etc", got, sizeof got, &e);
    HT_EXPECT_ERR("revision escaping refs/", rc, &e, "not a revision name", "../../etc");
    /* a snapshot without weights: config.json there, model.safetensors not */
    snprintf(p, sizeof p, "%s/%s/snapshots/2222222222222222222222222222222222222222", dir, repo);
    mkdirs(p);
    snprintf(q, sizeof q, "%s/config.json", p);
    ht_write_text(q, cfg);
    put_ref(repo, "partial", "2222222222222222222222222222222222222222");
    rc = hub_model_open(&hm, "hf:allenai/OLMo-2-tiny@partial", &e);
    HT_EXPECT_ERR("snapshot without weights", rc, &e, "no model.safetensors",
                  "huggingface-cli download allenai/OLMo-2-tiny --revision partial");

    /* a snapshot whose weights link to a blob that is not there */
    snprintf(p, sizeof p, "%s/%s/snapshots/3333333333333333333333333333333333333333", dir, repo);
    mkdirs(p);
    snprintf(q, sizeof q, "%s/config.json", p);
    ht_write_text(q, cfg);
    snprintf(q, sizeof q, "%s/model.safetensors", p);
    TU_CHECK(symlink("../../blobs/cccc-missing", q) == 0, "symlink");
    put_ref(repo, "dangling", "3333333333333333333333333333333333333333");
    rc = hub_model_open(&hm, "hf:allenai/OLMo-2-tiny@dangling", &e);
    HT_EXPECT_ERR("weights symlink to a missing blob", rc, &e, "model.safetensors", "missing blob",
                  "huggingface-cli download allenai/OLMo-2-tiny --revision dangling");

    /* $HF_HOME/hub when HF_HUB_CACHE is unset */
    unsetenv("HF_HUB_CACHE");
    char home[4200];
    snprintf(home, sizeof home, "%s/hfhome", dir);
    snprintf(p, sizeof p, "%s/hub", home);
    mkdirs(p);
    snprintf(q, sizeof q, "ln -s '%s/%s' '%s/hub/%s'", dir, repo, home, repo);
    TU_CHECK(system(q) == 0, "ln");
    setenv("HF_HOME", home, 1);
    rc = hub_resolve("hf:allenai/OLMo-2-tiny@main", got, sizeof got, &e);
    TU_CHECK(rc == 0 && strstr(got, "hfhome/hub/models--allenai--OLMo-2-tiny/snapshots/"),
             "HF_HOME/hub: %s %s", got, e.msg);
    unsetenv("HF_HOME");
    setenv("HF_HUB_CACHE", cache, 1);

    /* the series: stage, then ingredient, then step; main last; no-step refs skipped */
    hub_revision *r;
    int n;
    char *skipped;
    rc = hub_list_series("hf:allenai/OLMo-2-tiny@*", &r, &n, &skipped, &e);
    TU_CHECK(rc == 0, "series: %s", e.msg);
    if (!rc) {
        const char *sorted[] = {"step1000-tokens4B",
                                "stage1-step0-tokens0B",
                                "experiments/stage1-step500",
                                "stage1-step1000-tokens5B",
                                "stage1-step20000-tokens42B",
                                "stage2-ingredient1-step11931-tokens50B",
                                "stage2-ingredient2-step200-tokens1B",
                                "main"};
        int ok = n == 8;
        for (int i = 0; ok && i < n; i++) ok = strcmp(r[i].name, sorted[i]) == 0;
        TU_CHECK(ok, "series order (%d revisions)", n);
        for (int i = 0; i < n; i++)
            printf("     %d: %-40s stage %d ingredient %d step %lld%s  %s\n", i, r[i].name,
                   r[i].stage, r[i].ingredient, r[i].step, r[i].is_main ? " main" : "", r[i].spec);
        TU_CHECK(n == 8 && r[1].stage == 1 && r[1].step == 0 && r[5].stage == 2 &&
                     r[5].ingredient == 1 && r[5].step == 11931 && r[0].stage == 0 &&
                     r[0].step == 1000 && r[7].is_main,
                 "parsed fields");
        TU_CHECK(n == 8 &&
                     strcmp(r[3].spec, "hf:allenai/OLMo-2-tiny@stage1-step1000-tokens5B") == 0,
                 "spec %s", n ? r[3].spec : "");
        TU_CHECK(skipped && strcmp(skipped, "dangling\nolmo-2-preview\npartial\npr/1\n") == 0,
                 "skipped: \"%s\"", skipped ? skipped : "(null)");
        free(r);
        free(skipped);
    }
    rc = hub_list_series("hf:allenai/OLMo-9@*", &r, &n, &skipped, &e);
    HT_EXPECT_ERR("series of a repo not cached", rc, &e, "models--allenai--OLMo-9",
                  "huggingface-cli download");
    rc = hub_resolve("hf:allenai/OLMo-2-tiny@*", got, sizeof got, &e);
    HT_EXPECT_ERR("a series given as one model", rc, &e, "series", "@*");
}

int main(void) {
    ht_scratch(dir, sizeof dir, "hub_model");
    test_architectures();
    test_mismatches();
    test_cache();
    return tu_summary("test_hub_model");
}
