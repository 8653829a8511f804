/* testutil.h — tiny test harness: counted checks and tolerance comparisons that print the
 * worst difference. A test program returns the number of failed checks. */
#ifndef LMDISP_TESTUTIL_H
#define LMDISP_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int tu_failures = 0;
static int tu_checks = 0;

#define TU_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        tu_checks++;                                                                               \
        if (!(cond)) {                                                                             \
            tu_failures++;                                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Compares n values: passes when |a-b| <= atol + rtol*|b| for all. Prints the worst
 * absolute difference (and where) either way; counts one check. */
static inline int tu_compare(const char *what, const float *a, const double *b, size_t n,
                             double atol, double rtol) {
    double worst = 0.0, worst_excess = -INFINITY;
    size_t worst_i = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        double lim = atol + rtol * fabs(b[i]);
        if (!(d <= lim)) bad++;
        if (d > worst || isnan(d)) {
            worst = d;
            worst_i = i;
        }
        if (d - lim > worst_excess || isnan(d)) worst_excess = d - lim;
    }
    tu_checks++;
    printf(
        "%-40s n=%-8zu worst |diff| = %.3e at %zu (got %.7g, want %.7g) atol=%.1e rtol=%.1e %s\n",
        what, n, worst, worst_i, n ? (double)a[worst_i] : 0.0, n ? b[worst_i] : 0.0, atol, rtol,
        bad ? "FAIL" : "ok");
    if (bad) tu_failures++;
    return bad ? 1 : 0;
}

/* The exit status for main: the failure count clamped to 1..255, since an exit status is taken
 * mod 256 and 256 failures must not read as success. */
static inline int tu_summary(const char *name) {
    printf("%s: %d checks, %d passed, %d failed\n", name, tu_checks, tu_checks - tu_failures,
           tu_failures);
    return tu_failures <= 0 ? 0 : tu_failures > 255 ? 255 : tu_failures;
}

#endif
