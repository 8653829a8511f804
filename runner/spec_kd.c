/* spec_kd.c — teacher cells of distillation students: matching, checks, levels (spec_kd.h). */
#include "spec_kd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lmd_teacher_ref_free(lmd_teacher_ref *r) {
    for (int i = 0; i < r->n_lines; i++) free(r->lines[i]);
    free(r->lines);
    free(r->id);
    memset(r, 0, sizeof *r);
}

/* 1 if text holds line as a whole line */
static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0')) return 1;
    return 0;
}

#define KERR(...)                                                                                  \
    do {                                                                                           \
        char m_[1500];                                                                             \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                                      \
        lmd_errf(err, "%s:%d:%d: key 'distill.teacher': %s", s->path, ref->line, ref->col, m_);    \
        goto fail;                                                                                 \
    } while (0)

int lmd_spec_link_teachers(lmd_spec *s, const lmd_teacher_ref *ref, lmd_err *err) {
    size_t n = s->n_cells;
    int need = 0;
    for (size_t i = 0; i < n; i++)
        if (s->cells[i].kd.on && !s->cells[i].kd.model) need = 1;
    if (!need) return 0;
    /* the settings of every cell before linking (students' lines name no teacher yet) */
    char **text = lmd_calloc(n, sizeof *text);
    for (size_t i = 0; i < n; i++) text[i] = lmd_cell_settings(&s->cells[i]);
    for (size_t i = 0; i < n; i++) {
        lmd_cell *st = &s->cells[i];
        if (!st->kd.on || st->kd.model) continue;
        long found = -1;
        int count = 0;
        char ids[400] = "";
        char seedline[64];
        snprintf(seedline, sizeof seedline, "train.seed=%llu", (unsigned long long)st->train.seed);
        for (size_t j = 0; j < n; j++) {
            int ok;
            if (ref->kind == 2) {
                ok = !strncmp(s->cells[j].id, ref->id, strlen(ref->id));
            } else {
                ok = ref->has_seed || has_line(text[j], seedline);
                for (int q = 0; q < ref->n_lines && ok; q++) ok = has_line(text[j], ref->lines[q]);
            }
            if (!ok) continue;
            if (count++ < 3)
                snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%s", count > 1 ? ", " : "",
                         s->cells[j].id);
            found = (long)j;
        }
        if (count == 0) {
            if (ref->kind == 2)
                KERR("no cell id starts with '%s' (cell %zu, %s)", ref->id, i, st->id);
            KERR("no cell of the grid matches the teacher reference%s (student: grid point %zu, "
                 "%s)",
                 ref->has_seed ? "" : " with the student's seed", i, st->id);
        }
        if (count > 1)
            KERR("the teacher reference is ambiguous: %d cells match (%s%s) for grid point %zu; "
                 "add settings (or the seed) to select one",
                 count, ids, count > 3 ? ", ..." : "", i);
        if ((size_t)found == i)
            KERR("grid point %zu (%s) would be its own teacher: give it alpha 0 (e.g. a zip of "
                 "mlp_dim and distill.alpha) or select another cell",
                 i, st->id);
        const lmd_cell *tc = &s->cells[found];
        if (tc->cfg.vocab_size != st->cfg.vocab_size)
            KERR("teacher %s has vocab %d, the student %s %d", tc->id, tc->cfg.vocab_size, st->id,
                 st->cfg.vocab_size);
        if (tc->cfg.n_ctx < st->train.T)
            KERR("teacher %s has n_ctx %d < the student's seq %d", tc->id, tc->cfg.n_ctx,
                 st->train.T);
        st->kd.teacher = found;
        st->kd.teacher_cfg = tc->cfg;
        /* the teacher's forward on every micro-batch: a third of its training step's FLOPs */
        st->flops += gpt_flops_per_step(&tc->cfg, st->train.B, st->train.T) / 3.0 *
                     (double)st->train.steps * st->train.accumulate;
    }
    /* cycles: each cell has at most one teacher, so follow each chain */
    for (size_t i = 0; i < n; i++) {
        size_t steps = 0;
        long j = s->cells[i].kd.teacher;
        while (j >= 0 && steps <= n) {
            if ((size_t)j == i)
                KERR("the teachers form a cycle through grid point %zu (%s -> %s -> ...): a "
                     "teacher must not learn from its student",
                     i, s->cells[i].id, s->cells[s->cells[i].kd.teacher].id);
            j = s->cells[j].kd.teacher;
            steps++;
        }
    }
    /* levels and ids, teachers first: a student's settings name its teacher's final id */
    for (int changed = 1, round = 0; changed; round++) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            lmd_cell *st = &s->cells[i];
            if (st->kd.teacher < 0 || st->kd.teacher_id[0]) continue;
            lmd_cell *tc = &s->cells[st->kd.teacher];
            if (tc->kd.teacher >= 0 && !tc->kd.teacher_id[0]) continue; /* not final yet */
            snprintf(st->kd.teacher_id, sizeof st->kd.teacher_id, "%s", tc->id);
            st->kd.level = tc->kd.level + 1;
            tc->kd.is_teacher = 1;
            lmd_cell_refresh_id(st);
            changed = 1;
        }
    }
    for (size_t i = 0; i < n; i++) free(text[i]);
    free(text);
    return 0;
fail:
    for (size_t i = 0; i < n; i++) free(text[i]);
    free(text);
    return -1;
}

size_t lmd_spec_level_cells(const lmd_spec *s, const size_t *subset, size_t n, int level,
                            size_t *out, int *max_level) {
    size_t k = 0;
    int mx = 0;
    for (size_t i = 0; i < n; i++) {
        int l = s->cells[subset[i]].kd.level;
        if (l > mx) mx = l;
        if (l == level) out[k++] = subset[i];
    }
    if (max_level) *max_level = mx;
    return k;
}
