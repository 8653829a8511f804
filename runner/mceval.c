/* mceval.c — lm-evaluation-harness multiple-choice scoring (mceval.h). The comments quote the
 * lm-eval lines each step reproduces. */
#include "mceval.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

/* ---- task files ---- */

static void item_free(mc_item *it) {
    free(it->context);
    for (int c = 0; c < it->n_choices; c++) free(it->choices[c]);
    free(it->choices);
}

void mc_task_free(mc_task *t) {
    for (int i = 0; i < t->n_items; i++) item_free(&t->items[i]);
    free(t->items);
    free(t->path);
    memset(t, 0, sizeof *t);
}

/* A JSON string without NUL bytes (the encoder takes C strings). */
static const char *str_of(json_t *v) {
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    return strlen(s) == json_string_length(v) ? s : NULL;
}

static int parse_line(const char *path, int line, const char *text, size_t len, mc_item *it,
                      lmd_err *err) {
    memset(it, 0, sizeof *it);
    it->line = line;
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!o) return lmd_errf(err, "%s:%d:%d: not JSON: %s", path, line, je.column, je.text);
    int rc = -1;
    if (!json_is_object(o)) {
        lmd_errf(err, "%s:%d: a task line is a JSON object {context, choices, gold}", path, line);
        goto done;
    }
    json_t *ctx = json_object_get(o, "context"), *ch = json_object_get(o, "choices"),
           *gold = json_object_get(o, "gold");
    if (!ctx || !ch || !gold) {
        lmd_errf(err,
                 "%s:%d: missing field '%s' (a task line is {\"context\": string, "
                 "\"choices\": [strings], \"gold\": index})",
                 path, line,
                 !ctx  ? "context"
                 : !ch ? "choices"
                       : "gold");
        goto done;
    }
    if (!str_of(ctx)) {
        lmd_errf(err, "%s:%d: 'context' must be a string without NUL characters", path, line);
        goto done;
    }
    if (!json_is_array(ch) || json_array_size(ch) == 0) {
        lmd_errf(err, "%s:%d: 'choices' must be a non-empty array of strings", path, line);
        goto done;
    }
    if (!json_is_integer(gold)) {
        lmd_errf(err, "%s:%d: 'gold' must be an integer index into 'choices'", path, line);
        goto done;
    }
    size_t n = json_array_size(ch);
    json_int_t g = json_integer_value(gold);
    if (g < 0 || (size_t)g >= n) {
        lmd_errf(err, "%s:%d: 'gold' %lld is out of range for %zu choices (0..%zu)", path, line,
                 (long long)g, n, n - 1);
        goto done;
    }
    if (n > 1000000) {
        lmd_errf(err, "%s:%d: %zu choices", path, line, n);
        goto done;
    }
    it->context = lmd_strdup(json_string_value(ctx));
    it->choices = lmd_calloc(n, sizeof *it->choices);
    for (size_t c = 0; c < n; c++) {
        const char *s = str_of(json_array_get(ch, c));
        if (!s || !*s) {
            lmd_errf(err,
                     "%s:%d: choice %zu must be a non-empty string (acc_norm divides by "
                     "its length)",
                     path, line, c);
            goto done;
        }
        it->choices[c] = lmd_strdup(s);
        it->n_choices++;
    }
    it->gold = (int)g;
    rc = 0;
done:
    json_decref(o);
    if (rc) item_free(it), memset(it, 0, sizeof *it);
    return rc;
}

int mc_task_load(mc_task *t, const char *path, lmd_err *err) {
    memset(t, 0, sizeof *t);
    char *text = NULL;
    size_t len = 0;
    int rc = lmd_file_read(path, (size_t)1 << 32, &text, &len, err);
    if (rc == LMD_FILE_MISSING) return lmd_errf(err, "task file %s does not exist", path);
    if (rc) return -1;
    t->path = lmd_strdup(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(t->name, sizeof t->name, "%s", base);
    size_t nl = strlen(t->name);
    if (nl > 6 && !strcmp(t->name + nl - 6, ".jsonl")) t->name[nl - 6] = '\0';
    int cap = 0, line = 0;
    for (size_t p = 0; p < len;) {
        size_t e = p;
        while (e < len && text[e] != '\n') e++;
        line++;
        size_t q = p;
        while (q < e && (text[q] == ' ' || text[q] == '\t' || text[q] == '\r')) q++;
        if (q < e) { /* blank lines are skipped */
            if (t->n_items == cap) {
                cap = cap ? 2 * cap : 64;
                mc_item *ni = realloc(t->items, (size_t)cap * sizeof *ni);
                if (!ni) lmd_die("out of memory reading %s", path);
                t->items = ni;
            }
            if (parse_line(path, line, text + p, e - p, &t->items[t->n_items], err)) {
                free(text);
                mc_task_free(t);
                return -1;
            }
            t->n_items++;
        }
        p = e + 1;
    }
    free(text);
    if (t->n_items == 0) {
        lmd_errf(err, "%s: no task lines (JSON Lines of {context, choices, gold})", path);
        mc_task_free(t);
        return -1;
    }
    return 0;
}

/* ---- encoding (lm_eval/api/model.py) ---- */

/* Python's str.isspace() code points: what context.rstrip() removes. */
static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Byte offset where the trailing Python whitespace of s[0..n) starts. */
static size_t rstrip_at(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t b = end - 1;
        while (b > 0 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
        const unsigned char *u = (const unsigned char *)s + b;
        uint32_t c;
        size_t k = end - b;
        if (k == 1)
            c = u[0];
        else if (k == 2)
            c = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
        else if (k == 3)
            c = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
        else
            c = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
                ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
        if (!py_space(c)) break;
        end = b;
    }
    return end;
}

static int encode(const mc_scorer *s, tok_ws *w, const char *text, size_t n, tok_ids *out,
                  lmd_err *err) {
    out->n = 0;
    if (tok_utf8_invalid_at(text, n) >= 0) return lmd_errf(err, "invalid UTF-8");
    /* HFLM.tok_encode: add_special_tokens=False for causal models */
    return tok_encode(s->tok, w, text, n, 0, out, err);
}

int mc_encode_request(const mc_scorer *s, tok_ws *w, const char *context, const char *choice,
                      uint32_t **ids, int *n_ctx, int *n_cont, lmd_err *err) {
    *ids = NULL;
    size_t lc = strlen(context), lch = strlen(choice);
    /* task.py: arguments = [(ctx, f"{target_delimiter}{cont}") for cont in choices], " " */
    char *whole = lmd_calloc(lc + lch + 2, 1);
    memcpy(whole, context, lc);
    whole[lc] = ' ';
    memcpy(whole + lc + 1, choice, lch);
    size_t lw = lc + 1 + lch;
    tok_ids a = {0}, b = {0};
    int rc = -1;
    if (lc == 0) {
        /* loglikelihood(): context == "" -> ([prefix_token_id], tok_encode(continuation)),
         * or (cont_enc[:1], cont_enc[1:]) when the continuation starts with that token */
        if (encode(s, w, whole, lw, &b, err)) goto done;
        if (b.n == 0) {
            lmd_errf(err, "the continuation encodes to no token");
            goto done;
        }
        uint32_t *v = lmd_calloc(b.n + 1, sizeof *v);
        if ((int64_t)b.v[0] != s->prefix_token) {
            v[0] = (uint32_t)s->prefix_token;
            memcpy(v + 1, b.v, b.n * sizeof *v);
            *n_ctx = 1;
            *n_cont = (int)b.n;
        } else {
            memcpy(v, b.v, b.n * sizeof *v);
            *n_ctx = 1;
            *n_cont = (int)b.n - 1;
        }
        *ids = v;
    } else {
        /* _encode_pair: n_spaces = len(context) - len(context.rstrip()); those move to the
         * continuation; whole_enc = tok_encode(context + continuation); context_enc =
         * tok_encode(context); continuation_enc = whole_enc[len(context_enc):] */
        size_t cut = rstrip_at(context, lc);
        if (encode(s, w, whole, lw, &a, err) || encode(s, w, context, cut, &b, err)) goto done;
        if (b.n > a.n) {
            lmd_errf(err, "the context encodes to more tokens alone than with the choice");
            goto done;
        }
        uint32_t *v = lmd_calloc(a.n + 1, sizeof *v);
        memcpy(v, a.v, a.n * sizeof *v);
        *n_ctx = (int)b.n;
        *n_cont = (int)(a.n - b.n);
        *ids = v;
    }
    if (*n_cont == 0) {
        free(*ids);
        *ids = NULL;
        lmd_errf(err, "the continuation encodes to no token of its own");
        goto done;
    }
    if (*n_ctx == 0) { /* context of only whitespace: nothing to condition on */
        free(*ids);
        *ids = NULL;
        lmd_errf(err, "the context is only whitespace: it encodes to no token (lm-eval "
                      "asserts len(context_enc) > 0); give an empty context instead");
        goto done;
    }
    rc = 0;
done:
    free(whole);
    tok_ids_free(&a);
    tok_ids_free(&b);
    return rc;
}

/* ---- scoring (lm_eval/models/huggingface.py _loglikelihood_tokens) ---- */

int mc_scorer_init(mc_scorer *s, lmd_anymodel *m, const lmd_tokenizer *t, int64_t prefix,
                   lmd_err *err) {
    memset(s, 0, sizeof *s);
    s->model = m;
    s->tok = t;
    if ((int64_t)tok_vocab_size(t) > m->vocab_size)
        return lmd_errf(err, "the tokenizer has %u ids but the model's vocab_size is %d",
                        tok_vocab_size(t), m->vocab_size);
    /* resolve_max_length: n_positions, max_position_embeddings, n_ctx, else 2048 */
    s->max_length = m->is_hf ? m->hm.cfg.max_position : m->gm.cfg.n_ctx;
    if (s->max_length <= 0) s->max_length = 2048;
    s->prefix_token = prefix >= 0 ? prefix : tok_eos_id(t, NULL);
    if (s->prefix_token < 0)
        return lmd_errf(err, "the tokenizer has no end-of-text token to use as the prefix of "
                             "an empty context: give --prefix-token ID");
    if (s->prefix_token >= m->vocab_size)
        return lmd_errf(err, "prefix token %lld is outside the vocabulary of %d",
                        (long long)s->prefix_token, m->vocab_size);
    return 0;
}

/* Scores one request: ids = ctx_enc + cont_enc (n_ctx + n_cont). */
static int score(const mc_scorer *s, const uint32_t *ids, int n_ctx, int n_cont,
                 mc_choice_score *out, lmd_err *err) {
    const int ML = s->max_length, V = s->model->vocab_size;
    if (n_cont > ML)
        return lmd_errf(err,
                        "the continuation has %d tokens, more than the model's %d "
                        "positions",
                        n_cont, ML);
    /* inp = (context_enc + continuation_enc)[-(max_length + 1):][:-1] */
    int total = n_ctx + n_cont, first = total > ML + 1 ? total - (ML + 1) : 0;
    int inplen = total - first - 1;
    int32_t *inp = lmd_calloc((size_t)inplen, sizeof *inp);
    for (int i = 0; i < inplen; i++) inp[i] = (int32_t)ids[first + i];
    float *logits = lmd_aligned_alloc((size_t)inplen * V * sizeof(float));
    int rc = lmd_anymodel_forward(s->model, inp, 1, inplen, NULL, NULL, logits, err);
    if (rc == 0) {
        /* logits[inplen - contlen : inplen] predict the continuation tokens;
         * F.log_softmax then gather, summed */
        double ll = 0;
        int greedy = 1;
        for (int j = 0; j < n_cont; j++) {
            const float *row = logits + (size_t)(inplen - n_cont + j) * V;
            uint32_t target = ids[n_ctx + j];
            double mx = -INFINITY;
            int am = 0;
            for (int v = 0; v < V; v++)
                if (row[v] > mx) mx = row[v], am = v;
            double z = 0;
            for (int v = 0; v < V; v++) z += exp((double)row[v] - mx);
            ll += (double)row[target] - mx - log(z);
            if ((uint32_t)am != target) greedy = 0;
        }
        out->loglik = ll;
        out->n_ctx_tokens = n_ctx;
        out->n_cont_tokens = n_cont;
        out->greedy = greedy;
        out->truncated = first > 0;
    }
    free(logits);
    free(inp);
    return rc;
}

/* Code points (Python len) and bytes of a UTF-8 string. */
static size_t n_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* np.argmax: the first maximum */
static int argmax(const double *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

size_t mc_task_n_choices(const mc_task *t) {
    size_t total = 0;
    for (int i = 0; i < t->n_items; i++) total += (size_t)t->items[i].n_choices;
    return total;
}

int mc_score_task(const mc_scorer *s, const mc_task *t, int part, int n_parts, mc_choice_score *sc,
                  lmd_err *err) {
    tok_ws *w = tok_ws_new(s->tok);
    int rc = 0;
    size_t k = 0;
    for (int i = 0; i < t->n_items && rc == 0; i++) {
        const mc_item *it = &t->items[i];
        if (i % n_parts != part) { /* another rank's item */
            k += (size_t)it->n_choices;
            continue;
        }
        for (int c = 0; c < it->n_choices && rc == 0; c++, k++) {
            uint32_t *ids = NULL;
            int nc = 0, nk = 0;
            rc = mc_encode_request(s, w, it->context, it->choices[c], &ids, &nc, &nk, err);
            if (rc == 0) rc = score(s, ids, nc, nk, &sc[k], err);
            free(ids);
            if (rc) lmd_err_prefix(err, "%s:%d: choice %d", t->path, it->line, c);
        }
    }
    tok_ws_free(w);
    return rc;
}

void mc_task_metrics(const mc_task *t, const mc_choice_score *sc, mc_result *r, int *pr) {
    memset(r, 0, sizeof *r);
    int maxc = 1;
    for (int i = 0; i < t->n_items; i++)
        if (t->items[i].n_choices > maxc) maxc = t->items[i].n_choices;
    double *ll = lmd_calloc((size_t)maxc, sizeof *ll), *lln = lmd_calloc((size_t)maxc, sizeof *lln),
           *llb = lmd_calloc((size_t)maxc, sizeof *llb);
    size_t k = 0;
    for (int i = 0; i < t->n_items; i++) {
        const mc_item *it = &t->items[i];
        for (int c = 0; c < it->n_choices; c++, k++) {
            if (sc[k].truncated) r->n_truncated++;
            /* process_results: completion_len = len(choice), byte_length =
             * len(choice.encode("utf-8")) -- the choice without the delimiter */
            ll[c] = sc[k].loglik;
            lln[c] = sc[k].loglik / (double)n_chars(it->choices[c]);
            llb[c] = sc[k].loglik / (double)strlen(it->choices[c]);
        }
        int p = argmax(ll, it->n_choices), pn = argmax(lln, it->n_choices),
            pb = argmax(llb, it->n_choices);
        if (pr) pr[3 * i] = p, pr[3 * i + 1] = pn, pr[3 * i + 2] = pb;
        r->correct += p == it->gold;
        r->correct_norm += pn == it->gold;
        r->correct_bytes += pb == it->gold;
    }
    free(ll), free(lln), free(llb);
    r->n_items = t->n_items;
    r->acc = (double)r->correct / t->n_items;
    r->acc_norm = (double)r->correct_norm / t->n_items;
    r->acc_bytes = (double)r->correct_bytes / t->n_items;
}

int mc_eval_task(const mc_scorer *s, const mc_task *t, mc_result *r, mc_choice_score **scores,
                 int **preds, lmd_err *err) {
    memset(r, 0, sizeof *r);
    mc_choice_score *sc = lmd_calloc(mc_task_n_choices(t) + 1, sizeof *sc);
    int *pr = lmd_calloc((size_t)t->n_items * 3 + 1, sizeof *pr);
    int rc = mc_score_task(s, t, 0, 1, sc, err);
    if (rc == 0) mc_task_metrics(t, sc, r, pr);
    if (scores && rc == 0)
        *scores = sc;
    else
        free(sc);
    if (preds && rc == 0)
        *preds = pr;
    else
        free(pr);
    return rc;
}

/* ---- the study a checkpoint belongs to ---- */

char *lmd_study_tokenizer_of(const char *ck) {
    char real[PATH_MAX], path[PATH_MAX + 16];
    if (!realpath(ck, real)) return NULL;
    char *sl = strrchr(real, '/');
    if (!sl) return NULL;
    *sl = '\0';
    sl = strrchr(real, '/');
    if (!sl || (strcmp(sl + 1, "ckpt") && strcmp(sl + 1, "track"))) return NULL;
    *sl = '\0';
    lmd_pathf(path, "%s/settings", real);
    char *text = NULL;
    lmd_err e = {{0}};
    if (lmd_file_read(path, 1 << 20, &text, NULL, &e)) return NULL;
    char *out = NULL;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strncmp(line, "data.tokenizer=", 15) == 0) out = lmd_strdup(line + 15);
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return out;
}
