/* schedule.h — which cell runs where and when: the claim order of `lmdisp run`, a cost model
 * of a cell's wall time on a group of ranks, an event simulation of the dynamic claiming, lower
 * bounds on the makespan, and a moldable plan that gives expensive cells larger groups so that
 * all cells finish together (docs/SCHEDULING.md). Pure functions: no MPI, no I/O.
 *
 * Vocabulary: a *group* is a set of ranks training one cell (data parallel); its *size* g is
 * ranks_per_model. A *job* is a cell; time[j][k] is its modeled wall time on a group of the
 * k-th allowed size. The *makespan* is the time the last group finishes. */
#ifndef LMDISP_SCHEDULE_H
#define LMDISP_SCHEDULE_H

#include <stddef.h>

#include "spec.h"

/* ---- the claim order of the study engine (runner/engine.h) ---- */

/* order[0..n) = the elements of subset[0..n) (indices into s->cells), most expensive first by
 * estimated FLOPs (lmd_cell.flops), ties by grid index (lmd_cell.index): the order in which
 * groups claim cells. Stable and deterministic; the same as the insertion sort the runner
 * used before this function existed (tests/test_schedule.c checks it). */
void lmd_schedule_order(const lmd_spec *s, const size_t *subset, size_t n, size_t *order);

/* ---- cost model: seconds of one cell on a group of g ranks ---- */

/* Coefficients of the model (docs/SCHEDULING.md, "Cost model"). Per rank and training step,
 * with F = gpt_flops_per_step of the rank's share of the batch (B/g sequences):
 *   compute  = F / gflops_peak + tokens_r * s_per_token + n_params * s_per_param + s_per_step
 *   dispersion (if on) = disp_s_per_seq[variant] * (B/g) * scale, scale = (L+1)*Ts^2*C relative
 *              to the reference model (L 6, Ts 256, C 256), Ts = min(T, max_tokens)
 *   all-reduce (g > 1) = 2 (g-1)/g * 4 n_params / net_bytes_per_s + net_latency_s * ceil(log2 g)
 * and once per cell: startup_s; per tracked step on the group's rank 0 only (the other ranks
 * wait): track_s_per_fwd_gflop * (forward GFLOPs of LMD_VAL_BATCHES validation batches and the
 * evaluation windows) + track_s_fixed. threads_per_rank > 1 divides compute by thread_speedup. */
typedef struct {
    double gflops_peak;       /* GFLOP/s of the FLOP-proportional part (1 thread) */
    double s_per_token;       /* seconds per token per step not proportional to FLOPs */
    double s_per_param;       /* seconds per parameter per step (optimizer, grad zeroing) */
    double s_per_step;        /* fixed seconds per step */
    double disp_s_per_seq[5]; /* by lmd_disp_variant (index 0 = off = 0) */
    double track_s_per_fwd_gflop;
    double track_s_fixed;
    double startup_s;
    double net_bytes_per_s; /* assumed interconnect bandwidth per rank */
    double net_latency_s;   /* assumed per-message latency */
    double thread_speedup;  /* speedup of 2 threads per rank over 1 (applied as a power law) */
} lmd_cost_model;

/* The coefficients fitted on this project's reference machine (docs/SCHEDULING.md) and the
 * stated interconnect assumptions (10 GB/s, 5 us). */
lmd_cost_model lmd_cost_model_default(void);

/* Modeled wall seconds of cell c trained by a group of g ranks with threads_per_rank threads
 * each. INFINITY when g does not divide the batch (the runner refuses such a group). */
double lmd_cost_cell_seconds(const lmd_cost_model *m, const lmd_cell *c, int g,
                             int threads_per_rank);
/* Seconds of one training step on each rank of a group of g (compute + dispersion +
 * all-reduce), the part that repeats train.steps times. */
double lmd_cost_step_seconds(const lmd_cost_model *m, const lmd_cell *c, int g,
                             int threads_per_rank);
/* Seconds of the gradient all-reduce of n_params floats in a group of g ranks. */
double lmd_cost_allreduce_seconds(const lmd_cost_model *m, double n_params, int g);

/* ---- event simulation of dynamic claiming ---- */

/* n_groups identical groups claim jobs in the order order[0..n): at time 0 groups claim in
 * index order, and whenever a group finishes, it claims the next job (simultaneous finishes:
 * lower group index first) — the engine's fetch-and-add counter (lmd_engine_claim). time[j] is job j's
 * duration. Returns the makespan (0 if n == 0). If group_of is not NULL, group_of[j] receives
 * the group that ran job j; if start is not NULL, start[j] its start time. */
double lmd_sched_simulate(const double *time, const size_t *order, size_t n, size_t n_groups,
                          size_t *group_of, double *start);

/* ---- lower bounds ---- */

/* Identical machines, indivisible jobs (one group size): with p sorted descending and m
 * groups, max(sum p / m, p_1, p_m + p_{m+1} (if n > m)): two of the m+1 longest jobs share a
 * group. time[0..n) in any order. */
double lmd_sched_lower_bound_rigid(const double *time, size_t n, size_t m);

/* Moldable jobs on P ranks: job j may run on any allowed size sizes[k] (time[j*n_sizes + k],
 * INFINITY = not allowed) and keeps its group until it ends. Returns the least T such that
 * every job has a size with time <= T and the sum over jobs of the least area g*time among
 * those sizes is <= P*T. Any schedule with makespan T satisfies both, so this is a valid bound;
 * it is at least max(sum of least areas / P, max of least times). Precision 1e-12 relative. */
double lmd_sched_lower_bound_moldable(const double *time, size_t n, const int *sizes, int n_sizes,
                                      int P);

/* ---- the moldable plan ---- */

/* A plan: every job gets a group size; the P ranks are split into n_groups[k] groups of each
 * size sizes[k]; the groups of size sizes[k] claim, dynamically as now, from their own queue:
 * the jobs of that size, longest modeled time first (ties by job index). */
typedef struct {
    int n_sizes;
    int *sizes;          /* [n_sizes] ascending, copied from the input */
    size_t *n_groups;    /* [n_sizes] groups of each size; sum sizes[k]*n_groups[k] <= P */
    int *size_of_job;    /* [n_jobs] ranks of the group that trains job j */
    size_t *order;       /* [n_jobs] all jobs, grouped by size class (ascending size), each class
                          * longest first: the claim order within the class */
    size_t *class_start; /* [n_sizes + 1] class k's jobs are order[class_start[k] ..
                          * class_start[k+1]) */
    size_t n_jobs;
    double makespan; /* modeled makespan of the plan (the longest class) */
    double score;    /* what the plan minimized: makespan, or its mean over model errors */
} lmd_sched_plan;

/* Computes a plan for n jobs on P ranks with allowed sizes sizes[0..n_sizes) (ascending,
 * distinct, >= 1) and modeled times time[j*n_sizes + k] (INFINITY = size not allowed; every
 * job must allow at least one size <= P).
 *
 * Policy (docs/SCHEDULING.md): candidates are (1) every uniform size, (2) for each target T
 * among the jobs' times, every job on its least-area size finishing by T, (3) two adjacent
 * sizes with the longest jobs on the larger, cut wherever the time changes; each candidate
 * assignment gets per-class group counts by bisection on a common finishing time, spare ranks
 * going one group at a time to the class that ends last while that shortens it. The best
 * candidate is improved by local search (moving all or half of a set of identical jobs to the
 * next size). Candidates are scored by their modeled makespan or, with model_error = s > 0, by
 * the mean makespan over 8 fixed draws of actual = modeled x exp(s N(0,1)) per job, which
 * favors plans whose classes do not all end at the same knife edge. Deterministic. Returns
 * 0, or -1 with a message. */
int lmd_sched_plan_moldable(const double *time, size_t n, const int *sizes, int n_sizes, int P,
                            double model_error, lmd_sched_plan *plan, lmd_err *err);
/* Simulates the plan with actual durations time_actual[j*n_sizes + k] (which may differ from
 * the model the plan was made with): each class claims dynamically from its queue. Returns the
 * makespan; busy_rank_s (optional) receives the sum over jobs of size * duration. */
double lmd_sched_plan_simulate(const lmd_sched_plan *plan, const double *time_actual,
                               double *busy_rank_s);
/* As lmd_sched_plan_simulate, with stealing: a group whose own queue is empty claims the next
 * job of the largest class of smaller groups that still has jobs and whose head job it may
 * run (time_actual finite on its size); it trains that job on its own, larger group. All
 * classes in one event simulation (groups numbered largest class first, as the runner lays
 * out ranks; simultaneous claims: lower group first). A group that finds no runnable head
 * retires, even if a later job of some class could run on it: with sizes not allowed for some
 * jobs this undercounts stealing (the scale grid allows every size for every job). */
double lmd_sched_plan_simulate_steal(const lmd_sched_plan *plan, const double *time_actual,
                                     double *busy_rank_s);
void lmd_sched_plan_free(lmd_sched_plan *plan);

#endif
