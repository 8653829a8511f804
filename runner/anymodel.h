/* anymodel.h — one model of any form a command takes (DESIGN 4.6): an lmdisp checkpoint, an HF
 * model directory or hf:ORG/NAME[@REV], behind one forward call that hands every hidden state
 * 0..n_layer to a callback, so `forward`, `measure` and `track` treat them alike. HF models
 * stream one block at a time (model/hfarch.h); lmdisp checkpoints run gpt_forward. */
#ifndef LMDISP_ANYMODEL_H
#define LMDISP_ANYMODEL_H

#include <stdint.h>

#include "checkpoint.h"
#include "geometry.h"
#include "gpt.h"
#include "hfarch.h"
#include "hfmodel.h"
#include "datasrc.h"
#include "util.h"

typedef struct {
    int is_hf;
    gpt_model gm; /* lmdisp checkpoint */
    lmd_train_state st;
    hub_model hm; /* HF model */
    /* model facts, whatever the form */
    char model_type[32]; /* "lmdisp-gpt" for an lmdisp checkpoint */
    int n_layer, hidden_size, vocab_size;
    int max_T; /* longest sequence the model takes (0 = no limit: RoPE) */
    int64_t n_params;
} lmd_anymodel;

/* Opens spec: hf:..., or a directory with config.json, as an HF model (hub_model_open), else
 * an lmdisp checkpoint file. Returns 0 or -1 with a message naming spec. */
int lmd_anymodel_open(lmd_anymodel *m, const char *spec, lmd_err *err);
void lmd_anymodel_close(lmd_anymodel *m);

/* Forward of n_seq sequences of T tokens (checked against the vocabulary and max_T); calls
 * on_hidden for hidden states 0..n_layer in order, writes (n_seq, T, V) logits when non-NULL. */
int lmd_anymodel_forward(lmd_anymodel *m, const int32_t *tokens, int n_seq, int T,
                         hf_hidden_fn on_hidden, void *ctx, float *logits, lmd_err *err);

/* The paper's protocol for pretrained models: 512-token sequences (LMD_HF_DEFAULT_SEQ_LEN),
 * each measured on its own (no packing across sequences), the cosine matrices averaged. */
#define LMD_HF_DEFAULT_SEQ_LEN 512

/* The evaluation windows of an HF model: the first n_seq windows of T tokens of the llm.c
 * token file `tokens` (uint16 or uint32), ids checked against the model's vocabulary; T = 0
 * means LMD_HF_DEFAULT_SEQ_LEN (capped at gpt2's positions). *ids malloc'ed (n_seq*T). */
int lmd_anymodel_eval_tokens(const lmd_anymodel *m, const char *tokens, int n_seq, int *T,
                             int32_t **ids, lmd_err *err);
/* The evaluation sequences of an HF model from a --data source tok:TOKENIZER:PATH (text or
 * JSON Lines encoded with a tokenizer.json whose ids the model's vocabulary covers): the
 * paper's sampling (lmd_datasrc_paper_sample: seeded random starts, documents joined to at
 * least ps->min_words words, truncated to ps->T tokens, ps->n_seq sequences). ps->T = 0 is
 * set to LMD_HF_DEFAULT_SEQ_LEN (capped at gpt2's positions). Other sources (synthetic,
 * text:, shards:) are refused: they are not the model's tokenization (shards: --tokens).
 * *starts: the document of each sequence (malloc'ed). */
int lmd_anymodel_eval_data(const lmd_anymodel *m, const char *data, lmd_paper_sampling *ps,
                           int32_t **ids, size_t **starts, size_t *n_docs, lmd_err *err);

/* Condensation metrics (analysis/geometry.h) of n_seq sequences of T tokens, streamed: every
 * hidden state goes into the accumulator as the forward produces it. chunk: sequences per
 * forward pass (<= 0: all at once, the fastest for a streamed HF model, whose weights are read
 * once per pass). progress: a label for "layer l/L, ETA" lines on stderr every few seconds
 * (NULL: quiet). measure_thread: add the hidden states on a measurement thread
 * (analysis/geompipe.h) while the forward goes on; the same numbers, bit for bit (needs
 * OpenBLAS at 1 thread). Fills *out (free with lmd_geom_free). */
int lmd_anymodel_measure(lmd_anymodel *m, const int32_t *tokens, int n_seq, int T, int nbins,
                         int chunk, int measure_thread, const char *progress, lmd_geom *out,
                         lmd_err *err);

#endif
