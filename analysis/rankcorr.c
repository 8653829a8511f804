/* rankcorr.c — Spearman's rho and Kendall's tau-b with ties (see rankcorr.h). */
#include "rankcorr.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "util.h"

typedef struct {
    double v;
    size_t i;
} rc_pair;

/* Orders by value, then by original index so the sort is deterministic whatever qsort does
 * with equal keys (the ranks do not depend on it, but reproducibility is cheap here). */
static int rc_pair_cmp(const void *pa, const void *pb) {
    const rc_pair *a = pa, *b = pb;
    if (a->v < b->v) return -1;
    if (a->v > b->v) return 1;
    return (a->i > b->i) - (a->i < b->i);
}

// x is (n,), rank is (n,)
void lmd_rank_average(double *rank, const double *x, size_t n) {
    if (n == 0) return;
    rc_pair *p = lmd_calloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i].v = x[i];
        p[i].i = i;
    }
    qsort(p, n, sizeof *p, rc_pair_cmp);
    size_t start = 0;
    while (start < n) {
        size_t end = start + 1;
        while (end < n && p[end].v == p[start].v) end++;
        // positions start..end-1 (0-based) hold 1-based ranks start+1..end; their mean:
        double r = 0.5 * ((double)(start + 1) + (double)end);
        for (size_t k = start; k < end; k++) rank[p[k].i] = r;
        start = end;
    }
    free(p);
}

static int rc_has_nan(const double *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return 1;
    return 0;
}

// x, y are (n,)
double lmd_spearman(const double *x, const double *y, size_t n) {
    if (n < 2 || rc_has_nan(x, n) || rc_has_nan(y, n)) return NAN;
    double *rx = lmd_calloc(2 * n, sizeof *rx);
    double *ry = rx + n;
    lmd_rank_average(rx, x, n);
    lmd_rank_average(ry, y, n);
    double mx = 0.0, my = 0.0;
    for (size_t i = 0; i < n; i++) {
        mx += rx[i];
        my += ry[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dx = rx[i] - mx, dy = ry[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    free(rx);
    // A constant variable gets identical average ranks, so its deviations are exactly 0.
    if (sxx == 0.0 || syy == 0.0) return NAN;
    double r = sxy / sqrt(sxx * syy);
    // Rounding can push |r| a hair above 1 for perfectly monotone data.
    if (r > 1.0) r = 1.0;
    if (r < -1.0) r = -1.0;
    return r;
}

static int rc_sign(double a, double b) { return (a > b) - (a < b); }

// x, y are (n,)
double lmd_kendall_tau_b(const double *x, const double *y, size_t n) {
    if (n < 2 || rc_has_nan(x, n) || rc_has_nan(y, n)) return NAN;
    int64_t s = 0;     // n_c - n_d
    int64_t tie_x = 0; // n1: pairs tied in x
    int64_t tie_y = 0; // n2: pairs tied in y
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            int sx = rc_sign(x[i], x[j]);
            int sy = rc_sign(y[i], y[j]);
            s += sx * sy;
            tie_x += (sx == 0);
            tie_y += (sy == 0);
        }
    }
    int64_t n0 = (int64_t)n * (int64_t)(n - 1) / 2;
    if (n0 - tie_x == 0 || n0 - tie_y == 0) return NAN; // a constant variable
    double tau = (double)s / sqrt((double)(n0 - tie_x) * (double)(n0 - tie_y));
    if (tau > 1.0) tau = 1.0;
    if (tau < -1.0) tau = -1.0;
    return tau;
}
