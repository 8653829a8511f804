/* measreport.c — `lmdisp report` of a measurement study file (measrun.h): per cell, the
 * per-family trend over n_params, the series over training tokens, the pairs side by side. */
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "measrun.h"

typedef struct {
    size_t C, D, P;
    int L1;
    char **id, **fam, **model, **rev, **ds, **mt, **status, **label;
    int64_t *np, *nl, *tok, *pd, *pb, *gn, *gtn;
    double *lm, *sp, *kd, *last6;
    double *tr[2][3][2]; /* [size|tokens][stat][spearman|kendall] */
} mview;

static char **rstr(hid_t f, const char *name, size_t n, int *rc, lmd_err *err) {
    char **out = NULL;
    if (*rc) return lmd_calloc(n + 1, sizeof *out);
    if (lmd_h5_read_strings(f, name, n, &out, err)) *rc = -1;
    return out;
}

static void *rnum(hid_t f, const char *name, hid_t type, size_t n, int *rc, lmd_err *err) {
    void *buf = lmd_calloc(n + 1, 8);
    size_t got = 0;
    if (!*rc && n && lmd_h5_read(f, name, type, buf, n, &got, err)) *rc = -1;
    return buf;
}

static void free_strs(char **s, size_t n) {
    if (!s) return;
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

int lmd_mstudy_is(const char *path) {
    lmd_err ignore; /* not an HDF5 file, or no `kind`: not a measurement study */
    hid_t f = lmd_h5_open(path, &ignore);
    if (f < 0) return 0;
    char kind[64];
    int yes = lmd_h5_attr_get_str(f, "kind", kind, sizeof kind, path, &ignore) == 0 &&
              !strcmp(kind, "measure");
    H5Fclose(f);
    return yes;
}

static void pnum(FILE *f, double v, int csv) {
    (void)csv;
    if (isfinite(v))
        fprintf(f, ",%.17g", v);
    else
        fprintf(f, ",");
}

static void pn(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, " %9.4f", v);
    else
        fprintf(f, " %9s", "nan");
}

static double stat_of(const mview *v, size_t i, int st) {
    if (st == 0) return v->sp[i];
    if (st == 1) return v->nl[i] >= 0 && v->nl[i] < v->L1 ? v->lm[i * v->L1 + v->nl[i]] : NAN;
    return v->last6[i * 6 + 5];
}

int lmd_mstudy_report(const char *path, FILE *f, int csv, const char *table, lmd_err *err) {
    lmd_h5_quiet();
    hid_t h = lmd_h5_open(path, err);
    if (h < 0) return -1;
    mview v;
    memset(&v, 0, sizeof v);
    int rank, rc = 0;
    hsize_t dims[8];
    rc = lmd_h5_dims(h, "/condensation/layer_mean_cossim", &rank, dims, err);
    if (!rc) v.C = dims[0], v.L1 = (int)dims[2];
    if (!rc) rc = lmd_h5_dims(h, "/summary/label", &rank, dims, err);
    if (!rc) v.D = dims[0];
    if (!rc && H5Lexists(h, "/summary/pairs", H5P_DEFAULT) > 0 &&
        !lmd_h5_dims(h, "/summary/pairs/base_cell", &rank, dims, err))
        v.P = dims[0];
    v.id = rstr(h, "/cells/id", v.C, &rc, err);
    v.fam = rstr(h, "/cells/family", v.C, &rc, err);
    v.model = rstr(h, "/cells/model", v.C, &rc, err);
    v.rev = rstr(h, "/cells/revision", v.C, &rc, err);
    v.ds = rstr(h, "/cells/dataset", v.C, &rc, err);
    v.mt = rstr(h, "/cells/model_type", v.C, &rc, err);
    v.status = rstr(h, "/cells/status", v.C, &rc, err);
    v.label = rstr(h, "/summary/label", v.D, &rc, err);
    v.np = rnum(h, "/cells/n_params", H5T_NATIVE_INT64, v.C, &rc, err);
    v.nl = rnum(h, "/cells/n_layer", H5T_NATIVE_INT64, v.C, &rc, err);
    v.tok = rnum(h, "/cells/train_tokens", H5T_NATIVE_INT64, v.C, &rc, err);
    v.gn = rnum(h, "/summary/n_models", H5T_NATIVE_INT64, v.D, &rc, err);
    v.gtn = rnum(h, "/summary/n_series", H5T_NATIVE_INT64, v.D, &rc, err);
    v.lm = rnum(h, "/condensation/layer_mean_cossim", H5T_NATIVE_DOUBLE, v.C * v.L1, &rc, err);
    v.sp = rnum(h, "/condensation/spearman", H5T_NATIVE_DOUBLE, v.C, &rc, err);
    v.kd = rnum(h, "/condensation/kendall", H5T_NATIVE_DOUBLE, v.C, &rc, err);
    v.last6 = rnum(h, "/condensation/last_n_mean", H5T_NATIVE_DOUBLE, 6 * v.C, &rc, err);
    static const char *const SN[3] = {"rho", "last_layer", "last_half"};
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++)
            for (int k = 0; k < 2; k++) {
                char nm[128];
                snprintf(nm, sizeof nm, "/summary/%s/%s/%s", t ? "tokens_trend" : "trend", SN[s],
                         k ? "kendall" : "spearman");
                v.tr[t][s][k] = rnum(h, nm, H5T_NATIVE_DOUBLE, v.D, &rc, err);
            }
    if (v.P) {
        v.pd = rnum(h, "/summary/pairs/distilled_cell", H5T_NATIVE_INT64, v.P, &rc, err);
        v.pb = rnum(h, "/summary/pairs/base_cell", H5T_NATIVE_INT64, v.P, &rc, err);
    }
    H5Fclose(h);
    if (rc) {
        lmd_err_prefix(err, "%s", path);
        goto out;
    }
    int all = !table || !strcmp(table, "all");
    if (table && !all && strcmp(table, "cells") && strcmp(table, "trend") &&
        strcmp(table, "series") && strcmp(table, "pairs")) {
        rc = lmd_errf(err, "unknown table '%s' (cells, trend, series, pairs, all)", table);
        goto out;
    }
    if (csv) {
        if (all || !strcmp(table, "cells")) {
            fprintf(f,
                    "cell,family,model,revision,dataset,model_type,n_params,n_layer,train_tokens,"
                    "status,spearman,kendall,last_layer,last_half\n");
            for (size_t i = 0; i < v.C; i++) {
                fprintf(f, "%s,%s,%s,%s,%s,%s,%lld,%lld,%lld,%s", v.id[i], v.fam[i], v.model[i],
                        v.rev[i], v.ds[i], v.mt[i], (long long)v.np[i], (long long)v.nl[i],
                        (long long)v.tok[i], v.status[i]);
                pnum(f, v.sp[i], 1), pnum(f, v.kd[i], 1), pnum(f, stat_of(&v, i, 1), 1);
                pnum(f, stat_of(&v, i, 2), 1);
                fprintf(f, "\n");
            }
        } else {
            fprintf(f, "group,trend_over,statistic,n,spearman,kendall\n");
            for (size_t g = 0; g < v.D; g++)
                for (int t = 0; t < 2; t++)
                    for (int s = 0; s < 3; s++) {
                        fprintf(f, "%s,%s,%s,%lld", v.label[g], t ? "train_tokens" : "n_params",
                                SN[s], (long long)(t ? v.gtn[g] : v.gn[g]));
                        pnum(f, v.tr[t][s][0][g], 1), pnum(f, v.tr[t][s][1][g], 1);
                        fprintf(f, "\n");
                    }
        }
        goto out;
    }
    int mw = 5;
    for (size_t i = 0; i < v.C; i++)
        if ((int)strlen(v.model[i]) > mw) mw = (int)strlen(v.model[i]);
    if (all || !strcmp(table, "cells")) {
        fprintf(f, "cells (%zu): layer-depth trend and last-layer / last-half mean cosine\n", v.C);
        fprintf(f, "%-14s %-*s %-10s %-8s %12s %4s %-8s %9s %9s %9s %9s\n", "family", mw, "model",
                "dataset", "type", "n_params", "L", "status", "rho", "tau", "last", "half");
        for (size_t i = 0; i < v.C; i++) {
            fprintf(f, "%-14s %-*s %-10s %-8s %12lld %4lld %-8s", v.fam[i], mw, v.model[i], v.ds[i],
                    v.mt[i], (long long)v.np[i], (long long)v.nl[i], v.status[i]);
            pn(f, v.sp[i]), pn(f, v.kd[i]), pn(f, stat_of(&v, i, 1)), pn(f, stat_of(&v, i, 2));
            fprintf(f, "\n");
        }
    }
    if (all || !strcmp(table, "trend")) {
        fprintf(f, "\ntrend across models of a family (size = n_params; negative = larger models "
                   "condense less), Spearman / Kendall:\n");
        fprintf(f, "%-30s %3s %19s %19s %19s\n", "family/dataset", "n", "rho", "last_layer",
                "last_half");
        for (size_t g = 0; g < v.D; g++) {
            fprintf(f, "%-30s %3lld", v.label[g], (long long)v.gn[g]);
            for (int s = 0; s < 3; s++) pn(f, v.tr[0][s][0][g]), pn(f, v.tr[0][s][1][g]);
            int sat = v.gn[g] > 0;
            for (size_t i = 0; i < v.C; i++) {
                char lab[1024];
                snprintf(lab, sizeof lab, "%s/%s", v.fam[i], v.ds[i]);
                if (!strcmp(lab, v.label[g]) && !strcmp(v.status[i], "done") && v.sp[i] != 1.0)
                    sat = 0;
            }
            int one_size = v.gn[g] > 1, first = 1;
            int64_t n0 = 0;
            for (size_t i = 0; i < v.C; i++) {
                char lab[1024];
                snprintf(lab, sizeof lab, "%s/%s", v.fam[i], v.ds[i]);
                if (strcmp(lab, v.label[g]) || strcmp(v.status[i], "done")) continue;
                if (first)
                    n0 = v.np[i], first = 0;
                else if (v.np[i] != n0)
                    one_size = 0;
            }
            fprintf(f, "%s\n",
                    one_size ? "  (one size: a series, see the series table)"
                    : sat    ? "  (rho saturated: every model's rho is 1)"
                             : "");
        }
    }
    if (all || !strcmp(table, "series")) {
        int any = 0;
        for (size_t g = 0; g < v.D; g++) {
            if (v.gtn[g] < 2) continue;
            if (!any)
                fprintf(f, "\nseries: condensation against training tokens (revisions "
                           "with a tokensNB name, from step 0)\n");
            any = 1;
            fprintf(f, "%s:\n  %-*s %16s %9s %9s %9s\n", v.label[g], mw, "model", "train_tokens",
                    "rho", "last", "half");
            for (size_t i = 0; i < v.C; i++) {
                char lab[1024];
                snprintf(lab, sizeof lab, "%s/%s", v.fam[i], v.ds[i]);
                if (strcmp(lab, v.label[g])) continue;
                fprintf(f, "  %-*s %16lld", mw, v.model[i], (long long)v.tok[i]);
                pn(f, v.sp[i]), pn(f, stat_of(&v, i, 1)), pn(f, stat_of(&v, i, 2));
                fprintf(f, "\n");
            }
            fprintf(f, "  trend over training tokens (n %lld), Spearman/Kendall: rho",
                    (long long)v.gtn[g]);
            pn(f, v.tr[1][0][0][g]), pn(f, v.tr[1][0][1][g]);
            fprintf(f, "  last_layer");
            pn(f, v.tr[1][1][0][g]), pn(f, v.tr[1][1][1][g]);
            fprintf(f, "  last_half");
            pn(f, v.tr[1][2][0][g]), pn(f, v.tr[1][2][1][g]);
            fprintf(f, "\n");
        }
    }
    if ((all || !strcmp(table, "pairs")) && v.P) {
        fprintf(f, "\npairs (distilled <-> base), side by side:\n");
        fprintf(f, "%-28s %-28s %-10s %9s %9s %9s %9s %9s %9s\n", "distilled", "base", "dataset",
                "rho_d", "rho_b", "last_d", "last_b", "half_d", "half_b");
        for (size_t q = 0; q < v.P; q++) {
            size_t a = (size_t)v.pd[q], b = (size_t)v.pb[q];
            if (a >= v.C || b >= v.C) continue;
            fprintf(f, "%-28s %-28s %-10s", v.model[a], v.model[b], v.ds[a]);
            for (int s = 0; s < 3; s++) pn(f, stat_of(&v, a, s)), pn(f, stat_of(&v, b, s));
            fprintf(f, "\n");
        }
    }
out:
    free_strs(v.id, v.C), free_strs(v.fam, v.C), free_strs(v.model, v.C), free_strs(v.rev, v.C);
    free_strs(v.ds, v.C), free_strs(v.mt, v.C), free_strs(v.status, v.C), free_strs(v.label, v.D);
    free(v.np), free(v.nl), free(v.tok), free(v.gn), free(v.gtn), free(v.lm), free(v.sp);
    free(v.kd), free(v.last6), free(v.pd), free(v.pb);
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < 3; s++)
            for (int k = 0; k < 2; k++) free(v.tr[t][s][k]);
    return rc ? -1 : 0;
}
