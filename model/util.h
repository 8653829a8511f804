/* util.h — error reporting, checked allocation and the seeded RNG shared by every module.
 * Errors on user input are returned in an lmd_err (message kept on the object, libyaml-style);
 * failures of the system (out of memory) abort with the call site. */
#ifndef LMDISP_UTIL_H
#define LMDISP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define LMD_ERR_LEN 1024

/* An error message set by a failing call; empty when nothing failed. */
typedef struct {
    char msg[LMD_ERR_LEN];
} lmd_err;

/* Sets e->msg from a printf format (e may be NULL) and returns -1, so callers can
 * `return lmd_errf(e, "...")`. */
int lmd_errf(lmd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message with more context: "context: old message". Returns -1. */
int lmd_err_prefix(lmd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation that aborts with the call site when the system refuses. Memory is zeroed. */
void *lmd_calloc_at(size_t n, size_t size, const char *file, int line);
#define lmd_calloc(n, size) lmd_calloc_at((n), (size), __FILE__, __LINE__)
/* 64-byte aligned, zeroed; free with free(). */
void *lmd_aligned_alloc_at(size_t bytes, const char *file, int line);
#define lmd_aligned_alloc(bytes) lmd_aligned_alloc_at((bytes), __FILE__, __LINE__)

/* Copy of s in checked memory (free with free()); NULL for NULL. */
char *lmd_strdup_at(const char *s, const char *file, int line);
#define lmd_strdup(s) lmd_strdup_at((s), __FILE__, __LINE__)

/* Formats a path into dst[0..n): returns 0, or -1 with "path too long" in err when the result
 * would not fit, so a truncated path is never used to open or create the wrong file. */
int lmd_path(char *dst, size_t n, lmd_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* snprintf into a fixed-size char array `buf` (an array, not a pointer: its sizeof is the
 * limit) where truncation must never happen: a result that does not fit prints "path too long"
 * with the start of the path and exits with status 2 (bad input), instead of going on with a
 * truncated path that would name another file. For paths whose parts were length-checked up
 * front (lmd_studydir_check_paths), so it only fires on a path nobody checked. */
#define lmd_pathf(buf, ...) lmd_pathf_at(__FILE__, __LINE__, (buf), sizeof(buf), __VA_ARGS__)
void lmd_pathf_at(const char *file, int line, char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Fatal error for programmer mistakes and broken invariants: prints file:line and aborts. */
void lmd_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define lmd_die(...) lmd_die_at(__FILE__, __LINE__, __VA_ARGS__)

/* ---- deterministic RNG: xoshiro256** seeded through splitmix64 ---- */
typedef struct {
    uint64_t s[4];
} lmd_rng;

/* Seeds a generator from (seed, stream): different streams give independent sequences, so
 * init, data order and dispersion subsets never share random numbers. */
void lmd_rng_seed(lmd_rng *r, uint64_t seed, uint64_t stream);
uint64_t lmd_rng_u64(lmd_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double lmd_rng_uniform(lmd_rng *r);
/* Uniform integer in [0, n), unbiased. */
uint64_t lmd_rng_below(lmd_rng *r, uint64_t n);
/* Standard normal (Box–Muller in double; one value per call, deterministic). */
double lmd_rng_normal(lmd_rng *r);

/* Well-known stream numbers. */
enum { LMD_STREAM_INIT = 1, LMD_STREAM_DATA = 2, LMD_STREAM_DISPERSION = 3, LMD_STREAM_CORPUS = 4 };

/* Wall clock in seconds (monotonic). */
double lmd_now(void);

/* mkdir -p: creates path and its parents (mode 0755). Returns 0 or -1 with a message. */
int lmd_mkdirs(const char *path, lmd_err *err);
#endif
