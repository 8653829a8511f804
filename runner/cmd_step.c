/* cmd_step.c — `lmdisp step` (DESIGN.md 4.3): one forward and backward on the first batch of
 * a token file, dumped to HDF5 so any tool can cross-check the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "data.h"
#include "h5io.h"
#include "train.h"
#include "trainopts.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: lmdisp step --checkpoint CK.h5 --tokens FILE.bin --batch B --seq T --out DUMP.h5\n"
        "                   [--dispersion V --coeff C --location all|last --tau-cos X"
        " --tau-l2 X --max-tokens N]\n"
        "\n"
        "One forward and backward on the first B x T batch of FILE (no optimizer step).\n"
        "Writes /loss, /ce_loss, /dispersion_loss, /logits [B,T,V], /hidden_states\n"
        "[n_layer+1,B,T,n_embd] and /grads/<name> for every /params/<name>.\n");
}

static int write_dump(const char *path, gpt_model *m, const lmd_losses *ls, int B, int T,
                      lmd_err *err) {
    const gpt_config *c = &m->cfg;
    size_t BTC = (size_t)B * T * c->n_embd;
    hid_t f = lmd_h5_create(path, err);
    if (f < 0) return -1;
    int rc = 0;
    rc |= lmd_h5_write_scalar_f64(f, "/loss", ls->loss, err);
    if (!rc) rc |= lmd_h5_write_scalar_f64(f, "/ce_loss", ls->ce, err);
    if (!rc) rc |= lmd_h5_write_scalar_f64(f, "/dispersion_loss", ls->disp, err);
    if (!rc) {
        hsize_t d[3] = {(hsize_t)B, (hsize_t)T, (hsize_t)c->vocab_size};
        rc |= lmd_h5_write(f, "/logits", H5T_NATIVE_FLOAT, m->acts.logits, 3, d, err);
    }
    if (!rc) {
        float *hs = lmd_calloc((size_t)(c->n_layer + 1) * BTC, sizeof(float));
        for (int l = 0; l <= c->n_layer; l++)
            memcpy(hs + (size_t)l * BTC, gpt_hidden_state(m, l), BTC * sizeof(float));
        hsize_t d[4] = {(hsize_t)c->n_layer + 1, (hsize_t)B, (hsize_t)T, (hsize_t)c->n_embd};
        rc |= lmd_h5_write(f, "/hidden_states", H5T_NATIVE_FLOAT, hs, 4, d, err);
        free(hs);
    }
    for (int k = 0; k < GPT_NUM_TENSORS && !rc; k++) {
        gpt_tensor_info info;
        gpt_tensor_describe(c, k, &info);
        size_t slice = info.shape[0] * (info.ndim == 2 ? info.shape[1] : 1);
        int nl = info.layered ? c->n_layer : 1;
        for (int l = 0; l < nl && !rc; l++) {
            char name[128], path2[160];
            snprintf(name, sizeof name, info.name, l);
            lmd_pathf(path2, "/grads/%s", name);
            hsize_t d[2] = {info.shape[0], info.shape[1]};
            rc |= lmd_h5_write(f, path2, H5T_NATIVE_FLOAT, m->grads.t[k] + (size_t)l * slice,
                               info.ndim, d, err);
        }
    }
    if (H5Fclose(f) < 0 && !rc) rc = lmd_errf(err, "%s: error closing the file", path);
    return rc ? -1 : 0;
}

int cmd_step(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "step", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return 0;
    }
    const char *ck = lmd_args_str(&a, "checkpoint");
    const char *tokpath = lmd_args_str(&a, "tokens");
    const char *out = lmd_args_str(&a, "out");
    int B = 0, T = 0;
    lmd_args_int(&a, "batch", &B, 1, 1 << 20);
    lmd_args_int(&a, "seq", &T, 1, 1 << 20);
    lmd_disp_opts disp = lmd_disp_default();
    lmd_dispopts_parse(&a, &disp);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad) return 2;
    if (!ck || !tokpath || !out || B == 0 || T == 0) {
        fprintf(stderr,
                "lmdisp step: --checkpoint, --tokens, --batch, --seq and --out are required\n");
        usage(stderr);
        return 2;
    }
    lmd_err err = {{0}};
    gpt_model m;
    lmd_train_state st;
    if (lmd_ckpt_load(ck, &m, &st, &err)) {
        fprintf(stderr, "lmdisp step: %s\n", err.msg);
        return 2;
    }
    if (T > m.cfg.n_ctx) {
        fprintf(stderr, "lmdisp step: --seq %d exceeds the checkpoint's n_ctx %d\n", T,
                m.cfg.n_ctx);
        gpt_free(&m);
        return 2;
    }
    lmd_tokens toks;
    if (lmd_data_shards(&toks, tokpath, m.cfg.vocab_size, &err)) {
        fprintf(stderr, "lmdisp step: %s\n", err.msg);
        gpt_free(&m);
        return 2;
    }
    size_t BT = (size_t)B * T;
    if (toks.n < BT + 1) {
        fprintf(stderr, "lmdisp step: %s holds %zu tokens; a %d x %d batch needs %zu\n", tokpath,
                toks.n, B, T, BT + 1);
        lmd_tokens_free(&toks);
        gpt_free(&m);
        return 2;
    }
    int *inp = lmd_calloc(BT, sizeof(int)), *tgt = lmd_calloc(BT, sizeof(int));
    for (size_t i = 0; i < BT; i++) {
        inp[i] = toks.tok[i];
        tgt[i] = toks.tok[i + 1];
    }
    float *dhidden = NULL;
    if (disp.variant != DISP_OFF)
        dhidden = lmd_calloc((size_t)(m.cfg.n_layer + 1) * BT * m.cfg.n_embd, sizeof(float));
    lmd_rng rng;
    lmd_rng_seed(&rng, (uint64_t)st.seed, LMD_STREAM_DISPERSION);
    lmd_losses ls = lmd_forward_backward(&m, inp, tgt, B, T, &disp, &rng, dhidden, 1);
    int rc = write_dump(out, &m, &ls, B, T, &err);
    if (rc)
        fprintf(stderr, "lmdisp step: %s\n", err.msg);
    else
        printf("loss %.6f (ce %.6f, dispersion %.6f) -> %s\n", ls.loss, ls.ce, ls.disp, out);
    free(dhidden);
    free(inp);
    free(tgt);
    lmd_tokens_free(&toks);
    gpt_free(&m);
    return rc ? 1 : 0;
}
