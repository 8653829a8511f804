/* ph5write.c — collective parallel-HDF5 writing of row-partitioned datasets (ph5write.h). */
#include "ph5write.h"

#include <stdlib.h>
#include <string.h>

#include "h5io.h"

static int h5fail(const lmd_pfile *pf, lmd_err *err, const char *what, const char *name) {
    return lmd_errf(err, "%s: %s %s (%s)", pf->path, what, name, lmd_h5_last_error());
}

int lmd_pfile_create(lmd_pfile *pf, const char *path, MPI_Comm comm, lmd_err *err) {
    memset(pf, 0, sizeof *pf);
    pf->file = pf->dxpl = -1;
    pf->comm = MPI_COMM_NULL;
    snprintf(pf->path, sizeof pf->path, "%s", path);
    int rc = MPI_Comm_dup(comm, &pf->comm);
    if (lmd_mpi_check(rc, "duplicating the communicator for the parallel HDF5 file", err))
        return -1;
    rc = MPI_Comm_set_errhandler(pf->comm, MPI_ERRORS_RETURN);
    if (!rc) rc = MPI_Comm_rank(pf->comm, &pf->rank);
    if (!rc) rc = MPI_Comm_size(pf->comm, &pf->size);
    if (lmd_mpi_check(rc, "setting up the parallel HDF5 file's communicator", err)) {
        MPI_Comm_free(&pf->comm); /* already failing: the first error is the one reported */
        return -1;
    }
    lmd_h5_quiet();
    int bad = 0;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, pf->comm, MPI_INFO_NULL) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0 ||
        H5Pset_all_coll_metadata_ops(fapl, 1) < 0 || H5Pset_coll_metadata_write(fapl, 1) < 0)
        bad = h5fail(pf, err, "cannot set up", "the MPI-IO file access");
    if (!bad) {
        pf->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (pf->file < 0)
            bad = lmd_errf(err,
                           "%s: cannot create the HDF5 file with the MPI-IO driver (%s); "
                           "is the directory writable and on a file system all ranks share?",
                           path, lmd_h5_last_error());
    }
    if (fapl >= 0) H5Pclose(fapl);
    if (!bad) {
        pf->dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (pf->dxpl < 0 || H5Pset_dxpl_mpio(pf->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
            bad = h5fail(pf, err, "cannot set up", "collective transfers");
    }
    if (lmd_mpi_agree(pf->comm, bad, err)) {
        lmd_err ignore;
        lmd_pfile_close(pf, &ignore);
        return -1;
    }
    return 0;
}

int lmd_pfile_close(lmd_pfile *pf, lmd_err *err) {
    int bad = 0;
    if (pf->dxpl >= 0) H5Pclose(pf->dxpl);
    pf->dxpl = -1;
    if (pf->file >= 0 && H5Fclose(pf->file) < 0) bad = h5fail(pf, err, "error closing", "the file");
    pf->file = -1;
    if (pf->comm == MPI_COMM_NULL) return bad ? -1 : 0;
    int rc = lmd_mpi_agree(pf->comm, bad, err);
    int frc = MPI_Comm_free(&pf->comm);
    if (!rc && lmd_mpi_check(frc, "freeing the parallel HDF5 file's communicator", err)) rc = -1;
    return rc;
}

/* Creates the dataset; returns its id or -1 (local). */
static hid_t create_dataset(lmd_pfile *pf, const char *name, hid_t type, int rank,
                            const hsize_t *dims, hid_t *space, lmd_err *err) {
    *space = H5Screate_simple(rank, dims, NULL);
    if (*space < 0) {
        h5fail(pf, err, "cannot make the dataspace of", name);
        return -1;
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        if (lcpl >= 0) H5Pclose(lcpl);
        h5fail(pf, err, "cannot set up the creation of", name);
        return -1;
    }
    hid_t ds = H5Dcreate2(pf->file, name, type, *space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (ds < 0) h5fail(pf, err, "cannot create dataset", name);
    return ds;
}

/* Selects rows [row0, row0+nrows) of filespace and a matching memory space, then writes
 * collectively. Every rank calls H5Dwrite, also with an empty selection. */
static int write_rows(lmd_pfile *pf, const char *name, hid_t ds, hid_t memtype, hid_t filespace,
                      int rank, const hsize_t *dims, hsize_t row0, hsize_t nrows, const void *data,
                      lmd_err *err) {
    hsize_t start[8] = {0}, count[8];
    for (int i = 0; i < rank; i++) count[i] = dims[i];
    start[0] = row0;
    count[0] = nrows;
    int bad = 0;
    hid_t memspace = -1;
    if (row0 + nrows > dims[0]) {
        bad = lmd_errf(err, "%s: rows %llu..%llu of dataset %s are out of range (%llu rows)",
                       pf->path, (unsigned long long)row0, (unsigned long long)(row0 + nrows), name,
                       (unsigned long long)dims[0]);
    } else if (nrows == 0) {
        memspace = H5Scopy(filespace);
        if (memspace < 0 || H5Sselect_none(memspace) < 0 || H5Sselect_none(filespace) < 0)
            bad = h5fail(pf, err, "cannot make an empty selection of", name);
    } else {
        memspace = H5Screate_simple(rank, count, NULL);
        if (memspace < 0 ||
            H5Sselect_hyperslab(filespace, H5S_SELECT_SET, start, NULL, count, NULL) < 0)
            bad = h5fail(pf, err, "cannot select this rank's rows of", name);
    }
    if (lmd_mpi_agree(pf->comm, bad, err)) {
        if (memspace >= 0) H5Sclose(memspace);
        return -1;
    }
    static const double dummy[1] = {0}; /* HDF5 wants a buffer even for an empty selection */
    if (H5Dwrite(ds, memtype, memspace, filespace, pf->dxpl, data ? data : dummy) < 0)
        bad = h5fail(pf, err, "cannot write (collective H5Dwrite)", name);
    H5Sclose(memspace);
    return lmd_mpi_agree(pf->comm, bad, err);
}

int lmd_pfile_write(lmd_pfile *pf, const char *name, hid_t type, int rank, const hsize_t *dims,
                    hsize_t row0, hsize_t nrows, const void *data, lmd_err *err) {
    if (rank < 1 || rank > 8) lmd_die("lmd_pfile_write: rank %d of %s not in 1..8", rank, name);
    hid_t space = -1;
    hid_t ds = create_dataset(pf, name, type, rank, dims, &space, err);
    int rc = lmd_mpi_agree(pf->comm, ds < 0, err);
    if (!rc) rc = write_rows(pf, name, ds, type, space, rank, dims, row0, nrows, data, err);
    if (ds >= 0 && H5Dclose(ds) < 0 && !rc) rc = h5fail(pf, err, "error closing dataset", name);
    if (space >= 0) H5Sclose(space);
    return lmd_mpi_agree(pf->comm, rc != 0, err);
}

int lmd_pfile_write_strings(lmd_pfile *pf, const char *name, hsize_t n, hsize_t row0, hsize_t nrows,
                            const char *const *strs, lmd_err *err) {
    unsigned long len = 1, mine = 1;
    for (hsize_t i = 0; i < nrows; i++) {
        size_t l = strlen(strs[i]) + 1;
        if (l > mine) mine = (unsigned long)l;
    }
    int rc = MPI_Allreduce(&mine, &len, 1, MPI_UNSIGNED_LONG, MPI_MAX, pf->comm);
    if (lmd_mpi_agree(pf->comm, lmd_mpi_check(rc, "agreeing on a string length", err), err))
        return -1;
    char *buf = lmd_calloc(nrows ? (size_t)nrows * len : 1, 1);
    for (hsize_t i = 0; i < nrows; i++) memcpy(buf + (size_t)i * len, strs[i], strlen(strs[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    int bad = t < 0 || H5Tset_size(t, len) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
              H5Tset_cset(t, H5T_CSET_UTF8) < 0;
    if (bad) h5fail(pf, err, "cannot make the string type of", name);
    if (lmd_mpi_agree(pf->comm, bad, err)) {
        if (t >= 0) H5Tclose(t);
        free(buf);
        return -1;
    }
    hsize_t dims[1] = {n};
    rc = lmd_pfile_write(pf, name, t, 1, dims, row0, nrows, buf, err);
    H5Tclose(t);
    free(buf);
    return rc;
}

static int write_attr(lmd_pfile *pf, const char *obj, const char *name, hid_t type, const void *v,
                      lmd_err *err) {
    int bad = 0;
    hid_t o = H5Oopen(pf->file, obj, H5P_DEFAULT);
    if (o < 0) {
        bad = h5fail(pf, err, "cannot open object for an attribute:", obj);
    } else {
        hid_t space = H5Screate(H5S_SCALAR);
        hid_t a = space >= 0 ? H5Acreate2(o, name, type, space, H5P_DEFAULT, H5P_DEFAULT) : -1;
        if (a < 0 || H5Awrite(a, type, v) < 0)
            bad = h5fail(pf, err, "cannot write attribute", name);
        if (a >= 0) H5Aclose(a);
        if (space >= 0) H5Sclose(space);
        H5Oclose(o);
    }
    return lmd_mpi_agree(pf->comm, bad, err);
}

int lmd_pfile_attr_str(lmd_pfile *pf, const char *obj, const char *name, const char *value,
                       lmd_err *err) {
    hid_t t = H5Tcopy(H5T_C_S1);
    int bad = t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0;
    if (bad) h5fail(pf, err, "cannot make the string type of attribute", name);
    int rc = lmd_mpi_agree(pf->comm, bad, err);
    if (!rc) rc = write_attr(pf, obj, name, t, &value, err);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int lmd_pfile_attr_i64(lmd_pfile *pf, const char *obj, const char *name, int64_t value,
                       lmd_err *err) {
    return write_attr(pf, obj, name, H5T_NATIVE_INT64, &value, err);
}
