#!/bin/bash
# test_track.sh — `lmdisp track`: a tiny run's checkpoints become one trajectory row each, in
# step order whatever the command-line order; unreadable files are reported, skipped and give
# exit 1; OLMo-style names order params-only files without a step attribute; mixed configs and
# usage errors give exit 2.
set -u
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
PY=/usr/bin/python3
W=$LMDISP_TMP/test_track
rm -rf "$W" && mkdir -p "$W"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

"$LMDISP" train --n-layer 2 --n-embd 32 --n-head 2 --mlp-dim 64 --n-ctx 32 --batch 4 --seq 32 \
    --steps 20 --checkpoint-steps 0,5,10,20 --out "$W/run" > "$W/train.log" 2>&1 \
    || { cat "$W/train.log"; echo "FAIL: training the tiny model"; exit 1; }

# check_traj FILE STEPS TOKENS_KNOWN(1|0) VAL_LOSS(1|0) [PATH_SUBSTRINGS...]: layout, shapes, ranges, order
check_traj() {
    $PY - "$@" <<'PYEOF'
import sys
import h5py, numpy as np
path, steps, tokens_known, has_val = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], sys.argv[3] == "1", sys.argv[4] == "1"
names = sys.argv[5:]
bad = 0
def check(cond, msg):
    global bad
    print(("ok:   " if cond else "FAIL: ") + msg)
    bad += not cond
with h5py.File(path, "r") as f:
    K, L1, nb = len(steps), int(f.attrs["n_layer"]) + 1, int(f.attrs["hist_bins"])
    check(f.attrs["format"] == "lmdisp-trajectory", "format attribute")
    check(L1 == 3 and nb == 128, f"n_layer+1 = {L1}, bins = {nb}")
    check(list(f["step"][...]) == steps, f"steps {list(f['step'][...])} == {steps}")
    shapes = {"step": (K,), "tokens": (K,), "val_loss": (K,), "spearman": (K,), "kendall": (K,),
              "layer_mean_cossim": (K, L1), "offdiag_mean_cossim": (K, L1),
              "singular_value_entropy": (K, L1), "mev": (K, L1), "last_n_mean": (K, 6),
              "cossim_hist": (K, L1, nb), "checkpoint": (K,)}
    for k, s in shapes.items():
        check(f[k].shape == s, f"{k} shape {f[k].shape} == {s}")
    check(f["cossim_hist"].dtype == np.float32 and f["step"].dtype == np.int64, "dtypes")
    lm, od = f["layer_mean_cossim"][...], f["offdiag_mean_cossim"][...]
    check(np.all(np.isfinite(lm)) and np.all(np.abs(lm) <= 1) and np.all(np.abs(od) <= 1),
          "cosine means finite, in [-1, 1]")
    h = f["cossim_hist"][...].astype(np.float64)
    check(np.allclose(h.sum(-1) * 2.0 / nb, 1.0, atol=1e-5), "histograms are densities")
    e, m = f["singular_value_entropy"][...], f["mev"][...]
    check(np.all(e > 0) and np.all(e <= np.log2(32)) and np.all((m > 0) & (m <= 1)),
          "entropy in (0, log2 32], MEV in (0, 1]")
    for k in ("spearman", "kendall"):
        v = f[k][...]
        check(np.all(np.isfinite(v) & (np.abs(v) <= 1)), f"{k} in [-1, 1]: {v}")
    check(list(f["last_n_mean"].attrs["n"]) == [1, 2, 3, 4, 5, 1], "last_n_mean N attribute")
    check(np.allclose(f["last_n_mean"][:, 0], lm[:, -1]), "last_n_mean[:,0] = last layer")
    check(np.all(np.isnan(f["last_n_mean"][:, 3:5])), "last_n_mean N=4,5 NaN for 3 layers")
    vl = f["val_loss"][...]
    if has_val:
        check(np.all(np.isfinite(vl) & (vl > 0) & (vl < 8)), f"val_loss finite: {vl}")
    else:
        check(np.all(np.isnan(vl)), f"val_loss NaN without a split: {vl}")
    tok = f["tokens"][...]
    if tokens_known:
        check(list(tok) == [4 * 32 * s for s in steps], f"tokens {list(tok)} = 128 * step")
    ck = [c.decode() if isinstance(c, bytes) else c for c in f["checkpoint"][...]]
    for i, n in enumerate(names):
        check(n in ck[i], f"row {i} is {ck[i]} (want ...{n}...)")
sys.exit(1 if bad else 0)
PYEOF
}

# 1. a directory
if "$LMDISP" track "$W/run" --out "$W/traj_dir.h5" > "$W/dir.out" 2> "$W/dir.err"; then
    cat "$W/dir.out"
    grep -q '^\[4/4\] step 20' "$W/dir.err" || fail "no [4/4] progress line on stderr"
    check_traj "$W/traj_dir.h5" 0,5,10,20 1 1 step0000000 step0000005 step0000010 step0000020 \
        || fail "trajectory of the directory"
else
    fail "track DIR exited $?: $(cat "$W/dir.err")"
fi

# 2. scrambled command-line order, a corrupt file and a missing one: exit 1, still written in
#    step order, both bad files named on stderr
head -c 2000 "$W/run/step0000005.h5" > "$W/corrupt.h5"
"$LMDISP" track "$W/run/step0000020.h5" "$W/corrupt.h5" "$W/run/step0000000.h5" \
    "$W/run/step0000010.h5" "$W/missing.h5" "$W/run/step0000005.h5" \
    --out "$W/traj_mixed.h5" > "$W/mixed.out" 2> "$W/mixed.err"
rc=$?
cat "$W/mixed.err"
[ $rc = 1 ] || fail "track with bad files exited $rc, want 1"
grep -q "corrupt.h5" "$W/mixed.err" && grep -q "missing.h5" "$W/mixed.err" \
    && grep -q "2 of 6 checkpoints skipped" "$W/mixed.err" || fail "bad files not reported"
check_traj "$W/traj_mixed.h5" 0,5,10,20 1 1 step0000000 step0000005 step0000010 step0000020 \
    || fail "trajectory of the scrambled list"

# 3. OLMo-style names, params-only files without step/tokens attributes: ordered by the name;
#    plus --tokens (no split: val_loss NaN)
mkdir -p "$W/olmo"
$PY - "$W" <<'PYEOF' || fail "writing OLMo-style files"
import sys, h5py
w = sys.argv[1]
for step, name in [(10, "stage1-step10-tokens2K.h5"), (0, "stage1-step0-tokens0K.h5"),
                   (5, "stage1-step5-tokens1K.h5"), (20, "stage1-step20-tokens3K.h5")]:
    with h5py.File(f"{w}/run/step{step:07d}.h5", "r") as f, h5py.File(f"{w}/olmo/{name}", "w") as g:
        for k, v in f.attrs.items():
            if k not in ("step", "tokens", "seed"):
                g.attrs[k] = v
        f.copy("params", g)
PYEOF
$PY -c "
import numpy as np
h = np.zeros(256, np.int32); h[:3] = [20240520, 1, 4096]
open('$W/tok.bin', 'wb').write(h.tobytes() + (np.arange(4096) * 7 % 256).astype(np.uint16).tobytes())"
if "$LMDISP" track "$W/olmo" --out "$W/traj_olmo.h5" --tokens "$W/tok.bin" --sequences 4 \
    > "$W/olmo.out" 2> "$W/olmo.err"; then
    cat "$W/olmo.out"
    check_traj "$W/traj_olmo.h5" 0,5,10,20 0 0 step0- step5- step10- step20- \
        || fail "trajectory of OLMo-style names"
    $PY -c "
import h5py, sys
t = list(h5py.File('$W/traj_olmo.h5', 'r')['tokens'][...])
print('tokens from names', t); sys.exit(t != [0, 1000, 2000, 3000])" || fail "tokens from names"
else
    fail "track OLMo names exited $?: $(cat "$W/olmo.err")"
fi

# 4. errors: different configs, no step anywhere, usage
"$LMDISP" train --n-layer 1 --n-embd 32 --n-head 2 --mlp-dim 64 --n-ctx 32 --batch 4 --seq 32 \
    --steps 1 --out "$W/other" > /dev/null 2>&1 || fail "training the second model"
"$LMDISP" track "$W/run" "$W/other/step0000001.h5" --out "$W/traj_bad.h5" > /dev/null 2> "$W/cfg.err"
rc=$?
[ $rc = 2 ] && grep -q "other/step0000001.h5 has config" "$W/cfg.err" \
    || fail "mixed configs: exit $rc, stderr $(cat "$W/cfg.err")"
[ ! -e "$W/traj_bad.h5" ] || fail "mixed configs still wrote a trajectory"
cp "$W/olmo/stage1-step5-tokens1K.h5" "$W/nostep.h5"
"$LMDISP" track "$W/nostep.h5" --out "$W/traj_nostep.h5" > /dev/null 2> "$W/nostep.err"
rc=$?
[ $rc = 1 ] && grep -q "no root attribute .step. and no stepN" "$W/nostep.err" \
    || fail "file without any step: exit $rc, stderr $(cat "$W/nostep.err")"
# a full (resumable) checkpoint must keep its step attribute even if the name has one
cp "$W/run/step0000005.h5" "$W/full-step5.h5"
$PY -c "import h5py; f = h5py.File('$W/full-step5.h5', 'a'); del f.attrs['step']" || fail "h5py edit"
"$LMDISP" track "$W/full-step5.h5" "$W/run/step0000000.h5" --out "$W/traj_full.h5" > /dev/null \
    2> "$W/full.err"
rc=$?
[ $rc = 1 ] && grep -q "lacks one of the root attributes step, tokens, seed" "$W/full.err" \
    || fail "resumable checkpoint without step: exit $rc, stderr $(cat "$W/full.err")"
"$LMDISP" track "$W/run" > /dev/null 2>&1
[ $? = 2 ] || fail "missing --out should exit 2"

echo "test_track: $fails failure(s)"
exit $((fails > 0))
