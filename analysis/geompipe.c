/* geompipe.c — the measurement thread of geompipe.h: one worker, one buffer, one hidden state
 * in flight. */
#include "geompipe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern int openblas_get_num_threads(void);

struct lmd_geom_pipe {
    lmd_geom_acc *acc;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    float *buf; /* the copy the worker reads */
    size_t cap; /* floats in buf */
    int layer;  /* the job: buf holds n_seq sequences of hidden state `layer` */
    long n_seq;
    int busy; /* 1 while a job is handed over and not yet done */
    int quit;
    int failed; /* a job failed: msg is its error; later jobs are refused */
    lmd_err msg;
};

static void *pipe_worker(void *arg) {
    lmd_geom_pipe *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->busy && !p->quit) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->busy) break; /* quit, nothing pending */
        int layer = p->layer;
        long n_seq = p->n_seq;
        pthread_mutex_unlock(&p->mu);
        lmd_err e = {{0}};
        int rc = lmd_geom_acc_add(p->acc, layer, p->buf, n_seq, &e);
        pthread_mutex_lock(&p->mu);
        if (rc && !p->failed) {
            p->failed = 1;
            p->msg = e;
        }
        p->busy = 0;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int lmd_geom_pipe_start(lmd_geom_pipe **out, lmd_geom_acc *acc, lmd_err *err) {
    *out = NULL;
    int nt = openblas_get_num_threads();
    if (nt > 1)
        return lmd_errf(err,
                        "a measurement thread needs OpenBLAS at 1 thread (it runs %d): "
                        "the thread count is shared by the forward and the measurement",
                        nt);
    lmd_geom_pipe *p = lmd_calloc(1, sizeof *p);
    p->acc = acc;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int rc = pthread_create(&p->th, NULL, pipe_worker, p);
    if (rc) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return lmd_errf(err, "could not start the measurement thread: %s", strerror(rc));
    }
    *out = p;
    return 0;
}

/* waits for the pending job with p->mu held */
static void pipe_wait_locked(lmd_geom_pipe *p) {
    while (p->busy) pthread_cond_wait(&p->cv, &p->mu);
}

int lmd_geom_pipe_add(lmd_geom_pipe *p, int layer, const float *x, long n_seq, lmd_err *err) {
    pthread_mutex_lock(&p->mu);
    pipe_wait_locked(p);
    if (p->failed) {
        if (err) *err = p->msg;
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    pthread_mutex_unlock(&p->mu);
    /* the worker is idle until busy is set: the accumulator and buf are the caller's now.
     * Bad arguments get the serial call's own message, synchronously (it changes nothing). */
    if (layer < 0 || layer >= p->acc->n_layers || n_seq <= 0 || !x)
        return lmd_geom_acc_add(p->acc, layer, x, n_seq, err);
    size_t n = (size_t)n_seq * (size_t)p->acc->T * (size_t)p->acc->d;
    if (n > p->cap) {
        free(p->buf);
        p->buf = lmd_aligned_alloc(n * sizeof(float));
        p->cap = n;
    }
    memcpy(p->buf, x, n * sizeof(float));
    pthread_mutex_lock(&p->mu);
    p->layer = layer;
    p->n_seq = n_seq;
    p->busy = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int lmd_geom_pipe_wait(lmd_geom_pipe *p, lmd_err *err) {
    pthread_mutex_lock(&p->mu);
    pipe_wait_locked(p);
    int rc = 0;
    if (p->failed) {
        if (err) *err = p->msg;
        rc = -1;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int lmd_geom_pipe_stop(lmd_geom_pipe *p, lmd_err *err) {
    if (!p) return 0;
    int rc = lmd_geom_pipe_wait(p, err);
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->buf);
    free(p);
    return rc;
}
