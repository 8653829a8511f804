/* specflags.h — a command's flags as one table whose rows name the spec setting they share
 * (type, range, messages: specsettings.c); the rows parse the command line, read a --config
 * file with the spec parser, and print the help with each target's current value as default. */
#ifndef LMDISP_SPECFLAGS_H
#define LMDISP_SPECFLAGS_H

#include <stdint.h>
#include <stdio.h>

#include "args.h"

typedef enum {
    FLAG_INT,      /* int */
    FLAG_I64,      /* int64_t */
    FLAG_U64,      /* uint64_t */
    FLAG_DOUBLE,   /* double */
    FLAG_STR,      /* const char * (points into argv or the config file's tree) */
    FLAG_VARIANT,  /* lmd_disp_variant */
    FLAG_LOCATION, /* lmd_disp_location */
} lmd_flag_kind;

typedef struct {
    const char *name;    /* "lr": --lr on the command line, `lr:` (or `min_lr_ratio:`) in a file */
    const char *setting; /* the spec setting it shares type and range with ("train.lr"), or NULL */
    lmd_flag_kind kind;
    void *target;         /* written when the flag is given; its value before is the default */
    int64_t lo, hi;       /* FLAG_INT / FLAG_I64 without a setting: the range (hi 0: none) */
    const char *metavar;  /* in the help: "--lr X" */
    const char *help;     /* a '\n' continues it on the next line, under the first */
    const char *def_text; /* the help's default when the target does not show it, or NULL */
    const char *group;    /* a heading printed before this row in the help, or NULL */
    /* FLAG_STR without a setting: checks the text (0, or -1 with the reason in msg), or NULL */
    int (*check)(const char *text, char *msg, size_t n);
} lmd_flag;

/* Parses text as the value of f into f->target. Returns 0, or -1 with the reason in msg
 * (the setting's own message when f has one). */
int lmd_flag_set(const lmd_flag *f, const char *text, char *msg, size_t n);
/* Each row's --name from the command line (lmd_args_str); a bad value is reported as
 * "lmdisp CMD: --name (setting): reason" and sets a->failed. */
void lmd_flags_parse(lmd_args *a, const lmd_flag *f, int n);
/* "  --name METAVAR   help (default X)" per row, X from the target's value or def_text. */
void lmd_flags_help(FILE *out, const lmd_flag *f, int n);

/* A --config file read into the rows' targets; keeps the YAML tree the string targets point
 * into. Free with lmd_flags_config_free once the targets are no longer used. */
typedef struct lmd_flags_config lmd_flags_config;
/* Reads path: one YAML mapping of flag names to scalars (`lr: 3e-3`; `n_layer` and `n-layer`
 * alike), with the spec parser's tree, error collection and typed values. Every problem is
 * reported, one line each, "PATH:LINE:COL: key 'k': ..." (an unknown key once, with the
 * nearest name; a key given twice is an error, as in a spec). Returns 0, or -1 with the
 * messages in *errors (free it). Apply it before lmd_flags_parse: the command line overrides. */
int lmd_flags_config_read(const char *path, const lmd_flag *f, int n, lmd_flags_config **out,
                          char **errors);
void lmd_flags_config_free(lmd_flags_config *cfg);

#endif
