#include "flatyaml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

int lmd_flatyaml_args(const char *path, int argc, char **argv, int *out_argc, char ***out_argv,
                      lmd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lmd_errf(err, "%s: cannot open: %s", path, strerror(errno));
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        return lmd_errf(err, "%s: cannot initialize the YAML parser", path);
    }
    yaml_parser_set_input_file(&p, f);
    int cap = argc + 64, n = 0;
    char **av = lmd_calloc((size_t)cap, sizeof *av);
    av[n++] = lmd_strdup(argv[0]);
    int depth = 0, rc = 0, expect_key = 1;
    char *key = NULL;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = lmd_errf(err, "%s:%zu:%zu: %s", path, p.problem_mark.line + 1,
                          p.problem_mark.column + 1, p.problem ? p.problem : "YAML syntax error");
            break;
        }
        yaml_event_type_t t = ev.type;
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_MAPPING_START_EVENT) {
            if (++depth > 1)
                rc = lmd_errf(err,
                              "%s:%zu:%zu: nested mappings are not allowed here (key '%s'); "
                              "use flat `key: value` lines",
                              path, line, col, key ? key : "?");
        } else if (t == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (t == YAML_SEQUENCE_START_EVENT || t == YAML_ALIAS_EVENT) {
            rc = lmd_errf(err, "%s:%zu:%zu: key '%s' must have a single scalar value", path, line,
                          col, key ? key : "?");
        } else if (t == YAML_SCALAR_EVENT) {
            const char *val = (const char *)ev.data.scalar.value;
            if (depth != 1) {
                rc = lmd_errf(err, "%s:%zu:%zu: expected a mapping of `key: value` lines", path,
                              line, col);
            } else if (expect_key) {
                free(key);
                key = lmd_strdup(val);
                expect_key = 0;
            } else {
                if (n + 2 + argc >= cap) {
                    cap *= 2;
                    char **nav = realloc(av, (size_t)cap * sizeof *av);
                    if (!nav) lmd_die("out of memory");
                    av = nav;
                }
                size_t kl = strlen(key);
                char *flag = lmd_calloc(kl + 3, 1);
                flag[0] = flag[1] = '-';
                for (size_t i = 0; i < kl; i++) flag[i + 2] = key[i] == '_' ? '-' : key[i];
                av[n++] = flag;
                av[n++] = lmd_strdup(val);
                expect_key = 1;
            }
        }
        yaml_event_delete(&ev);
        if (rc) break;
    }
    free(key);
    yaml_parser_delete(&p);
    fclose(f);
    if (rc) {
        lmd_flatyaml_free(n, av);
        return -1;
    }
    for (int i = 1; i < argc; i++) av[n++] = lmd_strdup(argv[i]);
    *out_argc = n;
    *out_argv = av;
    return 0;
}

void lmd_flatyaml_free(int argc, char **argv) {
    for (int i = 0; i < argc; i++) free(argv[i]);
    free(argv);
}
