/* measrun.h — running a measurement study (`kind: measure`, docs/STUDY.md "Measurement
 * studies"): cells over MPI groups, results per cell, study.h5, report. */
#ifndef LMDISP_MEASRUN_H
#define LMDISP_MEASRUN_H

#include <mpi.h>
#include <signal.h>
#include <stdio.h>

#include "measspec.h"

/* `lmdisp run` of a measurement spec, after MPI_Init: every cell measured once (a rerun skips
 * cells with DIR/cells/<id>/result.json), most expensive first, groups of ranks_per_model
 * ranks claiming cells; then DIR/study.h5 (collective) and the summary on stdout. *stop is
 * polled between forward passes. Returns the exit code (0, 1 a cell failed, 2 bad spec, 3
 * interrupted). */
int lmd_mstudy_run(const char *spec_path, const char *out, volatile sig_atomic_t *stop);

/* `lmdisp run --out DIR --array-task I [--manifest M]` of a submitted measurement study: the
 * cells of task I of the manifest (default DIR/manifest), from the frozen DIR/spec.yaml
 * (relative paths against DIR/spec.dir), under the shared lock; no study.h5. */
int lmd_mstudy_run_task(const char *out, int task, const char *manifest,
                        volatile sig_atomic_t *stop);
/* `lmdisp aggregate DIR`: study.h5 from DIR/spec.yaml and DIR/cells (exclusive lock). */
int lmd_mstudy_aggregate(const char *dir);
/* DIR/spec.yaml (the text) and DIR/spec.dir (the base of its relative paths). */
int lmd_mstudy_save_spec(const lmd_mspec *s, const char *dir, lmd_err *err);
/* Loads DIR/spec.yaml with DIR/spec.dir as the base. */
int lmd_mstudy_load_dir(lmd_mspec *s, const char *dir, lmd_err *err);
/* 1 if DIR/spec.yaml is a measurement spec. */
int lmd_mstudy_dir_is(const char *dir);

/* Writes DIR/study.h5 of spec from DIR/cells (collective over comm). t_start: lmd_now() at the
 * start of the run or aggregation (the start_time attribute). */
int lmd_mstudy_write(const lmd_mspec *s, const char *dir, double t_start, MPI_Comm comm,
                     lmd_err *err);

/* `lmdisp plan` of a measurement spec: the cells in run order with their cost. */
int lmd_mstudy_plan(const char *spec_path, int json);

/* 1 if the study file at path is a measurement study (root attribute kind = "measure"). */
int lmd_mstudy_is(const char *path);
/* The tables of a measurement study file: cells, trend (per family and dataset, n_params as the
 * size), series (statistics against training tokens), pairs; table NULL/"all" = every one. */
int lmd_mstudy_report(const char *path, FILE *f, int csv, const char *table, lmd_err *err);

#endif
