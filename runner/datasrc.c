#include "datasrc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int lmd_datasrc_load(const char *spec, int vocab_size, lmd_tokens *out, lmd_err *err) {
    if (!spec || !strcmp(spec, "synthetic") || !strncmp(spec, "synthetic:", 10)) {
        lmd_synth_opts o = lmd_synth_default();
        if (spec && spec[9] == ':') {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(spec + 10, &end, 10);
            if (errno || *end || end == spec + 10)
                return lmd_errf(err, "data '%s': expected synthetic:SEED with an integer seed",
                                spec);
            o.seed = s;
        }
        if (vocab_size > 0) o.vocab_size = vocab_size;
        return lmd_data_synthetic(out, &o, err);
    }
    if (!strncmp(spec, "text:", 5)) return lmd_data_text(out, spec + 5, err);
    if (!strncmp(spec, "shards:", 7))
        return lmd_data_shards(out, spec + 7, vocab_size > 0 ? vocab_size : 50257, err);
    return lmd_errf(err,
                    "data '%s': unknown source; use synthetic, synthetic:SEED, text:PATH or "
                    "shards:GLOB",
                    spec);
}
