/* geompipe.h — a measurement thread: hidden states handed to a geometry accumulator
 * (geometry.h) are added on a worker thread of their own, so the measurement of hidden state
 * l runs while the caller's forward pass computes block l + 1.
 *
 *     lmd_geom_pipe *p;
 *     if (lmd_geom_pipe_start(&p, &acc, &err)) ...        // acc from lmd_geom_acc_init
 *     ... for every hidden state: lmd_geom_pipe_add(p, l, h, n_seq, &err) ...
 *     rc = lmd_geom_pipe_stop(p, &err);                  // waits, joins; then acc_finish
 *
 * Results: the worker calls lmd_geom_acc_add with exactly the arguments (and data) the caller
 * gave, one call at a time, in the order given, so the accumulator ends bitwise identical to
 * the serial calls (tests/test_geompipe.c). Between start and stop the accumulator belongs to
 * the worker: the caller must not touch it.
 *
 * Cost: add copies the hidden state (n_seq x T x d floats) into the pipe's one buffer, after
 * waiting for the worker to be done with the previous one; so one hidden state is in flight
 * and the pipe holds one more copy of the activations. Threads: the worker's BLAS and LAPACK
 * calls (ssyrk, dsyrk, dsyevd) run on the worker itself only if OpenBLAS runs one thread:
 * start refuses (-1, message) when openblas_get_num_threads() > 1, since OpenBLAS 0.3.21's
 * thread count is one global setting shared by both threads. */
#ifndef LMDISP_GEOMPIPE_H
#define LMDISP_GEOMPIPE_H

#include "geometry.h"

typedef struct lmd_geom_pipe lmd_geom_pipe;

/* Starts the worker for accumulator acc. Returns 0, or -1 with a message (OpenBLAS threads
 * > 1, thread creation failed); *p is NULL then. */
int lmd_geom_pipe_start(lmd_geom_pipe **p, lmd_geom_acc *acc, lmd_err *err);

/* Hands x = (n_seq, T, d) floats of hidden state `layer` to the worker (copied: x may change
 * as soon as this returns). Returns 0, or -1 with the message of an earlier add that failed
 * on the worker (that add's error; later adds are not done). */
int lmd_geom_pipe_add(lmd_geom_pipe *p, int layer, const float *x, long n_seq, lmd_err *err);

/* Waits until the worker has added everything handed to it; returns 0 or -1 with the first
 * worker error. The pipe stays usable. */
int lmd_geom_pipe_wait(lmd_geom_pipe *p, lmd_err *err);

/* lmd_geom_pipe_wait, then ends the worker and frees the pipe (p may be NULL: returns 0). */
int lmd_geom_pipe_stop(lmd_geom_pipe *p, lmd_err *err);

#endif
