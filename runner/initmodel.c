/* initmodel.c — loads an lmdisp checkpoint or an HF GPT-2 into gpt_model (see initmodel.h). */
#include "initmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "hfmodel.h"

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* An HF config lmdisp's GPT-2 computes exactly, as a gpt_config. */
static int hf_to_gpt_config(const hf_arch_config *h, const char *dir, gpt_config *cfg,
                            lmd_err *err) {
    if (h->arch != HF_GPT2)
        return lmd_errf(err,
                        "%s: model_type '%s': only gpt2 maps onto lmdisp's GPT-2 (an init "
                        "or teacher model must be an lmdisp checkpoint or an HF GPT-2)",
                        dir, h->model_type);
    if (fabs(h->norm_eps - 1e-5) > 1e-12)
        return lmd_errf(err, "%s: layer_norm_epsilon %g: lmdisp's GPT-2 uses 1e-5", dir,
                        h->norm_eps);
    if (!h->scale_attn_weights)
        return lmd_errf(err,
                        "%s: scale_attn_weights false: lmdisp's GPT-2 scales attention by "
                        "1/sqrt(head_dim)",
                        dir);
    if (h->scale_attn_by_inverse_layer_idx)
        return lmd_errf(err,
                        "%s: scale_attn_by_inverse_layer_idx true: not computed by "
                        "lmdisp's GPT-2",
                        dir);
    if (!h->tie_word_embeddings)
        return lmd_errf(err, "%s: tie_word_embeddings false: lmdisp's GPT-2 ties lm_head to wte",
                        dir);
    if (h->head_dim * h->n_head != h->hidden_size)
        return lmd_errf(err, "%s: head_dim %d x n_head %d != n_embd %d", dir, h->head_dim,
                        h->n_head, h->hidden_size);
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = h->vocab_size;
    cfg->n_ctx = h->max_position;
    cfg->n_layer = h->n_layer;
    cfg->n_embd = h->hidden_size;
    cfg->n_head = h->n_head;
    cfg->mlp_dim = h->intermediate_size;
    return gpt_config_validate(cfg, err);
}

int lmd_init_probe(const char *spec, const char *base_dir, char *resolved, size_t n,
                   gpt_config *cfg, lmd_err *err) {
    char joined[4096];
    if (strncmp(spec, "hf:", 3) && spec[0] != '/' && base_dir)
        snprintf(joined, sizeof joined, "%s/%s", base_dir, spec);
    else
        snprintf(joined, sizeof joined, "%s", spec);
    if (!strncmp(spec, "hf:", 3) || is_dir(joined)) {
        if (hub_resolve(joined, resolved, n, err)) return -1;
        char cj[4200];
        snprintf(cj, sizeof cj, "%s/config.json", resolved);
        hf_arch_config h;
        if (hub_config_load(cj, &h, err)) return -1;
        int rc = hf_to_gpt_config(&h, resolved, cfg, err);
        hf_arch_config_free(&h);
        return rc;
    }
    char *abs = realpath(joined, NULL);
    if (!abs) return lmd_errf(err, "%s: no such checkpoint file or HF model directory", joined);
    snprintf(resolved, n, "%s", abs);
    free(abs);
    return lmd_ckpt_read_config(resolved, cfg, err);
}

/* HF GPT-2 weights into m: names without the transformer. prefix (the source accepts both);
 * Conv1D (in, out) transposed to (out, in). */
static int load_hf(const char *dir, gpt_model *m, lmd_err *err) {
    hub_model hm;
    if (hub_model_open(&hm, dir, err)) return -1;
    gpt_config cfg;
    int rc = hf_to_gpt_config(&hm.cfg, dir, &cfg, err);
    if (!rc) rc = gpt_create(m, &cfg, err);
    if (rc) {
        hub_model_close(&hm);
        return -1;
    }
    const hf_tensor_source *src = &hm.src;
    int64_t C = cfg.n_embd, M = cfg.mlp_dim, V = cfg.vocab_size, P = cfg.n_ctx;
    size_t big = (size_t)(3 * C > M ? 3 * C : M) * (size_t)(C > M ? C : M);
    float *tmp = lmd_calloc(big, sizeof(float));
    gpt_tensors *T = &m->params;
    char name[128];
#define GET(nm, nd, s0, s1, dst)                                                                   \
    do {                                                                                           \
        int64_t sh[2] = {(s0), (s1)};                                                              \
        if (!rc) rc = src->get_f32(src->ctx, (nm), (nd), sh, (dst), err);                          \
    } while (0)
    /* Conv1D weight (in, out) -> (out, in) at dst */
#define GET_T(nm, in, out, dst)                                                                    \
    do {                                                                                           \
        GET(nm, 2, in, out, tmp);                                                                  \
        if (!rc)                                                                                   \
            for (int64_t i_ = 0; i_ < (in); i_++)                                                  \
                for (int64_t o_ = 0; o_ < (out); o_++)                                             \
                    (dst)[o_ * (in) + i_] = tmp[i_ * (out) + o_];                                  \
    } while (0)
    GET("wte.weight", 2, V, C, T->wte);
    GET("wpe.weight", 2, P, C, T->wpe);
    for (int l = 0; l < cfg.n_layer && !rc; l++) {
#define NM(fmt) (snprintf(name, sizeof name, "h.%d." fmt, l), name)
        GET(NM("ln_1.weight"), 1, C, 0, T->ln1w + l * C);
        GET(NM("ln_1.bias"), 1, C, 0, T->ln1b + l * C);
        GET_T(NM("attn.c_attn.weight"), C, 3 * C, T->qkvw + (size_t)l * 3 * C * C);
        GET(NM("attn.c_attn.bias"), 1, 3 * C, 0, T->qkvb + (size_t)l * 3 * C);
        GET_T(NM("attn.c_proj.weight"), C, C, T->attprojw + (size_t)l * C * C);
        GET(NM("attn.c_proj.bias"), 1, C, 0, T->attprojb + l * C);
        GET(NM("ln_2.weight"), 1, C, 0, T->ln2w + l * C);
        GET(NM("ln_2.bias"), 1, C, 0, T->ln2b + l * C);
        GET_T(NM("mlp.c_fc.weight"), C, M, T->fcw + (size_t)l * M * C);
        GET(NM("mlp.c_fc.bias"), 1, M, 0, T->fcb + (size_t)l * M);
        GET_T(NM("mlp.c_proj.weight"), M, C, T->fcprojw + (size_t)l * C * M);
        GET(NM("mlp.c_proj.bias"), 1, C, 0, T->fcprojb + l * C);
#undef NM
    }
    GET("ln_f.weight", 1, C, 0, T->lnfw);
    GET("ln_f.bias", 1, C, 0, T->lnfb);
#undef GET
#undef GET_T
    free(tmp);
    hub_model_close(&hm);
    if (rc) gpt_free(m);
    return rc;
}

int lmd_init_load(const char *resolved, gpt_model *m, lmd_err *err) {
    if (is_dir(resolved)) return load_hf(resolved, m, err);
    lmd_train_state st;
    if (lmd_ckpt_load(resolved, m, &st, err)) return -1;
    /* parameters only: the moments a checkpoint may carry are not the new run's */
    free(m->m_memory);
    free(m->v_memory);
    m->m_memory = m->v_memory = NULL;
    m->adam_t = 0;
    return 0;
}
