/* cmd_measure.c — `lmdisp measure CK.h5`: the condensation metrics of one checkpoint on a fixed
 * evaluation set (DESIGN.md sections 1 and 4.5), as a table or one JSON object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "evalset.h"
#include "geometry.h"
#include "measure.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmdisp measure CK.h5 [--data SRC | --tokens FILE.bin] [--sequences N]\n"
            "                     [--seq-len T] [--val-fraction X] [--bins N] [--json]"
            " [--threads N]\n"
            "\n"
            "Measures embedding condensation of one checkpoint: per hidden state 0..n_layer the\n"
            "mean pairwise cosine similarity of tokens (diagonal included, and off-diagonal),\n"
            "singular-value entropy and MEV; the trend over depth (Spearman, Kendall tau-b) and\n"
            "the means over the last N layers (docs/ANALYSIS.md).\n"
            "\n"
            "%s"
            "output:\n"
            "  --json              print one JSON object (DESIGN.md 4.5 keys) and nothing else\n"
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
    lmd_evalopts eo;
    lmd_evalopts_parse(&a, &eo);
    const char *pos[2] = {NULL, NULL};
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad) return 2;
    if (npos != 1) {
        fprintf(stderr, "lmdisp measure: expected exactly one checkpoint file, got %d (see "
                        "lmdisp measure --help)\n", npos);
        return 2;
    }
    const char *ck = pos[0];
    gpt_set_threads(eo.threads);

    lmd_err err = {{0}};
    gpt_model m;
    lmd_train_state st;
    if (lmd_ckpt_load(ck, &m, &st, &err)) {
        fprintf(stderr, "lmdisp measure: %s\n", err.msg);
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
    int rc = lmd_measure_model(&m, es.inputs, es.n_seq, es.T, eo.bins, LMD_MEASURE_CHUNK, &g,
                               &err);
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
