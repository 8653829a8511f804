#!/bin/bash
# test_plan.sh — `lmdisp plan` on the shipped experiments (exit 0, cell counts, valid JSON,
# writes nothing) and on a bad spec (exit 2, message names file:line:column).
set -u
LMDISP=${LMDISP:?path of the lmdisp binary}
SRC=${LMDISP_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
TESTS=${LMDISP_TESTS:-$SRC/tests}
TMP=${LMDISP_TMP:-/tmp}
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

work=$(mktemp -d "$TMP/plan.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

"$LMDISP" plan --help > /dev/null 2>&1
if [ $? -ne 0 ]; then
    echo "FAIL: '$LMDISP plan --help' failed: is cmd_plan in main.c's command table?"
    exit 1
fi

for pair in quickstart:24 mlp_sweep:30 checkpoint_tracking:5; do
    name=${pair%%:*}
    want=${pair##*:}
    spec=$SRC/experiments/$name.yaml
    out=$("$LMDISP" plan "$spec" 2> err.txt)
    rc=$?
    [ $rc -eq 0 ] || fail "$name: plan exit $rc: $(cat err.txt)"
    echo "$out" | head -3
    echo "$out" | tail -3
    got=$(echo "$out" | sed -n 's/.*= \([0-9]*\) cells.*/\1/p')
    [ "$got" = "$want" ] || fail "$name: table says '$got' cells, want $want"
    rows=$(echo "$out" | grep -cE "^ +[0-9]+  mlp[0-9]+-")
    [ "$rows" = "$want" ] || fail "$name: $rows table rows, want $want"

    "$LMDISP" plan "$spec" --json > plan.json 2> err.txt
    rc=$?
    [ $rc -eq 0 ] || fail "$name: plan --json exit $rc: $(cat err.txt)"
    python3 -c 'import json,sys; json.load(sys.stdin)' < plan.json || fail "$name: JSON does not parse"
    summary=$(python3 -c '
import json, sys
d = json.load(open("plan.json"))
cells = d["cells"]
ids = [c["id"] for c in cells]
ok = (len(cells) == d["totals"]["cells"] and len(set(ids)) == len(ids)
      and [c["index"] for c in cells] == list(range(len(cells)))
      and all(c["tracking_steps"][0] == 0 and c["tracking_steps"][-1] == c["steps"] for c in cells)
      and abs(sum(c["flops"] for c in cells) - d["totals"]["flops"]) <= 1e-6 * d["totals"]["flops"])
print(len(cells), "ok" if ok else "inconsistent")
')
    [ "$summary" = "$want ok" ] || fail "$name: JSON has '$summary', want '$want ok'"
    rm -f plan.json err.txt
done

# plan writes nothing (checked in its working directory)
left=$(ls -A)
[ -z "$left" ] || fail "plan left files behind: $left"

# a bad spec: exit 2 and file:line:column on stderr
"$LMDISP" plan "$TESTS/specs/bad_heads.yaml" > out.txt 2> err.txt
rc=$?
[ $rc -eq 2 ] || fail "bad spec: exit $rc, want 2"
grep -q "bad_heads.yaml:6:11: key 'model.n_head'" err.txt || fail "bad spec message: $(cat err.txt)"
[ -s out.txt ] && fail "bad spec printed to stdout: $(cat out.txt)"
cat err.txt

# usage errors: exit 2
"$LMDISP" plan > /dev/null 2>&1
[ $? -eq 2 ] || fail "plan without a spec should exit 2"
"$LMDISP" plan "$SRC/experiments/quickstart.yaml" --bogus > /dev/null 2>&1
[ $? -eq 2 ] || fail "plan with an unknown flag should exit 2"

echo "test_plan: $fails failures"
exit $((fails > 0))
