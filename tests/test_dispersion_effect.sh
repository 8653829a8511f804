#!/bin/bash
# test_dispersion_effect.sh — issue 3's acceptance test: on the synthetic corpus, two runs that
# differ only in `--dispersion angular_spread` (same seed, data, model, schedule). The run with
# the dispersion loss must end with less condensed last hidden states — a lower mean pairwise
# cosine similarity of hidden state n_layer — than the baseline, by a clear margin, and with a
# finite validation loss within 10% of the baseline's.
#
# Config: 2 layers, n_embd 32, batch 8 x 32, 100 steps at lr 3e-3 (~1.5 s per run on one core).
# coeff 0.5 rather than the paper's 0.1: in 100 steps 0.1 already lowers the last-layer mean
# cosine (by 0.09 to 0.28 over seeds 0-2), but 0.5 roughly doubles the gap the test relies on,
# keeping it far from a coin flip. Measured while developing (last-layer mean cossim,
# baseline -> dispersion 0.5; final val loss baseline, dispersion):
#   seed 0: 0.492 -> 0.339 (5.147, 5.042)    seed 1: 0.511 -> 0.340 (5.159, 5.050)
#   seed 2: 0.676 -> 0.331 (5.209, 5.051)    seed 3: 0.664 -> 0.329 (5.205, 5.042)
#   seed 4: 0.581 -> 0.332 (5.187, 5.040)
# Required margin: 0.05, a third of the smallest gap seen (0.153). SEED=n overrides the seed.
set -u
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
PY=/usr/bin/python3
W=$LMDISP_TMP/test_dispersion_effect
rm -rf "$W" && mkdir -p "$W"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi
SEED=${SEED:-0}
MARGIN=0.05
COMMON=(--n-layer 2 --n-embd 32 --n-head 2 --mlp-dim 64 --n-ctx 32 --batch 8 --seq 32
        --steps 100 --lr 3e-3 --seed "$SEED" --data synthetic)

for run in base disp; do
    extra=()
    [ $run = disp ] && extra=(--dispersion angular_spread --coeff 0.5)
    "$LMDISP" train "${COMMON[@]}" "${extra[@]}" --out "$W/$run" > "$W/$run.log" 2>&1 \
        || { cat "$W/$run.log"; fail "training $run"; exit 1; }
    "$LMDISP" measure "$W/$run/step0000100.h5" --json > "$W/$run.json" 2> "$W/$run.err" \
        || { cat "$W/$run.err"; fail "measuring $run"; exit 1; }
done

$PY - "$W" "$MARGIN" <<'PYEOF'
import json, math, sys
w, margin = sys.argv[1], float(sys.argv[2])
def load(run):
    j = json.load(open(f"{w}/{run}.json"))
    vl = [l for l in open(f"{w}/{run}.log") if l.startswith("final validation loss")]
    return j, float(vl[0].split()[3]) if vl else float("nan")
(jb, vb), (jd, vd) = load("base"), load("disp")
lb, ld = jb["layer_mean_cossim"][-1], jd["layer_mean_cossim"][-1]
ob, od = jb["offdiag_mean_cossim"][-1], jd["offdiag_mean_cossim"][-1]
print(f"last hidden state, mean cosine (all T*T):   baseline {lb:.4f}  dispersion {ld:.4f}  gap {lb - ld:.4f} (need > {margin})")
print(f"last hidden state, off-diagonal mean:        baseline {ob:.4f}  dispersion {od:.4f}  gap {ob - od:.4f} (need > {margin})")
print(f"final validation loss:                       baseline {vb:.4f}  dispersion {vd:.4f}  rel. diff {abs(vd - vb) / vb:.3%} (need < 10%)")
print("per layer, baseline  ", [round(v, 4) for v in jb["layer_mean_cossim"]])
print("per layer, dispersion", [round(v, 4) for v in jd["layer_mean_cossim"]])
bad = 0
if not lb - ld > margin: print("FAIL: dispersion did not lower the last-layer mean cosine"); bad += 1
if not ob - od > margin: print("FAIL: dispersion did not lower the last-layer off-diagonal mean"); bad += 1
if not (math.isfinite(vb) and math.isfinite(vd) and abs(vd - vb) / vb < 0.10):
    print("FAIL: validation loss not finite or not within 10% of the baseline"); bad += 1
sys.exit(1 if bad else 0)
PYEOF
rc=$?
echo "test_dispersion_effect: $([ $rc = 0 ] && echo passed || echo FAILED)"
exit $rc
