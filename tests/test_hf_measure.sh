#!/bin/bash
# test_hf_measure.sh — `lmdisp forward` on an lmdisp checkpoint (= `lmdisp step`'s dump,
# DESIGN 4.7), and `measure` / `track` of pretrained models (DESIGN 4.5, 4.6) on the HF
# fixtures of tests/hf (written by tests/gen_hf_models.py):
#   1. forward CK.h5 gives exactly step's /hidden_states and /logits (same code, same batch);
#   2. measure HFDIR --json: today's keys plus model_type, n_params, n_layer, hidden_size;
#      the streamed measurement of the HF gpt2 directory equals `measure` of the same weights
#      converted to an lmdisp checkpoint (tolerance 1e-5 absolute on every per-layer metric:
#      two float32 forwards summed in another order, ~1e-7);
#   3. measure without --tokens, and a too-short token file, exit 2 with a message;
#   4. --measure-thread (the measurement on a thread of its own) prints the same JSON, byte
#      for byte, for gpt2, llama, qwen3 and olmo2 directories (2 sequences, so several
#      sequences per hidden state); with --threads 2 it is refused, exit 2;
#   5. track hf:allenai/OLMo-2-tiny@* orders the cached revisions as DESIGN 4.6 says, names
#      the revision without a step as skipped, and writes one trajectory row per revision.
set -u
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
PY=/usr/bin/python3
REF=$LMDISP_TESTS/ref
HF=$LMDISP_TESTS/hf
W=$LMDISP_TMP/test_hf_measure
rm -rf "$W" && mkdir -p "$W"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

# 1. forward on an lmdisp checkpoint = step
"$LMDISP" step --checkpoint "$REF/model_ckpt.h5" --tokens "$REF/model_tokens.bin" --batch 3 \
    --seq 12 --out "$W/step.h5" > /dev/null 2> "$W/step.err" || fail "step: $(cat "$W/step.err")"
if "$LMDISP" forward "$REF/model_ckpt.h5" --tokens "$REF/model_tokens.bin" --batch 3 --seq 12 \
    --out "$W/fwd.h5" > "$W/fwd.out" 2> "$W/fwd.err"; then
    for d in /hidden_states /logits; do
        h5diff "$W/step.h5" "$W/fwd.h5" "$d" "$d" > "$W/diff.txt" 2>&1 \
            || fail "forward CK.h5 $d differs from step's: $(head -5 "$W/diff.txt")"
    done
    $PY - "$W/fwd.h5" <<'PYEOF' || fail "forward CK.h5 attributes"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
a = f.attrs
mt = a["model_type"]
mt = mt.decode() if isinstance(mt, bytes) else mt
assert mt == "lmdisp-gpt", mt
assert a["n_layer"] + 1 == f["hidden_states"].shape[0], (a["n_layer"], f["hidden_states"].shape)
assert a["hidden_size"] == f["hidden_states"].shape[3]
assert a["n_params"] > 0
PYEOF
else
    fail "forward CK.h5: $(cat "$W/fwd.err")"
fi

# 2. measure of an HF directory: JSON with model facts; = measure of the lmdisp conversion
G=$HF/gpt2
if "$LMDISP" measure "$G" --tokens "$G/tokens.bin" --sequences 2 --seq-len 16 --json \
    > "$W/hf.json" 2> "$W/hf.err"; then
    if $PY "$HF/../hf_compare.py" to-lmdisp "$G" "$W/gpt2_lmdisp.h5" > "$W/conv.out" 2>&1; then
        "$LMDISP" measure "$W/gpt2_lmdisp.h5" --tokens "$G/tokens.bin" --sequences 2 \
            --seq-len 16 --json > "$W/ck.json" 2> "$W/ck.err" || fail "measure converted: $(cat "$W/ck.err")"
    else
        fail "hf_compare.py to-lmdisp: $(cat "$W/conv.out")"
    fi
    $PY - "$W/hf.json" "$W/ck.json" <<'PYEOF' || fail "measure HF dir vs lmdisp checkpoint"
import json, sys, math
h = json.load(open(sys.argv[1]))
c = json.load(open(sys.argv[2]))
for k in ("model_type", "n_params", "n_layer", "hidden_size", "layer_mean_cossim", "spearman"):
    assert k in h, "missing " + k
assert h["model_type"] == "gpt2" and h["n_layer"] + 1 == len(h["layer_mean_cossim"]), h
worst = 0.0
for k in ("layer_mean_cossim", "offdiag_mean_cossim", "singular_value_entropy", "mev"):
    for a, b in zip(h[k], c[k]):
        worst = max(worst, abs(a - b))
print(f"HF-dir measure vs lmdisp-checkpoint measure: worst |diff| {worst:.2e} (tol 1e-5)")
assert worst <= 1e-5
PYEOF
else
    fail "measure HF dir: $(cat "$W/hf.err")"
fi

# 3. refusals
"$LMDISP" measure "$G" --json > /dev/null 2> "$W/notok.err"
rc=$?
[ $rc = 2 ] && grep -q -- "--tokens" "$W/notok.err" || fail "measure HF without --tokens: exit $rc, $(cat "$W/notok.err")"
"$LMDISP" measure "$G" --tokens "$G/tokens.bin" --sequences 1000 --json > /dev/null 2> "$W/short.err"
rc=$?
[ $rc = 2 ] && grep -q "tokens.bin" "$W/short.err" || fail "measure, short token file: exit $rc, $(cat "$W/short.err")"

# 4. the measurement thread: the same numbers, bit for bit (the JSON has 17 digits)
for a in gpt2 llama qwen3 olmo2; do
    D=$HF/$a
    "$LMDISP" measure "$D" --tokens "$D/tokens.bin" --sequences 2 --seq-len 16 --json \
        > "$W/mt_serial.json" 2> "$W/mt.err" || { fail "measure $a: $(cat "$W/mt.err")"; continue; }
    "$LMDISP" measure "$D" --tokens "$D/tokens.bin" --sequences 2 --seq-len 16 --json \
        --measure-thread > "$W/mt_thread.json" 2> "$W/mt.err" \
        || { fail "measure $a --measure-thread: $(cat "$W/mt.err")"; continue; }
    cmp -s "$W/mt_serial.json" "$W/mt_thread.json" \
        && grep -q '"singular_value_entropy": \[[0-9]' "$W/mt_thread.json" \
        || fail "measure $a --measure-thread: JSON differs from the serial one (or has no spectra)"
done
"$LMDISP" measure "$G" --tokens "$G/tokens.bin" --sequences 2 --seq-len 16 --measure-thread \
    --threads 2 > /dev/null 2> "$W/mt2.err"
rc=$?
[ $rc = 2 ] && grep -q -- "--threads 1" "$W/mt2.err" || fail "--measure-thread --threads 2: exit $rc, $(cat "$W/mt2.err")"

# 5. track a cached series
C=$HF/cache
if HF_HUB_CACHE=$C "$LMDISP" track 'hf:allenai/OLMo-2-tiny@*' --tokens "$C/tokens.bin" \
    --sequences 2 --seq-len 8 --out "$W/traj.h5" > "$W/track.out" 2> "$W/track.err"; then
    grep -q "olmo2-tiny-dev" "$W/track.err" || fail "track: the revision without a step is not named"
    $PY - "$W/traj.h5" "$C/order.txt" <<'PYEOF' || fail "track order"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
ck = [x.decode() if isinstance(x, bytes) else x for x in f["checkpoint"][...]]
want = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
got = [c.split("@", 1)[1] for c in ck]
print("track order:", got)
assert got == want, (got, want)
PYEOF
else
    fail "track hf:...@*: $(cat "$W/track.err")"
fi

echo "test_hf_measure: $fails failure(s)"
exit $((fails > 0))
