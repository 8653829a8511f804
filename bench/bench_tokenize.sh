#!/usr/bin/env bash
# bench_tokenize.sh — MB/s of `lmdisp tokenize` (1 and 2 threads) against HF's JavaScript
# tokenizers (@huggingface/tokenizers, node) on the same text and the same tokenizer.json,
# side by side in one run. Load time is excluded on both sides (encode only).
#   bash bench/bench_tokenize.sh [BUILD_DIR] [MB]
# Text: Python's standard library sources as installed by Debian (distinct text, so a word
# cache does not flatter either side), cut to MB megabytes (default 8).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:-$here/build}" && pwd)"
mb="${2:-8}"
lm="$build/lmdisp"
nm="$build/tests/npm-tok/node_modules"
work="$build/bench-tokenize"
mkdir -p "$work"
if [ ! -d "$nm/@huggingface/tokenizers" ]; then
  echo "the npm packages are missing: run ctest -R test_tokenize first (it installs them)" >&2
  exit 1
fi
text="$work/text.txt"
set +o pipefail # head closes the pipe early
find /usr/lib/python3* -name '*.py' -size +8k 2>/dev/null | sort | xargs cat 2>/dev/null \
  | head -c "${mb}000000" | iconv -f utf-8 -t utf-8 -c >"$text"
set -o pipefail
bytes=$(stat -c %s "$text")
cat >"$work/bench.mjs" <<'JS'
import fs from "node:fs";
import path from "node:path";
const [nm, tj, file] = process.argv.slice(2);
const { Tokenizer } = await import(path.join(path.resolve(nm), "@huggingface/tokenizers/dist/tokenizers.mjs"));
const dir = path.dirname(tj);
const tok = new Tokenizer(JSON.parse(fs.readFileSync(tj, "utf8")),
                          JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
const text = fs.readFileSync(file, "utf8");
const t0 = process.hrtime.bigint();
const ids = tok.encode(text, { add_special_tokens: false }).ids;
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(`${ids.length} ${s}`);
JS
printf "%-9s %10s %12s %12s %12s %8s %8s\n" tokenizer MB "js MB/s" "C 1t MB/s" "C 2t MB/s" "1t/js" "2t/1t"
for m in gpt2 llama3 qwen2_5; do
  tj="$nm/@lenml/tokenizer-$m/models/tokenizer.json"
  read -r jn js < <(node "$work/bench.mjs" "$nm" "$tj" "$text")
  rate() { # threads -> MB/s from lmdisp's own summary line (encode + write, load excluded)
    "$lm" tokenize --tokenizer "$tj" --separator none --threads "$1" --out "$work/$m.bin" "$text" 2>&1 \
      | sed -n 's/.*(\([0-9.]*\) MB\/s.*/\1/p'
  }
  c1=$(rate 1); c2=$(rate 2)
  n=$(python3 -c "import struct,sys; print(struct.unpack('<3i', open(sys.argv[1],'rb').read(12))[2])" "$work/$m.bin")
  [ "$n" = "$jn" ] || echo "warning: $m: lmdisp wrote $n ids, JS $jn" >&2
  awk -v m=$m -v b=$bytes -v js=$js -v c1=$c1 -v c2=$c2 'BEGIN {
    j = b / 1e6 / js; printf "%-9s %10.1f %12.2f %12.2f %12.2f %7.1fx %7.2fx\n", m, b/1e6, j, c1, c2, c1/j, c2/c1 }'
done
echo "($(nproc) cores, shared: figures are of this run only; node $(node --version))"
