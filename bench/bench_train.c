/* bench_train.c — training-step benchmark of the reference model (issue 8):
 * n_layer 6, n_embd 256, n_head 8, n_ctx 256, batch 8, vocab 256, mlp_dim from the command line.
 * Prints tokens/s, ms per step by phase, achieved GFLOP/s, MFU against cblas_sgemm measured in
 * the same process at the same thread count, and peak RSS against the theoretical bytes.
 * MFU: a 1024^3 sgemm reference (best of 3 calls and of two ways to thread it, see
 * sgemm_ref_run) runs before the first timed step and after every one; step i's MFU is its
 * model GFLOP/s over the mean of the references just before and just after it, and the median
 * over steps is reported (with min and max): a ratio of neighbours in time.
 *
 *   bench_train [--mlp-dim N] [--threads N] [--steps N] [--warmup N] [--dispersion V] [--json]
 * tokens_per_s / ms_step are from the mean timed step; tokens_per_s_median / ms_step_median
 * from the median one (robust to a neighbour's burst; bench/compare_torch.sh uses it);
 * mfu is that median, mfu_min / mfu_max its range, sgemm_gflops the median reference;
 * cpu_ms_step_median is the process CPU time (all threads) of the median step, which other
 * processes sharing the core do not inflate (bench/grid_throughput.sh reports it too). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "blascore.h"

char *openblas_get_corename(void);
#include "dispersion.h"
#include "gpt.h"
#include "par.h"
#include "train.h"

/* The MFU reference: a square sgemm large enough to reach the BLAS plateau (1024^3, ~10 ms per
 * call on one core), run between the training steps, so that every step is compared with the
 * machine as it was within a second of that step (the host is shared: its speed drifts by 30 %
 * over seconds). Each reference point is the best of 3 back-to-back calls, and with more than
 * one thread the best of two ways to use the threads: OpenBLAS's own threaded sgemm, and the
 * rows split over OpenMP threads each calling a single-threaded sgemm (what the model's
 * matmuls do, model/ops.c). The larger rate is the reference, so the MFU is not flattered by
 * a slow way of threading the reference. */
typedef struct {
    int n;
    float *a, *b, *c;
} sgemm_ref;

static void sgemm_ref_init(sgemm_ref *r) {
    r->n = 1024;
    size_t nn = (size_t)r->n * r->n;
    r->a = lmd_aligned_alloc(nn * 4), r->b = lmd_aligned_alloc(nn * 4),
    r->c = lmd_aligned_alloc(nn * 4);
    for (size_t i = 0; i < nn; i++) r->a[i] = r->b[i] = (float)((i % 13) * 0.01);
}

static void sgemm_ref_call(sgemm_ref *r, int threads, int split) {
    int n = r->n;
    if (!split) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, r->a, n, r->b, n, 0.0f,
                    r->c, n);
        return;
    }
    openblas_set_num_threads(1);
#pragma omp parallel num_threads(threads)
    {
        int p = omp_get_thread_num(), r0 = p * n / threads, r1 = (p + 1) * n / threads;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, n, n, 1.0f,
                    r->a + (size_t)r0 * n, n, r->b, n, 0.0f, r->c + (size_t)r0 * n, n);
    }
    openblas_set_num_threads(threads);
}

/* GFLOP/s of the reference now. OpenBLAS's threads keep spinning for a while after a threaded
 * call (its thread timeout, ~0.1 s), which would slow the OpenMP threads of the next training
 * step on the same cores, so with threads > 1 the bench then waits 0.2 s (untimed). */
static double sgemm_ref_run(sgemm_ref *r, int threads) {
    int n = r->n;
    double best = 0.0;
    for (int split = 0; split < (threads > 1 ? 2 : 1); split++)
        for (int k = 0; k < 3; k++) {
            double t0 = lmd_now();
            sgemm_ref_call(r, threads, split);
            best = fmax(best, 2.0 * n * n * (double)n / (lmd_now() - t0) / 1e9);
        }
    if (threads > 1) nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 200000000}, NULL);
    return best;
}

static void sgemm_ref_free(sgemm_ref *r) { free(r->a), free(r->b), free(r->c); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double median_sorted(double *x, int n) {
    qsort(x, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
    lmd_blas_core_select(argv); /* before any BLAS call: see model/blascore.h */
    int mlp = 1024, threads = 1, steps = 10, warmup = 2, json = 0;
    const char *disp = "off";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mlp-dim") && i + 1 < argc)
            mlp = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dispersion") && i + 1 < argc)
            disp = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--blas-core")) { /* for compare_torch.sh: same kernels */
            printf("%s\n", openblas_get_corename());
            return 0;
        } else {
            fprintf(stderr,
                    "usage: %s [--mlp-dim N] [--threads N] [--steps N] [--warmup N] "
                    "[--dispersion V] [--json] | --blas-core\n",
                    argv[0]);
            return 2;
        }
    }
    if (mlp < 1 || threads < 1 || steps < 1 || warmup < 0) {
        fprintf(stderr, "bench_train: --mlp-dim, --threads, --steps must be >= 1, --warmup >= 0\n");
        return 2;
    }
    gpt_set_threads(threads);
    gpt_config cfg = {
        .vocab_size = 256, .n_ctx = 256, .n_layer = 6, .n_embd = 256, .n_head = 8, .mlp_dim = mlp};
    const int B = 8, T = 256;
    lmd_err err;
    gpt_model m;
    if (gpt_create(&m, &cfg, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gpt_init(&m, 0);
    lmd_disp_opts d = lmd_disp_default();
    if (lmd_disp_parse_variant(disp, &d.variant, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    lmd_rng rng, drng;
    lmd_rng_seed(&rng, 1, 99);
    lmd_rng_seed(&drng, 1, LMD_STREAM_DISPERSION);
    size_t BT = (size_t)B * T, BTC = BT * cfg.n_embd;
    int *inp = lmd_calloc(BT, sizeof(int)), *tgt = lmd_calloc(BT, sizeof(int));
    for (size_t i = 0; i < BT; i++) {
        inp[i] = (int)lmd_rng_below(&rng, 256);
        tgt[i] = (int)lmd_rng_below(&rng, 256);
    }
    float *dhidden = d.variant != DISP_OFF ? lmd_calloc((size_t)(cfg.n_layer + 1) * BTC, 4) : NULL;
    gpt_alloc_acts(&m, B, T);
    gpt_alloc_grads(&m);
    gpt_alloc_moments(&m);
    gpt_adamw opt = gpt_adamw_default();
    double t_fwd = 0, t_disp = 0, t_bwd = 0, t_opt = 0;
    double *t_step = lmd_calloc((size_t)steps, sizeof(double));
    double *c_step = lmd_calloc((size_t)steps, sizeof(double));
    double *g_ref = lmd_calloc((size_t)steps + 1, sizeof(double)); /* sgemm before step i: [i] */
    sgemm_ref ref;
    sgemm_ref_init(&ref);
    int L = cfg.n_layer;
    for (int s = -warmup; s < steps; s++) { /* s < 0: untimed warm-up steps */
        if (s == 0) {
            sgemm_ref_run(&ref, threads); /* warm the reference's packing buffers, untimed */
            g_ref[0] = sgemm_ref_run(&ref, threads);
        }
        double c0 = cpu_now(), t0 = lmd_now();
        gpt_forward(&m, inp, tgt, B, T);
        double t1 = lmd_now();
        if (dhidden) {
            float *hs[L + 1], *dh[L + 1];
            for (int l = 0; l <= L; l++) {
                hs[l] = gpt_hidden_state(&m, l);
                dh[l] = dhidden + (size_t)l * BTC;
            }
            par_zero_floats(dhidden, (size_t)(L + 1) * BTC); /* as model/train.c does */
            lmd_disp_forward_backward(&d, hs, L, B, T, cfg.n_embd, dh, &drng);
        }
        double t2 = lmd_now();
        gpt_zero_grad(&m);
        gpt_backward(&m, dhidden);
        double t3 = lmd_now();
        gpt_clip_grad_norm(&m, 1.0);
        gpt_adamw_update(&m, &opt, 1e-4);
        double t4 = lmd_now();
        if (s >= 0) {
            t_fwd += t1 - t0, t_disp += t2 - t1, t_bwd += t3 - t2, t_opt += t4 - t3;
            t_step[s] = t4 - t0;
            c_step[s] = cpu_now() - c0;
            g_ref[s + 1] = sgemm_ref_run(&ref, threads);
        }
    }
    sgemm_ref_free(&ref);
    double step = (t_fwd + t_disp + t_bwd + t_opt) / steps;
    double med = median_sorted(t_step, steps), cpu_med = median_sorted(c_step, steps);
    double flops = gpt_flops_per_step(&cfg, B, T);
    double achieved = flops / step / 1e9;
    double *mfu_s = lmd_calloc((size_t)steps, sizeof(double));
    for (int i = 0; i < steps; i++)
        mfu_s[i] = flops / t_step[i] / 1e9 / (0.5 * (g_ref[i] + g_ref[i + 1]));
    double mfu = median_sorted(mfu_s, steps), mfu_min = mfu_s[0], mfu_max = mfu_s[steps - 1];
    /* gpt_flops_per_step counts the attention products over the full T x T square (the usual
     * convention); causal attention needs only the T(T+1)/2 pairs on and below the diagonal.
     * The MFU of those FLOPs alone is the stricter figure (same per-step ratios, scaled). */
    double att_full = 3.0 * L * (double)B * T * 4.0 * cfg.n_embd * T;
    double flops_causal = flops - att_full * (1.0 - (T + 1.0) / (2.0 * T));
    double mfu_causal = mfu * flops_causal / flops;
    double peak = median_sorted(g_ref, steps + 1);
    double theo_mb = ((double)m.num_params * 4 * 4 + (double)(m.num_acts + m.num_grad_acts) * 4 +
                      (dhidden ? (double)(L + 1) * BTC * 4 : 0)) /
                     (1024.0 * 1024.0);
    double rss = peak_rss_mb();
    if (json) {
        printf("{\"mlp_dim\": %d, \"threads\": %d, \"dispersion\": \"%s\", \"tokens_per_s\": %.1f, "
               "\"ms_step\": %.3f, \"ms_forward\": %.3f, \"ms_dispersion\": %.3f, "
               "\"ms_backward\": %.3f, \"ms_optimizer\": %.3f, \"gflops\": %.2f, "
               "\"sgemm_gflops\": %.2f, \"mfu\": %.3f, \"mfu_min\": %.3f, \"mfu_max\": %.3f, "
               "\"mfu_causal\": %.3f, "
               "\"peak_rss_mb\": %.1f, "
               "\"theoretical_mb\": %.1f, \"tokens_per_s_median\": %.1f, \"ms_step_median\": %.3f, "
               "\"cpu_ms_step_median\": %.3f, \"steps\": %d, \"warmup\": %d}\n",
               mlp, threads, disp, BT / step, step * 1e3, t_fwd / steps * 1e3, t_disp / steps * 1e3,
               t_bwd / steps * 1e3, t_opt / steps * 1e3, achieved, peak, mfu, mfu_min, mfu_max,
               mfu_causal, rss, theo_mb, BT / med, med * 1e3, cpu_med * 1e3, steps, warmup);
    } else {
        printf("reference model n_layer 6 n_embd 256 n_head 8 T 256 B 8 vocab 256 mlp_dim %d, "
               "%d thread(s), dispersion %s, %d steps\n",
               mlp, threads, disp, steps);
        printf("  tokens/s %.0f   ms/step %.1f (forward %.1f, dispersion %.1f, backward %.1f, "
               "optimizer %.1f)\n",
               BT / step, step * 1e3, t_fwd / steps * 1e3, t_disp / steps * 1e3,
               t_bwd / steps * 1e3, t_opt / steps * 1e3);
        printf("  median step %.1f ms = %.0f tokens/s, CPU time %.1f ms   (%d timed steps after %d "
               "warm-up)\n",
               med * 1e3, BT / med, cpu_med * 1e3, steps, warmup);
        printf("  model GFLOP/s %.1f   sgemm GFLOP/s %.1f (median; %.1f-%.1f)   MFU %.3f "
               "(median of per-step ratios to the adjacent sgemm; %.3f-%.3f)\n",
               achieved, peak, g_ref[0], g_ref[steps], mfu, mfu_min, mfu_max);
        printf("  MFU %.3f counting only the causal attention products (T(T+1)/2 of T^2 score "
               "pairs: %.1f of %.1f model GFLOP per step)\n",
               mfu_causal, flops_causal / 1e9, flops / 1e9);
        printf("  peak RSS %.1f MB   theoretical %.1f MB   ratio %.2f\n", rss, theo_mb,
               rss / theo_mb);
    }
    free(inp), free(tgt), free(dhidden), free(t_step), free(c_step), free(g_ref), free(mfu_s);
    gpt_free(&m);
    return 0;
}
