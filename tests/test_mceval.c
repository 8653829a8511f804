/* test_mceval.c — runner/mceval without external files (so CI runs it under ASan/UBSan): task
 * files refused with FILE:LINE, lm-eval's _encode_pair (trailing whitespace incl. U+00A0 moved
 * to the continuation, the empty-context prefix, a whitespace-only context refused) with a
 * byte-level tokenizer.json without merges (so every expected id is a byte, written by hand
 * here), the left truncation of the window and the log-likelihood of the continuation against
 * a float64 log-softmax of the logits of the hand-built window, and acc / acc_norm / acc_bytes
 * against their definitions. Returns the number of failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mceval.h"
#include "testutil.h"

/* GPT-2 bytes_to_unicode as UTF-8 */
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

/* bytes 0..255 = ids 0..255, <|endoftext|> = 256, no merges, GPT-2 pre-tokenizer */
static int write_bytes_tokenizer(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":256,\"content\":\"<|endoftext|>\","
               "\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
               "\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\","
               "\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true},"
               "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"dropout\":null,"
               "\"unk_token\":null,\"vocab\":{");
    char c[4];
    for (int b = 0; b < 256; b++) {
        byte_char(b, c);
        fprintf(f, "%s\"%s%s\":%d", b ? "," : "", (c[0] == '"' || c[0] == '\\') ? "\\" : "", c, b);
    }
    fprintf(f, ",\"<|endoftext|>\":256},\"merges\":[]}}\n");
    return fclose(f);
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static void test_task_files(const char *dir) {
    struct {
        const char *text, *want;
    } c[] = {
        {"{\"context\": \"a\", \"choices\": [\"b\"], \"gold\": 0}\n\n{\"context\": 1, \"choices\": "
         "[\"b\"], \"gold\": 0}\n",
         "t.jsonl:3: 'context' must be a string"},
        {"{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 2}\n",
         "t.jsonl:1: 'gold' 2 is out of range"},
        {"{\"context\": \"a\", \"choices\": [], \"gold\": 0}\n",
         "t.jsonl:1: 'choices' must be a non-empty array"},
        {"{\"context\": \"a\", \"choices\": [\"b\", 3], \"gold\": 0}\n",
         "t.jsonl:1: choice 1 must be a non-empty string"},
        {"{\"context\": \"a\", \"gold\": 0}\n", "t.jsonl:1: missing field 'choices'"},
        {"not json\n", "t.jsonl:1:"},
        {"\n  \n", "no task lines"},
    };
    char path[1024];
    snprintf(path, sizeof path, "%s/t.jsonl", dir);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        TU_CHECK(write_text(path, c[i].text) == 0, "cannot write %s", path);
        mc_task t;
        lmd_err err = {{0}};
        int rc = mc_task_load(&t, path, &err);
        TU_CHECK(rc != 0 && strstr(err.msg, c[i].want), "case %zu: rc %d, message '%s', want '%s'",
                 i, rc, err.msg, c[i].want);
        if (rc == 0) mc_task_free(&t);
    }
    TU_CHECK(write_text(path, "\n{\"context\": \"\", \"choices\": [\"x\", \"y\"], \"gold\": 1, "
                              "\"id\": 7}\n\n") == 0,
             "write");
    mc_task t;
    lmd_err err = {{0}};
    TU_CHECK(mc_task_load(&t, path, &err) == 0, "load: %s", err.msg);
    TU_CHECK(t.n_items == 1 && t.items[0].line == 2 && t.items[0].gold == 1 &&
                 t.items[0].n_choices == 2 && !strcmp(t.name, "t"),
             "parsed %d items, line %d, name '%s'", t.n_items, t.n_items ? t.items[0].line : 0,
             t.name);
    mc_task_free(&t);
}

/* ids of a request vs the bytes the lm-eval rule gives */
static void check_request(const mc_scorer *s, tok_ws *w, const char *ctx, const char *choice,
                          const char *want_ctx, const char *want_cont, int prefix) {
    uint32_t *ids = NULL;
    int nc = 0, nk = 0;
    lmd_err err = {{0}};
    int rc = mc_encode_request(s, w, ctx, choice, &ids, &nc, &nk, &err);
    TU_CHECK(rc == 0, "encode '%s' + '%s': %s", ctx, choice, err.msg);
    if (rc) return;
    size_t lc = strlen(want_ctx), lk = strlen(want_cont);
    int ok = nc == (int)(prefix ? 1 : lc) && nk == (int)lk;
    if (ok && prefix) ok = ids[0] == 256;
    for (size_t i = 0; ok && !prefix && i < lc; i++) ok = ids[i] == (unsigned char)want_ctx[i];
    for (size_t i = 0; ok && i < lk; i++) ok = ids[nc + i] == (unsigned char)want_cont[i];
    TU_CHECK(ok, "'%s' + '%s': %d context and %d continuation ids, want %zu and %zu", ctx, choice,
             nc, nk, prefix ? 1 : lc, lk);
    free(ids);
}

static double ref_loglik(lmd_anymodel *m, const uint32_t *all, int n_all, int n_cont, int ML) {
    /* (ctx + cont)[-(ML+1):][:-1], then log_softmax at the last n_cont positions */
    int first = n_all > ML + 1 ? n_all - (ML + 1) : 0, T = n_all - first - 1;
    int32_t *inp = lmd_calloc((size_t)T, sizeof *inp);
    for (int i = 0; i < T; i++) inp[i] = (int32_t)all[first + i];
    float *lg = lmd_calloc((size_t)T * m->vocab_size, sizeof *lg);
    lmd_err err = {{0}};
    if (lmd_anymodel_forward(m, inp, 1, T, NULL, NULL, lg, &err))
        TU_CHECK(0, "forward: %s", err.msg);
    double ll = 0;
    for (int j = 0; j < n_cont; j++) {
        const float *row = lg + (size_t)(T - n_cont + j) * m->vocab_size;
        double mx = row[0], z = 0;
        for (int v = 1; v < m->vocab_size; v++) mx = fmax(mx, (double)row[v]);
        for (int v = 0; v < m->vocab_size; v++) z += exp((double)row[v] - mx);
        ll += (double)row[all[n_all - n_cont + j]] - mx - log(z);
    }
    free(inp);
    free(lg);
    return ll;
}

static void test_scoring(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/bytes_tokenizer.json", dir);
    TU_CHECK(write_bytes_tokenizer(path) == 0, "cannot write %s", path);
    lmd_tokenizer *tok = NULL;
    lmd_err err = {{0}};
    if (tok_load(&tok, path, &err)) {
        TU_CHECK(0, "tok_load: %s", err.msg);
        return;
    }
    lmd_anymodel m;
    memset(&m, 0, sizeof m);
    gpt_config cfg = {
        .vocab_size = 260, .n_ctx = 8, .n_layer = 1, .n_embd = 16, .n_head = 2, .mlp_dim = 24};
    TU_CHECK(gpt_create(&m.gm, &cfg, &err) == 0, "gpt_create: %s", err.msg);
    gpt_init(&m.gm, 3);
    for (size_t i = 0; i < m.gm.num_params; i++) m.gm.params_memory[i] *= 5.0f; /* sharper */
    snprintf(m.model_type, sizeof m.model_type, "lmdisp-gpt");
    m.n_layer = 1, m.hidden_size = 16, m.vocab_size = 260, m.max_T = 8;
    mc_scorer s;
    TU_CHECK(mc_scorer_init(&s, &m, tok, -1, &err) == 0, "scorer: %s", err.msg);
    TU_CHECK(s.max_length == 8 && s.prefix_token == 256, "window %d prefix %lld", s.max_length,
             (long long)s.prefix_token);
    tok_ws *w = tok_ws_new(tok);
    check_request(&s, w, "Ans:", "no", "Ans:", " no", 0);
    check_request(&s, w, "Ans: ", "no", "Ans:", "  no", 0);
    check_request(&s, w, "Q\n\t ", "x", "Q", "\n\t  x", 0);
    check_request(&s, w, "a\xc2\xa0", "b", "a", "\xc2\xa0 b", 0); /* U+00A0 is str.isspace() */
    check_request(&s, w, "a\xe2\x80\x8b", "b", "a\xe2\x80\x8b", " b", 0); /* U+200B is not */
    check_request(&s, w, "", "hi", "", " hi", 1);
    uint32_t *ids = NULL;
    int nc, nk;
    TU_CHECK(mc_encode_request(&s, w, " \t", "b", &ids, &nc, &nk, &err) != 0 &&
                 strstr(err.msg, "only whitespace"),
             "a whitespace-only context: %s", err.msg);

    /* a task: long contexts (window 8 cut on the left), UTF-8 choices (acc_norm != acc_bytes) */
    snprintf(path, sizeof path, "%s/score.jsonl", dir);
    const char *items =
        "{\"context\": \"the quick brown fox jumps over\", \"choices\": [\"a\", \"the dog\", "
        "\"\xc3\xa9\xc3\xa9\"], \"gold\": 1}\n"
        "{\"context\": \"x\", \"choices\": [\"\xe2\x82\xac\", \"eu\", \"abc\"], \"gold\": 0}\n"
        "{\"context\": \"\", \"choices\": [\"one\", \"two w\"], \"gold\": 1}\n";
    TU_CHECK(write_text(path, items) == 0, "write");
    mc_task t;
    TU_CHECK(mc_task_load(&t, path, &err) == 0, "load: %s", err.msg);
    mc_result r;
    mc_choice_score *sc = NULL;
    int *pr = NULL;
    TU_CHECK(mc_eval_task(&s, &t, &r, &sc, &pr, &err) == 0, "eval: %s", err.msg);
    size_t k = 0;
    int correct[3] = {0, 0, 0};
    double worst = 0;
    for (int i = 0; i < t.n_items && sc; i++) {
        const mc_item *it = &t.items[i];
        double ll[8], by_c[8], by_b[8];
        for (int c = 0; c < it->n_choices; c++, k++) {
            TU_CHECK(mc_encode_request(&s, w, it->context, it->choices[c], &ids, &nc, &nk, &err) ==
                         0,
                     "encode: %s", err.msg);
            ll[c] = ref_loglik(&m, ids, nc + nk, nk, 8);
            free(ids);
            worst = fmax(worst, fabs(ll[c] - sc[k].loglik));
            size_t chars = 0;
            for (const char *p = it->choices[c]; *p; p++)
                chars += ((unsigned char)*p & 0xC0) != 0x80;
            by_c[c] = ll[c] / (double)chars;
            by_b[c] = ll[c] / (double)strlen(it->choices[c]);
        }
        int p[3] = {0, 0, 0};
        for (int c = 1; c < it->n_choices; c++) {
            if (ll[c] > ll[p[0]]) p[0] = c;
            if (by_c[c] > by_c[p[1]]) p[1] = c;
            if (by_b[c] > by_b[p[2]]) p[2] = c;
        }
        for (int q = 0; q < 3; q++) {
            TU_CHECK(pr[3 * i + q] == p[q], "item %d metric %d: pred %d, want %d", i, q,
                     pr[3 * i + q], p[q]);
            correct[q] += p[q] == it->gold;
        }
    }
    printf("mc_eval_task vs float64 log-softmax of the hand-built windows: worst |diff| %.2e "
           "(bound 1e-9), "
           "%d windows cut on the left\n",
           worst, r.n_truncated);
    TU_CHECK(worst <= 1e-9, "log-likelihood differs by %g", worst);
    TU_CHECK(r.n_truncated >= 2, "%d truncated windows, want the long context's", r.n_truncated);
    TU_CHECK(r.correct == correct[0] && r.correct_norm == correct[1] &&
                 r.correct_bytes == correct[2] && r.n_items == 3 &&
                 fabs(r.acc - correct[0] / 3.0) < 1e-15,
             "counts %d %d %d vs %d %d %d", r.correct, r.correct_norm, r.correct_bytes, correct[0],
             correct[1], correct[2]);
    free(sc);
    free(pr);
    mc_task_free(&t);
    tok_ws_free(w);
    tok_free(tok);
    gpt_free(&m.gm);
}

int main(void) {
    const char *dir = getenv("LMDISP_TMP");
    if (!dir) dir = "/tmp";
    test_task_files(dir);
    test_scoring(dir);
    return tu_summary("test_mceval");
}
