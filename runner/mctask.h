/* mctask.h — multiple-choice task files: JSON Lines of {context, choices, gold}, validated
 * with FILE:LINE messages (scored by runner/mceval.h). */
#ifndef LMDISP_MCTASK_H
#define LMDISP_MCTASK_H

#include "util.h"

typedef struct {
    char *context;
    char **choices;
    int n_choices;
    int gold;
    int line; /* 1-based line of the task file */
} mc_item;

typedef struct {
    char *path;
    char name[128]; /* file name without directory and .jsonl */
    mc_item *items;
    int n_items;
} mc_task;

/* Reads a JSON Lines task file: one object per non-blank line with "context" (string, may
 * be empty), "choices" (non-empty array of non-empty strings) and "gold" (integer index into
 * choices); other keys are ignored. Every problem is refused with FILE:LINE (returns -1). */
int mc_task_load(mc_task *t, const char *path, lmd_err *err);
void mc_task_free(mc_task *t);

#endif
