/* tokenizer.c — tokenizer.json (jansson) -> byte-level BPE; encode = added tokens split out
 * (leftmost-longest), NFC (utf8proc), pre-tokenizer regex (PCRE2, UTF + UCP, JIT), bytes ->
 * BPE merges; decode = id -> bytes. Follows HF tokenizers (Rust) semantics; refuses the rest.
 * This file: loading tokenizer.json into the tables of tokenizer_internal.h; encoding, safe
 * cuts and decoding are in tokencode.c. */
#include "tokenizer_internal.h"
#include "fileio.h"
#include "hfmodel.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

/* The pre-tokenizer regexes whose safe cut points are proven (tok_safe_cut). */
static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ---- GPT-2's bytes_to_unicode ---- */

static void bytes_to_unicode(uint32_t cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        cp[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
}

/* Converts a byte-level token (UTF-8 of mapped code points) to raw bytes in out (at most
 * len bytes). Returns the raw length, or -1 when a code point is outside the table. */
static long bytelevel_to_raw(const char *s, size_t len, const int16_t *inv, char *out) {
    size_t i = 0;
    long k = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t r =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
        if (r <= 0 || c < 0 || c >= 512 || inv[c] < 0) return -1;
        out[k++] = (char)inv[c];
        i += (size_t)r;
    }
    return k;
}

/* ---- loading ---- */

static int refuse(lmd_err *err, const lmd_tokenizer *t, const char *field, const char *what) {
    return lmd_errf(err,
                    "%s: %s: %s is not implemented (lmdisp refuses rather than "
                    "approximates; docs/TOKENIZE.md lists what is)",
                    t->path, field, what);
}

static const char *jtype(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* Optional boolean field: absent or null -> def; else must be a boolean. */
static int get_bool(const json_t *obj, const char *key, int def, int *out, const lmd_tokenizer *t,
                    const char *ctx, lmd_err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return lmd_errf(err, "%s: %s.%s must be true or false, not %s", t->path, ctx, key,
                        jtype(v));
    *out = json_is_true(v);
    return 0;
}

static const char *get_type(const json_t *obj) {
    json_t *v = json_object_get(obj, "type");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int load_model(lmd_tokenizer *t, json_t *model, lmd_err *err) {
    if (!json_is_object(model))
        return lmd_errf(err, "%s: model is missing or not an object", t->path);
    const char *type = get_type(model);
    if (!type) return lmd_errf(err, "%s: model.type is missing", t->path);
    if (strcmp(type, "BPE")) {
        char w[300];
        snprintf(w, sizeof w, "model type \"%.200s\" (only BPE)", type);
        return refuse(err, t, "model.type", w);
    }
    json_t *v = json_object_get(model, "dropout");
    if (v && !json_is_null(v)) return refuse(err, t, "model.dropout", "a non-null dropout");
    v = json_object_get(model, "unk_token");
    if (v && !json_is_null(v)) return refuse(err, t, "model.unk_token", "a non-null unk_token");
    const char *strs[2] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(model, strs[i]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0)) {
            char f[64];
            snprintf(f, sizeof f, "model.%s", strs[i]);
            return refuse(err, t, f, "a non-empty affix");
        }
    }
    int bf = 0, fuse = 0;
    if (get_bool(model, "byte_fallback", 0, &bf, t, "model", err)) return -1;
    if (bf) return refuse(err, t, "model.byte_fallback", "byte_fallback true");
    if (get_bool(model, "fuse_unk", 0, &fuse, t, "model", err)) return -1;
    if (get_bool(model, "ignore_merges", 0, &t->ignore_merges, t, "model", err)) return -1;

    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return lmd_errf(err, "%s: model.vocab is missing or not an object", t->path);
    /* first pass: the id range */
    const char *key;
    json_t *val;
    int64_t max_id = -1;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= (1ll << 31))
            return lmd_errf(err, "%s: model.vocab[\"%.100s\"] must be an id in [0, 2^31), not %s",
                            t->path, key, jtype(val));
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    if (max_id < 0) return lmd_errf(err, "%s: model.vocab is empty", t->path);
    t->n_ids = (uint32_t)max_id + 1;
    return 0;
}

/* Builds the raw-byte vocabulary and decode table (after the id range is known). */
static int load_vocab(lmd_tokenizer *t, json_t *model, uint64_t *pool_cap, lmd_err *err) {
    uint32_t cp[256];
    int16_t inv[512];
    bytes_to_unicode(cp);
    for (int i = 0; i < 512; i++) inv[i] = -1;
    for (int b = 0; b < 256; b++) inv[cp[b]] = (int16_t)b;
    json_t *vocab = json_object_get(model, "vocab");
    const char *key;
    json_t *val;
    size_t pool_n = 0;
    char *raw = NULL;
    size_t raw_cap = 0;
    json_object_foreach(vocab, key, val) {
        uint32_t id = (uint32_t)json_integer_value(val);
        size_t klen = strlen(key);
        if (t->dec_len[id] != UINT32_MAX) {
            free(raw);
            return lmd_errf(err,
                            "%s: model.vocab: id %u is given to two tokens (one is "
                            "\"%.100s\")",
                            t->path, id, key);
        }
        if (klen + 1 > raw_cap) {
            raw_cap = klen + 64;
            char *r2 = realloc(raw, raw_cap);
            if (!r2) lmd_die("out of memory");
            raw = r2;
        }
        long rl = bytelevel_to_raw(key, klen, inv, raw);
        const char *src = rl >= 0 ? raw : key; /* not byte-level: decodes as its own text */
        size_t sl = rl >= 0 ? (size_t)rl : klen;
        if (rl >= 0) bpe_strmap_put(&t->vocab, raw, (size_t)rl, id);
        if (pool_n + sl > *pool_cap) {
            while (pool_n + sl > *pool_cap) *pool_cap *= 2;
            char *p2 = realloc(t->dec_pool, *pool_cap);
            if (!p2) lmd_die("out of memory");
            t->dec_pool = p2;
        }
        memcpy(t->dec_pool + pool_n, src, sl);
        t->dec_off[id] = pool_n;
        t->dec_len[id] = (uint32_t)sl;
        pool_n += sl;
    }
    free(raw);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        int64_t id = bpe_strmap_get(&t->vocab, &c, 1);
        if (id < 0)
            return lmd_errf(err,
                            "%s: model.vocab lacks the byte-level token of byte 0x%02X "
                            "(U+%04X): not a byte-level BPE vocabulary",
                            t->path, b, cp[b]);
        t->byte_id[b] = (uint32_t)id;
    }

    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges))
        return lmd_errf(err, "%s: model.merges is missing or not an array", t->path);
    size_t nm = json_array_size(merges);
    t->n_merges = nm;
    bpe_merges_init(&t->merges, nm);
    char *ra = NULL, *rb = NULL;
    size_t rcap = 0;
    for (size_t i = 0; i < nm; i++) {
        json_t *m = json_array_get(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            size_t n = json_string_length(m);
            const char *sp = memchr(s, ' ', n);
            if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s))) {
                free(ra);
                free(rb);
                return lmd_errf(err,
                                "%s: model.merges[%zu] \"%.100s\" is not two tokens "
                                "separated by one space",
                                t->path, i, s);
            }
            a = s, la = (size_t)(sp - s), b = sp + 1, lb = n - la - 1;
        } else if (json_is_array(m) && json_array_size(m) == 2 &&
                   json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0));
            la = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1));
            lb = json_string_length(json_array_get(m, 1));
        } else {
            free(ra);
            free(rb);
            return lmd_errf(err, "%s: model.merges[%zu] must be \"a b\" or [\"a\", \"b\"], not %s",
                            t->path, i, jtype(m));
        }
        if (la + lb + 2 > rcap) {
            rcap = 2 * (la + lb + 2);
            char *x = realloc(ra, rcap), *y;
            if (!x) lmd_die("out of memory");
            ra = x;
            y = realloc(rb, rcap);
            if (!y) lmd_die("out of memory");
            rb = y;
        }
        long rla = bytelevel_to_raw(a, la, inv, ra);
        long rlb = bytelevel_to_raw(b, lb, inv, rb);
        int64_t ia = rla > 0 ? bpe_strmap_get(&t->vocab, ra, (size_t)rla) : -1;
        int64_t ib = rlb > 0 ? bpe_strmap_get(&t->vocab, rb, (size_t)rlb) : -1;
        if (ia < 0 || ib < 0) {
            int bad_a = ia < 0;
            lmd_errf(err, "%s: model.merges[%zu]: token \"%.*s\" is not in model.vocab", t->path, i,
                     (int)(bad_a ? la : lb), bad_a ? a : b);
            free(ra);
            free(rb);
            return -1;
        }
        memcpy(ra + rla, rb, (size_t)rlb);
        int64_t im = bpe_strmap_get(&t->vocab, ra, (size_t)(rla + rlb));
        if (im < 0) {
            lmd_errf(err,
                     "%s: model.merges[%zu]: the merged token \"%.*s%.*s\" is not in "
                     "model.vocab",
                     t->path, i, (int)la, a, (int)lb, b);
            free(ra);
            free(rb);
            return -1;
        }
        bpe_merges_put(&t->merges, (uint32_t)ia, (uint32_t)ib, (uint32_t)i, (uint32_t)im);
    }
    free(ra);
    free(rb);
    return 0;
}

static int load_normalizer(lmd_tokenizer *t, json_t *norm, lmd_err *err) {
    if (!norm || json_is_null(norm)) return 0;
    const char *type = json_is_object(norm) ? get_type(norm) : NULL;
    if (!type)
        return lmd_errf(err, "%s: normalizer must be null or an object with a type", t->path);
    if (!strcmp(type, "NFC")) {
        t->nfc = 1;
        return 0;
    }
    char w[300];
    snprintf(w, sizeof w, "normalizer \"%.200s\" (only null or NFC)", type);
    return refuse(err, t, "normalizer.type", w);
}

static int check_bytelevel(lmd_tokenizer *t, json_t *bl, const char *field, int want_regex,
                           lmd_err *err) {
    int aps = 0, ur = 0;
    if (get_bool(bl, "add_prefix_space", 1, &aps, t, field, err)) return -1;
    if (aps) {
        char f[128];
        snprintf(f, sizeof f, "%s.add_prefix_space", field);
        return refuse(err, t, f, "add_prefix_space true");
    }
    if (get_bool(bl, "use_regex", 1, &ur, t, field, err)) return -1;
    if (ur != want_regex) {
        char f[128];
        snprintf(f, sizeof f, "%s.use_regex", field);
        return refuse(err, t, f,
                      want_regex ? "ByteLevel with use_regex false as the only "
                                   "pre-tokenizer"
                                 : "ByteLevel with use_regex true after a Split");
    }
    return 0;
}

static int load_pretok(lmd_tokenizer *t, json_t *pt, const char **regex, lmd_err *err) {
    if (!pt || json_is_null(pt))
        return refuse(err, t, "pre_tokenizer",
                      "a null pre_tokenizer (byte-level BPE needs ByteLevel)");
    const char *type = json_is_object(pt) ? get_type(pt) : NULL;
    if (!type) return lmd_errf(err, "%s: pre_tokenizer must be an object with a type", t->path);
    if (!strcmp(type, "ByteLevel")) {
        if (check_bytelevel(t, pt, "pre_tokenizer", 1, err)) return -1;
        *regex = RE_GPT2;
        return 0;
    }
    if (strcmp(type, "Sequence")) {
        char w[300];
        snprintf(w, sizeof w,
                 "pre-tokenizer \"%.200s\" (only ByteLevel or "
                 "Sequence[Split, ByteLevel])",
                 type);
        return refuse(err, t, "pre_tokenizer.type", w);
    }
    json_t *seq = json_object_get(pt, "pretokenizers");
    if (!json_is_array(seq))
        return lmd_errf(err, "%s: pre_tokenizer.pretokenizers must be an array", t->path);
    if (json_array_size(seq) != 2)
        return refuse(err, t, "pre_tokenizer.pretokenizers",
                      "a Sequence other than [Split, ByteLevel]");
    json_t *sp = json_array_get(seq, 0), *bl = json_array_get(seq, 1);
    const char *t0 = json_is_object(sp) ? get_type(sp) : NULL;
    const char *t1 = json_is_object(bl) ? get_type(bl) : NULL;
    if (!t0 || strcmp(t0, "Split")) {
        char w[300];
        snprintf(w, sizeof w, "pre-tokenizer \"%.200s\" in a Sequence (only Split then ByteLevel)",
                 t0 ? t0 : "?");
        return refuse(err, t, "pre_tokenizer.pretokenizers[0].type", w);
    }
    if (!t1 || strcmp(t1, "ByteLevel")) {
        char w[300];
        snprintf(w, sizeof w, "pre-tokenizer \"%.200s\" in a Sequence (only Split then ByteLevel)",
                 t1 ? t1 : "?");
        return refuse(err, t, "pre_tokenizer.pretokenizers[1].type", w);
    }
    json_t *pat = json_object_get(sp, "pattern");
    json_t *re = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
    if (!json_is_string(re)) {
        if (json_is_object(pat) && json_object_get(pat, "String"))
            return refuse(err, t, "pre_tokenizer.pretokenizers[0].pattern",
                          "a String pattern (only Regex)");
        return lmd_errf(err,
                        "%s: pre_tokenizer.pretokenizers[0].pattern must be {\"Regex\": "
                        "\"...\"}",
                        t->path);
    }
    json_t *beh = json_object_get(sp, "behavior");
    if (!json_is_string(beh))
        return lmd_errf(err, "%s: pre_tokenizer.pretokenizers[0].behavior is missing", t->path);
    if (strcmp(json_string_value(beh), "Isolated")) {
        char w[300];
        snprintf(w, sizeof w, "Split behavior \"%.200s\" (only Isolated)", json_string_value(beh));
        return refuse(err, t, "pre_tokenizer.pretokenizers[0].behavior", w);
    }
    int inv = 0;
    if (get_bool(sp, "invert", 0, &inv, t, "pre_tokenizer.pretokenizers[0]", err)) return -1;
    if (inv) return refuse(err, t, "pre_tokenizer.pretokenizers[0].invert", "invert true");
    if (check_bytelevel(t, bl, "pre_tokenizer.pretokenizers[1]", 0, err)) return -1;
    *regex = json_string_value(re);
    return 0;
}

static int added_cmp(const void *pa, const void *pb) {
    const added_token *a = pa, *b = pb;
    unsigned char fa = (unsigned char)a->s[0], fb = (unsigned char)b->s[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return memcmp(a->s, b->s, a->len);
}

static int load_added(lmd_tokenizer *t, json_t *arr, lmd_err *err) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return lmd_errf(err, "%s: added_tokens must be an array", t->path);
    size_t n = json_array_size(arr);
    t->added = lmd_calloc(n ? n : 1, sizeof *t->added);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(arr, i);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "added_tokens[%zu]", i);
        if (!json_is_object(a)) return lmd_errf(err, "%s: %s must be an object", t->path, ctx);
        json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= (1ll << 31))
            return lmd_errf(err, "%s: %s.id must be an id in [0, 2^31)", t->path, ctx);
        if (!json_is_string(content) || json_string_length(content) == 0)
            return lmd_errf(err, "%s: %s.content must be a non-empty string", t->path, ctx);
        const char *flags[4] = {"single_word", "lstrip", "rstrip", "normalized"};
        for (int f = 0; f < 4; f++) {
            int on = 0;
            if (get_bool(a, flags[f], 0, &on, t, ctx, err)) return -1;
            if (on) {
                char fld[96], w[96];
                snprintf(fld, sizeof fld, "%s.%s", ctx, flags[f]);
                snprintf(w, sizeof w, "%s true", flags[f]);
                return refuse(err, t, fld, w);
            }
        }
        int special = 0;
        if (get_bool(a, "special", 0, &special, t, ctx, err)) return -1;
        added_token *d = &t->added[t->n_added++];
        d->len = json_string_length(content);
        d->s = lmd_calloc(d->len + 1, 1);
        memcpy(d->s, json_string_value(content), d->len);
        d->id = (uint32_t)json_integer_value(id);
        d->special = special;
        if (d->len > t->added_maxlen) t->added_maxlen = d->len;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, added_cmp);
    for (int b = 0; b < 256; b++) t->first_lo[b] = t->first_hi[b] = 0;
    for (int i = 0; i < t->n_added; i++) {
        unsigned char b = (unsigned char)t->added[i].s[0];
        if (t->first_hi[b] == 0) t->first_lo[b] = i;
        t->first_hi[b] = i + 1;
    }
    return 0;
}

static int load_decoder(lmd_tokenizer *t, json_t *dec, lmd_err *err) {
    const char *type = json_is_object(dec) ? get_type(dec) : NULL;
    if (!type)
        return refuse(err, t, "decoder", "a decoder other than ByteLevel (here null or untyped)");
    if (strcmp(type, "ByteLevel")) {
        char w[300];
        snprintf(w, sizeof w, "decoder \"%.200s\" (only ByteLevel)", type);
        return refuse(err, t, "decoder.type", w);
    }
    return 0;
}

int tok_load(lmd_tokenizer **out, const char *path, lmd_err *err) {
    *out = NULL;
    lmd_tokenizer *t = lmd_calloc(1, sizeof *t);
    /* hf:ORG/NAME[@REV]: the snapshot directory in the offline hub cache (DESIGN 4.6) */
    char resolved[4096];
    if (!strncmp(path, "hf:", 3)) {
        if (hub_resolve_file(path, "tokenizer.json", resolved, sizeof resolved, err)) {
            free(t);
            return -1;
        }
        path = resolved;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        free(t);
        return lmd_errf(err,
                        "tokenizer %s: no such file or directory (give a tokenizer.json, a "
                        "model directory holding one or hf:ORG/NAME[@REV])",
                        path);
    }
    int pn = S_ISDIR(st.st_mode) ? snprintf(t->path, sizeof t->path, "%s/tokenizer.json", path)
                                 : snprintf(t->path, sizeof t->path, "%s", path);
    if (pn < 0 || (size_t)pn >= sizeof t->path) {
        free(t);
        return lmd_errf(err, "tokenizer %s: path too long", path);
    }
    bpe_strmap_init(&t->vocab);
    /* read whole, then parse: json_load_file reads by getc, several times slower on the
     * multi-MB files of real tokenizers */
    char *text = NULL;
    size_t n = 0;
    int frc = lmd_file_read(t->path, (size_t)1 << 31, &text, &n, err);
    if (frc) {
        if (frc == LMD_FILE_MISSING)
            lmd_errf(err, "%s: no such file (a model directory must hold tokenizer.json)", t->path);
        tok_free(t);
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root) {
        lmd_errf(err, "%s:%d:%d: %s", t->path, je.line, je.column, je.text);
        tok_free(t);
        return -1;
    }
    int rc = -1;
    const char *regex = NULL;
    if (!json_is_object(root)) {
        lmd_errf(err, "%s: the top level must be an object", t->path);
        goto done;
    }
    json_t *trunc = json_object_get(root, "truncation"), *pad = json_object_get(root, "padding");
    if (trunc && !json_is_null(trunc)) {
        refuse(err, t, "truncation", "a non-null truncation");
        goto done;
    }
    if (pad && !json_is_null(pad)) {
        refuse(err, t, "padding", "a non-null padding");
        goto done;
    }
    json_t *model = json_object_get(root, "model");
    if (load_model(t, model, err) || load_normalizer(t, json_object_get(root, "normalizer"), err) ||
        load_pretok(t, json_object_get(root, "pre_tokenizer"), &regex, err) ||
        load_added(t, json_object_get(root, "added_tokens"), err) ||
        load_decoder(t, json_object_get(root, "decoder"), err))
        goto done;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id + 1 > t->n_ids) t->n_ids = t->added[i].id + 1;
    t->dec_off = lmd_calloc(t->n_ids, sizeof *t->dec_off);
    t->dec_len = lmd_calloc(t->n_ids, sizeof *t->dec_len);
    for (uint32_t i = 0; i < t->n_ids; i++) t->dec_len[i] = UINT32_MAX;
    uint64_t pool_cap = 1 << 20;
    t->dec_pool = lmd_calloc(pool_cap, 1);
    if (load_vocab(t, model, &pool_cap, err)) goto done;
    /* added tokens decode as their content (also when the vocabulary has the id) */
    size_t extra = 0;
    for (int i = 0; i < t->n_added; i++) extra += t->added[i].len;
    size_t used = 0;
    for (uint32_t i = 0; i < t->n_ids; i++)
        if (t->dec_len[i] != UINT32_MAX && t->dec_off[i] + t->dec_len[i] > used)
            used = t->dec_off[i] + t->dec_len[i];
    if (used + extra > pool_cap) {
        char *p2 = realloc(t->dec_pool, used + extra + 1);
        if (!p2) lmd_die("out of memory");
        t->dec_pool = p2;
    }
    for (int i = 0; i < t->n_added; i++) {
        memcpy(t->dec_pool + used, t->added[i].s, t->added[i].len);
        t->dec_off[t->added[i].id] = used;
        t->dec_len[t->added[i].id] = (uint32_t)t->added[i].len;
        used += t->added[i].len;
    }

    int ec;
    PCRE2_SIZE eo;
    t->re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo,
                          NULL);
    if (!t->re) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(ec, buf, sizeof buf);
        lmd_errf(err, "%s: pre_tokenizer regex does not compile at offset %zu: %s", t->path,
                 (size_t)eo, (const char *)buf);
        goto done;
    }
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    t->re_src = lmd_strdup(regex);
    if (!t->re_src) lmd_die("out of memory");
    t->cut_proven =
        !strcmp(regex, RE_GPT2) || !strcmp(regex, RE_LLAMA3) || !strcmp(regex, RE_QWEN2);
    snprintf(t->desc, sizeof t->desc, "BPE, %u ids, %zu merges%s, %s%s, %d added tokens", t->n_ids,
             t->n_merges, t->ignore_merges ? " (ignore_merges)" : "",
             regex == RE_GPT2            ? "GPT-2 ByteLevel"
             : !strcmp(regex, RE_LLAMA3) ? "Split(Llama-3 regex)+ByteLevel"
             : !strcmp(regex, RE_QWEN2)  ? "Split(Qwen2 regex)+ByteLevel"
                                         : "Split(regex)+ByteLevel",
             t->nfc ? ", NFC" : "", t->n_added);
    rc = 0;
done:
    json_decref(root);
    if (rc) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void tok_free(lmd_tokenizer *t) {
    if (!t) return;
    bpe_strmap_free(&t->vocab);
    bpe_merges_free(&t->merges);
    if (t->re) pcre2_code_free(t->re);
    free(t->re_src);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].s);
    free(t->added);
    free(t->dec_off);
    free(t->dec_len);
    free(t->dec_pool);
    free(t);
}

uint32_t tok_vocab_size(const lmd_tokenizer *t) { return t->n_ids; }
const char *tok_describe(const lmd_tokenizer *t) { return t->desc; }

int64_t tok_token_id(const lmd_tokenizer *t, const char *text) {
    size_t n = strlen(text);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].s, text, n)) return t->added[i].id;
    return bpe_strmap_get(&t->vocab, text, n);
}

int64_t tok_eos_id(const lmd_tokenizer *t, const char **name) {
    static const char *const cands[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<|end|>"};
    for (size_t c = 0; c < sizeof cands / sizeof cands[0]; c++) {
        size_t n = strlen(cands[c]);
        for (int i = 0; i < t->n_added; i++)
            if (t->added[i].special && t->added[i].len == n &&
                !memcmp(t->added[i].s, cands[c], n)) {
                if (name) *name = cands[c];
                return t->added[i].id;
            }
    }
    return -1;
}
