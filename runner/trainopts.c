#include "trainopts.h"

#include <stdio.h>

const char *lmd_trainopts_help(void) {
    return "training:\n"
           "  --batch B --seq T       batch size and sequence length (default 8 x 64)\n"
           "  --steps N               optimizer steps (default 200)\n"
           "  --lr X                  peak learning rate (default 1e-3)\n"
           "  --warmup-ratio X        linear warmup fraction of the steps (default 0.2)\n"
           "  --min-lr-ratio X        cosine floor as a fraction of lr (default 0)\n"
           "  --clip X                global grad-norm clip, 0 = off (default 1.0)\n"
           "  --weight-decay X        AdamW decay on 2-D weights (default 0.1)\n"
           "  --beta1 X --beta2 X --eps X   AdamW (default 0.9, 0.95, 1e-8)\n"
           "  --seed S                init, data order and dispersion subsets (default 0)\n"
           "dispersion loss (DESIGN.md section 3):\n"
           "  --dispersion V          off | angular_spread | decorrelation | l2_repel |"
           " orthogonalization (default off)\n"
           "  --coeff X               weight of the dispersion term (default 0.1)\n"
           "  --location all|last     hidden states 1..n_layer, or n_layer only (default all)\n"
           "  --tau-cos X --tau-l2 X  temperatures (default 1.0)\n"
           "  --max-tokens N          token subset per sequence when T is larger (default 256)\n";
}

void lmd_dispopts_parse(lmd_args *a, lmd_disp_opts *d) {
    lmd_err err = {{0}};
    const char *v = lmd_args_str(a, "dispersion");
    if (v && lmd_disp_parse_variant(v, &d->variant, &err)) {
        fprintf(stderr, "lmdisp %s: --dispersion: %s\n", a->cmd, err.msg);
        a->failed = 1;
    }
    const char *loc = lmd_args_str(a, "location");
    if (loc && lmd_disp_parse_location(loc, &d->location, &err)) {
        fprintf(stderr, "lmdisp %s: --location: %s\n", a->cmd, err.msg);
        a->failed = 1;
    }
    lmd_args_double(a, "coeff", &d->coeff);
    lmd_args_double(a, "tau-cos", &d->tau_cos);
    lmd_args_double(a, "tau-l2", &d->tau_l2);
    lmd_args_int(a, "max-tokens", &d->max_tokens, -1000000000L, 1000000000L);
    if (!a->failed && lmd_disp_validate(d, &err)) {
        fprintf(stderr, "lmdisp %s: %s\n", a->cmd, err.msg);
        a->failed = 1;
    }
}

void lmd_trainopts_parse(lmd_args *a, lmd_train_opts *o) {
    int64_t seed = (int64_t)o->seed;
    lmd_args_int(a, "batch", &o->B, 1, 1 << 20);
    lmd_args_int(a, "seq", &o->T, 1, 1 << 20);
    lmd_args_i64(a, "steps", &o->steps, 0);
    lmd_args_double(a, "lr", &o->lr);
    lmd_args_double(a, "warmup-ratio", &o->warmup_ratio);
    lmd_args_double(a, "min-lr-ratio", &o->min_lr_ratio);
    lmd_args_double(a, "clip", &o->clip);
    lmd_args_double(a, "weight-decay", &o->adamw.weight_decay);
    lmd_args_double(a, "beta1", &o->adamw.beta1);
    lmd_args_double(a, "beta2", &o->adamw.beta2);
    lmd_args_double(a, "eps", &o->adamw.eps);
    lmd_args_i64(a, "seed", &seed, 0);
    o->seed = (uint64_t)seed;
    lmd_dispopts_parse(a, &o->disp);
    lmd_err err = {{0}};
    if (!a->failed && lmd_train_validate(o, NULL, &err)) {
        fprintf(stderr, "lmdisp %s: %s\n", a->cmd, err.msg);
        a->failed = 1;
    }
}
