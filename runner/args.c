#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define ARG_DUPLICATE 2 /* used[]: a repeated flag, already reported */

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

/* 1 if s is --name or --name=value; *val points at the inline value or is NULL. */
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

/* The index of --name (or -1), *val its inline value. A flag is given once, as a key is in a
 * spec or a --config file: a second occurrence is reported (once) and fails the command. */
static int find(lmd_args *a, const char *name, const char **val) {
    size_t n = strlen(name);
    int first = -1;
    *val = NULL;
    for (int i = 1; i < a->argc; i++) {
        const char *v;
        if (!match(a->argv[i], name, n, &v)) continue;
        if (first < 0) {
            first = i;
            *val = v;
            continue;
        }
        if (a->used[i] != ARG_DUPLICATE)
            fprintf(stderr,
                    "lmdisp %s: --%s is given twice (arguments %d and %d); give each flag once\n",
                    a->cmd, name, first, i);
        a->failed = 1;
        a->used[i] = ARG_DUPLICATE;
        if (!v && i + 1 < a->argc && strncmp(a->argv[i + 1], "--", 2) != 0)
            a->used[i + 1] = 1; /* its value: reported with the flag, not as unknown */
    }
    return first;
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
