/* commands.h — the lmdisp subcommands; each returns the process exit code
 * (0 ok, 1 runtime failure, 2 bad usage or input). */
#ifndef LMDISP_COMMANDS_H
#define LMDISP_COMMANDS_H

#include <stdio.h>

#include "args.h"

int cmd_train(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_track(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_aggregate(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_resubmit(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* ---- what the subcommands share (commands.c) ---- */

/* The command line of a subcommand once its own flags are read (args.h getters): */
typedef struct {
    const char *pos[4]; /* the positional arguments, in order (at most 4 kept) */
    int npos;           /* how many there were */
    int bad;            /* an unknown flag or a refused value (already reported) */
} lmd_cmd_line;

/* Ends the flag parsing of a subcommand: takes --help, the positional arguments and the check
 * for unknown flags into *cl, and frees a. Returns 1 when --help was given, after printing
 * usage on stdout (the command then returns 0), else 0. */
int lmd_cmd_line_end(lmd_args *a, void (*usage)(FILE *), lmd_cmd_line *cl);
#endif
