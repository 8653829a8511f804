/* tokfile.c — llm.c token files as int32 ids (tokfile.h): the one reader of token files, used
 * by lmd_data_shards (train, step, measure, track, study runs), `forward` and anymodel. */
#include "tokfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_BYTES 1024
#define MAGIC16 20240520u
#define VERSION16 1u
#define MAGIC32 20240801u
#define VERSION32 7u

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int lmd_tokfile_read(const char *path, int vocab_size, size_t offset, size_t count, int32_t **ids,
                     size_t *n, lmd_err *err) {
    *ids = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return lmd_errf(err, "%s: cannot open token file: %s", path, strerror(errno));
    int rc = -1;
    int32_t *out = NULL;
    uint8_t hdr[HDR_BYTES];
    long long size = -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        lmd_errf(err, "%s: cannot seek in the token file: %s", path, strerror(errno));
        goto done;
    }
    if (size < HDR_BYTES || fread(hdr, 1, HDR_BYTES, f) != HDR_BYTES) {
        lmd_errf(err,
                 "%s: truncated token file: %lld bytes, shorter than the %d-byte llm.c "
                 "header",
                 path, size, HDR_BYTES);
        goto done;
    }
    uint32_t magic = le32(hdr), version = le32(hdr + 4), total = le32(hdr + 8);
    int isz;
    if (magic == MAGIC16)
        isz = 2;
    else if (magic == MAGIC32)
        isz = 4;
    else {
        lmd_errf(err,
                 "%s: wrong magic number %u at byte offset 0 of the header (expected %u "
                 "for uint16 or %u for uint32 tokens): not an llm.c token file",
                 path, magic, MAGIC16, MAGIC32);
        goto done;
    }
    uint32_t want_version = isz == 2 ? VERSION16 : VERSION32;
    if (version != want_version) {
        lmd_errf(err,
                 "%s: unsupported token file version %u at byte offset 4 for magic %u "
                 "(expected %u)",
                 path, version, magic, want_version);
        goto done;
    }
    if (total > (uint32_t)INT32_MAX) {
        lmd_errf(err, "%s: the header declares a negative token count %d at byte offset 8", path,
                 (int)(int32_t)total);
        goto done;
    }
    long long held = (size - HDR_BYTES) / isz;
    if ((long long)total > held) {
        lmd_errf(err,
                 "%s: truncated token file: the header says %u tokens, the file holds %lld "
                 "(%lld bytes after the header)",
                 path, total, held, size - HDR_BYTES);
        goto done;
    }
    if ((long long)HDR_BYTES + (long long)isz * total != size) {
        lmd_errf(err,
                 "%s: the header says %u tokens (%lld bytes) but the file has %lld bytes "
                 "after the header: trailing data, not a valid token file",
                 path, total, (long long)isz * total, size - HDR_BYTES);
        goto done;
    }
    if (offset > total || (count && count > total - offset)) {
        lmd_errf(err, "%s: holds %u tokens; tokens %zu .. %zu were asked for", path, total, offset,
                 offset + count);
        goto done;
    }
    if (!count) count = total - offset;
    if (fseek(f, (long)(HDR_BYTES + (long long)isz * (long long)offset), SEEK_SET) != 0) {
        lmd_errf(err, "%s: cannot seek to token %zu: %s", path, offset, strerror(errno));
        goto done;
    }
    out = malloc((count ? count : 1) * sizeof *out);
    if (!out) {
        lmd_errf(err, "%s: out of memory for %zu token ids", path, count);
        goto done;
    }
    /* Little-endian on disk: decoded bytewise so big-endian hosts read the same ids. */
    uint8_t buf[8192];
    size_t per = sizeof buf / (size_t)isz;
    for (size_t i0 = 0; i0 < count; i0 += per) {
        size_t m = count - i0 < per ? count - i0 : per;
        size_t got = fread(buf, (size_t)isz, m, f);
        if (got != m) {
            lmd_errf(err, "%s: read error at token %zu (byte offset %lld): %s", path,
                     offset + i0 + got,
                     (long long)HDR_BYTES + (long long)isz * (long long)(offset + i0 + got),
                     ferror(f) ? strerror(errno) : "unexpected end of file");
            goto done;
        }
        for (size_t j = 0; j < m; j++) {
            const uint8_t *p = buf + j * (size_t)isz;
            uint32_t id = isz == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : le32(p);
            if (id > (uint32_t)INT32_MAX || (vocab_size > 0 && id >= (uint32_t)vocab_size)) {
                size_t pos = offset + i0 + j;
                lmd_errf(err,
                         "%s: token id %u at position %zu (byte offset %lld) is >= the "
                         "model's vocab_size %d",
                         path, id, pos, (long long)HDR_BYTES + (long long)isz * (long long)pos,
                         vocab_size);
                goto done;
            }
            out[i0 + j] = (int32_t)id;
        }
    }
    *ids = out;
    out = NULL;
    *n = count;
    rc = 0;
done:
    free(out);
    fclose(f);
    return rc;
}
