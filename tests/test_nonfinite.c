/* test_nonfinite.c — `lmdisp measure` of a checkpoint with a NaN parameter: refused with exit 3
 * and a message naming the first non-finite tensor; --allow-nonfinite measures it (exit 0) with
 * the same warning. Before issue 14 it printed NaN metrics with exit 0 and no warning. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "commands.h"
#include "gpt.h"
#include "testutil.h"

static int run_measure(const char *ck, int allow, const char *errpath, char *msg, size_t cap) {
    char *argv[8] = {"measure", (char *)ck, "--sequences", "2", "--seq-len", "8", "--json", NULL};
    int argc = 7;
    if (allow) argv[argc++] = "--allow-nonfinite";
    fflush(stdout);
    fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    int fe = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644), fn = open("/dev/null", O_WRONLY);
    if (save_out < 0 || save_err < 0 || fe < 0 || fn < 0) return -100;
    dup2(fe, 2);
    dup2(fn, 1);
    int rc = cmd_measure(argc, argv);
    fflush(stderr);
    fflush(stdout);
    dup2(save_err, 2);
    dup2(save_out, 1);
    close(fe);
    close(fn);
    close(save_out);
    close(save_err);
    msg[0] = '\0';
    FILE *f = fopen(errpath, "r");
    if (f) {
        size_t n = fread(msg, 1, cap - 1, f);
        msg[n] = '\0';
        fclose(f);
    }
    return rc;
}

int main(void) {
    const char *t = getenv("LMDISP_TMP");
    char ck[600], errp[600], msg[4096];
    snprintf(ck, sizeof ck, "%s/nonfinite_ckpt.h5", t && *t ? t : "/tmp");
    snprintf(errp, sizeof errp, "%s/nonfinite_stderr.txt", t && *t ? t : "/tmp");
    const gpt_config cfg = {
        .vocab_size = 256, .n_ctx = 8, .n_layer = 2, .n_embd = 8, .n_head = 2, .mlp_dim = 12};
    gpt_model m;
    lmd_err err = {{0}};
    memset(&m, 0, sizeof m);
    if (gpt_create(&m, &cfg, &err)) {
        fprintf(stderr, "gpt_create: %s\n", err.msg);
        return 1;
    }
    gpt_init(&m, 5);
    lmd_train_state st;
    memset(&st, 0, sizeof st);
    lmd_rng_seed(&st.rng_disp, 5, LMD_STREAM_DISPERSION);
    int rc = lmd_ckpt_save(ck, &m, &st, &err);
    TU_CHECK(rc == 0, "save: %s", err.msg);
    char m1[4096];
    rc = run_measure(ck, 0, errp, m1, sizeof m1);
    TU_CHECK(rc == 0, "finite model: measure exit %d, want 0: %s", rc, m1);

    /* a NaN in layer 1's MLP input weight, an Inf later in ln_f */
    gpt_tensor_info info;
    for (int k = 0; k < GPT_NUM_TENSORS; k++) {
        gpt_tensor_describe(&cfg, k, &info);
        size_t n = info.ndim == 1 ? info.shape[0] : info.shape[0] * info.shape[1];
        if (!strcmp(info.name, "h.%d.mlp.fc.weight")) m.params.t[k][n + 7] = NAN;
        if (!strcmp(info.name, "ln_f.weight")) m.params.t[k][0] = INFINITY;
    }
    rc = lmd_ckpt_save(ck, &m, &st, &err);
    TU_CHECK(rc == 0, "save: %s", err.msg);
    gpt_free(&m);

    rc = run_measure(ck, 0, errp, msg, sizeof msg);
    printf("NaN model: exit %d: %s", rc, msg);
    TU_CHECK(rc == 3, "NaN model: measure exit %d, want 3", rc);
    TU_CHECK(strstr(msg, "/params/h.1.mlp.fc.weight[7]") && strstr(msg, "refused"),
             "NaN model: message does not name /params/h.1.mlp.fc.weight[7]: %s", msg);
    rc = run_measure(ck, 1, errp, msg, sizeof msg);
    printf("NaN model, --allow-nonfinite: exit %d: %s", rc, msg);
    TU_CHECK(rc == 0, "--allow-nonfinite: exit %d, want 0", rc);
    TU_CHECK(strstr(msg, "warning") && strstr(msg, "h.1.mlp.fc.weight"),
             "--allow-nonfinite: no warning naming the tensor: %s", msg);
    remove(ck);
    remove(errp);
    return tu_summary("test_nonfinite");
}
