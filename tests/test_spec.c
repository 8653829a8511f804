/* test_spec.c — the experiment spec: SHA-256 vectors, grid expansion (count, order, resolved
 * settings), stable and sensitive cell ids, zip groups, tracking schedules, limits, and a
 * table of bad specs (tests/specs/bad_*.yaml) with the expected message and line:column. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "spec.h"
#include "testutil.h"

static const char *tests_dir(void) {
    const char *d = getenv("LMDISP_TESTS");
    return d ? d : ".";
}

/* Parses text in memory with relative paths resolved against the tests directory. */
static int parse(lmd_spec *s, const char *text, lmd_err *err) {
    return lmd_spec_parse(s, text, strlen(text), "mem.yaml", tests_dir(), err);
}

/* ---- SHA-256 against FIPS 180-4 / NIST example vectors ---- */
static void test_sha256(void) {
    struct {
        const char *msg, *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[65];
        lmd_sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        TU_CHECK(!strcmp(hex, v[i].hex), "sha256(\"%s\") = %s, want %s", v[i].msg, hex, v[i].hex);
    }
    /* one million 'a' fed in uneven chunks: exercises buffering across block boundaries */
    lmd_sha256 s;
    lmd_sha256_init(&s);
    char chunk[977];
    memset(chunk, 'a', sizeof chunk);
    size_t left = 1000000;
    while (left) {
        size_t k = left < sizeof chunk ? left : sizeof chunk;
        lmd_sha256_update(&s, chunk, k);
        left -= k;
    }
    uint8_t d[32];
    char hex[65];
    lmd_sha256_final(&s, d);
    lmd_sha256_to_hex(d, hex);
    TU_CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
             "sha256(10^6 x 'a') = %s", hex);
    /* 55/56/64-byte messages straddle the padding boundary; compare one-shot with split */
    for (size_t n = 50; n <= 70; n++) {
        char msg[80];
        for (size_t i = 0; i < n; i++) msg[i] = (char)('A' + i % 26);
        uint8_t a[32], b[32];
        lmd_sha256_digest(msg, n, a);
        lmd_sha256_init(&s);
        lmd_sha256_update(&s, msg, n / 3);
        lmd_sha256_update(&s, msg + n / 3, n - n / 3);
        lmd_sha256_final(&s, b);
        TU_CHECK(!memcmp(a, b, 32), "split update differs from one shot at n=%zu", n);
    }
}

static const char *GOOD = "name: study_a\n"
                          "data:\n"
                          "  source: synthetic\n"
                          "  synthetic_tokens: 50000\n"
                          "model:\n"
                          "  n_layer: 2\n"
                          "  n_embd: 32\n"
                          "  n_head: 4\n"
                          "  n_ctx: 32\n"
                          "train:\n"
                          "  steps: 20\n"
                          "  batch: 2\n"
                          "  seq: 16\n"
                          "  lr: 1.0e-3\n"
                          "dispersion:\n"
                          "  coeff: 0.1\n"
                          "tracking:\n"
                          "  checkpoints: log\n"
                          "grid:\n"
                          "  mlp_dim: [32, 64, 128]\n"
                          "  dispersion: [off, angular_spread]\n"
                          "  seed: [0, 1]\n"
                          "resources:\n"
                          "  ranks_per_model: 1\n"
                          "slurm:\n"
                          "  partition: cpu\n"
                          "  nodes: 2\n"
                          "  extra_sbatch: [\"--exclusive\", \"--mail-type=END\"]\n";

/* Replaces the first occurrence of `from` in GOOD by `to` (malloc'd result). */
static char *good_with(const char *from, const char *to) {
    const char *p = strstr(GOOD, from);
    if (!p) {
        fprintf(stderr, "test bug: '%s' not in GOOD\n", from);
        exit(99);
    }
    size_t n = strlen(GOOD) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(p - GOOD), GOOD, to, p + strlen(from));
    return out;
}

static void test_expansion(void) {
    lmd_spec s;
    lmd_err err;
    int rc = parse(&s, GOOD, &err);
    TU_CHECK(rc == 0, "good spec rejected: %s", err.msg);
    if (rc) return;
    TU_CHECK(s.n_cells == 12, "n_cells = %zu, want 3*2*2 = 12", s.n_cells);
    TU_CHECK(s.n_axes == 3, "n_axes = %d", s.n_axes);
    TU_CHECK(s.n_axes == 3 && !strcmp(s.axes[0].names, "model.mlp_dim") &&
                 !strcmp(s.axes[1].names, "dispersion.variant") && !strcmp(s.axes[2].names, "seed"),
             "axis names/order wrong");
    TU_CHECK(!strcmp(s.name, "study_a"), "name '%s'", s.name);
    TU_CHECK(s.ranks_per_model == 1 && s.threads_per_rank == 1, "resources %d %d",
             s.ranks_per_model, s.threads_per_rank);
    char hex[65];
    lmd_sha256_hex(GOOD, strlen(GOOD), hex);
    TU_CHECK(!strcmp(hex, s.sha256) && s.text_len == strlen(GOOD) && !strcmp(s.text, GOOD),
             "raw text / sha256 not kept");
    TU_CHECK(s.uniform_tracking == 1, "uniform_tracking should be 1");

    /* order: first axis slowest, last fastest */
    const int widths[3] = {32, 64, 128};
    /* warmup 0.2 of 20 steps: the step-0 update has lr 0, so step 1 is not tracked */
    const int64_t want_track[] = {0, 2, 4, 8, 16, 20};
    int bad_order = 0, bad_settings = 0, bad_ids = 0;
    for (size_t i = 0; i < s.n_cells && i < 12; i++) {
        const lmd_cell *c = &s.cells[i];
        int mlp = widths[i / 4];
        lmd_disp_variant var = (i / 2) % 2 ? DISP_ANGULAR_SPREAD : DISP_OFF;
        uint64_t seed = i % 2;
        if (c->index != i || c->cfg.mlp_dim != mlp || c->train.disp.variant != var ||
            c->train.seed != seed) {
            bad_order++;
            fprintf(stderr, "cell %zu: index %zu mlp %d variant %d seed %llu\n", i, c->index,
                    c->cfg.mlp_dim, (int)c->train.disp.variant, (unsigned long long)c->train.seed);
        }
        int ok =
            c->cfg.n_layer == 2 && c->cfg.n_embd == 32 && c->cfg.n_head == 4 &&
            c->cfg.n_ctx == 32 && c->cfg.vocab_size == 256 && c->train.B == 2 && c->train.T == 16 &&
            c->train.steps == 20 && c->train.lr == 1e-3 && c->train.warmup_ratio == 0.2 &&
            c->train.min_lr_ratio == 0.0 && c->train.clip == 1.0 && c->train.adamw.beta1 == 0.9 &&
            c->train.adamw.beta2 == 0.95 && c->train.adamw.eps == 1e-8 &&
            c->train.adamw.weight_decay == 0.1 && c->train.disp.coeff == 0.1 &&
            c->train.disp.location == DISP_LOC_ALL && c->train.disp.max_tokens == 256 &&
            c->data.source == LMD_DATA_SYNTHETIC && c->data.synthetic_tokens == 50000 &&
            c->data.vocab == 256 && c->data.val_fraction == 0.1 &&
            c->tracking.eval_sequences == 16 && c->tracking.eval_seq_len == 16 &&
            c->tracking.hist_bins == 128 && c->tracking.save_checkpoints == 0 &&
            c->tracking.n_steps == 6 && !memcmp(c->tracking.steps, want_track, sizeof want_track) &&
            c->n_params == gpt_num_params(&c->cfg) &&
            c->flops == gpt_flops_per_step(&c->cfg, 2, 16) * 20.0;
        if (!ok) {
            bad_settings++;
            fprintf(stderr, "cell %zu has wrong resolved settings\n", i);
        }
        /* id = label + first 8 hex of sha256(settings text) */
        char *text = lmd_cell_settings(c);
        char h[65], want[LMD_CELL_ID_LEN];
        lmd_sha256_hex(text, strlen(text), h);
        snprintf(want, sizeof want, "mlp%d-%s-s%llu-%.8s", mlp,
                 var == DISP_OFF ? "off" : "angular_spread", (unsigned long long)seed, h);
        if (strcmp(want, c->id)) {
            bad_ids++;
            fprintf(stderr, "cell %zu id %s, want %s\n", i, c->id, want);
        }
        if (i == 0) {
            TU_CHECK(strstr(text, "model.mlp_dim=32\n") && strstr(text, "train.lr=0.001\n") &&
                         strstr(text, "tracking.steps=0,2,4,8,16,20\n") &&
                         strstr(text, "dispersion.variant=off\n") &&
                         !strstr(text, "dispersion.coeff") && !strstr(text, "study_a") &&
                         !strstr(text, "ranks") && !strstr(text, "partition"),
                     "settings text of cell 0 unexpected:\n%s", text);
        }
        if (i == 2)
            TU_CHECK(strstr(text, "dispersion.variant=angular_spread\ndispersion.coeff=0.1\n") !=
                         NULL,
                     "settings text of an angular_spread cell lacks its coeff:\n%s", text);
        free(text);
    }
    TU_CHECK(bad_order == 0, "%d cells out of the documented order", bad_order);
    TU_CHECK(bad_settings == 0, "%d cells with wrong settings", bad_settings);
    TU_CHECK(bad_ids == 0, "%d cells with wrong ids", bad_ids);
    TU_CHECK(lmd_spec_find_cell(&s, s.cells[5].id) == &s.cells[5], "find_cell");
    TU_CHECK(lmd_spec_find_cell(&s, "nope") == NULL, "find_cell of a missing id");

    /* slurm kept verbatim with positions */
    TU_CHECK(s.n_slurm == 3, "n_slurm = %d", s.n_slurm);
    if (s.n_slurm == 3) {
        TU_CHECK(!strcmp(s.slurm[0].key, "partition") && !strcmp(s.slurm[0].value, "cpu") &&
                     s.slurm[0].line == 26 && s.slurm[0].column == 14,
                 "slurm[0] = %s: %s at %d:%d", s.slurm[0].key, s.slurm[0].value, s.slurm[0].line,
                 s.slurm[0].column);
        TU_CHECK(!strcmp(s.slurm[1].value, "2"), "slurm nodes");
        TU_CHECK(s.slurm[2].value == NULL && s.slurm[2].n_items == 2 &&
                     !strcmp(s.slurm[2].items[1], "--mail-type=END"),
                 "slurm extra_sbatch list");
    }
    lmd_spec_free(&s);
}

/* Ids of the cells of text, each as "mlp/variant/seed -> id", sorted, joined. */
static char *id_set(const char *text) {
    lmd_spec s;
    lmd_err err;
    if (parse(&s, text, &err)) {
        fprintf(stderr, "unexpected parse failure: %s\n", err.msg);
        return NULL;
    }
    size_t n = s.n_cells;
    char **ids = calloc(n, sizeof *ids);
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        ids[i] = strdup(s.cells[i].id);
        total += strlen(ids[i]) + 1;
    }
    for (size_t i = 0; i < n; i++) /* insertion sort: n is small */
        for (size_t j = i; j > 0 && strcmp(ids[j - 1], ids[j]) > 0; j--) {
            char *t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    char *out = calloc(total, 1);
    for (size_t i = 0; i < n; i++) {
        strcat(out, ids[i]);
        strcat(out, "\n");
        free(ids[i]);
    }
    free(ids);
    lmd_spec_free(&s);
    return out;
}

static int same_ids(const char *a_text, const char *b_text) {
    char *a = id_set(a_text), *b = id_set(b_text);
    int same = a && b && !strcmp(a, b);
    free(a);
    free(b);
    return same;
}

static void test_ids(void) {
    /* stable: parsing twice gives the same ids */
    TU_CHECK(same_ids(GOOD, GOOD), "ids differ between two parses");

    /* Pins the canonical settings format: if this changes, every existing study's cell ids
     * change and resume refuses them. Change it only on purpose (and say so). Changed on
     * purpose by issue 17: generated schedules no longer track step 1 after a warmup. */
    lmd_spec s;
    lmd_err err;
    if (parse(&s, GOOD, &err) == 0) {
        TU_CHECK(!strcmp(s.cells[0].id, "mlp32-off-s0-a6023d98"),
                 "id of cell 0 is %s; the canonical settings text changed", s.cells[0].id);
        lmd_spec_free(&s);
    }

    struct {
        const char *from, *to, *what;
        int same;
    } cases[] = {
        {"name: study_a", "name: renamed.study", "renamed", 1},
        {"  ranks_per_model: 1", "  ranks_per_model: 4\n  threads_per_rank: 2", "resources", 1},
        {"  partition: cpu", "  partition: gpu\n  account: x", "slurm", 1},
        {"  lr: 1.0e-3", "  lr: 0.001", "same lr written differently", 1},
        {"  steps: 20", "  tokens: 630", "tokens = 20 steps of 2x16 (ceil)", 1},
        {"  mlp_dim: [32, 64, 128]\n  dispersion: [off, angular_spread]\n",
         "  dispersion: [off, angular_spread]\n  mlp_dim: [128, 64, 32]\n", "grid axes reordered",
         1},
        {"  lr: 1.0e-3", "  lr: 2.0e-3", "lr", 0},
        {"  coeff: 0.1", "  coeff: 0.2", "coeff", 0},
        {"  n_layer: 2", "  n_layer: 3", "n_layer", 0},
        {"  synthetic_tokens: 50000", "  synthetic_tokens: 60000", "data size", 0},
        {"  checkpoints: log", "  checkpoints: log\n  log_points: 4", "tracking schedule", 0},
        {"  checkpoints: log", "  checkpoints: log\n  eval_sequences: 8", "eval sequences", 0},
        {"  steps: 20", "  steps: 21", "steps", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = good_with(cases[i].from, cases[i].to);
        int same = same_ids(GOOD, t);
        TU_CHECK(same == cases[i].same, "changing %s: ids %s, want %s", cases[i].what,
                 same ? "equal" : "differ", cases[i].same ? "equal" : "different");
        free(t);
    }

    /* -0.0 is 0.0: one value, one id; as a grid axis [0.0, -0.0] is one setting twice */
    {
        char *z = good_with("  lr: 1.0e-3", "  lr: 1.0e-3\n  min_lr_ratio: 0.0");
        char *nz = good_with("  lr: 1.0e-3", "  lr: 1.0e-3\n  min_lr_ratio: -0.0");
        TU_CHECK(same_ids(z, nz), "min_lr_ratio -0.0 and 0.0 give different cell ids");
        lmd_spec sz;
        if (parse(&sz, nz, &err) == 0) {
            TU_CHECK(!signbit(sz.cells[0].train.min_lr_ratio), "min_lr_ratio -0.0 kept its sign");
            lmd_spec_free(&sz);
        }
        free(z);
        free(nz);
        char *ax = good_with("  seed: [0, 1]", "  seed: [0, 1]\n  min_lr_ratio: [0.0, -0.0]");
        int rc = parse(&sz, ax, &err);
        TU_CHECK(rc != 0 && strstr(err.msg, "identical settings"),
                 "grid min_lr_ratio [0.0, -0.0]: rc %d '%s'", rc, rc ? err.msg : "");
        if (rc == 0) lmd_spec_free(&sz);
        free(ax);
        /* underflow of a nonzero literal is refused where it was written (1e400 already is) */
        char *uf = good_with("  lr: 1.0e-3", "  lr: 1e-400");
        rc = parse(&sz, uf, &err);
        TU_CHECK(rc != 0 && strstr(err.msg, ":14:7: key 'train.lr'") &&
                     strstr(err.msg, "too small"),
                 "lr 1e-400: rc %d '%s'", rc, rc ? err.msg : "");
        if (rc == 0) lmd_spec_free(&sz);
        free(uf);
        uf = good_with("  lr: 1.0e-3", "  lr: 1e-310"); /* subnormal */
        rc = parse(&sz, uf, &err);
        TU_CHECK(rc != 0 && strstr(err.msg, "too small"), "lr 1e-310: rc %d '%s'", rc,
                 rc ? err.msg : "");
        if (rc == 0) lmd_spec_free(&sz);
        free(uf);
    }

    /* with dispersion off, coeff does not enter the id; with a variant it does */
    char *a = good_with("  coeff: 0.1", "  coeff: 0.1");
    char *b = good_with("  coeff: 0.1", "  coeff: 0.7");
    lmd_spec sa, sb;
    if (parse(&sa, a, &err) == 0 && parse(&sb, b, &err) == 0) {
        TU_CHECK(!strcmp(sa.cells[0].id, sb.cells[0].id), "off cell id depends on coeff");
        TU_CHECK(strcmp(sa.cells[2].id, sb.cells[2].id) != 0,
                 "angular_spread cell id ignores coeff");
        lmd_spec_free(&sa);
        lmd_spec_free(&sb);
    } else {
        TU_CHECK(0, "parse failed: %s", err.msg);
    }
    free(a);
    free(b);
}

static void test_zip(void) {
    const char *text = "name: zipped\n"
                       "model: {n_layer: 2, n_ctx: 32}\n"
                       "train: {steps: 8, batch: 2, seq: 16}\n"
                       "grid:\n"
                       "  mlp_dim: [32, 64]\n"
                       "zip:\n"
                       "  - n_embd: [32, 64, 96]\n"
                       "    model.n_head: [4, 8, 6]\n"
                       "  - {lr: [1.0e-3, 3.0e-3], warmup_ratio: [0.1, 0.3]}\n";
    lmd_spec s;
    lmd_err err;
    int rc = parse(&s, text, &err);
    TU_CHECK(rc == 0, "zip spec rejected: %s", err.msg);
    if (rc) return;
    TU_CHECK(s.n_cells == 12, "zip: n_cells = %zu, want 2 * 3 * 2", s.n_cells);
    TU_CHECK(s.n_axes == 3 && !strcmp(s.axes[1].names, "model.n_embd+model.n_head"),
             "zip axis names '%s'", s.n_axes > 1 ? s.axes[1].names : "?");
    const int embd[3] = {32, 64, 96}, head[3] = {4, 8, 6};
    const double lr[2] = {1e-3, 3e-3}, wu[2] = {0.1, 0.3};
    int bad = 0;
    for (size_t i = 0; i < s.n_cells; i++) {
        const lmd_cell *c = &s.cells[i];
        size_t m = i / 6, z = (i / 2) % 3, l = i % 2;
        if (c->cfg.mlp_dim != (m ? 64 : 32) || c->cfg.n_embd != embd[z] ||
            c->cfg.n_head != head[z] || c->train.lr != lr[l] || c->train.warmup_ratio != wu[l])
            bad++;
    }
    TU_CHECK(bad == 0, "%d zip cells have wrong settings", bad);
    lmd_spec_free(&s);
}

static int list_eq(const int64_t *a, int na, const int64_t *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

static void test_tracking(void) {
    int64_t *v;
    int n;
    const int64_t l20[] = {0, 1, 2, 4, 8, 16, 20}, l16[] = {0, 1, 2, 4, 8, 16}, l0[] = {0};
    n = lmd_track_log(20, 1, &v);
    TU_CHECK(list_eq(v, n, l20, 7), "log(20)");
    free(v);
    n = lmd_track_log(16, 1, &v);
    TU_CHECK(list_eq(v, n, l16, 6), "log(16) must not repeat 16");
    free(v);
    n = lmd_track_log(0, 1, &v);
    TU_CHECK(list_eq(v, n, l0, 1), "log(0)");
    free(v);
    const int64_t e100[] = {0, 30, 60, 90, 100}, e90[] = {0, 30, 60, 90};
    n = lmd_track_every(100, 30, 1, &v);
    TU_CHECK(list_eq(v, n, e100, 5), "every(100, 30)");
    free(v);
    n = lmd_track_every(90, 30, 1, &v);
    TU_CHECK(list_eq(v, n, e90, 4), "every(90, 30)");
    free(v);
    const int64_t p5[] = {0, 1, 2, 3, 4, 5};
    n = lmd_track_log_points(5, 10, 1, &v);
    TU_CHECK(list_eq(v, n, p5, 6), "log_points(5, 10) = all steps");
    free(v);
    /* 12 points over 1000 steps: distinct, ascending, 0 and 1000 included, and roughly
     * geometric: consecutive ratios of the nonzero points within a factor 2 of the ideal
     * 1000^(1/10) = 1.995 */
    n = lmd_track_log_points(1000, 12, 1, &v);
    int ok = n == 12 && v[0] == 0 && v[1] == 1 && v[n - 1] == 1000;
    for (int i = 1; i < n; i++) ok = ok && v[i] > v[i - 1];
    double worst = 0;
    for (int i = 2; i < n; i++) {
        double r = (double)v[i] / (double)v[i - 1], ideal = pow(1000.0, 0.1);
        double dev = fabs(log(r / ideal));
        if (dev > worst) worst = dev;
    }
    printf("log_points(1000, 12): ");
    for (int i = 0; i < n; i++) printf("%lld ", (long long)v[i]);
    printf("(worst |log(ratio/ideal)| = %.3f, limit log 2)\n", worst);
    TU_CHECK(ok && worst <= log(2.0), "log_points(1000, 12) not distinct/geometric");
    free(v);
    /* many points over few steps still come out distinct */
    n = lmd_track_log_points(30, 25, 1, &v);
    ok = n == 25 && v[0] == 0 && v[n - 1] == 30;
    for (int i = 1; i < n; i++) ok = ok && v[i] > v[i - 1];
    TU_CHECK(ok, "log_points(30, 25) not 25 distinct steps ending at 30");
    free(v);

    /* with a warmup the step-0 update has lr 0: step 1 equals the initialization and is not
     * tracked by the generated schedules */
    TU_CHECK(lmd_track_first(100, 0.2) == 2 && lmd_track_first(100, 0.0) == 1 &&
                 lmd_track_first(4, 0.2) == 1,
             "lmd_track_first");
    const int64_t w20[] = {0, 2, 4, 8, 16, 20};
    n = lmd_track_log(20, 2, &v);
    TU_CHECK(list_eq(v, n, w20, 6), "log(20) after a warmup skips step 1");
    free(v);
    n = lmd_track_log_points(1000, 12, 2, &v);
    ok = n == 12 && v[0] == 0 && v[1] == 2 && v[n - 1] == 1000;
    for (int i = 1; i < n; i++) ok = ok && v[i] > v[i - 1];
    TU_CHECK(ok, "log_points(1000, 12) after a warmup: 0, 2, ..., 1000 distinct");
    free(v);
    const int64_t p5w[] = {0, 2, 3, 4, 5};
    n = lmd_track_log_points(5, 10, 2, &v);
    TU_CHECK(list_eq(v, n, p5w, 5), "log_points(5, 10) after a warmup = all steps but 1");
    free(v);
    const int64_t e1w[] = {0, 2, 3};
    n = lmd_track_every(3, 1, 2, &v);
    TU_CHECK(list_eq(v, n, e1w, 3), "every(3, 1) after a warmup skips step 1");
    free(v);

    /* in a spec: an explicit list is sorted and deduplicated; every: N */
    char *t = good_with("  checkpoints: log", "  checkpoints: [10, 0, 3, 10, 20]");
    lmd_spec s;
    lmd_err err;
    if (parse(&s, t, &err) == 0) {
        const int64_t want[] = {0, 3, 10, 20};
        TU_CHECK(list_eq(s.cells[0].tracking.steps, s.cells[0].tracking.n_steps, want, 4),
                 "explicit checkpoint list not sorted/deduplicated");
        lmd_spec_free(&s);
    } else {
        TU_CHECK(0, "explicit list rejected: %s", err.msg);
    }
    free(t);
    t = good_with("  checkpoints: log", "  checkpoints: {every: 6}");
    if (parse(&s, t, &err) == 0) {
        const int64_t want[] = {0, 6, 12, 18, 20};
        TU_CHECK(list_eq(s.cells[0].tracking.steps, s.cells[0].tracking.n_steps, want, 5),
                 "checkpoints {every: 6}");
        lmd_spec_free(&s);
    } else {
        TU_CHECK(0, "every rejected: %s", err.msg);
    }
    free(t);
    /* a grid over steps gives per-cell schedules: flagged as non-uniform */
    t = good_with("  steps: 20\n", "");
    const char *seed_axis = strstr(t, "  seed: [0, 1]\n");
    char *t2 = malloc(strlen(t) + 64);
    sprintf(t2, "%.*s  steps: [20, 40]\n%s", (int)(seed_axis - t), t, seed_axis);
    if (parse(&s, t2, &err) == 0) {
        TU_CHECK(s.n_cells == 24 && s.uniform_tracking == 0, "steps axis: %zu cells, uniform %d",
                 s.n_cells, s.uniform_tracking);
        lmd_spec_free(&s);
    } else {
        TU_CHECK(0, "steps axis rejected: %s", err.msg);
    }
    free(t);
    free(t2);
}

static void test_data_paths(void) {
    lmd_spec s;
    lmd_err err;
    /* relative paths resolve against the base directory (the spec file's directory) */
    char *t = good_with("  source: synthetic\n  synthetic_tokens: 50000\n",
                        "  source: text\n  path: specs/bad_alias.yaml\n");
    int rc = parse(&s, t, &err);
    TU_CHECK(rc == 0, "text data rejected: %s", err.msg);
    if (rc == 0) {
        char *abs = realpath(tests_dir(), NULL);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "%s/specs/bad_alias.yaml", abs);
        TU_CHECK(!strcmp(s.cells[0].data.resolved, want) && s.cells[0].data.vocab == 256 &&
                     s.cells[0].cfg.vocab_size == 256,
                 "resolved '%s', want '%s'", s.cells[0].data.resolved, want);
        free(abs);
        lmd_spec_free(&s);
    }
    free(t);
    t = good_with("  source: synthetic\n  synthetic_tokens: 50000\n",
                  "  source: shards\n  path: specs/bad_*.yaml\n");
    rc = parse(&s, t, &err);
    TU_CHECK(rc == 0, "shards glob with matches rejected: %s", err.msg);
    if (rc == 0) {
        TU_CHECK(s.cells[0].data.vocab == 50257 && s.cells[0].cfg.vocab_size == 50257,
                 "shards default vocab %d", s.cells[0].data.vocab);
        lmd_spec_free(&s);
    }
    free(t);
    t = good_with("  source: synthetic\n  synthetic_tokens: 50000\n",
                  "  source: shards\n  path: specs/none_*.bin\n");
    rc = parse(&s, t, &err);
    TU_CHECK(rc != 0 && strstr(err.msg, "mem.yaml:4:9:") && strstr(err.msg, "no shard file"),
             "glob without matches: rc %d, '%s'", rc, err.msg);
    free(t);
}

static void test_limits(void) {
    lmd_spec s;
    lmd_err err;
    /* an alias without an anchor is still an alias event */
    char *t = good_with("  seed: [0, 1]", "  seed: *x");
    int rc = parse(&s, t, &err);
    TU_CHECK(rc != 0 && strstr(err.msg, "aliases") && strstr(err.msg, "mem.yaml:22:9:"),
             "alias: rc %d '%s'", rc, err.msg);
    free(t);

    /* too many cells: 50 x 50 x 50 */
    char vals[400] = "[";
    for (int i = 1; i <= 50; i++) {
        char x[16];
        snprintf(x, sizeof x, "%s%d", i > 1 ? ", " : "", i * 8);
        strcat(vals, x);
    }
    strcat(vals, "]");
    char big[2048];
    snprintf(big, sizeof big,
             "name: big\nmodel: {n_layer: 1, n_embd: 8, n_head: 1, n_ctx: 8}\n"
             "train: {steps: 1, batch: 1, seq: 8}\ngrid:\n  mlp_dim: %s\n  seed: %s\n"
             "  max_tokens: %s\n",
             vals, vals, vals);
    rc = parse(&s, big, &err);
    TU_CHECK(rc != 0 && strstr(err.msg, "more than 100000 cells"), "cell cap: rc %d '%s'", rc,
             err.msg);

    /* file size cap */
    const char *tmp = getenv("LMDISP_TMP");
    char path[1024];
    snprintf(path, sizeof path, "%s/spec_too_big.yaml", tmp ? tmp : "/tmp");
    FILE *f = fopen(path, "wb");
    TU_CHECK(f != NULL, "cannot create %s", path);
    if (f) {
        fputs(GOOD, f);
        for (int i = 0; i < 20000; i++)
            fputs("# padding padding padding padding padding padding padding\n", f);
        fclose(f);
        rc = lmd_spec_load(&s, path, &err);
        TU_CHECK(rc != 0 && strstr(err.msg, "limited to"), "size cap: rc %d '%s'", rc, err.msg);
        remove(path);
    }

    /* a missing spec file */
    rc = lmd_spec_load(&s, "specs/does_not_exist.yaml", &err);
    TU_CHECK(rc != 0 && strstr(err.msg, "does_not_exist.yaml") && strstr(err.msg, "cannot open"),
             "missing file: '%s'", err.msg);
    lmd_spec_free(&s); /* safe on a failed load */
}

/* The table of bad specs: file, "line:column" of the offending node, and words the message
 * must contain. */
static void test_bad_specs(void) {
    static const struct {
        const char *file, *pos, *kw1, *kw2;
    } bad[] = {
        {"bad_unknown_key.yaml", "5:3", "key 'model.n_emb': unknown key", "did you mean 'n_embd'"},
        {"bad_type_int.yaml", "10:10", "key 'train.batch'", "expected an integer"},
        {"bad_type_list.yaml", "4:12", "key 'model.n_layer'", "expected an integer, got a list"},
        {"bad_range.yaml", "9:10", "key 'train.steps'", "out of range"},
        {"bad_heads.yaml", "6:11", "key 'model.n_head'", "must be divisible by n_head (5)"},
        {"bad_heads_grid.yaml", "13:15", "must be divisible by n_head (6)", "grid point 1"},
        {"bad_empty_axis.yaml", "13:12", "key 'grid.mlp_dim'", "empty grid axis"},
        {"bad_missing_mlp.yaml", "13:3", "key 'grid.mlp_dim'", "mlp_dim axis is required"},
        {"bad_duplicate_cells.yaml", "13:3", "key 'grid'", "identical settings"},
        {"bad_zip_length.yaml", "14:13", "key 'zip[0].n_head'", "zip length mismatch"},
        {"bad_missing_data.yaml", "4:9", "key 'data.path'", "no_such_file.txt"},
        {"bad_variant.yaml", "14:21", "unknown dispersion variant 'angular'",
         "did you mean 'angular_spread'"},
        {"bad_alias.yaml", "13:12", "aliases", "not allowed"},
        {"bad_syntax.yaml", "14:1", "YAML syntax error", "did not find expected"},
        {"bad_name.yaml", "1:7", "key 'name'", "[A-Za-z0-9_.-]+"},
        {"bad_name_dotdot.yaml", "1:7", "key 'name'", "not '.' or '..'"},
        {"bad_name_dot.yaml", "1:7", "key 'name'", "not '.' or '..'"},
        {"bad_name_slash.yaml", "1:7", "key 'name'", "[A-Za-z0-9_.-]+"},
        {"bad_fixed_and_axis.yaml", "15:3", "key 'grid.lr'", "both a grid axis and fixed"},
        {"bad_steps_tokens.yaml", "10:11", "key 'train.tokens'", "not both"},
        /* INT64_MAX: ceil(tokens / (batch x seq)) must not overflow, and blame the tokens */
        {"bad_tokens_overflow.yaml", "9:11", "key 'train.tokens'", "more than 10^12 steps"},
        {"bad_seq_ctx.yaml", "11:8", "key 'train.seq'", "must not exceed the model's n_ctx"},
        {"bad_schedule.yaml", "12:13", "key 'train.schedule'", "unknown value 'linear'"},
        {"bad_checkpoint_beyond.yaml", "15:23", "key 'tracking.checkpoints'",
         "beyond the last training step"},
        {"bad_top_key.yaml", "14:1", "key 'grdi': unknown key", "did you mean 'grid'"},
        {"bad_ambiguous.yaml", "14:3", "key 'grid.vocab'", "ambiguous"},
        {"bad_slurm_type.yaml", "15:14", "key 'slurm.partition'", "expected a string"},
        {"bad_quoted_int.yaml", "10:10", "key 'train.batch'", "quoted"},
        {"bad_empty_grid.yaml", "13:7", "key 'grid'", "grid is empty"},
        {"bad_log_points.yaml", "16:15", "key 'tracking.log_points'", "only to checkpoints: log"},
        {"bad_shards_pow2.yaml", "12:11", "key 'train.shards'", "must be a power of 2"},
        {"bad_shards_batch.yaml", "12:11", "key 'train.shards'",
         "batch (6) must be divisible by shards (4)"},
        {"bad_tokenizer_missing.yaml", "5:14", "key 'data.tokenizer'",
         "no_such_dir/tokenizer.json"},
        {"bad_tokenizer_synthetic.yaml", "4:14", "key 'data.tokenizer'",
         "only used with source text"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[512], where[600];
        snprintf(path, sizeof path, "specs/%s", bad[i].file);
        snprintf(where, sizeof where, "specs/%s:%s:", bad[i].file, bad[i].pos);
        lmd_spec s;
        lmd_err err;
        memset(&err, 0, sizeof err);
        int rc = lmd_spec_load(&s, path, &err);
        int ok = rc != 0 && strstr(err.msg, where) == err.msg && strstr(err.msg, bad[i].kw1) &&
                 strstr(err.msg, bad[i].kw2);
        printf("%-28s %s\n    %s\n", bad[i].file, ok ? "ok" : "FAIL", err.msg);
        TU_CHECK(ok, "%s: want message starting with '%s' containing '%s' and '%s'", bad[i].file,
                 where, bad[i].kw1, bad[i].kw2);
        if (rc == 0) lmd_spec_free(&s);
    }
}

int main(void) {
    test_sha256();
    test_expansion();
    test_ids();
    test_zip();
    test_tracking();
    test_data_paths();
    test_limits();
    test_bad_specs();
    return tu_summary("test_spec");
}
