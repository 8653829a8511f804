/* spec.h — the experiment spec (a YAML file, docs/SPEC.md): parsing with libyaml, validation
 * with file:line:column messages, and expansion of the grid into cells with stable ids.
 *
 * Typical use by the run loop:
 *
 *     lmd_spec spec;
 *     lmd_err err;
 *     if (lmd_spec_load(&spec, path, &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
 *     for (size_t i = 0; i < spec.n_cells; i++) {
 *         const lmd_cell *c = &spec.cells[i];
 *         char *settings = lmd_cell_settings(c);    // write to DIR/cells/<c->id>/settings,
 *         ...                                       // or compare with it on resume
 *         lmd_tokens tok;
 *         if (lmd_cell_load_data(c, &tok, &err)) ...
 *         // gpt_create(&m, &c->cfg, ...); gpt_init(&m, c->train.seed);
 *         // lmd_trainer_init(&tr, &c->train, ...); measure at c->tracking.steps[k] ...
 *         free(settings);
 *     }
 *     lmd_spec_free(&spec);
 *
 * Everything a cell needs to run is resolved in lmd_cell: no default is left for the caller
 * to fill in. The spec keeps its raw text and its sha256 for provenance (study.h5 root). */
#ifndef LMDISP_SPEC_H
#define LMDISP_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "gpt.h"
#include "train.h"
#include "util.h"

/* Limits that keep a hostile or mistaken spec from exhausting memory. YAML aliases are
 * rejected outright (they are how "billion laughs" documents blow up). */
#define LMD_SPEC_MAX_BYTES (1u << 20) /* spec file size */
#define LMD_SPEC_MAX_NODES 100000     /* YAML nodes (scalars, lists, mappings) */
#define LMD_SPEC_MAX_DEPTH 32         /* nesting of lists/mappings */
#define LMD_SPEC_MAX_CELLS 100000     /* cells after expansion */
#define LMD_SPEC_MAX_TRACK 100000     /* tracked steps of one cell */
#define LMD_SPEC_MAX_ERRORS 10        /* messages collected before giving up */

#define LMD_CELL_ID_LEN 96

typedef enum { LMD_DATA_SYNTHETIC = 0, LMD_DATA_TEXT, LMD_DATA_SHARDS } lmd_data_source;

/* The data of one cell, resolved. */
typedef struct {
    lmd_data_source source;
    char *path;               /* as written in the spec (NULL for synthetic) */
    char *resolved;           /* path joined to the spec file's absolute directory (NULL for
                              * synthetic); for shards still a glob pattern */
    char *tokenizer;          /* data.tokenizer as written (NULL: text is read as bytes) */
    char *tokenizer_resolved; /* joined to the spec's directory: a tokenizer.json or a model
                              * directory; text (one document) or .jsonl ("text" fields) at
                              * path is encoded with it, as --data tok:TOKENIZER:PATH */
    int vocab;                /* token ids are < vocab (text: 256, or the tokenizer's id count;
                              * shards: data.vocab) */
    uint64_t synthetic_seed;  /* synthetic corpus only */
    int64_t synthetic_tokens;
    double val_fraction; /* held-out fraction at the end of the stream */
} lmd_data_settings;

/* When and how a cell is measured. steps are sorted ascending, distinct, within
 * [0, train.steps]; step 0 means the initialization. */
typedef struct {
    int64_t *steps;
    int n_steps;
    int eval_sequences;   /* evaluation windows for the geometry */
    int eval_seq_len;     /* their length (<= model n_ctx) */
    int hist_bins;        /* cosine-similarity histogram bins on [-1, 1] */
    int save_checkpoints; /* keep an HDF5 checkpoint of every tracked step */
} lmd_tracking;

/* Distillation of one cell (distill:, docs/DISTILL.md). */
typedef struct {
    int on; /* distill.teacher given and alpha > 0 */
    double alpha, temperature;
    char *model;            /* a teacher model, resolved (runner/initmodel.h); NULL for a cell */
    long teacher;           /* the teacher cell's index in lmd_spec.cells, -1: none */
    char teacher_id[96];    /* its id (LMD_CELL_ID_LEN) */
    int level;              /* 0 without a teacher cell, else the teacher's level + 1: the runner
                         * runs the cells level by level, so a teacher finishes first */
    int is_teacher;         /* another cell distills from this one: its last step is checkpointed */
    gpt_config teacher_cfg; /* the teacher's shape (cost estimates), when on */
} lmd_cell_kd;

/* One point of the grid: a model to train and measure. */
typedef struct {
    size_t index;             /* position in the documented grid order (docs/SPEC.md) */
    char id[LMD_CELL_ID_LEN]; /* "mlp256-angular_spread-s0-3fa9c2d1": label + 8 hex of the
                                * sha256 of lmd_cell_settings(); usable as a directory name */
    gpt_config cfg;           /* vocab_size resolved (defaults to the data's vocab) */
    lmd_train_opts train;     /* steps resolved (train.tokens converted), seed = cell seed,
                                * disp = the cell's dispersion settings */
    lmd_data_settings data;
    lmd_tracking tracking;
    size_t n_params;    /* gpt_num_params(&cfg) */
    double flops;       /* estimated training cost: gpt_flops_per_step * steps */
    uint8_t digest[32]; /* sha256 of lmd_cell_settings() */
    char *init;         /* train.init resolved (runner/initmodel.h), NULL: random init */
    lmd_cell_kd kd;
} lmd_cell;

/* One slurm: entry, kept verbatim for the Slurm templates. A scalar has value != NULL and
 * n_items == 0; a list has value == NULL and items[0..n_items). line/column are 1-based. */
typedef struct {
    char *key;
    char *value;
    char **items;
    int n_items;
    int line, column;
} lmd_slurm_kv;

/* One axis of the grid product: a grid: entry, or a zip: group (several settings that
 * advance together; `names` lists them, separated by '+'). */
typedef struct {
    char *names; /* dotted setting names, e.g. "model.mlp_dim" or "model.n_embd+model.n_head" */
    int n_values;
} lmd_axis;

typedef struct {
    char *path; /* as given to lmd_spec_load */
    char *dir;  /* absolute directory of the spec file: base of relative data paths */
    char *name; /* name: ([A-Za-z0-9_.-]+) */
    char *text; /* the raw spec text (NUL terminated) */
    size_t text_len;
    char sha256[65];     /* hex sha256 of text */
    int ranks_per_model; /* resources: (0 = auto: a group size per cell, docs/RUNNER.md) */
    int threads_per_rank;
    lmd_slurm_kv *slurm; /* slurm: entries in file order */
    int n_slurm;
    lmd_axis *axes; /* product axes in order: first varies slowest */
    int n_axes;
    lmd_cell *cells; /* the expanded grid in order */
    size_t n_cells;
    int uniform_tracking; /* 1 if every cell has the same tracking steps (and batch*seq), so
                           * a study file can use one /tracking/step axis */
    char **eval_tasks;    /* tracking.eval_tasks: task files (resolved paths), scored at every
                           * tracked checkpoint (runner/celleval.h); not part of cell ids */
    int n_eval_tasks;
} lmd_spec;

/* Reads, validates and expands the spec at path. On failure returns -1 with the messages
 * (one per line, each "PATH:LINE:COLUMN: key 'x.y': message", at most LMD_SPEC_MAX_ERRORS)
 * in err, and *s is left empty (lmd_spec_free is still safe). */
int lmd_spec_load(lmd_spec *s, const char *path, lmd_err *err);
/* As lmd_spec_load from text in memory. display_path names the text in messages and in
 * s->path; base_dir (NULL = the directory of display_path) resolves relative data paths. */
int lmd_spec_parse(lmd_spec *s, const char *text, size_t len, const char *display_path,
                   const char *base_dir, lmd_err *err);
void lmd_spec_free(lmd_spec *s);

/* The cell with this id, or NULL. */
const lmd_cell *lmd_spec_find_cell(const lmd_spec *s, const char *id);

/* The canonical settings text of a cell: one "key=value" line per setting that affects its
 * numbers (model, training, dispersion, data, tracking schedule and evaluation), in a fixed
 * order, numbers in their shortest round-trip form. It excludes the study name, resources
 * and slurm, so renaming or re-resourcing a study keeps ids; with dispersion off, the unused
 * dispersion parameters are left out. Returns a malloc'd string (free()). */
char *lmd_cell_settings(const lmd_cell *c);

/* Recomputes digest and id from lmd_cell_settings() (after a teacher cell is linked). */
void lmd_cell_refresh_id(lmd_cell *c);

/* Loads the cell's token data (synthetic corpus, text file or shards). */
int lmd_cell_load_data(const lmd_cell *c, lmd_tokens *out, lmd_err *err);

/* The first step after the initialization whose weights can differ from it: 2 when the
 * schedule has a warmup (its step-0 update uses lr 0, so step 1 equals step 0 bit for bit),
 * else 1. The generated schedules below start there; an explicit list is kept as written. */
int64_t lmd_track_first(int64_t steps, double warmup_ratio);

/* Tracked steps of the schedules (exposed for tests and tools). Each returns a malloc'd,
 * ascending, distinct list in *out and its length; first is lmd_track_first (1 = no skip).
 *   log:        0, then 1, 2, 4, ..., 2^k <= steps that are >= first, and steps.
 *   log_points: min(points, steps-first+2) distinct steps: 0, then points-1 roughly
 *               geometric steps in [first, steps] ending at steps (points >= 2).
 *   every:      0, n, 2n, ... <= steps (those >= first), and steps. */
int lmd_track_log(int64_t steps, int64_t first, int64_t **out);
int lmd_track_log_points(int64_t steps, int points, int64_t first, int64_t **out);
int lmd_track_every(int64_t steps, int64_t every, int64_t first, int64_t **out);

/* The dotted names of every setting a grid: or zip: axis may vary, NULL terminated. */
const char *const *lmd_spec_grid_names(void);

#endif
