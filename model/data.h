/* data.h — token data: the built-in synthetic corpus, byte-level text files, llm.c token
 * shards (DESIGN.md 4.2); the train/validation split, batch loader and fixed evaluation set. */
#ifndef LMDISP_DATA_H
#define LMDISP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* A token stream held in memory. */
typedef struct {
    int32_t *tok;     /* ids in [0, vocab_size): any vocabulary (uint16 and uint32 files) */
    size_t n;         /* number of tokens */
    int vocab_size;   /* ids are < vocab_size */
    char source[512]; /* what it was loaded from, for messages and provenance */
} lmd_tokens;

/* Options of the built-in synthetic corpus. */
typedef struct {
    uint64_t seed;   /* corpus seed (independent of the model seed) */
    size_t n_tokens; /* default 2,000,000 */
    int vocab_size;  /* default 256 */
} lmd_synth_opts;
lmd_synth_opts lmd_synth_default(void);

/* Generates the synthetic corpus deterministically from opts. */
int lmd_data_synthetic(lmd_tokens *out, const lmd_synth_opts *opts, lmd_err *err);
/* Reads a file as bytes: vocab 256. */
int lmd_data_text(lmd_tokens *out, const char *path, lmd_err *err);
/* Reads one llm.c token file (uint16 or uint32 form, DESIGN 4.2) or every file matching a glob
 * pattern (sorted by name, concatenated), through lmd_tokfile_read. vocab_size: ids must be
 * below it (e.g. 50257 for GPT-2 BPE, 128256 for Llama-3). */
int lmd_data_shards(lmd_tokens *out, const char *pattern, int vocab_size, lmd_err *err);
/* The vocabulary of token shards when none is given (`lmdisp train --data shards:...`, a spec's
 * data.vocab with source shards): GPT-2 BPE's. */
#define LMD_DATA_SHARDS_VOCAB 50257
/* Writes tokens as one llm.c shard (header 20240520, version 1, count, then uint16). */
int lmd_data_write_shard(const char *path, const uint16_t *tok, size_t n, lmd_err *err);
void lmd_tokens_free(lmd_tokens *t);

/* A non-owning view of a contiguous range of tokens. */
typedef struct {
    const int32_t *tok;
    size_t n;
    int vocab_size;
} lmd_span;

/* The default held-out fraction (`lmdisp train --val-fraction`, the spec's data.val_fraction). */
#define LMD_DATA_VAL_FRACTION 0.1

/* Splits: the last val_fraction of the stream (at least enough for one window) is
 * validation, the rest training. Fails if either part is too short for one B x T batch. */
int lmd_data_split(const lmd_tokens *all, double val_fraction, int B, int T, lmd_span *train,
                   lmd_span *val, lmd_err *err);

/* Sequential batch loader: batch k takes tokens [pos, pos + B*T + 1), inputs tok[pos+i],
 * targets tok[pos+i+1]; pos advances by B*T and wraps to 0 when the next batch would not fit.
 * Its whole state is `pos`, so a checkpoint stores it and resume continues bitwise. */
typedef struct {
    lmd_span span;
    int B, T;
    uint64_t pos;
} lmd_loader;
int lmd_loader_init(lmd_loader *ld, lmd_span span, int B, int T, lmd_err *err);
/* Sets pos (e.g. from a checkpoint); fails if a batch starting there would not fit the span,
 * which means the checkpoint was made on different data or batch shape. */
int lmd_loader_seek(lmd_loader *ld, uint64_t pos, lmd_err *err);
/* Fills inputs and targets (B*T ints each) and advances. */
void lmd_loader_next(lmd_loader *ld, int *inputs, int *targets);

/* The fixed evaluation set for geometry: the first n_seq non-overlapping windows of length T
 * of span (window i = tokens i*T .. (i+1)*T-1). Identical for every model on the same data.
 * inputs: n_seq*T ints, allocated by the call (free()). */
int lmd_eval_windows(const lmd_span *span, int n_seq, int T, int **inputs, lmd_err *err);

#endif
