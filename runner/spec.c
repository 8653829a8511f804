/* spec.c — experiment spec: YAML -> node tree (libyaml events) -> typed settings -> grid
 * expansion -> resolved, validated cells with stable ids. See spec.h and docs/SPEC.md. */
#include "spec.h"
#include "spec_kd.h"
#include "initmodel.h"

#include <errno.h>
#include <float.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "datasrc.h"
#include "dispersion.h"
#include "fileio.h"
#include "sha256.h"
#include "tokenizer.h"
#include "mctask.h"

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------ */

/* Growable string for the settings text and joined messages. */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_addf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_addf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) lmd_die("vsnprintf failed");
        if (b->p && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n <= (size_t)k) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) lmd_die("out of memory growing a string to %zu bytes", cap);
        b->p = np;
        b->cap = cap;
    }
}

/* Shortest "%.Ng" that reads back as exactly x, so 1e-3 and 0.001 print (and hash) alike. */
static void fmt_num(char *buf, size_t n, double x) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

/* Edit distance (Levenshtein), for "did you mean" suggestions. Keys are short. */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 1000;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

/* ------------------------------------------------------------------------------------------
 * YAML node tree, built from libyaml events. Aliases and anchors are rejected, and nodes,
 * depth and file size are capped, so a spec cannot make us allocate without bound.
 * ------------------------------------------------------------------------------------------ */

typedef enum { YN_SCALAR, YN_SEQ, YN_MAP } yn_kind;

typedef struct ynode {
    yn_kind kind;
    char *val; /* scalar text */
    int plain; /* scalar was unquoted (numbers and booleans must be) */
    int line, col;
    struct ynode **kids; /* seq: items; map: key, value, key, value, ... */
    size_t n, cap;
} ynode;

static const char *kind_name(const ynode *n) {
    if (!n) return "nothing";
    if (n->kind == YN_SEQ) return "a list";
    if (n->kind == YN_MAP) return "a mapping";
    if (n->plain && n->val[0] == '\0') return "an empty value";
    return n->plain ? "a scalar" : "a quoted string";
}

static void ynode_free(ynode *n) {
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) ynode_free(n->kids[i]);
    free(n->kids);
    free(n->val);
    free(n);
}

static void ynode_add(ynode *parent, ynode *kid) {
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? 2 * parent->cap : 8;
        ynode **k = realloc(parent->kids, cap * sizeof *k);
        if (!k) lmd_die("out of memory building the YAML tree");
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
}

/* Error collection: messages "PATH:LINE:COL: key 'k': message", one per line. */
typedef struct {
    const char *path;
    sbuf msgs;
    int n_errors;
} pctx;

static void perr(pctx *c, const ynode *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void perr(pctx *c, const ynode *at, const char *key, const char *fmt, ...) {
    c->n_errors++;
    if (c->n_errors > LMD_SPEC_MAX_ERRORS) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = at ? at->line : 1, col = at ? at->col : 1;
    if (c->msgs.n) sb_addf(&c->msgs, "\n");
    if (key)
        sb_addf(&c->msgs, "%s:%d:%d: key '%s': %s", c->path, line, col, key, msg);
    else
        sb_addf(&c->msgs, "%s:%d:%d: %s", c->path, line, col, msg);
}

static ynode *build_tree(pctx *c, const char *text, size_t len) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        perr(c, NULL, NULL, "cannot initialize the YAML parser (out of memory?)");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    ynode *root = NULL;
    ynode *stack[LMD_SPEC_MAX_DEPTH + 1];
    int depth = 0, n_docs = 0, done = 0;
    size_t n_nodes = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            ynode at = {.line = (int)p.problem_mark.line + 1,
                        .col = (int)p.problem_mark.column + 1};
            perr(c, &at, NULL, "YAML syntax error: %s%s%s", p.problem ? p.problem : "unknown",
                 p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        ynode at = {.line = (int)ev.start_mark.line + 1, .col = (int)ev.start_mark.column + 1};
        const unsigned char *anchor = NULL;
        ynode *node = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++n_docs > 1) {
                perr(c, &at, NULL, "a spec is one YAML document; found a second one ('---')");
                done = 2;
            }
            break;
        case YAML_ALIAS_EVENT:
            perr(c, &at, NULL,
                 "YAML aliases (*%s) are not allowed in specs: write the values out (aliases "
                 "can expand a small file into an enormous document)",
                 (const char *)ev.data.alias.anchor);
            done = 2;
            break;
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            node = lmd_calloc(1, sizeof *node);
            node->kind = YN_SCALAR;
            node->val = lmd_strdup((const char *)ev.data.scalar.value);
            node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            anchor = ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                          : ev.data.mapping_start.anchor;
            node = lmd_calloc(1, sizeof *node);
            node->kind = ev.type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        default: break;
        }
        if (anchor) {
            perr(c, &at, NULL,
                 "YAML anchors (&%s) and aliases are not allowed in specs: write the values out",
                 (const char *)anchor);
            ynode_free(node);
            node = NULL;
            done = 2;
        }
        if (node) {
            node->line = at.line;
            node->col = at.col;
            if (++n_nodes > LMD_SPEC_MAX_NODES) {
                perr(c, &at, NULL, "the spec has more than %d YAML nodes", LMD_SPEC_MAX_NODES);
                ynode_free(node);
                done = 2;
            } else {
                if (depth > 0) {
                    ynode *parent = stack[depth - 1];
                    if (parent->kind == YN_MAP && parent->n % 2 == 0 && node->kind != YN_SCALAR) {
                        perr(c, &at, NULL, "mapping keys must be plain names, not %s",
                             kind_name(node));
                        done = 2;
                    }
                    ynode_add(parent, node);
                } else if (!root) {
                    root = node;
                } else {
                    ynode_free(node); /* cannot happen with one document; be safe */
                }
                if (node->kind != YN_SCALAR && !done) {
                    if (depth >= LMD_SPEC_MAX_DEPTH) {
                        perr(c, &at, NULL, "the spec nests lists/mappings deeper than %d levels",
                             LMD_SPEC_MAX_DEPTH);
                        done = 2;
                    } else {
                        stack[depth++] = node;
                    }
                }
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (c->n_errors) {
        ynode_free(root);
        return NULL;
    }
    return root;
}

/* ------------------------------------------------------------------------------------------
 * The settings: every scalar a spec can set, by dotted name, with type and range.
 * ------------------------------------------------------------------------------------------ */

typedef enum { ST_INT, ST_NUM, ST_STR, ST_BOOL, ST_ENUM } st_type;

/* clang-format off */
enum {
    S_SEED,
    S_DATA_SOURCE, S_DATA_PATH, S_DATA_TOKENIZER, S_DATA_VOCAB, S_DATA_SYN_SEED, S_DATA_SYN_TOKENS, S_DATA_VALF,
    S_N_LAYER, S_N_EMBD, S_N_HEAD, S_N_CTX, S_MODEL_VOCAB, S_MLP_DIM,
    S_STEPS, S_TOKENS, S_BATCH, S_SEQ, S_LR, S_SCHEDULE, S_WARMUP, S_MIN_LR, S_WD, S_BETA1,
    S_BETA2, S_EPS, S_CLIP, S_SHARDS, S_INIT, S_ACCUM,
    S_KD_TEACHER, S_KD_ALPHA, S_KD_TEMP,
    S_VARIANT, S_COEFF, S_LOCATION, S_TAU_COS, S_TAU_L2, S_MAX_TOKENS,
    S_LOG_POINTS, S_EVERY, S_EVAL_SEQS, S_EVAL_SEQ_LEN, S_HIST_BINS, S_SAVE_CK,
    S_RANKS, S_THREADS,
    N_SETTINGS
};
/* clang-format on */

static const char *const SOURCES[] = {"synthetic", "text", "shards", NULL};
static const char *const SCHEDULES[] = {"cosine", NULL};
static const char *const VARIANTS[] = {"off",      "angular_spread",    "decorrelation",
                                       "l2_repel", "orthogonalization", NULL};
static const char *const LOCATIONS[] = {"all", "last", NULL};

#define I64MAX 9223372036854775807LL
typedef struct {
    const char *name;  /* dotted name; top-level settings have no dot */
    const char *alias; /* a second plain name usable in grid:, or NULL */
    st_type type;
    int64_t ilo, ihi; /* ST_INT range, inclusive */
    double dlo, dhi;  /* ST_NUM range; lower bound exclusive when lo_open */
    int lo_open;
    const char *const *choices; /* ST_ENUM */
    int gridable;
    double def;  /* default of ST_INT/ST_NUM/ST_BOOL (index for ST_ENUM) */
    int has_def; /* 0: required or resolved from other settings */
} sdef;

static const sdef DEFS[N_SETTINGS] = {
    [S_SEED] = {"seed", NULL, ST_INT, 0, I64MAX, 0, 0, 0, NULL, 1, 0, 1},
    [S_DATA_SOURCE] = {"data.source", NULL, ST_ENUM, 0, 0, 0, 0, 0, SOURCES, 1, 0, 1},
    [S_DATA_PATH] = {"data.path", NULL, ST_STR, 0, 0, 0, 0, 0, NULL, 1, 0, 0},
    [S_DATA_TOKENIZER] = {"data.tokenizer", NULL, ST_STR, 0, 0, 0, 0, 0, NULL, 1, 0, 0},
    [S_DATA_VOCAB] = {"data.vocab", NULL, ST_INT, 2, 1 << 24, 0, 0, 0, NULL, 1, 0, 0},
    [S_DATA_SYN_SEED] = {"data.synthetic_seed", NULL, ST_INT, 0, I64MAX, 0, 0, 0, NULL, 1, 0, 0},
    [S_DATA_SYN_TOKENS] = {"data.synthetic_tokens", NULL, ST_INT, 2, 4000000000LL, 0, 0, 0, NULL, 1,
                           0, 0},
    [S_DATA_VALF] = {"data.val_fraction", NULL, ST_NUM, 0, 0, 0.0, 0.9, 0, NULL, 1, 0.1, 1},
    [S_N_LAYER] = {"model.n_layer", NULL, ST_INT, 1, 1024, 0, 0, 0, NULL, 1, 4, 1},
    [S_N_EMBD] = {"model.n_embd", NULL, ST_INT, 1, 65536, 0, 0, 0, NULL, 1, 128, 1},
    [S_N_HEAD] = {"model.n_head", NULL, ST_INT, 1, 4096, 0, 0, 0, NULL, 1, 4, 1},
    [S_N_CTX] = {"model.n_ctx", NULL, ST_INT, 1, 1 << 20, 0, 0, 0, NULL, 1, 128, 1},
    [S_MODEL_VOCAB] = {"model.vocab", NULL, ST_INT, 2, 1 << 24, 0, 0, 0, NULL, 1, 0, 0},
    [S_MLP_DIM] = {"model.mlp_dim", NULL, ST_INT, 1, 1 << 20, 0, 0, 0, NULL, 1, 0, 0},
    [S_STEPS] = {"train.steps", NULL, ST_INT, 0, 1000000000000LL, 0, 0, 0, NULL, 1, 0, 0},
    [S_TOKENS] = {"train.tokens", NULL, ST_INT, 1, I64MAX, 0, 0, 0, NULL, 1, 0, 0},
    [S_BATCH] = {"train.batch", NULL, ST_INT, 1, 1 << 20, 0, 0, 0, NULL, 1, 8, 1},
    [S_SEQ] = {"train.seq", NULL, ST_INT, 1, 1 << 20, 0, 0, 0, NULL, 1, 64, 1},
    [S_LR] = {"train.lr", NULL, ST_NUM, 0, 0, 0.0, 10.0, 0, NULL, 1, 1e-3, 1},
    [S_SCHEDULE] = {"train.schedule", NULL, ST_ENUM, 0, 0, 0, 0, 0, SCHEDULES, 1, 0, 1},
    [S_WARMUP] = {"train.warmup_ratio", NULL, ST_NUM, 0, 0, 0.0, 1.0, 0, NULL, 1, 0.2, 1},
    [S_MIN_LR] = {"train.min_lr_ratio", NULL, ST_NUM, 0, 0, 0.0, 1.0, 0, NULL, 1, 0.0, 1},
    [S_WD] = {"train.weight_decay", NULL, ST_NUM, 0, 0, 0.0, 100.0, 0, NULL, 1, 0.1, 1},
    [S_BETA1] = {"train.beta1", NULL, ST_NUM, 0, 0, 0.0, 0.999999, 0, NULL, 1, 0.9, 1},
    [S_BETA2] = {"train.beta2", NULL, ST_NUM, 0, 0, 0.0, 0.999999999, 0, NULL, 1, 0.95, 1},
    [S_EPS] = {"train.eps", NULL, ST_NUM, 0, 0, 0.0, 1.0, 1, NULL, 1, 1e-8, 1},
    [S_CLIP] = {"train.clip", NULL, ST_NUM, 0, 0, 0.0, 1e30, 0, NULL, 1, 1.0, 1},
    [S_SHARDS] = {"train.shards", NULL, ST_INT, 1, 65536, 0, 0, 0, NULL, 1, 1, 1},
    [S_INIT] = {"train.init", NULL, ST_STR, 0, 0, 0, 0, 0, NULL, 1, 0, 0},
    [S_ACCUM] = {"train.accumulate", NULL, ST_INT, 1, 65536, 0, 0, 0, NULL, 1, 1, 1},
    [S_KD_TEACHER] = {"distill.teacher", NULL, ST_STR, 0, 0, 0, 0, 0, NULL, 1, 0, 0},
    [S_KD_ALPHA] = {"distill.alpha", NULL, ST_NUM, 0, 0, 0.0, 1.0, 0, NULL, 1, 0.5, 1},
    [S_KD_TEMP] = {"distill.temperature", NULL, ST_NUM, 0, 0, 0.0, 1e6, 1, NULL, 1, 1.0, 1},
    [S_VARIANT] = {"dispersion.variant", "dispersion", ST_ENUM, 0, 0, 0, 0, 0, VARIANTS, 1, 0, 1},
    [S_COEFF] = {"dispersion.coeff", NULL, ST_NUM, 0, 0, 0.0, 1e6, 0, NULL, 1, 0.1, 1},
    [S_LOCATION] = {"dispersion.location", NULL, ST_ENUM, 0, 0, 0, 0, 0, LOCATIONS, 1, 0, 1},
    [S_TAU_COS] = {"dispersion.tau_cos", NULL, ST_NUM, 0, 0, 0.0, 1e6, 1, NULL, 1, 1.0, 1},
    [S_TAU_L2] = {"dispersion.tau_l2", NULL, ST_NUM, 0, 0, 0.0, 1e6, 1, NULL, 1, 1.0, 1},
    [S_MAX_TOKENS] = {"dispersion.max_tokens", NULL, ST_INT, 2, 1 << 20, 0, 0, 0, NULL, 1, 256, 1},
    /* The tracking schedule knobs and hist_bins are fixed per study: a study file has one
     * /tracking/step axis and one histogram width. */
    [S_LOG_POINTS] = {"tracking.log_points", NULL, ST_INT, 2, LMD_SPEC_MAX_TRACK, 0, 0, 0, NULL, 0,
                      0, 0},
    [S_EVERY] = {"tracking.every", NULL, ST_INT, 1, I64MAX, 0, 0, 0, NULL, 0, 0, 0},
    [S_EVAL_SEQS] = {"tracking.eval_sequences", NULL, ST_INT, 1, 1000000, 0, 0, 0, NULL, 1, 16, 1},
    [S_EVAL_SEQ_LEN] = {"tracking.eval_seq_len", NULL, ST_INT, 2, 1 << 20, 0, 0, 0, NULL, 1, 0, 0},
    [S_HIST_BINS] = {"tracking.hist_bins", NULL, ST_INT, 2, 100000, 0, 0, 0, NULL, 0, 128, 1},
    [S_SAVE_CK] = {"tracking.save_checkpoints", NULL, ST_BOOL, 0, 0, 0, 0, 0, NULL, 0, 0, 1},
    [S_RANKS] = {"resources.ranks_per_model", NULL, ST_INT, 1, 65536, 0, 0, 0, NULL, 0, 1, 1},
    [S_THREADS] = {"resources.threads_per_rank", NULL, ST_INT, 1, 4096, 0, 0, 0, NULL, 0, 1, 1},
};

/* A parsed value; src is the YAML node it came from (NULL for a default). */
typedef struct {
    int set;
    int64_t i;     /* ST_INT, ST_BOOL, ST_ENUM (index into choices) */
    double d;      /* ST_NUM */
    const char *s; /* ST_STR, ST_ENUM (the choice); points into the tree */
    const ynode *src;
} sval;

static const char *last_component(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

static int find_dotted(const char *name) {
    for (int i = 0; i < N_SETTINGS; i++)
        if (!strcmp(DEFS[i].name, name)) return i;
    return -1;
}

const char *const *lmd_spec_grid_names(void) {
    static const char *names[N_SETTINGS + 1];
    int k = 0;
    for (int i = 0; i < N_SETTINGS; i++)
        if (DEFS[i].gridable) names[k++] = DEFS[i].name;
    names[k] = NULL;
    return names;
}

/* Appends " (did you mean 'x'?)" when some candidate is close to key. */
static void suggest(char *out, size_t n, const char *key, const char *const *cands, int n_cands) {
    int best = 1000;
    const char *bs = NULL;
    size_t kl = strlen(key);
    for (int i = 0; i < n_cands; i++) {
        int d = edit_distance(key, cands[i]);
        /* an abbreviation ("angular" for "angular_spread") is as good as a typo */
        if (kl >= 3 && !strncmp(cands[i], key, kl)) d = 1;
        if (d < best) {
            best = d;
            bs = cands[i];
        }
    }
    int limit = (int)strlen(key) / 2;
    if (limit < 2) limit = 2;
    if (bs && best <= limit)
        snprintf(out, n, "; did you mean '%s'?", bs);
    else
        out[0] = '\0';
}

static void fmt_range(char *buf, size_t n, const sdef *d) {
    char lo[32], hi[32];
    if (d->type == ST_INT) {
        snprintf(lo, sizeof lo, "%lld", (long long)d->ilo);
        snprintf(hi, sizeof hi, "%lld", (long long)d->ihi);
        if (d->ihi == I64MAX)
            snprintf(buf, n, "an integer >= %s", lo);
        else
            snprintf(buf, n, "an integer in [%s, %s]", lo, hi);
    } else {
        fmt_num(lo, sizeof lo, d->dlo);
        fmt_num(hi, sizeof hi, d->dhi);
        snprintf(buf, n, "a number in %s%s, %s]", d->lo_open ? "(" : "[", lo, hi);
    }
}

/* Parses scalar node n as setting d into *out; reports under `key` (as the user wrote it). */
static int parse_value(pctx *c, int si, const char *key, const ynode *n, sval *out) {
    const sdef *d = &DEFS[si];
    static const char *const tname[] = {"an integer", "a number", "a string", "true or false",
                                        "a string"};
    if (!n || n->kind != YN_SCALAR || n->val[0] == '\0') {
        perr(c, n, key, "expected %s, got %s", tname[d->type], kind_name(n));
        return -1;
    }
    const char *v = n->val;
    memset(out, 0, sizeof *out);
    out->src = n;
    if (d->type == ST_INT || d->type == ST_NUM || d->type == ST_BOOL) {
        if (!n->plain) {
            perr(c, n, key, "expected %s, got a quoted string \"%s\"", tname[d->type], v);
            return -1;
        }
    }
    char range[96];
    if (d == &DEFS[S_RANKS] && n->plain && !strcmp(v, "auto")) {
        out->i = 0; /* ranks_per_model: auto (lmd_spec.ranks_per_model 0) */
        out->set = 1;
        return 0;
    }
    if (d->type == ST_INT) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || *end) {
            /* also accept integral numbers written as 2e6, within range */
            errno = 0;
            double y = strtod(v, &end);
            if (*end || errno || !isfinite(y) || y != floor(y) || fabs(y) > 9.0e18) {
                perr(c, n, key, "expected an integer, got '%s'", v);
                return -1;
            }
            x = (long long)y;
        }
        if (x < d->ilo || x > d->ihi) {
            fmt_range(range, sizeof range, d);
            perr(c, n, key, "value %s is out of range: expected %s", v, range);
            return -1;
        }
        out->i = x;
    } else if (d->type == ST_NUM) {
        char *end;
        errno = 0;
        double y = strtod(v, &end);
        if (*end || end == v || !isfinite(y)) {
            perr(c, n, key, "expected a number, got '%s'", v);
            return -1;
        }
        /* strtod flags underflow with ERANGE (result 0 or subnormal): 1e-400 is not 0 */
        if ((errno == ERANGE || (y != 0 && !isnormal(y)))) {
            perr(c, n, key,
                 "value %s is too small: it underflows to %g (the smallest normal "
                 "double is %g); write 0 if you mean 0",
                 v, y, DBL_MIN);
            return -1;
        }
        if (y == 0) y = 0.0; /* -0.0 and 0.0 are one setting: one value, one cell id */
        if (y < d->dlo || y > d->dhi || (d->lo_open && y == d->dlo)) {
            fmt_range(range, sizeof range, d);
            perr(c, n, key, "value %s is out of range: expected %s", v, range);
            return -1;
        }
        out->d = y;
    } else if (d->type == ST_BOOL) {
        if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes"))
            out->i = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no"))
            out->i = 0;
        else {
            perr(c, n, key, "expected true or false, got '%s'", v);
            return -1;
        }
    } else if (d->type == ST_STR) {
        out->s = v;
    } else { /* ST_ENUM */
        int k = 0, found = -1;
        for (; d->choices[k]; k++)
            if (!strcmp(v, d->choices[k])) found = k;
        if (found < 0) {
            char valid[256] = "", sug[96];
            for (int j = 0; d->choices[j]; j++) {
                if (j) strncat(valid, ", ", sizeof valid - strlen(valid) - 1);
                strncat(valid, d->choices[j], sizeof valid - strlen(valid) - 1);
            }
            suggest(sug, sizeof sug, v, d->choices, k);
            if (si == S_VARIANT)
                perr(c, n, key, "unknown dispersion variant '%s' (valid: %s)%s", v, valid, sug);
            else
                perr(c, n, key, "unknown value '%s' (valid: %s)%s", v, valid, sug);
            return -1;
        }
        out->i = found;
        out->s = d->choices[found];
    }
    out->set = 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Sections
 * ------------------------------------------------------------------------------------------ */

typedef enum { TRACK_LOG = 0, TRACK_LIST, TRACK_EVERY } track_mode;

/* One member of a product axis: a setting and its list of values. */
typedef struct {
    int setting;
    const ynode *key;
    const char *key_text; /* as written (e.g. "mlp_dim") */
    sval *vals;
    int n;
} axis_member;

typedef struct {
    axis_member *m;
    int n_members;
    int len;
    const ynode *node;
} paxis;

/* Everything parsed from the document before expansion. */
typedef struct {
    pctx *c;
    const ynode *root;
    sval base[N_SETTINGS];
    const ynode *section[N_SETTINGS]; /* section mapping of each setting (error fallback) */
    const char *name;
    const ynode *name_node;
    track_mode track;
    const ynode *track_node; /* the checkpoints: value */
    const ynode *track_list; /* TRACK_LIST: the sequence */
    int track_explicit;      /* checkpoints: was given */
    paxis *axes;
    int n_axes;
    int axis_of[N_SETTINGS];          /* axis index varying each setting, -1 if fixed */
    const char *axis_key[N_SETTINGS]; /* the grid:/zip: key that varies it */
    int axis_line[N_SETTINGS];
    const ynode *grid_node;
    const ynode *slurm_node;
    lmd_teacher_ref kd_ref;       /* distill.teacher: {cell: ...} or {id: ...} (spec_kd.h) */
    const ynode *eval_tasks_node; /* tracking.eval_tasks: the sequence (mceval.h) */
} spec_doc;

static const ynode *map_get(const ynode *map, const char *key) {
    if (!map || map->kind != YN_MAP) return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2)
        if (!strcmp(map->kids[i]->val, key)) return map->kids[i + 1];
    return NULL;
}

static int resolve_axis_name(pctx *c, const ynode *k, const char *where);

/* distill.teacher: {cell: {SETTING: VALUE, ...}} or {id: ID}, kept as the lines of
 * lmd_cell_settings() a teacher must have (matched by spec_kd.c once the cells exist). */
static void parse_teacher_ref(spec_doc *doc, const ynode *v) {
    pctx *c = doc->c;
    lmd_teacher_ref *r = &doc->kd_ref;
    const char *key = "distill.teacher";
    r->line = v->line, r->col = v->col;
    const ynode *k = v->n == 2 ? v->kids[0] : NULL, *val = v->n == 2 ? v->kids[1] : NULL;
    if (!k || (strcmp(k->val, "cell") && strcmp(k->val, "id"))) {
        perr(c, k ? k : v, key,
             "expected a model (a string), {cell: {SETTING: VALUE, ...}} or "
             "{id: CELL-ID}");
        return;
    }
    if (!strcmp(k->val, "id")) {
        if (val->kind != YN_SCALAR || !val->val[0])
            perr(c, val, "distill.teacher.id", "expected a cell id (or its unique prefix), got %s",
                 kind_name(val));
        else
            r->kind = 2, r->id = lmd_strdup(val->val);
        return;
    }
    if (val->kind != YN_MAP || val->n == 0) {
        perr(c, val, "distill.teacher.cell",
             "expected a mapping of settings to values, e.g. "
             "{mlp_dim: 512, dispersion: off}, got %s",
             kind_name(val));
        return;
    }
    r->kind = 1;
    r->lines = lmd_calloc(val->n / 2 + 1, sizeof *r->lines);
    for (size_t i = 0; i + 1 < val->n; i += 2) {
        const ynode *kk = val->kids[i], *vv = val->kids[i + 1];
        int si = resolve_axis_name(c, kk, "distill.teacher.cell");
        if (si < 0) continue;
        const sdef *d = &DEFS[si];
        /* settings that appear as such in lmd_cell_settings() */
        if (d->type == ST_STR || d->type == ST_BOOL || si == S_TOKENS || si == S_KD_ALPHA ||
            si == S_KD_TEMP || si == S_EVAL_SEQS || si == S_EVAL_SEQ_LEN) {
            perr(c, kk, "distill.teacher.cell",
                 "'%s' cannot select a teacher cell (use model, "
                 "train, dispersion or data settings, seed, or {id: CELL-ID})",
                 d->name);
            continue;
        }
        sval tmp;
        if (parse_value(c, si, "distill.teacher.cell", vv, &tmp)) continue;
        char x[64];
        if (d->type == ST_NUM)
            fmt_num(x, sizeof x, tmp.d);
        else if (d->type == ST_INT)
            snprintf(x, sizeof x, "%lld", (long long)tmp.i);
        else
            snprintf(x, sizeof x, "%s", tmp.s);
        if (si == S_SEED) r->has_seed = 1;
        sbuf b = {0};
        sb_addf(&b, "%s=%s", si == S_SEED ? "train.seed" : d->name, x);
        r->lines[r->n_lines++] = b.p;
    }
}

/* Parses `section:` (a mapping of settings "section.key"). */
static void parse_section(spec_doc *doc, const char *section, const ynode *map) {
    pctx *c = doc->c;
    if (map->kind != YN_MAP) {
        perr(c, map, section, "expected a mapping, got %s", kind_name(map));
        return;
    }
    size_t sl = strlen(section);
    for (int j = 0; j < N_SETTINGS; j++)
        if (!doc->section[j] && !strncmp(DEFS[j].name, section, sl) && DEFS[j].name[sl] == '.')
            doc->section[j] = map;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const ynode *k = map->kids[i], *v = map->kids[i + 1];
        char dotted[160];
        snprintf(dotted, sizeof dotted, "%s.%s", section, k->val);
        if (!strcmp(section, "tracking") && !strcmp(k->val, "checkpoints")) {
            if (doc->track_explicit) {
                perr(c, k, dotted, "duplicate key");
                continue;
            }
            doc->track_explicit = 1;
            doc->track_node = v;
            if (v->kind == YN_SCALAR && !strcmp(v->val, "log")) {
                doc->track = TRACK_LOG;
            } else if (v->kind == YN_SCALAR && !strcmp(v->val, "every")) {
                doc->track = TRACK_EVERY;
            } else if (v->kind == YN_SEQ) {
                doc->track = TRACK_LIST;
                doc->track_list = v;
                if (v->n == 0) perr(c, v, dotted, "the list of checkpoint steps is empty");
                if (v->n > LMD_SPEC_MAX_TRACK)
                    perr(c, v, dotted, "more than %d checkpoint steps", LMD_SPEC_MAX_TRACK);
                for (size_t j = 0; j < v->n; j++) {
                    sval tmp;
                    parse_value(c, S_STEPS, dotted, v->kids[j], &tmp);
                }
            } else if (v->kind == YN_MAP) {
                /* checkpoints: {every: N} */
                const ynode *ev = map_get(v, "every");
                if (!ev || v->n != 2) {
                    perr(c, v, dotted,
                         "expected 'log', 'every', a list of steps or {every: N}, got a mapping "
                         "with other keys");
                } else {
                    doc->track = TRACK_EVERY;
                    if (doc->base[S_EVERY].set)
                        perr(c, ev, "tracking.every", "duplicate key");
                    else
                        parse_value(c, S_EVERY, "tracking.checkpoints.every", ev,
                                    &doc->base[S_EVERY]);
                }
            } else {
                const char *cands[] = {"log", "every"};
                char sug[96] = "";
                if (v->kind == YN_SCALAR) suggest(sug, sizeof sug, v->val, cands, 2);
                perr(c, v, dotted,
                     "expected 'log', 'every', a list of steps or {every: N}, got %s%s%s%s",
                     v->kind == YN_SCALAR ? "'" : "", v->kind == YN_SCALAR ? v->val : kind_name(v),
                     v->kind == YN_SCALAR ? "'" : "", sug);
            }
            continue;
        }
        if (!strcmp(dotted, "distill.teacher") && v->kind == YN_MAP) {
            if (doc->kd_ref.kind || doc->base[S_KD_TEACHER].set)
                perr(c, k, dotted, "duplicate key");
            else
                parse_teacher_ref(doc, v);
            continue;
        }
        if (!strcmp(section, "tracking") && !strcmp(k->val, "eval_tasks")) {
            if (doc->eval_tasks_node)
                perr(c, k, dotted, "duplicate key");
            else if (v->kind != YN_SEQ || v->n == 0)
                perr(c, v, dotted,
                     "expected a non-empty list of task files (JSON Lines of "
                     "{context, choices, gold})");
            else
                doc->eval_tasks_node = v;
            continue;
        }
        int si = find_dotted(dotted);
        if (si < 0) {
            const char *cands[N_SETTINGS + 1];
            int nc = 0;
            for (int j = 0; j < N_SETTINGS; j++)
                if (!strncmp(DEFS[j].name, section, sl) && DEFS[j].name[sl] == '.')
                    cands[nc++] = DEFS[j].name + sl + 1;
            if (!strcmp(section, "tracking")) cands[nc++] = "checkpoints";
            if (!strcmp(section, "tracking")) cands[nc++] = "eval_tasks";
            char sug[96];
            suggest(sug, sizeof sug, k->val, cands, nc);
            perr(c, k, dotted, "unknown key%s", sug);
            continue;
        }
        if (doc->base[si].set) {
            perr(c, k, dotted, "duplicate key");
            continue;
        }
        parse_value(c, si, dotted, v, &doc->base[si]);
    }
}

/* Resolves a grid:/zip: key to a setting: dotted name, its last component, or an alias. */
static int resolve_axis_name(pctx *c, const ynode *k, const char *where) {
    int si = find_dotted(k->val);
    if (si < 0) {
        int matches[4], nm = 0;
        for (int j = 0; j < N_SETTINGS && nm < 4; j++)
            if (!strcmp(last_component(DEFS[j].name), k->val) ||
                (DEFS[j].alias && !strcmp(DEFS[j].alias, k->val)))
                matches[nm++] = j;
        if (nm > 1) {
            perr(c, k, where, "'%s' is ambiguous: write '%s' or '%s'", k->val,
                 DEFS[matches[0]].name, DEFS[matches[1]].name);
            return -1;
        }
        if (nm == 1) si = matches[0];
    }
    if (si < 0) {
        const char *cands[3 * N_SETTINGS];
        int nc = 0;
        for (int j = 0; j < N_SETTINGS; j++) {
            if (!DEFS[j].gridable) continue;
            cands[nc++] = DEFS[j].name;
            cands[nc++] = last_component(DEFS[j].name);
            if (DEFS[j].alias) cands[nc++] = DEFS[j].alias;
        }
        char sug[96];
        suggest(sug, sizeof sug, k->val, cands, nc);
        perr(c, k, where, "unknown setting '%s' for a grid axis%s", k->val, sug);
        return -1;
    }
    if (!DEFS[si].gridable) {
        perr(c, k, where,
             "'%s' cannot vary across cells (it is fixed for a whole study); set it in its "
             "section instead",
             DEFS[si].name);
        return -1;
    }
    return si;
}

/* Parses one `axis: [values]` pair into *m. */
static int parse_axis_member(spec_doc *doc, const ynode *k, const ynode *v, const char *where,
                             axis_member *m) {
    pctx *c = doc->c;
    char key[200];
    snprintf(key, sizeof key, "%s.%s", where, k->val);
    int si = resolve_axis_name(c, k, key);
    if (si < 0) return -1;
    if (v->kind != YN_SEQ) {
        perr(c, v, key, "expected a list of values, got %s", kind_name(v));
        return -1;
    }
    if (v->n == 0) {
        perr(c, v, key, "empty grid axis: give at least one value");
        return -1;
    }
    m->setting = si;
    m->key = k;
    m->key_text = k->val;
    m->n = (int)v->n;
    m->vals = lmd_calloc(v->n, sizeof *m->vals);
    int bad = 0;
    for (size_t j = 0; j < v->n; j++)
        if (parse_value(c, si, key, v->kids[j], &m->vals[j])) bad = 1;
    return bad ? -1 : 0;
}

/* Registers the setting of a new axis member; rejects a setting that is varied twice or that
 * is also fixed in its section (which of the two would win is a trap). */
static int claim_setting(spec_doc *doc, const axis_member *m, int axis, const char *key) {
    pctx *c = doc->c;
    int si = m->setting;
    if (doc->axis_of[si] >= 0) {
        perr(c, m->key, key, "'%s' is already a grid axis (as '%s' at line %d)", DEFS[si].name,
             doc->axis_key[si], doc->axis_line[si]);
        return -1;
    }
    if (doc->base[si].set) {
        perr(c, m->key, key,
             "'%s' is both a grid axis and fixed at line %d; a setting is either fixed or "
             "varied",
             DEFS[si].name, doc->base[si].src->line);
        return -1;
    }
    doc->axis_of[si] = axis;
    doc->axis_key[si] = m->key_text;
    doc->axis_line[si] = m->key->line;
    return 0;
}

static void add_axis(spec_doc *doc, paxis ax) {
    paxis *na = realloc(doc->axes, (size_t)(doc->n_axes + 1) * sizeof *na);
    if (!na) lmd_die("out of memory");
    doc->axes = na;
    doc->axes[doc->n_axes++] = ax;
}

static void parse_grid(spec_doc *doc, const ynode *g) {
    pctx *c = doc->c;
    doc->grid_node = g;
    if (g->kind != YN_MAP) {
        perr(c, g, "grid", "expected a mapping of setting -> list of values, got %s", kind_name(g));
        return;
    }
    for (size_t i = 0; i + 1 < g->n; i += 2) {
        paxis ax = {0};
        ax.m = lmd_calloc(1, sizeof *ax.m);
        ax.n_members = 1;
        ax.node = g->kids[i];
        char key[200];
        snprintf(key, sizeof key, "grid.%s", g->kids[i]->val);
        if (parse_axis_member(doc, g->kids[i], g->kids[i + 1], "grid", ax.m) ||
            claim_setting(doc, ax.m, doc->n_axes, key)) {
            free(ax.m->vals);
            free(ax.m);
            continue;
        }
        ax.len = ax.m->n;
        add_axis(doc, ax);
    }
}

static void parse_zip(spec_doc *doc, const ynode *z) {
    pctx *c = doc->c;
    if (z->kind != YN_SEQ) {
        perr(c, z, "zip",
             "expected a list of mappings (groups of axes that advance together), "
             "got %s",
             kind_name(z));
        return;
    }
    for (size_t g = 0; g < z->n; g++) {
        const ynode *grp = z->kids[g];
        char where[32];
        snprintf(where, sizeof where, "zip[%zu]", g);
        if (grp->kind != YN_MAP || grp->n == 0) {
            perr(c, grp, where, "expected a mapping of setting -> list of values, got %s",
                 grp->kind == YN_MAP ? "an empty mapping" : kind_name(grp));
            continue;
        }
        paxis ax = {0};
        ax.m = lmd_calloc(grp->n / 2, sizeof *ax.m);
        ax.node = grp;
        int bad = 0;
        for (size_t i = 0; i + 1 < grp->n; i += 2) {
            axis_member *m = &ax.m[ax.n_members];
            char key[200];
            snprintf(key, sizeof key, "%s.%s", where, grp->kids[i]->val);
            if (parse_axis_member(doc, grp->kids[i], grp->kids[i + 1], where, m)) {
                free(m->vals);
                memset(m, 0, sizeof *m);
                bad = 1;
                continue;
            }
            ax.n_members++;
            if (claim_setting(doc, m, doc->n_axes, key)) {
                bad = 1;
                continue;
            }
            if (ax.n_members > 1 && m->n != ax.m[0].n) {
                perr(c, grp->kids[i + 1], key,
                     "zip length mismatch: '%s' has %d values but '%s' has %d; the axes of a "
                     "zip group advance together",
                     m->key_text, m->n, ax.m[0].key_text, ax.m[0].n);
                bad = 1;
            }
        }
        if (bad) {
            /* Settings claimed by this group stay claimed: errors are being reported anyway. */
            for (int j = 0; j < ax.n_members; j++) free(ax.m[j].vals);
            free(ax.m);
            continue;
        }
        ax.len = ax.m[0].n;
        add_axis(doc, ax);
    }
}

static void parse_resources(spec_doc *doc, const ynode *r) { parse_section(doc, "resources", r); }

static void parse_slurm(spec_doc *doc, const ynode *s, lmd_spec *out) {
    pctx *c = doc->c;
    if (s->kind != YN_MAP) {
        perr(c, s, "slurm", "expected a mapping, got %s", kind_name(s));
        return;
    }
    if (s->n / 2 > 256) {
        perr(c, s, "slurm", "more than 256 entries");
        return;
    }
    out->slurm = lmd_calloc(s->n / 2 + 1, sizeof *out->slurm);
    for (size_t i = 0; i + 1 < s->n; i += 2) {
        const ynode *k = s->kids[i], *v = s->kids[i + 1];
        char key[160];
        snprintf(key, sizeof key, "slurm.%s", k->val);
        int dup = 0;
        for (size_t j = 0; j < i; j += 2)
            if (!strcmp(s->kids[j]->val, k->val)) dup = 1;
        if (dup) {
            perr(c, k, key, "duplicate key");
            continue;
        }
        lmd_slurm_kv kv = {0};
        kv.line = v->line;
        kv.column = v->col;
        if (v->kind == YN_SCALAR) {
            if (v->val[0] == '\0') {
                perr(c, v, key, "expected a string, an integer or a list of them, got %s",
                     kind_name(v));
                continue;
            }
            kv.value = lmd_strdup(v->val);
        } else if (v->kind == YN_SEQ) {
            int bad = 0;
            for (size_t j = 0; j < v->n; j++)
                if (v->kids[j]->kind != YN_SCALAR) {
                    perr(c, v->kids[j], key, "list items must be strings or integers, got %s",
                         kind_name(v->kids[j]));
                    bad = 1;
                }
            if (bad) continue;
            kv.items = lmd_calloc(v->n + 1, sizeof *kv.items);
            for (size_t j = 0; j < v->n; j++) kv.items[j] = lmd_strdup(v->kids[j]->val);
            kv.n_items = (int)v->n;
        } else {
            perr(c, v, key, "expected a string, an integer or a list of them, got %s",
                 kind_name(v));
            continue;
        }
        kv.key = lmd_strdup(k->val);
        out->slurm[out->n_slurm++] = kv;
    }
}

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

static const char *const TOP_KEYS[] = {"name",  "seed",       "data",     "model",
                                       "train", "dispersion", "tracking", "grid",
                                       "zip",   "resources",  "slurm",    "distill"};
#define N_TOP_KEYS ((int)(sizeof TOP_KEYS / sizeof TOP_KEYS[0]))

static void parse_document(spec_doc *doc, const ynode *root, lmd_spec *out) {
    pctx *c = doc->c;
    if (!root || (root->kind == YN_SCALAR && root->val[0] == '\0')) {
        perr(c, root, NULL, "the spec is empty");
        return;
    }
    if (root->kind != YN_MAP) {
        perr(c, root, NULL,
             "a spec is a mapping of sections (name, data, model, train, grid, "
             "...), got %s",
             kind_name(root));
        return;
    }
    int seen[N_TOP_KEYS] = {0};
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const ynode *k = root->kids[i], *v = root->kids[i + 1];
        int t = -1;
        for (int j = 0; j < N_TOP_KEYS; j++)
            if (!strcmp(k->val, TOP_KEYS[j])) t = j;
        if (t < 0) {
            char sug[96];
            suggest(sug, sizeof sug, k->val, TOP_KEYS, N_TOP_KEYS);
            perr(c, k, k->val, "unknown key%s", sug);
            continue;
        }
        if (seen[t]++) {
            perr(c, k, k->val, "duplicate key");
            continue;
        }
        const char *key = TOP_KEYS[t];
        if (!strcmp(key, "name")) {
            if (v->kind != YN_SCALAR || v->val[0] == '\0') {
                perr(c, v, "name", "expected a string, got %s", kind_name(v));
            } else if (!valid_name(v->val)) {
                perr(c, v, "name", "'%s' must match [A-Za-z0-9_.-]+ (it names directories)",
                     v->val);
            } else if (!strcmp(v->val, ".") || !strcmp(v->val, "..")) {
                /* results/<name> would be results/ itself or the current directory */
                perr(c, v, "name",
                     "'%s' must be a directory name, not '.' or '..' (the default "
                     "output directory is results/<name>)",
                     v->val);
            } else {
                doc->name = v->val;
                doc->name_node = v;
            }
        } else if (!strcmp(key, "seed")) {
            parse_value(c, S_SEED, "seed", v, &doc->base[S_SEED]);
        } else if (!strcmp(key, "grid")) {
            parse_grid(doc, v);
        } else if (!strcmp(key, "zip")) {
            parse_zip(doc, v);
        } else if (!strcmp(key, "resources")) {
            parse_resources(doc, v);
        } else if (!strcmp(key, "slurm")) {
            doc->slurm_node = v;
            parse_slurm(doc, v, out);
        } else {
            parse_section(doc, key, v);
        }
    }
    if (!doc->name && !seen[0]) perr(c, root, "name", "missing required key (the study's name)");
    if (!doc->grid_node && c->n_errors == 0)
        perr(c, root, "grid", "missing: a spec needs a grid (at least the mlp_dim axis)");
}

/* ------------------------------------------------------------------------------------------
 * Tracking schedules
 * ------------------------------------------------------------------------------------------ */

static int64_t *i64_alloc(size_t n) { return lmd_calloc(n ? n : 1, sizeof(int64_t)); }

int64_t lmd_track_first(int64_t steps, double warmup_ratio) {
    /* the update of step 0 uses lr(0) = 0 when there is a warmup (gpt_lr_at), so the weights
     * after step 1 are the initialization's, bit for bit: nothing to measure there */
    return (int64_t)floor(warmup_ratio * (double)steps) >= 1 ? 2 : 1;
}

int lmd_track_log(int64_t steps, int64_t first, int64_t **out) {
    int64_t *v = i64_alloc(66);
    int n = 0;
    v[n++] = 0;
    for (int64_t p = 1; p < steps; p *= 2)
        if (p >= first) v[n++] = p;
    if (steps > 0) v[n++] = steps;
    *out = v;
    return n;
}

int lmd_track_log_points(int64_t steps, int points, int64_t first, int64_t **out) {
    if (first < 1) first = 1;
    if (first > steps) first = steps > 0 ? steps : 1;
    if (points < 2) points = 2;
    if ((int64_t)points > steps - first + 2) points = (int)(steps - first + 2);
    if (points < 1) points = 1;
    int64_t *v = i64_alloc((size_t)points);
    int n = 0;
    v[n++] = 0;
    int k = points - 1; /* points in [first, steps] */
    int64_t prev = first - 1;
    for (int i = 0; i < k; i++) {
        /* geometric target first * (steps/first)^(i/(k-1)); nudged up to stay distinct and
         * down to leave room for the remaining points, so exactly `points` distinct steps
         * come out */
        double t =
            k == 1 ? (double)steps
                   : (double)first * exp(log((double)steps / (double)first) * i / (double)(k - 1));
        int64_t s = (int64_t)llround(t);
        if (s <= prev) s = prev + 1;
        if (s > steps - (k - 1 - i)) s = steps - (k - 1 - i);
        v[n++] = s;
        prev = s;
    }
    *out = v;
    return n;
}

int lmd_track_every(int64_t steps, int64_t every, int64_t first, int64_t **out) {
    if (every < 1) every = 1;
    int64_t cnt = steps / every + 2;
    if (cnt > LMD_SPEC_MAX_TRACK + 2) cnt = LMD_SPEC_MAX_TRACK + 2;
    int64_t *v = i64_alloc((size_t)cnt);
    int n = 0;
    for (int64_t s = 0; s <= steps && n < cnt - 1; s += every)
        if (s == 0 || s >= first) v[n++] = s;
    if (v[n - 1] != steps) v[n++] = steps;
    *out = v;
    return n;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------------------------
 * Cells
 * ------------------------------------------------------------------------------------------ */

static char *path_join(const char *dir, const char *p) {
    if (p[0] == '/') return lmd_strdup(p);
    sbuf b = {0};
    sb_addf(&b, "%s/%s", dir, p);
    return b.p;
}

char *lmd_cell_settings(const lmd_cell *c) {
    sbuf b = {0};
    char x[40];
    const gpt_config *g = &c->cfg;
    const lmd_train_opts *t = &c->train;
    sb_addf(&b, "lmdisp-cell-settings 1\n");
    sb_addf(&b, "model.vocab=%d\nmodel.n_ctx=%d\nmodel.n_layer=%d\nmodel.n_embd=%d\n",
            g->vocab_size, g->n_ctx, g->n_layer, g->n_embd);
    sb_addf(&b, "model.n_head=%d\nmodel.mlp_dim=%d\n", g->n_head, g->mlp_dim);
    sb_addf(&b, "train.seed=%llu\ntrain.steps=%lld\ntrain.batch=%d\ntrain.seq=%d\n",
            (unsigned long long)t->seed, (long long)t->steps, t->B, t->T);
    fmt_num(x, sizeof x, t->lr);
    sb_addf(&b, "train.lr=%s\ntrain.schedule=cosine\n", x);
    fmt_num(x, sizeof x, t->warmup_ratio);
    sb_addf(&b, "train.warmup_ratio=%s\n", x);
    fmt_num(x, sizeof x, t->min_lr_ratio);
    sb_addf(&b, "train.min_lr_ratio=%s\n", x);
    fmt_num(x, sizeof x, t->adamw.weight_decay);
    sb_addf(&b, "train.weight_decay=%s\n", x);
    fmt_num(x, sizeof x, t->adamw.beta1);
    sb_addf(&b, "train.beta1=%s\n", x);
    fmt_num(x, sizeof x, t->adamw.beta2);
    sb_addf(&b, "train.beta2=%s\n", x);
    fmt_num(x, sizeof x, t->adamw.eps);
    sb_addf(&b, "train.eps=%s\n", x);
    fmt_num(x, sizeof x, t->clip);
    sb_addf(&b, "train.clip=%s\n", x);
    /* written only when set, so the ids of cells without it are those of earlier versions */
    if (t->shards != 1) sb_addf(&b, "train.shards=%d\n", t->shards);
    if (t->accumulate != 1) sb_addf(&b, "train.accumulate=%d\n", t->accumulate);
    if (c->init) sb_addf(&b, "train.init=%s\n", c->init);
    sb_addf(&b, "dispersion.variant=%s\n", lmd_disp_variant_name(t->disp.variant));
    if (t->disp.variant != DISP_OFF) {
        fmt_num(x, sizeof x, t->disp.coeff);
        sb_addf(&b, "dispersion.coeff=%s\n", x);
        sb_addf(&b, "dispersion.location=%s\n", lmd_disp_location_name(t->disp.location));
        fmt_num(x, sizeof x, t->disp.tau_cos);
        sb_addf(&b, "dispersion.tau_cos=%s\n", x);
        fmt_num(x, sizeof x, t->disp.tau_l2);
        sb_addf(&b, "dispersion.tau_l2=%s\n", x);
        sb_addf(&b, "dispersion.max_tokens=%d\n", t->disp.max_tokens);
    }
    if (c->kd.on) {
        /* a teacher cell by its id (so a retrained teacher renames its students); written
         * after linking (spec_kd.c), before it the line is left out */
        if (c->kd.model)
            sb_addf(&b, "distill.teacher=%s\n", c->kd.model);
        else if (c->kd.teacher >= 0 && c->kd.teacher_id[0])
            sb_addf(&b, "distill.teacher=cell:%s\n", c->kd.teacher_id);
        fmt_num(x, sizeof x, c->kd.alpha);
        sb_addf(&b, "distill.alpha=%s\n", x);
        fmt_num(x, sizeof x, c->kd.temperature);
        sb_addf(&b, "distill.temperature=%s\n", x);
    }
    const lmd_data_settings *d = &c->data;
    sb_addf(&b, "data.source=%s\n", SOURCES[d->source]);
    if (d->source == LMD_DATA_SYNTHETIC)
        sb_addf(&b, "data.synthetic_seed=%llu\ndata.synthetic_tokens=%lld\n",
                (unsigned long long)d->synthetic_seed, (long long)d->synthetic_tokens);
    else
        sb_addf(&b, "data.path=%s\n", d->resolved);
    if (d->tokenizer_resolved) sb_addf(&b, "data.tokenizer=%s\n", d->tokenizer_resolved);
    sb_addf(&b, "data.vocab=%d\n", d->vocab);
    fmt_num(x, sizeof x, d->val_fraction);
    sb_addf(&b, "data.val_fraction=%s\n", x);
    sb_addf(&b, "tracking.steps=");
    for (int i = 0; i < c->tracking.n_steps; i++)
        sb_addf(&b, "%s%lld", i ? "," : "", (long long)c->tracking.steps[i]);
    sb_addf(&b, "\ntracking.eval_sequences=%d\ntracking.eval_seq_len=%d\ntracking.hist_bins=%d\n",
            c->tracking.eval_sequences, c->tracking.eval_seq_len, c->tracking.hist_bins);
    return b.p;
}

int lmd_cell_load_data(const lmd_cell *c, lmd_tokens *out, lmd_err *err) {
    const lmd_data_settings *d = &c->data;
    if (d->source == LMD_DATA_SYNTHETIC) {
        lmd_synth_opts o = lmd_synth_default();
        o.seed = d->synthetic_seed;
        o.n_tokens = (size_t)d->synthetic_tokens;
        o.vocab_size = d->vocab;
        return lmd_data_synthetic(out, &o, err);
    }
    if (d->source == LMD_DATA_TEXT && d->tokenizer_resolved) {
        size_t n = strlen(d->tokenizer_resolved) + strlen(d->resolved) + 8;
        char *src = malloc(n);
        if (!src) return lmd_errf(err, "out of memory");
        snprintf(src, n, "tok:%s:%s", d->tokenizer_resolved, d->resolved);
        int rc = lmd_datasrc_load(src, d->vocab, out, err);
        free(src);
        return rc;
    }
    if (d->source == LMD_DATA_TEXT) return lmd_data_text(out, d->resolved, err);
    return lmd_data_shards(out, d->resolved, d->vocab, err);
}

/* Expansion state shared by the cells. */
typedef struct {
    spec_doc *doc;
    const char *base_dir;
    char *checked_path; /* last data path found to exist (cells mostly share one) */
    int checked_source;
    char *checked_tok; /* last tokenizer loaded, and its number of ids */
    int checked_tok_vocab;
    char *checked_model[2]; /* last train.init / distill.teacher model probed (as written) */
    char *checked_model_res[2];
    gpt_config checked_model_cfg[2];
    size_t total_track;
} expand_ctx;

/* Where to point an error about setting si in a cell: its value's node, else its section,
 * else the document. */
static const ynode *where(const spec_doc *doc, const sval *v, int si) {
    if (v[si].src) return v[si].src;
    if (doc->section[si]) return doc->section[si];
    return doc->root;
}

/* " (grid point N: a=1, b=x)" describing which axis values produced a cell. */
static void describe_point(const spec_doc *doc, const int *choice, size_t index, char *buf,
                           size_t n) {
    size_t off = (size_t)snprintf(buf, n, " (grid point %zu:", index);
    for (int a = 0; a < doc->n_axes && off < n; a++)
        for (int j = 0; j < doc->axes[a].n_members && off < n; j++) {
            const axis_member *m = &doc->axes[a].m[j];
            off += (size_t)snprintf(buf + off, n - off, "%s %s=%s", (a || j) ? "," : "",
                                    m->key_text, m->vals[choice[a]].src->val);
        }
    if (off < n) snprintf(buf + off, n - off, ")");
}

/* train.init (which 0) or distill.teacher (1): resolved path and shape, cached by spelling. */
static int probe_model(expand_ctx *x, int which, const char *spec, char *res, size_t n,
                       gpt_config *cfg, lmd_err *err) {
    if (!x->checked_model[which] || strcmp(x->checked_model[which], spec)) {
        if (lmd_init_probe(spec, x->base_dir, res, n, cfg, err)) return -1;
        free(x->checked_model[which]);
        free(x->checked_model_res[which]);
        x->checked_model[which] = lmd_strdup(spec);
        x->checked_model_res[which] = lmd_strdup(res);
        x->checked_model_cfg[which] = *cfg;
    }
    snprintf(res, n, "%s", x->checked_model_res[which]);
    *cfg = x->checked_model_cfg[which];
    return 0;
}

#define CERR(si, ...)                                                                              \
    do {                                                                                           \
        char _m[1200];                                                                             \
        snprintf(_m, sizeof _m, __VA_ARGS__);                                                      \
        perr(c, where(doc, v, si), DEFS[si].name, "%s%s", _m, point);                              \
        return -1;                                                                                 \
    } while (0)

/* Resolves the values v of one grid point into *cell and validates what can only be checked
 * with all settings known. Returns 0 or -1 (error reported). */
static int resolve_cell(expand_ctx *x, const sval *v, const int *choice, size_t index,
                        lmd_cell *cell) {
    spec_doc *doc = x->doc;
    pctx *c = doc->c;
    char point[400];
    describe_point(doc, choice, index, point, sizeof point);
    lmd_err e;

    /* data */
    lmd_data_settings *d = &cell->data;
    d->source = (lmd_data_source)v[S_DATA_SOURCE].i;
    lmd_synth_opts sd = lmd_synth_default();
    if (d->source == LMD_DATA_SYNTHETIC) {
        if (v[S_DATA_PATH].set)
            CERR(S_DATA_PATH, "path is only used with source text or shards (source is "
                              "synthetic)");
        if (v[S_DATA_TOKENIZER].set)
            CERR(S_DATA_TOKENIZER, "only used with source text (source is synthetic)");
        d->synthetic_seed = v[S_DATA_SYN_SEED].set ? (uint64_t)v[S_DATA_SYN_SEED].i : sd.seed;
        d->synthetic_tokens =
            v[S_DATA_SYN_TOKENS].set ? v[S_DATA_SYN_TOKENS].i : (int64_t)sd.n_tokens;
        d->vocab = v[S_DATA_VOCAB].set ? (int)v[S_DATA_VOCAB].i : sd.vocab_size;
    } else {
        if (v[S_DATA_SYN_SEED].set)
            CERR(S_DATA_SYN_SEED, "only used with source synthetic (source is %s)",
                 SOURCES[d->source]);
        if (v[S_DATA_SYN_TOKENS].set)
            CERR(S_DATA_SYN_TOKENS, "only used with source synthetic (source is %s)",
                 SOURCES[d->source]);
        if (!v[S_DATA_PATH].set)
            CERR(S_DATA_SOURCE, "source %s needs data.path (relative to the spec's directory)",
                 SOURCES[d->source]);
        if (v[S_DATA_TOKENIZER].set && d->source != LMD_DATA_TEXT)
            CERR(S_DATA_TOKENIZER, "only used with source text (source is %s)", SOURCES[d->source]);
        if (d->source == LMD_DATA_TEXT && v[S_DATA_TOKENIZER].set) {
            d->tokenizer = lmd_strdup(v[S_DATA_TOKENIZER].s);
            d->tokenizer_resolved = strncmp(d->tokenizer, "hf:", 3)
                                        ? path_join(x->base_dir, d->tokenizer)
                                        : lmd_strdup(d->tokenizer); /* hf:ORG/NAME: the cache */
            if (!x->checked_tok || strcmp(x->checked_tok, d->tokenizer_resolved)) {
                lmd_tokenizer *tk = NULL;
                lmd_err te = {{0}};
                if (tok_load(&tk, d->tokenizer_resolved, &te))
                    CERR(S_DATA_TOKENIZER,
                         "%s (relative paths are resolved against the spec "
                         "file's directory)",
                         te.msg);
                uint32_t V = tok_vocab_size(tk);
                tok_free(tk);
                if (V < 2 || V > (uint32_t)(1 << 24))
                    CERR(S_DATA_TOKENIZER, "tokenizer %s has %u ids, outside [2, %d]",
                         d->tokenizer_resolved, V, 1 << 24);
                free(x->checked_tok);
                x->checked_tok = lmd_strdup(d->tokenizer_resolved);
                x->checked_tok_vocab = (int)V;
            }
            if (v[S_DATA_VOCAB].set && v[S_DATA_VOCAB].i != x->checked_tok_vocab)
                CERR(S_DATA_VOCAB,
                     "the tokenizer %s has %d ids: data.vocab is taken from it "
                     "(leave it out or give %d)",
                     d->tokenizer_resolved, x->checked_tok_vocab, x->checked_tok_vocab);
            d->vocab = x->checked_tok_vocab;
        } else if (d->source == LMD_DATA_TEXT) {
            if (v[S_DATA_VOCAB].set && v[S_DATA_VOCAB].i != 256)
                CERR(S_DATA_VOCAB, "text data is read as bytes: its vocab is 256 (give "
                                   "data.tokenizer to encode it with a tokenizer.json)");
            d->vocab = 256;
        } else {
            d->vocab = v[S_DATA_VOCAB].set ? (int)v[S_DATA_VOCAB].i : 50257;
        }
        d->path = lmd_strdup(v[S_DATA_PATH].s);
        d->resolved = path_join(x->base_dir, d->path);
        if (!x->checked_path || x->checked_source != (int)d->source ||
            strcmp(x->checked_path, d->resolved)) {
            if (d->source == LMD_DATA_TEXT) {
                struct stat st;
                if (stat(d->resolved, &st) != 0)
                    CERR(S_DATA_PATH,
                         "data file %s: %s (relative paths are resolved against "
                         "the spec file's directory)",
                         d->resolved, strerror(errno));
                if (!S_ISREG(st.st_mode))
                    CERR(S_DATA_PATH, "data file %s is not a regular file", d->resolved);
            } else {
                glob_t gl;
                int rc = glob(d->resolved, 0, NULL, &gl);
                size_t nm = rc == 0 ? gl.gl_pathc : 0;
                if (rc == 0 || rc == GLOB_NOMATCH) globfree(&gl);
                if (nm == 0)
                    CERR(S_DATA_PATH,
                         "no shard file matches %s (relative paths are resolved "
                         "against the spec file's directory)",
                         d->resolved);
            }
            free(x->checked_path);
            x->checked_path = lmd_strdup(d->resolved);
            x->checked_source = (int)d->source;
        }
    }
    d->val_fraction = v[S_DATA_VALF].d;

    /* model */
    gpt_config *g = &cell->cfg;
    g->n_layer = (int)v[S_N_LAYER].i;
    g->n_embd = (int)v[S_N_EMBD].i;
    g->n_head = (int)v[S_N_HEAD].i;
    g->n_ctx = (int)v[S_N_CTX].i;
    if (v[S_INIT].set) {
        /* the model's shape is the init model's: a shape key written in the spec must agree */
        gpt_config ic;
        char res[4096];
        if (probe_model(x, 0, v[S_INIT].s, res, sizeof res, &ic, &e)) CERR(S_INIT, "%s", e.msg);
        cell->init = lmd_strdup(res);
        static const int keys[] = {S_N_LAYER, S_N_EMBD,      S_N_HEAD,
                                   S_N_CTX,   S_MODEL_VOCAB, S_MLP_DIM};
        const int have[] = {ic.n_layer, ic.n_embd, ic.n_head, ic.n_ctx, ic.vocab_size, ic.mlp_dim};
        for (int q = 0; q < 6; q++)
            if (v[keys[q]].set && v[keys[q]].i != have[q])
                CERR(keys[q],
                     "train.init %.900s has %s %d: the model's shape is taken from it "
                     "(leave %s out or give %d)",
                     res, DEFS[keys[q]].name, have[q], DEFS[keys[q]].name, have[q]);
        *g = ic;
        if (g->vocab_size < d->vocab)
            CERR(S_INIT, "the init model's vocab %d is smaller than the data's vocab %d",
                 g->vocab_size, d->vocab);
    } else if (!v[S_MLP_DIM].set)
        CERR(S_MLP_DIM, "missing: give mlp_dim as a grid axis (grid: {mlp_dim: [...]}) or as "
                        "model.mlp_dim");
    if (!v[S_INIT].set) {
        g->mlp_dim = (int)v[S_MLP_DIM].i;
        g->vocab_size = v[S_MODEL_VOCAB].set ? (int)v[S_MODEL_VOCAB].i : d->vocab;
    }
    if (g->vocab_size < d->vocab)
        CERR(S_MODEL_VOCAB,
             "vocab %d is smaller than the data's vocab %d (token ids would be "
             "out of range)",
             g->vocab_size, d->vocab);
    if (g->n_embd % g->n_head != 0)
        CERR(v[S_N_HEAD].src || !v[S_N_EMBD].src ? S_N_HEAD : S_N_EMBD,
             "n_embd (%d) must be divisible by n_head (%d)", g->n_embd, g->n_head);

    /* training */
    lmd_train_opts *t = &cell->train;
    *t = lmd_train_default();
    t->B = (int)v[S_BATCH].i;
    t->T = (int)v[S_SEQ].i;
    if (t->T > g->n_ctx)
        CERR(v[S_SEQ].src ? S_SEQ : S_N_CTX, "seq (%d) must not exceed the model's n_ctx (%d)",
             t->T, g->n_ctx);
    if (v[S_STEPS].set && v[S_TOKENS].set)
        CERR(S_TOKENS, "give train.steps or train.tokens, not both");
    if (!v[S_STEPS].set && !v[S_TOKENS].set)
        CERR(S_STEPS, "missing: give train.steps or train.tokens");
    t->accumulate = (int)v[S_ACCUM].i;
    int64_t bt = (int64_t)t->B * t->T * t->accumulate; /* tokens per optimizer step */
    /* ceil(tokens / bt) without forming tokens + bt - 1, which overflows near INT64_MAX. */
    if (v[S_STEPS].set) {
        t->steps = v[S_STEPS].i;
    } else {
        int64_t tok = v[S_TOKENS].i;
        t->steps = tok / bt + (tok % bt != 0);
        if (t->steps > 1000000000000LL)
            CERR(S_TOKENS,
                 "%lld tokens is more than 10^12 steps of batch x seq x accumulate = %lld",
                 (long long)tok, (long long)bt);
    }
    if (t->steps > 1000000000000LL)
        CERR(S_STEPS, "%lld steps is more than 10^12", (long long)t->steps);
    t->lr = v[S_LR].d;
    t->warmup_ratio = v[S_WARMUP].d;
    t->min_lr_ratio = v[S_MIN_LR].d;
    t->clip = v[S_CLIP].d;
    t->adamw.lr = t->lr;
    t->adamw.beta1 = v[S_BETA1].d;
    t->adamw.beta2 = v[S_BETA2].d;
    t->adamw.eps = v[S_EPS].d;
    t->adamw.weight_decay = v[S_WD].d;
    t->seed = (uint64_t)v[S_SEED].i;
    t->shards = (int)v[S_SHARDS].i;
    if (t->shards & (t->shards - 1))
        CERR(S_SHARDS, "shards (%d) must be a power of 2 (1, 2, 4, 8, ...)", t->shards);
    if (t->B % t->shards != 0)
        CERR(v[S_SHARDS].src ? S_SHARDS : S_BATCH, "batch (%d) must be divisible by shards (%d)",
             t->B, t->shards);
    lmd_disp_opts *o = &t->disp;
    *o = lmd_disp_default();
    if (lmd_disp_parse_variant(v[S_VARIANT].s, &o->variant, &e)) CERR(S_VARIANT, "%s", e.msg);
    if (lmd_disp_parse_location(v[S_LOCATION].s, &o->location, &e)) CERR(S_LOCATION, "%s", e.msg);
    o->coeff = v[S_COEFF].d;
    o->tau_cos = v[S_TAU_COS].d;
    o->tau_l2 = v[S_TAU_L2].d;
    o->max_tokens = (int)v[S_MAX_TOKENS].i;

    /* distillation: on when a teacher is given and alpha > 0 */
    lmd_cell_kd *kd = &cell->kd;
    kd->teacher = -1;
    kd->alpha = v[S_KD_ALPHA].d;
    kd->temperature = v[S_KD_TEMP].d;
    if (v[S_KD_TEACHER].set && doc->kd_ref.kind)
        CERR(S_KD_TEACHER, "distill.teacher is given twice (a model and a cell reference)");
    kd->on = (v[S_KD_TEACHER].set || doc->kd_ref.kind) && kd->alpha > 0.0;
    if ((v[S_KD_ALPHA].set || v[S_KD_TEMP].set) && !v[S_KD_TEACHER].set && !doc->kd_ref.kind)
        CERR(v[S_KD_ALPHA].set ? S_KD_ALPHA : S_KD_TEMP, "distillation needs distill.teacher "
                                                         "(a model, {cell: {...}} or {id: ...})");
    if (kd->on && v[S_KD_TEACHER].set) {
        gpt_config tc;
        char res[4096];
        if (probe_model(x, 1, v[S_KD_TEACHER].s, res, sizeof res, &tc, &e))
            CERR(S_KD_TEACHER, "%s", e.msg);
        if (tc.vocab_size != g->vocab_size)
            CERR(S_KD_TEACHER,
                 "the teacher %.900s has vocab %d, the student %d: distillation "
                 "compares distributions over one vocabulary",
                 res, tc.vocab_size, g->vocab_size);
        if (tc.n_ctx < t->T)
            CERR(S_KD_TEACHER, "the teacher %.900s has n_ctx %d < train.seq %d", res, tc.n_ctx,
                 t->T);
        kd->model = lmd_strdup(res);
        kd->teacher_cfg = tc;
    }

    if (d->source == LMD_DATA_SYNTHETIC) {
        /* the split rule of lmd_data_split, checked now rather than after the queue starts */
        int64_t need = bt + 1, n = d->synthetic_tokens;
        int64_t n_val = (int64_t)(d->val_fraction * (double)n);
        if (n_val < need) n_val = need;
        if (n < 2 * need || n - n_val < need)
            CERR(S_DATA_SYN_TOKENS,
                 "%lld synthetic tokens are too few for a train/validation "
                 "split with val_fraction %g and batch x seq = %d x %d (each part needs %lld)",
                 (long long)n, d->val_fraction, t->B, t->T, (long long)need);
    }

    /* tracking */
    lmd_tracking *tr = &cell->tracking;
    tr->eval_sequences = (int)v[S_EVAL_SEQS].i;
    tr->eval_seq_len = v[S_EVAL_SEQ_LEN].set ? (int)v[S_EVAL_SEQ_LEN].i : t->T;
    if (tr->eval_seq_len > g->n_ctx)
        CERR(v[S_EVAL_SEQ_LEN].src ? S_EVAL_SEQ_LEN : S_N_CTX,
             "eval_seq_len (%d) must not exceed the model's n_ctx (%d)", tr->eval_seq_len,
             g->n_ctx);
    tr->hist_bins = (int)v[S_HIST_BINS].i;
    tr->save_checkpoints = (int)v[S_SAVE_CK].i;
    const int64_t first = lmd_track_first(t->steps, t->warmup_ratio);
    if (doc->track == TRACK_LIST) {
        const ynode *lst = doc->track_list;
        tr->steps = i64_alloc(lst->n);
        for (size_t j = 0; j < lst->n; j++) {
            long long s = strtoll(lst->kids[j]->val, NULL, 10);
            double y = strtod(lst->kids[j]->val, NULL);
            if (y != (double)s) s = (long long)y; /* written as 1e3 */
            if (s > t->steps) {
                perr(c, lst->kids[j], "tracking.checkpoints",
                     "step %lld is beyond the last training step (%lld)%s", s, (long long)t->steps,
                     point);
                return -1;
            }
            tr->steps[j] = s;
        }
        qsort(tr->steps, lst->n, sizeof *tr->steps, cmp_i64);
        int n = 0;
        for (size_t j = 0; j < lst->n; j++)
            if (n == 0 || tr->steps[n - 1] != tr->steps[j]) tr->steps[n++] = tr->steps[j];
        tr->n_steps = n;
    } else if (doc->track == TRACK_EVERY) {
        if (t->steps / v[S_EVERY].i > LMD_SPEC_MAX_TRACK)
            CERR(S_EVERY, "every %lld gives more than %d checkpoints over %lld steps",
                 (long long)v[S_EVERY].i, LMD_SPEC_MAX_TRACK, (long long)t->steps);
        tr->n_steps = lmd_track_every(t->steps, v[S_EVERY].i, first, &tr->steps);
    } else if (v[S_LOG_POINTS].set) {
        tr->n_steps = lmd_track_log_points(t->steps, (int)v[S_LOG_POINTS].i, first, &tr->steps);
    } else {
        tr->n_steps = lmd_track_log(t->steps, first, &tr->steps);
    }
    x->total_track += (size_t)tr->n_steps;
    if (x->total_track > (size_t)20000000)
        CERR(S_LOG_POINTS, "the grid tracks more than 2*10^7 checkpoints in total");

    /* the model's own checks, as a backstop for anything missed above */
    if (gpt_config_validate(g, &e)) CERR(S_MLP_DIM, "%s", e.msg);
    if (lmd_train_validate(t, g, &e)) CERR(S_STEPS, "%s", e.msg);
    if (lmd_disp_validate(o, &e)) CERR(S_VARIANT, "%s", e.msg);

    cell->index = index;
    cell->n_params = gpt_num_params(g);
    cell->flops = gpt_flops_per_step(g, t->B, t->T) * (double)t->steps * t->accumulate;
    if (kd->model) /* the teacher's forward: a third of its training step's FLOPs */
        cell->flops += gpt_flops_per_step(&kd->teacher_cfg, t->B, t->T) / 3.0 * (double)t->steps *
                       t->accumulate;
    lmd_cell_refresh_id(cell);
    return 0;
}

void lmd_cell_refresh_id(lmd_cell *cell) {
    char *text = lmd_cell_settings(cell);
    lmd_sha256_digest(text, strlen(text), cell->digest);
    free(text);
    char hex[65];
    lmd_sha256_to_hex(cell->digest, hex);
    snprintf(cell->id, sizeof cell->id, "mlp%d-%s-s%llu-%.8s", cell->cfg.mlp_dim,
             lmd_disp_variant_name(cell->train.disp.variant), (unsigned long long)cell->train.seed,
             hex);
}
#undef CERR

static void cell_free(lmd_cell *cell) {
    free(cell->data.path);
    free(cell->data.resolved);
    free(cell->data.tokenizer);
    free(cell->data.tokenizer_resolved);
    free(cell->tracking.steps);
    free(cell->init);
    free(cell->kd.model);
    memset(cell, 0, sizeof *cell);
}

static int cmp_cell_id(const void *a, const void *b) {
    const lmd_cell *x = *(lmd_cell *const *)a, *y = *(lmd_cell *const *)b;
    int r = strcmp(x->id, y->id);
    if (r) return r;
    return (x->index > y->index) - (x->index < y->index);
}

/* Validates the document-level rules and expands the product into s->cells. */
static int expand(spec_doc *doc, lmd_spec *s) {
    pctx *c = doc->c;
    /* mode switches of tracking: */
    if (doc->base[S_EVERY].set && doc->track_explicit && doc->track != TRACK_EVERY)
        perr(c, doc->base[S_EVERY].src, "tracking.every",
             "applies only to checkpoints: every (checkpoints is %s)",
             doc->track == TRACK_LOG ? "log" : "an explicit list");
    if (doc->base[S_EVERY].set) doc->track = TRACK_EVERY;
    if (doc->track == TRACK_EVERY && !doc->base[S_EVERY].set)
        perr(c, doc->track_node, "tracking.checkpoints",
             "checkpoints: every needs tracking.every: N (a step interval)");
    if (doc->base[S_LOG_POINTS].set && doc->track != TRACK_LOG)
        perr(c, doc->base[S_LOG_POINTS].src, "tracking.log_points",
             "applies only to checkpoints: log");
    if (doc->grid_node && doc->n_axes == 0 && c->n_errors == 0)
        perr(c, doc->grid_node, "grid",
             "the grid is empty: give at least one axis, e.g. "
             "mlp_dim: [128, 256]");
    if (doc->grid_node && doc->axis_of[S_MLP_DIM] < 0 && !doc->base[S_MLP_DIM].set &&
        !doc->base[S_INIT].set && doc->axis_of[S_INIT] < 0 && c->n_errors == 0)
        perr(c, doc->grid_node, "grid.mlp_dim",
             "missing: the mlp_dim axis is required (or fix model.mlp_dim)");
    if (c->n_errors) return -1;

    /* size of the product, capped before anything is allocated */
    size_t n_cells = 1;
    for (int a = 0; a < doc->n_axes; a++) {
        if (n_cells > LMD_SPEC_MAX_CELLS / (size_t)doc->axes[a].len) {
            perr(c, doc->grid_node, "grid", "the grid has more than %d cells", LMD_SPEC_MAX_CELLS);
            return -1;
        }
        n_cells *= (size_t)doc->axes[a].len;
    }

    /* defaults for everything not set */
    sval base[N_SETTINGS];
    memcpy(base, doc->base, sizeof base);
    for (int i = 0; i < N_SETTINGS; i++) {
        if (base[i].set || !DEFS[i].has_def) continue;
        if (DEFS[i].type == ST_NUM)
            base[i].d = DEFS[i].def;
        else
            base[i].i = (int64_t)DEFS[i].def;
        if (DEFS[i].type == ST_ENUM) base[i].s = DEFS[i].choices[base[i].i];
    }

    s->n_axes = doc->n_axes;
    s->axes = lmd_calloc((size_t)doc->n_axes + 1, sizeof *s->axes);
    for (int a = 0; a < doc->n_axes; a++) {
        sbuf b = {0};
        for (int j = 0; j < doc->axes[a].n_members; j++)
            sb_addf(&b, "%s%s", j ? "+" : "", DEFS[doc->axes[a].m[j].setting].name);
        s->axes[a].names = b.p;
        s->axes[a].n_values = doc->axes[a].len;
    }

    expand_ctx x = {.doc = doc, .base_dir = s->dir};
    s->cells = lmd_calloc(n_cells, sizeof *s->cells);
    int *choice = lmd_calloc((size_t)doc->n_axes + 1, sizeof *choice);
    int rc = 0;
    for (size_t idx = 0; idx < n_cells; idx++) {
        /* mixed radix, the last axis fastest */
        size_t r = idx;
        for (int a = doc->n_axes - 1; a >= 0; a--) {
            choice[a] = (int)(r % (size_t)doc->axes[a].len);
            r /= (size_t)doc->axes[a].len;
        }
        sval v[N_SETTINGS];
        memcpy(v, base, sizeof v);
        for (int a = 0; a < doc->n_axes; a++)
            for (int j = 0; j < doc->axes[a].n_members; j++)
                v[doc->axes[a].m[j].setting] = doc->axes[a].m[j].vals[choice[a]];
        if (resolve_cell(&x, v, choice, idx, &s->cells[idx])) {
            cell_free(&s->cells[idx]);
            rc = -1;
            break; /* the same mistake would repeat for many cells */
        }
        s->n_cells = idx + 1;
    }
    free(choice);
    free(x.checked_path);
    free(x.checked_tok);
    for (int q = 0; q < 2; q++) free(x.checked_model[q]), free(x.checked_model_res[q]);
    if (rc) return -1;

    /* duplicates: equal ids (label + 32 bits of the settings hash); equal digests mean the
     * grid points resolve to the same settings */
    lmd_cell **order = lmd_calloc(s->n_cells, sizeof *order);
    for (size_t i = 0; i < s->n_cells; i++) order[i] = &s->cells[i];
    qsort(order, s->n_cells, sizeof *order, cmp_cell_id);
    for (size_t i = 1; i < s->n_cells; i++) {
        const lmd_cell *a = order[i - 1], *b = order[i];
        if (strcmp(a->id, b->id)) continue;
        if (!memcmp(a->digest, b->digest, 32))
            perr(c, doc->grid_node, "grid",
                 "grid points %zu and %zu resolve to identical settings (id %s); with "
                 "dispersion off, coeff/location/tau/max_tokens do not matter — pair them with "
                 "zip: instead",
                 a->index, b->index, a->id);
        else
            perr(c, doc->grid_node, "grid",
                 "grid points %zu and %zu got the same id %s with different settings (a 32-bit "
                 "hash collision); change the seed of one of them",
                 a->index, b->index, a->id);
        break;
    }
    free(order);
    if (c->n_errors) return -1;

    s->uniform_tracking = 1;
    for (size_t i = 1; i < s->n_cells; i++) {
        const lmd_cell *a = &s->cells[0], *b = &s->cells[i];
        if (a->tracking.n_steps != b->tracking.n_steps ||
            memcmp(a->tracking.steps, b->tracking.steps,
                   (size_t)a->tracking.n_steps * sizeof(int64_t)) ||
            (int64_t)a->train.B * a->train.T * a->train.accumulate !=
                (int64_t)b->train.B * b->train.T * b->train.accumulate) {
            s->uniform_tracking = 0;
            break;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Public entry points
 * ------------------------------------------------------------------------------------------ */

void lmd_spec_free(lmd_spec *s) {
    if (!s) return;
    free(s->path);
    free(s->dir);
    free(s->name);
    free(s->text);
    for (int i = 0; i < s->n_eval_tasks; i++) free(s->eval_tasks[i]);
    free(s->eval_tasks);
    for (int i = 0; i < s->n_slurm; i++) {
        free(s->slurm[i].key);
        free(s->slurm[i].value);
        for (int j = 0; j < s->slurm[i].n_items; j++) free(s->slurm[i].items[j]);
        free(s->slurm[i].items);
    }
    free(s->slurm);
    for (int a = 0; a < s->n_axes; a++) free(s->axes[a].names);
    free(s->axes);
    for (size_t i = 0; i < s->n_cells; i++) cell_free(&s->cells[i]);
    free(s->cells);
    memset(s, 0, sizeof *s);
}

/* Absolute directory of path (the directory part, or "." when none). */
static char *abs_dir_of(const char *path, lmd_err *err) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = lmd_strdup(".");
    else if (slash == path)
        dir = lmd_strdup("/");
    else {
        dir = lmd_calloc((size_t)(slash - path) + 1, 1);
        memcpy(dir, path, (size_t)(slash - path));
    }
    char *abs = realpath(dir, NULL);
    if (!abs) {
        lmd_errf(err, "%s: cannot resolve the spec's directory '%s': %s", path, dir,
                 strerror(errno));
        free(dir);
        return NULL;
    }
    free(dir);
    return abs;
}

/* tracking.eval_tasks: each file relative to the spec's directory, loaded once to check it
 * (its own FILE:LINE messages), names distinct; every cell needs data.tokenizer. */
static void parse_eval_tasks(spec_doc *doc, lmd_spec *s) {
    const ynode *v = doc->eval_tasks_node;
    pctx *c = doc->c;
    s->eval_tasks = lmd_calloc(v->n, sizeof *s->eval_tasks);
    char(*names)[128] = lmd_calloc(v->n, sizeof *names);
    for (size_t j = 0; j < v->n; j++) {
        const ynode *e = v->kids[j];
        if (e->kind != YN_SCALAR) {
            perr(c, e, "tracking.eval_tasks", "expected a file name, got %s", kind_name(e));
            continue;
        }
        char *path = path_join(s->dir, e->val);
        mc_task t;
        lmd_err te = {{0}};
        if (mc_task_load(&t, path, &te)) {
            perr(c, e, "tracking.eval_tasks", "%s", te.msg);
            free(path);
            continue;
        }
        snprintf(names[j], sizeof names[j], "%s", t.name);
        mc_task_free(&t);
        for (size_t i = 0; i < j; i++)
            if (!strcmp(names[i], names[j]))
                perr(c, e, "tracking.eval_tasks", "task name '%s' (the file name) is given twice",
                     names[j]);
        s->eval_tasks[s->n_eval_tasks++] = path;
    }
    free(names);
    for (size_t i = 0; i < s->n_cells && !c->n_errors; i++)
        if (!s->cells[i].data.tokenizer_resolved)
            perr(c, v, "tracking.eval_tasks",
                 "needs data.tokenizer: the task text is encoded "
                 "with the tokenizer the model was trained with (cell %s has none)",
                 s->cells[i].id);
}

int lmd_spec_parse(lmd_spec *s, const char *text, size_t len, const char *display_path,
                   const char *base_dir, lmd_err *err) {
    memset(s, 0, sizeof *s);
    if (err) err->msg[0] = '\0';
    if (len > LMD_SPEC_MAX_BYTES)
        return lmd_errf(err, "%s: the spec is %zu bytes; specs are limited to %u bytes",
                        display_path, len, LMD_SPEC_MAX_BYTES);
    s->path = lmd_strdup(display_path);
    if (base_dir) {
        s->dir = realpath(base_dir, NULL);
        if (!s->dir) {
            lmd_errf(err, "%s: cannot resolve the base directory '%s': %s", display_path, base_dir,
                     strerror(errno));
            lmd_spec_free(s);
            return -1;
        }
    } else {
        s->dir = abs_dir_of(display_path, err);
        if (!s->dir) {
            lmd_spec_free(s);
            return -1;
        }
    }
    s->text = lmd_calloc(len + 1, 1);
    memcpy(s->text, text, len);
    s->text_len = len;
    lmd_sha256_hex(text, len, s->sha256);

    pctx c = {.path = display_path};
    spec_doc doc;
    memset(&doc, 0, sizeof doc);
    doc.c = &c;
    for (int i = 0; i < N_SETTINGS; i++) doc.axis_of[i] = -1;
    ynode *root = build_tree(&c, s->text, len);
    doc.root = root;
    if (!c.n_errors) parse_document(&doc, root, s);
    if (!c.n_errors) expand(&doc, s);
    if (!c.n_errors && doc.eval_tasks_node) parse_eval_tasks(&doc, s);
    if (!c.n_errors) {
        lmd_err kerr;
        if (lmd_spec_link_teachers(s, &doc.kd_ref, &kerr)) {
            c.n_errors++;
            sb_addf(&c.msgs, "%s", kerr.msg);
        }
    }
    lmd_teacher_ref_free(&doc.kd_ref);
    if (!c.n_errors) {
        s->name = lmd_strdup(doc.name);
        s->ranks_per_model = (int)(doc.base[S_RANKS].set ? doc.base[S_RANKS].i : 1);
        s->threads_per_rank = (int)(doc.base[S_THREADS].set ? doc.base[S_THREADS].i : 1);
    }
    for (int a = 0; a < doc.n_axes; a++) {
        for (int j = 0; j < doc.axes[a].n_members; j++) free(doc.axes[a].m[j].vals);
        free(doc.axes[a].m);
    }
    free(doc.axes);
    ynode_free(root);
    if (c.n_errors) {
        if (c.n_errors > LMD_SPEC_MAX_ERRORS)
            sb_addf(&c.msgs, "\n%s: %d more errors not shown", display_path,
                    c.n_errors - LMD_SPEC_MAX_ERRORS);
        if (err) snprintf(err->msg, sizeof err->msg, "%s", c.msgs.p ? c.msgs.p : "spec error");
        free(c.msgs.p);
        lmd_spec_free(s);
        return -1;
    }
    free(c.msgs.p);
    return 0;
}

int lmd_spec_load(lmd_spec *s, const char *path, lmd_err *err) {
    memset(s, 0, sizeof *s);
    char *buf = NULL;
    size_t n = 0;
    int rc = lmd_file_read(path, LMD_SPEC_MAX_BYTES, &buf, &n, err);
    if (rc == LMD_FILE_MISSING)
        return lmd_errf(err, "%s: cannot open the spec: %s", path, strerror(ENOENT));
    if (rc)
        return lmd_err_prefix(err, "cannot load the spec (specs are limited to %u bytes, 1 MiB)",
                              LMD_SPEC_MAX_BYTES);
    rc = lmd_spec_parse(s, buf, n, path, NULL, err);
    free(buf);
    return rc;
}

const lmd_cell *lmd_spec_find_cell(const lmd_spec *s, const char *id) {
    for (size_t i = 0; i < s->n_cells; i++)
        if (!strcmp(s->cells[i].id, id)) return &s->cells[i];
    return NULL;
}
