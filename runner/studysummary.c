/* studysummary.c — the cross-grid summary of study.h5 (DESIGN.md section 1, study_internal.h):
 * per setting group and checkpoint, the rank correlation of model size with each per-model
 * statistic, and mean ± std over seeds per width; computed identically on every rank from the
 * gathered per-cell values and written by rank 0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rankcorr.h"
#include "study_internal.h"

void study_summary_free(summary *s) {
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
void study_summary_compute(summary *s, const study_shape *sh, const double *all) {
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

int study_write_summary(lmd_pfile *pf, const study_shape *sh, const summary *s, lmd_err *err) {
    const hsize_t K = (hsize_t)sh->K, D = (hsize_t)sh->D, W = (hsize_t)sh->W;
    int rc = 0, z = pf->rank == 0;
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
