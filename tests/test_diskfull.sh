#!/usr/bin/env bash
# test_diskfull.sh — a checkpoint save on a full file system fails cleanly: the message names the
# file and ENOSPC, exit 1 (not a crash in MPI_Finalize/at exit: rc 139 before the fix), no
# temporary left, the earlier checkpoint intact; after space is freed, resuming from it reaches
# the same final checkpoint (bitwise, h5diff) as an uninterrupted run. Needs root to mount a
# 2.5 MB tmpfs; exit 77 (skipped) when mounting is impossible.
set -u
tmp="$LMDISP_TMP/test_diskfull"
rm -rf "$tmp" && mkdir -p "$tmp/full"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi
mnt="$tmp/full"
if ! mount -t tmpfs -o size=2500k tmpfs "$mnt" 2>/dev/null; then
  echo "skipped: cannot mount a tmpfs at $mnt (needs root)"; exit 77
fi
trap 'umount "$mnt" 2>/dev/null' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# 124672 parameters: a checkpoint (params + 2 moments) is 1.73 MB, so step 0 fits, step 2 does not
args=(--n-layer 2 --n-embd 64 --n-head 4 --mlp-dim 256 --batch 4 --seq 32 --steps 4 --seed 3
      --checkpoint-steps 2,4)
"$LMDISP" train "${args[@]}" --out "$tmp/ref" > "$tmp/ref.log" 2>&1 || fail "reference run failed"

for launcher in "" "mpirun -np 1"; do
  rm -rf "$mnt/r"
  timeout 60 $launcher "$LMDISP" train "${args[@]}" --out "$mnt/r" > "$tmp/fail.log" 2>&1
  rc=$?
  if [ $rc -eq 1 ] && grep -q "step0000002.h5.tmp.*No space left on device" "$tmp/fail.log" &&
     [ -f "$mnt/r/step0000000.h5" ] && [ -z "$(ls "$mnt/r" | grep tmp)" ]; then
    pass "${launcher:-serial}: full disk -> exit 1 with the file and ENOSPC named, no temporary left"
  else fail "${launcher:-serial}: full disk gave rc $rc (want 1), files: $(ls "$mnt/r" | tr '\n' ' ')"; cat "$tmp/fail.log"; fi
done
if h5diff -q "$tmp/ref/step0000000.h5" "$mnt/r/step0000000.h5" > /dev/null 2>&1; then
  pass "the checkpoint saved before the disk filled is intact"
else fail "step0000000.h5 on the full disk differs from the reference"; fi

# free space, resume from the newest checkpoint
mount -o remount,size=8m "$mnt" || fail "remount"
"$LMDISP" train "${args[@]}" --resume "$mnt/r/step0000000.h5" --out "$mnt/r" > "$tmp/resume.log" 2>&1 ||
  { fail "resume after freeing space failed"; cat "$tmp/resume.log"; }
if h5diff -q "$tmp/ref/step0000004.h5" "$mnt/r/step0000004.h5" > /dev/null 2>&1; then
  pass "resumed after freeing space: final checkpoint bitwise equal to the uninterrupted run"
else fail "resumed final checkpoint differs from the uninterrupted run"; fi
echo "test_diskfull: $fails failure(s)"
[ $fails -eq 0 ]
