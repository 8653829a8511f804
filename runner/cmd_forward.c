/* cmd_forward.c — `lmdisp forward MODEL` (DESIGN 4.7): the forward pass of any model form on
 * B sequences of a token file, hidden states and logits dumped to HDF5. Each hidden state is
 * written to its slab of /hidden_states as the forward produces it, so the n_layer+1 states
 * are never all in memory. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anymodel.h"
#include "args.h"
#include "commands.h"
#include "h5io.h"
#include "tokfile.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmdisp forward MODEL --tokens FILE.bin --batch B --seq T --out DUMP.h5\n"
            "                      [--offset O] [--threads N]\n"
            "\n"
            "Forward pass of MODEL (an lmdisp checkpoint, an HF model directory or\n"
            "hf:ORG/NAME[@REVISION] from the local HF cache) on sequences b = 0..B-1 = tokens\n"
            "O + b*T .. O + (b+1)*T - 1 of FILE (uint16 or uint32 llm.c token file). Writes\n"
            "/hidden_states float32 [n_layer+1, B, T, d] (Hugging Face's output_hidden_states:\n"
            "0 = embeddings, last = final norm applied), /logits float32 [B, T, vocab] and root\n"
            "attributes model_type, n_layer, hidden_size, n_params.\n");
}

typedef struct {
    hid_t dset;
    const char *path;
} slab_writer;

/* hidden state `layer` -> /hidden_states[layer, :, :, :] */
static int write_slab(void *ctx, int layer, const float *h, int n_seq, int T, int d, lmd_err *err) {
    slab_writer *w = ctx;
    hsize_t start[4] = {(hsize_t)layer, 0, 0, 0};
    hsize_t count[4] = {1, (hsize_t)n_seq, (hsize_t)T, (hsize_t)d};
    hid_t fs = H5Dget_space(w->dset);
    hid_t ms = H5Screate_simple(4, count, NULL);
    int rc = -1;
    if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(w->dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, h) < 0)
        lmd_errf(err, "%s: writing /hidden_states[%d]: %s", w->path, layer, lmd_h5_last_error());
    else
        rc = 0;
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

int cmd_forward(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "forward", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return 0;
    }
    const char *tokpath = lmd_args_str(&a, "tokens");
    const char *out = lmd_args_str(&a, "out");
    int B = 0, T = 0, O = 0, threads = 0;
    lmd_args_int(&a, "batch", &B, 1, 1 << 20);
    lmd_args_int(&a, "seq", &T, 1, 1 << 20);
    lmd_args_int(&a, "offset", &O, 0, 2147483647L);
    lmd_args_int(&a, "threads", &threads, 1, 4096);
    const char *pos[2] = {NULL, NULL};
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad) return 2;
    if (npos != 1 || !tokpath || !out || B == 0 || T == 0) {
        fprintf(stderr, "lmdisp forward: MODEL, --tokens, --batch, --seq and --out are "
                        "required\n");
        usage(stderr);
        return 2;
    }
    if (threads > 0) gpt_set_threads(threads);
    lmd_h5_quiet();
    lmd_err err = {{0}};
    lmd_anymodel m;
    if (lmd_anymodel_open(&m, pos[0], &err)) {
        fprintf(stderr, "lmdisp forward: %s\n", err.msg);
        return 2;
    }
    size_t BT = (size_t)B * T, n = 0;
    int32_t *tok = NULL;
    if (lmd_tokfile_read(tokpath, m.vocab_size, (size_t)O, BT, &tok, &n, &err)) {
        fprintf(stderr, "lmdisp forward: %s\n", err.msg);
        lmd_anymodel_close(&m);
        return 2;
    }
    if (m.max_T > 0 && T > m.max_T) {
        fprintf(stderr, "lmdisp forward: --seq %d exceeds %s's %d positions\n", T, pos[0], m.max_T);
        free(tok);
        lmd_anymodel_close(&m);
        return 2;
    }
    int status = 1;
    float *logits = lmd_aligned_alloc(BT * (size_t)m.vocab_size * sizeof(float));
    hid_t f = lmd_h5_create(out, &err), space = -1, dset = -1;
    if (f < 0) goto done;
    hsize_t dims[4] = {(hsize_t)m.n_layer + 1, (hsize_t)B, (hsize_t)T, (hsize_t)m.hidden_size};
    space = H5Screate_simple(4, dims, NULL);
    if (space < 0 || (dset = H5Dcreate2(f, "/hidden_states", H5T_NATIVE_FLOAT, space, H5P_DEFAULT,
                                        H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        lmd_errf(&err, "%s: creating /hidden_states: %s", out, lmd_h5_last_error());
        goto done;
    }
    slab_writer w = {dset, out};
    double t0 = lmd_now();
    if (lmd_anymodel_forward(&m, tok, B, T, write_slab, &w, logits, &err)) {
        lmd_err_prefix(&err, "%s", pos[0]);
        status = 2; /* bad input: token ids, a weight the files cannot give */
        goto done;
    }
    double secs = lmd_now() - t0;
    hsize_t ld[3] = {(hsize_t)B, (hsize_t)T, (hsize_t)m.vocab_size};
    if (lmd_h5_write(f, "/logits", H5T_NATIVE_FLOAT, logits, 3, ld, &err) ||
        lmd_h5_attr_str(f, "/", "model_type", m.model_type, &err) ||
        lmd_h5_attr_i64(f, "/", "n_layer", m.n_layer, &err) ||
        lmd_h5_attr_i64(f, "/", "hidden_size", m.hidden_size, &err) ||
        lmd_h5_attr_i64(f, "/", "n_params", m.n_params, &err))
        goto done;
    printf("lmdisp forward: %s (%s, %d layers, hidden %d, %lld params): %d x %d tokens in "
           "%.2f s -> %s\n",
           pos[0], m.model_type, m.n_layer, m.hidden_size, (long long)m.n_params, B, T, secs, out);
    status = 0;
done:
    if (dset >= 0 && H5Dclose(dset) < 0 && status == 0) {
        lmd_errf(&err, "%s: closing /hidden_states: %s", out, lmd_h5_last_error());
        status = 1;
    }
    if (space >= 0) H5Sclose(space);
    if (f >= 0 && H5Fclose(f) < 0 && status == 0) {
        lmd_errf(&err, "%s: error closing the file: %s", out, lmd_h5_last_error());
        status = 1;
    }
    if (status) fprintf(stderr, "lmdisp forward: %s\n", err.msg);
    free(logits);
    free(tok);
    lmd_anymodel_close(&m);
    return status;
}
