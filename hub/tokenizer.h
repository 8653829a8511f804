/* tokenizer.h — HF tokenizer.json byte-level BPE tokenizers (GPT-2, Llama-3, Qwen2, OLMo-2/3
 * style; HF.md "Tokenizers"), encoding as HF tokenizers' encode(text, add_special_tokens=False)
 * and decoding. Whatever the file asks for that is not implemented exactly is refused by name. */
#ifndef LMDISP_TOKENIZER_H
#define LMDISP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct lmd_tokenizer lmd_tokenizer;

/* Loads path: a tokenizer.json file, or a directory holding one. Validates every section
 * (model, normalizer, pre_tokenizer, added_tokens, decoder); messages name file and field. */
int tok_load(lmd_tokenizer **out, const char *path, lmd_err *err);
void tok_free(lmd_tokenizer *t);

/* Largest id + 1 over the vocabulary and the added tokens. */
uint32_t tok_vocab_size(const lmd_tokenizer *t);
/* The id of an added token (by content) or, failing that, of a vocabulary token given as
 * its raw text; -1 when neither exists. */
int64_t tok_token_id(const lmd_tokenizer *t, const char *text);
/* The end-of-text token: the first special added token among <|endoftext|>,
 * <|end_of_text|>, </s>, <|end|>; -1 when there is none. *name (may be NULL) gets its text. */
int64_t tok_eos_id(const lmd_tokenizer *t, const char **name);
/* A one-line description for logs: "BPE, 50257 ids, 50000 merges, pre-tokenizer GPT-2". */
const char *tok_describe(const lmd_tokenizer *t);

/* Per-thread workspace: match data, BPE scratch, a cache of recent words. */
typedef struct tok_ws tok_ws;
tok_ws *tok_ws_new(const lmd_tokenizer *t);
void tok_ws_free(tok_ws *w);

/* A growable id list. */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} tok_ids;
void tok_ids_push(tok_ids *a, uint32_t id);
void tok_ids_free(tok_ids *a);

/* Checks that s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points above
 * U+10FFFF). Returns -1 when it is, else the offset of the first bad byte. */
int64_t tok_utf8_invalid_at(const char *s, size_t n);

/* Encodes text[0..len) (valid UTF-8, checked by the caller) and appends the ids to out.
 * text[len..len+ctx) is the raw text that follows in the same document (ctx = 0 at the
 * document's end): the pre-tokenizer's lookahead sees it, but nothing of it is encoded, so
 * a document cut at positions of tok_safe_cut encodes exactly as the whole document. */
int tok_encode(const lmd_tokenizer *t, tok_ws *w, const char *text, size_t len, size_t ctx,
               tok_ids *out, lmd_err *err);

/* Number of raw bytes after a cut at position c that tok_encode needs as context. */
#define TOK_CUT_CONTEXT 4

/* Bytes after a candidate cut that tok_safe_cut reads (context and added tokens that might
 * span it): it only returns c with c + window < n, so its answer never depends on how much
 * of the document is in memory beyond that. */
size_t tok_cut_window(const lmd_tokenizer *t);

/* The first position c in [from, n - tok_cut_window) where a document may be cut without changing
 * its encoding, or 0 when there is none (or when the pre-tokenizer is not one whose cut
 * points are proven; then documents are encoded whole). *ctx = the bytes after c to pass as
 * tok_encode's context (whole characters). See tokenizer.c for the proof. */
size_t tok_safe_cut(const lmd_tokenizer *t, const char *buf, size_t n, size_t from, size_t *ctx);

/* Appends the bytes of ids to *out (malloc'ed, *len bytes, NUL-terminated); an id out of
 * range is an error naming its position. */
int tok_decode(const lmd_tokenizer *t, const uint32_t *ids, size_t n, char **out, size_t *len,
               lmd_err *err);

#endif
