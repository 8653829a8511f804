/* tokfile.h — one llm.c token file (DESIGN 4.2, uint16 or uint32 form) read as int32 ids for
 * vocabularies of any size (the pretrained models: Llama-3, Qwen, OLMo-2/3 exceed 65,536). */
#ifndef LMDISP_TOKFILE_H
#define LMDISP_TOKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Reads tokens [offset, offset + count) of the file at path into *ids (malloc'ed, count
 * int32), checking the header (magic 20240520 / version 1: uint16; 20240801 / 7: uint32), the
 * file size against the declared count, that the range lies inside the file, and every id
 * read against vocab_size (0: no check). count = 0 reads to the end (*n = how many).
 * Returns 0, or -1 with a message naming the file. */
int lmd_tokfile_read(const char *path, int vocab_size, size_t offset, size_t count, int32_t **ids,
                     size_t *n, lmd_err *err);

#endif
