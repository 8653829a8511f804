/* studynames.h — names shared by the writer of study.h5 (study.c and its parts) and its reader
 * (studyreport.c): the per-width summary metrics and the statistics of the cross-grid trend. */
#ifndef LMDISP_STUDYNAMES_H
#define LMDISP_STUDYNAMES_H

/* Per-width summary metrics: name in /summary/by_width and how to get it from a cell. */
enum { M_SPEARMAN = 0, M_KENDALL, M_LAST_COSSIM, M_LAST_HALF, M_VAL_LOSS, N_METRICS };
static const char *const METRIC_NAMES[N_METRICS] = {"spearman", "kendall", "last_layer_cossim",
                                                    "last_half_cossim", "val_loss"};
/* The per-model statistics of the cross-grid trend (DESIGN.md section 1): name under
 * /summary/trend and the metric it is computed from. */
enum { T_RHO = 0, T_LAST_LAYER, T_LAST_HALF, N_TRENDS };
static const char *const TREND_NAMES[N_TRENDS] = {"rho", "last_layer", "last_half"};
static const int TREND_METRIC[N_TRENDS] = {M_SPEARMAN, M_LAST_COSSIM, M_LAST_HALF};
/* index of floor((n_layer+1)/2) in /condensation/last_n_mean (N = 1..5, then that) */
#define LAST_HALF_INDEX 5
#endif
