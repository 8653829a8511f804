#!/usr/bin/env bash
# test_harden.sh — `lmdisp run` against the mistakes and accidents of issue 14:
#   - a run stopped at a known step (LMDISP_TEST_STOP, as if signalled) exits 3 with one line,
#     status says interrupted, the rerun resumes from that step to the same bits as a run
#     that was never interrupted (tracks and final checkpoints, h5diff);
#   - Ctrl-C (SIGINT) to a plain `lmdisp run`: checkpoint, exit 3, "interrupted at step N";
#   - kill -9: status shows the cell interrupted (its holder is gone), not running;
#   - a second run (and an aggregate) on a directory in use is refused (exit 2) naming the
#     holder's host and pid; the lock goes with a killed holder;
#   - a different spec into an existing --out is refused (exit 2) naming the keys and cells,
#     nothing on disk changed; a spec that only adds cells extends the study;
#   - a corrupted checkpoint at resume is named on the console (cell and file);
#   - stale study.h5.tmp.* files are removed by run and aggregate.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}" "${LMDISP_TESTS:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
tmp="$LMDISP_TMP/test_harden"
rm -rf "$tmp" && mkdir -p "$tmp"
cd "$tmp" || exit 1
PY=/usr/bin/python3
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

# same_files A B GLOB: every file of GLOB under A identical under B (h5diff); prints the count
same_files() {
  local n=0 bad=0 f
  for f in "$1"/$3; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    h5diff -q "$f" "$2/${f#"$1"/}" > /dev/null 2>&1 || { bad=$((bad + 1)); echo "  differs: ${f#"$1"/}"; }
  done
  echo "  compared $n files ($3), $bad differ"
  [ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}
# snapshot DIR: names, sizes and checksums of every file, to show nothing changed
snapshot() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum); }
# wait_ckpt DIR: until some cell of DIR has a checkpoint (at most ~15 s)
wait_ckpt() {
  for _ in $(seq 1 300); do ls "$1"/cells/*/ckpt/*.h5 > /dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

cat > small.yaml <<'YAML'
name: harden
model: {n_layer: 2, n_embd: 16, n_head: 2, n_ctx: 16}
train: {steps: 60, batch: 4, seq: 16, lr: 0.003}
tracking: {eval_sequences: 4, save_checkpoints: true}
grid: {mlp_dim: [16], dispersion: [off, angular_spread], seed: [0]}
YAML
# long: one cell that is surely still training when a signal comes
cat > long.yaml <<'YAML'
name: long
seed: 0
model: {n_layer: 2, n_embd: 16, n_head: 2, n_ctx: 16}
train: {steps: 200000, batch: 4, seq: 16, lr: 0.003}
tracking: {eval_sequences: 4}
grid: {mlp_dim: [16]}
YAML

# ---- 1. a deterministic interruption: stop at step 7, resume, same bits ----
"$LMDISP" run small.yaml --out ref > ref.log 2>&1 || fail "reference run ($(tail -3 ref.log))"
victim=$(ls ref/cells | grep angular)
LMDISP_TEST_STOP="$victim:7" "$LMDISP" run small.yaml --out stop > stop.log 2>&1; rc=$?
line=$(grep "interrupted at step" stop.log)
st=$(sed -n 's/^status: //p' "stop/cells/$victim/state")
if [ "$rc" -eq 3 ] && [ "$(grep -c "interrupted at step" stop.log)" -eq 1 ] &&
   grep -q "cell $victim interrupted at step 7; rerun the same command to resume" <<<"$line" && [ "$st" = interrupted ]; then
  pass "stopped at step 7 as if signalled: exit 3, state interrupted, one line: $line"
else fail "stop at step 7: rc=$rc state=$st"; cat stop.log; fi
"$LMDISP" status stop > status_stop.log
if grep -qE "angular_spread .* interrupted +7/60" status_stop.log; then pass "status shows the cell interrupted at 7/60"
else fail "status after the stop"; cat status_stop.log; fi
"$LMDISP" run small.yaml --out stop > resume.log 2>&1 || fail "resume ($(tail -3 resume.log))"
if grep -q "resuming from step 7" "stop/cells/$victim/log"; then pass "the rerun resumed the cell from step 7"
else fail "no resume from step 7"; cat "stop/cells/$victim/log"; fi
if same_files ref stop "cells/*/track/*.h5" && same_files ref stop "cells/*/ckpt/step0000060.h5"; then
  pass "stopped at 7 + resumed == uninterrupted, bitwise (every tracked step and the final checkpoint)"
else fail "the resumed result differs from the uninterrupted run"; fi

# ---- 2. a different spec into an existing study: refused, nothing changed ----
before=$(snapshot ref)
sed 's/lr: 0.003/lr: 0.002/' small.yaml > lr.yaml
out=$("$LMDISP" run lr.yaml --out ref 2>&1); rc=$?
if [ "$rc" -eq 2 ] && grep -q "different spec" <<<"$out" && grep -q "train.lr=0.003' is now 'train.lr=0.002'" <<<"$out" &&
   grep -q "cell $victim" <<<"$out" && [ "$before" = "$(snapshot ref)" ]; then
  pass "a changed train.lr into an existing study: refused (exit 2), keys and cells named, nothing changed on disk"
else fail "changed spec not refused properly (rc=$rc): $out"; fi
sed 's/name: harden/name: other/' small.yaml > renamed.yaml
out=$("$LMDISP" run renamed.yaml --out ref 2>&1); rc=$?
if [ "$rc" -eq 2 ] && grep -q "key 'name': was 'harden', now 'other'" <<<"$out" && [ "$before" = "$(snapshot ref)" ]; then
  pass "a renamed study into the same --out: refused, the key named"
else fail "renamed spec (rc=$rc): $out"; fi
echo "  refusal: $(head -c 600 <<<"$out")"
# only new cells: seeds 0 and 1 (the seed-0 cells keep their ids) extend the study
sed 's/seed: \[0\]/seed: [0, 1]/' small.yaml > more.yaml
out=$("$LMDISP" run more.yaml --out ref 2>&1); rc=$?
starts=$(cat ref/cells/*s0*/log | grep -c starting)
if [ "$rc" -eq 0 ] && grep -q "extending study 'harden'.*2 cells are unchanged, 2 new cell(s) added" <<<"$out" &&
   [ "$(ls ref/cells | wc -l)" -eq 4 ] && [ "$starts" -eq 2 ] && cmp -s more.yaml ref/spec.yaml; then
  pass "a spec that only adds seeds extends the study, says so, the old cells are not retrained"
else fail "extension (rc=$rc, starts of the seed-0 cells $starts): $out"; fi

# ---- 3. Ctrl-C to a plain `lmdisp run`: checkpoint, exit 3, one line ----
# bash starts background jobs with SIGINT ignored; a terminal's foreground job has it at its
# default action, so restore that before exec (the same pid then is lmdisp)
with_sigint() { exec $PY -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; }
with_sigint "$LMDISP" run long.yaml --out int > int.log 2>&1 &
pid=$!
wait_ckpt int; sleep 0.2
kill -INT "$pid"
wait "$pid"; rc=$?
cell=$(ls int/cells)
st=$(sed -n 's/^status: //p' "int/cells/$cell/state")
if [ "$rc" -eq 3 ] && grep -q "interrupted at step [0-9]*; rerun the same command to resume" int.log && [ "$st" = interrupted ]; then
  pass "SIGINT: exit 3, state interrupted, '$(grep -o "interrupted at step [0-9]*" int.log)'"
else fail "SIGINT: rc=$rc state=$st"; cat int.log; fi

# ---- 4. the lock: a second run and an aggregate are refused, naming the holder ----
"$LMDISP" run long.yaml --out int > holder.log 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q "status: running" "int/cells/$cell/state" 2>/dev/null && break; sleep 0.05; done
host=$(hostname)
out=$(timeout 20 "$LMDISP" run long.yaml --out int 2>&1); rc=$?
if [ "$rc" -eq 2 ] && grep -q "in use by another lmdisp (host $host, pid $pid," <<<"$out"; then
  pass "second run on the same --out refused (exit 2): $(grep -o "in use.*pid $pid" <<<"$out")"
else fail "second run not refused (rc=$rc): $out"; fi
out=$(timeout 20 "$LMDISP" aggregate int 2>&1); rc=$?
if [ "$rc" -eq 2 ] && grep -q "pid $pid" <<<"$out"; then pass "aggregate refused while the run holds the lock"
else fail "aggregate during a run (rc=$rc): $out"; fi

# ---- 5. kill -9: status says interrupted, not running; the lock is gone with the holder ----
kill -9 "$pid"; wait "$pid" 2>/dev/null
grep -q "status: running" "int/cells/$cell/state" || fail "the state file should still say running after kill -9"
"$LMDISP" status int > status_int.log
if grep -qE " interrupted +[0-9]+/200000" status_int.log && grep -q "the run that held them is gone" status_int.log &&
   ! grep -qE " running +[0-9]" status_int.log; then
  pass "after kill -9 status shows the cell interrupted (its holder pid $pid is gone)"
else fail "status after kill -9"; cat status_int.log; fi

# ---- 6. a corrupted checkpoint is named on the console ----
ck=$(ls int/cells/"$cell"/ckpt/*.h5 | tail -1)
printf 'garbage' > "$ck"
LMDISP_TEST_STOP="$cell:3" timeout 20 "$LMDISP" run long.yaml --out int > corrupt.log 2>&1; rc=$?
if grep -q "lmdisp run: cell $cell: checkpoint $ck is unreadable" corrupt.log; then
  pass "corrupted checkpoint reported on the console: $(grep -o "checkpoint .* is unreadable, skipped" corrupt.log)"
else fail "corrupted checkpoint not on the console (rc=$rc)"; cat corrupt.log; fi

# ---- 7. stale temporary files of a killed run are removed by run and aggregate ----
touch ref/study.h5.tmp.99999 ref/spec.yaml.tmp.99998
"$LMDISP" run more.yaml --out ref > clean.log 2>&1; rc=$?
if [ "$rc" -eq 0 ] && [ ! -e ref/study.h5.tmp.99999 ] && [ ! -e ref/spec.yaml.tmp.99998 ] &&
   grep -q "removed .*study.h5.tmp.99999" clean.log; then pass "run removed stale study.h5.tmp.* and spec.yaml.tmp.*"
else fail "stale temporaries (rc=$rc)"; cat clean.log; fi
touch ref/study.h5.tmp.99997
"$LMDISP" aggregate ref --quiet > agg.log 2>&1; rc=$?
if [ "$rc" -eq 0 ] && [ ! -e ref/study.h5.tmp.99997 ]; then pass "aggregate removed a stale study.h5.tmp.*"
else fail "aggregate stale tmp (rc=$rc)"; cat agg.log; fi
ls ref | grep -q "\.tmp\." && fail "temporary files left in the study directory: $(ls ref)"

echo "test_harden: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
