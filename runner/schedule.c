/* schedule.c — claim order, cost model, simulation, bounds and the moldable plan (schedule.h). */
#include "schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* ---- claim order ---- */

/* a claims before b: more FLOPs first, then lower grid index */
static int claims_before(const lmd_spec *s, size_t a, size_t b) {
    const lmd_cell *x = &s->cells[a], *y = &s->cells[b];
    return x->flops > y->flops || (x->flops == y->flops && x->index < y->index);
}

/* A stable bottom-up merge sort: O(n log n) for studies of up to LMD_SPEC_MAX_CELLS cells
 * (the insertion sort it replaces was quadratic), and no global context for the comparison.
 * The key is a strict order on distinct cells, so the result equals any other correct sort. */
void lmd_schedule_order(const lmd_spec *s, const size_t *subset, size_t n, size_t *order) {
    if (n == 0) return;
    memcpy(order, subset, n * sizeof *order);
    size_t *tmp = lmd_calloc(n, sizeof *tmp);
    size_t *src = order, *dst = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            /* take from the right run only when it strictly claims first: stability */
            while (i < mid && j < hi)
                dst[k++] = claims_before(s, src[j], src[i]) ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != order) memcpy(order, src, n * sizeof *order);
    free(tmp);
}

/* ---- cost model ---- */

lmd_cost_model lmd_cost_model_default(void) {
    /* Fitted on the 2-core development VM in CPU seconds (docs/SCHEDULING.md, "Cost model":
     * bench_train and one-cell `lmdisp run`s, differences of runs with different step counts,
     * least squares). CPU rather than wall seconds because the machine was shared (load 4-5 on
     * 2 cores); only ratios between cells and group sizes matter to the schedule, the absolute
     * scale only sets the hours. The network numbers are assumptions for a typical cluster. */
    lmd_cost_model m = {
        .gflops_peak = 20.18,
        .s_per_token = 37.64e-6,
        .s_per_param = 0.58e-9,
        .s_per_step = 0.0893,
        /* off, angular_spread, decorrelation, l2_repel, orthogonalization (not measured: taken
         * as decorrelation, which it resembles in cost) */
        .disp_s_per_seq = {0.0, 0.0230, 0.0181, 0.0216, 0.0181},
        .track_s_per_fwd_gflop = 0.0657,
        .track_s_fixed = 0.0,
        .startup_s = 5.0,
        .net_bytes_per_s = 10e9,
        .net_latency_s = 5e-6,
        .thread_speedup = 1.37, /* docs/PERFORMANCE.md: 21.3 vs 15.6 GFLOP/s on 2 vs 1 thread */
    };
    return m;
}

double lmd_cost_allreduce_seconds(const lmd_cost_model *m, double n_params, int g) {
    if (g <= 1) return 0.0;
    /* ring all-reduce: every rank sends and receives 2 (g-1)/g of the buffer; the latency term
     * of a tree/recursive-doubling start-up grows with log2 g */
    double bytes = 4.0 * n_params;
    return 2.0 * (g - 1) / g * bytes / m->net_bytes_per_s + m->net_latency_s * ceil(log2(g));
}

static double thread_factor(const lmd_cost_model *m, int threads) {
    if (threads <= 1) return 1.0;
    return pow(m->thread_speedup, log2((double)threads));
}

double lmd_cost_step_seconds(const lmd_cost_model *m, const lmd_cell *c, int g, int threads) {
    int B = c->train.B, T = c->train.T;
    if (g < 1 || B % g != 0) return INFINITY;
    int Br = B / g;
    double F = gpt_flops_per_step(&c->cfg, Br, T);
    double tokens = (double)Br * T;
    double compute = F / (m->gflops_peak * 1e9) + tokens * m->s_per_token +
                     (double)c->n_params * m->s_per_param + m->s_per_step;
    if (c->kd.on) /* the distillation teacher's forward: a third of its training step */
        compute += gpt_flops_per_step(&c->kd.teacher_cfg, Br, T) / 3.0 / (m->gflops_peak * 1e9);
    double disp = 0.0;
    int v = (int)c->train.disp.variant;
    if (v > 0 && v < 5) {
        /* all pairs of the token subset, per layer, per sequence (dispersion.h) */
        double Ts = T < c->train.disp.max_tokens ? T : c->train.disp.max_tokens;
        double layers = c->train.disp.location == DISP_LOC_LAST ? 1.0 : c->cfg.n_layer + 1.0;
        double scale = layers * Ts * Ts * c->cfg.n_embd / (7.0 * 256.0 * 256.0 * 256.0);
        disp = m->disp_s_per_seq[v] * Br * scale;
    }
    /* train.accumulate: that many micro-batches (and group reductions) per optimizer step */
    return ((compute + disp) / thread_factor(m, threads) +
            lmd_cost_allreduce_seconds(m, (double)c->n_params, g)) *
           (c->train.accumulate > 1 ? c->train.accumulate : 1);
}

double lmd_cost_cell_seconds(const lmd_cost_model *m, const lmd_cell *c, int g, int threads) {
    double step = lmd_cost_step_seconds(m, c, g, threads);
    if (!isfinite(step)) return INFINITY;
    /* tracked steps run on the group's rank 0 alone: validation batches of the full B x T and
     * the evaluation windows, forward only (a third of gpt_flops_per_step's 3 x forward) */
    double val = gpt_flops_per_step(&c->cfg, c->train.B, c->train.T) / 3.0 * LMD_VAL_BATCHES;
    double eval =
        gpt_flops_per_step(&c->cfg, c->tracking.eval_sequences, c->tracking.eval_seq_len) / 3.0;
    double track = m->track_s_per_fwd_gflop * (val + eval) / 1e9 / thread_factor(m, threads) +
                   m->track_s_fixed;
    return m->startup_s + (double)c->train.steps * step + c->tracking.n_steps * track;
}

/* ---- simulation ---- */

/* Min-heap of groups keyed by (free time, group index): the next group to claim. */
typedef struct {
    double t;
    size_t g;
} slot;

static int slot_less(slot a, slot b) { return a.t < b.t || (a.t == b.t && a.g < b.g); }

static void heap_down(slot *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < n && slot_less(h[l], h[s])) s = l;
        if (r < n && slot_less(h[r], h[s])) s = r;
        if (s == i) return;
        slot t = h[i];
        h[i] = h[s];
        h[s] = t;
        i = s;
    }
}

double lmd_sched_simulate(const double *time, const size_t *order, size_t n, size_t n_groups,
                          size_t *group_of, double *start) {
    if (n == 0 || n_groups == 0) return 0.0;
    /* groups beyond n never claim anything */
    size_t m = n_groups < n ? n_groups : n;
    slot *h = lmd_calloc(m, sizeof *h);
    for (size_t g = 0; g < m; g++) h[g] = (slot){0.0, g}; /* already a heap */
    double makespan = 0.0;
    for (size_t k = 0; k < n; k++) {
        size_t j = order[k];
        if (group_of) group_of[j] = h[0].g;
        if (start) start[j] = h[0].t;
        h[0].t += time[j];
        if (h[0].t > makespan) makespan = h[0].t;
        heap_down(h, m, 0);
    }
    free(h);
    return makespan;
}

/* ---- bounds ---- */

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

double lmd_sched_lower_bound_rigid(const double *time, size_t n, size_t m) {
    if (n == 0 || m == 0) return 0.0;
    double *p = lmd_calloc(n, sizeof *p);
    memcpy(p, time, n * sizeof *p);
    qsort(p, n, sizeof *p, cmp_desc);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += p[i];
    double lb = fmax(sum / (double)m, p[0]);
    if (n > m) lb = fmax(lb, p[m - 1] + p[m]);
    free(p);
    return lb;
}

/* Sum over jobs of the least area g*time among sizes with time <= T; INFINITY if some job
 * has no such size. */
static double area_within(const double *time, size_t n, const int *sizes, int ns, int P, double T) {
    double area = 0.0;
    for (size_t j = 0; j < n; j++) {
        double best = INFINITY;
        for (int k = 0; k < ns; k++) {
            double t = time[j * (size_t)ns + k];
            if (sizes[k] <= P && t <= T && sizes[k] * t < best) best = sizes[k] * t;
        }
        if (!isfinite(best)) return INFINITY;
        area += best;
    }
    return area;
}

double lmd_sched_lower_bound_moldable(const double *time, size_t n, const int *sizes, int ns,
                                      int P) {
    if (n == 0) return 0.0;
    /* lo: the least T at which every job has some size (max over jobs of the least time);
     * feasibility is monotone in T (area_within is non-increasing, P*T increasing) */
    double lo = 0.0;
    for (size_t j = 0; j < n; j++) {
        double best = INFINITY;
        for (int k = 0; k < ns; k++)
            if (sizes[k] <= P) best = fmin(best, time[j * (size_t)ns + k]);
        lo = fmax(lo, best);
    }
    if (!isfinite(lo)) return INFINITY;
    if (area_within(time, n, sizes, ns, P, lo) <= P * lo) return lo;
    double hi = lo;
    while (!(area_within(time, n, sizes, ns, P, hi) <= P * hi)) hi *= 2.0;
    for (int it = 0; it < 200 && hi - lo > 1e-12 * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (area_within(time, n, sizes, ns, P, mid) <= P * mid)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

/* ---- the moldable plan ---- */

/* Scratch of the planner. An *assignment* puts every job in a size class; it is evaluated by
 * giving each class the groups that balance the finishing times of the classes. */
typedef struct {
    const double *time;
    size_t n;
    const int *sizes;
    int ns;
    int P;
    int *cls;       /* [n] class of each job, the assignment being evaluated */
    double *dur;    /* [n] time of each job in its class */
    size_t *idx;    /* [n] jobs by class, each class longest first (ties by job index) */
    size_t *cstart; /* [ns+1] */
    size_t *cnt;    /* [ns] groups per class */
    double *key;    /* [n] sort key scratch */
    int n_draws;    /* model-error draws used to score a plan (0: the model is exact) */
    double *factor; /* [n_draws * n] actual / modeled time of each job in each draw */
    double *act;    /* [n] scratch: actual durations of one draw */
    double *memo;   /* [ns * (n+1)] class makespans by group count for the current assignment
                     * (< 0: not computed); the bisections ask for the same counts repeatedly */
} planner;

static const double *g_sort_key; /* qsort context for cmp_job; set only around qsort */

static int cmp_job(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (g_sort_key[x] != g_sort_key[y]) return g_sort_key[x] > g_sort_key[y] ? -1 : 1;
    return (x > y) - (x < y);
}

static void sort_jobs(size_t *v, size_t n, const double *key) {
    g_sort_key = key;
    qsort(v, n, sizeof *v, cmp_job);
    g_sort_key = NULL;
}

static double class_makespan(const planner *p, int k, size_t groups) {
    size_t a = p->cstart[k], b = p->cstart[k + 1];
    if (groups > b - a) groups = b - a; /* more groups than jobs change nothing */
    double *m = &p->memo[(size_t)k * (p->n + 1) + groups];
    if (*m < 0) *m = lmd_sched_simulate(p->dur, p->idx + a, b - a, groups, NULL, NULL);
    return *m;
}

/* Fewest groups (at most the class's job count) whose list schedule of class k ends by T, by
 * bisection (a list schedule with more groups is, barring rare anomalies, never longer). The
 * range starts from the area bound sum/c <= T and the list-schedule guarantee
 * makespan <= sum/c + longest, so usually one or two simulations decide. */
static size_t groups_for(const planner *p, int k, double T) {
    size_t a = p->cstart[k], b = p->cstart[k + 1], n = b - a;
    double sum = 0.0, longest = p->dur[p->idx[a]];
    for (size_t i = a; i < b; i++) sum += p->dur[p->idx[i]];
    size_t lo = 1, hi = n;
    if (T > 0) {
        double c_lo = ceil(sum / T * (1.0 - 1e-12));
        if (c_lo > 1 && c_lo < (double)n) lo = (size_t)c_lo;
        if (c_lo >= (double)n) lo = n;
        if (T > longest) {
            double c_hi = ceil(sum / (T - longest));
            if (c_hi >= (double)lo && c_hi < (double)n) hi = (size_t)c_hi;
        }
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (class_makespan(p, k, mid) <= T)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Evaluates the assignment in p->cls: sorts the classes, chooses p->cnt (bisection on the
 * common finishing time T, then spare ranks one group at a time to the class that ends last
 * while that shortens it) and returns the modeled makespan, INFINITY if the classes cannot all
 * have a group. */
static double evaluate(planner *p) {
    for (size_t i = 0; i < (size_t)p->ns * (p->n + 1); i++) p->memo[i] = -1.0;
    size_t pos = 0;
    long long min_ranks = 0;
    double lo = 0.0, hi = 0.0;
    for (int k = 0; k < p->ns; k++) {
        p->cstart[k] = pos;
        for (size_t j = 0; j < p->n; j++)
            if (p->cls[j] == k) {
                p->idx[pos++] = j;
                p->dur[j] = p->time[j * (size_t)p->ns + k];
                lo = fmax(lo, p->dur[j]);
            }
        sort_jobs(p->idx + p->cstart[k], pos - p->cstart[k], p->dur);
        if (pos > p->cstart[k]) min_ranks += p->sizes[k];
    }
    p->cstart[p->ns] = pos;
    if (min_ranks > p->P) return INFINITY;
    /* hi: one group per class, computed by the same simulation that checks feasibility, so
     * that rounding cannot make it look infeasible */
    for (int k = 0; k < p->ns; k++)
        if (p->cstart[k] < p->cstart[k + 1]) hi = fmax(hi, class_makespan(p, k, 1));
    if (!isfinite(hi)) return INFINITY;
    /* lo is infeasible unless it is already enough; hi (one group per class) is feasible */
    for (int it = 0; it < 30 && hi - lo > 1e-7 * hi; it++) {
        double mid = 0.5 * (lo + hi);
        long long used = 0;
        for (int k = 0; k < p->ns && used <= p->P; k++)
            if (p->cstart[k] < p->cstart[k + 1])
                used += (long long)groups_for(p, k, mid) * p->sizes[k];
        if (used <= p->P)
            hi = mid;
        else
            lo = mid;
    }
    long long used = 0;
    for (int k = 0; k < p->ns; k++) {
        p->cnt[k] = p->cstart[k] < p->cstart[k + 1] ? groups_for(p, k, hi) : 0;
        used += (long long)p->cnt[k] * p->sizes[k];
    }
    if (used > p->P) return INFINITY; /* cannot happen: hi is feasible */
    double makespan = 0.0;
    for (;;) {
        int worst = -1;
        makespan = 0.0;
        for (int k = 0; k < p->ns; k++) {
            if (!p->cnt[k]) continue;
            double mk = class_makespan(p, k, p->cnt[k]);
            if (mk > makespan) makespan = mk, worst = k;
        }
        if (worst < 0 || used + p->sizes[worst] > p->P ||
            p->cnt[worst] >= p->cstart[worst + 1] - p->cstart[worst] ||
            class_makespan(p, worst, p->cnt[worst] + 1) >= makespan)
            break;
        p->cnt[worst]++;
        used += p->sizes[worst];
    }
    return makespan;
}

/* The score of the evaluated plan: its modeled makespan, or with model-error draws the mean
 * makespan when each class claims in the modeled order but jobs take the drawn times. */
static double score(planner *p) {
    double mk = evaluate(p);
    if (p->n_draws == 0 || !isfinite(mk)) return mk;
    double sum = 0.0;
    for (int d = 0; d < p->n_draws; d++) {
        double worst = 0.0;
        for (size_t j = 0; j < p->n; j++) p->act[j] = p->dur[j] * p->factor[(size_t)d * p->n + j];
        for (int k = 0; k < p->ns; k++) {
            size_t a = p->cstart[k], b = p->cstart[k + 1];
            if (b > a)
                worst = fmax(worst,
                             lmd_sched_simulate(p->act, p->idx + a, b - a, p->cnt[k], NULL, NULL));
        }
        sum += worst;
    }
    return sum / p->n_draws;
}

/* Up to `max` evenly spaced elements of the sorted distinct values v[0..n) (sorted in place). */
static size_t distinct_sample(double *v, size_t n, size_t max) {
    qsort(v, n, sizeof *v, cmp_desc);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]) && (m == 0 || v[i] != v[m - 1])) v[m++] = v[i];
    if (m <= max) return m;
    for (size_t i = 0; i < max; i++) v[i] = v[i * (m - 1) / (max - 1)];
    return max;
}

static const double *g_type_time; /* qsort context for cmp_type; set only around qsort */
static int g_type_ns;

/* Orders jobs by their time vectors (then index), so identical jobs are adjacent. */
static int cmp_type(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    for (int k = 0; k < g_type_ns; k++) {
        double u = g_type_time[x * (size_t)g_type_ns + k],
               v = g_type_time[y * (size_t)g_type_ns + k];
        if (u != v) return u > v ? -1 : 1;
    }
    return (x > y) - (x < y);
}

#define PLAN_MAX_CANDIDATES 256 /* per family: keeps planning fast for 10^5 cells */
#define PLAN_MAX_PASSES 4       /* of the local search */
#define PLAN_DRAWS 8            /* model-error draws scoring each candidate */

int lmd_sched_plan_moldable(const double *time, size_t n, const int *sizes, int ns, int P,
                            double model_error, lmd_sched_plan *plan, lmd_err *err) {
    memset(plan, 0, sizeof *plan);
    if (ns < 1 || P < 1) return lmd_errf(err, "schedule: need at least one group size and rank");
    for (int k = 0; k < ns; k++)
        if (sizes[k] < 1 || (k > 0 && sizes[k] <= sizes[k - 1]))
            return lmd_errf(err, "schedule: group sizes must be ascending, distinct and >= 1");
    for (size_t j = 0; j < n; j++) {
        int ok = 0;
        for (int k = 0; k < ns; k++) ok |= sizes[k] <= P && isfinite(time[j * (size_t)ns + k]);
        if (!ok)
            return lmd_errf(err, "schedule: job %zu allows no group size of at most %d ranks", j,
                            P);
    }
    size_t n1 = n ? n : 1;
    if (!(model_error >= 0.0 && model_error < 5.0))
        return lmd_errf(err, "schedule: model error %g outside [0, 5)", model_error);
    planner p = {time, n, sizes, ns, P, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL};
    if (model_error > 0.0 && n > 0) {
        /* fixed seed: the plan is a deterministic function of its inputs */
        lmd_rng rng;
        lmd_rng_seed(&rng, 0x5c4ed, 0);
        p.n_draws = PLAN_DRAWS;
        p.factor = lmd_calloc((size_t)PLAN_DRAWS * n, sizeof *p.factor);
        for (size_t i = 0; i < (size_t)PLAN_DRAWS * n; i++)
            p.factor[i] = exp(model_error * lmd_rng_normal(&rng));
    }
    p.cls = lmd_calloc(n1, sizeof *p.cls);
    p.dur = lmd_calloc(n1, sizeof *p.dur);
    p.idx = lmd_calloc(n1, sizeof *p.idx);
    p.cstart = lmd_calloc((size_t)ns + 1, sizeof *p.cstart);
    p.cnt = lmd_calloc((size_t)ns, sizeof *p.cnt);
    p.key = lmd_calloc(n1 * (size_t)ns, sizeof *p.key);
    p.act = lmd_calloc(n1, sizeof *p.act);
    p.memo = lmd_calloc((size_t)ns * (n + 1), sizeof *p.memo);
    int *best = lmd_calloc(n1, sizeof *best), *start = lmd_calloc(3 * n1, sizeof *start);
    size_t *by_size = lmd_calloc(n1, sizeof *by_size);
    double best_mk = INFINITY, start_mk[3] = {INFINITY, INFINITY, INFINITY};

/* evaluates p.cls and keeps it as the start of the local search if it is strictly better than
 * the family's best so far (earlier candidates win ties: simpler plans come first) */
#define TRY(f)                                                                                     \
    do {                                                                                           \
        double mk_ = score(&p);                                                                    \
        if (mk_ < start_mk[f])                                                                     \
            start_mk[f] = mk_, memcpy(start + (f)*n1, p.cls, n1 * sizeof *start);                  \
    } while (0)

    /* family 1: uniform sizes, the current scheduler (with the modeled-time order) */
    for (int k = 0; k < ns; k++) {
        int ok = sizes[k] <= P;
        for (size_t j = 0; j < n && ok; j++) ok = isfinite(time[j * (size_t)ns + k]);
        if (!ok) continue;
        for (size_t j = 0; j < n; j++) p.cls[j] = k;
        TRY(0);
    }
    /* family 2: for a target T, each job on its least-area size that finishes by T; the
     * candidate T are the jobs' own times */
    memcpy(p.key, time, n * (size_t)ns * sizeof *p.key);
    size_t nT = distinct_sample(p.key, n * (size_t)ns, PLAN_MAX_CANDIDATES);
    for (size_t t = 0; t < nT; t++) {
        double T = p.key[t];
        int ok = 1;
        for (size_t j = 0; j < n && ok; j++) {
            double area = INFINITY;
            p.cls[j] = -1;
            for (int k = 0; k < ns; k++) {
                double tj = time[j * (size_t)ns + k];
                if (sizes[k] <= P && tj <= T && sizes[k] * tj < area)
                    area = sizes[k] * tj, p.cls[j] = k;
            }
            ok = p.cls[j] >= 0;
        }
        if (ok) TRY(1);
    }
    /* family 3: two adjacent sizes, the longest jobs (by their smallest allowed size's time) on
     * the larger; cuts where that time changes */
    for (size_t j = 0; j < n; j++) {
        by_size[j] = j;
        p.key[j] = INFINITY;
        for (int k = 0; k < ns && !isfinite(p.key[j]); k++)
            if (sizes[k] <= P) p.key[j] = time[j * (size_t)ns + k];
    }
    sort_jobs(by_size, n, p.key);
    size_t *cuts = lmd_calloc(n1 + 1, sizeof *cuts), n_cuts = 0;
    for (size_t a = 1; a < n; a++)
        if (p.key[by_size[a]] != p.key[by_size[a - 1]]) cuts[n_cuts++] = a;
    size_t step = n_cuts > PLAN_MAX_CANDIDATES ? n_cuts / PLAN_MAX_CANDIDATES + 1 : 1;
    for (int k = 0; k + 1 < ns; k++) {
        if (sizes[k + 1] > P) break;
        for (size_t c = 0; c < n_cuts; c += step) {
            int ok = 1;
            for (size_t i = 0; i < n && ok; i++) {
                size_t j = by_size[i];
                p.cls[j] = i < cuts[c] ? k + 1 : k;
                ok = isfinite(time[j * (size_t)ns + p.cls[j]]);
            }
            if (ok) TRY(2);
        }
    }
#undef TRY
    free(cuts);

    /* local search from the best candidate of each family (a single start gets stuck: the
     * best uniform plan is often a local optimum): jobs with identical times form a type (seeds
     * of one setting); move all or half of a type's jobs in one class to the next smaller or
     * larger size while that shortens the makespan. Types in order of their longest time; at
     * most PLAN_MAX_CANDIDATES types per pass. The best result over the starts wins. */
    size_t *tj = lmd_calloc(n1, sizeof *tj), *tstart = lmd_calloc(n1 + 1, sizeof *tstart);
    size_t nt = 0;
    for (size_t j = 0; j < n; j++) tj[j] = j;
    g_type_time = time;
    g_type_ns = ns;
    qsort(tj, n, sizeof *tj, cmp_type);
    g_type_time = NULL;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || memcmp(time + tj[i] * (size_t)ns, time + tj[i - 1] * (size_t)ns,
                             (size_t)ns * sizeof *time))
            tstart[nt++] = i;
    tstart[nt] = n;
    if (nt > PLAN_MAX_CANDIDATES) nt = PLAN_MAX_CANDIDATES;
    for (int f = 0; f < 3 && n > 0; f++) {
        if (!isfinite(start_mk[f])) continue;
        int *cur = start + (size_t)f * n1;
        double cur_mk = start_mk[f];
        for (int pass = 0, improved = 1; pass < PLAN_MAX_PASSES && improved; pass++) {
            improved = 0;
            for (size_t t = 0; t < nt; t++)
                for (int dir = -1; dir <= 1; dir += 2)
                    for (int half = 0; half < 2; half++)
                        for (int k = 0; k < ns; k++) {
                            int k2 = k + dir;
                            if (k2 < 0 || k2 >= ns || sizes[k2] > P ||
                                !isfinite(time[tj[tstart[t]] * (size_t)ns + k2]))
                                continue;
                            size_t m = 0;
                            for (size_t i = tstart[t]; i < tstart[t + 1]; i++) m += cur[tj[i]] == k;
                            if (m == 0 || (half && m < 2)) continue;
                            size_t move = half ? m / 2 : m;
                            memcpy(p.cls, cur, n * sizeof *cur);
                            for (size_t i = tstart[t + 1]; i-- > tstart[t] && move;)
                                if (p.cls[tj[i]] == k) p.cls[tj[i]] = k2, move--;
                            double mk = score(&p);
                            if (mk < cur_mk * (1.0 - 1e-9)) {
                                cur_mk = mk;
                                memcpy(cur, p.cls, n * sizeof *cur);
                                improved = 1;
                            }
                        }
        }
        if (cur_mk < best_mk) best_mk = cur_mk, memcpy(best, cur, n1 * sizeof *best);
    }
    free(tj);
    free(tstart);

    int rc = 0;
    if (n > 0 && !isfinite(best_mk)) {
        rc = lmd_errf(err, "schedule: no plan fits %d ranks (every size class needs a group)", P);
    } else {
        double modeled = 0.0;
        if (n > 0) {
            memcpy(p.cls, best, n * sizeof *best);
            modeled = evaluate(&p);
        }
        plan->n_sizes = ns;
        plan->n_jobs = n;
        plan->sizes = lmd_calloc((size_t)ns, sizeof *plan->sizes);
        plan->n_groups = lmd_calloc((size_t)ns, sizeof *plan->n_groups);
        plan->size_of_job = lmd_calloc(n1, sizeof *plan->size_of_job);
        plan->order = lmd_calloc(n1, sizeof *plan->order);
        plan->class_start = lmd_calloc((size_t)ns + 1, sizeof *plan->class_start);
        memcpy(plan->sizes, sizes, (size_t)ns * sizeof *sizes);
        for (int k = 0; k <= ns; k++) plan->class_start[k] = n ? p.cstart[k] : 0;
        for (int k = 0; k < ns; k++) plan->n_groups[k] = n ? p.cnt[k] : 0;
        for (size_t i = 0; i < n; i++) {
            plan->order[i] = p.idx[i];
            plan->size_of_job[i] = sizes[p.cls[i]];
        }
        plan->makespan = modeled;
        plan->score = n ? best_mk : 0.0;
    }
    free(p.cls);
    free(p.dur);
    free(p.idx);
    free(p.cstart);
    free(p.cnt);
    free(p.key);
    free(p.act);
    free(p.memo);
    free(p.factor);
    free(best);
    free(start);
    free(by_size);
    return rc;
}

double lmd_sched_plan_simulate(const lmd_sched_plan *plan, const double *time_actual,
                               double *busy_rank_s) {
    int ns = plan->n_sizes;
    double *dur = lmd_calloc(plan->n_jobs ? plan->n_jobs : 1, sizeof *dur);
    double busy = 0.0, makespan = 0.0;
    for (int k = 0; k < ns; k++) {
        size_t a = plan->class_start[k], b = plan->class_start[k + 1];
        for (size_t i = a; i < b; i++) {
            size_t j = plan->order[i];
            dur[j] = time_actual[j * (size_t)ns + k];
            busy += plan->sizes[k] * dur[j];
        }
        if (b > a)
            makespan = fmax(makespan, lmd_sched_simulate(dur, plan->order + a, b - a,
                                                         plan->n_groups[k], NULL, NULL));
    }
    free(dur);
    if (busy_rank_s) *busy_rank_s = busy;
    return makespan;
}

double lmd_sched_plan_simulate_steal(const lmd_sched_plan *plan, const double *time_actual,
                                     double *busy_rank_s) {
    int ns = plan->n_sizes;
    size_t total = 0;
    for (int k = 0; k < ns; k++) total += plan->n_groups[k];
    double busy = 0.0, makespan = 0.0;
    if (total == 0 || plan->n_jobs == 0) {
        if (busy_rank_s) *busy_rank_s = 0.0;
        return 0.0;
    }
    /* groups numbered class by class, largest class first (the runner's rank layout) */
    int *cls_of = lmd_calloc(total, sizeof *cls_of);
    size_t gi = 0;
    for (int k = ns - 1; k >= 0; k--)
        for (size_t q = 0; q < plan->n_groups[k]; q++) cls_of[gi++] = k;
    size_t *next = lmd_calloc((size_t)ns, sizeof *next);
    for (int k = 0; k < ns; k++) next[k] = plan->class_start[k];
    slot *h = lmd_calloc(total, sizeof *h);
    for (size_t g = 0; g < total; g++) h[g] = (slot){0.0, g};
    size_t live = total;
    while (live > 0) {
        int k = cls_of[h[0].g], from = -1;
        if (next[k] < plan->class_start[k + 1]) {
            from = k;
        } else {
            /* own queue empty: the head of the largest smaller class this size may run */
            for (int q = k - 1; q >= 0 && from < 0; q--)
                if (next[q] < plan->class_start[q + 1] &&
                    isfinite(time_actual[plan->order[next[q]] * (size_t)ns + k]))
                    from = q;
        }
        if (from < 0) { /* nothing left for this group: it retires */
            h[0] = h[--live];
            heap_down(h, live, 0);
            continue;
        }
        size_t j = plan->order[next[from]++];
        double d = time_actual[j * (size_t)ns + k];
        busy += plan->sizes[k] * d;
        h[0].t += d;
        if (h[0].t > makespan) makespan = h[0].t;
        heap_down(h, live, 0);
    }
    free(cls_of);
    free(next);
    free(h);
    if (busy_rank_s) *busy_rank_s = busy;
    return makespan;
}

void lmd_sched_plan_free(lmd_sched_plan *plan) {
    free(plan->sizes);
    free(plan->n_groups);
    free(plan->size_of_job);
    free(plan->order);
    free(plan->class_start);
    memset(plan, 0, sizeof *plan);
}
