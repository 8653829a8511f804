/* trainopts.c — the training and dispersion flags of `train` and `step` (trainopts.h). */
#include "trainopts.h"

#include <stdio.h>

/* The rows as tables, a flag a row. */
/* clang-format off */
int lmd_dispopts_flags(lmd_disp_opts *d, lmd_flag *f) {
    const lmd_flag rows[LMD_DISPOPTS_NFLAGS] = {
        {.name = "dispersion", .setting = "dispersion.variant", .kind = FLAG_VARIANT,
         .target = &d->variant, .metavar = "V", .group = "dispersion loss (DESIGN.md section 3):",
         .help = "off | angular_spread | decorrelation | l2_repel | orthogonalization"},
        {.name = "coeff", .setting = "dispersion.coeff", .kind = FLAG_DOUBLE, .target = &d->coeff,
         .metavar = "X", .help = "weight of the dispersion term"},
        {.name = "location", .setting = "dispersion.location", .kind = FLAG_LOCATION,
         .target = &d->location, .metavar = "all|last",
         .help = "hidden states 1..n_layer, or n_layer only"},
        {.name = "tau-cos", .setting = "dispersion.tau_cos", .kind = FLAG_DOUBLE,
         .target = &d->tau_cos, .metavar = "X", .help = "temperature of angular_spread"},
        {.name = "tau-l2", .setting = "dispersion.tau_l2", .kind = FLAG_DOUBLE,
         .target = &d->tau_l2, .metavar = "X", .help = "temperature of l2_repel"},
        {.name = "max-tokens", .setting = "dispersion.max_tokens", .kind = FLAG_INT,
         .target = &d->max_tokens, .metavar = "N",
         .help = "token subset per sequence when T is larger"},
    };
    for (int i = 0; i < LMD_DISPOPTS_NFLAGS; i++) f[i] = rows[i];
    return LMD_DISPOPTS_NFLAGS;
}

int lmd_trainopts_flags(lmd_train_opts *o, lmd_flag *f) {
    const int n = LMD_TRAINOPTS_NFLAGS - LMD_DISPOPTS_NFLAGS;
    const lmd_flag rows[LMD_TRAINOPTS_NFLAGS - LMD_DISPOPTS_NFLAGS] = {
        {.name = "batch", .setting = "train.batch", .kind = FLAG_INT, .target = &o->B,
         .metavar = "B", .help = "batch size (sequences per step)", .group = "training:"},
        {.name = "seq", .setting = "train.seq", .kind = FLAG_INT, .target = &o->T,
         .metavar = "T", .help = "sequence length"},
        {.name = "steps", .setting = "train.steps", .kind = FLAG_I64, .target = &o->steps,
         .metavar = "N", .help = "optimizer steps"},
        {.name = "lr", .setting = "train.lr", .kind = FLAG_DOUBLE, .target = &o->lr,
         .metavar = "X", .help = "peak learning rate"},
        {.name = "warmup-ratio", .setting = "train.warmup_ratio", .kind = FLAG_DOUBLE,
         .target = &o->warmup_ratio, .metavar = "X", .help = "linear warmup fraction of the steps"},
        {.name = "min-lr-ratio", .setting = "train.min_lr_ratio", .kind = FLAG_DOUBLE,
         .target = &o->min_lr_ratio, .metavar = "X", .help = "cosine floor as a fraction of lr"},
        {.name = "clip", .setting = "train.clip", .kind = FLAG_DOUBLE, .target = &o->clip,
         .metavar = "X", .help = "global grad-norm clip, 0 = off"},
        {.name = "weight-decay", .setting = "train.weight_decay", .kind = FLAG_DOUBLE,
         .target = &o->adamw.weight_decay, .metavar = "X", .help = "AdamW decay on 2-D weights"},
        {.name = "beta1", .setting = "train.beta1", .kind = FLAG_DOUBLE,
         .target = &o->adamw.beta1, .metavar = "X", .help = "AdamW beta1"},
        {.name = "beta2", .setting = "train.beta2", .kind = FLAG_DOUBLE,
         .target = &o->adamw.beta2, .metavar = "X", .help = "AdamW beta2"},
        {.name = "eps", .setting = "train.eps", .kind = FLAG_DOUBLE, .target = &o->adamw.eps,
         .metavar = "X", .help = "AdamW epsilon"},
        {.name = "seed", .setting = "seed", .kind = FLAG_U64, .target = &o->seed,
         .metavar = "S", .help = "init, data order and dispersion subsets"},
    };
    for (int i = 0; i < n; i++) f[i] = rows[i];
    return n + lmd_dispopts_flags(&o->disp, f + n);
}
/* clang-format on */

void lmd_trainopts_check(lmd_args *a, const lmd_train_opts *o) {
    lmd_err err = {{0}};
    if (!a->failed && lmd_train_validate(o, NULL, &err)) {
        fprintf(stderr, "lmdisp %s: %s\n", a->cmd, err.msg);
        a->failed = 1;
    }
}

void lmd_dispopts_parse(lmd_args *a, lmd_disp_opts *d) {
    lmd_flag f[LMD_DISPOPTS_NFLAGS];
    lmd_flags_parse(a, f, lmd_dispopts_flags(d, f));
    lmd_err err = {{0}};
    if (!a->failed && lmd_disp_validate(d, &err)) {
        fprintf(stderr, "lmdisp %s: %s\n", a->cmd, err.msg);
        a->failed = 1;
    }
}
