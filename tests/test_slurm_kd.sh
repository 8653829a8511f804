#!/usr/bin/env bash
# test_slurm_kd.sh (ctest label `slurm`) — distillation teachers that are cells of the study,
# on the real one-node Slurm of slurm/local-cluster: `lmdisp submit tests/specs/kd_cells.yaml`
# submits the teachers' array and the students' array with --dependency=afterok on it; checks
# that Slurm held the students until the teachers finished (each student's settings file, written
# when the cell starts, is newer than its teacher's final checkpoint), that all 8 cells are done,
# and that study.h5 equals a plain `mpirun lmdisp run` of the same spec.
# Needs root (it starts the Slurm daemons); skipped otherwise (exit 77). Run it under
# `flock /tmp/lmdisp-slurm.lock` on a shared machine.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}" "${LMDISP_TESTS:?}"
src="${LMDISP_SRC:-$LMDISP_TESTS/..}"
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root to start the local Slurm"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
tmp="$LMDISP_TMP/test_slurm_kd"
rm -rf "$tmp" && mkdir -p "$tmp"
spec="$src/tests/specs/kd_cells.yaml"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi
t0=$(date +%s)
el() { echo "$(( $(date +%s) - t0 ))s"; }

slurm_up "$src" || { echo "FAIL: slurm/local-cluster start"; exit 1; }

S="$tmp/S"
"$LMDISP" submit "$spec" --out "$S" > "$tmp/submit.log" 2>&1 || { fail "submit"; cat "$tmp/submit.log"; exit 1; }
cat "$tmp/submit.log"
mapfile -t arrays < <(awk -F'\t' '$2 == "array" {print $3}' "$S/slurm/jobs.tsv")
agg=$(awk -F'\t' '$2 == "aggregate" {print $3}' "$S/slurm/jobs.tsv")
if [ "${#arrays[@]}" -eq 2 ] && grep -q "^#SBATCH --dependency=afterok:${arrays[0]}$" "$S/slurm/array-0-1.sbatch"; then
  pass "two arrays: students ${arrays[1]} afterok on teachers ${arrays[0]} ($(el))"
else fail "arrays ${arrays[*]}"; fi
# while the teachers run, Slurm holds the students for their dependency
held=0
for _ in $(seq 1 60); do
  r=$(squeue -h -j "${arrays[1]}" -o '%T|%r' 2>/dev/null | head -1)
  case "$r" in PENDING\|Dependency) held=1; break ;; esac
  sleep 0.5
done
[ $held -eq 1 ] && pass "students' array pending with reason Dependency" || fail "students' array not held (squeue: '$r')"
for j in "${arrays[@]}"; do slurm_wait "$j" 900 || fail "array $j still queued after 900 s"; done
slurm_wait "$agg" 300 || fail "aggregation $agg still queued"
echo "  arrays and aggregation done ($(el))"
ok=1
for st in "$S"/cells/*/settings; do
  t=$(sed -n 's/^distill.teacher=cell://p' "$st"); [ -n "$t" ] || continue
  fin="$S/cells/$t/ckpt/step0000012.h5"
  [ -f "$fin" ] && [ "$st" -nt "$fin" ] || { ok=0; echo "  $(dirname "$st") started before $fin"; }
done
ndone=$(grep -l "status: done" "$S"/cells/*/state 2>/dev/null | wc -l)
[ $ok -eq 1 ] && [ "$ndone" -eq 8 ] && [ -f "$S/study.h5" ] &&
  pass "8 cells done; every student started after its teacher's final checkpoint" || fail "$ndone done, order ok=$ok"
mpirun --oversubscribe -np 2 "$LMDISP" run "$spec" --out "$tmp/ref" > "$tmp/ref.log" 2>&1 || fail "plain mpirun run"
if $PY "$LMDISP_TESTS/h5cmp.py" "$S/study.h5" "$tmp/ref/study.h5"; then
  pass "study.h5 from the chained Slurm arrays equals the plain mpirun run"
else fail "study.h5 differs from the plain run"; fi
echo "test_slurm_kd: $passes passed, $fails failed ($(el))"
[ $fails -eq 0 ]
