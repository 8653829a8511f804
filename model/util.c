
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int lmd_errf(lmd_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int lmd_err_prefix(lmd_err *e, const char *fmt, ...) {
    if (!e) return -1;
    char prefix[LMD_ERR_LEN], old[LMD_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%.400s: %.600s", prefix, old);
    return -1;
}

char *lmd_strdup_at(const char *s, const char *file, int line) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = lmd_calloc_at(n + 1, 1, file, line);
    memcpy(d, s, n);
    return d;
}

int lmd_path(char *dst, size_t n, lmd_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(dst, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n) {
        lmd_errf(err, "path too long (%d bytes, at most %zu): %.200s...", k, n ? n - 1 : 0,
                 n ? dst : "");
        if (n) dst[0] = '\0'; /* never leave a truncated path behind */
        return -1;
    }
    return 0;
}

void lmd_pathf_at(const char *file, int line, char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < n) return;
    const char *base = strrchr(file, '/');
    fprintf(stderr, "lmdisp: path too long (%d bytes, at most %zu): %.200s... (%s:%d)\n", k,
            n ? n - 1 : 0, n ? buf : "", base ? base + 1 : file, line);
    exit(2);
}

void *lmd_calloc_at(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "lmdisp: %s:%d: out of memory allocating %zu x %zu bytes\n", file, line, n,
                size);
        abort();
    }
    return p;
}

void *lmd_aligned_alloc_at(size_t bytes, const char *file, int line) {
    void *p = NULL;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0 || !p) {
        fprintf(stderr, "lmdisp: %s:%d: out of memory allocating %zu bytes\n", file, line, bytes);
        abort();
    }
    memset(p, 0, rounded);
    return p;
}

void lmd_die_at(const char *file, int line, const char *fmt, ...) {
    fprintf(stderr, "lmdisp: internal error at %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lmd_rng_seed(lmd_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x632be59bd9b4e019ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lmd_rng_u64(lmd_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double lmd_rng_uniform(lmd_rng *r) { return (double)(lmd_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t lmd_rng_below(lmd_rng *r, uint64_t n) {
    if (n == 0) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = lmd_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double lmd_rng_normal(lmd_rng *r) {
    double u1 = lmd_rng_uniform(r), u2 = lmd_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double lmd_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lmd_mkdirs(const char *path, lmd_err *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return lmd_errf(err, "invalid directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return lmd_errf(err, "cannot create directory %s: %s", buf, strerror(errno));
            struct stat st;
            if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                return lmd_errf(err, "%s exists and is not a directory", buf);
            buf[i] = c;
        }
    }
    return 0;
}
