/* hfconfig.c — config.json (jansson) to hf_arch_config, with the defaults of transformers'
 * configuration_<arch>.py classes (4.57, the version that added OLMo-3) and the refusals of
 * DESIGN 4.6: whatever lmdisp does not implement exactly is an error naming field and value. */
#include "hfmodel.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-class constructor defaults (configuration_<arch>.py). kv < 0 means "None -> heads";
 * head_dim < 0 means "None -> hidden / heads". */
typedef struct {
    const char *type;
    hf_arch arch;
    int vocab, hidden, inter, layers, heads, kv, head_dim, maxpos;
    double eps;
} class_defaults;

static const class_defaults CLASSES[] = {
    {"gpt2", HF_GPT2, 50257, 768, -1, 12, 12, -1, -1, 1024, 1e-5},
    {"llama", HF_LLAMA, 32000, 4096, 11008, 32, 32, -1, -1, 2048, 1e-6},
    {"qwen2", HF_QWEN2, 151936, 4096, 22016, 32, 32, 32, -1, 32768, 1e-6},
    {"qwen3", HF_QWEN3, 151936, 4096, 22016, 32, 32, 32, 128, 32768, 1e-6},
    {"olmo2", HF_OLMO2, 50304, 4096, 11008, 32, 32, -1, -1, 2048, 1e-5},
    {"olmo3", HF_OLMO3, 50304, 4096, 11008, 32, 32, -1, -1, 2048, 1e-5},
};

typedef struct {
    const char *path;
    json_t *root;
    lmd_err *err;
} cfgctx;

/* The value of `key` (NULL when absent). */
static json_t *field(cfgctx *c, const char *key) { return json_object_get(c->root, key); }

/* An integer field: absent -> *out = def, null -> *out = null_val (if allow_null, else error). */
static int get_int(cfgctx *c, const char *key, int def, int allow_null, int null_val, int *out) {
    json_t *v = field(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (json_is_null(v)) {
        if (!allow_null)
            return lmd_errf(c->err, "%s: %s is null; an integer is needed", c->path, key);
        *out = null_val;
        return 0;
    }
    /* HF configs sometimes write integers as 4096.0; accept an integral real. */
    double x;
    if (json_is_integer(v))
        x = (double)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)))
        x = json_real_value(v);
    else
        return lmd_errf(c->err, "%s: %s is not an integer", c->path, key);
    if (x < -2147483648.0 || x > 2147483647.0)
        return lmd_errf(c->err, "%s: %s = %.0f is out of range", c->path, key, x);
    *out = (int)x;
    return 0;
}

static int get_num(cfgctx *c, const char *key, double def, double *out) {
    json_t *v = field(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v)) return lmd_errf(c->err, "%s: %s is not a number", c->path, key);
    *out = json_number_value(v);
    return 0;
}

static int get_bool(cfgctx *c, const char *key, int def, int *out) {
    json_t *v = field(c, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return lmd_errf(c->err, "%s: %s is not true or false", c->path, key);
    *out = json_is_true(v);
    return 0;
}

/* First present key of two (HF's attribute_map aliases, e.g. gpt2 n_embd / hidden_size). */
static const char *alias(cfgctx *c, const char *a, const char *b) { return field(c, a) ? a : b; }

static int positive(cfgctx *c, const char *key, int v) {
    if (v <= 0) return lmd_errf(c->err, "%s: %s = %d must be positive", c->path, key, v);
    return 0;
}

/* rope_scaling (or transformers 5's rope_parameters): null / default, or yarn for olmo3. */
static int parse_rope(cfgctx *c, hf_arch_config *cfg) {
    cfg->rope_type = HF_ROPE_DEFAULT;
    const char *key = "rope_scaling";
    json_t *rs = field(c, key);
    if (!rs || json_is_null(rs)) {
        key = "rope_parameters";
        rs = field(c, key);
        if (!rs || json_is_null(rs)) return 0;
    }
    if (!json_is_object(rs))
        return lmd_errf(c->err, "%s: %s is not an object or null", c->path, key);
    json_t *jt = json_object_get(rs, "rope_type");
    const char *tkey = "rope_type";
    if (!jt) {
        jt = json_object_get(rs, "type"); /* legacy spelling */
        tkey = "type";
    }
    if (key[5] == 'p') { /* rope_parameters also carries rope_theta */
        json_t *th = json_object_get(rs, "rope_theta");
        if (th) {
            if (!json_is_number(th))
                return lmd_errf(c->err, "%s: rope_parameters.rope_theta is not a number", c->path);
            cfg->rope_theta = json_number_value(th);
        }
    }
    const char *type = "default";
    if (jt && !json_is_null(jt)) {
        if (!json_is_string(jt))
            return lmd_errf(c->err, "%s: %s.%s is not a string", c->path, key, tkey);
        type = json_string_value(jt);
    }
    if (strcmp(type, "default") == 0) return 0;
    if (strcmp(type, "yarn") != 0 || cfg->arch != HF_OLMO3)
        return lmd_errf(c->err,
                        "%s: %s.%s \"%s\" is not implemented for model_type %s (lmdisp implements "
                        "default rope, and yarn for olmo3)",
                        c->path, key, tkey, type, cfg->model_type);

    /* yarn: the fields _compute_yarn_parameters reads, with its defaults; any other key would
     * be something HF warns about and lmdisp would silently ignore, so it is refused. */
    static const char *known[] = {"rope_type",
                                  "type",
                                  "factor",
                                  "attention_factor",
                                  "beta_fast",
                                  "beta_slow",
                                  "original_max_position_embeddings",
                                  "mscale",
                                  "mscale_all_dim",
                                  "truncate",
                                  "rope_theta"};
    const char *k;
    json_t *v;
    json_object_foreach(rs, k, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof *known && strcmp(k, known[i])) i++;
        if (i == sizeof known / sizeof *known)
            return lmd_errf(c->err, "%s: %s.%s is not a yarn parameter lmdisp knows", c->path, key,
                            k);
    }
    cfg->rope_type = HF_ROPE_YARN;
    json_t *f = json_object_get(rs, "factor");
    if (!json_is_number(f) || json_number_value(f) < 1.0)
        return lmd_errf(c->err, "%s: %s.factor must be a number >= 1 for yarn", c->path, key);
    cfg->yarn.factor = json_number_value(f);
    /* `x or default`: absent, null and 0 all give the default in HF */
#define OPT_NUM(name, dst, def)                                                                    \
    do {                                                                                           \
        json_t *o = json_object_get(rs, name);                                                     \
        if (o && !json_is_null(o) && !json_is_number(o))                                           \
            return lmd_errf(c->err, "%s: %s.%s is not a number", c->path, key, name);              \
        double x = o && json_is_number(o) ? json_number_value(o) : 0.0;                            \
        dst = x != 0.0 ? x : (def);                                                                \
    } while (0)
    OPT_NUM("original_max_position_embeddings", cfg->yarn.original_max_position,
            (double)cfg->max_position);
    OPT_NUM("beta_fast", cfg->yarn.beta_fast, 32.0);
    OPT_NUM("beta_slow", cfg->yarn.beta_slow, 1.0);
    OPT_NUM("mscale", cfg->yarn.mscale, 0.0);
    OPT_NUM("mscale_all_dim", cfg->yarn.mscale_all_dim, 0.0);
#undef OPT_NUM
    json_t *af = json_object_get(rs, "attention_factor");
    if (af && !json_is_null(af)) {
        /* HF uses any non-None value as is; 0 or less would zero or flip cos/sin */
        if (!json_is_number(af) || json_number_value(af) <= 0)
            return lmd_errf(c->err, "%s: %s.attention_factor must be a positive number", c->path,
                            key);
        cfg->yarn.attention_factor = json_number_value(af);
    } else {
        cfg->yarn.attention_factor = -1.0; /* HF's default from factor (and mscale*) */
    }
    json_t *tr = json_object_get(rs, "truncate");
    if (tr && !json_is_boolean(tr))
        return lmd_errf(c->err, "%s: %s.truncate is not true or false", c->path, key);
    cfg->yarn.truncate = tr ? json_is_true(tr) : 1;
    return 0;
}

/* olmo3 layer_types (explicit, or HF's default pattern) and qwen's sliding-window switches. */
static int parse_layers(cfgctx *c, hf_arch_config *cfg) {
    json_t *lt = field(c, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt)) return lmd_errf(c->err, "%s: layer_types is not an array", c->path);
        if ((int)json_array_size(lt) != cfg->n_layer)
            return lmd_errf(c->err, "%s: layer_types has %zu entries, num_hidden_layers is %d",
                            c->path, json_array_size(lt), cfg->n_layer);
        for (int i = 0; i < cfg->n_layer; i++) {
            json_t *e = json_array_get(lt, (size_t)i);
            const char *s = json_is_string(e) ? json_string_value(e) : "";
            if (strcmp(s, "full_attention") && strcmp(s, "sliding_attention"))
                return lmd_errf(c->err,
                                "%s: layer_types[%d] \"%s\" is not \"full_attention\" or "
                                "\"sliding_attention\"",
                                c->path, i, s);
        }
    }
    if (cfg->arch == HF_QWEN2 || cfg->arch == HF_QWEN3) {
        int usw;
        if (get_bool(c, "use_sliding_window", 0, &usw)) return -1;
        if (usw)
            return lmd_errf(c->err,
                            "%s: use_sliding_window true is not implemented for %s (lmdisp "
                            "implements Qwen's full attention only)",
                            c->path, cfg->model_type);
        for (size_t i = 0; lt && json_is_array(lt) && i < json_array_size(lt); i++)
            if (strcmp(json_string_value(json_array_get(lt, i)), "sliding_attention") == 0)
                return lmd_errf(c->err,
                                "%s: layer_types[%zu] \"sliding_attention\" is not implemented for "
                                "%s",
                                c->path, i, cfg->model_type);
        return 0;
    }
    if (cfg->arch != HF_OLMO3) return 0;
    cfg->layer_sliding = lmd_calloc((size_t)cfg->n_layer, 1);
    int any = 0;
    for (int i = 0; i < cfg->n_layer; i++) {
        int sl =
            (lt && !json_is_null(lt))
                ? strcmp(json_string_value(json_array_get(lt, (size_t)i)), "sliding_attention") == 0
                : (i + 1) % 4 != 0;
        cfg->layer_sliding[i] = (unsigned char)sl;
        any |= sl;
    }
    if (get_int(c, "sliding_window", 4096, 1, 0, &cfg->sliding_window)) return -1;
    if (any && cfg->sliding_window <= 0)
        return lmd_errf(c->err, "%s: sliding_window = %d, but layers slide (layer_types)", c->path,
                        cfg->sliding_window);
    return 0;
}

static int parse(cfgctx *c, hf_arch_config *cfg) {
    if (!json_is_object(c->root)) return lmd_errf(c->err, "%s: not a JSON object", c->path);
    json_t *mt = field(c, "model_type");
    if (!json_is_string(mt))
        return lmd_errf(c->err, "%s: model_type missing or not a string", c->path);
    const char *type = json_string_value(mt);
    const class_defaults *k = NULL;
    for (size_t i = 0; i < sizeof CLASSES / sizeof *CLASSES; i++)
        if (strcmp(type, CLASSES[i].type) == 0) k = &CLASSES[i];
    if (!k)
        return lmd_errf(
            c->err,
            "%s: model_type \"%s\" is not implemented (lmdisp reads gpt2, llama, qwen2, "
            "qwen3, olmo2, olmo3)",
            c->path, type);
    cfg->arch = k->arch;
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", type);

    if (cfg->arch == HF_GPT2) {
        const char *kd = alias(c, "n_embd", "hidden_size"),
                   *kl = alias(c, "n_layer", "num_hidden_layers"),
                   *kh = alias(c, "n_head", "num_attention_heads"),
                   *kp = alias(c, "n_positions", "max_position_embeddings");
        if (get_int(c, "vocab_size", k->vocab, 0, 0, &cfg->vocab_size) ||
            get_int(c, kd, k->hidden, 0, 0, &cfg->hidden_size) ||
            get_int(c, kl, k->layers, 0, 0, &cfg->n_layer) ||
            get_int(c, kh, k->heads, 0, 0, &cfg->n_head) ||
            get_int(c, kp, k->maxpos, 0, 0, &cfg->max_position) ||
            get_int(c, "n_inner", -1, 1, -1, &cfg->intermediate_size) ||
            get_num(c, "layer_norm_epsilon", k->eps, &cfg->norm_eps) ||
            get_bool(c, "scale_attn_weights", 1, &cfg->scale_attn_weights) ||
            get_bool(c, "scale_attn_by_inverse_layer_idx", 0,
                     &cfg->scale_attn_by_inverse_layer_idx) ||
            get_bool(c, "tie_word_embeddings", 1, &cfg->tie_word_embeddings))
            return -1;
        if (cfg->intermediate_size < 0) cfg->intermediate_size = 4 * cfg->hidden_size;
        cfg->n_kv_head = cfg->n_head;
        if (positive(c, kd, cfg->hidden_size) || positive(c, kh, cfg->n_head)) return -1;
        if (cfg->hidden_size % cfg->n_head)
            return lmd_errf(c->err, "%s: %s = %d is not a multiple of %s = %d", c->path, kd,
                            cfg->hidden_size, kh, cfg->n_head);
        cfg->head_dim = cfg->hidden_size / cfg->n_head;
        /* the tanh form of GELU, exactly (transformers activations.py; gelu_fast's constant
         * 0.7978845608 is sqrt(2/pi) to float32 precision); "gelu" is the erf form */
        json_t *af = field(c, "activation_function");
        const char *act = af ? (json_is_string(af) ? json_string_value(af) : "") : "gelu_new";
        static const char *tanh_forms[] = {"gelu_new", "gelu_pytorch_tanh", "gelu_python_tanh",
                                           "gelu_fast", "gelu_accurate"};
        int ok = 0;
        for (size_t i = 0; i < sizeof tanh_forms / sizeof *tanh_forms; i++)
            ok |= !strcmp(act, tanh_forms[i]);
        if (!ok)
            return lmd_errf(c->err,
                            "%s: activation_function \"%s\" is not implemented for gpt2 (lmdisp "
                            "implements the tanh GELU: gelu_new, gelu_pytorch_tanh, "
                            "gelu_python_tanh, gelu_fast, gelu_accurate)",
                            c->path, act);
        int reorder;
        if (get_bool(c, "add_cross_attention", 0, &reorder)) return -1;
        if (reorder)
            return lmd_errf(c->err, "%s: add_cross_attention true is not implemented for gpt2",
                            c->path);
        cfg->rope_theta = 10000.0;
    } else {
        if (get_int(c, "vocab_size", k->vocab, 0, 0, &cfg->vocab_size) ||
            get_int(c, "hidden_size", k->hidden, 0, 0, &cfg->hidden_size) ||
            get_int(c, "intermediate_size", k->inter, 0, 0, &cfg->intermediate_size) ||
            get_int(c, "num_hidden_layers", k->layers, 0, 0, &cfg->n_layer) ||
            get_int(c, "num_attention_heads", k->heads, 0, 0, &cfg->n_head) ||
            get_int(c, "num_key_value_heads", k->kv, 1, -1, &cfg->n_kv_head) ||
            get_int(c, "head_dim", k->head_dim, 1, -1, &cfg->head_dim) ||
            get_int(c, "max_position_embeddings", k->maxpos, 0, 0, &cfg->max_position) ||
            get_num(c, "rms_norm_eps", k->eps, &cfg->norm_eps) ||
            get_num(c, "rope_theta", 10000.0, &cfg->rope_theta) ||
            get_bool(c, "tie_word_embeddings", 0, &cfg->tie_word_embeddings))
            return -1;
        if (positive(c, "num_attention_heads", cfg->n_head) ||
            positive(c, "hidden_size", cfg->hidden_size))
            return -1;
        if (cfg->n_kv_head < 0) cfg->n_kv_head = cfg->n_head;
        if (cfg->head_dim < 0) {
            if (cfg->hidden_size % cfg->n_head)
                return lmd_errf(
                    c->err,
                    "%s: hidden_size = %d is not a multiple of num_attention_heads = %d "
                    "(and no head_dim is given)",
                    c->path, cfg->hidden_size, cfg->n_head);
            cfg->head_dim = cfg->hidden_size / cfg->n_head;
        }
        if (positive(c, "num_key_value_heads", cfg->n_kv_head) ||
            positive(c, "head_dim", cfg->head_dim))
            return -1;
        if (cfg->n_head % cfg->n_kv_head)
            return lmd_errf(
                c->err,
                "%s: num_attention_heads = %d is not a multiple of num_key_value_heads = %d",
                c->path, cfg->n_head, cfg->n_kv_head);
        if (cfg->head_dim % 2)
            return lmd_errf(c->err, "%s: head_dim = %d is odd; rotary embeddings need it even",
                            c->path, cfg->head_dim);
        json_t *ha = field(c, "hidden_act");
        const char *act = ha ? (json_is_string(ha) ? json_string_value(ha) : "") : "silu";
        if (strcmp(act, "silu") && strcmp(act, "swish")) /* both are nn.SiLU in transformers */
            return lmd_errf(
                c->err, "%s: hidden_act \"%s\" is not implemented for %s (lmdisp implements silu)",
                c->path, act, type);
        json_t *prf = field(c, "partial_rotary_factor");
        if (prf && !json_is_null(prf) && (!json_is_number(prf) || json_number_value(prf) != 1.0)) {
            char val[64] = "not a number";
            if (json_is_number(prf)) snprintf(val, sizeof val, "%g", json_number_value(prf));
            return lmd_errf(c->err,
                            "%s: partial_rotary_factor %s is not implemented (lmdisp rotates the "
                            "whole head, factor 1)",
                            c->path, val);
        }
        if (cfg->arch == HF_QWEN2) {
            cfg->qkv_bias = 1; /* hard-coded in modeling_qwen2.py; o_proj has none */
        } else {
            if (get_bool(c, "attention_bias", 0, &cfg->attention_bias)) return -1;
            cfg->qkv_bias = cfg->o_bias = cfg->attention_bias;
        }
        if (cfg->arch == HF_LLAMA && get_bool(c, "mlp_bias", 0, &cfg->mlp_bias)) return -1;
        if (parse_rope(c, cfg) || parse_layers(c, cfg)) return -1;
        if (!(cfg->rope_theta > 0))
            return lmd_errf(c->err, "%s: rope_theta = %g must be positive", c->path,
                            cfg->rope_theta);
    }
    if (positive(c, "vocab_size", cfg->vocab_size) ||
        positive(c, cfg->arch == HF_GPT2 ? "n_layer" : "num_hidden_layers", cfg->n_layer) ||
        positive(c, cfg->arch == HF_GPT2 ? "n_inner" : "intermediate_size",
                 cfg->intermediate_size) ||
        positive(c, cfg->arch == HF_GPT2 ? "n_positions" : "max_position_embeddings",
                 cfg->max_position))
        return -1;
    if (!(cfg->norm_eps > 0))
        return lmd_errf(c->err, "%s: %s = %g must be positive", c->path,
                        cfg->arch == HF_GPT2 ? "layer_norm_epsilon" : "rms_norm_eps",
                        cfg->norm_eps);
    return 0;
}

int hub_config_load(const char *path, hf_arch_config *cfg, lmd_err *err) {
    memset(cfg, 0, sizeof *cfg);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return lmd_errf(err, "%s: not valid JSON: %s (line %d, column %d)", path, je.text, je.line,
                        je.column);
    cfgctx c = {path, root, err};
    int rc = parse(&c, cfg);
    json_decref(root);
    if (rc) hf_arch_config_free(cfg);
    return rc;
}
