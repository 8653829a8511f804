/* bpe.c — hash maps of the BPE model and the merge loop. */
#include "bpe.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) lmd_die("out of memory growing a tokenizer table to %zu entries", c);
    *cap = c;
    return q;
}

/* ---- string map: slots hold entry index + 1 ---- */

void bpe_strmap_init(bpe_strmap *m) { memset(m, 0, sizeof *m); }

void bpe_strmap_free(bpe_strmap *m) {
    free(m->slots);
    free(m->pool);
    free(m->lens);
    free(m->offs);
    free(m->ids);
    memset(m, 0, sizeof *m);
}

static void strmap_rehash(bpe_strmap *m, size_t cap) {
    free(m->slots);
    m->slots = lmd_calloc(cap, sizeof *m->slots);
    m->cap = cap;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = hash_bytes(m->pool + m->offs[e], m->lens[e]) & (cap - 1);
        while (m->slots[i]) i = (i + 1) & (cap - 1);
        m->slots[i] = e + 1;
    }
}

int64_t bpe_strmap_get(const bpe_strmap *m, const char *s, size_t len) {
    if (!m->cap) return -1;
    size_t i = hash_bytes(s, len) & (m->cap - 1);
    while (m->slots[i]) {
        size_t e = m->slots[i] - 1;
        if (m->lens[e] == len && !memcmp(m->pool + m->offs[e], s, len)) return m->ids[e];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

int bpe_strmap_put(bpe_strmap *m, const char *s, size_t len, uint32_t id) {
    if (bpe_strmap_get(m, s, len) >= 0) return 1;
    if ((m->n + 1) * 2 > m->cap) strmap_rehash(m, m->cap ? m->cap * 2 : 1024);
    size_t e = m->n;
    size_t nc = m->n_cap;
    m->lens = grow(m->lens, &nc, e + 1, sizeof *m->lens);
    nc = m->n_cap;
    m->offs = grow(m->offs, &nc, e + 1, sizeof *m->offs);
    nc = m->n_cap;
    m->ids = grow(m->ids, &nc, e + 1, sizeof *m->ids);
    m->n_cap = nc;
    m->pool = grow(m->pool, &m->pool_cap, m->pool_n + len + 1, 1);
    memcpy(m->pool + m->pool_n, s, len);
    m->offs[e] = m->pool_n;
    m->lens[e] = (uint32_t)len;
    m->ids[e] = id;
    m->pool_n += len;
    m->n++;
    size_t i = hash_bytes(s, len) & (m->cap - 1);
    while (m->slots[i]) i = (i + 1) & (m->cap - 1);
    m->slots[i] = e + 1;
    return 0;
}

/* ---- merges ---- */

void bpe_merges_init(bpe_merges *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = 1024;
    while (cap < expected * 2 + 2) cap *= 2;
    m->cap = cap;
    m->keys = lmd_calloc(cap, sizeof *m->keys);
    m->rank = lmd_calloc(cap, sizeof *m->rank);
    m->merged = lmd_calloc(cap, sizeof *m->merged);
}

void bpe_merges_free(bpe_merges *m) {
    free(m->keys);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

static void merges_insert(bpe_merges *m, uint64_t key, uint32_t rank, uint32_t merged) {
    size_t i = hash_u64(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
}

void bpe_merges_put(bpe_merges *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t merged) {
    if ((m->n + 1) * 2 > m->cap) {
        bpe_merges old = *m;
        m->cap *= 2;
        m->n = 0;
        m->keys = lmd_calloc(m->cap, sizeof *m->keys);
        m->rank = lmd_calloc(m->cap, sizeof *m->rank);
        m->merged = lmd_calloc(m->cap, sizeof *m->merged);
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) merges_insert(m, old.keys[i], old.rank[i], old.merged[i]);
        bpe_merges_free(&old);
    }
    merges_insert(m, ((uint64_t)a << 32 | b) + 1, rank, merged);
}

int bpe_merges_get(const bpe_merges *m, uint32_t a, uint32_t b, uint32_t *rank, uint32_t *merged) {
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    size_t i = hash_u64(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (m->keys[i] == key) {
            *rank = m->rank[i];
            *merged = m->merged[i];
            return 1;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

/* ---- merge loop ---- */

void bpe_scratch_free(bpe_scratch *s) {
    free(s->id);
    free(s->prev);
    free(s->next);
    free(s->heap);
    free(s->heap_merged);
    memset(s, 0, sizeof *s);
}

static void heap_push(bpe_scratch *s, uint64_t key, uint32_t merged) {
    if (s->heap_n == s->heap_cap) {
        size_t c = s->heap_cap;
        s->heap = grow(s->heap, &c, s->heap_n + 1, sizeof *s->heap);
        c = s->heap_cap;
        s->heap_merged = grow(s->heap_merged, &c, s->heap_n + 1, sizeof *s->heap_merged);
        s->heap_cap = c;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->heap[p] <= key) break;
        s->heap[i] = s->heap[p];
        s->heap_merged[i] = s->heap_merged[p];
        i = p;
    }
    s->heap[i] = key;
    s->heap_merged[i] = merged;
}

static uint64_t heap_pop(bpe_scratch *s, uint32_t *merged) {
    uint64_t top = s->heap[0];
    *merged = s->heap_merged[0];
    uint64_t key = s->heap[--s->heap_n];
    uint32_t mv = s->heap_merged[s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && s->heap[c + 1] < s->heap[c]) c++;
        if (s->heap[c] >= key) break;
        s->heap[i] = s->heap[c];
        s->heap_merged[i] = s->heap_merged[c];
        i = c;
    }
    if (n) {
        s->heap[i] = key;
        s->heap_merged[i] = mv;
    }
    return top;
}

static void push_pair(const bpe_merges *m, bpe_scratch *s, int32_t pos) {
    int32_t nx = s->next[pos];
    if (nx < 0) return;
    uint32_t rank, merged;
    if (bpe_merges_get(m, s->id[pos], s->id[nx], &rank, &merged))
        heap_push(s, (uint64_t)rank << 32 | (uint32_t)pos, merged);
}

size_t bpe_merge_word(const bpe_merges *m, bpe_scratch *s, uint32_t *ids, size_t n) {
    if (n < 2) return n;
    if (n > 0x7fffffff) lmd_die("BPE word of %zu symbols exceeds the 2^31 limit", n);
    if (n > s->cap) {
        size_t c = s->cap;
        s->id = grow(s->id, &c, n, sizeof *s->id);
        c = s->cap;
        s->prev = grow(s->prev, &c, n, sizeof *s->prev);
        c = s->cap;
        s->next = grow(s->next, &c, n, sizeof *s->next);
        s->cap = c;
    }
    for (size_t i = 0; i < n; i++) {
        s->id[i] = ids[i];
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(m, s, (int32_t)i);
    while (s->heap_n) {
        uint32_t merged;
        uint64_t top = heap_pop(s, &merged);
        int32_t pos = (int32_t)(uint32_t)top;
        /* Stale entries: the left symbol was absorbed (prev link broken marks it), or its
         * pair changed since the push (the merged id no longer matches). */
        if (s->prev[pos] == -2) continue;
        int32_t nx = s->next[pos];
        if (nx < 0) continue;
        uint32_t rank, mg;
        if (!bpe_merges_get(m, s->id[pos], s->id[nx], &rank, &mg) || mg != merged ||
            rank != (uint32_t)(top >> 32))
            continue;
        s->id[pos] = merged;
        int32_t nn = s->next[nx];
        s->next[pos] = nn;
        if (nn >= 0) s->prev[nn] = pos;
        s->prev[nx] = -2;
        if (s->prev[pos] >= 0) push_pair(m, s, s->prev[pos]);
        push_pair(m, s, pos);
    }
    size_t k = 0;
    for (int32_t p = 0; p >= 0; p = s->next[p]) ids[k++] = s->id[p];
    return k;
}
