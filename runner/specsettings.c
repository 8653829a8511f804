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

/* One row per setting; the fields a row leaves out are 0 (no range, not gridable, no default). */
/* clang-format off */
const sdef SPEC_DEFS[N_SETTINGS] = {
    [S_SEED] = {.name = "seed", .type = SET_INT, .ilo = 0, .ihi = I64MAX,
                .gridable = 1, .def_from = DEF_MODEL},
    [S_DATA_SOURCE] = {.name = "data.source", .type = SET_ENUM, .choices = SPEC_SOURCES,
                       .gridable = 1, .def_from = DEF_TABLE},
    [S_DATA_PATH] = {.name = "data.path", .type = SET_STR, .gridable = 1},
    [S_DATA_TOKENIZER] = {.name = "data.tokenizer", .type = SET_STR, .gridable = 1},
    [S_DATA_VOCAB] = {.name = "data.vocab", .type = SET_INT, .ilo = 2, .ihi = 1 << 24,
                      .gridable = 1},
    [S_DATA_SYN_SEED] = {.name = "data.synthetic_seed", .type = SET_INT, .ilo = 0, .ihi = I64MAX,
                         .gridable = 1},
    [S_DATA_SYN_TOKENS] = {.name = "data.synthetic_tokens", .type = SET_INT, .ilo = 2,
                           .ihi = 4000000000LL, .gridable = 1},
    [S_DATA_VALF] = {.name = "data.val_fraction", .type = SET_NUM, .dlo = 0.0, .dhi = 0.9,
                     .gridable = 1, .def_from = DEF_MODEL},
    [S_N_LAYER] = {.name = "model.n_layer", .type = SET_INT, .ilo = 1, .ihi = 1024,
                   .gridable = 1, .def_from = DEF_MODEL},
    [S_N_EMBD] = {.name = "model.n_embd", .type = SET_INT, .ilo = 1, .ihi = 65536,
                  .gridable = 1, .def_from = DEF_MODEL},
    [S_N_HEAD] = {.name = "model.n_head", .type = SET_INT, .ilo = 1, .ihi = 4096,
                  .gridable = 1, .def_from = DEF_MODEL},
    [S_N_CTX] = {.name = "model.n_ctx", .type = SET_INT, .ilo = 1, .ihi = 1 << 20,
                 .gridable = 1, .def_from = DEF_MODEL},
    [S_MODEL_VOCAB] = {.name = "model.vocab", .type = SET_INT, .ilo = 2, .ihi = 1 << 24,
                       .gridable = 1},
    [S_MLP_DIM] = {.name = "model.mlp_dim", .type = SET_INT, .ilo = 1, .ihi = 1 << 20,
                   .gridable = 1},
    [S_STEPS] = {.name = "train.steps", .type = SET_INT, .ilo = 0, .ihi = 1000000000000LL,
                 .gridable = 1},
    [S_TOKENS] = {.name = "train.tokens", .type = SET_INT, .ilo = 1, .ihi = I64MAX, .gridable = 1},
    [S_BATCH] = {.name = "train.batch", .type = SET_INT, .ilo = 1, .ihi = 1 << 20,
                 .gridable = 1, .def_from = DEF_MODEL},
    [S_SEQ] = {.name = "train.seq", .type = SET_INT, .ilo = 1, .ihi = 1 << 20,
               .gridable = 1, .def_from = DEF_MODEL},
    [S_LR] = {.name = "train.lr", .type = SET_NUM, .dlo = 0.0, .dhi = 10.0,
              .gridable = 1, .def_from = DEF_MODEL},
    [S_SCHEDULE] = {.name = "train.schedule", .type = SET_ENUM, .choices = SCHEDULES,
                    .gridable = 1, .def_from = DEF_TABLE},
    [S_WARMUP] = {.name = "train.warmup_ratio", .type = SET_NUM, .dlo = 0.0, .dhi = 1.0,
                  .gridable = 1, .def_from = DEF_MODEL},
    [S_MIN_LR] = {.name = "train.min_lr_ratio", .type = SET_NUM, .dlo = 0.0, .dhi = 1.0,
                  .gridable = 1, .def_from = DEF_MODEL},
    [S_WD] = {.name = "train.weight_decay", .type = SET_NUM, .dlo = 0.0, .dhi = 100.0,
              .gridable = 1, .def_from = DEF_MODEL},
    [S_BETA1] = {.name = "train.beta1", .type = SET_NUM, .dlo = 0.0, .dhi = 0.999999,
                 .gridable = 1, .def_from = DEF_MODEL},
    [S_BETA2] = {.name = "train.beta2", .type = SET_NUM, .dlo = 0.0, .dhi = 0.999999999,
                 .gridable = 1, .def_from = DEF_MODEL},
    [S_EPS] = {.name = "train.eps", .type = SET_NUM, .dlo = 0.0, .dhi = 1.0, .lo_open = 1,
               .gridable = 1, .def_from = DEF_MODEL},
    [S_CLIP] = {.name = "train.clip", .type = SET_NUM, .dlo = 0.0, .dhi = 1e30,
                .gridable = 1, .def_from = DEF_MODEL},
    [S_SHARDS] = {.name = "train.shards", .type = SET_INT, .ilo = 1, .ihi = 65536,
                  .gridable = 1, .def_from = DEF_MODEL},
    [S_INIT] = {.name = "train.init", .type = SET_STR, .gridable = 1},
    [S_ACCUM] = {.name = "train.accumulate", .type = SET_INT, .ilo = 1, .ihi = 65536,
                 .gridable = 1, .def_from = DEF_MODEL},
    [S_KD_TEACHER] = {.name = "distill.teacher", .type = SET_STR, .gridable = 1},
    [S_KD_ALPHA] = {.name = "distill.alpha", .type = SET_NUM, .dlo = 0.0, .dhi = 1.0,
                    .gridable = 1, .def_from = DEF_MODEL},
    [S_KD_TEMP] = {.name = "distill.temperature", .type = SET_NUM, .dlo = 0.0, .dhi = 1e6,
                   .lo_open = 1, .gridable = 1, .def_from = DEF_MODEL},
    [S_VARIANT] = {.name = "dispersion.variant", .alias = "dispersion", .type = SET_ENUM,
                   .choices = VARIANTS, .gridable = 1, .def_from = DEF_MODEL},
    [S_COEFF] = {.name = "dispersion.coeff", .type = SET_NUM, .dlo = 0.0, .dhi = 1e6,
                 .gridable = 1, .def_from = DEF_MODEL},
    [S_LOCATION] = {.name = "dispersion.location", .type = SET_ENUM, .choices = LOCATIONS,
                    .gridable = 1, .def_from = DEF_MODEL},
    [S_TAU_COS] = {.name = "dispersion.tau_cos", .type = SET_NUM, .dlo = 0.0, .dhi = 1e6,
                   .lo_open = 1, .gridable = 1, .def_from = DEF_MODEL},
    [S_TAU_L2] = {.name = "dispersion.tau_l2", .type = SET_NUM, .dlo = 0.0, .dhi = 1e6,
                  .lo_open = 1, .gridable = 1, .def_from = DEF_MODEL},
    [S_MAX_TOKENS] = {.name = "dispersion.max_tokens", .type = SET_INT, .ilo = 2, .ihi = 1 << 20,
                      .gridable = 1, .def_from = DEF_MODEL},
    /* The tracking schedule knobs and hist_bins are fixed per study: a study file has one
     * /tracking/step axis and one histogram width. */

                         [S_LOG_POINTS] = {.name = "tracking.log_points", .type = SET_INT, .ilo = 2, .ihi = LMD_SPEC_MAX_TRACK},
    [S_EVERY] = {.name = "tracking.every", .type = SET_INT, .ilo = 1, .ihi = I64MAX},
    [S_EVAL_SEQS] = {.name = "tracking.eval_sequences", .type = SET_INT, .ilo = 1, .ihi = 1000000,
                     .gridable = 1, .def_from = DEF_TABLE, .def = 16},
    [S_EVAL_SEQ_LEN] = {.name = "tracking.eval_seq_len", .type = SET_INT, .ilo = 2, .ihi = 1 << 20,
                        .gridable = 1},
    [S_HIST_BINS] = {.name = "tracking.hist_bins", .type = SET_INT, .ilo = 2, .ihi = 100000,
                     .def_from = DEF_TABLE, .def = 128},
    [S_SAVE_CK] = {.name = "tracking.save_checkpoints", .type = SET_BOOL, .def_from = DEF_TABLE},
    [S_RANKS] = {.name = "resources.ranks_per_model", .type = SET_INT, .ilo = 1, .ihi = 65536,
                 .def_from = DEF_TABLE, .def = 1},
    [S_THREADS] = {.name = "resources.threads_per_rank", .type = SET_INT, .ilo = 1, .ihi = 4096,
                   .def_from = DEF_TABLE, .def = 1},
};
/* clang-format on */

/* The model layer's default of setting si (DEF_MODEL): lmd_train_default (with gpt_adamw_default
 * and lmd_disp_default), gpt_config_default and LMD_DATA_VAL_FRACTION, the source `lmdisp
 * train` takes its defaults from too. SET_ENUM: the index of the choice. */
static double model_default(int si) {
    const lmd_train_opts t = lmd_train_default();
    const gpt_config g = gpt_config_default();
    switch (si) {
    case S_SEED: return (double)t.seed;
    case S_DATA_VALF: return LMD_DATA_VAL_FRACTION;
    case S_N_LAYER: return g.n_layer;
    case S_N_EMBD: return g.n_embd;
    case S_N_HEAD: return g.n_head;
    case S_N_CTX: return g.n_ctx;
    case S_BATCH: return t.B;
    case S_SEQ: return t.T;
    case S_LR: return t.lr;
    case S_WARMUP: return t.warmup_ratio;
    case S_MIN_LR: return t.min_lr_ratio;
    case S_WD: return t.adamw.weight_decay;
    case S_BETA1: return t.adamw.beta1;
    case S_BETA2: return t.adamw.beta2;
    case S_EPS: return t.adamw.eps;
    case S_CLIP: return t.clip;
    case S_SHARDS: return t.shards;
    case S_ACCUM: return t.accumulate;
    case S_KD_ALPHA: return t.kd.alpha;
    case S_KD_TEMP: return t.kd.temperature;
    case S_COEFF: return t.disp.coeff;
    case S_TAU_COS: return t.disp.tau_cos;
    case S_TAU_L2: return t.disp.tau_l2;
    case S_MAX_TOKENS: return t.disp.max_tokens;
    default: break;
    }
    const char *choice = si == S_VARIANT    ? lmd_disp_variant_name(t.disp.variant)
                         : si == S_LOCATION ? lmd_disp_location_name(t.disp.location)
                                            : NULL;
    for (int k = 0; choice && SPEC_DEFS[si].choices[k]; k++)
        if (!strcmp(SPEC_DEFS[si].choices[k], choice)) return k;
    lmd_die("settings table: %s has no model default", SPEC_DEFS[si].name);
}

int spec_default(int si, sval *out) {
    const sdef *d = &SPEC_DEFS[si];
    if (d->def_from == DEF_NONE) return -1;
    double x = d->def_from == DEF_MODEL ? model_default(si) : d->def;
    memset(out, 0, sizeof *out);
    if (d->type == SET_NUM)
        out->d = x;
    else
        out->i = (int64_t)x;
    if (d->type == SET_ENUM) out->s = d->choices[out->i];
    return 0;
}

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
