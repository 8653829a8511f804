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

/* Loads the source. vocab_size applies to shards (0 = GPT-2's 50257) and to the synthetic
 * corpus (0 = its default); text is always 256. */
int lmd_datasrc_load(const char *spec, int vocab_size, lmd_tokens *out, lmd_err *err);

#endif
