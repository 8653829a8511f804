/* cmd_tokenize.c — `lmdisp tokenize --tokenizer TOK --out FILE.bin INPUT...` (DESIGN.md 4.8):
 * text files (one document each) or JSON Lines (one document per line) through an HF
 * tokenizer.json into one llm.c token file (4.2), streaming in chunks cut at points where the
 * encoding provably does not change (tokenizer.h), encoded in parallel and written in order,
 * so the output is the same for every thread count. Under mpirun (more than one rank) every
 * rank reads the inputs and cuts them identically, each encodes a contiguous range of each
 * batch's chunks, and rank 0 gathers the ids and writes: the file is the same for every rank
 * and thread count. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <mpi.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "fileio.h"
#include "tokenizer.h"
#include "mpicheck.h"

#define MAGIC_U16 20240520
#define MAGIC_U32 20240801
#define READ_BLOCK (1u << 20)

static void usage(FILE *f) {
    fprintf(
        f, "usage: lmdisp tokenize --tokenizer TOK (--out FILE.bin | --print) [options] INPUT...\n"
           "\n"
           "Encodes text with a Hugging Face tokenizer.json (byte-level BPE: GPT-2, Llama-3,\n"
           "Qwen2, OLMo-2/3) as HF tokenizers does with add_special_tokens=False, and writes one\n"
           "llm.c token file: uint16 ids when the vocabulary fits, else uint32 (DESIGN.md 4.2).\n"
           "\n"
           "  --tokenizer TOK     tokenizer.json, or a model directory holding one\n"
           "  --out FILE.bin      the token file (written to FILE.bin.tmp, renamed when complete)\n"
           "  --print             print the ids as one JSON array on stdout instead (one INPUT)\n"
           "  --print-docs        print one JSON array per document (no separators; any INPUTs)\n"
           "  --field NAME        INPUTs are JSON Lines; each line's string field NAME is one\n"
           "                      document (default for *.jsonl files: text)\n"
           "  --separator eos|none  between documents (default eos)\n"
           "  --eos-token TEXT    the separator token (default: the tokenizer's <|endoftext|>,\n"
           "                      <|end_of_text|>, </s> or <|end|>)\n"
           "  --threads N         encoding threads (default: OMP_NUM_THREADS or all cores);\n"
           "                      the output does not depend on N\n"
           "  (under mpirun -np R: each rank encodes a contiguous range of every batch's\n"
           "   chunks, rank 0 writes; the output does not depend on R either)\n"
           "  --chunk-kb N        plain-text chunk size in KiB (default 256)\n"
           "  --quiet             no progress on stderr\n"
           "  --decode FILE.bin   instead: write the text of a token file to stdout\n"
           "\n"
           "Empty documents are skipped (no separator for them). Plain text files are cut into\n"
           "chunks only where the encoding provably does not change (docs/TOKENIZE.md).\n");
}

typedef struct {
    const char *file;
    uint64_t off; /* file offset of the job's first byte (for messages) */
    size_t a_off, len, ctx;
    char *own; /* one rank: the job's own copy of its bytes (else they are in the arena) */
    int check_utf8, doc_first;
    const char *field; /* JSON Lines: the raw line is parsed by the worker; NULL = text */
    uint64_t lineno;
    tok_ids ids;
    int failed;
    int done; /* one rank: encoded (the writer may take it); read and set under wlock */
    lmd_err err;
} job;

typedef struct {
    const lmd_tokenizer *tok;
    tok_ws **ws;
    int nt;
    size_t chunk;
    int64_t sep_id; /* -1 = none */
    job *jobs;
    int nj, max_jobs;
    char *arena;
    size_t an, acap;
    /* output */
    FILE *out;
    const char *out_path;
    int u16;
    uint64_t count;
    long long wb_off, wb_pending; /* bytes of ids handed to the kernel's write-back, and since */
    tok_ids *print;
    int print_docs; /* --print-docs: one array per document, no separators */
    int n_docs;
    /* MPI: nranks > 1 when started by mpirun with several ranks */
    int rank, nranks;
    /* one rank: jobs is a ring of max_jobs slots; job i lives in slot i % max_jobs from when
     * the feeder (thread 0) fills it until the writer has written it; at most acap bytes of
     * text are in flight (fed, not yet written) */
    atomic_llong fed, claimed, written, inflight;
    atomic_int feed_done, stop;
    /* the writer's lock: a POSIX mutex rather than an OpenMP critical, so that ThreadSanitizer
     * sees the ordering (libgomp is not instrumented) */
    pthread_mutex_t wlock;
    int wrc; /* the writer's status (under wlock): -1 = werr is the run's error */
    lmd_err werr;
    /* progress */
    int quiet;
    double t0, last;
    uint64_t bytes_done, bytes_total;
} run_ctx;

static void progress(run_ctx *r, int final) {
    if (r->quiet) return;
    double now = lmd_now();
    if (!final && now - r->last < 2.0) return;
    r->last = now;
    double dt = now - r->t0 > 1e-9 ? now - r->t0 : 1e-9;
    double mbs = (double)r->bytes_done / 1e6 / dt;
    if (final) {
        fprintf(stderr,
                "tokenize: %d documents, %.1f MB, %llu tokens in %.1f s (%.1f MB/s, %d "
                "threads%s%.0d%s)\n",
                r->n_docs, (double)r->bytes_done / 1e6, (unsigned long long)r->count, dt, mbs,
                r->nt, r->nranks > 1 ? " x " : "", r->nranks > 1 ? r->nranks : 0,
                r->nranks > 1 ? " ranks" : "");
        return;
    }
    double eta = mbs > 0 && r->bytes_total > r->bytes_done
                     ? (double)(r->bytes_total - r->bytes_done) / 1e6 / mbs
                     : 0;
    fprintf(stderr, "tokenize: %.1f / %.1f MB (%.0f%%), %.1f MB/s, ETA %.0f s, %llu tokens\n",
            (double)r->bytes_done / 1e6, (double)r->bytes_total / 1e6,
            r->bytes_total ? 100.0 * (double)r->bytes_done / (double)r->bytes_total : 100.0, mbs,
            eta, (unsigned long long)r->count);
}

static int emit(run_ctx *r, const uint32_t *ids, size_t n, lmd_err *err) {
    if (r->print) {
        for (size_t i = 0; i < n; i++) tok_ids_push(r->print, ids[i]);
        r->count += n;
        return 0;
    }
    if (r->u16) {
        uint16_t buf[4096];
        for (size_t i = 0; i < n;) {
            size_t k = n - i < 4096 ? n - i : 4096;
            for (size_t j = 0; j < k; j++) buf[j] = (uint16_t)ids[i + j];
            if (fwrite(buf, 2, k, r->out) != k)
                return lmd_errf(err, "%s: write failed: %s", r->out_path, strerror(errno));
            i += k;
        }
    } else if (n && fwrite(ids, 4, n, r->out) != n) {
        return lmd_errf(err, "%s: write failed: %s", r->out_path, strerror(errno));
    }
    r->count += n;
    /* every 16 MiB of ids, the kernel starts writing them out while the encode goes on: the
     * final fsync (before the rename) then waits for little (62 MB of GPT-2 ids: 43 ms) */
    r->wb_pending += (long long)n * (r->u16 ? 2 : 4);
    if (r->wb_pending >= (16LL << 20)) {
        if (fflush(r->out) != 0)
            return lmd_errf(err, "%s: write failed: %s", r->out_path, strerror(errno));
        lmd_file_start_writeback(fileno(r->out), r->wb_off, r->wb_pending);
        r->wb_off += r->wb_pending;
        r->wb_pending = 0;
    }
    if (r->count > INT32_MAX)
        return lmd_errf(err,
                        "%s: more than 2^31-1 tokens: the llm.c header's count (int32) "
                        "cannot hold them; split the input",
                        r->out_path);
    return 0;
}

static void print_ids(tok_ids *ids) {
    fputc('[', stdout);
    for (size_t i = 0; i < ids->n; i++) printf(i ? ",%u" : "%u", ids->v[i]);
    fputs("]\n", stdout);
    ids->n = 0;
}

/* Encodes the batch in parallel, then writes it in order. */
/* Several ranks: the statuses of all jobs to every rank, the first failure's message from
 * its owner to every rank, the ids to rank 0. 0, or -1 with *err (the same on every rank). */
static int exchange(run_ctx *r, int lo, int hi, lmd_err *err) {
    int nj = r->nj, P = r->nranks;
    long long *cnt = lmd_calloc((size_t)nj + 1, sizeof *cnt);
    for (int j = lo; j < hi; j++) cnt[j] = r->jobs[j].failed ? -1 : (long long)r->jobs[j].ids.n;
    /* ranges are disjoint: a sum gathers them (a failure is -1, never summed with another) */
    LMD_MPI(MPI_Allreduce(MPI_IN_PLACE, cnt, nj, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD));
    int fail = -1;
    for (int j = 0; j < nj && fail < 0; j++)
        if (cnt[j] < 0) fail = j;
    if (fail >= 0) {
        int owner = 0;
        while (owner + 1 < P && (int)((long long)nj * (owner + 1) / P) <= fail) owner++;
        if (r->rank == owner) *err = r->jobs[fail].err;
        LMD_MPI(MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, owner, MPI_COMM_WORLD));
        free(cnt);
        return -1;
    }
    int *rc = lmd_calloc((size_t)P, sizeof *rc), *rd = lmd_calloc((size_t)P, sizeof *rd);
    long long tot = 0;
    for (int q = 0; q < P; q++) {
        long long a = 0;
        for (int j = (int)((long long)nj * q / P); j < (int)((long long)nj * (q + 1) / P); j++)
            a += cnt[j];
        if (tot + a > INT32_MAX) lmd_die("tokenize: a batch of more than 2^31 ids");
        rc[q] = (int)a;
        rd[q] = (int)tot;
        tot += a;
    }
    uint32_t *mine = lmd_calloc((size_t)rc[r->rank] + 1, sizeof *mine), *all = NULL;
    size_t k = 0;
    for (int j = lo; j < hi; j++) {
        memcpy(mine + k, r->jobs[j].ids.v, r->jobs[j].ids.n * sizeof *mine);
        k += r->jobs[j].ids.n;
    }
    if (r->rank == 0) all = lmd_calloc((size_t)tot + 1, sizeof *all);
    LMD_MPI(
        MPI_Gatherv(mine, rc[r->rank], MPI_UINT32_T, all, rc, rd, MPI_UINT32_T, 0, MPI_COMM_WORLD));
    if (r->rank == 0) {
        size_t o = 0;
        for (int j = 0; j < nj; j++) {
            tok_ids *d = &r->jobs[j].ids;
            d->n = 0;
            for (long long i = 0; i < cnt[j]; i++) tok_ids_push(d, all[o + (size_t)i]);
            o += (size_t)cnt[j];
        }
    }
    free(all);
    free(mine);
    free(rc);
    free(rd);
    free(cnt);
    return 0;
}

/* Encodes one job into jb->ids (jb->failed and jb->err on failure); w: the thread's workspace. */
static void encode_job(const run_ctx *r, job *jb, tok_ws *w) {
    const char *text = jb->own ? jb->own : r->arena + jb->a_off;
    jb->ids.n = 0;
    if (jb->check_utf8) {
        int64_t bad = tok_utf8_invalid_at(text, jb->len + jb->ctx);
        if (bad >= 0) {
            jb->failed = 1;
            lmd_errf(&jb->err, "%s: invalid UTF-8 at byte offset %llu (byte 0x%02X)", jb->file,
                     (unsigned long long)(jb->off + (uint64_t)bad), (unsigned char)text[bad]);
            return;
        }
    }
    if (jb->field) {
        json_error_t je;
        json_t *obj = json_loadb(text, jb->len, JSON_ALLOW_NUL, &je);
        if (!obj) {
            jb->failed = 1;
            lmd_errf(&jb->err, "%s:%llu:%d (byte offset %llu): %s", jb->file,
                     (unsigned long long)jb->lineno, je.column,
                     (unsigned long long)(jb->off + (uint64_t)je.position), je.text);
            return;
        }
        json_t *v = json_is_object(obj) ? json_object_get(obj, jb->field) : NULL;
        if (!json_is_string(v)) {
            jb->failed = 1;
            lmd_errf(&jb->err, "--field %s: %s:%llu: %s", jb->field, jb->file,
                     (unsigned long long)jb->lineno,
                     !json_is_object(obj) ? "the line is not a JSON object"
                     : v                  ? "the field is not a string"
                                          : "the field is missing");
        } else if (tok_encode(r->tok, w, json_string_value(v), json_string_length(v), 0, &jb->ids,
                              &jb->err)) {
            jb->failed = 1;
            lmd_err_prefix(&jb->err, "%s:%llu", jb->file, (unsigned long long)jb->lineno);
        }
        json_decref(obj); /* jansson has checked the UTF-8 of the line */
        return;
    }
    if (tok_encode(r->tok, w, text, jb->len, jb->ctx, &jb->ids, &jb->err)) {
        jb->failed = 1;
        lmd_err_prefix(&jb->err, "%s, document at byte offset %llu", jb->file,
                       (unsigned long long)jb->off);
    }
}

/* One rank: writes jobs[0..nj) (encoded, none failed) in order. 0, or -1 with *err. */
static int write_jobs(run_ctx *r, const job *jobs, int nj, lmd_err *err) {
    for (int j = 0; j < nj; j++) {
        const job *jb = &jobs[j];
        if (jb->doc_first && jb->ids.n) { /* documents with no tokens are skipped */
            if (r->print_docs && r->print->n) print_ids(r->print);
            if (r->n_docs > 0 && r->sep_id >= 0) {
                uint32_t s = (uint32_t)r->sep_id;
                if (emit(r, &s, 1, err)) return -1;
            }
            r->n_docs++;
        }
        if (emit(r, jb->ids.v, jb->ids.n, err)) return -1;
        r->bytes_done += jb->len;
    }
    progress(r, 0);
    return 0;
}

/* Several ranks: encodes the batch, gathers it and writes it in order (rank 0). */
static int flush(run_ctx *r, lmd_err *err) {
    int nj = r->nj;
    /* this rank's contiguous range of the batch's chunks */
    int lo = (int)((long long)nj * r->rank / r->nranks);
    int hi = (int)((long long)nj * (r->rank + 1) / r->nranks);
    for (int j = 0; j < nj; j++) r->jobs[j].failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->nt)
    for (int j = lo; j < hi; j++) encode_job(r, &r->jobs[j], r->ws[omp_get_thread_num()]);
    if (exchange(r, lo, hi, err)) return -1;
    int ok = r->rank != 0 || !write_jobs(r, r->jobs, nj, err);
    /* rank 0's write status to everyone, so no rank waits in the next batch for it */
    LMD_MPI(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (!ok) {
        LMD_MPI(MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, 0, MPI_COMM_WORLD));
        return -1;
    }
    r->nj = 0;
    r->an = 0;
    progress(r, 0);
    return 0;
}

/* One rank: a pipeline. Thread 0 feeds jobs into the ring while every thread (thread 0 too,
 * whenever the ring is full) claims fed jobs in order and encodes them; the thread that
 * finishes a job writes every encoded job from the first unwritten one on, so reading,
 * encoding and writing overlap and no thread waits at a batch's end. The file gets the
 * bytes of a serial encode-then-write, and the error is the serial one: the first failed
 * job's or a write's, whichever comes first in order, then a read error of the feeder. */

static void pipe_nap(void) {
    struct timespec ts = {0, 50000}; /* 50 us: the jobs take milliseconds */
    nanosleep(&ts, NULL);
}

/* Claims the next fed job and encodes and writes it; 0 when none was claimable. */
static int pipe_work_one(run_ctx *r, tok_ws *w) {
    long long i = atomic_load(&r->claimed);
    do {
        if (i >= atomic_load(&r->fed) || atomic_load(&r->stop)) return 0;
    } while (!atomic_compare_exchange_weak(&r->claimed, &i, i + 1));
    job *jb = &r->jobs[i % r->max_jobs];
    encode_job(r, jb, w);
    pthread_mutex_lock(&r->wlock);
    jb->done = 1;
    long long n = atomic_load(&r->written), fed = atomic_load(&r->fed);
    while (!r->wrc && n < fed && r->jobs[n % r->max_jobs].done) {
        job *wj = &r->jobs[n % r->max_jobs];
        if (wj->failed) {
            r->werr = wj->err;
            r->wrc = -1;
        } else if (write_jobs(r, wj, 1, &r->werr)) {
            r->wrc = -1;
        }
        if (r->wrc) {
            atomic_store(&r->stop, 1);
            break;
        }
        wj->done = 0;
        free(wj->own);
        wj->own = NULL;
        atomic_fetch_sub(&r->inflight, (long long)(wj->len + wj->ctx));
        atomic_store(&r->written, ++n); /* the slot is free for the feeder from here */
    }
    pthread_mutex_unlock(&r->wlock);
    return 1;
}

/* Resets slot jb for a new job (its ids buffer is kept for reuse). */
static void job_fill(job *jb, const char *file, uint64_t off, size_t len, size_t ctx,
                     const char *field, uint64_t lineno, int doc_first) {
    tok_ids keep = jb->ids;
    memset(jb, 0, sizeof *jb);
    jb->ids = keep;
    jb->file = file;
    jb->off = off;
    jb->len = len;
    jb->ctx = ctx;
    jb->field = field;
    jb->lineno = lineno;
    jb->check_utf8 = !field;
    jb->doc_first = doc_first;
}

/* Thread 0: fills the next slot with a copy of the job's bytes, first encoding (helping)
 * while the ring or the byte budget is full. -1 when the run stopped on an error (the
 * writer's, in r->werr) or when out of memory (*err). */
static int pipe_add(run_ctx *r, const char *file, uint64_t off, const char *data, size_t len,
                    size_t ctx, const char *field, uint64_t lineno, int doc_first, lmd_err *err) {
    long long need = (long long)(len + ctx);
    for (;;) {
        if (atomic_load(&r->stop)) return -1;
        long long fed = atomic_load(&r->fed), inf = atomic_load(&r->inflight);
        if (fed - atomic_load(&r->written) < r->max_jobs &&
            (inf == 0 || inf + need <= (long long)r->acap))
            break;
        if (!pipe_work_one(r, r->ws[omp_get_thread_num()])) pipe_nap();
    }
    long long i = atomic_load(&r->fed);
    job *jb = &r->jobs[i % r->max_jobs];
    char *own = malloc(len + ctx + 1);
    if (!own) return lmd_errf(err, "%s: out of memory for a %zu-byte document", file, len);
    memcpy(own, data, len + ctx);
    job_fill(jb, file, off, len, ctx, field, lineno, doc_first);
    jb->own = own;
    atomic_fetch_add(&r->inflight, need);
    atomic_store(&r->fed, i + 1); /* published: a worker may claim it from here */
    return 0;
}

static int feed_file(run_ctx *r, const char *path, const char *field, lmd_err *err);

/* One rank: feeds every input through the pipeline. 0, or -1 with *err. */
static int pipe_run(run_ctx *r, const char **inputs, int nin, const char *field, lmd_err *err) {
    int frc = 0;
    lmd_err ferr = {{0}};
#pragma omp parallel num_threads(r->nt)
    {
        tok_ws *w = r->ws[omp_get_thread_num()];
        if (omp_get_thread_num() == 0) {
            for (int i = 0; i < nin && !frc; i++) frc = feed_file(r, inputs[i], field, &ferr);
            atomic_store(&r->feed_done, 1);
        }
        for (;;) {
            if (pipe_work_one(r, w)) continue;
            if (atomic_load(&r->stop) ||
                (atomic_load(&r->feed_done) && atomic_load(&r->claimed) >= atomic_load(&r->fed)))
                break;
            pipe_nap();
        }
    }
    for (long long i = atomic_load(&r->written); i < atomic_load(&r->fed); i++) {
        job *jb = &r->jobs[i % r->max_jobs];
        free(jb->own);
        jb->own = NULL;
    }
    if (r->wrc) {
        *err = r->werr;
        return -1;
    }
    if (frc) {
        *err = ferr;
        return -1;
    }
    return 0;
}

static int add_job(run_ctx *r, const char *file, uint64_t off, const char *data, size_t len,
                   size_t ctx, const char *field, uint64_t lineno, int doc_first, lmd_err *err) {
    if (r->nranks == 1)
        return pipe_add(r, file, off, data, len, ctx, field, lineno, doc_first, err);
    if (r->nj > 0 && (r->nj == r->max_jobs || r->an + len + ctx > r->acap))
        if (flush(r, err)) return -1;
    if (r->an + len + ctx > r->acap) { /* one job larger than the arena */
        size_t c = r->an + len + ctx;
        char *a = realloc(r->arena, c);
        if (!a) return lmd_errf(err, "%s: out of memory for a %zu-byte document", file, len);
        r->arena = a;
        r->acap = c;
    }
    job *jb = &r->jobs[r->nj++];
    job_fill(jb, file, off, len, ctx, field, lineno, doc_first);
    jb->a_off = r->an;
    memcpy(r->arena + r->an, data, len + ctx);
    r->an += len + ctx;
    return 0;
}

/* A window of a file being read: the bytes buf[pos, pos + have) start at file offset base. */
typedef struct {
    char *buf;
    size_t cap, pos, have;
    uint64_t base;
    int eof;
} rd_win;

/* Appends up to READ_BLOCK bytes of f to the window, moving its bytes to the front of the
 * buffer (or growing it) only when the room behind them runs out, so each byte is moved
 * about once per cap / READ_BLOCK blocks read; sets eof at the end of the file. 0, or -1
 * with a message. */
static int read_block(FILE *f, const char *path, rd_win *w, lmd_err *err) {
    if (w->cap - w->pos - w->have < READ_BLOCK) {
        if (w->pos) {
            memmove(w->buf, w->buf + w->pos, w->have);
            w->pos = 0;
        }
        if (w->cap - w->have < READ_BLOCK) {
            w->cap *= 2;
            char *b = realloc(w->buf, w->cap);
            if (!b) lmd_die("out of memory");
            w->buf = b;
        }
    }
    size_t got = fread(w->buf + w->pos + w->have, 1, READ_BLOCK, f);
    w->have += got;
    if (got < READ_BLOCK) {
        if (ferror(f))
            return lmd_errf(err, "%s: read failed at byte %llu: %s", path,
                            (unsigned long long)(w->base + w->have), strerror(errno));
        w->eof = 1;
    }
    return 0;
}

/* A plain text file = one document, cut at tok_safe_cut points near every r->chunk bytes. */
static int feed_text(run_ctx *r, const char *path, lmd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lmd_errf(err, "%s: cannot open: %s", path, strerror(errno));
    rd_win w = {.cap = 4 * (r->chunk + 2 * READ_BLOCK)};
    w.buf = malloc(w.cap);
    if (!w.buf) lmd_die("out of memory");
    int first = 1, rc = -1;
    size_t W = tok_cut_window(r->tok);
    size_t from = r->chunk;
    for (;;) {
        while (!w.eof && w.have < r->chunk + READ_BLOCK) {
            if (read_block(f, path, &w, err)) goto done;
        }
        if (w.have == 0) break;
        const char *p = w.buf + w.pos;
        size_t ctx = 0, c = w.have > r->chunk ? tok_safe_cut(r->tok, p, w.have, from, &ctx) : 0;
        if (!c && !w.eof) { /* no cut point yet: read on, resuming the search where it stopped */
            if (w.have > W + 1 && w.have - W - 1 > from) from = w.have - W - 1;
            if (read_block(f, path, &w, err)) goto done;
            continue;
        }
        size_t len = c ? c : w.have;
        if (add_job(r, path, w.base, p, len, c ? ctx : 0, NULL, 0, first, err)) goto done;
        first = 0;
        w.pos += len;
        w.have -= len;
        w.base += len;
        from = r->chunk;
        if (!c) break;
    }
    rc = 0;
done:
    free(w.buf);
    fclose(f);
    return rc;
}

/* JSON Lines: every non-empty line is an object whose string `field` is one document. */
static int feed_jsonl(run_ctx *r, const char *path, const char *field, lmd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lmd_errf(err, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    uint64_t off = 0, lineno = 0;
    int rc = -1;
    while ((n = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        uint64_t here = off;
        off += (uint64_t)n;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (len == 0) continue;
        if (add_job(r, path, here, line, len, 0, field, lineno, 1, err)) goto done;
    }
    if (ferror(f)) {
        lmd_errf(err, "%s: read failed after line %llu: %s", path, (unsigned long long)lineno,
                 strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(line);
    fclose(f);
    return rc;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* One input: JSON Lines (with --field, or *.jsonl: field text) or plain text. */
static int feed_file(run_ctx *r, const char *path, const char *field, lmd_err *err) {
    const char *fld = field ? field : ends_with(path, ".jsonl") ? "text" : NULL;
    return fld ? feed_jsonl(r, path, fld, err) : feed_text(r, path, err);
}

static int write_header(FILE *f, int u16, uint64_t count) {
    int32_t h[256] = {0};
    h[0] = u16 ? MAGIC_U16 : MAGIC_U32;
    h[1] = u16 ? 1 : 7;
    h[2] = (int32_t)count;
    return fwrite(h, 4, 256, f) == 256 ? 0 : -1;
}

/* --decode FILE.bin: the text of a token file (either form of 4.2) on stdout. */
static int decode_file(const lmd_tokenizer *tok, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "lmdisp tokenize: %s: cannot open: %s\n", path, strerror(errno));
        return 2;
    }
    int32_t h[256];
    int rc = 2;
    uint32_t *ids = NULL;
    if (fread(h, 4, 256, f) != 256 ||
        !((h[0] == MAGIC_U16 && h[1] == 1) || (h[0] == MAGIC_U32 && h[1] == 7)) || h[2] < 0) {
        fprintf(stderr, "lmdisp tokenize: %s: not an llm.c token file (header [0]=%d [1]=%d)\n",
                path, h[0], h[1]);
        goto done;
    }
    size_t n = (size_t)h[2], w = h[0] == MAGIC_U16 ? 2 : 4;
    ids = lmd_calloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        uint16_t u;
        if (w == 2 ? fread(&u, 2, 1, f) != 1 : fread(&ids[i], 4, 1, f) != 1) {
            fprintf(stderr,
                    "lmdisp tokenize: %s: the header says %zu tokens but the file ends "
                    "after %zu\n",
                    path, n, i);
            goto done;
        }
        if (w == 2) ids[i] = u;
    }
    char *text;
    size_t len;
    lmd_err err = {{0}};
    if (tok_decode(tok, ids, n, &text, &len, &err)) {
        fprintf(stderr, "lmdisp tokenize: %s: %s\n", path, err.msg);
        goto done;
    }
    rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
    free(text);
done:
    free(ids);
    fclose(f);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    lmd_args a;
    lmd_args_init(&a, "tokenize", argc, argv);
    if (lmd_args_flag(&a, "help")) {
        usage(stdout);
        lmd_args_free(&a);
        return 0;
    }
    const char *tokp = lmd_args_str(&a, "tokenizer");
    const char *outp = lmd_args_str(&a, "out");
    const char *field = lmd_args_str(&a, "field");
    const char *sepp = lmd_args_str(&a, "separator");
    const char *eos_text = lmd_args_str(&a, "eos-token");
    const char *decp = lmd_args_str(&a, "decode");
    int print = lmd_args_flag(&a, "print");
    int print_docs = lmd_args_flag(&a, "print-docs");
    if (print_docs) print = 1;
    int quiet = lmd_args_flag(&a, "quiet");
    int nt = omp_get_max_threads(), chunk_kb = 256;
    lmd_args_int(&a, "threads", &nt, 1, 1024);
    lmd_args_int(&a, "chunk-kb", &chunk_kb, 1, 1 << 20);
    enum { MAXIN = 4096 };
    const char **inputs = lmd_calloc(MAXIN, sizeof *inputs);
    int nin = lmd_args_positional(&a, inputs, MAXIN);
    int bad = lmd_args_finish(&a);
    lmd_args_free(&a);
    int rc = 2;
    lmd_tokenizer *tok = NULL;
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.nranks = 1;
    /* several ranks only under mpirun; a plain run stays free of MPI start-up */
    const char *wsz = getenv("OMPI_COMM_WORLD_SIZE");
    int mpi_on = 0;
    if (!bad && !decp && wsz && atoi(wsz) > 1) {
        if (lmd_mpi_init("tokenize")) {
            free(inputs);
            return 2;
        }
        mpi_on = 1;
        LMD_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &r.rank));
        LMD_MPI(MPI_Comm_size(MPI_COMM_WORLD, &r.nranks));
        if (r.rank != 0) { /* rank 0 speaks for all: the same messages would repeat */
            quiet = 1;
            if (!freopen("/dev/null", "w", stderr)) lmd_die("cannot silence rank %d", r.rank);
        }
    }
    char tmp[4200] = "";
    if (bad) goto out;
    if (decp) {
        lmd_err derr = {{0}};
        if (!tokp || nin || outp || print) {
            fprintf(stderr,
                    "lmdisp tokenize: --decode FILE.bin takes --tokenizer and nothing else\n");
            goto out;
        }
        if (tok_load(&tok, tokp, &derr)) {
            fprintf(stderr, "lmdisp tokenize: %s\n", derr.msg);
            goto out;
        }
        rc = decode_file(tok, decp);
        goto out;
    }
    if (!tokp || (!outp && !print) || (outp && print) || nin < 1) {
        fprintf(stderr, "lmdisp tokenize: need --tokenizer, exactly one of --out or --print, and "
                        "at least one INPUT\n");
        usage(stderr);
        goto out;
    }
    if (print && !print_docs && nin != 1) {
        fprintf(stderr, "lmdisp tokenize: --print takes a single INPUT (got %d)\n", nin);
        goto out;
    }
    if (sepp && strcmp(sepp, "eos") && strcmp(sepp, "none")) {
        fprintf(stderr, "lmdisp tokenize: --separator must be eos or none, not '%s'\n", sepp);
        goto out;
    }
    lmd_err err = {{0}};
    if (tok_load(&tok, tokp, &err)) {
        fprintf(stderr, "lmdisp tokenize: %s\n", err.msg);
        goto out;
    }
    r.sep_id = -1;
    if (!print_docs && (!sepp || !strcmp(sepp, "eos"))) {
        const char *name = NULL;
        r.sep_id = eos_text ? tok_token_id(tok, eos_text) : tok_eos_id(tok, &name);
        if (r.sep_id < 0) {
            if (eos_text)
                fprintf(stderr,
                        "lmdisp tokenize: --eos-token '%s' is neither an added token nor "
                        "a vocabulary token of %s\n",
                        eos_text, tokp);
            else
                fprintf(stderr,
                        "lmdisp tokenize: %s has no end-of-text special token "
                        "(<|endoftext|>, <|end_of_text|>, </s>, <|end|>); name one with "
                        "--eos-token or use --separator none\n",
                        tokp);
            goto out;
        }
    }
    uint64_t total = 0;
    for (int i = 0; i < nin; i++) {
        struct stat st;
        if (stat(inputs[i], &st) != 0 || !S_ISREG(st.st_mode)) {
            fprintf(stderr, "lmdisp tokenize: %s: %s\n", inputs[i],
                    errno && stat(inputs[i], &st) != 0 ? strerror(errno) : "not a regular file");
            goto out;
        }
        total += (uint64_t)st.st_size;
    }
    r.tok = tok;
    r.nt = nt;
    r.chunk = (size_t)chunk_kb * 1024;
    r.max_jobs = 4096; /* many small JSON Lines documents per parallel batch */
    r.jobs = lmd_calloc((size_t)r.max_jobs, sizeof *r.jobs);
    pthread_mutex_init(&r.wlock, NULL);
    /* several ranks: a batch of 4 MiB of text per thread (or 4 chunks, if larger), in chunks
     * small enough that a batch has 16 per thread at the default size: the threads' last
     * jobs of a batch end within about half a chunk of each other (with 4 chunks of 1 MiB a
     * thread, the idle tail was ~1/8 of the batch: GPT-2 reached 1.54x on 2 threads). One
     * rank: the same number of bytes is the most the pipeline holds in flight */
    size_t per = r.chunk > ((size_t)1 << 20) ? r.chunk : ((size_t)1 << 20);
    size_t batch_jobs = (size_t)(4 * nt) * (per / r.chunk);
    r.acap = batch_jobs * (r.chunk + 64);
    if (r.nranks > 1) { /* one rank: each job has its own copy of its bytes */
        r.arena = malloc(r.acap);
        if (!r.arena) lmd_die("out of memory for a %zu-byte batch", r.acap);
    }
    r.ws = lmd_calloc((size_t)nt, sizeof *r.ws);
    for (int i = 0; i < nt; i++) r.ws[i] = tok_ws_new(tok);
    r.quiet = quiet || print;
    r.t0 = r.last = lmd_now();
    r.bytes_total = total;
    r.u16 = tok_vocab_size(tok) <= 65536;
    /* jansson seeded its hash when tok_load parsed tokenizer.json, before any thread runs */
    tok_ids printed = {0};
    if (print) {
        r.print = &printed;
        r.print_docs = print_docs;
    } else if (r.rank == 0) {
        if (lmd_path(tmp, sizeof tmp, &err, "%s.tmp", outp)) {
            fprintf(stderr, "lmdisp tokenize: %s\n", err.msg);
            tmp[0] = 0;
            rc = 1;
        } else {
            r.out = fopen(tmp, "wb");
            r.out_path = tmp;
            if (!r.out) {
                fprintf(stderr, "lmdisp tokenize: cannot create %s: %s\n", tmp, strerror(errno));
                tmp[0] = 0;
                rc = 1;
            } else if (write_header(r.out, r.u16, 0)) {
                fprintf(stderr, "lmdisp tokenize: %s: write failed: %s\n", tmp, strerror(errno));
                rc = 1;
            } else {
                r.wb_off = 256 * 4; /* the ids follow the header */
            }
        }
    }
    {
        /* every rank learns whether rank 0 could start the file (rc 1: it could not) */
        int st = rc == 1;
        if (mpi_on) LMD_MPI(MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD));
        if (st) {
            rc = 1;
            goto out;
        }
    }
    if (r.nranks == 1) {
        if (pipe_run(&r, inputs, nin, field, &err)) {
            fprintf(stderr, "lmdisp tokenize: %s\n", err.msg);
            rc = strstr(err.msg, "write failed") ? 1 : 2;
            goto out;
        }
    }
    for (int i = 0; r.nranks > 1 && i < nin; i++) {
        if (feed_file(&r, inputs[i], field, &err) || flush(&r, &err)) {
            fprintf(stderr, "lmdisp tokenize: %s\n", err.msg);
            rc = strstr(err.msg, "write failed") ? 1 : 2;
            goto out;
        }
    }
    if (r.rank != 0) {
        /* nothing to write: rank 0 finishes the file */
    } else if (print) {
        print_ids(&printed);
        tok_ids_free(&printed);
        if (fflush(stdout) != 0) {
            rc = 1;
            goto out;
        }
    } else {
        if (fseek(r.out, 0, SEEK_SET) != 0 || write_header(r.out, r.u16, r.count) ||
            fclose(r.out) != 0) {
            r.out = NULL;
            fprintf(stderr, "lmdisp tokenize: %s: cannot finish the file: %s\n", tmp,
                    strerror(errno));
            rc = 1;
            goto out;
        }
        r.out = NULL;
        /* synced before the rename, so after a crash OUT is the old or the complete file */
        if (lmd_file_commit(tmp, outp, &err)) {
            fprintf(stderr, "lmdisp tokenize: %s\n", err.msg);
            rc = 1;
            goto out;
        }
        tmp[0] = 0;
        progress(&r, 1);
        if (!quiet)
            fprintf(stderr, "tokenize: wrote %s (%s, %s ids, %s)\n", outp, tok_describe(tok),
                    r.u16 ? "uint16" : "uint32",
                    r.sep_id >= 0 ? "eos between documents" : "no separator");
    }
    rc = 0;
out:
    if (r.out) fclose(r.out);
    if (tmp[0]) remove(tmp);
    if (r.ws)
        for (int i = 0; i < r.nt; i++) tok_ws_free(r.ws[i]);
    free(r.ws);
    if (r.jobs) { /* allocated together with the lock */
        for (int j = 0; j < r.max_jobs; j++) tok_ids_free(&r.jobs[j].ids);
        pthread_mutex_destroy(&r.wlock);
    }
    free(r.jobs);
    free(r.arena);
    tok_free(tok);
    free(inputs);
    if (mpi_on) {
        /* the exit status of rank 0 (a failure there, e.g. a write, is every rank's) */
        LMD_MPI(MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD));
        rc = lmd_mpi_finalize(rc);
    }
    return rc;
}
