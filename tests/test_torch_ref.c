/* test_torch_ref.c — lmdisp's whole model against the independent PyTorch reference
 * (tests/torch_ref/lmdisp_ref.py, fixtures in tests/ref/model_*; regenerate with
 * `cd tests/torch_ref && /usr/bin/python3 gen_model_ref.py`).
 *
 * For each tests/ref/model_step_<case>.h5 it runs `lmdisp step` on the committed checkpoint
 * and token file with the flags stored in the fixture's /args, and compares every dataset of
 * the DESIGN 4.3 dump. For each tests/ref/model_train_<case>.h5 it runs `lmdisp train` for 4
 * AdamW steps and compares the parameters of the written checkpoint.
 *
 * Tolerances. The reference is float64; lmdisp computes in float32. The generator measures
 * the float32-vs-float64 floor by running the same reference in float32: logits 3.6e-7,
 * hidden states 2.1e-7 (relative to their max-abs, which are 2.7 and 4.6), gradients 1.6e-6
 * of each tensor's max-abs, losses 5e-7, parameters after training 2.7e-7. Each tolerance
 * below is 20-200x that floor, yet far below what a real bug does: the smallest dispersion
 * contribution to any gradient tensor is 4e-3 of its max-abs (orthogonalization, location
 * all), and the smallest effect of a plausible optimizer bug (e.g. weight decay skipped on a
 * 0.2-sized weight) is ~4e-4 on the parameters.
 *
 * One exception, justified by the model's math: the key bias (rows n_embd..2*n_embd-1 of
 * attn.qkv.bias) adds q.b_k to every score of a query row, which softmax ignores, so its
 * gradient is exactly zero and only rounding noise is left (1e-18 in float64, ~1e-8 in
 * float32). Adam divides that noise by its own RMS and takes O(lr) steps in a random
 * direction, so after training those entries are only checked against the bound
 * 2 * sum(lr) that any Adam step satisfies here; the step dumps do check that its gradient is
 * ~0. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <hdf5.h>

#include "testutil.h"

/* logits and hidden states: |got - want| <= ATOL + RTOL*|want| (values up to ~5) */
#define ACT_ATOL 2e-5
#define ACT_RTOL 1e-5
/* losses (scalars ~0.04 .. 4.5) */
#define LOSS_ATOL 1e-5
/* gradients: atol relative to the max-abs of that reference gradient tensor, plus rtol */
#define GRAD_ATOL_REL 5e-5
#define GRAD_RTOL 1e-4
/* parameters after 4 AdamW steps (movement up to 2e-2) */
#define TRAIN_ATOL 5e-5

static const char *STEP_CASES[] = {
    "off",
    "angular_spread_all",
    "angular_spread_last",
    "decorrelation_all",
    "decorrelation_last",
    "l2_repel_all",
    "l2_repel_last",
    "orthogonalization_all",
    "orthogonalization_last",
};
static const char *TRAIN_CASES[] = {"off", "angular_spread_all"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_NAMES 256
#define PATH_LEN 4096

typedef struct {
    char dispersion[64], location[16];
    double coeff, tau_cos, tau_l2;
    int64_t batch, seq;
    /* training only (0 when absent) */
    int64_t steps;
    double lr, warmup_ratio, clip, weight_decay;
} fixture_args;

/* ---- HDF5 helpers: every call checked, messages name the file and the object ---- */

static int attr_exists(hid_t loc, const char *name) { return H5Aexists(loc, name) > 0; }

static int read_attr_num(hid_t loc, const char *file, const char *name, hid_t memtype, void *out) {
    if (!attr_exists(loc, name)) {
        fprintf(stderr, "%s: attribute '%s' is missing\n", file, name);
        return -1;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, memtype, out) < 0) {
        fprintf(stderr, "%s: cannot read attribute '%s'\n", file, name);
        if (a >= 0) H5Aclose(a);
        return -1;
    }
    H5Aclose(a);
    return 0;
}

/* Reads a fixed- or variable-length string attribute into buf. */
static int read_attr_str(hid_t loc, const char *file, const char *name, char *buf, size_t len) {
    int rc = -1;
    hid_t a = -1, ft = -1, mt = -1;
    if (!attr_exists(loc, name)) {
        fprintf(stderr, "%s: attribute '%s' is missing\n", file, name);
        return -1;
    }
    if ((a = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (ft = H5Aget_type(a)) < 0 ||
        H5Tget_class(ft) != H5T_STRING) {
        fprintf(stderr, "%s: attribute '%s' is not a string\n", file, name);
        goto done;
    }
    if (H5Tis_variable_str(ft) > 0) {
        char *s = NULL;
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &s) < 0 || !s) goto bad_read;
        snprintf(buf, len, "%s", s);
        H5free_memory(s);
    } else {
        size_t n = H5Tget_size(ft);
        char *tmp = calloc(n + 1, 1);
        if (!tmp) goto bad_read;
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        if (H5Aread(a, mt, tmp) < 0) {
            free(tmp);
            goto bad_read;
        }
        snprintf(buf, len, "%s", tmp);
        free(tmp);
    }
    rc = 0;
    goto done;
bad_read:
    fprintf(stderr, "%s: cannot read string attribute '%s'\n", file, name);
done:
    if (mt >= 0) H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    return rc;
}

/* Reads dataset `path` of file f converted to memtype (float or double). Returns a malloc'd
 * buffer and its element count; dims (up to 8) and rank through the out parameters. */
static void *read_dataset(hid_t f, const char *file, const char *path, hid_t memtype, size_t elsize,
                          size_t *n, hsize_t *dims, int *rank) {
    void *buf = NULL;
    hid_t d = -1, s = -1;
    *n = 0;
    *rank = 0;
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0) {
        fprintf(stderr, "%s: dataset '%s' is missing\n", file, path);
        return NULL;
    }
    if ((d = H5Dopen2(f, path, H5P_DEFAULT)) < 0 || (s = H5Dget_space(d)) < 0) {
        fprintf(stderr, "%s: cannot open dataset '%s'\n", file, path);
        goto done;
    }
    int r = H5Sget_simple_extent_ndims(s);
    if (r < 0 || r > 8) {
        fprintf(stderr, "%s: dataset '%s' has unsupported rank %d\n", file, path, r);
        goto done;
    }
    H5Sget_simple_extent_dims(s, dims, NULL);
    size_t count = 1;
    for (int i = 0; i < r; i++) count *= (size_t)dims[i];
    buf = malloc(count ? count * elsize : elsize);
    if (!buf) {
        fprintf(stderr, "%s: out of memory reading '%s'\n", file, path);
        goto done;
    }
    if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        fprintf(stderr, "%s: cannot read dataset '%s'\n", file, path);
        free(buf);
        buf = NULL;
        goto done;
    }
    *n = count;
    *rank = r;
done:
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return buf;
}

typedef struct {
    char *names[MAX_NAMES];
    int n;
} name_list;

/* Names of the members of group `path`, in name order (H5Lget_name_by_idx works the same on
 * HDF5 1.10 and 1.12+, unlike the H5Literate callback types). */
static int list_group(hid_t f, const char *file, const char *path, name_list *l) {
    l->n = 0;
    H5G_info_t info;
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0 ||
        H5Gget_info_by_name(f, path, &info, H5P_DEFAULT) < 0) {
        fprintf(stderr, "%s: group '%s' is missing\n", file, path);
        return -1;
    }
    if (info.nlinks > MAX_NAMES) {
        fprintf(stderr, "%s: group '%s' has %llu members, more than %d\n", file, path,
                (unsigned long long)info.nlinks, MAX_NAMES);
        return -1;
    }
    for (hsize_t i = 0; i < info.nlinks; i++) {
        ssize_t len =
            H5Lget_name_by_idx(f, path, H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        char *name = len >= 0 ? malloc((size_t)len + 1) : NULL;
        if (!name || H5Lget_name_by_idx(f, path, H5_INDEX_NAME, H5_ITER_INC, i, name,
                                        (size_t)len + 1, H5P_DEFAULT) < 0) {
            fprintf(stderr, "%s: cannot list group '%s'\n", file, path);
            free(name);
            return -1;
        }
        l->names[l->n++] = name;
    }
    return 0;
}

static void free_names(name_list *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    l->n = 0;
}

static int read_args(hid_t f, const char *file, fixture_args *a) {
    memset(a, 0, sizeof *a);
    hid_t g = H5Gopen2(f, "args", H5P_DEFAULT);
    if (g < 0) {
        fprintf(stderr, "%s: group /args is missing\n", file);
        return -1;
    }
    int rc = 0;
    rc |= read_attr_str(g, file, "dispersion", a->dispersion, sizeof a->dispersion);
    rc |= read_attr_str(g, file, "location", a->location, sizeof a->location);
    rc |= read_attr_num(g, file, "coeff", H5T_NATIVE_DOUBLE, &a->coeff);
    rc |= read_attr_num(g, file, "tau_cos", H5T_NATIVE_DOUBLE, &a->tau_cos);
    rc |= read_attr_num(g, file, "tau_l2", H5T_NATIVE_DOUBLE, &a->tau_l2);
    rc |= read_attr_num(g, file, "batch", H5T_NATIVE_INT64, &a->batch);
    rc |= read_attr_num(g, file, "seq", H5T_NATIVE_INT64, &a->seq);
    if (attr_exists(g, "steps")) {
        rc |= read_attr_num(g, file, "steps", H5T_NATIVE_INT64, &a->steps);
        rc |= read_attr_num(g, file, "lr", H5T_NATIVE_DOUBLE, &a->lr);
        rc |= read_attr_num(g, file, "warmup_ratio", H5T_NATIVE_DOUBLE, &a->warmup_ratio);
        rc |= read_attr_num(g, file, "clip", H5T_NATIVE_DOUBLE, &a->clip);
        rc |= read_attr_num(g, file, "weight_decay", H5T_NATIVE_DOUBLE, &a->weight_decay);
    }
    H5Gclose(g);
    return rc ? -1 : 0;
}

/* The dispersion flags of a fixture, appended to a command line. */
static void disp_flags(const fixture_args *a, char *buf, size_t len) {
    buf[0] = 0;
    if (strcmp(a->dispersion, "off") != 0)
        snprintf(buf, len,
                 " --dispersion %s --coeff %.17g --location %s --tau-cos %.17g "
                 "--tau-l2 %.17g",
                 a->dispersion, a->coeff, a->location, a->tau_cos, a->tau_l2);
}

/* Runs cmd through the shell, printing it; 0 when it exited with status 0. */
static int run(const char *cmd) {
    printf("$ %s\n", cmd);
    fflush(stdout);
    int st = system(cmd);
    if (st == -1) {
        fprintf(stderr, "cannot run the command: %s\n", strerror(errno));
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "command failed (%s %d)\n", WIFEXITED(st) ? "exit status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return -1;
    }
    return 0;
}

/* Compares dataset `path` of got (lmdisp output) with want (reference): same shape, then
 * tu_compare. atol_rel_max adds that fraction of the reference max-abs to atol. */
static void compare_dataset(hid_t got, const char *got_file, hid_t want, const char *want_file,
                            const char *path, const char *label, double atol, double atol_rel_max,
                            double rtol) {
    hsize_t dg[8], dw[8];
    int rg, rw;
    size_t ng, nw;
    float *g = read_dataset(got, got_file, path, H5T_NATIVE_FLOAT, sizeof(float), &ng, dg, &rg);
    double *w =
        read_dataset(want, want_file, path, H5T_NATIVE_DOUBLE, sizeof(double), &nw, dw, &rw);
    int same = g && w && rg == rw;
    for (int i = 0; same && i < rg; i++) same = dg[i] == dw[i];
    TU_CHECK(same, "%s: %s missing or its shape differs from %s", got_file, path, want_file);
    if (same) {
        double m = 0.0;
        for (size_t i = 0; i < nw; i++)
            if (fabs(w[i]) > m) m = fabs(w[i]);
        tu_compare(label, g, w, nw, atol + atol_rel_max * m, rtol);
    }
    free(g);
    free(w);
}

static void run_step_case(const char *tests, const char *tmp, const char *lmdisp,
                          const char *name) {
    char ref[PATH_LEN], out[PATH_LEN], flags[512], cmd[3 * PATH_LEN];
    snprintf(ref, sizeof ref, "%s/ref/model_step_%s.h5", tests, name);
    snprintf(out, sizeof out, "%s/torch_ref_step_%s.h5", tmp, name);
    printf("\n== step %s ==\n", name);
    hid_t want = H5Fopen(ref, H5F_ACC_RDONLY, H5P_DEFAULT);
    TU_CHECK(want >= 0, "cannot open the reference %s", ref);
    if (want < 0) return;
    fixture_args a;
    TU_CHECK(read_args(want, ref, &a) == 0, "%s: bad /args", ref);
    remove(out); /* never compare a stale dump */
    disp_flags(&a, flags, sizeof flags);
    snprintf(cmd, sizeof cmd,
             "'%s' step --checkpoint '%s/ref/model_ckpt.h5' --tokens '%s/ref/model_tokens.bin' "
             "--batch %lld --seq %lld --out '%s'%s",
             lmdisp, tests, tests, (long long)a.batch, (long long)a.seq, out, flags);
    int ok = run(cmd) == 0;
    TU_CHECK(ok, "lmdisp step failed for %s", name);
    hid_t got = ok ? H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    TU_CHECK(!ok || got >= 0, "cannot open the dump %s", out);
    if (got < 0) {
        H5Fclose(want);
        return;
    }
    char label[256];
    static const char *scalars[] = {"loss", "ce_loss", "dispersion_loss"};
    for (size_t i = 0; i < NELEM(scalars); i++) {
        snprintf(label, sizeof label, "%s /%s", name, scalars[i]);
        compare_dataset(got, out, want, ref, scalars[i], label, LOSS_ATOL, 0.0, 0.0);
    }
    snprintf(label, sizeof label, "%s /logits", name);
    compare_dataset(got, out, want, ref, "logits", label, ACT_ATOL, 0.0, ACT_RTOL);
    snprintf(label, sizeof label, "%s /hidden_states", name);
    compare_dataset(got, out, want, ref, "hidden_states", label, ACT_ATOL, 0.0, ACT_RTOL);

    name_list wl = {0}, gl = {0};
    int lists = list_group(want, ref, "grads", &wl) == 0 && list_group(got, out, "grads", &gl) == 0;
    TU_CHECK(lists && wl.n == gl.n, "%s: /grads has %d tensors, the reference %d", out, gl.n, wl.n);
    for (int i = 0; lists && i < wl.n; i++) {
        char path[512];
        snprintf(path, sizeof path, "grads/%s", wl.names[i]);
        snprintf(label, sizeof label, "%s /grads/%s", name, wl.names[i]);
        compare_dataset(got, out, want, ref, path, label, 0.0, GRAD_ATOL_REL, GRAD_RTOL);
    }
    free_names(&wl);
    free_names(&gl);
    H5Fclose(got);
    H5Fclose(want);
}

/* Sum of the learning rates of the schedule (DESIGN 2, Hugging Face cosine with warmup). */
static double lr_sum(const fixture_args *a) {
    int64_t S = a->steps, W = (int64_t)floor(a->warmup_ratio * (double)S);
    double s_lr = 0.0;
    for (int64_t s = 0; s < S; s++)
        s_lr += s < W ? a->lr * (double)s / (double)W
                      : a->lr * 0.5 *
                            (1.0 + cos(3.14159265358979323846 * (double)(s - W) /
                                       (double)(S - W > 1 ? S - W : 1)));
    return s_lr;
}

static void run_train_case(const char *tests, const char *tmp, const char *lmdisp,
                           const char *name) {
    char ref[PATH_LEN], dir[PATH_LEN], out[PATH_LEN + 32], flags[512], cmd[3 * PATH_LEN];
    snprintf(ref, sizeof ref, "%s/ref/model_train_%s.h5", tests, name);
    snprintf(dir, sizeof dir, "%s/torch_ref_train_%s", tmp, name);
    printf("\n== train %s ==\n", name);
    hid_t want = H5Fopen(ref, H5F_ACC_RDONLY, H5P_DEFAULT);
    TU_CHECK(want >= 0, "cannot open the reference %s", ref);
    if (want < 0) return;
    fixture_args a;
    TU_CHECK(read_args(want, ref, &a) == 0 && a.steps > 0, "%s: bad /args", ref);
    snprintf(out, sizeof out, "%s/step%07lld.h5", dir, (long long)a.steps);
    /* a fresh directory: an old checkpoint there must neither be compared nor resumed from */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    TU_CHECK(run(cmd) == 0, "cannot clear %s", dir);
    flags[0] = 0;
    if (strcmp(a.dispersion, "off") != 0)
        snprintf(flags, sizeof flags,
                 " --dispersion %s --location %s --coeff %.17g --tau-cos "
                 "%.17g --tau-l2 %.17g",
                 a.dispersion, a.location, a.coeff, a.tau_cos, a.tau_l2);
    snprintf(cmd, sizeof cmd,
             "'%s' train --init '%s/ref/model_ckpt.h5' --data 'shards:%s/ref/model_tokens.bin' "
             "--val-fraction 0 --batch %lld --seq %lld --steps %lld --lr %.17g "
             "--warmup-ratio %.17g --clip %.17g --weight-decay %.17g --checkpoint-steps %lld "
             "--out '%s'%s",
             lmdisp, tests, tests, (long long)a.batch, (long long)a.seq, (long long)a.steps, a.lr,
             a.warmup_ratio, a.clip, a.weight_decay, (long long)a.steps, dir, flags);
    int ok = run(cmd) == 0;
    TU_CHECK(ok, "lmdisp train failed for %s", name);
    hid_t got = ok ? H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    TU_CHECK(!ok || got >= 0, "cannot open the checkpoint %s", out);
    if (got < 0) {
        H5Fclose(want);
        return;
    }
    int64_t step = -1, tokens = -1, n_embd = 0;
    TU_CHECK(read_attr_num(got, out, "step", H5T_NATIVE_INT64, &step) == 0 && step == a.steps,
             "%s: step attribute %lld, want %lld", out, (long long)step, (long long)a.steps);
    TU_CHECK(read_attr_num(got, out, "tokens", H5T_NATIVE_INT64, &tokens) == 0 &&
                 tokens == a.steps * a.batch * a.seq,
             "%s: tokens attribute %lld, want %lld", out, (long long)tokens,
             (long long)(a.steps * a.batch * a.seq));
    TU_CHECK(read_attr_num(got, out, "n_embd", H5T_NATIVE_INT64, &n_embd) == 0 && n_embd > 0,
             "%s: no n_embd attribute", out);

    double bound = 2.0 * lr_sum(&a);
    name_list wl = {0}, gl = {0};
    int lists =
        list_group(want, ref, "params", &wl) == 0 && list_group(got, out, "params", &gl) == 0;
    TU_CHECK(lists && wl.n == gl.n, "%s: /params has %d tensors, the reference %d", out, gl.n,
             wl.n);
    for (int i = 0; lists && i < wl.n; i++) {
        char path[512], label[256];
        snprintf(path, sizeof path, "params/%s", wl.names[i]);
        snprintf(label, sizeof label, "train %s /params/%s", name, wl.names[i]);
        size_t len = strlen(wl.names[i]);
        if (len < 14 || strcmp(wl.names[i] + len - 14, ".attn.qkv.bias") != 0 || n_embd <= 0) {
            compare_dataset(got, out, want, ref, path, label, TRAIN_ATOL, 0.0, 0.0);
            continue;
        }
        /* q and v biases at the training tolerance; the key bias (zero gradient, see the top
         * of the file) only against the bound of what Adam can move it */
        hsize_t dg[8], dw[8];
        int rg, rw;
        size_t ng, nw;
        float *g = read_dataset(got, out, path, H5T_NATIVE_FLOAT, sizeof(float), &ng, dg, &rg);
        double *w = read_dataset(want, ref, path, H5T_NATIVE_DOUBLE, sizeof(double), &nw, dw, &rw);
        size_t C = (size_t)n_embd;
        int same = g && w && ng == nw && nw == 3 * C;
        TU_CHECK(same, "%s: %s missing or not of length 3*n_embd", out, path);
        if (same) {
            char l2[300];
            snprintf(l2, sizeof l2, "%s[q]", label);
            tu_compare(l2, g, w, C, TRAIN_ATOL, 0.0);
            snprintf(l2, sizeof l2, "%s[v]", label);
            tu_compare(l2, g + 2 * C, w + 2 * C, C, TRAIN_ATOL, 0.0);
            snprintf(l2, sizeof l2, "%s[k] (bound)", label);
            tu_compare(l2, g + C, w + C, C, bound, 0.0);
        }
        free(g);
        free(w);
    }
    free_names(&wl);
    free_names(&gl);
    H5Fclose(got);
    H5Fclose(want);
}

int main(void) {
    const char *lmdisp = getenv("LMDISP");
    const char *tests = getenv("LMDISP_TESTS");
    const char *tmp = getenv("LMDISP_TMP");
    if (!lmdisp || !*lmdisp) {
        fprintf(stderr, "test_torch_ref: set LMDISP to the lmdisp binary (ctest does)\n");
        return 1;
    }
    if (!tests || !*tests) tests = ".";
    if (!tmp || !*tmp) tmp = ".";
    /* our own messages name the file and object; HDF5's stack dumps would only add noise */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    printf("tolerances: logits/hidden atol %.0e rtol %.0e; losses atol %.0e; grads atol "
           "%.0e*max|ref| rtol %.0e; trained params atol %.0e\n",
           ACT_ATOL, ACT_RTOL, LOSS_ATOL, GRAD_ATOL_REL, GRAD_RTOL, TRAIN_ATOL);
    for (size_t i = 0; i < NELEM(STEP_CASES); i++) run_step_case(tests, tmp, lmdisp, STEP_CASES[i]);
    for (size_t i = 0; i < NELEM(TRAIN_CASES); i++)
        run_train_case(tests, tmp, lmdisp, TRAIN_CASES[i]);
    int failures = tu_summary("test_torch_ref");
    /* an exit status is taken mod 256: never let 256 failures look like success */
    return failures > 255 ? 255 : failures;
}
