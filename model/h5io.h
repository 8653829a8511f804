/* h5io.h — small checked helpers for writing and reading plain HDF5 datasets and attributes
 * (intermediate groups created on demand). Every failure returns -1 with a message naming the
 * file and the path. */
#ifndef LMDISP_H5IO_H
#define LMDISP_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Silences HDF5's automatic error printing for this process (messages come from lmdisp). */
void lmd_h5_quiet(void);
/* The innermost HDF5 error description of the current error stack ("" if none). */
const char *lmd_h5_last_error(void);

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
/* Reads the dims of a dataset (rank <= 8). */
int lmd_h5_dims(hid_t file, const char *path, int *rank, hsize_t *dims, lmd_err *err);

#endif
