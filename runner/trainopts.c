/* trainopts.c — the training and dispersion flags of `train` and `step` (trainopts.h). */
#include "trainopts.h"

#include <stdio.h>

int lmd_dispopts_flags(lmd_disp_opts *d, lmd_flag *f) {
    const char *g = "dispersion loss (DESIGN.md section 3):";
    const lmd_flag rows[LMD_DISPOPTS_NFLAGS] = {
        {.name = "dispersion",
         .setting = "dispersion.variant",
         .kind = FLAG_VARIANT,
         .target = &d->variant,
         .metavar = "V",
         .help = "off | angular_spread | decorrelation | l2_repel | orthogonalization",
         .group = g},
        {.name = "coeff",
         .setting = "dispersion.coeff",
         .kind = FLAG_DOUBLE,
         .target = &d->coeff,
         .metavar = "X",
         .help = "weight of the dispersion term"},
        {.name = "location",
         .setting = "dispersion.location",
         .kind = FLAG_LOCATION,
         .target = &d->location,
         .metavar = "all|last",
         .help = "hidden states 1..n_layer, or n_layer only"},
        {.name = "tau-cos",
         .setting = "dispersion.tau_cos",
         .kind = FLAG_DOUBLE,
         .target = &d->tau_cos,
         .metavar = "X",
         .help = "temperature of angular_spread"},
        {.name = "tau-l2",
         .setting = "dispersion.tau_l2",
         .kind = FLAG_DOUBLE,
         .target = &d->tau_l2,
         .metavar = "X",
         .help = "temperature of l2_repel"},
        {.name = "max-tokens",
         .setting = "dispersion.max_tokens",
         .kind = FLAG_INT,
         .target = &d->max_tokens,
         .metavar = "N",
         .help = "token subset per sequence when T is larger"},
    };
    for (int i = 0; i < LMD_DISPOPTS_NFLAGS; i++) f[i] = rows[i];
    return LMD_DISPOPTS_NFLAGS;
}

/* A double-valued training row. */
static lmd_flag num_row(const char *name, const char *setting, double *target, const char *help) {
    return (lmd_flag){.name = name,
                      .setting = setting,
                      .kind = FLAG_DOUBLE,
                      .target = target,
                      .metavar = "X",
                      .help = help};
}

int lmd_trainopts_flags(lmd_train_opts *o, lmd_flag *f) {
    int n = 0;
    f[n++] = (lmd_flag){.name = "batch",
                        .setting = "train.batch",
                        .kind = FLAG_INT,
                        .target = &o->B,
                        .metavar = "B",
                        .help = "batch size (sequences per step)",
                        .group = "training:"};
    f[n++] = (lmd_flag){.name = "seq",
                        .setting = "train.seq",
                        .kind = FLAG_INT,
                        .target = &o->T,
                        .metavar = "T",
                        .help = "sequence length"};
    f[n++] = (lmd_flag){.name = "steps",
                        .setting = "train.steps",
                        .kind = FLAG_I64,
                        .target = &o->steps,
                        .metavar = "N",
                        .help = "optimizer steps"};
    f[n++] = num_row("lr", "train.lr", &o->lr, "peak learning rate");
    f[n++] = num_row("warmup-ratio", "train.warmup_ratio", &o->warmup_ratio,
                     "linear warmup fraction of the steps");
    f[n++] = num_row("min-lr-ratio", "train.min_lr_ratio", &o->min_lr_ratio,
                     "cosine floor as a fraction of lr");
    f[n++] = num_row("clip", "train.clip", &o->clip, "global grad-norm clip, 0 = off");
    f[n++] = num_row("weight-decay", "train.weight_decay", &o->adamw.weight_decay,
                     "AdamW decay on 2-D weights");
    f[n++] = num_row("beta1", "train.beta1", &o->adamw.beta1, "AdamW beta1");
    f[n++] = num_row("beta2", "train.beta2", &o->adamw.beta2, "AdamW beta2");
    f[n++] = num_row("eps", "train.eps", &o->adamw.eps, "AdamW epsilon");
    f[n++] = (lmd_flag){.name = "seed",
                        .setting = "seed",
                        .kind = FLAG_U64,
                        .target = &o->seed,
                        .metavar = "S",
                        .help = "init, data order and dispersion subsets"};
    return n + lmd_dispopts_flags(&o->disp, f + n);
}

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
