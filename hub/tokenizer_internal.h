/* tokenizer_internal.h — the loaded tokenizer, shared by tokenizer.c (tokenizer.json -> these
 * tables) and tokencode.c (encode, safe cuts, decode with them). Not for use outside them:
 * tokenizer.h is the API. */
#ifndef LMDISP_TOKENIZER_INTERNAL_H
#define LMDISP_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "bpe.h"
#include "tokenizer.h"

typedef struct {
    char *s;
    size_t len;
    uint32_t id;
    int special;
} added_token;

struct lmd_tokenizer {
    char path[4096];
    bpe_strmap vocab; /* raw bytes -> id (byte-level tokens only) */
    bpe_merges merges;
    uint32_t byte_id[256];
    int ignore_merges, nfc, cut_proven;
    pcre2_code *re;
    char *re_src;
    added_token *added; /* sorted by first byte, then length descending */
    int n_added;
    size_t added_maxlen;
    int first_lo[256], first_hi[256]; /* added[first_lo[b] .. first_hi[b]) start with b */
    uint32_t n_ids;                   /* max id + 1 */
    uint64_t *dec_off;                /* id -> bytes in dec_pool; dec_len UINT32_MAX = no token */
    uint32_t *dec_len;
    char *dec_pool;
    size_t n_merges;
    char desc[256];
};

#endif
