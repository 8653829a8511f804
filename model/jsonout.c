/* jsonout.c — JSON output through jansson (see jsonout.h). */
#include "jsonout.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *must(json_t *j, const char *what, const char *file, int line) {
    if (!j) lmd_die_at(file, line, "jansson could not build %s (out of memory?)", what);
    return j;
}

json_t *lmd_json_num(double x) {
    return must(isfinite(x) ? json_real(x) : json_null(), "a number", __FILE__, __LINE__);
}

json_t *lmd_json_nums(const double *v, size_t n) {
    json_t *a = must(json_array(), "an array", __FILE__, __LINE__);
    for (size_t i = 0; i < n; i++) lmd_json_append(a, lmd_json_num(v[i]));
    return a;
}

json_t *lmd_json_str(const char *s) {
    json_t *j = json_string(s);
    if (j) return j;
    /* not UTF-8: replace each byte that does not start a valid sequence by U+FFFD */
    size_t n = strlen(s);
    char *t = lmd_calloc(3 * n + 1, 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        json_t *one = NULL;
        size_t k = 1;
        for (; k <= 4 && i + k <= n && !one; k++) one = json_stringn(s + i, k);
        k--;
        if (one) {
            memcpy(t + o, s + i, k);
            o += k, i += k;
            json_decref(one);
        } else {
            memcpy(t + o, "\xef\xbf\xbd", 3);
            o += 3, i++;
        }
    }
    j = must(json_stringn(t, o), "a string", __FILE__, __LINE__);
    free(t);
    return j;
}

void lmd_json_set_at(json_t *obj, const char *key, json_t *value, const char *file, int line) {
    if (!value || json_object_set_new(obj, key, value) != 0)
        lmd_die_at(file, line, "jansson could not set \"%s\" (out of memory?)", key);
}

void lmd_json_append_at(json_t *arr, json_t *value, const char *file, int line) {
    if (!value || json_array_append_new(arr, value) != 0)
        lmd_die_at(file, line, "jansson could not append to an array (out of memory?)");
}

int lmd_json_dump(FILE *f, json_t *root, int digits, lmd_err *err) {
    int rc = json_dumpf(root, f, JSON_REAL_PRECISION(digits));
    json_decref(root);
    if (rc != 0 || ferror(f))
        return lmd_errf(err, "writing JSON failed: %s", errno ? strerror(errno) : "jansson error");
    return 0;
}
