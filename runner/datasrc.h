/* datasrc.h — data sources named by one string, as on the command line and in specs:
 * "synthetic" | "synthetic:SEED" | "text:PATH" | "shards:GLOB" (llm.c .bin shards) |
 * "tok:TOKENIZER:PATH" (a text or .jsonl file through an HF tokenizer.json, in memory). */
#ifndef LMDISP_DATASRC_H
#define LMDISP_DATASRC_H

#include "data.h"
#include "tokenizer.h"
#include "util.h"

/* One JSON Lines line: the string field `field` of the object, encoded (appended to out). */
int lmd_tokenize_json_line(const lmd_tokenizer *tok, tok_ws *w, const char *line, size_t len,
                           const char *field, tok_ids *out, lmd_err *err);

/* Loads the source. vocab_size applies to shards (0 = LMD_DATA_SHARDS_VOCAB, GPT-2's) and to the synthetic
 * corpus (0 = its default); text is always 256. */
int lmd_datasrc_load(const char *spec, int vocab_size, lmd_tokens *out, lmd_err *err);

/* The paper's evaluation sampling on a text source "tok:TOKENIZER:PATH". Documents: the lines
 * of a .jsonl file (field "text"; empty ones skipped), else the paragraphs of a text file
 * (runs of lines separated by blank lines). Starts are visited in a seeded random order (a
 * Fisher-Yates shuffle of all document indices with lmd_rng(seed, LMD_STREAM_DATA)); from a
 * start, documents s, s+1, ... are joined with "\n\n" until they hold at least min_words
 * words (runs of non-whitespace bytes), the join is encoded and truncated to T tokens. A
 * start is kept when it reaches min_words before the last document and encodes to >= T
 * tokens; the first n_seq kept make the set. Fewer possible: refused, saying how many it can
 * make. *ids (n_seq*T, malloc'ed), starts[i] (n_seq, malloc'ed; NULL: not returned) = the
 * document each sequence starts at, *n_docs = documents found. Ids checked against
 * vocab_size (the tokenizer's id count must not exceed it). */
typedef struct {
    int n_seq, T, min_words;
    uint64_t seed;
} lmd_paper_sampling;
int lmd_datasrc_paper_sample(const char *spec, int vocab_size, const lmd_paper_sampling *ps,
                             int32_t **ids, size_t **starts, size_t *n_docs, lmd_err *err);

#endif
