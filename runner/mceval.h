/* mceval.h — zero-shot multiple-choice scoring as lm-evaluation-harness does it for its
 * loglikelihood tasks (lm_eval/api/model.py _encode_pair, models/huggingface.py
 * _loglikelihood_tokens, api/task.py process_results): tasks as JSON Lines of
 * {context, choices, gold}, acc, acc_norm (per character) and acc_bytes (per UTF-8 byte). */
#ifndef LMDISP_MCEVAL_H
#define LMDISP_MCEVAL_H

#include <stdint.h>

#include "anymodel.h"
#include "mctask.h"
#include "tokenizer.h"

/* What lm-eval's HFLM needs to score: the context window (max_length: n_positions /
 * max_position_embeddings / n_ctx of the model, else 2048) and the prefix token used for an
 * empty context (lm-eval: the tokenizer's bos, else eos; here the end-of-text token unless
 * set). */
typedef struct {
    lmd_anymodel *model;
    const lmd_tokenizer *tok;
    int max_length;
    int64_t prefix_token;
} mc_scorer;

/* Fills s for model m and tokenizer t: checks that t's ids fit the model's vocabulary and
 * finds max_length and the prefix token (prefix < 0: the end-of-text token). */
int mc_scorer_init(mc_scorer *s, lmd_anymodel *m, const lmd_tokenizer *t, int64_t prefix,
                   lmd_err *err);

/* One choice scored. */
typedef struct {
    double loglik;     /* sum of log p(continuation token | window) */
    int n_ctx_tokens;  /* len(context_enc) before truncation */
    int n_cont_tokens; /* len(continuation_enc) */
    int greedy;        /* every continuation token is the argmax (lm-eval's is_greedy) */
    int truncated;     /* the window lost tokens on the left */
} mc_choice_score;

typedef struct {
    int n_items;
    int correct, correct_norm, correct_bytes;
    double acc, acc_norm, acc_bytes; /* correct / n_items */
    int n_truncated;                 /* requests whose window was cut on the left */
} mc_result;

/* Scores every item of task t. scores (may be NULL): malloc'ed, one per choice of every
 * item in order, and *preds (may be NULL): 3 ints per item (pred, pred_norm, pred_bytes).
 * Returns 0, or -1 with a message naming FILE:LINE of the item that could not be scored
 * (a continuation that encodes to no token, longer than the window). */
int mc_eval_task(const mc_scorer *s, const mc_task *t, mc_result *r, mc_choice_score **scores,
                 int **preds, lmd_err *err);

/* The same in two steps, for several ranks sharing a task: mc_score_task scores the items i
 * with i % n_parts == part into sc (mc_task_n_choices(t) entries, one per choice of every item
 * in order; the other entries are left as they are), mc_task_metrics computes the result and
 * the predictions (pr: 3 per item, may be NULL) from every entry of sc. */
size_t mc_task_n_choices(const mc_task *t);
int mc_score_task(const mc_scorer *s, const mc_task *t, int part, int n_parts, mc_choice_score *sc,
                  lmd_err *err);
void mc_task_metrics(const mc_task *t, const mc_choice_score *sc, mc_result *r, int *pr);

/* The encoding of one request exactly as lm-eval's loglikelihood: (context, " " + choice)
 * with trailing whitespace of the context moved to the continuation, whole = enc(ctx+cont),
 * ctx_enc = enc(ctx), cont_enc = whole[len(ctx_enc):]; an empty context uses
 * [prefix] (or the continuation's first token when it is the prefix). ids malloc'ed:
 * ctx_enc then cont_enc. */
int mc_encode_request(const mc_scorer *s, tok_ws *w, const char *context, const char *choice,
                      uint32_t **ids, int *n_ctx, int *n_cont, lmd_err *err);

/* The data.tokenizer of the study cell holding checkpoint ck (STUDY/cells/<id>/ckpt/stepN.h5,
 * its settings file), malloc'ed, or NULL when ck is not in a study or it had none. */
char *lmd_study_tokenizer_of(const char *ck);

#endif
