/* vmath.h — branch-free double-precision exp, acos and 1/sqrt, and a float exp, for vectorized
 * loops, shared by the dispersion losses, the cross-entropy, GELU and the softmaxes. Selects only, so loops calling them vectorize;
 * they depend on nothing but IEEE double arithmetic and fma (exactly rounded), so they give
 * the same bits on every machine and for every thread count. fma is one instruction with
 * -march=native (LMDISP_NATIVE, the default) on FMA hardware; a build for a target without
 * FMA calls libm's fma instead: same bits, but the loops no longer vectorize and the
 * dispersion pair terms run several times slower. */
#ifndef LMDISP_VMATH_H
#define LMDISP_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Always inlined: a call left in a loop keeps it from vectorizing, and GCC's -O2 inliner
 * stops inlining these (they are large) once a file calls them from a few loops. */
#if defined(__GNUC__)
#define VMATH_FN static inline __attribute__((always_inline))
#else
#define VMATH_FN static inline
#endif

VMATH_FN double bits_to_double(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}
VMATH_FN uint64_t double_to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* exp(x); x below -708 (results under 3.3e-308) gives 0 instead of a denormal, which is
 * harmless where it is used: terms of a sum that holds a term of at least 1 (forward), and
 * softmax probabilities that small (backward). Against libm exp on 2e7 points of [-708, 0]
 * and of [-10, 10]: worst 1 double ulp (tests/test_vmath.c checks it on 2e6 points of each). */
VMATH_FN double exp_vec_d(double x) {
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
    /* t = 1.5*2^52 + k with k = round(x / ln 2): the low bits of t hold k */
    double t = fma(xc, 1.44269504088896340736, shifter);
    double k = t - shifter;
    /* x = k ln2 + r, |r| <= ln2/2; ln2 split (fdlibm's) so that k * hi is exact */
    double r = fma(-k, 6.93147180369123816490e-01, xc);
    r = fma(-k, 1.90821492927058770002e-10, r);
    /* Taylor to r^13: truncation below 5e-18 relative on |r| <= 0.347 */
    double p = 1.0 / 6227020800.0;
    p = fma(p, r, 1.0 / 479001600.0);
    p = fma(p, r, 1.0 / 39916800.0);
    p = fma(p, r, 1.0 / 3628800.0);
    p = fma(p, r, 1.0 / 362880.0);
    p = fma(p, r, 1.0 / 40320.0);
    p = fma(p, r, 1.0 / 5040.0);
    p = fma(p, r, 1.0 / 720.0);
    p = fma(p, r, 1.0 / 120.0);
    p = fma(p, r, 1.0 / 24.0);
    p = fma(p, r, 1.0 / 6.0);
    p = fma(p, r, 0.5);
    p = fma(p, r, 1.0);
    p = fma(p, r, 1.0);
    /* 2^k: k + 1023 in [2, 2046] lands in the exponent field; higher bits of t shift out */
    double scale = bits_to_double((double_to_bits(t) + 1023u) << 52);
    double e = p * scale;
    return x < -708.0 ? 0.0 : e;
}

/* ------------------------------------------------------------------------------------------
 * acos and exp for vectorized pair loops
 *
 * libm's acos/exp are scalar calls and were ~45 ns per pair, most of the dispersion phase.
 * These are branch-free (selects only), so loops calling them vectorize; both work in double
 * and stay within a few double ulps of libm (worst errors measured over dense grids: see the
 * notes at each), propagate NaN, and depend on nothing but IEEE double arithmetic and fma
 * (exactly rounded, one instruction with -march=native on FMA hardware; the strict C11 build
 * contracts nothing by itself), so they give the same bits on every machine and for every
 * thread count. */

/* asin(a) = a + a s P(s), s = a^2 <= 1/4: P is a Chebyshev fit (degree 11 in s) of
 * (asin(sqrt s)/sqrt s - 1)/s on [0, 1/4], max error 2.3e-16, i.e. ~6e-17 relative in asin. */
VMATH_FN double asin_poly(double a) {
    double s = a * a;
    double p = 2.81692180608814138e-02;
    p = fma(p, s, -1.07490503396978077e-02);
    p = fma(p, s, 1.60355143491488217e-02);
    p = fma(p, s, 7.80294947735331746e-03);
    p = fma(p, s, 1.18754943826369225e-02);
    p = fma(p, s, 1.39296529023266325e-02);
    p = fma(p, s, 1.73552599557863230e-02);
    p = fma(p, s, 2.23720476317445099e-02);
    p = fma(p, s, 3.03819473670984795e-02);
    p = fma(p, s, 4.46428571034236457e-02);
    p = fma(p, s, 7.50000000002076367e-02);
    p = fma(p, s, 1.66666666666666491e-01);
    return fma(a * s, p, a);
}

/* 1/sqrt(v) for normal v > 0 without libm: sqrt() is a call with an errno branch unless
 * -fno-math-errno, which keeps loops from vectorizing. Initial guess from the exponent bits
 * (relative error <= 3.5%), then four Newton steps (3.5e-2 -> 1.8e-3 -> 5e-6 -> 4e-11 ->
 * rounding). NaN gives NaN; v <= 0 is never passed here. Against 1/sqrt on v = 1 - c^2,
 * |c| <= 0.75: worst 2 double ulps (tests/test_vmath.c). */
VMATH_FN double rsqrt_vec(double v) {
    double y = bits_to_double(0x5FE6EB50C7B537A9u - (double_to_bits(v) >> 1));
    const double hv = 0.5 * v;
    y = y * fma(-hv * y, y, 1.5);
    y = y * fma(-hv * y, y, 1.5);
    y = y * fma(-hv * y, y, 1.5);
    y = y * fma(-hv * y, y, 1.5);
    return y;
}

/* sqrt(v) = v / sqrt(v), with one correction step s + (v - s^2)/(2 s) in its rsqrt form. */
VMATH_FN double sqrt_vec(double v) {
    double y = rsqrt_vec(v), s = v * y;
    return fma(0.5 * y, fma(-s, s, v), s);
}

/* acos(x) for |x| <= 0.75 (the clamped cosines; sqrt_vec needs 1 - |x| > 0 normal). |x| <= 1/2:
 * pi/2 - asin(x). |x| > 1/2: acos(|x|) = 2 asin(y) with
 * y = sqrt((1-|x|)/2) <= 1/2 (1 - |x| is exact there), and acos(-|x|) = pi - acos(|x|). The
 * argument is selected first, so one polynomial serves both ranges. Against libm acos on
 * evenly spaced x in [-0.75, 0.75]: worst 1 double ulp (tests/test_vmath.c). */
VMATH_FN double acos_vec(double x) {
    const double pi = 3.14159265358979323846, half_pi = 1.57079632679489661923;
    double ax = fabs(x);
    int big = ax > 0.5;
    double v = 0.5 - 0.5 * ax;
    double y = sqrt_vec(v); /* v >= 0.125 on the domain; only used when v < 0.25 */
    double q = asin_poly(big ? y : ax);
    double small = half_pi - copysign(q, x);
    double large = x > 0.0 ? 2.0 * q : pi - 2.0 * q;
    return big ? large : small;
}

/* ------------------------------------------------------------------------------------------
 * exp for vectorized loops
 *
 * libm's expf is a scalar call, and GELU through libm's tanhf was a third of a training step.
 * exp_vec is branch-free (selects only), so loops calling it vectorize; it is within a few
 * float ulps of the exact value (tests/test_gpt_grad.c checks GELU and its derivative against
 * the formula in double), propagates NaN, and depends on nothing but IEEE float arithmetic and
 * fmaf, so it gives the same bits on every machine.
 * ------------------------------------------------------------------------------------------ */

VMATH_FN float bits_to_float(int32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* exp(x); x below -87 gives e^-87 ~ 1.65e-38 (the smallest normal float is 1.18e-38: no
 * denormal ever comes out, which would cost a microcode assist per element on x86) instead of
 * a denormal or 0 (harmless where it is used: softmax terms that small vanish next to the row
 * maximum's 1, and callers that need exact zeros test the argument). fmaf is exactly rounded
 * everywhere (one instruction with -march=native on FMA hardware), so the result is the same on
 * every machine. */
VMATH_FN float exp_vec(float x) {
    float xc = x < -87.0f ? -87.0f : (x > 88.3f ? 88.3f : x);
    float kx = xc == xc ? xc : 0.0f; /* NaN: keep the integer conversion defined */
    /* k = round(x / ln 2) by the 1.5 * 2^23 trick; x = k ln2 + r with |r| <= ln2 / 2 */
    float k = fmaf(kx, 1.44269504f, 12582912.0f) - 12582912.0f;
    float r = fmaf(k, -0.693359375f, xc); /* ln2 split: k * hi is exact */
    r = fmaf(k, 2.12194440e-4f, r);
    /* Taylor to r^7: truncation below 6e-9 relative on |r| <= 0.347 */
    float p = fmaf(r, 1.98412698e-4f, 1.38888889e-3f);
    p = fmaf(p, r, 8.33333333e-3f);
    p = fmaf(p, r, 4.16666667e-2f);
    p = fmaf(p, r, 1.66666667e-1f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    return p * bits_to_float(((int32_t)k + 127) << 23);
}

#endif
