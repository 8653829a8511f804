/* evalset.h — the fixed evaluation set of `lmdisp measure` and `lmdisp track`: the flags that
 * choose it and the code that builds it from a data source or a token file (DESIGN.md 4.5). */
#ifndef LMDISP_EVALSET_H
#define LMDISP_EVALSET_H

#include "args.h"
#include "data.h"
#include "gpt.h"
#include "util.h"

#define LMD_EVAL_DEFAULT_SEQUENCES 16
#define LMD_EVAL_DEFAULT_SEQ_LEN 64 /* capped at n_ctx; `lmdisp train`'s default --seq */

/* The flags. */
typedef struct {
    const char *data;    /* --data SRC (NULL = synthetic) */
    const char *tokens;  /* --tokens FILE.bin (excludes --data) */
    int n_seq;           /* --sequences */
    int T;               /* --seq-len; 0 = min(n_ctx, LMD_EVAL_DEFAULT_SEQ_LEN) */
    double val_fraction; /* --val-fraction, as `lmdisp train` */
    int bins;            /* --bins */
    int threads;         /* --threads */
    int measure_thread;  /* --measure-thread (pretrained models; needs threads == 1) */
    int n_seq_given;     /* --sequences was given (else a pretrained model on --data tok:
                          * takes the paper's 100) */
    int min_words;       /* --min-words (paper's sampling; default 1024) */
    int64_t seed;        /* --seed (paper's sampling; default 0) */
    int sampling_given;  /* --min-words or --seed was given */
} lmd_evalopts;
#define LMD_PAPER_SEQUENCES 100
#define LMD_PAPER_MIN_WORDS 1024

/* Help text of the flags above. */
const char *lmd_evalopts_help(void);
/* Defaults, then the flags present in a; bad values set a->failed. */
void lmd_evalopts_parse(lmd_args *a, lmd_evalopts *o);

/* The evaluation set built for one model config. */
typedef struct {
    lmd_tokens toks; /* everything loaded (owned) */
    lmd_span val;    /* validation split for the validation loss; n = 0 with --tokens */
    int *inputs;     /* (n_seq, T) token ids of the geometry windows (owned) */
    int n_seq, T;
    double val_fraction; /* NaN with --tokens */
    const char *kind;    /* "validation" or "tokens" */
    char source[600];    /* data source string or token file, for output and provenance */
} lmd_evalset;

/* Builds the set for cfg:
 *   --tokens FILE: windows i*T .. (i+1)*T-1, i < n_seq, of the file; ids checked < vocab.
 *   otherwise: the data source (vocab = cfg's, as `lmdisp train` loads it), split as
 *   `lmdisp train` splits it (last val_fraction is validation), windows from the start of
 *   the validation part — identical for every model trained on the same data.
 * Returns 0, or -1 with a message (T > n_ctx, too few tokens, unreadable file, ...). */
int lmd_evalset_load(lmd_evalset *es, const lmd_evalopts *o, const gpt_config *cfg, lmd_err *err);
void lmd_evalset_free(lmd_evalset *es);

#endif
