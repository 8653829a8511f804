/* trajectory.c — writes the trajectory HDF5 file of trajectory.h (layout: docs/ANALYSIS.md). */
#define _POSIX_C_SOURCE 200809L
#include "trajectory.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "h5io.h"

#define TRAJ_FORMAT "lmdisp-trajectory"
#define TRAJ_VERSION 1

static int traj_check_rows(const lmd_traj_row *rows, int K, const char *path, lmd_err *err) {
    if (K < 1) return lmd_errf(err, "%s: a trajectory needs at least one row", path);
    const lmd_geom *g0 = &rows[0].geom;
    for (int k = 0; k < K; k++) {
        const lmd_geom *g = &rows[k].geom;
        if (!g->layer_mean)
            return lmd_errf(err, "%s: row %d (%s) has no measurement", path, k, rows[k].checkpoint);
        if (g->n_layers != g0->n_layers || g->nbins != g0->nbins || g->T != g0->T ||
            g->d != g0->d || g->n_seq != g0->n_seq)
            return lmd_errf(err,
                            "%s: row %d (%s) was measured with %d layers, %d bins, %ld x %d "
                            "sequences, width %d, but row 0 (%s) with %d, %d, %ld x %d, %d; one "
                            "trajectory needs one model config and one evaluation set",
                            path, k, rows[k].checkpoint, g->n_layers, g->nbins, g->n_seq, g->T,
                            g->d, rows[0].checkpoint, g0->n_layers, g0->nbins, g0->n_seq, g0->T,
                            g0->d);
    }
    return 0;
}

/* All datasets and attributes into an open file. */
static int traj_fill(hid_t f, const char *path, const lmd_traj_meta *meta, const lmd_traj_row *rows,
                     int K, lmd_err *err) {
    const lmd_geom *g0 = &rows[0].geom;
    const int L1 = g0->n_layers, nb = g0->nbins;
    const size_t KL = (size_t)K * (size_t)L1;
    int rc = 0;

    int64_t *i64 = lmd_calloc((size_t)K, sizeof *i64);
    for (int k = 0; k < K; k++) i64[k] = rows[k].step;
    hsize_t dK[1] = {(hsize_t)K};
    rc = lmd_h5_write(f, "/step", H5T_NATIVE_INT64, i64, 1, dK, err);
    for (int k = 0; k < K; k++) i64[k] = rows[k].tokens;
    if (!rc) rc = lmd_h5_write(f, "/tokens", H5T_NATIVE_INT64, i64, 1, dK, err);
    free(i64);

    double *v = lmd_calloc((size_t)K * 6 > KL ? (size_t)K * 6 : KL, sizeof *v);
    for (int k = 0; k < K; k++) v[k] = rows[k].val_loss;
    if (!rc) rc = lmd_h5_write(f, "/val_loss", H5T_NATIVE_DOUBLE, v, 1, dK, err);
    for (int k = 0; k < K; k++) v[k] = rows[k].geom.spearman;
    if (!rc) rc = lmd_h5_write(f, "/spearman", H5T_NATIVE_DOUBLE, v, 1, dK, err);
    for (int k = 0; k < K; k++) v[k] = rows[k].geom.kendall;
    if (!rc) rc = lmd_h5_write(f, "/kendall", H5T_NATIVE_DOUBLE, v, 1, dK, err);

    // per-layer series, (K, L1)
    static const char *const names[4] = {"/layer_mean_cossim", "/offdiag_mean_cossim",
                                         "/singular_value_entropy", "/mev"};
    hsize_t dKL[2] = {(hsize_t)K, (hsize_t)L1};
    for (int which = 0; which < 4 && !rc; which++) {
        for (int k = 0; k < K; k++) {
            const lmd_geom *g = &rows[k].geom;
            const double *src = which == 0   ? g->layer_mean
                                : which == 1 ? g->offdiag_mean
                                : which == 2 ? g->sv_entropy
                                             : g->mev;
            memcpy(v + (size_t)k * L1, src, (size_t)L1 * sizeof *v);
        }
        rc = lmd_h5_write(f, names[which], H5T_NATIVE_DOUBLE, v, 2, dKL, err);
    }

    // last-N means, (K, 6); the N of each column is an attribute
    for (int k = 0; k < K; k++) memcpy(v + (size_t)k * 6, rows[k].geom.last_n_mean, 6 * sizeof *v);
    hsize_t dK6[2] = {(hsize_t)K, 6};
    if (!rc) rc = lmd_h5_write(f, "/last_n_mean", H5T_NATIVE_DOUBLE, v, 2, dK6, err);
    if (!rc) {
        int64_t ns[6] = {1, 2, 3, 4, 5, g0->half_n};
        hid_t o = H5Oopen(f, "/last_n_mean", H5P_DEFAULT);
        rc = o < 0 ? lmd_h5_errf(err, "%s: cannot open /last_n_mean", path)
                   : lmd_h5_attr_put_i64s(o, "n", ns, 6, path, err);
        if (o >= 0) H5Oclose(o);
    }
    if (!rc)
        rc = lmd_h5_attr_str(f, "/last_n_mean", "columns",
                             "N = 1, 2, 3, 4, 5, floor((n_layer+1)/2) (attribute n)", err);
    free(v);

    // histograms, float32 (K, L1, nbins): the study file's type, half the size of double
    if (!rc) {
        size_t per = (size_t)L1 * (size_t)nb;
        float *h = lmd_calloc((size_t)K * per, sizeof *h);
        for (int k = 0; k < K; k++)
            for (size_t i = 0; i < per; i++) h[(size_t)k * per + i] = (float)rows[k].geom.hist[i];
        hsize_t d3[3] = {(hsize_t)K, (hsize_t)L1, (hsize_t)nb};
        rc = lmd_h5_write(f, "/cossim_hist", H5T_NATIVE_FLOAT, h, 3, d3, err);
        free(h);
    }

    // source paths as variable-length UTF-8 strings (what h5py writes and reads as str)
    if (!rc) {
        const char **s = lmd_calloc((size_t)K, sizeof *s);
        for (int k = 0; k < K; k++) s[k] = rows[k].checkpoint ? rows[k].checkpoint : "";
        hid_t t = H5Tcopy(H5T_C_S1);
        if (t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)
            rc = lmd_errf(err, "%s: cannot make the string type for /checkpoint", path);
        if (!rc) rc = lmd_h5_write(f, "/checkpoint", t, s, 1, dK, err);
        if (t >= 0) H5Tclose(t);
        free(s);
    }

    if (!rc) rc = lmd_h5_attr_str(f, "/", "format", TRAJ_FORMAT, err);
    if (!rc) rc = lmd_h5_attr_i64(f, "/", "format_version", TRAJ_VERSION, err);
    if (!rc) rc = lmd_h5_attr_i64(f, "/", "n_layer", L1 - 1, err);
    if (!rc) rc = lmd_h5_attr_i64(f, "/", "n_embd", g0->d, err);
    if (!rc) rc = lmd_h5_attr_i64(f, "/", "n_sequences", g0->n_seq, err);
    if (!rc) rc = lmd_h5_attr_i64(f, "/", "seq_len", g0->T, err);
    if (!rc) rc = lmd_h5_attr_i64(f, "/", "hist_bins", nb, err);
    if (!rc)
        rc =
            lmd_h5_attr_str(f, "/", "data_source", meta->data_source ? meta->data_source : "", err);
    if (!rc) rc = lmd_h5_attr_str(f, "/", "eval_set", meta->eval_set ? meta->eval_set : "", err);
    if (!rc) rc = lmd_h5_attr_f64(f, "/", "val_fraction", meta->val_fraction, err);
    if (!rc) rc = lmd_h5_attr_i64(f, "/", "eval_batches", meta->eval_batches, err);
    if (!rc) rc = lmd_h5_attr_i64(f, "/", "eval_batch_size", meta->eval_batch_size, err);
    if (!rc && meta->lmdisp_version)
        rc = lmd_h5_attr_str(f, "/", "lmdisp_version", meta->lmdisp_version, err);
    return rc;
}

int lmd_traj_write(const char *path, const lmd_traj_meta *meta, const lmd_traj_row *rows, int K,
                   lmd_err *err) {
    if (traj_check_rows(rows, K, path, err)) return -1;
    size_t n = strlen(path) + 32;
    char *tmp = lmd_calloc(n, 1);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    hid_t f = lmd_h5_create(tmp, err);
    if (f < 0) {
        free(tmp);
        return lmd_err_prefix(err, "trajectory %s", path);
    }
    int rc = traj_fill(f, path, meta, rows, K, err);
    if (H5Fclose(f) < 0 && !rc)
        rc = lmd_errf(err, "%s: error closing the file (%s)", tmp, lmd_h5_last_error());
    if (!rc && lmd_file_commit(tmp, path, err)) rc = lmd_err_prefix(err, "trajectory");
    if (rc) remove(tmp);
    free(tmp);
    return rc ? -1 : 0;
}
