/* args.h — command-line flags for the subcommands: `--name value` or `--name=value`, each
 * given once (a repeated flag is an error, as a repeated key is in a spec), typed getters with
 * range errors, and a check that no unknown flag was given. */
#ifndef LMDISP_ARGS_H
#define LMDISP_ARGS_H

#include <stdint.h>

typedef struct {
    int argc;
    char **argv;
    unsigned char *used; /* which argv entries were consumed */
    const char *cmd;     /* command name for messages */
    int failed;          /* a getter rejected a value (message already printed) */
} lmd_args;

void lmd_args_init(lmd_args *a, const char *cmd, int argc, char **argv);
void lmd_args_free(lmd_args *a);
/* 1 if the boolean flag is present. */
int lmd_args_flag(lmd_args *a, const char *name);
/* The value of --name, or NULL when absent. */
const char *lmd_args_str(lmd_args *a, const char *name);
/* Typed values; keep *out unchanged when absent; set a->failed on bad values. */
void lmd_args_int(lmd_args *a, const char *name, int *out, long lo, long hi);
void lmd_args_i64(lmd_args *a, const char *name, int64_t *out, int64_t lo);
void lmd_args_double(lmd_args *a, const char *name, double *out);
/* Positional arguments (not starting with --) not consumed as values, in order. */
int lmd_args_positional(lmd_args *a, const char **out, int max);
/* Reports unknown flags; returns 0 when everything was consumed and no getter failed. */
int lmd_args_finish(lmd_args *a);

#endif
