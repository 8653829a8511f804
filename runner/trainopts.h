/* trainopts.h — the training and dispersion flags shared by `train` and `step`. */
#ifndef LMDISP_TRAINOPTS_H
#define LMDISP_TRAINOPTS_H

#include "args.h"
#include "train.h"

/* Help text of the flags below. */
const char *lmd_trainopts_help(void);
/* --batch --seq --steps --lr --warmup-ratio --min-lr-ratio --clip --weight-decay --beta1
 * --beta2 --eps --seed and the dispersion flags; sets a->failed on bad values. */
void lmd_trainopts_parse(lmd_args *a, lmd_train_opts *o);
/* Only the dispersion flags: --dispersion --coeff --location --tau-cos --tau-l2 --max-tokens. */
void lmd_dispopts_parse(lmd_args *a, lmd_disp_opts *d);

#endif
