/* study.c — DIR/study.h5 (DESIGN.md 4.4, layout in docs/STUDY.md): gathered from the per-cell
 * results under DIR/cells/<id>/ with parallel HDF5, plus the cross-grid summary, and the
 * tables printed from it (`run`, `aggregate`, `report`).
 *
 * Each rank reads the results of a contiguous block of cells and writes their rows; the
 * shapes (C cells, K checkpoints, L1 layers, bins) come from the spec alone, so every rank
 * makes identical create calls without exchanging anything but the small per-cell arrays the
 * summary needs. */
#include "study.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dispersion.h"
#include "fileio.h"
#include "h5io.h"
#include "rankcorr.h"
#include "studyfile.h"
#include "celleval.h"

#ifndef LMDISP_VERSION
#define LMDISP_VERSION "unknown"
#endif
#ifndef LMDISP_GIT_COMMIT
#define LMDISP_GIT_COMMIT "unknown"
#endif

/* Per-width summary metrics: name in /summary/by_width and how to get it from a cell. */
enum { M_SPEARMAN = 0, M_KENDALL, M_LAST_COSSIM, M_LAST_HALF, M_VAL_LOSS, N_METRICS };
static const char *const METRIC_NAMES[N_METRICS] = {"spearman", "kendall", "last_layer_cossim",
                                                    "last_half_cossim", "val_loss"};
/* The per-model statistics of the cross-grid trend (DESIGN.md section 1): name under
 * /summary/trend and the metric it is computed from. */
enum { T_RHO = 0, T_LAST_LAYER, T_LAST_HALF, N_TRENDS };
static const char *const TREND_NAMES[N_TRENDS] = {"rho", "last_layer", "last_half"};
static const int TREND_METRIC[N_TRENDS] = {M_SPEARMAN, M_LAST_COSSIM, M_LAST_HALF};
/* index of floor((n_layer+1)/2) in /condensation/last_n_mean (N = 1..5, then that) */
#define LAST_HALF_INDEX 5
/* Values per cell exchanged for the summary: status flag, then K values of each metric. */
#define SUMMARY_STRIDE(K) (1 + (size_t)N_METRICS * (size_t)(K))

/* ---------------------------------------------------------------------------------------
 * Shape of the study, identical on every rank (from the spec alone)
 * --------------------------------------------------------------------------------------- */

typedef struct {
    size_t C;
    int K, L1, bins;
    int64_t *steps;  /* [K] union of the cells' tracked steps, ascending */
    int64_t *tokens; /* [K] tokens at that step if all cells tracking it agree, else -1 */
    /* cross-grid groups: cells sharing every setting except mlp_dim and seed */
    int D, W;
    int *group;      /* [C] group of each cell */
    int *wi;         /* [C] index of the cell's mlp_dim in widths */
    int64_t *widths; /* [W] ascending */
    char **label;    /* [D] unique label */
    char **variant;  /* [D] dispersion variant of the group */
} study_shape;

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Settings text without the lines of the grid's trend variable and of the seed. */
static char *group_key(const lmd_cell *c) {
    char *s = lmd_cell_settings(c);
    size_t n = strlen(s);
    char *out = lmd_calloc(n + 1, 1);
    size_t o = 0;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, "\n");
        int skip = !strncmp(p, "model.mlp_dim=", 14) || !strncmp(p, "train.seed=", 11);
        if (!strncmp(p, "distill.teacher=cell:", 21)) {
            /* a teacher cell: the same-seed one (its id holds the seed), so seeds group */
            memcpy(out + o, "distill.teacher=cell\n", 21);
            o += 21;
            skip = 1;
        }
        if (!skip) {
            memcpy(out + o, p, len);
            o += len;
            out[o++] = '\n';
        }
        p += len;
        if (*p == '\n') p++;
    }
    free(s);
    return out;
}

/* 1 if text holds the exact line (len bytes at line). */
static int has_line(const char *text, const char *line, size_t len) {
    for (const char *p = text; *p;) {
        size_t l = strcspn(p, "\n");
        if (l == len && !strncmp(p, line, len)) return 1;
        p += l;
        if (*p == '\n') p++;
    }
    return 0;
}

static void shape_free(study_shape *sh) {
    free(sh->steps);
    free(sh->tokens);
    free(sh->group);
    free(sh->wi);
    free(sh->widths);
    for (int d = 0; d < sh->D; d++) {
        free(sh->label[d]);
        free(sh->variant[d]);
    }
    free(sh->label);
    free(sh->variant);
    memset(sh, 0, sizeof *sh);
}

static void shape_build(study_shape *sh, const lmd_spec *spec) {
    memset(sh, 0, sizeof *sh);
    size_t C = sh->C = spec->n_cells;
    /* checkpoints: sorted union of the cells' tracked steps */
    size_t total = 0;
    for (size_t i = 0; i < C; i++) total += (size_t)spec->cells[i].tracking.n_steps;
    int64_t *all = lmd_calloc(total ? total : 1, sizeof *all);
    size_t n = 0;
    for (size_t i = 0; i < C; i++)
        for (int k = 0; k < spec->cells[i].tracking.n_steps; k++)
            all[n++] = spec->cells[i].tracking.steps[k];
    qsort(all, n, sizeof *all, cmp_i64);
    size_t K = 0;
    for (size_t i = 0; i < n; i++)
        if (K == 0 || all[i] != all[K - 1]) all[K++] = all[i];
    sh->K = (int)K;
    sh->steps = all;
    sh->tokens = lmd_calloc(K ? K : 1, sizeof *sh->tokens);
    for (size_t k = 0; k < K; k++) sh->tokens[k] = -2; /* -2: no cell yet */
    sh->L1 = 1;
    sh->bins = 1;
    for (size_t i = 0; i < C; i++) {
        const lmd_cell *c = &spec->cells[i];
        if (c->cfg.n_layer + 1 > sh->L1) sh->L1 = c->cfg.n_layer + 1;
        if (c->tracking.hist_bins > sh->bins) sh->bins = c->tracking.hist_bins;
        for (int j = 0; j < c->tracking.n_steps; j++) {
            int64_t s = c->tracking.steps[j];
            int64_t *hit = bsearch(&s, sh->steps, K, sizeof s, cmp_i64);
            size_t k = (size_t)(hit - sh->steps);
            int64_t tok = s * (int64_t)c->train.B * (int64_t)c->train.T * c->train.accumulate;
            sh->tokens[k] = sh->tokens[k] == -2 || sh->tokens[k] == tok ? tok : -1;
        }
    }
    /* widths */
    sh->widths = lmd_calloc(C ? C : 1, sizeof *sh->widths);
    for (size_t i = 0; i < C; i++) sh->widths[i] = spec->cells[i].cfg.mlp_dim;
    qsort(sh->widths, C, sizeof *sh->widths, cmp_i64);
    size_t W = 0;
    for (size_t i = 0; i < C; i++)
        if (W == 0 || sh->widths[i] != sh->widths[W - 1]) sh->widths[W++] = sh->widths[i];
    sh->W = (int)W;
    sh->wi = lmd_calloc(C ? C : 1, sizeof *sh->wi);
    for (size_t i = 0; i < C; i++) {
        int64_t w = spec->cells[i].cfg.mlp_dim;
        sh->wi[i] = (int)((int64_t *)bsearch(&w, sh->widths, W, sizeof w, cmp_i64) - sh->widths);
    }
    /* groups, in order of first appearance in the grid */
    char **keys = lmd_calloc(C ? C : 1, sizeof *keys);
    int *first = lmd_calloc(C ? C : 1, sizeof *first); /* representative cell of each group */
    sh->group = lmd_calloc(C ? C : 1, sizeof *sh->group);
    for (size_t i = 0; i < C; i++) {
        char *k = group_key(&spec->cells[i]);
        int g = -1;
        for (int d = 0; d < sh->D && g < 0; d++)
            if (!strcmp(keys[d], k)) g = d;
        if (g < 0) {
            g = sh->D++;
            keys[g] = k;
            first[g] = (int)i;
        } else {
            free(k);
        }
        sh->group[i] = g;
    }
    /* label: the variant, plus the settings lines that tell apart groups of the same variant */
    sh->label = lmd_calloc((size_t)(sh->D ? sh->D : 1), sizeof *sh->label);
    sh->variant = lmd_calloc((size_t)(sh->D ? sh->D : 1), sizeof *sh->variant);
    for (int d = 0; d < sh->D; d++) {
        lmd_disp_variant v = spec->cells[first[d]].train.disp.variant;
        sh->variant[d] = lmd_strdup(lmd_disp_variant_name(v));
        size_t cap = strlen(sh->variant[d]) + strlen(keys[d]) + 16, o = 0;
        char *lab = lmd_calloc(cap, 1);
        o += (size_t)snprintf(lab, cap, "%s", sh->variant[d]);
        for (const char *p = keys[d]; *p;) {
            size_t len = strcspn(p, "\n");
            int differs = 0;
            for (int e = 0; e < sh->D && !differs; e++)
                if (e != d && spec->cells[first[e]].train.disp.variant == v &&
                    !has_line(keys[e], p, len))
                    differs = 1;
            if (differs && strncmp(p, "dispersion.variant=", 19) != 0) {
                /* "dispersion.coeff=0.5" reads as "coeff=0.5" after the variant's name */
                int skip = !strncmp(p, "dispersion.", 11) ? 11 : 0;
                o += (size_t)snprintf(lab + o, cap - o, " %.*s", (int)len - skip, p + skip);
            }
            p += len;
            if (*p == '\n') p++;
        }
        sh->label[d] = lab;
    }
    for (int d = 0; d < sh->D; d++) free(keys[d]);
    free(keys);
    free(first);
}

/* ---------------------------------------------------------------------------------------
 * Reading the results of one cell
 * --------------------------------------------------------------------------------------- */

/* This rank's rows (cells c0 .. c0+nc), in the layout of the study file. */
typedef struct {
    size_t nc;
    int K, L1, bins;
    const char **status; /* static strings */
    char **message;
    int64_t *last_step, *tokens;              /* [nc], [nc,K] */
    double *lmc, *odm, *sve, *mev;            /* [nc,K,L1] */
    float *hist;                              /* [nc,K,L1,bins] */
    double *lastn;                            /* [nc,K,6] */
    double *spearman, *kendall, *val, *train; /* [nc,K] */
} rows;

static void rows_alloc(rows *r, size_t nc, const study_shape *sh) {
    memset(r, 0, sizeof *r);
    r->nc = nc;
    r->K = sh->K;
    r->L1 = sh->L1;
    r->bins = sh->bins;
    size_t n1 = nc ? nc : 1, nk = n1 * (size_t)sh->K, nkl = nk * (size_t)sh->L1;
    r->status = lmd_calloc(n1, sizeof *r->status);
    r->message = lmd_calloc(n1, sizeof *r->message);
    r->last_step = lmd_calloc(n1, sizeof *r->last_step);
    r->tokens = lmd_calloc(nk, sizeof *r->tokens);
    r->lmc = lmd_calloc(nkl, sizeof(double));
    r->odm = lmd_calloc(nkl, sizeof(double));
    r->sve = lmd_calloc(nkl, sizeof(double));
    r->mev = lmd_calloc(nkl, sizeof(double));
    r->hist = lmd_calloc(nkl * (size_t)sh->bins, sizeof(float));
    r->lastn = lmd_calloc(nk * 6, sizeof(double));
    r->spearman = lmd_calloc(nk, sizeof(double));
    r->kendall = lmd_calloc(nk, sizeof(double));
    r->val = lmd_calloc(nk, sizeof(double));
    r->train = lmd_calloc(nk, sizeof(double));
    for (size_t i = 0; i < nkl; i++) r->lmc[i] = r->odm[i] = r->sve[i] = r->mev[i] = NAN;
    for (size_t i = 0; i < nkl * (size_t)sh->bins; i++) r->hist[i] = NAN;
    for (size_t i = 0; i < nk * 6; i++) r->lastn[i] = NAN;
    for (size_t i = 0; i < nk; i++) {
        r->spearman[i] = r->kendall[i] = r->val[i] = r->train[i] = NAN;
        r->tokens[i] = -1;
    }
}

static void rows_free(rows *r) {
    for (size_t i = 0; i < r->nc; i++) free(r->message[i]);
    free(r->status);
    free(r->message);
    free(r->last_step);
    free(r->tokens);
    free(r->lmc);
    free(r->odm);
    free(r->sve);
    free(r->mev);
    free(r->hist);
    free(r->lastn);
    free(r->spearman);
    free(r->kendall);
    free(r->val);
    free(r->train);
}

/* A cell's state file (a few lines; a long failure message at most a few KiB). NULL when it
 * does not exist; an unreadable one is reported naming the file. */
static char *read_small_text(const char *path) {
    char *s;
    lmd_err err;
    int rc = lmd_file_read(path, 1u << 20, &s, NULL, &err);
    if (rc < 0) fprintf(stderr, "lmdisp: warning: %s\n", err.msg);
    return rc == 0 ? s : NULL;
}

/* Value of "key: value" in text (up to the end of line), copied into out. */
static int state_field(const char *text, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (len > kl + 1 && !strncmp(p, key, kl) && p[kl] == ':') {
            const char *v = p + kl + 1;
            while (*v == ' ') v++;
            snprintf(out, n, "%.*s", (int)(len - (size_t)(v - p)), v);
            return 1;
        }
        p += len;
        if (*p == '\n') p++;
    }
    out[0] = '\0';
    return 0;
}

/* Reads a 1-D/2-D dataset of exactly `want` values (converted to memtype). */
static int read_exact(hid_t f, const char *file, const char *name, hid_t memtype, void *buf,
                      size_t want, lmd_err *err) {
    size_t got = 0;
    if (lmd_h5_read(f, name, memtype, buf, want, &got, err)) return -1;
    if (got != want)
        return lmd_errf(err, "%s: dataset %s holds %zu values, expected %zu", file, name, got,
                        want);
    return 0;
}

/* Reads one track file into column k of row i. */
static int read_track(rows *r, size_t i, int k, const lmd_cell *c, const char *path,
                      int64_t *step_attr, lmd_err *err) {
    hid_t f = lmd_h5_open(path, err);
    if (f < 0) return -1;
    const size_t L1c = (size_t)c->cfg.n_layer + 1, bins = (size_t)c->tracking.hist_bins;
    const size_t L1 = (size_t)r->L1, K = (size_t)r->K, base = i * K + (size_t)k;
    int rc = 0;
    int64_t step = -1;
    hid_t a = H5Aopen_by_name(f, "/", "step", H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &step) < 0)
        rc = lmd_errf(err, "%s: cannot read the root attribute 'step' (%s)", path,
                      lmd_h5_last_error());
    if (a >= 0) H5Aclose(a);
    float *hist = lmd_calloc(L1c * bins, sizeof(float));
    rc = rc ? rc
            : read_exact(f, path, "/layer_mean_cossim", H5T_NATIVE_DOUBLE, r->lmc + base * L1, L1c,
                         err);
    rc = rc ? rc
            : read_exact(f, path, "/offdiag_mean_cossim", H5T_NATIVE_DOUBLE, r->odm + base * L1,
                         L1c, err);
    rc = rc ? rc
            : read_exact(f, path, "/singular_value_entropy", H5T_NATIVE_DOUBLE, r->sve + base * L1,
                         L1c, err);
    rc = rc ? rc : read_exact(f, path, "/mev", H5T_NATIVE_DOUBLE, r->mev + base * L1, L1c, err);
    rc = rc ? rc : read_exact(f, path, "/cossim_hist", H5T_NATIVE_FLOAT, hist, L1c * bins, err);
    rc = rc ? rc
            : read_exact(f, path, "/last_n_mean", H5T_NATIVE_DOUBLE, r->lastn + base * 6, 6, err);
    rc = rc ? rc : read_exact(f, path, "/spearman", H5T_NATIVE_DOUBLE, r->spearman + base, 1, err);
    rc = rc ? rc : read_exact(f, path, "/kendall", H5T_NATIVE_DOUBLE, r->kendall + base, 1, err);
    rc = rc ? rc : read_exact(f, path, "/val_loss", H5T_NATIVE_DOUBLE, r->val + base, 1, err);
    rc = rc ? rc : read_exact(f, path, "/train_loss", H5T_NATIVE_DOUBLE, r->train + base, 1, err);
    if (!rc)
        for (size_t l = 0; l < L1c; l++)
            memcpy(r->hist + (base * L1 + l) * (size_t)r->bins, hist + l * bins,
                   bins * sizeof(float));
    free(hist);
    H5Fclose(f);
    *step_attr = step;
    return rc;
}

/* Fills row i from DIR/cells/<id>. Returns -1 on an unreadable result file (err set); a done
 * cell lacking a track file leaves NaN there and sets *missing_track to its path. */
static int read_cell(rows *r, size_t i, const lmd_cell *c, const study_shape *sh, const char *dir,
                     char *missing_track, size_t mt_len, lmd_err *err) {
    char cdir[4200], path[4400], st[64] = "", stepbuf[64] = "", msg[2048] = "";
    if (lmd_path(cdir, sizeof cdir, err, "%s/cells/%s", dir, c->id) ||
        lmd_path(path, sizeof path, err, "%s/state", cdir))
        return -1;
    char *text = read_small_text(path);
    if (text) {
        state_field(text, "status", st, sizeof st);
        state_field(text, "step", stepbuf, sizeof stepbuf);
        state_field(text, "message", msg, sizeof msg);
        free(text);
    }
    r->last_step[i] = stepbuf[0] ? strtoll(stepbuf, NULL, 10) : -1;
    for (int j = 0; j < c->tracking.n_steps; j++) {
        int64_t s = c->tracking.steps[j];
        int64_t *hit = bsearch(&s, sh->steps, (size_t)sh->K, sizeof s, cmp_i64);
        r->tokens[i * (size_t)sh->K + (size_t)(hit - sh->steps)] =
            s * (int64_t)c->train.B * (int64_t)c->train.T * c->train.accumulate;
    }
    char why[6600];
    if (!strcmp(st, "done") || !strcmp(st, "failed") || !strcmp(st, "diverged")) {
        r->status[i] = !strcmp(st, "done") ? "done" : !strcmp(st, "failed") ? "failed" : "diverged";
        r->message[i] = lmd_strdup(msg);
    } else {
        r->status[i] = "missing";
        if (!text)
            snprintf(why, sizeof why, "no results (%s not found)", path);
        else
            snprintf(why, sizeof why, "state '%s' at step %s%s%s", st[0] ? st : "?",
                     stepbuf[0] ? stepbuf : "?", msg[0] ? ": " : "", msg);
        r->message[i] = lmd_strdup(why);
    }
    /* DESIGN 4.4: only finished cells have numbers; the others keep NaN rows */
    if (strcmp(r->status[i], "done") != 0) return 0;
    for (int j = 0; j < c->tracking.n_steps; j++) {
        int64_t s = c->tracking.steps[j];
        int k =
            (int)((int64_t *)bsearch(&s, sh->steps, (size_t)sh->K, sizeof s, cmp_i64) - sh->steps);
        lmd_pathf(path, "%s/track/step%07lld.h5", cdir, (long long)s);
        if (access(path, F_OK) != 0) {
            if (!missing_track[0]) snprintf(missing_track, mt_len, "%s", path);
            continue;
        }
        int64_t got = -1;
        if (read_track(r, i, k, c, path, &got, err)) return lmd_err_prefix(err, "cell %s", c->id);
        /* the file name and the attribute must agree, else results would be misfiled */
        if (got != s)
            return lmd_errf(err, "%s: root attribute step is %lld, but the file name says %lld",
                            path, (long long)got, (long long)s);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Summary (computed identically on every rank from the gathered per-cell values)
 * --------------------------------------------------------------------------------------- */

typedef struct {
    double *trend_sp[N_TRENDS], *trend_kd[N_TRENDS]; /* [D,K] */
    int64_t *trend_n[N_TRENDS];                      /* [D,K] */
    int64_t *rho_saturated; /* [D,K] 1 when every cell behind the rho trend has rho = 1 */
    double *mean[N_METRICS], *std[N_METRICS]; /* [D,W,K] */
    int64_t *n_seeds;                         /* [D,W] done cells */
} summary;

static void summary_free(summary *s) {
    for (int t = 0; t < N_TRENDS; t++) {
        free(s->trend_sp[t]);
        free(s->trend_kd[t]);
        free(s->trend_n[t]);
    }
    free(s->rho_saturated);
    for (int m = 0; m < N_METRICS; m++) {
        free(s->mean[m]);
        free(s->std[m]);
    }
    free(s->n_seeds);
}

/* all: [C, SUMMARY_STRIDE(K)] = done flag, then the K values of each metric. */
static void summary_compute(summary *s, const study_shape *sh, const double *all) {
    const size_t C = sh->C, K = (size_t)sh->K, D = (size_t)sh->D, W = (size_t)sh->W;
    const size_t stride = SUMMARY_STRIDE(K);
    size_t dk = (D ? D : 1) * (K ? K : 1), dwk = dk * (W ? W : 1);
    for (int t = 0; t < N_TRENDS; t++) {
        s->trend_sp[t] = lmd_calloc(dk, sizeof(double));
        s->trend_kd[t] = lmd_calloc(dk, sizeof(double));
        s->trend_n[t] = lmd_calloc(dk, sizeof(int64_t));
    }
    s->rho_saturated = lmd_calloc(dk, sizeof(int64_t));
    for (int m = 0; m < N_METRICS; m++) {
        s->mean[m] = lmd_calloc(dwk, sizeof(double));
        s->std[m] = lmd_calloc(dwk, sizeof(double));
    }
    s->n_seeds = lmd_calloc((D ? D : 1) * (W ? W : 1), sizeof(int64_t));
    double *x = lmd_calloc(C ? C : 1, sizeof(double)), *y = lmd_calloc(C ? C : 1, sizeof(double));
    for (size_t d = 0; d < D; d++) {
        for (size_t k = 0; k < K; k++)
            for (int t = 0; t < N_TRENDS; t++) {
                size_t n = 0, n_one = 0;
                for (size_t i = 0; i < C; i++) {
                    const double *row = all + i * stride;
                    double v = row[1 + (size_t)TREND_METRIC[t] * K + k];
                    if ((size_t)sh->group[i] != d || row[0] != 1.0 || !isfinite(v)) continue;
                    x[n] = (double)sh->widths[sh->wi[i]];
                    y[n++] = v;
                    n_one += v == 1.0;
                }
                s->trend_sp[t][d * K + k] = lmd_spearman(x, y, n);
                s->trend_kd[t][d * K + k] = lmd_kendall_tau_b(x, y, n);
                s->trend_n[t][d * K + k] = (int64_t)n;
                if (t == T_RHO) s->rho_saturated[d * K + k] = n > 0 && n_one == n;
            }
        for (size_t w = 0; w < W; w++) {
            for (size_t i = 0; i < C; i++)
                if ((size_t)sh->group[i] == d && (size_t)sh->wi[i] == w && all[i * stride] == 1.0)
                    s->n_seeds[d * W + w]++;
            for (int m = 0; m < N_METRICS; m++)
                for (size_t k = 0; k < K; k++) {
                    double sum = 0, sq = 0;
                    size_t n = 0;
                    for (size_t i = 0; i < C; i++) {
                        double v = all[i * stride + 1 + (size_t)m * K + k];
                        if ((size_t)sh->group[i] != d || (size_t)sh->wi[i] != w ||
                            all[i * stride] != 1.0 || !isfinite(v))
                            continue;
                        x[n++] = v;
                        sum += v;
                    }
                    double mean = n ? sum / (double)n : NAN;
                    for (size_t j = 0; j < n; j++) sq += (x[j] - mean) * (x[j] - mean);
                    size_t o = (d * W + w) * K + k;
                    s->mean[m][o] = mean;
                    s->std[m][o] = n >= 2 ? sqrt(sq / (double)(n - 1)) : NAN;
                }
        }
    }
    free(x);
    free(y);
}

/* ---------------------------------------------------------------------------------------
 * Writing
 * --------------------------------------------------------------------------------------- */

static void iso_time(time_t t, char *buf, size_t n) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Root attributes: provenance. Every value is computed on rank 0 or agreed, so all ranks pass
 * the same (parallel HDF5 requires it). */
static int write_provenance(lmd_pfile *pf, const lmd_spec *spec, double t_start, lmd_err *err) {
    /* times: rank 0's clock */
    double wall[2] = {0, 0}; /* start, end (seconds since the epoch) */
    if (pf->rank == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        wall[1] = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
        wall[0] = wall[1] - (lmd_now() - t_start); /* t_start is on the monotonic clock */
    }
    int rc = MPI_Bcast(wall, 2, MPI_DOUBLE, 0, pf->comm);
    if (lmd_mpi_agree(pf->comm, lmd_mpi_check(rc, "sharing the times", err), err)) return -1;
    char start[64], end[64];
    iso_time((time_t)wall[0], start, sizeof start);
    iso_time((time_t)wall[1], end, sizeof end);

    /* host names of every rank, unique, in rank order */
    char me[MPI_MAX_PROCESSOR_NAME + 1];
    memset(me, 0, sizeof me);
    int len = 0;
    rc = MPI_Get_processor_name(me, &len);
    char *names = lmd_calloc((size_t)pf->size, sizeof me);
    if (!rc)
        rc = MPI_Allgather(me, (int)sizeof me, MPI_CHAR, names, (int)sizeof me, MPI_CHAR, pf->comm);
    if (lmd_mpi_agree(pf->comm, lmd_mpi_check(rc, "gathering host names", err), err)) {
        free(names);
        return -1;
    }
    char *hosts = lmd_calloc((size_t)pf->size, sizeof me + 1);
    for (int r = 0; r < pf->size; r++) {
        const char *h = names + (size_t)r * sizeof me;
        int seen = 0;
        for (int q = 0; q < r && !seen; q++) seen = !strcmp(h, names + (size_t)q * sizeof me);
        if (seen) continue;
        if (hosts[0]) strcat(hosts, ",");
        strcat(hosts, h);
    }
    free(names);

    char mpiv[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    rc = MPI_Get_library_version(mpiv, &len);
    if (lmd_mpi_agree(pf->comm, lmd_mpi_check(rc, "MPI_Get_library_version", err), err)) {
        free(hosts);
        return -1;
    }
    mpiv[strcspn(mpiv, "\n")] = '\0'; /* Open MPI appends build details on further lines */
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    char h5v[64];
    snprintf(h5v, sizeof h5v, "%u.%u.%u", maj, min, rel);
    char blas[512];
    snprintf(blas, sizeof blas, "%s", openblas_get_config());
    /* the version string of rank 0, so heterogeneous nodes still write one value */
    rc = MPI_Bcast(mpiv, (int)sizeof mpiv, MPI_CHAR, 0, pf->comm);
    if (!rc) rc = MPI_Bcast(blas, (int)sizeof blas, MPI_CHAR, 0, pf->comm);
    if (lmd_mpi_agree(pf->comm, lmd_mpi_check(rc, "sharing library versions", err), err)) {
        free(hosts);
        return -1;
    }

    struct {
        const char *name, *value;
    } sattrs[] = {
        {"format", "lmdisp-study"},
        {"study_name", spec->name},
        {"spec_yaml", spec->text},
        {"spec_sha256", spec->sha256},
        {"lmdisp_version", LMDISP_VERSION},
        {"git_commit", LMDISP_GIT_COMMIT},
        {"created", end},
        {"start_time", start},
        {"end_time", end},
        {"mpi_version", mpiv},
        {"hdf5_version", h5v},
        {"openblas_version", blas},
        {"hosts", hosts},
    };
    rc = 0;
    for (size_t i = 0; i < sizeof sattrs / sizeof sattrs[0] && !rc; i++)
        rc = lmd_pfile_attr_str(pf, "/", sattrs[i].name, sattrs[i].value, err);
    free(hosts);
    if (!rc) rc = lmd_pfile_attr_i64(pf, "/", "format_version", 1, err);
    if (!rc) rc = lmd_pfile_attr_i64(pf, "/", "n_ranks", pf->size, err);
    if (!rc) rc = lmd_pfile_attr_i64(pf, "/", "n_cells", (int64_t)spec->n_cells, err);
    return rc;
}

static int write_all(lmd_pfile *pf, const lmd_spec *spec, const study_shape *sh, const rows *r,
                     size_t c0, const summary *s, lmd_err *err) {
    const size_t nc = r->nc;
    const hsize_t C = sh->C, K = (hsize_t)sh->K, L1 = (hsize_t)sh->L1, B = (hsize_t)sh->bins;
    const hsize_t D = (hsize_t)sh->D, W = (hsize_t)sh->W;
    int rc = 0;
    /* per-cell settings of this rank's block */
    const char **ids = lmd_calloc(nc ? nc : 1, sizeof *ids);
    const char **disp = lmd_calloc(nc ? nc : 1, sizeof *disp);
    int64_t *mlp = lmd_calloc(nc ? nc : 1, sizeof(int64_t)),
            *seed = lmd_calloc(nc ? nc : 1, sizeof(int64_t));
    int64_t *np = lmd_calloc(nc ? nc : 1, sizeof(int64_t)),
            *nl = lmd_calloc(nc ? nc : 1, sizeof(int64_t));
    int64_t *grp = lmd_calloc(nc ? nc : 1, sizeof(int64_t));
    for (size_t i = 0; i < nc; i++) {
        const lmd_cell *c = &spec->cells[c0 + i];
        ids[i] = c->id;
        disp[i] = lmd_disp_variant_name(c->train.disp.variant);
        mlp[i] = c->cfg.mlp_dim;
        seed[i] = (int64_t)c->train.seed;
        np[i] = (int64_t)c->n_params;
        nl[i] = c->cfg.n_layer;
        grp[i] = sh->group[c0 + i];
    }
    hsize_t dC[1] = {C}, dCK[2] = {C, K}, dCKL[3] = {C, K, L1}, dCKLB[4] = {C, K, L1, B},
            dCK6[3] = {C, K, 6}, dK[1] = {K};
    const hsize_t r0 = c0, n = nc;
    rc = rc ? rc : lmd_pfile_write_strings(pf, "/cells/id", C, r0, n, ids, err);
    rc = rc ? rc : lmd_pfile_write(pf, "/cells/mlp_dim", H5T_NATIVE_INT64, 1, dC, r0, n, mlp, err);
    rc = rc ? rc : lmd_pfile_write(pf, "/cells/seed", H5T_NATIVE_INT64, 1, dC, r0, n, seed, err);
    rc = rc ? rc : lmd_pfile_write_strings(pf, "/cells/dispersion", C, r0, n, disp, err);
    rc = rc ? rc : lmd_pfile_write(pf, "/cells/n_params", H5T_NATIVE_INT64, 1, dC, r0, n, np, err);
    rc = rc ? rc : lmd_pfile_write_strings(pf, "/cells/status", C, r0, n, r->status, err);
    rc = rc ? rc
            : lmd_pfile_write_strings(pf, "/cells/message", C, r0, n,
                                      (const char *const *)r->message, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/cells/last_step", H5T_NATIVE_INT64, 1, dC, r0, n, r->last_step,
                              err);
    rc = rc ? rc : lmd_pfile_write(pf, "/cells/n_layer", H5T_NATIVE_INT64, 1, dC, r0, n, nl, err);
    rc = rc ? rc : lmd_pfile_write(pf, "/cells/group", H5T_NATIVE_INT64, 1, dC, r0, n, grp, err);
    /* the [K] axes: written by rank 0 alone, everyone still takes part */
    int z = pf->rank == 0;
    rc = rc ? rc
            : lmd_pfile_write(pf, "/tracking/step", H5T_NATIVE_INT64, 1, dK, 0, z ? K : 0,
                              sh->steps, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/tracking/tokens", H5T_NATIVE_INT64, 1, dK, 0, z ? K : 0,
                              sh->tokens, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/tracking/cell_tokens", H5T_NATIVE_INT64, 2, dCK, r0, n,
                              r->tokens, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/condensation/layer_mean_cossim", H5T_NATIVE_DOUBLE, 3, dCKL, r0,
                              n, r->lmc, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/condensation/offdiag_mean_cossim", H5T_NATIVE_DOUBLE, 3, dCKL,
                              r0, n, r->odm, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/condensation/cossim_hist", H5T_NATIVE_FLOAT, 4, dCKLB, r0, n,
                              r->hist, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/condensation/singular_value_entropy", H5T_NATIVE_DOUBLE, 3,
                              dCKL, r0, n, r->sve, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/condensation/mev", H5T_NATIVE_DOUBLE, 3, dCKL, r0, n, r->mev,
                              err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/condensation/last_n_mean", H5T_NATIVE_DOUBLE, 3, dCK6, r0, n,
                              r->lastn, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/condensation/spearman", H5T_NATIVE_DOUBLE, 2, dCK, r0, n,
                              r->spearman, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/condensation/kendall", H5T_NATIVE_DOUBLE, 2, dCK, r0, n,
                              r->kendall, err);
    rc = rc ? rc : lmd_pfile_write(pf, "/loss/val", H5T_NATIVE_DOUBLE, 2, dCK, r0, n, r->val, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/loss/train", H5T_NATIVE_DOUBLE, 2, dCK, r0, n, r->train, err);
    free(ids);
    free(disp);
    free(mlp);
    free(seed);
    free(np);
    free(nl);
    free(grp);
    /* summary: every rank computed the same numbers; rank 0 writes them */
    hsize_t dDK[2] = {D, K}, dW[1] = {W}, dDW[2] = {D, W}, dDWK[3] = {D, W, K};
    hsize_t zd = z ? D : 0;
    rc = rc ? rc
            : lmd_pfile_write_strings(pf, "/summary/dispersion", D, 0, zd,
                                      (const char *const *)sh->variant, err);
    rc = rc ? rc
            : lmd_pfile_write_strings(pf, "/summary/label", D, 0, zd,
                                      (const char *const *)sh->label, err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/summary/mlp_dim", H5T_NATIVE_INT64, 1, dW, 0, z ? W : 0,
                              sh->widths, err);
    /* DESIGN 1: /summary/trend/<s>/{spearman,kendall} for every per-model statistic s */
    for (int t = 0; t < N_TRENDS && !rc; t++) {
        char name[128];
        snprintf(name, sizeof name, "/summary/trend/%s/spearman", TREND_NAMES[t]);
        rc = lmd_pfile_write(pf, name, H5T_NATIVE_DOUBLE, 2, dDK, 0, zd, s->trend_sp[t], err);
        snprintf(name, sizeof name, "/summary/trend/%s/kendall", TREND_NAMES[t]);
        rc = rc ? rc
                : lmd_pfile_write(pf, name, H5T_NATIVE_DOUBLE, 2, dDK, 0, zd, s->trend_kd[t], err);
        snprintf(name, sizeof name, "/summary/trend/%s/n", TREND_NAMES[t]);
        rc = rc ? rc
                : lmd_pfile_write(pf, name, H5T_NATIVE_INT64, 2, dDK, 0, zd, s->trend_n[t], err);
    }
    rc = rc ? rc
            : lmd_pfile_write(pf, "/summary/trend/rho/saturated", H5T_NATIVE_INT64, 2, dDK, 0, zd,
                              s->rho_saturated, err);
    /* the paths of format 1 before issue 17: the rho trend, kept for existing readers */
    rc = rc ? rc
            : lmd_pfile_write(pf, "/summary/trend_spearman", H5T_NATIVE_DOUBLE, 2, dDK, 0, zd,
                              s->trend_sp[T_RHO], err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/summary/trend_kendall", H5T_NATIVE_DOUBLE, 2, dDK, 0, zd,
                              s->trend_kd[T_RHO], err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/summary/trend_n", H5T_NATIVE_INT64, 2, dDK, 0, zd,
                              s->trend_n[T_RHO], err);
    rc = rc ? rc
            : lmd_pfile_write(pf, "/summary/by_width/n_seeds", H5T_NATIVE_INT64, 2, dDW, 0, zd,
                              s->n_seeds, err);
    for (int m = 0; m < N_METRICS && !rc; m++) {
        char name[128];
        snprintf(name, sizeof name, "/summary/by_width/%s_mean", METRIC_NAMES[m]);
        rc = lmd_pfile_write(pf, name, H5T_NATIVE_DOUBLE, 3, dDWK, 0, zd, s->mean[m], err);
        snprintf(name, sizeof name, "/summary/by_width/%s_std", METRIC_NAMES[m]);
        rc = rc ? rc : lmd_pfile_write(pf, name, H5T_NATIVE_DOUBLE, 3, dDWK, 0, zd, s->std[m], err);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Self-description: a /cells column for every setting that varies, dimension names
 * --------------------------------------------------------------------------------------- */

/* Value of line "key=..." in a settings text, malloc'd, or NULL when absent. */
static char *settings_value(const char *text, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (len > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            char *v = lmd_calloc(len - kl, 1);
            memcpy(v, p + kl + 1, len - kl - 1);
            return v;
        }
        p += len;
        if (*p == '\n') p++;
    }
    return NULL;
}

static int is_int_text(const char *v) {
    char *end;
    errno = 0;
    (void)strtoll(v, &end, 10);
    return *v && !*end && errno == 0;
}

static int is_num_text(const char *v) {
    char *end;
    (void)strtod(v, &end);
    return *v && !*end;
}

/* Columns already written for every study (a varying one is listed, not duplicated). */
static const char *const FIXED_COLUMNS[][2] = {
    {"model.mlp_dim", "mlp_dim"},
    {"train.seed", "seed"},
    {"dispersion.variant", "dispersion"},
    {"model.n_layer", "n_layer"},
};
static const char *const RESERVED_COLUMNS[] = {"id",       "mlp_dim", "seed",    "dispersion",
                                               "n_params", "status",  "message", "last_step",
                                               "n_layer",  "group"};

/* Writes /cells/<name> for every setting of lmd_cell_settings() that takes two different values
 * among the cells that have it (a cell may lack one, e.g. dispersion.coeff of an `off` cell):
 * int64 when every cell has an integer, float64 when the values are numbers (NaN where a cell
 * lacks it), else a string ("" where absent). <name> is the part after the
 * last dot unless that clashes, then the dotted name with '_' for '.'; attribute `setting`
 * holds the dotted name. Attribute `/cells` `varying` lists the columns of every varying
 * setting, fixed ones included. Rank 0 writes the rows; identical calls on every rank. */
static int write_varying(lmd_pfile *pf, const lmd_spec *spec, lmd_err *err) {
    const size_t C = spec->n_cells;
    char **text = lmd_calloc(C ? C : 1, sizeof *text);
    for (size_t i = 0; i < C; i++) text[i] = lmd_cell_settings(&spec->cells[i]);
    /* union of the keys, in order of first appearance */
    size_t nk = 0, cap = 64;
    char **keys = lmd_calloc(cap, sizeof *keys);
    for (size_t i = 0; i < C; i++)
        for (const char *p = text[i]; *p;) {
            size_t len = strcspn(p, "\n"), kl = strcspn(p, "=\n");
            if (kl < len) {
                int seen = 0;
                for (size_t j = 0; j < nk && !seen; j++)
                    seen = strlen(keys[j]) == kl && !strncmp(keys[j], p, kl);
                if (!seen) {
                    if (nk == cap) {
                        cap *= 2;
                        keys = realloc(keys, cap * sizeof *keys);
                        if (!keys) lmd_die("out of memory listing the settings");
                    }
                    keys[nk] = lmd_calloc(kl + 1, 1);
                    memcpy(keys[nk++], p, kl);
                }
            }
            p += len;
            if (*p == '\n') p++;
        }
    char listing[4096] = "";
    int rc = 0;
    char **vals = lmd_calloc(C ? C : 1, sizeof *vals);
    for (size_t j = 0; j < nk && !rc; j++) {
        int varies = 0, all_int = 1, all_num = 1;
        const char *seen = NULL; /* first present value */
        for (size_t i = 0; i < C; i++) {
            vals[i] = settings_value(text[i], keys[j]);
            if (vals[i] && seen && strcmp(vals[i], seen)) varies = 1;
            if (vals[i] && !seen) seen = vals[i];
            if (!vals[i] || !is_int_text(vals[i])) all_int = 0;
            if (vals[i] && !is_num_text(vals[i])) all_num = 0;
        }
        const char *fixed = NULL;
        for (size_t f = 0; f < sizeof FIXED_COLUMNS / sizeof FIXED_COLUMNS[0]; f++)
            if (!strcmp(keys[j], FIXED_COLUMNS[f][0])) fixed = FIXED_COLUMNS[f][1];
        char col[256];
        if (varies && fixed) {
            snprintf(col, sizeof col, "%s", fixed);
        } else if (varies) {
            const char *dot = strrchr(keys[j], '.');
            snprintf(col, sizeof col, "%s", dot ? dot + 1 : keys[j]);
            int clash = 0;
            for (size_t f = 0; f < sizeof RESERVED_COLUMNS / sizeof RESERVED_COLUMNS[0]; f++)
                clash |= !strcmp(col, RESERVED_COLUMNS[f]);
            for (size_t o = 0; o < nk; o++) { /* another setting with the same last part */
                const char *od = strrchr(keys[o], '.');
                clash |= o != j && !strcmp(od ? od + 1 : keys[o], col);
            }
            if (clash) {
                snprintf(col, sizeof col, "%s", keys[j]);
                for (char *q = col; *q; q++)
                    if (*q == '.') *q = '_';
            }
            char name[300];
            snprintf(name, sizeof name, "/cells/%s", col);
            hsize_t dC[1] = {C}, n0 = pf->rank == 0 ? C : 0;
            if (all_int) {
                int64_t *v = lmd_calloc(C ? C : 1, sizeof *v);
                for (size_t i = 0; i < C; i++) v[i] = strtoll(vals[i], NULL, 10);
                rc = lmd_pfile_write(pf, name, H5T_NATIVE_INT64, 1, dC, 0, n0, v, err);
                free(v);
            } else if (all_num) {
                double *v = lmd_calloc(C ? C : 1, sizeof *v);
                for (size_t i = 0; i < C; i++) v[i] = vals[i] ? strtod(vals[i], NULL) : NAN;
                rc = lmd_pfile_write(pf, name, H5T_NATIVE_DOUBLE, 1, dC, 0, n0, v, err);
                free(v);
            } else {
                const char **v = lmd_calloc(C ? C : 1, sizeof *v);
                for (size_t i = 0; i < C; i++) v[i] = vals[i] ? vals[i] : "";
                rc = lmd_pfile_write_strings(pf, name, C, 0, n0, v, err);
                free(v);
            }
            if (!rc) rc = lmd_pfile_attr_str(pf, name, "setting", keys[j], err);
            if (!rc) rc = lmd_pfile_attr_str(pf, name, "dims", "cell", err);
        }
        if (varies && strlen(listing) + strlen(col) + 2 < sizeof listing) {
            if (listing[0]) strcat(listing, ",");
            strcat(listing, col);
        }
        for (size_t i = 0; i < C; i++) free(vals[i]);
    }
    if (!rc) rc = lmd_pfile_attr_str(pf, "/cells", "varying", listing, err);
    free(vals);
    for (size_t j = 0; j < nk; j++) free(keys[j]);
    free(keys);
    for (size_t i = 0; i < C; i++) free(text[i]);
    free(text);
    return rc;
}

/* Attribute `dims` on every dataset: the names of its dimensions, comma-separated, outermost
 * first (docs/STUDY.md "Dimensions"). */
static int write_dims(lmd_pfile *pf, lmd_err *err) {
    static const char *const DIMS[][2] = {
        {"/tracking/step", "checkpoint"},
        {"/tracking/tokens", "checkpoint"},
        {"/tracking/cell_tokens", "cell,checkpoint"},
        {"/condensation/layer_mean_cossim", "cell,checkpoint,layer"},
        {"/condensation/offdiag_mean_cossim", "cell,checkpoint,layer"},
        {"/condensation/cossim_hist", "cell,checkpoint,layer,bin"},
        {"/condensation/singular_value_entropy", "cell,checkpoint,layer"},
        {"/condensation/mev", "cell,checkpoint,layer"},
        {"/condensation/last_n_mean", "cell,checkpoint,last_n"},
        {"/condensation/spearman", "cell,checkpoint"},
        {"/condensation/kendall", "cell,checkpoint"},
        {"/loss/val", "cell,checkpoint"},
        {"/loss/train", "cell,checkpoint"},
        {"/summary/dispersion", "setting"},
        {"/summary/label", "setting"},
        {"/summary/mlp_dim", "width"},
        {"/summary/trend_spearman", "setting,checkpoint"},
        {"/summary/trend_kendall", "setting,checkpoint"},
        {"/summary/trend_n", "setting,checkpoint"},
        {"/summary/trend/rho/saturated", "setting,checkpoint"},
        {"/summary/by_width/n_seeds", "setting,width"},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof DIMS / sizeof DIMS[0] && !rc; i++)
        rc = lmd_pfile_attr_str(pf, DIMS[i][0], "dims", DIMS[i][1], err);
    for (int t = 0; t < N_TRENDS && !rc; t++) {
        static const char *const PARTS[] = {"spearman", "kendall", "n"};
        for (int q = 0; q < 3 && !rc; q++) {
            char name[128];
            snprintf(name, sizeof name, "/summary/trend/%s/%s", TREND_NAMES[t], PARTS[q]);
            rc = lmd_pfile_attr_str(pf, name, "dims", "setting,checkpoint", err);
        }
    }
    for (int m = 0; m < N_METRICS && !rc; m++) {
        char name[128];
        snprintf(name, sizeof name, "/summary/by_width/%s_mean", METRIC_NAMES[m]);
        rc = lmd_pfile_attr_str(pf, name, "dims", "setting,width,checkpoint", err);
        snprintf(name, sizeof name, "/summary/by_width/%s_std", METRIC_NAMES[m]);
        rc = rc ? rc : lmd_pfile_attr_str(pf, name, "dims", "setting,width,checkpoint", err);
    }
    static const char *const CELLS[] = {"id",     "mlp_dim", "seed",      "dispersion", "n_params",
                                        "status", "message", "last_step", "n_layer",    "group"};
    for (size_t i = 0; i < sizeof CELLS / sizeof CELLS[0] && !rc; i++) {
        char name[64];
        snprintf(name, sizeof name, "/cells/%s", CELLS[i]);
        rc = lmd_pfile_attr_str(pf, name, "dims", "cell", err);
    }
    return rc;
}

int lmd_study_write(const lmd_spec *spec, const char *dir, double t_start, MPI_Comm comm,
                    lmd_err *err) {
    int rank = 0, size = 1;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        return lmd_errf(err, "study %s: cannot query the communicator", dir);
    study_shape sh;
    shape_build(&sh, spec);

    /* this rank's contiguous block of cells: start from an exclusive prefix sum of counts */
    size_t C = sh.C;
    long long nc = (long long)(C / (size_t)size + ((size_t)rank < C % (size_t)size));
    long long c0 = 0;
    int rc = MPI_Exscan(&nc, &c0, 1, MPI_LONG_LONG, MPI_SUM, comm);
    if (rank == 0) c0 = 0; /* MPI_Exscan leaves rank 0's result undefined */
    long long pid = (long long)getpid();
    if (!rc) rc = MPI_Bcast(&pid, 1, MPI_LONG_LONG, 0, comm);
    if (lmd_mpi_agree(comm, lmd_mpi_check(rc, "partitioning the cells", err), err)) {
        shape_free(&sh);
        return -1;
    }

    /* read this rank's cells */
    rows r;
    rows_alloc(&r, (size_t)nc, &sh);
    char missing[4400] = "";
    int bad = 0;
    for (size_t i = 0; i < (size_t)nc && !bad; i++)
        bad = read_cell(&r, i, &spec->cells[c0 + (long long)i], &sh, dir, missing, sizeof missing,
                        err) != 0;
    rc = lmd_mpi_agree(comm, bad, err);
    if (!rc) {
        lmd_err w = {{0}};
        if (missing[0]) lmd_errf(&w, "%s", missing);
        if (lmd_mpi_agree(comm, missing[0] != 0, &w) && rank == 0)
            fprintf(stderr, "lmdisp: warning: a done cell has no track file %s (NaN in study.h5)\n",
                    w.msg);
    }

    /* the summary needs every cell's per-checkpoint values: gather them everywhere */
    const size_t K = (size_t)sh.K, stride = SUMMARY_STRIDE(K);
    double *mine = lmd_calloc((size_t)nc * stride + 1, sizeof(double));
    double *all = lmd_calloc(C * stride + 1, sizeof(double));
    for (size_t i = 0; i < (size_t)nc && !rc; i++) { /* rows are complete only when !rc */
        double *row = mine + i * stride;
        const lmd_cell *c = &spec->cells[c0 + (long long)i];
        row[0] = !strcmp(r.status[i], "done") ? 1.0 : 0.0;
        for (size_t k = 0; k < K; k++) {
            size_t o = i * K + k;
            row[1 + M_SPEARMAN * K + k] = r.spearman[o];
            row[1 + M_KENDALL * K + k] = r.kendall[o];
            row[1 + M_LAST_COSSIM * K + k] = r.lmc[o * (size_t)sh.L1 + (size_t)c->cfg.n_layer];
            row[1 + M_LAST_HALF * K + k] = r.lastn[o * 6 + LAST_HALF_INDEX];
            row[1 + M_VAL_LOSS * K + k] = r.val[o];
        }
    }
    int *counts = lmd_calloc((size_t)size, sizeof(int)),
        *displs = lmd_calloc((size_t)size, sizeof(int));
    int mycount = (int)((size_t)nc * stride);
    if (!rc) {
        if ((double)C * (double)stride > 2e9) {
            bad = lmd_errf(err, "study %s: %zu cells x %zu summary values exceed one MPI message",
                           dir, C, stride);
            rc = lmd_mpi_agree(comm, bad, err);
        } else {
            int mrc = MPI_Allgather(&mycount, 1, MPI_INT, counts, 1, MPI_INT, comm);
            for (int q = 1; q < size; q++) displs[q] = displs[q - 1] + counts[q - 1];
            if (!mrc)
                mrc = MPI_Allgatherv(mine, mycount, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE,
                                     comm);
            rc = lmd_mpi_agree(comm, lmd_mpi_check(mrc, "gathering per-cell values", err), err);
        }
    }
    free(counts);
    free(displs);
    free(mine);
    summary s;
    memset(&s, 0, sizeof s);
    if (!rc) summary_compute(&s, &sh, all);
    free(all);

    /* write under a temporary name agreed by all ranks, rename when every rank closed it */
    char tmp[4400], final[4400];
    if (!rc) rc = lmd_path(final, sizeof final, err, "%s/study.h5", dir);
    if (!rc) rc = lmd_path(tmp, sizeof tmp, err, "%s/study.h5.tmp.%lld", dir, pid);
    int created = 0;
    if (!rc) {
        lmd_pfile pf;
        rc = lmd_pfile_create(&pf, tmp, comm, err);
        if (!rc) {
            created = 1;
            rc = write_provenance(&pf, spec, t_start, err);
            if (!rc) rc = write_all(&pf, spec, &sh, &r, (size_t)c0, &s, err);
            if (!rc) /* tracking.eval_tasks: /eval/<task>/... (celleval.h) */
                rc = lmd_study_eval_write(&pf, spec, dir, (size_t)c0, (size_t)nc, sh.steps, sh.K,
                                          r.status, err);
            if (!rc) rc = write_varying(&pf, spec, err);
            if (!rc) rc = write_dims(&pf, err);
            lmd_err cerr = {{0}};
            int crc = lmd_pfile_close(&pf, &cerr);
            if (crc && !rc) {
                *err = cerr;
                rc = -1;
            }
        }
    }
    if (created) {
        int mrc = MPI_Barrier(comm);
        bad = lmd_mpi_check(mrc, "waiting for every rank to close the study file", err);
        if (!bad && !rc && rank == 0) bad = lmd_file_commit(tmp, final, err) != 0;
        if (lmd_mpi_agree(comm, bad, err)) rc = -1;
        if (rc && rank == 0) remove(tmp);
    }
    summary_free(&s);
    rows_free(&r);
    shape_free(&sh);
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------
 * Reading study.h5 back for the tables
 * --------------------------------------------------------------------------------------- */

typedef struct {
    size_t C;
    int K, L1, D, W;
    char **id, **disp, **status, **label;
    int64_t *mlp, *seed, *n_params, *n_layer, *group;
    int64_t *step, *tokens, *cell_tokens, *widths, *n_seeds;
    double *lmc, *sp, *kd, *val, *lastn;
    double *tsp[N_TRENDS], *tkd[N_TRENDS];
    int64_t *tn[N_TRENDS], *saturated;
    double *mean[N_METRICS], *std[N_METRICS];
    char name[256];
} study_view;

static void free_strings(char **s, size_t n) {
    if (!s) return;
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

static void view_free(study_view *v) {
    free_strings(v->id, v->C);
    free_strings(v->disp, v->C);
    free_strings(v->status, v->C);
    free_strings(v->label, (size_t)v->D);
    void *p[] = {v->mlp,    v->seed,        v->n_params, v->n_layer,  v->group, v->step,
                 v->tokens, v->cell_tokens, v->widths,   v->n_seeds,  v->lmc,   v->sp,
                 v->kd,     v->val,         v->lastn,    v->saturated};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    for (int t = 0; t < N_TRENDS; t++) {
        free(v->tsp[t]);
        free(v->tkd[t]);
        free(v->tn[t]);
    }
    for (int m = 0; m < N_METRICS; m++) {
        free(v->mean[m]);
        free(v->std[m]);
    }
}

/* Fixed-length string dataset [n] -> malloc'd strings. */
static int read_strings(hid_t f, const char *file, const char *name, size_t n, char ***out,
                        lmd_err *err) {
    *out = lmd_calloc(n ? n : 1, sizeof **out);
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return lmd_errf(err, "%s: no dataset %s", file, name);
    hid_t t = H5Dget_type(ds);
    int rc = 0;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) != 0) {
        rc = lmd_errf(err, "%s: %s is not a fixed-length string dataset", file, name);
    } else {
        size_t len = H5Tget_size(t);
        char *buf = lmd_calloc(n * len + 1, 1);
        hid_t sp = H5Dget_space(ds);
        hssize_t np = H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
        if (np != (hssize_t)n)
            rc = lmd_errf(err, "%s: %s holds %lld strings, expected %zu", file, name, (long long)np,
                          n);
        else if (H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            rc = lmd_errf(err, "%s: cannot read %s (%s)", file, name, lmd_h5_last_error());
        for (size_t i = 0; i < n && !rc; i++) {
            (*out)[i] = lmd_calloc(len + 1, 1);
            memcpy((*out)[i], buf + i * len, len);
        }
        free(buf);
    }
    if (t >= 0) H5Tclose(t);
    H5Dclose(ds);
    return rc;
}

static int read_1d_len(hid_t f, const char *name, size_t *n, lmd_err *err) {
    int rank;
    hsize_t dims[8];
    if (lmd_h5_dims(f, name, &rank, dims, err)) return -1;
    *n = rank >= 1 ? (size_t)dims[0] : 1;
    return 0;
}

static void *read_all(hid_t f, const char *file, const char *name, hid_t type, size_t n, int *rc,
                      lmd_err *err) {
    void *buf = lmd_calloc(n ? n : 1, 8);
    if (!*rc) *rc = read_exact(f, file, name, type, buf, n, err);
    return buf;
}

static int view_load(study_view *v, const char *path, lmd_err *err) {
    memset(v, 0, sizeof *v);
    hid_t f = lmd_h5_open(path, err);
    if (f < 0) return -1;
    int rc = 0, rank;
    hsize_t dims[8];
    size_t K = 0, D = 0, W = 0;
    rc = read_1d_len(f, "/cells/id", &v->C, err);
    if (!rc) rc = read_1d_len(f, "/tracking/step", &K, err);
    if (!rc) rc = lmd_h5_dims(f, "/condensation/layer_mean_cossim", &rank, dims, err);
    if (!rc) v->L1 = (int)dims[2];
    if (!rc) rc = read_1d_len(f, "/summary/label", &D, err);
    if (!rc) rc = read_1d_len(f, "/summary/mlp_dim", &W, err);
    if (rc) {
        H5Fclose(f);
        return lmd_err_prefix(err, "%s is not a complete study file", path);
    }
    v->K = (int)K;
    v->D = (int)D;
    v->W = (int)W;
    size_t C = v->C;
    hid_t a = H5Aopen_by_name(f, "/", "study_name", H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        hid_t t = H5Aget_type(a);
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5T_CSET_UTF8); /* HDF5 will not convert between character sets */
        if (H5Tis_variable_str(t) > 0 && H5Aread(a, mt, &s) >= 0 && s) {
            snprintf(v->name, sizeof v->name, "%s", s);
            H5free_memory(s);
        }
        H5Tclose(mt);
        H5Tclose(t);
        H5Aclose(a);
    }
    rc = rc ? rc : read_strings(f, path, "/cells/id", C, &v->id, err);
    rc = rc ? rc : read_strings(f, path, "/cells/dispersion", C, &v->disp, err);
    rc = rc ? rc : read_strings(f, path, "/cells/status", C, &v->status, err);
    rc = rc ? rc : read_strings(f, path, "/summary/label", D, &v->label, err);
    v->mlp = read_all(f, path, "/cells/mlp_dim", H5T_NATIVE_INT64, C, &rc, err);
    v->seed = read_all(f, path, "/cells/seed", H5T_NATIVE_INT64, C, &rc, err);
    v->n_params = read_all(f, path, "/cells/n_params", H5T_NATIVE_INT64, C, &rc, err);
    v->n_layer = read_all(f, path, "/cells/n_layer", H5T_NATIVE_INT64, C, &rc, err);
    v->group = read_all(f, path, "/cells/group", H5T_NATIVE_INT64, C, &rc, err);
    v->step = read_all(f, path, "/tracking/step", H5T_NATIVE_INT64, K, &rc, err);
    v->tokens = read_all(f, path, "/tracking/tokens", H5T_NATIVE_INT64, K, &rc, err);
    v->cell_tokens = read_all(f, path, "/tracking/cell_tokens", H5T_NATIVE_INT64, C * K, &rc, err);
    v->lmc = read_all(f, path, "/condensation/layer_mean_cossim", H5T_NATIVE_DOUBLE,
                      C * K * (size_t)v->L1, &rc, err);
    v->sp = read_all(f, path, "/condensation/spearman", H5T_NATIVE_DOUBLE, C * K, &rc, err);
    v->kd = read_all(f, path, "/condensation/kendall", H5T_NATIVE_DOUBLE, C * K, &rc, err);
    v->val = read_all(f, path, "/loss/val", H5T_NATIVE_DOUBLE, C * K, &rc, err);
    v->widths = read_all(f, path, "/summary/mlp_dim", H5T_NATIVE_INT64, W, &rc, err);
    v->lastn =
        read_all(f, path, "/condensation/last_n_mean", H5T_NATIVE_DOUBLE, C * K * 6, &rc, err);
    if (!rc && H5Lexists(f, "/summary/trend", H5P_DEFAULT) <= 0) {
        H5Fclose(f);
        view_free(v);
        return lmd_errf(err,
                        "%s was written before /summary/trend existed; rebuild it with "
                        "`lmdisp aggregate DIR` (DIR = the study directory)",
                        path);
    }
    for (int t = 0; t < N_TRENDS; t++) {
        char name[128];
        snprintf(name, sizeof name, "/summary/trend/%s/spearman", TREND_NAMES[t]);
        v->tsp[t] = read_all(f, path, name, H5T_NATIVE_DOUBLE, D * K, &rc, err);
        snprintf(name, sizeof name, "/summary/trend/%s/kendall", TREND_NAMES[t]);
        v->tkd[t] = read_all(f, path, name, H5T_NATIVE_DOUBLE, D * K, &rc, err);
        snprintf(name, sizeof name, "/summary/trend/%s/n", TREND_NAMES[t]);
        v->tn[t] = read_all(f, path, name, H5T_NATIVE_INT64, D * K, &rc, err);
    }
    v->saturated =
        read_all(f, path, "/summary/trend/rho/saturated", H5T_NATIVE_INT64, D * K, &rc, err);
    v->n_seeds = read_all(f, path, "/summary/by_width/n_seeds", H5T_NATIVE_INT64, D * W, &rc, err);
    for (int m = 0; m < N_METRICS; m++) {
        char name[128];
        snprintf(name, sizeof name, "/summary/by_width/%s_mean", METRIC_NAMES[m]);
        v->mean[m] = read_all(f, path, name, H5T_NATIVE_DOUBLE, D * W * K, &rc, err);
        snprintf(name, sizeof name, "/summary/by_width/%s_std", METRIC_NAMES[m]);
        v->std[m] = read_all(f, path, name, H5T_NATIVE_DOUBLE, D * W * K, &rc, err);
    }
    H5Fclose(f);
    if (rc) view_free(v);
    return rc;
}

/* Column of the cell's last tracked checkpoint, and of step 0 (-1 when absent). */
static int last_col(const study_view *v, size_t i) {
    for (int k = v->K - 1; k >= 0; k--)
        if (v->cell_tokens[i * (size_t)v->K + (size_t)k] >= 0) return k;
    return -1;
}

static int init_col(const study_view *v) {
    for (int k = 0; k < v->K; k++)
        if (v->step[k] == 0) return k;
    return -1;
}

/* Number for a text table ("-" for NaN) or a CSV field (empty for NaN). */
static const char *num(char *buf, size_t n, double x, int prec, int csv) {
    if (isnan(x))
        snprintf(buf, n, "%s", csv ? "" : "-");
    else if (csv)
        snprintf(buf, n, "%.17g", x); /* round-trips */
    else
        snprintf(buf, n, "%.*f", prec, x);
    return buf;
}

static double at(const double *a, const study_view *v, size_t i, int k) {
    return k < 0 ? NAN : a[i * (size_t)v->K + (size_t)k];
}

static double last_cos(const study_view *v, size_t i, int k) {
    if (k < 0) return NAN;
    return v->lmc[(i * (size_t)v->K + (size_t)k) * (size_t)v->L1 + (size_t)v->n_layer[i]];
}

/* Width of the setting column: the longest label, at least 16. */
static int label_width(const study_view *v) {
    int w = 16;
    for (int d = 0; d < v->D; d++)
        if ((int)strlen(v->label[d]) > w) w = (int)strlen(v->label[d]);
    return w;
}

static void print_cells(const study_view *v, FILE *f, int csv) {
    char b[8][48];
    int lw = label_width(v);
    int k0 = init_col(v);
    if (csv) {
        fprintf(f, "id,mlp_dim,dispersion,seed,status,n_params,step,tokens,val_loss,"
                   "last_layer_cossim,spearman,kendall\n");
        for (size_t i = 0; i < v->C; i++)
            for (int k = 0; k < v->K; k++) {
                if (v->cell_tokens[i * (size_t)v->K + (size_t)k] < 0) continue;
                fprintf(f, "%s,%lld,%s,%lld,%s,%lld,%lld,%lld,%s,%s,%s,%s\n", v->id[i],
                        (long long)v->mlp[i], v->disp[i], (long long)v->seed[i], v->status[i],
                        (long long)v->n_params[i], (long long)v->step[k],
                        (long long)v->cell_tokens[i * (size_t)v->K + (size_t)k],
                        num(b[0], 48, at(v->val, v, i, k), 4, 1),
                        num(b[1], 48, last_cos(v, i, k), 4, 1),
                        num(b[2], 48, at(v->sp, v, i, k), 3, 1),
                        num(b[3], 48, at(v->kd, v, i, k), 3, 1));
            }
        return;
    }
    fprintf(f, "%8s  %-*s %5s  %-8s %10s %9s %11s %8s %8s %8s %8s  %s\n", "mlp_dim", lw, "setting",
            "seed", "status", "n_params", "val_loss", "last_cossim", "rho@0", "tau@0", "rho@end",
            "tau@end", "id");
    for (size_t i = 0; i < v->C; i++) {
        int kl = last_col(v, i);
        fprintf(f, "%8lld  %-*s %5lld  %-8s %10lld %9s %11s %8s %8s %8s %8s  %s\n",
                (long long)v->mlp[i], lw, v->label[v->group[i]], (long long)v->seed[i],
                v->status[i], (long long)v->n_params[i], num(b[0], 48, at(v->val, v, i, kl), 4, 0),
                num(b[1], 48, last_cos(v, i, kl), 4, 0), num(b[2], 48, at(v->sp, v, i, k0), 3, 0),
                num(b[3], 48, at(v->kd, v, i, k0), 3, 0), num(b[4], 48, at(v->sp, v, i, kl), 3, 0),
                num(b[5], 48, at(v->kd, v, i, kl), 3, 0), v->id[i]);
    }
}

static void print_trend(const study_view *v, FILE *f, int csv) {
    char b[6][48];
    int lw = label_width(v);
    if (csv)
        fprintf(f, "setting,step,tokens,n_cells,trend_spearman,trend_kendall,rho_saturated,"
                   "last_layer_spearman,last_layer_kendall,last_half_spearman,last_half_kendall\n");
    else
        fprintf(f,
                "cross-grid trend: rank correlation of mlp_dim with each per-model statistic "
                "(done cells, all seeds;\nnegative = larger models condense less). rho = the "
                "model's Spearman of layer mean vs depth,\nlast_layer = mean cosine of the last "
                "hidden state, last_half = mean over the last half of the layers\n"
                "  %-*s %8s %10s %4s %17s %17s %17s\n  %-*s %8s %10s %4s %8s %8s %8s %8s %8s %8s\n",
                lw, "", "", "", "", "rho", "last_layer", "last_half", lw, "setting", "step",
                "tokens", "n", "spearman", "kendall", "spearman", "kendall", "spearman", "kendall");
    for (int d = 0; d < v->D; d++)
        for (int k = 0; k < v->K; k++) {
            size_t o = (size_t)d * (size_t)v->K + (size_t)k;
            if (csv) {
                fprintf(f, "\"%s\",%lld,%lld,%lld,%s,%s,%lld,%s,%s,%s,%s\n", v->label[d],
                        (long long)v->step[k], (long long)v->tokens[k], (long long)v->tn[T_RHO][o],
                        num(b[0], 48, v->tsp[T_RHO][o], 3, 1),
                        num(b[1], 48, v->tkd[T_RHO][o], 3, 1), (long long)v->saturated[o],
                        num(b[2], 48, v->tsp[T_LAST_LAYER][o], 3, 1),
                        num(b[3], 48, v->tkd[T_LAST_LAYER][o], 3, 1),
                        num(b[4], 48, v->tsp[T_LAST_HALF][o], 3, 1),
                        num(b[5], 48, v->tkd[T_LAST_HALF][o], 3, 1));
                continue;
            }
            fprintf(f, "  %-*s %8lld %10lld %4lld", lw, v->label[d], (long long)v->step[k],
                    (long long)v->tokens[k], (long long)v->tn[T_LAST_LAYER][o]);
            if (v->saturated[o])
                fprintf(f, " %17s", "saturated");
            else
                fprintf(f, " %8s %8s", num(b[0], 48, v->tsp[T_RHO][o], 3, 0),
                        num(b[1], 48, v->tkd[T_RHO][o], 3, 0));
            fprintf(f, " %8s %8s %8s %8s\n", num(b[2], 48, v->tsp[T_LAST_LAYER][o], 3, 0),
                    num(b[3], 48, v->tkd[T_LAST_LAYER][o], 3, 0),
                    num(b[4], 48, v->tsp[T_LAST_HALF][o], 3, 0),
                    num(b[5], 48, v->tkd[T_LAST_HALF][o], 3, 0));
        }
    if (csv) return;
    for (int d = 0; d < v->D; d++) {
        int n_sat = 0;
        for (int k = 0; k < v->K; k++)
            n_sat += v->saturated[(size_t)d * (size_t)v->K + (size_t)k] != 0;
        if (n_sat)
            fprintf(f,
                    "  note: rho is saturated for %s at %d of %d checkpoints: every cell's layer "
                    "means rise monotonically with depth (rho = 1), so its trend is undefined "
                    "there; read last_layer and last_half\n",
                    v->label[d], n_sat, v->K);
    }
}

static void print_width(const study_view *v, FILE *f, int csv) {
    char b[8][48];
    int K = v->K;
    if (csv)
        fprintf(f, "setting,mlp_dim,n_seeds,step,tokens,spearman_mean,spearman_std,kendall_mean,"
                   "kendall_std,last_layer_cossim_mean,last_layer_cossim_std,last_half_cossim_mean,"
                   "last_half_cossim_std,val_loss_mean,val_loss_std\n");
    else
        fprintf(f,
                "per width at the final checkpoint (mean ± std over seeds, done cells)\n"
                "  %-*s %8s %4s %17s %17s %17s %17s %17s\n",
                label_width(v), "setting", "mlp_dim", "n", "rho", "tau", "last_cossim", "last_half",
                "val_loss");
    for (int d = 0; d < v->D; d++)
        for (int w = 0; w < v->W; w++) {
            size_t dw = (size_t)d * (size_t)v->W + (size_t)w;
            for (int k = csv ? 0 : K - 1; k < K; k++) {
                size_t o = dw * (size_t)K + (size_t)k;
                if (csv) {
                    fprintf(f, "\"%s\",%lld,%lld,%lld,%lld", v->label[d], (long long)v->widths[w],
                            (long long)v->n_seeds[dw], (long long)v->step[k],
                            (long long)v->tokens[k]);
                    for (int m = 0; m < N_METRICS; m++)
                        fprintf(f, ",%s,%s", num(b[0], 48, v->mean[m][o], 4, 1),
                                num(b[1], 48, v->std[m][o], 4, 1));
                    fprintf(f, "\n");
                } else {
                    fprintf(f, "  %-*s %8lld %4lld", label_width(v), v->label[d],
                            (long long)v->widths[w], (long long)v->n_seeds[dw]);
                    for (int m = 0; m < N_METRICS; m++) {
                        char cell[112];
                        if (isnan(v->std[m][o])) /* one seed: no spread to show */
                            snprintf(cell, sizeof cell, "%s", num(b[0], 48, v->mean[m][o], 3, 0));
                        else
                            snprintf(cell, sizeof cell, "%s ± %s",
                                     num(b[0], 48, v->mean[m][o], 3, 0),
                                     num(b[1], 48, v->std[m][o], 3, 0));
                        fprintf(f, " %17s", cell);
                    }
                    fprintf(f, "\n");
                }
            }
        }
}

/* Per-cell statistic of a claim at column k: the last-layer or the last-half mean cosine. */
static double cell_stat(const study_view *v, size_t i, int k, int t) {
    if (k < 0) return NAN;
    if (t == T_LAST_LAYER) return last_cos(v, i, k);
    return v->lastn[(i * (size_t)v->K + (size_t)k) * 6 + LAST_HALF_INDEX];
}

static void mean_std(const double *x, int n, double *mean, double *std) {
    double s = 0, q = 0;
    for (int j = 0; j < n; j++) s += x[j];
    *mean = n ? s / n : NAN;
    for (int j = 0; j < n; j++) q += (x[j] - *mean) * (x[j] - *mean);
    *std = n >= 2 ? sqrt(q / (n - 1)) : NAN;
}

/* One line per claim of the paper that the study can test, with the numbers behind it
 * (docs/STUDY.md "Claims"): larger MLP, less condensation; dispersion lowers condensation;
 * condensation at initialization. */
static void print_claims(const study_view *v, FILE *f) {
    char b[4][48];
    const int K = v->K, kl = K - 1, k0 = init_col(v);
    fprintf(f, "claims (done cells; last checkpoint = step %lld):\n",
            K ? (long long)v->step[kl] : 0LL);
    if (K == 0) return;
    /* 1. larger MLP, less condensation: per setting, width vs last_layer and last_half */
    for (int d = 0; d < v->D; d++) {
        size_t o = (size_t)d * (size_t)K + (size_t)kl;
        int neg = 0, defined = 0;
        for (int t = T_LAST_LAYER; t <= T_LAST_HALF; t++) {
            defined += isfinite(v->tsp[t][o]) && isfinite(v->tkd[t][o]);
            neg += v->tsp[t][o] < 0 && v->tkd[t][o] < 0;
        }
        fprintf(f,
                "  larger MLP, less condensation [%s]: last_layer spearman %s kendall %s, "
                "last_half spearman %s kendall %s (n %lld cells, %d widths) -> %s\n",
                v->label[d], num(b[0], 48, v->tsp[T_LAST_LAYER][o], 3, 0),
                num(b[1], 48, v->tkd[T_LAST_LAYER][o], 3, 0),
                num(b[2], 48, v->tsp[T_LAST_HALF][o], 3, 0),
                num(b[3], 48, v->tkd[T_LAST_HALF][o], 3, 0), (long long)v->tn[T_LAST_LAYER][o],
                v->W,
                defined < 2 ? "not testable"
                : neg == 2  ? "holds"
                : neg == 0  ? "does not hold"
                            : "mixed");
    }
    /* 2. dispersion lowers condensation: each dispersion setting minus the one setting without
     * it, per width, paired by seed */
    int off = -1, n_off = 0;
    for (int d = 0; d < v->D; d++)
        if (!strncmp(v->label[d], "off", 3) && (v->label[d][3] == '\0' || v->label[d][3] == ' ')) {
            off = d;
            n_off++;
        }
    double *diff = lmd_calloc(v->C ? v->C : 1, sizeof *diff);
    for (int d = 0; d < v->D; d++) {
        if (d == off) continue;
        if (n_off != 1) {
            fprintf(
                f,
                "  dispersion lowers condensation [%s]: not testable (needs exactly one setting "
                "without dispersion, found %d)\n",
                v->label[d], n_off);
            continue;
        }
        for (int t = T_LAST_LAYER; t <= T_LAST_HALF; t++) {
            int lower = 0, clear = 0, tested = 0;
            fprintf(f, "  dispersion lowers condensation [%s - off, %s, mean ± std over seeds]:",
                    v->label[d], TREND_NAMES[t]);
            for (int w = 0; w < v->W; w++) {
                int n = 0;
                for (size_t i = 0; i < v->C; i++) {
                    if (v->group[i] != d || v->mlp[i] != v->widths[w] ||
                        strcmp(v->status[i], "done"))
                        continue;
                    for (size_t j = 0; j < v->C; j++)
                        if (v->group[j] == off && v->mlp[j] == v->mlp[i] &&
                            v->seed[j] == v->seed[i] && !strcmp(v->status[j], "done")) {
                            double x = cell_stat(v, i, kl, t) - cell_stat(v, j, kl, t);
                            if (isfinite(x)) diff[n++] = x;
                        }
                }
                double m, sd;
                mean_std(diff, n, &m, &sd);
                if (n) {
                    tested++;
                    lower += m < 0;
                    clear += m < 0 && n >= 2 && m + sd < 0;
                }
                if (n >= 2)
                    fprintf(f, " %lld: %s ± %s (n %d)%s", (long long)v->widths[w],
                            num(b[0], 48, m, 3, 0), num(b[1], 48, sd, 3, 0), n,
                            w + 1 < v->W ? ";" : "");
                else
                    fprintf(f, " %lld: %s (n %d)%s", (long long)v->widths[w],
                            num(b[0], 48, m, 3, 0), n, w + 1 < v->W ? ";" : "");
            }
            fprintf(f, " -> %s (lower at %d of %d widths, by more than one std at %d)\n",
                    !tested           ? "not testable"
                    : lower == tested ? "holds"
                    : lower == 0      ? "does not hold"
                                      : "mixed",
                    lower, tested, clear);
        }
    }
    free(diff);
    /* 3. condensation at initialization: the mean layer profile at step 0 and each cell's rho */
    if (k0 < 0) {
        fprintf(f, "  condensation at initialization: not testable (step 0 is not tracked)\n");
        return;
    }
    int64_t nl = -1;
    int n = 0, pos = 0, ncells = 0;
    double *prof = lmd_calloc((size_t)v->L1, sizeof *prof);
    for (size_t i = 0; i < v->C; i++) {
        if (strcmp(v->status[i], "done")) continue;
        double rho = at(v->sp, v, i, k0);
        if (isfinite(rho)) {
            ncells++;
            pos += rho > 0;
        }
        if (nl < 0) nl = v->n_layer[i];
        if (v->n_layer[i] != nl) continue; /* one profile: the first done cell's depth */
        for (int l = 0; l <= nl; l++)
            prof[l] += v->lmc[(i * (size_t)K + (size_t)k0) * (size_t)v->L1 + (size_t)l];
        n++;
    }
    fprintf(f,
            "  condensation at initialization: layer means at step 0 (mean of %d cells with %lld "
            "layers)",
            n, (long long)nl);
    for (int l = 0; l <= nl && n; l++) fprintf(f, " %s", num(b[0], 48, prof[l] / n, 3, 0));
    fprintf(f, " (embedding .. final norm); rho > 0 in %d of %d cells -> %s\n", pos, ncells,
            !ncells                                       ? "not testable"
            : 2 * pos > ncells && n && prof[nl] > prof[0] ? "holds"
                                                          : "does not hold");
    free(prof);
}

int lmd_study_report(const char *path, FILE *f, int csv, const char *table, lmd_err *err) {
    if (!table) table = csv ? "cells" : "all";
    int all = !strcmp(table, "all");
    if (!all && strcmp(table, "cells") && strcmp(table, "trend") && strcmp(table, "width"))
        return lmd_errf(err, "unknown table '%s' (cells, trend, width%s)", table,
                        csv ? "" : " or all");
    if (csv && all)
        return lmd_errf(err, "--csv prints one table: choose --table cells|trend|width");
    study_view v;
    if (view_load(&v, path, err)) return -1;
    if (!csv) {
        size_t n_done = 0;
        for (size_t i = 0; i < v.C; i++) n_done += !strcmp(v.status[i], "done");
        fprintf(f,
                "study %s: %zu cells (%zu done), %d checkpoints (steps %lld..%lld), %d "
                "setting(s), %d width(s)\n\n",
                v.name[0] ? v.name : path, v.C, n_done, v.K, v.K ? (long long)v.step[0] : 0LL,
                v.K ? (long long)v.step[v.K - 1] : 0LL, v.D, v.W);
    }
    if (all || !strcmp(table, "cells")) print_cells(&v, f, csv);
    if (all) fprintf(f, "\n");
    if (all || !strcmp(table, "trend")) print_trend(&v, f, csv);
    if (all) fprintf(f, "\n");
    if (all || !strcmp(table, "width")) print_width(&v, f, csv);
    if (all) {
        fprintf(f, "\n");
        print_claims(&v, f);
    }
    view_free(&v);
    return 0;
}

void lmd_study_print_summary(const char *dir, FILE *f) {
    char path[4200];
    lmd_pathf(path, "%s/study.h5", dir);
    lmd_err err = {{0}};
    if (lmd_study_report(path, f, 0, "all", &err)) fprintf(stderr, "lmdisp: %s\n", err.msg);
    fprintf(f, "\nwrote %s\n", path);
    fflush(f);
}
