/* study.h — the study file DIR/study.h5 (DESIGN.md 4.4, layout in docs/STUDY.md), built from
 * the per-cell results under DIR/cells/ with parallel HDF5, and the tables printed from it. */
#ifndef LMDISP_STUDY_H
#define LMDISP_STUDY_H

#include <mpi.h>
#include <stdio.h>

#include "spec.h"

/* Collective over comm: writes DIR/study.h5 from DIR/cells/<id>/state and track/step*.h5 for every
 * cell of spec. Only `done` cells have numbers; failed and diverged cells keep their status
 * with NaN rows, cells without a final state (none, running, interrupted) are `missing`.
 * Written under DIR/study.h5.tmp.<pid of rank 0> and renamed when complete, so a reader never
 * sees a partial file. t_start: lmd_now() at the start of the run (provenance). Returns 0, or
 * -1 on every rank with the message of the first failing rank in err. */
int lmd_study_write(const lmd_spec *spec, const char *dir, double t_start, MPI_Comm comm,
                    lmd_err *err);

/* Prints the tables of the study file at path: table "cells" (one line per cell: width,
 * dispersion, seed, status, final validation loss and last-layer cosine, rho/tau at init and
 * at the end), "trend" (cross-grid trend of rho, last_layer and last_half per setting and
 * checkpoint, "saturated" where every rho is 1), "width" (mean ± std over seeds per width), or
 * "all" (text only; ends with one line per claim of the paper, docs/STUDY.md "Reading it"). csv: comma-separated, one row per value for
 * spreadsheets (cells: one row per cell and checkpoint); NaN is an empty field. Serial. */
int lmd_study_report(const char *path, FILE *f, int csv, const char *table, lmd_err *err);

/* Prints every table of DIR/study.h5 (rank 0 only; errors go to stderr). */
void lmd_study_print_summary(const char *dir, FILE *f);

#endif
