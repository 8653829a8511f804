/* jsonout.h — JSON output through jansson: numbers that JSON cannot hold (NaN, ±Inf) as null,
 * and a checked dump, so every --json writer escapes strings and formats numbers the same way. */
#ifndef LMDISP_JSONOUT_H
#define LMDISP_JSONOUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "util.h"

/* x as a JSON real, or JSON null when x is NaN or ±Inf (JSON has neither; the documented
 * representation of "not defined" in every lmdisp JSON output). Never NULL. */
json_t *lmd_json_num(double x);

/* v[0..n) as an array of lmd_json_num. */
json_t *lmd_json_nums(const double *v, size_t n);

/* s as a JSON string; text that is not UTF-8 is written with U+FFFD for each bad byte rather
 * than dropped, so a path always shows. */
json_t *lmd_json_str(const char *s);

/* Adds value under key to obj (in insertion order: jansson >= 2.8 keeps it), aborting with the
 * call site if jansson refuses (out of memory): the writers build small trees they own. */
void lmd_json_set_at(json_t *obj, const char *key, json_t *value, const char *file, int line);
#define lmd_json_set(obj, key, value) lmd_json_set_at((obj), (key), (value), __FILE__, __LINE__)
void lmd_json_append_at(json_t *arr, json_t *value, const char *file, int line);
#define lmd_json_append(arr, value) lmd_json_append_at((arr), (value), __FILE__, __LINE__)

/* Writes root to f with significant digits for reals (17: round-trips a double), one line,
 * ", " and ": " separators, then checks f for a write error. Takes the reference to root.
 * Returns 0 or -1 with a message. */
int lmd_json_dump(FILE *f, json_t *root, int digits, lmd_err *err);

#endif
