#!/usr/bin/env bash
# test_slurm.sh (ctest label `slurm`) — the cluster path against a real Slurm on this machine:
# starts slurm/local-cluster (one node: munged, slurmctld, slurmd), submits the 8-cell
# tests/specs/quickstart_small.yaml as an
# array job, sends one running task `scancel --signal=USR1 --batch` (what a preemption or the
# time-limit warning does), waits for the aggregation job, and checks that
#   - the signalled task checkpointed, requeued itself and finished on its second attempt,
#   - study.h5 is complete and equal to a plain `mpirun lmdisp run` of the same spec,
#   - after deleting one cell's results, `lmdisp resubmit` runs exactly that cell again and the
#     new aggregation gives the same study.h5 again; no other cell is retrained;
#   - the array script submitted without --array still records its attempt.
# Needs root (it starts the Slurm daemons); skipped otherwise (exit 77).
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}" "${LMDISP_TESTS:?}"
src="${LMDISP_SRC:-$LMDISP_TESTS/..}"
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root to start the local Slurm"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
tmp="$LMDISP_TMP/test_slurm"
rm -rf "$tmp" && mkdir -p "$tmp"
spec="$src/tests/specs/quickstart_small.yaml"   # 8 cells; experiments/quickstart.yaml has 24
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi
t0=$(date +%s)
el() { echo "$(( $(date +%s) - t0 ))s"; }

slurm_up "$src" || { echo "FAIL: slurm/local-cluster start"; exit 1; }

S="$tmp/S"
"$LMDISP" submit "$spec" --out "$S" > "$tmp/submit.log" 2>&1 || { fail "submit"; cat "$tmp/submit.log"; exit 1; }
cat "$tmp/submit.log"
array=$(awk -F'\t' '$2 == "array" {print $3}' "$S/slurm/jobs.tsv")
agg=$(awk -F'\t' '$2 == "aggregate" {print $3}' "$S/slurm/jobs.tsv")
[ -n "$array" ] && [ -n "$agg" ] && pass "submitted: array $array, aggregation $agg ($(el))" || fail "job ids not recorded"

# interrupt one running task once it has trained past its step-0 checkpoint
victim=""
for _ in $(seq 1 300); do
  while IFS='|' read -r id state; do
    [ "$state" = RUNNING ] || continue
    t=${id#*_}
    cell=$(awk -F'\t' -v t="$t" '$1 == t {print $3}' "$S/manifest")
    if grep -qE "^step [0-9]+/" "$S/cells/$cell/log" 2>/dev/null; then victim=$id; break; fi
  done < <(squeue -h -r -j "$array" -o '%i|%T' 2>/dev/null)
  [ -n "$victim" ] && break
  sleep 0.5
done
if [ -n "$victim" ]; then
  # scancel may answer "Job can not be altered now" while still delivering the signal: judge
  # by the batch shell's log line, and retry only if it did not arrive
  vlog="$S/slurm/logs/${array}_${victim#*_}.out"
  got=0
  for _ in 1 2 3 4 5; do
    # scancel retries by itself for ~95 s on that answer, re-sending each time: cut it short
    timeout 2 scancel --signal=USR1 --batch "$victim"
    for _ in $(seq 1 10); do grep -q "got SIG" "$vlog" 2>/dev/null && { got=1; break; }; sleep 0.5; done
    [ $got -eq 1 ] && break
  done
  [ $got -eq 1 ] && pass "USR1 reached the batch shell of task $victim ($(el))" || fail "scancel --signal=USR1 --batch $victim: no signal in $vlog"
else fail "no task reached a training step"; fi

# Slurm makes a requeued task eligible only ~121 s later; start it now to keep the test short
# (the requeue itself is Slurm's, as on a cluster)
for _ in $(seq 1 120); do
  [ "$(squeue -h -j "$victim" -o '%T|%r' 2>/dev/null)" = "PENDING|BeginTime" ] && {
    scontrol update JobId="$victim" StartTime=now && echo "  requeued $victim: made eligible now ($(el))"; break; }
  sleep 0.5
done
slurm_wait "$array" 900 || fail "array $array still queued after 900 s"
slurm_wait "$agg" 300 || fail "aggregation $agg still queued"
echo "  array and aggregation done ($(el))"
"$LMDISP" status "$S" | head -4

vt=${victim#*_}
if awk -F'\t' -v t="$vt" '$4 == t && $5 == 0 && $7 == "interrupted-requeue"' "$S/slurm/attempts.tsv" | grep -q . &&
   awk -F'\t' -v t="$vt" '$4 == t && $5 == 1 && $7 == "done"' "$S/slurm/attempts.tsv" | grep -q .; then
  pass "task $vt: attempt 0 interrupted and requeued, attempt 1 done"
else fail "attempts of task $vt"; cat "$S/slurm/attempts.tsv"; fi
vcell=$(awk -F'\t' -v t="$vt" '$1 == t {print $3}' "$S/manifest")
grep -q "^resuming from step" "$S/cells/$vcell/log" && pass "cell $vcell resumed from its checkpoint" || fail "cell $vcell did not resume"
ndone=$(grep -l "status: done" "$S"/cells/*/state 2>/dev/null | wc -l)
[ "$ndone" -eq 8 ] && [ -f "$S/study.h5" ] && pass "8 cells done, study.h5 written by the aggregation job" ||
  { fail "$ndone cells done, study.h5 $( [ -f "$S/study.h5" ] && echo present || echo missing)"; tail -20 "$S"/slurm/logs/aggregate-0_*.out; }

# the same spec under a plain mpirun
mpirun --oversubscribe -np 2 "$LMDISP" run "$spec" --out "$tmp/ref" > "$tmp/ref.log" 2>&1 || fail "plain mpirun run"
echo "  plain mpirun run done ($(el))"
if $PY "$LMDISP_TESTS/h5cmp.py" "$S/study.h5" "$tmp/ref/study.h5"; then
  pass "study.h5 from Slurm (with a preempted task) equals the plain mpirun run"
else fail "study.h5 differs from the plain run"; fi

# resubmit after deleting one cell's results
gone=$(awk -F'\t' '$1 == 5 {print $3}' "$S/manifest")
rm -rf "${S:?}/cells/$gone"
starts=$(cat "$S"/cells/*/log | grep -cE "^(starting|resuming)")
"$LMDISP" resubmit "$S" > "$tmp/resubmit.log" 2>&1 || { fail "resubmit"; cat "$tmp/resubmit.log"; }
cat "$tmp/resubmit.log"
picked=$(awk -F'\t' '$1 ~ /^[0-9]+$/ {print $3}' "$S/slurm/resubmit-1.manifest" 2>/dev/null)
[ "$picked" = "$gone" ] && pass "resubmit picked exactly the deleted cell $gone" || fail "resubmit picked '$picked', not $gone"
array1=$(awk -F'\t' '$1 == 1 && $2 == "array" {print $3}' "$S/slurm/jobs.tsv")
agg1=$(awk -F'\t' '$1 == 1 && $2 == "aggregate" {print $3}' "$S/slurm/jobs.tsv")
slurm_wait "$array1" 600 || fail "resubmitted array still queued"
slurm_wait "$agg1" 300 || fail "second aggregation still queued"
echo "  resubmission done ($(el))"
starts2=$(cat "$S"/cells/*/log | grep -cE "^(starting|resuming)")
[ -f "$S/cells/$gone/state" ] && grep -q "status: done" "$S/cells/$gone/state" && [ "$starts2" -eq $((starts + 1)) ] &&
  pass "the deleted cell ran again; no other cell was retrained" || fail "after resubmit: starts $starts -> $starts2"
if $PY "$LMDISP_TESTS/h5cmp.py" "$S/study.h5" "$tmp/ref/study.h5"; then
  pass "study.h5 after resubmission equals the plain mpirun run"
else fail "study.h5 after resubmission differs"; fi

# the array script started by Slurm without --array (no SLURM_ARRAY_TASK_ID): it must still
# record the attempt (before the fix, `set -u` ended it silently)
sed '/^#SBATCH --array=/d' "$S/slurm/array-0-0.sbatch" > "$tmp/noarray.sbatch"
noarr=$(sbatch --parsable "$tmp/noarray.sbatch") || fail "sbatch of the script without --array"
[ -n "$noarr" ] && slurm_wait "$noarr" 120
if grep -q $'\t2\tno-array-task\t' "$S/slurm/attempts.tsv"; then
  pass "started by Slurm without --array: attempt recorded as no-array-task (job $noarr)"
else fail "no record of the job without --array ($noarr)"; tail -3 "$S/slurm/attempts.tsv"; fi

echo "test_slurm: $passes passed, $fails failed ($(el))"
[ $fails -eq 0 ]
