/* tokencode.c — text <-> ids with a loaded tokenizer (tokenizer_internal.h): UTF-8 validation,
 * the per-thread workspace and its word cache, encode (added tokens, NFC, pre-tokenizer regex,
 * BPE), the proven-safe cut points of tok_safe_cut, and decode. */
#include "tokenizer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---- UTF-8 ---- */

int64_t tok_utf8_invalid_at(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            if (x & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF)
            k = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            k = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 3, cp = c & 0x07;
        else
            return (int64_t)i;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return (int64_t)i;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (int64_t)i;
        i += k + 1;
    }
    return -1;
}

/* ---- workspace ---- */

#define CACHE_SLOTS (1u << 15)
#define CACHE_KEY 46
#define CACHE_IDS 12
typedef struct {
    uint8_t klen, nids; /* klen 0 = empty */
    char key[CACHE_KEY];
    uint32_t ids[CACHE_IDS];
} cache_slot;

struct tok_ws {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    bpe_scratch bs;
    uint32_t *word;
    size_t word_cap;
    char *nbuf;
    size_t nbuf_cap;
    cache_slot *cache;
};

tok_ws *tok_ws_new(const lmd_tokenizer *t) {
    tok_ws *w = lmd_calloc(1, sizeof *w);
    w->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    w->mctx = pcre2_match_context_create(NULL);
    if (!w->md || !w->mctx) lmd_die("out of memory creating PCRE2 match data");
    w->jstack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, NULL);
    if (w->jstack) pcre2_jit_stack_assign(w->mctx, NULL, w->jstack);
    w->cache = lmd_calloc(CACHE_SLOTS, sizeof *w->cache);
    return w;
}

void tok_ws_free(tok_ws *w) {
    if (!w) return;
    pcre2_match_data_free(w->md);
    pcre2_match_context_free(w->mctx);
    if (w->jstack) pcre2_jit_stack_free(w->jstack);
    bpe_scratch_free(&w->bs);
    free(w->word);
    free(w->nbuf);
    free(w->cache);
    free(w);
}

void tok_ids_push(tok_ids *a, uint32_t id) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 1024;
        uint32_t *v = realloc(a->v, c * sizeof *v);
        if (!v) lmd_die("out of memory growing a token list to %zu ids", c);
        a->v = v;
        a->cap = c;
    }
    a->v[a->n++] = id;
}

void tok_ids_free(tok_ids *a) {
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* ---- encoding ---- */

static uint32_t cache_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return (h ^ (h >> 15)) & (CACHE_SLOTS - 1);
}

/* One pre-token (raw bytes) -> ids. */
static void encode_word(const lmd_tokenizer *t, tok_ws *w, const char *s, size_t n, tok_ids *out) {
    if (n == 1) {
        tok_ids_push(out, t->byte_id[(unsigned char)s[0]]);
        return;
    }
    cache_slot *slot = NULL;
    if (n <= CACHE_KEY) {
        slot = &w->cache[cache_hash(s, n)];
        if (slot->klen == n && !memcmp(slot->key, s, n)) {
            for (int i = 0; i < slot->nids; i++) tok_ids_push(out, slot->ids[i]);
            return;
        }
    }
    size_t k;
    uint32_t *ids;
    int64_t direct = t->ignore_merges ? bpe_strmap_get(&t->vocab, s, n) : -1;
    uint32_t one;
    if (direct >= 0) {
        one = (uint32_t)direct;
        ids = &one;
        k = 1;
    } else {
        if (n > w->word_cap) {
            size_t c = w->word_cap ? w->word_cap : 64;
            while (c < n) c *= 2;
            uint32_t *p = realloc(w->word, c * sizeof *p);
            if (!p) lmd_die("out of memory");
            w->word = p;
            w->word_cap = c;
        }
        for (size_t i = 0; i < n; i++) w->word[i] = t->byte_id[(unsigned char)s[i]];
        k = bpe_merge_word(&t->merges, &w->bs, w->word, n);
        ids = w->word;
    }
    for (size_t i = 0; i < k; i++) tok_ids_push(out, ids[i]);
    if (slot && k <= CACHE_IDS) {
        slot->klen = (uint8_t)n;
        slot->nids = (uint8_t)k;
        memcpy(slot->key, s, n);
        memcpy(slot->ids, ids, k * sizeof *ids);
    }
}

/* Characters below U+0300 are all NFC and never compose with a neighbour: no lead byte of
 * U+0300 or above (>= 0xCC) means the text is already NFC. */
static int nfc_stable(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0xCC) return 0;
    return 1;
}

/* One stretch between added tokens: normalize, split by the regex, BPE each piece.
 * s[n..n+ctx) is lookahead context (raw, whole characters). */
static int encode_gap(const lmd_tokenizer *t, tok_ws *w, const char *s, size_t n, size_t ctx,
                      tok_ids *out, lmd_err *err) {
    const char *subj = s;
    size_t lim = n;
    if (t->nfc && !nfc_stable(s, n)) {
        utf8proc_uint8_t *d = NULL;
        utf8proc_ssize_t dn = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &d,
                                           UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (dn < 0) return lmd_errf(err, "NFC normalization failed: %s", utf8proc_errmsg(dn));
        size_t need = (size_t)dn + ctx + 1;
        if (need > w->nbuf_cap) {
            char *p = realloc(w->nbuf, need);
            if (!p) lmd_die("out of memory");
            w->nbuf = p;
            w->nbuf_cap = need;
        }
        memcpy(w->nbuf, d, (size_t)dn);
        memcpy(w->nbuf + dn, s + n, ctx);
        free(d);
        subj = w->nbuf;
        lim = (size_t)dn;
    }
    size_t len = lim + ctx, off = 0;
    while (off < lim) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)subj, len, off, PCRE2_NO_UTF_CHECK, w->md, w->mctx);
        size_t ms, me;
        if (rc == PCRE2_ERROR_NOMATCH) {
            ms = me = len;
        } else if (rc < 0) {
            PCRE2_UCHAR buf[256];
            pcre2_get_error_message(rc, buf, sizeof buf);
            return lmd_errf(err, "pre-tokenizer regex failed at byte %zu of a stretch: %s", off,
                            (const char *)buf);
        } else {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
            ms = ov[0];
            me = ov[1];
        }
        if (ms >= lim) { /* the rest up to the limit is a gap (Isolated keeps gaps) */
            encode_word(t, w, subj + off, lim - off, out);
            break;
        }
        if (me == ms)
            return lmd_errf(err, "pre-tokenizer regex matched the empty string at byte %zu", ms);
        if (me > lim) lmd_die("pre-tokenizer match [%zu, %zu) crosses a cut at %zu", ms, me, lim);
        if (ms > off) encode_word(t, w, subj + off, ms - off, out);
        encode_word(t, w, subj + ms, me - ms, out);
        off = me;
    }
    return 0;
}

int tok_encode(const lmd_tokenizer *t, tok_ws *w, const char *text, size_t len, size_t ctx,
               tok_ids *out, lmd_err *err) {
    size_t pos = 0;
    while (pos < len) {
        /* leftmost-longest added token at or after pos (HF: aho-corasick LeftmostLongest) */
        size_t ms = len, mlen = 0;
        uint32_t mid = 0;
        if (t->n_added) {
            for (size_t p = pos; p < len && ms == len; p++) {
                unsigned char b = (unsigned char)text[p];
                for (int i = t->first_lo[b]; i < t->first_hi[b]; i++) {
                    const added_token *a = &t->added[i];
                    if (a->len <= len - p && !memcmp(text + p, a->s, a->len)) {
                        ms = p, mlen = a->len, mid = a->id;
                        break; /* sorted longest first */
                    }
                }
            }
        }
        if (ms > pos && encode_gap(t, w, text + pos, ms - pos, ms == len ? ctx : 0, out, err))
            return -1;
        if (ms == len) break;
        tok_ids_push(out, mid);
        pos = ms + mlen;
    }
    return 0;
}

/* ---- safe cuts ----
 * A cut at c is exact when (1) no added-token occurrence spans c, (2) NFC of the text is
 * NFC(left) + NFC(right), and (3) no pre-tokenizer match spans c while matches after c do not
 * depend on text before c (no lookbehind in these regexes) and matches before c see the
 * lookahead context. Two kinds of c satisfy (2) and (3) for the GPT-2, Llama-3 and Qwen2
 * regexes:
 *   A. text[c-1] = '\n' and text[c] is an ASCII letter or a CJK ideograph U+4E00..U+9FEF:
 *      no alternative of the three regexes matches a newline followed by a letter ('\n' is
 *      excluded from every letter-led alternative, and the newline/space alternatives stop at
 *      a letter); '\n' composes with nothing, and a letter is a starter.
 *   B. text[c-1] and text[c+1] are ASCII letters and text[c] = ' ': no alternative matches a
 *      letter followed by a space (letter runs stop there, ` ?\p{L}+` / `[^\r\n..]?\p{L}+`
 *      put the space at the start of the next match); a space is a starter that composes
 *      with nothing.
 * One character of context after c decides the only lookahead, (?!\S). */
size_t tok_cut_window(const lmd_tokenizer *t) {
    return t->added_maxlen > TOK_CUT_CONTEXT ? t->added_maxlen : TOK_CUT_CONTEXT;
}

static int is_ascii_letter(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

static size_t cjk_len(const unsigned char *s, size_t avail) {
    if (avail < 3 || s[0] < 0xE4 || s[0] > 0xE9) return 0;
    if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    uint32_t cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    return cp >= 0x4E00 && cp <= 0x9FEF ? 3 : 0;
}

static int added_spans(const lmd_tokenizer *t, const char *buf, size_t n, size_t c) {
    for (int i = 0; i < t->n_added; i++) {
        size_t L = t->added[i].len;
        if (L < 2) continue;
        size_t lo = c >= L - 1 ? c - (L - 1) : 0;
        for (size_t st = lo; st < c; st++)
            if (st + L <= n && !memcmp(buf + st, t->added[i].s, L)) return 1;
    }
    return 0;
}

size_t tok_safe_cut(const lmd_tokenizer *t, const char *buf, size_t n, size_t from, size_t *ctx) {
    size_t W = tok_cut_window(t);
    if (!t->cut_proven || n < W + 2) return 0;
    const unsigned char *s = (const unsigned char *)buf;
    for (size_t c = from < 1 ? 1 : from; c + W < n; c++) {
        size_t k = 0;
        if (s[c - 1] == '\n') {
            if (is_ascii_letter(s[c]))
                k = 1;
            else
                k = cjk_len(s + c, n - c);
        } else if (s[c] == ' ' && is_ascii_letter(s[c - 1]) && is_ascii_letter(s[c + 1])) {
            k = 1;
        }
        if (k && !added_spans(t, buf, n, c)) {
            *ctx = k;
            return c;
        }
    }
    return 0;
}

/* ---- decoding ---- */

int tok_decode(const lmd_tokenizer *t, const uint32_t *ids, size_t n, char **out, size_t *len,
               lmd_err *err) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= t->n_ids || t->dec_len[ids[i]] == UINT32_MAX)
            return lmd_errf(err, "decode: id %u at position %zu is not a token of %s", ids[i], i,
                            t->path);
        total += t->dec_len[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) lmd_die("out of memory decoding %zu bytes", total);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(s + k, t->dec_pool + t->dec_off[ids[i]], t->dec_len[ids[i]]);
        k += t->dec_len[ids[i]];
    }
    s[k] = 0;
    *out = s;
    *len = k;
    return 0;
}
