/* measstudy.c — study.h5 of a measurement study (docs/STUDY.md "Measurement studies"): the
 * DESIGN 4.4 shape with K = 1 and L1 = the deepest model's n_layer + 1 (shallower rows NaN
 * padded), the model facts under /cells, the per-family trend with n_params as the size, the
 * trend over training tokens of a series, the pairs; and `lmdisp report` of such a file. */
#include <hdf5.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "h5io.h"
#include "measrun.h"
#include "rankcorr.h"
#include "ph5write.h"
#include "mpicheck.h"
#include "studymeta.h"

enum { S_RHO = 0, S_LAST_LAYER, S_LAST_HALF, N_STATS };
static const char *const STAT_NAMES[N_STATS] = {"rho", "last_layer", "last_half"};

typedef struct {
    size_t C;
    int L1, bins;
    const char **status;
    double *lm, *od, *ent, *mev, *sp, *kd, *last6, *loss;
    float *hist;
    double *stat; /* [C][N_STATS] */
} mrows;

static double jnum(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

/* reads DIR/cells/<id>/result.json of cell i into the rows (rank 0) */
static void read_result(mrows *r, size_t i, const lmd_mspec *s, const char *dir) {
    const lmd_mcell *c = &s->cells[i];
    char p[4400];
    snprintf(p, sizeof p, "%s/cells/%s/result.json", dir, c->id);
    char *txt = NULL;
    r->status[i] = "missing";
    if (lmd_file_read(p, 1u << 30, &txt, NULL, NULL) != 0) {
        snprintf(p, sizeof p, "%s/cells/%s/failed", dir, c->id);
        if (lmd_file_read(p, 1 << 20, &txt, NULL, NULL) == 0) r->status[i] = "failed";
        free(txt);
        return;
    }
    json_t *o = json_loads(txt, 0, NULL);
    free(txt);
    if (!o) return;
    json_t *lm = json_object_get(o, "layer_mean_cossim"),
           *od = json_object_get(o, "offdiag_mean_cossim");
    json_t *en = json_object_get(o, "singular_value_entropy"), *mv = json_object_get(o, "mev");
    json_t *hi = json_object_get(o, "cossim_hist"), *ln = json_object_get(o, "last_n_mean");
    size_t L = json_array_size(lm);
    if (L == 0 || L > (size_t)r->L1) {
        json_decref(o);
        return;
    }
    size_t row = i * (size_t)r->L1;
    for (size_t l = 0; l < L; l++) {
        r->lm[row + l] = jnum(json_array_get(lm, l));
        r->od[row + l] = jnum(json_array_get(od, l));
        r->ent[row + l] = jnum(json_array_get(en, l));
        r->mev[row + l] = jnum(json_array_get(mv, l));
        json_t *h = json_array_get(hi, l);
        for (int b = 0; b < r->bins; b++)
            r->hist[(row + l) * r->bins + b] = (float)jnum(json_array_get(h, (size_t)b));
    }
    r->sp[i] = jnum(json_object_get(o, "spearman"));
    r->kd[i] = jnum(json_object_get(o, "kendall"));
    static const char *const lk[6] = {"1", "2", "3", "4", "5", "half"};
    for (int k = 0; k < 6; k++) r->last6[i * 6 + k] = jnum(json_object_get(ln, lk[k]));
    r->stat[i * N_STATS + S_RHO] = r->sp[i];
    r->stat[i * N_STATS + S_LAST_LAYER] = r->lm[row + L - 1];
    r->stat[i * N_STATS + S_LAST_HALF] = r->last6[i * 6 + 5];
    r->status[i] = "done";
    json_decref(o);
}

/* rank correlations of x with each statistic over the done cells of one group (x < 0 left out) */
static void group_trend(const lmd_mspec *s, const mrows *r, int fam, int ds, int by_tokens,
                        double *sp, double *kd, int64_t *n_out) {
    size_t n = 0;
    double *x = lmd_calloc(s->n_cells + 1, sizeof *x), *y = lmd_calloc(s->n_cells + 1, sizeof *y);
    for (int st = 0; st < N_STATS; st++) {
        n = 0;
        for (size_t i = 0; i < s->n_cells; i++) {
            const lmd_mmodel *m = &s->models[s->cells[i].model];
            if (m->family_index != fam || s->cells[i].dataset != ds || strcmp(r->status[i], "done"))
                continue;
            double xv = by_tokens ? (double)m->train_tokens : (double)m->n_params;
            if (xv < 0) continue;
            x[n] = xv, y[n++] = r->stat[i * N_STATS + st];
        }
        sp[st] = lmd_spearman(x, y, n);
        kd[st] = lmd_kendall_tau_b(x, y, n);
    }
    *n_out = (int64_t)n;
    free(x), free(y);
}

int lmd_mstudy_write(const lmd_mspec *s, const char *dir, double t_start, MPI_Comm comm,
                     lmd_err *err) {
    int rank;
    LMD_MPI(MPI_Comm_rank(comm, &rank));
    const size_t C = s->n_cells;
    mrows r = {.C = C, .bins = s->bins};
    for (int m = 0; m < s->n_models; m++)
        if (s->models[m].n_layer + 1 > r.L1) r.L1 = s->models[m].n_layer + 1;
    const size_t CL = C * (size_t)r.L1;
    r.status = lmd_calloc(C + 1, sizeof *r.status);
    double **arrs[] = {&r.lm, &r.od, &r.ent, &r.mev};
    for (int a = 0; a < 4; a++) *arrs[a] = lmd_calloc(CL + 1, sizeof(double));
    r.hist = lmd_calloc(CL * r.bins + 1, sizeof(float));
    r.sp = lmd_calloc(C + 1, sizeof(double)), r.kd = lmd_calloc(C + 1, sizeof(double));
    r.last6 = lmd_calloc(6 * C + 1, sizeof(double)), r.loss = lmd_calloc(C + 1, sizeof(double));
    r.stat = lmd_calloc(N_STATS * C + 1, sizeof(double));
    for (size_t i = 0; i < CL; i++) r.lm[i] = r.od[i] = r.ent[i] = r.mev[i] = NAN;
    for (size_t i = 0; i < CL * r.bins; i++) r.hist[i] = NAN;
    for (size_t i = 0; i < C; i++) r.sp[i] = r.kd[i] = r.loss[i] = NAN;
    for (size_t i = 0; i < 6 * C; i++) r.last6[i] = NAN;
    for (size_t i = 0; i < N_STATS * C; i++) r.stat[i] = NAN;
    for (size_t i = 0; i < C; i++) {
        r.status[i] = "missing";
        if (rank == 0) read_result(&r, i, s, dir);
    }
    /* the summary: groups (family, dataset) in spec order */
    const size_t D = (size_t)s->n_families * s->n_datasets;
    double *tr_sp = lmd_calloc(D * N_STATS + 1, 8), *tr_kd = lmd_calloc(D * N_STATS + 1, 8);
    double *tk_sp = lmd_calloc(D * N_STATS + 1, 8), *tk_kd = lmd_calloc(D * N_STATS + 1, 8);
    int64_t *gn = lmd_calloc(D + 1, 8), *gtn = lmd_calloc(D + 1, 8);
    char **label = lmd_calloc(D + 1, sizeof *label);
    const char **gfam = lmd_calloc(D + 1, sizeof *gfam), **gds = lmd_calloc(D + 1, sizeof *gds);
    for (int f = 0; f < s->n_families; f++)
        for (int d = 0; d < s->n_datasets; d++) {
            size_t g = (size_t)f * s->n_datasets + d;
            double a[N_STATS], b[N_STATS];
            group_trend(s, &r, f, d, 0, a, b, &gn[g]);
            for (int k = 0; k < N_STATS; k++) tr_sp[k * D + g] = a[k], tr_kd[k * D + g] = b[k];
            group_trend(s, &r, f, d, 1, a, b, &gtn[g]);
            for (int k = 0; k < N_STATS; k++) tk_sp[k * D + g] = a[k], tk_kd[k * D + g] = b[k];
            label[g] = lmd_calloc(strlen(s->families[f]) + strlen(s->datasets[d].name) + 2, 1);
            sprintf(label[g], "%s/%s", s->families[f], s->datasets[d].name);
            gfam[g] = s->families[f], gds[g] = s->datasets[d].name;
        }
    const size_t P = (size_t)s->n_pairs * s->n_datasets;
    int64_t *pd = lmd_calloc(P + 1, 8), *pb = lmd_calloc(P + 1, 8);
    const char **pds = lmd_calloc(P + 1, sizeof *pds);
    for (int p = 0; p < s->n_pairs; p++)
        for (int d = 0; d < s->n_datasets; d++) {
            size_t q = (size_t)p * s->n_datasets + d;
            pd[q] = (int64_t)s->pairs[p].distilled * s->n_datasets + d;
            pb[q] = (int64_t)s->pairs[p].base * s->n_datasets + d;
            pds[q] = s->datasets[d].name;
        }
    /* per-cell facts */
    const char **ids = lmd_calloc(C + 1, sizeof(char *)), **fam = lmd_calloc(C + 1, sizeof(char *));
    const char **mod = lmd_calloc(C + 1, sizeof(char *)), **msp = lmd_calloc(C + 1, sizeof(char *));
    const char **rev = lmd_calloc(C + 1, sizeof(char *)), **dsn = lmd_calloc(C + 1, sizeof(char *));
    const char **mt = lmd_calloc(C + 1, sizeof(char *)), **disp = lmd_calloc(C + 1, sizeof(char *));
    const char **src = lmd_calloc(C + 1, sizeof(char *));
    int64_t *np = lmd_calloc(C + 1, 8), *nl = lmd_calloc(C + 1, 8), *hs = lmd_calloc(C + 1, 8);
    int64_t *tst = lmd_calloc(C + 1, 8), *ttk = lmd_calloc(C + 1, 8), *mlp = lmd_calloc(C + 1, 8);
    int64_t *seed = lmd_calloc(C + 1, 8);
    for (size_t i = 0; i < C; i++) {
        const lmd_mcell *c = &s->cells[i];
        const lmd_mmodel *m = &s->models[c->model];
        ids[i] = c->id, fam[i] = m->family, mod[i] = m->name, msp[i] = m->spec;
        rev[i] = m->revision, dsn[i] = s->datasets[c->dataset].name, mt[i] = m->model_type;
        disp[i] = "none", src[i] = c->source;
        np[i] = m->n_params, nl[i] = m->n_layer, hs[i] = m->hidden_size;
        tst[i] = m->train_step, ttk[i] = m->train_tokens, mlp[i] = -1, seed[i] = s->seed;
    }
    lmd_pfile pf;
    char path[4200], tmp[4300];
    int rc = lmd_path(path, sizeof path, err, "%s/study.h5", dir);
    int pid = (int)getpid();
    LMD_MPI(MPI_Bcast(&pid, 1, MPI_INT, 0, comm));
    if (!rc) rc = lmd_path(tmp, sizeof tmp, err, "%s.tmp.%d", path, pid);
    rc = lmd_mpi_agree(comm, rc, err);
    if (!rc) rc = lmd_pfile_create(&pf, tmp, comm, err);
    if (!rc) {
        const hsize_t z = rank == 0 ? 1 : 0; /* rank 0 writes every row; the others none */
        const hsize_t nC = z * C, L1 = (hsize_t)r.L1, B = (hsize_t)r.bins;
        hsize_t dC[1] = {C}, dCK[2] = {C, 1}, dCKL[3] = {C, 1, L1}, dCKLB[4] = {C, 1, L1, B},
                dCK6[3] = {C, 1, 6}, dK[1] = {1}, dD[1] = {D}, dDK[2] = {D, 1}, dP[1] = {P};
        int64_t minus1 = -1;
        rc = lmd_study_write_provenance(&pf, "measure", s->name, s->text, s->sha256, (int64_t)C,
                                        t_start, err);
        if (!rc) rc = lmd_pfile_attr_i64(&pf, "/", "n_sequences", s->n_seq, err);
        if (!rc) rc = lmd_pfile_attr_i64(&pf, "/", "seq_len", s->T, err);
#define WS(name, n, rows, v) rc = rc ? rc : lmd_pfile_write_strings(&pf, name, n, 0, rows, v, err)
#define WN(name, t, rk, dims, rows, v)                                                             \
    rc = rc ? rc : lmd_pfile_write(&pf, name, t, rk, dims, 0, rows, v, err)
        WS("/cells/id", C, nC, ids);
        WS("/cells/family", C, nC, fam);
        WS("/cells/model", C, nC, mod);
        WS("/cells/model_spec", C, nC, msp);
        WS("/cells/revision", C, nC, rev);
        WS("/cells/dataset", C, nC, dsn);
        WS("/cells/data_source", C, nC, src);
        WS("/cells/model_type", C, nC, mt);
        WS("/cells/dispersion", C, nC, disp);
        WS("/cells/status", C, nC, r.status);
        WN("/cells/n_params", H5T_NATIVE_INT64, 1, dC, nC, np);
        WN("/cells/n_layer", H5T_NATIVE_INT64, 1, dC, nC, nl);
        WN("/cells/hidden_size", H5T_NATIVE_INT64, 1, dC, nC, hs);
        WN("/cells/train_step", H5T_NATIVE_INT64, 1, dC, nC, tst);
        WN("/cells/train_tokens", H5T_NATIVE_INT64, 1, dC, nC, ttk);
        WN("/cells/mlp_dim", H5T_NATIVE_INT64, 1, dC, nC, mlp);
        WN("/cells/seed", H5T_NATIVE_INT64, 1, dC, nC, seed);
        WN("/tracking/step", H5T_NATIVE_INT64, 1, dK, z, &minus1);
        WN("/tracking/tokens", H5T_NATIVE_INT64, 1, dK, z, &minus1);
        WN("/condensation/layer_mean_cossim", H5T_NATIVE_DOUBLE, 3, dCKL, nC, r.lm);
        WN("/condensation/offdiag_mean_cossim", H5T_NATIVE_DOUBLE, 3, dCKL, nC, r.od);
        WN("/condensation/sv_entropy", H5T_NATIVE_DOUBLE, 3, dCKL, nC, r.ent);
        WN("/condensation/mev", H5T_NATIVE_DOUBLE, 3, dCKL, nC, r.mev);
        WN("/condensation/cossim_hist", H5T_NATIVE_FLOAT, 4, dCKLB, nC, r.hist);
        WN("/condensation/spearman", H5T_NATIVE_DOUBLE, 2, dCK, nC, r.sp);
        WN("/condensation/kendall", H5T_NATIVE_DOUBLE, 2, dCK, nC, r.kd);
        WN("/condensation/last_n_mean", H5T_NATIVE_DOUBLE, 3, dCK6, nC, r.last6);
        WN("/loss/val", H5T_NATIVE_DOUBLE, 2, dCK, nC, r.loss);
        const hsize_t nD = z * D, nP = z * P;
        WS("/summary/label", D, nD, (const char *const *)label);
        WS("/summary/family", D, nD, gfam);
        WS("/summary/dataset", D, nD, gds);
        WN("/summary/n_models", H5T_NATIVE_INT64, 1, dD, nD, gn);
        WN("/summary/n_series", H5T_NATIVE_INT64, 1, dD, nD, gtn);
        for (int k = 0; k < N_STATS; k++) {
            char nm[128];
            snprintf(nm, sizeof nm, "/summary/trend/%s/spearman", STAT_NAMES[k]);
            WN(nm, H5T_NATIVE_DOUBLE, 2, dDK, nD, tr_sp + k * D);
            snprintf(nm, sizeof nm, "/summary/trend/%s/kendall", STAT_NAMES[k]);
            WN(nm, H5T_NATIVE_DOUBLE, 2, dDK, nD, tr_kd + k * D);
            snprintf(nm, sizeof nm, "/summary/tokens_trend/%s/spearman", STAT_NAMES[k]);
            WN(nm, H5T_NATIVE_DOUBLE, 2, dDK, nD, tk_sp + k * D);
            snprintf(nm, sizeof nm, "/summary/tokens_trend/%s/kendall", STAT_NAMES[k]);
            WN(nm, H5T_NATIVE_DOUBLE, 2, dDK, nD, tk_kd + k * D);
        }
        if (P) {
            WN("/summary/pairs/distilled_cell", H5T_NATIVE_INT64, 1, dP, nP, pd);
            WN("/summary/pairs/base_cell", H5T_NATIVE_INT64, 1, dP, nP, pb);
            WS("/summary/pairs/dataset", P, nP, pds);
        }
#undef WS
#undef WN
        int crc = lmd_pfile_close(&pf, rc ? NULL : err);
        rc = rc ? rc : crc;
    }
    int prc = 0;
    if (!rc && rank == 0) prc = lmd_file_commit(tmp, path, err);
    if (rc && rank == 0) remove(tmp);
    rc = lmd_mpi_agree(comm, rc || prc, err);
    for (size_t g = 0; g < D; g++) free(label[g]);
    free(label), free(gfam), free(gds), free(gn), free(gtn);
    free(tr_sp), free(tr_kd), free(tk_sp), free(tk_kd), free(pd), free(pb), free(pds);
    free(ids), free(fam), free(mod), free(msp), free(rev), free(dsn), free(mt), free(disp),
        free(src);
    free(np), free(nl), free(hs), free(tst), free(ttk), free(mlp), free(seed);
    free(r.status), free(r.lm), free(r.od), free(r.ent), free(r.mev), free(r.hist);
    free(r.sp), free(r.kd), free(r.last6), free(r.loss), free(r.stat);
    return rc ? -1 : 0;
}
