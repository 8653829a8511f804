/* safetensors.h — memory-mapped safetensors files, single or sharded (HF.md "safetensors",
 * "Sharded checkpoints"), every header validated before any byte of data is trusted. */
#ifndef LMDISP_SAFETENSORS_H
#define LMDISP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* The tags read (F32, BF16, F16) first; the other real safetensors tags are recognised so a
 * message can name them, and refused by hub_model_open for any tensor the architecture uses
 * (st_dtype_readable). A tag outside this list is refused at open. */
typedef enum {
    ST_F32,
    ST_BF16,
    ST_F16,
    ST_F64,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL,
    ST_U16,
    ST_U32,
    ST_U64,
    ST_F8_E4M3,
    ST_F8_E5M2,
    ST_NDTYPE
} st_dtype;

/* The header tag ("F32", "BF16", ...). */
const char *st_dtype_name(st_dtype d);
/* Bytes per element. */
size_t st_dtype_size(st_dtype d);
/* 1 for F32, BF16, F16 (the tags st_read_f32 converts). */
int st_dtype_readable(st_dtype d);

#define ST_MAX_NDIM 8

typedef struct {
    const char *name; /* owned by the set */
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_NDIM];
    int file;            /* index into the set's files */
    uint64_t begin, end; /* byte range in that file's data buffer */
} st_tensor;

typedef struct st_set st_set; /* opaque: the mapped files and a name index */

/* Opens the weights of an HF model directory: model.safetensors if present (HF's rule: the
 * single file wins), else model.safetensors.index.json and every shard it names. Validates:
 * header length within the file, JSON well-formed (jansson), dtype known, shape non-negative,
 * end - begin = numel x itemsize, offsets inside the buffer, no two tensors overlapping and
 * no byte of the buffer outside every tensor (the safetensors library's own rule), every
 * shard of the index existing and opened once, each tensor of the index found in the shard
 * the index names, no name in two shards. Messages name file and tensor. A tag other than
 * F32/BF16/F16 is accepted here (st_dtype_readable says 0) and refused by hub_model_open
 * when the architecture uses that tensor. */
int st_open_dir(st_set **out, const char *dir, lmd_err *err);
/* Opens one .safetensors file (the same validation, without the directory rules). */
int st_open_file(st_set **out, const char *path, lmd_err *err);
void st_close(st_set *s);

int st_count(const st_set *s);
const st_tensor *st_at(const st_set *s, int i);
const st_tensor *st_find(const st_set *s, const char *name); /* NULL when absent */
const char *st_file_path(const st_set *s, int file);
int st_file_count(const st_set *s); /* 1 for model.safetensors, else the shards */

/* Elements of t (product of the shape; 1 for a scalar). */
uint64_t st_numel(const st_tensor *t);

/* Converts tensor t to float32 into dst (numel floats): F32 copied, BF16 bits << 16, F16
 * IEEE half incl. subnormals, inf and NaN. t must have a readable dtype (programmer error
 * otherwise). The pages read are released from the mapping afterwards, so streaming a
 * model larger than RAM does not grow the resident set. */
void st_read_f32(const st_set *s, const st_tensor *t, float *dst);

/* Elements [first, first + n) of tensor t (row-major flat index) to float32 into dst (n
 * floats), converted and released from the mapping as st_read_f32 does (which is this with
 * first 0, n = st_numel). first + n must not exceed st_numel(t) (programmer error). */
void st_read_f32_range(const st_set *s, const st_tensor *t, uint64_t first, uint64_t n, float *dst);

/* One value: bfloat16 / IEEE half bits to float32 (exact; NaN payloads kept). */
float st_bf16_to_f32(uint16_t h);
float st_f16_to_f32(uint16_t h);

/* Total bytes of tensor data on disk (the index's total_size when sharded). */
uint64_t st_total_bytes(const st_set *s);

#endif
