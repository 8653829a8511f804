/* cell.h — runs one cell of a study: trains the model, saves and measures each tracked
 * checkpoint from step 0, resumes from the newest valid checkpoint, and keeps the cell's state
 * file. A cell runs on a group of ranks (data parallel, gradients all-reduced). */
#ifndef LMDISP_CELL_H
#define LMDISP_CELL_H

#include <mpi.h>
#include <signal.h>
#include <stdint.h>

#include "data.h"
#include "gpt.h"
#include "train.h"

/* Everything needed to run a cell, resolved from the spec. */
typedef struct {
    char id[160];   /* stable cell id */
    char dir[4096]; /* DIR/cells/<id> */
    gpt_config cfg;
    lmd_train_opts opts;        /* seed = the cell's seed */
    const int64_t *track_steps; /* sorted, from 0, includes the last step */
    int n_track;
    int eval_sequences; /* geometry evaluation set: first N windows of the validation split */
    int eval_seq_len;
    int hist_bins;
    int val_batches;        /* validation batches for the loss at each tracked checkpoint */
    int keep_checkpoints;   /* keep every tracked checkpoint (else only the newest, for resume) */
    const char *settings;   /* canonical settings text, stored and compared on resume */
    const char *init;       /* train.init resolved (initmodel.h), NULL: gpt_init(seed) */
    const char *teacher;    /* distillation teacher resolved: an init-model form, or the teacher
                           * cell's final checkpoint (lmd_cell_final_ckpt); NULL: none.
                           * opts.kd holds alpha and temperature */
    int save_final;         /* also checkpoint the last step when it is not tracked (teachers) */
    char teacher_buf[4300]; /* storage of teacher when it is a teacher cell's checkpoint */
    const char *const *eval_tasks; /* task files scored at every tracked checkpoint (celleval.h) */
    int n_eval_tasks;
    const char *eval_tokenizer; /* their tokenizer: the cell's data.tokenizer */
} lmd_cell_job;

/* DIR/cells/<id>/ckpt/step%07d.h5 of the given step: where a cell's checkpoint of that step
 * lives (its last step's is the teacher checkpoint its students load). */
void lmd_cell_ckpt_path(char *buf, size_t n, const char *cell_dir, int64_t step);

/* Data shared by all cells of a run (same data for every cell). */
typedef struct {
    lmd_span train, val;
    const int *eval_inputs; /* eval_sequences * eval_seq_len, identical for every cell */
} lmd_cell_data;

/* Cell outcome. */
typedef enum {
    CELL_DONE = 0,
    CELL_FAILED = 1,
    CELL_DIVERGED = 2,
    CELL_INTERRUPTED = 3, /* stopped at a step boundary on request (signal); resumable */
} lmd_cell_status;

const char *lmd_cell_status_name(lmd_cell_status s);

/* Reads DIR/cells/<id>/state: returns 1 and fills status/step if the file says the cell is
 * finished (done or diverged), 0 otherwise. */
int lmd_cell_finished(const char *cell_dir, char *status, size_t n, int64_t *step);

/* 1 when the state file says `running` on this host but its holder process (host and pid
 * recorded in it) is gone, with why filled for the user; 0 otherwise (also when the holder runs
 * on another host: that cannot be checked from here). */
int lmd_cell_holder_gone(const char *cell_dir, char *why, size_t n);

/* Checks that an existing cell directory holds the same settings text. Returns 0 if new or
 * equal, -1 with a message naming the first differing line otherwise. */
int lmd_cell_check_settings(const lmd_cell_job *job, lmd_err *err);

/* Runs (or resumes) a cell on comm (all ranks of the group call it). Rank 0 of comm writes
 * files. stop_flag: polled at step boundaries; when any rank sees it set, the group saves a
 * checkpoint and returns CELL_INTERRUPTED. tick (may be NULL) is called by rank 0 of comm
 * after every optimizer step, e.g. for a progress display. */
typedef void (*lmd_cell_tick)(void *ctx, int64_t step, int64_t total);
lmd_cell_status lmd_cell_run(const lmd_cell_job *job, const lmd_cell_data *data, MPI_Comm comm,
                             volatile sig_atomic_t *stop_flag, lmd_cell_tick tick, void *tick_ctx,
                             lmd_err *err);

#endif
