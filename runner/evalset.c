/* evalset.c — flags and construction of the fixed evaluation set (evalset.h). */
#include "evalset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasrc.h"
#include "geometry.h"

const char *lmd_evalopts_help(void) {
    return "evaluation set (the same for every checkpoint measured):\n"
           "  --data SRC          synthetic | synthetic:SEED | text:PATH | shards:GLOB |\n"
           "                      tok:TOKENIZER:PATH (default synthetic): the first N windows\n"
           "                      of its validation split\n"
           "  --val-fraction X    the split, as `lmdisp train` makes it (default 0.1)\n"
           "  --tokens FILE.bin   instead: the first N windows of this llm.c token file\n"
           "                      (window i = tokens i*T .. (i+1)*T-1)\n"
           "  --sequences N       windows measured (default 16)\n"
           "  --seq-len T         window length (default min(n_ctx, 64))\n"
           "  --bins N            cosine histogram bins on [-1, 1] (default 128)\n"
           "pretrained (HF) model with --data tok:TOKENIZER:PATH: the paper's sampling\n"
           "  (docs/DATA.md): from seeded random starts, consecutive documents joined until\n"
           "  --min-words words (default 1024), truncated to --seq-len tokens (default 512),\n"
           "  --sequences sequences (default 100); --seed S (default 0) orders the starts\n"
           "  --threads N         BLAS/OpenMP threads (default 1)\n"
           "  --measure-thread    pretrained model, --threads 1: measure hidden state l on a\n"
           "                      second thread while the forward computes block l+1 (same\n"
           "                      numbers, bit for bit; one more copy of the activations)\n";
}

void lmd_evalopts_parse(lmd_args *a, lmd_evalopts *o) {
    memset(o, 0, sizeof *o);
    o->n_seq = LMD_EVAL_DEFAULT_SEQUENCES;
    o->T = 0;
    o->val_fraction = LMD_DATA_VAL_FRACTION; /* as `lmdisp train` splits */
    o->bins = LMD_GEOM_NBINS;
    o->threads = 1;
    o->data = lmd_args_str(a, "data");
    o->tokens = lmd_args_str(a, "tokens");
    o->n_seq_given = lmd_args_str(a, "sequences") != NULL;
    lmd_args_int(a, "sequences", &o->n_seq, 1, 1 << 24);
    o->min_words = LMD_PAPER_MIN_WORDS;
    o->seed = 0;
    o->sampling_given = lmd_args_str(a, "min-words") != NULL || lmd_args_str(a, "seed") != NULL;
    lmd_args_int(a, "min-words", &o->min_words, 0, 1 << 30);
    lmd_args_i64(a, "seed", &o->seed, 0);
    lmd_args_int(a, "seq-len", &o->T, 1, 1 << 24);
    lmd_args_double(a, "val-fraction", &o->val_fraction);
    lmd_args_int(a, "bins", &o->bins, 1, 1 << 20);
    lmd_args_int(a, "threads", &o->threads, 1, 1024);
    o->measure_thread = lmd_args_flag(a, "measure-thread");
    if (o->measure_thread && o->threads > 1) {
        fprintf(stderr,
                "lmdisp %s: --measure-thread runs the forward on one thread and the "
                "measurement on another: it needs --threads 1, got --threads %d\n",
                a->cmd, o->threads);
        a->failed = 1;
    }
    if (o->data && o->tokens) {
        fprintf(stderr, "lmdisp %s: give --data or --tokens, not both\n", a->cmd);
        a->failed = 1;
    }
    if (!(o->val_fraction > 0.0 && o->val_fraction < 1.0)) {
        fprintf(stderr, "lmdisp %s: --val-fraction must be in (0, 1), got %g\n", a->cmd,
                o->val_fraction);
        a->failed = 1;
    }
}

int lmd_evalset_load(lmd_evalset *es, const lmd_evalopts *o, const gpt_config *cfg, lmd_err *err) {
    memset(es, 0, sizeof *es);
    int T = o->T;
    if (T == 0) T = cfg->n_ctx < LMD_EVAL_DEFAULT_SEQ_LEN ? cfg->n_ctx : LMD_EVAL_DEFAULT_SEQ_LEN;
    if (T > cfg->n_ctx)
        return lmd_errf(err, "--seq-len %d exceeds the checkpoint's n_ctx %d", T, cfg->n_ctx);
    es->n_seq = o->n_seq;
    es->T = T;
    lmd_span span;
    if (o->tokens) {
        if (lmd_data_shards(&es->toks, o->tokens, cfg->vocab_size, err)) return -1;
        es->kind = "tokens";
        es->val_fraction = NAN;
        snprintf(es->source, sizeof es->source, "%s", o->tokens);
        span.tok = es->toks.tok;
        span.n = es->toks.n;
        span.vocab_size = es->toks.vocab_size;
    } else {
        const char *src = o->data ? o->data : "synthetic";
        if (lmd_datasrc_load(src, cfg->vocab_size, &es->toks, err)) return -1;
        if (es->toks.vocab_size > cfg->vocab_size) {
            lmd_errf(err, "data %s has vocabulary %d but the checkpoint's is %d", src,
                     es->toks.vocab_size, cfg->vocab_size);
            lmd_evalset_free(es);
            return -1;
        }
        es->kind = "validation";
        es->val_fraction = o->val_fraction;
        snprintf(es->source, sizeof es->source, "%s", src);
        // B = 1: the split is max(val_fraction * n, B*T + 1) tokens, i.e. the split of any
        // `lmdisp train` run on this data whose val_fraction * n covers one training batch.
        lmd_span train;
        if (lmd_data_split(&es->toks, o->val_fraction, 1, T, &train, &es->val, err)) {
            lmd_evalset_free(es);
            return -1;
        }
        span = es->val;
    }
    if ((size_t)o->n_seq * (size_t)T > span.n) {
        lmd_errf(err,
                 "%s%s holds %zu tokens, too few for %d windows of %d tokens (%zu needed); "
                 "lower --sequences or --seq-len",
                 o->tokens ? "" : "validation split of ", es->source, span.n, o->n_seq, T,
                 (size_t)o->n_seq * (size_t)T);
        lmd_evalset_free(es);
        return -1;
    }
    if (lmd_eval_windows(&span, o->n_seq, T, &es->inputs, err)) {
        lmd_evalset_free(es);
        return -1;
    }
    return 0;
}

void lmd_evalset_free(lmd_evalset *es) {
    if (!es) return;
    free(es->inputs);
    if (es->toks.tok) lmd_tokens_free(&es->toks);
    memset(es, 0, sizeof *es);
}
