/* par.h — small helpers shared by the threaded code (ops.c, dispersion.c, gpt.c, train.c): the
 * OpenMP thread count and id (1 and 0 without OpenMP), sums in a fixed number of lanes, whose
 * result does not depend on the build's vector width or the thread count, and a memset split
 * over the threads. */
#ifndef LMDISP_PAR_H
#define LMDISP_PAR_H

#include <stddef.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define LANES 8

static inline int par_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static inline int par_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* the LANES partial sums added in one fixed tree order */
static inline double lanes_total(const double *acc) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* p[0..n) = 0, in 64 KiB pieces over the threads: a serial memset of tens of MB is time the
 * other threads spend waiting at the next parallel region */
static inline void par_zero_floats(float *p, size_t n) {
    const size_t piece = 16384;
    size_t np = (n + piece - 1) / piece;
#pragma omp parallel for schedule(static) if (n >= 4 * piece)
    for (size_t k = 0; k < np; k++) {
        size_t i = k * piece, e = i + piece < n ? i + piece : n;
        memset(p + i, 0, (e - i) * sizeof(float));
    }
}

#endif
