/* spec_internal.h — shared by the parts of the spec parser (spec.c: sections, tracking and the
 * entry points; specyaml.c: the YAML tree and errors; specsettings.c: the settings table;
 * speccells.c: grid expansion into cells; specflags.c: command flags and --config files typed
 * by the settings table). Not for use outside them: spec.h is the API. */
#ifndef LMDISP_SPEC_INTERNAL_H
#define LMDISP_SPEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "spec.h"
#include "spec_kd.h"

/* Growable string for the settings text and joined messages. */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

typedef enum { YN_SCALAR, YN_SEQ, YN_MAP } yn_kind;

typedef struct ynode {
    yn_kind kind;
    char *val; /* scalar text */
    int plain; /* scalar was unquoted (numbers and booleans must be) */
    int line, col;
    struct ynode **kids; /* seq: items; map: key, value, key, value, ... */
    size_t n, cap;
} ynode;

/* Error collection: messages "PATH:LINE:COL: key 'k': message", one per line (path NULL: the
 * message alone, for one value outside a file). */
typedef struct {
    const char *path;
    sbuf msgs;
    int n_errors;
} pctx;

typedef enum { SET_INT, SET_NUM, SET_STR, SET_BOOL, SET_ENUM } st_type;

/* clang-format off */
enum {
    S_SEED,
    S_DATA_SOURCE, S_DATA_PATH, S_DATA_TOKENIZER, S_DATA_VOCAB, S_DATA_SYN_SEED, S_DATA_SYN_TOKENS, S_DATA_VALF,
    S_N_LAYER, S_N_EMBD, S_N_HEAD, S_N_CTX, S_MODEL_VOCAB, S_MLP_DIM,
    S_STEPS, S_TOKENS, S_BATCH, S_SEQ, S_LR, S_SCHEDULE, S_WARMUP, S_MIN_LR, S_WD, S_BETA1,
    S_BETA2, S_EPS, S_CLIP, S_SHARDS, S_INIT, S_ACCUM,
    S_KD_TEACHER, S_KD_ALPHA, S_KD_TEMP,
    S_VARIANT, S_COEFF, S_LOCATION, S_TAU_COS, S_TAU_L2, S_MAX_TOKENS,
    S_LOG_POINTS, S_EVERY, S_EVAL_SEQS, S_EVAL_SEQ_LEN, S_HIST_BINS, S_SAVE_CK,
    S_RANKS, S_THREADS,
    N_SETTINGS
};
/* clang-format on */

#define I64MAX 9223372036854775807LL

/* Where a setting's default comes from. */
typedef enum {
    DEF_NONE = 0, /* none: required, or resolved from other settings */
    DEF_TABLE,    /* the row's .def (the runner's own settings: tracking, resources) */
    DEF_MODEL     /* the model layer's (lmd_train_default, gpt_config_default, ...) */
} def_source;

/* One row of the settings table (SPEC_DEFS), written with designated initializers. */
typedef struct {
    const char *name;  /* dotted name; top-level settings have no dot */
    const char *alias; /* a second plain name usable in grid:, or NULL */
    st_type type;
    int64_t ilo, ihi; /* SET_INT range, inclusive */
    double dlo, dhi;  /* SET_NUM range; lower bound exclusive when lo_open */
    int lo_open;
    const char *const *choices; /* SET_ENUM */
    int gridable;
    def_source def_from;
    double def; /* DEF_TABLE: SET_INT/SET_NUM/SET_BOOL value, SET_ENUM index */
} sdef;

/* A parsed value; src is the YAML node it came from (NULL for a default). */
typedef struct {
    int set;
    int64_t i;     /* SET_INT, SET_BOOL, SET_ENUM (index into choices) */
    double d;      /* SET_NUM */
    const char *s; /* SET_STR, SET_ENUM (the choice); points into the tree */
    const ynode *src;
} sval;

typedef enum { TRACK_LOG = 0, TRACK_LIST, TRACK_EVERY } track_mode;

/* One member of a product axis: a setting and its list of values. */
typedef struct {
    int setting;
    const ynode *key;
    const char *key_text; /* as written (e.g. "mlp_dim") */
    sval *vals;
    int n;
} axis_member;

typedef struct {
    axis_member *m;
    int n_members;
    int len;
    const ynode *node;
} paxis;

/* Everything parsed from the document before expansion. */
typedef struct {
    pctx *c;
    const ynode *root;
    sval base[N_SETTINGS];
    const ynode *section[N_SETTINGS]; /* section mapping of each setting (error fallback) */
    const char *name;
    const ynode *name_node;
    track_mode track;
    const ynode *track_node; /* the checkpoints: value */
    const ynode *track_list; /* TRACK_LIST: the sequence */
    int track_explicit;      /* checkpoints: was given */
    paxis *axes;
    int n_axes;
    int axis_of[N_SETTINGS];          /* axis index varying each setting, -1 if fixed */
    const char *axis_key[N_SETTINGS]; /* the grid:/zip: key that varies it */
    int axis_line[N_SETTINGS];
    const ynode *grid_node;
    const ynode *slurm_node;
    lmd_teacher_ref kd_ref;       /* distill.teacher: {cell: ...} or {id: ...} (spec_kd.h) */
    const ynode *eval_tasks_node; /* tracking.eval_tasks: the sequence (mceval.h) */
} spec_doc;

int64_t *spec_i64_alloc(size_t n);
char *spec_path_join(const char *dir, const char *p);
void spec_cell_free(lmd_cell *cell);
int spec_expand(spec_doc *doc, lmd_spec *s);
const char *spec_last_component(const char *name);
int spec_find_dotted(const char *name);
void spec_suggest(char *out, size_t n, const char *key, const char *const *cands, int n_cands);
int spec_parse_value(pctx *c, int si, const char *key, const ynode *n, sval *out);
/* The default of setting si into *out (not marked set); -1 when it has none. */
int spec_default(int si, sval *out);
extern const char *const SPEC_SOURCES[];
extern const sdef SPEC_DEFS[N_SETTINGS];
void spec_sb_addf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void spec_fmt_num(char *buf, size_t n, double x);
int spec_edit_distance(const char *a, const char *b);
const char *spec_kind_name(const ynode *n);
void spec_ynode_free(ynode *n);
void spec_perr(pctx *c, const ynode *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The collected messages (with a "N more errors not shown" line past LMD_SPEC_MAX_ERRORS),
 * handed over to the caller (free it); c->msgs is left empty. */
char *spec_perr_take(pctx *c);
const ynode *spec_map_get(const ynode *map, const char *key);
ynode *spec_build_tree(pctx *c, const char *text, size_t len);

#endif
