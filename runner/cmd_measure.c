/* cmd_measure.c — `lmdisp measure CK.h5`: the condensation metrics of one checkpoint on a fixed
 * evaluation set (DESIGN.md sections 1 and 4.5), as a table or one JSON object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "anymodel.h"
#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "evalset.h"
#include "geometry.h"
#include "hfmodel.h"
#include "jsonout.h"
#include "measure.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmdisp measure MODEL [--data SRC | --tokens FILE.bin] [--sequences N]\n"
            "                     [--seq-len T] [--val-fraction X] [--bins N] [--json]"
            " [--threads N]\n"
            "\n"
            "Measures embedding condensation of one checkpoint: per hidden state 0..n_layer the\n"
            "mean pairwise cosine similarity of tokens (diagonal included, and off-diagonal),\n"
            "singular-value entropy and MEV; the trend over depth (Spearman, Kendall tau-b) and\n"
            "the means over the last N layers (docs/ANALYSIS.md).\n"
            "MODEL is an lmdisp checkpoint, an HF model directory or hf:ORG/NAME[@REVISION]\n"
            "(local HF cache). A pretrained model needs --tokens (its tokenizer's ids) and\n"
            "follows the paper's protocol: --seq-len defaults to 512, each sequence is measured\n"
            "alone and the cosine matrices are averaged; it is streamed one block at a time.\n"
            "\n"
            "%s"
            "output:\n"
            "  --json              print one JSON object (DESIGN.md 4.5 keys) and nothing else\n"
            "  --batch N           pretrained models: sequences per forward pass (default all;\n"
            "                      a measurement study's measure.batch)\n"
            "  --allow-nonfinite   measure a model with NaN/Inf parameters anyway (exit 0; by\n"
            "                      default it is refused with exit 3, docs/ANALYSIS.md)\n",
            lmd_evalopts_help());
}

/* The per-layer table and the depth trend; NaN prints as nan. */
static void print_table(const lmd_geom *g) {
    printf("layer  mean cossim  off-diag mean  SV entropy (bits)       MEV\n");
    for (int l = 0; l < g->n_layers; l++)
        printf("%5d  %11.6f  %13.6f  %17.4f  %8.5f\n", l, g->layer_mean[l], g->offdiag_mean[l],
               g->sv_entropy[l], g->mev[l]);
    printf("trend over depth (layer mean vs layer index): Spearman rho %.4f, Kendall tau-b %.4f\n",
           g->spearman, g->kendall);
    printf("mean of the last N layers:");
    for (int N = 1; N <= 5; N++) printf("  N=%d %.4f", N, g->last_n_mean[N - 1]);
    printf("  half (N=%d) %.4f\n", g->half_n, g->last_n_mean[5]);
}

/* Finds the first non-finite parameter in checkpoint order; 1 if any (name and index set). */
static int first_nonfinite(const gpt_model *m, char *name, size_t cap, size_t *idx) {
    for (int k = 0; k < GPT_NUM_TENSORS; k++) {
        gpt_tensor_info info;
        gpt_tensor_describe(&m->cfg, k, &info);
        int nl = info.layered ? m->cfg.n_layer : 1;
        size_t n = info.ndim == 1 ? info.shape[0] : info.shape[0] * info.shape[1];
        for (int l = 0; l < nl; l++) {
            const float *p = m->params.t[k] + (size_t)l * n;
            for (size_t i = 0; i < n; i++)
                if (!isfinite(p[i])) {
                    if (info.layered)
                        snprintf(name, cap, info.name, l);
                    else
                        snprintf(name, cap, "%s", info.name);
                    *idx = i;
                    return 1;
                }
        }
    }
    return 0;
}

/* g's JSON object with the model facts appended inside it */
static int print_json_with_facts(const lmd_geom *g, const lmd_anymodel *m, const char *spec,
                                 lmd_err *err) {
    json_t *o = lmd_geom_json(g);
    lmd_json_set(o, "model", lmd_json_str(spec));
    lmd_json_set(o, "model_type", lmd_json_str(m->model_type));
    lmd_json_set(o, "n_params", json_integer((json_int_t)m->n_params));
    lmd_json_set(o, "n_layer", json_integer(m->n_layer));
    lmd_json_set(o, "hidden_size", json_integer(m->hidden_size));
    int rc = lmd_json_dump(stdout, o, 17, err);
    if (rc == 0 && (fputc('\n', stdout) == EOF || fflush(stdout) == EOF))
        rc = lmd_errf(err, "writing JSON to stdout failed");
    return rc;
}

/* `lmdisp measure` of a pretrained (HF) model: streamed, the paper's protocol by default */
static int measure_hf(const char *spec, const lmd_evalopts *eo, int json, int batch) {
    lmd_err err = {{0}};
    lmd_anymodel m;
    if (lmd_anymodel_open(&m, spec, &err)) {
        fprintf(stderr, "lmdisp measure: %s\n", err.msg);
        return 2;
    }
    int T = eo->T, n_seq = eo->n_seq;
    int32_t *tok = NULL;
    size_t *starts = NULL, n_docs = 0;
    lmd_paper_sampling ps = {eo->n_seq_given ? eo->n_seq : LMD_PAPER_SEQUENCES, eo->T,
                             eo->min_words, (uint64_t)eo->seed};
    int erc;
    if (eo->data) {
        erc = lmd_anymodel_eval_data(&m, eo->data, &ps, &tok, &starts, &n_docs, &err);
        T = ps.T;
        n_seq = ps.n_seq;
    } else if (eo->sampling_given) {
        erc = lmd_errf(&err, "--min-words and --seed set the paper's sampling of a text source "
                             "(--data tok:TOKENIZER:PATH); --tokens takes the first windows");
    } else {
        erc = lmd_anymodel_eval_tokens(&m, eo->tokens, n_seq, &T, &tok, &err);
    }
    if (erc) {
        fprintf(stderr, "lmdisp measure: %s: %s\n", spec, err.msg);
        lmd_anymodel_close(&m);
        return 2;
    }
    lmd_geom g;
    double t0 = lmd_now();
    int rc = lmd_anymodel_measure(&m, tok, n_seq, T, eo->bins, batch, eo->measure_thread,
                                  "lmdisp measure", &g, &err);
    double secs = lmd_now() - t0;
    free(tok);
    if (rc) {
        free(starts);
        fprintf(stderr, "lmdisp measure: %s: %s\n", spec, err.msg);
        lmd_anymodel_close(&m);
        return 2;
    }
    int status = 0;
    if (json) {
        if (print_json_with_facts(&g, &m, spec, &err)) {
            fprintf(stderr, "lmdisp measure: %s\n", err.msg);
            status = 1;
        }
    } else {
        printf("lmdisp measure: %s (%s, %lld parameters; n_layer %d, hidden %d, vocab %d)\n", spec,
               m.model_type, (long long)m.n_params, m.n_layer, m.hidden_size, m.vocab_size);
        if (eo->data) {
            printf("  evaluation set: %d sequences of %d tokens of %s (%zu documents), the "
                   "paper's sampling: seed %lld, documents joined to >= %d words; each "
                   "measured alone, cosine matrices averaged; %.2f s (%.0f tokens/s)\n",
                   n_seq, T, eo->data, n_docs, (long long)eo->seed, eo->min_words, secs,
                   (double)n_seq * T / secs);
            printf("  starting documents:");
            for (int i = 0; i < n_seq; i++) printf(" %zu", starts[i]);
            printf("\n");
        } else {
            printf("  evaluation set: first %d windows of %d tokens of %s, each measured "
                   "alone, cosine matrices averaged; %.2f s (%.0f tokens/s)\n",
                   n_seq, T, eo->tokens, secs, (double)n_seq * T / secs);
        }
        print_table(&g);
    }
    lmd_geom_free(&g);
    free(starts);
    lmd_anymodel_close(&m);
    return status;
}

int cmd_measure(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "measure", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return 0;
    }
    int json = lmd_args_flag(&a, "json");
    int allow_nonfinite = lmd_args_flag(&a, "allow-nonfinite");
    int batch = 0;
    lmd_args_int(&a, "batch", &batch, 1, 1 << 24);
    lmd_evalopts eo;
    lmd_evalopts_parse(&a, &eo);
    const char *pos[2] = {NULL, NULL};
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad) return 2;
    if (npos != 1) {
        fprintf(stderr,
                "lmdisp measure: expected exactly one checkpoint file, got %d (see "
                "lmdisp measure --help)\n",
                npos);
        return 2;
    }
    const char *ck = pos[0];
    gpt_set_threads(eo.threads);
    if (hub_is_model_form(ck)) return measure_hf(ck, &eo, json, batch);

    lmd_err err = {{0}};
    gpt_model m;
    lmd_train_state st;
    if (lmd_ckpt_load(ck, &m, &st, &err)) {
        fprintf(stderr, "lmdisp measure: %s\n", err.msg);
        return 2;
    }
    if (eo.sampling_given) {
        fprintf(stderr,
                "lmdisp measure: %s: --min-words and --seed set the paper's sampling, "
                "for pretrained models on --data tok:; an lmdisp checkpoint is measured "
                "on the first windows of its data's validation split\n",
                ck);
        gpt_free(&m);
        return 2;
    }
    lmd_evalset es;
    if (lmd_evalset_load(&es, &eo, &m.cfg, &err)) {
        fprintf(stderr, "lmdisp measure: %s: %s\n", ck, err.msg);
        gpt_free(&m);
        return 2;
    }
    /* NaN parameters give NaN metrics that look like a result: say so, naming the tensor */
    char bad_name[160];
    size_t bad_i = 0;
    if (first_nonfinite(&m, bad_name, sizeof bad_name, &bad_i)) {
        fprintf(stderr,
                "lmdisp measure: %s: %s: /params/%s[%zu] is not finite (the first non-finite "
                "parameter); its metrics would be NaN%s\n",
                ck, allow_nonfinite ? "warning" : "refused", bad_name, bad_i,
                allow_nonfinite ? "" : " (--allow-nonfinite measures it anyway)");
        if (!allow_nonfinite) {
            lmd_evalset_free(&es);
            gpt_free(&m);
            return 3;
        }
    }
    lmd_geom g;
    double t0 = lmd_now();
    int rc = lmd_measure_model(&m, es.inputs, es.n_seq, es.T, eo.bins, LMD_MEASURE_CHUNK, &g, &err);
    double secs = lmd_now() - t0;
    if (rc) {
        fprintf(stderr, "lmdisp measure: %s: %s\n", ck, err.msg);
        lmd_evalset_free(&es);
        gpt_free(&m);
        return 2;
    }
    int status = 0;
    if (json) {
        if (lmd_geom_print_json(stdout, &g, &err) || fputc('\n', stdout) == EOF ||
            fflush(stdout) == EOF) {
            fprintf(stderr, "lmdisp measure: writing JSON to stdout: %s\n", err.msg);
            status = 1;
        }
    } else {
        const gpt_config *c = &m.cfg;
        printf("lmdisp measure: %s (step %lld, %lld tokens; n_layer %d, n_embd %d, n_head %d, "
               "mlp_dim %d, vocab %d)\n",
               ck, (long long)st.step, (long long)st.tokens, c->n_layer, c->n_embd, c->n_head,
               c->mlp_dim, c->vocab_size);
        if (isnan(es.val_fraction))
            printf("  evaluation set: first %d windows of %d tokens of %s; %.2f s\n", es.n_seq,
                   es.T, es.source, secs);
        else
            printf("  evaluation set: first %d windows of %d tokens of the validation split of "
                   "%s (val fraction %g); %.2f s\n",
                   es.n_seq, es.T, es.source, es.val_fraction, secs);
        print_table(&g);
    }
    lmd_geom_free(&g);
    lmd_evalset_free(&es);
    gpt_free(&m);
    return status;
}
