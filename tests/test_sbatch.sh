#!/usr/bin/env bash
# test_sbatch.sh — the array batch script (slurm/array.sbatch.in) at the shell level, with
# stand-ins for sbatch, scontrol, hostname and mpirun on PATH (no Slurm, no MPI):
#   - SLURM_ARRAY_TASK_ID unset: the attempt is still recorded (exit 2), not a `set -u` abort;
#   - attempts.tsv not writable: said in the log and exit 4, not ignored;
#   - a USR1 after mpirun ended (after the old `trap - USR1 TERM`): logged, the attempt still
#     recorded, instead of the signal killing the shell;
#   - a USR1 that arrives during the launch (after the GOT_SIGNAL check, before PID=$!)
#     still reaches mpirun, which checkpoints (exit 3) and the task asks for its requeue;
#   - rc 3 is recorded as interrupted-requeue;
#   - `lmdisp submit` whose sbatch fails leaves no manifest, so the same command can be retried.
# SBATCH_TEMPLATES=DIR renders DIR/array.sbatch.in instead (to check an older template).
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}" "${LMDISP_TESTS:?}" "${LMDISP_SRC:?}"
tmp="$LMDISP_TMP/test_sbatch"
rm -rf "$tmp" && mkdir -p "$tmp/bin" "$tmp/fake"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi
export FAKE="$tmp/fake"
cat > "$tmp/bin/sbatch" <<'EOF'
#!/bin/bash
[ "$1" = --version ] && { echo "slurm 0.0 (stand-in)"; exit 0; }
[ -n "${FAKE_SBATCH_FAIL:-}" ] && { echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2; exit 1; }
id=$(( $(cat "$FAKE/next_id" 2>/dev/null || echo 100) + 1 )); echo "$id" > "$FAKE/next_id"; echo "$id"
EOF
cat > "$tmp/bin/scontrol" <<'EOF'
#!/bin/bash
if [ "$1 $2" = "show config" ]; then echo "MaxArraySize            = 1001"; exit 0; fi
echo "$*" >> "$FAKE/scontrol.log"
EOF
# hostname: once mpirun has ended and FAKE/late_usr1 names a pid, sends that pid one USR1
cat > "$tmp/bin/hostname" <<'EOF'
#!/bin/bash
if [ -f "$FAKE/mpirun-done" ] && [ -s "$FAKE/late_usr1" ]; then
  kill -USR1 "$(cat "$FAKE/late_usr1")"; : > "$FAKE/late_usr1"; sleep 0.3
fi
echo testhost
EOF
# mpirun: exits 3 on USR1 (as `lmdisp run` does after its checkpoint), else after
# FAKE_SECONDS seconds with FAKE_RC; Python, so it can catch a USR1 it inherited as ignored
cat > "$tmp/bin/mpirun" <<'EOF'
#!/usr/bin/python3
import os, signal, sys, time
fake = os.environ["FAKE"]
def done(rc, what):
    with open(fake + "/mpirun.log", "a") as f: f.write(what + "\n")
    open(fake + "/mpirun-done", "w").close()
    sys.exit(rc)
signal.signal(signal.SIGUSR1, lambda s, f: done(3, "got USR1"))
end = time.time() + float(os.environ.get("FAKE_SECONDS", "3"))
while time.time() < end: time.sleep(0.05)
done(int(os.environ.get("FAKE_RC", "0")), "ran to the end")
EOF
chmod +x "$tmp/bin/"*
export PATH="$tmp/bin:$PATH"

S="$tmp/S"
"$LMDISP" submit "$LMDISP_TESTS/specs/run_tiny.yaml" --out "$S" --templates "${SBATCH_TEMPLATES:-$LMDISP_SRC/slurm}" \
  > "$tmp/submit.log" 2>&1 || { fail "submit"; cat "$tmp/submit.log"; }
script="$S/slurm/array-0-0.sbatch"
reset() { rm -f "$FAKE/mpirun-done" "$FAKE/mpirun.log" "$FAKE/scontrol.log" "$FAKE/late_usr1" "$S/slurm/attempts.tsv"; }
attempt() { tail -n +2 "$S/slurm/attempts.tsv" 2>/dev/null | cut -f4-7 | tr '\t' ' '; }

# 1. not an array task: recorded, exit 2
reset
env -u SLURM_ARRAY_TASK_ID SLURM_JOB_ID=7 bash "$script" > "$tmp/1.log" 2>&1; rc=$?
if [ "$rc" -eq 2 ] && grep -q $'\t2\tno-array-task\t' "$S/slurm/attempts.tsv" 2>/dev/null; then
  pass "SLURM_ARRAY_TASK_ID unset: attempt recorded ($(attempt)), exit 2"
else fail "unset task id: rc=$rc, attempts '$(attempt)'"; cat "$tmp/1.log"; fi

# 2. the attempts log cannot be written: said, exit 4
reset
mkdir -p "$S/slurm/attempts.tsv"
FAKE_SECONDS=0 SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_JOB_ID=101 SLURM_JOB_ID=201 bash "$script" > "$tmp/2.log" 2>&1; rc=$?
rmdir "$S/slurm/attempts.tsv"
if [ "$rc" -eq 4 ] && grep -q "cannot record the attempt (exit 0, done)" "$tmp/2.log"; then
  pass "attempts.tsv not writable: reported in the job log, exit 4"
else fail "record failure: rc=$rc"; cat "$tmp/2.log"; fi

# 3. a USR1 after mpirun ended: logged, the attempt recorded, normal exit
reset
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_JOB_ID=101 SLURM_JOB_ID=201 FAKE_SECONDS=1 bash "$script" > "$tmp/3.log" 2>&1 &
pid=$!
echo "$pid" > "$FAKE/late_usr1"
wait "$pid"; rc=$?
if [ "$rc" -eq 0 ] && grep -q $'\t0\tdone\t' "$S/slurm/attempts.tsv" 2>/dev/null && grep -q "after mpirun ended" "$tmp/3.log"; then
  pass "a late USR1 is logged and the attempt recorded ($(attempt)), exit 0"
else fail "late USR1: rc=$rc, attempts '$(attempt)'"; cat "$tmp/3.log"; fi

# 4. a USR1 during the launch (injected right after the GOT_SIGNAL check) reaches mpirun
reset
sed '/^if \[ -z "\$GOT_SIGNAL" \]; then$/a kill -USR1 $$ # test: a signal between the check and PID=$!' "$script" > "$tmp/window.sbatch"
grep -q "test: a signal between" "$tmp/window.sbatch" || fail "could not inject the signal into the script"
SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_JOB_ID=101 SLURM_JOB_ID=200 FAKE_SECONDS=8 bash "$tmp/window.sbatch" > "$tmp/4.log" 2>&1; rc=$?
if grep -q "got USR1" "$FAKE/mpirun.log" 2>/dev/null && grep -q "requeue 101_0" "$FAKE/scontrol.log" 2>/dev/null &&
   grep -q $'\t3\tinterrupted-requeue\t' "$S/slurm/attempts.tsv"; then
  pass "a USR1 during the launch reaches mpirun: exit 3, requeue, recorded ($(attempt))"
else fail "signal during the launch: rc=$rc, mpirun: '$(cat "$FAKE/mpirun.log" 2>/dev/null)', attempts '$(attempt)'"; cat "$tmp/4.log"; fi

# 5. a failed sbatch: nothing counts as submitted, the retry goes through
F="$tmp/F"
FAKE_SBATCH_FAIL=1 "$LMDISP" submit "$LMDISP_TESTS/specs/run_tiny.yaml" --out "$F" > "$tmp/5.log" 2>&1; rc=$?
if [ "$rc" -eq 1 ] && [ ! -e "$F/manifest" ] && grep -q "Invalid partition" "$tmp/5.log" && grep -q "nothing was submitted" "$tmp/5.log"; then
  pass "sbatch failed: exit 1, no manifest left ($(grep -o "nothing was submitted.*" "$tmp/5.log"))"
else fail "failed sbatch: rc=$rc, manifest $([ -e "$F/manifest" ] && echo left)"; cat "$tmp/5.log"; fi
"$LMDISP" submit "$LMDISP_TESTS/specs/run_tiny.yaml" --out "$F" > "$tmp/5b.log" 2>&1; rc=$?
if [ "$rc" -eq 0 ] && [ -f "$F/manifest" ] && grep -q "submitted array job" "$tmp/5b.log"; then
  pass "the retry of the same submit command is accepted and submits"
else fail "retry after a failed sbatch: rc=$rc"; cat "$tmp/5b.log"; fi

echo "test_sbatch: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
