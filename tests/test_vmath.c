/* test_vmath.c — the branch-free double functions of model/vmath.h (used by the dispersion
 * losses and the cross-entropy) against libm, on dense grids, in double ulps of the libm
 * value. libm's exp, acos and 1/sqrt are themselves within about half an ulp, so a bound of
 * k ulps here is a bound of about k + 1/2 ulps against the exact value. Prints the worst
 * error of each and where it occurs.
 *   exp_vec_d   [-708, 709] and [-10, 10]      <= 2 ulps; below -708 exactly 0; NaN -> NaN
 *   acos_vec    [-0.75, 0.75] (the clamped cosines)   <= 3 ulps
 *   rsqrt_vec   1 - c^2 for |c| <= 0.75 (its use)  <= 3 ulps; [1e-3, 1e3] <= 4 ulps
 *   sqrt_vec    [0.125, 0.5] (its use in acos_vec)  <= 3 ulps */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "vmath.h"

/* |a - b| in units of the spacing of doubles at b */
static double ulps(double a, double b) {
    if (a == b) return 0.0;
    return fabs(a - b) / (nextafter(fabs(b), INFINITY) - fabs(b));
}

typedef double (*fn1)(double);

static double ref_rsqrt(double v) { return 1.0 / sqrt(v); }
static double vec_exp(double x) { return exp_vec_d(x); }
static double vec_acos(double x) { return acos_vec(x); }
static double vec_rsqrt(double x) { return rsqrt_vec(x); }
static double vec_sqrt(double x) { return sqrt_vec(x); }

/* worst ulps of f against ref over n + 1 evenly spaced points of [lo, hi] (after map) */
static void check_grid(const char *what, fn1 f, fn1 ref, double lo, double hi, long n,
                       double (*map)(double), double limit) {
    double worst = 0.0, at = lo;
    for (long i = 0; i <= n; i++) {
        double x = lo + (hi - lo) * (double)i / (double)n;
        if (map) x = map(x);
        double u = ulps(f(x), ref(x));
        if (u > worst || isnan(u)) {
            worst = u;
            at = x;
        }
    }
    tu_checks++;
    int bad = !(worst <= limit);
    if (bad) tu_failures++;
    printf("%-36s %8ld points  worst %.2f ulps at x = %.17g  (limit %.0f) %s\n", what, n + 1, worst,
           at, limit, bad ? "FAIL" : "ok");
}

static double one_minus_sq(double c) { return 1.0 - c * c; }

int main(void) {
    const long N = 2000000;
    check_grid("exp_vec_d on [-708, 709]", vec_exp, exp, -708.0, 709.0, N, NULL, 2.0);
    check_grid("exp_vec_d on [-10, 10]", vec_exp, exp, -10.0, 10.0, N, NULL, 2.0);
    check_grid("acos_vec on [-0.75, 0.75]", vec_acos, acos, -0.75, 0.75, N, NULL, 3.0);
    check_grid("rsqrt_vec on 1 - c^2, |c| <= 0.75", vec_rsqrt, ref_rsqrt, -0.75, 0.75, N,
               one_minus_sq, 3.0);
    check_grid("rsqrt_vec on [1e-3, 1e3]", vec_rsqrt, ref_rsqrt, 1e-3, 1e3, N, NULL, 4.0);
    check_grid("sqrt_vec on [0.125, 0.5]", vec_sqrt, sqrt, 0.125, 0.5, N, NULL, 3.0);

    /* edges: below the range exp is exactly 0 (never a denormal); NaN propagates */
    TU_CHECK(exp_vec_d(-708.5) == 0.0 && exp_vec_d(-1e300) == 0.0, "exp below -708 must be 0");
    TU_CHECK(exp_vec_d(0.0) == 1.0, "exp(0) = %.17g", exp_vec_d(0.0));
    TU_CHECK(isnan(exp_vec_d(NAN)), "exp(NaN) must be NaN");
    TU_CHECK(isnan(acos_vec(NAN)), "acos(NaN) must be NaN");
    TU_CHECK(acos_vec(0.0) == acos(0.0), "acos(0) = %.17g", acos_vec(0.0));
    return tu_summary("test_vmath");
}
