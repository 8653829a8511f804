/* study.c — DIR/study.h5 (DESIGN.md 4.4, layout in docs/STUDY.md): gathered from the per-cell
 * results under DIR/cells/<id>/ with parallel HDF5, plus the cross-grid summary, and the
 * tables printed from it (`run`, `aggregate`, `report`) are in studyreport.c.
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
#include "ph5write.h"
#include "celleval.h"

#ifndef LMDISP_VERSION
#define LMDISP_VERSION "unknown"
#endif
#ifndef LMDISP_GIT_COMMIT
#define LMDISP_GIT_COMMIT "unknown"
#endif

#include "studynames.h"

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
            : lmd_h5_read_exact(f, "/layer_mean_cossim", H5T_NATIVE_DOUBLE, r->lmc + base * L1, L1c,
                                err);
    rc = rc ? rc
            : lmd_h5_read_exact(f, "/offdiag_mean_cossim", H5T_NATIVE_DOUBLE, r->odm + base * L1,
                                L1c, err);
    rc = rc ? rc
            : lmd_h5_read_exact(f, "/singular_value_entropy", H5T_NATIVE_DOUBLE, r->sve + base * L1,
                                L1c, err);
    rc = rc ? rc : lmd_h5_read_exact(f, "/mev", H5T_NATIVE_DOUBLE, r->mev + base * L1, L1c, err);
    rc = rc ? rc : lmd_h5_read_exact(f, "/cossim_hist", H5T_NATIVE_FLOAT, hist, L1c * bins, err);
    rc = rc ? rc
            : lmd_h5_read_exact(f, "/last_n_mean", H5T_NATIVE_DOUBLE, r->lastn + base * 6, 6, err);
    rc = rc ? rc : lmd_h5_read_exact(f, "/spearman", H5T_NATIVE_DOUBLE, r->spearman + base, 1, err);
    rc = rc ? rc : lmd_h5_read_exact(f, "/kendall", H5T_NATIVE_DOUBLE, r->kendall + base, 1, err);
    rc = rc ? rc : lmd_h5_read_exact(f, "/val_loss", H5T_NATIVE_DOUBLE, r->val + base, 1, err);
    rc = rc ? rc : lmd_h5_read_exact(f, "/train_loss", H5T_NATIVE_DOUBLE, r->train + base, 1, err);
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
