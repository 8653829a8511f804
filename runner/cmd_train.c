/* cmd_train.c — `lmdisp train`: trains one model with a progress line and checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "datasrc.h"
#include "flatyaml.h"
#include "gpt.h"
#include "train.h"
#include "trainopts.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmdisp train [options]\n"
            "\n"
            "Trains one GPT-2-like model and writes checkpoints (DESIGN.md 4.1).\n"
            "\n"
            "data and output:\n"
            "  --data SRC              synthetic | synthetic:SEED | text:PATH | shards:GLOB"
            " (default synthetic)\n"
            "                          | tok:TOKENIZER:PATH (text or .jsonl through an HF\n"
            "                          tokenizer.json; vocab from the tokenizer)\n"
            "  --val-fraction X        held-out fraction at the end of the data (default 0.1;"
            " 0 = none)\n"
            "  --out DIR               checkpoint directory (default results/train)\n"
            "  --checkpoint-steps LIST steps to save, e.g. 0,100,500 (default 0 and the last)\n"
            "  --checkpoint-every N    save every N steps (plus step 0 and the last)\n"
            "  --log-every N           progress line every N steps (default steps/20)\n"
            "  --eval-batches N        validation batches per evaluation (default 8)\n"
            "model (ignored with --init/--resume, which take the checkpoint's config):\n"
            "  --vocab N --n-ctx N --n-layer N --n-embd N --n-head N --mlp-dim N\n"
            "                          (defaults: data vocab, 128, 4, 128, 4, 512)\n"
            "  --init CK.h5            start from this checkpoint's parameters (fresh optimizer)\n"
            "  --resume CK.h5          continue a run from a full checkpoint, bit for bit\n"
            "%s"
            "  --threads N             BLAS/OpenMP threads (default 1)\n"
            "  --config FILE.yaml      flat `key: value` lines with the flags above (e.g.\n"
            "                          `n_layer: 4`, `dispersion: angular_spread`); flags on the\n"
            "                          command line override the file\n",
            lmd_trainopts_help());
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

static int train_main(int argc, char **argv);

/* --config FILE: the file's `key: value` lines become flags; command-line flags override. */
int cmd_train(int argc, char **argv) {
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    if (!config) return train_main(argc, argv);
    int n = 0;
    char **av = NULL;
    lmd_err err = {{0}};
    if (lmd_flatyaml_args(config, argc, argv, &n, &av, &err)) {
        fprintf(stderr, "lmdisp train: %s\n", err.msg);
        return 2;
    }
    int rc = train_main(n, av);
    lmd_flatyaml_free(n, av);
    return rc;
}

static int train_main(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "train", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return 0;
    }
    const char *data = lmd_args_str(&a, "data");
    const char *out = lmd_args_str(&a, "out");
    const char *init = lmd_args_str(&a, "init");
    const char *resume = lmd_args_str(&a, "resume");
    const char *ck_steps = lmd_args_str(&a, "checkpoint-steps");
    (void)lmd_args_str(&a, "config"); /* already expanded by cmd_train */
    int64_t every = 0, log_every = 0;
    int eval_batches = 8, threads = 1;
    double val_fraction = 0.1;
    lmd_args_i64(&a, "checkpoint-every", &every, 1);
    lmd_args_i64(&a, "log-every", &log_every, 1);
    lmd_args_int(&a, "eval-batches", &eval_batches, 1, 1000000);
    lmd_args_int(&a, "threads", &threads, 1, 1024);
    lmd_args_double(&a, "val-fraction", &val_fraction);
    gpt_config cfg = {
        .vocab_size = 0, .n_ctx = 128, .n_layer = 4, .n_embd = 128, .n_head = 4, .mlp_dim = 512};
    lmd_args_int(&a, "vocab", &cfg.vocab_size, 2, GPT_MAX_VOCAB);
    lmd_args_int(&a, "n-ctx", &cfg.n_ctx, 1, 1 << 20);
    lmd_args_int(&a, "n-layer", &cfg.n_layer, 1, 1024);
    lmd_args_int(&a, "n-embd", &cfg.n_embd, 1, 1 << 16);
    lmd_args_int(&a, "n-head", &cfg.n_head, 1, 1 << 12);
    lmd_args_int(&a, "mlp-dim", &cfg.mlp_dim, 1, 1 << 20);
    lmd_train_opts o = lmd_train_default();
    lmd_trainopts_parse(&a, &o);
    if (lmd_args_finish(&a)) {
        lmd_args_free(&a);
        return 2;
    }
    lmd_args_free(&a);
    if (!out) out = "results/train";
    if (init && resume) {
        fprintf(stderr, "lmdisp train: give --init or --resume, not both\n");
        return 2;
    }
    if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
        fprintf(stderr, "lmdisp train: --val-fraction must be in [0, 1), got %g\n", val_fraction);
        return 2;
    }
    int64_t *list = NULL;
    int nlist = 0;
    if (ck_steps && parse_steps(ck_steps, &list, &nlist)) {
        fprintf(stderr,
                "lmdisp train: --checkpoint-steps expects a list like 0,100,500, got '%s'\n",
                ck_steps);
        return 2;
    }
    gpt_set_threads(threads);

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
    if (lmd_datasrc_load(data ? data : "synthetic", data_vocab, &toks, &err)) {
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
