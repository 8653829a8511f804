/* measspec.h — the measurement study spec (`kind: measure`, docs/SPEC.md "Measurement
 * studies"): families of pretrained models (paths, hf: ids, hf:ORG/NAME@* series) x datasets,
 * validated with file:line:column messages before anything runs, expanded into cells. */
#ifndef LMDISP_MEASSPEC_H
#define LMDISP_MEASSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "spec.h"
#include "util.h"

#define LMD_MCELL_ID_LEN 96

/* One model of the study (a series contributes one per revision). Facts read at validation
 * from config.json and the weights (n_params as hub_model / anymodel count it). */
typedef struct {
    char *name; /* unique in the study: the entry's name, a path's last component, or
                         * NAME@REVISION for a series */
    char *spec; /* what lmd_anymodel_open takes: a resolved directory / checkpoint path
                         * or hf:ORG/NAME@REV */
    char *family;
    char *revision;                   /* series revision name, "" otherwise */
    int64_t train_step, train_tokens; /* from the revision name (stepN, tokensNB -> N*1e9);
                                       * -1 unknown */
    int family_index;
    char model_type[32];
    int n_layer, hidden_size, vocab_size, max_T;
    int64_t n_params;
    int line, col; /* where the spec names it */
} lmd_mmodel;

typedef enum { LMD_MDATA_TOKENS = 0, LMD_MDATA_PER_MODEL, LMD_MDATA_TEXT } lmd_mdata_kind;

typedef struct {
    char *name;
    lmd_mdata_kind kind;
    char *tokens;    /* LMD_MDATA_TOKENS: resolved path of one token file for every model */
    char **pm_model; /* LMD_MDATA_PER_MODEL: model name -> resolved token file */
    char **pm_path;
    int n_pm;
    char *text;      /* LMD_MDATA_TEXT: resolved text / .jsonl path */
    char *tokenizer; /* NULL = each model's own tokenizer.json (its directory) */
    int line, col;
} lmd_mdata;

typedef struct {
    size_t index; /* model-major: model m, dataset d -> m * n_datasets + d */
    int model, dataset;
    char id[LMD_MCELL_ID_LEN]; /* "<model>-<dataset>-<8 hex of the settings' sha256>" */
    char *source;              /* token file path, or tok:TOKENIZER:PATH */
    int is_text;               /* source is text: the paper's sampling */
    double cost;               /* n_params x sequences x seq_len */
    char *settings;            /* canonical "key=value" lines (the id's hash input) */
} lmd_mcell;

typedef struct {
    int distilled, base; /* model indices */
} lmd_mpair;

typedef struct {
    char *path, *dir, *name, *text;
    size_t text_len;
    char sha256[65];
    char *hf_hub_cache; /* resolved hf_hub_cache, or NULL */
    /* measurement settings */
    int n_seq, T, min_words, bins, batch;
    int64_t seed;
    int ranks_per_model, threads_per_rank;
    char **families;
    int n_families;
    lmd_mmodel *models;
    int n_models;
    lmd_mdata *datasets;
    int n_datasets;
    lmd_mcell *cells;
    size_t n_cells;
    lmd_mpair *pairs;
    int n_pairs;
    lmd_slurm_kv *slurm; /* slurm: entries (as the training spec's, runner/slurm.h) */
    int n_slurm;
} lmd_mspec;

/* 1 if the YAML file at path is a measurement spec (top-level `kind: measure`), 0 if not (or
 * unreadable: the training spec loader then reports it). */
int lmd_mspec_detect(const char *path);

/* Reads and validates: every model opened (an unknown path, a revision not in the cache, a
 * config lmdisp refuses), every dataset read for every model (too short for sequences x
 * seq_len, ids outside a model's vocabulary), seq_len within every model's positions, pairs
 * naming models of the study. Errors "PATH:LINE:COLUMN: key 'k': message", one per line. If
 * hf_hub_cache is given it is exported as HF_HUB_CACHE for the process. */
int lmd_mspec_load(lmd_mspec *s, const char *path, lmd_err *err);
/* As lmd_mspec_load with relative paths resolved against base_dir (NULL: the spec's own
 * directory), for the frozen DIR/spec.yaml of a submitted study (DIR/spec.dir). check_data 0
 * skips reading the datasets (for ranks that trust rank 0's check, status, aggregate); models
 * are always opened (their facts make the cells). */
int lmd_mspec_load_at(lmd_mspec *s, const char *path, const char *base_dir, int check_data,
                      lmd_err *err);
/* A training-spec view holding what runner/slurm.c reads (name, path, resources, slurm
 * entries), for lmd_slurm_resources. Borrowed pointers: do not free it. */
lmd_spec lmd_mspec_slurm_view(const lmd_mspec *s);
void lmd_mspec_free(lmd_mspec *s);

/* order[0..n_cells): most expensive first (cost), ties by index. */
void lmd_mspec_order(const lmd_mspec *s, size_t *order);

#endif
