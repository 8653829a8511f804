#!/usr/bin/env bash
# test_corrupt.sh — corrupted checkpoints: every command exits with an error (or 0), never a
# crash (signal) or a hang. 1) The two reported cases, on a checkpoint whose `format` is a
# variable-length string (what h5py and lmdisp before issue 14 wrote): a flipped byte in the
# global heap's collection size made `measure` hang, one in the heap object made every reader
# segfault in H5HG_read. 2) A sweep flipping each byte (xor 0xff) of the root object header of a
# checkpoint as lmdisp writes it now (fixed-length `format`). Timeout 20 s per command.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}"
tmp="$LMDISP_TMP/test_corrupt"
rm -rf "$tmp" && mkdir -p "$tmp"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi
"$LMDISP" train --n-layer 1 --n-embd 8 --n-head 1 --mlp-dim 8 --batch 1 --seq 8 --steps 1 \
  --out "$tmp/ck" > "$tmp/train.log" 2>&1 || { fail "training the fixture"; cat "$tmp/train.log"; exit 1; }
ck="$tmp/ck/step0000001.h5"
# tests/ref/legacy_vlen_ckpt.h5: written by lmdisp before issue 14 (vlen `format`, heap at 2048)
legacy="$LMDISP_TESTS/ref/legacy_vlen_ckpt.h5"
python3 - "$legacy" "$tmp" <<'PYEOF' || fail "making the corrupted fixtures"
import sys
legacy, tmp = sys.argv[1], sys.argv[2]
d = open(legacy, "rb").read()
g = d.find(b"GCOL")
assert g > 0 and d.find(b"lmdisp-checkpoint") > g, "no global heap collection in the fixture"
# +8: the collection's size (HDF5 looped forever); +27: the string object's size (segfault)
for name, off in (("heapsize", g + 8), ("heapobj", g + 27)):
    e = bytearray(d); e[off] ^= 0xFF
    open(tmp + "/" + name + ".h5", "wb").write(e)
PYEOF
"$LMDISP" measure "$legacy" --sequences 2 --seq-len 8 > /dev/null 2>&1 &&
  pass "an intact vlen-format checkpoint still loads" || fail "intact vlen-format checkpoint refused"
python3 -c "import struct,sys; h=[20240520,1,64]+[0]*253; sys.stdout.buffer.write(struct.pack('<256i',*h)+struct.pack('<64H',*range(64)))" > "$tmp/tok.bin"
for case in heapsize heapobj; do
  f="$tmp/$case.h5"
  for cmd in "measure $f --sequences 2 --seq-len 8" \
             "train --resume $f --steps 2 --out $tmp/res_$case" \
             "step --checkpoint $f --batch 1 --seq 8 --out $tmp/step_$case.h5 --tokens $tmp/tok.bin"; do
    timeout 20 $LMDISP $cmd > "$tmp/out.log" 2>&1
    rc=$?
    if [ $rc -ge 1 ] && [ $rc -le 3 ] && grep -q "$case.h5" "$tmp/out.log"; then
      pass "$case: lmdisp ${cmd%% *} exits $rc naming the file: $(grep -o 'is corrupted[^;]*' "$tmp/out.log" | head -1)"
    else fail "$case: lmdisp ${cmd%% *} rc $rc (124 = hang, >128 = signal)"; cat "$tmp/out.log"; fi
  done
done

# sweep: each byte of the root object header (config, step, tokens, format attributes)
python3 - "$ck" "$tmp" "$LMDISP" <<'PYEOF' || fail "byte sweep"
import sys, subprocess
ck, tmp, lm = sys.argv[1:4]
d = open(ck, "rb").read()
a = d.find(b"format\0")
assert a > 0, "no format attribute found"
lo, hi = max(0, a - 120), a + 60
bad = []
f = tmp + "/sweep.h5"
for off in range(lo, hi):
    e = bytearray(d); e[off] ^= 0xFF
    open(f, "wb").write(e)
    try:
        rc = subprocess.run([lm, "measure", f, "--sequences", "1", "--seq-len", "4"],
                            capture_output=True, timeout=20).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    if rc not in (0, 1, 2):
        bad.append((off, rc))
print(f"sweep: bytes {lo}..{hi - 1} flipped one at a time: {len(bad)} crash(es)/hang(s) {bad[:10]}")
sys.exit(1 if bad else 0)
PYEOF
echo "test_corrupt: $fails failure(s)"
[ $fails -eq 0 ]
