/* test_settings.c — every default of a training setting has one source: the spec's defaults
 * (a spec that sets nothing but mlp_dim and steps), the model layer's (lmd_train_default,
 * gpt_config_default, LMD_DATA_VAL_FRACTION) and what `lmdisp train --help` prints agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"
#include "testutil.h"
#include "train.h"

/* A default as the help prints it: "(default X)" on the line of --flag. */
typedef struct {
    const char *flag;
    double want;
} help_default;

/* The number after "(default " on the help line of flag; NAN when absent or not a number. */
static double help_value(const char *help, const char *flag, char *text, size_t n) {
    char head[64];
    snprintf(head, sizeof head, "\n  --%s ", flag);
    const char *p = strstr(help, head);
    text[0] = '\0';
    if (!p) return NAN;
    const char *eol = strchr(p + 1, '\n');
    const char *d = strstr(p, "(default ");
    if (!d || (eol && d > eol)) return NAN;
    d += 9;
    size_t k = strcspn(d, ")");
    snprintf(text, n, "%.*s", (int)(k < n ? k : n - 1), d);
    char *end;
    double x = strtod(text, &end);
    return *end ? NAN : x;
}

static char *train_help(void) {
    const char *bin = getenv("LMDISP");
    if (!bin) return NULL;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' train --help", bin);
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = calloc(cap, 1);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - 1 - n, f)) > 0) n += k;
    int rc = pclose(f);
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int main(void) {
    const lmd_train_opts t = lmd_train_default();
    const gpt_config g = gpt_config_default();

    /* 1. the spec's defaults are the model layer's */
    lmd_spec s;
    lmd_err err = {{0}};
    /* distill.alpha/temperature keep their defaults on a cell without a teacher */
    const char *plain = "name: defaults\ngrid:\n  mlp_dim: [32]\ntrain:\n  steps: 10\n"
                        "dispersion:\n  variant: angular_spread\n";
    int rc = lmd_spec_parse(&s, plain, strlen(plain), "defaults.yaml", ".", &err);
    TU_CHECK(rc == 0 && s.n_cells == 1, "minimal spec: %s", err.msg);
    if (rc == 0 && s.n_cells == 1) {
        const lmd_cell *c = &s.cells[0];
        const lmd_train_opts *ct = &c->train;
        TU_CHECK(c->cfg.n_layer == g.n_layer && c->cfg.n_embd == g.n_embd &&
                     c->cfg.n_head == g.n_head && c->cfg.n_ctx == g.n_ctx,
                 "spec model shape %d/%d/%d/%d vs gpt_config_default %d/%d/%d/%d", c->cfg.n_layer,
                 c->cfg.n_embd, c->cfg.n_head, c->cfg.n_ctx, g.n_layer, g.n_embd, g.n_head,
                 g.n_ctx);
        TU_CHECK(ct->B == t.B && ct->T == t.T, "spec batch x seq %d x %d vs %d x %d", ct->B, ct->T,
                 t.B, t.T);
        TU_CHECK(ct->lr == t.lr && ct->warmup_ratio == t.warmup_ratio &&
                     ct->min_lr_ratio == t.min_lr_ratio && ct->clip == t.clip,
                 "spec lr %g warmup %g min_lr %g clip %g", ct->lr, ct->warmup_ratio,
                 ct->min_lr_ratio, ct->clip);
        TU_CHECK(!memcmp(&ct->adamw, &t.adamw, sizeof t.adamw),
                 "spec AdamW %g %g %g %g vs gpt_adamw_default %g %g %g %g", ct->adamw.beta1,
                 ct->adamw.beta2, ct->adamw.eps, ct->adamw.weight_decay, t.adamw.beta1,
                 t.adamw.beta2, t.adamw.eps, t.adamw.weight_decay);
        TU_CHECK(ct->seed == t.seed && ct->shards == t.shards && ct->accumulate == t.accumulate,
                 "spec seed %llu shards %d accumulate %d", (unsigned long long)ct->seed, ct->shards,
                 ct->accumulate);
        const lmd_disp_opts d = lmd_disp_default();
        TU_CHECK(ct->disp.coeff == d.coeff && ct->disp.location == d.location &&
                     ct->disp.tau_cos == d.tau_cos && ct->disp.tau_l2 == d.tau_l2 &&
                     ct->disp.max_tokens == d.max_tokens,
                 "spec dispersion coeff %g location %d tau %g %g max_tokens %d", ct->disp.coeff,
                 (int)ct->disp.location, ct->disp.tau_cos, ct->disp.tau_l2, ct->disp.max_tokens);
        TU_CHECK(c->kd.alpha == t.kd.alpha && c->kd.temperature == t.kd.temperature,
                 "spec distill alpha %g temperature %g vs %g %g", c->kd.alpha, c->kd.temperature,
                 t.kd.alpha, t.kd.temperature);
        TU_CHECK(c->data.val_fraction == LMD_DATA_VAL_FRACTION, "spec val_fraction %g",
                 c->data.val_fraction);
    }
    lmd_spec_free(&s);
    const char *off = "name: off\ngrid:\n  mlp_dim: [32]\ntrain:\n  steps: 10\n";
    rc = lmd_spec_parse(&s, off, strlen(off), "off.yaml", ".", &err);
    TU_CHECK(rc == 0 && s.n_cells == 1 && s.cells[0].train.disp.variant == t.disp.variant,
             "the spec's default dispersion is lmd_disp_default's: %s", err.msg);
    lmd_spec_free(&s);

    /* 2. `lmdisp train --help` prints the same defaults */
    char *help = train_help();
    TU_CHECK(help != NULL, "cannot run $LMDISP train --help");
    if (help) {
        const help_default want[] = {
            {"n-ctx", g.n_ctx},
            {"n-layer", g.n_layer},
            {"n-embd", g.n_embd},
            {"n-head", g.n_head},
            {"mlp-dim", g.mlp_dim},
            {"val-fraction", LMD_DATA_VAL_FRACTION},
            {"batch", t.B},
            {"seq", t.T},
            {"steps", (double)t.steps},
            {"lr", t.lr},
            {"warmup-ratio", t.warmup_ratio},
            {"min-lr-ratio", t.min_lr_ratio},
            {"clip", t.clip},
            {"weight-decay", t.adamw.weight_decay},
            {"beta1", t.adamw.beta1},
            {"beta2", t.adamw.beta2},
            {"eps", t.adamw.eps},
            {"seed", (double)t.seed},
            {"coeff", t.disp.coeff},
            {"tau-cos", t.disp.tau_cos},
            {"tau-l2", t.disp.tau_l2},
            {"max-tokens", t.disp.max_tokens},
        };
        for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
            char got[64];
            double x = help_value(help, want[i].flag, got, sizeof got);
            TU_CHECK(x == want[i].want, "--%s: help says '%s', the default is %.17g", want[i].flag,
                     got, want[i].want);
        }
        char got[64];
        help_value(help, "dispersion", got, sizeof got);
        TU_CHECK(!strcmp(got, lmd_disp_variant_name(t.disp.variant)),
                 "--dispersion: help says '%s'", got);
        help_value(help, "location", got, sizeof got);
        TU_CHECK(!strcmp(got, lmd_disp_location_name(t.disp.location)),
                 "--location: help says '%s'", got);
        free(help);
    }
    return tu_summary("test_settings");
}
