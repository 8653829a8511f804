/* slurm.h — the Slurm side of a study: the frozen manifest (array task -> cells), the
 * validated slurm: section of a spec, sbatch scripts rendered from the templates in slurm/,
 * the job table DIR/slurm/jobs.tsv, and one batched squeue/sacct query for `status`.
 *
 * Study directory additions (see docs/SLURM.md):
 *   DIR/manifest                     task -> cell mapping written once by `lmdisp submit`
 *   DIR/slurm/resubmit-R.manifest    the same for resubmission round R (1, 2, ...)
 *   DIR/slurm/array-R-P.sbatch       rendered array script of round R, piece P
 *   DIR/slurm/aggregate-R.sbatch     rendered aggregation script of round R
 *   DIR/slurm/jobs.tsv               one line per submitted job
 *   DIR/slurm/logs/%A_%a.out         task logs (appended across requeues)
 *   DIR/slurm/attempts.tsv           one line per task attempt that ended (written by the script)
 */
#ifndef LMDISP_SLURM_H
#define LMDISP_SLURM_H

#include <stddef.h>

#include "spec.h"
#include "util.h"

/* ---- the manifest ---- */
typedef struct {
    int task;     /* array task index, 0-based, global over the pieces of a round */
    size_t index; /* grid index of the cell in the frozen spec */
    char id[160]; /* the cell id (checked against the spec when a task starts) */
} lmd_manifest_entry;

typedef struct {
    char spec_sha256[65]; /* sha256 of DIR/spec.yaml when the manifest was written */
    int round;            /* 0 = lmdisp submit, R > 0 = resubmission R */
    int n_tasks;
    lmd_manifest_entry *e;
    size_t n;
} lmd_manifest;

/* Groups cells subset[0..n) into tasks of at most cells_per_task cells: most expensive first,
 * each next cell to the task with the least estimated cost so far (ties: lowest task), so the
 * tasks of an array have similar run times. */
void lmd_manifest_build(lmd_manifest *m, const lmd_spec *s, const size_t *subset, size_t n,
                        int cells_per_task, int round);
/* Writes atomically (temp file + rename); refuses to overwrite an existing file. */
int lmd_manifest_write(const lmd_manifest *m, const char *path, lmd_err *err);
int lmd_manifest_read(lmd_manifest *m, const char *path, lmd_err *err);
void lmd_manifest_free(lmd_manifest *m);
/* The grid indices of task `task`'s cells, checked against the spec (ids and spec hash).
 * Returns the count (>= 1) and a malloc'ed array in *out, or -1 with a message. */
long lmd_manifest_task_cells(const lmd_manifest *m, const lmd_spec *s, int task, size_t **out,
                             lmd_err *err);

/* ---- the slurm: section ---- */
typedef struct {
    char sbatch
        [8192]; /* "#SBATCH --key=value\n" lines for resources (not time, array, output, ...) */
    char setup[4096]; /* "module load 'x'\n" lines */
    char job_name[96];
    int ntasks;        /* ranks per array task (mpirun -np); default ranks_per_model */
    int cpus_per_task; /* default threads_per_rank */
    int max_requeue;   /* slurm.max_requeues: requeues of one task after an interruption (3) */
    int grace;         /* slurm.signal_grace: seconds from the warning signal to the time
                          * limit (120) */
    int throttle;      /* slurm.throttle: default of --throttle (0 = none) */
    char time[32];     /* slurm.time ("" = the partition's default) */
    char aggregate_time[32]; /* time limit of the aggregation job ("" = same as the array) */
} lmd_slurm_res;

/* Validates spec->slurm against a fixed key list and strict per-key character sets, so no
 * value can reach a shell or start a new #SBATCH line. Messages are
 * "PATH:LINE:COLUMN: key 'slurm.K': ..." one per line. Returns 0 or -1. */
int lmd_slurm_resources(const lmd_spec *s, lmd_slurm_res *r, lmd_err *err);

/* 1 if path is made only of characters that are safe inside an #SBATCH line unquoted. */
int lmd_slurm_path_ok(const char *path);
/* Appends to buf (capacity cap) the word w quoted for POSIX sh ('...' with '\'' for '). */
int lmd_shell_quote(char *buf, size_t cap, const char *w);

/* ---- rendering ---- */
/* Template text: from templates_dir/NAME.sbatch.in when templates_dir is set, else the copy
 * compiled into the binary. NAME is "array" or "aggregate". malloc'ed, or NULL with err. */
char *lmd_slurm_template(const char *templates_dir, const char *name, lmd_err *err);
/* Replaces each @KEY@ of tmpl by the value of the pair (keys[i], vals[i]); an unknown @KEY@
 * is an error (a template typo must not render a broken script). malloc'ed. */
char *lmd_slurm_render(const char *tmpl, const char *const *keys, const char *const *vals, int n,
                       lmd_err *err);

/* Renders and (unless dry) submits the array pieces of manifest m and the aggregation job
 * after them, appending to DIR/slurm/jobs.tsv (the code of `lmdisp submit`, cmd_submit.c, for
 * other kinds of studies). dir and manifest absolute. Returns 0, or 1 with a message;
 * *n_submitted = jobs that reached Slurm. */
int lmd_slurm_submit_round(const lmd_slurm_res *res, const lmd_manifest *m, const char *dir,
                           const char *templates, int throttle, int dry, const char *manifest,
                           int *n_submitted, lmd_err *err);

/* ---- running Slurm commands (no shell involved) ---- */
/* Runs argv[0] from PATH with argv, captures stdout (up to 1 MiB) into *out (malloc'ed) and
 * returns the exit status, or -1 if it could not be started (e.g. not installed). The child's
 * stderr: quiet 0 = to ours, 1 = discarded, 2 = captured with stdout. */
int lmd_run_capture(char *const argv[], char **out, int quiet);
/* MaxArraySize from `scontrol show config` (LMDISP_MAX_ARRAY_SIZE overrides it, for tests);
 * 1001 (Slurm's default) if scontrol is not available. */
int lmd_slurm_max_array_size(void);

/* ---- job table ---- */
typedef struct {
    int round;
    char kind[16];   /* "array" or "aggregate" */
    char job_id[32]; /* digits */
    int first_task;  /* array: manifest task of SLURM_ARRAY_TASK_ID 0 */
    int n_tasks;
} lmd_slurm_job;

int lmd_slurm_jobs_read(const char *dir, lmd_slurm_job **jobs, size_t *n);
int lmd_slurm_jobs_append(const char *dir, const lmd_slurm_job *j, lmd_err *err);

/* Slurm's view of the array tasks of a study: state per (round, manifest task), from one
 * squeue call (live jobs) and one sacct call (finished jobs, when accounting works). */
typedef struct {
    int round, task;
    char state[32]; /* PENDING, RUNNING, COMPLETED, TIMEOUT, OUT_OF_MEMORY, ... or "" */
    char reason[64];
} lmd_slurm_task_state;

/* Returns the number of states filled (malloc'ed *out), 0 if Slurm is not available or the
 * study was never submitted; *source says what answered ("squeue+sacct", "squeue", ""). */
size_t lmd_slurm_query(const char *dir, lmd_slurm_task_state **out, char *source, size_t n_source);

/* Tasks of the study in DIR that Slurm still lists as queued or running (pending, running,
 * requeued, completing, ...; lmd_slurm_query): a resubmit while they live would race them. */
int lmd_slurm_live_tasks(const char *dir);

/* The resubmits' refusal: 2 with a message naming the live tasks when DIR's study still has
 * some and force is 0, else 0. */
int lmd_slurm_refuse_live(const char *dir, int force);

#endif
