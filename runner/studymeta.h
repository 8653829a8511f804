/* studymeta.h — the root attributes every study.h5 carries (DESIGN.md 4.4, docs/STUDY.md
 * "Root attributes"), written by both study writers: study.c (training) and measstudy.c. */
#ifndef LMDISP_STUDYMETA_H
#define LMDISP_STUDYMETA_H

#include <stdint.h>

#include "ph5write.h"

/* Collective: format = "lmdisp-study", kind (skipped when NULL), study_name, spec_yaml,
 * spec_sha256, lmdisp_version, git_commit, created = end_time (now), start_time (t_start:
 * lmd_now() at the start of the run), mpi_version, hdf5_version, openblas_version, hosts (of
 * every rank, unique, in rank order); int64 format_version (1), n_ranks, n_cells. Times and
 * versions are rank 0's, so every rank writes the same values. */
int lmd_study_write_provenance(lmd_pfile *pf, const char *kind, const char *name,
                               const char *spec_yaml, const char *spec_sha256, int64_t n_cells,
                               double t_start, lmd_err *err);

#endif
