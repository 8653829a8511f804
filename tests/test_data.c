/* test_data.c — the synthetic corpus (determinism, range, measurable structure), text files,
 * llm.c shards (round trip, glob order), split, loader, evaluation windows, and a clear error
 * for every kind of bad input. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"
#include "testutil.h"
#include "util.h"

static char g_dir[900];

static void path_in(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
}

/* True when msg contains every one of the NULL-terminated keys; prints the message so a
 * failing check shows what was said. */
static int has_all(const char *msg, const char *k1, const char *k2, const char *k3,
                   const char *k4) {
    const char *keys[] = {k1, k2, k3, k4};
    int ok = 1;
    for (int i = 0; i < 4; i++)
        if (keys[i] && !strstr(msg, keys[i])) {
            fprintf(stderr, "  message lacks \"%s\"\n", keys[i]);
            ok = 0;
        }
    printf("  error: %s\n", msg);
    return ok;
}

/* Writes raw bytes: a 256-int32 little-endian header with the given fields, then n_body uint16
 * tokens (body may hold fewer tokens than declared, to make a truncated file). */
static void write_raw_shard(const char *path, int32_t magic, int32_t version, int32_t count,
                            const uint16_t *body, size_t n_body) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        exit(99);
    }
    uint8_t hdr[1024] = {0};
    int32_t fields[3] = {magic, version, count};
    for (int j = 0; j < 3; j++) {
        uint32_t u = (uint32_t)fields[j];
        for (int b = 0; b < 4; b++) hdr[4 * j + b] = (uint8_t)(u >> (8 * b));
    }
    int ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr;
    for (size_t i = 0; ok && i < n_body; i++) {
        uint8_t le[2] = {(uint8_t)body[i], (uint8_t)(body[i] >> 8)};
        ok = fwrite(le, 1, 2, f) == 2;
    }
    if (fclose(f) != 0 || !ok) {
        fprintf(stderr, "error writing %s\n", path);
        exit(99);
    }
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(99);
    }
}

/* ---------------------------------------------------------------------------------------- */

static void test_synthetic(void) {
    lmd_err err = {{0}};
    lmd_synth_opts o = lmd_synth_default();
    TU_CHECK(o.seed == 1234 && o.n_tokens == 2000000 && o.vocab_size == 256,
             "defaults seed=%llu n=%zu V=%d", (unsigned long long)o.seed, o.n_tokens, o.vocab_size);

    lmd_tokens a, b, c, pre;
    double t0 = lmd_now();
    int rc = lmd_data_synthetic(&a, &o, &err);
    double dt = lmd_now() - t0;
    TU_CHECK(rc == 0, "synthetic: %s", err.msg);
    if (rc) return;
        /* The budget is "well under a second" for 2M tokens; sanitizers slow code 2-5x. */
#if defined(__SANITIZE_ADDRESS__)
    const double budget = 5.0;
#else
    const double budget = 1.0;
#endif
    printf("synthetic: %zu tokens in %.3f s (budget %.1f s), source %s\n", a.n, dt, budget,
           a.source);
    TU_CHECK(dt < budget, "generation took %.3f s", dt);
    TU_CHECK(a.n == o.n_tokens && a.vocab_size == 256, "n=%zu V=%d", a.n, a.vocab_size);
    TU_CHECK(strstr(a.source, "seed=1234") != NULL, "source %s", a.source);

    int max_id = 0;
    for (size_t i = 0; i < a.n; i++)
        if (a.tok[i] > max_id) max_id = a.tok[i];
    TU_CHECK(max_id < 256, "max id %d", max_id);

    /* Same seed: bitwise the same stream. */
    rc = lmd_data_synthetic(&b, &o, &err);
    TU_CHECK(rc == 0 && b.n == a.n && memcmp(a.tok, b.tok, a.n * sizeof *a.tok) == 0,
             "same seed gave a different corpus");
    lmd_tokens_free(&b);

    /* A different seed: a different corpus (two independent streams agree on ~1/V of
     * positions by chance, less than 1/2 for sure). */
    lmd_synth_opts o2 = o;
    o2.seed = 1235;
    rc = lmd_data_synthetic(&c, &o2, &err);
    size_t same = 0;
    for (size_t i = 0; rc == 0 && i < c.n; i++) same += (a.tok[i] == c.tok[i]);
    printf("seed 1235 agrees with seed 1234 on %.4f of positions\n", (double)same / (double)a.n);
    TU_CHECK(rc == 0 && same < a.n / 2, "different seeds agree on %zu of %zu", same, a.n);
    lmd_tokens_free(&c);

    /* Shorter corpus = prefix of the longer one (tables are drawn before the text). */
    lmd_synth_opts o3 = o;
    o3.n_tokens = 5000;
    rc = lmd_data_synthetic(&pre, &o3, &err);
    TU_CHECK(rc == 0 && memcmp(pre.tok, a.tok, 5000 * sizeof *a.tok) == 0,
             "5000-token corpus is not a prefix of the default one");
    lmd_tokens_free(&pre);

    /* Vocabulary extremes work and respect the range. */
    int vs[] = {2, 3, 31, 50257, 65536};
    for (int j = 0; j < 5; j++) {
        lmd_synth_opts ov = {.seed = 7, .n_tokens = 20000, .vocab_size = vs[j]};
        lmd_tokens t;
        rc = lmd_data_synthetic(&t, &ov, &err);
        int mx = 0;
        for (size_t i = 0; rc == 0 && i < t.n; i++)
            if (t.tok[i] > mx) mx = t.tok[i];
        TU_CHECK(rc == 0 && mx < vs[j], "vocab %d: rc=%d max id %d", vs[j], rc, mx);
        lmd_tokens_free(&t);
    }

    /* ---- structure ----
     * Plug-in entropies on the 2M tokens. For an unstructured (uniform i.i.d.) stream
     * H(next|prev) would be ln 256 = 5.545 minus the plug-in bias (~ cells/(2N) =
     * 65536/4e6 = 0.016). By construction each context has 16 candidate successors (about
     * ln 16 = 2.77 nats given the previous token alone), so we require H1 < 3.5, two nats
     * below ln V, and H1 > 1.5 so the corpus is not trivial. The unigram is Zipf-skewed, so
     * H0 must be below ln V, and H1 must be well (> 1 nat) below H0. */
    double *uni = calloc(256, sizeof *uni);
    double *bi = calloc((size_t)256 * 256, sizeof *bi);
    for (size_t i = 0; i < a.n; i++) uni[a.tok[i]] += 1.0;
    for (size_t i = 1; i < a.n; i++) bi[(size_t)a.tok[i - 1] * 256 + a.tok[i]] += 1.0;
    double N0 = (double)a.n, N1 = (double)(a.n - 1), H0 = 0.0, Hjoint = 0.0, Hprev = 0.0;
    double *prevc = calloc(256, sizeof *prevc);
    for (int x = 0; x < 256; x++) {
        if (uni[x] > 0) H0 -= uni[x] / N0 * log(uni[x] / N0);
        for (int y = 0; y < 256; y++) {
            double cxy = bi[(size_t)x * 256 + y];
            prevc[x] += cxy;
            if (cxy > 0) Hjoint -= cxy / N1 * log(cxy / N1);
        }
    }
    for (int x = 0; x < 256; x++)
        if (prevc[x] > 0) Hprev -= prevc[x] / N1 * log(prevc[x] / N1);
    double H1 = Hjoint - Hprev;
    printf("structure: H(next) = %.3f, H(next|prev) = %.3f nats, ln V = %.3f\n", H0, H1,
           log(256.0));
    TU_CHECK(H1 < 3.5 && H1 > 1.5, "H(next|prev) = %.3f outside (1.5, 3.5)", H1);
    TU_CHECK(H0 < log(256.0) - 0.2, "unigram entropy %.3f not skewed", H0);
    TU_CHECK(H0 - H1 > 1.0, "previous token gives only %.3f nats", H0 - H1);
    free(uni);
    free(bi);
    free(prevc);

    /* Long range: fraction of positions whose last 6 tokens (the next one included) repeat an
     * earlier 6-gram at a distance in the copy range [16, 64] — what an induction head can
     * exploit — against the same statistic at distances [200, 248], where only chance repeats
     * land (a 6-gram collision of the Markov chain needs 5 successive agreeing draws, ~0.12
     * each). Copies cover about 20% of tokens; we require > 8% in range and >= 10x control. */
    const size_t M = 400000, G = 6;
    size_t hit_near = 0, hit_far = 0, count = 0;
    for (size_t i = 300; i < M; i++) {
        count++;
        int near = 0, far = 0;
        for (size_t d = 16; d <= 64 && !near; d++) {
            size_t g = 0;
            while (g < G && a.tok[i - g] == a.tok[i - d - g]) g++;
            near = (g == G);
        }
        for (size_t d = 200; d <= 248 && !far; d++) {
            size_t g = 0;
            while (g < G && a.tok[i - g] == a.tok[i - d - g]) g++;
            far = (g == G);
        }
        hit_near += (size_t)near;
        hit_far += (size_t)far;
    }
    double fn = (double)hit_near / (double)count, ff = (double)hit_far / (double)count;
    printf("structure: 6-gram repeats at distance 16..64: %.4f, at 200..248 (control): %.4f\n", fn,
           ff);
    TU_CHECK(fn > 0.08, "copy structure too weak: %.4f", fn);
    TU_CHECK(fn >= 10.0 * ff, "copy repeats %.4f not 10x the control %.4f", fn, ff);
    lmd_tokens_free(&a);

    /* Bad options. */
    int bad_v[] = {0, 1, 65537, -5};
    for (int j = 0; j < 4; j++) {
        lmd_synth_opts ob = o;
        ob.vocab_size = bad_v[j];
        lmd_tokens t;
        err.msg[0] = 0;
        char vstr[32];
        snprintf(vstr, sizeof vstr, "%d", bad_v[j]);
        rc = lmd_data_synthetic(&t, &ob, &err);
        TU_CHECK(rc == -1 && has_all(err.msg, "vocab_size", vstr, "[2, 65536]", NULL),
                 "vocab %d: rc=%d", bad_v[j], rc);
    }
    lmd_synth_opts oz = o;
    oz.n_tokens = 0;
    lmd_tokens t;
    rc = lmd_data_synthetic(&t, &oz, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "n_tokens", NULL, NULL, NULL), "n_tokens 0: rc=%d", rc);
}

static void test_shards(void) {
    lmd_err err = {{0}};
    char p1[1024], pa[1024], pb[1024], other[1024], pat[1024];
    /* Round trip over the full uint16 range. */
    size_t n = 70000;
    uint16_t *tok = malloc(n * sizeof *tok);
    lmd_rng r;
    lmd_rng_seed(&r, 99, 0);
    for (size_t i = 0; i < n; i++) tok[i] = (uint16_t)lmd_rng_below(&r, 65536);
    tok[0] = 0;
    tok[1] = 65535;
    path_in(p1, sizeof p1, "round.bin");
    int rc = lmd_data_write_shard(p1, tok, n, &err);
    TU_CHECK(rc == 0, "write: %s", err.msg);

    /* The bytes follow DESIGN.md 4.2 exactly. */
    FILE *f = fopen(p1, "rb");
    uint8_t hdr[1024 + 4];
    size_t got = f ? fread(hdr, 1, sizeof hdr, f) : 0;
    struct stat st;
    int srt = stat(p1, &st);
    if (f) fclose(f);
    uint32_t m =
        (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    TU_CHECK(got == sizeof hdr && m == 20240520 && hdr[4] == 1 && hdr[5] == 0 &&
                 hdr[8] == (uint8_t)n && hdr[9] == (uint8_t)(n >> 8) &&
                 hdr[10] == (uint8_t)(n >> 16) && hdr[1024] == 0 && hdr[1025] == 0 &&
                 hdr[1026] == 0xff && hdr[1027] == 0xff,
             "header bytes wrong (magic %u)", m);
    TU_CHECK(srt == 0 && (size_t)st.st_size == 1024 + 2 * n, "file size %lld",
             (long long)st.st_size);

    lmd_tokens t;
    rc = lmd_data_shards(&t, p1, 65536, &err);
    int same = rc == 0 && t.n == n && t.vocab_size == 65536;
    for (size_t i = 0; same && i < n; i++) same = t.tok[i] == (int32_t)tok[i];
    TU_CHECK(same, "round trip: rc=%d %s", rc, err.msg);
    lmd_tokens_free(&t);

    /* Glob of two shards: sorted by name and concatenated (written in the other order). */
    uint16_t sa[5] = {1, 2, 3, 4, 5}, sb[3] = {10, 11, 12};
    path_in(pb, sizeof pb, "glob_b.bin");
    path_in(pa, sizeof pa, "glob_a.bin");
    path_in(other, sizeof other, "unrelated.bin");
    rc = lmd_data_write_shard(pb, sb, 3, &err);
    rc |= lmd_data_write_shard(pa, sa, 5, &err);
    rc |= lmd_data_write_shard(other, sa, 5, &err);
    TU_CHECK(rc == 0, "writes: %s", err.msg);
    path_in(pat, sizeof pat, "glob_*.bin");
    rc = lmd_data_shards(&t, pat, 50257, &err);
    int32_t want[8] = {1, 2, 3, 4, 5, 10, 11, 12};
    TU_CHECK(rc == 0 && t.n == 8 && memcmp(t.tok, want, sizeof want) == 0, "glob: rc=%d n=%zu %s",
             rc, t.n, err.msg);
    TU_CHECK(rc == 0 && strstr(t.source, "2 files") != NULL, "source %s", t.source);
    lmd_tokens_free(&t);
    free(tok);

    /* The uint32 form (20240801, 7): ids above 65535 (Llama-3's vocabulary is 128,256). */
    char p32[1024];
    path_in(p32, sizeof p32, "wide.bin");
    uint32_t wide[5] = {0, 65535, 65536, 128000, 128255};
    FILE *wf = fopen(p32, "wb");
    uint8_t whdr[1024] = {0};
    uint32_t wf3[3] = {20240801, 7, 5};
    for (int j = 0; j < 3; j++)
        for (int b = 0; b < 4; b++) whdr[4 * j + b] = (uint8_t)(wf3[j] >> (8 * b));
    int wok = wf && fwrite(whdr, 1, sizeof whdr, wf) == sizeof whdr;
    for (int i = 0; wok && i < 5; i++) {
        uint8_t le[4] = {(uint8_t)wide[i], (uint8_t)(wide[i] >> 8), (uint8_t)(wide[i] >> 16),
                         (uint8_t)(wide[i] >> 24)};
        wok = fwrite(le, 1, 4, wf) == 4;
    }
    if (wf && fclose(wf) != 0) wok = 0;
    TU_CHECK(wok, "cannot write %s", p32);
    rc = lmd_data_shards(&t, p32, 128256, &err);
    int wsame = rc == 0 && t.n == 5 && t.vocab_size == 128256;
    for (int i = 0; wsame && i < 5; i++) wsame = t.tok[i] == (int32_t)wide[i];
    TU_CHECK(wsame, "uint32 file: rc=%d n=%zu %s", rc, t.n, err.msg);
    lmd_tokens_free(&t);
    rc = lmd_data_shards(&t, p32, 100000, &err);
    TU_CHECK(rc == -1 && strstr(err.msg, p32) && strstr(err.msg, "token id 128000") &&
                 strstr(err.msg, "position 3") && strstr(err.msg, "byte offset 1036") &&
                 strstr(err.msg, "vocab_size 100000"),
             "uint32 id over vocab: rc=%d '%s'", rc, err.msg);
}

static void test_text(void) {
    lmd_err err = {{0}};
    char p[1024];
    path_in(p, sizeof p, "bytes.txt");
    uint8_t bytes[300];
    for (int i = 0; i < 300; i++) bytes[i] = (uint8_t)(255 - i % 256);
    write_bytes(p, bytes, sizeof bytes);
    lmd_tokens t;
    int rc = lmd_data_text(&t, p, &err);
    int ok = rc == 0 && t.n == 300 && t.vocab_size == 256;
    for (int i = 0; ok && i < 300; i++) ok = t.tok[i] == bytes[i];
    TU_CHECK(ok, "text: rc=%d n=%zu V=%d %s", rc, t.n, t.vocab_size, err.msg);
    lmd_tokens_free(&t);
}

static void test_split_loader_eval(void) {
    lmd_err err = {{0}};
    const size_t n = 1000;
    lmd_tokens all = {0};
    all.tok = malloc(n * sizeof *all.tok);
    for (size_t i = 0; i < n; i++) all.tok[i] = (int32_t)i; /* id = position */
    all.n = n;
    all.vocab_size = 65536;
    snprintf(all.source, sizeof all.source, "ramp");

    /* Split: the last 10% (100 tokens) is validation. */
    lmd_span tr, va;
    int rc = lmd_data_split(&all, 0.1, 2, 8, &tr, &va, &err);
    TU_CHECK(rc == 0 && tr.n == 900 && va.n == 100 && tr.tok == all.tok &&
                 va.tok == all.tok + 900 && va.vocab_size == 65536,
             "split 0.1: rc=%d train %zu val %zu %s", rc, tr.n, va.n, err.msg);
    /* val_fraction 0 still keeps one batch (B*T+1 = 17) for validation. */
    rc = lmd_data_split(&all, 0.0, 2, 8, &tr, &va, &err);
    TU_CHECK(rc == 0 && tr.n == 983 && va.n == 17, "split 0: train %zu val %zu", tr.n, va.n);

    /* Loader over the whole ramp, B=2, T=8: batch starts 0, 16, ..., 976 (976 + 17 <= 1000,
     * 992 + 17 > 1000), i.e. 62 batches, then back to 0. */
    lmd_span sp = {all.tok, n, 65536};
    lmd_loader ld;
    rc = lmd_loader_init(&ld, sp, 2, 8, &err);
    TU_CHECK(rc == 0 && ld.pos == 0, "loader init: %s", err.msg);
    int in[16], tg[16];
    int bad = 0;
    for (int k = 0; k < 62; k++) {
        uint64_t start = ld.pos;
        lmd_loader_next(&ld, in, tg);
        for (int i = 0; i < 16; i++)
            if (start != (uint64_t)k * 16 || in[i] != (int)(k * 16 + i) ||
                tg[i] != (int)(k * 16 + i + 1))
                bad++;
    }
    TU_CHECK(bad == 0, "%d wrong entries in the first 62 batches", bad);
    TU_CHECK(ld.pos == 0, "after 62 batches pos = %llu, want wrap to 0",
             (unsigned long long)ld.pos);
    lmd_loader_next(&ld, in, tg);
    TU_CHECK(in[0] == 0 && tg[15] == 16 && ld.pos == 16, "batch after wrap starts at %d", in[0]);

    /* Resume: pos is the whole state. */
    lmd_loader a, b;
    lmd_loader_init(&a, sp, 2, 8, &err);
    for (int k = 0; k < 5; k++) lmd_loader_next(&a, in, tg);
    lmd_loader_init(&b, sp, 2, 8, &err);
    rc = lmd_loader_seek(&b, a.pos, &err);
    int in2[16], tg2[16], same = rc == 0;
    for (int k = 0; k < 70 && same; k++) {
        lmd_loader_next(&a, in, tg);
        lmd_loader_next(&b, in2, tg2);
        same = memcmp(in, in2, sizeof in) == 0 && memcmp(tg, tg2, sizeof tg) == 0;
    }
    TU_CHECK(same, "resumed loader diverges: %s", err.msg);
    rc = lmd_loader_seek(&b, 984, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "984", "1000", NULL, NULL), "seek past end: rc=%d", rc);

    /* Evaluation windows: window i is tokens i*T .. (i+1)*T-1. */
    int *x = NULL;
    rc = lmd_eval_windows(&va, 2, 8, &x, &err);
    int ok = rc == 0 && x != NULL;
    for (int i = 0; ok && i < 16; i++) ok = x[i] == (int)va.tok[i];
    TU_CHECK(ok, "eval windows: rc=%d %s", rc, err.msg);
    free(x);
    lmd_span sp3 = {all.tok, 30, 65536};
    rc = lmd_eval_windows(&sp3, 3, 10, &x, &err);
    ok = rc == 0;
    for (int i = 0; ok && i < 30; i++) ok = x[i] == i;
    TU_CHECK(ok, "eval windows exactly filling the span");
    free(x);
    rc = lmd_eval_windows(&sp3, 4, 10, &x, &err);
    TU_CHECK(rc == -1 && x == NULL && has_all(err.msg, "40", "30", "too short", NULL),
             "eval windows too many: rc=%d", rc);

    /* Corpus shorter than one batch. */
    lmd_span tiny = {all.tok, 16, 65536};
    rc = lmd_loader_init(&ld, tiny, 2, 8, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "16 tokens", "17", "too short", NULL),
             "loader on 16 tokens: rc=%d", rc);
    lmd_tokens small = all;
    small.n = 33; /* needs 2 * 17 = 34 */
    rc = lmd_data_split(&small, 0.1, 2, 8, &tr, &va, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "33 tokens", "34", "ramp", "too short"),
             "split of 33 tokens: rc=%d", rc);
    rc = lmd_data_split(&all, 0.99, 2, 8, &tr, &va, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "training tokens", "17", NULL, NULL), "split 0.99: rc=%d",
             rc);
    rc = lmd_data_split(&all, 1.0, 2, 8, &tr, &va, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "val_fraction", NULL, NULL, NULL), "split 1.0");
    rc = lmd_data_split(&all, NAN, 2, 8, &tr, &va, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "val_fraction", NULL, NULL, NULL), "split NaN");
    rc = lmd_loader_init(&ld, sp, 0, 8, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "B=0", NULL, NULL, NULL), "B=0");
    free(all.tok);
}

static void test_bad_files(void) {
    lmd_err err = {{0}};
    lmd_tokens t;
    char p[1024], pat[1024];
    int rc;
    const char *enoent = strerror(ENOENT);

    /* Missing files. */
    path_in(p, sizeof p, "does_not_exist.bin");
    rc = lmd_data_shards(&t, p, 256, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, enoent, NULL, NULL), "missing shard: rc=%d", rc);
    rc = lmd_data_text(&t, p, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, enoent, NULL, NULL), "missing text: rc=%d", rc);

    /* Empty glob match. */
    path_in(pat, sizeof pat, "nothing_here_*.bin");
    rc = lmd_data_shards(&t, pat, 256, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, pat, "no file matches", NULL, NULL), "empty glob: rc=%d",
             rc);

    /* Wrong magic. */
    uint16_t body[8] = {1, 2, 3, 4, 5, 6, 300, 8};
    path_in(p, sizeof p, "bad_magic.bin");
    write_raw_shard(p, 12345, 1, 8, body, 8);
    rc = lmd_data_shards(&t, p, 256, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, "magic", "12345", "20240520"), "wrong magic: rc=%d",
             rc);

    /* Wrong version. */
    path_in(p, sizeof p, "bad_version.bin");
    write_raw_shard(p, 20240520, 2, 8, body, 8);
    rc = lmd_data_shards(&t, p, 65536, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, "version 2", "expected 1", NULL),
             "wrong version: rc=%d", rc);

    /* Truncated: header says 100 tokens, the file holds 8. */
    path_in(p, sizeof p, "truncated.bin");
    write_raw_shard(p, 20240520, 1, 100, body, 8);
    rc = lmd_data_shards(&t, p, 65536, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, "truncated", "100 tokens", "holds 8"),
             "truncated: rc=%d", rc);

    /* Shorter than the header. */
    path_in(p, sizeof p, "stub.bin");
    write_bytes(p, "12345678", 8);
    rc = lmd_data_shards(&t, p, 65536, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, "truncated", "8 bytes", "1024"), "stub: rc=%d", rc);

    /* Trailing bytes beyond the declared tokens. */
    path_in(p, sizeof p, "trailing.bin");
    write_raw_shard(p, 20240520, 1, 4, body, 8);
    rc = lmd_data_shards(&t, p, 65536, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, "4 tokens", "trailing", NULL), "trailing: rc=%d", rc);

    /* Token id >= vocab_size: id 300 at position 6. */
    path_in(p, sizeof p, "big_id.bin");
    write_raw_shard(p, 20240520, 1, 8, body, 8);
    rc = lmd_data_shards(&t, p, 256, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, "token id 300", "position 6", "vocab_size 256"),
             "big id: rc=%d", rc);
    rc = lmd_data_shards(&t, p, 301, &err);
    TU_CHECK(rc == 0 && t.n == 8 && t.tok[6] == 300, "same file with vocab 301: rc=%d %s", rc,
             err.msg);
    lmd_tokens_free(&t);

    /* A bad file inside a glob is named, with the pattern. */
    char good[1024], badg[1024];
    path_in(good, sizeof good, "mix_0.bin");
    path_in(badg, sizeof badg, "mix_1.bin");
    write_raw_shard(good, 20240520, 1, 4, body, 4);
    write_raw_shard(badg, 20240520, 1, 8, body, 8);
    path_in(pat, sizeof pat, "mix_?.bin");
    rc = lmd_data_shards(&t, pat, 256, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, badg, pat, "token id 300", "file 2 of 2"),
             "bad file in glob: rc=%d", rc);

    /* Invalid vocabulary for shards. */
    rc = lmd_data_shards(&t, good, 1, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, "vocab_size", "1", NULL, NULL), "vocab 1");

    /* A shard with no tokens. */
    path_in(p, sizeof p, "empty.bin");
    write_raw_shard(p, 20240520, 1, 0, body, 0);
    rc = lmd_data_shards(&t, p, 256, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, "no tokens", NULL, NULL), "empty shard: rc=%d", rc);

    /* Empty text file. */
    path_in(p, sizeof p, "empty.txt");
    write_bytes(p, "", 0);
    rc = lmd_data_text(&t, p, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, "empty", NULL, NULL), "empty text: rc=%d", rc);

    /* Writing into a missing directory. */
    path_in(p, sizeof p, "no_such_dir/x.bin");
    rc = lmd_data_write_shard(p, body, 8, &err);
    TU_CHECK(rc == -1 && has_all(err.msg, p, enoent, NULL, NULL), "write to missing dir");
}

int main(void) {
    const char *tmp = getenv("LMDISP_TMP");
    if (!tmp || !*tmp) tmp = "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/test_data_%ld", tmp, (long)getpid());
    if (mkdir(g_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create scratch dir %s: %s\n", g_dir, strerror(errno));
        return 99;
    }
    test_synthetic();
    test_shards();
    test_text();
    test_split_loader_eval();
    test_bad_files();
    /* Leave scratch files only when something failed, to inspect them. */
    if (tu_failures == 0) {
        DIR *d = opendir(g_dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char f[1300];
            snprintf(f, sizeof f, "%s/%s", g_dir, e->d_name);
            if (unlink(f) != 0) fprintf(stderr, "note: could not remove %s\n", f);
        }
        if (d) closedir(d);
        if (rmdir(g_dir) != 0) fprintf(stderr, "note: could not remove %s\n", g_dir);
    }
    return tu_summary("test_data");
}
