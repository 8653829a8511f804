/* study.c — DIR/study.h5 (DESIGN.md 4.4, layout in docs/STUDY.md): gathered from the per-cell
 * results under DIR/cells/<id>/ with parallel HDF5, plus the cross-grid summary. This file: the
 * study's shape and lmd_study_write; the rows are in studycells.c, the summary in
 * studysummary.c, the root attributes and dimension names in studymeta.c, and the tables
 * printed from the file (`run`, `aggregate`, `report`) in studyreport.c.
 *
 * Each rank reads the results of a contiguous block of cells and writes their rows; the
 * shapes (C cells, K checkpoints, L1 layers, bins) come from the spec alone, so every rank
 * makes identical create calls without exchanging anything but the small per-cell arrays the
 * summary needs. */
#include "study.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "celleval.h"
#include "dispersion.h"
#include "fileio.h"
#include "study_internal.h"
#include "studymeta.h"

/* ---------------------------------------------------------------------------------------
 * Shape of the study, identical on every rank (from the spec alone)
 * --------------------------------------------------------------------------------------- */

int study_cmp_i64(const void *a, const void *b) {
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
    qsort(all, n, sizeof *all, study_cmp_i64);
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
            int64_t *hit = bsearch(&s, sh->steps, K, sizeof s, study_cmp_i64);
            size_t k = (size_t)(hit - sh->steps);
            int64_t tok = s * (int64_t)c->train.B * (int64_t)c->train.T * c->train.accumulate;
            sh->tokens[k] = sh->tokens[k] == -2 || sh->tokens[k] == tok ? tok : -1;
        }
    }
    /* widths */
    sh->widths = lmd_calloc(C ? C : 1, sizeof *sh->widths);
    for (size_t i = 0; i < C; i++) sh->widths[i] = spec->cells[i].cfg.mlp_dim;
    qsort(sh->widths, C, sizeof *sh->widths, study_cmp_i64);
    size_t W = 0;
    for (size_t i = 0; i < C; i++)
        if (W == 0 || sh->widths[i] != sh->widths[W - 1]) sh->widths[W++] = sh->widths[i];
    sh->W = (int)W;
    sh->wi = lmd_calloc(C ? C : 1, sizeof *sh->wi);
    for (size_t i = 0; i < C; i++) {
        int64_t w = spec->cells[i].cfg.mlp_dim;
        sh->wi[i] =
            (int)((int64_t *)bsearch(&w, sh->widths, W, sizeof w, study_cmp_i64) - sh->widths);
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
    study_rows_alloc(&r, (size_t)nc, &sh);
    char missing[4400] = "";
    int bad = 0;
    for (size_t i = 0; i < (size_t)nc && !bad; i++)
        bad = study_read_cell(&r, i, &spec->cells[c0 + (long long)i], &sh, dir, missing,
                              sizeof missing, err) != 0;
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
    if (!rc) study_summary_compute(&s, &sh, all);
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
            rc = lmd_study_write_provenance(&pf, NULL, spec->name, spec->text, spec->sha256,
                                            (int64_t)spec->n_cells, t_start, err);
            if (!rc) rc = study_write_rows(&pf, spec, &sh, &r, (size_t)c0, err);
            if (!rc) rc = study_write_summary(&pf, &sh, &s, err);
            if (!rc) /* tracking.eval_tasks: /eval/<task>/... (celleval.h) */
                rc = lmd_study_eval_write(&pf, spec, dir, (size_t)c0, (size_t)nc, sh.steps, sh.K,
                                          r.status, err);
            if (!rc) rc = study_write_varying(&pf, spec, err);
            if (!rc) rc = study_write_dims(&pf, err);
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
    study_summary_free(&s);
    study_rows_free(&r);
    shape_free(&sh);
    return rc ? -1 : 0;
}
