#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void lmd_args_init(lmd_args *a, const char *cmd, int argc, char **argv) {
    a->argc = argc;
    a->argv = argv;
    a->used = lmd_calloc((size_t)argc + 1, 1);
    a->cmd = cmd;
    a->failed = 0;
    if (argc > 0) a->used[0] = 1; /* the command name itself */
}

void lmd_args_free(lmd_args *a) {
    free(a->used);
    a->used = NULL;
}

/* Finds --name or --name=value; the last occurrence wins (so command-line flags override a
 * --config file's), earlier ones are marked used. Returns the index, *val points at the
 * inline value or NULL. */
static int match(const char *s, const char *name, size_t n, const char **val) {
    if (strncmp(s, "--", 2) != 0 || strncmp(s + 2, name, n) != 0) return 0;
    if (s[2 + n] == '\0') {
        *val = NULL;
        return 1;
    }
    if (s[2 + n] == '=') {
        *val = s + 3 + n;
        return 1;
    }
    return 0;
}

static int find(lmd_args *a, const char *name, const char **val) {
    size_t n = strlen(name);
    int last = -1;
    const char *lastval = NULL;
    for (int i = 1; i < a->argc; i++) {
        const char *v;
        if (!match(a->argv[i], name, n, &v)) continue;
        if (last >= 0) { /* an earlier occurrence is overridden: consume it and its value */
            a->used[last] = 1;
            if (!lastval && last + 1 < a->argc && last + 1 != i &&
                strncmp(a->argv[last + 1], "--", 2) != 0)
                a->used[last + 1] = 1;
        }
        last = i;
        lastval = v;
    }
    *val = lastval;
    return last;
}

int lmd_args_flag(lmd_args *a, const char *name) {
    const char *v;
    int i = find(a, name, &v);
    if (i < 0) return 0;
    a->used[i] = 1;
    if (v) {
        fprintf(stderr, "lmdisp %s: --%s takes no value\n", a->cmd, name);
        a->failed = 1;
    }
    return 1;
}

const char *lmd_args_str(lmd_args *a, const char *name) {
    const char *v;
    int i = find(a, name, &v);
    if (i < 0) return NULL;
    a->used[i] = 1;
    if (v) return v;
    if (i + 1 >= a->argc) {
        fprintf(stderr, "lmdisp %s: --%s needs a value\n", a->cmd, name);
        a->failed = 1;
        return NULL;
    }
    a->used[i + 1] = 1;
    return a->argv[i + 1];
}

void lmd_args_int(lmd_args *a, const char *name, int *out, long lo, long hi) {
    const char *s = lmd_args_str(a, name);
    if (!s) return;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "lmdisp %s: --%s expects an integer in [%ld, %ld], got '%s'\n", a->cmd,
                name, lo, hi, s);
        a->failed = 1;
        return;
    }
    *out = (int)v;
}

void lmd_args_i64(lmd_args *a, const char *name, int64_t *out, int64_t lo) {
    const char *s = lmd_args_str(a, name);
    if (!s) return;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo) {
        fprintf(stderr, "lmdisp %s: --%s expects an integer >= %lld, got '%s'\n", a->cmd, name,
                (long long)lo, s);
        a->failed = 1;
        return;
    }
    *out = (int64_t)v;
}

void lmd_args_double(lmd_args *a, const char *name, double *out) {
    const char *s = lmd_args_str(a, name);
    if (!s) return;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s) {
        fprintf(stderr, "lmdisp %s: --%s expects a number, got '%s'\n", a->cmd, name, s);
        a->failed = 1;
        return;
    }
    *out = v;
}

int lmd_args_positional(lmd_args *a, const char **out, int max) {
    int n = 0;
    for (int i = 1; i < a->argc; i++) {
        if (a->used[i] || strncmp(a->argv[i], "--", 2) == 0) continue;
        if (n < max) out[n] = a->argv[i];
        a->used[i] = 1;
        n++;
    }
    return n;
}

int lmd_args_finish(lmd_args *a) {
    int bad = a->failed;
    for (int i = 1; i < a->argc; i++)
        if (!a->used[i]) {
            fprintf(stderr,
                    "lmdisp %s: unknown or misplaced argument '%s' (see lmdisp %s --help)\n",
                    a->cmd, a->argv[i], a->cmd);
            bad = 1;
        }
    return bad ? -1 : 0;
}
