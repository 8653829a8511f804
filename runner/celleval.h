/* celleval.h — a study's zero-shot evaluation (tracking.eval_tasks): every tracked checkpoint
 * of a cell scored on the task files (runner/mceval.h) into its track file, the results
 * gathered into study.h5 as /eval/<task>/{acc,acc_norm,acc_bytes,n} [C, K], and shown by
 * `lmdisp report`. */
#ifndef LMDISP_CELLEVAL_H
#define LMDISP_CELLEVAL_H

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>

#include "cell.h"
#include "gpt.h"
#include "spec.h"
#include "ph5write.h"

/* Scores model m (the cell's model at a tracked step, in memory) on job->eval_tasks with
 * job->eval_tokenizer and writes /eval/<task>/acc, acc_norm, acc_bytes (float64 scalars) and
 * n (items) into the open track file f. A task that cannot be scored (e.g. an item longer than
 * the model's window) gets NaN and a warning on stderr; only an HDF5 failure returns -1. No
 * task: does nothing. */
int lmd_cell_eval_tasks(const lmd_cell_job *job, gpt_model *m, hid_t f, lmd_err *err);

/* Collective over pf: /eval/<task>/{acc,acc_norm,acc_bytes} float64 [C, K] and n int64 [C, K]
 * for every task of spec; this rank fills rows c0 .. c0+nc from the track files of its cells
 * that are `done` (status[i]); everything else NaN (n = -1). steps[0..K): the study's
 * /tracking/step axis. A track file without the task's results (evaluated before the task was
 * added) leaves NaN. */
int lmd_study_eval_write(lmd_pfile *pf, const lmd_spec *spec, const char *dir, size_t c0, size_t nc,
                         const int64_t *steps, int K, const char *const *status, lmd_err *err);

/* The /eval table of the study file at path for `lmdisp report`: per task, per cell, acc /
 * acc_norm / acc_bytes at the last checkpoint that has them, and at step 0. Prints nothing
 * when the file has no /eval group. Returns 0, or -1 (err) when the file cannot be read. */
int lmd_study_eval_report(const char *path, FILE *out, int csv, lmd_err *err);

#endif
