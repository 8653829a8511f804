/* test_hub_hf.c — the hub reader on the independent generator's files (tests/hf/, written by
 * tests/gen_hf_models.py): every model case opens with HF's n_params, every bad input of
 * tests/hf/bad/cases.tsv is refused with a message matching each of its regexes, and the
 * fake cache's series come out in the order of order*.txt. Skips (0 checks) without tests/hf. */
#include "hfmodel.h"
#include "hubtest.h"

#include <regex.h>

static char hf[4096];

/* Each ';'-separated extended regex (case-insensitive) must match msg. */
static int matches_all(const char *msg, const char *regexes, char *which, size_t n) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", regexes);
    for (char *save = NULL, *r = strtok_r(buf, ";", &save); r; r = strtok_r(NULL, ";", &save)) {
        regex_t re;
        if (regcomp(&re, r, REG_EXTENDED | REG_ICASE | REG_NOSUB)) {
            snprintf(which, n, "(bad regex) %s", r);
            return 0;
        }
        int ok = regexec(&re, msg, 0, NULL, 0) == 0;
        regfree(&re);
        if (!ok) {
            snprintf(which, n, "%s", r);
            return 0;
        }
    }
    return 1;
}

static void test_cases(void) {
    char p[4200];
    snprintf(p, sizeof p, "%s/cases.tsv", hf);
    FILE *f = fopen(p, "r");
    TU_CHECK(f != NULL, "%s", p);
    if (!f) return;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        char name[128];
        int B, T, O;
        long long np;
        if (sscanf(line, "%127[^\t]\t%d\t%d\t%d\t%lld", name, &B, &T, &O, &np) != 5) continue;
        char d[4400];
        snprintf(d, sizeof d, "%s/%s", hf, name);
        hub_model m;
        lmd_err e = {{0}};
        int rc = hub_model_open(&m, d, &e);
        TU_CHECK(rc == 0, "%s: %s", name, e.msg);
        if (rc) continue;
        TU_CHECK(m.n_params == np && hf_num_params(&m.cfg) == np,
                 "%s: n_params %lld (hf_num_params %lld), HF %lld", name, (long long)m.n_params,
                 (long long)hf_num_params(&m.cfg), np);
        printf("ok   %-16s %s, %d layers, d %d, %lld parameters\n", name, m.cfg.model_type,
               m.cfg.n_layer, m.cfg.hidden_size, (long long)m.n_params);
        hub_model_close(&m);
    }
    fclose(f);
}

static void test_bad(void) {
    char p[4200];
    snprintf(p, sizeof p, "%s/bad/cases.tsv", hf);
    FILE *f = fopen(p, "r");
    TU_CHECK(f != NULL, "%s", p);
    if (!f) return;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab1 = strchr(line, '\t');
        if (!tab1) continue;
        *tab1 = '\0';
        char *re = tab1 + 1, *tab2 = strchr(re, '\t');
        if (tab2) *tab2 = '\0';
        char d[6200];
        snprintf(d, sizeof d, "%s/bad/%s", hf, line);
        hub_model m;
        lmd_err e = {{0}};
        int rc = hub_model_open(&m, d, &e);
        if (!rc) hub_model_close(&m);
        tu_checks++;
        if (strcmp(line, "good") == 0) {
            if (rc) tu_failures++, fprintf(stderr, "FAIL bad/good refused: %s\n", e.msg);
            continue;
        }
        char which[1024] = "";
        if (!rc || !matches_all(e.msg, re, which, sizeof which)) {
            tu_failures++;
            fprintf(stderr, "FAIL bad/%s: %s; message \"%s\"%s%s\n", line,
                    rc ? "wrong message" : "accepted", e.msg, rc ? " does not match " : "",
                    rc ? which : "");
        } else {
            printf("ok   bad/%-22s %s\n", line, e.msg);
        }
    }
    fclose(f);
}

static void test_series(const char *repo, const char *order_file) {
    char p[4400];
    snprintf(p, sizeof p, "%s/cache/%s", hf, order_file);
    FILE *f = fopen(p, "r");
    TU_CHECK(f != NULL, "%s", p);
    if (!f) return;
    char want[64][512];
    int nw = 0;
    char line[512];
    while (fgets(line, sizeof line, f) && nw < 64) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] && line[0] != '#') snprintf(want[nw++], sizeof want[0], "%s", line);
    }
    fclose(f);
    hub_revision *r;
    int n;
    char *skipped;
    lmd_err e = {{0}};
    char spec[600];
    snprintf(spec, sizeof spec, "hf:%s@*", repo);
    int rc = hub_list_series(spec, &r, &n, &skipped, &e);
    TU_CHECK(rc == 0, "%s: %s", spec, e.msg);
    if (rc) return;
    int ok = n == nw;
    for (int i = 0; ok && i < n; i++) ok = strcmp(r[i].name, want[i]) == 0;
    TU_CHECK(ok, "%s: order differs from %s", spec, order_file);
    for (int i = 0; i < n; i++) printf("     %s %d: %s\n", repo, i, r[i].name);
    printf("     skipped: %s", skipped && *skipped ? skipped : "(none)\n");
    /* every revision of the series opens */
    for (int i = 0; i < n; i++) {
        hub_model m;
        rc = hub_model_open(&m, r[i].spec, &e);
        TU_CHECK(rc == 0, "%s: %s", r[i].spec, e.msg);
        if (!rc) hub_model_close(&m);
    }
    free(r);
    free(skipped);
}

int main(void) {
    const char *t = getenv("LMDISP_TESTS");
    snprintf(hf, sizeof hf, "%s/hf", t && *t ? t : ".");
    char p[4200];
    snprintf(p, sizeof p, "%s/cases.tsv", hf);
    if (access(p, F_OK) != 0) {
        printf("test_hub_hf: no %s (the generator's files): nothing to test\n", p);
        return 0;
    }
    test_cases();
    test_bad();
    snprintf(p, sizeof p, "%s/cache", hf);
    setenv("HF_HUB_CACHE", p, 1);
    test_series("allenai/OLMo-2-tiny", "order.txt");
    test_series("allenai/OLMo-1B-tiny-hf", "order-OLMo-1B-tiny-hf.txt");
    return tu_summary("test_hub_hf");
}
