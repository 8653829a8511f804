#!/usr/bin/env bash
# test_submit.sh — `lmdisp submit` / `resubmit` / `run --array-task` / status' Slurm view,
# without a Slurm: stand-in sbatch, scontrol, squeue and sacct on PATH record what they are
# asked and answer from files. The rendered batch scripts are then run by hand, as Slurm would
# run them, with SLURM_ARRAY_TASK_ID set. (tests/test_slurm.sh does the same against a real
# Slurm.)
#   - dry run: cell table and scripts printed, nothing written;
#   - the manifest holds every cell once; --cells-per-task groups them;
#   - arrays split at MaxArraySize with the right task offsets and one aggregation dependency;
#   - nothing in a spec reaches a shell: x$(touch FILE) as job name and a newline in a value
#     are refused with file:line:column, FILE never appears; rendered scripts pass bash -n;
#   - a task interrupted by USR1 checkpoints, asks for its requeue, records the attempt, and the
#     requeued run resumes to the same numbers as a plain mpirun run; the requeue cap holds;
#   - a changed spec.yaml, a bad task index: the task refuses (exit 2);
#   - resubmit picks exactly the missing cell, refuses while tasks are live, status shows
#     Slurm's states and the cells whose task died.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}" "${LMDISP_TESTS:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
tmp="$LMDISP_TMP/test_submit"
rm -rf "$tmp" && mkdir -p "$tmp/bin" "$tmp/fake"
spec="$LMDISP_TESTS/specs/run_tiny.yaml"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

# ---- stand-ins for the Slurm commands ----
export FAKE="$tmp/fake"
cat > "$tmp/bin/sbatch" <<'EOF'
#!/bin/bash
[ "$1" = --version ] && { echo "slurm 0.0 (stand-in)"; exit 0; }
id=$(( $(cat "$FAKE/next_id" 2>/dev/null || echo 100) + 1 ))
echo "$id" > "$FAKE/next_id"
echo "$id ${*: -1}" >> "$FAKE/sbatch.log"
echo "$id"
EOF
cat > "$tmp/bin/scontrol" <<'EOF'
#!/bin/bash
if [ "$1 $2" = "show config" ]; then echo "MaxArraySize            = ${FAKE_MAX_ARRAY:-1001}"; exit 0; fi
echo "$*" >> "$FAKE/scontrol.log"
EOF
cat > "$tmp/bin/squeue" <<'EOF'
#!/bin/bash
echo "$*" >> "$FAKE/squeue.log"
cat "$FAKE/squeue.out" 2>/dev/null
exit 0
EOF
cat > "$tmp/bin/sacct" <<'EOF'
#!/bin/bash
echo "$*" >> "$FAKE/sacct.log"
[ -f "$FAKE/sacct.out" ] || exit 1
cat "$FAKE/sacct.out"
EOF
chmod +x "$tmp/bin/"*
export PATH="$tmp/bin:$PATH"

# ---- 1. dry run: table and scripts, nothing written ----
out="$tmp/dry"
"$LMDISP" submit "$spec" --out "$out" --dry-run --throttle 2 > "$tmp/dry.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ ! -e "$out" ] && [ ! -s "$FAKE/sbatch.log" ] && grep -q -- "--array=0-3%2" "$tmp/dry.log" &&
   [ "$(grep -c 'mlp[0-9]*-' "$tmp/dry.log")" -ge 4 ] && grep -q "dry run: nothing written" "$tmp/dry.log"; then
  pass "dry run prints 4 tasks and the scripts (--array=0-3%2), writes and submits nothing"
else fail "dry run (rc $rc)"; cat "$tmp/dry.log"; fi

# ---- 2. MaxArraySize split and --cells-per-task ----
FAKE_MAX_ARRAY=3 "$LMDISP" submit "$LMDISP_TESTS/specs/quickstart_small.yaml" --out "$tmp/split" --dry-run > "$tmp/split.log" 2>&1
arrays=$(grep -c "^#SBATCH --array=" "$tmp/split.log")
offsets=$(grep "^TASK_OFFSET=" "$tmp/split.log" | tr '\n' ' ')
dep=$(grep "^#SBATCH --dependency=" "$tmp/split.log")
if [ "$arrays" -eq 3 ] && [ "$offsets" = "TASK_OFFSET=0 TASK_OFFSET=3 TASK_OFFSET=6 " ] &&
   grep -q -- "--array=0-1$" "$tmp/split.log" && [ "$(echo "$dep" | tr ':' '\n' | grep -c 'array job')" -eq 3 ]; then
  pass "8 tasks with MaxArraySize 3: 3 arrays (offsets 0, 3, 6), aggregation after all three"
else fail "split: $arrays arrays, offsets '$offsets', '$dep'"; fi
"$LMDISP" submit "$LMDISP_TESTS/specs/quickstart_small.yaml" --out "$tmp/cpt" --cells-per-task 3 --dry-run > "$tmp/cpt.log" 2>&1
tasks=$(awk '$2 ~ /^mlp/ {print $1}' "$tmp/cpt.log" | sort -u | tr '\n' ' ')
ncells=$(awk '$2 ~ /^mlp/ {print $2}' "$tmp/cpt.log" | sort -u | wc -l)
if [ "$tasks" = "0 1 2 " ] && [ "$ncells" -eq 8 ]; then pass "--cells-per-task 3: 8 cells in tasks 0..2, each once"
else fail "--cells-per-task 3: tasks '$tasks', $ncells distinct cells"; fi

# ---- 3. nothing in a spec reaches a shell ----
probe="$tmp/pwned"
bad="$tmp/inject.yaml"
sed '/^grid:/,$d' "$spec" > "$bad"
cat >> "$bad" <<EOF
grid:
  mlp_dim: [16, 32]
slurm:
  job_name: x\$(touch $probe)
  partition: "debug\n#SBATCH --wrap=touch $probe"
  modules: ["gcc;touch $probe"]
  extra_sbatch: ["--comment=\`touch $probe\`"]
EOF
"$LMDISP" submit "$bad" --out "$tmp/inj" > "$tmp/inj.log" 2>&1
rc=$?
nerr=$(grep -c "inject.yaml:[0-9]*:[0-9]*: key 'slurm\." "$tmp/inj.log")
if [ $rc -eq 2 ] && [ "$nerr" -eq 4 ] && [ ! -e "$probe" ] && [ ! -e "$tmp/inj" ]; then
  pass "job_name x\$(touch ..), a newline, ';' and a backquote: 4 errors with line:column, exit 2, nothing run or written"
else fail "injection: rc $rc, $nerr located errors, probe $( [ -e "$probe" ] && echo CREATED || echo absent)"; cat "$tmp/inj.log"; fi
"$LMDISP" plan "$bad" > /dev/null 2>&1 && fail "plan accepted the bad slurm: section" || pass "plan rejects the bad slurm: section too"
# sbatch takes unambiguous prefixes of long options: each of these would override lmdisp's own
abbr="$tmp/abbrev.yaml"
sed '/^grid:/,$d' "$spec" > "$abbr"
cat >> "$abbr" <<EOF
grid:
  mlp_dim: [16, 32]
slurm:
  extra_sbatch: ["--outp=/tmp/x", "--sig=B:USR2@1", "--no-req", "--depend=afterok:1", "--arr=0-9", "--exclusive"]
EOF
"$LMDISP" submit "$abbr" --out "$tmp/abbr" > "$tmp/abbr.log" 2>&1
rc=$?
nerr=$(grep -c "abbrev.yaml:[0-9]*:[0-9]*: key 'slurm.extra_sbatch'.*which lmdisp submit sets itself" "$tmp/abbr.log")
if [ $rc -eq 2 ] && [ "$nerr" -eq 5 ] && [ ! -e "$tmp/abbr" ] && ! grep -q -- "--exclusive" "$tmp/abbr.log"; then
  pass "extra_sbatch --outp= --sig= --no-req --depend= --arr=: 5 located errors, exit 2; --exclusive accepted"
else fail "extra_sbatch abbreviations: rc $rc, $nerr located errors"; cat "$tmp/abbr.log"; fi
ok="$tmp/okvals.yaml"
sed '/^grid:/,$d' "$spec" > "$ok"
cat >> "$ok" <<EOF
grid:
  mlp_dim: [16, 32]
slurm:
  job_name: lmd.test-1
  partition: debug
  account: proj_x
  time: "0-01:30:00"
  mem: 2G
  modules: [openmpi/4.1, hdf5/1.14-mpi]
  extra_sbatch: ["--exclusive", "--mail-type=END"]
  max_requeues: 2
EOF
"$LMDISP" submit "$ok" --out "$tmp/o'k dir" --dry-run > "$tmp/q.log" 2>&1 && fail "a study directory with a quote and a space was accepted" || pass "study directory with a quote and a space refused"
if "$LMDISP" submit "$ok" --out "$tmp/okdir" --dry-run > "$tmp/ok.log" 2>&1; then
  awk '/^==== .*array-0-0.sbatch/{f=1;next} /^==== /{f=0} f' "$tmp/ok.log" > "$tmp/ok_array.sh"
  if bash -n "$tmp/ok_array.sh" && grep -q "^#SBATCH --account=proj_x$" "$tmp/ok_array.sh" &&
     grep -q "^module load openmpi/4.1$" "$tmp/ok_array.sh" && grep -q "^#SBATCH --exclusive$" "$tmp/ok_array.sh" &&
     grep -q "^MAX_REQUEUE=2$" "$tmp/ok_array.sh"; then
    pass "resources, modules and extra lines rendered; script passes bash -n"
  else fail "rendered resources"; cat "$tmp/ok_array.sh"; fi
else fail "valid slurm: section refused"; cat "$tmp/ok.log"; fi

# ---- 4. submit for real (stand-in sbatch), then run tasks as Slurm would ----
S="$tmp/S"
"$LMDISP" submit "$spec" --out "$S" > "$tmp/submit.log" 2>&1 || { fail "submit"; cat "$tmp/submit.log"; }
if [ -f "$S/manifest" ] && [ "$(grep -c $'^[0-9]\t' "$S/manifest")" -eq 4 ] &&
   [ "$(wc -l < "$FAKE/sbatch.log")" -eq 2 ] && grep -q "^#SBATCH --dependency=afterany:101$" "$S/slurm/aggregate-0.sbatch" &&
   [ "$(grep -c . "$S/slurm/jobs.tsv")" -eq 3 ]; then
  pass "submit: manifest of 4 cells, array 101 + aggregation 102 (afterany:101), jobs.tsv"
else fail "submit outputs"; cat "$tmp/submit.log" "$FAKE/sbatch.log"; fi
"$LMDISP" submit "$spec" --out "$S" > "$tmp/again.log" 2>&1
[ $? -eq 2 ] && grep -q "resubmit" "$tmp/again.log" && pass "second submit to the same directory refused, pointing to resubmit" || fail "second submit"

# reference: the same spec under a plain mpirun
mpirun -np 1 "$LMDISP" run "$spec" --out "$tmp/ref" > "$tmp/ref.log" 2>&1 || fail "reference run"

task() { # task I [env...]: runs the rendered array script as Slurm would for array task I
  local i=$1; shift
  env SLURM_ARRAY_TASK_ID="$i" SLURM_ARRAY_JOB_ID=101 SLURM_JOB_ID=$((200 + i)) "$@" \
    bash "$S/slurm/array-0-0.sbatch" >> "$tmp/task$i.log" 2>&1
}
task_bg() { # the same in the background; $! is then the batch shell itself (env execs bash)
  local i=$1; shift
  env SLURM_ARRAY_TASK_ID="$i" SLURM_ARRAY_JOB_ID=101 SLURM_JOB_ID=$((200 + i)) "$@" \
    bash "$S/slurm/array-0-0.sbatch" >> "$tmp/task$i.log" 2>&1 &
}
task 1; rc=$?
cell1=$(awk -F'\t' '$1 == 1 {print $3}' "$S/manifest")
if [ $rc -eq 0 ] && grep -q "status: done" "$S/cells/$cell1/state" && grep -q $'\t1\t0\t0\tdone\t' "$S/slurm/attempts.tsv"; then
  pass "task 1 ran its cell ($cell1) to done and recorded the attempt"
else fail "task 1 (rc $rc)"; cat "$tmp/task1.log"; fi

# interrupt task 0 once its step-0 checkpoint exists: checkpoint, exit 3, requeue requested
cell0=$(awk -F'\t' '$1 == 0 {print $3}' "$S/manifest")
task_bg 0; tpid=$!
for _ in $(seq 1 300); do ls "$S/cells/$cell0/ckpt/"*.h5 > /dev/null 2>&1 && break; sleep 0.05; done
sleep 0.2
kill -USR1 $tpid
wait $tpid; rc=$?
st=$(grep -o "status: [a-z]*" "$S/cells/$cell0/state")
if [ $rc -eq 0 ] && grep -q "requeue 101_0" "$FAKE/scontrol.log" && grep -q $'\t0\t0\t3\tinterrupted-requeue\t' "$S/slurm/attempts.tsv" &&
   [ "$st" = "status: interrupted" ]; then
  pass "USR1 to task 0: checkpoint ($st), exit 3, scontrol requeue 101_0, attempt recorded"
else fail "interrupt: rc $rc, state '$st'"; cat "$tmp/task0.log"; cat "$FAKE/scontrol.log" 2>/dev/null; fi
task 0 SLURM_RESTART_COUNT=1; rc=$?
if [ $rc -eq 0 ] && grep -q "status: done" "$S/cells/$cell0/state" && grep -q $'\t0\t1\t0\tdone\t' "$S/slurm/attempts.tsv"; then
  pass "requeued task 0 (restart count 1) resumed and finished"
else fail "requeued task 0 (rc $rc)"; tail -5 "$tmp/task0.log"; fi
n=0 bad=0
for f in "$S/cells/$cell0"/track/*.h5; do
  n=$((n + 1)); h5diff -q "$f" "$tmp/ref/cells/$cell0/track/$(basename "$f")" > /dev/null 2>&1 || bad=$((bad + 1))
done
[ $n -gt 0 ] && [ $bad -eq 0 ] && pass "interrupted + requeued cell equals the plain run on all $n tracked checkpoints" ||
  fail "interrupted cell differs from the plain run ($bad of $n)"

# requeue cap: run_tiny has the default cap of 3 requeues; this is the fourth interruption
task_bg 2 SLURM_RESTART_COUNT=3; tpid=$!
cell2=$(awk -F'\t' '$1 == 2 {print $3}' "$S/manifest")
for _ in $(seq 1 300); do ls "$S/cells/$cell2/ckpt/"*.h5 > /dev/null 2>&1 && break; sleep 0.05; done
sleep 0.2
kill -USR1 $tpid
wait $tpid; rc=$?
if [ $rc -eq 3 ] && ! grep -q "requeue 101_2" "$FAKE/scontrol.log" && grep -q $'\t2\t3\t3\tinterrupted-cap-reached\t' "$S/slurm/attempts.tsv"; then
  pass "at the requeue cap (3) the task is not requeued: exit 3, 'interrupted-cap-reached' recorded"
else fail "requeue cap: rc $rc"; tail -5 "$tmp/task2.log"; fi

# the task refuses a changed spec and an out-of-range index
cp "$S/spec.yaml" "$tmp/spec.save"
echo "# edited after submission" >> "$S/spec.yaml"
mpirun -np 1 "$LMDISP" run --out "$S" --array-task 3 > "$tmp/changed.log" 2>&1; rc=$?
cp "$tmp/spec.save" "$S/spec.yaml"
[ $rc -eq 2 ] && grep -q "spec changed after submission" "$tmp/changed.log" && pass "task refuses a spec.yaml edited after submission (exit 2)" ||
  { fail "changed spec (rc $rc)"; cat "$tmp/changed.log"; }
mpirun -np 1 "$LMDISP" run --out "$S" --array-task 9 > "$tmp/range.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "out of range" "$tmp/range.log" && pass "task index 9 of 4 refused (exit 2)" || { fail "task range (rc $rc)"; cat "$tmp/range.log"; }

# ---- 5. status with Slurm's view; resubmit ----
printf '101_2|TIMEOUT|None\n101_3|OUT_OF_MEMORY|None\n' > "$FAKE/sacct.out"
"$LMDISP" status "$S" > "$tmp/status.log" 2>&1
"$LMDISP" status "$S" --json > "$tmp/status.json" 2>&1
if grep -q "slurm (squeue+sacct)" "$tmp/status.log" && grep -q "2 cell(s) not finished whose Slurm task ended" "$tmp/status.log" &&
   grep -q "TIMEOUT" "$tmp/status.log" && $PY -c "
import json,sys; d=json.load(open('$tmp/status.json'))
s={c['id']: c['slurm_state'] for c in d['cells']}
sys.exit(0 if s['$cell2']=='TIMEOUT' and d['died_in_slurm']==2 else 1)"; then
  pass "status shows Slurm's states (sacct): the TIMEOUT and OUT_OF_MEMORY tasks' cells as died"
else fail "status Slurm view"; cat "$tmp/status.log"; fi
printf '101_3|RUNNING|None\n' > "$FAKE/squeue.out"
"$LMDISP" resubmit "$S" > "$tmp/live.log" 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "still queued or running" "$tmp/live.log" && pass "resubmit refuses while a task is RUNNING" || { fail "resubmit with live task (rc $rc)"; cat "$tmp/live.log"; }
rm -f "$FAKE/squeue.out"
starts_before=$(cat "$S"/cells/*/log | grep -cE "^(starting|resuming)")
"$LMDISP" resubmit "$S" --only failed > "$tmp/none.log" 2>&1
grep -q "nothing to resubmit" "$tmp/none.log" && pass "--only failed: nothing to resubmit" || { fail "--only failed"; cat "$tmp/none.log"; }
"$LMDISP" resubmit "$S" > "$tmp/resub.log" 2>&1; rc=$?
rm1="$S/slurm/resubmit-1.manifest"
picked=$(awk -F'\t' '$1 ~ /^[0-9]+$/ {print $3}' "$rm1" 2>/dev/null | sort | tr '\n' ' ')
want=$(printf '%s\n' "$cell2" "$(awk -F'\t' '$1 == 3 {print $3}' "$S/manifest")" | sort | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$picked" = "$want" ] && grep -q "^#SBATCH --dependency=afterany:103$" "$S/slurm/aggregate-1.sbatch" &&
   grep -q "resubmit-1.manifest" "$S/slurm/array-1-0.sbatch"; then
  pass "resubmit: round 1 with exactly the 2 unfinished cells, its own manifest, aggregation after it"
else fail "resubmit (rc $rc): picked '$picked', want '$want'"; cat "$tmp/resub.log"; fi
for i in 0 1; do
  env SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_JOB_ID=103 SLURM_JOB_ID=$((300 + i)) bash "$S/slurm/array-1-0.sbatch" >> "$tmp/r$i.log" 2>&1 || fail "resubmitted task $i"
done
starts_after=$(cat "$S"/cells/*/log | grep -cE "^(starting|resuming)")
ndone=$(grep -l "status: done" "$S"/cells/*/state | wc -l)
[ "$ndone" -eq 4 ] && [ $((starts_after - starts_before)) -eq 2 ] && pass "after the resubmitted tasks: 4 cells done, only the 2 resubmitted ones started or resumed" ||
  fail "after resubmission: $ndone done, $((starts_after - starts_before)) new starts"
mpirun -np 1 "$LMDISP" aggregate "$S" > "$tmp/agg.log" 2>&1 || fail "aggregate"
if $PY "$LMDISP_TESTS/h5cmp.py" "$S/study.h5" "$tmp/ref/study.h5"; then
  pass "study.h5 after interrupt, requeue, cap and resubmit equals the plain mpirun run"
else fail "study.h5 differs from the plain run"; fi

echo "test_submit: $passes passed, $fails failed"
[ $fails -eq 0 ]
