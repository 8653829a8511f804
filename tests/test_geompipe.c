/* test_geompipe.c — the measurement thread (analysis/geompipe.h) leaves the accumulator
 * bitwise identical to serial lmd_geom_acc_add calls: same cosine sums, spectra sums and
 * finished metrics, over several layers, chunks of sequences of different sizes, a buffer
 * reused by the caller right after each add, a non-finite hidden state, and the same error
 * for a bad layer. It also refuses OpenBLAS at more than one thread. And the sequences of one
 * add spread over 2 threads (OpenMP and OpenBLAS at 2) give the same accumulator as 1 thread,
 * with OpenBLAS's thread count restored after the add, also with the spectra off. */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "geometry.h"
#include "geompipe.h"
#include "testutil.h"

extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);

enum { L1 = 5, T = 24, D = 40, NSEQ = 7 };

/* hidden state of layer l, sequence s: random, with a direction shared by all rows that grows
 * with l (condensation) and row norms spread over decades, so the spectra are not trivial */
static void fill(float *x, int l, int s, uint64_t seed) {
    lmd_rng r;
    lmd_rng_seed(&r, seed + (uint64_t)(l * 100 + s), 3);
    float dir[D];
    for (int j = 0; j < D; j++) dir[j] = (float)lmd_rng_normal(&r);
    for (int t = 0; t < T; t++) {
        double scale = pow(10.0, (double)(t % 5) - 2.0);
        for (int j = 0; j < D; j++)
            x[t * D + j] = (float)(scale * (lmd_rng_normal(&r) + 0.5 * l * dir[j]));
    }
}

static int same_acc(const lmd_geom_acc *a, const lmd_geom_acc *b) {
    return !memcmp(a->csum, b->csum, (size_t)L1 * lmd_geom_tri_size(T) * sizeof(double)) &&
           !memcmp(a->ent_sum, b->ent_sum, L1 * sizeof(double)) &&
           !memcmp(a->mev_sum, b->mev_sum, L1 * sizeof(double)) &&
           !memcmp(a->n_seq, b->n_seq, L1 * sizeof(long));
}

static int same_geom(const lmd_geom *a, const lmd_geom *b) {
    return a->n_seq == b->n_seq && !memcmp(a->layer_mean, b->layer_mean, L1 * sizeof(double)) &&
           !memcmp(a->offdiag_mean, b->offdiag_mean, L1 * sizeof(double)) &&
           !memcmp(a->sv_entropy, b->sv_entropy, L1 * sizeof(double)) &&
           !memcmp(a->mev, b->mev, L1 * sizeof(double)) &&
           !memcmp(a->hist, b->hist, (size_t)L1 * a->nbins * sizeof(double)) &&
           !memcmp(&a->spearman, &b->spearman, sizeof(double)) &&
           !memcmp(&a->kendall, &b->kendall, sizeof(double)) &&
           !memcmp(a->last_n_mean, b->last_n_mean, sizeof a->last_n_mean);
}

int main(void) {
    lmd_err err = {{0}};
    openblas_set_num_threads(1); /* as ctest's environment says; also when run by hand */
    lmd_geom_acc ser, par;
    TU_CHECK(!lmd_geom_acc_init(&ser, L1, T, D, LMD_GEOM_NBINS, &err), "%s", err.msg);
    TU_CHECK(!lmd_geom_acc_init(&par, L1, T, D, LMD_GEOM_NBINS, &err), "%s", err.msg);
    lmd_geom_pipe *p = NULL;
    TU_CHECK(!lmd_geom_pipe_start(&p, &par, &err), "%s", err.msg);
    if (!p) return tu_summary("test_geompipe");
    /* chunks of 3, 1 and 3 sequences, every layer per chunk, as a streamed forward adds */
    const int chunks[3] = {3, 1, 3};
    float *x = lmd_calloc((size_t)NSEQ * T * D, sizeof *x);
    int s0 = 0;
    for (int c = 0; c < 3; c++) {
        for (int l = 0; l < L1; l++) {
            for (int s = 0; s < chunks[c]; s++) fill(x + (size_t)s * T * D, l, s0 + s, 11);
            if (c == 1 && l == 2) x[5] = NAN; /* one diverged hidden state: NaN metrics */
            if (c == 2 && l == 2) x[(size_t)T * D + 7] = NAN; /* the same, mid-chunk */
            TU_CHECK(!lmd_geom_acc_add(&ser, l, x, chunks[c], &err), "%s", err.msg);
            TU_CHECK(!lmd_geom_pipe_add(p, l, x, chunks[c], &err), "%s", err.msg);
            /* the caller overwrites its buffer at once: the pipe must have copied it */
            memset(x, 0xff, (size_t)chunks[c] * T * D * sizeof *x);
        }
        s0 += chunks[c];
    }
    TU_CHECK(!lmd_geom_pipe_wait(p, &err), "%s", err.msg);
    TU_CHECK(same_acc(&ser, &par), "accumulator after the measurement thread differs from serial");

    /* a bad layer: the serial call's message, and the pipe still works afterwards */
    lmd_err e1 = {{0}}, e2 = {{0}};
    int r1 = lmd_geom_acc_add(&ser, L1, x, 1, &e1);
    int r2 = lmd_geom_pipe_add(p, L1, x, 1, &e2);
    TU_CHECK(r1 == -1 && r2 == -1 && !strcmp(e1.msg, e2.msg), "bad layer: '%s' vs '%s'", e1.msg,
             e2.msg);
    r2 = lmd_geom_pipe_add(p, 0, NULL, 2, &e2);
    TU_CHECK(r2 == -1 && strstr(e2.msg, "NULL"), "NULL data: '%s'", e2.msg);
    TU_CHECK(!lmd_geom_pipe_add(p, 0, x, 0, &err), "0 sequences is a no-op: %s", err.msg);
    TU_CHECK(!lmd_geom_pipe_stop(p, &err), "%s", err.msg);
    TU_CHECK(same_acc(&ser, &par), "accumulator differs after the refused adds");

    lmd_geom g1, g2;
    TU_CHECK(!lmd_geom_acc_finish(&ser, &g1, &err), "%s", err.msg);
    TU_CHECK(!lmd_geom_acc_finish(&par, &g2, &err), "%s", err.msg);
    TU_CHECK(same_geom(&g1, &g2), "finished metrics differ");
    TU_CHECK(isnan(g1.sv_entropy[2]) && isfinite(g1.sv_entropy[1]),
             "the NaN hidden state gives a NaN entropy at layer 2 only (%g, %g)", g1.sv_entropy[2],
             g1.sv_entropy[1]);
    printf("layer means (serial = thread): %.17g %.17g %.17g %.17g %.17g\n", g2.layer_mean[0],
           g2.layer_mean[1], g2.layer_mean[2], g2.layer_mean[3], g2.layer_mean[4]);
    lmd_geom_free(&g1);
    lmd_geom_free(&g2);

    /* OpenBLAS at 2 threads: refused, since its thread count is one global setting */
    openblas_set_num_threads(2);
    lmd_geom_pipe *q = (lmd_geom_pipe *)&err;
    TU_CHECK(lmd_geom_pipe_start(&q, &par, &err) == -1 && !q && strstr(err.msg, "1 thread"),
             "2 BLAS threads: '%s'", err.msg);
    openblas_set_num_threads(1);
    TU_CHECK(lmd_geom_pipe_stop(NULL, &err) == 0, "stop(NULL)");

    /* the same adds with 2 threads: sequences of each add measured in parallel */
    lmd_geom_acc two;
    TU_CHECK(!lmd_geom_acc_init(&two, L1, T, D, LMD_GEOM_NBINS, &err), "%s", err.msg);
    openblas_set_num_threads(2);
    omp_set_num_threads(2);
    s0 = 0;
    for (int c = 0; c < 3; c++) {
        for (int l = 0; l < L1; l++) {
            for (int s = 0; s < chunks[c]; s++) fill(x + (size_t)s * T * D, l, s0 + s, 11);
            if (c == 1 && l == 2) x[5] = NAN;
            if (c == 2 && l == 2) x[(size_t)T * D + 7] = NAN;
            TU_CHECK(!lmd_geom_acc_add(&two, l, x, chunks[c], &err), "%s", err.msg);
        }
        s0 += chunks[c];
    }
    int blas_after = openblas_get_num_threads();
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    TU_CHECK(blas_after == 2, "OpenBLAS threads after an add: %d, want 2 restored", blas_after);
    TU_CHECK(two.n_tws == 2, "the spectra ran on %d thread scratch sets, want 2", two.n_tws);
    TU_CHECK(same_acc(&ser, &two), "accumulator at 2 threads differs from 1 thread");
    lmd_geom_acc_free(&two);

    /* cosine geometry only (no_spectrum): 3 sequences at 1 and at 2 threads, same sums */
    lmd_geom_acc n1, n2;
    TU_CHECK(!lmd_geom_acc_init(&n1, L1, T, D, LMD_GEOM_NBINS, &err), "%s", err.msg);
    TU_CHECK(!lmd_geom_acc_init(&n2, L1, T, D, LMD_GEOM_NBINS, &err), "%s", err.msg);
    n1.no_spectrum = n2.no_spectrum = 1;
    for (int l = 0; l < L1; l++) {
        for (int s = 0; s < 3; s++) fill(x + (size_t)s * T * D, l, s, 11);
        TU_CHECK(!lmd_geom_acc_add(&n1, l, x, 3, &err), "%s", err.msg);
        openblas_set_num_threads(2);
        omp_set_num_threads(2);
        TU_CHECK(!lmd_geom_acc_add(&n2, l, x, 3, &err), "%s", err.msg);
        openblas_set_num_threads(1);
        omp_set_num_threads(1);
    }
    TU_CHECK(!memcmp(n1.csum, n2.csum, (size_t)L1 * lmd_geom_tri_size(T) * sizeof(double)) &&
                 !memcmp(n1.n_seq, n2.n_seq, L1 * sizeof(long)),
             "no_spectrum: cosine sums at 2 threads differ from 1 thread");
    TU_CHECK(isnan(n2.ent_sum[0]) && isnan(n2.mev_sum[L1 - 1]) && n2.n_seq[0] == 3,
             "no_spectrum at 2 threads: entropy %g, MEV %g (want NaN), %ld sequences",
             n2.ent_sum[0], n2.mev_sum[L1 - 1], n2.n_seq[0]);
    lmd_geom_acc_free(&n1);
    lmd_geom_acc_free(&n2);

    free(x);
    lmd_geom_acc_free(&ser);
    lmd_geom_acc_free(&par);
    return tu_summary("test_geompipe");
}
