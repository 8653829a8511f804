/* speccells.c — grid expansion: every grid point resolved into a validated cell with its
 * settings text and stable id (spec.h). */
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

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------------------------
 * Cells
 * ------------------------------------------------------------------------------------------ */

char *spec_path_join(const char *dir, const char *p) {
    if (p[0] == '/') return lmd_strdup(p);
    sbuf b = {0};
    spec_sb_addf(&b, "%s/%s", dir, p);
    return b.p;
}

char *lmd_cell_settings(const lmd_cell *c) {
    sbuf b = {0};
    char x[40];
    const gpt_config *g = &c->cfg;
    const lmd_train_opts *t = &c->train;
    spec_sb_addf(&b, "lmdisp-cell-settings 1\n");
    spec_sb_addf(&b, "model.vocab=%d\nmodel.n_ctx=%d\nmodel.n_layer=%d\nmodel.n_embd=%d\n",
                 g->vocab_size, g->n_ctx, g->n_layer, g->n_embd);
    spec_sb_addf(&b, "model.n_head=%d\nmodel.mlp_dim=%d\n", g->n_head, g->mlp_dim);
    spec_sb_addf(&b, "train.seed=%llu\ntrain.steps=%lld\ntrain.batch=%d\ntrain.seq=%d\n",
                 (unsigned long long)t->seed, (long long)t->steps, t->B, t->T);
    spec_fmt_num(x, sizeof x, t->lr);
    spec_sb_addf(&b, "train.lr=%s\ntrain.schedule=cosine\n", x);
    spec_fmt_num(x, sizeof x, t->warmup_ratio);
    spec_sb_addf(&b, "train.warmup_ratio=%s\n", x);
    spec_fmt_num(x, sizeof x, t->min_lr_ratio);
    spec_sb_addf(&b, "train.min_lr_ratio=%s\n", x);
    spec_fmt_num(x, sizeof x, t->adamw.weight_decay);
    spec_sb_addf(&b, "train.weight_decay=%s\n", x);
    spec_fmt_num(x, sizeof x, t->adamw.beta1);
    spec_sb_addf(&b, "train.beta1=%s\n", x);
    spec_fmt_num(x, sizeof x, t->adamw.beta2);
    spec_sb_addf(&b, "train.beta2=%s\n", x);
    spec_fmt_num(x, sizeof x, t->adamw.eps);
    spec_sb_addf(&b, "train.eps=%s\n", x);
    spec_fmt_num(x, sizeof x, t->clip);
    spec_sb_addf(&b, "train.clip=%s\n", x);
    /* written only when set, so the ids of cells without it are those of earlier versions */
    if (t->shards != 1) spec_sb_addf(&b, "train.shards=%d\n", t->shards);
    if (t->accumulate != 1) spec_sb_addf(&b, "train.accumulate=%d\n", t->accumulate);
    if (c->init) spec_sb_addf(&b, "train.init=%s\n", c->init);
    spec_sb_addf(&b, "dispersion.variant=%s\n", lmd_disp_variant_name(t->disp.variant));
    if (t->disp.variant != DISP_OFF) {
        spec_fmt_num(x, sizeof x, t->disp.coeff);
        spec_sb_addf(&b, "dispersion.coeff=%s\n", x);
        spec_sb_addf(&b, "dispersion.location=%s\n", lmd_disp_location_name(t->disp.location));
        spec_fmt_num(x, sizeof x, t->disp.tau_cos);
        spec_sb_addf(&b, "dispersion.tau_cos=%s\n", x);
        spec_fmt_num(x, sizeof x, t->disp.tau_l2);
        spec_sb_addf(&b, "dispersion.tau_l2=%s\n", x);
        spec_sb_addf(&b, "dispersion.max_tokens=%d\n", t->disp.max_tokens);
    }
    if (c->kd.on) {
        /* a teacher cell by its id (so a retrained teacher renames its students); written
         * after linking (spec_kd.c), before it the line is left out */
        if (c->kd.model)
            spec_sb_addf(&b, "distill.teacher=%s\n", c->kd.model);
        else if (c->kd.teacher >= 0 && c->kd.teacher_id[0])
            spec_sb_addf(&b, "distill.teacher=cell:%s\n", c->kd.teacher_id);
        spec_fmt_num(x, sizeof x, c->kd.alpha);
        spec_sb_addf(&b, "distill.alpha=%s\n", x);
        spec_fmt_num(x, sizeof x, c->kd.temperature);
        spec_sb_addf(&b, "distill.temperature=%s\n", x);
    }
    const lmd_data_settings *d = &c->data;
    spec_sb_addf(&b, "data.source=%s\n", SPEC_SOURCES[d->source]);
    if (d->source == LMD_DATA_SYNTHETIC)
        spec_sb_addf(&b, "data.synthetic_seed=%llu\ndata.synthetic_tokens=%lld\n",
                     (unsigned long long)d->synthetic_seed, (long long)d->synthetic_tokens);
    else
        spec_sb_addf(&b, "data.path=%s\n", d->resolved);
    if (d->tokenizer_resolved) spec_sb_addf(&b, "data.tokenizer=%s\n", d->tokenizer_resolved);
    spec_sb_addf(&b, "data.vocab=%d\n", d->vocab);
    spec_fmt_num(x, sizeof x, d->val_fraction);
    spec_sb_addf(&b, "data.val_fraction=%s\n", x);
    spec_sb_addf(&b, "tracking.steps=");
    for (int i = 0; i < c->tracking.n_steps; i++)
        spec_sb_addf(&b, "%s%lld", i ? "," : "", (long long)c->tracking.steps[i]);
    spec_sb_addf(&b,
                 "\ntracking.eval_sequences=%d\ntracking.eval_seq_len=%d\ntracking.hist_bins=%d\n",
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

/* One grid point being resolved: its values and the " (grid point N: ...)" that every error
 * about it ends with. */
typedef struct {
    expand_ctx *x;
    const sval *v;
    char point[400];
} cell_ctx;

/* Records an error about setting si of the cell (at its value, else its section, else the
 * document) and returns -1, so a check reads `return cell_err(k, S_X, "...")`. */
__attribute__((format(printf, 3, 4))) static int cell_err(const cell_ctx *k, int si,
                                                          const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    spec_perr(k->x->doc->c, where(k->x->doc, k->v, si), SPEC_DEFS[si].name, "%s%s", msg, k->point);
    return -1;
}

/* data.source synthetic: the corpus options; path and tokenizer do not apply. */
static int resolve_data_synthetic(const cell_ctx *k, lmd_data_settings *d) {
    const sval *v = k->v;
    const lmd_synth_opts sd = lmd_synth_default();
    if (v[S_DATA_PATH].set)
        return cell_err(k, S_DATA_PATH,
                        "path is only used with source text or shards (source is synthetic)");
    if (v[S_DATA_TOKENIZER].set)
        return cell_err(k, S_DATA_TOKENIZER, "only used with source text (source is synthetic)");
    d->synthetic_seed = v[S_DATA_SYN_SEED].set ? (uint64_t)v[S_DATA_SYN_SEED].i : sd.seed;
    d->synthetic_tokens = v[S_DATA_SYN_TOKENS].set ? v[S_DATA_SYN_TOKENS].i : (int64_t)sd.n_tokens;
    d->vocab = v[S_DATA_VOCAB].set ? (int)v[S_DATA_VOCAB].i : sd.vocab_size;
    return 0;
}

/* data.tokenizer of a text source: loaded once per spelling, its vocabulary is the data's. */
static int resolve_tokenizer(const cell_ctx *k, lmd_data_settings *d) {
    expand_ctx *x = k->x;
    const sval *v = k->v;
    d->tokenizer = lmd_strdup(v[S_DATA_TOKENIZER].s);
    d->tokenizer_resolved = strncmp(d->tokenizer, "hf:", 3)
                                ? spec_path_join(x->base_dir, d->tokenizer)
                                : lmd_strdup(d->tokenizer); /* hf:ORG/NAME: the cache */
    if (!x->checked_tok || strcmp(x->checked_tok, d->tokenizer_resolved)) {
        lmd_tokenizer *tk = NULL;
        lmd_err te = {{0}};
        if (tok_load(&tk, d->tokenizer_resolved, &te))
            return cell_err(k, S_DATA_TOKENIZER,
                            "%s (relative paths are resolved against the spec file's directory)",
                            te.msg);
        uint32_t V = tok_vocab_size(tk);
        tok_free(tk);
        if (V < 2 || V > (uint32_t)(1 << 24))
            return cell_err(k, S_DATA_TOKENIZER, "tokenizer %s has %u ids, outside [2, %d]",
                            d->tokenizer_resolved, V, 1 << 24);
        free(x->checked_tok);
        x->checked_tok = lmd_strdup(d->tokenizer_resolved);
        x->checked_tok_vocab = (int)V;
    }
    if (v[S_DATA_VOCAB].set && v[S_DATA_VOCAB].i != x->checked_tok_vocab)
        return cell_err(k, S_DATA_VOCAB,
                        "the tokenizer %s has %d ids: data.vocab is taken from it (leave it out "
                        "or give %d)",
                        d->tokenizer_resolved, x->checked_tok_vocab, x->checked_tok_vocab);
    d->vocab = x->checked_tok_vocab;
    return 0;
}

/* data.path of a text or shards source exists (checked once per path). */
static int check_data_path(const cell_ctx *k, const lmd_data_settings *d) {
    expand_ctx *x = k->x;
    if (x->checked_path && x->checked_source == (int)d->source &&
        !strcmp(x->checked_path, d->resolved))
        return 0;
    if (d->source == LMD_DATA_TEXT) {
        struct stat st;
        if (stat(d->resolved, &st) != 0)
            return cell_err(k, S_DATA_PATH,
                            "data file %s: %s (relative paths are resolved against the spec "
                            "file's directory)",
                            d->resolved, strerror(errno));
        if (!S_ISREG(st.st_mode))
            return cell_err(k, S_DATA_PATH, "data file %s is not a regular file", d->resolved);
    } else {
        glob_t gl;
        int rc = glob(d->resolved, 0, NULL, &gl);
        size_t nm = rc == 0 ? gl.gl_pathc : 0;
        if (rc == 0 || rc == GLOB_NOMATCH) globfree(&gl);
        if (nm == 0)
            return cell_err(k, S_DATA_PATH,
                            "no shard file matches %s (relative paths are resolved against the "
                            "spec file's directory)",
                            d->resolved);
    }
    free(x->checked_path);
    x->checked_path = lmd_strdup(d->resolved);
    x->checked_source = (int)d->source;
    return 0;
}

/* data.*: the source, its path or corpus, and the data's vocabulary. */
static int resolve_data(const cell_ctx *k, lmd_data_settings *d) {
    const sval *v = k->v;
    d->source = (lmd_data_source)v[S_DATA_SOURCE].i;
    d->val_fraction = v[S_DATA_VALF].d;
    if (d->source == LMD_DATA_SYNTHETIC) return resolve_data_synthetic(k, d);
    const char *src = SPEC_SOURCES[d->source];
    if (v[S_DATA_SYN_SEED].set)
        return cell_err(k, S_DATA_SYN_SEED, "only used with source synthetic (source is %s)", src);
    if (v[S_DATA_SYN_TOKENS].set)
        return cell_err(k, S_DATA_SYN_TOKENS, "only used with source synthetic (source is %s)",
                        src);
    if (!v[S_DATA_PATH].set)
        return cell_err(k, S_DATA_SOURCE,
                        "source %s needs data.path (relative to the spec's directory)", src);
    if (v[S_DATA_TOKENIZER].set && d->source != LMD_DATA_TEXT)
        return cell_err(k, S_DATA_TOKENIZER, "only used with source text (source is %s)", src);
    if (d->source == LMD_DATA_TEXT && v[S_DATA_TOKENIZER].set) {
        if (resolve_tokenizer(k, d)) return -1;
    } else if (d->source == LMD_DATA_TEXT) {
        if (v[S_DATA_VOCAB].set && v[S_DATA_VOCAB].i != 256)
            return cell_err(k, S_DATA_VOCAB,
                            "text data is read as bytes: its vocab is 256 (give data.tokenizer "
                            "to encode it with a tokenizer.json)");
        d->vocab = 256;
    } else {
        d->vocab = v[S_DATA_VOCAB].set ? (int)v[S_DATA_VOCAB].i : LMD_DATA_SHARDS_VOCAB;
    }
    d->path = lmd_strdup(v[S_DATA_PATH].s);
    d->resolved = spec_path_join(k->x->base_dir, d->path);
    return check_data_path(k, d);
}

/* train.init: the model's shape is the init model's; a shape key written in the spec must
 * agree with it. */
static int resolve_init_model(const cell_ctx *k, lmd_cell *cell) {
    const sval *v = k->v;
    gpt_config ic;
    char res[4096];
    lmd_err e;
    if (probe_model(k->x, 0, v[S_INIT].s, res, sizeof res, &ic, &e))
        return cell_err(k, S_INIT, "%s", e.msg);
    cell->init = lmd_strdup(res);
    static const int keys[] = {S_N_LAYER, S_N_EMBD, S_N_HEAD, S_N_CTX, S_MODEL_VOCAB, S_MLP_DIM};
    const int have[] = {ic.n_layer, ic.n_embd, ic.n_head, ic.n_ctx, ic.vocab_size, ic.mlp_dim};
    for (int q = 0; q < 6; q++)
        if (v[keys[q]].set && v[keys[q]].i != have[q])
            return cell_err(k, keys[q],
                            "train.init %.900s has %s %d: the model's shape is taken from it "
                            "(leave %s out or give %d)",
                            res, SPEC_DEFS[keys[q]].name, have[q], SPEC_DEFS[keys[q]].name,
                            have[q]);
    cell->cfg = ic;
    if (ic.vocab_size < cell->data.vocab)
        return cell_err(k, S_INIT, "the init model's vocab %d is smaller than the data's vocab %d",
                        ic.vocab_size, cell->data.vocab);
    return 0;
}

/* model.*: the shape (or train.init's), checked against the data's vocabulary. */
static int resolve_model(const cell_ctx *k, lmd_cell *cell) {
    const sval *v = k->v;
    gpt_config *g = &cell->cfg;
    g->n_layer = (int)v[S_N_LAYER].i;
    g->n_embd = (int)v[S_N_EMBD].i;
    g->n_head = (int)v[S_N_HEAD].i;
    g->n_ctx = (int)v[S_N_CTX].i;
    if (v[S_INIT].set) {
        if (resolve_init_model(k, cell)) return -1;
    } else if (!v[S_MLP_DIM].set) {
        return cell_err(k, S_MLP_DIM,
                        "missing: give mlp_dim as a grid axis (grid: {mlp_dim: [...]}) or as "
                        "model.mlp_dim");
    } else {
        g->mlp_dim = (int)v[S_MLP_DIM].i;
        g->vocab_size = v[S_MODEL_VOCAB].set ? (int)v[S_MODEL_VOCAB].i : cell->data.vocab;
    }
    if (g->vocab_size < cell->data.vocab)
        return cell_err(k, S_MODEL_VOCAB,
                        "vocab %d is smaller than the data's vocab %d (token ids would be out "
                        "of range)",
                        g->vocab_size, cell->data.vocab);
    if (g->n_embd % g->n_head != 0)
        return cell_err(k, v[S_N_HEAD].src || !v[S_N_EMBD].src ? S_N_HEAD : S_N_EMBD,
                        "n_embd (%d) must be divisible by n_head (%d)", g->n_embd, g->n_head);
    return 0;
}

/* train.*: batch, steps (or tokens), schedule, AdamW, shards; the defaults not in the table
 * are lmd_train_default's. */
static int resolve_train(const cell_ctx *k, lmd_cell *cell) {
    const sval *v = k->v;
    lmd_train_opts *t = &cell->train;
    *t = lmd_train_default();
    t->B = (int)v[S_BATCH].i;
    t->T = (int)v[S_SEQ].i;
    if (t->T > cell->cfg.n_ctx)
        return cell_err(k, v[S_SEQ].src ? S_SEQ : S_N_CTX,
                        "seq (%d) must not exceed the model's n_ctx (%d)", t->T, cell->cfg.n_ctx);
    if (v[S_STEPS].set && v[S_TOKENS].set)
        return cell_err(k, S_TOKENS, "give train.steps or train.tokens, not both");
    if (!v[S_STEPS].set && !v[S_TOKENS].set)
        return cell_err(k, S_STEPS, "missing: give train.steps or train.tokens");
    t->accumulate = (int)v[S_ACCUM].i;
    int64_t bt = (int64_t)t->B * t->T * t->accumulate; /* tokens per optimizer step */
    if (v[S_STEPS].set) {
        t->steps = v[S_STEPS].i;
    } else {
        /* ceil(tokens / bt) without forming tokens + bt - 1, which overflows near INT64_MAX */
        int64_t tok = v[S_TOKENS].i;
        t->steps = tok / bt + (tok % bt != 0);
        if (t->steps > 1000000000000LL)
            return cell_err(
                k, S_TOKENS,
                "%lld tokens is more than 10^12 steps of batch x seq x accumulate = %lld",
                (long long)tok, (long long)bt);
    }
    if (t->steps > 1000000000000LL)
        return cell_err(k, S_STEPS, "%lld steps is more than 10^12", (long long)t->steps);
    t->lr = v[S_LR].d;
    t->warmup_ratio = v[S_WARMUP].d;
    t->min_lr_ratio = v[S_MIN_LR].d;
    t->clip = v[S_CLIP].d;
    t->adamw.beta1 = v[S_BETA1].d;
    t->adamw.beta2 = v[S_BETA2].d;
    t->adamw.eps = v[S_EPS].d;
    t->adamw.weight_decay = v[S_WD].d;
    t->seed = (uint64_t)v[S_SEED].i;
    t->shards = (int)v[S_SHARDS].i;
    if (t->shards & (t->shards - 1))
        return cell_err(k, S_SHARDS, "shards (%d) must be a power of 2 (1, 2, 4, 8, ...)",
                        t->shards);
    if (t->B % t->shards != 0)
        return cell_err(k, v[S_SHARDS].src ? S_SHARDS : S_BATCH,
                        "batch (%d) must be divisible by shards (%d)", t->B, t->shards);
    return 0;
}

/* dispersion.*: the variant and its parameters. */
static int resolve_dispersion(const cell_ctx *k, lmd_disp_opts *o) {
    const sval *v = k->v;
    lmd_err e;
    *o = lmd_disp_default();
    if (lmd_disp_parse_variant(v[S_VARIANT].s, &o->variant, &e))
        return cell_err(k, S_VARIANT, "%s", e.msg);
    if (lmd_disp_parse_location(v[S_LOCATION].s, &o->location, &e))
        return cell_err(k, S_LOCATION, "%s", e.msg);
    o->coeff = v[S_COEFF].d;
    o->tau_cos = v[S_TAU_COS].d;
    o->tau_l2 = v[S_TAU_L2].d;
    o->max_tokens = (int)v[S_MAX_TOKENS].i;
    return 0;
}

/* distill.*: on when a teacher is given and alpha > 0; a teacher model (not a cell
 * reference, linked later by spec_kd.c) is probed now. */
static int resolve_distill(const cell_ctx *k, lmd_cell *cell) {
    const sval *v = k->v;
    const spec_doc *doc = k->x->doc;
    lmd_cell_kd *kd = &cell->kd;
    kd->teacher = -1;
    kd->alpha = v[S_KD_ALPHA].d;
    kd->temperature = v[S_KD_TEMP].d;
    if (v[S_KD_TEACHER].set && doc->kd_ref.kind)
        return cell_err(k, S_KD_TEACHER,
                        "distill.teacher is given twice (a model and a cell reference)");
    kd->on = (v[S_KD_TEACHER].set || doc->kd_ref.kind) && kd->alpha > 0.0;
    if ((v[S_KD_ALPHA].set || v[S_KD_TEMP].set) && !v[S_KD_TEACHER].set && !doc->kd_ref.kind)
        return cell_err(k, v[S_KD_ALPHA].set ? S_KD_ALPHA : S_KD_TEMP,
                        "distillation needs distill.teacher (a model, {cell: {...}} or {id: "
                        "...})");
    if (!kd->on || !v[S_KD_TEACHER].set) return 0;
    gpt_config tc;
    char res[4096];
    lmd_err e;
    if (probe_model(k->x, 1, v[S_KD_TEACHER].s, res, sizeof res, &tc, &e))
        return cell_err(k, S_KD_TEACHER, "%s", e.msg);
    if (tc.vocab_size != cell->cfg.vocab_size)
        return cell_err(k, S_KD_TEACHER,
                        "the teacher %.900s has vocab %d, the student %d: distillation compares "
                        "distributions over one vocabulary",
                        res, tc.vocab_size, cell->cfg.vocab_size);
    if (tc.n_ctx < cell->train.T)
        return cell_err(k, S_KD_TEACHER, "the teacher %.900s has n_ctx %d < train.seq %d", res,
                        tc.n_ctx, cell->train.T);
    kd->model = lmd_strdup(res);
    kd->teacher_cfg = tc;
    return 0;
}

/* The split rule of lmd_data_split for the synthetic corpus, checked now rather than after
 * the queue starts. */
static int check_synthetic_split(const cell_ctx *k, const lmd_cell *cell) {
    const lmd_data_settings *d = &cell->data;
    const lmd_train_opts *t = &cell->train;
    if (d->source != LMD_DATA_SYNTHETIC) return 0;
    int64_t need = (int64_t)t->B * t->T * t->accumulate + 1, n = d->synthetic_tokens;
    int64_t n_val = (int64_t)(d->val_fraction * (double)n);
    if (n_val < need) n_val = need;
    if (n < 2 * need || n - n_val < need)
        return cell_err(k, S_DATA_SYN_TOKENS,
                        "%lld synthetic tokens are too few for a train/validation split with "
                        "val_fraction %g and batch x seq = %d x %d (each part needs %lld)",
                        (long long)n, d->val_fraction, t->B, t->T, (long long)need);
    return 0;
}

/* tracking.checkpoints as an explicit list: sorted, unique, within the training steps. */
static int tracking_list(const cell_ctx *k, lmd_tracking *tr, int64_t steps) {
    const ynode *lst = k->x->doc->track_list;
    tr->steps = spec_i64_alloc(lst->n);
    for (size_t j = 0; j < lst->n; j++) {
        long long s = strtoll(lst->kids[j]->val, NULL, 10);
        double y = strtod(lst->kids[j]->val, NULL);
        if (y != (double)s) s = (long long)y; /* written as 1e3 */
        if (s > steps) {
            spec_perr(k->x->doc->c, lst->kids[j], "tracking.checkpoints",
                      "step %lld is beyond the last training step (%lld)%s", s, (long long)steps,
                      k->point);
            return -1;
        }
        tr->steps[j] = s;
    }
    qsort(tr->steps, lst->n, sizeof *tr->steps, cmp_i64);
    int n = 0;
    for (size_t j = 0; j < lst->n; j++)
        if (n == 0 || tr->steps[n - 1] != tr->steps[j]) tr->steps[n++] = tr->steps[j];
    tr->n_steps = n;
    return 0;
}

/* tracking.*: the evaluation set and the schedule of tracked steps. */
static int resolve_tracking(const cell_ctx *k, lmd_cell *cell) {
    const sval *v = k->v;
    const spec_doc *doc = k->x->doc;
    const lmd_train_opts *t = &cell->train;
    lmd_tracking *tr = &cell->tracking;
    tr->eval_sequences = (int)v[S_EVAL_SEQS].i;
    tr->eval_seq_len = v[S_EVAL_SEQ_LEN].set ? (int)v[S_EVAL_SEQ_LEN].i : t->T;
    if (tr->eval_seq_len > cell->cfg.n_ctx)
        return cell_err(k, v[S_EVAL_SEQ_LEN].src ? S_EVAL_SEQ_LEN : S_N_CTX,
                        "eval_seq_len (%d) must not exceed the model's n_ctx (%d)",
                        tr->eval_seq_len, cell->cfg.n_ctx);
    tr->hist_bins = (int)v[S_HIST_BINS].i;
    tr->save_checkpoints = (int)v[S_SAVE_CK].i;
    const int64_t first = lmd_track_first(t->steps, t->warmup_ratio);
    if (doc->track == TRACK_LIST) {
        if (tracking_list(k, tr, t->steps)) return -1;
    } else if (doc->track == TRACK_EVERY) {
        if (t->steps / v[S_EVERY].i > LMD_SPEC_MAX_TRACK)
            return cell_err(k, S_EVERY, "every %lld gives more than %d checkpoints over %lld steps",
                            (long long)v[S_EVERY].i, LMD_SPEC_MAX_TRACK, (long long)t->steps);
        tr->n_steps = lmd_track_every(t->steps, v[S_EVERY].i, first, &tr->steps);
    } else if (v[S_LOG_POINTS].set) {
        tr->n_steps = lmd_track_log_points(t->steps, (int)v[S_LOG_POINTS].i, first, &tr->steps);
    } else {
        tr->n_steps = lmd_track_log(t->steps, first, &tr->steps);
    }
    k->x->total_track += (size_t)tr->n_steps;
    if (k->x->total_track > (size_t)20000000)
        return cell_err(k, S_LOG_POINTS, "the grid tracks more than 2*10^7 checkpoints in total");
    return 0;
}

/* Resolves the values v of one grid point into *cell and validates what can only be checked
 * with all settings known. Returns 0 or -1 (error reported). */
static int resolve_cell(expand_ctx *x, const sval *v, const int *choice, size_t index,
                        lmd_cell *cell) {
    cell_ctx k = {.x = x, .v = v};
    describe_point(x->doc, choice, index, k.point, sizeof k.point);
    if (resolve_data(&k, &cell->data) || resolve_model(&k, cell) || resolve_train(&k, cell) ||
        resolve_dispersion(&k, &cell->train.disp) || resolve_distill(&k, cell) ||
        check_synthetic_split(&k, cell) || resolve_tracking(&k, cell))
        return -1;

    /* the model's own checks, as a backstop for anything missed above */
    const lmd_train_opts *t = &cell->train;
    lmd_err e;
    if (gpt_config_validate(&cell->cfg, &e)) return cell_err(&k, S_MLP_DIM, "%s", e.msg);
    if (lmd_train_validate(t, &cell->cfg, &e)) return cell_err(&k, S_STEPS, "%s", e.msg);
    if (lmd_disp_validate(&t->disp, &e)) return cell_err(&k, S_VARIANT, "%s", e.msg);

    cell->index = index;
    cell->n_params = gpt_num_params(&cell->cfg);
    cell->flops = gpt_flops_per_step(&cell->cfg, t->B, t->T) * (double)t->steps * t->accumulate;
    if (cell->kd.model) /* the teacher's forward: a third of its training step's FLOPs */
        cell->flops += gpt_flops_per_step(&cell->kd.teacher_cfg, t->B, t->T) / 3.0 *
                       (double)t->steps * t->accumulate;
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

void spec_cell_free(lmd_cell *cell) {
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
int spec_expand(spec_doc *doc, lmd_spec *s) {
    pctx *c = doc->c;
    /* mode switches of tracking: */
    if (doc->base[S_EVERY].set && doc->track_explicit && doc->track != TRACK_EVERY)
        spec_perr(c, doc->base[S_EVERY].src, "tracking.every",
                  "applies only to checkpoints: every (checkpoints is %s)",
                  doc->track == TRACK_LOG ? "log" : "an explicit list");
    if (doc->base[S_EVERY].set) doc->track = TRACK_EVERY;
    if (doc->track == TRACK_EVERY && !doc->base[S_EVERY].set)
        spec_perr(c, doc->track_node, "tracking.checkpoints",
                  "checkpoints: every needs tracking.every: N (a step interval)");
    if (doc->base[S_LOG_POINTS].set && doc->track != TRACK_LOG)
        spec_perr(c, doc->base[S_LOG_POINTS].src, "tracking.log_points",
                  "applies only to checkpoints: log");
    if (doc->grid_node && doc->n_axes == 0 && c->n_errors == 0)
        spec_perr(c, doc->grid_node, "grid",
                  "the grid is empty: give at least one axis, e.g. "
                  "mlp_dim: [128, 256]");
    if (doc->grid_node && doc->axis_of[S_MLP_DIM] < 0 && !doc->base[S_MLP_DIM].set &&
        !doc->base[S_INIT].set && doc->axis_of[S_INIT] < 0 && c->n_errors == 0)
        spec_perr(c, doc->grid_node, "grid.mlp_dim",
                  "missing: the mlp_dim axis is required (or fix model.mlp_dim)");
    if (c->n_errors) return -1;

    /* size of the product, capped before anything is allocated */
    size_t n_cells = 1;
    for (int a = 0; a < doc->n_axes; a++) {
        if (n_cells > LMD_SPEC_MAX_CELLS / (size_t)doc->axes[a].len) {
            spec_perr(c, doc->grid_node, "grid", "the grid has more than %d cells",
                      LMD_SPEC_MAX_CELLS);
            return -1;
        }
        n_cells *= (size_t)doc->axes[a].len;
    }

    /* defaults for everything not set */
    sval base[N_SETTINGS];
    memcpy(base, doc->base, sizeof base);
    for (int i = 0; i < N_SETTINGS; i++)
        if (!base[i].set) spec_default(i, &base[i]);

    s->n_axes = doc->n_axes;
    s->axes = lmd_calloc((size_t)doc->n_axes + 1, sizeof *s->axes);
    for (int a = 0; a < doc->n_axes; a++) {
        sbuf b = {0};
        for (int j = 0; j < doc->axes[a].n_members; j++)
            spec_sb_addf(&b, "%s%s", j ? "+" : "", SPEC_DEFS[doc->axes[a].m[j].setting].name);
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
            spec_cell_free(&s->cells[idx]);
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
            spec_perr(
                c, doc->grid_node, "grid",
                "grid points %zu and %zu resolve to identical settings (id %s); with "
                "dispersion off, coeff/location/tau/max_tokens do not matter — pair them with "
                "zip: instead",
                a->index, b->index, a->id);
        else
            spec_perr(
                c, doc->grid_node, "grid",
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
