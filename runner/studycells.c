/* studycells.c — the per-cell rows of study.h5 (study_internal.h): each rank reads the state
 * and track files of its cells under DIR/cells/<id>/ and writes their rows of /cells,
 * /tracking, /condensation and /loss, plus a /cells column for every setting that varies. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispersion.h"
#include "fileio.h"
#include "h5io.h"
#include "study_internal.h"

/* ---------------------------------------------------------------------------------------
 * Reading the results of one cell
 * --------------------------------------------------------------------------------------- */

void study_rows_alloc(rows *r, size_t nc, const study_shape *sh) {
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

void study_rows_free(rows *r) {
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
    rc = lmd_h5_attr_get_i64(f, "/", "step", &step, path, err);
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
int study_read_cell(rows *r, size_t i, const lmd_cell *c, const study_shape *sh, const char *dir,
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
        int64_t *hit = bsearch(&s, sh->steps, (size_t)sh->K, sizeof s, study_cmp_i64);
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
        int k = (int)((int64_t *)bsearch(&s, sh->steps, (size_t)sh->K, sizeof s, study_cmp_i64) -
                      sh->steps);
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
 * Writing this rank's rows
 * --------------------------------------------------------------------------------------- */

int study_write_rows(lmd_pfile *pf, const lmd_spec *spec, const study_shape *sh, const rows *r,
                     size_t c0, lmd_err *err) {
    const size_t nc = r->nc;
    const hsize_t C = sh->C, K = (hsize_t)sh->K, L1 = (hsize_t)sh->L1, B = (hsize_t)sh->bins;
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
int study_write_varying(lmd_pfile *pf, const lmd_spec *spec, lmd_err *err) {
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
