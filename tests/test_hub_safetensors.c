/* test_hub_safetensors.c — the safetensors reader: BF16/F16 conversion against known bit
 * patterns (and every F16 value against the IEEE formula), single files whose data order
 * differs from the header order, sharded indexes, and each malformed input refused with the
 * file and tensor named. */
#include "hubtest.h"
#include "safetensors.h"

#include <math.h>

static char dir[4096];

static void test_conversions(void) {
    struct {
        uint16_t b;
        float want;
    } bf[] = {
        {0x3F80, 1.0f},
        {0xC000, -2.0f},
        {0x3E80, 0.25f},
        {0x4049, 3.140625f},
        {0x0000, 0.0f},
        {0x7F7F, 3.3895313892515355e38f},
        {0x0080, 1.1754943508222875e-38f},
        {0x0001, 9.183549615799121e-41f}, /* smallest bf16 subnormal, 2^-133 */
    };
    for (size_t i = 0; i < sizeof bf / sizeof *bf; i++) {
        float got = st_bf16_to_f32(bf[i].b);
        TU_CHECK(got == bf[i].want, "bf16 0x%04x -> %.9g, want %.9g", bf[i].b, got, bf[i].want);
    }
    TU_CHECK(isinf(st_bf16_to_f32(0x7F80)) && st_bf16_to_f32(0x7F80) > 0, "bf16 +inf");
    TU_CHECK(isinf(st_bf16_to_f32(0xFF80)) && st_bf16_to_f32(0xFF80) < 0, "bf16 -inf");
    TU_CHECK(isnan(st_bf16_to_f32(0x7FC0)), "bf16 NaN");
    TU_CHECK(signbit(st_bf16_to_f32(0x8000)) && st_bf16_to_f32(0x8000) == 0, "bf16 -0");

    struct {
        uint16_t h;
        float want;
    } hf[] = {
        {0x3C00, 1.0f},
        {0xC000, -2.0f},
        {0x7BFF, 65504.0f},
        {0x3555, 0.333251953125f},
        {0x0400, 6.103515625e-05f},       /* smallest normal 2^-14 */
        {0x0001, 5.960464477539063e-08f}, /* smallest subnormal 2^-24 */
        {0x03FF, 6.097555160522461e-05f}, /* largest subnormal 1023 * 2^-24 */
        {0x8001, -5.960464477539063e-08f},
        {0x0200, 3.0517578125e-05f},
    };
    for (size_t i = 0; i < sizeof hf / sizeof *hf; i++) {
        float got = st_f16_to_f32(hf[i].h);
        TU_CHECK(got == hf[i].want, "f16 0x%04x -> %.9g, want %.9g", hf[i].h, got, hf[i].want);
    }
    TU_CHECK(isinf(st_f16_to_f32(0x7C00)) && st_f16_to_f32(0x7C00) > 0, "f16 +inf");
    TU_CHECK(isinf(st_f16_to_f32(0xFC00)) && st_f16_to_f32(0xFC00) < 0, "f16 -inf");
    TU_CHECK(isnan(st_f16_to_f32(0x7E00)) && isnan(st_f16_to_f32(0xFC01)), "f16 NaN");
    TU_CHECK(signbit(st_f16_to_f32(0x8000)) && st_f16_to_f32(0x8000) == 0, "f16 -0");
    /* every finite half against (-1)^s (e ? 1 + m/1024 : m/1024) 2^(max(e,1) - 15) */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) continue;
        double v = (e ? 1.0 + m / 1024.0 : m / 1024.0) * ldexp(1.0, (e ? (int)e : 1) - 15);
        if (h & 0x8000) v = -v;
        if ((double)st_f16_to_f32((uint16_t)h) != v) bad++;
    }
    TU_CHECK(bad == 0, "%d of the 63488 finite halves convert wrongly", bad);
}

/* a: F32 [2,3], b: BF16 [4], c: F16 [2,2], s: F32 scalar, z: F32 [0,5] (empty) */
static float a_data[6] = {1, -2, 3.5f, 4, 5, -6.25f};
static uint16_t b_data[4] = {0x3F80, 0xC000, 0x3E80, 0x7F80};
static uint16_t c_data[4] = {0x3C00, 0x0001, 0xC000, 0x7BFF};
static float s_data[1] = {42};

static void four(ht_tensor *t) {
    t[0] = (ht_tensor){"a", "F32", 2, {2, 3}, a_data, sizeof a_data};
    t[1] = (ht_tensor){"b", "BF16", 1, {4}, b_data, sizeof b_data};
    t[2] = (ht_tensor){"c.weight", "F16", 2, {2, 2}, c_data, sizeof c_data};
    t[3] = (ht_tensor){"s", "F32", 0, {0}, s_data, sizeof s_data};
    t[4] = (ht_tensor){"z", "F32", 2, {0, 5}, NULL, 0};
}

static void check_four(st_set *s, const char *what) {
    TU_CHECK(st_count(s) == 5, "%s: %d tensors", what, st_count(s));
    const st_tensor *a = st_find(s, "a"), *b = st_find(s, "b"), *c = st_find(s, "c.weight"),
                    *sc = st_find(s, "s"), *z = st_find(s, "z");
    TU_CHECK(a && b && c && sc && z, "%s: a tensor not found", what);
    TU_CHECK(!st_find(s, "missing") && !st_find(s, "__metadata__"), "%s: phantom tensor", what);
    if (!(a && b && c && sc && z)) return;
    float buf[8];
    TU_CHECK(a->dtype == ST_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3,
             "%s: a meta", what);
    st_read_f32(s, a, buf);
    TU_CHECK(memcmp(buf, a_data, sizeof a_data) == 0, "%s: a values", what);
    st_read_f32(s, b, buf);
    TU_CHECK(buf[0] == 1 && buf[1] == -2 && buf[2] == 0.25f && isinf(buf[3]),
             "%s: b values %g %g %g %g", what, buf[0], buf[1], buf[2], buf[3]);
    st_read_f32(s, c, buf);
    TU_CHECK(buf[0] == 1 && buf[1] == 5.960464477539063e-08f && buf[2] == -2 && buf[3] == 65504,
             "%s: c values", what);
    TU_CHECK(sc->ndim == 0 && st_numel(sc) == 1, "%s: scalar numel %llu", what,
             (unsigned long long)st_numel(sc));
    st_read_f32(s, sc, buf);
    TU_CHECK(buf[0] == 42, "%s: scalar value %g", what, buf[0]);
    TU_CHECK(st_numel(z) == 0, "%s: empty tensor", what);
}

static void test_single(void) {
    ht_tensor t[5];
    four(t);
    char p[4200];
    st_set *s;
    lmd_err e = {{0}};
    /* data order differs from header order */
    int order[5] = {2, 4, 0, 3, 1};
    snprintf(p, sizeof p, "%s/single", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/single/model.safetensors", dir);
    ht_write_st(p, t, 5, order);
    snprintf(p, sizeof p, "%s/single", dir);
    int rc = st_open_dir(&s, p, &e);
    TU_CHECK(rc == 0, "open single: %s", e.msg);
    if (!rc) {
        check_four(s, "single, data order != header order");
        TU_CHECK(st_total_bytes(s) == 24 + 8 + 8 + 4, "total bytes %llu",
                 (unsigned long long)st_total_bytes(s));
        st_close(s);
    }
    /* a header of plain tensors with no __metadata__, one of a known but unread dtype */
    int64_t iv[2] = {7, -1};
    snprintf(p, sizeof p, "%s/nometa.safetensors", dir);
    ht_write_raw_st(p, "{\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}  ", iv,
                    16);
    rc = st_open_file(&s, p, &e);
    TU_CHECK(rc == 0, "no __metadata__, I64 tensor: %s", e.msg);
    if (!rc) {
        const st_tensor *it = st_find(s, "i");
        TU_CHECK(it && it->dtype == ST_I64 && !st_dtype_readable(it->dtype) &&
                     strcmp(st_dtype_name(it->dtype), "I64") == 0,
                 "I64 recognised");
        st_close(s);
    }
}

static void test_sharded(void) {
    ht_tensor t[5];
    four(t);
    char d[4200], p[4400];
    snprintf(d, sizeof d, "%s/sharded", dir);
    mkdir(d, 0755);
    int o1[3] = {2, 0, 1}; /* shard 1: a, b, c.weight (data reordered) */
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", d);
    ht_write_st(p, t, 3, o1);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", d);
    ht_write_st(p, t + 3, 2, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    ht_write_text(
        p,
        "{\"metadata\": {\"total_size\": 44, \"format\": \"pt\"}, \"weight_map\": {"
        "\"a\": \"model-00001-of-00002.safetensors\", \"s\": \"model-00002-of-00002.safetensors\","
        "\"b\": \"model-00001-of-00002.safetensors\", \"c.weight\": "
        "\"model-00001-of-00002.safetensors\","
        "\"z\": \"model-00002-of-00002.safetensors\"}}");
    st_set *s;
    lmd_err e = {{0}};
    int rc = st_open_dir(&s, d, &e);
    TU_CHECK(rc == 0, "open sharded: %s", e.msg);
    if (!rc) {
        check_four(s, "sharded");
        const st_tensor *sc = st_find(s, "s"), *a = st_find(s, "a");
        TU_CHECK(sc && a && sc->file != a->file && strstr(st_file_path(s, sc->file), "00002-of"),
                 "shard of s");
        TU_CHECK(st_total_bytes(s) == 44, "total_size %llu", (unsigned long long)st_total_bytes(s));
        st_close(s);
    }
    /* the index names the wrong shard for a tensor */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    ht_write_text(p, "{\"weight_map\": {\"a\": \"model-00002-of-00002.safetensors\","
                     "\"b\": \"model-00001-of-00002.safetensors\","
                     "\"s\": \"model-00002-of-00002.safetensors\"}}");
    rc = st_open_dir(&s, d, &e);
    HT_EXPECT_ERR("index names the wrong shard", rc, &e, "model.safetensors.index.json", "\"a\"",
                  "model-00002-of-00002.safetensors", "stored in");
    /* a shard that does not exist */
    ht_write_text(p, "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\","
                     "\"s\": \"model-00003-of-00003.safetensors\"}}");
    rc = st_open_dir(&s, d, &e);
    HT_EXPECT_ERR("index names a missing shard", rc, &e, "model.safetensors.index.json",
                  "model-00003-of-00003.safetensors", "does not exist");
    /* a tensor the index maps that no shard holds */
    ht_write_text(p, "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\","
                     "\"q\": \"model-00002-of-00002.safetensors\"}}");
    rc = st_open_dir(&s, d, &e);
    HT_EXPECT_ERR("index names a tensor no shard holds", rc, &e, "model.safetensors.index.json",
                  "\"q\"", "does not hold it");
    ht_write_text(p, "{\"weight_map\": [1, 2]}");
    rc = st_open_dir(&s, d, &e);
    HT_EXPECT_ERR("index without weight_map object", rc, &e, "model.safetensors.index.json",
                  "weight_map");
    /* single file wins over the (now broken) index */
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    ht_write_st(p, t, 5, NULL);
    rc = st_open_dir(&s, d, &e);
    TU_CHECK(rc == 0, "model.safetensors wins over the index: %s", e.msg);
    if (!rc) st_close(s);
    /* neither */
    snprintf(p, sizeof p, "%s/empty", dir);
    mkdir(p, 0755);
    rc = st_open_dir(&s, p, &e);
    HT_EXPECT_ERR("directory without weights", rc, &e, "empty", "model.safetensors");
}

static void bad(const char *what, const char *header, size_t nbytes, ...) {
    char p[4200];
    snprintf(p, sizeof p, "%s/bad.safetensors", dir);
    static unsigned char zeros[256];
    ht_write_raw_st(p, header, zeros, nbytes);
    st_set *s;
    lmd_err e = {{0}};
    int rc = st_open_file(&s, p, &e);
    if (!rc) st_close(s);
    va_list ap;
    va_start(ap, nbytes);
    tu_checks++;
    const char *x, *missing = NULL;
    if (rc && !strstr(e.msg, "bad.safetensors")) missing = "bad.safetensors";
    while ((x = va_arg(ap, const char *)))
        if (!missing && !strstr(e.msg, x)) missing = x;
    va_end(ap);
    if (!rc || missing) {
        tu_failures++;
        fprintf(stderr, "FAIL %s: %s; message \"%s\" (lacks \"%s\")\n", what,
                rc ? "wrong message" : "accepted", e.msg, missing ? missing : "");
    } else {
        printf("ok   %-34s refused: %s\n", what, e.msg);
    }
}

static void test_bad(void) {
    char p[4200];
    lmd_err e = {{0}};
    st_set *s;
    /* truncated: a valid file missing its last bytes */
    ht_tensor t[5];
    four(t);
    snprintf(p, sizeof p, "%s/trunc.safetensors", dir);
    ht_write_st(p, t, 4, NULL);
    struct stat sb;
    stat(p, &sb);
    TU_CHECK(truncate(p, sb.st_size - 3) == 0, "truncate");
    int rc = st_open_file(&s, p, &e);
    HT_EXPECT_ERR("truncated file", rc, &e, "trunc.safetensors", "\"s\"", "beyond the data buffer");
    TU_CHECK(truncate(p, 5) == 0, "truncate");
    rc = st_open_file(&s, p, &e);
    HT_EXPECT_ERR("file shorter than 8 bytes", rc, &e, "trunc.safetensors", "too short");
    /* header length beyond the file */
    snprintf(p, sizeof p, "%s/hlen.safetensors", dir);
    ht_write_st_ex(p, t, 2, NULL, NULL, 1000);
    rc = st_open_file(&s, p, &e);
    HT_EXPECT_ERR("header length beyond file", rc, &e, "hlen.safetensors", "header length");

    bad("header not JSON", "{\"a\": {\"dtype\": \"F32\",", 0, "not valid JSON", NULL);
    bad("header a JSON array", "[1, 2, 3]", 0, "not a JSON object", NULL);
    bad("duplicate tensor name",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        8, "not valid JSON", "a", NULL);
    bad("offsets out of range",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", 16, "\"w\"",
        "[16, 32]", "beyond the data buffer", NULL);
    bad("overlapping tensors",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
        16, "\"w\"", "\"v\"", "overlap", NULL);
    bad("size != shape x dtype",
        "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,2],\"data_offsets\":[0,24]}}", 24, "\"w\"",
        "24 bytes", "BF16", "needs 12", NULL);
    bad("unknown dtype", "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
        "\"w\"", "unknown dtype \"Q4_K\"", NULL);
    bad("negative shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}",
        16, "\"w\"", "shape[0]", NULL);
    bad("shape overflow",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", 16,
        "\"w\"", "overflow", NULL);
    bad("end before begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
        "\"w\"", "end before begin", NULL);
    bad("data_offsets malformed", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
        4, "\"w\"", "data_offsets", NULL);
    bad("gap in the buffer", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
        "\"w\"", "belong to no tensor", NULL);
    bad("trailing bytes", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12,
        "belong to no tensor", NULL);
    bad("__metadata__ not an object", "{\"__metadata__\": 3}", 0, "__metadata__", NULL);
    bad("entry without dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "\"w\"",
        "dtype", NULL);
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Reading every tensor of a 32 MiB file through st_read_f32 keeps the mapping's pages out of
 * the resident set (a model bigger than RAM is streamed): RSS grows by the 4 MiB buffer only. */
static void test_streaming_rss(void) {
    enum { NT = 8, NE = 1 << 20 };
    float *data = malloc((size_t)NE * sizeof *data);
    for (int i = 0; i < NE; i++) data[i] = (float)i;
    ht_tensor t[NT];
    char names[NT][16];
    for (int i = 0; i < NT; i++) {
        snprintf(names[i], sizeof names[i], "w%d", i);
        t[i] = (ht_tensor){names[i], "F32", 1, {NE}, data, (size_t)NE * 4};
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/big.safetensors", dir);
    ht_write_st(p, t, NT, NULL);
    free(data);
    st_set *s;
    lmd_err e = {{0}};
    if (st_open_file(&s, p, &e)) {
        TU_CHECK(0, "open big: %s", e.msg);
        return;
    }
    float *buf = malloc((size_t)NE * sizeof *buf);
    memset(buf, 0, (size_t)NE * sizeof *buf);
    long before = rss_kb();
    int ok = 1;
    for (int i = 0; i < NT; i++) {
        st_read_f32(s, st_find(s, names[i]), buf);
        ok &= buf[NE - 1] == (float)(NE - 1);
    }
    long grown = rss_kb() - before;
    printf("streaming 32 MiB of tensors: RSS grew by %ld KiB (bound 8192)\n", grown);
    TU_CHECK(ok, "big tensor values");
    TU_CHECK(grown < 8192, "RSS grew by %ld KiB reading 32 MiB through the mapping", grown);
    free(buf);
    st_close(s);
    remove(p);

    /* a BF16 and an F16 tensor of 1M elements (the multi-threaded conversion path) */
    uint16_t *h = malloc((size_t)NE * 2);
    for (int i = 0; i < NE; i++) h[i] = (uint16_t)(i & 0x7BFF);
    ht_tensor hb[2] = {{"b", "BF16", 1, {NE}, h, (size_t)NE * 2},
                       {"f", "F16", 1, {NE}, h, (size_t)NE * 2}};
    ht_write_st(p, hb, 2, NULL);
    float *o = malloc((size_t)NE * sizeof *o);
    if (st_open_file(&s, p, &e) == 0) {
        int bad_b = 0, bad_f = 0;
        st_read_f32(s, st_find(s, "b"), o);
        for (int i = 0; i < NE; i++) bad_b += o[i] != st_bf16_to_f32(h[i]);
        st_read_f32(s, st_find(s, "f"), o);
        for (int i = 0; i < NE; i++) bad_f += o[i] != st_f16_to_f32(h[i]);
        TU_CHECK(bad_b == 0 && bad_f == 0, "1M-element conversion: %d bf16, %d f16 wrong", bad_b,
                 bad_f);
        st_close(s);
    } else {
        TU_CHECK(0, "open: %s", e.msg);
    }
    free(o);
    free(h);
    remove(p);
}

int main(void) {
    ht_scratch(dir, sizeof dir, "hub_safetensors");
    test_conversions();
    test_single();
    test_sharded();
    test_bad();
    test_streaming_rss();
    return tu_summary("test_hub_safetensors");
}
