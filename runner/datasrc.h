/* datasrc.h — data sources named by one string, as on the command line and in specs:
 * "synthetic" | "synthetic:SEED" | "text:PATH" | "shards:GLOB" (llm.c .bin shards). */
#ifndef LMDISP_DATASRC_H
#define LMDISP_DATASRC_H

#include "data.h"
#include "util.h"

/* Loads the source. vocab_size applies to shards (0 = GPT-2's 50257) and to the synthetic
 * corpus (0 = its default); text is always 256. */
int lmd_datasrc_load(const char *spec, int vocab_size, lmd_tokens *out, lmd_err *err);

#endif
