/* measrun.c — running measurement studies (measrun.h): groups of ranks_per_model ranks claim
 * cells most expensive first in the study engine's claim loop (engine.h); within a group the
 * forward passes (measure.batch sequences each) are dealt round-robin; a pass's owner computes
 * each sequence's cosine matrix and spectrum, and the group leader adds them to one
 * accumulator in sequence order, so the numbers are bitwise those of one rank. */
#include "measrun.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anymodel.h"
#include "fileio.h"
#include "geometry.h"
#include "gpt.h"
#include "jsonout.h"
#include "engine.h"
#include "slurm.h"
#include "studydir.h"
#include "tokfile.h"
#include "mpicheck.h"

/* ---- one cell ---- */

/* A pass computed by a rank other than the group leader: for every layer and sequence, the
 * sequence's own clipped cosine matrix (upper triangle, T(T+1)/2 floats: exactly the float32
 * values lmd_geom_acc_add adds to its double sums) and its singular-value entropy and MEV.
 * The leader adds them to its accumulator in sequence order, the order of one rank, so the
 * sums are bitwise those of one rank. */
typedef struct {
    lmd_geom_acc one; /* a 1-layer accumulator, reset for each sequence */
    int T, L1, b;
    size_t tu;  /* T(T+1)/2 */
    float *c;   /* [L1][b][tu] */
    double *hm; /* [L1][b][2] entropy, MEV */
} pass_parts;

static int parts_init(pass_parts *pp, int L1, int T, int d, int b, int bins, lmd_err *err) {
    memset(pp, 0, sizeof *pp);
    if (lmd_geom_acc_init(&pp->one, 1, T, d, bins, err)) return -1;
    pp->T = T, pp->L1 = L1, pp->b = b;
    pp->tu = (size_t)T * (T + 1) / 2;
    pp->c = lmd_calloc((size_t)L1 * b * pp->tu, sizeof(float));
    pp->hm = lmd_calloc((size_t)L1 * b * 2, sizeof(double));
    return 0;
}

static void parts_free(pass_parts *pp) {
    lmd_geom_acc_free(&pp->one);
    free(pp->c), free(pp->hm);
    memset(pp, 0, sizeof *pp);
}

/* hidden-state callback of a non-leader rank: each sequence's partial, as acc_add makes it */
static int parts_add(void *ctx, int layer, const float *h, int n_seq, int T, int d, lmd_err *err) {
    pass_parts *pp = ctx;
    lmd_geom_acc *a = &pp->one;
    const size_t tu = lmd_geom_tri_size(T);
    for (int s = 0; s < n_seq; s++) {
        memset(a->csum, 0, tu * sizeof *a->csum);
        a->ent_sum[0] = a->mev_sum[0] = 0.0;
        a->n_seq[0] = 0;
        if (lmd_geom_acc_add(a, 0, h + (size_t)s * T * d, 1, err)) return -1;
        float *out = pp->c + ((size_t)layer * pp->b + s) * pp->tu;
        for (size_t k = 0; k < tu; k++) out[k] = (float)a->csum[k]; /* exact */
        pp->hm[((size_t)layer * pp->b + s) * 2] = a->ent_sum[0];
        pp->hm[((size_t)layer * pp->b + s) * 2 + 1] = a->mev_sum[0];
    }
    return 0;
}

/* the leader adds n sequences' partials of one layer, in order (acc_add's own operations) */
static void leader_add_parts(lmd_geom_acc *a, int layer, const float *c, const double *hm, int n) {
    const int T = a->T;
    size_t tu = lmd_geom_tri_size(T);
    double *csum = a->csum + (size_t)layer * tu;
    for (int s = 0; s < n; s++) {
        const float *cs = c + (size_t)s * tu;
        for (size_t k = 0; k < tu; k++) csum[k] += (double)cs[k];
        a->ent_sum[layer] += hm[2 * s];
        a->mev_sum[layer] += hm[2 * s + 1];
    }
    a->n_seq[layer] += n;
}

static int leader_add(void *ctx, int layer, const float *h, int n_seq, int T, int d, lmd_err *err) {
    (void)T, (void)d;
    return lmd_geom_acc_add(ctx, layer, h, n_seq, err);
}

/* Measures cell c on the group, pass after pass (lmd_anymodel_measure's order: the same sums).
 * Pass p (measure.batch sequences) is computed by group rank p mod R: the leader adds its own
 * passes' hidden states directly; the others compute their passes' per-sequence partials
 * (pass_parts), then send them layer by layer, and the leader adds them when their turn comes.
 * The leader fills *g. Returns 0, 1 when *stop was set before a pass (the cell is abandoned,
 * nothing filled), or -1 (message on the rank that failed); every rank of the group returns
 * the same. */
static int measure_cell(const lmd_mspec *s, const lmd_mcell *c, MPI_Comm group,
                        volatile sig_atomic_t *stop, lmd_geom *g, lmd_err *err) {
    int grank, gsize;
    LMD_MPI(MPI_Comm_rank(group, &grank));
    LMD_MPI(MPI_Comm_size(group, &gsize));
    memset(g, 0, sizeof *g);
    const lmd_mmodel *mm = &s->models[c->model];
    lmd_anymodel m;
    int rc = lmd_anymodel_open(&m, mm->spec, err);
    int32_t *tok = NULL;
    int T = s->T, n = s->n_seq;
    if (!rc) {
        if (c->is_text) {
            lmd_paper_sampling ps = {s->n_seq, s->T, s->min_words, (uint64_t)s->seed};
            size_t *starts = NULL, nd = 0;
            rc = lmd_anymodel_eval_data(&m, c->source, &ps, &tok, &starts, &nd, err);
            free(starts);
        } else {
            rc = lmd_anymodel_eval_tokens(&m, c->source, n, &T, &tok, err);
        }
        if (rc) lmd_anymodel_close(&m);
    }
    if (lmd_mpi_any(group, rc != 0, err)) { /* every rank gets the failing rank's message */
        free(tok);
        if (!rc) lmd_anymodel_close(&m);
        return -1;
    }
    int b = s->batch > 0 && s->batch < n ? s->batch : n;
    const int L1 = m.n_layer + 1, d = m.hidden_size;
    const int n_pass = (n + b - 1) / b;
    lmd_geom_acc acc;
    pass_parts pp;
    memset(&acc, 0, sizeof acc);
    memset(&pp, 0, sizeof pp);
    if (grank == 0) rc = lmd_geom_acc_init(&acc, L1, T, d, s->bins, err);
    /* the leader receives one layer at a time; a worker holds one pass */
    int has_work = gsize > 1 && (grank == 0 ? n_pass > 1 : grank < n_pass);
    if (!rc && has_work) rc = parts_init(&pp, grank == 0 ? 1 : L1, T, d, b, s->bins, err);
    int failed = rc != 0, stopped = 0;
    /* tests: LMDISP_TEST_STOP_AFTER_PASSES=N stops as a signal would after N passes of this
     * process (each rank counts the passes of its group, so they agree) */
    static int passes_seen = 0;
    const char *hook = getenv("LMDISP_TEST_STOP_AFTER_PASSES");
    for (int p = 0; p < n_pass; p++) {
        if (hook && passes_seen >= atoi(hook)) *stop = 1;
        passes_seen++;
        /* a stop request between passes abandons the cell (every rank agrees first) */
        if (gsize > 1 ? lmd_mpi_any(group, *stop != 0, NULL) : *stop != 0) {
            stopped = 1;
            break;
        }
        int owner = p % gsize, s0 = p * b, bs = n - s0 < b ? n - s0 : b;
        const int32_t *tp = tok + (size_t)s0 * T;
        const int cnt = (int)(bs * pp.tu);
        if (grank == 0 && owner == 0) {
            if (!failed && lmd_anymodel_forward(&m, tp, bs, T, leader_add, &acc, NULL, err))
                failed = 1;
        } else if (grank == 0) {
            for (int l = 0; l < L1; l++) {
                LMD_MPI(MPI_Recv(pp.c, cnt, MPI_FLOAT, owner, 2 * l, group, MPI_STATUS_IGNORE));
                LMD_MPI(MPI_Recv(pp.hm, 2 * bs, MPI_DOUBLE, owner, 2 * l + 1, group,
                                 MPI_STATUS_IGNORE));
                if (!failed) leader_add_parts(&acc, l, pp.c, pp.hm, bs);
            }
        } else if (grank == owner) {
            lmd_err e2 = {{0}};
            if (failed || lmd_anymodel_forward(&m, tp, bs, T, parts_add, &pp, NULL, &e2)) {
                if (!failed) *err = e2;
                failed = 1; /* the leader waits for every layer: NaN makes it visible */
                for (size_t i = 0; i < (size_t)L1 * b * pp.tu; i++) pp.c[i] = NAN;
            }
            for (int l = 0; l < L1; l++) {
                LMD_MPI(MPI_Send(pp.c + (size_t)l * b * pp.tu, cnt, MPI_FLOAT, 0, 2 * l, group));
                LMD_MPI(
                    MPI_Send(pp.hm + (size_t)l * b * 2, 2 * bs, MPI_DOUBLE, 0, 2 * l + 1, group));
            }
        }
    }
    parts_free(&pp);
    free(tok);
    lmd_anymodel_close(&m);
    if (grank == 0 && !failed && !stopped && lmd_geom_acc_finish(&acc, g, err)) failed = 1;
    if (grank == 0) lmd_geom_acc_free(&acc);
    int any = lmd_mpi_any(group, failed, err) != 0;
    if (any && grank == 0 && !failed) lmd_geom_free(g); /* filled, but another rank failed */
    if (any) return -1;
    return stopped ? 1 : 0;
}

static int write_result(const lmd_mspec *s, const lmd_mcell *c, const char *dir, const lmd_geom *g,
                        double secs, int ranks, lmd_err *err) {
    const lmd_mmodel *mm = &s->models[c->model];
    json_t *o = lmd_geom_json(g);
    lmd_json_set(o, "cell", lmd_json_str(c->id));
    lmd_json_set(o, "model", lmd_json_str(mm->name));
    lmd_json_set(o, "model_spec", lmd_json_str(mm->spec));
    lmd_json_set(o, "family", lmd_json_str(mm->family));
    lmd_json_set(o, "dataset", lmd_json_str(s->datasets[c->dataset].name));
    lmd_json_set(o, "model_type", lmd_json_str(mm->model_type));
    lmd_json_set(o, "n_params", json_integer((json_int_t)mm->n_params));
    lmd_json_set(o, "n_layer", json_integer(mm->n_layer));
    lmd_json_set(o, "seconds", lmd_json_num(secs));
    lmd_json_set(o, "ranks", json_integer(ranks));
    char *txt = json_dumps(o, JSON_REAL_PRECISION(17) | JSON_INDENT(1));
    json_decref(o);
    if (!txt) lmd_die("jansson could not serialize a result");
    char path[4400];
    int rc = lmd_path(path, sizeof path, err, "%s/settings", dir) ||
             lmd_file_write_atomic(path, c->settings, strlen(c->settings), err) ||
             lmd_path(path, sizeof path, err, "%s/result.json", dir) ||
             lmd_file_write_atomic(path, txt, strlen(txt), err);
    free(txt);
    return rc ? -1 : 0;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- the study ---- */

/* Loads the spec on every rank: rank 0 first (it validates: opens every model and, with
 * check_data, reads every dataset for every model, and reports), then the others, which trust
 * its data check. base_dir: see lmd_mspec_load_at. 0, or 2 (reported). */
static int load_all(lmd_mspec *s, const char *path, const char *base_dir, int check_data,
                    const char *cmd) {
    int wrank, bad = 0;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    lmd_err err = {{0}};
    if (wrank == 0) bad = lmd_mspec_load_at(s, path, base_dir, check_data, &err) != 0;
    LMD_MPI(MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (bad) {
        if (wrank == 0) fprintf(stderr, "%s: %s\n", cmd, err.msg);
        return 2;
    }
    if (wrank != 0 && lmd_mspec_load_at(s, path, base_dir, 0, &err)) bad = 1;
    bad = lmd_mpi_any(MPI_COMM_WORLD, bad, NULL);
    if (bad) {
        if (wrank != 0) fprintf(stderr, "%s: rank %d: %s\n", cmd, wrank, err.msg);
        if (wrank != 0 && !s->path) return 2;
        lmd_mspec_free(s);
        return 2;
    }
    return 0;
}

/* What the cells of a measurement run share (the context of meas_cell). */
typedef struct {
    const lmd_mspec *s;
    const char *out;
    volatile sig_atomic_t *stop;
    int stop_after; /* tests: LMDISP_TEST_STOP_AFTER_CELLS, -1 none */
    int measured, skipped, failed;
} meas_run;

/* The cell callback of the claim loop (engine.h): measures one cell on its group, or skips it
 * when DIR/cells/<id>/result.json exists (every rank sees the same file system). Returns 1
 * when a stop request abandoned the cell between passes (measured again next time). */
static int meas_cell(void *ctx, lmd_engine *e, int64_t cell, MPI_Comm group) {
    (void)e;
    meas_run *r = ctx;
    const lmd_mspec *s = r->s;
    const int R = s->ranks_per_model;
    int grank;
    LMD_MPI(MPI_Comm_rank(group, &grank));
    lmd_err err = {{0}};
    const lmd_mcell *c = &s->cells[cell];
    char dir[4200], res[4400];
    lmd_pathf(dir, "%s/cells/%s", r->out, c->id);
    snprintf(res, sizeof res, "%s/result.json", dir);
    if (file_exists(res)) {
        if (grank == 0) r->skipped++;
        return 0;
    }
    int rc = 0;
    if (grank == 0) rc = lmd_mkdirs(dir, &err);
    LMD_MPI(MPI_Bcast(&rc, 1, MPI_INT, 0, group));
    lmd_geom g;
    double t0 = lmd_now();
    if (!rc) rc = measure_cell(s, c, group, r->stop, &g, &err);
    double secs = lmd_now() - t0;
    if (rc == 1) { /* stopped between passes: the cell is measured again next time */
        if (grank == 0) printf("lmdisp run: cell %s abandoned (stop requested)\n", c->id);
        return 1;
    }
    if (grank == 0) {
        char fp[4400];
        snprintf(fp, sizeof fp, "%s/failed", dir);
        if (rc) {
            fprintf(stderr, "lmdisp run: cell %s failed: %s\n", c->id, err.msg);
            lmd_file_write_atomic(fp, err.msg, strlen(err.msg), NULL);
            r->failed = 1;
        } else {
            remove(fp);
            if (write_result(s, c, dir, &g, secs, R, &err)) {
                fprintf(stderr, "lmdisp run: cell %s: %s\n", c->id, err.msg);
                r->failed = 1;
            }
            printf("lmdisp run: cell %s measured (%s on %s, %lld parameters, %d x %d "
                   "tokens) in %.2f s on %d rank(s)\n",
                   c->id, s->models[c->model].name, s->datasets[c->dataset].name,
                   (long long)s->models[c->model].n_params, s->n_seq, s->T, secs, R);
            fflush(stdout);
            lmd_geom_free(&g);
        }
    }
    r->measured++;
    if (r->stop_after >= 0 && r->measured >= r->stop_after) *r->stop = 1;
    return 0;
}

/* Measures the cells subset[0..n) (indices into s->cells) not measured yet, most expensive
 * first, groups of ranks_per_model ranks claiming them (the claim loop of engine.h over
 * MPI_COMM_WORLD). Returns 0, 1 (a cell failed) or LMD_EXIT_INTERRUPTED; *n_skipped = cells
 * found measured (same on every rank). */
static int run_cells(const lmd_mspec *s, const char *out, const size_t *subset, size_t n,
                     volatile sig_atomic_t *stop, int *n_skipped) {
    int wrank, wsize;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    LMD_MPI(MPI_Comm_size(MPI_COMM_WORLD, &wsize));
    const int R = s->ranks_per_model;
    size_t *all = lmd_calloc(s->n_cells ? s->n_cells : 1, sizeof *all),
           *order = lmd_calloc(n + 1, sizeof *order);
    lmd_mspec_order(s, all);
    size_t k0 = 0;
    char *want = lmd_calloc(s->n_cells + 1, 1);
    for (size_t j = 0; j < n; j++)
        if (subset[j] < s->n_cells) want[subset[j]] = 1;
    for (size_t i = 0; i < s->n_cells; i++)
        if (want[all[i]]) order[k0++] = all[i];
    free(want);
    free(all);
    lmd_engine_plan plan;
    lmd_engine_plan_fixed(&plan, R, wsize / R, order, k0);
    free(order);
    if (wrank == 0) {
        printf("lmdisp run: measurement study %s: %zu of %zu cells (%d models x %d datasets) on "
               "%d rank(s) (%d group(s) of %d), output %s\n",
               s->name, k0, s->n_cells, s->n_models, s->n_datasets, wsize, wsize / R, R, out);
        fflush(stdout);
    }
    gpt_set_threads(s->threads_per_rank);
    const char *hook = getenv("LMDISP_TEST_STOP_AFTER_CELLS"); /* tests: interrupt after N */
    meas_run r = {s, out, stop, hook ? atoi(hook) : -1, 0, 0, 0};
    lmd_engine_job job = {MPI_COMM_WORLD, &plan, stop, meas_cell, &r, NULL, NULL};
    int stopped = lmd_engine_claim(&job);
    lmd_engine_plan_free(&plan);
    int failed = lmd_mpi_any(MPI_COMM_WORLD, r.failed, NULL);
    int interrupted = lmd_mpi_any(MPI_COMM_WORLD, stopped || *stop, NULL);
    int skipped = r.skipped;
    LMD_MPI(MPI_Allreduce(MPI_IN_PLACE, &skipped, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    *n_skipped = skipped;
    if (interrupted) {
        if (wrank == 0)
            printf("lmdisp run: interrupted; the measured cells are kept, run again to measure "
                   "the rest\n");
        return LMD_EXIT_INTERRUPTED;
    }
    if (wrank == 0 && skipped)
        printf("lmdisp run: %d cell(s) already measured, skipped\n", skipped);
    return failed ? 1 : 0;
}

/* DIR/spec.dir: the directory the spec's relative paths resolve against */
static int read_spec_dir(const char *dir, char *base, size_t n) {
    char p[4200], *t = NULL;
    snprintf(p, sizeof p, "%s/spec.dir", dir);
    if (lmd_file_read(p, 1 << 16, &t, NULL, NULL) != 0) return -1;
    t[strcspn(t, "\n")] = '\0';
    snprintf(base, n, "%s", t);
    free(t);
    return 0;
}

int lmd_mstudy_save_spec(const lmd_mspec *s, const char *dir, lmd_err *err) {
    char p[4200], d[4200];
    snprintf(d, sizeof d, "%s\n", s->dir);
    return lmd_path(p, sizeof p, err, "%s/spec.yaml", dir) ||
                   lmd_file_write_atomic(p, s->text, s->text_len, err) ||
                   lmd_path(p, sizeof p, err, "%s/spec.dir", dir) ||
                   lmd_file_write_atomic(p, d, strlen(d), err)
               ? -1
               : 0;
}

int lmd_mstudy_load_dir(lmd_mspec *s, const char *dir, lmd_err *err) {
    char p[4200], base[4200];
    snprintf(p, sizeof p, "%s/spec.yaml", dir);
    return lmd_mspec_load_at(s, p, read_spec_dir(dir, base, sizeof base) ? dir : base, 0, err);
}

static int write_and_report(const lmd_mspec *s, const char *out, double t_start) {
    int wrank;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    lmd_err err = {{0}};
    if (lmd_mstudy_write(s, out, t_start, MPI_COMM_WORLD, &err)) {
        if (wrank == 0) fprintf(stderr, "lmdisp: %s\n", err.msg);
        return 1;
    }
    if (wrank == 0) {
        char p[4200];
        snprintf(p, sizeof p, "%s/study.h5", out);
        printf("lmdisp: wrote %s\n", p);
        if (lmd_mstudy_report(p, stdout, 0, NULL, &err)) fprintf(stderr, "lmdisp: %s\n", err.msg);
    }
    return 0;
}

int lmd_mstudy_run(const char *spec_path, const char *out_arg, volatile sig_atomic_t *stop) {
    double t_start = lmd_now();
    int wrank, wsize;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    LMD_MPI(MPI_Comm_size(MPI_COMM_WORLD, &wsize));
    lmd_mspec s;
    if (load_all(&s, spec_path, NULL, 1, "lmdisp run")) return 2;
    lmd_err err = {{0}};
    char out[4096];
    snprintf(out, sizeof out, "%s", out_arg ? out_arg : "");
    if (!out_arg) snprintf(out, sizeof out, "results/%s", s.name);
    if (wsize % s.ranks_per_model) {
        if (wrank == 0)
            fprintf(stderr,
                    "lmdisp run: resources.ranks_per_model is %d, so the rank count must "
                    "be a multiple of it (got %d ranks)\n",
                    s.ranks_per_model, wsize);
        lmd_mspec_free(&s);
        return 2;
    }
    /* the directory: rank 0 creates, locks, refuses a training study, keeps the spec */
    int lock = -1, fail = 0;
    if (wrank == 0) {
        char p[4200], m[4200], *old = NULL;
        snprintf(p, sizeof p, "%s/spec.yaml", out);
        if (lmd_mkdirs(out, &err) || (lock = lmd_studydir_lock(out, 1, "lmdisp run", &err)) < 0) {
            fail = 2;
        } else if (lmd_file_read(p, 1 << 20, &old, NULL, &err) == 0 && !lmd_mspec_detect(p)) {
            fail = 2;
            lmd_errf(&err,
                     "%s holds a training study (its spec.yaml has no kind: measure); "
                     "give another --out",
                     out);
        } else if (old && (strlen(old) != s.text_len || memcmp(old, s.text, s.text_len)) &&
                   (snprintf(m, sizeof m, "%s/manifest", out), file_exists(m))) {
            fail = 2; /* its array tasks check the spec's sha256 against the manifest */
            lmd_errf(&err,
                     "%s was submitted to Slurm with another spec (%s differs from %s); "
                     "give another --out",
                     out, p, spec_path);
        } else if (lmd_mstudy_save_spec(&s, out, &err)) {
            fail = 1;
        }
        free(old);
        if (fail) fprintf(stderr, "lmdisp run: %s\n", err.msg);
    }
    LMD_MPI(MPI_Bcast(&fail, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (fail) {
        lmd_studydir_unlock(lock);
        lmd_mspec_free(&s);
        return fail;
    }
    size_t *all = lmd_calloc(s.n_cells + 1, sizeof *all);
    for (size_t i = 0; i < s.n_cells; i++) all[i] = i;
    int skipped = 0;
    int status = run_cells(&s, out, all, s.n_cells, stop, &skipped);
    free(all);
    if (status != LMD_EXIT_INTERRUPTED && write_and_report(&s, out, t_start)) status = 1;
    lmd_studydir_unlock(lock);
    lmd_mspec_free(&s);
    return status;
}

int lmd_mstudy_run_task(const char *out, int task, const char *manifest,
                        volatile sig_atomic_t *stop) {
    int wrank, wsize;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    LMD_MPI(MPI_Comm_size(MPI_COMM_WORLD, &wsize));
    char p[4200], base[4200], man[4200];
    snprintf(p, sizeof p, "%s/spec.yaml", out);
    snprintf(man, sizeof man, "%s", manifest ? manifest : "");
    if (!manifest) snprintf(man, sizeof man, "%s/manifest", out);
    lmd_mspec s;
    if (load_all(&s, p, read_spec_dir(out, base, sizeof base) ? out : base, 0, "lmdisp run"))
        return 2;
    lmd_err err = {{0}};
    lmd_manifest m;
    memset(&m, 0, sizeof m);
    size_t *cells = lmd_calloc(s.n_cells + 1, sizeof *cells), n = 0;
    int bad = lmd_manifest_read(&m, man, &err) != 0;
    if (!bad && strcmp(m.spec_sha256, s.sha256))
        bad = lmd_errf(&err, "%s: written for another spec.yaml (sha256 %.12s, spec %.12s)", man,
                       m.spec_sha256, s.sha256) != 0;
    for (size_t i = 0; !bad && i < m.n; i++) {
        if (m.e[i].task != task) continue;
        if (m.e[i].index >= s.n_cells || strcmp(s.cells[m.e[i].index].id, m.e[i].id))
            bad = lmd_errf(&err, "%s: cell %s is not cell %zu of %s", man, m.e[i].id, m.e[i].index,
                           p) != 0;
        else
            cells[n++] = m.e[i].index;
    }
    if (!bad && n == 0) bad = lmd_errf(&err, "%s has no cells for task %d", man, task) != 0;
    if (!bad && wsize % s.ranks_per_model)
        bad = lmd_errf(&err, "ranks_per_model %d does not divide the %d ranks", s.ranks_per_model,
                       wsize) != 0;
    int lock = -1;
    if (!bad && wrank == 0 &&
        (lock = lmd_studydir_lock(out, 0, "lmdisp run --array-task", &err)) < 0)
        bad = 1;
    bad = lmd_mpi_any(MPI_COMM_WORLD, bad, &err) != 0;
    int status = 2;
    if (bad) {
        if (wrank == 0) fprintf(stderr, "lmdisp run: array task %d: %s\n", task, err.msg);
    } else {
        if (wrank == 0) {
            printf("lmdisp run: array task %d of %s (round %d): %zu cell(s)\n", task, man, m.round,
                   n);
            fflush(stdout);
        }
        int skipped = 0;
        status = run_cells(&s, out, cells, n, stop, &skipped);
    }
    lmd_studydir_unlock(lock);
    free(cells);
    lmd_manifest_free(&m);
    lmd_mspec_free(&s);
    return status;
}

int lmd_mstudy_aggregate(const char *dir) {
    double t_start = lmd_now();
    int wrank;
    LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &wrank));
    char p[4200], base[4200];
    snprintf(p, sizeof p, "%s/spec.yaml", dir);
    lmd_mspec s;
    if (load_all(&s, p, read_spec_dir(dir, base, sizeof base) ? dir : base, 0, "lmdisp aggregate"))
        return 2;
    lmd_err err = {{0}};
    int lock = -1, bad = 0;
    if (wrank == 0 && (lock = lmd_studydir_lock(dir, 1, "lmdisp aggregate", &err)) < 0) {
        fprintf(stderr, "lmdisp aggregate: %s\n", err.msg);
        bad = 1;
    }
    LMD_MPI(MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD));
    int status = bad ? 2 : write_and_report(&s, dir, t_start);
    lmd_studydir_unlock(lock);
    lmd_mspec_free(&s);
    return status;
}

/* ---- plan ---- */

/* Forward throughput assumed for the time estimate: the ~80 GFLOP/s per core of the pretrained
 * forward in docs/PERFORMANCE.md (GPT-2 small and 1B shapes, one thread). */
#define MEAS_GFLOPS 80.0

int lmd_mstudy_plan(const char *spec_path, int json) {
    lmd_mspec s;
    lmd_err err = {{0}};
    if (lmd_mspec_load(&s, spec_path, &err)) {
        fprintf(stderr, "lmdisp plan: %s\n", err.msg);
        return 2;
    }
    size_t *order = lmd_calloc(s.n_cells ? s.n_cells : 1, sizeof *order);
    lmd_mspec_order(&s, order);
    double tot = 0;
    for (size_t i = 0; i < s.n_cells; i++) tot += s.cells[i].cost;
    if (json) {
        json_t *o = json_object(), *cells = json_array();
        lmd_json_set(o, "spec", lmd_json_str(s.path));
        lmd_json_set(o, "name", lmd_json_str(s.name));
        lmd_json_set(o, "kind", lmd_json_str("measure"));
        lmd_json_set(o, "ranks_per_model", json_integer(s.ranks_per_model));
        for (size_t k = 0; k < s.n_cells; k++) {
            const lmd_mcell *c = &s.cells[order[k]];
            const lmd_mmodel *m = &s.models[c->model];
            json_t *e = json_object();
            lmd_json_set(e, "id", lmd_json_str(c->id));
            lmd_json_set(e, "family", lmd_json_str(m->family));
            lmd_json_set(e, "model", lmd_json_str(m->name));
            lmd_json_set(e, "revision", lmd_json_str(m->revision));
            lmd_json_set(e, "dataset", lmd_json_str(s.datasets[c->dataset].name));
            lmd_json_set(e, "model_type", lmd_json_str(m->model_type));
            lmd_json_set(e, "n_params", json_integer((json_int_t)m->n_params));
            lmd_json_set(e, "n_layer", json_integer(m->n_layer));
            lmd_json_set(e, "cost", lmd_json_num(c->cost));
            lmd_json_append(cells, e);
        }
        lmd_json_set(o, "cells", cells);
        lmd_json_set(o, "total_cost", lmd_json_num(tot));
        lmd_json_set(o, "est_core_hours", lmd_json_num(2.0 * tot / (MEAS_GFLOPS * 1e9) / 3600.0));
        lmd_json_dump(stdout, o, 17, &err); /* takes the reference */
        printf("\n");
    } else {
        printf("measurement study %s (%s): %d families, %d models, %d datasets, %zu cells; "
               "%d sequences x %d tokens per cell; ranks_per_model %d\n",
               s.name, s.path, s.n_families, s.n_models, s.n_datasets, s.n_cells, s.n_seq, s.T,
               s.ranks_per_model);
        int cw = 4, mw = 5;
        for (size_t i = 0; i < s.n_cells; i++) {
            if ((int)strlen(s.cells[i].id) > cw) cw = (int)strlen(s.cells[i].id);
            if ((int)strlen(s.models[s.cells[i].model].name) > mw)
                mw = (int)strlen(s.models[s.cells[i].model].name);
        }
        printf("%-4s %-*s %-14s %-*s %-10s %-10s %13s %7s %12s\n", "#", cw, "cell", "family", mw,
               "model", "dataset", "type", "n_params", "layers", "cost");
        for (size_t k = 0; k < s.n_cells; k++) {
            const lmd_mcell *c = &s.cells[order[k]];
            const lmd_mmodel *m = &s.models[c->model];
            printf("%-4zu %-*s %-14s %-*s %-10s %-10s %13lld %7d %12.4g\n", k, cw, c->id, m->family,
                   mw, m->name, s.datasets[c->dataset].name, m->model_type, (long long)m->n_params,
                   m->n_layer, c->cost);
        }
        printf("total cost %.4g parameter-tokens (cost = n_params x sequences x seq_len); at ~2 "
               "FLOPs per parameter-token and %g GFLOP/s per core: ~%.3g core-hours\n",
               tot, MEAS_GFLOPS, 2.0 * tot / (MEAS_GFLOPS * 1e9) / 3600.0);
        for (int p = 0; p < s.n_pairs; p++)
            printf("pair: %s (distilled) <-> %s (base)\n", s.models[s.pairs[p].distilled].name,
                   s.models[s.pairs[p].base].name);
    }
    free(order);
    lmd_mspec_free(&s);
    return 0;
}

int lmd_mstudy_dir_is(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/spec.yaml", dir);
    return lmd_mspec_detect(p);
}
