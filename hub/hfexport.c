/* hfexport.c — lmdisp GPT model -> Hugging Face GPT-2 directory (hfexport.h). Names, shapes
 * and config fields follow transformers' models/gpt2 (GPT2LMHeadModel.save_pretrained). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "hfexport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "tokenizer.h"

/* ---- model.safetensors ---- */

typedef struct {
    char name[96];
    int ndim;
    size_t shape[2];
    const float *src;
    int transpose; /* src is [shape[1], shape[0]] (nn.Linear [out, in]); HF wants [in, out] */
} st_entry;

static int entry_cmp(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static void add(st_entry *e, int *n, const char *name, int ndim, size_t r, size_t c,
                const float *src, int transpose) {
    st_entry *x = &e[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->ndim = ndim;
    x->shape[0] = r;
    x->shape[1] = ndim == 2 ? c : 1;
    x->src = src;
    x->transpose = transpose;
}

/* Every tensor GPT2LMHeadModel's state_dict holds (minus the tied lm_head). */
static int gpt2_entries(const gpt_model *m, st_entry **out) {
    const gpt_config *g = &m->cfg;
    const size_t V = g->vocab_size, C = g->n_embd, M = g->mlp_dim, P = g->n_ctx;
    const gpt_tensors *p = &m->params;
    st_entry *e = lmd_calloc((size_t)g->n_layer * 12 + 4, sizeof *e);
    int n = 0;
    char nm[96];
    add(e, &n, "transformer.wte.weight", 2, V, C, p->wte, 0);
    add(e, &n, "transformer.wpe.weight", 2, P, C, p->wpe, 0);
    for (int i = 0; i < g->n_layer; i++) {
        size_t L = (size_t)i;
#define NAME(s) (snprintf(nm, sizeof nm, "transformer.h.%d.%s", i, s), nm)
        add(e, &n, NAME("ln_1.weight"), 1, C, 0, p->ln1w + L * C, 0);
        add(e, &n, NAME("ln_1.bias"), 1, C, 0, p->ln1b + L * C, 0);
        add(e, &n, NAME("attn.c_attn.weight"), 2, C, 3 * C, p->qkvw + L * 3 * C * C, 1);
        add(e, &n, NAME("attn.c_attn.bias"), 1, 3 * C, 0, p->qkvb + L * 3 * C, 0);
        add(e, &n, NAME("attn.c_proj.weight"), 2, C, C, p->attprojw + L * C * C, 1);
        add(e, &n, NAME("attn.c_proj.bias"), 1, C, 0, p->attprojb + L * C, 0);
        add(e, &n, NAME("ln_2.weight"), 1, C, 0, p->ln2w + L * C, 0);
        add(e, &n, NAME("ln_2.bias"), 1, C, 0, p->ln2b + L * C, 0);
        add(e, &n, NAME("mlp.c_fc.weight"), 2, C, M, p->fcw + L * M * C, 1);
        add(e, &n, NAME("mlp.c_fc.bias"), 1, M, 0, p->fcb + L * M, 0);
        add(e, &n, NAME("mlp.c_proj.weight"), 2, M, C, p->fcprojw + L * C * M, 1);
        add(e, &n, NAME("mlp.c_proj.bias"), 1, C, 0, p->fcprojb + L * C, 0);
#undef NAME
    }
    add(e, &n, "transformer.ln_f.weight", 1, C, 0, p->lnfw, 0);
    add(e, &n, "transformer.ln_f.bias", 1, C, 0, p->lnfb, 0);
    qsort(e, (size_t)n, sizeof *e, entry_cmp);
    *out = e;
    return n;
}

static size_t numel(const st_entry *x) { return x->shape[0] * x->shape[1]; }

int hf_write_gpt2_safetensors(const gpt_model *m, const char *path, lmd_err *err) {
    st_entry *e = NULL;
    int n = gpt2_entries(m, &e);
    json_t *hdr = json_object(), *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(hdr, "__metadata__", meta);
    uint64_t off = 0;
    size_t maxn = 0;
    for (int i = 0; i < n; i++) {
        json_t *t = json_object(), *shape = json_array(), *offs = json_array();
        json_object_set_new(t, "dtype", json_string("F32"));
        for (int d = 0; d < e[i].ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)e[i].shape[d]));
        json_object_set_new(t, "shape", shape);
        uint64_t bytes = (uint64_t)numel(&e[i]) * 4;
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + bytes)));
        json_object_set_new(t, "data_offsets", offs);
        json_object_set_new(hdr, e[i].name, t);
        off += bytes;
        if (numel(&e[i]) > maxn) maxn = numel(&e[i]);
    }
    char *js = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(hdr);
    if (!js) lmd_die("out of memory encoding the safetensors header");
    size_t hl = strlen(js), padded = (hl + 7) / 8 * 8;
    int rc = -1;
    float *buf = NULL;
    FILE *f = fopen(path, "wb");
    if (!f) {
        lmd_errf(err, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    for (int b = 0; b < 8; b++) len8[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    fwrite(len8, 1, 8, f);
    fwrite(js, 1, hl, f);
    for (size_t k = hl; k < padded; k++) fputc(' ', f);
    buf = lmd_calloc(maxn ? maxn : 1, sizeof *buf);
    for (int i = 0; i < n && !ferror(f); i++) {
        const st_entry *x = &e[i];
        const float *src = x->src;
        if (x->transpose) { /* dst [r][c] = src [c][r] */
            size_t R = x->shape[0], Cc = x->shape[1];
            for (size_t r = 0; r < R; r++)
                for (size_t c = 0; c < Cc; c++) buf[r * Cc + c] = x->src[c * R + r];
            src = buf;
        }
        /* float32 little-endian: the machines lmdisp builds on are little-endian */
        fwrite(src, sizeof(float), numel(x), f);
    }
    if (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        lmd_errf(err, "cannot write %s: %s", path, strerror(errno));
        fclose(f);
        goto done;
    }
    if (fclose(f) != 0) {
        lmd_errf(err, "cannot write %s (close): %s", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(buf);
    free(js);
    free(e);
    return rc;
}

/* ---- JSON files ---- */

static int write_json(const char *dir, const char *name, json_t *root, lmd_err *err) {
    char path[PATH_MAX];
    if (lmd_path(path, sizeof path, err, "%s/%s", dir, name)) {
        json_decref(root);
        return -1;
    }
    /* save_pretrained: json.dumps(indent=2, sort_keys=True) + "\n"; 15 digits print 1e-05 */
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(root);
    if (!s) lmd_die("out of memory encoding %s", name);
    size_t n = strlen(s);
    char *t = lmd_calloc(n + 2, 1);
    memcpy(t, s, n);
    t[n] = '\n';
    free(s);
    int rc = lmd_file_write_atomic(path, t, n + 1, err);
    free(t);
    return rc;
}

static json_t *id_or_null(int64_t id) { return id >= 0 ? json_integer(id) : json_null(); }

static json_t *gpt2_config(const gpt_config *g, int64_t bos, int64_t eos) {
    json_t *c = json_object();
    json_t *arch = json_array();
    json_array_append_new(arch, json_string("GPT2LMHeadModel"));
    json_object_set_new(c, "activation_function", json_string("gelu_new"));
    json_object_set_new(c, "architectures", arch);
    /* lmdisp trains without dropout; 0.0 keeps a fine-tune in transformers the same model */
    json_object_set_new(c, "attn_pdrop", json_real(0.0));
    json_object_set_new(c, "bos_token_id", id_or_null(bos));
    json_object_set_new(c, "embd_pdrop", json_real(0.0));
    json_object_set_new(c, "eos_token_id", id_or_null(eos));
    json_object_set_new(c, "initializer_range", json_real(0.02));
    json_object_set_new(c, "layer_norm_epsilon", json_real(1e-5));
    json_object_set_new(c, "model_type", json_string("gpt2"));
    json_object_set_new(c, "n_embd", json_integer(g->n_embd));
    json_object_set_new(c, "n_head", json_integer(g->n_head));
    json_object_set_new(c, "n_inner", json_integer(g->mlp_dim));
    json_object_set_new(c, "n_layer", json_integer(g->n_layer));
    json_object_set_new(c, "n_positions", json_integer(g->n_ctx));
    json_object_set_new(c, "reorder_and_upcast_attn", json_false());
    json_object_set_new(c, "resid_pdrop", json_real(0.0));
    json_object_set_new(c, "scale_attn_by_inverse_layer_idx", json_false());
    json_object_set_new(c, "scale_attn_weights", json_true());
    json_object_set_new(c, "summary_activation", json_null());
    json_object_set_new(c, "summary_first_dropout", json_real(0.1));
    json_object_set_new(c, "summary_proj_to_labels", json_true());
    json_object_set_new(c, "summary_type", json_string("cls_index"));
    json_object_set_new(c, "summary_use_proj", json_true());
    json_object_set_new(c, "torch_dtype", json_string("float32"));
    json_object_set_new(c, "transformers_version", json_string(HF_EXPORT_TRANSFORMERS_VERSION));
    json_object_set_new(c, "use_cache", json_true());
    json_object_set_new(c, "vocab_size", json_integer(g->vocab_size));
    return c;
}

/* ---- tokenizer files ---- */

static int copy_file(const char *src, const char *dst, lmd_err *err) {
    char *text = NULL;
    size_t n = 0;
    int rc = lmd_file_read(src, (size_t)1 << 31, &text, &n, err);
    if (rc == LMD_FILE_MISSING) return lmd_errf(err, "%s does not exist", src);
    if (rc) return -1;
    rc = lmd_file_write_atomic(dst, text, n, err);
    free(text);
    return rc;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* tokenizer.json and its companions into dir; *eos_out = its end-of-text id. */
static int export_tokenizer(const char *tok, const gpt_config *g, const char *dir, int64_t *eos_out,
                            lmd_err *err) {
    lmd_tokenizer *t = NULL;
    if (tok_load(&t, tok, err)) return lmd_err_prefix(err, "--tokenizer");
    uint32_t tv = tok_vocab_size(t);
    const char *eos_name = NULL;
    int64_t eos = tok_eos_id(t, &eos_name);
    char *eos_copy = eos_name ? lmd_strdup(eos_name) : NULL;
    tok_free(t);
    if ((int64_t)tv > g->vocab_size) {
        free(eos_copy);
        return lmd_errf(err,
                        "tokenizer %s has %u ids but the model's vocab_size is %d: it "
                        "is not the tokenizer the model was trained with",
                        tok, tv, g->vocab_size);
    }
    char src_json[PATH_MAX], src_dir[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
    struct stat st;
    int rc = -1;
    if (stat(tok, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (lmd_path(src_dir, sizeof src_dir, err, "%s", tok) ||
            lmd_path(src_json, sizeof src_json, err, "%s/tokenizer.json", tok))
            goto done;
    } else {
        /* a symlink (a spec's gpt2-tokenizer.json) finds its companions where it points */
        char real[PATH_MAX];
        if (!realpath(tok, real)) {
            lmd_errf(err, "--tokenizer %s: %s", tok, strerror(errno));
            goto done;
        }
        snprintf(src_json, sizeof src_json, "%s", real);
        char *slash = strrchr(real, '/');
        const char *base = slash ? slash + 1 : real;
        if (strcmp(base, "tokenizer.json") == 0 && slash) {
            *slash = '\0';
            lmd_pathf(src_dir, "%s", real);
        } else {
            src_dir[0] = '\0'; /* a file under another name: no companions to trust */
        }
    }
    if (lmd_path(p, sizeof p, err, "%s/tokenizer.json", dir) || copy_file(src_json, p, err))
        goto done;
    json_t *tc = NULL;
    if (src_dir[0]) {
        if (lmd_path(q, sizeof q, err, "%s/special_tokens_map.json", src_dir)) goto done;
        if (exists(q)) {
            if (lmd_path(p, sizeof p, err, "%s/special_tokens_map.json", dir) ||
                copy_file(q, p, err))
                goto done;
        }
        if (lmd_path(q, sizeof q, err, "%s/tokenizer_config.json", src_dir)) goto done;
        if (exists(q)) {
            json_error_t je;
            tc = json_load_file(q, 0, &je);
            if (!tc || !json_is_object(tc)) {
                lmd_errf(err, "%s:%d:%d: %s", q, je.line, je.column,
                         tc ? "not a JSON object" : je.text);
                json_decref(tc);
                goto done;
            }
        }
    }
    if (!tc) { /* PreTrainedTokenizerFast reads any tokenizer.json by itself */
        tc = json_object();
        json_object_set_new(tc, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
        json_object_set_new(tc, "clean_up_tokenization_spaces", json_false());
        if (eos_copy) {
            json_object_set_new(tc, "bos_token", json_string(eos_copy));
            json_object_set_new(tc, "eos_token", json_string(eos_copy));
        }
    }
    json_object_set_new(tc, "model_max_length", json_integer(g->n_ctx));
    if (write_json(dir, "tokenizer_config.json", tc, err)) goto done;
    *eos_out = eos;
    rc = 0;
done:
    free(eos_copy);
    return rc;
}

/* ---- the directory, atomically ---- */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static void rm_tree(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* 1 if dir exists and holds anything, 0 if absent or empty, -1 (err) if not a directory. */
static int nonempty_dir(const char *dir, lmd_err *err) {
    struct stat st;
    if (lstat(dir, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return lmd_errf(err, "%s exists and is not a directory", dir);
    DIR *d = opendir(dir);
    if (!d) return lmd_errf(err, "cannot read directory %s: %s", dir, strerror(errno));
    struct dirent *de;
    int any = 0;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) any = 1;
    closedir(d);
    return any;
}

int hf_export_gpt2(const gpt_model *m, const char *dir_in, const hf_export_opts *o, lmd_err *err) {
    char dir[PATH_MAX], tmp[PATH_MAX], old[PATH_MAX], p[PATH_MAX];
    if (lmd_path(dir, sizeof dir, err, "%s", dir_in)) return -1;
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dir[--dl] = '\0';
    int ne = nonempty_dir(dir, err);
    if (ne < 0) return 2;
    if (ne && !o->force)
        return lmd_errf(err, "%s exists and is not empty (give --force to replace it)", dir), 2;
    if (lmd_path(tmp, sizeof tmp, err, "%s.tmp.%ld", dir, (long)getpid()) ||
        lmd_path(old, sizeof old, err, "%s.old.%ld", dir, (long)getpid()))
        return -1;
    rm_tree(tmp);
    if (mkdir(tmp, 0755) != 0) return lmd_errf(err, "cannot create %s: %s", tmp, strerror(errno));
    int64_t eos = m->cfg.vocab_size > 50256 ? 50256 : -1; /* GPT2Config's default ids */
    if (o->tokenizer && export_tokenizer(o->tokenizer, &m->cfg, tmp, &eos, err)) {
        rm_tree(tmp);
        return 2; /* the tokenizer given is unusable: bad input */
    }
    if (write_json(tmp, "config.json", gpt2_config(&m->cfg, eos, eos), err)) goto fail;
    if (eos >= 0) { /* what save_pretrained writes for a model that can generate */
        json_t *gc = json_object();
        json_object_set_new(gc, "_from_model_config", json_true());
        json_object_set_new(gc, "bos_token_id", json_integer(eos));
        json_object_set_new(gc, "eos_token_id", json_integer(eos));
        json_object_set_new(gc, "transformers_version",
                            json_string(HF_EXPORT_TRANSFORMERS_VERSION));
        if (write_json(tmp, "generation_config.json", gc, err)) goto fail;
    }
    if (lmd_path(p, sizeof p, err, "%s/model.safetensors", tmp) ||
        hf_write_gpt2_safetensors(m, p, err) || lmd_fsync_parent_dir(p, err))
        goto fail;
    /* publish: an empty dir is replaced by rename; a non-empty one (--force) is moved
     * aside first, so a crash leaves the old or the new directory, never a mixture */
    ne = nonempty_dir(dir, err);
    if (ne < 0) goto fail;
    struct stat st;
    int had = lstat(dir, &st) == 0;
    if (had && !ne && rmdir(dir) != 0) {
        lmd_errf(err, "cannot replace the empty directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (ne && rename(dir, old) != 0) {
        lmd_errf(err, "cannot move %s aside to %s: %s", dir, old, strerror(errno));
        goto fail;
    }
    if (rename(tmp, dir) != 0) {
        lmd_errf(err, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
        if (ne) rename(old, dir);
        goto fail;
    }
    if (ne) rm_tree(old);
    return lmd_fsync_parent_dir(dir, err);
fail:
    rm_tree(tmp);
    return -1;
}
