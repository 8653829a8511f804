#include "studydir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_file(const char *path, const char *text, size_t n, lmd_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return lmd_errf(err, "cannot write %s: %s", path, strerror(errno));
    int ok = fwrite(text, 1, n, f) == n;
    ok &= fclose(f) == 0;
    return ok ? 0 : lmd_errf(err, "cannot write %s: %s", path, strerror(errno));
}

int lmd_studydir_save_spec(const char *dir, const lmd_spec *spec, lmd_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    if (write_file(path, spec->text, spec->text_len, err)) return -1;
    snprintf(path, sizeof path, "%s/spec.dir", dir);
    char line[4200];
    int n = snprintf(line, sizeof line, "%s\n", spec->dir);
    return write_file(path, line, (size_t)n, err);
}

int lmd_studydir_load_spec(const char *dir, lmd_spec *spec, lmd_err *err) {
    char path[4200], base[4200] = "";
    snprintf(path, sizeof path, "%s/spec.dir", dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        if (fgets(base, sizeof base, f)) base[strcspn(base, "\n")] = '\0';
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/spec.yaml", dir);
    f = fopen(path, "rb");
    if (!f) {
        memset(spec, 0, sizeof *spec);
        return lmd_errf(err, "%s: cannot open: %s (not a study directory written by lmdisp run?)",
                        path, strerror(errno));
    }
    size_t cap = LMD_SPEC_MAX_BYTES + 1;
    char *text = lmd_calloc(cap, 1);
    size_t len = fread(text, 1, cap, f);
    fclose(f);
    int rc = lmd_spec_parse(spec, text, len, path, base[0] ? base : NULL, err);
    free(text);
    return rc;
}
