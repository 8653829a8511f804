/* test_schedule.c — runner/schedule.c: the claim order equals the runner's former insertion
 * sort, the event simulation and the bounds on cases with known answers, the moldable plan's
 * validity and quality (makespan <= 1.1 x lower bound where an optimal plan provably reaches
 * the bound), and the cost model's shape. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"
#include "testutil.h"

/* The ordering loop of lmd_run_cells before runner/schedule.c existed, verbatim in effect:
 * the reference the shared function must reproduce. */
static void old_order(const lmd_spec *spec, const size_t *subset, size_t n, size_t *order) {
    memcpy(order, subset, n * sizeof *order);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const lmd_cell *a = &spec->cells[order[j - 1]], *b = &spec->cells[order[j]];
            if (b->flops > a->flops || (b->flops == a->flops && b->index < a->index)) {
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            } else {
                break;
            }
        }
}

static void test_order(void) {
    lmd_rng rng;
    lmd_rng_seed(&rng, 7, 0);
    int mismatches = 0;
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + lmd_rng_below(&rng, 300);
        lmd_spec s;
        memset(&s, 0, sizeof s);
        s.n_cells = n;
        s.cells = lmd_calloc(n, sizeof *s.cells);
        /* few distinct FLOP values so that ties (broken by index) are common */
        for (size_t i = 0; i < n; i++) {
            s.cells[i].index = i;
            s.cells[i].flops = 1e9 * (double)(1 + lmd_rng_below(&rng, trial % 2 ? 5 : 1000));
        }
        /* a random subset in random order, as a Slurm array task passes */
        size_t m = 1 + lmd_rng_below(&rng, n);
        size_t *perm = lmd_calloc(n, sizeof *perm), *a = lmd_calloc(m, sizeof *a),
               *b = lmd_calloc(m, sizeof *b);
        for (size_t i = 0; i < n; i++) perm[i] = i;
        for (size_t i = n; i > 1; i--) {
            size_t j = lmd_rng_below(&rng, i), t = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = t;
        }
        old_order(&s, perm, m, a);
        lmd_schedule_order(&s, perm, m, b);
        if (memcmp(a, b, m * sizeof *a)) {
            size_t k = 0;
            while (a[k] == b[k]) k++;
            if (mismatches++ < 3)
                fprintf(stderr,
                        "order trial %d (n %zu, m %zu): first difference at %zu: %zu vs %zu\n",
                        trial, n, m, k, a[k], b[k]);
        }
        free(perm), free(a), free(b), free(s.cells);
    }
    TU_CHECK(mismatches == 0, "%d of 200 random subsets ordered differently from the old sort",
             mismatches);
    printf("order: 200 random subsets (n <= 300, with ties) equal to the old insertion sort: %s\n",
           mismatches ? "FAIL" : "ok");
}

static void test_simulate_and_bounds(void) {
    /* Graham's LPT example: 3,3,2,2,2 on 2 groups; longest-first gives 7, the optimum is 6
     * (3+3 | 2+2+2), and the rigid bound is max(12/2, 3, p2+p3 = 5) = 6. */
    double t[5] = {3, 3, 2, 2, 2};
    size_t order[5] = {0, 1, 2, 3, 4}, grp[5];
    double start[5];
    double mk = lmd_sched_simulate(t, order, 5, 2, grp, start);
    TU_CHECK(mk == 7.0, "LPT makespan %g, want 7", mk);
    /* claims: 0->g0@0, 1->g1@0, 2->g0@3 (tie at 3: lower index), 3->g1@3, 4->g0@5 */
    size_t want_g[5] = {0, 1, 0, 1, 0};
    double want_s[5] = {0, 0, 3, 3, 5};
    for (int j = 0; j < 5; j++)
        TU_CHECK(grp[j] == want_g[j] && start[j] == want_s[j],
                 "job %d on group %zu at %g, want %zu at %g", j, grp[j], start[j], want_g[j],
                 want_s[j]);
    double lb = lmd_sched_lower_bound_rigid(t, 5, 2);
    TU_CHECK(lb == 6.0, "rigid bound %g, want 6", lb);
    /* the pair term decides: 4 jobs of 5 on 3 groups: max(20/3, 5, 5+5) = 10 */
    double t2[4] = {5, 5, 5, 5};
    TU_CHECK(lmd_sched_lower_bound_rigid(t2, 4, 3) == 10.0, "pair bound %g, want 10",
             lmd_sched_lower_bound_rigid(t2, 4, 3));
    /* more groups than jobs: the longest job */
    TU_CHECK(lmd_sched_simulate(t, order, 5, 100, NULL, NULL) == 3.0, "5 jobs on 100 groups");
    TU_CHECK(lmd_sched_simulate(t, order, 0, 4, NULL, NULL) == 0.0, "no jobs");

    /* Moldable bound, perfect speedup t(j,g) = w_j / g, sizes {1,2,4}, P = 4: the bound is
     * max(sum w / 4, max w / 4) = 24/4 = 6 for w = {8, 8, 4, 4}. */
    int sizes[3] = {1, 2, 4};
    double w[4] = {8, 8, 4, 4}, tm[12];
    for (int j = 0; j < 4; j++)
        for (int k = 0; k < 3; k++) tm[j * 3 + k] = w[j] / sizes[k];
    double lbm = lmd_sched_lower_bound_moldable(tm, 4, sizes, 3, 4);
    TU_CHECK(fabs(lbm - 6.0) < 1e-9, "moldable bound %.12g, want 6", lbm);
    /* One job that speeds up only 1.5x on 2 ranks: t = {10, 6.667}; P = 2, one job: the
     * bound is the least time, 6.667 (area 13.3 <= 2 * 6.667). */
    int s2[2] = {1, 2};
    double one[2] = {10.0, 10.0 / 1.5};
    double lb1 = lmd_sched_lower_bound_moldable(one, 1, s2, 2, 2);
    TU_CHECK(fabs(lb1 - 10.0 / 1.5) < 1e-9, "one-job moldable bound %.12g, want %.12g", lb1,
             10.0 / 1.5);
    /* Two such jobs on P = 2: T < 10 forces both onto 2 ranks: area 26.7 > 2T unless T >= 13.3;
     * T = 10 allows both on 1 rank: area 20 <= 20. Bound 10. */
    double two[4] = {10.0, 10.0 / 1.5, 10.0, 10.0 / 1.5};
    double lb2 = lmd_sched_lower_bound_moldable(two, 2, s2, 2, 2);
    TU_CHECK(fabs(lb2 - 10.0) < 1e-9, "two-job moldable bound %.12g, want 10", lb2);
    printf("simulate and bounds: LPT 3,3,2,2,2 on 2 = %g (bound %g); moldable bounds %g, %g, %g\n",
           mk, lb, lbm, lb1, lb2);
}

/* Checks a plan's invariants; returns its simulated makespan. */
static double check_plan(const lmd_sched_plan *pl, const double *time, size_t n, int P,
                         const char *what) {
    long long ranks = 0;
    for (int k = 0; k < pl->n_sizes; k++) ranks += (long long)pl->n_groups[k] * pl->sizes[k];
    TU_CHECK(ranks <= P, "%s: plan uses %lld ranks of %d", what, ranks, P);
    int *seen = lmd_calloc(n, sizeof *seen);
    for (int k = 0; k < pl->n_sizes; k++) {
        size_t a = pl->class_start[k], b = pl->class_start[k + 1];
        TU_CHECK(a == b || pl->n_groups[k] > 0, "%s: class %d has jobs but no group", what, k);
        for (size_t i = a; i < b; i++) {
            size_t j = pl->order[i];
            seen[j]++;
            TU_CHECK(pl->size_of_job[j] == pl->sizes[k], "%s: job %zu in class %d has size %d",
                     what, j, k, pl->size_of_job[j]);
            if (i > a) {
                size_t jp = pl->order[i - 1];
                double tp = time[jp * pl->n_sizes + k], tj = time[j * pl->n_sizes + k];
                TU_CHECK(tp > tj || (tp == tj && jp < j), "%s: class %d not longest first", what,
                         k);
            }
        }
    }
    for (size_t j = 0; j < n; j++)
        TU_CHECK(seen[j] == 1, "%s: job %zu planned %d times", what, j, seen[j]);
    free(seen);
    double mk = lmd_sched_plan_simulate(pl, time, NULL);
    TU_CHECK(fabs(mk - pl->makespan) <= 1e-9 * mk, "%s: simulated %g != planned %g", what, mk,
             pl->makespan);
    return mk;
}

static void test_plan(void) {
    lmd_err err = {{0}};
    int sizes[4] = {1, 2, 4, 8};

    /* Case 1: 2 big jobs (w 64) and 32 small (w 4), perfect speedup t = w / g, P = 16.
     * Bound: total work 256 / 16 ranks = 16. A plan reaching it: one group of 8 runs both big
     * jobs (8 + 8) and 8 single ranks run 4 small jobs each (4 x 4): makespan 16. Uniform
     * g = 1 needs 64 (a big job alone). The policy must reach <= 1.1 x 16. */
    size_t n1 = 34;
    double *t1 = lmd_calloc(n1 * 4, sizeof *t1);
    for (size_t j = 0; j < n1; j++)
        for (int k = 0; k < 4; k++) t1[j * 4 + k] = (j < 2 ? 64.0 : 4.0) / sizes[k];
    double lb1 = lmd_sched_lower_bound_moldable(t1, n1, sizes, 4, 16);
    TU_CHECK(fabs(lb1 - 16.0) < 1e-9, "case 1 bound %g, want 16", lb1);
    lmd_sched_plan pl;
    int rc = lmd_sched_plan_moldable(t1, n1, sizes, 4, 16, 0.0, &pl, &err);
    TU_CHECK(rc == 0, "case 1 plan failed: %s", err.msg);
    if (!rc) {
        double mk = check_plan(&pl, t1, n1, 16, "case 1");
        TU_CHECK(mk <= 1.1 * lb1, "case 1: makespan %g > 1.1 x bound %g", mk, lb1);
        printf("plan case 1 (2 x w64 + 32 x w4, P 16, perfect speedup): makespan %g, bound %g\n",
               mk, lb1);
        lmd_sched_plan_free(&pl);
    }
    free(t1);

    /* Case 2: many ranks, few jobs (the P/g > n_cells regime): 10 jobs w = 100, speedup
     * 1, 1.9, 3.6, 6.4 on 1, 2, 4, 8 ranks, P = 80. Every job on 8 ranks at once is optimal:
     * makespan 100/6.4 = 15.625 = the bound (the least time of a job). The uniform g = 1
     * scheduler takes 100: 6.4x worse. */
    double sp[4] = {1.0, 1.9, 3.6, 6.4};
    double t2[40];
    for (int j = 0; j < 10; j++)
        for (int k = 0; k < 4; k++) t2[j * 4 + k] = 100.0 / sp[k];
    double lb2 = lmd_sched_lower_bound_moldable(t2, 10, sizes, 4, 80);
    TU_CHECK(fabs(lb2 - 15.625) < 1e-9, "case 2 bound %g, want 15.625", lb2);
    rc = lmd_sched_plan_moldable(t2, 10, sizes, 4, 80, 0.0, &pl, &err);
    TU_CHECK(rc == 0, "case 2 plan failed: %s", err.msg);
    if (!rc) {
        double mk = check_plan(&pl, t2, 10, 80, "case 2");
        TU_CHECK(fabs(mk - 15.625) < 1e-9, "case 2: makespan %g, want the optimum 15.625", mk);
        TU_CHECK(pl.n_groups[3] == 10, "case 2: %zu groups of 8, want 10", pl.n_groups[3]);
        printf("plan case 2 (10 jobs on 80 ranks): makespan %g = bound %g\n", mk, lb2);
        lmd_sched_plan_free(&pl);
    }

    /* Case 3: sizes not allowed for some jobs (INFINITY: batch not divisible) are never
     * chosen; a job allowing only size 8 on P = 4 is an error, not a crash. */
    double t3[8] = {10, INFINITY, INFINITY, INFINITY, 10, 5, 2.5, 1.25};
    rc = lmd_sched_plan_moldable(t3, 2, sizes, 4, 8, 0.0, &pl, &err);
    TU_CHECK(rc == 0, "case 3 plan failed: %s", err.msg);
    if (!rc) {
        check_plan(&pl, t3, 2, 8, "case 3");
        TU_CHECK(pl.size_of_job[0] == 1, "case 3: job 0 on %d ranks, only 1 allowed",
                 pl.size_of_job[0]);
        lmd_sched_plan_free(&pl);
    }
    double t4[4] = {INFINITY, INFINITY, INFINITY, 3.0};
    rc = lmd_sched_plan_moldable(t4, 1, sizes, 4, 4, 0.0, &pl, &err);
    TU_CHECK(rc != 0 && strstr(err.msg, "allows no group size"), "case 4: rc %d, message '%s'", rc,
             err.msg);

    /* Case 4: random instances: the plan is never worse than the best uniform size with the
     * same (modeled-time) order, since those are among its candidates. */
    lmd_rng rng;
    lmd_rng_seed(&rng, 3, 0);
    int worse = 0;
    for (int trial = 0; trial < 20; trial++) {
        size_t n = 5 + lmd_rng_below(&rng, 40);
        int P = 8 << lmd_rng_below(&rng, 4);
        double *t = lmd_calloc(n * 4, sizeof *t);
        for (size_t j = 0; j < n; j++) {
            double w = 1.0 + 9.0 * lmd_rng_uniform(&rng);
            for (int k = 0; k < 4; k++) t[j * 4 + k] = w / sp[k];
        }
        rc = lmd_sched_plan_moldable(t, n, sizes, 4, P, 0.0, &pl, &err);
        TU_CHECK(rc == 0, "random plan failed: %s", err.msg);
        if (rc) {
            free(t);
            continue;
        }
        double mk = check_plan(&pl, t, n, P, "random");
        double best_u = INFINITY;
        double *col = lmd_calloc(n, sizeof *col);
        size_t *ord = lmd_calloc(n, sizeof *ord);
        for (int k = 0; k < 4; k++) {
            for (size_t j = 0; j < n; j++) col[j] = t[j * 4 + k], ord[j] = j;
            /* all jobs scale alike, so index order sorted by time is the longest-first order */
            for (size_t a = 1; a < n; a++)
                for (size_t b = a;
                     b > 0 && (col[ord[b]] > col[ord[b - 1]] ||
                               (col[ord[b]] == col[ord[b - 1]] && ord[b] < ord[b - 1]));
                     b--) {
                    size_t x = ord[b];
                    ord[b] = ord[b - 1];
                    ord[b - 1] = x;
                }
            best_u =
                fmin(best_u, lmd_sched_simulate(col, ord, n, (size_t)(P / sizes[k]), NULL, NULL));
        }
        if (mk > best_u * (1 + 1e-12)) worse++;
        free(col), free(ord), free(t);
        lmd_sched_plan_free(&pl);
    }
    TU_CHECK(worse == 0, "%d of 20 random plans worse than the best uniform size", worse);
    printf("plan: 20 random instances never worse than the best uniform size: %s\n",
           worse ? "FAIL" : "ok");
}

/* Stealing, by hand: 2 groups of 1 rank (class 0: four jobs of 10 s on 1 rank, 6 s on 2) and
 * 1 group of 2 (class 1: one job of 1 s). Without stealing, class 0 ends at 20 s; with it, the
 * group of 2 finishes its job at 1 s, takes the third job of class 0 (1 + 6 = 7) and the
 * fourth (13), while the groups of 1 run the first two until 10: makespan 13, busy
 * 10 + 10 + 2 * (1 + 6 + 6) = 46. A job the larger size may not run (INFINITY) is not taken. */
static void test_plan_steal(void) {
    int sizes[2] = {1, 2}, soj[5] = {1, 1, 1, 1, 2};
    size_t ng[2] = {2, 1}, order[5] = {0, 1, 2, 3, 4}, cs[3] = {0, 4, 5};
    lmd_sched_plan p = {2, sizes, ng, soj, order, cs, 5, 0.0, 0.0};
    double t[10] = {10, 6, 10, 6, 10, 6, 10, 6, 2, 1}, b0, b1;
    double m0 = lmd_sched_plan_simulate(&p, t, &b0), m1 = lmd_sched_plan_simulate_steal(&p, t, &b1);
    TU_CHECK(m0 == 20.0 && b0 == 42.0, "no stealing: makespan %g busy %g, want 20 and 42", m0, b0);
    TU_CHECK(m1 == 13.0 && b1 == 46.0, "stealing: makespan %g busy %g, want 13 and 46", m1, b1);
    for (int j = 0; j < 4; j++) t[2 * j + 1] = INFINITY; /* class 0 may not run on 2 ranks */
    m1 = lmd_sched_plan_simulate_steal(&p, t, &b1);
    TU_CHECK(m1 == 20.0 && b1 == 42.0, "nothing to steal: makespan %g busy %g, want 20 and 42", m1,
             b1);
}

static void test_cost_model(void) {
    lmd_cost_model m = lmd_cost_model_default();
    /* all-reduce: 2 (g-1)/g * 4 bytes * n / bw + latency * ceil(log2 g), here 8M params on 8
     * ranks: 2 * 7/8 * 32e6 / 10e9 + 3 * 5e-6 = 5.615 ms */
    double ar = lmd_cost_allreduce_seconds(&m, 8e6, 8);
    double want = 2.0 * 7.0 / 8.0 * 32e6 / m.net_bytes_per_s + 3 * m.net_latency_s;
    TU_CHECK(fabs(ar - want) < 1e-15, "all-reduce %g s, want %g", ar, want);
    TU_CHECK(lmd_cost_allreduce_seconds(&m, 8e6, 1) == 0.0, "no all-reduce on one rank");

    lmd_cell c;
    memset(&c, 0, sizeof c);
    c.cfg = (gpt_config){
        .vocab_size = 256, .n_ctx = 256, .n_layer = 6, .n_embd = 256, .n_head = 8, .mlp_dim = 512};
    c.train.B = 8;
    c.train.T = 256;
    c.train.steps = 100;
    c.train.disp = lmd_disp_default();
    c.n_params = (size_t)gpt_num_params(&c.cfg);
    int64_t tr[3] = {0, 50, 100};
    c.tracking.steps = tr;
    c.tracking.n_steps = 3;
    c.tracking.eval_sequences = 32;
    c.tracking.eval_seq_len = 256;
    double t1 = lmd_cost_cell_seconds(&m, &c, 1, 1), t2 = lmd_cost_cell_seconds(&m, &c, 2, 1),
           t8 = lmd_cost_cell_seconds(&m, &c, 8, 1);
    TU_CHECK(t1 > t2 && t2 > t8 && t8 > t1 / 8,
             "times on 1, 2, 8 ranks %g %g %g: want decreasing, "
             "sublinear",
             t1, t2, t8);
    TU_CHECK(isinf(lmd_cost_cell_seconds(&m, &c, 3, 1)), "3 ranks do not divide batch 8");
    c.cfg.mlp_dim = 2048;
    double wide = lmd_cost_cell_seconds(&m, &c, 1, 1);
    TU_CHECK(wide > t1, "wider MLP %g s not slower than %g s", wide, t1);
    /* small models are less efficient: seconds per FLOP fall with the width */
    double f512 = gpt_flops_per_step(&(gpt_config){256, 256, 6, 256, 8, 512}, 8, 256);
    double f2048 = gpt_flops_per_step(&c.cfg, 8, 256);
    double s512 = lmd_cost_step_seconds(
        &m, &(lmd_cell){.cfg = {256, 256, 6, 256, 8, 512}, .train = c.train, .n_params = 0}, 1, 1);
    double s2048 = lmd_cost_step_seconds(&m, &c, 1, 1);
    TU_CHECK(f2048 / s2048 > f512 / s512, "GFLOP/s %g (mlp 2048) <= %g (mlp 512)",
             f2048 / s2048 / 1e9, f512 / s512 / 1e9);
    c.train.disp.variant = DISP_ANGULAR_SPREAD;
    TU_CHECK(lmd_cost_cell_seconds(&m, &c, 1, 1) > wide, "dispersion adds no time");
    printf("cost model: mlp512 cell %.1f s on 1 rank, %.1f on 2, %.1f on 8; step GFLOP/s %.1f "
           "(mlp 512) vs %.1f (mlp 2048)\n",
           t1, t2, t8, f512 / s512 / 1e9, f2048 / s2048 / 1e9);
}

int main(void) {
    test_order();
    test_simulate_and_bounds();
    test_plan();
    test_plan_steal();
    test_cost_model();
    return tu_summary("test_schedule");
}
