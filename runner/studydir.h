/* studydir.h — the study directory as a whole: the spec kept in it (DIR/spec.yaml, the text,
 * and DIR/spec.dir, the directory the original spec lived in, so relative data paths resolve
 * as they did for `lmdisp run` and the cell ids come out the same), the check that a new spec
 * fits the study already there, the lock that keeps two runs out of one directory, and the
 * removal of temporary files a killed run left behind. */
#ifndef LMDISP_STUDYDIR_H
#define LMDISP_STUDYDIR_H

#include <stdio.h>

#include "fileio.h"
#include "spec.h"

/* Writes DIR/spec.yaml and DIR/spec.dir for spec (rank 0 of `lmdisp run`), each atomically. */
int lmd_studydir_save_spec(const char *dir, const lmd_spec *spec, lmd_err *err);
/* Loads the spec of a study directory (falls back to DIR as base when spec.dir is absent).
 * Returns 0, LMD_FILE_MISSING when DIR/spec.yaml does not exist, -1 on any other error. */
int lmd_studydir_load_spec(const char *dir, lmd_spec *spec, lmd_err *err);

/* Compares spec with the study already in dir (its spec.yaml), before anything is written.
 * Returns 0 when dir holds no study yet or the same spec text; 1 when the new spec keeps
 * every existing cell and study setting and only changes what does not affect them (adds
 * cells, edits comments): *note then says so, for the console; -1 when it would change the
 * study (a cell removed or its settings changed, the name or resources.ranks_per_model
 * changed, or any change to a submitted study): err says which keys and cells differ. */
int lmd_studydir_check_spec(const char *dir, const lmd_spec *spec, char *note, size_t n_note,
                            lmd_err *err);

/* The lock on DIR/lock (flock; the kernel drops it when the holder dies). exclusive: one
 * `lmdisp run SPEC` or `aggregate` at a time, the holder (host, pid, time, command) written
 * into the file; shared: Slurm array tasks of one study, which run side by side but keep an
 * exclusive holder out. Non-blocking: returns the descriptor (keep it open while working;
 * it is close-on-exec), or -1 with a message naming the holder. */
int lmd_studydir_lock(const char *dir, int exclusive, const char *command, lmd_err *err);
void lmd_studydir_unlock(int fd);

/* Removes what a killed run can leave behind in dir: study.h5.tmp.*, spec.yaml.tmp.*,
 * spec.dir.tmp.* (call under the exclusive lock). Prints one line per removed file to f.
 * Returns the number removed, or -1 with a message. */
int lmd_studydir_clean_tmp(const char *dir, FILE *f, lmd_err *err);

/* Checks that the longest file path of every cell of spec under dir (a track file's temporary
 * DIR/cells/<id>/track/stepNNNNNNN.h5.tmp.<pid>) fits the runner's path buffers, so a long
 * --out is refused up front instead of failing cells half-way. Returns 0 or -1 with a message. */
int lmd_studydir_check_paths(const char *dir, const lmd_spec *spec, lmd_err *err);

#endif
