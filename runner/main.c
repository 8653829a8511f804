/* main.c — `lmdisp <command> [options]`: dispatches to the subcommands of commands.h. */
#include <stdio.h>
#include <string.h>

#include "blascore.h"
#include "commands.h"
#include "h5io.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command COMMANDS[] = {
    {"train", cmd_train, "train one model from flags or a small YAML"},
    {"plan", cmd_plan, "list the cells of a study spec and their estimated cost"},
    {"run", cmd_run, "run a study under MPI: train, track and write study.h5"},
    {"submit", cmd_submit, "submit a study as Slurm array jobs (manifest, requeue, aggregation)"},
    {"resubmit", cmd_resubmit, "submit a new Slurm array of just the cells not done"},
    {"aggregate", cmd_aggregate, "rebuild DIR/study.h5 from DIR/spec.yaml and DIR/cells (MPI)"},
    {"report", cmd_report, "tables of a study.h5: per cell, cross-grid trend, per width"},
    {"status", cmd_status, "state of every cell of a study directory (grid view)"},
    {"step", cmd_step, "one forward/backward on a checkpoint, dumped to HDF5 (DESIGN 4.3)"},
    {"forward", cmd_forward,
     "forward pass of any model form, hidden states + logits to HDF5 (4.7)"},
    {"measure", cmd_measure, "condensation metrics of one checkpoint (DESIGN 4.5)"},
    {"track", cmd_track, "condensation of a series of checkpoints -> trajectory HDF5"},
    {"eval", cmd_eval, "zero-shot multiple-choice accuracy as lm-evaluation-harness scores it"},
    {"export", cmd_export, "an lmdisp checkpoint as a Hugging Face GPT-2 directory"},
    {"tokenize", cmd_tokenize, "text or JSON Lines -> token file with an HF tokenizer.json (4.8)"},
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
    lmd_blas_core_select(argv); /* before any BLAS call: see model/blascore.h */
    lmd_h5_quiet();             /* HDF5 errors are reported by lmdisp (model/h5io.h) */
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
