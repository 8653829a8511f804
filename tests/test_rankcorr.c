/* test_rankcorr.c — Spearman's rho and Kendall's tau-b: hand-worked cases, NaN conventions,
 * and a table of scipy references (tests/ref/rankcorr_ref.txt from gen_rankcorr_ref.py).
 * Tolerance: 1e-12 absolute against references (both are exact rank statistics in double). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rankcorr.h"
#include "testutil.h"

#define TOL 1e-12

/* Equal within TOL, or both NaN. */
static int same(double got, double want) {
    if (isnan(want)) return isnan(got);
    return fabs(got - want) <= TOL;
}

#define CHECK_VAL(what, got, want)                                                                 \
    TU_CHECK(same((got), (want)), "%s: got %.17g want %.17g", (what), (got), (want))

static void test_hand_cases(void) {
    // perfectly increasing (nonlinear, so Pearson would not be 1) and reversed
    double x[5] = {1, 2, 3, 4, 5}, yinc[5], yrev[5];
    for (int i = 0; i < 5; i++) {
        yinc[i] = exp(x[i]);
        yrev[i] = -x[i] * x[i];
    }
    CHECK_VAL("spearman increasing", lmd_spearman(x, yinc, 5), 1.0);
    CHECK_VAL("kendall increasing", lmd_kendall_tau_b(x, yinc, 5), 1.0);
    CHECK_VAL("spearman reversed", lmd_spearman(x, yrev, 5), -1.0);
    CHECK_VAL("kendall reversed", lmd_kendall_tau_b(x, yrev, 5), -1.0);

    /* Ties in both variables, worked by hand:
     *   x = [1, 2, 2, 3]  -> average ranks [1, 2.5, 2.5, 4]
     *   y = [1, 3, 2, 3]  -> average ranks [1, 3.5, 2, 3.5]
     *   both rank means 2.5; deviations dx = [-1.5, 0, 0, 1.5], dy = [-1.5, 1, -0.5, 1]
     *   sum dx*dy = 2.25 + 1.5 = 3.75, sum dx^2 = 4.5, sum dy^2 = 2.25+1+0.25+1 = 4.5
     *   rho = 3.75 / 4.5 = 5/6.
     *   Pairs (i<j): (0,1) C, (0,2) C, (0,3) C, (1,2) tied in x, (1,3) tied in y, (2,3) C
     *   n_c - n_d = 4, n0 = 6, n1 = 1, n2 = 1 -> tau_b = 4 / sqrt(5 * 5) = 0.8. */
    double tx[4] = {1, 2, 2, 3}, ty[4] = {1, 3, 2, 3};
    CHECK_VAL("spearman ties by hand", lmd_spearman(tx, ty, 4), 5.0 / 6.0);
    CHECK_VAL("kendall ties by hand", lmd_kendall_tau_b(tx, ty, 4), 0.8);
    // symmetric in its arguments
    CHECK_VAL("spearman symmetric", lmd_spearman(ty, tx, 4), 5.0 / 6.0);
    CHECK_VAL("kendall symmetric", lmd_kendall_tau_b(ty, tx, 4), 0.8);

    // average ranks themselves
    double r[4], v[4] = {3, 1, 3, 2}, want_r[4] = {3.5, 1, 3.5, 2};
    lmd_rank_average(r, v, 4);
    for (int i = 0; i < 4; i++) CHECK_VAL("rank_average", r[i], want_r[i]);

    // infinities rank as extremes: same as any finite stand-ins in the same order
    double xi[6] = {-INFINITY, -1, 0, 2, INFINITY, 3}, xf[6] = {-100, -1, 0, 2, 100, 3};
    double yi[6] = {1, 2, 2, 5, 4, 6};
    CHECK_VAL("spearman with inf", lmd_spearman(xi, yi, 6), lmd_spearman(xf, yi, 6));
    CHECK_VAL("kendall with inf", lmd_kendall_tau_b(xi, yi, 6), lmd_kendall_tau_b(xf, yi, 6));
    TU_CHECK(!isnan(lmd_spearman(xi, yi, 6)), "spearman with inf is NaN");
}

static void test_undefined(void) {
    double x[6] = {0, 1, 2, 3, 4, 5}, c[6] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    CHECK_VAL("spearman constant y", lmd_spearman(x, c, 6), NAN);
    CHECK_VAL("kendall constant y", lmd_kendall_tau_b(x, c, 6), NAN);
    CHECK_VAL("spearman constant x", lmd_spearman(c, x, 6), NAN);
    CHECK_VAL("kendall constant x", lmd_kendall_tau_b(c, x, 6), NAN);
    CHECK_VAL("spearman both constant", lmd_spearman(c, c, 6), NAN);
    // n < 2 is undefined; n = 2 with distinct values is +-1
    CHECK_VAL("spearman n=0", lmd_spearman(x, x, 0), NAN);
    CHECK_VAL("kendall n=0", lmd_kendall_tau_b(x, x, 0), NAN);
    CHECK_VAL("spearman n=1", lmd_spearman(x, x, 1), NAN);
    CHECK_VAL("kendall n=1", lmd_kendall_tau_b(x, x, 1), NAN);
    double a2[2] = {0, 1}, b2[2] = {0.8, 0.3};
    CHECK_VAL("spearman n=2", lmd_spearman(a2, b2, 2), -1.0);
    CHECK_VAL("kendall n=2", lmd_kendall_tau_b(a2, b2, 2), -1.0);
    CHECK_VAL("spearman n=2 tied", lmd_spearman(a2, c, 2), NAN);
    // NaN anywhere -> NaN
    double xn[6] = {0, 1, NAN, 3, 4, 5};
    CHECK_VAL("spearman NaN in x", lmd_spearman(xn, x, 6), NAN);
    CHECK_VAL("kendall NaN in y", lmd_kendall_tau_b(x, xn, 6), NAN);
}

/* A larger sample with ties: tau(x, x) = rho(x, x) = 1, and the pair order does not matter.
 * n = 2000 also exercises the O(n^2) Kendall loop (2e6 pairs). */
static void test_large(void) {
    enum { N = 2000 };
    static double x[N], y[N], xs[N], ys[N];
    unsigned s = 12345u;
    for (int i = 0; i < N; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (double)((s >> 16) % 50); // heavy ties
        s = s * 1103515245u + 12345u;
        y[i] = x[i] + (double)((s >> 16) % 7);
    }
    CHECK_VAL("spearman self n=2000", lmd_spearman(x, x, N), 1.0);
    CHECK_VAL("kendall self n=2000", lmd_kendall_tau_b(x, x, N), 1.0);
    // reverse the pair order: statistics are permutation invariant
    for (int i = 0; i < N; i++) {
        xs[i] = x[N - 1 - i];
        ys[i] = y[N - 1 - i];
    }
    CHECK_VAL("spearman permuted", lmd_spearman(xs, ys, N), lmd_spearman(x, y, N));
    CHECK_VAL("kendall permuted", lmd_kendall_tau_b(xs, ys, N), lmd_kendall_tau_b(x, y, N));
}

static int read_values(FILE *f, char tag, double *v, int n) {
    char t[8];
    if (fscanf(f, "%7s", t) != 1 || t[0] != tag || t[1] != '\0') return -1;
    for (int i = 0; i < n; i++) {
        char buf[64];
        if (fscanf(f, "%63s", buf) != 1) return -1;
        char *end;
        v[i] = strtod(buf, &end); // strtod reads "nan", "inf", "-inf"
        if (*end) return -1;
    }
    return 0;
}

static void test_scipy_table(void) {
    const char *dir = getenv("LMDISP_TESTS");
    char path[1024];
    snprintf(path, sizeof path, "%s/ref/rankcorr_ref.txt", dir ? dir : ".");
    FILE *f = fopen(path, "r");
    TU_CHECK(f != NULL, "cannot open %s (run tests/gen_rankcorr_ref.py)", path);
    if (!f) return;
    char line[256];
    int ncases = 0;
    double worst = 0.0;
    while (fscanf(f, "%255s", line) == 1) {
        if (line[0] == '#') {
            if (!fgets(line, sizeof line, f)) break; // rest of the comment line
            continue;
        }
        TU_CHECK(strcmp(line, "case") == 0, "%s: unexpected token '%s'", path, line);
        if (strcmp(line, "case") != 0) break;
        char name[128], srho[64], stau[64];
        int n = 0;
        if (fscanf(f, "%127s %d %63s %63s", name, &n, srho, stau) != 4 || n < 0 || n > 100000) {
            TU_CHECK(0, "%s: bad case header after case %d", path, ncases);
            break;
        }
        double want_rho = strtod(srho, NULL), want_tau = strtod(stau, NULL);
        double *x = calloc((size_t)n + 1, sizeof *x), *y = calloc((size_t)n + 1, sizeof *y);
        if (!x || !y) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        int ok = read_values(f, 'x', x, n) == 0 && read_values(f, 'y', y, n) == 0;
        TU_CHECK(ok, "%s: case %s: could not read %d x and y values", path, name, n);
        if (ok) {
            double rho = lmd_spearman(x, y, (size_t)n), tau = lmd_kendall_tau_b(x, y, (size_t)n);
            char what[200];
            snprintf(what, sizeof what, "scipy %s spearman", name);
            CHECK_VAL(what, rho, want_rho);
            snprintf(what, sizeof what, "scipy %s kendall", name);
            CHECK_VAL(what, tau, want_tau);
            if (!isnan(want_rho) && fabs(rho - want_rho) > worst) worst = fabs(rho - want_rho);
            if (!isnan(want_tau) && fabs(tau - want_tau) > worst) worst = fabs(tau - want_tau);
            printf("  %-22s n=%-4d rho %+.17f (scipy %+.17f)  tau %+.17f (scipy %+.17f)\n", name, n,
                   rho, want_rho, tau, want_tau);
        }
        free(x);
        free(y);
        ncases++;
    }
    fclose(f);
    TU_CHECK(ncases >= 10, "%s: only %d cases read", path, ncases);
    printf("scipy table: %d cases, worst |diff| = %.3e (tolerance %.0e)\n", ncases, worst, TOL);
}

int main(void) {
    test_hand_cases();
    test_undefined();
    test_large();
    test_scipy_table();
    return tu_summary("test_rankcorr");
}
