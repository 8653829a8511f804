/* cmd_train.c — `lmdisp train`: trains one model with a progress line and checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "datasrc.h"
#include "gpt.h"
#include "train.h"
#include "specflags.h"
#include "trainopts.h"

static int parse_steps(const char *s, int64_t **out, int *n);

/* --checkpoint-steps: a list like 0,100,500 (so a --config file's is refused at its line). */
static int check_steps(const char *text, char *msg, size_t n) {
    int64_t *list = NULL;
    int k = 0;
    if (parse_steps(text, &list, &k) == 0) {
        free(list);
        return 0;
    }
    snprintf(msg, n, "expected a list of steps like 0,100,500, got '%s'", text);
    return -1;
}

/* Everything `lmdisp train` takes: the targets of its flag rows. */
typedef struct {
    const char *data, *out, *init, *resume, *ck_steps;
    int64_t every, log_every;
    int eval_batches, threads;
    double val_fraction;
    gpt_config cfg;
    lmd_train_opts o;
} train_args;

#define TRAIN_OWN_BEFORE 15 /* train's own rows before the training rows */
#define TRAIN_NFLAGS (TRAIN_OWN_BEFORE + LMD_TRAINOPTS_NFLAGS + 1)

/* The flag rows of `train` into f (TRAIN_NFLAGS), targeting t, whose values (the model
 * layer's defaults: gpt_config_default, lmd_train_default, LMD_DATA_VAL_FRACTION) the help
 * prints. Returns the number of rows. */
static int train_flags(train_args *t, lmd_flag *f) {
    gpt_config *c = &t->cfg;
    /* clang-format off */
    const lmd_flag own[TRAIN_OWN_BEFORE] = {
        {.name = "data", .kind = FLAG_STR, .target = &t->data, .metavar = "SRC",
         .group = "data and output:",
         .help = "synthetic | synthetic:SEED | text:PATH | shards:GLOB |\ntok:TOKENIZER:PATH "
                 "(text or .jsonl through an HF tokenizer.json;\nvocab from the tokenizer)"},
        {.name = "val-fraction", .setting = "data.val_fraction", .kind = FLAG_DOUBLE,
         .target = &t->val_fraction, .metavar = "X",
         .help = "held-out fraction at the end of the data, 0 = none"},
        {.name = "out", .kind = FLAG_STR, .target = &t->out, .metavar = "DIR",
         .help = "checkpoint directory"},
        {.name = "checkpoint-steps", .kind = FLAG_STR, .target = &t->ck_steps, .metavar = "LIST",
         .help = "steps to save, e.g. 0,100,500", .def_text = "0 and the last",
         .check = check_steps},
        {.name = "checkpoint-every", .kind = FLAG_I64, .target = &t->every, .lo = 1,
         .metavar = "N", .help = "save every N steps (plus step 0 and the last)", .def_text = ""},
        {.name = "log-every", .kind = FLAG_I64, .target = &t->log_every, .lo = 1, .metavar = "N",
         .help = "progress line every N steps", .def_text = "steps/20"},
        {.name = "eval-batches", .kind = FLAG_INT, .target = &t->eval_batches, .lo = 1,
         .hi = 1000000, .metavar = "N", .help = "validation batches per evaluation"},
        {.name = "vocab", .setting = "model.vocab", .kind = FLAG_INT, .target = &c->vocab_size,
         .metavar = "N", .help = "vocabulary size", .def_text = "the data's",
         .group = "model (ignored with --init/--resume, which take the checkpoint's config):"},
        {.name = "n-ctx", .setting = "model.n_ctx", .kind = FLAG_INT, .target = &c->n_ctx,
         .metavar = "N", .help = "context length"},
        {.name = "n-layer", .setting = "model.n_layer", .kind = FLAG_INT, .target = &c->n_layer,
         .metavar = "N", .help = "blocks"},
        {.name = "n-embd", .setting = "model.n_embd", .kind = FLAG_INT, .target = &c->n_embd,
         .metavar = "N", .help = "width"},
        {.name = "n-head", .setting = "model.n_head", .kind = FLAG_INT, .target = &c->n_head,
         .metavar = "N", .help = "attention heads"},
        {.name = "mlp-dim", .setting = "model.mlp_dim", .kind = FLAG_INT, .target = &c->mlp_dim,
         .metavar = "N", .help = "MLP width"},
        {.name = "init", .kind = FLAG_STR, .target = &t->init, .metavar = "CK.h5",
         .help = "start from this checkpoint's parameters (fresh optimizer)"},
        {.name = "resume", .kind = FLAG_STR, .target = &t->resume, .metavar = "CK.h5",
         .help = "continue a run from a full checkpoint, bit for bit"},
    };
    const lmd_flag threads = {.name = "threads", .kind = FLAG_INT, .target = &t->threads,
                              .lo = 1, .hi = 1024, .metavar = "N", .help = "BLAS/OpenMP threads",
                              .group = "other:"};
    /* clang-format on */
    int n = 0;
    for (; n < TRAIN_OWN_BEFORE; n++) f[n] = own[n];
    n += lmd_trainopts_flags(&t->o, f + n);
    f[n++] = threads;
    return n;
}

static train_args train_defaults(void) {
    train_args t = {.data = "synthetic",
                    .out = "results/train",
                    .eval_batches = 8,
                    .threads = 1,
                    .val_fraction = LMD_DATA_VAL_FRACTION,
                    .cfg = gpt_config_default(),
                    .o = lmd_train_default()};
    return t;
}

static void usage(FILE *out) {
    train_args t = train_defaults();
    lmd_flag f[TRAIN_NFLAGS];
    int n = train_flags(&t, f);
    fprintf(out, "usage: lmdisp train [options]\n"
                 "\n"
                 "Trains one GPT-2-like model and writes checkpoints (DESIGN.md 4.1).\n"
                 "\n");
    lmd_flags_help(out, f, n);
    fprintf(out, "  --config FILE.yaml       a YAML mapping of the flags above (`n_layer: 4`,\n"
                 "                           `lr: 3e-3`, `dispersion: angular_spread`), each key\n"
                 "                           once; flags on the command line override the file\n");
}

/* Parses "0,10,100" into a sorted unique list. */
static int parse_steps(const char *s, int64_t **out, int *n) {
    int cap = 16, k = 0;
    int64_t *v = lmd_calloc((size_t)cap, sizeof *v);
    const char *p = s;
    while (*p) {
        char *end;
        long long x = strtoll(p, &end, 10);
        if (end == p || x < 0) {
            free(v);
            return -1;
        }
        if (k == cap) {
            cap *= 2;
            int64_t *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) lmd_die("out of memory");
            v = nv;
        }
        v[k++] = x;
        p = end;
        if (*p == ',')
            p++;
        else if (*p) {
            free(v);
            return -1;
        }
    }
    *out = v;
    *n = k;
    return 0;
}

static int in_list(int64_t step, const int64_t *list, int nlist) {
    for (int i = 0; i < nlist; i++)
        if (list[i] == step) return 1;
    return 0;
}

/* The command line (and --config FILE) into *t; returns 0, -1 after --help, or 2 (reported). */
static int parse_train_args(int argc, char **argv, train_args *t, lmd_flags_config **cf) {
    lmd_args a;
    lmd_args_init(&a, "train", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return -1;
    }
    *t = train_defaults();
    lmd_flag f[TRAIN_NFLAGS];
    int n = train_flags(t, f);
    const char *config = lmd_args_str(&a, "config");
    char *errors = NULL;
    if (config && lmd_flags_config_read(config, f, n, cf, &errors)) {
        fprintf(stderr, "%s\n", errors);
        free(errors);
        lmd_args_free(&a);
        return 2;
    }
    lmd_flags_parse(&a, f, n); /* after the file: the command line overrides it */
    lmd_trainopts_check(&a, &t->o);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad) return 2;
    if (t->init && t->resume) {
        fprintf(stderr, "lmdisp train: give --init or --resume, not both\n");
        return 2;
    }
    return 0;
}

static int train_run(train_args *t);

int cmd_train(int argc, char **argv) {
    train_args t;
    lmd_flags_config *cf = NULL;
    int rc = parse_train_args(argc, argv, &t, &cf);
    if (rc == 0) rc = train_run(&t);
    lmd_flags_config_free(cf); /* string targets may point into it */
    return rc < 0 ? 0 : rc;
}

static int train_run(train_args *t) {
    const char *data = t->data, *out = t->out, *init = t->init, *resume = t->resume;
    const char *ck_steps = t->ck_steps;
    int64_t every = t->every, log_every = t->log_every;
    int eval_batches = t->eval_batches;
    double val_fraction = t->val_fraction;
    gpt_config cfg = t->cfg;
    lmd_train_opts o = t->o;
    int64_t *list = NULL;
    int nlist = 0;
    if (ck_steps && parse_steps(ck_steps, &list, &nlist)) return 2; /* checked by its row */
    gpt_set_threads(t->threads);

    lmd_err err = {{0}};
    gpt_model model;
    lmd_train_state st;
    int have_state = 0;
    const char *from = init ? init : resume;
    if (from) {
        if (lmd_ckpt_load(from, &model, &st, &err)) {
            fprintf(stderr, "lmdisp train: %s\n", err.msg);
            free(list);
            return 2;
        }
        if (resume) {
            if (!st.has_state) {
                fprintf(stderr,
                        "lmdisp train: %s has no optimizer/state groups, so it cannot be resumed "
                        "bit for bit; use --init to start from its parameters\n",
                        resume);
                gpt_free(&model);
                free(list);
                return 2;
            }
            have_state = 1;
            o.seed = (uint64_t)st.seed;
        }
        cfg = model.cfg;
    }

    lmd_tokens toks;
    int data_vocab = cfg.vocab_size;
    if (lmd_datasrc_load(data, data_vocab, &toks, &err)) {
        fprintf(stderr, "lmdisp train: %s\n", err.msg);
        if (from) gpt_free(&model);
        free(list);
        return 2;
    }
    if (cfg.vocab_size == 0) cfg.vocab_size = toks.vocab_size;
    lmd_span train, val = {NULL, 0, 0};
    int rc = 0;
    if (val_fraction > 0.0) {
        rc = lmd_data_split(&toks, val_fraction, o.B, o.T, &train, &val, &err);
    } else {
        train.tok = toks.tok;
        train.n = toks.n;
        train.vocab_size = toks.vocab_size;
    }
    if (rc == 0 && !from) {
        rc = gpt_create(&model, &cfg, &err);
        if (rc == 0) gpt_init(&model, o.seed);
    }
    if (rc) {
        fprintf(stderr, "lmdisp train: %s\n", err.msg);
        lmd_tokens_free(&toks);
        free(list);
        return 2;
    }
    lmd_trainer tr;
    if (lmd_trainer_init(&tr, &o, &model, train, have_state ? &st : NULL, &err)) {
        fprintf(stderr, "lmdisp train: %s\n", err.msg);
        gpt_free(&model);
        lmd_tokens_free(&toks);
        free(list);
        return 2;
    }
    if (lmd_mkdirs(out, &err)) {
        fprintf(stderr, "lmdisp train: %s\n", err.msg);
        lmd_trainer_free(&tr);
        lmd_tokens_free(&toks);
        free(list);
        return 1;
    }
    if (log_every <= 0) log_every = o.steps >= 20 ? o.steps / 20 : 1;
    printf(
        "lmdisp train: %zu parameters (n_layer %d, n_embd %d, n_head %d, mlp_dim %d, vocab %d)\n",
        tr.model.num_params, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.mlp_dim, cfg.vocab_size);
    printf("  data %s: %zu train tokens, %zu validation tokens; batch %d x %d; %lld steps; "
           "dispersion %s\n",
           toks.source, train.n, val.n, o.B, o.T, (long long)o.steps,
           lmd_disp_variant_name(o.disp.variant));
    fflush(stdout);

    int status = 0;
    double t0 = lmd_now();
    int64_t start_step = tr.state.step;
    for (;;) {
        int64_t s = tr.state.step;
        /* step 0 and the last step always; then the chosen list and/or every N */
        int save =
            s == 0 || s == o.steps || in_list(s, list, nlist) || (every > 0 && s % every == 0);
        if (save && !(have_state && s == start_step)) {
            char path[4200];
            if (lmd_path(path, sizeof path, &err, "%s/step%07lld.h5", out, (long long)s)) {
                fprintf(stderr, "lmdisp train: %s\n", err.msg);
                status = 1;
                break;
            }
            double vl = val.n ? lmd_eval_loss(&tr.model, val, o.B, o.T, eval_batches) : NAN;
            if (lmd_ckpt_save(path, &tr.model, &tr.state, &err)) {
                fprintf(stderr, "lmdisp train: %s\n", err.msg);
                status = 1;
                break;
            }
            printf("  checkpoint %s (val loss %.4f)\n", path, vl);
            fflush(stdout);
        }
        if (s >= o.steps) break;
        if (lmd_trainer_step(&tr)) {
            fprintf(stderr, "lmdisp train: diverged at step %lld (loss %g, grad norm %g)\n",
                    (long long)s, tr.last.loss, tr.grad_norm);
            status = 1;
            break;
        }
        int64_t done = tr.state.step;
        if (done % log_every == 0 || done == o.steps) {
            double el = lmd_now() - t0;
            double tps = (double)(done - start_step) * o.B * o.T / (el > 0 ? el : 1e-9);
            double eta = (double)(o.steps - done) * o.B * o.T / (tps > 0 ? tps : 1e-9);
            if (o.disp.variant != DISP_OFF)
                printf("step %6lld/%lld  loss %.4f (ce %.4f + %.3g x disp %.4f)  lr %.3e  "
                       "|g| %.3f  %.0f tok/s  ETA %.0fs\n",
                       (long long)done, (long long)o.steps, tr.last.loss, tr.last.ce, o.disp.coeff,
                       tr.last.disp, tr.lr, tr.grad_norm, tps, eta);
            else
                printf("step %6lld/%lld  loss %.4f  lr %.3e  |g| %.3f  %.0f tok/s  ETA %.0fs\n",
                       (long long)done, (long long)o.steps, tr.last.loss, tr.lr, tr.grad_norm, tps,
                       eta);
            fflush(stdout);
        }
    }
    if (status == 0 && val.n) {
        double vl = lmd_eval_loss(&tr.model, val, o.B, o.T, eval_batches);
        printf("final validation loss %.4f (ln vocab = %.4f)\n", vl, log((double)cfg.vocab_size));
    }
    lmd_trainer_free(&tr);
    lmd_tokens_free(&toks);
    free(list);
    return status;
}
