/* cmd_report.c — `lmdisp report DIR/study.h5 [--csv]`: the tables of a study file. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "celleval.h"
#include "commands.h"
#include "measrun.h"
#include "study.h"
#include "util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmdisp report STUDY.h5|DIR [--csv] [--table cells|trend|width|eval|all]\n"
            "\n"
            "Prints the tables of a study file (docs/STUDY.md): per cell (status, final\n"
            "validation loss and last-layer mean cosine similarity, Spearman/Kendall of the layer\n"
            "trend at initialization and at the end), the cross-grid trend (rank correlation of\n"
            "mlp_dim with each model's rho, last-layer and last-half mean cosine, per setting\n"
            "and checkpoint; 'saturated' where every rho is 1), the means over seeds per width,\n"
            "and one line per claim of the paper with its numbers (larger MLP, less\n"
            "condensation; dispersion lowers it; condensation at initialization). Default: all\n"
            "tables as text. eval: the zero-shot accuracies of tracking.eval_tasks per task and\n"
            "cell (step 0 -> the last step), included in all.\n"
            "--csv: one table (default cells: one row per cell and checkpoint) as CSV, NaN as an\n"
            "empty field, numbers with 17 significant digits.\n"
            "A measurement study (kind: measure) has the tables cells, trend (per family and\n"
            "dataset, n_params as the size), series (against training tokens) and pairs.\n");
}

int cmd_report(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "report", argc, argv);
    int csv = lmd_args_flag(&a, "csv");
    const char *table = lmd_args_str(&a, "table");
    lmd_cmd_line cl;
    if (lmd_cmd_line_end(&a, usage, &cl)) return 0;
    if (cl.bad || cl.npos != 1) {
        usage(stderr);
        return 2;
    }
    char path[4200];
    struct stat sb;
    if (stat(cl.pos[0], &sb) == 0 && S_ISDIR(sb.st_mode))
        lmd_pathf(path, "%s/study.h5", cl.pos[0]);
    else
        lmd_pathf(path, "%s", cl.pos[0]);
    lmd_err err = {{0}};
    if (lmd_mstudy_is(path)) { /* a measurement study (runner/measreport.c) */
        if (lmd_mstudy_report(path, stdout, csv, table, &err) == 0) return 0;
        fprintf(stderr, "lmdisp report: %s\n", err.msg);
        return strstr(err.msg, "unknown table") ? 2 : 1;
    }
    int eval_only = table && !strcmp(table, "eval"), all = !table ? !csv : !strcmp(table, "all");
    if (eval_only || (all && !csv)) { /* the /eval table (celleval.h) */
        if (!eval_only && lmd_study_report(path, stdout, csv, table, &err)) {
            fprintf(stderr, "lmdisp report: %s\n", err.msg);
            return 1;
        }
        if (!eval_only) printf("\n");
        if (lmd_study_eval_report(path, stdout, csv, &err)) {
            fprintf(stderr, "lmdisp report: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (lmd_study_report(path, stdout, csv, table, &err)) {
        fprintf(stderr, "lmdisp report: %s\n", err.msg);
        return strstr(err.msg, "table") && !strstr(err.msg, path) ? 2 : 1;
    }
    return 0;
}
