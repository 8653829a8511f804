/* studydir.c — the spec kept in a study directory, the spec check, the lock and the cleanup of
 * temporary files (see studydir.h). */
#include "studydir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"

int lmd_studydir_save_spec(const char *dir, const lmd_spec *spec, lmd_err *err) {
    char path[4200];
    if (lmd_path(path, sizeof path, err, "%s/spec.yaml", dir) ||
        lmd_file_write_atomic(path, spec->text, spec->text_len, err) ||
        lmd_path(path, sizeof path, err, "%s/spec.dir", dir))
        return -1;
    char line[4200];
    int n = snprintf(line, sizeof line, "%s\n", spec->dir);
    return lmd_file_write_atomic(path, line, (size_t)n, err);
}

int lmd_studydir_load_spec(const char *dir, lmd_spec *spec, lmd_err *err) {
    memset(spec, 0, sizeof *spec);
    char path[4200], base[4200] = "";
    if (lmd_path(path, sizeof path, err, "%s/spec.dir", dir)) return -1;
    char *text = NULL;
    int rc = lmd_file_read(path, sizeof base - 1, &text, NULL, err);
    if (rc < 0) return -1;
    if (rc == 0) {
        snprintf(base, sizeof base, "%.*s", (int)strcspn(text, "\n"), text);
        free(text);
    }
    if (lmd_path(path, sizeof path, err, "%s/spec.yaml", dir)) return -1;
    size_t len;
    rc = lmd_file_read(path, LMD_SPEC_MAX_BYTES, &text, &len, err);
    if (rc == LMD_FILE_MISSING) {
        lmd_errf(err, "%s: no such file (not a study directory written by lmdisp run?)", path);
        return LMD_FILE_MISSING;
    }
    if (rc < 0) return -1;
    rc = lmd_spec_parse(spec, text, len, path, base[0] ? base : NULL, err);
    free(text);
    return rc;
}

/* Number of lines of a that are not lines of b (settings texts: one key=value per line). */
static int lines_not_in(const char *a, const char *b, char *first, size_t n_first) {
    int miss = 0;
    for (const char *p = a; *p;) {
        size_t len = strcspn(p, "\n");
        int found = 0;
        for (const char *q = b; *q && !found;) {
            size_t ql = strcspn(q, "\n");
            found = ql == len && !strncmp(p, q, len);
            q += ql + (q[ql] == '\n');
        }
        if (!found && miss++ == 0 && first) snprintf(first, n_first, "%.*s", (int)len, p);
        p += len + (p[len] == '\n');
    }
    return miss;
}

int lmd_studydir_check_spec(const char *dir, const lmd_spec *spec, char *note, size_t n_note,
                            lmd_err *err) {
    note[0] = '\0';
    lmd_spec old;
    lmd_err lerr;
    int rc = lmd_studydir_load_spec(dir, &old, &lerr);
    if (rc == LMD_FILE_MISSING) return 0;
    if (rc) {
        lmd_errf(err,
                 "%s holds a study whose spec cannot be read (%s); refusing to replace it. "
                 "Use another --out, or repair or delete %s",
                 dir, lerr.msg, dir);
        lmd_spec_free(&old);
        return -1;
    }
    if (old.text_len == spec->text_len && !memcmp(old.text, spec->text, spec->text_len)) {
        lmd_spec_free(&old);
        return 0;
    }
    char msg[LMD_ERR_LEN] = "";
    size_t used = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (used < sizeof msg)                                                                     \
            used += (size_t)snprintf(msg + used, sizeof msg - used, __VA_ARGS__);                  \
    } while (0)
    int n_diff = 0;
    if (strcmp(old.name, spec->name)) {
        ADD("\n  key 'name': was '%s', now '%s'", old.name, spec->name);
        n_diff++;
    }
    int all_sharded = 1;
    for (size_t i = 0; i < spec->n_cells; i++) all_sharded &= spec->cells[i].train.shards > 1;
    if (old.ranks_per_model != spec->ranks_per_model && !all_sharded) {
        ADD("\n  key 'resources.ranks_per_model': was %d, now %d (0 = auto); without train.shards "
            "the group size changes the numbers of resumed cells",
            old.ranks_per_model, spec->ranks_per_model);
        n_diff++;
    }
    char path[4200];
    lmd_pathf(path, "%s/manifest", dir);
    if (access(path, F_OK) == 0) {
        ADD("\n  the study was submitted to Slurm (%s exists) and its array tasks read "
            "%s/spec.yaml: "
            "it must stay as submitted",
            path, dir);
        n_diff++;
    }
    size_t n_gone = 0, n_new = 0;
    for (size_t i = 0; i < old.n_cells; i++) {
        const lmd_cell *oc = &old.cells[i];
        if (lmd_spec_find_cell(spec, oc->id)) continue;
        n_gone++;
        if (n_gone > 4) continue;
        /* name what changed: the new cell whose settings differ from the old one's the least */
        char *os = lmd_cell_settings(oc), best_line[256] = "", line[256];
        int best = -1;
        size_t best_k = 0;
        for (size_t k = 0; k < spec->n_cells && spec->n_cells * old.n_cells < 250000; k++) {
            char *ns = lmd_cell_settings(&spec->cells[k]);
            int d = lines_not_in(os, ns, line, sizeof line);
            if (best < 0 || d < best) {
                best = d, best_k = k;
                snprintf(best_line, sizeof best_line, "%s", line);
            }
            free(ns);
        }
        if (best > 0) {
            char *ns = lmd_cell_settings(&spec->cells[best_k]), now[256] = "";
            /* the new value of the same key */
            size_t kl = strcspn(best_line, "=");
            for (const char *q = ns; *q;) {
                size_t ql = strcspn(q, "\n");
                if (ql > kl && !strncmp(q, best_line, kl + 1))
                    snprintf(now, sizeof now, "%.*s", (int)ql, q);
                q += ql + (q[ql] == '\n');
            }
            free(ns);
            ADD("\n  cell %s: '%s' is now '%s'%s", oc->id, best_line, now[0] ? now : "(absent)",
                best > 1 ? " (and more settings)" : "");
        } else {
            ADD("\n  cell %s is not in the new spec", oc->id);
        }
        free(os);
    }
    if (n_gone > 4)
        ADD("\n  ... and %zu more cell(s) of the study are not in the new spec", n_gone - 4);
    for (size_t k = 0; k < spec->n_cells; k++)
        if (!lmd_spec_find_cell(&old, spec->cells[k].id)) n_new++;
#undef ADD
    if (n_gone || n_diff) {
        lmd_errf(err,
                 "%s holds study '%s' (%zu cells) from a different spec; refusing to "
                 "replace it (nothing was changed). What differs:%s\nUse another --out, rerun "
                 "with the spec in %s/spec.yaml, or delete %s to start over",
                 dir, old.name, old.n_cells, msg, dir, dir);
        lmd_spec_free(&old);
        return -1;
    }
    if (n_new)
        snprintf(note, n_note,
                 "extending study '%s' in %s: its %zu cells are unchanged, %zu new "
                 "cell(s) added",
                 old.name, dir, old.n_cells, n_new);
    else
        snprintf(note, n_note,
                 "the spec text differs from %s/spec.yaml but every cell and "
                 "study setting is the same; %s/spec.yaml is updated",
                 dir, dir);
    lmd_spec_free(&old);
    return 1;
}

int lmd_studydir_lock(const char *dir, int exclusive, const char *command, lmd_err *err) {
    char path[4200];
    if (lmd_path(path, sizeof path, err, "%s/lock", dir)) return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return lmd_errf(err, "cannot open the study lock %s: %s (is %s writable?)", path,
                        strerror(errno), dir);
    if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        int e = errno;
        if (e != EWOULDBLOCK) {
            close(fd);
            return lmd_errf(err, "cannot lock %s: %s", path, strerror(e));
        }
        /* who holds it: a shared lock still granted means array tasks hold it */
        if (exclusive && flock(fd, LOCK_SH | LOCK_NB) == 0) {
            close(fd);
            return lmd_errf(err,
                            "%s is in use by Slurm array task(s) of this study (they hold "
                            "%s shared); wait for them to end (lmdisp status %s)",
                            dir, path, dir);
        }
        char holder[512] = "";
        ssize_t r = pread(fd, holder, sizeof holder - 1, 0);
        close(fd);
        if (r > 0) holder[r] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        return lmd_errf(err,
                        "%s is in use by another lmdisp (%s, lock %s); wait for it to end "
                        "or stop it, then run again",
                        dir, holder[0] ? holder : "holder unknown", path);
    }
    if (exclusive) {
        char host[256] = "?", text[1024];
        if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
        host[sizeof host - 1] = '\0';
        time_t now = time(NULL);
        struct tm tm;
        char when[64] = "";
        if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        int n = snprintf(text, sizeof text, "host %s, pid %ld, since %s, %s\n", host,
                         (long)getpid(), when, command);
        if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
            int e = errno;
            close(fd);
            return lmd_errf(err, "cannot write the holder into %s: %s", path, strerror(e));
        }
    }
    return fd;
}

void lmd_studydir_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing drops the flock */
}

int lmd_studydir_clean_tmp(const char *dir, FILE *f, lmd_err *err) {
    DIR *d = opendir(dir);
    if (!d) return lmd_errf(err, "cannot list %s: %s", dir, strerror(errno));
    static const char *const PREFIX[] = {"study.h5.tmp.", "spec.yaml.tmp.", "spec.dir.tmp."};
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        for (size_t k = 0; k < sizeof PREFIX / sizeof PREFIX[0]; k++) {
            if (strncmp(e->d_name, PREFIX[k], strlen(PREFIX[k]))) continue;
            char path[4400];
            lmd_pathf(path, "%s/%s", dir, e->d_name);
            if (unlink(path) != 0) {
                rc = lmd_errf(err, "cannot remove the stale temporary file %s: %s", path,
                              strerror(errno));
            } else {
                n++;
                if (f) fprintf(f, "lmdisp: removed %s (left by a run that was killed)\n", path);
            }
        }
    }
    closedir(d);
    return rc ? -1 : n;
}

int lmd_studydir_check_paths(const char *dir, const lmd_spec *spec, lmd_err *err) {
    /* 4096: lmd_cell_job.dir; 4200: the track and checkpoint paths built from it */
    char p[4200];
    for (size_t i = 0; i < spec->n_cells; i++) {
        const char *id = spec->cells[i].id;
        if (lmd_path(p, 4096, err, "%s/cells/%s", dir, id) ||
            lmd_path(p, sizeof p, err, "%s/cells/%s/track/step%07lld.h5.tmp.%d", dir, id,
                     (long long)spec->cells[i].train.steps, INT_MAX))
            return lmd_err_prefix(err, "study directory %.200s: choose a shorter --out", dir);
    }
    return 0;
}
