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

/* The string field `field` of one JSON Lines line: the value (owned by *obj: json_decref it,
 * also on failure), or NULL with "COLUMN: what" or "field "F": what" in err. */
static json_t *jsonl_string(const char *line, size_t len, const char *field, json_t **obj,
                            lmd_err *err) {
    json_error_t je;
    *obj = json_loadb(line, len, JSON_ALLOW_NUL, &je);
    if (!*obj) {
        lmd_errf(err, "%d: %s", je.column, je.text);
        return NULL;
    }
    json_t *v = json_is_object(*obj) ? json_object_get(*obj, field) : NULL;
    if (json_is_string(v)) return v;
    lmd_errf(err, "field \"%s\": %s", field,
             !json_is_object(*obj) ? "the line is not a JSON object"
             : v                   ? "not a string"
                                   : "missing");
    return NULL;
}

int lmd_tokenize_json_line(const lmd_tokenizer *tok, tok_ws *w, const char *line, size_t len,
                           const char *field, tok_ids *out, lmd_err *err) {
    json_t *obj = NULL;
    json_t *v = jsonl_string(line, len, field, &obj, err);
    int rc = 0;
    if (!v)
        rc = -1;
    else if (tok_encode(tok, w, json_string_value(v), json_string_length(v), 0, out, err))
        rc = -1;
    json_decref(obj);
    return rc;
}

/* Splits spec "tok:TOKENIZER:PATH": TOKENIZER into tpath (capacity n), *path = PATH in spec. */
static int split_tok(const char *spec, char *tpath, size_t n, const char **path, lmd_err *err) {
    const char *rest = spec + 4, *colon = strchr(rest, ':');
    if (!colon || colon == rest || !colon[1])
        return lmd_errf(err,
                        "data '%s': expected tok:TOKENIZER:PATH (a tokenizer.json or model "
                        "directory, then a text or .jsonl file)",
                        spec);
    lmd_pathf_at(__FILE__, __LINE__, tpath, n, "%.*s", (int)(colon - rest), rest);
    *path = colon + 1;
    return 0;
}

/* tok:TOKENIZER:PATH — PATH (a text file = one document, or *.jsonl: every line's "text" is
 * one, joined by the end-of-text token) encoded in memory with a tokenizer.json; the
 * vocabulary is the tokenizer's. Large corpora: `lmdisp tokenize` once, then shards:. */
static int load_tokenized(const char *spec, int vocab_size, lmd_tokens *out, lmd_err *err) {
    char tpath[4096];
    const char *path = NULL;
    if (split_tok(spec, tpath, sizeof tpath, &path, err)) return -1;
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
        lmd_errf(err, "data '%s': the tokenizer has %u ids but the model's vocab_size is %d", spec,
                 V, vocab_size);
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

/* Documents of a text source: offsets into one buffer (JSON strings decoded into it). */
typedef struct {
    char *buf;
    size_t *off, *len, *words;
    size_t n, cap;
} doc_list;

static void docs_free(doc_list *d) {
    free(d->buf);
    free(d->off);
    free(d->len);
    free(d->words);
    memset(d, 0, sizeof *d);
}

static void docs_add(doc_list *d, size_t off, size_t len) {
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 256;
        d->off = realloc(d->off, d->cap * sizeof *d->off);
        d->len = realloc(d->len, d->cap * sizeof *d->len);
        d->words = realloc(d->words, d->cap * sizeof *d->words);
        if (!d->off || !d->len || !d->words) lmd_die("out of memory listing documents");
    }
    size_t w = 0;
    int in = 0;
    for (size_t i = off; i < off + len; i++) {
        char c = d->buf[i];
        int sp = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        if (!sp && !in) w++;
        in = !sp;
    }
    d->off[d->n] = off;
    d->len[d->n] = len;
    d->words[d->n] = w;
    d->n++;
}

/* Reads PATH into documents (see datasrc.h). */
static int read_docs(const char *path, doc_list *d, lmd_err *err) {
    memset(d, 0, sizeof *d);
    size_t n;
    char *text = slurp(path, &n, err);
    if (!text) return -1;
    size_t plen = strlen(path);
    if (plen > 6 && !strcmp(path + plen - 6, ".jsonl")) {
        /* decoded strings are never longer than their JSON text: decode into a same-size buffer */
        d->buf = malloc(n + 1);
        if (!d->buf) lmd_die("out of memory reading %s", path);
        size_t used = 0, lineno = 0;
        for (char *line = text; line < text + n;) {
            char *nl = memchr(line, '\n', (size_t)(text + n - line));
            size_t len = nl ? (size_t)(nl - line) : (size_t)(text + n - line);
            lineno++;
            if (len && !(len == 1 && line[0] == '\r')) {
                json_t *obj = NULL;
                json_t *v = jsonl_string(line, len, "text", &obj, err);
                if (!v) {
                    lmd_err_prefix(err, "%s:%zu", path, lineno);
                    json_decref(obj);
                    free(text);
                    docs_free(d);
                    return -1;
                }
                size_t sl = json_string_length(v);
                int64_t bad = tok_utf8_invalid_at(json_string_value(v), sl);
                if (bad >= 0) {
                    lmd_errf(err,
                             "%s:%zu: field \"text\": invalid UTF-8 at byte offset %lld of "
                             "the string",
                             path, lineno, (long long)bad);
                    json_decref(obj);
                    free(text);
                    docs_free(d);
                    return -1;
                }
                if (sl) {
                    memcpy(d->buf + used, json_string_value(v), sl);
                    docs_add(d, used, sl);
                    used += sl;
                }
                json_decref(obj);
            }
            line += len + 1;
        }
        free(text);
    } else {
        int64_t bad = tok_utf8_invalid_at(text, n);
        if (bad >= 0) {
            free(text);
            return lmd_errf(err, "%s: invalid UTF-8 at byte offset %lld", path, (long long)bad);
        }
        d->buf = text;
        /* paragraphs: maximal runs of lines that are not blank (only spaces, tabs, \r) */
        size_t i = 0, start = 0;
        int inpara = 0;
        while (i < n) {
            size_t e = i;
            while (e < n && text[e] != '\n') e++;
            int blank = 1;
            for (size_t k = i; k < e && blank; k++)
                blank = text[k] == ' ' || text[k] == '\t' || text[k] == '\r';
            if (!blank && !inpara) {
                start = i;
                inpara = 1;
            } else if (blank && inpara) {
                docs_add(d, start, i - 1 - start); /* up to the previous line's end */
                inpara = 0;
            }
            i = e + 1;
        }
        if (inpara) {
            size_t e = n;
            while (e > start && (text[e - 1] == '\n' || text[e - 1] == '\r')) e--;
            docs_add(d, start, e - start);
        }
    }
    return 0;
}

int lmd_datasrc_paper_sample(const char *spec, int vocab_size, const lmd_paper_sampling *ps,
                             int32_t **ids, size_t **starts, size_t *n_docs, lmd_err *err) {
    *ids = NULL;
    if (starts) *starts = NULL;
    *n_docs = 0;
    if (strncmp(spec, "tok:", 4) != 0)
        return lmd_errf(err,
                        "data '%s': the paper's sampling needs a text source "
                        "tok:TOKENIZER:PATH",
                        spec);
    char tpath[4096];
    const char *path = NULL;
    if (split_tok(spec, tpath, sizeof tpath, &path, err)) return -1;
    if (ps->n_seq < 1 || ps->T < 1 || ps->min_words < 0)
        return lmd_errf(err,
                        "data '%s': sequences %d, seq-len %d, min-words %d: the first two "
                        "must be >= 1, the last >= 0",
                        spec, ps->n_seq, ps->T, ps->min_words);
    lmd_tokenizer *tok = NULL;
    if (tok_load(&tok, tpath, err)) return lmd_err_prefix(err, "data '%s'", spec);
    uint32_t V = tok_vocab_size(tok);
    if (vocab_size > 0 && V > (uint32_t)vocab_size) {
        tok_free(tok);
        return lmd_errf(err,
                        "data '%s': the tokenizer has %u ids but the model's vocab_size is "
                        "%d",
                        spec, V, vocab_size);
    }
    doc_list d;
    if (read_docs(path, &d, err)) {
        tok_free(tok);
        return -1;
    }
    *n_docs = d.n;
    int rc = -1;
    const size_t N = (size_t)ps->n_seq, T = (size_t)ps->T;
    int32_t *out = malloc(N * T * sizeof *out);
    size_t *st = malloc(N * sizeof *st), *order = malloc((d.n ? d.n : 1) * sizeof *order);
    size_t *cum = malloc((d.n + 1) * sizeof *cum); /* cum[i] = words in documents < i */
    char *join = NULL;
    size_t join_cap = 0;
    tok_ws *w = tok_ws_new(tok);
    tok_ids enc = {0};
    if (!out || !st || !order || !cum) lmd_die("out of memory sampling %s", spec);
    cum[0] = 0;
    for (size_t i = 0; i < d.n; i++) cum[i + 1] = cum[i] + d.words[i];
    lmd_rng r;
    lmd_rng_seed(&r, ps->seed, LMD_STREAM_DATA);
    for (size_t i = 0; i < d.n; i++) order[i] = i;
    for (size_t i = d.n; i > 1; i--) {
        size_t j = (size_t)lmd_rng_below(&r, i);
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    size_t kept = 0, short_tok = 0;
    for (size_t k = 0; k < d.n && kept < N; k++) {
        size_t s = order[k], e = s + 1; /* documents s .. e-1: at least one */
        while (e < d.n && cum[e] - cum[s] < (size_t)ps->min_words) e++;
        if (cum[e] - cum[s] < (size_t)ps->min_words) continue;
        size_t need = 0;
        for (size_t i = s; i < e; i++) need += d.len[i] + 2;
        if (need > join_cap) {
            join_cap = need;
            char *g = realloc(join, join_cap);
            if (!g) lmd_die("out of memory sampling %s", spec);
            join = g;
        }
        size_t jl = 0;
        for (size_t i = s; i < e; i++) {
            if (i > s) {
                join[jl++] = '\n';
                join[jl++] = '\n';
            }
            memcpy(join + jl, d.buf + d.off[i], d.len[i]);
            jl += d.len[i];
        }
        enc.n = 0;
        if (tok_encode(tok, w, join, jl, 0, &enc, err)) {
            lmd_err_prefix(err, "%s: documents %zu..%zu", path, s, e - 1);
            goto done;
        }
        if (enc.n < T) {
            short_tok++;
            continue;
        }
        for (size_t t = 0; t < T; t++) out[kept * T + t] = (int32_t)enc.v[t];
        st[kept++] = s;
    }
    if (kept < N) {
        lmd_errf(err,
                 "data '%s': %zu documents (%llu words); from %zu starts the joined "
                 "documents reach %d words%s%zu reach %d tokens: it can make %zu sequences, "
                 "%d were asked for; lower --sequences, --min-words or --seq-len",
                 spec, d.n, (unsigned long long)cum[d.n], kept + short_tok, ps->min_words,
                 ", and of those ", kept, ps->T, kept, ps->n_seq);
        goto done;
    }
    *ids = out;
    out = NULL;
    if (starts) {
        *starts = st;
        st = NULL;
    }
    rc = 0;
done:
    tok_ids_free(&enc);
    tok_ws_free(w);
    free(join);
    free(cum);
    free(order);
    free(st);
    free(out);
    docs_free(&d);
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
        return lmd_data_shards(out, spec + 7, vocab_size > 0 ? vocab_size : LMD_DATA_SHARDS_VOCAB,
                               err);
    return lmd_errf(err,
                    "data '%s': unknown source; use synthetic, synthetic:SEED, text:PATH, "
                    "shards:GLOB or tok:TOKENIZER:PATH",
                    spec);
}
