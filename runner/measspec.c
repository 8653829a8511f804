/* measspec.c — parsing, validation and expansion of measurement study specs (measspec.h). */
#include "measspec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "anymodel.h"
#include "evalset.h"
#include "fileio.h"
#include "hfmodel.h"
#include "sha256.h"
#include "spec.h"
#include "spec_internal.h"
#include "tokfile.h"

static void check_keys(pctx *c, const ynode *m, const char *where, const char *const *keys) {
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        const char *k = m->kids[i]->val;
        int ok = 0;
        for (int j = 0; keys[j]; j++) ok |= !strcmp(keys[j], k);
        char full[256];
        snprintf(full, sizeof full, "%s%s%s", where, *where ? "." : "", k);
        if (!ok) {
            char list[512] = "";
            for (int j = 0; keys[j]; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "",
                         keys[j]);
            spec_perr(c, m->kids[i], full, "unknown key (valid here: %s)", list);
        }
        for (size_t j = 0; j < i; j += 2)
            if (!strcmp(m->kids[j]->val, k)) spec_perr(c, m->kids[i], full, "given twice");
    }
}

static const char *scalar(pctx *c, const ynode *n, const char *key) {
    if (!n) return NULL;
    if (n->kind != YN_SCALAR) {
        spec_perr(c, n, key, "expected a single value, got a %s",
                  n->kind == YN_SEQ ? "list" : "mapping");
        return NULL;
    }
    return n->val;
}

static int get_int(pctx *c, const ynode *m, const char *name, const char *key, long long lo,
                   long long hi, long long def, long long *out) {
    const ynode *n = spec_map_get(m, name);
    *out = def;
    if (!n) return 0;
    const char *v = scalar(c, n, key);
    if (!v) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!n->plain || end == v || *end || errno) {
        spec_perr(c, n, key, "expected an unquoted integer, got '%s'", v);
        return -1;
    }
    if (x < lo || x > hi) {
        spec_perr(c, n, key, "%lld is out of range %lld..%lld", x, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* a path relative to the spec's directory, unless absolute */
static char *resolve(const lmd_mspec *s, const char *p) {
    if (p[0] == '/') return lmd_strdup(p);
    size_t n = strlen(s->dir) + strlen(p) + 2;
    char *r = lmd_calloc(n, 1);
    snprintf(r, n, "%s/%s", s->dir, p);
    return r;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int lmd_mspec_detect(const char *path) {
    char *text = NULL;
    size_t len = 0;
    if (lmd_file_read(path, LMD_SPEC_MAX_BYTES, &text, &len, NULL) != 0) return 0;
    pctx c = {.path = path};
    ynode *root = spec_build_tree(&c, text, len);
    const ynode *k = spec_map_get(root, "kind");
    int yes = k && k->kind == YN_SCALAR && !strcmp(k->val, "measure");
    spec_ynode_free(root);
    free(text);
    return yes;
}

/* tokensNB / tokensNM / tokensNT / tokensN in a revision name -> tokens; -1 if none */
static int64_t revision_tokens(const char *rev) {
    const char *p = rev;
    while (*p) {
        size_t len = strcspn(p, "-_/");
        if (len > 6 && !strncmp(p, "tokens", 6) && isdigit((unsigned char)p[6])) {
            char *end;
            double v = strtod(p + 6, &end);
            double mult = 1;
            if (*end == 'B')
                mult = 1e9, end++;
            else if (*end == 'M')
                mult = 1e6, end++;
            else if (*end == 'T')
                mult = 1e12, end++;
            else if (*end == 'K' || *end == 'k')
                mult = 1e3, end++;
            if (end == p + len) return (int64_t)(v * mult + 0.5);
        }
        p += len;
        if (*p) p++;
    }
    return -1;
}

static void add_model(lmd_mspec *s, int *cap, const char *name, const char *spec,
                      const char *revision, int64_t step, const ynode *at, int family) {
    if (s->n_models == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        s->models = realloc(s->models, (size_t)*cap * sizeof *s->models);
        if (!s->models) lmd_die("out of memory");
    }
    lmd_mmodel *m = &s->models[s->n_models++];
    memset(m, 0, sizeof *m);
    m->name = lmd_strdup(name);
    m->spec = lmd_strdup(spec);
    m->family = lmd_strdup(s->families[family]);
    m->family_index = family;
    m->revision = lmd_strdup(revision ? revision : "");
    m->train_step = step;
    m->train_tokens = revision ? revision_tokens(revision) : -1;
    m->line = at->line;
    m->col = at->col;
}

/* opens the model to learn its facts (validates config and every tensor) */
static void probe_model(pctx *c, lmd_mmodel *m, const ynode *at, const char *key) {
    lmd_anymodel am;
    lmd_err e = {{0}};
    if (lmd_anymodel_open(&am, m->spec, &e)) {
        spec_perr(c, at, key, "%s", e.msg);
        return;
    }
    snprintf(m->model_type, sizeof m->model_type, "%s", am.model_type);
    m->n_layer = am.n_layer;
    m->hidden_size = am.hidden_size;
    m->vocab_size = am.vocab_size;
    m->max_T = am.max_T;
    m->n_params = am.n_params;
    if (!am.is_hf && m->train_step < 0) m->train_step = am.st.step, m->train_tokens = am.st.tokens;
    lmd_anymodel_close(&am);
}

static void parse_model_entry(pctx *c, lmd_mspec *s, int *cap, const ynode *e, int fam,
                              const char *key) {
    const char *name = NULL, *path = NULL;
    const ynode *at = e;
    if (e->kind == YN_SCALAR) {
        path = e->val;
    } else if (e->kind == YN_MAP) {
        static const char *const keys[] = {"name", "path", NULL};
        check_keys(c, e, key, keys);
        name = scalar(c, spec_map_get(e, "name"), key);
        const ynode *pn = spec_map_get(e, "path");
        path = scalar(c, pn, key);
        if (pn) at = pn;
        if (!path) {
            spec_perr(c, e, key,
                      "a model entry needs path: (a directory, checkpoint or hf:ORG/NAME)");
            return;
        }
    } else {
        spec_perr(c, e, key, "a model is a path, hf:ORG/NAME[@REV] or {name, path}");
        return;
    }
    if (!strncmp(path, "hf:", 3)) {
        const char *star = strstr(path, "@*");
        if (star && !star[2]) {
            hub_revision *revs = NULL;
            int n = 0;
            char *skipped = NULL;
            lmd_err he = {{0}};
            if (hub_list_series(path, &revs, &n, &skipped, &he)) {
                spec_perr(c, at, key, "%s", he.msg);
                return;
            }
            if (n == 0)
                spec_perr(c, at, key, "series %s: no revision with a step in the cache", path);
            const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path + 3;
            for (int i = 0; i < n; i++) {
                char nm[512];
                snprintf(nm, sizeof nm, "%.*s@%s", (int)(strlen(base) - 2), base, revs[i].name);
                add_model(s, cap, nm, revs[i].spec, revs[i].name,
                          revs[i].is_main ? -1 : revs[i].step, at, fam);
            }
            free(revs);
            free(skipped);
            return;
        }
        const char *slash = strrchr(path, '/');
        add_model(s, cap, name ? name : (slash ? slash + 1 : path + 3), path, NULL, -1, at, fam);
        return;
    }
    char *r = resolve(s, path);
    char real[PATH_MAX];
    if (!realpath(r, real)) {
        spec_perr(c, at, key,
                  "model %s: no such file or directory (%s; relative paths are resolved "
                  "against the spec's directory)",
                  path, r);
        free(r);
        return;
    }
    free(r);
    if (is_dir(real) && !hub_is_model_form(real)) {
        spec_perr(c, at, key,
                  "model %s: the directory %s holds no config.json (an HF model "
                  "directory) ",
                  path, real);
        return;
    }
    const char *slash = strrchr(real, '/');
    char nm[PATH_MAX];
    snprintf(nm, sizeof nm, "%s", name ? name : slash ? slash + 1 : real);
    char *dot = name ? NULL : strstr(nm, ".h5");
    if (dot && !dot[3]) *dot = '\0';
    add_model(s, cap, nm, real, NULL, -1, at, fam);
}

static int find_model(const lmd_mspec *s, const char *name) {
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i].name, name)) return i;
    return -1;
}

static void parse_dataset(pctx *c, lmd_mspec *s, const ynode *e, lmd_mdata *d, const char *key) {
    memset(d, 0, sizeof *d);
    d->line = e->line, d->col = e->col;
    if (e->kind != YN_MAP) {
        spec_perr(c, e, key, "a dataset is a mapping {name, tokens | text [+ tokenizer]}");
        return;
    }
    static const char *const keys[] = {"name", "tokens", "text", "tokenizer", NULL};
    check_keys(c, e, key, keys);
    const char *nm = scalar(c, spec_map_get(e, "name"), key);
    if (!nm) spec_perr(c, e, key, "a dataset needs a name");
    d->name = lmd_strdup(nm ? nm : "?");
    const ynode *tk = spec_map_get(e, "tokens"), *tx = spec_map_get(e, "text");
    if (!!tk == !!tx) {
        spec_perr(c, e, key,
                  "give exactly one of tokens: (a token file, or a mapping model name -> "
                  "token file) and text: (with the models' own tokenizers)");
        return;
    }
    if (tk && tk->kind == YN_MAP) {
        d->kind = LMD_MDATA_PER_MODEL;
        d->pm_model = lmd_calloc(tk->n / 2 + 1, sizeof(char *));
        d->pm_path = lmd_calloc(tk->n / 2 + 1, sizeof(char *));
        for (size_t i = 0; i + 1 < tk->n; i += 2) {
            const char *p = scalar(c, tk->kids[i + 1], key);
            if (find_model(s, tk->kids[i]->val) < 0)
                spec_perr(c, tk->kids[i], key, "'%s' is not a model of this study",
                          tk->kids[i]->val);
            d->pm_model[d->n_pm] = lmd_strdup(tk->kids[i]->val);
            d->pm_path[d->n_pm++] = resolve(s, p ? p : "");
        }
    } else if (tk) {
        const char *p = scalar(c, tk, key);
        d->kind = LMD_MDATA_TOKENS;
        d->tokens = resolve(s, p ? p : "");
    } else {
        const char *p = scalar(c, tx, key);
        d->kind = LMD_MDATA_TEXT;
        d->text = resolve(s, p ? p : "");
        if (access(d->text, R_OK) != 0) spec_perr(c, tx, key, "text %s cannot be read", d->text);
        const ynode *tz = spec_map_get(e, "tokenizer");
        const char *t = scalar(c, tz, key);
        if (t && strcmp(t, "model")) d->tokenizer = resolve(s, t);
    }
    if (spec_map_get(e, "tokenizer") && d->kind != LMD_MDATA_TEXT)
        spec_perr(c, spec_map_get(e, "tokenizer"), key, "tokenizer: goes with text:, not tokens:");
}

/* the data source of model m on dataset d, or NULL (message) */
static char *cell_source(pctx *c, const lmd_mspec *s, int m, const lmd_mdata *d, int *is_text,
                         const ynode *at, const char *key) {
    *is_text = 0;
    if (d->kind == LMD_MDATA_TOKENS) return lmd_strdup(d->tokens);
    if (d->kind == LMD_MDATA_PER_MODEL) {
        for (int i = 0; i < d->n_pm; i++)
            if (!strcmp(d->pm_model[i], s->models[m].name)) return lmd_strdup(d->pm_path[i]);
        spec_perr(c, at, key, "dataset %s has no token file for model %s", d->name,
                  s->models[m].name);
        return NULL;
    }
    *is_text = 1;
    char tok[4200];
    if (d->tokenizer) {
        snprintf(tok, sizeof tok, "%s", d->tokenizer);
    } else {
        lmd_err e = {{0}};
        if (hub_resolve_file(s->models[m].spec, "tokenizer.json", tok, sizeof tok, &e)) {
            spec_perr(c, at, key,
                      "dataset %s is text in each model's own tokenizer, but model %s: %s", d->name,
                      s->models[m].name, e.msg);
            return NULL;
        }
    }
    size_t n = strlen(tok) + strlen(d->text) + 8;
    char *src = lmd_calloc(n, 1);
    snprintf(src, n, "tok:%s:%s", tok, d->text);
    return src;
}

static void sanitize(char *dst, size_t n, const char *src) {
    size_t j = 0;
    for (size_t i = 0; src[i] && j + 1 < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[j++] = (isalnum(ch) || ch == '_' || ch == '.' || ch == '-') ? (char)ch : '_';
    }
    dst[j] = '\0';
}

static void make_cells(pctx *c, lmd_mspec *s, const ynode *dsnode, int check_data) {
    s->n_cells = (size_t)s->n_models * (size_t)s->n_datasets;
    s->cells = lmd_calloc(s->n_cells ? s->n_cells : 1, sizeof *s->cells);
    for (int m = 0; m < s->n_models; m++)
        for (int d = 0; d < s->n_datasets; d++) {
            lmd_mcell *cl = &s->cells[(size_t)m * s->n_datasets + d];
            const ynode *at = dsnode->kids[d];
            cl->index = (size_t)m * s->n_datasets + d;
            cl->model = m, cl->dataset = d;
            cl->source = cell_source(c, s, m, &s->datasets[d], &cl->is_text, at, "datasets");
            const lmd_mmodel *mm = &s->models[m];
            cl->cost = (double)mm->n_params * s->n_seq * s->T;
            char buf[8192];
            snprintf(buf, sizeof buf,
                     "model=%s\nmodel_type=%s\nn_params=%lld\ndataset=%s\nsequences=%d\n"
                     "seq_len=%d\nbins=%d\nbatch=%d\n",
                     mm->spec, mm->model_type, (long long)mm->n_params,
                     cl->source ? cl->source : "", s->n_seq, s->T, s->bins, s->batch);
            if (cl->is_text)
                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "seed=%lld\nmin_words=%d\n",
                         (long long)s->seed, s->min_words);
            cl->settings = lmd_strdup(buf);
            char hex[65], a[48], b[32];
            lmd_sha256_hex(buf, strlen(buf), hex);
            sanitize(a, sizeof a, mm->name);
            sanitize(b, sizeof b, s->datasets[d].name);
            snprintf(cl->id, sizeof cl->id, "%s-%s-%.8s", a, b, hex);
            if (!cl->source) continue;
            /* the seq_len must fit, the data must hold the sequences in the model's ids */
            if (mm->max_T > 0 && s->T > mm->max_T) {
                spec_perr(c, at, "measure.seq_len",
                          "seq_len %d exceeds the %d positions of model %s", s->T, mm->max_T,
                          mm->name);
                continue;
            }
            if (!mm->n_layer || !check_data) continue; /* a model that failed is reported */
            lmd_err e = {{0}};
            int32_t *ids = NULL;
            size_t got = 0;
            int rc;
            if (cl->is_text) {
                lmd_paper_sampling ps = {s->n_seq, s->T, s->min_words, (uint64_t)s->seed};
                size_t *starts = NULL, nd = 0;
                rc = lmd_datasrc_paper_sample(cl->source, mm->vocab_size, &ps, &ids, &starts, &nd,
                                              &e);
                free(starts);
            } else {
                rc = lmd_tokfile_read(cl->source, mm->vocab_size, 0, (size_t)s->n_seq * s->T, &ids,
                                      &got, &e);
            }
            free(ids);
            if (rc)
                spec_perr(c, at, "datasets",
                          "dataset %s for model %s (%d sequences x %d tokens): %s",
                          s->datasets[d].name, mm->name, s->n_seq, s->T, e.msg);
        }
}

static void parse_slurm(pctx *c, const ynode *m, lmd_mspec *s) {
    if (m->kind != YN_MAP) {
        spec_perr(c, m, "slurm", "expected a mapping");
        return;
    }
    s->slurm = lmd_calloc(m->n / 2 + 1, sizeof *s->slurm);
    for (size_t i = 0; i + 1 < m->n; i += 2) {
        const ynode *k = m->kids[i], *v = m->kids[i + 1];
        char key[160];
        snprintf(key, sizeof key, "slurm.%s", k->val);
        lmd_slurm_kv kv = {0};
        kv.line = v->line;
        kv.column = v->col;
        if (v->kind == YN_SCALAR && v->val[0]) {
            kv.value = lmd_strdup(v->val);
        } else if (v->kind == YN_SEQ) {
            kv.items = lmd_calloc(v->n + 1, sizeof *kv.items);
            for (size_t j = 0; j < v->n; j++) {
                if (v->kids[j]->kind != YN_SCALAR)
                    spec_perr(c, v->kids[j], key, "list items must be strings");
                kv.items[j] = lmd_strdup(v->kids[j]->val ? v->kids[j]->val : "");
            }
            kv.n_items = (int)v->n;
        } else {
            spec_perr(c, v, key, "expected a string, an integer or a list of them");
            continue;
        }
        kv.key = lmd_strdup(k->val);
        s->slurm[s->n_slurm++] = kv;
    }
}

lmd_spec lmd_mspec_slurm_view(const lmd_mspec *s) {
    lmd_spec v;
    memset(&v, 0, sizeof v);
    v.path = s->path;
    v.dir = s->dir;
    v.name = s->name;
    v.text = s->text;
    v.text_len = s->text_len;
    memcpy(v.sha256, s->sha256, sizeof v.sha256);
    v.ranks_per_model = s->ranks_per_model;
    v.threads_per_rank = s->threads_per_rank;
    v.slurm = s->slurm;
    v.n_slurm = s->n_slurm;
    return v;
}

int lmd_mspec_load(lmd_mspec *s, const char *path, lmd_err *err) {
    return lmd_mspec_load_at(s, path, NULL, 1, err);
}

int lmd_mspec_load_at(lmd_mspec *s, const char *path, const char *base_dir, int check_data,
                      lmd_err *err) {
    memset(s, 0, sizeof *s);
    char *text = NULL;
    size_t len = 0;
    int frc = lmd_file_read(path, LMD_SPEC_MAX_BYTES, &text, &len, err);
    if (frc) return frc == LMD_FILE_MISSING ? lmd_errf(err, "%s: no such file", path) : -1;
    pctx c = {.path = path};
    ynode *root = spec_build_tree(&c, text, len);
    s->path = lmd_strdup(path);
    s->text = text;
    s->text_len = len;
    lmd_sha256_hex(text, len, s->sha256);
    char real[PATH_MAX];
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
    char *slash = strrchr(real, '/');
    if (slash) *slash = '\0';
    s->dir = lmd_strdup(base_dir ? base_dir : slash ? real : ".");
    if (!root) goto done;
    if (root->kind != YN_MAP) {
        spec_perr(&c, root, NULL, "a spec is a mapping of top-level keys");
        goto done;
    }
    static const char *const top[] = {"name",     "kind",  "hf_hub_cache", "measure", "families",
                                      "datasets", "pairs", "resources",    "slurm",   NULL};
    check_keys(&c, root, "", top);
    const char *nm = scalar(&c, spec_map_get(root, "name"), "name");
    if (!nm)
        spec_perr(&c, root, "name", "required");
    else {
        for (const char *p = nm; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("_.-", *p)) {
                spec_perr(&c, spec_map_get(root, "name"), "name", "'%s': use only [A-Za-z0-9_.-]",
                          nm);
                break;
            }
        if (!strcmp(nm, ".") || !strcmp(nm, ".."))
            spec_perr(&c, spec_map_get(root, "name"), "name", "'%s' is not a study name", nm);
    }
    s->name = lmd_strdup(nm ? nm : "");
    const char *hc = scalar(&c, spec_map_get(root, "hf_hub_cache"), "hf_hub_cache");
    if (hc) {
        s->hf_hub_cache = resolve(s, hc);
        if (!is_dir(s->hf_hub_cache))
            spec_perr(&c, spec_map_get(root, "hf_hub_cache"), "hf_hub_cache",
                      "%s is not a directory", s->hf_hub_cache);
        else
            setenv("HF_HUB_CACHE", s->hf_hub_cache, 1);
    }
    /* measurement settings, the paper's defaults */
    const ynode *ms = spec_map_get(root, "measure");
    long long v;
    if (ms && ms->kind != YN_MAP) spec_perr(&c, ms, "measure", "expected a mapping");
    if (ms && ms->kind == YN_MAP) {
        static const char *const mk[] = {"sequences", "seq_len", "seed", "min_words",
                                         "bins",      "batch",   NULL};
        check_keys(&c, ms, "measure", mk);
    }
    get_int(&c, ms, "sequences", "measure.sequences", 1, 1000000, LMD_PAPER_SEQUENCES, &v);
    s->n_seq = (int)v;
    get_int(&c, ms, "seq_len", "measure.seq_len", 1, 1 << 20, LMD_HF_DEFAULT_SEQ_LEN, &v);
    s->T = (int)v;
    get_int(&c, ms, "seed", "measure.seed", 0, LLONG_MAX, 0, &v);
    s->seed = v;
    get_int(&c, ms, "min_words", "measure.min_words", 0, 1 << 30, LMD_PAPER_MIN_WORDS, &v);
    s->min_words = (int)v;
    get_int(&c, ms, "bins", "measure.bins", 2, 100000, 128, &v);
    s->bins = (int)v;
    get_int(&c, ms, "batch", "measure.batch", 0, 1000000, 0, &v);
    s->batch = (int)v;
    const ynode *rs = spec_map_get(root, "resources");
    if (rs && rs->kind == YN_MAP) {
        static const char *const rk[] = {"ranks_per_model", "threads_per_rank", NULL};
        check_keys(&c, rs, "resources", rk);
    }
    get_int(&c, rs, "ranks_per_model", "resources.ranks_per_model", 1, 4096, 1, &v);
    s->ranks_per_model = (int)v;
    get_int(&c, rs, "threads_per_rank", "resources.threads_per_rank", 1, 256, 1, &v);
    s->threads_per_rank = (int)v;
    if (spec_map_get(root, "slurm")) parse_slurm(&c, spec_map_get(root, "slurm"), s);
    /* families */
    const ynode *fs = spec_map_get(root, "families");
    int cap = 0;
    if (!fs || fs->kind != YN_SEQ || fs->n == 0) {
        spec_perr(&c, fs ? fs : root, "families", "required: a list of {name, models: [...]}");
    } else {
        s->families = lmd_calloc(fs->n, sizeof(char *));
        for (size_t i = 0; i < fs->n; i++) {
            const ynode *f = fs->kids[i];
            if (f->kind != YN_MAP) {
                spec_perr(&c, f, "families", "each family is a mapping {name, models}");
                continue;
            }
            static const char *const fk[] = {"name", "models", NULL};
            check_keys(&c, f, "families", fk);
            const char *fn = scalar(&c, spec_map_get(f, "name"), "families.name");
            if (!fn) spec_perr(&c, f, "families.name", "required");
            int fam = s->n_families++;
            s->families[fam] = lmd_strdup(fn ? fn : "?");
            for (int j = 0; j < fam; j++)
                if (!strcmp(s->families[j], s->families[fam]))
                    spec_perr(&c, f, "families.name", "family '%s' given twice", s->families[fam]);
            const ynode *ml = spec_map_get(f, "models");
            if (!ml || ml->kind != YN_SEQ || ml->n == 0) {
                spec_perr(&c, ml ? ml : f, "families.models", "required: a non-empty list");
                continue;
            }
            for (size_t k = 0; k < ml->n; k++) {
                int first = s->n_models;
                parse_model_entry(&c, s, &cap, ml->kids[k], fam, "families.models");
                for (int m = first; m < s->n_models; m++) {
                    for (int o = 0; o < m; o++)
                        if (!strcmp(s->models[o].name, s->models[m].name))
                            spec_perr(&c, ml->kids[k], "families.models",
                                      "model name '%s' is used twice (give one of them name:)",
                                      s->models[m].name);
                    probe_model(&c, &s->models[m], ml->kids[k], "families.models");
                }
            }
        }
    }
    /* datasets */
    const ynode *ds = spec_map_get(root, "datasets");
    if (!ds || ds->kind != YN_SEQ || ds->n == 0) {
        spec_perr(&c, ds ? ds : root, "datasets", "required: a list of {name, tokens | text}");
    } else {
        s->datasets = lmd_calloc(ds->n, sizeof *s->datasets);
        for (size_t i = 0; i < ds->n; i++) {
            parse_dataset(&c, s, ds->kids[i], &s->datasets[s->n_datasets++], "datasets");
            for (int j = 0; j + 1 < s->n_datasets; j++)
                if (!strcmp(s->datasets[j].name, s->datasets[s->n_datasets - 1].name))
                    spec_perr(&c, ds->kids[i], "datasets", "dataset '%s' given twice",
                              s->datasets[j].name);
        }
    }
    /* pairs */
    const ynode *ps = spec_map_get(root, "pairs");
    if (ps && ps->kind != YN_SEQ)
        spec_perr(&c, ps, "pairs", "expected a list of {distilled, base}");
    if (ps && ps->kind == YN_SEQ) {
        s->pairs = lmd_calloc(ps->n ? ps->n : 1, sizeof *s->pairs);
        for (size_t i = 0; i < ps->n; i++) {
            const ynode *p = ps->kids[i];
            static const char *const pk[] = {"distilled", "base", NULL};
            if (p->kind != YN_MAP) {
                spec_perr(&c, p, "pairs", "each pair is {distilled: MODEL, base: MODEL}");
                continue;
            }
            check_keys(&c, p, "pairs", pk);
            const char *a = scalar(&c, spec_map_get(p, "distilled"), "pairs.distilled");
            const char *b = scalar(&c, spec_map_get(p, "base"), "pairs.base");
            int ia = a ? find_model(s, a) : -1, ib = b ? find_model(s, b) : -1;
            if (ia < 0)
                spec_perr(&c, spec_map_get(p, "distilled") ? spec_map_get(p, "distilled") : p,
                          "pairs.distilled", "'%s' is not a model name of this study", a ? a : "");
            if (ib < 0)
                spec_perr(&c, spec_map_get(p, "base") ? spec_map_get(p, "base") : p, "pairs.base",
                          "'%s' is not a model name of this study", b ? b : "");
            s->pairs[s->n_pairs].distilled = ia;
            s->pairs[s->n_pairs++].base = ib;
        }
    }
    if (!c.n_errors && s->n_models && s->n_datasets) make_cells(&c, s, ds, check_data);
    if (!c.n_errors && s->n_cells > LMD_SPEC_MAX_CELLS)
        spec_perr(&c, root, NULL, "%zu cells: more than %d", s->n_cells, LMD_SPEC_MAX_CELLS);
done:
    spec_ynode_free(root);
    if (c.n_errors) {
        if (c.n_errors > LMD_SPEC_MAX_ERRORS)
            spec_sb_addf(&c.msgs, "\n(%d more errors)", c.n_errors - LMD_SPEC_MAX_ERRORS);
        snprintf(err->msg, sizeof err->msg, "%s", c.msgs.p ? c.msgs.p : "spec error");
        free(c.msgs.p);
        lmd_mspec_free(s);
        return -1;
    }
    return 0;
}

void lmd_mspec_free(lmd_mspec *s) {
    for (int i = 0; i < s->n_models; i++) {
        free(s->models[i].name), free(s->models[i].spec), free(s->models[i].family);
        free(s->models[i].revision);
    }
    free(s->models);
    for (int i = 0; i < s->n_datasets; i++) {
        lmd_mdata *d = &s->datasets[i];
        free(d->name), free(d->tokens), free(d->text), free(d->tokenizer);
        for (int j = 0; j < d->n_pm; j++) free(d->pm_model[j]), free(d->pm_path[j]);
        free(d->pm_model), free(d->pm_path);
    }
    free(s->datasets);
    for (size_t i = 0; i < s->n_cells; i++) free(s->cells[i].source), free(s->cells[i].settings);
    free(s->cells);
    for (int i = 0; i < s->n_families; i++) free(s->families[i]);
    free(s->families);
    free(s->pairs);
    for (int i = 0; i < s->n_slurm; i++) {
        free(s->slurm[i].key), free(s->slurm[i].value);
        for (int j = 0; j < s->slurm[i].n_items; j++) free(s->slurm[i].items[j]);
        free(s->slurm[i].items);
    }
    free(s->slurm);
    free(s->path), free(s->dir), free(s->name), free(s->text), free(s->hf_hub_cache);
    memset(s, 0, sizeof *s);
}

typedef struct {
    double cost;
    size_t index;
} cost_index;

static int cmp_cost(const void *a, const void *b) {
    const cost_index *x = a, *y = b;
    if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1; /* most expensive first */
    return x->index < y->index ? -1 : x->index > y->index;     /* ties by index */
}

void lmd_mspec_order(const lmd_mspec *s, size_t *order) {
    cost_index *ci = lmd_calloc(s->n_cells + 1, sizeof *ci);
    for (size_t i = 0; i < s->n_cells; i++) ci[i].cost = s->cells[i].cost, ci[i].index = i;
    qsort(ci, s->n_cells, sizeof *ci, cmp_cost);
    for (size_t i = 0; i < s->n_cells; i++) order[i] = ci[i].index;
    free(ci);
}
