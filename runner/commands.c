/* commands.c — what the subcommands of commands.h share: the end of their flag parsing. */
#include "commands.h"

#include <string.h>

int lmd_cmd_line_end(lmd_args *a, void (*usage)(FILE *), lmd_cmd_line *cl) {
    memset(cl, 0, sizeof *cl);
    int help = lmd_args_flag(a, "help");
    cl->npos = lmd_args_positional(a, cl->pos, (int)(sizeof cl->pos / sizeof cl->pos[0]));
    cl->bad = lmd_args_finish(a);
    lmd_args_free(a);
    if (help) usage(stdout);
    return help;
}
