/* celleval.c — tracking.eval_tasks: scoring tracked checkpoints, /eval in study.h5, the report
 * table (celleval.h). */
#include "celleval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5io.h"
#include "mceval.h"

#define EVAL_NM 3
static const char *const EVAL_METRIC[EVAL_NM] = {"acc", "acc_norm", "acc_bytes"};

static hid_t group_at(hid_t f, const char *path, lmd_err *err) {
    htri_t e = H5Lexists(f, path, H5P_DEFAULT);
    hid_t g = e > 0 ? H5Gopen2(f, path, H5P_DEFAULT)
                    : H5Gcreate2(f, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) lmd_errf(err, "creating group %s: %s", path, lmd_h5_last_error());
    return g;
}

int lmd_cell_eval_tasks(const lmd_cell_job *job, gpt_model *m, hid_t f, lmd_err *err) {
    if (job->n_eval_tasks == 0) return 0;
    lmd_tokenizer *tok = NULL;
    lmd_err te = {{0}};
    if (!job->eval_tokenizer || tok_load(&tok, job->eval_tokenizer, &te)) {
        fprintf(stderr, "lmdisp: warning: cell %s: no evaluation (tokenizer: %s)\n", job->id,
                job->eval_tokenizer ? te.msg : "none");
        tok = NULL;
    }
    /* the trainer's model, borrowed: forward may grow its activations, so the struct is
     * copied back afterwards */
    lmd_anymodel am;
    memset(&am, 0, sizeof am);
    am.gm = *m;
    snprintf(am.model_type, sizeof am.model_type, "lmdisp-gpt");
    am.n_layer = m->cfg.n_layer;
    am.hidden_size = m->cfg.n_embd;
    am.vocab_size = m->cfg.vocab_size;
    am.max_T = m->cfg.n_ctx;
    am.n_params = (int64_t)gpt_num_params(&m->cfg);
    mc_scorer sc;
    int have_scorer = tok && mc_scorer_init(&sc, &am, tok, -1, &te) == 0;
    if (tok && !have_scorer)
        fprintf(stderr, "lmdisp: warning: cell %s: no evaluation: %s\n", job->id, te.msg);
    int rc = 0;
    hid_t g = group_at(f, "/eval", err);
    if (g < 0) rc = -1;
    for (int i = 0; i < job->n_eval_tasks && !rc; i++) {
        mc_task t;
        mc_result r;
        double v[EVAL_NM] = {NAN, NAN, NAN};
        int64_t n = -1;
        te.msg[0] = '\0';
        if (mc_task_load(&t, job->eval_tasks[i], &te)) {
            fprintf(stderr, "lmdisp: warning: cell %s: %s\n", job->id, te.msg);
            continue;
        }
        if (have_scorer && mc_eval_task(&sc, &t, &r, NULL, NULL, &te) == 0) {
            v[0] = r.acc, v[1] = r.acc_norm, v[2] = r.acc_bytes;
            n = r.n_items;
        } else if (have_scorer) {
            fprintf(stderr, "lmdisp: warning: cell %s: task %s not scored: %s\n", job->id, t.name,
                    te.msg);
        }
        char path[256];
        lmd_pathf(path, "/eval/%s", t.name);
        hid_t tg = group_at(f, path, err);
        if (tg < 0) rc = -1;
        for (int k = 0; k < EVAL_NM && !rc; k++) {
            lmd_pathf(path, "/eval/%s/%s", t.name, EVAL_METRIC[k]);
            rc = lmd_h5_write_scalar_f64(f, path, v[k], err);
        }
        lmd_pathf(path, "/eval/%s/n", t.name);
        hsize_t one[1] = {1};
        if (!rc) rc = lmd_h5_write(f, path, H5T_NATIVE_INT64, &n, 1, one, err);
        if (tg >= 0) H5Gclose(tg);
        mc_task_free(&t);
    }
    if (g >= 0) H5Gclose(g);
    *m = am.gm;
    tok_free(tok);
    return rc;
}

/* ---- study.h5 ---- */

/* A scalar of a track file's /eval, absent until the task was scored: 0 when read. */
static int read_scalar(hid_t f, const char *name, hid_t type, void *out) {
    lmd_err absent;
    return lmd_h5_read_exact(f, name, type, out, 1, &absent);
}

int lmd_study_eval_write(lmd_pfile *pf, const lmd_spec *spec, const char *dir, size_t c0, size_t nc,
                         const int64_t *steps, int K, const char *const *status, lmd_err *err) {
    const int T = spec->n_eval_tasks;
    if (T == 0) return 0;
    const size_t nk = (nc ? nc : 1) * (size_t)K;
    double *v = lmd_calloc((size_t)T * EVAL_NM * nk, sizeof *v);
    int64_t *n = lmd_calloc((size_t)T * nk, sizeof *n);
    for (size_t i = 0; i < (size_t)T * EVAL_NM * nk; i++) v[i] = NAN;
    for (size_t i = 0; i < (size_t)T * nk; i++) n[i] = -1;
    char(*names)[128] = lmd_calloc((size_t)T, sizeof *names);
    for (int t = 0; t < T; t++) { /* the task name is its file name without .jsonl */
        const char *b = strrchr(spec->eval_tasks[t], '/');
        snprintf(names[t], sizeof names[t], "%s", b ? b + 1 : spec->eval_tasks[t]);
        size_t l = strlen(names[t]);
        if (l > 6 && !strcmp(names[t] + l - 6, ".jsonl")) names[t][l - 6] = '\0';
    }
    H5E_BEGIN_TRY {
        for (size_t i = 0; i < nc; i++) {
            if (strcmp(status[i], "done") != 0) continue;
            const lmd_cell *c = &spec->cells[c0 + i];
            for (int k = 0; k < K; k++) {
                char path[4400];
                lmd_pathf(path, "%s/cells/%s/track/step%07lld.h5", dir, c->id, (long long)steps[k]);
                if (access(path, F_OK) != 0) continue;
                hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
                if (f < 0) continue;
                for (int t = 0; t < T; t++) {
                    char name[256];
                    size_t o = i * (size_t)K + (size_t)k;
                    for (int m = 0; m < EVAL_NM; m++) {
                        snprintf(name, sizeof name, "/eval/%s/%s", names[t], EVAL_METRIC[m]);
                        double x;
                        if (read_scalar(f, name, H5T_NATIVE_DOUBLE, &x) == 0)
                            v[((size_t)t * EVAL_NM + m) * nk + o] = x;
                    }
                    snprintf(name, sizeof name, "/eval/%s/n", names[t]);
                    int64_t x;
                    if (read_scalar(f, name, H5T_NATIVE_INT64, &x) == 0) n[(size_t)t * nk + o] = x;
                }
                H5Fclose(f);
            }
        }
    }
    H5E_END_TRY;
    int rc = 0;
    hsize_t dCK[2] = {(hsize_t)spec->n_cells, (hsize_t)K};
    for (int t = 0; t < T && !rc; t++) {
        char name[256];
        for (int m = 0; m < EVAL_NM && !rc; m++) {
            snprintf(name, sizeof name, "/eval/%s/%s", names[t], EVAL_METRIC[m]);
            rc = lmd_pfile_write(pf, name, H5T_NATIVE_DOUBLE, 2, dCK, c0, nc,
                                 v + ((size_t)t * EVAL_NM + m) * nk, err);
        }
        snprintf(name, sizeof name, "/eval/%s/n", names[t]);
        if (!rc)
            rc = lmd_pfile_write(pf, name, H5T_NATIVE_INT64, 2, dCK, c0, nc, n + (size_t)t * nk,
                                 err);
    }
    free(names);
    free(v);
    free(n);
    return rc;
}

/* ---- report ---- */

typedef struct {
    char **names;
    int n;
} name_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g, (void)info;
    name_list *l = op;
    char **nn = realloc(l->names, (size_t)(l->n + 1) * sizeof *nn);
    if (!nn) return -1;
    l->names = nn;
    l->names[l->n++] = lmd_strdup(name);
    return 0;
}

static void *read_2d(hid_t f, const char *name, hid_t type, size_t n, size_t esz) {
    void *buf = lmd_calloc(n ? n : 1, esz);
    size_t got = 0;
    lmd_err e;
    if (lmd_h5_read(f, name, type, buf, n, &got, &e) || got != n) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void fmt(char *b, size_t n, double x, int csv) {
    if (isnan(x))
        snprintf(b, n, "%s", csv ? "" : "-");
    else
        snprintf(b, n, csv ? "%.17g" : "%.4f", x);
}

int lmd_study_eval_report(const char *path, FILE *out, int csv, lmd_err *err) {
    hid_t f = lmd_h5_open(path, err);
    if (f < 0) return -1;
    int rc = 0;
    if (H5Lexists(f, "/eval", H5P_DEFAULT) <= 0) {
        H5Fclose(f);
        if (!csv) fprintf(out, "zero-shot evaluation: none (tracking.eval_tasks not set)\n");
        return 0;
    }
    int rank = 0;
    hsize_t dims[8];
    name_list tl = {0};
    hid_t g = H5Gopen2(f, "/eval", H5P_DEFAULT);
    if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &tl) < 0 ||
        lmd_h5_dims(f, "/tracking/step", &rank, dims, err)) {
        if (!err->msg[0]) lmd_errf(err, "%s: cannot read /eval: %s", path, lmd_h5_last_error());
        rc = -1;
    }
    if (g >= 0) H5Gclose(g);
    size_t K = rc ? 0 : (size_t)dims[0], C = 0;
    if (!rc && lmd_h5_dims(f, "/cells/status", &rank, dims, err) == 0)
        C = (size_t)dims[0];
    else
        rc = -1;
    int64_t *step = rc ? NULL : read_2d(f, "/tracking/step", H5T_NATIVE_INT64, K, 8);
    /* cell ids: fixed-length strings */
    char **ids = NULL;
    if (!rc) rc = lmd_h5_read_strings(f, "/cells/id", C, &ids, err);
    if (!rc && !step) rc = lmd_errf(err, "%s: cannot read /tracking/step", path);
    if (!rc) {
        if (csv)
            fprintf(out, "task,id,step,n,acc,acc_norm,acc_bytes\n");
        else
            fprintf(out,
                    "zero-shot evaluation (tracking.eval_tasks; step 0 -> last step with "
                    "results)\n%-16s %-34s %6s %17s %17s %17s\n",
                    "task", "cell", "n", "acc", "acc_norm", "acc_bytes");
        for (int t = 0; t < tl.n && !rc; t++) {
            double *m[EVAL_NM];
            int64_t *n = NULL;
            char name[512];
            for (int k = 0; k < EVAL_NM; k++) {
                snprintf(name, sizeof name, "/eval/%s/%s", tl.names[t], EVAL_METRIC[k]);
                m[k] = read_2d(f, name, H5T_NATIVE_DOUBLE, C * K, 8);
            }
            snprintf(name, sizeof name, "/eval/%s/n", tl.names[t]);
            n = read_2d(f, name, H5T_NATIVE_INT64, C * K, 8);
            if (!m[0] || !m[1] || !m[2] || !n) {
                rc = lmd_errf(err, "%s: /eval/%s is incomplete", path, tl.names[t]);
            } else {
                for (size_t i = 0; i < C; i++) {
                    if (csv) {
                        for (size_t k = 0; k < K; k++) {
                            char a[3][32];
                            for (int q = 0; q < EVAL_NM; q++) fmt(a[q], 32, m[q][i * K + k], 1);
                            fprintf(out, "%s,%s,%lld,%lld,%s,%s,%s\n", tl.names[t], ids[i],
                                    (long long)step[k], (long long)n[i * K + k], a[0], a[1], a[2]);
                        }
                        continue;
                    }
                    int last = -1;
                    for (size_t k = 0; k < K; k++)
                        if (!isnan(m[0][i * K + k])) last = (int)k;
                    char col[3][48];
                    for (int q = 0; q < EVAL_NM; q++) {
                        char a[16], b[16];
                        fmt(a, sizeof a, K ? m[q][i * K] : NAN, 0);
                        fmt(b, sizeof b, last >= 0 ? m[q][i * K + (size_t)last] : NAN, 0);
                        snprintf(col[q], sizeof col[q], "%s -> %s", a, b);
                    }
                    fprintf(out, "%-16s %-34s %6lld %17s %17s %17s%s\n", tl.names[t], ids[i],
                            (long long)(last >= 0 ? n[i * K + (size_t)last] : -1), col[0], col[1],
                            col[2],
                            last >= 0 && last != (int)K - 1 ? "  (not at the last step)" : "");
                }
            }
            for (int k = 0; k < EVAL_NM; k++) free(m[k]);
            free(n);
        }
    }
    for (int t = 0; t < tl.n; t++) free(tl.names[t]);
    free(tl.names);
    if (ids)
        for (size_t i = 0; i < C; i++) free(ids[i]);
    free(ids);
    free(step);
    H5Fclose(f);
    return rc;
}
