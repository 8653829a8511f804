/* fileio.c — whole-file reads and atomic small-file writes (see fileio.h). */
#define _GNU_SOURCE /* sync_file_range */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int lmd_file_open_regular(const char *path, int *fd, size_t *size, lmd_err *err) {
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        if (errno == ENOENT) return LMD_FILE_MISSING;
        return lmd_errf(err, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(*fd, &st) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return lmd_errf(err, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return lmd_errf(err, "%s is not a regular file", path);
    }
    *size = (size_t)st.st_size;
    return 0;
}

int lmd_file_read(const char *path, size_t max_bytes, char **text, size_t *len, lmd_err *err) {
    *text = NULL;
    if (len) *len = 0;
    int fd = -1;
    size_t size = 0;
    int rc = lmd_file_open_regular(path, &fd, &size, err);
    if (rc) return rc;
    if (size > max_bytes) {
        close(fd);
        return lmd_errf(err,
                        "%s is %lld bytes, more than the %zu this file may have (damaged or "
                        "not written by lmdisp?)",
                        path, (long long)size, max_bytes);
    }
    /* read to EOF, not just st_size bytes: a file that grew since fstat is still caught */
    size_t cap = size + 1, n = 0;
    char *buf = lmd_calloc(cap + 1, 1);
    for (;;) {
        if (n == cap) {
            if (n > max_bytes) break;
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) lmd_die("out of memory reading %s", path);
            buf = nb, cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return lmd_errf(err, "cannot read %s: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if (close(fd) != 0) {
        int e = errno;
        free(buf);
        return lmd_errf(err, "cannot read %s (close): %s", path, strerror(e));
    }
    if (n > max_bytes) {
        free(buf);
        return lmd_errf(err, "%s grew beyond %zu bytes while being read", path, max_bytes);
    }
    buf[n] = '\0';
    *text = buf;
    if (len) *len = n;
    return 0;
}

void lmd_file_start_writeback(int fd, long long from, long long len) {
#ifdef SYNC_FILE_RANGE_WRITE
    (void)sync_file_range(fd, (off_t)from, (off_t)len, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd, (void)from, (void)len;
#endif
}

int lmd_fsync_parent_dir(const char *path, lmd_err *err) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        lmd_pathf(dir, ".");
    else if (slash == path)
        lmd_pathf(dir, "/");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir)
        return lmd_errf(err, "path too long: %s", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return lmd_errf(err, "cannot open directory %s to sync it: %s", dir, strerror(errno));
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL) /* EINVAL: file systems that cannot sync directories */
        rc = lmd_errf(err, "cannot sync directory %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int lmd_file_write_atomic(const char *path, const void *data, size_t n, lmd_err *err) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return lmd_errf(err, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return lmd_errf(err, "cannot write %s: cannot create %s: %s (is the directory writable?)",
                        path, tmp, strerror(errno));
    const char *p = data;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return lmd_errf(err, "cannot write %s: %s (disk full?)", tmp, strerror(e));
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return lmd_errf(err, "cannot write %s: fsync failed: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return lmd_errf(err, "cannot write %s: close failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return lmd_errf(err, "cannot replace %s: rename from %s failed: %s", path, tmp,
                        strerror(e));
    }
    return lmd_fsync_parent_dir(path, err);
}

int lmd_file_commit(const char *tmp, const char *path, lmd_err *err) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lmd_errf(err, "cannot open %s to sync it: %s", tmp, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return lmd_errf(err, "cannot sync %s: %s (disk full or failing?)", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0)
        return lmd_errf(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    return lmd_fsync_parent_dir(path, err);
}
