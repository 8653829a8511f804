/* sha256.h — SHA-256 (FIPS 180-4) of byte strings, for spec fingerprints and cell ids.
 * Streaming (init / update / final) plus one-shot helpers that return lowercase hex. */
#ifndef LMDISP_SHA256_H
#define LMDISP_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];     /* chaining state */
    uint64_t n_bytes;  /* total message length so far */
    uint8_t block[64]; /* pending partial block */
    size_t fill;       /* bytes used in block */
} lmd_sha256;

void lmd_sha256_init(lmd_sha256 *s);
void lmd_sha256_update(lmd_sha256 *s, const void *data, size_t n);
/* Writes the 32-byte digest; the state must be re-initialized before reuse. */
void lmd_sha256_final(lmd_sha256 *s, uint8_t digest[32]);

/* One shot: digest of data[0..n). */
void lmd_sha256_digest(const void *data, size_t n, uint8_t digest[32]);
/* One shot: 64 lowercase hex characters plus NUL into hex[65]. */
void lmd_sha256_hex(const void *data, size_t n, char hex[65]);
/* Lowercase hex of a digest (65 bytes with NUL). */
void lmd_sha256_to_hex(const uint8_t digest[32], char hex[65]);

#endif
