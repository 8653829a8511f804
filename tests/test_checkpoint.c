/* test_checkpoint.c — checkpoint save/load (DESIGN.md 4.1): bitwise round trip of params,
 * moments and training state; Fletcher32 on every dataset; a params-only file written by h5py
 * (tests/ref/foreign_ckpt.h5, from tests/gen_foreign_ckpt.py) loads; each malformed file is
 * rejected with a message naming the problem. Malformed files are made here with the HDF5 C
 * API under $LMDISP_TMP (fallback /tmp), so no Python is needed at test time. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "data.h"
#include "gpt.h"
#include "testutil.h"
#include "train.h"

static char g_tmp[512];

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/ckpt_%ld_%s", g_tmp, (long)getpid(), name);
}

static const gpt_config SMALL = {
    .vocab_size = 13, .n_ctx = 8, .n_layer = 2, .n_embd = 8, .n_head = 2, .mlp_dim = 12};

/* A model with initialized params, distinct moments and a state; caller frees. */
static void make_trained_like(gpt_model *m, lmd_train_state *st) {
    lmd_err err = {{0}};
    if (gpt_create(m, &SMALL, &err)) {
        fprintf(stderr, "gpt_create failed: %s\n", err.msg);
        exit(100);
    }
    gpt_init(m, 1234);
    gpt_alloc_moments(m);
    for (size_t i = 0; i < m->num_params; i++) {
        m->m_memory[i] = (float)(1e-3 * sin(0.7 * (double)i + 0.3));
        m->v_memory[i] = (float)(1e-6 * (1.0 + (double)(i % 97)));
    }
    m->adam_t = 37;
    memset(st, 0, sizeof *st);
    st->step = 37;
    st->tokens = 37 * 64;
    st->seed = 4242;
    st->data_pos = 12345678901ULL;
    lmd_rng_seed(&st->rng_disp, 4242, LMD_STREAM_DISPERSION);
    for (int i = 0; i < 5; i++) lmd_rng_u64(&st->rng_disp); /* mid-stream, not a fresh seed */
}

/* Saves the reference checkpoint to path; returns 0 on success. */
static int write_good(const char *path) {
    gpt_model m;
    lmd_train_state st;
    lmd_err err = {{0}};
    make_trained_like(&m, &st);
    int rc = lmd_ckpt_save(path, &m, &st, &err);
    if (rc) fprintf(stderr, "save %s failed: %s\n", path, err.msg);
    gpt_free(&m);
    return rc;
}

static int copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    if (!in || !out) {
        fprintf(stderr, "copy %s -> %s: cannot open\n", src, dst);
        if (in) fclose(in);
        if (out) fclose(out);
        return -1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) break;
    fclose(in);
    return fclose(out) == 0 ? 0 : -1;
}

/* Number of directory entries starting with prefix. */
static int count_prefixed(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

static int tmp_leftovers(const char *path) {
    char prefix[600];
    const char *base = strrchr(path, '/');
    snprintf(prefix, sizeof prefix, "%s.tmp.", base ? base + 1 : path);
    return count_prefixed(g_tmp, prefix);
}

/* ---- round trip ---- */

static void test_roundtrip(const char *good) {
    gpt_model a, b;
    lmd_train_state sa, sb;
    lmd_err err = {{0}};
    make_trained_like(&a, &sa);
    memset(&b, 0, sizeof b);
    int rc = lmd_ckpt_load(good, &b, &sb, &err);
    TU_CHECK(rc == 0, "load %s: %s", good, err.msg);
    if (rc == 0) {
        TU_CHECK(!memcmp(&a.cfg, &b.cfg, sizeof a.cfg), "config differs after round trip");
        TU_CHECK(a.num_params == b.num_params, "num_params %zu vs %zu", a.num_params, b.num_params);
        TU_CHECK(!memcmp(a.params_memory, b.params_memory, a.num_params * sizeof(float)),
                 "params differ bitwise");
        TU_CHECK(b.m_memory && b.v_memory, "moments not allocated on load");
        if (b.m_memory && b.v_memory) {
            TU_CHECK(!memcmp(a.m_memory, b.m_memory, a.num_params * sizeof(float)),
                     "first moments differ bitwise");
            TU_CHECK(!memcmp(a.v_memory, b.v_memory, a.num_params * sizeof(float)),
                     "second moments differ bitwise");
        }
        TU_CHECK(b.adam_t == 37, "adam_t %lld, want 37", (long long)b.adam_t);
        TU_CHECK(sb.has_state == 1, "has_state %d, want 1", sb.has_state);
        TU_CHECK(sb.step == sa.step && sb.tokens == sa.tokens && sb.seed == sa.seed,
                 "step/tokens/seed %lld/%lld/%lld", (long long)sb.step, (long long)sb.tokens,
                 (long long)sb.seed);
        TU_CHECK(sb.data_pos == sa.data_pos, "data_pos %llu", (unsigned long long)sb.data_pos);
        TU_CHECK(!memcmp(&sa.rng_disp, &sb.rng_disp, sizeof sa.rng_disp), "rng_disp differs");
        /* the restored RNG continues the same stream */
        TU_CHECK(lmd_rng_u64(&sa.rng_disp) == lmd_rng_u64(&sb.rng_disp), "rng streams diverge");
    }
    printf("round trip: params, moments, adam_t, state compared bitwise\n");
    gpt_free(&a);
    gpt_free(&b);

    /* st may be NULL on load: params and moments still come back */
    gpt_model c;
    memset(&c, 0, sizeof c);
    rc = lmd_ckpt_load(good, &c, NULL, &err);
    TU_CHECK(rc == 0 && c.m_memory && c.adam_t == 37, "load with st = NULL: %s", err.msg);
    gpt_free(&c);

    gpt_config cfg;
    rc = lmd_ckpt_read_config(good, &cfg, &err);
    TU_CHECK(rc == 0 && !memcmp(&cfg, &SMALL, sizeof cfg), "read_config: %s", err.msg);
}

/* A model saved before its first update (no moments) and without a state. */
static void test_no_moments(void) {
    char path[600];
    tmp_path(path, sizeof path, "nomoments.h5");
    gpt_model m, b;
    lmd_err err = {{0}};
    gpt_create(&m, &SMALL, &err);
    gpt_init(&m, 7);
    int rc = lmd_ckpt_save(path, &m, NULL, &err);
    TU_CHECK(rc == 0, "save without moments/state: %s", err.msg);
    lmd_train_state st;
    memset(&b, 0, sizeof b);
    rc = lmd_ckpt_load(path, &b, &st, &err);
    TU_CHECK(rc == 0, "load without moments/state: %s", err.msg);
    if (rc == 0) {
        TU_CHECK(!memcmp(m.params_memory, b.params_memory, m.num_params * sizeof(float)),
                 "params differ");
        TU_CHECK(b.m_memory == NULL && b.v_memory == NULL && b.adam_t == 0,
                 "moments should stay unallocated, adam_t 0 (got %lld)", (long long)b.adam_t);
        TU_CHECK(st.has_state == 0 && st.step == 0, "has_state %d step %lld", st.has_state,
                 (long long)st.step);
    }
    gpt_free(&m);
    gpt_free(&b);
    remove(path);
}

/* Every dataset in the file is chunked with Fletcher32; `format` is a variable-length string
 * (what h5py reads back as str). */
static herr_t visit_cb(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
    int *counts = data;
    if (info->type != H5O_TYPE_DATASET) return 0;
    counts[0]++;
    hid_t d = H5Dopen2(obj, name, H5P_DEFAULT);
    hid_t p = H5Dget_create_plist(d);
    unsigned flags = 0, cd[8];
    size_t ncd = 8;
    char fname[64];
    int chunked = H5Pget_layout(p) == H5D_CHUNKED;
    int fl = H5Pget_filter_by_id2(p, H5Z_FILTER_FLETCHER32, &flags, &ncd, cd, sizeof fname, fname,
                                  NULL) >= 0;
    if (chunked && fl)
        counts[1]++;
    else
        fprintf(stderr, "dataset %s: chunked %d fletcher32 %d\n", name, chunked, fl);
    H5Pclose(p);
    H5Dclose(d);
    return 0;
}

static void test_file_layout(const char *good) {
    hid_t f = H5Fopen(good, H5F_ACC_RDONLY, H5P_DEFAULT);
    TU_CHECK(f >= 0, "cannot open %s", good);
    if (f < 0) return;
    int counts[2] = {0, 0};
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* H5Pget_filter_by_id2 fails loudly when absent */
    H5Ovisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, visit_cb, counts);
    H5Eset_auto2(H5E_DEFAULT, (H5E_auto2_t)H5Eprint2, stderr);
    /* params + m + v, each 2 unlayered + 12 per layer + 2 final */
    int want = 3 * (4 + 12 * SMALL.n_layer);
    TU_CHECK(counts[0] == want, "found %d datasets, want %d", counts[0], want);
    TU_CHECK(counts[1] == counts[0], "%d of %d datasets chunked with Fletcher32", counts[1],
             counts[0]);
    hid_t a = H5Aopen(f, "format", H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    TU_CHECK(H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) == 0,
             "format should be a fixed-length string (a vlen one lives in the unchecked heap)");
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);
    printf("file layout: %d datasets, all chunked + Fletcher32\n", counts[0]);
}

/* ---- foreign file written by h5py ---- */

static unsigned name_hash(const char *name) {
    unsigned long s = 0;
    for (size_t p = 0; name[p]; p++) s += (p + 1) * (unsigned char)name[p];
    return (unsigned)(s % 997);
}

static void test_foreign(void) {
    const char *dir = getenv("LMDISP_TESTS");
    char path[600];
    snprintf(path, sizeof path, "%s/ref/foreign_ckpt.h5", dir ? dir : ".");
    gpt_model m;
    lmd_train_state st;
    lmd_err err = {{0}};
    memset(&m, 0, sizeof m);
    int rc = lmd_ckpt_load(path, &m, &st, &err);
    TU_CHECK(rc == 0, "load %s: %s", path, err.msg);
    if (rc) return;
    const gpt_config want = {7, 5, 2, 4, 2, 6};
    TU_CHECK(!memcmp(&m.cfg, &want, sizeof want), "config of the foreign file");
    TU_CHECK(st.has_state == 0, "has_state %d, want 0", st.has_state);
    TU_CHECK(m.m_memory == NULL && m.adam_t == 0, "moments should be unallocated");
    TU_CHECK(st.step == 17 && st.tokens == 4321 && st.seed == 99, "step/tokens/seed");
    /* the values of gen_foreign_ckpt.py: sin(0.01 h(name) + 0.1 i), rounded to float32 */
    size_t total = 0;
    double *ref = malloc(m.num_params * sizeof(double));
    float *got = malloc(m.num_params * sizeof(float));
    for (int k = 0; k < GPT_NUM_TENSORS; k++) {
        gpt_tensor_info info;
        gpt_tensor_describe(&m.cfg, k, &info);
        size_t n = info.shape[0] * (info.ndim == 2 ? info.shape[1] : 1);
        for (int l = 0; l < (info.layered ? m.cfg.n_layer : 1); l++) {
            char name[128];
            if (info.layered)
                snprintf(name, sizeof name, info.name, l);
            else
                snprintf(name, sizeof name, "%s", info.name);
            unsigned h = name_hash(name);
            const float *p = m.params.t[k] + (size_t)l * n;
            for (size_t i = 0; i < n; i++) {
                ref[total] = (double)(float)sin(0.01 * h + 0.1 * (double)i);
                got[total++] = p[i];
            }
        }
    }
    TU_CHECK(total == m.num_params, "visited %zu of %zu params", total, m.num_params);
    /* one float32 ulp near 1 is 6e-8: the only freedom is libm's last double bit */
    tu_compare("foreign h5py checkpoint params", got, ref, total, 1.2e-7, 0.0);
    free(ref);
    free(got);
    gpt_free(&m);
}

/* ---- malformed files, made with the HDF5 C API from a good one ---- */

static hid_t open_rw(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) fprintf(stderr, "cannot open %s for editing\n", path);
    return f;
}

static void set_i64_attr(hid_t loc, const char *name, int64_t v) {
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Sclose(s);
}

/* Fixed-length string attribute of `size` bytes with the given padding. */
static void set_fixed_str_attr(hid_t loc, const char *name, const char *s, size_t size,
                               H5T_str_t pad) {
    if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
    char buf[64];
    memset(buf, pad == H5T_STR_SPACEPAD ? ' ' : 0, sizeof buf);
    memcpy(buf, s, strlen(s));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, size);
    H5Tset_strpad(t, pad);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, buf);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

/* Replaces dataset path with one of the given type and shape, values 0.25 * i. */
static void replace_dataset(hid_t f, const char *path, hid_t type, int ndim, const hsize_t *dims) {
    H5Ldelete(f, path, H5P_DEFAULT);
    hid_t s = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, path, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    double *v = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) v[i] = 0.25 * (double)i;
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    free(v);
    H5Dclose(d);
    H5Sclose(s);
}

/* Loads path expecting failure; every NULL-terminated key word must be in the message, and
 * the model must be left unallocated. */
static void expect_reject(const char *what, const char *path, const char *const *keys) {
    gpt_model m;
    lmd_train_state st;
    lmd_err err = {{0}};
    memset(&m, 0, sizeof m);
    int rc = lmd_ckpt_load(path, &m, &st, &err);
    TU_CHECK(rc == -1, "%s: load returned %d, want -1", what, rc);
    for (const char *const *k = keys; *k; k++)
        TU_CHECK(strstr(err.msg, *k) != NULL, "%s: message lacks \"%s\": %s", what, *k, err.msg);
    TU_CHECK(m.params_memory == NULL, "%s: model left allocated after a failed load", what);
    printf("reject %-28s -> %s\n", what, err.msg);
    if (rc == 0) gpt_free(&m);
}

/* Makes a copy of good at name, lets edit() change it, returns the copy's path in buf. */
typedef void (*edit_fn)(hid_t f);
static int make_variant(const char *good, const char *name, edit_fn edit, char *buf, size_t cap) {
    tmp_path(buf, cap, name);
    if (copy_file(good, buf)) return -1;
    if (!edit) return 0;
    hid_t f = open_rw(buf);
    if (f < 0) return -1;
    edit(f);
    return H5Fclose(f) < 0 ? -1 : 0;
}

static void ed_wrong_format(hid_t f) {
    set_fixed_str_attr(f, "format", "other-checkpoint", 16, H5T_STR_NULLTERM);
}
static void ed_no_format(hid_t f) { H5Adelete(f, "format"); }
static void ed_version2(hid_t f) { set_i64_attr(f, "format_version", 2); }
static void ed_no_nctx(hid_t f) { H5Adelete(f, "n_ctx"); }
static void ed_bad_heads(hid_t f) { set_i64_attr(f, "n_head", 3); }
static void ed_no_fc(hid_t f) { H5Ldelete(f, "/params/h.1.mlp.fc.weight", H5P_DEFAULT); }
static void ed_bad_shape(hid_t f) {
    hsize_t d[2] = {24, 9};
    replace_dataset(f, "/params/h.0.attn.qkv.weight", H5T_IEEE_F32LE, 2, d);
}
static void ed_bad_rank(hid_t f) {
    hsize_t d[1] = {64};
    replace_dataset(f, "/params/wpe", H5T_IEEE_F32LE, 1, d);
}
static void ed_int_type(hid_t f) {
    hsize_t d[1] = {8};
    replace_dataset(f, "/params/ln_f.bias", H5T_STD_I32LE, 1, d);
}
static void ed_moments_gone(hid_t f) {
    H5Ldelete(f, "/optimizer/m", H5P_DEFAULT);
    H5Ldelete(f, "/optimizer/v", H5P_DEFAULT);
}
/* accepted variants */
static void ed_step_neg(hid_t f) { set_i64_attr(f, "step", -5); }
static void ed_step_huge(hid_t f) { set_i64_attr(f, "step", (int64_t)1 << 62); }
static void ed_tokens_neg(hid_t f) { set_i64_attr(f, "tokens", -1); }
static void ed_fixed_format(hid_t f) {
    set_fixed_str_attr(f, "format", "lmdisp-checkpoint", 24, H5T_STR_NULLPAD);
}
static void ed_space_format(hid_t f) {
    set_fixed_str_attr(f, "format", "lmdisp-checkpoint", 24, H5T_STR_SPACEPAD);
}
static void ed_f64_wpe(hid_t f) {
    hsize_t d[2] = {(hsize_t)SMALL.n_ctx, (hsize_t)SMALL.n_embd};
    replace_dataset(f, "/params/wpe", H5T_IEEE_F64LE, 2, d);
}

/* Flips one byte in the middle of the stored chunk of /params/wte. */
static int corrupt_chunk(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t d = H5Dopen2(f, "/params/wte", H5P_DEFAULT);
    hsize_t origin[2] = {0, 0};
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    herr_t hr = H5Dget_chunk_info_by_coord(d, origin, &mask, &addr, &size);
    H5Dclose(d);
    H5Fclose(f);
    if (hr < 0 || addr == HADDR_UNDEF || size < 8) {
        fprintf(stderr, "no chunk info for /params/wte in %s\n", path);
        return -1;
    }
    FILE *fp = fopen(path, "r+b");
    if (!fp) return -1;
    long at = (long)(addr + size / 2);
    int c;
    if (fseek(fp, at, SEEK_SET) != 0 || (c = fgetc(fp)) == EOF || fseek(fp, at, SEEK_SET) != 0 ||
        fputc(c ^ 0x5a, fp) == EOF) {
        fclose(fp);
        return -1;
    }
    printf("corrupted byte %ld (chunk at %llu, %llu bytes) of %s\n", at, (unsigned long long)addr,
           (unsigned long long)size, path);
    return fclose(fp);
}

static void test_rejections(const char *good) {
    char p[600];
    {
        tmp_path(p, sizeof p, "does_not_exist.h5");
        remove(p);
        const char *k[] = {"does_not_exist.h5", "No such file", NULL};
        expect_reject("missing file", p, k);
    }
    {
        tmp_path(p, sizeof p, "not_hdf5.h5");
        FILE *fp = fopen(p, "w");
        if (fp) {
            fputs("this is a text file, not a checkpoint\n", fp);
            fclose(fp);
        }
        const char *k[] = {"not an HDF5 file", NULL};
        expect_reject("non-HDF5 file", p, k);
        remove(p);
    }
    struct {
        const char *what, *file;
        edit_fn edit;
        const char *keys[4];
    } cases[] = {
        {"no format attribute", "nofmt.h5", ed_no_format, {"missing", "'format'", NULL}},
        {"wrong format string",
         "wrongfmt.h5",
         ed_wrong_format,
         {"wrong format", "other-checkpoint", "lmdisp-checkpoint", NULL}},
        {"format_version 2", "v2.h5", ed_version2, {"unsupported format_version 2", NULL}},
        {"missing config attribute", "nonctx.h5", ed_no_nctx, {"missing attribute", "n_ctx", NULL}},
        {"n_embd % n_head != 0",
         "heads.h5",
         ed_bad_heads,
         {"invalid config", "n_head", "divisible", NULL}},
        {"missing dataset",
         "nofc.h5",
         ed_no_fc,
         {"missing dataset", "/params/h.1.mlp.fc.weight", NULL}},
        {"wrong shape",
         "shape.h5",
         ed_bad_shape,
         {"/params/h.0.attn.qkv.weight", "[24, 9]", "expected [24, 8]", NULL}},
        {"wrong rank", "rank.h5", ed_bad_rank, {"/params/wpe", "[64]", "expected [8, 8]", NULL}},
        {"integer dataset", "inttype.h5", ed_int_type, {"/params/ln_f.bias", "non-float", NULL}},
        {"adam_t without moments",
         "nomom.h5",
         ed_moments_gone,
         {"adam_t = 37", "no moments", NULL}},
        {"step -5", "stepneg.h5", ed_step_neg, {"step = -5", "out of range", "stepneg.h5", NULL}},
        {"step 2^62",
         "stephuge.h5",
         ed_step_huge,
         {"step = 4611686018427387904", "out of range", NULL}},
        {"tokens -1", "tokneg.h5", ed_tokens_neg, {"tokens = -1", "out of range", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (make_variant(good, cases[i].file, cases[i].edit, p, sizeof p)) {
            TU_CHECK(0, "could not make fixture %s", cases[i].file);
            continue;
        }
        expect_reject(cases[i].what, p, cases[i].keys);
        remove(p);
    }
    /* a flipped byte inside a dataset's stored chunk */
    if (make_variant(good, "corrupt.h5", NULL, p, sizeof p) == 0 && corrupt_chunk(p) == 0) {
        const char *k[] = {"checksum", "corrupted", "/params/wte", NULL};
        expect_reject("corrupted data byte", p, k);
    } else {
        TU_CHECK(0, "could not make the corrupted fixture");
    }
    remove(p);
}

static void test_accepted_variants(const char *good) {
    char p[600];
    struct {
        const char *what, *file;
        edit_fn edit;
    } cases[] = {
        {"fixed-length null-padded format", "fixfmt.h5", ed_fixed_format},
        {"fixed-length space-padded format", "spcfmt.h5", ed_space_format},
        {"float64 /params/wpe", "f64.h5", ed_f64_wpe},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (make_variant(good, cases[i].file, cases[i].edit, p, sizeof p)) {
            TU_CHECK(0, "could not make fixture %s", cases[i].file);
            continue;
        }
        gpt_model m;
        lmd_train_state st;
        lmd_err err = {{0}};
        memset(&m, 0, sizeof m);
        int rc = lmd_ckpt_load(p, &m, &st, &err);
        TU_CHECK(rc == 0, "%s should load: %s", cases[i].what, err.msg);
        if (rc == 0 && cases[i].edit == ed_f64_wpe) {
            size_t n = (size_t)SMALL.n_ctx * SMALL.n_embd;
            double *ref = malloc(n * sizeof(double));
            for (size_t j = 0; j < n; j++) ref[j] = 0.25 * (double)j;
            tu_compare("float64 wpe converted to float32", m.params.wpe, ref, n, 0.0, 0.0);
            free(ref);
        }
        printf("accept %-34s -> %s\n", cases[i].what, rc == 0 ? "ok" : err.msg);
        gpt_free(&m);
        remove(p);
    }
}

/* ---- saving: atomic replace, no temp files left, clear failures ---- */

static void test_save_errors(const char *good) {
    gpt_model m;
    lmd_train_state st;
    lmd_err err = {{0}};
    make_trained_like(&m, &st);

    TU_CHECK(tmp_leftovers(good) == 0, "temporary file left after a successful save of %s", good);
    /* overwriting an existing checkpoint works and leaves nothing behind */
    int rc = lmd_ckpt_save(good, &m, &st, &err);
    TU_CHECK(rc == 0, "overwrite %s: %s", good, err.msg);
    TU_CHECK(tmp_leftovers(good) == 0, "temporary file left after overwriting %s", good);

    char p[700];
    snprintf(p, sizeof p, "%s/no_such_dir_%ld/ck.h5", g_tmp, (long)getpid());
    rc = lmd_ckpt_save(p, &m, &st, &err);
    TU_CHECK(rc == -1, "save into a missing directory returned %d", rc);
    TU_CHECK(strstr(err.msg, "no_such_dir") && strstr(err.msg, "No such file or directory"),
             "message: %s", err.msg);
    printf("save into missing dir -> %s\n", err.msg);

    /* the final rename fails (the target is a directory): the temp file must be removed */
    char d[600];
    tmp_path(d, sizeof d, "is_a_dir.h5");
    mkdir(d, 0755);
    rc = lmd_ckpt_save(d, &m, &st, &err);
    TU_CHECK(rc == -1 && strstr(err.msg, "rename"), "save onto a directory: rc %d, %s", rc,
             err.msg);
    TU_CHECK(tmp_leftovers(d) == 0, "temporary file left after a failed save");
    printf("save onto a directory -> %s\n", err.msg);
    rmdir(d);
    gpt_free(&m);
}

/* ---- bitwise resume through the trainer: train(N) == train(k) -> save -> load -> train(N-k) */

static int trainer_start(lmd_trainer *tr, const lmd_train_opts *o, lmd_span span, gpt_model *m,
                         const lmd_train_state *st) {
    lmd_err err = {{0}};
    if (lmd_trainer_init(tr, o, m, span, st, &err)) {
        fprintf(stderr, "lmd_trainer_init: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void test_resume(void) {
    const int N = 6, K = 3;
    lmd_err err = {{0}};
    lmd_synth_opts so = lmd_synth_default();
    so.n_tokens = 4096;
    so.vocab_size = SMALL.vocab_size;
    lmd_tokens toks;
    if (lmd_data_synthetic(&toks, &so, &err)) {
        TU_CHECK(0, "synthetic corpus: %s", err.msg);
        return;
    }
    lmd_span span = {toks.tok, toks.n, toks.vocab_size};
    lmd_train_opts o = lmd_train_default();
    o.B = 2;
    o.T = 8;
    o.steps = N;
    o.seed = 77;
    /* dispersion on with a token subset, so the resumed run depends on the saved RNG state */
    o.disp.variant = DISP_ANGULAR_SPREAD;
    o.disp.max_tokens = 5;

    lmd_trainer full, part;
    gpt_model m;
    gpt_create(&m, &SMALL, &err);
    gpt_init(&m, o.seed);
    if (trainer_start(&full, &o, span, &m, NULL)) goto out_tokens;
    for (int i = 0; i < N; i++) lmd_trainer_step(&full);

    gpt_create(&m, &SMALL, &err);
    gpt_init(&m, o.seed);
    if (trainer_start(&part, &o, span, &m, NULL)) goto out_full;
    for (int i = 0; i < K; i++) lmd_trainer_step(&part);
    char path[600];
    tmp_path(path, sizeof path, "resume.h5");
    int rc = lmd_ckpt_save(path, &part.model, &part.state, &err);
    TU_CHECK(rc == 0, "save at step %d: %s", K, err.msg);
    lmd_trainer_free(&part);

    lmd_train_state st;
    memset(&m, 0, sizeof m);
    rc = lmd_ckpt_load(path, &m, &st, &err);
    TU_CHECK(rc == 0 && st.has_state && st.step == K, "load at step %d: %s", K, err.msg);
    remove(path);
    if (rc) goto out_full;
    if (trainer_start(&part, &o, span, &m, &st)) goto out_full;
    for (int i = K; i < N; i++) lmd_trainer_step(&part);

    size_t n = full.model.num_params;
    TU_CHECK(!memcmp(full.model.params_memory, part.model.params_memory, n * sizeof(float)),
             "params after resume differ from the uninterrupted run");
    TU_CHECK(!memcmp(full.model.m_memory, part.model.m_memory, n * sizeof(float)) &&
                 !memcmp(full.model.v_memory, part.model.v_memory, n * sizeof(float)),
             "moments after resume differ from the uninterrupted run");
    TU_CHECK(full.model.adam_t == part.model.adam_t && full.state.step == part.state.step &&
                 full.state.tokens == part.state.tokens &&
                 full.state.data_pos == part.state.data_pos &&
                 !memcmp(&full.state.rng_disp, &part.state.rng_disp, sizeof(lmd_rng)),
             "training state after resume differs");
    TU_CHECK(full.last.loss == part.last.loss, "last loss %.9g vs %.9g", full.last.loss,
             part.last.loss);
    printf("resume: train(%d) vs train(%d)+save+load+train(%d): last loss %.9g vs %.9g\n", N, K,
           N - K, full.last.loss, part.last.loss);
    lmd_trainer_free(&part);
out_full:
    lmd_trainer_free(&full);
out_tokens:
    lmd_tokens_free(&toks);
}

/* A vlen `format` (h5py's default, lmdisp's before issue 14) with one flipped byte in the
 * global heap: the collection size (HDF5 hung) or the string object (HDF5 segfaulted in
 * H5HG_read). Both must be a clean refusal that says the file is corrupted. */
static void ed_vlen_format(hid_t f) {
    H5Adelete(f, "format");
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char *v = "lmdisp-checkpoint";
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static long find_bytes(const char *path, const char *needle) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    size_t n = strlen(needle), have = 0;
    long pos = 0;
    int c;
    while ((c = fgetc(fp)) != EOF) { /* naive: needles here have no self-overlap */
        pos++;
        have = (unsigned char)c == (unsigned char)needle[have] ? have + 1
               : (unsigned char)c == (unsigned char)needle[0]  ? 1
                                                               : 0;
        if (have == n) {
            fclose(fp);
            return pos - (long)n;
        }
    }
    fclose(fp);
    return -1;
}

static int flip_byte(const char *path, long off, int mask) {
    FILE *fp = fopen(path, "r+b");
    if (!fp) return -1;
    int rc = -1;
    if (fseek(fp, off, SEEK_SET) == 0) {
        int c = fgetc(fp);
        if (c != EOF && fseek(fp, off, SEEK_SET) == 0 && fputc(c ^ mask, fp) != EOF) rc = 0;
    }
    return fclose(fp) == 0 ? rc : -1;
}

static void test_corrupt_heap(const char *good) {
    char p[600];
    if (make_variant(good, "vlen.h5", ed_vlen_format, p, sizeof p)) {
        TU_CHECK(0, "could not make the vlen fixture");
        return;
    }
    gpt_model m;
    memset(&m, 0, sizeof m);
    lmd_err err = {{0}};
    int rc = lmd_ckpt_load(p, &m, NULL, &err);
    TU_CHECK(rc == 0, "an intact vlen-format checkpoint must still load: %s", err.msg);
    if (rc == 0) gpt_free(&m);
    long g = find_bytes(p, "GCOL");
    TU_CHECK(g > 0, "no global heap collection in %s", p);
    if (g <= 0) return;
    /* collection: "GCOL", version, 3 reserved, size (8 bytes, at +8); object 1 at +16: index
     * (2), refcount (2), reserved (4), size (8), then the string at +32 */
    const struct {
        const char *what, *file;
        long off;
        int mask;
    } cases[] = {{"heap collection size 0", "heapsize.h5", g + 9, 0x10}, /* 4096 -> 0: hung */
                 {"heap object size byte", "heapobj.h5", g + 27, 0xFF}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[600];
        tmp_path(q, sizeof q, cases[i].file);
        if (copy_file(p, q) || flip_byte(q, cases[i].off, cases[i].mask)) {
            TU_CHECK(0, "could not make %s", q);
            continue;
        }
        const char *k[] = {cases[i].file, NULL};
        expect_reject(cases[i].what, q, k);
        remove(q);
    }
    remove(p);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the log if a later check crashes */
    const char *t = getenv("LMDISP_TMP");
    snprintf(g_tmp, sizeof g_tmp, "%s", t && *t ? t : "/tmp");
    mkdir(g_tmp, 0755);

    char good[600];
    tmp_path(good, sizeof good, "good.h5");
    if (write_good(good)) {
        TU_CHECK(0, "cannot write the reference checkpoint %s", good);
        return tu_summary("test_checkpoint");
    }
    test_roundtrip(good);
    test_no_moments();
    test_file_layout(good);
    test_foreign();
    test_rejections(good);
    test_corrupt_heap(good);
    test_accepted_variants(good);
    test_save_errors(good);
    test_resume();
    remove(good);
    return tu_summary("test_checkpoint");
}
