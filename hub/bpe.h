/* bpe.h — the byte-level BPE model of HF tokenizer.json on raw bytes: a vocabulary (token
 * bytes -> id), ranked merges ((left id, right id) -> rank, merged id) and the merge loop
 * (lowest rank first, leftmost among equal ranks, as HF tokenizers' BPE::merge_word). */
#ifndef LMDISP_BPE_H
#define LMDISP_BPE_H

#include <stddef.h>
#include <stdint.h>

/* Open-addressing map from byte strings to ids; the strings live in one pool. */
typedef struct {
    uint64_t *slots; /* entry index + 1; 0 = empty */
    size_t cap;      /* power of two */
    size_t n;
    char *pool;
    size_t pool_n, pool_cap;
    uint32_t *lens; /* per entry, indexed by entry number */
    uint64_t *offs;
    uint32_t *ids;
    size_t n_cap;
} bpe_strmap;

void bpe_strmap_init(bpe_strmap *m);
void bpe_strmap_free(bpe_strmap *m);
/* Inserts (s, id); returns 0, or 1 if s was present (its id is kept). */
int bpe_strmap_put(bpe_strmap *m, const char *s, size_t len, uint32_t id);
/* The id of s, or -1. */
int64_t bpe_strmap_get(const bpe_strmap *m, const char *s, size_t len);

/* Merge table: (a, b) -> (rank, merged id). */
typedef struct {
    uint64_t *keys; /* (a << 32 | b) + 1; 0 = empty */
    uint32_t *rank, *merged;
    size_t cap, n;
} bpe_merges;

void bpe_merges_init(bpe_merges *m, size_t expected);
void bpe_merges_free(bpe_merges *m);
/* Sets (a, b) -> (rank, merged); a later duplicate overwrites, as HF's HashMap collect does. */
void bpe_merges_put(bpe_merges *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t merged);
/* 1 and *rank, *merged when the pair has a merge; else 0. */
int bpe_merges_get(const bpe_merges *m, uint32_t a, uint32_t b, uint32_t *rank, uint32_t *merged);

/* Scratch for bpe_merge_word, grown as needed; one per thread. */
typedef struct {
    uint32_t *id;
    int32_t *prev, *next;
    uint64_t *heap; /* rank << 32 | position (min-heap: lowest rank, then leftmost) */
    uint32_t *heap_merged;
    size_t cap, heap_cap, heap_n;
} bpe_scratch;

void bpe_scratch_free(bpe_scratch *s);

/* Merges the n initial ids of one word in place of `ids` (n >= 1); returns the number of
 * ids left. O(n log n) with a binary heap and lazy invalidation. */
size_t bpe_merge_word(const bpe_merges *m, bpe_scratch *s, uint32_t *ids, size_t n);

#endif
