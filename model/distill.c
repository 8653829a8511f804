/* distill.c — the distillation loss and its gradient (see distill.h). */
#include "distill.h"

#include <math.h>
#include <stdlib.h>

#include "util.h"

/* log sum_v exp(x_v * a) and its max, in double */
static double row_lse(const float *x, int V, double a) {
    double mx = -INFINITY;
    for (int v = 0; v < V; v++)
        if (x[v] * a > mx) mx = x[v] * a;
    double s = 0.0;
    for (int v = 0; v < V; v++) s += exp(x[v] * a - mx);
    return mx + log(s);
}

lmd_distill_losses lmd_distill_forward_backward(const float *s, const float *t, const int *targets,
                                                size_t N, int V, double alpha, double T,
                                                float *dlogits) {
    double *ce = lmd_calloc(N ? N : 1, sizeof(double)), *kl = lmd_calloc(N ? N : 1, sizeof(double));
    const double invT = 1.0 / T, inv_n = 1.0 / (double)N;
#pragma omp parallel for schedule(static) if (N * (size_t)V >= 65536)
    for (size_t r = 0; r < N; r++) {
        const float *sr = s + r * V, *tr = t + r * V;
        double lse1 = row_lse(sr, V, 1.0);   /* softmax(s) for the CE */
        double lse_s = row_lse(sr, V, invT); /* softmax(s/T) */
        double lse_t = row_lse(tr, V, invT); /* softmax(t/T) */
        ce[r] = lse1 - sr[targets[r]];
        double k = 0.0;
        float *d = dlogits ? dlogits + r * V : NULL;
        for (int v = 0; v < V; v++) {
            double lt = tr[v] * invT - lse_t, ls = sr[v] * invT - lse_s;
            double pt = exp(lt), qs = exp(ls);
            if (pt > 0.0) k += pt * (lt - ls);
            if (d)
                d[v] = (float)((1.0 - alpha) * inv_n * (exp(sr[v] - lse1) - (v == targets[r])) +
                               alpha * T * inv_n * (qs - pt));
        }
        kl[r] = k;
    }
    lmd_distill_losses out = {0.0, 0.0, 0.0};
    for (size_t r = 0; r < N; r++) {
        out.ce += ce[r];
        out.kl += kl[r];
    }
    out.ce *= inv_n;
    out.kl *= inv_n;
    out.loss = (1.0 - alpha) * out.ce + alpha * T * T * out.kl;
    free(ce);
    free(kl);
    return out;
}
