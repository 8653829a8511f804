/* bench_train.c — training-step benchmark of the reference model (issue 8):
 * n_layer 6, n_embd 256, n_head 8, n_ctx 256, batch 8, vocab 256, mlp_dim from the command line.
 * Prints tokens/s, ms per step by phase, achieved GFLOP/s, MFU against cblas_sgemm measured in
 * the same process at the same thread count, and peak RSS against the theoretical bytes.
 *
 *   bench_train [--mlp-dim N] [--threads N] [--steps N] [--warmup N] [--dispersion V] [--json]
 * tokens_per_s / ms_step are from the mean timed step; tokens_per_s_median / ms_step_median
 * from the median one (robust to a neighbour's burst; bench/compare_torch.sh uses it);
 * cpu_ms_step_median is the process CPU time (all threads) of the median step, which other
 * processes sharing the core do not inflate (bench/grid_throughput.sh reports it too). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "blascore.h"

char *openblas_get_corename(void);
#include "dispersion.h"
#include "gpt.h"
#include "train.h"

static double sgemm_gflops(int threads) {
    /* a square product large enough to reach the BLAS plateau; best of 5 */
    int n = 1024;
    float *a = lmd_aligned_alloc((size_t)n * n * 4), *b = lmd_aligned_alloc((size_t)n * n * 4),
          *c = lmd_aligned_alloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)((i % 13) * 0.01);
    (void)threads;
    double best = 0.0;
    for (int r = 0; r < 6; r++) {
        double t0 = lmd_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = lmd_now() - t0;
        if (r > 0) best = fmax(best, 2.0 * n * n * (double)n / dt / 1e9);
    }
    free(a), free(b), free(c);
    return best;
}

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
        if (!strcmp(argv[i], "--mlp-dim") && i + 1 < argc) mlp = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dispersion") && i + 1 < argc) disp = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
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
    gpt_config cfg = {.vocab_size = 256, .n_ctx = 256, .n_layer = 6, .n_embd = 256, .n_head = 8,
                      .mlp_dim = mlp};
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
    int L = cfg.n_layer;
    for (int s = -warmup; s < steps; s++) { /* s < 0: untimed warm-up steps */
        double c0 = cpu_now(), t0 = lmd_now();
        gpt_forward(&m, inp, tgt, B, T);
        double t1 = lmd_now();
        if (dhidden) {
            float *hs[L + 1], *dh[L + 1];
            for (int l = 0; l <= L; l++) {
                hs[l] = gpt_hidden_state(&m, l);
                dh[l] = dhidden + (size_t)l * BTC;
            }
            memset(dhidden, 0, (size_t)(L + 1) * BTC * 4);
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
        }
    }
    double step = (t_fwd + t_disp + t_bwd + t_opt) / steps;
    double med = median_sorted(t_step, steps), cpu_med = median_sorted(c_step, steps);
    double flops = gpt_flops_per_step(&cfg, B, T);
    double achieved = flops / step / 1e9;
    double peak = sgemm_gflops(threads);
    double theo_mb = ((double)m.num_params * 4 * 4 + (double)(m.num_acts + m.num_grad_acts) * 4 +
                      (dhidden ? (double)(L + 1) * BTC * 4 : 0)) /
                     (1024.0 * 1024.0);
    double rss = peak_rss_mb();
    if (json) {
        printf("{\"mlp_dim\": %d, \"threads\": %d, \"dispersion\": \"%s\", \"tokens_per_s\": %.1f, "
               "\"ms_step\": %.3f, \"ms_forward\": %.3f, \"ms_dispersion\": %.3f, "
               "\"ms_backward\": %.3f, \"ms_optimizer\": %.3f, \"gflops\": %.2f, "
               "\"sgemm_gflops\": %.2f, \"mfu\": %.3f, \"peak_rss_mb\": %.1f, "
               "\"theoretical_mb\": %.1f, \"tokens_per_s_median\": %.1f, \"ms_step_median\": %.3f, "
               "\"cpu_ms_step_median\": %.3f, \"steps\": %d, \"warmup\": %d}\n",
               mlp, threads, disp, BT / step, step * 1e3, t_fwd / steps * 1e3,
               t_disp / steps * 1e3, t_bwd / steps * 1e3, t_opt / steps * 1e3, achieved, peak,
               achieved / peak, rss, theo_mb, BT / med, med * 1e3, cpu_med * 1e3, steps, warmup);
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
        printf("  model GFLOP/s %.1f   sgemm GFLOP/s %.1f   MFU %.3f\n", achieved, peak,
               achieved / peak);
        printf("  peak RSS %.1f MB   theoretical %.1f MB   ratio %.2f\n", rss, theo_mb,
               rss / theo_mb);
    }
    free(inp), free(tgt), free(dhidden), free(t_step), free(c_step);
    gpt_free(&m);
    return 0;
}
