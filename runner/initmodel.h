/* initmodel.h — the pretrained weights a cell starts from (train.init) or a distillation teacher
 * loads (distill.teacher): an lmdisp checkpoint (DESIGN 4.1), an HF GPT-2 directory or
 * hf:ORG/NAME[@REV] (DESIGN 4.6), loaded into lmdisp's own GPT-2 (gpt_model). HF GPT-2's Conv1D
 * weights (in, out) are transposed to lmdisp's (out, in); every HF setting lmdisp's GPT-2 does
 * not compute exactly (layer_norm_epsilon != 1e-5, scale_attn_by_inverse_layer_idx, untied
 * lm_head, a non-gpt2 model_type) is refused, naming the field. */
#ifndef LMDISP_INITMODEL_H
#define LMDISP_INITMODEL_H

#include <stddef.h>

#include "gpt.h"
#include "util.h"

/* Resolves spec (relative file paths against base_dir; hf: ids in the offline cache) to the
 * form cells store (an absolute checkpoint path or the resolved HF snapshot directory) in
 * resolved[n], and reads the model's shape into *cfg without loading weights. 0 or -1. */
int lmd_init_probe(const char *spec, const char *base_dir, char *resolved, size_t n,
                   gpt_config *cfg, lmd_err *err);

/* Loads the parameters of a resolved init model into *m (created here: m unallocated). Only
 * the parameters: no moments, no training state. 0 or -1 with a message naming the file. */
int lmd_init_load(const char *resolved, gpt_model *m, lmd_err *err);

#endif
