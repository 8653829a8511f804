/* main.c — `lmdisp <command> [options]`: dispatches to the subcommands of commands.h. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command COMMANDS[] = {
    {"train", cmd_train, "train one model from flags or a small YAML"},
    {"step", cmd_step, "one forward/backward on a checkpoint, dumped to HDF5 (DESIGN 4.3)"},
};

static void usage(FILE *f) {
    fprintf(f, "lmdisp %s (%s) — embedding condensation studies of small language models\n\n",
            LMDISP_VERSION, LMDISP_GIT_COMMIT);
    fprintf(f, "usage: lmdisp <command> [options]   (lmdisp <command> --help for its options)\n\n");
    fprintf(f, "commands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("lmdisp %s (%s)\n", LMDISP_VERSION, LMDISP_GIT_COMMIT);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "lmdisp: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
