/* test_fileio.c — model/fileio: whole-file reads report every error (missing file, directory,
 * too large) and read files of any size (the old copies stopped at 8 KiB or ignored ftell
 * errors); atomic writes replace the file completely and leave no temporary behind; lmd_path
 * refuses a path that does not fit. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "testutil.h"

static int count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

int main(void) {
    const char *base = getenv("LMDISP_TMP");
    char dir[4096], path[4200], sub[4200];
    snprintf(dir, sizeof dir, "%s/test_fileio", base ? base : "/tmp");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/a.txt", dir);
    unlink(path);
    lmd_err err = {{0}};
    char *text = NULL;
    size_t len = 99;

    int rc = lmd_file_read(path, 100, &text, &len, &err);
    TU_CHECK(rc == LMD_FILE_MISSING && text == NULL && len == 0, "missing file: rc %d", rc);

    /* 100 KiB, more than the 8 KiB the study reader used to stop at */
    size_t big = 100 * 1024;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++) data[i] = (char)('a' + i % 26);
    data[big - 1] = 'Z';
    rc = lmd_file_write_atomic(path, data, big, &err);
    TU_CHECK(rc == 0, "atomic write: %s", err.msg);
    TU_CHECK(count_tmp(dir) == 0, "temporary file left behind: %d", count_tmp(dir));
    rc = lmd_file_read(path, big, &text, &len, &err);
    TU_CHECK(rc == 0 && len == big && text && !memcmp(text, data, big) && text[big] == '\0',
             "read back %zu bytes (rc %d, len %zu): %s", big, rc, len, err.msg);
    free(text);

    /* replacing with shorter contents leaves nothing of the old file */
    rc = lmd_file_write_atomic(path, "short\n", 6, &err);
    rc |= lmd_file_read(path, 1000, &text, &len, &err);
    TU_CHECK(rc == 0 && len == 6 && !strcmp(text, "short\n"), "replaced: len %zu", len);
    free(text);

    /* over the limit: an error naming the file, no buffer */
    rc = lmd_file_write_atomic(path, data, big, &err);
    memset(&err, 0, sizeof err);
    rc = lmd_file_read(path, 1000, &text, &len, &err);
    TU_CHECK(rc == -1 && text == NULL && strstr(err.msg, path) && strstr(err.msg, "bytes"),
             "too large: rc %d, '%s'", rc, err.msg);

    /* a directory is not a file */
    memset(&err, 0, sizeof err);
    rc = lmd_file_read(dir, 1000, &text, &len, &err);
    TU_CHECK(rc == -1 && strstr(err.msg, "not a regular file"), "directory: rc %d '%s'", rc,
             err.msg);

    /* writing into a missing directory: an error naming the path */
    snprintf(sub, sizeof sub, "%s/no/such/dir/x", dir);
    memset(&err, 0, sizeof err);
    rc = lmd_file_write_atomic(sub, "x", 1, &err);
    TU_CHECK(rc == -1 && strstr(err.msg, sub), "missing directory: rc %d '%s'", rc, err.msg);

    /* rename over a directory fails: the temporary file is removed */
    snprintf(sub, sizeof sub, "%s/isdir", dir);
    mkdir(sub, 0755);
    char inside[4300];
    snprintf(inside, sizeof inside, "%s/keep", sub);
    FILE *f = fopen(inside, "w");
    if (f) fclose(f);
    memset(&err, 0, sizeof err);
    rc = lmd_file_write_atomic(sub, "x", 1, &err);
    TU_CHECK(rc == -1 && strstr(err.msg, "rename") && count_tmp(dir) == 0,
             "rename failure: rc %d '%s', %d tmp", rc, err.msg, count_tmp(dir));

    /* commit of a file written by someone else: renamed into place, nothing left */
    char tmpf[4300];
    snprintf(tmpf, sizeof tmpf, "%s/c.txt.tmp.1", dir);
    snprintf(sub, sizeof sub, "%s/c.txt", dir);
    f = fopen(tmpf, "w");
    if (f) {
        fputs("committed\n", f);
        fclose(f);
    }
    rc = lmd_file_commit(tmpf, sub, &err);
    rc |= lmd_file_read(sub, 100, &text, &len, &err);
    TU_CHECK(rc == 0 && !strcmp(text, "committed\n") && access(tmpf, F_OK) != 0 &&
                 count_tmp(dir) == 0,
             "commit: rc %d", rc);
    free(text);
    memset(&err, 0, sizeof err);
    rc = lmd_file_commit(tmpf, sub, &err); /* the temporary is gone now */
    TU_CHECK(rc == -1 && strstr(err.msg, tmpf), "commit of a missing file: rc %d '%s'", rc,
             err.msg);

    /* the empty file */
    rc = lmd_file_write_atomic(path, "", 0, &err);
    rc |= lmd_file_read(path, 10, &text, &len, &err);
    TU_CHECK(rc == 0 && len == 0 && text && text[0] == '\0', "empty file");
    free(text);
    free(data);

    /* lmd_path: a path that fits is formatted, one that does not is refused and cleared */
    char small[16];
    err.msg[0] = '\0';
    TU_CHECK(lmd_path(small, sizeof small, &err, "%s/%s", "dir", "file") == 0 &&
                 !strcmp(small, "dir/file"),
             "lmd_path fits: '%s'", small);
    TU_CHECK(lmd_path(small, sizeof small, &err, "%s/%s", "a-long-directory", "f") == -1 &&
                 small[0] == '\0' && strstr(err.msg, "path too long"),
             "lmd_path too long: '%s' '%s'", small, err.msg);
    TU_CHECK(lmd_path(small, sizeof small, &err, "%s", "exactly15chars!") == 0,
             "lmd_path: 15 characters fit in 16 bytes: %s", err.msg);
    char *d = lmd_strdup("copy");
    TU_CHECK(d && !strcmp(d, "copy") && lmd_strdup(NULL) == NULL, "lmd_strdup");
    free(d);
    return tu_summary("test_fileio");
}
