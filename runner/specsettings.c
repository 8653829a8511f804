/* specsettings.c — the spec's settings table (every scalar a spec can set, by dotted name, with
 * type, range and default) and the typed parsing of one value. */
#include "spec_internal.h"
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
 * The settings: every scalar a spec can set, by dotted name, with type and range.
 * ------------------------------------------------------------------------------------------ */

const char *const SPEC_SOURCES[] = {"synthetic", "text", "shards", NULL};
static const char *const SCHEDULES[] = {"cosine", NULL};
static const char *const VARIANTS[] = {"off",      "angular_spread",    "decorrelation",
                                       "l2_repel", "orthogonalization", NULL};
static const char *const LOCATIONS[] = {"all", "last", NULL};

const sdef SPEC_DEFS[N_SETTINGS] = {
    [S_SEED] = {"seed", NULL, SET_INT, 0, I64MAX, 0, 0, 0, NULL, 1, 0, 1},
    [S_DATA_SOURCE] = {"data.source", NULL, SET_ENUM, 0, 0, 0, 0, 0, SPEC_SOURCES, 1, 0, 1},
    [S_DATA_PATH] = {"data.path", NULL, SET_STR, 0, 0, 0, 0, 0, NULL, 1, 0, 0},
    [S_DATA_TOKENIZER] = {"data.tokenizer", NULL, SET_STR, 0, 0, 0, 0, 0, NULL, 1, 0, 0},
    [S_DATA_VOCAB] = {"data.vocab", NULL, SET_INT, 2, 1 << 24, 0, 0, 0, NULL, 1, 0, 0},
    [S_DATA_SYN_SEED] = {"data.synthetic_seed", NULL, SET_INT, 0, I64MAX, 0, 0, 0, NULL, 1, 0, 0},
    [S_DATA_SYN_TOKENS] = {"data.synthetic_tokens", NULL, SET_INT, 2, 4000000000LL, 0, 0, 0, NULL,
                           1, 0, 0},
    [S_DATA_VALF] = {"data.val_fraction", NULL, SET_NUM, 0, 0, 0.0, 0.9, 0, NULL, 1, 0.1, 1},
    [S_N_LAYER] = {"model.n_layer", NULL, SET_INT, 1, 1024, 0, 0, 0, NULL, 1, 4, 1},
    [S_N_EMBD] = {"model.n_embd", NULL, SET_INT, 1, 65536, 0, 0, 0, NULL, 1, 128, 1},
    [S_N_HEAD] = {"model.n_head", NULL, SET_INT, 1, 4096, 0, 0, 0, NULL, 1, 4, 1},
    [S_N_CTX] = {"model.n_ctx", NULL, SET_INT, 1, 1 << 20, 0, 0, 0, NULL, 1, 128, 1},
    [S_MODEL_VOCAB] = {"model.vocab", NULL, SET_INT, 2, 1 << 24, 0, 0, 0, NULL, 1, 0, 0},
    [S_MLP_DIM] = {"model.mlp_dim", NULL, SET_INT, 1, 1 << 20, 0, 0, 0, NULL, 1, 0, 0},
    [S_STEPS] = {"train.steps", NULL, SET_INT, 0, 1000000000000LL, 0, 0, 0, NULL, 1, 0, 0},
    [S_TOKENS] = {"train.tokens", NULL, SET_INT, 1, I64MAX, 0, 0, 0, NULL, 1, 0, 0},
    [S_BATCH] = {"train.batch", NULL, SET_INT, 1, 1 << 20, 0, 0, 0, NULL, 1, 8, 1},
    [S_SEQ] = {"train.seq", NULL, SET_INT, 1, 1 << 20, 0, 0, 0, NULL, 1, 64, 1},
    [S_LR] = {"train.lr", NULL, SET_NUM, 0, 0, 0.0, 10.0, 0, NULL, 1, 1e-3, 1},
    [S_SCHEDULE] = {"train.schedule", NULL, SET_ENUM, 0, 0, 0, 0, 0, SCHEDULES, 1, 0, 1},
    [S_WARMUP] = {"train.warmup_ratio", NULL, SET_NUM, 0, 0, 0.0, 1.0, 0, NULL, 1, 0.2, 1},
    [S_MIN_LR] = {"train.min_lr_ratio", NULL, SET_NUM, 0, 0, 0.0, 1.0, 0, NULL, 1, 0.0, 1},
    [S_WD] = {"train.weight_decay", NULL, SET_NUM, 0, 0, 0.0, 100.0, 0, NULL, 1, 0.1, 1},
    [S_BETA1] = {"train.beta1", NULL, SET_NUM, 0, 0, 0.0, 0.999999, 0, NULL, 1, 0.9, 1},
    [S_BETA2] = {"train.beta2", NULL, SET_NUM, 0, 0, 0.0, 0.999999999, 0, NULL, 1, 0.95, 1},
    [S_EPS] = {"train.eps", NULL, SET_NUM, 0, 0, 0.0, 1.0, 1, NULL, 1, 1e-8, 1},
    [S_CLIP] = {"train.clip", NULL, SET_NUM, 0, 0, 0.0, 1e30, 0, NULL, 1, 1.0, 1},
    [S_SHARDS] = {"train.shards", NULL, SET_INT, 1, 65536, 0, 0, 0, NULL, 1, 1, 1},
    [S_INIT] = {"train.init", NULL, SET_STR, 0, 0, 0, 0, 0, NULL, 1, 0, 0},
    [S_ACCUM] = {"train.accumulate", NULL, SET_INT, 1, 65536, 0, 0, 0, NULL, 1, 1, 1},
    [S_KD_TEACHER] = {"distill.teacher", NULL, SET_STR, 0, 0, 0, 0, 0, NULL, 1, 0, 0},
    [S_KD_ALPHA] = {"distill.alpha", NULL, SET_NUM, 0, 0, 0.0, 1.0, 0, NULL, 1, 0.5, 1},
    [S_KD_TEMP] = {"distill.temperature", NULL, SET_NUM, 0, 0, 0.0, 1e6, 1, NULL, 1, 1.0, 1},
    [S_VARIANT] = {"dispersion.variant", "dispersion", SET_ENUM, 0, 0, 0, 0, 0, VARIANTS, 1, 0, 1},
    [S_COEFF] = {"dispersion.coeff", NULL, SET_NUM, 0, 0, 0.0, 1e6, 0, NULL, 1, 0.1, 1},
    [S_LOCATION] = {"dispersion.location", NULL, SET_ENUM, 0, 0, 0, 0, 0, LOCATIONS, 1, 0, 1},
    [S_TAU_COS] = {"dispersion.tau_cos", NULL, SET_NUM, 0, 0, 0.0, 1e6, 1, NULL, 1, 1.0, 1},
    [S_TAU_L2] = {"dispersion.tau_l2", NULL, SET_NUM, 0, 0, 0.0, 1e6, 1, NULL, 1, 1.0, 1},
    [S_MAX_TOKENS] = {"dispersion.max_tokens", NULL, SET_INT, 2, 1 << 20, 0, 0, 0, NULL, 1, 256, 1},
    /* The tracking schedule knobs and hist_bins are fixed per study: a study file has one
     * /tracking/step axis and one histogram width. */
    [S_LOG_POINTS] = {"tracking.log_points", NULL, SET_INT, 2, LMD_SPEC_MAX_TRACK, 0, 0, 0, NULL, 0,
                      0, 0},
    [S_EVERY] = {"tracking.every", NULL, SET_INT, 1, I64MAX, 0, 0, 0, NULL, 0, 0, 0},
    [S_EVAL_SEQS] = {"tracking.eval_sequences", NULL, SET_INT, 1, 1000000, 0, 0, 0, NULL, 1, 16, 1},
    [S_EVAL_SEQ_LEN] = {"tracking.eval_seq_len", NULL, SET_INT, 2, 1 << 20, 0, 0, 0, NULL, 1, 0, 0},
    [S_HIST_BINS] = {"tracking.hist_bins", NULL, SET_INT, 2, 100000, 0, 0, 0, NULL, 0, 128, 1},
    [S_SAVE_CK] = {"tracking.save_checkpoints", NULL, SET_BOOL, 0, 0, 0, 0, 0, NULL, 0, 0, 1},
    [S_RANKS] = {"resources.ranks_per_model", NULL, SET_INT, 1, 65536, 0, 0, 0, NULL, 0, 1, 1},
    [S_THREADS] = {"resources.threads_per_rank", NULL, SET_INT, 1, 4096, 0, 0, 0, NULL, 0, 1, 1},
};

const char *spec_last_component(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

int spec_find_dotted(const char *name) {
    for (int i = 0; i < N_SETTINGS; i++)
        if (!strcmp(SPEC_DEFS[i].name, name)) return i;
    return -1;
}

const char *const *lmd_spec_grid_names(void) {
    static const char *names[N_SETTINGS + 1];
    int k = 0;
    for (int i = 0; i < N_SETTINGS; i++)
        if (SPEC_DEFS[i].gridable) names[k++] = SPEC_DEFS[i].name;
    names[k] = NULL;
    return names;
}

/* Appends " (did you mean 'x'?)" when some candidate is close to key. */
void spec_suggest(char *out, size_t n, const char *key, const char *const *cands, int n_cands) {
    int best = 1000;
    const char *bs = NULL;
    size_t kl = strlen(key);
    for (int i = 0; i < n_cands; i++) {
        int d = spec_edit_distance(key, cands[i]);
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
    if (d->type == SET_INT) {
        snprintf(lo, sizeof lo, "%lld", (long long)d->ilo);
        snprintf(hi, sizeof hi, "%lld", (long long)d->ihi);
        if (d->ihi == I64MAX)
            snprintf(buf, n, "an integer >= %s", lo);
        else
            snprintf(buf, n, "an integer in [%s, %s]", lo, hi);
    } else {
        spec_fmt_num(lo, sizeof lo, d->dlo);
        spec_fmt_num(hi, sizeof hi, d->dhi);
        snprintf(buf, n, "a number in %s%s, %s]", d->lo_open ? "(" : "[", lo, hi);
    }
}

/* Parses scalar node n as setting d into *out; reports under `key` (as the user wrote it). */
int spec_parse_value(pctx *c, int si, const char *key, const ynode *n, sval *out) {
    const sdef *d = &SPEC_DEFS[si];
    static const char *const tname[] = {"an integer", "a number", "a string", "true or false",
                                        "a string"};
    if (!n || n->kind != YN_SCALAR || n->val[0] == '\0') {
        spec_perr(c, n, key, "expected %s, got %s", tname[d->type], spec_kind_name(n));
        return -1;
    }
    const char *v = n->val;
    memset(out, 0, sizeof *out);
    out->src = n;
    if (d->type == SET_INT || d->type == SET_NUM || d->type == SET_BOOL) {
        if (!n->plain) {
            spec_perr(c, n, key, "expected %s, got a quoted string \"%s\"", tname[d->type], v);
            return -1;
        }
    }
    char range[96];
    if (d == &SPEC_DEFS[S_RANKS] && n->plain && !strcmp(v, "auto")) {
        out->i = 0; /* ranks_per_model: auto (lmd_spec.ranks_per_model 0) */
        out->set = 1;
        return 0;
    }
    if (d->type == SET_INT) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || *end) {
            /* also accept integral numbers written as 2e6, within range */
            errno = 0;
            double y = strtod(v, &end);
            if (*end || errno || !isfinite(y) || y != floor(y) || fabs(y) > 9.0e18) {
                spec_perr(c, n, key, "expected an integer, got '%s'", v);
                return -1;
            }
            x = (long long)y;
        }
        if (x < d->ilo || x > d->ihi) {
            fmt_range(range, sizeof range, d);
            spec_perr(c, n, key, "value %s is out of range: expected %s", v, range);
            return -1;
        }
        out->i = x;
    } else if (d->type == SET_NUM) {
        char *end;
        errno = 0;
        double y = strtod(v, &end);
        if (*end || end == v || !isfinite(y)) {
            spec_perr(c, n, key, "expected a number, got '%s'", v);
            return -1;
        }
        /* strtod flags underflow with ERANGE (result 0 or subnormal): 1e-400 is not 0 */
        if ((errno == ERANGE || (y != 0 && !isnormal(y)))) {
            spec_perr(c, n, key,
                      "value %s is too small: it underflows to %g (the smallest normal "
                      "double is %g); write 0 if you mean 0",
                      v, y, DBL_MIN);
            return -1;
        }
        if (y == 0) y = 0.0; /* -0.0 and 0.0 are one setting: one value, one cell id */
        if (y < d->dlo || y > d->dhi || (d->lo_open && y == d->dlo)) {
            fmt_range(range, sizeof range, d);
            spec_perr(c, n, key, "value %s is out of range: expected %s", v, range);
            return -1;
        }
        out->d = y;
    } else if (d->type == SET_BOOL) {
        if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes"))
            out->i = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no"))
            out->i = 0;
        else {
            spec_perr(c, n, key, "expected true or false, got '%s'", v);
            return -1;
        }
    } else if (d->type == SET_STR) {
        out->s = v;
    } else { /* SET_ENUM */
        int k = 0, found = -1;
        for (; d->choices[k]; k++)
            if (!strcmp(v, d->choices[k])) found = k;
        if (found < 0) {
            char valid[256] = "", sug[96];
            for (int j = 0; d->choices[j]; j++) {
                if (j) strncat(valid, ", ", sizeof valid - strlen(valid) - 1);
                strncat(valid, d->choices[j], sizeof valid - strlen(valid) - 1);
            }
            spec_suggest(sug, sizeof sug, v, d->choices, k);
            if (si == S_VARIANT)
                spec_perr(c, n, key, "unknown dispersion variant '%s' (valid: %s)%s", v, valid,
                          sug);
            else
                spec_perr(c, n, key, "unknown value '%s' (valid: %s)%s", v, valid, sug);
            return -1;
        }
        out->i = found;
        out->s = d->choices[found];
    }
    out->set = 1;
    return 0;
}
