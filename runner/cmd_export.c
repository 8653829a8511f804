/* cmd_export.c — `lmdisp export CK.h5 --hf DIR`: an lmdisp checkpoint as a Hugging Face GPT-2
 * directory (hub/hfexport.h), with the tokenizer given or the one its study trained with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "fileio.h"
#include "h5io.h"
#include "hfexport.h"
#include "mceval.h"

static void usage(FILE *f) {
    fprintf(
        f, "usage: lmdisp export CK.h5 --hf DIR [--tokenizer TOK] [--force]\n"
           "\n"
           "Writes DIR as a Hugging Face GPT-2 model that transformers' GPT2LMHeadModel\n"
           "(AutoModelForCausalLM) and lm-evaluation-harness load as it is: config.json,\n"
           "model.safetensors (F32, HF's names, Conv1D [in, out] weights, lm_head tied to wte),\n"
           "generation_config.json, and the tokenizer files (tokenizer.json,\n"
           "tokenizer_config.json) of TOK (a tokenizer.json or a directory holding one) or,\n"
           "without --tokenizer, of the study the checkpoint belongs to (STUDY/cells/<id>/ckpt or\n"
           "track: its settings' data.tokenizer). DIR is written to DIR.tmp.<pid> and renamed,\n"
           "so it is never half-written; an existing non-empty DIR is refused unless --force.\n");
}

int cmd_export(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "export", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return 0;
    }
    const char *dir = lmd_args_str(&a, "hf");
    const char *tok = lmd_args_str(&a, "tokenizer");
    int force = lmd_args_flag(&a, "force");
    const char *pos[2] = {NULL, NULL};
    int npos = lmd_args_positional(&a, pos, 2);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad) return 2;
    if (npos != 1 || !dir) {
        fprintf(stderr, "lmdisp export: a checkpoint CK.h5 and --hf DIR are required\n");
        usage(stderr);
        return 2;
    }
    lmd_h5_quiet();
    lmd_err err = {{0}};
    gpt_model m;
    memset(&m, 0, sizeof m);
    if (lmd_ckpt_load(pos[0], &m, NULL, &err)) {
        fprintf(stderr, "lmdisp export: %s\n", err.msg);
        return 2;
    }
    char *from_study = tok ? NULL : lmd_study_tokenizer_of(pos[0]);
    hf_export_opts o = {tok ? tok : from_study, force};
    int rc = hf_export_gpt2(&m, dir, &o, &err);
    if (rc == 0) {
        const gpt_config *g = &m.cfg;
        printf("lmdisp export: %s -> %s (GPT2LMHeadModel: %d layers, n_embd %d, n_head %d, "
               "n_inner %d, vocab %d, n_positions %d, %zu params F32)\n",
               pos[0], dir, g->n_layer, g->n_embd, g->n_head, g->mlp_dim, g->vocab_size, g->n_ctx,
               gpt_num_params(g));
        if (o.tokenizer)
            printf("tokenizer: %s%s\n", o.tokenizer,
                   from_study ? " (the study's data.tokenizer)" : "");
        else
            printf("tokenizer: none (give --tokenizer TOK to include one)\n");
    } else {
        fprintf(stderr, "lmdisp export: %s\n", err.msg);
    }
    free(from_study);
    gpt_free(&m);
    return rc == 0 ? 0 : rc == 2 ? 2 : 1;
}
