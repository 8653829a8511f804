/* safetensors.c — memory-mapped safetensors files (safetensors.h): header parsed with jansson,
 * every offset, size and name checked before a byte of tensor data is read. */
#include "safetensors.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data in place: a big-endian host needs byte swaps"
#endif

typedef struct {
    char *path;
    unsigned char *map; /* whole file, read-only */
    size_t size;
    size_t data_start; /* 8 + header length */
} st_file;

struct st_set {
    st_file *files;
    int nfiles;
    st_tensor *t;
    int n, cap;
    int *by_name; /* indices into t sorted by name, for st_find */
    uint64_t total_bytes;
};

static const struct {
    const char *name;
    size_t size;
} dtype_info[ST_NDTYPE] = {
    [ST_F32] = {"F32", 4},   [ST_BF16] = {"BF16", 2},       [ST_F16] = {"F16", 2},
    [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8},         [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},   [ST_I8] = {"I8", 1},           [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_U16] = {"U16", 2},         [ST_U32] = {"U32", 4},
    [ST_U64] = {"U64", 8},   [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(st_dtype d) { return d < ST_NDTYPE ? dtype_info[d].name : "?"; }
size_t st_dtype_size(st_dtype d) { return d < ST_NDTYPE ? dtype_info[d].size : 0; }
int st_dtype_readable(st_dtype d) { return d == ST_F32 || d == ST_BF16 || d == ST_F16; }

uint64_t st_numel(const st_tensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
    return n;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, u;
    if (exp == 0x1F) {
        u = sign | 0x7F800000u | (man << 13); /* inf, NaN (payload kept) */
    } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (man << 13); /* rebias 15 -> 127 */
    } else if (man == 0) {
        u = sign; /* +-0 */
    } else {
        /* subnormal half: man * 2^-24; normalize into a float32 normal */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400u));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------------------------------------ */

static void set_free(st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->nfiles; i++) {
        if (s->files[i].map) munmap(s->files[i].map, s->files[i].size);
        free(s->files[i].path);
    }
    for (int i = 0; i < s->n; i++) free((char *)s->t[i].name);
    free(s->files);
    free(s->t);
    free(s->by_name);
    free(s);
}

void st_close(st_set *s) { set_free(s); }

static st_tensor *push_tensor(st_set *s) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        st_tensor *nt = realloc(s->t, (size_t)s->cap * sizeof *nt);
        if (!nt) lmd_die("out of memory growing the tensor table to %d", s->cap);
        s->t = nt;
    }
    st_tensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static int parse_dtype(const char *tag, st_dtype *d) {
    for (int i = 0; i < ST_NDTYPE; i++)
        if (strcmp(tag, dtype_info[i].name) == 0) {
            *d = (st_dtype)i;
            return 0;
        }
    return -1;
}

/* One tensor entry of a header: {"dtype": .., "shape": [..], "data_offsets": [b, e]}. */
static int parse_entry(st_tensor *t, const char *path, const char *name, json_t *v, uint64_t buflen,
                       lmd_err *err) {
    if (!json_is_object(v))
        return lmd_errf(err, "%s: tensor \"%s\": header entry is not a JSON object", path, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return lmd_errf(err, "%s: tensor \"%s\": \"dtype\" missing or not a string", path, name);
    if (parse_dtype(json_string_value(jd), &t->dtype))
        return lmd_errf(
            err,
            "%s: tensor \"%s\": unknown dtype \"%s\" (safetensors tags: F32, BF16, F16, "
            "F64, I64, I32, I16, I8, U8, BOOL, U16, U32, U64, F8_E4M3, F8_E5M2)",
            path, name, json_string_value(jd));
    if (!json_is_array(js))
        return lmd_errf(err, "%s: tensor \"%s\": \"shape\" missing or not an array", path, name);
    size_t nd = json_array_size(js);
    if (nd > ST_MAX_NDIM)
        return lmd_errf(err, "%s: tensor \"%s\": shape has %zu dimensions (at most %d read)", path,
                        name, nd, ST_MAX_NDIM);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    int zero = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *e = json_array_get(js, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return lmd_errf(err, "%s: tensor \"%s\": shape[%zu] is not a non-negative integer",
                            path, name, i);
        t->shape[i] = (int64_t)json_integer_value(e);
        uint64_t d = (uint64_t)t->shape[i];
        if (d == 0)
            zero = 1;
        else if (!zero && numel > UINT64_MAX / d / 8)
            return lmd_errf(err, "%s: tensor \"%s\": the shape's element count overflows", path,
                            name);
        else if (!zero)
            numel *= d;
    }
    if (zero) numel = 0;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)) || json_integer_value(json_array_get(jo, 0)) < 0 ||
        json_integer_value(json_array_get(jo, 1)) < 0)
        return lmd_errf(err,
                        "%s: tensor \"%s\": \"data_offsets\" must be [begin, end] of two "
                        "non-negative integers",
                        path, name);
    t->begin = (uint64_t)json_integer_value(json_array_get(jo, 0));
    t->end = (uint64_t)json_integer_value(json_array_get(jo, 1));
    if (t->end < t->begin)
        return lmd_errf(err, "%s: tensor \"%s\": data_offsets [%llu, %llu] end before begin", path,
                        name, (unsigned long long)t->begin, (unsigned long long)t->end);
    uint64_t want = numel * dtype_info[t->dtype].size;
    if (t->end - t->begin != want)
        return lmd_errf(err,
                        "%s: tensor \"%s\": data_offsets [%llu, %llu] hold %llu bytes, but shape x "
                        "dtype %s needs %llu",
                        path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)(t->end - t->begin), dtype_info[t->dtype].name,
                        (unsigned long long)want);
    if (t->end > buflen)
        return lmd_errf(err,
                        "%s: tensor \"%s\": data_offsets [%llu, %llu] lie beyond the data buffer "
                        "(%llu bytes; file truncated?)",
                        path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)buflen);
    return 0;
}

/* qsort comparators over arrays of tensor pointers */
static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}
static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

/* Maps `path` as file number s->nfiles and appends its tensors to s. */
static int add_file(st_set *s, const char *path, lmd_err *err) {
    int fd = -1;
    size_t size = 0;
    int orc = lmd_file_open_regular(path, &fd, &size, err);
    if (orc == LMD_FILE_MISSING) return lmd_errf(err, "cannot open %s: %s", path, strerror(ENOENT));
    if (orc) return -1;
    if (size < 8) {
        close(fd);
        return lmd_errf(err,
                        "%s: %zu bytes, too short for a safetensors file (8-byte header length "
                        "first; file truncated?)",
                        path, size);
    }
    unsigned char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return lmd_errf(err, "%s: cannot mmap: %s", path, strerror(e));

    st_file *nf = realloc(s->files, (size_t)(s->nfiles + 1) * sizeof *nf);
    if (!nf) lmd_die("out of memory");
    s->files = nf;
    st_file *f = &s->files[s->nfiles];
    f->map = map;
    f->size = size;
    f->path = lmd_strdup(path);
    if (!f->path) lmd_die("out of memory");
    int fileno = s->nfiles++;

    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)map[i] << (8 * i);
    if (hlen > size - 8)
        return lmd_errf(err,
                        "%s: header length %llu (first 8 bytes) is beyond the file's %zu bytes "
                        "(truncated, or not a safetensors file)",
                        path, (unsigned long long)hlen, size);
    if (hlen < 2)
        return lmd_errf(err, "%s: header length %llu is too short for a JSON object", path,
                        (unsigned long long)hlen);
    f->data_start = 8 + (size_t)hlen;
    uint64_t buflen = size - f->data_start;

    json_error_t je;
    json_t *root = json_loadb((const char *)map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return lmd_errf(err, "%s: header is not valid JSON: %s (header byte %d)", path, je.text,
                        je.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return lmd_errf(err, "%s: header is not a JSON object", path);
    }
    int first = s->n, rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v) && !json_is_null(v)) {
                rc = lmd_errf(err, "%s: \"__metadata__\" is not a JSON object", path);
                break;
            }
            continue;
        }
        st_tensor *t = push_tensor(s);
        t->name = lmd_strdup(key);
        if (!t->name) lmd_die("out of memory");
        t->file = fileno;
        if ((rc = parse_entry(t, path, key, v, buflen, err))) break;
    }
    json_decref(root);
    if (rc) return rc;

    /* Non-overlapping, and (as the safetensors library requires) covering the buffer. */
    int cnt = s->n - first;
    const st_tensor **ord = lmd_calloc((size_t)cnt + 1, sizeof *ord);
    for (int i = 0; i < cnt; i++) ord[i] = &s->t[first + i];
    qsort(ord, (size_t)cnt, sizeof *ord, cmp_begin);
    uint64_t pos = 0;
    const st_tensor *far = NULL;           /* the non-empty tensor reaching furthest so far */
    for (int i = 0; i < cnt && !rc; i++) { /* overlaps first: they are the worse fault */
        const st_tensor *t = ord[i];
        if (t->end == t->begin) continue;
        if (far && t->begin < far->end)
            rc = lmd_errf(err,
                          "%s: tensors \"%s\" [%llu, %llu] and \"%s\" [%llu, %llu] overlap in the "
                          "data buffer",
                          path, far->name, (unsigned long long)far->begin,
                          (unsigned long long)far->end, t->name, (unsigned long long)t->begin,
                          (unsigned long long)t->end);
        if (!far || t->end > far->end) far = t;
    }
    for (int i = 0; i < cnt && !rc; i++) {
        const st_tensor *t = ord[i];
        if (t->begin > pos)
            rc = lmd_errf(err,
                          "%s: bytes [%llu, %llu) of the data buffer belong to no tensor (before "
                          "\"%s\"); not a valid safetensors file",
                          path, (unsigned long long)pos, (unsigned long long)t->begin, t->name);
        if (t->end > pos) pos = t->end;
    }
    free(ord);
    if (!rc && pos != buflen)
        rc = lmd_errf(err,
                      "%s: the tensors cover %llu bytes of the %llu-byte data buffer; trailing "
                      "bytes belong to no tensor",
                      path, (unsigned long long)pos, (unsigned long long)buflen);
    if (!rc) s->total_bytes += buflen;
    return rc;
}

/* Sorted name index; a name in two files (shards) is refused. */
static int build_index(st_set *s, lmd_err *err) {
    free(s->by_name);
    s->by_name = lmd_calloc((size_t)s->n + 1, sizeof *s->by_name);
    const st_tensor **ptr = lmd_calloc((size_t)s->n + 1, sizeof *ptr);
    for (int i = 0; i < s->n; i++) ptr[i] = &s->t[i];
    qsort(ptr, (size_t)s->n, sizeof *ptr, cmp_name);
    for (int i = 0; i < s->n; i++) s->by_name[i] = (int)(ptr[i] - s->t);
    free(ptr);
    for (int i = 1; i < s->n; i++) {
        const st_tensor *a = &s->t[s->by_name[i - 1]], *b = &s->t[s->by_name[i]];
        if (strcmp(a->name, b->name) == 0)
            return lmd_errf(err, "tensor \"%s\" is stored twice: in %s and in %s", a->name,
                            s->files[a->file].path, s->files[b->file].path);
    }
    return 0;
}

int st_open_file(st_set **out, const char *path, lmd_err *err) {
    *out = NULL;
    st_set *s = lmd_calloc(1, sizeof *s);
    if (add_file(s, path, err) || build_index(s, err)) {
        set_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* model.safetensors.index.json: every shard of weight_map opened once, and each tensor of the
 * map found in the shard the map names. */
static int open_index(st_set *s, const char *dir, const char *ipath, lmd_err *err) {
    json_error_t je;
    json_t *root = json_load_file(ipath, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return lmd_errf(err, "%s: not valid JSON: %s (line %d, column %d)", ipath, je.text, je.line,
                        je.column);
    int rc = 0;
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(root) || !json_is_object(wm)) {
        json_decref(root);
        return lmd_errf(err, "%s: no \"weight_map\" object", ipath);
    }
    if (json_object_size(wm) == 0) {
        json_decref(root);
        return lmd_errf(err, "%s: \"weight_map\" is empty", ipath);
    }
    /* distinct shard names, in order of first mention */
    const char **shards = lmd_calloc(json_object_size(wm), sizeof *shards);
    int nsh = 0;
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        if (!json_is_string(v)) {
            rc = lmd_errf(err, "%s: weight_map[\"%s\"] is not a file name string", ipath, key);
            break;
        }
        const char *fn = json_string_value(v);
        if (!*fn || strchr(fn, '/') || strcmp(fn, "..") == 0 || strcmp(fn, ".") == 0) {
            rc = lmd_errf(err, "%s: weight_map[\"%s\"] = \"%s\" is not a file name in %s", ipath,
                          key, fn, dir);
            break;
        }
        int seen = 0;
        for (int i = 0; i < nsh && !seen; i++) seen = strcmp(shards[i], fn) == 0;
        if (!seen) shards[nsh++] = fn;
    }
    for (int i = 0; i < nsh && !rc; i++) {
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, shards[i]) >= sizeof p) {
            rc = lmd_errf(err, "%s: path of shard %s too long", ipath, shards[i]);
            break;
        }
        if (access(p, F_OK) != 0) {
            rc = lmd_errf(err, "%s: shard %s named by weight_map does not exist (%s)", ipath,
                          shards[i], p);
            break;
        }
        rc = add_file(s, p, err);
    }
    if (!rc) rc = build_index(s, err);
    json_object_foreach(wm, key, v) {
        if (rc) break;
        const st_tensor *t = st_find(s, key);
        const char *fn = json_string_value(v);
        if (!t) {
            rc = lmd_errf(err, "%s: tensor \"%s\" is mapped to %s, but that shard does not hold it",
                          ipath, key, fn);
        } else {
            const char *tp = s->files[t->file].path, *slash = strrchr(tp, '/');
            if (strcmp(slash ? slash + 1 : tp, fn) != 0)
                rc = lmd_errf(err, "%s: tensor \"%s\" is mapped to %s, but it is stored in %s",
                              ipath, key, fn, tp);
        }
    }
    json_t *meta = json_object_get(root, "metadata");
    json_t *ts = meta ? json_object_get(meta, "total_size") : NULL;
    if (!rc && json_is_integer(ts) && json_integer_value(ts) >= 0) {
        /* HF's total_size counts tensor bytes; keep it as the figure reported. */
        s->total_bytes = (uint64_t)json_integer_value(ts);
    }
    free(shards);
    json_decref(root);
    return rc;
}

int st_open_dir(st_set **out, const char *dir, lmd_err *err) {
    *out = NULL;
    char single[4096], index[4096];
    if ((size_t)snprintf(single, sizeof single, "%s/model.safetensors", dir) >= sizeof single ||
        (size_t)snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir) >=
            sizeof index)
        return lmd_errf(err, "%s: path too long", dir);
    st_set *s = lmd_calloc(1, sizeof *s);
    int rc;
    struct stat lsb;
    if (lstat(single, &lsb) == 0 && S_ISLNK(lsb.st_mode) && access(single, F_OK) != 0) {
        st_close(s);
        return lmd_errf(err, "%s: a symlink to a missing blob (an incomplete download?)", single);
    }
    if (access(single, F_OK) == 0) { /* HF's rule: the single file wins over an index */
        rc = add_file(s, single, err);
        if (!rc) rc = build_index(s, err);
    } else if (access(index, F_OK) == 0) {
        rc = open_index(s, dir, index, err);
    } else {
        rc = lmd_errf(err,
                      "%s: no model.safetensors and no model.safetensors.index.json (lmdisp reads "
                      "safetensors weights only; pytorch_model.bin is not read)",
                      dir);
    }
    if (rc) {
        set_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int st_count(const st_set *s) { return s->n; }
int st_file_count(const st_set *s) { return s->nfiles; }
const st_tensor *st_at(const st_set *s, int i) { return &s->t[i]; }
const char *st_file_path(const st_set *s, int file) { return s->files[file].path; }
uint64_t st_total_bytes(const st_set *s) { return s->total_bytes; }

const st_tensor *st_find(const st_set *s, const char *name) {
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const st_tensor *t = &s->t[s->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

#define PAR_ELEMS ((size_t)1 << 20) /* smaller tensors convert on one thread */
#define CHUNK ((size_t)1 << 16)

void st_read_f32(const st_set *s, const st_tensor *t, float *dst) {
    st_read_f32_range(s, t, 0, st_numel(t), dst);
}

void st_read_f32_range(const st_set *s, const st_tensor *t, uint64_t first, uint64_t count,
                       float *dst) {
    if (!st_dtype_readable(t->dtype))
        lmd_die("st_read_f32 on tensor %s of dtype %s", t->name, st_dtype_name(t->dtype));
    if (first > st_numel(t) || count > st_numel(t) - first)
        lmd_die("st_read_f32_range: elements [%llu, +%llu) outside tensor %s of %llu",
                (unsigned long long)first, (unsigned long long)count, t->name,
                (unsigned long long)st_numel(t));
    const st_file *f = &s->files[t->file];
    const size_t esz = st_dtype_size(t->dtype);
    const unsigned char *p = f->map + f->data_start + t->begin + first * esz;
    size_t n = (size_t)count;
    switch (t->dtype) {
    /* Large tensors convert on all threads: the page faults that read the file from disk
     * then overlap too. Elementwise, so the result does not depend on the thread count. */
    case ST_F32:
#pragma omp parallel for schedule(static) if (n >= PAR_ELEMS)
        for (size_t c = 0; c < (n + CHUNK - 1) / CHUNK; c++) {
            size_t a = c * CHUNK, len = a + CHUNK > n ? n - a : CHUNK;
            memcpy(dst + a, p + 4 * a, len * 4);
        }
        break;
    case ST_BF16: { /* little-endian host (x86-64, aarch64): the halves are native u16 */
#pragma omp parallel for schedule(static) if (n >= PAR_ELEMS)
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t u = (uint32_t)h << 16;
            memcpy(dst + i, &u, 4);
        }
        break;
    }
    case ST_F16:
#pragma omp parallel for schedule(static) if (n >= PAR_ELEMS)
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = st_f16_to_f32(h);
        }
        break;
    default: break;
    }
    /* Drop the pages just read from this process's mapping: they stay in the page cache, but
     * no longer count in the resident set of a model streamed layer by layer. */
    long pg = sysconf(_SC_PAGESIZE);
    if (pg > 0 && n > 0) {
        uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1);
        uintptr_t b = ((uintptr_t)p + n * esz + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
        uintptr_t lo = (uintptr_t)f->map,
                  hi = lo + ((f->size + (size_t)pg - 1) & ~(size_t)(pg - 1));
        if (a < lo) a = lo;
        if (b > hi) b = hi;
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
    }
}
