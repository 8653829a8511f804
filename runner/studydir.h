/* studydir.h — loading the spec kept in a study directory: DIR/spec.yaml (the text) and
 * DIR/spec.dir (the directory the original spec lived in), so relative data paths resolve as
 * they did for `lmdisp run` and the cell ids come out the same. */
#ifndef LMDISP_STUDYDIR_H
#define LMDISP_STUDYDIR_H

#include "spec.h"

/* Writes DIR/spec.yaml and DIR/spec.dir for spec (rank 0 of `lmdisp run`). */
int lmd_studydir_save_spec(const char *dir, const lmd_spec *spec, lmd_err *err);
/* Loads the spec of a study directory (falls back to DIR as base when spec.dir is absent). */
int lmd_studydir_load_spec(const char *dir, lmd_spec *spec, lmd_err *err);

#endif
