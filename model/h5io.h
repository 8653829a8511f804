/* h5io.h — small checked helpers for writing and reading plain HDF5 datasets and attributes
 * (intermediate groups created on demand). Every failure returns -1 with a message naming the
 * file and the path. */
#ifndef LMDISP_H5IO_H
#define LMDISP_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* lmdisp's one policy for HDF5 errors: HDF5's automatic printing of its error stack is off for
 * the whole process (lmd_h5_quiet: main() calls it, and so does every entry point here that
 * opens or creates a file), and each failure is reported once, by lmdisp, naming the file and
 * the object, with the innermost (most specific) HDF5 description appended. Both must be taken
 * right after the failing HDF5 call: the next API call clears the stack. */
void lmd_h5_quiet(void);
/* The innermost HDF5 error description of the current error stack ("" if none). */
const char *lmd_h5_last_error(void);
/* 1 when some error on the current stack is a failed checksum (Fletcher32): damaged data. */
int lmd_h5_checksum_failed(void);
/* lmd_errf with " (HDF5: <innermost>)" appended when the stack has one. Returns -1. */
int lmd_h5_errf(lmd_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Closes every id >= 0 of ids[0..n) by its type (file, group, dataset, attribute, space, type,
 * property list) and sets it to -1. */
void lmd_h5_close_all(hid_t *ids, int n);

/* Attributes on an open object loc. `who` starts every message (e.g. the file's path, or
 * "checkpoint 'x.h5'"); `where` is the object's path for messages ("/", "/optimizer/"). */
int lmd_h5_attr_put_i64(hid_t loc, const char *name, int64_t v, const char *who, lmd_err *err);
int lmd_h5_attr_put_i64s(hid_t loc, const char *name, const int64_t *v, hsize_t n, const char *who,
                         lmd_err *err);
int lmd_h5_attr_put_u64s(hid_t loc, const char *name, const uint64_t *v, hsize_t n, const char *who,
                         lmd_err *err);
/* Fixed-length, NUL-terminated ASCII string: unlike a variable-length one it does not live in the
 * global heap, which carries no checksum and whose sizes HDF5 1.10 trusts. */
int lmd_h5_attr_put_fixed_str(hid_t loc, const char *name, const char *s, const char *who,
                              lmd_err *err);
/* A single integer attribute as int64 (any stored integer type converts); missing is an error. */
int lmd_h5_attr_get_i64(hid_t loc, const char *where, const char *name, int64_t *v, const char *who,
                        lmd_err *err);
/* lmd_h5_attr_get_i64 of an optional attribute: 1 with *v set when present, 0 when absent, -1
 * on an error (err set). */
int lmd_h5_attr_get_opt_i64(hid_t loc, const char *where, const char *name, int64_t *v,
                            const char *who, lmd_err *err);
/* An integer attribute of exactly n elements as uint64. */
int lmd_h5_attr_get_u64s(hid_t loc, const char *where, const char *name, uint64_t *v, size_t n,
                         const char *who, lmd_err *err);
/* A scalar string attribute, fixed-length (null- or space-padded) or variable-length, ASCII or
 * UTF-8, into buf (truncated to cap-1 bytes, trailing padding removed). */
int lmd_h5_attr_get_str(hid_t loc, const char *name, char *buf, size_t cap, const char *who,
                        lmd_err *err);

/* Creates (truncating) a file with the default driver. Returns an id or -1. */
hid_t lmd_h5_create(const char *path, lmd_err *err);
/* Opens read-only. */
hid_t lmd_h5_open(const char *path, lmd_err *err);

/* Writes a dataset of rank dims at path (e.g. "/grads/wte"); type is H5T_NATIVE_FLOAT,
 * H5T_NATIVE_DOUBLE, H5T_NATIVE_INT64 etc. for data in memory; stored with the same type. */
int lmd_h5_write(hid_t file, const char *path, hid_t memtype, const void *data, int rank,
                 const hsize_t *dims, lmd_err *err);
/* Scalar dataset. */
int lmd_h5_write_scalar_f64(hid_t file, const char *path, double v, lmd_err *err);
/* Attributes on an object (path "/" for the root). */
int lmd_h5_attr_i64(hid_t file, const char *obj, const char *name, int64_t v, lmd_err *err);
int lmd_h5_attr_f64(hid_t file, const char *obj, const char *name, double v, lmd_err *err);
int lmd_h5_attr_str(hid_t file, const char *obj, const char *name, const char *v, lmd_err *err);

/* Reads a whole dataset converting to memtype into buf of capacity n elements; *count gets the
 * element count. Fails if the dataset is larger than n. */
int lmd_h5_read(hid_t file, const char *path, hid_t memtype, void *buf, size_t n, size_t *count,
                lmd_err *err);
/* lmd_h5_read of a dataset that must hold exactly `want` values. */
int lmd_h5_read_exact(hid_t file, const char *path, hid_t memtype, void *buf, size_t want,
                      lmd_err *err);
/* A fixed-length string dataset of exactly n strings (parallel HDF5 writes no variable-length
 * ones) into *out: n malloc'd NUL-terminated copies (trailing NUL padding dropped). *out is
 * allocated even on failure, its entries then NULL, so freeing each entry and *out cleans up. */
int lmd_h5_read_strings(hid_t file, const char *path, size_t n, char ***out, lmd_err *err);
/* Reads the dims of a dataset (rank <= 8). */
int lmd_h5_dims(hid_t file, const char *path, int *rank, hsize_t *dims, lmd_err *err);

#endif
