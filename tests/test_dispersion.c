/* test_dispersion.c — the dispersion losses of model/dispersion.c against
 *   (1) central finite differences of an independent float64 implementation written in this
 *       file straight from DESIGN.md section 3, and of lmd_disp_seq itself;
 *   (2) the straight-through gradient at clamped pairs, derived by hand below;
 *   (3) PyTorch float64 references (tests/ref/dispersion_ref.h5, tests/gen_dispersion_ref.py);
 *   (4) lmd_disp_forward_backward: location, averaging, accumulation, token subsets;
 *   (5) option parsing and validation messages.
 * Returns the number of failed checks. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strict C11 has no M_PI; the build defines _DEFAULT_SOURCE, but do not rely on it. */
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#include "dispersion.h"
#include "testutil.h"
#include "util.h"

#define EPS 1e-2
#define CLAMP_HI 0.75
#define MARGIN 0.5

static const lmd_disp_variant ALL_VARIANTS[] = {DISP_ANGULAR_SPREAD, DISP_DECORRELATION,
                                                DISP_L2_REPEL, DISP_ORTHOGONALIZATION};

/* ---- independent float64 reference: direct O(L^2 F) loops, no Gram trick, no symmetry ---- */

static double clampd(double c) { return c < -CLAMP_HI ? -CLAMP_HI : (c > CLAMP_HI ? CLAMP_HI : c); }

/* Cosine of eps-normalized rows i, j of z (L,F). */
static double cos_eps(const double *z, int F, int i, int j) {
    double ni = 0, nj = 0, d = 0;
    for (int k = 0; k < F; k++) {
        ni += z[i * F + k] * z[i * F + k];
        nj += z[j * F + k] * z[j * F + k];
        d += z[i * F + k] * z[j * F + k];
    }
    return d / ((sqrt(ni) + EPS) * (sqrt(nj) + EPS));
}

static double ref_loss(lmd_disp_variant v, const double *z, int L, int F, double tau_cos,
                       double tau_l2) {
    double acc = 0.0, mx = -INFINITY;
    if (v == DISP_ANGULAR_SPREAD) {
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++)
                if (i != j) {
                    double l = -acos(clampd(cos_eps(z, F, i, j))) / M_PI / tau_cos + EPS;
                    if (l > mx) mx = l;
                }
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++)
                if (i != j)
                    acc += exp(-acos(clampd(cos_eps(z, F, i, j))) / M_PI / tau_cos + EPS - mx);
        return mx + log(acc) - log((double)L * (L - 1));
    }
    if (v == DISP_ORTHOGONALIZATION) {
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++)
                if (i != j) {
                    double h = MARGIN - acos(clampd(cos_eps(z, F, i, j))) / M_PI;
                    acc += h > 0 ? h * h : 0.0;
                }
        return acc / ((double)L * (L - 1));
    }
    if (v == DISP_DECORRELATION) {
        double *zb = calloc((size_t)L * F, sizeof *zb);
        for (int i = 0; i < L; i++) {
            double m = 0, s = 0;
            for (int k = 0; k < F; k++) m += z[i * F + k];
            m /= F;
            for (int k = 0; k < F; k++) s += (z[i * F + k] - m) * (z[i * F + k] - m);
            s = sqrt(s / (F - 1));
            for (int k = 0; k < F; k++) zb[i * F + k] = (z[i * F + k] - m) / s;
        }
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++)
                if (i != j) {
                    double c = 0;
                    for (int k = 0; k < F; k++) c += zb[i * F + k] * zb[j * F + k];
                    c /= (F - 1);
                    acc += c * c;
                }
        free(zb);
        return acc / ((double)L * (L - 1));
    }
    /* l2_repel */
    double sq = 0;
    for (int e = 0; e < L * F; e++) sq += z[e] * z[e];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++) {
                double D = 0;
                for (int k = 0; k < F; k++)
                    D += (z[i * F + k] - z[j * F + k]) * (z[i * F + k] - z[j * F + k]);
                double l = -D / tau_l2 + EPS;
                if (pass == 0 && l > mx) mx = l;
                if (pass == 1) acc += exp(l - mx);
            }
    return mx + log(acc) - log((double)L * L) + 0.1 * sq / (L * F);
}

/* Central differences of ref_loss in double, h = 1e-6 (error ~1e-10, far below float32). */
static void ref_grad_fd(lmd_disp_variant v, const float *z32, int L, int F, double tc, double tl,
                        double *g) {
    size_t n = (size_t)L * F;
    double *z = malloc(n * sizeof *z);
    for (size_t e = 0; e < n; e++) z[e] = z32[e];
    const double h = 1e-6;
    for (size_t e = 0; e < n; e++) {
        double z0 = z[e];
        z[e] = z0 + h;
        double fp = ref_loss(v, z, L, F, tc, tl);
        z[e] = z0 - h;
        double fm = ref_loss(v, z, L, F, tc, tl);
        z[e] = z0;
        g[e] = (fp - fm) / (2 * h);
    }
    free(z);
}

static double ref_loss_f32(lmd_disp_variant v, const float *z32, int L, int F, double tc,
                           double tl) {
    size_t n = (size_t)L * F;
    double *z = malloc(n * sizeof *z);
    for (size_t e = 0; e < n; e++) z[e] = z32[e];
    double r = ref_loss(v, z, L, F, tc, tl);
    free(z);
    return r;
}

static double maxabs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* Random z (L,F) with scale; for the angular variants redrawn until every off-diagonal
 * cosine is at least 0.05 away from the clamp edges, so finite differences see no kink. */
static void random_z(lmd_rng *rng, lmd_disp_variant v, float *z, int L, int F, double scale) {
    for (int tries = 0; tries < 1000; tries++) {
        for (int e = 0; e < L * F; e++) z[e] = (float)(scale * lmd_rng_normal(rng));
        if (v != DISP_ANGULAR_SPREAD && v != DISP_ORTHOGONALIZATION) return;
        double worst = 0;
        double *zd = malloc((size_t)L * F * sizeof *zd);
        for (int e = 0; e < L * F; e++) zd[e] = z[e];
        for (int i = 0; i < L; i++)
            for (int j = i + 1; j < L; j++) worst = fmax(worst, fabs(cos_eps(zd, F, i, j)));
        free(zd);
        if (worst < CLAMP_HI - 0.05) return;
    }
    fprintf(stderr, "could not draw a point away from the clamp edges\n");
    exit(1);
}

/* ---- (1) gradients against finite differences ---- */
static void test_finite_differences(void) {
    lmd_rng rng;
    lmd_rng_seed(&rng, 7, 0);
    const int L = 7, F = 12;
    const size_t n = (size_t)L * F;
    float z[7 * 12], dz[7 * 12], *work = malloc(lmd_disp_work_floats(L, F) * sizeof(float));
    double g_fd[7 * 12], g_fd32[7 * 12];
    const double taus[] = {1.0, 0.4};
    for (int vi = 0; vi < 4; vi++) {
        lmd_disp_variant v = ALL_VARIANTS[vi];
        for (int ti = 0; ti < 2; ti++) {
            double tc = taus[ti], tl = 2.0 * taus[ti];
            random_z(&rng, v, z, L, F, v == DISP_L2_REPEL ? 0.35 : 1.0);
            memset(dz, 0, sizeof dz);
            double loss = lmd_disp_seq(v, z, L, F, tc, tl, dz, 1.0, work);
            double want = ref_loss_f32(v, z, L, F, tc, tl);
            char what[96];
            /* Loss: float32 Gram entries, sums in double -> relative 1e-5 is generous. */
            TU_CHECK(fabs(loss - want) <= 1e-5 * (1 + fabs(want)), "%s tau=%g: loss %.9g vs %.9g",
                     lmd_disp_variant_name(v), tc, loss, want);

            /* (a) analytic float gradient vs FD of the independent float64 loss.
             * Tolerance: 1e-4 of the largest gradient entry + 1e-3 relative (float32 math). */
            ref_grad_fd(v, z, L, F, tc, tl, g_fd);
            double gmax = maxabs(g_fd, n);
            TU_CHECK(gmax > 1e-6, "%s: gradient is all zero, the test would be vacuous",
                     lmd_disp_variant_name(v));
            snprintf(what, sizeof what, "%s tau=%g vs FD(float64 ref)", lmd_disp_variant_name(v),
                     tc);
            tu_compare(what, dz, g_fd, n, 1e-4 * gmax, 1e-3);

            /* (b) FD of lmd_disp_seq itself: float inputs, so the step is what survives rounding
             * to float and the loss carries float32 Gram noise; h = 1e-2 balances that against
             * truncation (observed worst ~1e-4 of max). Tolerance 1e-3 of max + 1e-2 relative. */
            float zp[7 * 12];
            memcpy(zp, z, sizeof zp);
            for (size_t e = 0; e < n; e++) {
                float z0 = zp[e];
                float up = (float)(z0 + 1e-2), dn = (float)(z0 - 1e-2);
                zp[e] = up;
                double fp = lmd_disp_seq(v, zp, L, F, tc, tl, NULL, 1.0, work);
                zp[e] = dn;
                double fm = lmd_disp_seq(v, zp, L, F, tc, tl, NULL, 1.0, work);
                zp[e] = z0;
                g_fd32[e] = (fp - fm) / ((double)up - (double)dn);
            }
            snprintf(what, sizeof what, "%s tau=%g vs FD(lmd_disp_seq)", lmd_disp_variant_name(v),
                     tc);
            tu_compare(what, dz, g_fd32, n, 1e-3 * gmax, 1e-2);
        }
    }
    /* Accumulation and scale: dz += scale * grad. */
    random_z(&rng, DISP_ANGULAR_SPREAD, z, L, F, 1.0);
    float g1[7 * 12], acc[7 * 12];
    double want_acc[7 * 12];
    memset(g1, 0, sizeof g1);
    lmd_disp_seq(DISP_ANGULAR_SPREAD, z, L, F, 1.0, 1.0, g1, 1.0, work);
    for (size_t e = 0; e < n; e++) {
        acc[e] = (float)(0.5 + 0.01 * (double)e);
        want_acc[e] = acc[e] + 2.5 * (double)g1[e];
    }
    lmd_disp_seq(DISP_ANGULAR_SPREAD, z, L, F, 1.0, 1.0, acc, 2.5, work);
    tu_compare("lmd_disp_seq accumulates scale*grad", acc, want_acc, n, 1e-6, 1e-6);
    free(work);
}

/* ---- (2) straight-through gradient at clamped pairs ----
 * With L = 2 the two ordered pairs are the same cosine c = zhat_0 . zhat_1, so
 *   angular_spread:    loss = logsumexp(l + eps, l + eps) - log 2 = -D/tau + eps,
 *                      dloss/dc = (1/tau) * 1/(pi sqrt(1 - c~^2))
 *   orthogonalization: loss = max(0, margin - D)^2,
 *                      dloss/dc = 2 max(0, margin - D) * 1/(pi sqrt(1 - c~^2))
 * with D = arccos(c~)/pi, c~ = +-0.75 at the edge (straight-through: dc~/dc = 1), and
 *   dc/dz_0 = zhat_1/s_0 - (zhat_1 . z_0) z_0 / (n_0 s_0^2),  n_0 = ||z_0||, s_0 = n_0 + eps,
 * symmetrically for z_1. A plain clamp would give 0 here. */
static void test_clamped_pair(void) {
    lmd_rng rng;
    lmd_rng_seed(&rng, 11, 0);
    enum { F = 6 };
    float z[2 * F], dz[2 * F], work[64];
    double want[2 * F];
    TU_CHECK(lmd_disp_work_floats(2, F) <= 64, "scratch size");
    struct {
        lmd_disp_variant v;
        double sign; /* z_1 = sign * 1.2 z_0 + noise */
        double tau;
    } cases[] = {{DISP_ANGULAR_SPREAD, 1.0, 0.7},
                 {DISP_ANGULAR_SPREAD, -1.0, 0.7},
                 {DISP_ORTHOGONALIZATION, 1.0, 1.0}};
    for (int ci = 0; ci < 3; ci++) {
        for (int k = 0; k < F; k++) z[k] = (float)lmd_rng_normal(&rng);
        for (int k = 0; k < F; k++)
            z[F + k] = (float)(cases[ci].sign * 1.2 * z[k] + 0.05 * lmd_rng_normal(&rng));
        double zd[2 * F];
        for (int e = 0; e < 2 * F; e++) zd[e] = z[e];
        double c = cos_eps(zd, F, 0, 1);
        TU_CHECK(fabs(c) > CLAMP_HI + 0.1, "case %d: pair is not clamped (c = %g)", ci, c);
        double ct = clampd(c), D = acos(ct) / M_PI;
        double dfdc = cases[ci].v == DISP_ANGULAR_SPREAD
                          ? 1.0 / (cases[ci].tau * M_PI * sqrt(1 - ct * ct))
                          : 2.0 * fmax(0.0, MARGIN - D) / (M_PI * sqrt(1 - ct * ct));
        double want_loss = cases[ci].v == DISP_ANGULAR_SPREAD ? -D / cases[ci].tau + EPS
                                                              : pow(fmax(0.0, MARGIN - D), 2);
        for (int a = 0; a < 2; a++) {
            const double *za = zd + a * F, *zb = zd + (1 - a) * F;
            double na = 0, nb = 0;
            for (int k = 0; k < F; k++) {
                na += za[k] * za[k];
                nb += zb[k] * zb[k];
            }
            na = sqrt(na);
            nb = sqrt(nb);
            double sa = na + EPS, sb = nb + EPS, dot = 0;
            for (int k = 0; k < F; k++) dot += (zb[k] / sb) * za[k];
            for (int k = 0; k < F; k++)
                want[a * F + k] = dfdc * (zb[k] / sb / sa - dot * za[k] / (na * sa * sa));
        }
        memset(dz, 0, sizeof dz);
        double loss = lmd_disp_seq(cases[ci].v, z, 2, F, cases[ci].tau, 1.0, dz, 1.0, work);
        TU_CHECK(fabs(loss - want_loss) < 1e-6, "clamped case %d: loss %.9g, want %.9g", ci, loss,
                 want_loss);
        char what[96];
        snprintf(what, sizeof what, "clamped %s c=%+.3f: straight-through",
                 lmd_disp_variant_name(cases[ci].v), c);
        double gmax = maxabs(want, 2 * F);
        TU_CHECK(gmax > 1e-3, "clamped case %d: boundary gradient unexpectedly tiny", ci);
        tu_compare(what, dz, want, 2 * F, 1e-5 * gmax, 1e-4);
    }
}

/* ---- (3) PyTorch references ---- */
static int h5_attr_double(hid_t obj, const char *name, double *out) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    herr_t r = H5Aread(a, H5T_NATIVE_DOUBLE, out);
    H5Aclose(a);
    return r < 0 ? -1 : 0;
}

static int h5_attr_string(hid_t obj, const char *name, char *out, size_t cap) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a);
    size_t sz = H5Tget_size(ft);
    int r = -1;
    if (!H5Tis_variable_str(ft) && sz < cap) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz + 1);
        H5Tset_strpad(mt, H5T_STR_NULLTERM);
        r = H5Aread(a, mt, out) < 0 ? -1 : 0;
        H5Tclose(mt);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return r;
}

/* Reads dataset name of g: shape into dims (rank <= 2), values converted to mem type. */
static void *h5_read(hid_t g, const char *name, hid_t mtype, size_t esize, hsize_t dims[2],
                     int *rank) {
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t s = H5Dget_space(d);
    *rank = H5Sget_simple_extent_ndims(s);
    dims[0] = dims[1] = 1;
    void *buf = NULL;
    if (*rank >= 0 && *rank <= 2) {
        H5Sget_simple_extent_dims(s, dims, NULL);
        buf = calloc((size_t)dims[0] * dims[1], esize);
        if (H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            free(buf);
            buf = NULL;
        }
    }
    H5Sclose(s);
    H5Dclose(d);
    return buf;
}

static void test_torch_reference(void) {
    const char *dir = getenv("LMDISP_TESTS");
    char path[1024];
    snprintf(path, sizeof path, "%s/ref/dispersion_ref.h5", dir ? dir : ".");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    TU_CHECK(f >= 0,
             "cannot open %s (regenerate with /usr/bin/python3 tests/gen_dispersion_ref.py)", path);
    if (f < 0) return;
    double ncd = 0;
    TU_CHECK(h5_attr_double(f, "n_cases", &ncd) == 0 && ncd >= 12, "%s: attribute n_cases", path);
    int nc = (int)ncd, seen[5] = {0};
    for (int c = 0; c < nc; c++) {
        char gname[32], vname[64] = "", note[64] = "";
        snprintf(gname, sizeof gname, "case_%02d", c);
        hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
        TU_CHECK(g >= 0, "%s: group %s", path, gname);
        if (g < 0) continue;
        double tc = 0, tl = 0;
        lmd_disp_variant v = DISP_OFF;
        int ok = h5_attr_string(g, "variant", vname, sizeof vname) == 0 &&
                 h5_attr_string(g, "note", note, sizeof note) == 0 &&
                 h5_attr_double(g, "tau_cos", &tc) == 0 && h5_attr_double(g, "tau_l2", &tl) == 0 &&
                 lmd_disp_parse_variant(vname, &v, NULL) == 0;
        hsize_t zd[2], gd[2], ld[2];
        int zr, gr, lr;
        float *z = h5_read(g, "z", H5T_NATIVE_FLOAT, sizeof(float), zd, &zr);
        double *grad = h5_read(g, "grad", H5T_NATIVE_DOUBLE, sizeof(double), gd, &gr);
        double *lossp = h5_read(g, "loss", H5T_NATIVE_DOUBLE, sizeof(double), ld, &lr);
        ok = ok && z && grad && lossp && zr == 2 && gr == 2 && lr == 0 && zd[0] == gd[0] &&
             zd[1] == gd[1];
        TU_CHECK(ok, "%s/%s: malformed reference case", path, gname);
        if (ok) {
            int L = (int)zd[0], F = (int)zd[1];
            size_t n = (size_t)L * F;
            seen[v]++;
            float *work = malloc(lmd_disp_work_floats(L, F) * sizeof(float));
            float *dz = calloc(n, sizeof(float));
            double loss = lmd_disp_seq(v, z, L, F, tc, tl, dz, 1.0, work);
            /* float32 tolerances: loss within 1e-5 (1 + |loss|); gradient within 2e-4 of the
             * largest entry plus 1e-3 relative. */
            TU_CHECK(fabs(loss - *lossp) <= 1e-5 * (1 + fabs(*lossp)),
                     "%s %s: loss %.9g, torch %.9g", gname, vname, loss, *lossp);
            char what[128];
            snprintf(what, sizeof what, "torch %s %s L=%d F=%d %s", gname, vname, L, F, note);
            tu_compare(what, dz, grad, n, 2e-4 * maxabs(grad, n), 1e-3);
            printf("%-40s loss %.9g torch %.9g |diff| %.2e\n", "", loss, *lossp,
                   fabs(loss - *lossp));
            free(work);
            free(dz);
        }
        free(z);
        free(grad);
        free(lossp);
        H5Gclose(g);
    }
    for (int vi = 0; vi < 4; vi++)
        TU_CHECK(seen[ALL_VARIANTS[vi]] >= 2, "reference lacks cases for %s",
                 lmd_disp_variant_name(ALL_VARIANTS[vi]));
    H5Fclose(f);
}

/* ---- (4) lmd_disp_forward_backward ---- */
typedef struct {
    int n_layer, B, T, C;
    float *h[8], *dh[8];
} toy_model;

static void toy_init(toy_model *m, int n_layer, int B, int T, int C, uint64_t seed) {
    m->n_layer = n_layer;
    m->B = B;
    m->T = T;
    m->C = C;
    lmd_rng r;
    lmd_rng_seed(&r, seed, 0);
    size_t n = (size_t)B * T * C;
    for (int l = 0; l <= n_layer; l++) {
        m->h[l] = malloc(n * sizeof(float));
        m->dh[l] = malloc(n * sizeof(float));
        for (size_t e = 0; e < n; e++) {
            m->h[l][e] = (float)(0.6 * lmd_rng_normal(&r));
            m->dh[l][e] = (float)(0.1 * lmd_rng_normal(&r)); /* pre-existing gradient */
        }
    }
}

static void toy_free(toy_model *m) {
    for (int l = 0; l <= m->n_layer; l++) {
        free(m->h[l]);
        free(m->dh[l]);
    }
}

/* Expected value and dhidden computed with lmd_disp_seq on the rows each (l, b) uses;
 * rows == NULL means all T rows, else rows[(l-first)*B + b] lists L positions. */
static double expected_fb(const lmd_disp_opts *o, const toy_model *m, const int *rows, int L,
                          double **want_dh) {
    int first = o->location == DISP_LOC_LAST ? m->n_layer : 1;
    int n_loc = m->n_layer - first + 1, C = m->C, T = m->T;
    float *zs = malloc((size_t)L * C * sizeof(float)), *g = malloc((size_t)L * C * sizeof(float));
    float *work = malloc(lmd_disp_work_floats(L, C) * sizeof(float));
    double total = 0;
    for (int l = 0; l <= m->n_layer; l++)
        for (size_t e = 0; e < (size_t)m->B * T * C; e++) want_dh[l][e] = m->dh[l][e];
    for (int l = first; l <= m->n_layer; l++)
        for (int b = 0; b < m->B; b++) {
            const int *r = rows ? rows + ((size_t)(l - first) * m->B + b) * L : NULL;
            for (int i = 0; i < L; i++)
                memcpy(zs + (size_t)i * C, m->h[l] + ((size_t)b * T + (r ? r[i] : i)) * C,
                       C * sizeof(float));
            memset(g, 0, (size_t)L * C * sizeof(float));
            total += lmd_disp_seq(o->variant, zs, L, C, o->tau_cos, o->tau_l2, g, 1.0, work);
            double s = o->coeff / ((double)m->B * n_loc);
            for (int i = 0; i < L; i++)
                for (int k = 0; k < C; k++)
                    want_dh[l][((size_t)b * T + (r ? r[i] : i)) * C + k] +=
                        s * g[(size_t)i * C + k];
        }
    free(zs);
    free(g);
    free(work);
    return total / ((double)m->B * n_loc);
}

static void check_fb(const char *label, const lmd_disp_opts *o, int T, int seed) {
    toy_model m;
    toy_init(&m, 3, 3, T, 8, (uint64_t)seed);
    int L = T > o->max_tokens ? o->max_tokens : T;
    int n_loc = o->location == DISP_LOC_LAST ? 1 : m.n_layer;
    int *sub = calloc((size_t)n_loc * m.B * L, sizeof(int));
    lmd_rng rng, rng2;
    lmd_rng_seed(&rng, 1234, LMD_STREAM_DISPERSION);
    double got = lmd_disp_forward_backward_ex(o, m.h, m.n_layer, m.B, m.T, m.C, m.dh, &rng,
                                              T > o->max_tokens ? sub : NULL);

    int *rows = NULL;
    if (T > o->max_tokens) {
        /* Replay the documented draw order with a fresh rng of the same seed. */
        lmd_rng_seed(&rng2, 1234, LMD_STREAM_DISPERSION);
        rows = calloc((size_t)n_loc * m.B * L, sizeof(int));
        int *scratch = calloc((size_t)T, sizeof(int)), bad = 0, dup = 0;
        for (int q = 0; q < n_loc * m.B; q++) {
            lmd_disp_subset(&rng2, T, L, scratch);
            memcpy(rows + (size_t)q * L, scratch, L * sizeof(int));
            for (int i = 0; i < L; i++) {
                if (rows[(size_t)q * L + i] != sub[(size_t)q * L + i]) bad++;
                if (scratch[i] < 0 || scratch[i] >= T || (i && scratch[i] <= scratch[i - 1])) dup++;
            }
        }
        TU_CHECK(bad == 0, "%s: %d subset positions differ from the documented draw order", label,
                 bad);
        TU_CHECK(dup == 0, "%s: subsets not sorted/distinct/in range (%d)", label, dup);
        TU_CHECK(memcmp(&rng, &rng2, sizeof rng) == 0, "%s: rng state differs after replay", label);
        free(scratch);
    } else {
        lmd_rng_seed(&rng2, 1234, LMD_STREAM_DISPERSION);
        TU_CHECK(memcmp(&rng, &rng2, sizeof rng) == 0, "%s: rng touched although T <= max_tokens",
                 label);
    }

    /* Rebuild the pre-existing gradient (toy_init with the same seed) to form expectations. */
    toy_model fresh;
    toy_init(&fresh, 3, 3, T, 8, (uint64_t)seed);
    double *want[8];
    size_t n = (size_t)m.B * T * m.C;
    for (int l = 0; l <= m.n_layer; l++) want[l] = malloc(n * sizeof(double));
    double want_loss = expected_fb(o, &fresh, rows, L, want);
    TU_CHECK(fabs(got - want_loss) <= 1e-6 * (1 + fabs(want_loss)), "%s: value %.9g, want %.9g",
             label, got, want_loss);
    printf("%-40s value %.9g want %.9g\n", label, got, want_loss);
    for (int l = 0; l <= m.n_layer; l++) {
        char what[96];
        snprintf(what, sizeof what, "%s dhidden[%d]", label, l);
        tu_compare(what, m.dh[l], want[l], n, 1e-7, 1e-6);
        free(want[l]);
    }
    free(sub);
    free(rows);
    toy_free(&m);
    toy_free(&fresh);
}

static void test_forward_backward(void) {
    lmd_disp_opts o = lmd_disp_default();
    o.variant = DISP_ANGULAR_SPREAD;
    o.coeff = 0.3;
    o.location = DISP_LOC_ALL;
    check_fb("fb angular all T=6", &o, 6, 1);
    o.location = DISP_LOC_LAST;
    check_fb("fb angular last T=6", &o, 6, 2);
    o.variant = DISP_L2_REPEL;
    o.tau_l2 = 3.0;
    o.location = DISP_LOC_ALL;
    check_fb("fb l2_repel all T=6", &o, 6, 3);
    /* Subsets: T = 20 > max_tokens = 7. */
    o.max_tokens = 7;
    o.variant = DISP_DECORRELATION;
    check_fb("fb decorrelation all T=20 subset 7", &o, 20, 4);
    o.variant = DISP_ORTHOGONALIZATION;
    o.location = DISP_LOC_LAST;
    check_fb("fb orthogonalization last T=20 sub 7", &o, 20, 5);

    /* all = mean over hidden states 1..n_layer; last = hidden state n_layer alone; state 0
     * never enters. */
    toy_model m;
    toy_init(&m, 3, 3, 6, 8, 9);
    o = lmd_disp_default();
    o.variant = DISP_ANGULAR_SPREAD;
    double v_all = lmd_disp_forward_backward(&o, m.h, 3, 3, 6, 8, NULL, NULL);
    double per_layer[4] = {0};
    float *work = malloc(lmd_disp_work_floats(6, 8) * sizeof(float));
    for (int l = 0; l <= 3; l++)
        for (int b = 0; b < 3; b++)
            per_layer[l] += lmd_disp_seq(o.variant, m.h[l] + (size_t)b * 6 * 8, 6, 8, 1.0, 1.0,
                                         NULL, 1.0, work) /
                            3.0;
    free(work);
    double want_all = (per_layer[1] + per_layer[2] + per_layer[3]) / 3.0;
    TU_CHECK(fabs(v_all - want_all) < 1e-9, "location all: %.12g, want %.12g", v_all, want_all);
    o.location = DISP_LOC_LAST;
    double v_last = lmd_disp_forward_backward(&o, m.h, 3, 3, 6, 8, NULL, NULL);
    TU_CHECK(fabs(v_last - per_layer[3]) < 1e-9, "location last: %.12g, want %.12g", v_last,
             per_layer[3]);
    o.variant = DISP_OFF;
    TU_CHECK(lmd_disp_forward_backward(&o, m.h, 3, 3, 6, 8, m.dh, NULL) == 0.0, "off gives 0");
    toy_free(&m);

    /* Same seed -> same subsets and value; another seed -> other subsets. */
    toy_init(&m, 2, 2, 40, 8, 10);
    o = lmd_disp_default();
    o.variant = DISP_ANGULAR_SPREAD;
    o.max_tokens = 9;
    int s1[2 * 2 * 9], s2[2 * 2 * 9], s3[2 * 2 * 9];
    lmd_rng r1, r2, r3;
    lmd_rng_seed(&r1, 77, LMD_STREAM_DISPERSION);
    lmd_rng_seed(&r2, 77, LMD_STREAM_DISPERSION);
    lmd_rng_seed(&r3, 78, LMD_STREAM_DISPERSION);
    double a = lmd_disp_forward_backward_ex(&o, m.h, 2, 2, 40, 8, NULL, &r1, s1);
    double b = lmd_disp_forward_backward_ex(&o, m.h, 2, 2, 40, 8, NULL, &r2, s2);
    double c = lmd_disp_forward_backward_ex(&o, m.h, 2, 2, 40, 8, NULL, &r3, s3);
    TU_CHECK(a == b && memcmp(s1, s2, sizeof s1) == 0, "same seed: value %.12g vs %.12g", a, b);
    TU_CHECK(memcmp(s1, s3, sizeof s1) != 0 && a != c, "different seeds gave the same subsets");
    /* Each (layer, sequence) draws its own subset. */
    TU_CHECK(memcmp(s1, s1 + 9, 9 * sizeof(int)) != 0, "sequences 0 and 1 share a subset");
    toy_free(&m);
}

/* lmd_disp_subset is uniform: over N draws of k of T, each position is chosen about N k/T
 * times. Binomial sd = sqrt(N p (1-p)) ~ 42 for N = 20000, p = 0.3; allow 5 sd. */
static void test_subset_uniform(void) {
    enum { T = 10, K = 3, N = 20000 };
    lmd_rng rng;
    lmd_rng_seed(&rng, 5, LMD_STREAM_DISPERSION);
    int idx[T], count[T] = {0}, first[T] = {0};
    for (int r = 0; r < N; r++) {
        lmd_disp_subset(&rng, T, K, idx);
        for (int i = 0; i < K; i++) count[idx[i]]++;
        first[idx[0]]++;
    }
    double p = (double)K / T, sd = sqrt(N * p * (1 - p)), worst = 0;
    for (int t = 0; t < T; t++) worst = fmax(worst, fabs(count[t] - N * p));
    printf("subset uniformity: worst |count - %.0f| = %.1f (5 sd = %.1f)\n", N * p, worst, 5 * sd);
    TU_CHECK(worst < 5 * sd, "subset counts deviate by %.1f > %.1f", worst, 5 * sd);
    /* Sorted output: the smallest element can never be one of the K-1 largest positions. */
    TU_CHECK(first[T - 1] == 0 && first[T - 2] == 0, "subset output not sorted");
}

/* ---- (5) options ---- */
static void test_options(void) {
    lmd_err err = {{0}};
    lmd_disp_variant v;
    lmd_disp_location loc;
    for (int i = 0; i <= 4; i++) {
        const char *name = lmd_disp_variant_name((lmd_disp_variant)i);
        TU_CHECK(lmd_disp_parse_variant(name, &v, &err) == 0 && v == (lmd_disp_variant)i,
                 "round trip of variant %s", name);
    }
    TU_CHECK(lmd_disp_parse_variant("angular", &v, &err) == -1, "unknown variant accepted");
    TU_CHECK(strstr(err.msg, "'angular'") && strstr(err.msg, "angular_spread") &&
                 strstr(err.msg, "decorrelation") && strstr(err.msg, "l2_repel") &&
                 strstr(err.msg, "orthogonalization") && strstr(err.msg, "off"),
             "variant message should name the input and list valid names: %s", err.msg);
    printf("message: %s\n", err.msg);
    TU_CHECK(lmd_disp_parse_location("all", &loc, &err) == 0 && loc == DISP_LOC_ALL, "all");
    TU_CHECK(lmd_disp_parse_location("last", &loc, &err) == 0 && loc == DISP_LOC_LAST, "last");
    TU_CHECK(lmd_disp_parse_location("first", &loc, &err) == -1 && strstr(err.msg, "'first'") &&
                 strstr(err.msg, "all") && strstr(err.msg, "last"),
             "location message: %s", err.msg);
    TU_CHECK(strcmp(lmd_disp_location_name(DISP_LOC_LAST), "last") == 0, "location name");

    lmd_disp_opts d = lmd_disp_default();
    TU_CHECK(d.variant == DISP_OFF && d.coeff == 0.1 && d.location == DISP_LOC_ALL &&
                 d.tau_cos == 1.0 && d.tau_l2 == 1.0 && d.max_tokens == 256,
             "defaults of DESIGN.md section 3");
    TU_CHECK(lmd_disp_validate(&d, &err) == 0, "defaults rejected: %s", err.msg);
    lmd_disp_opts o = d;
    o.coeff = -0.1;
    TU_CHECK(lmd_disp_validate(&o, &err) == -1 && strstr(err.msg, "coeff"), "coeff: %s", err.msg);
    printf("message: %s\n", err.msg);
    o = d;
    o.tau_cos = -1;
    TU_CHECK(lmd_disp_validate(&o, &err) == -1 && strstr(err.msg, "tau_cos"), "tau_cos: %s",
             err.msg);
    o = d;
    o.tau_l2 = 0;
    TU_CHECK(lmd_disp_validate(&o, &err) == -1 && strstr(err.msg, "tau_l2"), "tau_l2: %s", err.msg);
    o = d;
    o.tau_l2 = NAN;
    TU_CHECK(lmd_disp_validate(&o, &err) == -1 && strstr(err.msg, "tau_l2"), "tau_l2 NaN: %s",
             err.msg);
    o = d;
    o.max_tokens = 1;
    TU_CHECK(lmd_disp_validate(&o, &err) == -1 && strstr(err.msg, "max_tokens"), "max_tokens: %s",
             err.msg);
    printf("message: %s\n", err.msg);
    o = d;
    o.coeff = 0;
    o.max_tokens = 2;
    TU_CHECK(lmd_disp_validate(&o, &err) == 0, "coeff 0, max_tokens 2 are valid: %s", err.msg);
}

/* A NaN in a hidden state must make the loss NaN for every variant: the runner detects a
 * diverged cell by its loss, and a dispersion term that turned NaN into a number would hide it
 * (orthogonalization's max(0, margin - D) did, until NaN was kept there). */
static void test_nan_propagates(void) {
    const int L = 9, F = 8;
    float z[9 * 8], dz[9 * 8], *work = malloc(lmd_disp_work_floats(L, F) * sizeof(float));
    for (int v = DISP_ANGULAR_SPREAD; v <= DISP_ORTHOGONALIZATION; v++) {
        lmd_rng rng;
        lmd_rng_seed(&rng, 77, 1);
        for (int i = 0; i < L * F; i++) z[i] = (float)lmd_rng_normal(&rng);
        z[3 * F + 2] = NAN;
        memset(dz, 0, sizeof dz);
        double loss = lmd_disp_seq((lmd_disp_variant)v, z, L, F, 1.0, 1.0, dz, 1.0, work);
        TU_CHECK(isnan(loss), "%s: NaN input gave loss %g",
                 lmd_disp_variant_name((lmd_disp_variant)v), loss);
    }
    free(work);
}

int main(void) {
    test_options();
    test_finite_differences();
    test_clamped_pair();
    test_torch_reference();
    test_forward_backward();
    test_subset_uniform();
    test_nan_propagates();
    return tu_summary("test_dispersion");
}
