/* tokfile.c — llm.c token files as int32 ids (tokfile.h). */
#include "tokfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_BYTES 1024

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int lmd_tokfile_read(const char *path, int vocab_size, size_t offset, size_t count,
                     int32_t **ids, size_t *n, lmd_err *err) {
    *ids = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return lmd_errf(err, "%s: cannot open token file: %s", path, strerror(errno));
    int rc = -1;
    int32_t *out = NULL;
    uint8_t hdr[HDR_BYTES];
    if (fseek(f, 0, SEEK_END) != 0) {
        lmd_errf(err, "%s: cannot seek: %s", path, strerror(errno));
        goto done;
    }
    long long size = ftell(f);
    rewind(f);
    if (size < HDR_BYTES || fread(hdr, 1, HDR_BYTES, f) != HDR_BYTES) {
        lmd_errf(err, "%s: truncated token file: %lld bytes, shorter than the %d-byte llm.c "
                 "header", path, size, HDR_BYTES);
        goto done;
    }
    uint32_t magic = le32(hdr), version = le32(hdr + 4), total = le32(hdr + 8);
    int isz;
    if (magic == 20240520u && version == 1)
        isz = 2;
    else if (magic == 20240801u && version == 7)
        isz = 4;
    else {
        lmd_errf(err, "%s: header magic %u version %u is neither llm.c's uint16 form (20240520, "
                 "1) nor its uint32 form (20240801, 7)", path, magic, version);
        goto done;
    }
    if ((long long)HDR_BYTES + (long long)isz * total != size) {
        lmd_errf(err, "%s: the header says %u tokens of %d bytes but the file has %lld bytes "
                 "after the header", path, total, isz, size - HDR_BYTES);
        goto done;
    }
    if (offset > total || (count && count > total - offset)) {
        lmd_errf(err, "%s: holds %u tokens; tokens %zu .. %zu were asked for", path, total,
                 offset, offset + (count ? count : 0));
        goto done;
    }
    if (!count) count = total - offset;
    if (fseek(f, (long)(HDR_BYTES + (long long)isz * offset), SEEK_SET) != 0) {
        lmd_errf(err, "%s: cannot seek to token %zu: %s", path, offset, strerror(errno));
        goto done;
    }
    out = malloc((count ? count : 1) * sizeof *out);
    if (!out) {
        lmd_errf(err, "%s: out of memory for %zu token ids", path, count);
        goto done;
    }
    uint8_t buf[8192];
    size_t per = sizeof buf / (size_t)isz;
    for (size_t i0 = 0; i0 < count; i0 += per) {
        size_t m = count - i0 < per ? count - i0 : per;
        if (fread(buf, (size_t)isz, m, f) != m) {
            lmd_errf(err, "%s: read error at token %zu: %s", path, offset + i0,
                     ferror(f) ? strerror(errno) : "unexpected end of file");
            goto done;
        }
        for (size_t j = 0; j < m; j++) {
            const uint8_t *p = buf + j * (size_t)isz;
            uint32_t id = isz == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : le32(p);
            if (id > INT32_MAX || (vocab_size > 0 && id >= (uint32_t)vocab_size)) {
                lmd_errf(err, "%s: token id %u at position %zu is >= the model's vocab_size %d",
                         path, id, offset + i0 + j, vocab_size);
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
