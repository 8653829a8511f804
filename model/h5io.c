#include "h5io.h"

#include <string.h>

void lmd_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static char last_err[512];

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)data;
    if (n == 0 && e->desc) snprintf(last_err, sizeof last_err, "%s", e->desc);
    return 0;
}

const char *lmd_h5_last_error(void) {
    last_err[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, NULL);
    return last_err;
}

hid_t lmd_h5_create(const char *path, lmd_err *err) {
    lmd_h5_quiet();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) lmd_errf(err, "%s: cannot create HDF5 file (%s)", path, lmd_h5_last_error());
    return f;
}

hid_t lmd_h5_open(const char *path, lmd_err *err) {
    lmd_h5_quiet();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) lmd_errf(err, "%s: cannot open as HDF5 (%s)", path, lmd_h5_last_error());
    return f;
}

static void file_name(hid_t file, char *buf, size_t n) {
    if (H5Fget_name(file, buf, n) < 0) snprintf(buf, n, "(hdf5 file)");
}

int lmd_h5_write(hid_t file, const char *path, hid_t memtype, const void *data, int rank,
                 const hsize_t *dims, lmd_err *err) {
    char fname[512];
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(file, path, memtype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = ds >= 0 ? H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(space);
    if (st < 0) {
        file_name(file, fname, sizeof fname);
        return lmd_errf(err, "%s: cannot write dataset %s (%s)", fname, path, lmd_h5_last_error());
    }
    return 0;
}

int lmd_h5_write_scalar_f64(hid_t file, const char *path, double v, lmd_err *err) {
    return lmd_h5_write(file, path, H5T_NATIVE_DOUBLE, &v, 0, NULL, err);
}

static int write_attr(hid_t file, const char *obj, const char *name, hid_t type, const void *v,
                      lmd_err *err) {
    char fname[512];
    hid_t o = H5Oopen(file, obj, H5P_DEFAULT);
    herr_t st = -1;
    if (o >= 0) {
        if (H5Aexists(o, name) > 0) H5Adelete(o, name);
        hid_t space = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(o, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            st = H5Awrite(a, type, v);
            H5Aclose(a);
        }
        H5Sclose(space);
        H5Oclose(o);
    }
    if (st < 0) {
        file_name(file, fname, sizeof fname);
        return lmd_errf(err, "%s: cannot write attribute %s on %s (%s)", fname, name, obj,
                        lmd_h5_last_error());
    }
    return 0;
}

int lmd_h5_attr_i64(hid_t file, const char *obj, const char *name, int64_t v, lmd_err *err) {
    return write_attr(file, obj, name, H5T_NATIVE_INT64, &v, err);
}

int lmd_h5_attr_f64(hid_t file, const char *obj, const char *name, double v, lmd_err *err) {
    return write_attr(file, obj, name, H5T_NATIVE_DOUBLE, &v, err);
}

int lmd_h5_attr_str(hid_t file, const char *obj, const char *name, const char *v, lmd_err *err) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = write_attr(file, obj, name, t, &v, err);
    H5Tclose(t);
    return rc;
}

int lmd_h5_dims(hid_t file, const char *path, int *rank, hsize_t *dims, lmd_err *err) {
    char fname[512];
    hid_t ds = H5Dopen2(file, path, H5P_DEFAULT);
    if (ds < 0) {
        file_name(file, fname, sizeof fname);
        return lmd_errf(err, "%s: no dataset %s", fname, path);
    }
    hid_t sp = H5Dget_space(ds);
    int r = H5Sget_simple_extent_ndims(sp);
    if (r < 0 || r > 8) {
        H5Sclose(sp);
        H5Dclose(ds);
        file_name(file, fname, sizeof fname);
        return lmd_errf(err, "%s: dataset %s has unsupported rank %d", fname, path, r);
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    *rank = r;
    H5Sclose(sp);
    H5Dclose(ds);
    return 0;
}

int lmd_h5_read(hid_t file, const char *path, hid_t memtype, void *buf, size_t n, size_t *count,
                lmd_err *err) {
    char fname[512];
    int rank;
    hsize_t dims[8];
    if (lmd_h5_dims(file, path, &rank, dims, err)) return -1;
    size_t total = 1;
    for (int i = 0; i < rank; i++) total *= (size_t)dims[i];
    if (total > n) {
        file_name(file, fname, sizeof fname);
        return lmd_errf(err, "%s: dataset %s holds %zu values, expected at most %zu", fname, path,
                        total, n);
    }
    hid_t ds = H5Dopen2(file, path, H5P_DEFAULT);
    herr_t st = ds >= 0 ? H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : -1;
    if (ds >= 0) H5Dclose(ds);
    if (st < 0) {
        file_name(file, fname, sizeof fname);
        return lmd_errf(err, "%s: cannot read dataset %s (%s)", fname, path, lmd_h5_last_error());
    }
    if (count) *count = total;
    return 0;
}
