/* specyaml.c — the spec parser's YAML node tree (libyaml events, capped), its error
 * collection ("PATH:LINE:COL: key 'k': message") and small string helpers. */
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
 * Small helpers
 * ------------------------------------------------------------------------------------------ */

void spec_sb_addf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) lmd_die("vsnprintf failed");
        if (b->p && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n <= (size_t)k) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) lmd_die("out of memory growing a string to %zu bytes", cap);
        b->p = np;
        b->cap = cap;
    }
}

/* Shortest "%.Ng" that reads back as exactly x, so 1e-3 and 0.001 print (and hash) alike. */
void spec_fmt_num(char *buf, size_t n, double x) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return;
    }
}

/* Edit distance (Levenshtein), for "did you mean" suggestions. Keys are short. */
int spec_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 1000;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

/* ------------------------------------------------------------------------------------------
 * YAML node tree, built from libyaml events. Aliases and anchors are rejected, and nodes,
 * depth and file size are capped, so a spec cannot make us allocate without bound.
 * ------------------------------------------------------------------------------------------ */

const char *spec_kind_name(const ynode *n) {
    if (!n) return "nothing";
    if (n->kind == YN_SEQ) return "a list";
    if (n->kind == YN_MAP) return "a mapping";
    if (n->plain && n->val[0] == '\0') return "an empty value";
    return n->plain ? "a scalar" : "a quoted string";
}

void spec_ynode_free(ynode *n) {
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) spec_ynode_free(n->kids[i]);
    free(n->kids);
    free(n->val);
    free(n);
}

static void ynode_add(ynode *parent, ynode *kid) {
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? 2 * parent->cap : 8;
        ynode **k = realloc(parent->kids, cap * sizeof *k);
        if (!k) lmd_die("out of memory building the YAML tree");
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
}

void spec_perr(pctx *c, const ynode *at, const char *key, const char *fmt, ...) {
    c->n_errors++;
    if (c->n_errors > LMD_SPEC_MAX_ERRORS) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = at ? at->line : 1, col = at ? at->col : 1;
    if (c->msgs.n) spec_sb_addf(&c->msgs, "\n");
    if (!c->path) /* one value outside a file (a command-line flag): the message alone */
        spec_sb_addf(&c->msgs, "%s", msg);
    else if (key)
        spec_sb_addf(&c->msgs, "%s:%d:%d: key '%s': %s", c->path, line, col, key, msg);
    else
        spec_sb_addf(&c->msgs, "%s:%d:%d: %s", c->path, line, col, msg);
}

char *spec_perr_take(pctx *c) {
    if (c->n_errors > LMD_SPEC_MAX_ERRORS)
        spec_sb_addf(&c->msgs, "\n%s: %d more errors not shown", c->path,
                     c->n_errors - LMD_SPEC_MAX_ERRORS);
    char *m = c->msgs.p;
    c->msgs = (sbuf){0};
    return m;
}

ynode *spec_build_tree(pctx *c, const char *text, size_t len) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        spec_perr(c, NULL, NULL, "cannot initialize the YAML parser (out of memory?)");
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    ynode *root = NULL;
    ynode *stack[LMD_SPEC_MAX_DEPTH + 1];
    int depth = 0, n_docs = 0, done = 0;
    size_t n_nodes = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            ynode at = {.line = (int)p.problem_mark.line + 1,
                        .col = (int)p.problem_mark.column + 1};
            spec_perr(c, &at, NULL, "YAML syntax error: %s%s%s", p.problem ? p.problem : "unknown",
                      p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        ynode at = {.line = (int)ev.start_mark.line + 1, .col = (int)ev.start_mark.column + 1};
        const unsigned char *anchor = NULL;
        ynode *node = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++n_docs > 1) {
                spec_perr(c, &at, NULL, "a spec is one YAML document; found a second one ('---')");
                done = 2;
            }
            break;
        case YAML_ALIAS_EVENT:
            spec_perr(c, &at, NULL,
                      "YAML aliases (*%s) are not allowed in specs: write the values out (aliases "
                      "can spec_expand a small file into an enormous document)",
                      (const char *)ev.data.alias.anchor);
            done = 2;
            break;
        case YAML_SCALAR_EVENT:
            anchor = ev.data.scalar.anchor;
            node = lmd_calloc(1, sizeof *node);
            node->kind = YN_SCALAR;
            node->val = lmd_strdup((const char *)ev.data.scalar.value);
            node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            anchor = ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                          : ev.data.mapping_start.anchor;
            node = lmd_calloc(1, sizeof *node);
            node->kind = ev.type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        default: break;
        }
        if (anchor) {
            spec_perr(
                c, &at, NULL,
                "YAML anchors (&%s) and aliases are not allowed in specs: write the values out",
                (const char *)anchor);
            spec_ynode_free(node);
            node = NULL;
            done = 2;
        }
        if (node) {
            node->line = at.line;
            node->col = at.col;
            if (++n_nodes > LMD_SPEC_MAX_NODES) {
                spec_perr(c, &at, NULL, "the spec has more than %d YAML nodes", LMD_SPEC_MAX_NODES);
                spec_ynode_free(node);
                done = 2;
            } else {
                if (depth > 0) {
                    ynode *parent = stack[depth - 1];
                    if (parent->kind == YN_MAP && parent->n % 2 == 0 && node->kind != YN_SCALAR) {
                        spec_perr(c, &at, NULL, "mapping keys must be plain names, not %s",
                                  spec_kind_name(node));
                        done = 2;
                    }
                    ynode_add(parent, node);
                } else if (!root) {
                    root = node;
                } else {
                    spec_ynode_free(node); /* cannot happen with one document; be safe */
                }
                if (node->kind != YN_SCALAR && !done) {
                    if (depth >= LMD_SPEC_MAX_DEPTH) {
                        spec_perr(c, &at, NULL,
                                  "the spec nests lists/mappings deeper than %d levels",
                                  LMD_SPEC_MAX_DEPTH);
                        done = 2;
                    } else {
                        stack[depth++] = node;
                    }
                }
            }
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (c->n_errors) {
        spec_ynode_free(root);
        return NULL;
    }
    return root;
}

/* The value of key in a mapping node (NULL when absent or not a mapping). */
const ynode *spec_map_get(const ynode *map, const char *key) {
    if (!map || map->kind != YN_MAP) return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2)
        if (!strcmp(map->kids[i]->val, key)) return map->kids[i + 1];
    return NULL;
}
