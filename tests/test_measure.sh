#!/bin/bash
# test_measure.sh — `lmdisp measure` (DESIGN.md 4.5): JSON keys and sizes, the --tokens
# windows checked against a numpy computation on the PyTorch fixture's hidden states, the
# human table, and exit code 2 with a clear message for bad inputs.
set -u
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
PY=/usr/bin/python3
REF=$LMDISP_TESTS/ref
W=$LMDISP_TMP/test_measure
rm -rf "$W" && mkdir -p "$W"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

# 1. --tokens on the torch fixture's checkpoint. model_step_off.h5 holds the hidden states of
#    the first 3 x 12 batch of model_tokens.bin, i.e. rows b*12 .. b*12+11 = measure's windows.
if "$LMDISP" measure "$REF/model_ckpt.h5" --tokens "$REF/model_tokens.bin" --sequences 3 \
    --seq-len 12 --json > "$W/tok.json" 2> "$W/tok.err"; then
    $PY - "$W/tok.json" "$REF/model_step_off.h5" <<'PYEOF' || fail "measure --tokens vs numpy"
import json, sys
import h5py, numpy as np
j = json.load(open(sys.argv[1]))  # the whole stdout must be one JSON object
with h5py.File(sys.argv[2], "r") as f:
    H = f["/hidden_states"][...].astype(np.float64)  # (L1, B, T, C)
    assert f["args"].attrs["batch"] == 3 and f["args"].attrs["seq"] == 12
L1, B, T, C = H.shape
bad = 0
for key in ("layer_mean_cossim", "offdiag_mean_cossim", "spearman", "kendall", "last_n_mean",
            "singular_value_entropy", "mev"):
    if key not in j:
        print("missing key", key); bad += 1
for key in ("layer_mean_cossim", "offdiag_mean_cossim", "singular_value_entropy", "mev"):
    if len(j.get(key, [])) != L1:
        print(key, "has", len(j.get(key, [])), "entries, want", L1); bad += 1
if j["n_sequences"] != B or j["seq_len"] != T or j["n_embd"] != C:
    print("sizes", j["n_sequences"], j["seq_len"], j["n_embd"]); bad += 1
# DESIGN.md section 1 in numpy
lm, od, ent, mev = [], [], [], []
for l in range(L1):
    X = H[l]
    Xn = X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), 1e-3)
    Cb = np.clip(np.einsum("btd,bsd->bts", Xn, Xn), -1, 1).mean(0)
    lm.append(Cb.mean())
    od.append((Cb.sum() - np.trace(Cb)) / (T * (T - 1)))
    e, m = [], []
    for b in range(B):
        s = np.linalg.svd(X[b], compute_uv=False)
        p = s / s.sum()
        p = p[p > 0]
        e.append(-(p * np.log2(p)).sum())
        m.append(s[0] ** 2 / (s ** 2).sum())
    ent.append(np.mean(e)); mev.append(np.mean(m))
def cmp(name, got, want, tol):
    global bad
    d = np.abs(np.asarray(got, float) - np.asarray(want, float))
    k = int(np.argmax(d))
    ok = d[k] <= tol
    print(f"{name:24s} worst |diff| {d[k]:.2e} at layer {k} (got {got[k]:.8f}, want {want[k]:.8f}) tol {tol:g} {'ok' if ok else 'FAIL'}")
    bad += not ok
# 1e-5: float32 hidden states and products vs numpy in double on the torch fixture
cmp("layer_mean_cossim", j["layer_mean_cossim"], lm, 1e-5)
cmp("offdiag_mean_cossim", j["offdiag_mean_cossim"], od, 1e-5)
cmp("singular_value_entropy", j["singular_value_entropy"], ent, 1e-4)
cmp("mev", j["mev"], mev, 1e-5)
try:  # CI may lack scipy; the rank correlations have their own test (test_rankcorr)
    import scipy.stats as ss
    cmp("spearman", [j["spearman"]], [ss.spearmanr(lm, range(L1))[0]], 1e-9)
    cmp("kendall", [j["kendall"]], [ss.kendalltau(lm, range(L1))[0]], 1e-9)
except ImportError:
    print("scipy not available: spearman/kendall not cross-checked here")
ln = j["last_n_mean"]
cmp("last_n_mean 1", [ln["1"]], [lm[-1]], 1e-5)
cmp("last_n_mean 2", [ln["2"]], [np.mean(lm[-2:])], 1e-5)
if ln["5"] is not None:  # L1 = 4 < 5: null (NaN)
    print("last_n_mean 5 should be null for 4 layers"); bad += 1
sys.exit(1 if bad else 0)
PYEOF
else
    fail "measure --tokens exited $?: $(cat "$W/tok.err")"
fi

# 2. default evaluation set (synthetic validation split): JSON only on stdout, n_layer+1 entries
if "$LMDISP" measure "$REF/model_ckpt.h5" --json > "$W/syn.json" 2> "$W/syn.err"; then
    $PY - "$W/syn.json" <<'PYEOF' || fail "measure --json (synthetic) keys"
import json, math, sys
j = json.load(open(sys.argv[1]))
ok = j["n_layers"] == 4 and j["n_sequences"] == 16 and j["seq_len"] == 16  # min(n_ctx 16, 64)
ok &= all(len(j[k]) == 4 for k in ("layer_mean_cossim", "offdiag_mean_cossim",
                                     "singular_value_entropy", "mev", "cossim_hist"))
ok &= all(-1 <= v <= 1 for v in j["layer_mean_cossim"] + j["offdiag_mean_cossim"])
ok &= all(len(h) == 128 and abs(sum(h) * 2 / 128 - 1) < 1e-9 for h in j["cossim_hist"])
ok &= -1 <= j["spearman"] <= 1 and -1 <= j["kendall"] <= 1
ok &= set(j["last_n_mean"]) == {"1", "2", "3", "4", "5", "half"}
print("synthetic json:", "ok" if ok else "FAIL", j["layer_mean_cossim"])
sys.exit(0 if ok else 1)
PYEOF
else
    fail "measure --json exited $?: $(cat "$W/syn.err")"
fi

# 3. human output: header, one row per layer, trend line
"$LMDISP" measure "$REF/model_ckpt.h5" --sequences 4 > "$W/human.txt" 2>&1 || fail "human output exit $?"
rows=$(grep -cE '^ +[0-3] +-?[0-9]' "$W/human.txt")
[ "$rows" = 4 ] || fail "human table has $rows layer rows, want 4"
grep -q 'Spearman rho' "$W/human.txt" || fail "no trend line in human output"
cat "$W/human.txt"

# 4. bad inputs: exit 2 and a message that names the problem
expect2() {  # expect2 "pattern" args...
    local pat=$1; shift
    "$LMDISP" measure "$@" > "$W/bad.out" 2> "$W/bad.err"
    local rc=$?
    if [ $rc != 2 ] || ! grep -q "$pat" "$W/bad.err"; then
        fail "measure $* -> exit $rc, stderr '$(cat "$W/bad.err")' (want 2 and '$pat')"
    else
        echo "ok: exit 2: $(head -1 "$W/bad.err")"
    fi
}
expect2 "No such file" "$W/missing.h5"
expect2 "exceeds the checkpoint's n_ctx 16" "$REF/model_ckpt.h5" --tokens "$REF/model_tokens.bin" --seq-len 17
expect2 "too few" "$REF/model_ckpt.h5" --tokens "$REF/model_tokens.bin" --sequences 100 --seq-len 16
expect2 "No such file" "$REF/model_ckpt.h5" --tokens "$W/missing.bin"
expect2 "not both" "$REF/model_ckpt.h5" --tokens "$REF/model_tokens.bin" --data synthetic
expect2 "unknown" "$REF/model_ckpt.h5" --bogus 3
$PY -c "
import numpy as np
h = np.zeros(256, np.int32); h[:3] = [20240520, 1, 64]
open('$W/vocab.bin', 'wb').write(h.tobytes() + np.arange(64, dtype=np.uint16).tobytes())"
expect2 "vocab" "$REF/model_ckpt.h5" --tokens "$W/vocab.bin" --sequences 2 --seq-len 16

echo "test_measure: $fails failure(s)"
exit $((fails > 0))
