/* studymeta.c — self-description of study.h5: the root attributes every study file carries
 * (studymeta.h: provenance of spec, versions, times, hosts) and the `dims` attribute naming the dimensions of
 * every dataset (docs/STUDY.md). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "study_internal.h"
#include "studymeta.h"

#ifndef LMDISP_VERSION
#define LMDISP_VERSION "unknown"
#endif
#ifndef LMDISP_GIT_COMMIT
#define LMDISP_GIT_COMMIT "unknown"
#endif

static void iso_time(time_t t, char *buf, size_t n) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Every value is computed on rank 0 or agreed, so all ranks pass the same (parallel HDF5
 * requires it). */
int lmd_study_write_provenance(lmd_pfile *pf, const char *kind, const char *name,
                               const char *spec_yaml, const char *spec_sha256, int64_t n_cells,
                               double t_start, lmd_err *err) {
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
        {"kind", kind},
        {"study_name", name},
        {"spec_yaml", spec_yaml},
        {"spec_sha256", spec_sha256},
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
        if (sattrs[i].value) /* kind: none for a training study */
            rc = lmd_pfile_attr_str(pf, "/", sattrs[i].name, sattrs[i].value, err);
    free(hosts);
    if (!rc) rc = lmd_pfile_attr_i64(pf, "/", "format_version", 1, err);
    if (!rc) rc = lmd_pfile_attr_i64(pf, "/", "n_ranks", pf->size, err);
    if (!rc) rc = lmd_pfile_attr_i64(pf, "/", "n_cells", n_cells, err);
    return rc;
}

/* Attribute `dims` on every dataset: the names of its dimensions, comma-separated, outermost
 * first (docs/STUDY.md "Dimensions"). */
int study_write_dims(lmd_pfile *pf, lmd_err *err) {
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
