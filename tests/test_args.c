/* test_args.c — the command-line parser (args.c) and the flag rows typed by the settings table
 * (specflags.c): values, missing values, unknown and repeated flags, ranges. */
#include <stdint.h>
#include <string.h>

#include "args.h"
#include "specflags.h"
#include "testutil.h"

#define ARGV(...) ((char *[]){"cmd", __VA_ARGS__, NULL})

/* lmd_args over argv (argv[0] is the command). */
static void args_on(lmd_args *a, int argc, char **argv) { lmd_args_init(a, "test", argc, argv); }

static void test_values(void) {
    char **v = ARGV("--name", "x", "--n=7", "--big", "9000000000", "--x", "2.5", "pos", "--flag");
    lmd_args a;
    args_on(&a, 10, v);
    const char *name = lmd_args_str(&a, "name");
    int n = 0;
    int64_t big = 0;
    double x = 0;
    lmd_args_int(&a, "n", &n, 0, 10);
    lmd_args_i64(&a, "big", &big, 0);
    lmd_args_double(&a, "x", &x);
    int flag = lmd_args_flag(&a, "flag"), absent = lmd_args_flag(&a, "nothere");
    int keep = 5;
    lmd_args_int(&a, "missing-int", &keep, 0, 10);
    const char *pos[2] = {0};
    int np = lmd_args_positional(&a, pos, 2);
    TU_CHECK(name && !strcmp(name, "x"), "--name x: got %s", name ? name : "NULL");
    TU_CHECK(n == 7, "--n=7: got %d", n);
    TU_CHECK(big == 9000000000LL, "--big: got %lld", (long long)big);
    TU_CHECK(x == 2.5, "--x 2.5: got %g", x);
    TU_CHECK(flag == 1 && absent == 0, "flags: %d %d", flag, absent);
    TU_CHECK(keep == 5, "an absent flag keeps the value: %d", keep);
    TU_CHECK(np == 1 && !strcmp(pos[0], "pos"), "positional: %d", np);
    TU_CHECK(lmd_args_finish(&a) == 0, "everything consumed, nothing failed");
    lmd_args_free(&a);
}

/* Runs one getter on argv and returns lmd_args_finish (0 = accepted). */
static int finish_int(char **argv, int argc, int *out, long lo, long hi) {
    lmd_args a;
    args_on(&a, argc, argv);
    lmd_args_int(&a, "n", out, lo, hi);
    int rc = lmd_args_finish(&a);
    lmd_args_free(&a);
    return rc;
}

static void test_errors(void) {
    int n = 3;
    char **v1 = ARGV("--n");
    TU_CHECK(finish_int(v1, 2, &n, 0, 10) != 0 && n == 3, "missing value refused, n kept");
    char **v2 = ARGV("--n", "11");
    TU_CHECK(finish_int(v2, 3, &n, 0, 10) != 0 && n == 3, "out of range refused");
    char **v3 = ARGV("--n", "4x");
    TU_CHECK(finish_int(v3, 3, &n, 0, 10) != 0, "not an integer refused");
    char **v4 = ARGV("--n", "4", "--other", "1");
    TU_CHECK(finish_int(v4, 5, &n, 0, 10) != 0 && n == 4, "unknown flag refused");
    char **v5 = ARGV("--n", "4", "--n", "5");
    n = 0;
    TU_CHECK(finish_int(v5, 5, &n, 0, 10) != 0, "a flag given twice is refused");
    char **v6 = ARGV("--n=4", "--n", "5");
    TU_CHECK(finish_int(v6, 4, &n, 0, 10) != 0, "a flag given twice (one inline) is refused");
    char **v7 = ARGV("--nn", "4");
    n = 1;
    TU_CHECK(finish_int(v7, 3, &n, 0, 10) != 0 && n == 1, "--nn is not --n");
    char **v8 = ARGV("--n", "6");
    TU_CHECK(finish_int(v8, 3, &n, 0, 10) == 0 && n == 6, "a good value after the bad ones");
    lmd_args a;
    char **v9 = ARGV("--help", "x");
    args_on(&a, 3, v9);
    TU_CHECK(lmd_args_flag(&a, "help") == 1 && lmd_args_finish(&a) != 0,
             "a boolean flag's stray value is reported");
    lmd_args_free(&a);
    char **v10 = ARGV("--flag=1");
    args_on(&a, 2, v10);
    lmd_args_flag(&a, "flag");
    TU_CHECK(lmd_args_finish(&a) != 0, "--flag=1 on a boolean flag is refused");
    lmd_args_free(&a);
}

/* The rows: a setting's type and range, a plain integer's range, strings. */
static void test_flag_rows(void) {
    double lr = 1e-3;
    int64_t steps = 200, every = 0;
    int batch = 8;
    const char *out = "results";
    lmd_flag f[] = {
        {.name = "lr", .setting = "train.lr", .kind = FLAG_DOUBLE, .target = &lr},
        {.name = "steps", .setting = "train.steps", .kind = FLAG_I64, .target = &steps},
        {.name = "batch", .setting = "train.batch", .kind = FLAG_INT, .target = &batch},
        {.name = "every", .kind = FLAG_I64, .target = &every, .lo = 1},
        {.name = "out", .kind = FLAG_STR, .target = &out},
    };
    char msg[512];
    TU_CHECK(lmd_flag_set(&f[0], "3e-3", msg, sizeof msg) == 0 && lr == 3e-3, "lr 3e-3: %g", lr);
    TU_CHECK(lmd_flag_set(&f[0], "abc", msg, sizeof msg) != 0 && strstr(msg, "expected a number"),
             "lr abc: '%s'", msg);
    TU_CHECK(lmd_flag_set(&f[0], "20", msg, sizeof msg) != 0 && strstr(msg, "out of range"),
             "lr 20 is outside train.lr's range: '%s'", msg);
    TU_CHECK(lr == 3e-3, "a refused value leaves the target: %g", lr);
    TU_CHECK(lmd_flag_set(&f[1], "2e3", msg, sizeof msg) == 0 && steps == 2000,
             "steps 2e3 parses as in a spec: %lld", (long long)steps);
    TU_CHECK(lmd_flag_set(&f[1], "1.5", msg, sizeof msg) != 0, "steps 1.5 refused");
    TU_CHECK(lmd_flag_set(&f[2], "0", msg, sizeof msg) != 0 && strstr(msg, "[1, 1048576]"),
             "batch 0: '%s'", msg);
    TU_CHECK(lmd_flag_set(&f[3], "0", msg, sizeof msg) != 0 && strstr(msg, ">= 1"), "every 0: '%s'",
             msg);
    TU_CHECK(lmd_flag_set(&f[3], "5", msg, sizeof msg) == 0 && every == 5, "every 5");
    TU_CHECK(lmd_flag_set(&f[4], "dir", msg, sizeof msg) == 0 && !strcmp(out, "dir"), "out dir");

    char **v = ARGV("--lr", "bad", "--batch", "4");
    lmd_args a;
    args_on(&a, 5, v);
    lmd_flags_parse(&a, f, 5);
    TU_CHECK(a.failed && batch == 4, "lmd_flags_parse: a bad value fails, the good one is set");
    lmd_args_free(&a);
}

int main(void) {
    test_values();
    test_errors();
    test_flag_rows();
    return tu_summary("test_args");
}
