#!/usr/bin/env bash
# test_run.sh — `lmdisp run` under MPI: rank-count independence, the study engine on a
# sub-communicator, kill -9 and resume to the same numbers, finished cells never retrained,
# changed settings refused, ranks_per_model 2 against 1 rank, train.shards bitwise across group
# sizes, ranks_per_model auto, a diverging cell stopped while the others go on.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}" "${LMDISP_TESTS:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp="$LMDISP_TMP/test_run"
rm -rf "$tmp" && mkdir -p "$tmp"
spec="$LMDISP_TESTS/specs/run_tiny.yaml"
PY=/usr/bin/python3
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

# same_tracks DIR_A DIR_B: every per-cell track file identical (h5diff: data and attributes)
same_tracks() {
  local n=0 bad=0
  for f in "$1"/cells/*/track/*.h5; do
    g="$2/${f#"$1"/}"
    n=$((n + 1))
    h5diff -q "$f" "$g" >/dev/null 2>&1 || { bad=$((bad + 1)); echo "  differs: ${f#"$1"/}"; }
  done
  echo "  compared $n track files, $bad differ"
  [ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}

# (section 3 kills a rank at a fixed step: LMDISP_TEST_KILL)
# 1. one rank and two ranks give identical per-cell results
mpi 1 "$LMDISP" run "$spec" --out "$tmp/np1" > "$tmp/np1.log" 2>&1 || fail "run -np 1 failed ($(tail -3 "$tmp/np1.log"))"
mpi 2 "$LMDISP" run "$spec" --out "$tmp/np2" > "$tmp/np2.log" 2>&1 || fail "run -np 2 failed ($(tail -3 "$tmp/np2.log"))"
if same_tracks "$tmp/np1" "$tmp/np2"; then pass "np 1 == np 2 (every tracked checkpoint of every cell)"
else fail "np 1 and np 2 differ"; fi

# 1b. the engine on a sub-communicator (test hook LMDISP_TEST_ENGINE_RANKS=2: the cells run on
# world ranks 0-1 alone, rank 2 waits outside the engine's communicator until the study file):
# no hang (an engine collective over all ranks would wait for rank 2 forever: the timeout), 2
# ranks reported, the same numbers
LMDISP_TEST_ENGINE_RANKS=2 timeout 300 mpirun --oversubscribe -np 3 -x LMDISP_TEST_ENGINE_RANKS "$LMDISP" run "$spec" --out "$tmp/sub" > "$tmp/sub.log" 2>&1 || fail "run on a sub-communicator failed ($(tail -3 "$tmp/sub.log"))"
if grep -q "cells on 2 rank(s) (2 group(s) of 1)" "$tmp/sub.log" && [ -s "$tmp/sub/study.h5" ] && same_tracks "$tmp/np1" "$tmp/sub"; then
  pass "engine on a 2-rank sub-communicator of 3 ranks == np 1 (and study.h5 written by all 3)"
else fail "engine on a sub-communicator: $(grep "cells on" "$tmp/sub.log")"; fi

# status: grid view and JSON of the finished study
if "$LMDISP" status "$tmp/np2" --json | $PY -c "import json,sys; d=json.load(sys.stdin); c=d['counts']; sys.exit(0 if c['done']==4 and len(d['cells'])==4 else 1)"; then
  pass "status --json: 4 cells done"; else fail "status --json"; fi
"$LMDISP" status "$tmp/np2" | head -8
# a study directory whose path holds a quote and a backslash still gives valid JSON, the path
# given back to the letter (status only reads the directory, so a copy of it will do)
odd="$tmp/odd \"quote\" back\\slash"
cp -r "$tmp/np2" "$odd"
if "$LMDISP" status "$odd" --json > "$tmp/odd.json" 2> "$tmp/odd.err" &&
   $PY -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d['dir']==sys.argv[2] and d['counts']['done']==4 and all(c['status']=='done' for c in d['cells']) else 1)" "$tmp/odd.json" "$odd"; then
  pass "status --json: a directory with \" and \\ in its path is valid JSON"
else fail "status --json with \" and \\ in the path: $(head -c 300 "$tmp/odd.json") $(cat "$tmp/odd.err")"; fi
rm -rf "$odd"

# 2. rerun of a finished study retrains nothing
before=$(cat "$tmp"/np2/cells/*/log | grep -c starting)
mpi 2 "$LMDISP" run "$spec" --out "$tmp/np2" > "$tmp/rerun.log" 2>&1 || fail "rerun failed"
after=$(cat "$tmp"/np2/cells/*/log | grep -c starting)
if [ "$before" -eq "$after" ]; then pass "rerun skipped all finished cells"; else fail "rerun retrained ($before -> $after starts)"; fi

# 3. kill -9 mid-run, rerun: finished cells not retrained, results equal the uninterrupted run.
# The kill is deterministic: LMDISP_TEST_KILL makes the rank training the cheapest cell (the
# last one scheduled, so others are done by then) SIGKILL itself at step 700, mid-training
# between the checkpoints of tracked steps 512 and 1000.
last=$("$LMDISP" plan "$spec" --json | $PY -c "import json,sys; c=json.load(sys.stdin)['cells']; print(min(c, key=lambda x: (x['flops'], -x['index']))['id'])")
LMDISP_TEST_KILL="$last:700" mpi 2 -x LMDISP_TEST_KILL "$LMDISP" run "$spec" --out "$tmp/killed" > "$tmp/killed.log" 2>&1
rc=$?
done_before=$(grep -l "status: done" "$tmp"/killed/cells/*/state 2>/dev/null | xargs -r -n1 dirname)
st=$(sed -n 's/^status: //p' "$tmp/killed/cells/$last/state")
echo "  killed at step 700 of $last (mpirun rc $rc, state '$st'); done before the kill: $(echo $done_before | wc -w) cell(s)"
if [ "$rc" -ne 0 ] && [ "$st" = running ] && "$LMDISP" status "$tmp/killed" | grep -qE " interrupted +512/1000"; then
  pass "killed mid-training: status shows the cell interrupted at its checkpoint 512/1000, not running"
else fail "kill at step 700: rc=$rc state=$st"; "$LMDISP" status "$tmp/killed"; fi
mpi 2 "$LMDISP" run "$spec" --out "$tmp/killed" > "$tmp/resumed.log" 2>&1 || fail "resumed run failed"
retrained=0
for d in $done_before; do
  [ "$(grep -c starting "$d/log")" -eq 1 ] || retrained=$((retrained + 1))
done
if [ "$retrained" -eq 0 ] && [ -n "$done_before" ]; then pass "cells finished before the kill were not retrained"
else fail "finished cells retrained: $retrained (done before: '$done_before')"; fi
if grep -q "resuming from step 512" "$tmp/killed/cells/$last/log"; then pass "the killed cell resumed from its step-512 checkpoint"
else fail "the killed cell did not resume from step 512"; cat "$tmp/killed/cells/$last/log"; fi
if same_tracks "$tmp/np1" "$tmp/killed"; then pass "killed + resumed == uninterrupted"
else fail "resumed results differ from the uninterrupted run"; fi

# 4. a spec that changes the settings of an existing cell id is refused (exit 2), nothing run
sed 's/lr: 0.003/lr: 0.002/' "$spec" > "$tmp/changed.yaml"
# same ids are impossible with changed settings, so force a collision: copy a cell's directory
# under the id the changed spec gives it, then run
"$LMDISP" plan "$tmp/changed.yaml" --json > "$tmp/changed.json"
newid=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['cells'][0]['id'])" "$tmp/changed.json")
oldid=$(ls "$tmp/np1/cells" | head -1)
mkdir -p "$tmp/collide/cells" && cp -r "$tmp/np1/cells/$oldid" "$tmp/collide/cells/$newid"
out=$(mpi 1 "$LMDISP" run "$tmp/changed.yaml" --out "$tmp/collide" 2>&1); rc=$?
if [ "$rc" -eq 2 ] && grep -q "different settings" <<<"$out"; then pass "changed settings refused: $(grep -o "cell .*settings" <<<"$out" | head -1)"
else fail "changed settings not refused (rc=$rc): $out"; fi

# 5. ranks_per_model 2 matches 1 rank within float tolerance
cat > "$tmp/rpm2.yaml" <<YAML
name: rpm
seed: 0
model: {n_layer: 2, n_embd: 16, n_head: 2, n_ctx: 16}
train: {steps: 40, batch: 4, seq: 16, lr: 0.003}
tracking: {eval_sequences: 4}
grid: {mlp_dim: [32], dispersion: [off, angular_spread]}
resources: {ranks_per_model: 2}
YAML
sed 's/ranks_per_model: 2/ranks_per_model: 1/' "$tmp/rpm2.yaml" > "$tmp/rpm1.yaml"
mpi 2 "$LMDISP" run "$tmp/rpm2.yaml" --out "$tmp/rpm2" > "$tmp/rpm2.log" 2>&1 || fail "ranks_per_model 2 run failed"
mpi 1 "$LMDISP" run "$tmp/rpm1.yaml" --out "$tmp/rpm1" > "$tmp/rpm1.log" 2>&1 || fail "ranks_per_model 1 run failed"
if $PY - "$tmp/rpm1" "$tmp/rpm2" <<'PY'
import glob, os, sys
import h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
worst, n = 0.0, 0
for f in sorted(glob.glob(a + "/cells/*/track/*.h5")):
    g = b + f[len(a):]
    with h5py.File(f) as x, h5py.File(g) as y:
        for k in ("val_loss", "train_loss", "layer_mean_cossim", "spearman"):
            u, v = np.asarray(x[k][()], float), np.asarray(y[k][()], float)
            ok = np.isfinite(u) & np.isfinite(v)
            if ok.any():
                worst = max(worst, float(np.max(np.abs(u[ok] - v[ok]) / (1e-3 + np.abs(u[ok])))))
            n += 1
print(f"  ranks_per_model 2 vs 1: {n} quantities, worst relative difference {worst:.2e} (tolerance 1e-4)")
sys.exit(0 if n > 0 and worst < 1e-4 else 1)
PY
then pass "ranks_per_model 2 loss curve matches 1 rank"; else fail "ranks_per_model 2 differs from 1 rank"; fi

# 5b. train.shards: the same bits for any group size dividing it. shards 4, groups of 1, 2 and
# 4 ranks (dispersion subsets drawn: seq 16 > max_tokens 8). The shards-1 runs of section 5
# show that the comparison can fail: there, groups of 2 and 1 differ in the last bits.
if same_tracks "$tmp/rpm1" "$tmp/rpm2" >/dev/null; then
  fail "control: shards 1 with groups of 1 and 2 ranks gave identical bits (the comparison below would prove nothing)"
else pass "control: shards 1, groups of 2 vs 1 rank differ in the last bits (as documented)"; fi
for gs in 1 2 4; do
  sed -e "s/ranks_per_model: 2/ranks_per_model: $gs/" \
      -e 's/train: {steps: 40, batch: 4, seq: 16, lr: 0.003}/train: {steps: 12, batch: 8, seq: 16, lr: 0.003, shards: 4}\ndispersion: {max_tokens: 8}/' \
      "$tmp/rpm2.yaml" > "$tmp/sh$gs.yaml"
  mpi "$gs" "$LMDISP" run "$tmp/sh$gs.yaml" --out "$tmp/sh$gs" > "$tmp/sh$gs.log" 2>&1 || fail "shards 4, ranks_per_model $gs: run failed ($(tail -3 "$tmp/sh$gs.log"))"
done
grep -q "shards: 4" "$tmp/sh4.yaml" && grep -q "ranks_per_model: 4" "$tmp/sh4.yaml" || fail "shards spec not generated"
for gs in 2 4; do
  if same_tracks "$tmp/sh1" "$tmp/sh$gs"; then pass "shards 4: groups of $gs ranks == 1 rank, bitwise (every tracked step)"
  else fail "shards 4: groups of $gs ranks differ from 1 rank"; fi
  nck=0 bad=0
  for f in "$tmp"/sh1/cells/*/ckpt/*.h5; do
    nck=$((nck + 1))
    h5diff -q "$f" "$tmp/sh$gs/${f#"$tmp"/sh1/}" >/dev/null 2>&1 || bad=$((bad + 1))
  done
  if [ "$nck" -gt 0 ] && [ "$bad" -eq 0 ]; then pass "shards 4: groups of $gs: $nck checkpoints (parameters, moments, RNG) identical"
  else fail "shards 4: groups of $gs: $bad of $nck checkpoints differ"; fi
done

# 5c. ranks_per_model: auto: a group size per cell from the moldable plan (docs/SCHEDULING.md).
# Three cells of very different cost on 4 ranks: the plan gives the wide one a group of 2 and
# the two narrow ones a rank each; the numbers equal a 1-rank run bit for bit (shards 4).
cat > "$tmp/auto.yaml" <<YAML
name: auto
seed: 0
model: {n_layer: 2, n_embd: 16, n_head: 2, n_ctx: 16}
train: {steps: 40, batch: 8, seq: 16, lr: 0.003, shards: 4}
dispersion: {max_tokens: 8}
tracking: {eval_sequences: 4}
grid: {mlp_dim: [16, 32, 1024], dispersion: [angular_spread]}
resources: {ranks_per_model: auto}
YAML
mpi 4 "$LMDISP" run "$tmp/auto.yaml" --out "$tmp/auto4" > "$tmp/auto4.log" 2>&1 || fail "auto on 4 ranks failed ($(tail -3 "$tmp/auto4.log"))"
mpi 1 "$LMDISP" run "$tmp/auto.yaml" --out "$tmp/auto1" > "$tmp/auto1.log" 2>&1 || fail "auto on 1 rank failed"
plan=$(grep -o "ranks_per_model auto: .*, output" "$tmp/auto4.log")
echo "  4 ranks: $plan"
groups=$(grep -h "^.*starting:" "$tmp"/auto4/cells/*/log | grep -o "[0-9]* rank(s)" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
echo "  cells started with: $groups"
if grep -q "1 group(s) of 2 for 1 cell(s)" <<<"$plan" && grep -q "mlp1024.*" <<<"$(grep -l "2 rank(s)" "$tmp"/auto4/cells/*/log)"; then
  pass "auto: the wide cell got a group of 2 ranks, the narrow ones 1 each"
else fail "auto: unexpected plan: $plan / $groups"; fi
nck=0 bad=0
for f in "$tmp"/auto1/cells/*/track/*.h5 "$tmp"/auto1/cells/*/ckpt/*.h5; do
  nck=$((nck + 1))
  h5diff -q "$f" "$tmp/auto4/${f#"$tmp"/auto1/}" >/dev/null 2>&1 || bad=$((bad + 1))
done
if [ "$nck" -gt 0 ] && [ "$bad" -eq 0 ]; then pass "auto on 4 ranks == 1 rank: $nck track and checkpoint files identical"
else fail "auto on 4 ranks: $bad of $nck files differ from 1 rank"; fi

# 6. a diverging cell is stopped and marked, the others go on
victim_id=$(ls "$tmp/np1/cells" | grep off | head -1)
hash=${victim_id##*-}
LMDISP_TEST_NAN="$hash:5" mpi 2 -x LMDISP_TEST_NAN "$LMDISP" run "$spec" --out "$tmp/div" > "$tmp/div.log" 2>&1
rc=$?
st=$(sed -n 's/^status: //p' "$tmp/div/cells/$victim_id/state")
step=$(sed -n 's/^step: //p' "$tmp/div/cells/$victim_id/state")
others=$(grep -l "status: done" "$tmp"/div/cells/*/state | wc -l)
if [ "$rc" -eq 0 ] && [ "$st" = diverged ] && [ "$step" = 5 ] && [ "$others" -eq 3 ]; then
  pass "diverging cell marked diverged at step $step, 3 others done"
else fail "divergence handling: rc=$rc status=$st step=$step others_done=$others"; fi

# 7. a bad spec: exit 2, file:line:column, nothing written
printf 'name: bad\nmodel:\n  n_embd: 30\n  n_head: 4\n  n_layr: 2\ngrid:\n  mlp_dim: [16]\n' > "$tmp/bad.yaml"
out=$(mpi 2 "$LMDISP" run "$tmp/bad.yaml" --out "$tmp/badout" 2>&1); rc=$?
if [ "$rc" -eq 2 ] && grep -q "bad.yaml:5:3" <<<"$out" && [ ! -e "$tmp/badout" ]; then pass "bad spec rejected with file:line:column, nothing written"
else fail "bad spec: rc=$rc exists=$([ -e "$tmp/badout" ] && echo yes) out=$out"; fi

# 8. an --out so long that a cell's track file path would not fit: refused up front, exit 2,
# "path too long", nothing created (it used to be cut silently and written elsewhere)
long="$tmp/long/$($PY -c "print('/'.join(['d' * 250] * 17))")"
out=$("$LMDISP" run "$spec" --out "$long" 2>&1); rc=$?
if [ "$rc" -eq 2 ] && grep -q "path too long" <<<"$out" && [ ! -e "$tmp/long" ]; then pass "a too long --out refused up front, nothing created"
else fail "too long --out: rc=$rc exists=$([ -e "$tmp/long" ] && echo yes) out=$(head -c 300 <<<"$out")"; fi

echo "test_run: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
