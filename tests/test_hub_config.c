/* test_hub_config.c — config.json parsing: transformers' per-class defaults (eps, tying,
 * kv heads, head_dim, n_inner, olmo3 layer pattern, yarn defaults) and every refusal of
 * DESIGN 4.6 with the field and value named. */
#include "hfmodel.h"
#include "hubtest.h"

#include <math.h>

static char dir[4096], path[4300];

static int load(const char *json, hf_arch_config *c, lmd_err *e) {
    ht_write_text(path, json);
    return hub_config_load(path, c, e);
}

static void refused(const char *what, const char *json, const char *s1, const char *s2) {
    hf_arch_config c;
    lmd_err e = {{0}};
    int rc = load(json, &c, &e);
    if (!rc) hf_arch_config_free(&c);
    HT_EXPECT_ERR(what, rc, &e, "config.json", s1, s2);
}

static void test_defaults(void) {
    hf_arch_config c;
    lmd_err e = {{0}};
    /* real gpt2 config: no tie field (PretrainedConfig default True), n_inner null */
    int rc =
        load("{\"model_type\": \"gpt2\", \"activation_function\": \"gelu_new\", \"n_embd\": 64,"
             " \"n_head\": 4, \"n_layer\": 2, \"n_positions\": 32, \"n_inner\": null, "
             "\"vocab_size\": 100}",
             &c, &e);
    TU_CHECK(rc == 0, "gpt2: %s", e.msg);
    if (!rc) {
        TU_CHECK(c.arch == HF_GPT2 && c.hidden_size == 64 && c.n_head == 4 && c.n_kv_head == 4 &&
                     c.head_dim == 16 && c.intermediate_size == 256 && c.max_position == 32 &&
                     c.vocab_size == 100 && c.n_layer == 2,
                 "gpt2 sizes");
        TU_CHECK(c.tie_word_embeddings == 1, "gpt2 ties by default");
        TU_CHECK(c.norm_eps == 1e-5, "gpt2 eps %g", c.norm_eps);
        TU_CHECK(c.scale_attn_weights == 1 && c.scale_attn_by_inverse_layer_idx == 0,
                 "gpt2 scale flags");
        hf_arch_config_free(&c);
    }
    rc = load("{\"model_type\": \"gpt2\"}", &c, &e);
    TU_CHECK(rc == 0 && c.hidden_size == 768 && c.n_layer == 12 && c.vocab_size == 50257 &&
                 c.max_position == 1024 && c.intermediate_size == 3072,
             "gpt2 class defaults: %s", e.msg);
    if (!rc) hf_arch_config_free(&c);

    rc = load("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
              " \"num_key_value_heads\": null, \"num_hidden_layers\": 2, \"intermediate_size\": 96,"
              " \"vocab_size\": 50, \"rope_scaling\": null, \"attention_bias\": true, "
              "\"mlp_bias\": true}",
              &c, &e);
    TU_CHECK(rc == 0, "llama: %s", e.msg);
    if (!rc) {
        TU_CHECK(c.n_kv_head == 4 && c.head_dim == 16 && c.norm_eps == 1e-6 &&
                     c.tie_word_embeddings == 0 && c.rope_theta == 10000.0 &&
                     c.rope_type == HF_ROPE_DEFAULT && c.max_position == 2048,
                 "llama defaults kv %d hd %d eps %g tie %d", c.n_kv_head, c.head_dim, c.norm_eps,
                 c.tie_word_embeddings);
        TU_CHECK(c.qkv_bias && c.o_bias && c.mlp_bias && c.attention_bias, "llama biases");
        TU_CHECK(!c.layer_sliding, "llama slides nowhere");
        hf_arch_config_free(&c);
    }
    /* qwen2: num_key_value_heads ABSENT is the class default 32 (not = heads); biases forced */
    rc =
        load("{\"model_type\": \"qwen2\", \"hidden_size\": 512, \"num_attention_heads\": 64,"
             " \"use_sliding_window\": false, \"sliding_window\": 4096, \"max_window_layers\": 21}",
             &c, &e);
    TU_CHECK(rc == 0, "qwen2: %s", e.msg);
    if (!rc) {
        TU_CHECK(c.n_kv_head == 32 && c.head_dim == 8 && c.qkv_bias == 1 && c.o_bias == 0 &&
                     c.mlp_bias == 0 && c.norm_eps == 1e-6 && c.vocab_size == 151936,
                 "qwen2 kv %d qkv_bias %d o_bias %d", c.n_kv_head, c.qkv_bias, c.o_bias);
        hf_arch_config_free(&c);
    }
    /* qwen3: head_dim ABSENT is the class default 128, and differs from hidden/heads */
    rc =
        load("{\"model_type\": \"qwen3\", \"hidden_size\": 1024, \"num_attention_heads\": 16,"
             " \"num_key_value_heads\": 8, \"tie_word_embeddings\": true, \"rope_theta\": 1000000}",
             &c, &e);
    TU_CHECK(rc == 0 && c.head_dim == 128 && c.n_kv_head == 8 && c.tie_word_embeddings == 1 &&
                 c.rope_theta == 1e6 && c.qkv_bias == 0,
             "qwen3 head_dim %d: %s", c.head_dim, e.msg);
    if (!rc) hf_arch_config_free(&c);
    rc = load("{\"model_type\": \"qwen3\", \"hidden_size\": 64, \"num_attention_heads\": 4, "
              "\"num_key_value_heads\": 2, \"head_dim\": 32}",
              &c, &e);
    TU_CHECK(rc == 0 && c.head_dim == 32, "qwen3 explicit head_dim %d: %s", c.head_dim, e.msg);
    if (!rc) hf_arch_config_free(&c);
    /* olmo2: eps 1e-5 */
    rc = load("{\"model_type\": \"olmo2\", \"hidden_size\": 64, \"num_attention_heads\": 4}", &c,
              &e);
    TU_CHECK(rc == 0 && c.norm_eps == 1e-5 && c.n_kv_head == 4 && c.vocab_size == 50304 &&
                 !c.layer_sliding,
             "olmo2 defaults: %s", e.msg);
    if (!rc) hf_arch_config_free(&c);
    /* olmo3: default layer pattern, sliding_window default 4096 */
    rc = load("{\"model_type\": \"olmo3\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
              " \"num_hidden_layers\": 8}",
              &c, &e);
    TU_CHECK(rc == 0, "olmo3: %s", e.msg);
    if (!rc) {
        char pat[16] = {0};
        for (int i = 0; i < 8 && c.layer_sliding; i++) pat[i] = c.layer_sliding[i] ? 's' : 'f';
        TU_CHECK(strcmp(pat, "sssfsssf") == 0 && c.sliding_window == 4096 && c.norm_eps == 1e-5,
                 "olmo3 default pattern %s window %d", pat, c.sliding_window);
        hf_arch_config_free(&c);
    }
    /* olmo3: explicit layer_types and yarn (the real Olmo-3-7B rope_scaling) */
    rc = load(
        "{\"model_type\": \"olmo3\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
        " \"num_hidden_layers\": 3, \"sliding_window\": 16, \"max_position_embeddings\": 65536,"
        " \"layer_types\": [\"full_attention\", \"sliding_attention\", \"full_attention\"],"
        " \"rope_scaling\": {\"attention_factor\": 1.2079441541679836, \"beta_fast\": 32,"
        " \"beta_slow\": 1, \"factor\": 8.0, \"original_max_position_embeddings\": 8192,"
        " \"rope_type\": \"yarn\"}, \"rope_theta\": 500000}",
        &c, &e);
    TU_CHECK(rc == 0, "olmo3 yarn: %s", e.msg);
    if (!rc) {
        TU_CHECK(c.layer_sliding && !c.layer_sliding[0] && c.layer_sliding[1] &&
                     !c.layer_sliding[2] && c.sliding_window == 16,
                 "olmo3 explicit layer_types");
        TU_CHECK(c.rope_type == HF_ROPE_YARN && c.yarn.factor == 8.0 &&
                     c.yarn.original_max_position == 8192 && c.yarn.beta_fast == 32 &&
                     c.yarn.beta_slow == 1 && c.yarn.attention_factor == 1.2079441541679836 &&
                     c.yarn.truncate == 1 && c.yarn.mscale == 0 && c.yarn.mscale_all_dim == 0 &&
                     c.rope_theta == 500000,
                 "olmo3 yarn fields");
        hf_arch_config_free(&c);
    }
    /* yarn with only the required field: HF's defaults */
    rc = load("{\"model_type\": \"olmo3\", \"hidden_size\": 64, \"num_attention_heads\": 4,"
              " \"num_hidden_layers\": 4, \"max_position_embeddings\": 4096,"
              " \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0, \"beta_fast\": null, "
              "\"truncate\": false}}",
              &c, &e);
    TU_CHECK(rc == 0 && c.yarn.factor == 4 && c.yarn.original_max_position == 4096 &&
                 c.yarn.beta_fast == 32 && c.yarn.beta_slow == 1 && c.yarn.attention_factor <= 0 &&
                 c.yarn.truncate == 0,
             "yarn defaults: %s", e.msg);
    if (!rc) hf_arch_config_free(&c);
    rc = load("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"default\"},"
              " \"partial_rotary_factor\": 1.0, \"hidden_act\": \"silu\", \"pretraining_tp\": 1}",
              &c, &e);
    TU_CHECK(rc == 0 && c.rope_type == HF_ROPE_DEFAULT, "default rope_scaling accepted: %s", e.msg);
    if (!rc) hf_arch_config_free(&c);
}

static void test_refusals(void) {
    refused("unknown model_type", "{\"model_type\": \"mistral\"}", "model_type \"mistral\"",
            "not implemented");
    refused("model_type missing", "{\"hidden_size\": 4}", "model_type", "missing");
    refused("not JSON", "{\"model_type\": \"llama\",", "not valid JSON", "line");
    refused("rope llama3",
            "{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": "
            "8.0}}",
            "rope_scaling.rope_type \"llama3\" is not implemented",
            "(lmdisp implements default rope, and yarn for olmo3)");
    refused(
        "rope linear (legacy type)",
        "{\"model_type\": \"qwen2\", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}",
        "rope_scaling.type \"linear\"", "not implemented");
    refused(
        "yarn outside olmo3",
        "{\"model_type\": \"qwen3\", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}",
        "rope_scaling.rope_type \"yarn\"", "qwen3");
    refused("yarn unknown key",
            "{\"model_type\": \"olmo3\", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": "
            "4.0, \"low_freq_factor\": 1}}",
            "rope_scaling.low_freq_factor", "yarn");
    refused("yarn without factor",
            "{\"model_type\": \"olmo3\", \"rope_scaling\": {\"rope_type\": \"yarn\"}}",
            "rope_scaling.factor", "yarn");
    refused("partial_rotary_factor", "{\"model_type\": \"llama\", \"partial_rotary_factor\": 0.5}",
            "partial_rotary_factor 0.5", "not implemented");
    refused("qwen use_sliding_window", "{\"model_type\": \"qwen2\", \"use_sliding_window\": true}",
            "use_sliding_window true", "qwen2");
    refused("unknown hidden_act", "{\"model_type\": \"olmo2\", \"hidden_act\": \"gelu\"}",
            "hidden_act \"gelu\"", "not implemented");
    refused("gpt2 erf gelu", "{\"model_type\": \"gpt2\", \"activation_function\": \"gelu\"}",
            "activation_function \"gelu\"", "gpt2");
    refused("gpt2 relu", "{\"model_type\": \"gpt2\", \"activation_function\": \"relu\"}",
            "activation_function \"relu\"", "gpt2");
    refused("hidden % heads",
            "{\"model_type\": \"llama\", \"hidden_size\": 100, \"num_attention_heads\": 8}",
            "hidden_size = 100", "num_attention_heads = 8");
    refused("heads % kv",
            "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 8,"
            " \"num_key_value_heads\": 3}",
            "num_attention_heads = 8", "num_key_value_heads = 3");
    refused("zero layers", "{\"model_type\": \"olmo2\", \"num_hidden_layers\": 0}",
            "num_hidden_layers = 0", "positive");
    refused("negative vocab", "{\"model_type\": \"gpt2\", \"vocab_size\": -5}", "vocab_size = -5",
            "positive");
    refused("size as string", "{\"model_type\": \"llama\", \"hidden_size\": \"64\"}", "hidden_size",
            "integer");
    refused("tie not bool", "{\"model_type\": \"llama\", \"tie_word_embeddings\": 1}",
            "tie_word_embeddings", "true or false");
    refused("layer_types length",
            "{\"model_type\": \"olmo3\", \"num_hidden_layers\": 2,"
            " \"layer_types\": [\"full_attention\"]}",
            "layer_types has 1 entries", "num_hidden_layers is 2");
    refused("layer_types value",
            "{\"model_type\": \"olmo3\", \"num_hidden_layers\": 1,"
            " \"layer_types\": [\"chunked_attention\"]}",
            "layer_types[0] \"chunked_attention\"", "sliding_attention");
    refused("qwen sliding layer_types",
            "{\"model_type\": \"qwen3\", \"num_hidden_layers\": 1,"
            " \"layer_types\": [\"sliding_attention\"]}",
            "layer_types[0] \"sliding_attention\"", "qwen3");
    refused("olmo3 window null",
            "{\"model_type\": \"olmo3\", \"num_hidden_layers\": 4, \"sliding_window\": null}",
            "sliding_window = 0", "layers slide");
    refused("odd head_dim",
            "{\"model_type\": \"llama\", \"hidden_size\": 12, \"num_attention_heads\": 4}",
            "head_dim = 3", "even");
    hf_arch_config c;
    lmd_err e = {{0}};
    char missing[4400];
    snprintf(missing, sizeof missing, "%s/nope/config.json", dir);
    int rc = hub_config_load(missing, &c, &e);
    HT_EXPECT_ERR("config.json missing", rc, &e, "nope/config.json", "unable to open");
}

int main(void) {
    ht_scratch(dir, sizeof dir, "hub_config");
    snprintf(path, sizeof path, "%s/config.json", dir);
    test_defaults();
    test_refusals();
    return tu_summary("test_hub_config");
}
