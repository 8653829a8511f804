/* fileio.h — whole-file reads with every error checked, and atomic replacement of small files
 * (temporary file, fsync, rename, fsync of the directory), for the text files of a study. */
#ifndef LMDISP_FILEIO_H
#define LMDISP_FILEIO_H

#include <stddef.h>

#include "util.h"

#define LMD_FILE_MISSING 1 /* lmd_file_read: the file does not exist (ENOENT) */

/* Opens path read-only (O_CLOEXEC) and checks it is a regular file: *fd and its *size. Returns
 * 0, LMD_FILE_MISSING (ENOENT; no message, nothing open) or -1 with a message naming the file
 * (nothing open). */
int lmd_file_open_regular(const char *path, int *fd, size_t *size, lmd_err *err);

/* Reads the regular file path into a new NUL-terminated buffer (*text, free with free(); *len
 * without the NUL, len may be NULL). Refuses files larger than max_bytes. Returns 0,
 * LMD_FILE_MISSING (no message needed, *text NULL) or -1 with a message naming the file. */
int lmd_file_read(const char *path, size_t max_bytes, char **text, size_t *len, lmd_err *err);

/* Replaces path with data[0..n) so that a reader sees the old or the new contents, never a
 * part: writes path.tmp.<pid>, fsyncs it, renames it over path and fsyncs the directory.
 * Returns 0, or -1 with a message (the temporary file is removed). */
int lmd_file_write_atomic(const char *path, const void *data, size_t n, lmd_err *err);

/* Publishes a finished temporary file written by another writer (HDF5): fsyncs tmp, renames it
 * over path and fsyncs the directory, so after a crash path is the old or the complete new
 * file. Returns 0, or -1 with a message (tmp is left for the caller to remove). */
int lmd_file_commit(const char *tmp, const char *path, lmd_err *err);

/* Starts the kernel's write-back of bytes [from, from + len) of fd without waiting for it
 * (Linux sync_file_range WRITE; nothing elsewhere), so that a long sequential write's final
 * fsync has little left to do. Errors are left for that fsync to report. */
void lmd_file_start_writeback(int fd, long long from, long long len);

/* fsync of the directory holding path, so a rename into it survives a crash. */
int lmd_fsync_parent_dir(const char *path, lmd_err *err);

#endif
