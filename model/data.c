/* data.c — token data: synthetic corpus, byte-level text, llm.c shards; split, loader and the
 * fixed evaluation windows. */
#define _POSIX_C_SOURCE 200809L
#include "data.h"
#include "tokfile.h"

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SHARD_MAGIC 20240520
#define SHARD_VERSION 1
#define SHARD_MAGIC32 20240801 /* llm.c Llama-3 shards: uint32 tokens */
#define SHARD_VERSION32 7
#define SHARD_HEADER_INTS 256
#define SHARD_HEADER_BYTES (SHARD_HEADER_INTS * 4)

lmd_synth_opts lmd_synth_default(void) {
    lmd_synth_opts o = {.seed = 1234, .n_tokens = 2000000, .vocab_size = 256};
    return o;
}

void lmd_tokens_free(lmd_tokens *t) {
    if (!t) return;
    free(t->tok);
    memset(t, 0, sizeof *t);
}

static int check_vocab(int vocab_size, const char *what, lmd_err *err) {
    if (vocab_size < 2 || vocab_size > 65536)
        return lmd_errf(err,
                        "%s: vocab_size %d is out of range: it must be in [2, 65536] "
                        "(the generator's tables hold uint16 ids)",
                        what, vocab_size);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Synthetic corpus                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* Generator constants; changing any of them changes the corpus, so bump SYNTH_VERSION (it is
 * recorded in lmd_tokens.source for provenance). */
#define SYNTH_VERSION 1
#define SYNTH_K 16           /* candidate successors per context */
#define SYNTH_ZIPF_W 720720u /* lcm(1..16): the Zipf weights W/(k+1) are exact integers */
#define SYNTH_COPY_ODDS 64   /* a copy starts with probability 1/64 at each free token */
#define SYNTH_COPY_LEN_MIN 8
#define SYNTH_COPY_LEN_MAX 24
#define SYNTH_COPY_DIST_MIN 16
#define SYNTH_COPY_DIST_MAX 64

/* Draws a token id in [0, V) from Zipf(1) over ids (id 0 most frequent). cdf[t] is the
 * cumulative integer weight of ids 0..t, total = cdf[V-1]. */
static int zipf_draw(lmd_rng *r, const uint64_t *cdf, int V) {
    uint64_t u = lmd_rng_below(r, cdf[V - 1]);
    int lo = 0, hi = V - 1; /* first t with cdf[t] > u */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* out->tok: n_tokens ids < vocab_size.
 *
 * The generator is a hidden process a small transformer can learn in a few hundred steps,
 * with structure at three ranges, so that every part of the model has something to do:
 *
 * 1. Frequency (unigram). Every token v has SYNTH_K = 16 candidate successors succ[v][0..15].
 *    Each candidate is drawn, half the time, from Zipf(1) over ids (low ids frequent, like a
 *    BPE vocabulary), otherwise uniformly, so the unigram distribution is skewed like real
 *    text yet every id has some chance to occur (its embedding gets gradient).
 *    Candidates of one token are distinct when V >= 32 (rejection), so the support is 16.
 * 2. Local order-1/order-2 Markov chain. The next token after (a, b) is candidate
 *    succ[b][(k + rot[a]) mod 16], where rank k has Zipf weight 1/(k+1) (integer weights
 *    720720/(k+1), exact) and rot[a] in [0, 16) is a fixed per-token rotation. Knowing only the
 *    previous token b narrows the next token to 16 candidates (about ln 16 = 2.77 nats);
 *    knowing also a gives the exact ranking (Zipf-16 entropy 2.36 nats): a reward for
 *    attending to the token two back.
 * 3. Long range: copy segments (what induction heads learn). At each token not inside a copy,
 *    with probability 1/64 a copy starts: the next L in [8, 24] tokens repeat the tokens found
 *    d in [16, 64] positions earlier (d < L gives a periodic repeat). Inside a copy the next
 *    token is determined by the earlier occurrence (0 nats for a model that finds it, ~2.4
 *    for one that cannot look back). About 20% of tokens are copies.
 *
 * The true entropy rate is therefore about (64 * (2.36 + 0.07) + ~7) / 80 ~= 2.0 nats per
 * token against ln V = 5.55 for V = 256, while a bigram-only model is stuck near 2.7, and a
 * unigram model near 4.5-5: each step of modelling capability shows in the loss.
 *
 * Determinism: one lmd_rng (stream LMD_STREAM_CORPUS) and integer arithmetic only; the tables
 * are drawn before the text, so for a given (seed, vocab_size) a shorter corpus is a prefix
 * of a longer one. Cost: one or two RNG draws and a 16-entry scan per token (2M tokens in a
 * few tens of ms). */
int lmd_data_synthetic(lmd_tokens *out, const lmd_synth_opts *opts, lmd_err *err) {
    memset(out, 0, sizeof *out);
    if (check_vocab(opts->vocab_size, "synthetic corpus", err)) return -1;
    if (opts->n_tokens < 2)
        return lmd_errf(err, "synthetic corpus: n_tokens %zu is too small (need at least 2)",
                        opts->n_tokens);
    const int V = opts->vocab_size;
    const size_t n = opts->n_tokens;
    lmd_rng r;
    lmd_rng_seed(&r, opts->seed, LMD_STREAM_CORPUS);

    /* Zipf(1) cdf over ids: weight 2^32/(t+1), total < 2^32 * 12.2 fits in 64 bits. */
    uint64_t *cdf = lmd_calloc((size_t)V, sizeof *cdf);
    uint64_t acc = 0;
    for (int t = 0; t < V; t++) {
        acc += ((uint64_t)1 << 32) / (uint64_t)(t + 1);
        cdf[t] = acc;
    }

    uint16_t *succ = lmd_calloc((size_t)V * SYNTH_K, sizeof *succ);
    uint8_t *rot = lmd_calloc((size_t)V, 1);
    const int distinct = V >= 2 * SYNTH_K;
    for (int v = 0; v < V; v++) {
        uint16_t *s = succ + (size_t)v * SYNTH_K;
        for (int k = 0; k < SYNTH_K; k++) {
            for (;;) {
                int c = (lmd_rng_u64(&r) >> 63) ? zipf_draw(&r, cdf, V)
                                                : (int)lmd_rng_below(&r, (uint64_t)V);
                int dup = 0;
                for (int j = 0; distinct && j < k; j++) dup |= (s[j] == c);
                if (!dup) {
                    s[k] = (uint16_t)c;
                    break;
                }
            }
        }
        rot[v] = (uint8_t)lmd_rng_below(&r, SYNTH_K);
    }
    free(cdf);

    /* Cumulative Zipf weights of ranks 0..15. */
    uint32_t rank_cdf[SYNTH_K];
    uint32_t racc = 0;
    for (int k = 0; k < SYNTH_K; k++) {
        racc += SYNTH_ZIPF_W / (uint32_t)(k + 1);
        rank_cdf[k] = racc;
    }

    int32_t *tok = lmd_calloc(n, sizeof *tok);
    tok[0] = (int32_t)lmd_rng_below(&r, (uint64_t)V);
    tok[1] = (int32_t)lmd_rng_below(&r, (uint64_t)V);
    size_t copy_left = 0, copy_dist = 0;
    for (size_t i = 2; i < n; i++) {
        if (copy_left == 0 && lmd_rng_below(&r, SYNTH_COPY_ODDS) == 0) {
            size_t len = SYNTH_COPY_LEN_MIN +
                         (size_t)lmd_rng_below(&r, SYNTH_COPY_LEN_MAX - SYNTH_COPY_LEN_MIN + 1);
            size_t d = SYNTH_COPY_DIST_MIN +
                       (size_t)lmd_rng_below(&r, SYNTH_COPY_DIST_MAX - SYNTH_COPY_DIST_MIN + 1);
            if (d <= i) { /* too early in the stream: no copy */
                copy_left = len;
                copy_dist = d;
            }
        }
        if (copy_left > 0) {
            tok[i] = tok[i - copy_dist];
            copy_left--;
            continue;
        }
        uint32_t u = (uint32_t)lmd_rng_below(&r, rank_cdf[SYNTH_K - 1]);
        int k = 0;
        while (rank_cdf[k] <= u) k++;
        int a = tok[i - 2], b = tok[i - 1];
        tok[i] = succ[(size_t)b * SYNTH_K + (size_t)((k + rot[a]) % SYNTH_K)];
    }
    free(succ);
    free(rot);

    out->tok = tok;
    out->n = n;
    out->vocab_size = V;
    snprintf(out->source, sizeof out->source,
             "synthetic(v%d, seed=%llu, n_tokens=%zu, vocab_size=%d)", SYNTH_VERSION,
             (unsigned long long)opts->seed, n, V);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* Size of an open file in bytes, or -1 with err set. */
static long long file_size(FILE *f, const char *path, lmd_err *err) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return lmd_errf(err, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return lmd_errf(err, "%s: not a regular file", path);
    return (long long)st.st_size;
}

int lmd_data_text(lmd_tokens *out, const char *path, lmd_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return lmd_errf(err, "%s: cannot open text file: %s", path, strerror(errno));
    long long size = file_size(f, path, err);
    if (size < 0) {
        fclose(f);
        return -1;
    }
    if (size == 0) {
        fclose(f);
        return lmd_errf(err, "%s: text file is empty (0 bytes): nothing to train on", path);
    }
    uint8_t *bytes = lmd_calloc((size_t)size, 1);
    size_t got = fread(bytes, 1, (size_t)size, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != (size_t)size) {
        free(bytes);
        return lmd_errf(err, "%s: read %zu of %lld bytes of the text file%s%s", path, got, size,
                        rerr ? ": " : "", rerr ? strerror(errno) : "");
    }
    int32_t *tok = lmd_calloc((size_t)size, sizeof *tok);
    for (size_t i = 0; i < (size_t)size; i++) tok[i] = bytes[i];
    free(bytes);
    out->tok = tok;
    out->n = (size_t)size;
    out->vocab_size = 256;
    snprintf(out->source, sizeof out->source, "text:%s", path);
    return 0;
}

/* Appends the tokens of one token file (read by lmd_tokfile_read, the one reader: header,
 * size and every id against vocab_size) to *buf (n used, cap allocated). */
static int read_shard(const char *path, int vocab_size, int32_t **buf, size_t *n, size_t *cap,
                      lmd_err *err) {
    int32_t *ids = NULL;
    size_t m = 0;
    if (lmd_tokfile_read(path, vocab_size, 0, 0, &ids, &m, err)) return -1;
    if (m && *n + m > *cap) {
        size_t want = *cap ? *cap : 1024;
        while (want < *n + m) want *= 2;
        int32_t *grown = realloc(*buf, want * sizeof **buf);
        if (!grown) {
            free(ids);
            return lmd_errf(err, "%s: out of memory growing the token buffer to %zu tokens", path,
                            want);
        }
        *buf = grown;
        *cap = want;
    }
    if (m) memcpy(*buf + *n, ids, m * sizeof *ids); /* an empty file: *buf may be NULL */
    *n += m;
    free(ids);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int lmd_data_shards(lmd_tokens *out, const char *pattern, int vocab_size, lmd_err *err) {
    memset(out, 0, sizeof *out);
    if (vocab_size < 2)
        return lmd_errf(err, "%s: vocab_size %d is out of range: it must be >= 2", pattern,
                        vocab_size);
    int32_t *buf = NULL;
    size_t n = 0, cap = 0, n_files = 0;
    if (strpbrk(pattern, "*?[") == NULL) {
        /* A plain path: open it directly so a missing file says why (strerror). */
        if (read_shard(pattern, vocab_size, &buf, &n, &cap, err)) {
            free(buf);
            return -1;
        }
        n_files = 1;
    } else {
        glob_t g;
        int grc = glob(pattern, 0, NULL, &g);
        if (grc == GLOB_NOMATCH) {
            globfree(&g);
            return lmd_errf(err, "%s: no file matches the token shard pattern", pattern);
        }
        if (grc != 0) {
            globfree(&g);
            return lmd_errf(err, "%s: glob failed (%s)", pattern,
                            grc == GLOB_NOSPACE ? "out of memory" : "read error");
        }
        /* glob sorts with the locale's collation; sort bytewise so the order is the same on
         * every machine. */
        qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, cmp_str);
        for (size_t i = 0; i < g.gl_pathc; i++) {
            if (read_shard(g.gl_pathv[i], vocab_size, &buf, &n, &cap, err)) {
                lmd_err_prefix(err, "token shards %s (file %zu of %zu)", pattern, i + 1,
                               (size_t)g.gl_pathc);
                globfree(&g);
                free(buf);
                return -1;
            }
        }
        n_files = g.gl_pathc;
        globfree(&g);
    }
    if (n == 0) {
        free(buf);
        return lmd_errf(err, "%s: the token shard%s hold%s no tokens", pattern,
                        n_files > 1 ? "s" : "", n_files > 1 ? "" : "s");
    }
    out->tok = buf;
    out->n = n;
    out->vocab_size = vocab_size;
    snprintf(out->source, sizeof out->source, "shards:%s (%zu file%s)", pattern, n_files,
             n_files > 1 ? "s" : "");
    return 0;
}

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int lmd_data_write_shard(const char *path, const uint16_t *tok, size_t n, lmd_err *err) {
    if (n > (size_t)INT32_MAX)
        return lmd_errf(err, "%s: %zu tokens do not fit one llm.c shard (at most %d)", path, n,
                        (int)INT32_MAX);
    uint8_t hdr[SHARD_HEADER_BYTES] = {0};
    put_le32(hdr, SHARD_MAGIC);
    put_le32(hdr + 4, SHARD_VERSION);
    put_le32(hdr + 8, (uint32_t)n);
    FILE *f = fopen(path, "wb");
    if (!f) return lmd_errf(err, "%s: cannot create token shard: %s", path, strerror(errno));
    int ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr;
    uint8_t chunk[8192];
    for (size_t i = 0; ok && i < n;) {
        size_t m = 0;
        for (; m < sizeof chunk / 2 && i < n; m++, i++) {
            chunk[2 * m] = (uint8_t)tok[i];
            chunk[2 * m + 1] = (uint8_t)(tok[i] >> 8);
        }
        ok = fwrite(chunk, 2, m, f) == m;
    }
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) return lmd_errf(err, "%s: error writing token shard: %s", path, strerror(saved));
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Split, loader, evaluation windows                                                         */
/* ---------------------------------------------------------------------------------------- */

static int check_bt(int B, int T, const char *what, lmd_err *err) {
    if (B < 1 || T < 1)
        return lmd_errf(err, "%s: batch size B=%d and sequence length T=%d must both be >= 1", what,
                        B, T);
    return 0;
}

int lmd_data_split(const lmd_tokens *all, double val_fraction, int B, int T, lmd_span *train,
                   lmd_span *val, lmd_err *err) {
    if (check_bt(B, T, all->source, err)) return -1;
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return lmd_errf(err, "%s: val_fraction %g must be in [0, 1)", all->source, val_fraction);
    const size_t need = (size_t)B * (size_t)T + 1; /* one B x T batch with its shifted targets */
    if (all->n < 2 * need)
        return lmd_errf(err,
                        "%s: corpus too short: it has %zu tokens but a train/validation "
                        "split with B=%d, T=%d needs at least %zu (B*T+1 = %zu for each part)",
                        all->source, all->n, B, T, 2 * need, need);
    size_t n_val = (size_t)(val_fraction * (double)all->n);
    if (n_val < need) n_val = need;
    if (all->n - n_val < need)
        return lmd_errf(err,
                        "%s: val_fraction %g leaves %zu training tokens but one B=%d x T=%d "
                        "batch needs %zu",
                        all->source, val_fraction, all->n - n_val, B, T, need);
    size_t n_train = all->n - n_val;
    train->tok = all->tok;
    train->n = n_train;
    train->vocab_size = all->vocab_size;
    val->tok = all->tok + n_train;
    val->n = n_val;
    val->vocab_size = all->vocab_size;
    return 0;
}

int lmd_loader_init(lmd_loader *ld, lmd_span span, int B, int T, lmd_err *err) {
    memset(ld, 0, sizeof *ld);
    if (check_bt(B, T, "batch loader", err)) return -1;
    const size_t need = (size_t)B * (size_t)T + 1;
    if (span.n < need)
        return lmd_errf(err,
                        "batch loader: corpus too short: %zu tokens present but one B=%d x "
                        "T=%d batch needs %zu (B*T+1)",
                        span.n, B, T, need);
    ld->span = span;
    ld->B = B;
    ld->T = T;
    ld->pos = 0;
    return 0;
}

int lmd_loader_seek(lmd_loader *ld, uint64_t pos, lmd_err *err) {
    const uint64_t bt = (uint64_t)ld->B * (uint64_t)ld->T;
    if (pos + bt + 1 > ld->span.n)
        return lmd_errf(err,
                        "batch loader: position %llu is past the last batch start of a "
                        "%zu-token span (B=%d, T=%d): was the checkpoint made on other data?",
                        (unsigned long long)pos, ld->span.n, ld->B, ld->T);
    ld->pos = pos;
    return 0;
}

/* inputs, targets: (B, T) row-major. */
void lmd_loader_next(lmd_loader *ld, int *inputs, int *targets) {
    const size_t bt = (size_t)ld->B * (size_t)ld->T;
    /* Init and seek guarantee a fitting pos; this only guards a pos set by hand. */
    if (ld->pos + bt + 1 > ld->span.n) ld->pos = 0;
    const int32_t *p = ld->span.tok + ld->pos;
    for (size_t i = 0; i < bt; i++) {
        inputs[i] = p[i];
        targets[i] = p[i + 1];
    }
    ld->pos += bt;
    if (ld->pos + bt + 1 > ld->span.n) ld->pos = 0;
}

/* inputs: (n_seq, T). */
int lmd_eval_windows(const lmd_span *span, int n_seq, int T, int **inputs, lmd_err *err) {
    *inputs = NULL;
    if (n_seq < 1 || T < 1)
        return lmd_errf(err, "evaluation windows: n_seq=%d and T=%d must both be >= 1", n_seq, T);
    const size_t need = (size_t)n_seq * (size_t)T;
    if (span->n < need)
        return lmd_errf(err,
                        "evaluation windows: corpus too short: %d windows of T=%d need %zu "
                        "tokens, %zu present",
                        n_seq, T, need, span->n);
    int *x = lmd_calloc(need, sizeof *x);
    for (size_t i = 0; i < need; i++) x[i] = span->tok[i];
    *inputs = x;
    return 0;
}
