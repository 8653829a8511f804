/* hfexport.h — an lmdisp GPT model written as a Hugging Face GPT-2 directory (config.json,
 * model.safetensors, generation_config.json, tokenizer files) that transformers'
 * GPT2LMHeadModel loads as it is: HF's tensor names, Conv1D [in, out] weights, tied wte. */
#ifndef LMDISP_HFEXPORT_H
#define LMDISP_HFEXPORT_H

#include "gpt.h"
#include "util.h"

/* The version of transformers whose save_pretrained layout the files follow (written as
 * config.json's transformers_version). */
#define HF_EXPORT_TRANSFORMERS_VERSION "4.51.3"

typedef struct {
    const char *tokenizer; /* tokenizer.json file or a directory holding one; NULL: none */
    int force;             /* replace an existing non-empty directory */
} hf_export_opts;

/* Writes dir atomically: everything goes to a temporary sibling directory first (fsynced),
 * which is then renamed to dir, so dir is either absent/old or complete. Refuses an existing
 * non-empty dir unless o->force. Returns 0; 2 for bad input (a non-empty dir without force,
 * an unusable tokenizer); -1 for any other failure. Message in err.
 * With a tokenizer: it must load (tok_load) and its ids must fit the model's vocabulary;
 * tokenizer.json is copied, tokenizer_config.json and special_tokens_map.json are copied
 * from beside it when present (model_max_length set to the model's n_ctx), else a
 * tokenizer_config.json for PreTrainedTokenizerFast is written; its end-of-text token gives
 * bos/eos ids. Without one, bos/eos are GPT-2's 50256 when the vocabulary has that id. */
int hf_export_gpt2(const gpt_model *m, const char *dir, const hf_export_opts *o, lmd_err *err);

/* Writes a safetensors file of the model's parameters in HF GPT-2 naming ("transformer."
 * prefix, Conv1D weights transposed to [in, out], no lm_head: tied), all F32, tensors and
 * header keys sorted by name, header padded with spaces to a multiple of 8 bytes. The file is
 * fsynced. Returns 0 or -1. */
int hf_write_gpt2_safetensors(const gpt_model *m, const char *path, lmd_err *err);

#endif
