/* hfmodel.h — a pretrained model as lmdisp sees it: resolves a model form of DESIGN 4.6
 * (an HF directory or hf:ORG/NAME[@REVISION] in the offline hub cache), parses config.json
 * (jansson) into an hf_arch_config, opens its safetensors and checks every tensor the
 * architecture expects (name, shape) before the first forward. Series of revisions in
 * training order (DESIGN 4.6) for `track hf:ORG/NAME@*`. */
#ifndef LMDISP_HFMODEL_H
#define LMDISP_HFMODEL_H

#include <stddef.h>

#include "hfarch.h"
#include "safetensors.h"
#include "util.h"

/* An opened model. m->src serves m->weights to hf_forward: get_f32 checks the shape the
 * caller expects against the file's, checks the dtype and converts to float32; names are
 * the HF names of HF.md. For gpt2 a name resolves with or without the "transformer."
 * prefix, whichever the file uses (ask for "wte.weight" or "transformer.wte.weight", both
 * work; has() answers the same way). src.ctx is a heap context freed by hub_model_close (a
 * hub_model may be moved; close it once).
 *
 * Validation at open: every tensor the architecture reads must exist with the shape the
 * config implies and dtype F32/BF16/F16; lm_head.weight must exist iff untied (a tied model's
 * lm_head.weight is accepted and not used, as in HF). Any other tensor is REFUSED (a weight
 * lmdisp would ignore means the model is not what the config says), except buffers HF
 * ignores: gpt2's h.N.attn.bias / attn.masked_bias and llama-family rotary_emb.inv_freq. */
typedef struct {
    char dir[4096];  /* the resolved snapshot / model directory */
    char spec[1024]; /* what the user wrote */
    hf_arch_config cfg;
    st_set *weights;
    hf_tensor_source src; /* reads from weights, checks shapes, names file + tensor */
    int64_t n_params;     /* from the weights actually present (tied lm_head once) */
} hub_model;

/* 1 if s names an HF model form: starts with "hf:", or is a directory holding config.json. */
int hub_is_model_form(const char *s);

/* Resolves spec to a directory. A directory: must hold config.json; its real path.
 * hf:ORG/NAME[@REV] (REV defaults to main): the cache root is $HF_HUB_CACHE (or its old name
 * $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else ${XDG_CACHE_HOME:-~/.cache}/huggingface/hub
 * (huggingface_hub's own rule); models--ORG--NAME/refs/REV (REV may hold '/') -> commit ->
 * snapshots/<commit>, which must hold config.json; a 40-hex REV names the snapshot. Nothing
 * is downloaded: a missing repo, ref, snapshot or file is an error naming the path and the
 * command that would fetch it (huggingface-cli download ORG/NAME --revision REV). REV "*" is
 * refused (a series: hub_list_series). */
int hub_resolve(const char *spec, char *dir, size_t n, lmd_err *err);

/* hub_resolve for a directory that must hold the file `need` instead of config.json (e.g.
 * tokenizer.json for `lmdisp tokenize --tokenizer hf:ORG/NAME`). */
int hub_resolve_file(const char *spec, const char *need, char *dir, size_t n, lmd_err *err);

/* For an hf: spec, the command that would download it ("huggingface-cli download ORG/NAME
 * --revision REV") into out; -1 for other forms. */
int hub_fetch_hint(const char *spec, char *out, size_t n);

/* Parses DIR/config.json into *cfg, applying the defaults of transformers' config classes
 * for absent fields (e.g. rms_norm_eps 1e-6 llama/qwen, 1e-5 olmo; tie_word_embeddings true
 * for gpt2 only; num_key_value_heads 32 for qwen2/qwen3 when absent, = heads when null or
 * absent elsewhere; head_dim 128 for qwen3 when absent, hidden/heads when null or absent
 * elsewhere; olmo3 layer_types sliding,sliding,sliding,full...; yarn's beta_fast 32,
 * beta_slow 1, original_max_position = max_position_embeddings, truncate true) and refusing,
 * with the field and value named, whatever DESIGN 4.6 says to refuse: model_type outside
 * gpt2/llama/qwen2/qwen3/olmo2/olmo3, a rope_scaling (or rope_parameters) type other than
 * default (yarn accepted for olmo3), partial_rotary_factor != 1, Qwen use_sliding_window or
 * sliding layer_types, an activation other than silu (llama family) or the tanh GELU (gpt2:
 * gelu_new, gelu_pytorch_tanh, gelu_python_tanh, gelu_fast, gelu_accurate), inconsistent
 * or non-positive sizes. cfg->layer_sliding is owned: hf_arch_config_free. */
int hub_config_load(const char *config_json_path, hf_arch_config *cfg, lmd_err *err);

/* resolve + config + weights + validation of every expected tensor (see hub_model). On
 * failure nothing stays open. */
int hub_model_open(hub_model *m, const char *spec, lmd_err *err);
void hub_model_close(hub_model *m);

/* One revision of a cached repo, for hf:ORG/NAME@* */
typedef struct {
    char name[256];  /* refs/ name, e.g. stage1-step1000-tokens5B, main */
    char spec[1024]; /* hf:ORG/NAME@name */
    int stage;       /* 0 when the name has no stageN; ingredient counts within it */
    int ingredient;
    long long step; /* -1 when the name has no step (then skipped, except main) */
    int is_main;
} hub_revision;

/* Every revision under refs/ (ref names with '/' included) in training order: stage, then
 * ingredient, then step (numeric), then name; main last. stageN / ingredientN / stepN count
 * only as whole components of the name (split at '-', '_', '/'), so tokens50B is ignored and
 * step1000-tokens4B (OLMo-1) is stage 0. Revisions with no step (other than main) are left
 * out, each named in *skipped (sorted, newline-terminated names the caller prints; may be
 * NULL). *revs and *skipped are malloc'ed (free them). */
int hub_list_series(const char *spec_star, hub_revision **revs, int *n, char **skipped,
                    lmd_err *err);

#endif
