/* test_tokenizer.c — hub/tokenizer and hub/bpe without external files: UTF-8 validation
 * offsets, the merge loop against a naive reference (rescan for the lowest-rank pair, leftmost),
 * a small made-up tokenizer.json (GPT-2 pre-tokenizer, merges in both encodings, an added token,
 * ignore_merges), decode(encode(x)) == x, and encoding cut at every tok_safe_cut point equal to
 * encoding whole. Returns the number of failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "tokenizer.h"
#include "util.h"

static int fails = 0;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

static void test_utf8(void) {
    struct {
        const char *s;
        size_t n;
        int64_t want;
    } c[] = {
        {"plain ascii text", 16, -1},   {"caf\xc3\xa9", 5, -1},
        {"\xf0\x9f\x98\x80 ok", 7, -1}, {"abc\xff", 4, 3},
        {"ab\xc0\xaf", 4, 2},        /* overlong '/' */
        {"ab\xed\xa0\x80", 5, 2},    /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 4, 0},  /* above U+10FFFF */
        {"12345678\xe2\x82", 10, 8}, /* truncated at the end */
        {"x\xe2(\xa1", 4, 1},           {"nul\0inside", 10, -1},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int64_t got = tok_utf8_invalid_at(c[i].s, c[i].n);
        CHECK(got == c[i].want, "utf8 case %zu: invalid_at %lld, want %lld", i, (long long)got,
              (long long)c[i].want);
    }
}

/* Naive BPE: repeatedly find the lowest-rank adjacent pair (leftmost on ties) and merge it. */
static size_t naive_merge(const bpe_merges *m, uint32_t *ids, size_t n) {
    for (;;) {
        uint32_t best = UINT32_MAX, bm = 0;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            uint32_t r, mg;
            if (bpe_merges_get(m, ids[i], ids[i + 1], &r, &mg) && r < best)
                best = r, bm = mg, bi = i;
        }
        if (best == UINT32_MAX) return n;
        ids[bi] = bm;
        memmove(ids + bi + 1, ids + bi + 2, (n - bi - 2) * sizeof *ids);
        n--;
    }
}

static void test_merge_loop(void) {
    /* ids 0..3 are symbols a b c d; merges build 4=ab, 5=bc, 6=aa, 7=abc(4+c), 8=aaaa(6+6) */
    bpe_merges m;
    bpe_merges_init(&m, 8);
    bpe_merges_put(&m, 0, 0, 0, 6);
    bpe_merges_put(&m, 0, 1, 1, 4);
    bpe_merges_put(&m, 1, 2, 2, 5);
    bpe_merges_put(&m, 4, 2, 3, 7);
    bpe_merges_put(&m, 6, 6, 4, 8);
    bpe_scratch s = {0};
    lmd_rng r;
    lmd_rng_seed(&r, 7, 0);
    for (int trial = 0; trial < 2000; trial++) {
        size_t n = 1 + lmd_rng_below(&r, 40);
        uint32_t a[64], b[64];
        for (size_t i = 0; i < n; i++) a[i] = b[i] = (uint32_t)lmd_rng_below(&r, 4);
        size_t k1 = bpe_merge_word(&m, &s, a, n), k2 = naive_merge(&m, b, n);
        int same = k1 == k2 && !memcmp(a, b, k1 * sizeof *a);
        CHECK(same, "merge loop trial %d (n=%zu): heap gives %zu ids, naive %zu", trial, n, k1, k2);
        if (!same) break;
    }
    bpe_scratch_free(&s);
    bpe_merges_free(&m);
}

/* GPT-2 bytes_to_unicode as UTF-8, to write a byte-level vocabulary. */
static void byte_char(int b, char *out) {
    int n = 0, cp = -1;
    for (int x = 0; x < 256; x++) {
        int pr = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
        int c = pr ? x : 256 + n++;
        if (x == b) cp = c;
    }
    if (cp < 0x80)
        out[0] = (char)cp, out[1] = 0;
    else
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

/* A JSON string literal of s (bytes >= 0x80 passed through). */
static void jstr(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static int write_tokenizer(const char *path, int ignore_merges, const char *extra_model) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const char *merges[][2] = {{"Ġ", "t"}, {"h", "e"},  {"Ġt", "he"}, {"i", "n"}, {"Ġ", "a"},
                               {"o", "n"}, {"Ġa", "n"}, {"Ġan", "d"}, {"e", "r"}, {"Ġ", "Ġ"}};
    size_t nm = sizeof merges / sizeof merges[0];
    fprintf(f, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    fprintf(f,
            "{\"id\":%zu,\"content\":\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,"
            "\"rstrip\":false,\"normalized\":false,\"special\":true}],",
            256 + nm);
    fprintf(f,
            "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":"
            "false,\"trim_offsets\":true,\"use_regex\":true},\"post_processor\":null,"
            "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"dropout\":null,"
            "\"unk_token\":null,\"byte_fallback\":false,\"ignore_merges\":%s%s,\"vocab\":{",
            ignore_merges ? "true" : "false", extra_model);
    char c[4];
    for (int b = 0; b < 256; b++) {
        byte_char(b, c);
        if (b) fputc(',', f);
        jstr(f, c);
        fprintf(f, ":%d", b);
    }
    for (size_t i = 0; i < nm; i++) {
        char cat[32];
        snprintf(cat, sizeof cat, "%s%s", merges[i][0], merges[i][1]);
        fputc(',', f);
        jstr(f, cat);
        fprintf(f, ":%zu", 256 + i);
    }
    fprintf(f, ",\"<|endoftext|>\":%zu", 256 + nm);
    /* a vocabulary word that merges cannot build: only ignore_merges reaches it */
    fprintf(f, ",\"Ġxyz\":%zu},\"merges\":[", 257 + nm);
    for (size_t i = 0; i < nm; i++) {
        if (i) fputc(',', f);
        if (i % 2) { /* both encodings */
            fputc('[', f);
            jstr(f, merges[i][0]);
            fputc(',', f);
            jstr(f, merges[i][1]);
            fputc(']', f);
        } else {
            char pair[32];
            snprintf(pair, sizeof pair, "%s %s", merges[i][0], merges[i][1]);
            jstr(f, pair);
        }
    }
    fprintf(f, "]}}\n");
    return fclose(f);
}

static void encode_str(const lmd_tokenizer *t, tok_ws *w, const char *s, tok_ids *out) {
    lmd_err err = {{0}};
    out->n = 0;
    if (tok_encode(t, w, s, strlen(s), 0, out, &err)) CHECK(0, "encode failed: %s", err.msg);
}

static void test_small_tokenizer(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tok_small.json", dir);
    CHECK(write_tokenizer(path, 0, "") == 0, "cannot write %s", path);
    lmd_tokenizer *t = NULL;
    lmd_err err = {{0}};
    if (tok_load(&t, path, &err)) {
        CHECK(0, "tok_load: %s", err.msg);
        return;
    }
    tok_ws *w = tok_ws_new(t);
    tok_ids ids = {0};
    /* " the and" -> Ġthe (258), Ġand (263); "<|endoftext|>" -> 266 */
    encode_str(t, w, " the and<|endoftext|>x", &ids);
    uint32_t want[] = {258, 263, 266, 'x'};
    CHECK(ids.n == 4 && !memcmp(ids.v, want, sizeof want),
          "\" the and<|endoftext|>x\": got %zu ids (%u %u %u %u)", ids.n, ids.n > 0 ? ids.v[0] : 0,
          ids.n > 1 ? ids.v[1] : 0, ids.n > 2 ? ids.v[2] : 0, ids.n > 3 ? ids.v[3] : 0);
    CHECK(tok_eos_id(t, NULL) == 266, "eos id %lld, want 266", (long long)tok_eos_id(t, NULL));
    /* without ignore_merges, " xyz" is bytes; with it, the vocabulary word */
    encode_str(t, w, " xyz", &ids);
    CHECK(ids.n == 4, "\" xyz\" without ignore_merges: %zu ids, want 4 bytes", ids.n);
    char *text;
    size_t len;
    const char *rt = "  Hello\n\n  wörld 😀 the end<|endoftext|> 12345 don't\t\r\n";
    encode_str(t, w, rt, &ids);
    CHECK(tok_decode(t, ids.v, ids.n, &text, &len, &err) == 0, "decode: %s", err.msg);
    CHECK(len == strlen(rt) && !memcmp(text, rt, len), "decode(encode(x)) != x: '%s'", text);
    free(text);
    uint32_t badid = 99999;
    CHECK(tok_decode(t, &badid, 1, &text, &len, &err) != 0 && strstr(err.msg, "99999"),
          "decode of an unknown id not refused: %s", err.msg);

    /* encoding cut at every safe cut point == encoding whole */
    lmd_rng r;
    lmd_rng_seed(&r, 11, 0);
    const char *atoms[] = {"the",    " ",    "  ", "\n", "\n\n", "and", "x",   "Ab",
                           "é",      "中文", "'s", "12", "!",    "\t",  " \n", "<|endoftext|>",
                           "<|endo", "er"};
    size_t na = sizeof atoms / sizeof atoms[0];
    char buf[8192];
    tok_ids whole = {0}, parts = {0};
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 0;
        while (n < 3000) {
            const char *a = atoms[lmd_rng_below(&r, na)];
            memcpy(buf + n, a, strlen(a));
            n += strlen(a);
        }
        buf[n] = 0;
        whole.n = parts.n = 0;
        CHECK(tok_encode(t, w, buf, n, 0, &whole, &err) == 0, "%s", err.msg);
        size_t start = 0, from = 1 + lmd_rng_below(&r, 64), ncut = 0, ctx = 0;
        for (;;) {
            size_t c = tok_safe_cut(t, buf + start, n - start, from, &ctx);
            if (!c) break;
            CHECK(tok_encode(t, w, buf + start, c, ctx, &parts, &err) == 0, "%s", err.msg);
            start += c;
            ncut++;
            from = 1 + lmd_rng_below(&r, 64);
        }
        CHECK(tok_encode(t, w, buf + start, n - start, 0, &parts, &err) == 0, "%s", err.msg);
        int same = whole.n == parts.n && !memcmp(whole.v, parts.v, whole.n * sizeof *whole.v);
        CHECK(same && ncut > 10, "trial %d: %zu cuts, whole %zu ids, cut %zu ids", trial, ncut,
              whole.n, parts.n);
        if (!same) break;
    }
    tok_ids_free(&whole);
    tok_ids_free(&parts);
    tok_ids_free(&ids);
    tok_ws_free(w);
    tok_free(t);

    CHECK(write_tokenizer(path, 1, "") == 0, "cannot write %s", path);
    CHECK(tok_load(&t, path, &err) == 0, "tok_load (ignore_merges): %s", err.msg);
    if (t) {
        w = tok_ws_new(t);
        tok_ids one = {0};
        encode_str(t, w, " xyz", &one);
        CHECK(one.n == 1 && one.v[0] == 267, "\" xyz\" with ignore_merges: %zu ids, want [267]",
              one.n);
        tok_ids_free(&one);
        tok_ws_free(w);
        tok_free(t);
    }
    /* refusals name the field */
    CHECK(write_tokenizer(path, 0, ",\"continuing_subword_prefix\":\"##\"") == 0, "write");
    t = NULL;
    CHECK(tok_load(&t, path, &err) != 0 && strstr(err.msg, "continuing_subword_prefix"),
          "a subword prefix not refused by name: %s", err.msg);
    tok_free(t);
}

int main(void) {
    const char *dir = getenv("LMDISP_TMP");
    if (!dir) dir = "/tmp";
    test_utf8();
    test_merge_loop();
    test_small_tokenizer(dir);
    if (fails)
        fprintf(stderr, "test_tokenizer: %d failures\n", fails);
    else
        printf("test_tokenizer: all passed\n");
    return fails > 255 ? 255 : fails; /* an exit status is mod 256 */
}
