#!/usr/bin/env bash
# test_meas_slurm.sh (ctest label `slurm`) — a measurement study (experiments/meas_tiny_hf.yaml,
# 24 cells) through a real Slurm on this machine (slurm/local-cluster: munged, slurmctld,
# slurmd), as tests/test_slurm.sh does for a training study:
#   - `lmdisp submit --cells-per-task 6` makes 4 array tasks and an aggregation job; every task
#     is interrupted once (test hook LMDISP_TEST_STOP_AFTER_CELLS=4: the task stops after 4
#     cells and exits 3, as after Slurm's warning signal), requeues itself and measures its
#     other 2 cells on the second attempt;
#   - the aggregated study.h5 equals a plain 1-rank `lmdisp run` of the same spec (h5cmp.py);
#   - `lmdisp status` lists 24 measured cells;
#   - after deleting two cells' results, `lmdisp resubmit` submits exactly those two, and the
#     new aggregation gives the same study.h5 again.
# Needs root (it starts the Slurm daemons); skipped otherwise (exit 77). Only one user of the
# machine's Slurm at a time: run it under `flock /tmp/lmdisp-slurm.lock`.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}" "${LMDISP_TESTS:?}"
src="${LMDISP_SRC:-$LMDISP_TESTS/..}"
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root to start the local Slurm"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
tmp="$LMDISP_TMP/test_meas_slurm"
rm -rf "$tmp" && mkdir -p "$tmp"
spec="$src/experiments/meas_tiny_hf.yaml"
. "$LMDISP_TESTS/lib.sh"  # pass, fail, mpi
t0=$(date +%s)
el() { echo "$(( $(date +%s) - t0 ))s"; }

slurm_up "$src" || { echo "FAIL: slurm/local-cluster start"; exit 1; }

# the reference: a plain 1-rank run of the same spec
"$LMDISP" run "$spec" --out "$tmp/ref" > "$tmp/ref.log" 2>&1 || fail "plain run: $(tail -3 "$tmp/ref.log")"

S="$tmp/S"
LMDISP_TEST_STOP_AFTER_CELLS=4 "$LMDISP" submit "$spec" --out "$S" --cells-per-task 6 > "$tmp/submit.log" 2>&1 \
  || { fail "submit"; cat "$tmp/submit.log"; exit 1; }
cat "$tmp/submit.log"
array=$(awk -F'\t' '$2 == "array" {print $3}' "$S/slurm/jobs.tsv")
agg=$(awk -F'\t' '$2 == "aggregate" {print $3}' "$S/slurm/jobs.tsv")
[ -n "$array" ] && [ -n "$agg" ] && pass "submitted: array $array (4 tasks), aggregation $agg ($(el))" || fail "job ids not recorded"
slurm_wait "$array" 900 --now || fail "array $array still queued after 900 s"
slurm_wait "$agg" 300 --now || fail "aggregation $agg still queued"
echo "  array and aggregation done ($(el))"
cat "$S/slurm/attempts.tsv"
n_int=$(awk -F'\t' '$5 == 0 && $7 == "interrupted-requeue"' "$S/slurm/attempts.tsv" | wc -l)
n_done=$(awk -F'\t' '$5 == 1 && $7 == "done"' "$S/slurm/attempts.tsv" | wc -l)
[ "$n_int" = 4 ] && [ "$n_done" = 4 ] && pass "every task: attempt 0 interrupted after 4 cells and requeued, attempt 1 done" \
  || fail "attempts: $n_int interrupted-requeue at attempt 0, $n_done done at attempt 1"
grep -h "already measured, skipped" "$S"/slurm/logs/*.out | sort | uniq -c
[ "$(grep -h "4 cell(s) already measured, skipped" "$S"/slurm/logs/${array}_*.out | wc -l)" = 4 ] \
  && pass "each requeued task skipped its 4 measured cells" || fail "requeued tasks did not skip their cells"
"$LMDISP" status "$S" > "$tmp/status.txt" 2>&1
tail -1 "$tmp/status.txt"
grep -q "^24 measured, 0 failed, 0 pending" "$tmp/status.txt" && pass "status: 24 measured" || fail "status: $(tail -2 "$tmp/status.txt")"
if [ -f "$S/study.h5" ] && $PY "$LMDISP_TESTS/h5cmp.py" "$S/study.h5" "$tmp/ref/study.h5"; then
  pass "study.h5 from Slurm (every task interrupted once) equals the plain run"
else fail "study.h5 from Slurm differs or is missing"; tail -5 "$S"/slurm/logs/aggregate-0_*.out; fi

# resubmit after deleting two cells' results
gone=$(awk -F'\t' '$1 == 2 {print $3}' "$S/manifest" | head -2 | sort)
for c in $gone; do rm -rf "${S:?}/cells/$c"; done
"$LMDISP" resubmit "$S" > "$tmp/resubmit.log" 2>&1 || { fail "resubmit"; cat "$tmp/resubmit.log"; }
cat "$tmp/resubmit.log"
picked=$(awk -F'\t' '$1 ~ /^[0-9]+$/ {print $3}' "$S/slurm/resubmit-1.manifest" 2>/dev/null | sort)
[ "$picked" = "$gone" ] && pass "resubmit picked exactly the 2 deleted cells" || fail "resubmit picked '$picked', not '$gone'"
array1=$(awk -F'\t' '$1 == 1 && $2 == "array" {print $3}' "$S/slurm/jobs.tsv")
agg1=$(awk -F'\t' '$1 == 1 && $2 == "aggregate" {print $3}' "$S/slurm/jobs.tsv")
slurm_wait "$array1" 600 --now || fail "resubmitted array still queued"
slurm_wait "$agg1" 300 --now || fail "second aggregation still queued"
echo "  resubmission done ($(el))"
if $PY "$LMDISP_TESTS/h5cmp.py" "$S/study.h5" "$tmp/ref/study.h5"; then
  pass "study.h5 after resubmission equals the plain run"
else fail "study.h5 after resubmission differs"; fi

echo "test_meas_slurm: $passes passed, $fails failed ($(el))"
[ $fails -eq 0 ]
