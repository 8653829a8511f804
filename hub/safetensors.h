/* safetensors.h — memory-mapped safetensors files, single or sharded (HF.md "safetensors",
 * "Sharded checkpoints"), every header validated before any byte of data is trusted. */
#ifndef LMDISP_SAFETENSORS_H
#define LMDISP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef enum { ST_F32, ST_BF16, ST_F16 } st_dtype; /* the tags read; others refused by name */

#define ST_MAX_NDIM 8

typedef struct {
    const char *name;       /* owned by the set */
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_NDIM];
    int file;               /* index into the set's files */
    uint64_t begin, end;    /* byte range in that file's data buffer */
} st_tensor;

typedef struct st_set st_set; /* opaque: the mapped files and a name index */

/* Opens the weights of an HF model directory: model.safetensors if present (HF's rule: the
 * single file wins), else model.safetensors.index.json and every shard it names. Validates:
 * header length within the file, JSON well-formed (jansson), dtype known, shape non-negative,
 * end - begin = numel x itemsize, offsets inside the buffer, no two tensors overlapping, a
 * tensor of the index found in the shard the index names. Messages name file and tensor. */
int st_open_dir(st_set **out, const char *dir, lmd_err *err);
void st_close(st_set *s);

int st_count(const st_set *s);
const st_tensor *st_at(const st_set *s, int i);
const st_tensor *st_find(const st_set *s, const char *name); /* NULL when absent */
const char *st_file_path(const st_set *s, int file);

/* Converts tensor t to float32 into dst (numel floats): F32 copied, BF16 bits << 16, F16
 * IEEE half incl. subnormals, inf and NaN. */
void st_read_f32(const st_set *s, const st_tensor *t, float *dst);

/* Total bytes of tensor data on disk (the index's total_size when sharded). */
uint64_t st_total_bytes(const st_set *s);

#endif
