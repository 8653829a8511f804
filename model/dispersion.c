/* dispersion.c — the four dispersion losses of DESIGN.md section 3 and their analytic
 * gradients. Every variant is a function of a Gram matrix K = Y Y^T of some per-token
 * transform Y of z (unit rows, standardized rows, centered rows), so forward and backward
 * share one shape:
 *
 *   Y = row_transform(z)            (L,F)
 *   K = Y Y^T                       (L,L)   cblas_ssyrk, upper triangle
 *   loss = f(K)                     elementwise over pairs, sums in double
 *   M = dloss/dK + (dloss/dK)^T     (L,L)   symmetric, filled in full
 *   dY = M Y                        (L,F)   cblas_sgemm
 *   dz += scale * row_transform'(dY)
 *
 * Pairs are visited as i < j and counted twice: every loss is symmetric in (i, j), so this
 * halves the transcendental work and makes M exactly symmetric. */
#include "dispersion.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "vmath.h"

/* Strict C11 has no M_PI; the build defines _DEFAULT_SOURCE, but do not rely on it. */
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Constants fixed by DESIGN.md section 3. */
#define DISP_EPS 1e-2       /* norm epsilon of angular_spread and the logsumexp offset */
#define DISP_CLAMP_T 0.25   /* cosine clamp to [-1+t, 1-t] */
#define DISP_MARGIN 0.5     /* hinge margin of orthogonalization */
#define DISP_L2_MEAN_SQ 0.1 /* weight of mean(z^2) in l2_repel */

static const char *const variant_names[] = {"off", "angular_spread", "decorrelation", "l2_repel",
                                            "orthogonalization"};
static const char *const location_names[] = {"all", "last"};
#define N_VARIANTS ((int)(sizeof variant_names / sizeof variant_names[0]))
#define N_LOCATIONS ((int)(sizeof location_names / sizeof location_names[0]))

lmd_disp_opts lmd_disp_default(void) {
    lmd_disp_opts o;
    o.variant = DISP_OFF;
    o.coeff = 0.1;
    o.location = DISP_LOC_ALL;
    o.tau_cos = 1.0;
    o.tau_l2 = 1.0;
    o.max_tokens = 256;
    return o;
}

int lmd_disp_parse_variant(const char *s, lmd_disp_variant *v, lmd_err *err) {
    for (int i = 0; s && i < N_VARIANTS; i++) {
        if (strcmp(s, variant_names[i]) == 0) {
            *v = (lmd_disp_variant)i;
            return 0;
        }
    }
    return lmd_errf(err,
                    "unknown dispersion variant '%s' (valid: off, angular_spread, decorrelation, "
                    "l2_repel, orthogonalization)",
                    s ? s : "(null)");
}

const char *lmd_disp_variant_name(lmd_disp_variant v) {
    return ((int)v >= 0 && (int)v < N_VARIANTS) ? variant_names[v] : "invalid";
}

int lmd_disp_parse_location(const char *s, lmd_disp_location *loc, lmd_err *err) {
    for (int i = 0; s && i < N_LOCATIONS; i++) {
        if (strcmp(s, location_names[i]) == 0) {
            *loc = (lmd_disp_location)i;
            return 0;
        }
    }
    return lmd_errf(err, "unknown dispersion location '%s' (valid: all, last)", s ? s : "(null)");
}

const char *lmd_disp_location_name(lmd_disp_location loc) {
    return ((int)loc >= 0 && (int)loc < N_LOCATIONS) ? location_names[loc] : "invalid";
}

int lmd_disp_validate(const lmd_disp_opts *o, lmd_err *err) {
    if ((int)o->variant < 0 || (int)o->variant >= N_VARIANTS)
        return lmd_errf(err,
                        "dispersion variant %d is out of range (valid: off, angular_spread, "
                        "decorrelation, l2_repel, orthogonalization)",
                        (int)o->variant);
    if ((int)o->location < 0 || (int)o->location >= N_LOCATIONS)
        return lmd_errf(err, "dispersion location %d is out of range (valid: all, last)",
                        (int)o->location);
    /* `!(x >= 0)` also rejects NaN. */
    if (!(o->coeff >= 0.0) || isinf(o->coeff))
        return lmd_errf(err, "dispersion coeff must be a finite number >= 0 (got %g)", o->coeff);
    /* tau divides the distances, so 0 is as invalid as a negative value. */
    if (!(o->tau_cos > 0.0) || isinf(o->tau_cos))
        return lmd_errf(err, "dispersion tau_cos must be a finite number > 0 (got %g)", o->tau_cos);
    if (!(o->tau_l2 > 0.0) || isinf(o->tau_l2))
        return lmd_errf(err, "dispersion tau_l2 must be a finite number > 0 (got %g)", o->tau_l2);
    if (o->max_tokens < 2)
        return lmd_errf(err,
                        "dispersion max_tokens must be >= 2 (got %d): the losses compare pairs "
                        "of distinct tokens",
                        o->max_tokens);
    return 0;
}

/* Scratch layout of lmd_disp_seq: Y (L,F) | dY (L,F) | K (L,L) | M (L,L) | four rows of L
 * doubles (plus 2 floats of slack to align them to 8 bytes whatever the caller's alignment). */
size_t lmd_disp_work_floats(int L, int F) {
    return 2 * (size_t)L * (size_t)F + 2 * (size_t)L * (size_t)L + 8 * (size_t)L + 2;
}

/* The rows of doubles at the end of the scratch: work_row(...) + k * L is row k (0..3). */
static double *work_row(float *work, int L, int F) {
    uintptr_t p = (uintptr_t)(work + 2 * (size_t)L * (size_t)F + 2 * (size_t)L * (size_t)L);
    return (double *)((p + 7u) & ~(uintptr_t)7u);
}

/* sum_k a[k] b[k] in double, in 4 x LANES fixed lanes (four independent vector accumulators,
 * so the adds do not wait on each other's latency), added in a fixed tree */
static double dot_lanes(const float *a, const float *b, int n) {
    enum { W = 4 * LANES };
    double acc[W] = {0};
    int k = 0;
    for (; k + W <= n; k += W)
        for (int l = 0; l < W; l++) acc[l] += (double)a[k + l] * b[k + l];
    for (int l = 0; k < n; k++, l++) acc[l] += (double)a[k] * b[k];
    for (int l = 0; l < LANES; l++)
        acc[l] = (acc[l] + acc[l + LANES]) + (acc[l + 2 * LANES] + acc[l + 3 * LANES]);
    return lanes_total(acc);
}

/* ---------------------------------------------------------------------------------------
 * Row transforms and their backward passes. z, y, dy, dz are (L,F). */

/* y_i = z_i / (||z_i|| + eps); norm[i] = ||z_i|| when norm != NULL (for the backward) */
static void unit_rows_forward(float *y, const float *z, int L, int F, double *norm) {
    for (int i = 0; i < L; i++) {
        const float *zi = z + (size_t)i * F;
        float *yi = y + (size_t)i * F;
        double n = sqrt(dot_lanes(zi, zi, F));
        double inv = 1.0 / (n + DISP_EPS);
        if (norm) norm[i] = n;
#pragma omp simd
        for (int k = 0; k < F; k++) yi[k] = (float)(zi[k] * inv);
    }
}

/* d/dz of z/(n+eps), n = ||z|| (norm[i], from the forward):  dz = g/s - (z.g) z / (n s^2),
 * s = n + eps. At n = 0 the norm's gradient is taken as 0, as torch does. */
static void unit_rows_backward(float *dz, const float *dy, const float *z, int L, int F,
                               const double *norm, double scale) {
    for (int i = 0; i < L; i++) {
        const float *zi = z + (size_t)i * F, *gi = dy + (size_t)i * F;
        float *dzi = dz + (size_t)i * F;
        double zg = dot_lanes(zi, gi, F);
        double n = norm[i], s = n + DISP_EPS;
        double a = scale / s;
        double b = n > 0.0 ? scale * zg / (n * s * s) : 0.0;
        /* dz never overlaps dy or z (the caller's contract), so the loop may vectorize */
#pragma omp simd
        for (int k = 0; k < F; k++) dzi[k] += (float)(a * gi[k] - b * zi[k]);
    }
}

/* y_i = (z_i - mean(z_i)) / std(z_i), unbiased std (F-1). A constant row gives NaN, as the
 * PyTorch reference does; hidden states are never constant in practice. */
static void row_stats(const float *zi, int F, double *mu, double *sd) {
    double s = 0.0;
    for (int k = 0; k < F; k++) s += zi[k];
    double m = s / F, ss = 0.0;
    for (int k = 0; k < F; k++) ss += ((double)zi[k] - m) * ((double)zi[k] - m);
    *mu = m;
    *sd = sqrt(ss / (F - 1));
}

static void standardize_rows_forward(float *y, const float *z, int L, int F) {
    for (int i = 0; i < L; i++) {
        const float *zi = z + (size_t)i * F;
        float *yi = y + (size_t)i * F;
        double mu, sd;
        row_stats(zi, F, &mu, &sd);
        for (int k = 0; k < F; k++) yi[k] = (float)(((double)zi[k] - mu) / sd);
    }
}

/* y = (z - mu)/sd:  dz = (g - mean(g) - y (g.y)/(F-1)) / sd. */
static void standardize_rows_backward(float *dz, const float *dy, const float *z, int L, int F,
                                      double scale) {
    for (int i = 0; i < L; i++) {
        const float *zi = z + (size_t)i * F, *gi = dy + (size_t)i * F;
        float *dzi = dz + (size_t)i * F;
        double mu, sd, sg = 0.0, sgy = 0.0;
        row_stats(zi, F, &mu, &sd);
        for (int k = 0; k < F; k++) {
            sg += gi[k];
            sgy += (double)gi[k] * (((double)zi[k] - mu) / sd);
        }
        double mg = sg / F, c = sgy / (F - 1);
        for (int k = 0; k < F; k++) {
            double yk = ((double)zi[k] - mu) / sd;
            dzi[k] += (float)(scale * (gi[k] - mg - yk * c) / sd);
        }
    }
}

/* y_i = z_i - mean over tokens. Pairwise distances do not change, but hidden states that
 * share a large common component (condensation) lose much less precision in
 * ||y_i||^2 + ||y_j||^2 - 2 y_i.y_j. */
static void center_tokens(float *y, const float *z, int L, int F) {
    for (int k = 0; k < F; k++) {
        double s = 0.0;
        for (int i = 0; i < L; i++) s += z[(size_t)i * F + k];
        float m = (float)(s / L);
        for (int i = 0; i < L; i++) y[(size_t)i * F + k] = z[(size_t)i * F + k] - m;
    }
}

/* K (L,L) upper triangle = alpha Y Y^T, Y (L,F). */
static void gram_upper(float *K, const float *Y, int L, int F, float alpha) {
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, L, F, alpha, Y, F, 0.0f, K, L);
}

/* dY (L,F) = M Y with M (L,L) symmetric and filled in full: the backward of K = Y Y^T when M
 * holds dloss/dK + (dloss/dK)^T. */
static void gram_backward(float *dY, const float *M, const float *Y, int L, int F) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, F, L, 1.0f, M, L, Y, F, 0.0f, dY, F);
}

/* As gram_backward, with only the upper triangle of M (diagonal included) filled: ssymm reads
 * that triangle alone, so the lower one need not be mirrored (a strided copy of L^2/2 floats
 * that cost as much as all the pair arithmetic of a row). */
static void gram_backward_upper(float *dY, const float *M, const float *Y, int L, int F) {
    cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, L, F, 1.0f, M, L, Y, F, 0.0f, dY, F);
}

/* Running logsumexp in one pass, so each term is computed once in double. */
typedef struct {
    double m, s;
} lse_acc;
static inline void lse_add(lse_acc *a, double x, double weight) {
    if (x > a->m) {
        a->s = a->s * exp(a->m - x) + weight;
        a->m = x;
    } else {
        a->s += weight * exp(x - a->m);
    }
}
static inline double lse_value(const lse_acc *a) { return a->m + log(a->s); }

/* ---------------------------------------------------------------------------------------
 * The variants. z, dz (L,F); work as lmd_disp_work_floats(L,F). */

/* The pair loops of one row of angular_seq (restrict pointers: the rows never overlap). Each
 * vectorizes: the vector functions they call are always inlined (model/vmath.h). */

/* c~ = clamp(c, lo, hi) in double. Widened in a loop of its own: GCC sinks the float->double
 * conversion into the unclamped arm of the selects, and the conditional conversion keeps the
 * loop from vectorizing. */
static void clamp_row(double *restrict ct, const float *restrict c, int n, double lo, double hi) {
#pragma omp simd
    for (int j = 0; j < n; j++) ct[j] = c[j];
#pragma omp simd
    for (int j = 0; j < n; j++) {
        double x = ct[j];
        ct[j] = x < lo ? lo : (x > hi ? hi : x);
    }
}

/* D = arccos(c~)/pi in place; with S, also S = 1/sqrt(1 - c~^2) (= -pi dD/dc~) and returns the
 * least D (a NaN D is passed over here; it makes the caller's sum NaN); without S, also Df =
 * (float)D */
static double acos_row(double *restrict D, double *restrict S, float *restrict Df, int n) {
    const double inv_pi = 0.318309886183790671538;
    double dmin = INFINITY;
    if (S) {
#pragma omp simd reduction(min : dmin)
        for (int j = 0; j < n; j++) {
            double ct = D[j];
            double d = acos_vec(ct) * inv_pi;
            S[j] = rsqrt_vec(fma(-ct, ct, 1.0));
            D[j] = d;
            dmin = d < dmin ? d : dmin;
        }
    } else {
#pragma omp simd
        for (int j = 0; j < n; j++) {
            double d = acos_vec(D[j]) * inv_pi;
            D[j] = d;
            Df[j] = (float)d;
        }
    }
    return dmin;
}

/* e = exp(-D/tau - m) in place, and G = (float)(e S) */
static void softmax_row(double *restrict D, const double *restrict S, float *restrict G, int n,
                        double inv_tau, double m) {
#pragma omp simd
    for (int j = 0; j < n; j++) {
        double e = exp_vec_d(fma(-D[j], inv_tau, -m));
        D[j] = e;
        G[j] = (float)(e * S[j]);
    }
}

/* angular_spread (hinge = 0) and orthogonalization (hinge = 1): both on D = arccos(c~)/pi of
 * the cosines of eps-normalized rows. Row by row (pairs i < j): D in double into a row buffer,
 * then the row's terms; rows are combined in order i = 0..L-2. Every loop over j is
 * branch-free and vectorizes.
 *   angular_spread: the row's logsumexp of l = -D/tau from its own maximum m_i; the forward
 *     also keeps, in the upper triangle of M, G_ij = e^(l_ij - m_i) * (-dD/dc_ij) * pi, so
 *     that the backward is one scale per row (no exp or sqrt per pair twice).
 *   orthogonalization: D as a float in the upper triangle of M, read back by the backward. */
static double angular_seq(const float *z, int L, int F, double tau, int hinge, float *dz,
                          double scale, float *work) {
    const size_t LF = (size_t)L * F;
    float *Y = work, *dY = work + LF, *K = work + 2 * LF, *M = K + (size_t)L * L;
    double *Drow = work_row(work, L, F), *Srow = Drow + L, *mrow = Drow + 2 * L,
           *norm = Drow + 3 * L;
    const double npairs = (double)L * (L - 1);
    const double inv_pi = 0.318309886183790671538, inv_tau = 1.0 / tau;
    const double lo = -1.0 + DISP_CLAMP_T, hi = 1.0 - DISP_CLAMP_T;

    unit_rows_forward(Y, z, L, F, dz ? norm : NULL);
    gram_upper(K, Y, L, F, 1.0f);

    /* Running combination of the row logsumexps of l = -D/tau: total = m * sum exp(. - m). */
    double m_all = -INFINITY, s_all = 0.0, hsum = 0.0;
    for (int i = 0; i + 1 < L; i++) {
        const float *Ki = K + (size_t)i * L + i + 1;
        float *Mi = M + (size_t)i * L + i + 1;
        const int n = L - 1 - i;
        clamp_row(Drow, Ki, n, lo, hi);
        double acc[LANES] = {0};
        int j = 0;
        if (hinge) {
            acos_row(Drow, NULL, Mi, n);
            for (; j + LANES <= n; j += LANES)
                for (int l = 0; l < LANES; l++) {
                    double h = DISP_MARGIN - Drow[j + l];
                    h = !(h <= 0.0) ? h : 0.0; /* max(0, h) keeping NaN */
                    acc[l] += 2.0 * h * h;
                }
            for (int l = 0; j < n; j++, l++) {
                double h = DISP_MARGIN - Drow[j];
                h = !(h <= 0.0) ? h : 0.0; /* max(0, h) keeping NaN */
                acc[l] += 2.0 * h * h;
            }
            hsum += lanes_total(acc);
            continue;
        }
        /* D, and 1/sqrt(1 - c~^2) = -pi dD/dc at the clamped value (straight-through: finite,
         * never 0); max_j l_ij = -min_j D_ij / tau */
        const double mi = -acos_row(Drow, Srow, NULL, n) * inv_tau;
        mrow[i] = mi;
        softmax_row(Drow, Srow, Mi, n, inv_tau, mi);
        for (; j + LANES <= n; j += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += Drow[j + l];
        for (int l = 0; j < n; j++, l++) acc[l] += Drow[j];
        double si = lanes_total(acc);
        if (mi > m_all) {
            s_all = s_all * exp(m_all - mi) + si;
            m_all = mi;
        } else {
            s_all += si * exp(mi - m_all);
        }
    }
    /* loss = logsumexp_{i!=j}(l_ij + eps) - log(L(L-1)); the eps shifts every term equally.
     * Each pair i < j stands for (i,j) and (j,i): weight 2. */
    double lse = hinge ? 0.0 : m_all + log(2.0 * s_all);
    double loss = hinge ? hsum / npairs : lse + DISP_EPS - log(npairs);
    if (!dz) return loss;

    /* M_ij = 2 dloss/dc_ij (c_ij and c_ji are the same entry of K, counted twice), with
     * dD/dc = -1/(pi sqrt(1 - c~^2)) taken at the clamped value:
     *   angular:  dloss/dc_ij = p_ij * (-1/tau) * dD/dc,  p = softmax of l over i != j
     *             = G_ij * e^(m_i - lse) / (tau pi)
     *   orthog.:  dloss/dc_ij = -2 max(0, margin - D_ij) / (L(L-1)) * dD/dc
     * What the forward kept in M's upper triangle is overwritten. */
    const double hfac = 2.0 / npairs;
    for (int i = 0; i < L; i++) {
        M[(size_t)i * L + i] = 0.0f;
        const float *Ki = K + (size_t)i * L + i + 1;
        float *Mi = M + (size_t)i * L + i + 1;
        const int n = L - 1 - i;
        if (n == 0) break;
        if (hinge) {
            clamp_row(Drow, Ki, n, lo, hi); /* as in the forward */
#pragma omp simd
            for (int j = 0; j < n; j++) {
                double ct = Drow[j];
                double h = DISP_MARGIN - (double)Mi[j];
                h = !(h <= 0.0) ? h : 0.0; /* max(0, h) keeping NaN */
                double g = hfac * h * inv_pi * rsqrt_vec(1.0 - ct * ct);
                Mi[j] = (float)(2.0 * g);
            }
        } else {
            const double f = 2.0 * exp(mrow[i] - lse) * inv_tau * inv_pi;
#pragma omp simd
            for (int j = 0; j < n; j++) Mi[j] = (float)(Mi[j] * f);
        }
    }
    gram_backward_upper(dY, M, Y, L, F);
    unit_rows_backward(dz, dY, z, L, F, norm, scale);
    return loss;
}

/* decorrelation: Cov = Y Y^T/(F-1) of standardized rows; loss = mean_{i!=j} Cov_ij^2. */
static double decorrelation_seq(const float *z, int L, int F, float *dz, double scale,
                                float *work) {
    const size_t LF = (size_t)L * F;
    float *Y = work, *dY = work + LF, *K = work + 2 * LF, *M = K + (size_t)L * L;
    const double npairs = (double)L * (L - 1);

    standardize_rows_forward(Y, z, L, F);
    gram_upper(K, Y, L, F, (float)(1.0 / (F - 1)));
    double s = 0.0;
    for (int i = 0; i < L; i++)
        for (int j = i + 1; j < L; j++) {
            double c = K[(size_t)i * L + j];
            s += 2.0 * c * c;
        }
    double loss = s / npairs;
    if (!dz) return loss;

    /* dloss/dCov_ij = 2 Cov_ij / (L(L-1)); M = 2 that, times the 1/(F-1) of Cov = Y Y^T/(F-1). */
    const double f = 4.0 / (npairs * (F - 1));
    for (int i = 0; i < L; i++) {
        M[(size_t)i * L + i] = 0.0f;
        for (int j = i + 1; j < L; j++)
            M[(size_t)i * L + j] = M[(size_t)j * L + i] = (float)(f * K[(size_t)i * L + j]);
    }
    gram_backward(dY, M, Y, L, F);
    standardize_rows_backward(dz, dY, z, L, F, scale);
    return loss;
}

/* l2_repel: D_ij = ||z_i - z_j||^2 over all (i,j) including i = j (D_ii = 0 exactly);
 * loss = logsumexp(-D/tau + eps) - log(L^2) + 0.1 mean(z^2). */
static double l2_repel_seq(const float *z, int L, int F, double tau, float *dz, double scale,
                           float *work) {
    const size_t LF = (size_t)L * F;
    float *Y = work, *dY = work + LF, *K = work + 2 * LF, *M = K + (size_t)L * L;

    center_tokens(Y, z, L, F);
    gram_upper(K, Y, L, F, 1.0f);
    /* The diagonal of K is replaced by squared norms accumulated in double from Y; D_ij is
     * then formed in double from those and the float Gram entry. */
    double zsq = 0.0;
    for (size_t e = 0; e < LF; e++) zsq += (double)z[e] * z[e];

    lse_acc acc = {-INFINITY, 0.0};
    lse_add(&acc, 0.0, (double)L); /* the diagonal: D_ii = 0 */
    for (int i = 0; i < L; i++) {
        double ni = 0.0;
        for (int k = 0; k < F; k++) ni += (double)Y[(size_t)i * F + k] * Y[(size_t)i * F + k];
        K[(size_t)i * L + i] = (float)ni; /* diag of K no longer needed as a Gram entry */
    }
    for (int i = 0; i < L; i++) {
        for (int j = i + 1; j < L; j++) {
            double D = (double)K[(size_t)i * L + i] + (double)K[(size_t)j * L + j] -
                       2.0 * K[(size_t)i * L + j];
            if (D < 0.0) D = 0.0; /* rounding only: a squared distance is never negative */
            K[(size_t)j * L + i] = (float)D;
            lse_add(&acc, -D / tau, 2.0);
        }
    }
    double lse = lse_value(&acc);
    double loss = lse + DISP_EPS - 2.0 * log((double)L) + DISP_L2_MEAN_SQ * zsq / (double)LF;
    if (!dz) return loss;

    /* dloss/dD_ij = -p_ij/tau; dD_ij/dz_i = 2(z_i - z_j), dD_ij/dz_j = -2(z_i - z_j), so
     * dz_i = sum_j M_ij (z_i - z_j) with M_ij = -4 p_ij / tau (p symmetric). The diagonal adds
     * nothing (z_i - z_i = 0) and is left out of M, so no large term cancels. Centered Y in
     * place of z is exact: only differences enter. */
    for (int i = 0; i < L; i++) {
        M[(size_t)i * L + i] = 0.0f;
        for (int j = i + 1; j < L; j++) {
            double D = K[(size_t)j * L + i];
            float m = (float)(-4.0 / tau * exp(-D / tau - lse));
            M[(size_t)i * L + j] = M[(size_t)j * L + i] = m;
        }
    }
    gram_backward(dY, M, Y, L, F);
    const double msq = 2.0 * DISP_L2_MEAN_SQ / (double)LF; /* d/dz of 0.1 mean(z^2) */
    for (int i = 0; i < L; i++) {
        double r = 0.0;
        for (int j = 0; j < L; j++) r += M[(size_t)i * L + j];
        const float *yi = Y + (size_t)i * F, *gi = dY + (size_t)i * F, *zi = z + (size_t)i * F;
        float *dzi = dz + (size_t)i * F;
        for (int k = 0; k < F; k++) dzi[k] += (float)(scale * (r * yi[k] - gi[k] + msq * zi[k]));
    }
    return loss;
}

double lmd_disp_seq(lmd_disp_variant v, const float *z, int L, int F, double tau_cos, double tau_l2,
                    float *dz, double scale, float *work) {
    if (v == DISP_OFF) return 0.0;
    if (L < 1 || F < 1) lmd_die("dispersion of an empty sequence (L=%d, F=%d)", L, F);
    if (v != DISP_L2_REPEL && L < 2)
        lmd_die("dispersion variant %s needs at least 2 tokens per sequence (got %d)",
                lmd_disp_variant_name(v), L);
    switch (v) {
    case DISP_OFF: return 0.0;
    case DISP_ANGULAR_SPREAD: return angular_seq(z, L, F, tau_cos, 0, dz, scale, work);
    case DISP_ORTHOGONALIZATION: return angular_seq(z, L, F, tau_cos, 1, dz, scale, work);
    case DISP_DECORRELATION:
        if (F < 2) lmd_die("decorrelation needs at least 2 features (got %d)", F);
        return decorrelation_seq(z, L, F, dz, scale, work);
    case DISP_L2_REPEL: return l2_repel_seq(z, L, F, tau_l2, dz, scale, work);
    }
    lmd_die("invalid dispersion variant %d", (int)v);
}

/* ---------------------------------------------------------------------------------------
 * Token subsets and the model-level loss. */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void lmd_disp_subset(lmd_rng *rng, int T, int k, int *idx) {
    if (k < 0 || k > T) lmd_die("subset of %d out of %d tokens", k, T);
    for (int i = 0; i < T; i++) idx[i] = i;
    /* Partial Fisher–Yates: exactly k draws of lmd_rng_below, in order. */
    for (int i = 0; i < k; i++) {
        int j = i + (int)lmd_rng_below(rng, (uint64_t)(T - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    qsort(idx, (size_t)k, sizeof *idx, cmp_int);
}

/* Runs below this many pair entries (sequences x L^2) stay serial: a parallel region costs a
 * few microseconds, and the small shapes of the unit tests should not pay it. */
#define DISP_PAR_MIN 65536.0

double lmd_disp_forward_backward_ex(const lmd_disp_opts *o, float *const *hidden, int n_layer,
                                    int B, int T, int C, float *const *dhidden, lmd_rng *rng,
                                    int *subsets) {
    if (o->variant == DISP_OFF) return 0.0;
    if (n_layer < 1 || B < 1 || T < 1 || C < 1)
        lmd_die("dispersion on an empty batch (n_layer=%d B=%d T=%d C=%d)", n_layer, B, T, C);
    if (o->max_tokens < 2)
        lmd_die("dispersion max_tokens=%d (options not validated)", o->max_tokens);

    const int first = o->location == DISP_LOC_LAST ? n_layer : 1;
    const int n_loc = n_layer - first + 1;
    const int sub = T > o->max_tokens;
    const int L = sub ? o->max_tokens : T;
    if (sub && !rng) lmd_die("dispersion needs an rng when T=%d > max_tokens=%d", T, o->max_tokens);
    const int want_grad = dhidden != NULL && o->coeff != 0.0;
    /* Each sequence's term enters the value with weight 1/(B n_loc) and the total loss with
     * coeff times that. */
    const double gscale = o->coeff / ((double)B * n_loc);
    const size_t LC = (size_t)L * C, TC = (size_t)T * C;
    const int n_seq = n_loc * B; /* s = (l - first) * B + b */

    /* Sequences run in parallel, one scratch block per thread (work | zs | dzs), each rounded
     * up to 16 floats so blocks start on separate cache lines. Allocated once per call. */
    int nt = par_max_threads();
    if (nt > n_seq) nt = n_seq;
    if ((double)n_seq * L * L < DISP_PAR_MIN) nt = 1;
    if (nt < 1) nt = 1;
    size_t per = lmd_disp_work_floats(L, C) + (sub ? 2 * LC : 0);
    per = (per + 15) / 16 * 16;
    float *scratch = lmd_aligned_alloc((size_t)nt * per * sizeof(float));
    double *losses = lmd_calloc((size_t)n_seq, sizeof(double));
    int *idx_all = NULL, *idx = NULL;
    if (sub) {
        /* Draw order (reproducible), all draws before any work: hidden state
         * l = first..n_layer, then sequence b = 0..B-1; one lmd_disp_subset(rng, T,
         * max_tokens) per (l, b). No draws when T <= max_tokens. */
        idx_all = lmd_calloc((size_t)n_seq * L, sizeof(int));
        idx = lmd_calloc((size_t)T, sizeof(int));
        for (int sq = 0; sq < n_seq; sq++) {
            lmd_disp_subset(rng, T, L, idx);
            memcpy(idx_all + (size_t)sq * L, idx, (size_t)L * sizeof(int));
        }
        if (subsets) memcpy(subsets, idx_all, (size_t)n_seq * L * sizeof(int));
    }

    /* BLAS inside the region runs single-threaded (as in ops.c): each OpenMP thread calls
     * its own ssyrk/sgemm, and OpenBLAS's pool must not compete with OpenMP's. Every sequence
     * writes only its own rows of dhidden (a subset's rows are distinct positions), so the
     * threads never touch the same dz, and the loss of each sequence is the same bits
     * whatever thread computes it. */
    int blas_threads = openblas_get_num_threads();
    if (nt > 1) openblas_set_num_threads(1);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int sq = 0; sq < n_seq; sq++) {
        const int l = first + sq / B, b = sq % B;
        float *work = scratch + (size_t)par_thread_id() * per;
        const float *z = hidden[l] + (size_t)b * TC;
        float *dz = want_grad ? dhidden[l] + (size_t)b * TC : NULL;
        if (!sub) {
            losses[sq] = lmd_disp_seq(o->variant, z, L, C, o->tau_cos, o->tau_l2, dz, gscale, work);
            continue;
        }
        float *zs = work + lmd_disp_work_floats(L, C), *dzs = zs + LC;
        const int *ix = idx_all + (size_t)sq * L;
        for (int i = 0; i < L; i++)
            memcpy(zs + (size_t)i * C, z + (size_t)ix[i] * C, (size_t)C * sizeof(float));
        if (dz) memset(dzs, 0, LC * sizeof(float));
        losses[sq] = lmd_disp_seq(o->variant, zs, L, C, o->tau_cos, o->tau_l2, dz ? dzs : NULL,
                                  gscale, work);
        if (dz)
            for (int i = 0; i < L; i++) {
                float *dst = dz + (size_t)ix[i] * C;
                const float *src = dzs + (size_t)i * C;
                for (int k = 0; k < C; k++) dst[k] += src[k];
            }
    }
    if (nt > 1) openblas_set_num_threads(blas_threads);

    double total = 0.0;
    for (int sq = 0; sq < n_seq; sq++) total += losses[sq]; /* fixed order */
    free(scratch);
    free(losses);
    free(idx_all);
    free(idx);
    return total / ((double)B * n_loc);
}

double lmd_disp_forward_backward(const lmd_disp_opts *o, float *const *hidden, int n_layer, int B,
                                 int T, int C, float *const *dhidden, lmd_rng *rng) {
    return lmd_disp_forward_backward_ex(o, hidden, n_layer, B, T, C, dhidden, rng, NULL);
}
