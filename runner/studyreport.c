/* studyreport.c — the tables of `lmdisp report` (and the end of `run` / `aggregate`), read
 * back from a study.h5 that study.c and its parts wrote (layout in docs/STUDY.md). */
#include "study.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "studynames.h"

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
    if (!*rc) *rc = lmd_h5_read_exact(f, name, type, buf, n, err);
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
    lmd_err no_name; /* optional: a file without it prints no name */
    if (lmd_h5_attr_get_str(f, "study_name", v->name, sizeof v->name, path, &no_name))
        v->name[0] = '\0';
    rc = rc ? rc : lmd_h5_read_strings(f, "/cells/id", C, &v->id, err);
    rc = rc ? rc : lmd_h5_read_strings(f, "/cells/dispersion", C, &v->disp, err);
    rc = rc ? rc : lmd_h5_read_strings(f, "/cells/status", C, &v->status, err);
    rc = rc ? rc : lmd_h5_read_strings(f, "/summary/label", D, &v->label, err);
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
