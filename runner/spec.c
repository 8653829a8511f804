/* spec.c — experiment spec: YAML -> node tree (libyaml events) -> typed settings -> grid
 * expansion -> resolved, validated cells with stable ids. See spec.h and docs/SPEC.md. This
 * file: the sections of the document, tracking schedules and the entry points; the YAML tree
 * and errors are in specyaml.c, the settings table in specsettings.c, grid expansion into cells
 * in speccells.c (shared types: spec_internal.h). */
#include "spec_internal.h"
#include "spec_kd.h"
#include "initmodel.h"

#include <errno.h>
#include <float.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "datasrc.h"
#include "dispersion.h"
#include "fileio.h"
#include "sha256.h"
#include "tokenizer.h"
#include "mctask.h"

/* ------------------------------------------------------------------------------------------
 * Sections
 * ------------------------------------------------------------------------------------------ */

static int resolve_axis_name(pctx *c, const ynode *k, const char *where);

/* distill.teacher: {cell: {SETTING: VALUE, ...}} or {id: ID}, kept as the lines of
 * lmd_cell_settings() a teacher must have (matched by spec_kd.c once the cells exist). */
static void parse_teacher_ref(spec_doc *doc, const ynode *v) {
    pctx *c = doc->c;
    lmd_teacher_ref *r = &doc->kd_ref;
    const char *key = "distill.teacher";
    r->line = v->line, r->col = v->col;
    const ynode *k = v->n == 2 ? v->kids[0] : NULL, *val = v->n == 2 ? v->kids[1] : NULL;
    if (!k || (strcmp(k->val, "cell") && strcmp(k->val, "id"))) {
        spec_perr(c, k ? k : v, key,
                  "expected a model (a string), {cell: {SETTING: VALUE, ...}} or "
                  "{id: CELL-ID}");
        return;
    }
    if (!strcmp(k->val, "id")) {
        if (val->kind != YN_SCALAR || !val->val[0])
            spec_perr(c, val, "distill.teacher.id",
                      "expected a cell id (or its unique prefix), got %s", spec_kind_name(val));
        else
            r->kind = 2, r->id = lmd_strdup(val->val);
        return;
    }
    if (val->kind != YN_MAP || val->n == 0) {
        spec_perr(c, val, "distill.teacher.cell",
                  "expected a mapping of settings to values, e.g. "
                  "{mlp_dim: 512, dispersion: off}, got %s",
                  spec_kind_name(val));
        return;
    }
    r->kind = 1;
    r->lines = lmd_calloc(val->n / 2 + 1, sizeof *r->lines);
    for (size_t i = 0; i + 1 < val->n; i += 2) {
        const ynode *kk = val->kids[i], *vv = val->kids[i + 1];
        int si = resolve_axis_name(c, kk, "distill.teacher.cell");
        if (si < 0) continue;
        const sdef *d = &SPEC_DEFS[si];
        /* settings that appear as such in lmd_cell_settings() */
        if (d->type == SET_STR || d->type == SET_BOOL || si == S_TOKENS || si == S_KD_ALPHA ||
            si == S_KD_TEMP || si == S_EVAL_SEQS || si == S_EVAL_SEQ_LEN) {
            spec_perr(c, kk, "distill.teacher.cell",
                      "'%s' cannot select a teacher cell (use model, "
                      "train, dispersion or data settings, seed, or {id: CELL-ID})",
                      d->name);
            continue;
        }
        sval tmp;
        if (spec_parse_value(c, si, "distill.teacher.cell", vv, &tmp)) continue;
        char x[64];
        if (d->type == SET_NUM)
            spec_fmt_num(x, sizeof x, tmp.d);
        else if (d->type == SET_INT)
            snprintf(x, sizeof x, "%lld", (long long)tmp.i);
        else
            snprintf(x, sizeof x, "%s", tmp.s);
        if (si == S_SEED) r->has_seed = 1;
        sbuf b = {0};
        spec_sb_addf(&b, "%s=%s", si == S_SEED ? "train.seed" : d->name, x);
        r->lines[r->n_lines++] = b.p;
    }
}

/* Parses `section:` (a mapping of settings "section.key"). */
static void parse_section(spec_doc *doc, const char *section, const ynode *map) {
    pctx *c = doc->c;
    if (map->kind != YN_MAP) {
        spec_perr(c, map, section, "expected a mapping, got %s", spec_kind_name(map));
        return;
    }
    size_t sl = strlen(section);
    for (int j = 0; j < N_SETTINGS; j++)
        if (!doc->section[j] && !strncmp(SPEC_DEFS[j].name, section, sl) &&
            SPEC_DEFS[j].name[sl] == '.')
            doc->section[j] = map;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const ynode *k = map->kids[i], *v = map->kids[i + 1];
        char dotted[160];
        snprintf(dotted, sizeof dotted, "%s.%s", section, k->val);
        if (!strcmp(section, "tracking") && !strcmp(k->val, "checkpoints")) {
            if (doc->track_explicit) {
                spec_perr(c, k, dotted, "duplicate key");
                continue;
            }
            doc->track_explicit = 1;
            doc->track_node = v;
            if (v->kind == YN_SCALAR && !strcmp(v->val, "log")) {
                doc->track = TRACK_LOG;
            } else if (v->kind == YN_SCALAR && !strcmp(v->val, "every")) {
                doc->track = TRACK_EVERY;
            } else if (v->kind == YN_SEQ) {
                doc->track = TRACK_LIST;
                doc->track_list = v;
                if (v->n == 0) spec_perr(c, v, dotted, "the list of checkpoint steps is empty");
                if (v->n > LMD_SPEC_MAX_TRACK)
                    spec_perr(c, v, dotted, "more than %d checkpoint steps", LMD_SPEC_MAX_TRACK);
                for (size_t j = 0; j < v->n; j++) {
                    sval tmp;
                    spec_parse_value(c, S_STEPS, dotted, v->kids[j], &tmp);
                }
            } else if (v->kind == YN_MAP) {
                /* checkpoints: {every: N} */
                const ynode *ev = spec_map_get(v, "every");
                if (!ev || v->n != 2) {
                    spec_perr(
                        c, v, dotted,
                        "expected 'log', 'every', a list of steps or {every: N}, got a mapping "
                        "with other keys");
                } else {
                    doc->track = TRACK_EVERY;
                    if (doc->base[S_EVERY].set)
                        spec_perr(c, ev, "tracking.every", "duplicate key");
                    else
                        spec_parse_value(c, S_EVERY, "tracking.checkpoints.every", ev,
                                         &doc->base[S_EVERY]);
                }
            } else {
                const char *cands[] = {"log", "every"};
                char sug[96] = "";
                if (v->kind == YN_SCALAR) spec_suggest(sug, sizeof sug, v->val, cands, 2);
                spec_perr(c, v, dotted,
                          "expected 'log', 'every', a list of steps or {every: N}, got %s%s%s%s",
                          v->kind == YN_SCALAR ? "'" : "",
                          v->kind == YN_SCALAR ? v->val : spec_kind_name(v),
                          v->kind == YN_SCALAR ? "'" : "", sug);
            }
            continue;
        }
        if (!strcmp(dotted, "distill.teacher") && v->kind == YN_MAP) {
            if (doc->kd_ref.kind || doc->base[S_KD_TEACHER].set)
                spec_perr(c, k, dotted, "duplicate key");
            else
                parse_teacher_ref(doc, v);
            continue;
        }
        if (!strcmp(section, "tracking") && !strcmp(k->val, "eval_tasks")) {
            if (doc->eval_tasks_node)
                spec_perr(c, k, dotted, "duplicate key");
            else if (v->kind != YN_SEQ || v->n == 0)
                spec_perr(c, v, dotted,
                          "expected a non-empty list of task files (JSON Lines of "
                          "{context, choices, gold})");
            else
                doc->eval_tasks_node = v;
            continue;
        }
        int si = spec_find_dotted(dotted);
        if (si < 0) {
            const char *cands[N_SETTINGS + 1];
            int nc = 0;
            for (int j = 0; j < N_SETTINGS; j++)
                if (!strncmp(SPEC_DEFS[j].name, section, sl) && SPEC_DEFS[j].name[sl] == '.')
                    cands[nc++] = SPEC_DEFS[j].name + sl + 1;
            if (!strcmp(section, "tracking")) cands[nc++] = "checkpoints";
            if (!strcmp(section, "tracking")) cands[nc++] = "eval_tasks";
            char sug[96];
            spec_suggest(sug, sizeof sug, k->val, cands, nc);
            spec_perr(c, k, dotted, "unknown key%s", sug);
            continue;
        }
        if (doc->base[si].set) {
            spec_perr(c, k, dotted, "duplicate key");
            continue;
        }
        spec_parse_value(c, si, dotted, v, &doc->base[si]);
    }
}

/* Resolves a grid:/zip: key to a setting: dotted name, its last component, or an alias. */
static int resolve_axis_name(pctx *c, const ynode *k, const char *where) {
    int si = spec_find_dotted(k->val);
    if (si < 0) {
        int matches[4], nm = 0;
        for (int j = 0; j < N_SETTINGS && nm < 4; j++)
            if (!strcmp(spec_last_component(SPEC_DEFS[j].name), k->val) ||
                (SPEC_DEFS[j].alias && !strcmp(SPEC_DEFS[j].alias, k->val)))
                matches[nm++] = j;
        if (nm > 1) {
            spec_perr(c, k, where, "'%s' is ambiguous: write '%s' or '%s'", k->val,
                      SPEC_DEFS[matches[0]].name, SPEC_DEFS[matches[1]].name);
            return -1;
        }
        if (nm == 1) si = matches[0];
    }
    if (si < 0) {
        const char *cands[3 * N_SETTINGS];
        int nc = 0;
        for (int j = 0; j < N_SETTINGS; j++) {
            if (!SPEC_DEFS[j].gridable) continue;
            cands[nc++] = SPEC_DEFS[j].name;
            cands[nc++] = spec_last_component(SPEC_DEFS[j].name);
            if (SPEC_DEFS[j].alias) cands[nc++] = SPEC_DEFS[j].alias;
        }
        char sug[96];
        spec_suggest(sug, sizeof sug, k->val, cands, nc);
        spec_perr(c, k, where, "unknown setting '%s' for a grid axis%s", k->val, sug);
        return -1;
    }
    if (!SPEC_DEFS[si].gridable) {
        spec_perr(c, k, where,
                  "'%s' cannot vary across cells (it is fixed for a whole study); set it in its "
                  "section instead",
                  SPEC_DEFS[si].name);
        return -1;
    }
    return si;
}

/* Parses one `axis: [values]` pair into *m. */
static int parse_axis_member(spec_doc *doc, const ynode *k, const ynode *v, const char *where,
                             axis_member *m) {
    pctx *c = doc->c;
    char key[200];
    snprintf(key, sizeof key, "%s.%s", where, k->val);
    int si = resolve_axis_name(c, k, key);
    if (si < 0) return -1;
    if (v->kind != YN_SEQ) {
        spec_perr(c, v, key, "expected a list of values, got %s", spec_kind_name(v));
        return -1;
    }
    if (v->n == 0) {
        spec_perr(c, v, key, "empty grid axis: give at least one value");
        return -1;
    }
    m->setting = si;
    m->key = k;
    m->key_text = k->val;
    m->n = (int)v->n;
    m->vals = lmd_calloc(v->n, sizeof *m->vals);
    int bad = 0;
    for (size_t j = 0; j < v->n; j++)
        if (spec_parse_value(c, si, key, v->kids[j], &m->vals[j])) bad = 1;
    return bad ? -1 : 0;
}

/* Registers the setting of a new axis member; rejects a setting that is varied twice or that
 * is also fixed in its section (which of the two would win is a trap). */
static int claim_setting(spec_doc *doc, const axis_member *m, int axis, const char *key) {
    pctx *c = doc->c;
    int si = m->setting;
    if (doc->axis_of[si] >= 0) {
        spec_perr(c, m->key, key, "'%s' is already a grid axis (as '%s' at line %d)",
                  SPEC_DEFS[si].name, doc->axis_key[si], doc->axis_line[si]);
        return -1;
    }
    if (doc->base[si].set) {
        spec_perr(c, m->key, key,
                  "'%s' is both a grid axis and fixed at line %d; a setting is either fixed or "
                  "varied",
                  SPEC_DEFS[si].name, doc->base[si].src->line);
        return -1;
    }
    doc->axis_of[si] = axis;
    doc->axis_key[si] = m->key_text;
    doc->axis_line[si] = m->key->line;
    return 0;
}

static void add_axis(spec_doc *doc, paxis ax) {
    paxis *na = realloc(doc->axes, (size_t)(doc->n_axes + 1) * sizeof *na);
    if (!na) lmd_die("out of memory");
    doc->axes = na;
    doc->axes[doc->n_axes++] = ax;
}

static void parse_grid(spec_doc *doc, const ynode *g) {
    pctx *c = doc->c;
    doc->grid_node = g;
    if (g->kind != YN_MAP) {
        spec_perr(c, g, "grid", "expected a mapping of setting -> list of values, got %s",
                  spec_kind_name(g));
        return;
    }
    for (size_t i = 0; i + 1 < g->n; i += 2) {
        paxis ax = {0};
        ax.m = lmd_calloc(1, sizeof *ax.m);
        ax.n_members = 1;
        ax.node = g->kids[i];
        char key[200];
        snprintf(key, sizeof key, "grid.%s", g->kids[i]->val);
        if (parse_axis_member(doc, g->kids[i], g->kids[i + 1], "grid", ax.m) ||
            claim_setting(doc, ax.m, doc->n_axes, key)) {
            free(ax.m->vals);
            free(ax.m);
            continue;
        }
        ax.len = ax.m->n;
        add_axis(doc, ax);
    }
}

static void parse_zip(spec_doc *doc, const ynode *z) {
    pctx *c = doc->c;
    if (z->kind != YN_SEQ) {
        spec_perr(c, z, "zip",
                  "expected a list of mappings (groups of axes that advance together), "
                  "got %s",
                  spec_kind_name(z));
        return;
    }
    for (size_t g = 0; g < z->n; g++) {
        const ynode *grp = z->kids[g];
        char where[32];
        snprintf(where, sizeof where, "zip[%zu]", g);
        if (grp->kind != YN_MAP || grp->n == 0) {
            spec_perr(c, grp, where, "expected a mapping of setting -> list of values, got %s",
                      grp->kind == YN_MAP ? "an empty mapping" : spec_kind_name(grp));
            continue;
        }
        paxis ax = {0};
        ax.m = lmd_calloc(grp->n / 2, sizeof *ax.m);
        ax.node = grp;
        int bad = 0;
        for (size_t i = 0; i + 1 < grp->n; i += 2) {
            axis_member *m = &ax.m[ax.n_members];
            char key[200];
            snprintf(key, sizeof key, "%s.%s", where, grp->kids[i]->val);
            if (parse_axis_member(doc, grp->kids[i], grp->kids[i + 1], where, m)) {
                free(m->vals);
                memset(m, 0, sizeof *m);
                bad = 1;
                continue;
            }
            ax.n_members++;
            if (claim_setting(doc, m, doc->n_axes, key)) {
                bad = 1;
                continue;
            }
            if (ax.n_members > 1 && m->n != ax.m[0].n) {
                spec_perr(c, grp->kids[i + 1], key,
                          "zip length mismatch: '%s' has %d values but '%s' has %d; the axes of a "
                          "zip group advance together",
                          m->key_text, m->n, ax.m[0].key_text, ax.m[0].n);
                bad = 1;
            }
        }
        if (bad) {
            /* Settings claimed by this group stay claimed: errors are being reported anyway. */
            for (int j = 0; j < ax.n_members; j++) free(ax.m[j].vals);
            free(ax.m);
            continue;
        }
        ax.len = ax.m[0].n;
        add_axis(doc, ax);
    }
}

static void parse_resources(spec_doc *doc, const ynode *r) { parse_section(doc, "resources", r); }

static void parse_slurm(spec_doc *doc, const ynode *s, lmd_spec *out) {
    pctx *c = doc->c;
    if (s->kind != YN_MAP) {
        spec_perr(c, s, "slurm", "expected a mapping, got %s", spec_kind_name(s));
        return;
    }
    if (s->n / 2 > 256) {
        spec_perr(c, s, "slurm", "more than 256 entries");
        return;
    }
    out->slurm = lmd_calloc(s->n / 2 + 1, sizeof *out->slurm);
    for (size_t i = 0; i + 1 < s->n; i += 2) {
        const ynode *k = s->kids[i], *v = s->kids[i + 1];
        char key[160];
        snprintf(key, sizeof key, "slurm.%s", k->val);
        int dup = 0;
        for (size_t j = 0; j < i; j += 2)
            if (!strcmp(s->kids[j]->val, k->val)) dup = 1;
        if (dup) {
            spec_perr(c, k, key, "duplicate key");
            continue;
        }
        lmd_slurm_kv kv = {0};
        kv.line = v->line;
        kv.column = v->col;
        if (v->kind == YN_SCALAR) {
            if (v->val[0] == '\0') {
                spec_perr(c, v, key, "expected a string, an integer or a list of them, got %s",
                          spec_kind_name(v));
                continue;
            }
            kv.value = lmd_strdup(v->val);
        } else if (v->kind == YN_SEQ) {
            int bad = 0;
            for (size_t j = 0; j < v->n; j++)
                if (v->kids[j]->kind != YN_SCALAR) {
                    spec_perr(c, v->kids[j], key, "list items must be strings or integers, got %s",
                              spec_kind_name(v->kids[j]));
                    bad = 1;
                }
            if (bad) continue;
            kv.items = lmd_calloc(v->n + 1, sizeof *kv.items);
            for (size_t j = 0; j < v->n; j++) kv.items[j] = lmd_strdup(v->kids[j]->val);
            kv.n_items = (int)v->n;
        } else {
            spec_perr(c, v, key, "expected a string, an integer or a list of them, got %s",
                      spec_kind_name(v));
            continue;
        }
        kv.key = lmd_strdup(k->val);
        out->slurm[out->n_slurm++] = kv;
    }
}

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

static const char *const TOP_KEYS[] = {"name",  "seed",       "data",     "model",
                                       "train", "dispersion", "tracking", "grid",
                                       "zip",   "resources",  "slurm",    "distill"};
#define N_TOP_KEYS ((int)(sizeof TOP_KEYS / sizeof TOP_KEYS[0]))

static void parse_document(spec_doc *doc, const ynode *root, lmd_spec *out) {
    pctx *c = doc->c;
    if (!root || (root->kind == YN_SCALAR && root->val[0] == '\0')) {
        spec_perr(c, root, NULL, "the spec is empty");
        return;
    }
    if (root->kind != YN_MAP) {
        spec_perr(c, root, NULL,
                  "a spec is a mapping of sections (name, data, model, train, grid, "
                  "...), got %s",
                  spec_kind_name(root));
        return;
    }
    int seen[N_TOP_KEYS] = {0};
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const ynode *k = root->kids[i], *v = root->kids[i + 1];
        int t = -1;
        for (int j = 0; j < N_TOP_KEYS; j++)
            if (!strcmp(k->val, TOP_KEYS[j])) t = j;
        if (t < 0) {
            char sug[96];
            spec_suggest(sug, sizeof sug, k->val, TOP_KEYS, N_TOP_KEYS);
            spec_perr(c, k, k->val, "unknown key%s", sug);
            continue;
        }
        if (seen[t]++) {
            spec_perr(c, k, k->val, "duplicate key");
            continue;
        }
        const char *key = TOP_KEYS[t];
        if (!strcmp(key, "name")) {
            if (v->kind != YN_SCALAR || v->val[0] == '\0') {
                spec_perr(c, v, "name", "expected a string, got %s", spec_kind_name(v));
            } else if (!valid_name(v->val)) {
                spec_perr(c, v, "name", "'%s' must match [A-Za-z0-9_.-]+ (it names directories)",
                          v->val);
            } else if (!strcmp(v->val, ".") || !strcmp(v->val, "..")) {
                /* results/<name> would be results/ itself or the current directory */
                spec_perr(c, v, "name",
                          "'%s' must be a directory name, not '.' or '..' (the default "
                          "output directory is results/<name>)",
                          v->val);
            } else {
                doc->name = v->val;
                doc->name_node = v;
            }
        } else if (!strcmp(key, "seed")) {
            spec_parse_value(c, S_SEED, "seed", v, &doc->base[S_SEED]);
        } else if (!strcmp(key, "grid")) {
            parse_grid(doc, v);
        } else if (!strcmp(key, "zip")) {
            parse_zip(doc, v);
        } else if (!strcmp(key, "resources")) {
            parse_resources(doc, v);
        } else if (!strcmp(key, "slurm")) {
            doc->slurm_node = v;
            parse_slurm(doc, v, out);
        } else {
            parse_section(doc, key, v);
        }
    }
    if (!doc->name && !seen[0])
        spec_perr(c, root, "name", "missing required key (the study's name)");
    if (!doc->grid_node && c->n_errors == 0)
        spec_perr(c, root, "grid", "missing: a spec needs a grid (at least the mlp_dim axis)");
}

/* ------------------------------------------------------------------------------------------
 * Tracking schedules
 * ------------------------------------------------------------------------------------------ */

int64_t *spec_i64_alloc(size_t n) { return lmd_calloc(n ? n : 1, sizeof(int64_t)); }

int64_t lmd_track_first(int64_t steps, double warmup_ratio) {
    /* the update of step 0 uses lr(0) = 0 when there is a warmup (gpt_lr_at), so the weights
     * after step 1 are the initialization's, bit for bit: nothing to measure there */
    return (int64_t)floor(warmup_ratio * (double)steps) >= 1 ? 2 : 1;
}

int lmd_track_log(int64_t steps, int64_t first, int64_t **out) {
    int64_t *v = spec_i64_alloc(66);
    int n = 0;
    v[n++] = 0;
    for (int64_t p = 1; p < steps; p *= 2)
        if (p >= first) v[n++] = p;
    if (steps > 0) v[n++] = steps;
    *out = v;
    return n;
}

int lmd_track_log_points(int64_t steps, int points, int64_t first, int64_t **out) {
    if (first < 1) first = 1;
    if (first > steps) first = steps > 0 ? steps : 1;
    if (points < 2) points = 2;
    if ((int64_t)points > steps - first + 2) points = (int)(steps - first + 2);
    if (points < 1) points = 1;
    int64_t *v = spec_i64_alloc((size_t)points);
    int n = 0;
    v[n++] = 0;
    int k = points - 1; /* points in [first, steps] */
    int64_t prev = first - 1;
    for (int i = 0; i < k; i++) {
        /* geometric target first * (steps/first)^(i/(k-1)); nudged up to stay distinct and
         * down to leave room for the remaining points, so exactly `points` distinct steps
         * come out */
        double t =
            k == 1 ? (double)steps
                   : (double)first * exp(log((double)steps / (double)first) * i / (double)(k - 1));
        int64_t s = (int64_t)llround(t);
        if (s <= prev) s = prev + 1;
        if (s > steps - (k - 1 - i)) s = steps - (k - 1 - i);
        v[n++] = s;
        prev = s;
    }
    *out = v;
    return n;
}

int lmd_track_every(int64_t steps, int64_t every, int64_t first, int64_t **out) {
    if (every < 1) every = 1;
    int64_t cnt = steps / every + 2;
    if (cnt > LMD_SPEC_MAX_TRACK + 2) cnt = LMD_SPEC_MAX_TRACK + 2;
    int64_t *v = spec_i64_alloc((size_t)cnt);
    int n = 0;
    for (int64_t s = 0; s <= steps && n < cnt - 1; s += every)
        if (s == 0 || s >= first) v[n++] = s;
    if (v[n - 1] != steps) v[n++] = steps;
    *out = v;
    return n;
}

/* ------------------------------------------------------------------------------------------
 * Public entry points
 * ------------------------------------------------------------------------------------------ */

void lmd_spec_free(lmd_spec *s) {
    if (!s) return;
    free(s->path);
    free(s->dir);
    free(s->name);
    free(s->text);
    for (int i = 0; i < s->n_eval_tasks; i++) free(s->eval_tasks[i]);
    free(s->eval_tasks);
    for (int i = 0; i < s->n_slurm; i++) {
        free(s->slurm[i].key);
        free(s->slurm[i].value);
        for (int j = 0; j < s->slurm[i].n_items; j++) free(s->slurm[i].items[j]);
        free(s->slurm[i].items);
    }
    free(s->slurm);
    for (int a = 0; a < s->n_axes; a++) free(s->axes[a].names);
    free(s->axes);
    for (size_t i = 0; i < s->n_cells; i++) spec_cell_free(&s->cells[i]);
    free(s->cells);
    memset(s, 0, sizeof *s);
}

/* Absolute directory of path (the directory part, or "." when none). */
static char *abs_dir_of(const char *path, lmd_err *err) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = lmd_strdup(".");
    else if (slash == path)
        dir = lmd_strdup("/");
    else {
        dir = lmd_calloc((size_t)(slash - path) + 1, 1);
        memcpy(dir, path, (size_t)(slash - path));
    }
    char *abs = realpath(dir, NULL);
    if (!abs) {
        lmd_errf(err, "%s: cannot resolve the spec's directory '%s': %s", path, dir,
                 strerror(errno));
        free(dir);
        return NULL;
    }
    free(dir);
    return abs;
}

/* tracking.eval_tasks: each file relative to the spec's directory, loaded once to check it
 * (its own FILE:LINE messages), names distinct; every cell needs data.tokenizer. */
static void parse_eval_tasks(spec_doc *doc, lmd_spec *s) {
    const ynode *v = doc->eval_tasks_node;
    pctx *c = doc->c;
    s->eval_tasks = lmd_calloc(v->n, sizeof *s->eval_tasks);
    char(*names)[128] = lmd_calloc(v->n, sizeof *names);
    for (size_t j = 0; j < v->n; j++) {
        const ynode *e = v->kids[j];
        if (e->kind != YN_SCALAR) {
            spec_perr(c, e, "tracking.eval_tasks", "expected a file name, got %s",
                      spec_kind_name(e));
            continue;
        }
        char *path = spec_path_join(s->dir, e->val);
        mc_task t;
        lmd_err te = {{0}};
        if (mc_task_load(&t, path, &te)) {
            spec_perr(c, e, "tracking.eval_tasks", "%s", te.msg);
            free(path);
            continue;
        }
        snprintf(names[j], sizeof names[j], "%s", t.name);
        mc_task_free(&t);
        for (size_t i = 0; i < j; i++)
            if (!strcmp(names[i], names[j]))
                spec_perr(c, e, "tracking.eval_tasks",
                          "task name '%s' (the file name) is given twice", names[j]);
        s->eval_tasks[s->n_eval_tasks++] = path;
    }
    free(names);
    for (size_t i = 0; i < s->n_cells && !c->n_errors; i++)
        if (!s->cells[i].data.tokenizer_resolved)
            spec_perr(c, v, "tracking.eval_tasks",
                      "needs data.tokenizer: the task text is encoded "
                      "with the tokenizer the model was trained with (cell %s has none)",
                      s->cells[i].id);
}

int lmd_spec_parse(lmd_spec *s, const char *text, size_t len, const char *display_path,
                   const char *base_dir, lmd_err *err) {
    memset(s, 0, sizeof *s);
    if (err) err->msg[0] = '\0';
    if (len > LMD_SPEC_MAX_BYTES)
        return lmd_errf(err, "%s: the spec is %zu bytes; specs are limited to %u bytes",
                        display_path, len, LMD_SPEC_MAX_BYTES);
    s->path = lmd_strdup(display_path);
    if (base_dir) {
        s->dir = realpath(base_dir, NULL);
        if (!s->dir) {
            lmd_errf(err, "%s: cannot resolve the base directory '%s': %s", display_path, base_dir,
                     strerror(errno));
            lmd_spec_free(s);
            return -1;
        }
    } else {
        s->dir = abs_dir_of(display_path, err);
        if (!s->dir) {
            lmd_spec_free(s);
            return -1;
        }
    }
    s->text = lmd_calloc(len + 1, 1);
    memcpy(s->text, text, len);
    s->text_len = len;
    lmd_sha256_hex(text, len, s->sha256);

    pctx c = {.path = display_path};
    spec_doc doc;
    memset(&doc, 0, sizeof doc);
    doc.c = &c;
    for (int i = 0; i < N_SETTINGS; i++) doc.axis_of[i] = -1;
    ynode *root = spec_build_tree(&c, s->text, len);
    doc.root = root;
    if (!c.n_errors) parse_document(&doc, root, s);
    if (!c.n_errors) spec_expand(&doc, s);
    if (!c.n_errors && doc.eval_tasks_node) parse_eval_tasks(&doc, s);
    if (!c.n_errors) {
        lmd_err kerr;
        if (lmd_spec_link_teachers(s, &doc.kd_ref, &kerr)) {
            c.n_errors++;
            spec_sb_addf(&c.msgs, "%s", kerr.msg);
        }
    }
    lmd_teacher_ref_free(&doc.kd_ref);
    if (!c.n_errors) {
        s->name = lmd_strdup(doc.name);
        s->ranks_per_model = (int)(doc.base[S_RANKS].set ? doc.base[S_RANKS].i : 1);
        s->threads_per_rank = (int)(doc.base[S_THREADS].set ? doc.base[S_THREADS].i : 1);
    }
    for (int a = 0; a < doc.n_axes; a++) {
        for (int j = 0; j < doc.axes[a].n_members; j++) free(doc.axes[a].m[j].vals);
        free(doc.axes[a].m);
    }
    free(doc.axes);
    spec_ynode_free(root);
    if (c.n_errors) {
        char *m = spec_perr_take(&c);
        if (err) snprintf(err->msg, sizeof err->msg, "%s", m ? m : "spec error");
        free(m);
        lmd_spec_free(s);
        return -1;
    }
    free(c.msgs.p);
    return 0;
}

int lmd_spec_load(lmd_spec *s, const char *path, lmd_err *err) {
    memset(s, 0, sizeof *s);
    char *buf = NULL;
    size_t n = 0;
    int rc = lmd_file_read(path, LMD_SPEC_MAX_BYTES, &buf, &n, err);
    if (rc == LMD_FILE_MISSING)
        return lmd_errf(err, "%s: cannot open the spec: %s", path, strerror(ENOENT));
    if (rc)
        return lmd_err_prefix(err, "cannot load the spec (specs are limited to %u bytes, 1 MiB)",
                              LMD_SPEC_MAX_BYTES);
    rc = lmd_spec_parse(s, buf, n, path, NULL, err);
    free(buf);
    return rc;
}

const lmd_cell *lmd_spec_find_cell(const lmd_spec *s, const char *id) {
    for (size_t i = 0; i < s->n_cells; i++)
        if (!strcmp(s->cells[i].id, id)) return &s->cells[i];
    return NULL;
}
