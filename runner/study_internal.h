/* study_internal.h — shared by the parts of the study-file writer (study.c: the study's shape
 * and the entry point; studycells.c: the per-cell rows and the /cells columns of varying
 * settings; studysummary.c: the cross-grid summary; studymeta.c: provenance (studymeta.h) and
 * dimension names). Not for use outside them: study.h is the API. */
#ifndef LMDISP_STUDY_INTERNAL_H
#define LMDISP_STUDY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ph5write.h"
#include "spec.h"
#include "studynames.h"

/* Values per cell exchanged for the summary: status flag, then K values of each metric. */
#define SUMMARY_STRIDE(K) (1 + (size_t)N_METRICS * (size_t)(K))

/* Shape of the study, identical on every rank (from the spec alone). */
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

/* The cross-grid summary, computed identically on every rank. */
typedef struct {
    double *trend_sp[N_TRENDS], *trend_kd[N_TRENDS]; /* [D,K] */
    int64_t *trend_n[N_TRENDS];                      /* [D,K] */
    int64_t *rho_saturated; /* [D,K] 1 when every cell behind the rho trend has rho = 1 */
    double *mean[N_METRICS], *std[N_METRICS]; /* [D,W,K] */
    int64_t *n_seeds;                         /* [D,W] done cells */
} summary;

/* qsort/bsearch order of int64_t. */
int study_cmp_i64(const void *a, const void *b);

/* studycells.c */
void study_rows_alloc(rows *r, size_t nc, const study_shape *sh);
void study_rows_free(rows *r);
/* Fills row i from DIR/cells/<id>. Returns -1 on an unreadable result file (err set); a done
 * cell lacking a track file leaves NaN there and sets *missing_track to its path. */
int study_read_cell(rows *r, size_t i, const lmd_cell *c, const study_shape *sh, const char *dir,
                    char *missing_track, size_t mt_len, lmd_err *err);
/* /cells, /tracking, /condensation and /loss: this rank's rows r (cells c0 ..). */
int study_write_rows(lmd_pfile *pf, const lmd_spec *spec, const study_shape *sh, const rows *r,
                     size_t c0, lmd_err *err);
int study_write_varying(lmd_pfile *pf, const lmd_spec *spec, lmd_err *err);

/* studysummary.c */
void study_summary_compute(summary *s, const study_shape *sh, const double *all);
void study_summary_free(summary *s);
/* /summary: every rank computed the same numbers; rank 0 writes them. */
int study_write_summary(lmd_pfile *pf, const study_shape *sh, const summary *s, lmd_err *err);

/* studymeta.c */
int study_write_dims(lmd_pfile *pf, lmd_err *err);

#endif
