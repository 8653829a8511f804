/* test_measspec.c — the measurement study spec (runner/measspec.c): expansion of
 * experiments/meas_tiny_hf.yaml (families, the hf:...@* series in DESIGN 4.6 order with the
 * tokens of the revision names, cells model-major, ids stable and sensitive to settings, cost
 * order, pairs), kind detection, and malformed specs refused with file:line:column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measspec.h"
#include "testutil.h"

static const char *tests_dir(void) {
    const char *d = getenv("LMDISP_TESTS");
    return d ? d : ".";
}

/* writes text to LMDISP_TMP/name (relative model paths then resolve against that directory,
 * so these specs use absolute ones) and returns the path */
static const char *write_spec(const char *name, const char *text) {
    static char path[4096];
    const char *tmp = getenv("LMDISP_TMP");
    snprintf(path, sizeof path, "%s/%s", tmp ? tmp : "/tmp", name);
    lmd_err err;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tmp ? tmp : "/tmp");
    lmd_mkdirs(dir, &err);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

static void test_tiny(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/../experiments/meas_tiny_hf.yaml", tests_dir());
    TU_CHECK(lmd_mspec_detect(path) == 1, "kind: measure not detected in %s", path);
    char tpath[4096];
    snprintf(tpath, sizeof tpath, "%s/specs/study_tiny.yaml", tests_dir());
    TU_CHECK(lmd_mspec_detect(tpath) == 0, "a training spec detected as a measurement spec");
    lmd_mspec s;
    lmd_err err = {{0}};
    int rc = lmd_mspec_load(&s, path, &err);
    TU_CHECK(rc == 0, "load %s: %s", path, err.msg);
    if (rc) return;
    TU_CHECK(s.n_families == 3 && s.n_models == 12 && s.n_datasets == 2 && s.n_cells == 24,
             "%d families, %d models, %d datasets, %zu cells", s.n_families, s.n_models,
             s.n_datasets, s.n_cells);
    TU_CHECK(s.n_seq == 4 && s.T == 16 && s.batch == 2 && s.bins == 128 && s.seed == 0 &&
                 s.min_words == 1024 && s.ranks_per_model == 1,
             "settings %d %d %d %d", s.n_seq, s.T, s.batch, s.bins);
    static const char *const want[] = {"gpt2",
                                       "gpt2_prefix",
                                       "qwen2",
                                       "qwen3",
                                       "OLMo-2-tiny@stage1-step0-tokens0B",
                                       "OLMo-2-tiny@stage1-step1000-tokens5B",
                                       "OLMo-2-tiny@stage1-step9000-tokens38B",
                                       "OLMo-2-tiny@stage1-step10000-tokens21B",
                                       "OLMo-2-tiny@stage2-ingredient1-step5000-tokens21B",
                                       "OLMo-2-tiny@stage2-ingredient1-step11931-tokens50B",
                                       "OLMo-2-tiny@stage2-ingredient2-step11931-tokens50B",
                                       "OLMo-2-tiny@main"};
    for (int m = 0; m < 12 && m < s.n_models; m++)
        TU_CHECK(!strcmp(s.models[m].name, want[m]), "model %d is %s, want %s", m, s.models[m].name,
                 want[m]);
    /* n_params = HF num_parameters() of tests/hf/cases.tsv; tokens from the revision names */
    TU_CHECK(s.models[0].n_params == 29568 && s.models[3].n_params == 41664, "n_params %lld %lld",
             (long long)s.models[0].n_params, (long long)s.models[3].n_params);
    TU_CHECK(s.models[4].train_tokens == 0 && s.models[5].train_tokens == 5000000000LL &&
                 s.models[5].train_step == 1000 && s.models[11].train_tokens == -1 &&
                 s.models[11].train_step == -1 && s.models[0].train_tokens == -1,
             "train tokens %lld %lld %lld", (long long)s.models[4].train_tokens,
             (long long)s.models[5].train_tokens, (long long)s.models[11].train_tokens);
    TU_CHECK(!strcmp(s.models[4].family, "olmo2-tiny") && s.models[4].family_index == 2,
             "family of the series: %s", s.models[4].family);
    /* cells model-major, ids <model>-<dataset>-<8 hex> */
    TU_CHECK(s.cells[3].model == 1 && s.cells[3].dataset == 1, "cell 3 = model %d dataset %d",
             s.cells[3].model, s.cells[3].dataset);
    TU_CHECK(!strncmp(s.cells[0].id, "gpt2-uniform-", 13) && strlen(s.cells[0].id) == 21,
             "cell 0 id %s", s.cells[0].id);
    TU_CHECK(s.cells[0].cost == 29568.0 * 4 * 16, "cost %g", s.cells[0].cost);
    size_t order[24];
    lmd_mspec_order(&s, order);
    for (size_t k = 1; k < 24; k++)
        TU_CHECK(
            s.cells[order[k - 1]].cost >= s.cells[order[k]].cost &&
                (s.cells[order[k - 1]].cost > s.cells[order[k]].cost || order[k - 1] < order[k]),
            "order %zu", k);
    TU_CHECK(order[0] == 6 && order[1] == 7, "most expensive first: qwen3 cells, got %zu %zu",
             order[0], order[1]);
    TU_CHECK(s.n_pairs == 1 && s.pairs[0].distilled == 3 && s.pairs[0].base == 2, "pairs");
    /* the same file loaded twice gives the same ids; another batch changes every id */
    char id0[LMD_MCELL_ID_LEN];
    snprintf(id0, sizeof id0, "%s", s.cells[0].id);
    char *text = lmd_strdup(s.text);
    lmd_mspec_free(&s);
    TU_CHECK(lmd_mspec_load(&s, path, &err) == 0 && !strcmp(s.cells[0].id, id0), "ids not stable");
    lmd_mspec_free(&s);
    char *b = strstr(text, "batch: 2");
    TU_CHECK(b != NULL, "no batch: 2 in the spec");
    if (b) {
        b[7] = '4';
        /* same directory, so the relative paths still resolve */
        char p2[4200];
        snprintf(p2, sizeof p2, "%s/../experiments/.test_measspec_batch4.yaml", tests_dir());
        FILE *f = fopen(p2, "w");
        if (f) {
            fputs(text, f);
            fclose(f);
            TU_CHECK(lmd_mspec_load(&s, p2, &err) == 0, "batch 4: %s", err.msg);
            TU_CHECK(strcmp(s.cells[0].id, id0) != 0, "batch not in the cell id");
            lmd_mspec_free(&s);
            remove(p2);
        }
    }
    free(text);
}

static void expect_error(const char *name, const char *text, const char *where, const char *what) {
    const char *p = write_spec(name, text);
    lmd_mspec s;
    lmd_err err = {{0}};
    int rc = lmd_mspec_load(&s, p, &err);
    char at[256];
    snprintf(at, sizeof at, "%s:%s: ", name, where);
    TU_CHECK(rc == -1 && strstr(err.msg, at) && strstr(err.msg, what),
             "%s: want '%s...%s', got: %s", name, at, what, rc ? err.msg : "(accepted)");
    TU_CHECK(s.n_cells == 0 && s.models == NULL, "%s: spec not left empty", name);
    lmd_mspec_free(&s);
}

static void test_errors(void) {
    char gpt2[4200], tok[4200], fam[9000];
    snprintf(gpt2, sizeof gpt2, "%s/hf/gpt2", tests_dir());
    snprintf(tok, sizeof tok, "%s/meas/uniform.bin", tests_dir());
    snprintf(fam, sizeof fam,
             "families:\n  - {name: g, models: [%s]}\ndatasets:\n  - {name: u, tokens: %s}\n", gpt2,
             tok);
    char t[20000];
    snprintf(t, sizeof t, "name: ok\nkind: measure\nmeasure: {sequences: 4, seq_len: 16}\n%s", fam);
    const char *p = write_spec("meas_ok.yaml", t);
    lmd_mspec s;
    lmd_err err = {{0}};
    TU_CHECK(lmd_mspec_load(&s, p, &err) == 0 && s.n_cells == 1, "control spec: %s", err.msg);
    lmd_mspec_free(&s);
    snprintf(t, sizeof t,
             "name: x\nkind: measure\nmeasure: {sequences: 4, seq_len: 16}\nfamilies: &a\n");
    expect_error("meas_anchor.yaml", t, "4:11", "anchors (&a) and aliases are not allowed");
    snprintf(t, sizeof t, "name: x\nkind: measure\nmeasure: {sequences: [4\n");
    expect_error("meas_syntax.yaml", t, "4:1", "YAML syntax error");
    snprintf(t, sizeof t, "name: x\nkind: measure\nmeasures: {}\n%s", fam);
    expect_error("meas_top.yaml", t, "3:1", "key 'measures': unknown key");
    snprintf(t, sizeof t, "name: x\nkind: measure\nmeasure: {sequences: \"4\", seq_len: 16}\n%s",
             fam);
    expect_error("meas_quoted.yaml", t, "3:22", "expected an unquoted integer");
    snprintf(t, sizeof t, "name: x\nkind: measure\nmeasure: {sequences: 4, seq_len: 33}\n%s", fam);
    expect_error("meas_seqlen.yaml", t, "7:5", "seq_len 33 exceeds the 32 positions of model gpt2");
    snprintf(t, sizeof t,
             "name: x\nkind: measure\nmeasure: {sequences: 4, seq_len: 16}\n"
             "families:\n  - name: g\n    models:\n      - %s\n      - %s\n"
             "datasets:\n  - {name: u, tokens: %s}\n",
             gpt2, gpt2, tok);
    expect_error("meas_dupmodel.yaml", t, "8:9", "model name 'gpt2' is used twice");
    snprintf(t, sizeof t,
             "name: x\nkind: measure\nfamilies:\n  - {name: g, models: [%s]}\n"
             "datasets:\n  - {name: u, tokens: %s}\n",
             gpt2, tok);
    expect_error("meas_default_len.yaml", t, "6:5", "seq_len 512 exceeds the 32 positions");
    snprintf(
        t, sizeof t,
        "name: x\nkind: measure\nmeasure: {sequences: 4, seq_len: 16}\n"
        "families:\n  - {name: g, models: [%s]}\ndatasets:\n  - {name: u, tokens: %s, text: %s}\n",
        gpt2, tok, tok);
    expect_error("meas_both.yaml", t, "7:5", "give exactly one of tokens:");
    snprintf(
        t, sizeof t,
        "name: x\nkind: measure\nmeasure: {sequences: 4, seq_len: 16}\n"
        "families:\n  - {name: g, models: [%s]}\ndatasets:\n  - {name: u, tokens: {nope: %s}}\n",
        gpt2, tok);
    expect_error("meas_pm.yaml", t, "7:24", "'nope' is not a model of this study");
}

int main(void) {
    test_tiny();
    test_errors();
    return tu_summary("test_measspec");
}
