/* spec_kd.h — distillation teachers that are cells of the same study (distill.teacher:
 * {cell: {...}} or {id: ...}, docs/DISTILL.md): matching each student to its teacher cell,
 * refusing missing, ambiguous, self and cyclic references, and levels for the runner. */
#ifndef LMDISP_SPEC_KD_H
#define LMDISP_SPEC_KD_H

#include <stddef.h>

#include "spec.h"
#include "util.h"

typedef struct {
    int kind;     /* 0: none, 1: {cell: {KEY: VALUE, ...}}, 2: {id: ID-OR-PREFIX} */
    char *id;     /* kind 2 */
    char **lines; /* kind 1: "name=value" lines of lmd_cell_settings the teacher must have */
    int n_lines;
    int has_seed;  /* kind 1: the reference names the seed (else: the student's seed) */
    int line, col; /* of the distill.teacher value */
} lmd_teacher_ref;

void lmd_teacher_ref_free(lmd_teacher_ref *r);

/* Links every cell with kd.on and no teacher model to its teacher cell, sets kd.teacher,
 * kd.level, kd.is_teacher, and recomputes the students' ids (a student's settings name its
 * teacher's id), teachers first. Returns 0, or -1 with "PATH:LINE:COL: key 'distill.teacher':
 * ..." in err. */
int lmd_spec_link_teachers(lmd_spec *s, const lmd_teacher_ref *ref, lmd_err *err);

/* The cells of subset (indices into s->cells) of one level, in subset order; returns the
 * count. The highest level of subset in *max_level (when non-NULL). */
size_t lmd_spec_level_cells(const lmd_spec *s, const size_t *subset, size_t n, int level,
                            size_t *out, int *max_level);

#endif
