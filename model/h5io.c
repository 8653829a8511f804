/* h5io.c — lmdisp's HDF5 layer: the error policy (h5io.h), attribute and dataset helpers. */
#include "h5io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lmd_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
    char innermost[512]; /* description of the most specific error on the stack */
    int checksum;        /* some error on the stack is a failed checksum */
} h5_why;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    h5_why *w = data;
    const char *d = e->desc ? e->desc : "";
    if (n == 0) snprintf(w->innermost, sizeof w->innermost, "%s", d);
    if (strstr(d, "checksum") || strstr(d, "Fletcher32")) w->checksum = 1;
    return 0;
}

/* H5E_WALK_UPWARD starts at the most specific error (n = 0) and ends at the API call. */
static void why_collect(h5_why *w) {
    memset(w, 0, sizeof *w);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, w);
}

static char last_err[512];

const char *lmd_h5_last_error(void) {
    h5_why w;
    why_collect(&w);
    snprintf(last_err, sizeof last_err, "%s", w.innermost);
    return last_err;
}

int lmd_h5_checksum_failed(void) {
    h5_why w;
    why_collect(&w);
    return w.checksum;
}

int lmd_h5_errf(lmd_err *err, const char *fmt, ...) {
    h5_why w;
    why_collect(&w);
    char msg[LMD_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w.innermost[0]) return lmd_errf(err, "%s (HDF5: %s)", msg, w.innermost);
    return lmd_errf(err, "%s", msg);
}

void lmd_h5_close_all(hid_t *ids, int n) {
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0) continue;
        switch (H5Iget_type(ids[i])) {
        case H5I_FILE: H5Fclose(ids[i]); break;
        case H5I_GROUP: H5Gclose(ids[i]); break;
        case H5I_DATASET: H5Dclose(ids[i]); break;
        case H5I_ATTR: H5Aclose(ids[i]); break;
        case H5I_DATASPACE: H5Sclose(ids[i]); break;
        case H5I_DATATYPE: H5Tclose(ids[i]); break;
        case H5I_GENPROP_LST: H5Pclose(ids[i]); break;
        default: break;
        }
        ids[i] = -1;
    }
}

/* ---- attributes on an open object ---- */

/* n values of memory type mtype stored as ftype; a scalar space when scalar */
static int attr_put(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *v, hsize_t n,
                    int scalar, const char *who, lmd_err *err) {
    hid_t ids[2] = {-1, -1};
    ids[0] = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    if (ids[0] < 0)
        return lmd_h5_errf(err, "%s: cannot create dataspace for attribute %s", who, name);
    ids[1] = H5Acreate2(loc, name, ftype, ids[0], H5P_DEFAULT, H5P_DEFAULT);
    if (ids[1] < 0 || H5Awrite(ids[1], mtype, v) < 0) {
        lmd_h5_errf(err, "%s: cannot write attribute %s", who, name);
        lmd_h5_close_all(ids, 2);
        return -1;
    }
    lmd_h5_close_all(ids, 2);
    return 0;
}

int lmd_h5_attr_put_i64(hid_t loc, const char *name, int64_t v, const char *who, lmd_err *err) {
    return attr_put(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 1, 1, who, err);
}

int lmd_h5_attr_put_i64s(hid_t loc, const char *name, const int64_t *v, hsize_t n, const char *who,
                         lmd_err *err) {
    return attr_put(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n, 0, who, err);
}

int lmd_h5_attr_put_u64s(hid_t loc, const char *name, const uint64_t *v, hsize_t n, const char *who,
                         lmd_err *err) {
    return attr_put(loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, v, n, n == 1, who, err);
}

int lmd_h5_attr_put_fixed_str(hid_t loc, const char *name, const char *s, const char *who,
                              lmd_err *err) {
    hid_t ids[3] = {-1, -1, -1};
    ids[0] = H5Tcopy(H5T_C_S1);
    if (ids[0] < 0 || H5Tset_size(ids[0], strlen(s) + 1) < 0 ||
        H5Tset_strpad(ids[0], H5T_STR_NULLTERM) < 0 || (ids[1] = H5Screate(H5S_SCALAR)) < 0 ||
        (ids[2] = H5Acreate2(loc, name, ids[0], ids[1], H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(ids[2], ids[0], s) < 0) {
        lmd_h5_errf(err, "%s: cannot write string attribute %s", who, name);
        lmd_h5_close_all(ids, 3);
        return -1;
    }
    lmd_h5_close_all(ids, 3);
    return 0;
}

/* Opens attribute name of loc with its type and space (ids[0..2]); checks it is an integer of
 * n elements (n == 0: a single one, "must be a single integer"). */
static int attr_open_int(hid_t loc, const char *where, const char *name, size_t n, hid_t ids[3],
                         const char *who, lmd_err *err) {
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) return lmd_h5_errf(err, "%s: cannot query attribute %s%s", who, where, name);
    if (ex == 0) return lmd_errf(err, "%s: missing attribute %s%s", who, where, name);
    if ((ids[0] = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (ids[1] = H5Aget_type(ids[0])) < 0 ||
        (ids[2] = H5Aget_space(ids[0])) < 0)
        return lmd_h5_errf(err, "%s: cannot open attribute %s%s", who, where, name);
    int is_int = H5Tget_class(ids[1]) == H5T_INTEGER;
    hssize_t np = H5Sget_simple_extent_npoints(ids[2]);
    if (n == 0) {
        if (!is_int)
            return lmd_errf(err, "%s: attribute %s%s must be an integer", who, where, name);
        if (np != 1)
            return lmd_errf(err, "%s: attribute %s%s must be a single integer", who, where, name);
    } else if (!is_int || np != (hssize_t)n) {
        return lmd_errf(err, "%s: attribute %s%s must hold %zu integer(s), found %lld %s", who,
                        where, name, n, (long long)np,
                        is_int ? "integer(s)" : "non-integer value(s)");
    }
    return 0;
}

int lmd_h5_attr_get_i64(hid_t loc, const char *where, const char *name, int64_t *v, const char *who,
                        lmd_err *err) {
    hid_t ids[3] = {-1, -1, -1};
    int rc = attr_open_int(loc, where, name, 0, ids, who, err);
    if (!rc && H5Aread(ids[0], H5T_NATIVE_INT64, v) < 0)
        rc = lmd_h5_errf(err, "%s: cannot read attribute %s%s", who, where, name);
    lmd_h5_close_all(ids, 3);
    return rc;
}

int lmd_h5_attr_get_opt_i64(hid_t loc, const char *where, const char *name, int64_t *v,
                            const char *who, lmd_err *err) {
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) return lmd_h5_errf(err, "%s: cannot query attribute %s%s", who, where, name);
    if (ex == 0) return 0;
    return lmd_h5_attr_get_i64(loc, where, name, v, who, err) ? -1 : 1;
}

int lmd_h5_attr_get_u64s(hid_t loc, const char *where, const char *name, uint64_t *v, size_t n,
                         const char *who, lmd_err *err) {
    hid_t ids[3] = {-1, -1, -1};
    int rc = attr_open_int(loc, where, name, n, ids, who, err);
    if (!rc && H5Aread(ids[0], H5T_NATIVE_UINT64, v) < 0)
        rc = lmd_h5_errf(err, "%s: cannot read attribute %s%s", who, where, name);
    lmd_h5_close_all(ids, 3);
    return rc;
}

int lmd_h5_attr_get_str(hid_t loc, const char *name, char *buf, size_t cap, const char *who,
                        lmd_err *err) {
    hid_t ids[4] = {-1, -1, -1, -1}; /* attr, file type, space, memory type */
    int rc = -1;
    if ((ids[0] = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (ids[1] = H5Aget_type(ids[0])) < 0 ||
        (ids[2] = H5Aget_space(ids[0])) < 0) {
        lmd_h5_errf(err, "%s: cannot open attribute %s", who, name);
        goto done;
    }
    if (H5Tget_class(ids[1]) != H5T_STRING || H5Sget_simple_extent_npoints(ids[2]) != 1) {
        lmd_errf(err, "%s: attribute '%s' must be a single string", who, name);
        goto done;
    }
    /* Same character set as stored: HDF5 refuses to convert between ASCII and UTF-8. */
    H5T_cset_t cset = H5Tget_cset(ids[1]);
    htri_t vl = H5Tis_variable_str(ids[1]);
    if (vl < 0 || (ids[3] = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(ids[3], cset) < 0) {
        lmd_h5_errf(err, "%s: cannot inspect string attribute %s", who, name);
        goto done;
    }
    if (vl) {
        char *s = NULL;
        if (H5Tset_size(ids[3], H5T_VARIABLE) < 0 || H5Aread(ids[0], ids[3], &s) < 0) {
            lmd_h5_errf(err, "%s: cannot read attribute %s", who, name);
            goto done;
        }
        snprintf(buf, cap, "%s", s ? s : "");
        H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(ids[1]);
        char *tmp = lmd_calloc(sz + 1, 1);
        if (H5Tset_size(ids[3], sz) < 0 || H5Tset_strpad(ids[3], H5T_STR_NULLPAD) < 0 ||
            H5Aread(ids[0], ids[3], tmp) < 0) {
            free(tmp);
            lmd_h5_errf(err, "%s: cannot read attribute %s", who, name);
            goto done;
        }
        snprintf(buf, cap, "%s", tmp);
        free(tmp);
    }
    size_t len = strlen(buf);
    while (len > 0 && buf[len - 1] == ' ') buf[--len] = '\0';
    rc = 0;
done:
    lmd_h5_close_all(ids, 4);
    return rc;
}

/* ---- files and whole datasets by path ---- */

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

int lmd_h5_read_exact(hid_t file, const char *path, hid_t memtype, void *buf, size_t want,
                      lmd_err *err) {
    size_t got = 0;
    if (lmd_h5_read(file, path, memtype, buf, want, &got, err)) return -1;
    if (got != want) {
        char fname[512];
        file_name(file, fname, sizeof fname);
        return lmd_errf(err, "%s: dataset %s holds %zu values, expected %zu", fname, path, got,
                        want);
    }
    return 0;
}

int lmd_h5_read_strings(hid_t file, const char *path, size_t n, char ***out, lmd_err *err) {
    char fname[512];
    *out = lmd_calloc(n ? n : 1, sizeof **out);
    hid_t ids[3] = {-1, -1, -1}; /* dataset, type, space */
    int rc = 0;
    if ((ids[0] = H5Dopen2(file, path, H5P_DEFAULT)) < 0) {
        file_name(file, fname, sizeof fname);
        return lmd_errf(err, "%s: no dataset %s", fname, path);
    }
    ids[1] = H5Dget_type(ids[0]);
    if (ids[1] < 0 || H5Tget_class(ids[1]) != H5T_STRING || H5Tis_variable_str(ids[1]) != 0) {
        file_name(file, fname, sizeof fname);
        rc = lmd_errf(err, "%s: %s is not a fixed-length string dataset", fname, path);
    } else {
        size_t len = H5Tget_size(ids[1]);
        char *buf = lmd_calloc(n * len + 1, 1);
        ids[2] = H5Dget_space(ids[0]);
        hssize_t np = ids[2] < 0 ? -1 : H5Sget_simple_extent_npoints(ids[2]);
        file_name(file, fname, sizeof fname);
        if (np != (hssize_t)n)
            rc = lmd_errf(err, "%s: %s holds %lld strings, expected %zu", fname, path,
                          (long long)np, n);
        else if (n && H5Dread(ids[0], ids[1], H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            rc = lmd_h5_errf(err, "%s: cannot read %s", fname, path);
        for (size_t i = 0; i < n && !rc; i++) {
            (*out)[i] = lmd_calloc(len + 1, 1);
            memcpy((*out)[i], buf + i * len, len);
        }
        free(buf);
    }
    lmd_h5_close_all(ids, 3);
    return rc;
}
