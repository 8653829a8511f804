#!/bin/bash
# test_midtrain.sh — issue 19's training half end to end:
#   1. train.init from an HF GPT-2 directory (tests/hf/gpt2): the step-0 checkpoint forwards
#      (logits, hidden states) and measures as the HF model itself (lmdisp forward/measure of the
#      directory; tolerance 1e-4 absolute, the worst difference printed); optimizer state fresh,
#      step 0, tokens 0;
#   2. train.init from an lmdisp checkpoint: the step-0 checkpoint's /params equal the init's
#      bit for bit; a grid axis over init gives one cell per model with ids that do not depend
#      on the grid's order;
#   3. bad init / teacher specs refused with file:line:column (exit 2);
#   4. train.accumulate with train.shards: the same bits on 1 and 2 ranks per model;
#   5. distillation from teacher cells: teachers run first (level 0), each student loads its
#      teacher's final checkpoint; an interruption in the teacher level and the rerun keep the
#      order; submit (a stand-in sbatch) chains the students' array afterok on the teachers'
#      and resubmit keeps it.
set -u
LMDISP=${LMDISP:?path of the lmdisp binary}
SRC=${LMDISP_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
TESTS=${LMDISP_TESTS:-$SRC/tests}
TMP=${LMDISP_TMP:-/tmp}
. "$TESTS/lib.sh"
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
w=$(mktemp -d "$TMP/midtrain.XXXXXX")
trap 'rm -rf "$w"' EXIT
HF=$TESTS/hf/gpt2

# ---- 1. init from an HF GPT-2 ----
mpi 1 "$LMDISP" run "$TESTS/specs/init_hf.yaml" --out "$w/hf" > "$w/hf.log" 2>&1 || { fail "init_hf run"; cat "$w/hf.log"; }
for c in "$w"/hf/cells/*/; do
  ck=$c/ckpt/step0000000.h5
  "$LMDISP" forward "$ck" --tokens "$HF/tokens.bin" --batch 2 --seq 16 --out "$w/a.h5" > /dev/null 2>&1 &&
  "$LMDISP" forward "$HF" --tokens "$HF/tokens.bin" --batch 2 --seq 16 --out "$w/b.h5" > /dev/null 2>&1 || fail "forward $ck"
  "$LMDISP" measure "$ck" --tokens "$HF/tokens.bin" --sequences 2 --seq-len 16 --json > "$w/ma.json" 2>/dev/null &&
  "$LMDISP" measure "$HF" --tokens "$HF/tokens.bin" --sequences 2 --seq-len 16 --json > "$w/mb.json" 2>/dev/null || fail "measure $ck"
  if $PY - "$w/a.h5" "$w/b.h5" "$w/ma.json" "$w/mb.json" "$ck" <<'PYEOF'
import h5py, json, sys, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
worst = {k: float(np.abs(a[k][()] - b[k][()]).max()) for k in ("logits", "hidden_states")}
ma, mb = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
worst["layer_mean_cossim"] = float(np.abs(np.array(ma["layer_mean_cossim"]) - np.array(mb["layer_mean_cossim"])).max())
ck = h5py.File(sys.argv[5], "r")
fresh = int(ck.attrs["step"]) == 0 and int(ck.attrs["tokens"]) == 0
mv = []
if "optimizer" in ck:
    ck["optimizer"].visititems(lambda k, o: mv.append(o[()]) if isinstance(o, h5py.Dataset) and o.ndim > 0 else None)
m = np.concatenate([x.ravel() for x in mv]) if mv else np.zeros(1)
print("step-0 checkpoint vs the HF model: worst |diff|", worst, "(tol 1e-4); step 0, tokens 0:", fresh,
      "; AdamW moments all zero:", not np.any(m))
sys.exit(0 if max(worst.values()) <= 1e-4 and fresh and not np.any(m) else 1)
PYEOF
  then pass "init from HF GPT-2 ($(basename "$c")): step 0 forwards and measures as tests/hf/gpt2, fresh optimizer"
  else fail "init from HF GPT-2 ($(basename "$c"))"; fi
done
grep -q "train.init=$(cd "$HF" && pwd -P)" "$w"/hf/cells/*/settings && pass "the settings name the resolved init directory" || fail "settings lack train.init"

# ---- 2. init from an lmdisp checkpoint; init as a grid axis ----
src_ck=$(ls "$w"/hf/cells/mlp128-off-*/ckpt/step0000004.h5)
cp "$src_ck" "$w/pre.h5"
cat > "$w/init_ck.yaml" <<YEOF
name: init_ck
data: {source: synthetic, vocab: 96, synthetic_tokens: 20000}
train: {steps: 3, batch: 4, seq: 16}
tracking: {checkpoints: [0, 3], save_checkpoints: true, eval_sequences: 4}
grid:
  init: [pre.h5, $HF]
YEOF
mpi 1 "$LMDISP" run "$w/init_ck.yaml" --out "$w/ck" > "$w/ck.log" 2>&1 || { fail "init_ck run"; cat "$w/ck.log"; }
c0=$(grep -l "train.init=$w/pre.h5" "$w"/ck/cells/*/settings | head -1)
if [ -n "$c0" ] && $PY - "$w/pre.h5" "$(dirname "$c0")/ckpt/step0000000.h5" <<'PYEOF'
import h5py, sys, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = sorted(a["params"].keys())
same = all(np.array_equal(a["params"][n][()], b["params"][n][()]) for n in names)
print(f"{len(names)} tensors of /params bitwise equal: {same}; init step {a.attrs['step']} -> cell step {b.attrs['step']}")
sys.exit(0 if same and int(b.attrs["step"]) == 0 else 1)
PYEOF
then pass "init from an lmdisp checkpoint: step 0 holds its parameters bit for bit"; else fail "init from checkpoint"; fi
ids1=$("$LMDISP" plan "$w/init_ck.yaml" --json | $PY -c 'import json,sys; print(" ".join(sorted(c["id"] for c in json.load(sys.stdin)["cells"])))')
sed -i "s|init: \[pre.h5, $HF\]|init: [$HF, pre.h5]|" "$w/init_ck.yaml"
ids2=$("$LMDISP" plan "$w/init_ck.yaml" --json | $PY -c 'import json,sys; print(" ".join(sorted(c["id"] for c in json.load(sys.stdin)["cells"])))')
n=$(echo "$ids1" | wc -w)
[ "$ids1" = "$ids2" ] && [ "$n" = 2 ] && pass "grid axis init: 2 cells, ids stable under reordering ($ids1)" || fail "init axis ids: '$ids1' vs '$ids2'"

# hf:ORG/NAME through an offline HF cache (a copy of tests/hf/gpt2 as models--test--gpt2)
snap=$w/hub/models--test--gpt2/snapshots/0123456789abcdef0123456789abcdef01234567
mkdir -p "$snap" "$w/hub/models--test--gpt2/refs"
cp "$HF/config.json" "$HF/model.safetensors" "$snap/"
printf 0123456789abcdef0123456789abcdef01234567 > "$w/hub/models--test--gpt2/refs/main"
sed "s|init: ../hf/gpt2|init: hf:test/gpt2|; s|dispersion: \[off, angular_spread\]|dispersion: [off]|" "$TESTS/specs/init_hf.yaml" > "$w/init_hub.yaml"
HF_HUB_CACHE=$w/hub mpi 1 "$LMDISP" run "$w/init_hub.yaml" --out "$w/hub_run" > "$w/hub.log" 2>&1 || { fail "init hf: run"; cat "$w/hub.log"; }
if grep -q "train.init=$snap" "$w"/hub_run/cells/*/settings &&
   $PY "$TESTS/h5cmp.py" "$w"/hub_run/cells/*/ckpt/step0000000.h5 "$(ls "$w"/hf/cells/mlp128-off-*/ckpt/step0000000.h5)" > /dev/null 2>&1; then
  pass "init: hf:test/gpt2 resolves to its snapshot in HF_HUB_CACHE; step 0 is bitwise the directory's"
else fail "init hf:"; grep train.init "$w"/hub_run/cells/*/settings; fi

# ---- 3. refused specs ----
check_bad() { # spec  expected-location  expected-text
  "$LMDISP" plan "$TESTS/specs/$1" > /dev/null 2> "$w/err.txt"; local rc=$?
  if [ $rc -eq 2 ] && grep -q "$1:$2: " "$w/err.txt" && grep -q "$3" "$w/err.txt"; then pass "$1 refused at $2"
  else fail "$1 (rc $rc)"; cat "$w/err.txt"; fi
}
check_bad init_bad_shape.yaml 3:18 "the model's shape is taken from it"
check_bad init_bad_missing.yaml 5:22 "no such checkpoint file or HF model directory"
check_bad init_bad_arch.yaml 3:44 "only gpt2 maps onto"
check_bad kd_bad_self.yaml 5:20 "would be its own teacher"
check_bad kd_bad_ambiguous.yaml 5:20 "ambiguous: 2 cells match"
check_bad kd_bad_missing.yaml 5:20 "no cell of the grid matches"
check_bad kd_bad_vocab.yaml 5:20 "has vocab 96, the student 128"

# ---- 4. accumulate + shards: 1 vs 2 ranks per model, bitwise ----
sed 's/ranks_per_model: 2/ranks_per_model: 1/' "$TESTS/specs/accum_ranks.yaml" > "$w/accum1.yaml"
mpi 1 "$LMDISP" run "$w/accum1.yaml" --out "$w/r1" > "$w/r1.log" 2>&1 || { fail "accum 1 rank"; cat "$w/r1.log"; }
mpi 2 "$LMDISP" run "$TESTS/specs/accum_ranks.yaml" --out "$w/r2" > "$w/r2.log" 2>&1 || { fail "accum 2 ranks"; cat "$w/r2.log"; }
if $PY - "$w/r1" "$w/r2" <<'PYEOF'
import glob, h5py, os, sys, numpy as np
d1, d2 = sys.argv[1], sys.argv[2]
n = bad = 0
for f1 in sorted(glob.glob(d1 + "/cells/*/ckpt/*.h5")):
    f2 = d2 + f1[len(d1):]
    a, b = h5py.File(f1, "r"), h5py.File(f2, "r")
    names = []
    a.visititems(lambda k, o: names.append(k) if isinstance(o, h5py.Dataset) else None)
    for k in names:
        n += 1
        if not np.array_equal(a[k][()], b[k][()]): bad += 1
    if int(a.attrs["tokens"]) != int(a.attrs["step"]) * 4 * 16 * 2: bad += 1
print(f"{n} tensors compared between 1 and 2 ranks per model: {bad} differ")
sys.exit(0 if n > 0 and bad == 0 else 1)
PYEOF
then pass "accumulate 2 x shards 2: checkpoints bitwise equal on 1 and 2 ranks, tokens = steps x 4 x 16 x 2"; else fail "accumulate across rank counts"; fi

# the same with distillation from a teacher cell: students on 1 and on 2 ranks per model
sed 's/lr: 3.0e-3}/lr: 3.0e-3, shards: 2}/; s/checkpoints: \[0, 6\]/checkpoints: [0, 6], save_checkpoints: true/' "$TESTS/specs/kd_cells.yaml" > "$w/kd1.yaml"
sed 's/^grid:/resources: {ranks_per_model: 2}\ngrid:/' "$w/kd1.yaml" > "$w/kd2.yaml"
mpi 1 "$LMDISP" run "$w/kd1.yaml" --out "$w/k1" > "$w/k1.log" 2>&1 || { fail "kd 1 rank"; tail -3 "$w/k1.log"; }
mpi 2 "$LMDISP" run "$w/kd2.yaml" --out "$w/k2" > "$w/k2.log" 2>&1 || { fail "kd 2 ranks"; tail -3 "$w/k2.log"; }
if $PY - "$w/k1" "$w/k2" <<'PYEOF'
import glob, h5py, sys, numpy as np
d1, d2 = sys.argv[1], sys.argv[2]
n = bad = 0
for f1 in sorted(glob.glob(d1 + "/cells/mlp32-*/ckpt/*.h5")):
    a, b = h5py.File(f1, "r"), h5py.File(d2 + f1[len(d1):], "r")
    for k in a["params"]:
        n += 1
        bad += not np.array_equal(a["params"][k][()], b["params"][k][()])
print(f"distilled and baseline students: {n} tensors compared between 1 and 2 ranks per model: {bad} differ")
sys.exit(0 if n > 0 and bad == 0 else 1)
PYEOF
then pass "distillation with shards 2: the same bits on 1 and 2 ranks per model"; else fail "distillation across rank counts"; fi

# ---- 5. teacher cells ----
KD=$TESTS/specs/kd_cells.yaml
LMDISP_TEST_STOP="mlp128-off-s1:3" mpi 2 "$LMDISP" run "$KD" --out "$w/kd" > "$w/kd1.log" 2>&1; rc=$?
nstud=$(ls -d "$w"/kd/cells/mlp32-*/ 2>/dev/null | wc -l)
[ $rc -eq 3 ] && [ "$nstud" -le 2 ] && pass "interrupted in the teacher level (exit 3): no student started before its teacher finished" ||
  { fail "kd interrupt (rc $rc, $nstud student dirs)"; tail -5 "$w/kd1.log"; }
mpi 2 "$LMDISP" run "$KD" --out "$w/kd" > "$w/kd2.log" 2>&1 || { fail "kd resume"; tail -5 "$w/kd2.log"; }
ok=1
for st in "$w"/kd/cells/*/settings; do
  t=$(sed -n 's/^distill.teacher=cell://p' "$st"); [ -n "$t" ] || continue
  d=$(dirname "$st")
  [ -f "$w/kd/cells/$t/ckpt/step0000012.h5" ] || { ok=0; echo "teacher $t has no final checkpoint"; }
  # the student started after its teacher's last step was written
  [ "$d/log" -nt "$w/kd/cells/$t/ckpt/step0000012.h5" ] || { ok=0; echo "$d older than its teacher"; }
  grep -q " kl [0-9]" "$d/log" || { ok=0; echo "$d/log has no kl"; }
  seed_s=$(sed -n 's/^train.seed=//p' "$st"); seed_t=$(sed -n 's/^train.seed=//p' "$w/kd/cells/$t/settings")
  [ "$seed_s" = "$seed_t" ] || { ok=0; echo "seed $seed_s student, $seed_t teacher"; }
done
ndone=$(grep -l "status: done" "$w"/kd/cells/*/state | wc -l)
[ $ok = 1 ] && [ "$ndone" = 8 ] && grep -q "resuming from step 3" "$w"/kd/cells/mlp128-off-s1-*/log &&
  pass "resume: the teacher resumed at step 3, 4 students loaded their same-seed teacher's final checkpoint, 8 cells done" ||
  fail "kd resume (done $ndone)"

# {id: PREFIX}: every student learns from the one cell whose id starts with it
tid=$("$LMDISP" plan "$KD" --json | $PY -c 'import json,sys; print([c["id"] for c in json.load(sys.stdin)["cells"] if c["id"].startswith("mlp128-off-s1-")][0])')
sed "s|teacher: {cell: {mlp_dim: 128}}|teacher: {id: ${tid%-*}}|" "$KD" > "$w/kd_id.yaml"
got=$("$LMDISP" plan "$w/kd_id.yaml" --json | $PY -c 'import json,sys; print(sorted(set(c["teacher"] or "-" for c in json.load(sys.stdin)["cells"])))')
[ "$got" = "['-', '$tid']" ] && pass "teacher {id: ${tid%-*}}: all 4 students distill from $tid" || fail "teacher by id: $got"

# submit: stand-ins for sbatch/scontrol/squeue/sacct
mkdir -p "$w/bin" "$w/fake"; export FAKE=$w/fake
cat > "$w/bin/sbatch" <<'SEOF'
#!/bin/bash
[ "$1" = --version ] && { echo "slurm 0.0 (stand-in)"; exit 0; }
id=$(( $(cat "$FAKE/next_id" 2>/dev/null || echo 100) + 1 )); echo "$id" > "$FAKE/next_id"; echo "$id"
SEOF
printf '#!/bin/bash\n[ "$1 $2" = "show config" ] && echo "MaxArraySize            = 1001"\nexit 0\n' > "$w/bin/scontrol"
printf '#!/bin/bash\nexit 0\n' > "$w/bin/squeue"
printf '#!/bin/bash\nexit 1\n' > "$w/bin/sacct"
chmod +x "$w/bin/"*
S=$w/S
PATH="$w/bin:$PATH" "$LMDISP" submit "$KD" --out "$S" > "$w/sub.log" 2>&1 || { fail "submit"; cat "$w/sub.log"; }
levels_ok() { # manifest: every teacher task before every student task
  $PY - "$1" "$KD" <<'PYEOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l[:1].isdigit()]
t = [int(r[0]) for r in rows if r[2].startswith("mlp128-")]
s = [int(r[0]) for r in rows if r[2].startswith("mlp32-")]
sys.exit(0 if (not t or not s or max(t) < min(s)) else 1)
PYEOF
}
if grep -q "^#SBATCH --dependency=afterok:101$" "$S/slurm/array-0-1.sbatch" && ! grep -q dependency "$S/slurm/array-0-0.sbatch" &&
   grep -q "^#SBATCH --dependency=afterany:101:102$" "$S/slurm/aggregate-0.sbatch" && levels_ok "$S/manifest"; then
  pass "submit: teachers' array 101 first, the students' array 102 --dependency=afterok:101, aggregation after both"
else fail "submit chaining"; cat "$w/sub.log"; fi
PATH="$w/bin:$PATH" "$LMDISP" resubmit "$S" > "$w/resub.log" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q "^#SBATCH --dependency=afterok:104$" "$S/slurm/array-1-1.sbatch" && levels_ok "$S/slurm/resubmit-1.manifest"; then
  pass "resubmit keeps the order: round 1's students' array after (ok) its teachers' array 104"
else fail "resubmit chaining (rc $rc)"; cat "$w/resub.log"; fi
echo "$passes passed, $fails failed"
exit $((fails > 0))
