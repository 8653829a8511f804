/* ph5write.h — collective writing of one HDF5 file with the MPI-IO driver, the way the HDF
 * Group's parallel examples do it: every rank makes the same create calls (metadata is
 * collective) and writes a contiguous block of rows (the leading dimension) with a collective
 * H5Dwrite; a rank with no rows selects none and still calls. Knows nothing of specs or cells.
 *
 * Every function is collective over the communicator given to lmd_pfile_create and returns
 * the same value on every rank: when any rank fails, all return -1 and every rank's err holds
 * the message of the lowest failing rank. MPI errors are returned, not fatal (the file keeps a
 * duplicate of the communicator with MPI_ERRORS_RETURN), and reported with MPI's own text. */
#ifndef LMDISP_PH5WRITE_H
#define LMDISP_PH5WRITE_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "mpicheck.h"
#include "util.h"

typedef struct {
    MPI_Comm comm; /* private duplicate, errors returned */
    int rank, size;
    hid_t file; /* -1 when not open */
    hid_t dxpl; /* collective transfer property list */
    char path[4096];
} lmd_pfile;

/* Creates (truncates) path on every rank of comm with the MPI-IO driver. The file uses the
 * HDF5 1.8 object format, so attributes may exceed 64 KiB (dense attribute storage) — the spec
 * text is stored as one. On failure nothing is left open. */
int lmd_pfile_create(lmd_pfile *pf, const char *path, MPI_Comm comm, lmd_err *err);

/* Closes the file (collective) and frees the communicator; safe on a failed or closed pf. */
int lmd_pfile_close(lmd_pfile *pf, lmd_err *err);

/* Creates dataset name (intermediate groups created) of HDF5 type `type` (a native type:
 * stored and held in memory as that type) with `rank` >= 1 dimensions dims (identical on every
 * rank), then writes this rank's rows [row0, row0 + nrows) of dimension 0 from data, which
 * holds nrows * prod(dims[1..rank)) values in C order. nrows may be 0 (data may be NULL). The
 * row blocks of the ranks must not overlap; rows nobody writes keep the fill value (0). */
int lmd_pfile_write(lmd_pfile *pf, const char *name, hid_t type, int rank, const hsize_t *dims,
                    hsize_t row0, hsize_t nrows, const void *data, lmd_err *err);

/* A string dataset [n] of fixed-length, NUL-padded UTF-8 strings (the length is the longest
 * string of any rank, agreed here: parallel HDF5 cannot write variable-length data). This rank
 * writes strs[0..nrows) as rows [row0, row0 + nrows). h5py reads them as bytes; .asstr()
 * decodes. */
int lmd_pfile_write_strings(lmd_pfile *pf, const char *name, hsize_t n, hsize_t row0, hsize_t nrows,
                            const char *const *strs, lmd_err *err);

/* Attributes on object obj ("/" = root). The value must be the same on every rank. Strings
 * are variable-length UTF-8 (h5py reads str). */
int lmd_pfile_attr_str(lmd_pfile *pf, const char *obj, const char *name, const char *value,
                       lmd_err *err);
int lmd_pfile_attr_i64(lmd_pfile *pf, const char *obj, const char *name, int64_t value,
                       lmd_err *err);

#endif
