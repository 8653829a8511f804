/* measure.c — one model's condensation metrics on a fixed evaluation set (measure.h). */
#include "measure.h"

#include <string.h>

int lmd_measure_model(gpt_model *m, const int *inputs, int n_seq, int T, int nbins, int chunk,
                      lmd_geom *out, lmd_err *err) {
    memset(out, 0, sizeof *out);
    const gpt_config *c = &m->cfg;
    if (n_seq < 1 || T < 1)
        return lmd_errf(err, "measure: need at least one sequence of length >= 1 (got %d x %d)",
                        n_seq, T);
    if (T > c->n_ctx)
        return lmd_errf(err, "measure: sequence length %d exceeds the model's n_ctx %d", T,
                        c->n_ctx);
    if (!inputs) return lmd_errf(err, "measure: no input tokens");
    // gpt_forward treats a bad id as a programmer error (abort); here it is user data.
    const size_t n = (size_t)n_seq * (size_t)T;
    for (size_t i = 0; i < n; i++)
        if (inputs[i] < 0 || inputs[i] >= c->vocab_size)
            return lmd_errf(err,
                            "measure: token id %d (sequence %zu, position %zu) is outside the "
                            "model's vocabulary of %d",
                            inputs[i], i / (size_t)T, i % (size_t)T, c->vocab_size);
    if (chunk <= 0) chunk = LMD_MEASURE_CHUNK;
    if (chunk > n_seq) chunk = n_seq;

    const int L1 = c->n_layer + 1;
    lmd_geom_acc acc;
    if (lmd_geom_acc_init(&acc, L1, T, c->n_embd, nbins, err)) return -1;
    int rc = 0;
    for (int s = 0; s < n_seq && rc == 0; s += chunk) {
        int b = n_seq - s < chunk ? n_seq - s : chunk;
        gpt_forward(m, inputs + (size_t)s * T, NULL, b, T);
        // hidden state l is (b, T, C), exactly the accumulator's (n_seq, T, d) layout
        for (int l = 0; l < L1 && rc == 0; l++)
            rc = lmd_geom_acc_add(&acc, l, gpt_hidden_state(m, l), b, err);
    }
    if (rc == 0) rc = lmd_geom_acc_finish(&acc, out, err);
    lmd_geom_acc_free(&acc);
    if (rc) lmd_err_prefix(err, "measure");
    return rc;
}
