/* flatyaml.h — reads a flat YAML mapping (`key: scalar` lines) into `--key value` arguments,
 * so `lmdisp train --config FILE` takes the same settings as its flags. */
#ifndef LMDISP_FLATYAML_H
#define LMDISP_FLATYAML_H

#include "util.h"

/* Appends "--key" "value" pairs (underscores in keys become dashes) to a new argv made of
 * argv[0], the file's pairs, then argv[1..argc-1] (so command-line flags come later and the
 * parser sees both; duplicates are rejected by the caller). *out_argv and its strings are
 * owned by the caller: free with lmd_flatyaml_free. Errors name file:line:column. */
int lmd_flatyaml_args(const char *path, int argc, char **argv, int *out_argc, char ***out_argv,
                      lmd_err *err);
void lmd_flatyaml_free(int argc, char **argv);

#endif
