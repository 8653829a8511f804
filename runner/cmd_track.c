/* cmd_track.c — `lmdisp track`: condensation against training progress. Measures a series of
 * checkpoints of one run on one fixed evaluation set and writes the trajectory file
 * (analysis/trajectory.h, layout in docs/ANALYSIS.md). */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anymodel.h"
#include "args.h"
#include "checkpoint.h"
#include "commands.h"
#include "evalset.h"
#include "h5io.h"
#include "hfmodel.h"
#include "measure.h"
#include "train.h"
#include "trajectory.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lmdisp track CK.h5... | DIR... | HFDIR... | hf:ORG/NAME@* --out TRAJ.h5\n"
            "                   [--data SRC | --tokens FILE.bin]\n"
            "                   [--sequences N] [--seq-len T] [--val-fraction X] [--bins N]\n"
            "                   [--eval-batches N] [--threads N]\n"
            "\n"
            "Measures every checkpoint of one training run on the same evaluation set and writes\n"
            "the condensation trajectory (docs/ANALYSIS.md). A DIR stands for every *.h5 file in\n"
            "it. Checkpoints are ordered by training step: the root attribute `step` when the\n"
            "file has one, otherwise the stepN in its name (OLMo-style names such as\n"
            "stage1-step1000-tokens4B.h5; tokensN[KMBT] gives the token count likewise).\n"
            "All checkpoints must have the same model config. A checkpoint that cannot be read or\n"
            "measured is reported and skipped; the others are still written, and the exit code\n"
            "is then 1.\n"
            "Pretrained models: HF model directories and hf:ORG/NAME@REV (ordered by the stepN\n"
            "of the name), or hf:ORG/NAME@* = every revision in the local HF cache in training\n"
            "order (stage, then step; main last; revisions without a step listed and skipped).\n"
            "They need --tokens; --seq-len defaults to 512 (the paper's protocol).\n"
            "\n"
            "%s"
            "  --eval-batches N    validation-loss batches of %d x T tokens (default 8; 0 = none;\n"
            "                      always NaN with --tokens, which has no validation split)\n"
            "output:\n"
            "  --out TRAJ.h5       trajectory file (required); rewritten after every checkpoint\n",
            lmd_evalopts_help(), LMD_MEASURE_CHUNK);
}

/* One checkpoint of the series. */
typedef struct {
    char *path;
    int ok; /* still in the series (probe and measurement succeeded so far) */
    char error[LMD_ERR_LEN];
    gpt_config cfg;
    int64_t step, tokens;  /* tokens = -1 when unknown */
    const char *step_from; /* "attribute" or "name" */
    int hf;                /* a pretrained model (spec for lmd_anymodel_open) */
    int order;             /* position in an hf:ORG/NAME@* series (-1: sort by step) */
    char model_type[32];
} track_item;

/* Parses the first "step<digits>" of a file name that starts the name or follows a
 * non-letter (so "laststep5" does not count), and "tokens<digits>[KMBT]". Returns 1 if a
 * step was found. */
static int parse_name(const char *path, int64_t *step, int64_t *tokens, int *has_tokens) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int found = 0;
    *has_tokens = 0;
    for (const char *p = base; *p; p++) {
        if (p != base && isalpha((unsigned char)p[-1])) continue;
        if (!found && !strncmp(p, "step", 4) && isdigit((unsigned char)p[4])) {
            char *end;
            errno = 0;
            long long v = strtoll(p + 4, &end, 10);
            if (!errno) {
                *step = v;
                found = 1;
            }
        } else if (!*has_tokens && !strncmp(p, "tokens", 6) && isdigit((unsigned char)p[6])) {
            char *end;
            errno = 0;
            long long v = strtoll(p + 6, &end, 10);
            long long mul = 1;
            switch (*end) {
            case 'K':
            case 'k': mul = 1000LL; break;
            case 'M': mul = 1000000LL; break;
            case 'B':
            case 'G': mul = 1000000000LL; break;
            case 'T': mul = 1000000000000LL; break;
            default: break;
            }
            if (!errno && v <= LLONG_MAX / mul) {
                *tokens = v * mul;
                *has_tokens = 1;
            }
        }
    }
    return found;
}

/* config.json of a pretrained model, in gpt_config's fields for the same-model check */
static void probe_hf(track_item *it) {
    lmd_err err = {{0}};
    char dir[4096], cj[4200];
    hf_arch_config c;
    memset(&c, 0, sizeof c);
    if (hub_resolve(it->path, dir, sizeof dir, &err) ||
        (snprintf(cj, sizeof cj, "%s/config.json", dir), hub_config_load(cj, &c, &err))) {
        lmd_err_prefix(&err, "%s", it->path);
        memcpy(it->error, err.msg, sizeof it->error);
        return;
    }
    it->cfg.vocab_size = c.vocab_size;
    it->cfg.n_ctx = c.max_position;
    it->cfg.n_layer = c.n_layer;
    it->cfg.n_embd = c.hidden_size;
    it->cfg.n_head = c.n_head;
    it->cfg.mlp_dim = c.intermediate_size;
    snprintf(it->model_type, sizeof it->model_type, "%s", c.model_type);
    hf_arch_config_free(&c);
    if (it->order < 0) {
        int64_t st = 0, tk = 0;
        int ht = 0;
        if (!parse_name(it->path, &st, &tk, &ht)) {
            snprintf(it->error, sizeof it->error,
                     "%s: no stepN in the name or revision, so its "
                     "place in the series is unknown",
                     it->path);
            return;
        }
        it->step = st;
        it->tokens = ht ? tk : -1;
        it->step_from = "name";
    }
    it->ok = 1;
}

/* Config, step and tokens of one file without loading its parameters. */
static void probe(track_item *it) {
    if (it->hf) {
        probe_hf(it);
        return;
    }
    lmd_err err = {{0}};
    if (lmd_ckpt_read_config(it->path, &it->cfg, &err)) {
        snprintf(it->error, sizeof it->error, "%s", err.msg);
        return;
    }
    hid_t f = lmd_h5_open(it->path, &err);
    if (f < 0) {
        snprintf(it->error, sizeof it->error, "%s", err.msg);
        return;
    }
    int64_t astep = 0, atok = 0, nstep = 0, ntok = 0;
    int hs = lmd_h5_attr_get_opt_i64(f, "/", "step", &astep, it->path, &err);
    int ht = hs < 0 ? 0 : lmd_h5_attr_get_opt_i64(f, "/", "tokens", &atok, it->path, &err);
    H5Fclose(f);
    if (hs < 0 || ht < 0) {
        snprintf(it->error, sizeof it->error, "%s", err.msg);
        return;
    }
    int hnt = 0;
    int hns = parse_name(it->path, &nstep, &ntok, &hnt);
    if (hs) {
        it->step = astep;
        it->step_from = "attribute";
        if (hns && nstep != astep)
            fprintf(stderr,
                    "lmdisp track: note: %s has step attribute %lld but step%lld in its name; "
                    "using the attribute\n",
                    it->path, (long long)astep, (long long)nstep);
    } else if (hns) {
        it->step = nstep;
        it->step_from = "name";
    } else {
        snprintf(it->error, sizeof it->error,
                 "%s: no root attribute `step` and no stepN in the file name, so its place in "
                 "the series is unknown",
                 it->path);
        return;
    }
    it->tokens = ht ? atok : hnt ? ntok : -1;
    it->ok = 1;
}

static int cmp_item(const void *pa, const void *pb) {
    const track_item *a = pa, *b = pb;
    if (a->ok != b->ok) return a->ok ? -1 : 1; /* failures last, in command-line order */
    if (!a->ok) return 0;
    if (a->order >= 0 && b->order >= 0) return a->order < b->order ? -1 : a->order > b->order;
    if (a->step != b->step) return a->step < b->step ? -1 : 1;
    if (a->tokens != b->tokens) return a->tokens < b->tokens ? -1 : 1;
    return strcmp(a->path, b->path);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

static void add_item(track_item **items, int *n, int *cap, const char *path) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        track_item *ni = realloc(*items, (size_t)*cap * sizeof **items);
        if (!ni) lmd_die("out of memory collecting checkpoints");
        *items = ni;
    }
    track_item *it = &(*items)[(*n)++];
    memset(it, 0, sizeof *it);
    it->path = lmd_strdup(path);
    if (!it->path) lmd_die("out of memory collecting checkpoints");
    it->tokens = -1;
    it->order = -1;
}

/* Every *.h5 of dir (sorted by name) except skip (the output file). Returns 0 or -1. */
static int add_dir(track_item **items, int *n, int *cap, const char *dir, const char *skip_real) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "lmdisp track: cannot read directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    int k = 0, kc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".h5")) continue;
        if (k == kc) {
            kc = kc ? 2 * kc : 16;
            char **nn = realloc(names, (size_t)kc * sizeof *names);
            if (!nn) lmd_die("out of memory listing %s", dir);
            names = nn;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[k] = lmd_calloc(len, 1);
        snprintf(names[k], len, "%s/%s", dir, e->d_name);
        k++;
    }
    closedir(d);
    if (names) qsort(names, (size_t)k, sizeof *names, cmp_str);
    int added = 0;
    for (int i = 0; i < k; i++) {
        char *real = realpath(names[i], NULL);
        int is_out = real && skip_real && !strcmp(real, skip_real);
        free(real);
        if (!is_out) {
            add_item(items, n, cap, names[i]);
            added++;
        }
        free(names[i]);
    }
    free(names);
    if (added == 0) {
        fprintf(stderr, "lmdisp track: directory %s holds no *.h5 checkpoints\n", dir);
        return -1;
    }
    return 0;
}

static int same_config(const gpt_config *a, const gpt_config *b) {
    return a->vocab_size == b->vocab_size && a->n_ctx == b->n_ctx && a->n_layer == b->n_layer &&
           a->n_embd == b->n_embd && a->n_head == b->n_head && a->mlp_dim == b->mlp_dim;
}

static void fmt_config(char *buf, size_t n, const gpt_config *c) {
    snprintf(buf, n, "vocab %d, n_ctx %d, n_layer %d, n_embd %d, n_head %d, mlp_dim %d",
             c->vocab_size, c->n_ctx, c->n_layer, c->n_embd, c->n_head, c->mlp_dim);
}

int cmd_track(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "track", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return 0;
    }
    const char *out = lmd_args_str(&a, "out");
    int eval_batches = 8;
    lmd_args_int(&a, "eval-batches", &eval_batches, 0, 1000000);
    lmd_evalopts eo;
    lmd_evalopts_parse(&a, &eo);
    const char **pos = lmd_calloc((size_t)argc + 1, sizeof *pos);
    int npos = lmd_args_positional(&a, pos, argc);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    if (bad || !out || npos < 1) {
        if (!bad) {
            fprintf(stderr, "lmdisp track: %s (see lmdisp track --help)\n",
                    !out ? "--out TRAJ.h5 is required" : "no checkpoints or directories given");
        }
        free(pos);
        return 2;
    }
    gpt_set_threads(eo.threads);

    // collect: files as given, directories expanded; the output file itself is never input
    char *out_real = realpath(out, NULL);
    track_item *items = NULL;
    int n = 0, cap = 0, status = 0;
    for (int i = 0; i < npos && status == 0; i++) {
        struct stat sb;
        size_t pl = strlen(pos[i]);
        if (!strncmp(pos[i], "hf:", 3) && pl > 2 && !strcmp(pos[i] + pl - 2, "@*")) {
            hub_revision *revs = NULL;
            int nr = 0;
            char *skipped = NULL;
            lmd_err e = {{0}};
            if (hub_list_series(pos[i], &revs, &nr, &skipped, &e)) {
                fprintf(stderr, "lmdisp track: %s\n", e.msg);
                status = 2;
                break;
            }
            /* one line per revision, each saying it is skipped */
            for (char *line = skipped, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next) *next++ = 0;
                if (*line)
                    fprintf(stderr,
                            "lmdisp track: %s: skipped revision %s (no step in its "
                            "name)\n",
                            pos[i], line);
            }
            for (int r = 0; r < nr; r++) {
                add_item(&items, &n, &cap, revs[r].spec);
                track_item *it = &items[n - 1];
                it->hf = 1;
                it->order = r;
                it->step = revs[r].step;
                it->step_from = "revision";
                int64_t st = 0, tk = 0;
                int ht = 0;
                parse_name(revs[r].name, &st, &tk, &ht);
                if (ht) it->tokens = tk;
            }
            if (nr == 0) {
                fprintf(stderr, "lmdisp track: %s: no revision with a step in the cache\n", pos[i]);
                status = 2;
            }
            free(revs);
            free(skipped);
        } else if (hub_is_model_form(pos[i])) {
            add_item(&items, &n, &cap, pos[i]);
            items[n - 1].hf = 1;
        } else if (stat(pos[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (add_dir(&items, &n, &cap, pos[i], out_real)) status = 2;
        } else {
            add_item(&items, &n, &cap, pos[i]);
        }
    }
    free(pos);
    free(out_real);
    if (status) goto cleanup;

    for (int i = 0; i < n; i++) probe(&items[i]);
    // one series, one model: compare every readable config with the first readable one
    int ref = -1, mismatch = 0;
    for (int i = 0; i < n; i++) {
        if (!items[i].ok) continue;
        if (ref < 0) {
            ref = i;
            continue;
        }
        if (items[i].hf != items[ref].hf) {
            fprintf(stderr, "lmdisp track: %s is %s but %s is not: one series holds one kind\n",
                    items[i].path, items[i].hf ? "a pretrained model" : "an lmdisp checkpoint",
                    items[ref].path);
            mismatch = 1;
        } else if (!same_config(&items[i].cfg, &items[ref].cfg) ||
                   strcmp(items[i].model_type, items[ref].model_type)) {
            char c1[200], c2[200];
            fmt_config(c1, sizeof c1, &items[ref].cfg);
            fmt_config(c2, sizeof c2, &items[i].cfg);
            fprintf(stderr, "lmdisp track: %s has config (%s) but %s has (%s)\n", items[i].path, c2,
                    items[ref].path, c1);
            mismatch = 1;
        }
    }
    if (mismatch) {
        fprintf(stderr, "lmdisp track: checkpoints with different model configs cannot form one "
                        "trajectory; track each run separately\n");
        status = 2;
        goto cleanup;
    }
    qsort(items, (size_t)n, sizeof *items, cmp_item);
    int n_ok = 0;
    for (int i = 0; i < n; i++) n_ok += items[i].ok;
    for (int i = 0; i < n; i++)
        if (!items[i].ok) fprintf(stderr, "lmdisp track: skipping: %s\n", items[i].error);
    if (n_ok == 0) {
        fprintf(stderr,
                "lmdisp track: no readable checkpoint among the %d given; nothing "
                "written\n",
                n);
        status = 1;
        goto cleanup;
    }
    for (int i = 1; i < n_ok; i++)
        if (items[i].step == items[i - 1].step && items[i].order < 0)
            fprintf(stderr, "lmdisp track: note: %s and %s both have step %lld\n",
                    items[i - 1].path, items[i].path, (long long)items[i].step);

    lmd_err err = {{0}};
    lmd_evalset es;
    const int hf = items[0].hf;
    int32_t *hf_tok = NULL;
    if (hf) {
        /* pretrained: windows of the token file, 512 tokens by default */
        memset(&es, 0, sizeof es);
        lmd_anymodel facts;
        memset(&facts, 0, sizeof facts);
        facts.vocab_size = items[0].cfg.vocab_size;
        facts.max_T = !strcmp(items[0].model_type, "gpt2") ? items[0].cfg.n_ctx : 0;
        int T = eo.T;
        lmd_paper_sampling ps = {eo.n_seq_given ? eo.n_seq : LMD_PAPER_SEQUENCES, eo.T,
                                 eo.min_words, (uint64_t)eo.seed};
        size_t *starts = NULL, n_docs = 0;
        int erc =
            eo.data ? lmd_anymodel_eval_data(&facts, eo.data, &ps, &hf_tok, &starts, &n_docs, &err)
            : eo.sampling_given
                ? lmd_errf(&err, "--min-words and --seed set the paper's sampling of "
                                 "--data tok:TOKENIZER:PATH; --tokens takes the first windows")
                : lmd_anymodel_eval_tokens(&facts, eo.tokens, eo.n_seq, &T, &hf_tok, &err);
        free(starts);
        if (eo.data) {
            T = ps.T;
            eo.n_seq = ps.n_seq;
        }
        if (erc) {
            fprintf(stderr, "lmdisp track: %s\n", err.msg);
            status = 2;
            goto cleanup;
        }
        es.n_seq = eo.n_seq;
        es.T = T;
        es.kind = eo.data ? "paper_sampling" : "tokens";
        es.val_fraction = NAN;
        snprintf(es.source, sizeof es.source, "%s", eo.data ? eo.data : eo.tokens);
    } else if (eo.sampling_given) {
        fprintf(stderr, "lmdisp track: --min-words and --seed set the paper's sampling, for "
                        "pretrained models on --data tok:; lmdisp checkpoints are measured on "
                        "the first windows of their data's validation split\n");
        status = 2;
        goto cleanup;
    } else if (lmd_evalset_load(&es, &eo, &items[0].cfg, &err)) {
        fprintf(stderr, "lmdisp track: %s\n", err.msg);
        status = 2;
        goto cleanup;
    }
    lmd_traj_meta meta = {.data_source = es.source,
                          .eval_set = es.kind,
                          .val_fraction = es.val_fraction,
                          .eval_batches = es.val.n ? eval_batches : 0,
                          .eval_batch_size = LMD_MEASURE_CHUNK,
                          .lmdisp_version = LMDISP_VERSION};
    if (isnan(es.val_fraction))
        fprintf(stderr,
                "lmdisp track: %d checkpoints; evaluation set: first %d windows of %d "
                "tokens of %s (no validation loss)\n",
                n_ok, es.n_seq, es.T, es.source);
    else
        fprintf(stderr,
                "lmdisp track: %d checkpoints; evaluation set: first %d windows of %d "
                "tokens of the validation split of %s; validation loss on %d batches "
                "of %d x %d\n",
                n_ok, es.n_seq, es.T, es.source, eval_batches, LMD_MEASURE_CHUNK, es.T);

    lmd_traj_row *rows = lmd_calloc((size_t)n_ok, sizeof *rows);
    int K = 0, written = 0;
    double t_all = lmd_now();
    for (int i = 0; i < n_ok; i++) {
        track_item *it = &items[i];
        double t0 = lmd_now();
        if (hf) {
            lmd_anymodel am;
            lmd_traj_row *r = &rows[K];
            int frc = lmd_anymodel_open(&am, it->path, &err);
            if (!frc) {
                frc = lmd_anymodel_measure(&am, hf_tok, es.n_seq, es.T, eo.bins, 0,
                                           eo.measure_thread, "lmdisp track", &r->geom, &err);
                lmd_anymodel_close(&am);
            }
            if (frc) {
                snprintf(it->error, sizeof it->error, "%s", err.msg);
                it->ok = 0;
                fprintf(stderr, "[%d/%d] %s: FAILED, skipping: %s\n", i + 1, n_ok, it->path,
                        err.msg);
                continue;
            }
            r->checkpoint = it->path;
            r->step = it->step;
            r->tokens = it->tokens;
            r->val_loss = NAN;
            K++;
            int L = r->geom.n_layers - 1;
            double el = lmd_now() - t_all;
            fprintf(stderr,
                    "[%d/%d] step %lld (%s): last-layer cossim %.4f, spearman %.3f  "
                    "(%.2f s; ETA %.0f s)\n",
                    i + 1, n_ok, (long long)it->step, it->path, r->geom.layer_mean[L],
                    r->geom.spearman, lmd_now() - t0, el / (i + 1) * (n_ok - i - 1));
            if (lmd_traj_write(out, &meta, rows, K, &err)) {
                fprintf(stderr, "lmdisp track: %s\n", err.msg);
                status = 1;
                break;
            }
            written = K;
            continue;
        }
        gpt_model m;
        if (lmd_ckpt_load(it->path, &m, NULL, &err)) {
            snprintf(it->error, sizeof it->error, "%s", err.msg);
            it->ok = 0;
            fprintf(stderr, "[%d/%d] step %lld: FAILED, skipping: %s\n", i + 1, n_ok,
                    (long long)it->step, err.msg);
            continue;
        }
        lmd_traj_row *r = &rows[K];
        if (lmd_measure_model(&m, es.inputs, es.n_seq, es.T, eo.bins, LMD_MEASURE_CHUNK, &r->geom,
                              &err)) {
            lmd_err_prefix(&err, "%s", it->path);
            memcpy(it->error, err.msg, sizeof it->error);
            it->ok = 0;
            fprintf(stderr, "[%d/%d] step %lld: FAILED, skipping: %s\n", i + 1, n_ok,
                    (long long)it->step, it->error);
            gpt_free(&m);
            continue;
        }
        r->checkpoint = it->path;
        r->step = it->step;
        r->tokens = it->tokens;
        r->val_loss = es.val.n && eval_batches > 0
                          ? lmd_eval_loss(&m, es.val, LMD_MEASURE_CHUNK, es.T, eval_batches)
                          : NAN;
        gpt_free(&m);
        K++;
        int L = r->geom.n_layers - 1;
        fprintf(stderr,
                "[%d/%d] step %lld (%s): last-layer cossim %.4f, spearman %.3f, val loss "
                "%.4f  (%.2f s; ETA %.0f s)\n",
                i + 1, n_ok, (long long)it->step, it->path, r->geom.layer_mean[L], r->geom.spearman,
                r->val_loss, lmd_now() - t0, (lmd_now() - t_all) / (i + 1) * (n_ok - i - 1));
        // rewritten after every checkpoint so a long series interrupted midway keeps its rows
        if (lmd_traj_write(out, &meta, rows, K, &err)) {
            fprintf(stderr, "lmdisp track: %s\n", err.msg);
            status = 1;
            break;
        }
        written = K;
    }

    if (K > 0 && written == K) {
        const int L = rows[0].geom.n_layers - 1;
        printf("condensation trajectory: %d checkpoints -> %s (%.1f s)\n", K, out,
               lmd_now() - t_all);
        printf("  evaluation set: %d windows x %d tokens of %s%s; last layer = hidden state %d\n",
               es.n_seq, es.T, isnan(es.val_fraction) ? "" : "the validation split of ", es.source,
               L);
        printf("%10s %14s %9s %12s %12s %9s %9s\n", "step", "tokens", "val loss", "last cossim",
               "last offdiag", "spearman", "kendall");
        for (int k = 0; k < K; k++) {
            const lmd_traj_row *r = &rows[k];
            printf("%10lld %14lld %9.4f %12.6f %12.6f %9.4f %9.4f\n", (long long)r->step,
                   (long long)r->tokens, r->val_loss, r->geom.layer_mean[L],
                   r->geom.offdiag_mean[L], r->geom.spearman, r->geom.kendall);
        }
    } else if (K == 0 && status == 0) {
        fprintf(stderr, "lmdisp track: no checkpoint could be measured; nothing written\n");
        status = 1;
    }
    int n_failed = 0;
    for (int i = 0; i < n; i++) n_failed += !items[i].ok;
    if (n_failed) {
        fprintf(stderr, "lmdisp track: %d of %d checkpoints skipped:\n", n_failed, n);
        for (int i = 0; i < n; i++)
            if (!items[i].ok) fprintf(stderr, "  %s\n", items[i].error);
        if (status == 0) status = 1;
    }
    for (int k = 0; k < K; k++) lmd_geom_free(&rows[k].geom);
    free(rows);
    lmd_evalset_free(&es);
    free(hf_tok);
cleanup:
    for (int i = 0; i < n; i++) free(items[i].path);
    free(items);
    return status;
}
