/* checkpoint.c — serial HDF5 checkpoints (DESIGN.md 4.1), written by one process.
 *
 * File layout (the part beyond DESIGN 4.1 is this module's own design):
 *   /                 attributes: format = "lmdisp-checkpoint" (variable-length UTF-8 string,
 *                     what h5py writes by default), format_version = 1, vocab_size, n_ctx,
 *                     n_layer, n_embd, n_head, mlp_dim, step, tokens, seed (all int64)
 *   /params/<name>    float32, shapes of DESIGN 4.1 (one dataset per layer and tensor)
 *   /optimizer        attribute adam_t (int64): number of AdamW updates taken
 *   /optimizer/m/<name>, /optimizer/v/<name>
 *                     AdamW first and second moments, float32, same names and shapes as
 *                     /params (absent when the model had no moments yet, then adam_t = 0)
 *   /state            attributes data_pos (uint64): the loader position;
 *                     rng_disp (uint64[4]): the xoshiro256** state of the dispersion RNG
 * Every dataset is chunked (at most CKPT_CHUNK_FLOATS floats per chunk) with the Fletcher32
 * filter, so a flipped bit in the data is reported instead of silently trained on.
 * A file is complete for a bitwise resume when it has both /optimizer and /state.
 *
 * Writing builds the file in memory (HDF5 core driver), then writes that image to
 * "<path>.tmp.<pid>", fsyncs it, renames it over path and fsyncs the directory (lmd_file_commit),
 * so a crash never leaves a half-written checkpoint under the real name and a full disk is an
 * ordinary write() error (lmd_ckpt_save). */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"
#include "fileio.h"
#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CKPT_FORMAT "lmdisp-checkpoint"
#define CKPT_VERSION 1
#define LMD_CKPT_MAX_STEP 1000000000000LL
#define LMD_CKPT_MAX_TOKENS ((int64_t)1 << 62)
/* 4 MiB chunks: whole small tensors in one chunk, large ones split by rows so each chunk
 * stays far below HDF5's 4 GiB chunk limit and the checksum localizes damage. */
#define CKPT_CHUNK_FLOATS ((size_t)1 << 20)

static const char *const CONFIG_ATTRS[6] = {"vocab_size", "n_ctx",  "n_layer",
                                            "n_embd",     "n_head", "mlp_dim"};

/* ---- the tensor table: per checkpoint dataset, where its floats live in a memory block ---- */

/* Name of layer `layer` of tensor k (layer ignored for unlayered tensors). */
static void tensor_name(const gpt_tensor_info *info, int layer, char *buf, size_t cap) {
    if (info->layered)
        snprintf(buf, cap, info->name, layer);
    else
        snprintf(buf, cap, "%s", info->name);
}

static size_t slice_numel(const gpt_tensor_info *info) {
    return info->ndim == 1 ? info->shape[0] : info->shape[0] * info->shape[1];
}

/* Offset (in floats) of tensor k from the start of params_memory; moments share the layout. */
static size_t tensor_offset(const gpt_model *m, int k) {
    return (size_t)(m->params.t[k] - m->params_memory);
}

/* ---- writing ---- */

/* data is the row-major slice of shape dims[0] (x dims[1]); written as float32, chunked by
 * whole rows, Fletcher32. `what` is the dataset's full path for messages. */
static int dset_write_f32(hid_t loc, const char *name, int ndim, const hsize_t *dims,
                          const float *data, const char *what, const char *file, lmd_err *err) {
    hid_t ids[3] = {-1, -1, -1};
    hsize_t chunk[2] = {dims[0], ndim == 2 ? dims[1] : 1};
    size_t row = ndim == 2 ? (size_t)dims[1] : 1;
    size_t rows_per_chunk = CKPT_CHUNK_FLOATS / row;
    if (rows_per_chunk < 1) rows_per_chunk = 1;
    if (chunk[0] > rows_per_chunk) chunk[0] = rows_per_chunk;

    if ((ids[0] = H5Screate_simple(ndim, dims, NULL)) < 0 ||
        (ids[1] = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_chunk(ids[1], ndim, chunk) < 0 ||
        H5Pset_fletcher32(ids[1]) < 0) {
        lmd_h5_errf(err, "%s: cannot set up dataset %s", file, what);
        lmd_h5_close_all(ids, 3);
        return -1;
    }
    ids[2] = H5Dcreate2(loc, name, H5T_IEEE_F32LE, ids[0], H5P_DEFAULT, ids[1], H5P_DEFAULT);
    if (ids[2] < 0) {
        lmd_h5_errf(err, "%s: cannot create dataset %s", file, what);
        lmd_h5_close_all(ids, 3);
        return -1;
    }
    if (H5Dwrite(ids[2], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        lmd_h5_errf(err, "%s: cannot write dataset %s (disk full?)", file, what);
        lmd_h5_close_all(ids, 3);
        return -1;
    }
    lmd_h5_close_all(ids, 3);
    return 0;
}

/* Writes every tensor of the block `base` (params_memory layout) into group `loc`, whose path
 * is gpath (for messages). */
static int write_tensors(hid_t loc, const char *gpath, const gpt_model *m, const float *base,
                         const char *file, lmd_err *err) {
    for (int k = 0; k < GPT_NUM_TENSORS; k++) {
        gpt_tensor_info info;
        gpt_tensor_describe(&m->cfg, k, &info);
        int nl = info.layered ? m->cfg.n_layer : 1;
        size_t n = slice_numel(&info);
        hsize_t dims[2] = {info.shape[0], info.ndim == 2 ? info.shape[1] : 1};
        for (int l = 0; l < nl; l++) {
            char name[128], what[256];
            tensor_name(&info, l, name, sizeof name);
            snprintf(what, sizeof what, "%s/%s", gpath, name);
            const float *src = base + tensor_offset(m, k) + (size_t)l * n;
            if (dset_write_f32(loc, name, info.ndim, dims, src, what, file, err)) return -1;
        }
    }
    return 0;
}

/* Writes everything into the already created file `f`. */
static int write_contents(hid_t f, const gpt_model *m, const lmd_train_state *st, const char *file,
                          lmd_err *err) {
    const gpt_config *c = &m->cfg;
    const int64_t cfgv[6] = {c->vocab_size, c->n_ctx, c->n_layer, c->n_embd, c->n_head, c->mlp_dim};
    if (lmd_h5_attr_put_fixed_str(f, "format", CKPT_FORMAT, file, err) ||
        lmd_h5_attr_put_i64(f, "format_version", CKPT_VERSION, file, err))
        return -1;
    for (int i = 0; i < 6; i++)
        if (lmd_h5_attr_put_i64(f, CONFIG_ATTRS[i], cfgv[i], file, err)) return -1;
    if (lmd_h5_attr_put_i64(f, "step", st ? st->step : 0, file, err) ||
        lmd_h5_attr_put_i64(f, "tokens", st ? st->tokens : 0, file, err) ||
        lmd_h5_attr_put_i64(f, "seed", st ? st->seed : 0, file, err))
        return -1;

    hid_t g[3] = {-1, -1, -1};
    int rc = -1;
    if ((g[0] = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        lmd_h5_errf(err, "%s: cannot create group /params", file);
        goto done;
    }
    if (write_tensors(g[0], "/params", m, m->params_memory, file, err)) goto done;
    lmd_h5_close_all(g, 1);

    if ((g[0] = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        lmd_h5_errf(err, "%s: cannot create group /optimizer", file);
        goto done;
    }
    int has_moments = m->m_memory && m->v_memory;
    if (lmd_h5_attr_put_i64(g[0], "adam_t", has_moments ? m->adam_t : 0, file, err)) goto done;
    if (has_moments) {
        if ((g[1] = H5Gcreate2(g[0], "m", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
            (g[2] = H5Gcreate2(g[0], "v", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
            lmd_h5_errf(err, "%s: cannot create groups /optimizer/m and /optimizer/v", file);
            goto done;
        }
        if (write_tensors(g[1], "/optimizer/m", m, m->m_memory, file, err) ||
            write_tensors(g[2], "/optimizer/v", m, m->v_memory, file, err))
            goto done;
    }
    lmd_h5_close_all(g, 3);

    if (st) {
        if ((g[0] = H5Gcreate2(f, "state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
            lmd_h5_errf(err, "%s: cannot create group /state", file);
            goto done;
        }
        if (lmd_h5_attr_put_u64s(g[0], "data_pos", &st->data_pos, 1, file, err) ||
            lmd_h5_attr_put_u64s(g[0], "rng_disp", st->rng_disp.s, 4, file, err))
            goto done;
    }
    rc = 0;
done:
    lmd_h5_close_all(g, 3);
    return rc;
}

/* Directory part of path, for messages ("." when there is none). */
static void dir_of(const char *path, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, cap, ".");
    else if (slash == path)
        snprintf(buf, cap, "/");
    else
        snprintf(buf, cap, "%.*s", (int)(slash - path), path);
}

/* Writes n bytes to a new file tmp and fsyncs it; on any failure removes it. ENOSPC and EIO
 * come back here as plain errno values, not from inside HDF5. */
static int write_image(const char *tmp, const char *path, const unsigned char *buf, size_t n,
                       lmd_err *err) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return lmd_errf(err, "cannot save checkpoint '%s': cannot create temporary file '%s': %s",
                        path, tmp, strerror(errno));
    size_t off = 0;
    int e = 0;
    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            e = w < 0 ? errno : ENOSPC;
            break;
        }
        off += (size_t)w;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (e) {
        remove(tmp);
        return lmd_errf(err, "cannot save checkpoint '%s': writing %zu bytes to '%s' failed: %s%s",
                        path, n, tmp, strerror(e),
                        e == ENOSPC || e == EDQUOT ? " (free space there, then resume from the "
                                                     "newest checkpoint)"
                                                   : "");
    }
    return 0;
}

int lmd_ckpt_save(const char *path, const gpt_model *m, const lmd_train_state *st, lmd_err *err) {
    if (!m || !m->params_memory)
        return lmd_errf(err, "cannot save checkpoint '%s': the model has no parameters", path);
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return lmd_errf(err, "cannot save checkpoint '%s': directory '%s': %s", path, dir,
                        strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return lmd_errf(err, "cannot save checkpoint '%s': '%s' is not a directory", path, dir);

    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return lmd_errf(err, "cannot save checkpoint: path too long: '%s'", path);

    /* The file is built in memory (core driver, no backing store) and written out by
     * write_image: HDF5 1.10 cannot recover from a failed write inside H5Fflush/H5Fclose (the
     * file stays half-closed and closing it again, e.g. at exit from MPI_Finalize, crashes),
     * so HDF5 must never see a full disk. The cost is one in-memory copy of the checkpoint. */
    lmd_h5_quiet();
    int rc = -1;
    unsigned char *image = NULL;
    hid_t ids[2] = {-1, -1}; /* fapl, file */
    if ((ids[0] = H5Pcreate(H5P_FILE_ACCESS)) < 0 ||
        H5Pset_fapl_core(ids[0], (size_t)4 << 20, 0) < 0 ||
        H5Pset_fclose_degree(ids[0], H5F_CLOSE_STRONG) < 0) {
        lmd_h5_errf(err, "cannot save checkpoint '%s': cannot set up file access", path);
        goto done;
    }
    ids[1] = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, ids[0]);
    if (ids[1] < 0) {
        lmd_h5_errf(err, "cannot save checkpoint '%s': cannot create it in memory", path);
        goto done;
    }
    if (write_contents(ids[1], m, st, tmp, err)) goto done;
    if (H5Fflush(ids[1], H5F_SCOPE_GLOBAL) < 0) {
        lmd_h5_errf(err, "cannot save checkpoint '%s': cannot flush the in-memory file", path);
        goto done;
    }
    ssize_t n = H5Fget_file_image(ids[1], NULL, 0);
    if (n <= 0) {
        lmd_h5_errf(err, "cannot save checkpoint '%s': cannot get the size of its image", path);
        goto done;
    }
    image = malloc((size_t)n);
    if (!image) {
        lmd_errf(err, "cannot save checkpoint '%s': out of memory for its %lld-byte image", path,
                 (long long)n);
        goto done;
    }
    if (H5Fget_file_image(ids[1], image, (size_t)n) != n) {
        lmd_h5_errf(err, "cannot save checkpoint '%s': cannot copy its image", path);
        goto done;
    }
    hid_t f = ids[1];
    ids[1] = -1;
    if (H5Fclose(f) < 0) { /* in memory: nothing can be left half-written on disk */
        lmd_h5_errf(err, "cannot save checkpoint '%s': closing the in-memory file failed", path);
        goto done;
    }
    if (write_image(tmp, path, image, (size_t)n, err)) goto done;
    /* rename over path and fsync the directory, so after a crash path is the old or the new
     * checkpoint (the second fsync of tmp inside is a no-op: write_image synced it) */
    if (lmd_file_commit(tmp, path, err)) goto done;
    rc = 0;
done:
    lmd_h5_close_all(ids, 2);
    free(image);
    if (rc != 0) remove(tmp); /* may not exist; nothing to report then */
    return rc;
}

/* ---- reading ---- */

/* The attribute readers of h5io, with messages starting "checkpoint 'PATH'". */
static int ck_attr_i64(hid_t loc, const char *where, const char *name, int64_t *v, const char *path,
                       lmd_err *err) {
    char who[PATH_MAX + 16];
    snprintf(who, sizeof who, "checkpoint '%s'", path);
    return lmd_h5_attr_get_i64(loc, where, name, v, who, err);
}

static int ck_attr_u64s(hid_t loc, const char *where, const char *name, uint64_t *v, size_t n,
                        const char *path, lmd_err *err) {
    char who[PATH_MAX + 16];
    snprintf(who, sizeof who, "checkpoint '%s'", path);
    return lmd_h5_attr_get_u64s(loc, where, name, v, n, who, err);
}

static int ck_attr_str(hid_t loc, const char *name, char *buf, size_t cap, const char *path,
                       lmd_err *err) {
    char who[PATH_MAX + 16];
    snprintf(who, sizeof who, "checkpoint '%s'", path);
    return lmd_h5_attr_get_str(loc, name, buf, cap, who, err);
}

static const char *type_class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length";
    default: return "other";
    }
}

static void shape_str(char *buf, size_t cap, int ndim, const unsigned long long *d) {
    if (ndim == 0)
        snprintf(buf, cap, "[] (scalar)");
    else if (ndim == 1)
        snprintf(buf, cap, "[%llu]", d[0]);
    else if (ndim == 2)
        snprintf(buf, cap, "[%llu, %llu]", d[0], d[1]);
    else
        snprintf(buf, cap, "[%llu, %llu, ...] (rank %d)", d[0], d[1], ndim);
}

/* Reads dataset gpath/name of the expected shape into out (float32 in memory; any stored float
 * type is converted by HDF5). Names the dataset and the problem on failure. */
static int dset_read_f32(hid_t loc, const char *gpath, const char *name, int ndim,
                         const size_t *shape, float *out, const char *file, lmd_err *err) {
    htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
    if (ex < 0)
        return lmd_h5_errf(err, "checkpoint '%s': cannot look up dataset %s/%s", file, gpath, name);
    if (ex == 0) return lmd_errf(err, "checkpoint '%s': missing dataset %s/%s", file, gpath, name);
    hid_t ids[3] = {-1, -1, -1}; /* dataset, type, space */
    int rc = -1;
    if ((ids[0] = H5Dopen2(loc, name, H5P_DEFAULT)) < 0) {
        lmd_h5_errf(err, "checkpoint '%s': cannot open %s/%s as a dataset", file, gpath, name);
        goto done;
    }
    if ((ids[1] = H5Dget_type(ids[0])) < 0 || (ids[2] = H5Dget_space(ids[0])) < 0) {
        lmd_h5_errf(err, "checkpoint '%s': cannot inspect dataset %s/%s", file, gpath, name);
        goto done;
    }
    H5T_class_t cls = H5Tget_class(ids[1]);
    if (cls != H5T_FLOAT) {
        lmd_errf(err,
                 "checkpoint '%s': dataset %s/%s has a non-float type (%s), expected "
                 "float32",
                 file, gpath, name, type_class_name(cls));
        goto done;
    }
    hsize_t dims[H5S_MAX_RANK];
    int rank = H5Sget_simple_extent_dims(ids[2], dims, NULL);
    if (rank < 0) {
        lmd_h5_errf(err, "checkpoint '%s': cannot read the shape of %s/%s", file, gpath, name);
        goto done;
    }
    int ok = rank == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = dims[i] == (hsize_t)shape[i];
    if (!ok) {
        unsigned long long fd[2] = {rank > 0 ? dims[0] : 0, rank > 1 ? dims[1] : 0};
        unsigned long long ed[2] = {shape[0], ndim > 1 ? shape[1] : 0};
        char found[64], want[64];
        shape_str(found, sizeof found, rank, fd);
        shape_str(want, sizeof want, ndim, ed);
        lmd_errf(err,
                 "checkpoint '%s': dataset %s/%s has shape %s, expected %s for the config "
                 "in the root attributes",
                 file, gpath, name, found, want);
        goto done;
    }
    if (H5Dread(ids[0], H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        if (lmd_h5_checksum_failed())
            lmd_h5_errf(err,
                        "checkpoint '%s': checksum mismatch in dataset %s/%s: the file is "
                        "corrupted",
                        file, gpath, name);
        else
            lmd_h5_errf(err, "checkpoint '%s': cannot read dataset %s/%s", file, gpath, name);
        goto done;
    }
    rc = 0;
done:
    lmd_h5_close_all(ids, 3);
    return rc;
}

static int read_tensors(hid_t loc, const char *gpath, gpt_model *m, float *base, const char *file,
                        lmd_err *err) {
    for (int k = 0; k < GPT_NUM_TENSORS; k++) {
        gpt_tensor_info info;
        gpt_tensor_describe(&m->cfg, k, &info);
        int nl = info.layered ? m->cfg.n_layer : 1;
        size_t n = slice_numel(&info);
        for (int l = 0; l < nl; l++) {
            char name[128];
            tensor_name(&info, l, name, sizeof name);
            float *dst = base + tensor_offset(m, k) + (size_t)l * n;
            if (dset_read_f32(loc, gpath, name, info.ndim, info.shape, dst, file, err)) return -1;
        }
    }
    return 0;
}

/* Opens path read-only after checking it exists, is HDF5, and carries our format and version. */
static hid_t ckpt_open(const char *path, lmd_err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        lmd_errf(err, "cannot open checkpoint '%s': %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(sb.st_mode)) {
        lmd_errf(err, "cannot open checkpoint '%s': it is a directory", path);
        return -1;
    }
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        if (is < 0)
            lmd_h5_errf(err, "cannot open checkpoint '%s': not an HDF5 file or not readable", path);
        else
            lmd_errf(err, "cannot open checkpoint '%s': not an HDF5 file", path);
        return -1;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_sec2(fapl) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        lmd_h5_errf(err, "cannot open checkpoint '%s': cannot set up file access", path);
        if (fapl >= 0) H5Pclose(fapl);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0) lmd_h5_errf(err, "cannot open checkpoint '%s' as HDF5", path);
    H5Pclose(fapl);
    if (f < 0) return -1;

    htri_t ex = H5Aexists(f, "format");
    if (ex <= 0) {
        if (ex < 0)
            lmd_h5_errf(err, "checkpoint '%s': cannot query root attribute 'format'", path);
        else
            lmd_errf(err,
                     "checkpoint '%s': missing root attribute 'format' (expected \"%s\"): "
                     "not an lmdisp checkpoint",
                     path, CKPT_FORMAT);
        H5Fclose(f);
        return -1;
    }
    char fmt[128];
    if (ck_attr_str(f, "format", fmt, sizeof fmt, path, err)) {
        H5Fclose(f);
        return -1;
    }
    if (strcmp(fmt, CKPT_FORMAT) != 0) {
        lmd_errf(err, "checkpoint '%s': wrong format attribute \"%s\", expected \"%s\"", path, fmt,
                 CKPT_FORMAT);
        H5Fclose(f);
        return -1;
    }
    int64_t version;
    if (ck_attr_i64(f, "/", "format_version", &version, path, err)) {
        H5Fclose(f);
        return -1;
    }
    if (version != CKPT_VERSION) {
        lmd_errf(err,
                 "checkpoint '%s': unsupported format_version %lld (this lmdisp reads "
                 "version %d)",
                 path, (long long)version, CKPT_VERSION);
        H5Fclose(f);
        return -1;
    }
    return f;
}

static int read_config(hid_t f, const char *path, gpt_config *cfg, lmd_err *err) {
    int *dst[6] = {&cfg->vocab_size, &cfg->n_ctx,  &cfg->n_layer,
                   &cfg->n_embd,     &cfg->n_head, &cfg->mlp_dim};
    for (int i = 0; i < 6; i++) {
        int64_t v;
        if (ck_attr_i64(f, "/", CONFIG_ATTRS[i], &v, path, err)) return -1;
        if (v < INT_MIN || v > INT_MAX)
            return lmd_errf(err, "checkpoint '%s': invalid config: %s = %lld is out of range", path,
                            CONFIG_ATTRS[i], (long long)v);
        *dst[i] = (int)v;
    }
    if (gpt_config_validate(cfg, err))
        return lmd_err_prefix(err, "checkpoint '%s': invalid config", path);
    return 0;
}

/* Seconds the probe child may take before it counts as hung (it needs milliseconds). */
#define CKPT_PROBE_SECONDS 5

/* HDF5 1.10 trusts sizes in version-1 object headers and in the global heap (neither has a
 * checksum): one flipped byte there made every command crash (H5HG_read, H5O__msg_iterate) or
 * hang (a zero heap-collection size) inside the library, past any check of ours. So the reads
 * of the root object header (format, version, config, step/tokens/seed) are first done in a
 * child process; if it dies or hangs, the file is reported as corrupted and never read here.
 * A clean HDF5 error in the child is left to the real reads to report. Returns 0 to go on. */
static int ckpt_probe(const char *path, lmd_err *err) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return 0; /* cannot guard (no processes left): read unguarded */
    if (pid == 0) {
        alarm(CKPT_PROBE_SECONDS); /* SIGALRM's default action ends a hung child */
        lmd_err e;
        memset(&e, 0, sizeof e);
        gpt_config cfg;
        memset(&cfg, 0, sizeof cfg);
        hid_t f = ckpt_open(path, &e);
        if (f >= 0 && read_config(f, path, &cfg, &e) == 0) {
            static const char *const RUN[3] = {"step", "tokens", "seed"};
            for (int i = 0; i < 3; i++) {
                int64_t v;
                if (H5Aexists(f, RUN[i]) > 0) ck_attr_i64(f, "/", RUN[i], &v, path, &e);
            }
        }
        _exit(0); /* no atexit handlers: HDF5 and MPI belong to the parent */
    }
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {}
    /* the child exits 0 whenever it gets to the end; anything else is a crash (a sanitizer
     * turns one into exit 1) */
    if (w == pid && (WIFSIGNALED(status) || WEXITSTATUS(status) != 0)) {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGSEGV;
        return lmd_errf(err,
                        "checkpoint '%s' is corrupted: reading its root attributes %s inside "
                        "HDF5 (%s in a probe process); restore the file from a copy, or delete "
                        "it so that a resume starts from an older checkpoint",
                        path, sig == SIGALRM ? "hung" : "crashed",
                        sig == SIGALRM ? "no answer in "
                                         "5 s"
                                       : strsignal(sig));
    }
    return 0;
}

int lmd_ckpt_read_config(const char *path, gpt_config *cfg, lmd_err *err) {
    lmd_h5_quiet();
    memset(cfg, 0, sizeof *cfg);
    int rc = -1;
    hid_t f = ckpt_probe(path, err) ? -1 : ckpt_open(path, err);
    if (f >= 0) {
        rc = read_config(f, path, cfg, err);
        H5Fclose(f);
    }
    return rc;
}

/* Group exists? 1, 0, or -1 with a message. */
static int has_link(hid_t loc, const char *name, const char *path, lmd_err *err) {
    htri_t ex = H5Lexists(loc, name, H5P_DEFAULT);
    if (ex < 0) return lmd_h5_errf(err, "checkpoint '%s': cannot look up %s", path, name);
    return ex > 0;
}

/* /optimizer: adam_t and, when present, the moments (allocated here). */
static int read_optimizer(hid_t f, const char *path, gpt_model *m, lmd_err *err) {
    hid_t g[3] = {-1, -1, -1};
    int rc = -1;
    if ((g[0] = H5Gopen2(f, "optimizer", H5P_DEFAULT)) < 0) {
        lmd_h5_errf(err, "checkpoint '%s': cannot open group /optimizer", path);
        goto done;
    }
    int64_t t;
    if (ck_attr_i64(g[0], "/optimizer/", "adam_t", &t, path, err)) goto done;
    if (t < 0) {
        lmd_errf(err, "checkpoint '%s': /optimizer/adam_t = %lld is negative", path, (long long)t);
        goto done;
    }
    int hm = has_link(g[0], "m", path, err), hv = has_link(g[0], "v", path, err);
    if (hm < 0 || hv < 0) goto done;
    if (hm != hv) {
        lmd_errf(err, "checkpoint '%s': /optimizer has %s but not %s", path, hm ? "m" : "v",
                 hm ? "v" : "m");
        goto done;
    }
    if (!hm) {
        /* No update taken yet: zero moments, which is what the optimizer starts from anyway. */
        if (t != 0) {
            lmd_errf(err,
                     "checkpoint '%s': /optimizer has adam_t = %lld but no moments "
                     "(/optimizer/m, /optimizer/v)",
                     path, (long long)t);
            goto done;
        }
        m->adam_t = 0;
        rc = 0;
        goto done;
    }
    if ((g[1] = H5Gopen2(g[0], "m", H5P_DEFAULT)) < 0 ||
        (g[2] = H5Gopen2(g[0], "v", H5P_DEFAULT)) < 0) {
        lmd_h5_errf(err, "checkpoint '%s': cannot open groups /optimizer/m and /optimizer/v", path);
        goto done;
    }
    gpt_alloc_moments(m);
    if (read_tensors(g[1], "/optimizer/m", m, m->m_memory, path, err) ||
        read_tensors(g[2], "/optimizer/v", m, m->v_memory, path, err))
        goto done;
    m->adam_t = t;
    rc = 0;
done:
    lmd_h5_close_all(g, 3);
    return rc;
}

static int read_state(hid_t f, const char *path, lmd_train_state *st, lmd_err *err) {
    hid_t g = H5Gopen2(f, "state", H5P_DEFAULT);
    if (g < 0) return lmd_h5_errf(err, "checkpoint '%s': cannot open group /state", path);
    int rc = -1;
    if (ck_attr_u64s(g, "/state/", "data_pos", &st->data_pos, 1, path, err) ||
        ck_attr_u64s(g, "/state/", "rng_disp", st->rng_disp.s, 4, path, err))
        goto done;
    if ((st->rng_disp.s[0] | st->rng_disp.s[1] | st->rng_disp.s[2] | st->rng_disp.s[3]) == 0) {
        lmd_errf(err,
                 "checkpoint '%s': /state/rng_disp is all zero, not a valid xoshiro256** "
                 "state",
                 path);
        goto done;
    }
    rc = 0;
done:
    H5Gclose(g);
    return rc;
}

int lmd_ckpt_load(const char *path, gpt_model *m, lmd_train_state *st, lmd_err *err) {
    lmd_h5_quiet();
    if (st) memset(st, 0, sizeof *st);
    int rc = -1, created = 0;
    hid_t ids[2] = {-1, -1}; /* /params, file (closed in this order) */
    gpt_config cfg;
    memset(&cfg, 0, sizeof cfg);

    if (ckpt_probe(path, err) || (ids[1] = ckpt_open(path, err)) < 0) goto done;
    hid_t f = ids[1];
    if (read_config(f, path, &cfg, err)) goto done;
    /* step, tokens and seed may be absent from a params-only file written by another tool
     * (e.g. an OLMo conversion whose step is only in the file name, see `lmdisp track`): they
     * then read as 0. A file with /optimizer and /state must have them (checked below). */
    int64_t step = 0, tokens = 0, seed = 0;
    int n_run_attrs = 0;
    static const char *const RUN_ATTRS[3] = {"step", "tokens", "seed"};
    int64_t *run_dst[3] = {&step, &tokens, &seed};
    for (int i = 0; i < 3; i++) {
        htri_t ex = H5Aexists(f, RUN_ATTRS[i]);
        if (ex < 0) {
            lmd_h5_errf(err, "checkpoint '%s': cannot query attribute /%s", path, RUN_ATTRS[i]);
            goto done;
        }
        if (ex == 0) continue;
        if (ck_attr_i64(f, "/", RUN_ATTRS[i], run_dst[i], path, err)) goto done;
        n_run_attrs++;
    }
    /* A resumed run trusts these: a negative or absurd step would index the LR schedule and
     * the tracking list out of range. 10^12 is the most steps a spec may ask for (SPEC.md);
     * tokens grow by batch x seq <= 2^31 per step, so 2^62 bounds them without overflow. */
    if (step < 0 || step > LMD_CKPT_MAX_STEP) {
        lmd_errf(err, "checkpoint '%s': root attribute step = %lld is out of range (0 .. %lld)",
                 path, (long long)step, (long long)LMD_CKPT_MAX_STEP);
        goto done;
    }
    if (tokens < 0 || tokens > LMD_CKPT_MAX_TOKENS) {
        lmd_errf(err, "checkpoint '%s': root attribute tokens = %lld is out of range (0 .. 2^62)",
                 path, (long long)tokens);
        goto done;
    }

    int hp = has_link(f, "params", path, err);
    if (hp < 0) goto done;
    if (!hp) {
        lmd_errf(err, "checkpoint '%s': missing group /params", path);
        goto done;
    }
    if ((ids[0] = H5Gopen2(f, "params", H5P_DEFAULT)) < 0) {
        lmd_h5_errf(err, "checkpoint '%s': cannot open group /params", path);
        goto done;
    }
    if (gpt_create(m, &cfg, err)) {
        lmd_err_prefix(err, "checkpoint '%s'", path);
        goto done;
    }
    created = 1;
    if (read_tensors(ids[0], "/params", m, m->params_memory, path, err)) goto done;

    int ho = has_link(f, "optimizer", path, err), hs = has_link(f, "state", path, err);
    if (ho < 0 || hs < 0) goto done;
    if ((ho || hs) && n_run_attrs < 3) {
        lmd_errf(err,
                 "checkpoint '%s': has /%s but lacks one of the root attributes step, "
                 "tokens, seed that a resumable checkpoint needs",
                 path, ho ? "optimizer" : "state");
        goto done;
    }
    if (ho && read_optimizer(f, path, m, err)) goto done;
    if (st) {
        st->step = step;
        st->tokens = tokens;
        st->seed = seed;
        if (hs && read_state(f, path, st, err)) goto done;
        st->has_state = ho && hs;
    }
    rc = 0;
done:
    lmd_h5_close_all(ids, 2);
    if (rc != 0) {
        if (created) gpt_free(m);
        if (st) memset(st, 0, sizeof *st);
    }
    return rc;
}
