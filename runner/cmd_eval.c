/* cmd_eval.c — `lmdisp eval MODEL --tasks FILE.jsonl[,...]`: zero-shot multiple-choice
 * accuracy (acc, acc_norm, acc_bytes) as lm-evaluation-harness scores it (runner/mceval.h). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anymodel.h"
#include "args.h"
#include "commands.h"
#include "h5io.h"
#include "hfmodel.h"
#include "jsonout.h"
#include "mceval.h"
#include "mpicheck.h"

static void usage(FILE *f) {
    fprintf(
        f, "usage: lmdisp eval MODEL --tasks FILE.jsonl[,FILE.jsonl...] [--tokenizer TOK]\n"
           "                   [--prefix-token ID] [--json] [--details] [--threads N]\n"
           "\n"
           "Zero-shot multiple-choice accuracy as lm-evaluation-harness computes it for its\n"
           "loglikelihood tasks: each choice is the request (context, \" \" + choice), encoded\n"
           "as lm-eval's _encode_pair (trailing whitespace of the context moved to the\n"
           "continuation, the split at the context's own token length), scored by the summed\n"
           "log-likelihood of the continuation tokens in a window cut from the left to the\n"
           "model's positions. acc: argmax of the sums; acc_norm: of sum / characters of the\n"
           "choice; acc_bytes: of sum / UTF-8 bytes of the choice.\n"
           "\n"
           "MODEL: an lmdisp checkpoint, an HF model directory or hf:ORG/NAME[@REV].\n"
           "Tokenizer: --tokenizer TOK (tokenizer.json, a directory, hf:...), else the HF\n"
           "model's own directory, else the data.tokenizer of the checkpoint's study.\n"
           "Task file: JSON Lines, one {\"context\": str, \"choices\": [str, ...], \"gold\": int}\n"
           "per line (blank lines skipped); the task is named after the file.\n"
           "--prefix-token: the token an empty context is conditioned on (lm-eval: the\n"
           "tokenizer's bos, else eos; default the end-of-text token).\n"
           "--json: one JSON object; --details adds every choice's log-likelihood and tokens.\n"
           "Under mpirun -np R the items are shared out (item i on rank i %% R) and rank 0\n"
           "prints; every number is the same for any R.\n");
}

static json_t *task_json(const mc_task *t, const mc_result *r, const mc_choice_score *sc,
                         const int *pr, int details) {
    json_t *o = json_object();
    lmd_json_set(o, "file", lmd_json_str(t->path));
    lmd_json_set(o, "n", json_integer(r->n_items));
    lmd_json_set(o, "acc", lmd_json_num(r->acc));
    lmd_json_set(o, "acc_norm", lmd_json_num(r->acc_norm));
    lmd_json_set(o, "acc_bytes", lmd_json_num(r->acc_bytes));
    lmd_json_set(o, "correct", json_integer(r->correct));
    lmd_json_set(o, "correct_norm", json_integer(r->correct_norm));
    lmd_json_set(o, "correct_bytes", json_integer(r->correct_bytes));
    lmd_json_set(o, "truncated_requests", json_integer(r->n_truncated));
    if (details) {
        json_t *items = json_array();
        size_t k = 0;
        for (int i = 0; i < t->n_items; i++) {
            const mc_item *it = &t->items[i];
            json_t *x = json_object(), *ll = json_array(), *nt = json_array(), *nc = json_array(),
                   *gr = json_array();
            for (int c = 0; c < it->n_choices; c++, k++) {
                lmd_json_append(ll, lmd_json_num(sc[k].loglik));
                lmd_json_append(nt, json_integer(sc[k].n_cont_tokens));
                lmd_json_append(nc, json_integer(sc[k].n_ctx_tokens));
                lmd_json_append(gr, json_boolean(sc[k].greedy));
            }
            lmd_json_set(x, "line", json_integer(it->line));
            lmd_json_set(x, "gold", json_integer(it->gold));
            lmd_json_set(x, "pred", json_integer(pr[3 * i]));
            lmd_json_set(x, "pred_norm", json_integer(pr[3 * i + 1]));
            lmd_json_set(x, "pred_bytes", json_integer(pr[3 * i + 2]));
            lmd_json_set(x, "loglik", ll);
            lmd_json_set(x, "cont_tokens", nt);
            lmd_json_set(x, "ctx_tokens", nc);
            lmd_json_set(x, "greedy", gr);
            lmd_json_append(items, x);
        }
        lmd_json_set(o, "items", items);
    }
    return o;
}

/* Several ranks: every rank scored its items into sc (zeros elsewhere); afterwards every rank
 * holds all of them, or all agree on the lowest failing rank's message. Returns 0 or -1. */
static int share(mc_choice_score *sc, size_t n, int bad, lmd_err *err) {
    if (lmd_mpi_any(MPI_COMM_WORLD, bad, err)) return -1;
    if (n * 5 > (size_t)2000000000)
        return lmd_errf(err, "%zu choices: too many for one message", n);
    double *v = lmd_calloc(n * 5 + 1, sizeof *v);
    for (size_t k = 0; k < n; k++) { /* one rank holds each entry, the others 0: sums are exact */
        v[5 * k] = sc[k].loglik, v[5 * k + 1] = sc[k].n_ctx_tokens;
        v[5 * k + 2] = sc[k].n_cont_tokens, v[5 * k + 3] = sc[k].greedy;
        v[5 * k + 4] = sc[k].truncated;
    }
    LMD_MPI(MPI_Allreduce(MPI_IN_PLACE, v, (int)(n * 5), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    for (size_t k = 0; k < n; k++) {
        sc[k].loglik = v[5 * k], sc[k].n_ctx_tokens = (int)v[5 * k + 1];
        sc[k].n_cont_tokens = (int)v[5 * k + 2], sc[k].greedy = (int)v[5 * k + 3];
        sc[k].truncated = (int)v[5 * k + 4];
    }
    free(v);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "eval", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return 0;
    }
    const char *tasks = lmd_args_str(&a, "tasks");
    const char *tokpath = lmd_args_str(&a, "tokenizer");
    int as_json = lmd_args_flag(&a, "json"), details = lmd_args_flag(&a, "details");
    int threads = 0;
    int64_t prefix = -1;
    lmd_args_int(&a, "threads", &threads, 1, 4096);
    lmd_args_i64(&a, "prefix-token", &prefix, 0);
    const char *pos[2] = {NULL, NULL};
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad) return 2;
    if (npos != 1 || !tasks) {
        fprintf(stderr, "lmdisp eval: MODEL and --tasks FILE.jsonl are required\n");
        usage(stderr);
        return 2;
    }
    if (threads > 0) gpt_set_threads(threads);
    lmd_h5_quiet();
    /* several ranks only under mpirun; a plain run stays free of MPI start-up */
    int rank = 0, P = 1, mpi_on = 0;
    const char *wsz = getenv("OMPI_COMM_WORLD_SIZE");
    if (wsz && atoi(wsz) > 1) {
        if (lmd_mpi_init("eval")) return 2;
        mpi_on = 1;
        LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
        LMD_MPI(MPI_Comm_size(MPI_COMM_WORLD, &P));
        if (rank != 0 && (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)))
            lmd_die("cannot silence rank %d", rank); /* rank 0 speaks for all */
    }
    lmd_err err = {{0}};
    /* every task file first: a bad line is refused before any model work */
    int n_tasks = 1;
    for (const char *p = tasks; *p; p++) n_tasks += *p == ',';
    mc_task *tk = lmd_calloc((size_t)n_tasks, sizeof *tk);
    char *list = lmd_strdup(tasks), *save = NULL;
    int nt = 0, status = 2;
    for (char *f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        if (mc_task_load(&tk[nt], f, &err)) goto out_tasks;
        nt++;
    }
    lmd_anymodel m;
    if (lmd_anymodel_open(&m, pos[0], &err)) goto out_tasks;
    char *study_tok = NULL;
    const char *tsrc = tokpath;
    if (!tsrc && m.is_hf) tsrc = m.hm.dir;
    if (!tsrc) tsrc = study_tok = lmd_study_tokenizer_of(pos[0]);
    lmd_tokenizer *tok = NULL;
    mc_scorer sc;
    if (!tsrc) {
        lmd_errf(&err,
                 "%s: no tokenizer (give --tokenizer TOK; a checkpoint outside a study "
                 "with data.tokenizer has none of its own)",
                 pos[0]);
        goto out_model;
    }
    if (tok_load(&tok, tsrc, &err) || mc_scorer_init(&sc, &m, tok, prefix, &err)) {
        lmd_err_prefix(&err, "tokenizer %s", tsrc);
        goto out_model;
    }
    json_t *root = as_json ? json_object() : NULL, *jt = as_json ? json_object() : NULL;
    if (as_json) {
        lmd_json_set(root, "model", lmd_json_str(pos[0]));
        lmd_json_set(root, "model_type", lmd_json_str(m.model_type));
        lmd_json_set(root, "tokenizer", lmd_json_str(tsrc));
        lmd_json_set(root, "max_length", json_integer(sc.max_length));
        lmd_json_set(root, "prefix_token", json_integer(sc.prefix_token));
    } else {
        printf("lmdisp eval: %s (%s, %d layers, %lld params), tokenizer %s, window %d tokens\n",
               pos[0], m.model_type, m.n_layer, (long long)m.n_params, tsrc, sc.max_length);
        printf("%-24s %7s %18s %18s %18s\n", "task", "items", "acc", "acc_norm", "acc_bytes");
    }
    status = 0;
    for (int i = 0; i < nt && status == 0; i++) {
        mc_result r;
        mc_choice_score *scores = NULL;
        int *preds = NULL;
        double t0 = lmd_now();
        size_t nch = mc_task_n_choices(&tk[i]);
        scores = lmd_calloc(nch + 1, sizeof *scores);
        preds = lmd_calloc((size_t)tk[i].n_items * 3 + 1, sizeof *preds);
        int bad = mc_score_task(&sc, &tk[i], rank, P, scores, &err) != 0;
        if (mpi_on && share(scores, nch, bad, &err)) bad = 1;
        if (bad) {
            free(scores);
            free(preds);
            status = 2;
            break;
        }
        mc_task_metrics(&tk[i], scores, &r, preds);
        if (as_json) {
            lmd_json_set(jt, tk[i].name, task_json(&tk[i], &r, scores, preds, details));
        } else {
            char c1[32], c2[32], c3[32];
            snprintf(c1, sizeof c1, "%.4f (%d)", r.acc, r.correct);
            snprintf(c2, sizeof c2, "%.4f (%d)", r.acc_norm, r.correct_norm);
            snprintf(c3, sizeof c3, "%.4f (%d)", r.acc_bytes, r.correct_bytes);
            printf("%-24s %7d %18s %18s %18s   %.1f s%s\n", tk[i].name, r.n_items, c1, c2, c3,
                   lmd_now() - t0, r.n_truncated ? " (some windows cut on the left)" : "");
        }
        free(scores);
        free(preds);
    }
    if (as_json) {
        lmd_json_set(root, "tasks", jt);
        if (status == 0 && lmd_json_dump(stdout, root, 17, &err))
            status = 1;
        else if (status)
            json_decref(root);
    }
out_model:
    tok_free(tok);
    free(study_tok);
    lmd_anymodel_close(&m);
out_tasks:
    if (status) fprintf(stderr, "lmdisp eval: %s\n", err.msg);
    for (int i = 0; i < nt; i++) mc_task_free(&tk[i]);
    free(tk);
    free(list);
    return mpi_on ? lmd_mpi_finalize(status) : status;
}
