#!/usr/bin/env bash
# test_threads.sh — determinism across thread counts: `lmdisp train --threads 1` and
# `--threads 2` give bitwise identical checkpoints (params, AdamW moments, state; h5diff with no
# tolerance) after 4 steps with angular_spread, at shapes above every parallel threshold
# (model/ops.c PAR_MIN = 32768 <= B*T*C = 8*64*64; the sgemm row split needs M*N*K >= 4e6,
# here 512 x 256 x 64). The ctest environment pins 1 thread; this test overrides it per run.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}"
tmp="$LMDISP_TMP/test_threads"
rm -rf "$tmp" && mkdir -p "$tmp"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi
args=(--n-layer 2 --n-embd 64 --n-head 4 --mlp-dim 256 --batch 8 --seq 64 --steps 4 --seed 11
      --dispersion angular_spread --checkpoint-steps 4)
for t in 1 2; do
  OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 "$LMDISP" train "${args[@]}" --threads $t \
    --out "$tmp/t$t" > "$tmp/t$t.log" 2>&1 || { fail "training with $t thread(s)"; cat "$tmp/t$t.log"; }
done
if h5diff -q "$tmp/t1/step0000004.h5" "$tmp/t2/step0000004.h5" > /dev/null 2>&1; then
  pass "1 and 2 threads: bitwise identical checkpoints after 4 angular_spread steps"
else
  fail "1 and 2 threads give different checkpoints"
  h5diff "$tmp/t1/step0000004.h5" "$tmp/t2/step0000004.h5" | head -5
fi
echo "test_threads: $fails failure(s)"
[ $fails -eq 0 ]
