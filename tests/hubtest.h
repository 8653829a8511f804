/* hubtest.h — helpers of the hub/ tests: scratch directories, and tiny safetensors files and
 * config.json texts written by the test itself (data order chosen, headers corruptible). */
#ifndef LMDISP_HUBTEST_H
#define LMDISP_HUBTEST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "util.h"

/* A fresh, empty directory $LMDISP_TMP/<name> (or /tmp/...) in out. */
static inline void ht_scratch(char *out, size_t n, const char *name) {
    const char *base = getenv("LMDISP_TMP");
    snprintf(out, n, "%s/%s", base && *base ? base : "/tmp", name);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make %s\n", out);
        exit(1);
    }
}

static inline void ht_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static inline void ht_write_text(const char *path, const char *text) {
    ht_write_file(path, text, strlen(text));
}

/* One tensor to write: dtype tag as in the header, shape, raw little-endian bytes. */
typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} ht_tensor;

/* Writes a safetensors file: header entries in array order; data in the order `order` (a
 * permutation, NULL = array order); offsets computed to match unless `offsets` (2 per
 * tensor, header order) overrides them; header_len_add added to the stored header length. */
static inline void ht_write_st_ex(const char *path, const ht_tensor *t, int n, const int *order,
                                  const uint64_t *offsets, int64_t header_len_add) {
    uint64_t *beg = calloc((size_t)n + 1, sizeof *beg), *end = calloc((size_t)n + 1, sizeof *end);
    uint64_t pos = 0;
    for (int k = 0; k < n; k++) {
        int i = order ? order[k] : k;
        beg[i] = pos;
        pos += t[i].nbytes;
        end[i] = pos;
    }
    size_t cap = 4096 + (size_t)n * 256, len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "",
                                    (long long)t[i].shape[d]);
        uint64_t b = offsets ? offsets[2 * i] : beg[i], e = offsets ? offsets[2 * i + 1] : end[i];
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}",
                                (unsigned long long)b, (unsigned long long)e);
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' '; /* HF pads the header with spaces */
    FILE *f = fopen(path, "wb");
    uint64_t hl = (uint64_t)((int64_t)len + header_len_add);
    unsigned char l8[8];
    for (int i = 0; i < 8; i++) l8[i] = (unsigned char)(hl >> (8 * i));
    fwrite(l8, 1, 8, f);
    fwrite(h, 1, len, f);
    for (int k = 0; k < n; k++) {
        int i = order ? order[k] : k;
        if (t[i].nbytes) fwrite(t[i].data, 1, t[i].nbytes, f);
    }
    fclose(f);
    free(h);
    free(beg);
    free(end);
}

static inline void ht_write_st(const char *path, const ht_tensor *t, int n, const int *order) {
    ht_write_st_ex(path, t, n, order, NULL, 0);
}

/* A raw file: u64 length of header, header text, then nbytes of data. */
static inline void ht_write_raw_st(const char *path, const char *header, const void *data,
                                   size_t nbytes) {
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + nbytes + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (nbytes) memcpy(buf + 8 + hl, data, nbytes);
    ht_write_file(path, buf, 8 + hl + nbytes);
    free(buf);
}

/* Checks that a call failed and that its message holds every one of the NULL-ended strings. */
static inline void ht_expect_err_at(const char *file, int line, const char *what, int rc,
                                    const lmd_err *e, ...) {
    tu_checks++;
    int ok = rc != 0;
    va_list ap;
    va_start(ap, e);
    const char *s, *missing = NULL;
    while ((s = va_arg(ap, const char *)))
        if (!missing && !strstr(e->msg, s)) missing = s;
    va_end(ap);
    if (!ok || missing) {
        tu_failures++;
        fprintf(stderr, "FAIL %s:%d: %s: %s; message: \"%s\"%s%s%s\n", file, line, what,
                ok ? "wrong message" : "accepted", e->msg, missing ? " (lacks \"" : "",
                missing ? missing : "", missing ? "\")" : "");
    } else {
        printf("ok   %-34s refused: %s\n", what, e->msg);
    }
}
#define HT_EXPECT_ERR(what, rc, e, ...)                                                            \
    ht_expect_err_at(__FILE__, __LINE__, what, rc, e, __VA_ARGS__, NULL)

#endif
