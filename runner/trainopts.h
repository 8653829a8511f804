/* trainopts.h — the training and dispersion flags shared by `train` and `step`, as rows of a
 * flag table (specflags.h) typed by the spec's train.* and dispersion.* settings. */
#ifndef LMDISP_TRAINOPTS_H
#define LMDISP_TRAINOPTS_H

#include "args.h"
#include "specflags.h"
#include "train.h"

#define LMD_DISPOPTS_NFLAGS 6
#define LMD_TRAINOPTS_NFLAGS (12 + LMD_DISPOPTS_NFLAGS)

/* Writes the rows of --batch --seq --steps --lr --warmup-ratio --min-lr-ratio --clip
 * --weight-decay --beta1 --beta2 --eps --seed and the dispersion flags, targeting o's fields
 * (whose values are the help's defaults: start from lmd_train_default()), into f
 * (LMD_TRAINOPTS_NFLAGS rows). Returns the number of rows. */
int lmd_trainopts_flags(lmd_train_opts *o, lmd_flag *f);
/* Only the dispersion flags: --dispersion --coeff --location --tau-cos --tau-l2 --max-tokens
 * (LMD_DISPOPTS_NFLAGS rows). */
int lmd_dispopts_flags(lmd_disp_opts *d, lmd_flag *f);
/* After the rows were parsed: lmd_train_validate (cfg may be NULL); reports and sets
 * a->failed. */
void lmd_trainopts_check(lmd_args *a, const lmd_train_opts *o);
/* The dispersion rows parsed from the command line into d, then lmd_disp_validate. */
void lmd_dispopts_parse(lmd_args *a, lmd_disp_opts *d);

#endif
