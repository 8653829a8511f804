/* cell.c — one cell of a study: train, track, checkpoint, resume (see cell.h).
 *
 * Files under the cell directory (rank 0 of the cell's group writes them):
 *   settings              canonical settings text (compared on resume)
 *   state                 "status: ...", "step: ...", "message: ..." lines, replaced atomically
 *   log                   progress lines, appended
 *   ckpt/step%07d.h5      checkpoints (DESIGN 4.1 + optimizer and state groups)
 *   track/step%07d.h5     metrics of one tracked checkpoint (see docs/RUNNER.md) */
#include "cell.h"
#include "celleval.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fileio.h"
#include "geometry.h"
#include "measure.h"
#include "h5io.h"
#include "initmodel.h"
#include "mpicheck.h"

const char *lmd_cell_status_name(lmd_cell_status s) {
    switch (s) {
    case CELL_DONE: return "done";
    case CELL_FAILED: return "failed";
    case CELL_DIVERGED: return "diverged";
    case CELL_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

/* ---- small file helpers ---- */

#define CELL_TEXT_MAX (1u << 20) /* state and settings files are a few hundred bytes */

/* The text of path, NULL when it does not exist; a file that exists but cannot be read is
 * reported on stderr (naming the file) and also gives NULL. */
static char *read_text(const char *path) {
    char *s;
    lmd_err err;
    int rc = lmd_file_read(path, CELL_TEXT_MAX, &s, NULL, &err);
    if (rc < 0) fprintf(stderr, "lmdisp: warning: %s\n", err.msg);
    return rc == 0 ? s : NULL;
}

static int write_text_atomic(const char *path, const char *text, lmd_err *err) {
    return lmd_file_write_atomic(path, text, strlen(text), err);
}

/* The state file. A running cell also names its holder (host, pid of rank 0 of its group), so
 * `lmdisp status` can tell a run that died without a chance to update it (kill -9, a crash)
 * from one that is still going. */
static void write_state(const char *dir, const char *status, int64_t step, const char *msg) {
    char path[4200], text[2048], holder[400] = "";
    lmd_pathf(path, "%s/state", dir);
    if (!strcmp(status, "running")) {
        char host[256] = "?";
        if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
        host[sizeof host - 1] = '\0';
        snprintf(holder, sizeof holder, "host: %s\npid: %ld\n", host, (long)getpid());
    }
    snprintf(text, sizeof text, "status: %s\nstep: %lld\n%smessage: %s\n", status, (long long)step,
             holder, msg ? msg : "");
    lmd_err err;
    if (write_text_atomic(path, text, &err)) fprintf(stderr, "lmdisp: warning: %s\n", err.msg);
}

int lmd_cell_holder_gone(const char *cell_dir, char *why, size_t n) {
    char path[4200];
    lmd_pathf(path, "%s/state", cell_dir);
    char *s = read_text(path);
    if (!s) return 0;
    char st[64] = "", host[256] = "", me[256] = "";
    long pid = -1;
    const char *p = strstr(s, "status: ");
    if (p) sscanf(p + 8, "%63s", st);
    p = strstr(s, "\nhost: ");
    if (p) sscanf(p + 7, "%255s", host);
    p = strstr(s, "\npid: ");
    if (p) sscanf(p + 6, "%ld", &pid);
    free(s);
    if (strcmp(st, "running") || !host[0] || pid <= 0) return 0;
    if (gethostname(me, sizeof me) != 0 || strncmp(me, host, sizeof host - 1)) return 0;
    /* same host: alive only if the pid exists and is still an lmdisp (pids are reused) */
    int alive = kill((pid_t)pid, 0) == 0 || errno == EPERM;
    if (alive) {
        char comm[64] = "", cpath[64];
        lmd_pathf(cpath, "/proc/%ld/comm", pid);
        FILE *f = fopen(cpath, "r");
        if (f) {
            if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = '\0';
            fclose(f);
            alive = strstr(comm, "lmdisp") != NULL;
        }
    }
    if (!alive && why) snprintf(why, n, "its run (pid %ld on %s) is gone", pid, host);
    return !alive;
}

static void cell_log(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cell_log(const char *dir, const char *fmt, ...) {
    char path[4200];
    lmd_pathf(path, "%s/log", dir);
    FILE *f = fopen(path, "a");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

int lmd_cell_finished(const char *cell_dir, char *status, size_t n, int64_t *step) {
    char path[4200];
    lmd_pathf(path, "%s/state", cell_dir);
    char *s = read_text(path);
    if (!s) return 0;
    char st[64] = "";
    long long sp = -1;
    const char *p = strstr(s, "status: ");
    if (p) sscanf(p + 8, "%63s", st);
    p = strstr(s, "step: ");
    if (p) sscanf(p + 6, "%lld", &sp);
    free(s);
    if (status) snprintf(status, n, "%s", st);
    if (step) *step = sp;
    return !strcmp(st, "done") || !strcmp(st, "diverged");
}

int lmd_cell_check_settings(const lmd_cell_job *job, lmd_err *err) {
    char path[4200];
    if (lmd_path(path, sizeof path, err, "%s/settings", job->dir)) return -1;
    char *old = read_text(path);
    if (!old) return 0;
    int rc = 0;
    if (strcmp(old, job->settings) != 0) {
        /* name the first differing line */
        const char *a = old, *b = job->settings;
        while (*a && *a == *b) a++, b++;
        while (a > old && a[-1] != '\n') a--, b--;
        char la[256], lb[256];
        snprintf(la, sizeof la, "%.*s", (int)strcspn(a, "\n"), a);
        snprintf(lb, sizeof lb, "%.*s", (int)strcspn(b, "\n"), b);
        rc = lmd_errf(err,
                      "cell %s already exists with different settings: was '%s', the spec now "
                      "gives '%s'. Use a new --out directory, or delete %s to retrain it",
                      job->id, la, lb, job->dir);
    }
    free(old);
    return rc;
}

/* ---- checkpoints ---- */

static void ckpt_path(char *buf, size_t n, const char *dir, int64_t step) {
    snprintf(buf, n, "%s/ckpt/step%07lld.h5", dir, (long long)step);
}

void lmd_cell_ckpt_path(char *buf, size_t n, const char *cell_dir, int64_t step) {
    ckpt_path(buf, n, cell_dir, step);
}

/* Steps of the checkpoints present, descending. */
static int list_ckpts(const char *dir, int64_t **steps) {
    char path[4200];
    lmd_pathf(path, "%s/ckpt", dir);
    DIR *d = opendir(path);
    *steps = NULL;
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long s;
        char tail[8];
        if (sscanf(e->d_name, "step%lld.%7s", &s, tail) == 2 && !strcmp(tail, "h5")) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *ns = realloc(*steps, (size_t)cap * sizeof **steps);
                if (!ns) lmd_die("out of memory");
                *steps = ns;
            }
            (*steps)[n++] = s;
        }
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort, descending */
        for (int j = i; j > 0 && (*steps)[j] > (*steps)[j - 1]; j--) {
            int64_t t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return n;
}

static int is_tracked(const lmd_cell_job *job, int64_t step) {
    for (int i = 0; i < job->n_track; i++)
        if (job->track_steps[i] == step) return 1;
    return 0;
}

/* ---- measurement of one tracked checkpoint ---- */

static int measure_and_write(const lmd_cell_job *job, const lmd_cell_data *data, gpt_model *m,
                             const lmd_train_state *st, double train_loss, lmd_err *err) {
    int L1 = m->cfg.n_layer + 1;
    lmd_geom g;
    if (lmd_measure_model(m, data->eval_inputs, job->eval_sequences, job->eval_seq_len,
                          job->hist_bins, LMD_MEASURE_CHUNK, &g, err))
        return -1;
    double val =
        data->val.n ? lmd_eval_loss(m, data->val, job->opts.B, job->opts.T, job->val_batches) : NAN;

    char path[4200], tmp[4300];
    if (lmd_path(path, sizeof path, err, "%s/track/step%07lld.h5", job->dir, (long long)st->step) ||
        lmd_path(tmp, sizeof tmp, err, "%s.tmp.%d", path, (int)getpid())) {
        lmd_geom_free(&g);
        return -1;
    }
    hid_t f = lmd_h5_create(tmp, err);
    if (f < 0) {
        lmd_geom_free(&g);
        return -1;
    }
    hsize_t d1[1] = {(hsize_t)L1}, d2[2] = {(hsize_t)L1, (hsize_t)g.nbins},
            d6[1] = {LMD_GEOM_NLAST};
    float *hist = lmd_calloc((size_t)L1 * g.nbins, sizeof(float));
    for (size_t i = 0; i < (size_t)L1 * g.nbins; i++) hist[i] = (float)g.hist[i];
    int rc = 0;
    rc = rc ? rc : lmd_h5_attr_i64(f, "/", "step", st->step, err);
    rc = rc ? rc : lmd_h5_attr_i64(f, "/", "tokens", st->tokens, err);
    rc = rc ? rc : lmd_h5_attr_str(f, "/", "cell", job->id, err);
    rc = rc ? rc
            : lmd_h5_write(f, "/layer_mean_cossim", H5T_NATIVE_DOUBLE, g.layer_mean, 1, d1, err);
    rc =
        rc ? rc
           : lmd_h5_write(f, "/offdiag_mean_cossim", H5T_NATIVE_DOUBLE, g.offdiag_mean, 1, d1, err);
    rc = rc ? rc : lmd_h5_write(f, "/cossim_hist", H5T_NATIVE_FLOAT, hist, 2, d2, err);
    rc = rc ? rc
            : lmd_h5_write(f, "/singular_value_entropy", H5T_NATIVE_DOUBLE, g.sv_entropy, 1, d1,
                           err);
    rc = rc ? rc : lmd_h5_write(f, "/mev", H5T_NATIVE_DOUBLE, g.mev, 1, d1, err);
    rc = rc ? rc : lmd_h5_write(f, "/last_n_mean", H5T_NATIVE_DOUBLE, g.last_n_mean, 1, d6, err);
    rc = rc ? rc : lmd_h5_write_scalar_f64(f, "/spearman", g.spearman, err);
    rc = rc ? rc : lmd_h5_write_scalar_f64(f, "/kendall", g.kendall, err);
    rc = rc ? rc : lmd_h5_write_scalar_f64(f, "/val_loss", val, err);
    rc = rc ? rc : lmd_h5_write_scalar_f64(f, "/train_loss", train_loss, err);
    rc = rc ? rc : lmd_cell_eval_tasks(job, m, f, err); /* /eval/<task>/... (celleval.h) */
    free(hist);
    if (H5Fclose(f) < 0 && !rc) rc = lmd_errf(err, "%s: error closing", tmp);
    if (!rc) rc = lmd_file_commit(tmp, path, err);
    if (rc) remove(tmp);
    cell_log(job->dir,
             "track step %lld tokens %lld: val_loss %.4f last-layer cossim %.4f "
             "spearman %.3f kendall %.3f",
             (long long)st->step, (long long)st->tokens, val, g.layer_mean[L1 - 1], g.spearman,
             g.kendall);
    lmd_geom_free(&g);
    return rc;
}

/* ---- the cell ---- */

static int save_ckpt(const lmd_cell_job *job, const lmd_trainer *tr, lmd_err *err) {
    char path[4200];
    ckpt_path(path, sizeof path, job->dir, tr->state.step);
    if (lmd_ckpt_save(path, &tr->model, &tr->state, err)) return -1;
    if (!job->keep_checkpoints) { /* keep only the newest, which resume needs */
        int64_t *steps;
        int n = list_ckpts(job->dir, &steps);
        for (int i = 0; i < n; i++)
            if (steps[i] < tr->state.step) {
                ckpt_path(path, sizeof path, job->dir, steps[i]);
                remove(path);
            }
        free(steps);
    }
    return 0;
}

/* Sum over the ranks of comm (a power of 2) by recursive doubling: in round d each rank adds
 * the partial sum of rank ^ d. With each rank holding the tree sum of an aligned block of
 * shards (lmd_trainer_grads), round d joins two sibling blocks, so the result is the balanced
 * binary tree over all shards, the same bits as one rank computing every shard (float addition
 * is commutative, so both partners get the same sum). log2(g) exchanges of the whole gradient
 * instead of MPI_Allreduce's ~2: the price of results independent of the group size. */
static int tree_allreduce(float *buf, size_t n, double l3[4], MPI_Comm comm, lmd_err *err) {
    int rank, size;
    LMD_MPI(MPI_Comm_rank(comm, &rank));
    LMD_MPI(MPI_Comm_size(comm, &size));
    if (size & (size - 1))
        return lmd_errf(err, "tree all-reduce needs a power-of-2 group, not %d", size);
    float *tmp = lmd_aligned_alloc(n * sizeof(float));
    const size_t chunk = (size_t)1 << 28; /* elements per message: within MPI's int counts */
    for (int d = 1; d < size; d <<= 1) {
        int peer = rank ^ d;
        for (size_t off = 0; off < n; off += chunk) {
            int cnt = (int)(n - off < chunk ? n - off : chunk);
            LMD_MPI(MPI_Sendrecv(buf + off, cnt, MPI_FLOAT, peer, 71, tmp + off, cnt, MPI_FLOAT,
                                 peer, 71, comm, MPI_STATUS_IGNORE));
        }
        double o3[4];
        LMD_MPI(MPI_Sendrecv(l3, 4, MPI_DOUBLE, peer, 72, o3, 4, MPI_DOUBLE, peer, 72, comm,
                             MPI_STATUS_IGNORE));
#pragma omp parallel for simd schedule(static) if (n >= 65536)
        for (size_t i = 0; i < n; i++) buf[i] += tmp[i];
        for (int q = 0; q < 4; q++) l3[q] += o3[q];
    }
    free(tmp);
    return 0;
}

/* Combines one micro-batch's gradient over the cell's group (lmd_trainer.reduce): the tree
 * all-reduce with train.shards > 1 (the same bits for every group size), else MPI_Allreduce. */
typedef struct {
    MPI_Comm comm;
    lmd_err *err;
    int size;
} group_ctx;

static int group_reduce(lmd_trainer *tr, void *ctx) {
    group_ctx *g = ctx;
    int size = g->size;
    if (size <= 1) return 0;
    if (tr->opts.shards > 1) {
        double l3[4] = {tr->last.loss, tr->last.ce, tr->last.disp, tr->last.kl};
        if (tree_allreduce(tr->model.grads_memory, tr->model.num_params, l3, g->comm, g->err))
            return -1;
        tr->last.loss = l3[0], tr->last.ce = l3[1], tr->last.disp = l3[2], tr->last.kl = l3[3];
        lmd_trainer_shards_scale(tr);
    } else {
        /* in pieces of at most 2^28 floats: MPI counts are int, a model may have more */
        const size_t piece = (size_t)1 << 28;
        for (size_t off = 0; off < tr->model.num_params; off += piece) {
            size_t n = tr->model.num_params - off < piece ? tr->model.num_params - off : piece;
            LMD_MPI(MPI_Allreduce(MPI_IN_PLACE, tr->model.grads_memory + off, (int)n, MPI_FLOAT,
                                  MPI_SUM, g->comm));
        }
        float inv = 1.0f / (float)size;
        for (size_t i = 0; i < tr->model.num_params; i++) tr->model.grads_memory[i] *= inv;
        double l3[4] = {tr->last.loss, tr->last.ce, tr->last.disp, tr->last.kl};
        LMD_MPI(MPI_Allreduce(MPI_IN_PLACE, l3, 4, MPI_DOUBLE, MPI_SUM, g->comm));
        tr->last.loss = l3[0] / size;
        tr->last.ce = l3[1] / size;
        tr->last.disp = l3[2] / size;
        tr->last.kl = l3[3] / size;
    }
    return 0;
}

static long long test_hook_step(const char *var, const char *id) {
    const char *v = getenv(var);
    const char *colon = v ? strrchr(v, ':') : NULL;
    if (!colon) return -1;
    char sub[160];
    snprintf(sub, sizeof sub, "%.*s", (int)(colon - v), v);
    return strstr(id, sub) ? atoll(colon + 1) : -1;
}

lmd_cell_status lmd_cell_run(const lmd_cell_job *job, const lmd_cell_data *data, MPI_Comm comm,
                             volatile sig_atomic_t *stop_flag, lmd_cell_tick tick, void *tick_ctx,
                             lmd_err *err) {
    int rank, size;
    LMD_MPI(MPI_Comm_rank(comm, &rank));
    LMD_MPI(MPI_Comm_size(comm, &size));
    int bad = 0;
    char path[4200];
    if (rank == 0) {
        lmd_pathf(path, "%s/ckpt", job->dir);
        bad = lmd_mkdirs(path, err);
        lmd_pathf(path, "%s/track", job->dir);
        if (!bad) bad = lmd_mkdirs(path, err);
        lmd_pathf(path, "%s/settings", job->dir);
        if (!bad && access(path, F_OK) != 0) bad = write_text_atomic(path, job->settings, err);
    }
    if (lmd_mpi_any(comm, bad, err)) return CELL_FAILED; /* err: the failing rank's */
    if (job->opts.shards > 1 && job->opts.shards % size != 0) {
        lmd_errf(err, "cell %s: train.shards %d is not divisible by the group's %d ranks", job->id,
                 job->opts.shards, size);
        return CELL_FAILED;
    }
    if (job->opts.B % size != 0) {
        lmd_errf(err, "cell %s: batch %d is not divisible by ranks_per_model %d", job->id,
                 job->opts.B, size);
        return CELL_FAILED;
    }

    /* newest loadable checkpoint with full state; rank 0 chooses, everyone loads it */
    long long resume_step = -1;
    if (rank == 0) {
        int64_t *steps;
        int n = list_ckpts(job->dir, &steps);
        for (int i = 0; i < n && resume_step < 0; i++) {
            gpt_model probe;
            lmd_train_state pst;
            lmd_err perr;
            ckpt_path(path, sizeof path, job->dir, steps[i]);
            if (lmd_ckpt_load(path, &probe, &pst, &perr) == 0) {
                if (pst.has_state) resume_step = steps[i];
                gpt_free(&probe);
            } else {
                cell_log(job->dir, "skipping unreadable checkpoint: %s", perr.msg);
                fprintf(stderr,
                        "lmdisp run: cell %s: checkpoint %s is unreadable, skipped (%s); "
                        "resuming from %s\n",
                        job->id, path, perr.msg,
                        i + 1 < n ? "an older checkpoint" : "the start (step 0)");
            }
        }
        free(steps);
    }
    LMD_MPI(MPI_Bcast(&resume_step, 1, MPI_LONG_LONG, 0, comm));

    gpt_model model;
    lmd_train_state st;
    int have_state = 0;
    if (resume_step >= 0) {
        ckpt_path(path, sizeof path, job->dir, resume_step);
        bad = lmd_ckpt_load(path, &model, &st, err);
        have_state = 1;
        if (!bad && memcmp(&model.cfg, &job->cfg, sizeof model.cfg) != 0) {
            bad = lmd_errf(err, "%s: model config differs from the cell's settings", path);
            gpt_free(&model);
        }
    } else if (job->init) {
        /* train.init: the pretrained weights; fresh optimizer state, step 0 */
        bad = lmd_init_load(job->init, &model, err);
        if (!bad && memcmp(&model.cfg, &job->cfg, sizeof model.cfg) != 0) {
            bad = lmd_errf(err, "%s: model config differs from the cell's settings", job->init);
            gpt_free(&model);
        }
    } else {
        bad = gpt_create(&model, &job->cfg, err);
        if (!bad) gpt_init(&model, job->opts.seed);
    }
    gpt_model teacher;
    memset(&teacher, 0, sizeof teacher);
    lmd_train_opts opts = job->opts;
    opts.kd.teacher = NULL;
    if (!bad && job->teacher) {
        if (lmd_init_load(job->teacher, &teacher, err)) {
            bad = 1;
            gpt_free(&model);
        } else {
            opts.kd.teacher = &teacher;
        }
    }
    if (lmd_mpi_any(comm, bad, err)) {
        if (!bad) {
            gpt_free(&model);
            gpt_free(&teacher);
        }
        return CELL_FAILED;
    }
    lmd_trainer tr;
    if (lmd_trainer_init(&tr, &opts, &model, data->train, have_state ? &st : NULL, err)) {
        gpt_free(&model);
        gpt_free(&teacher);
        return CELL_FAILED;
    }
    tr.shard = rank;
    tr.nshards = size;
    group_ctx gctx = {comm, err, size};
    tr.reduce = group_reduce;
    tr.reduce_ctx = &gctx;
    if (rank == 0) {
        write_state(job->dir, "running", tr.state.step, NULL);
        if (have_state)
            cell_log(job->dir, "resuming from step %lld", (long long)tr.state.step);
        else
            cell_log(job->dir, "starting: %lld parameters, %lld steps, %d rank(s)",
                     (long long)tr.model.num_params, (long long)job->opts.steps, size);
    }

    /* Fault injection for tests: LMDISP_TEST_NAN="ID_SUBSTRING:STEP" makes the loss of that
     * step NaN in the matching cells, to exercise the divergence path. */
    long long inject_step = -1;
    const char *inj = getenv("LMDISP_TEST_NAN");
    if (inj) {
        const char *colon = strrchr(inj, ':');
        if (colon) {
            char sub[160];
            snprintf(sub, sizeof sub, "%.*s", (int)(colon - inj), inj);
            if (strstr(job->id, sub)) inject_step = atoll(colon + 1);
        }
    }
    /* LMDISP_TEST_STOP="ID_SUBSTRING:STEP" acts as a signal arriving during step STEP (the run
     * stops at that step boundary, checkpoints and exits 3); LMDISP_TEST_KILL="ID_SUBSTRING:STEP"
     * kills the process (SIGKILL) at that boundary, before anything of the step is saved. For
     * tests: the interruption lands mid-training at a known step, every time. */
    long long stop_step = test_hook_step("LMDISP_TEST_STOP", job->id);
    long long kill_step = test_hook_step("LMDISP_TEST_KILL", job->id);
    lmd_cell_status status = CELL_DONE;
    const int64_t total = job->opts.steps;
    const int64_t log_every = total >= 20 ? total / 20 : 1;
    char kls[48];
    double t0 = lmd_now();
    for (;;) {
        int64_t s = tr.state.step;
        if (is_tracked(job, s) && rank == 0) {
            lmd_pathf(path, "%s/track/step%07lld.h5", job->dir, (long long)s);
            int already = access(path, F_OK) == 0;
            /* The track file first, then the checkpoint: a checkpoint at a tracked step then
             * implies its track file exists, so a resume never has to measure a step whose
             * training loss it no longer knows (it is not in the checkpoint). */
            bad = 0;
            if (!already)
                bad = measure_and_write(job, data, &tr.model, &tr.state, tr.last.loss, err);
            if (!bad && !(have_state && s == resume_step)) bad = save_ckpt(job, &tr, err);
            if (!bad) write_state(job->dir, "running", s, NULL);
        }
        if (rank == 0 && !bad && s >= total && job->save_final && !is_tracked(job, s)) {
            ckpt_path(path, sizeof path, job->dir, s);
            if (access(path, F_OK) != 0) bad = save_ckpt(job, &tr, err);
        }
        if (lmd_mpi_any(comm, bad, err)) {
            status = CELL_FAILED;
            break;
        }
        if (s >= total) break;
        if (s == kill_step && rank == 0) raise(SIGKILL);
        int stop =
            (stop_flag ? *stop_flag : 0) || (s == stop_step && !(have_state && s == resume_step));
        if (lmd_mpi_any(comm, stop, NULL)) {
            if (rank == 0) {
                bad = save_ckpt(job, &tr, err);
                write_state(job->dir, "interrupted", s, bad ? err->msg : "stopped on a signal");
                cell_log(job->dir, "interrupted at step %lld, checkpoint saved", (long long)s);
                if (!bad)
                    fprintf(stderr,
                            "lmdisp run: cell %s interrupted at step %lld; rerun the same "
                            "command to resume\n",
                            job->id, (long long)s);
            }
            status = bad ? CELL_FAILED : CELL_INTERRUPTED;
            break;
        }
        lmd_trainer_grads(&tr);
        if (tr.failed) {
            status = CELL_FAILED;
            break;
        }
        if (inject_step >= 0 && tr.state.step == inject_step) tr.last.loss = NAN;
        if (!isfinite(tr.last.loss)) {
            status = CELL_DIVERGED;
            break;
        }
        lmd_trainer_apply(&tr);
        if (!isfinite(tr.grad_norm)) {
            status = CELL_DIVERGED;
            break;
        }
        int64_t done = tr.state.step;
        if (rank == 0 && tick) tick(tick_ctx, done, total);
        if (rank == 0 && (done % log_every == 0 || done == total)) {
            double el = lmd_now() - t0;
            cell_log(
                job->dir, "step %lld/%lld loss %.4f ce %.4f disp %.4f%s lr %.3e |g| %.3f %.1fs",
                (long long)done, (long long)total, tr.last.loss, tr.last.ce, tr.last.disp,
                opts.kd.teacher ? (snprintf(kls, sizeof kls, " kl %.4f", tr.last.kl), kls) : "",
                tr.lr, tr.grad_norm, el);
        }
    }
    if (rank == 0) {
        if (status == CELL_DONE)
            write_state(job->dir, "done", tr.state.step, NULL);
        else if (status == CELL_DIVERGED) {
            char msg[128];
            snprintf(msg, sizeof msg, "non-finite loss or gradient at step %lld",
                     (long long)tr.state.step);
            write_state(job->dir, "diverged", tr.state.step, msg);
            cell_log(job->dir, "diverged: %s", msg);
        } else if (status == CELL_FAILED) {
            write_state(job->dir, "failed", tr.state.step, err->msg);
            cell_log(job->dir, "failed: %s", err->msg);
        }
    }
    if (status == CELL_DIVERGED)
        lmd_errf(err, "cell %s diverged at step %lld", job->id, (long long)tr.state.step);
    lmd_trainer_free(&tr);
    gpt_free(&teacher);
    return status;
}
