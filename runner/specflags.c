/* specflags.c — command flags, their help and --config files, typed by the spec's settings
 * table (specflags.h). */
#include "specflags.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dispersion.h"
#include "fileio.h"
#include "spec_internal.h"

struct lmd_flags_config {
    ynode *tree;
};

/* Stores a value parsed with setting f->setting (sv) into the target. */
static int store_setting(const lmd_flag *f, const sval *sv, char *msg, size_t n) {
    lmd_err e;
    switch (f->kind) {
    case FLAG_INT: *(int *)f->target = (int)sv->i; return 0;
    case FLAG_I64: *(int64_t *)f->target = sv->i; return 0;
    case FLAG_U64: *(uint64_t *)f->target = (uint64_t)sv->i; return 0;
    case FLAG_DOUBLE: *(double *)f->target = sv->d; return 0;
    case FLAG_STR: *(const char **)f->target = sv->s; return 0;
    case FLAG_VARIANT:
        if (!lmd_disp_parse_variant(sv->s, (lmd_disp_variant *)f->target, &e)) return 0;
        break;
    case FLAG_LOCATION:
        if (!lmd_disp_parse_location(sv->s, (lmd_disp_location *)f->target, &e)) return 0;
        break;
    }
    snprintf(msg, n, "%s", e.msg);
    return -1;
}

/* A flag without a setting: a string, or an integer in [lo, hi]. */
static int store_plain(const lmd_flag *f, const char *text, char *msg, size_t n) {
    if (f->kind == FLAG_STR) {
        if (f->check && f->check(text, msg, n)) return -1;
        *(const char **)f->target = text;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    int64_t hi = f->hi ? f->hi : INT64_MAX;
    if (errno || end == text || *end || x < f->lo || x > hi) {
        if (f->hi)
            snprintf(msg, n, "expected an integer in [%lld, %lld], got '%s'", (long long)f->lo,
                     (long long)hi, text);
        else
            snprintf(msg, n, "expected an integer >= %lld, got '%s'", (long long)f->lo, text);
        return -1;
    }
    if (f->kind == FLAG_INT)
        *(int *)f->target = (int)x;
    else
        *(int64_t *)f->target = x;
    return 0;
}

/* The settings-table index of f's setting; a row naming an unknown setting is a bug. */
static int setting_of(const lmd_flag *f) {
    int si = spec_find_dotted(f->setting);
    if (si < 0) lmd_die("flag --%s names an unknown setting '%s'", f->name, f->setting);
    return si;
}

int lmd_flag_set(const lmd_flag *f, const char *text, char *msg, size_t n) {
    if (!f->setting) return store_plain(f, text, msg, n);
    /* the command line's text as a plain scalar, so it parses exactly as in a spec */
    ynode node = {.kind = YN_SCALAR, .val = (char *)text, .plain = 1};
    pctx c = {.path = NULL};
    sval sv;
    int rc = spec_parse_value(&c, setting_of(f), NULL, &node, &sv);
    if (rc == 0)
        rc = store_setting(f, &sv, msg, n);
    else
        snprintf(msg, n, "%s", c.msgs.p ? c.msgs.p : "bad value");
    free(c.msgs.p);
    return rc;
}

void lmd_flags_parse(lmd_args *a, const lmd_flag *f, int n) {
    for (int i = 0; i < n; i++) {
        /* a table sized larger than its rows leaves zero rows: a bug, not a user error */
        if (!f[i].name || !f[i].target) lmd_die("flag table: row %d is empty", i);
        const char *text = lmd_args_str(a, f[i].name);
        char msg[1024];
        if (!text || !lmd_flag_set(&f[i], text, msg, sizeof msg)) continue;
        if (f[i].setting)
            fprintf(stderr, "lmdisp %s: --%s (%s): %s\n", a->cmd, f[i].name, f[i].setting, msg);
        else
            fprintf(stderr, "lmdisp %s: --%s: %s\n", a->cmd, f[i].name, msg);
        a->failed = 1;
    }
}

/* The target's value as the help's default ("" when there is none to show). */
static void fmt_default(char *buf, size_t n, const lmd_flag *f) {
    buf[0] = '\0';
    if (f->def_text) {
        snprintf(buf, n, "%s", f->def_text);
        return;
    }
    switch (f->kind) {
    case FLAG_INT: snprintf(buf, n, "%d", *(const int *)f->target); break;
    case FLAG_I64: snprintf(buf, n, "%" PRId64, *(const int64_t *)f->target); break;
    case FLAG_U64: snprintf(buf, n, "%" PRIu64, *(const uint64_t *)f->target); break;
    case FLAG_DOUBLE: spec_fmt_num(buf, n, *(const double *)f->target); break;
    case FLAG_STR:
        if (*(const char *const *)f->target)
            snprintf(buf, n, "%s", *(const char *const *)f->target);
        break;
    case FLAG_VARIANT:
        snprintf(buf, n, "%s", lmd_disp_variant_name(*(const lmd_disp_variant *)f->target));
        break;
    case FLAG_LOCATION:
        snprintf(buf, n, "%s", lmd_disp_location_name(*(const lmd_disp_location *)f->target));
        break;
    }
}

void lmd_flags_help(FILE *out, const lmd_flag *f, int n) {
    for (int i = 0; i < n; i++) {
        if (f[i].group) fprintf(out, "%s\n", f[i].group);
        char head[64], def[256];
        snprintf(head, sizeof head, "--%s %s", f[i].name, f[i].metavar ? f[i].metavar : "");
        fmt_default(def, sizeof def, &f[i]);
        fprintf(out, "  %-24s ", head);
        for (const char *p = f[i].help; *p; p++) { /* continuation lines under the first */
            if (*p == '\n')
                fprintf(out, "\n%27s", "");
            else
                fputc(*p, out);
        }
        if (def[0]) fprintf(out, " (default %s)", def);
        fprintf(out, "\n");
    }
}

/* The row for a file's key: `_` and `-` are alike ("n_layer" is --n-layer). */
static int find_row(const lmd_flag *f, int n, const char *key) {
    for (int i = 0; i < n; i++) {
        const char *a = f[i].name, *b = key;
        while (*a && (*a == *b || (*a == '-' && *b == '_'))) a++, b++;
        if (!*a && !*b) return i;
    }
    return -1;
}

/* One `key: value` of the file into its row's target. */
static void config_entry(pctx *c, const lmd_flag *f, int n, const ynode *k, const ynode *v,
                         unsigned char *seen) {
    int r = find_row(f, n, k->val);
    if (r < 0) {
        const char **cands = lmd_calloc((size_t)n + 1, sizeof *cands);
        char(*names)[64] = lmd_calloc((size_t)n + 1, sizeof *names);
        for (int i = 0; i < n; i++) {
            snprintf(names[i], sizeof names[i], "%s", f[i].name);
            for (char *p = names[i]; *p; p++)
                if (*p == '-') *p = '_';
            cands[i] = names[i];
        }
        char sug[96];
        spec_suggest(sug, sizeof sug, k->val, cands, n);
        spec_perr(c, k, k->val, "unknown key%s", sug);
        free(cands);
        free(names);
        return;
    }
    if (seen[r]) {
        spec_perr(c, k, k->val, "duplicate key");
        return;
    }
    seen[r] = 1;
    char msg[1024];
    if (f[r].setting) {
        sval sv;
        if (spec_parse_value(c, setting_of(&f[r]), k->val, v, &sv)) return;
        if (store_setting(&f[r], &sv, msg, sizeof msg)) spec_perr(c, v, k->val, "%s", msg);
        return;
    }
    if (v->kind != YN_SCALAR || v->val[0] == '\0') {
        spec_perr(c, v, k->val, "expected %s, got %s",
                  f[r].kind == FLAG_STR ? "a string" : "an integer", spec_kind_name(v));
        return;
    }
    if (store_plain(&f[r], v->val, msg, sizeof msg)) spec_perr(c, v, k->val, "%s", msg);
}

int lmd_flags_config_read(const char *path, const lmd_flag *f, int n, lmd_flags_config **out,
                          char **errors) {
    *out = NULL;
    *errors = NULL;
    char *text = NULL;
    size_t len = 0;
    lmd_err e = {{0}};
    int rc = lmd_file_read(path, LMD_SPEC_MAX_BYTES, &text, &len, &e);
    if (rc) {
        sbuf b = {0};
        if (rc == LMD_FILE_MISSING)
            spec_sb_addf(&b, "%s: cannot open: %s", path, strerror(ENOENT));
        else
            spec_sb_addf(&b, "%s (config files are limited to %u bytes)", e.msg,
                         LMD_SPEC_MAX_BYTES);
        *errors = b.p;
        return -1;
    }
    pctx c = {.path = path};
    ynode *root = spec_build_tree(&c, text, len);
    free(text);
    if (root && root->kind != YN_MAP)
        spec_perr(&c, root, NULL, "expected a mapping of `key: value` lines, got %s",
                  spec_kind_name(root));
    else if (root) {
        unsigned char *seen = lmd_calloc((size_t)n + 1, 1);
        for (size_t i = 0; i + 1 < root->n; i += 2)
            config_entry(&c, f, n, root->kids[i], root->kids[i + 1], seen);
        free(seen);
    }
    if (c.n_errors) {
        *errors = spec_perr_take(&c);
        spec_ynode_free(root);
        return -1;
    }
    free(c.msgs.p);
    *out = lmd_calloc(1, sizeof **out);
    (*out)->tree = root;
    return 0;
}

void lmd_flags_config_free(lmd_flags_config *cfg) {
    if (!cfg) return;
    spec_ynode_free(cfg->tree);
    free(cfg);
}
