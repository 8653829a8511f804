#include "datasrc.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

/* Reads a whole file (NUL-terminated, *n bytes). */
static char *slurp(const char *path, size_t *n, lmd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        lmd_errf(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, k = 0, got;
    char *b = malloc(cap);
    if (!b) lmd_die("out of memory");
    while ((got = fread(b + k, 1, cap - k - 1, f)) > 0) {
        k += got;
        if (k + 1 == cap) {
            char *p = realloc(b, cap *= 2);
            if (!p) lmd_die("out of memory reading %s", path);
            b = p;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        lmd_errf(err, "%s: read failed", path);
        return NULL;
    }
    b[k] = 0;
    *n = k;
    return b;
}

int lmd_tokenize_json_line(const lmd_tokenizer *tok, tok_ws *w, const char *line, size_t len,
                           const char *field, tok_ids *out, lmd_err *err) {
    json_error_t je;
    json_t *obj = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!obj) return lmd_errf(err, "%d: %s", je.column, je.text);
    json_t *v = json_is_object(obj) ? json_object_get(obj, field) : NULL;
    int rc = 0;
    if (!json_is_string(v))
        rc = lmd_errf(err, "field \"%s\": %s", field,
                      !json_is_object(obj) ? "the line is not a JSON object"
                      : v ? "not a string" : "missing");
    else if (tok_encode(tok, w, json_string_value(v), json_string_length(v), 0, out, err))
        rc = -1;
    json_decref(obj);
    return rc;
}

/* tok:TOKENIZER:PATH — PATH (a text file = one document, or *.jsonl: every line's "text" is
 * one, joined by the end-of-text token) encoded in memory with a tokenizer.json; the
 * vocabulary is the tokenizer's. Large corpora: `lmdisp tokenize` once, then shards:. */
static int load_tokenized(const char *spec, int vocab_size, lmd_tokens *out, lmd_err *err) {
    const char *rest = spec + 4, *colon = strchr(rest, ':');
    if (!colon || colon == rest || !colon[1])
        return lmd_errf(err, "data '%s': expected tok:TOKENIZER:PATH (a tokenizer.json or model "
                        "directory, then a text or .jsonl file)", spec);
    char tpath[4096];
    snprintf(tpath, sizeof tpath, "%.*s", (int)(colon - rest), rest);
    const char *path = colon + 1;
    lmd_tokenizer *tok = NULL;
    if (tok_load(&tok, tpath, err)) return lmd_err_prefix(err, "data '%s'", spec);
    uint32_t V = tok_vocab_size(tok);
    int rc = -1;
    char *text = NULL;
    tok_ws *w = NULL;
    tok_ids ids = {0};
    if (V > (uint32_t)INT32_MAX) {
        lmd_errf(err, "data '%s': the tokenizer has %u ids, more than int32 ids hold", spec, V);
        goto done;
    }
    if (vocab_size > 0 && V > (uint32_t)vocab_size) {
        lmd_errf(err, "data '%s': the tokenizer has %u ids but the model's vocab_size is %d",
                 spec, V, vocab_size);
        goto done;
    }
    size_t n;
    text = slurp(path, &n, err);
    if (!text) goto done;
    w = tok_ws_new(tok);
    size_t plen = strlen(path);
    if (plen > 6 && !strcmp(path + plen - 6, ".jsonl")) {
        int64_t eos = tok_eos_id(tok, NULL);
        size_t lineno = 0;
        for (char *line = text; line < text + n;) {
            char *nl = memchr(line, '\n', (size_t)(text + n - line));
            size_t len = nl ? (size_t)(nl - line) : (size_t)(text + n - line);
            lineno++;
            tok_ids doc = {0};
            int e = 0;
            if (len && !(len == 1 && line[0] == '\r')) {
                e = lmd_tokenize_json_line(tok, w, line, len, "text", &doc, err);
                if (e) lmd_err_prefix(err, "%s:%zu", path, lineno);
            }
            if (!e && doc.n) {
                if (ids.n && eos >= 0) tok_ids_push(&ids, (uint32_t)eos);
                for (size_t i = 0; i < doc.n; i++) tok_ids_push(&ids, doc.v[i]);
            }
            tok_ids_free(&doc);
            if (e) goto done;
            line += len + 1;
        }
    } else {
        int64_t bad = tok_utf8_invalid_at(text, n);
        if (bad >= 0) {
            lmd_errf(err, "%s: invalid UTF-8 at byte offset %lld", path, (long long)bad);
            goto done;
        }
        if (tok_encode(tok, w, text, n, 0, &ids, err)) {
            lmd_err_prefix(err, "%s", path);
            goto done;
        }
    }
    if (ids.n < 2) {
        lmd_errf(err, "data '%s': %zu tokens, too few", spec, ids.n);
        goto done;
    }
    memset(out, 0, sizeof *out);
    out->tok = lmd_calloc(ids.n, sizeof *out->tok);
    for (size_t i = 0; i < ids.n; i++) out->tok[i] = (int32_t)ids.v[i];
    out->n = ids.n;
    out->vocab_size = vocab_size > 0 ? vocab_size : (int)V;
    snprintf(out->source, sizeof out->source, "%s", spec);
    rc = 0;
done:
    tok_ids_free(&ids);
    tok_ws_free(w);
    free(text);
    tok_free(tok);
    return rc;
}

int lmd_datasrc_load(const char *spec, int vocab_size, lmd_tokens *out, lmd_err *err) {
    if (!spec || !strcmp(spec, "synthetic") || !strncmp(spec, "synthetic:", 10)) {
        lmd_synth_opts o = lmd_synth_default();
        if (spec && spec[9] == ':') {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(spec + 10, &end, 10);
            if (errno || *end || end == spec + 10)
                return lmd_errf(err, "data '%s': expected synthetic:SEED with an integer seed",
                                spec);
            o.seed = s;
        }
        if (vocab_size > 0) o.vocab_size = vocab_size;
        return lmd_data_synthetic(out, &o, err);
    }
    if (!strncmp(spec, "text:", 5)) return lmd_data_text(out, spec + 5, err);
    if (!strncmp(spec, "tok:", 4)) return load_tokenized(spec, vocab_size, out, err);
    if (!strncmp(spec, "shards:", 7))
        return lmd_data_shards(out, spec + 7, vocab_size > 0 ? vocab_size : 50257, err);
    return lmd_errf(err,
                    "data '%s': unknown source; use synthetic, synthetic:SEED, text:PATH, "
                    "shards:GLOB or tok:TOKENIZER:PATH",
                    spec);
}
