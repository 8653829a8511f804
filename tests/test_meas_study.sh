#!/bin/bash
# test_meas_study.sh — measurement studies (issue 18; docs/SPEC.md and docs/STUDY.md
# "Measurement studies") on experiments/meas_tiny_hf.yaml (the random HF models of tests/hf,
# the OLMo-2-tiny revision series of the fake cache, two token files of tests/meas):
#   1. plan lists the 24 cells most expensive first with n_params from the weights;
#   2. run on 1 rank: study.h5 of the DESIGN 4.4 shape (K = 1, L1 = deepest model + 1, shallow
#      rows NaN-padded), /cells facts; every cell's numbers equal `lmdisp measure` of that model
#      on that token file (same --batch), exactly (both print 17 significant digits);
#   3. 2 ranks (2 groups of 1) give the same study.h5 (h5cmp.py: times, hosts, rank count aside);
#   4. ranks_per_model 2 (1 group of 2, passes dealt over the ranks) gives bitwise the study.h5
#      of the same spec on one rank;
#   5. an interrupted run (test hook: stop after N cells per group) exits 3 and keeps the
#      measured cells; the rerun measures only the rest and ends with the same study.h5; a third
#      run measures nothing;
#   6. report (text, --csv, one table), the summary's trend and the pairs table;
#   7. bad specs refused with file:line:column, exit 2, before anything runs (no --out made).
set -u
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
PY=/usr/bin/python3
SRC=$(cd "$LMDISP_TESTS/.." && pwd)
SPEC=$SRC/experiments/meas_tiny_hf.yaml
W=$LMDISP_TMP/test_meas_study
rm -rf "$W" && mkdir -p "$W"
. "$LMDISP_TESTS/lib.sh"  # pass, fail, mpi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# 1. plan
if "$LMDISP" plan "$SPEC" --json > "$W/plan.json" 2> "$W/plan.err"; then
    $PY - "$W/plan.json" "$LMDISP_TESTS/hf/cases.tsv" <<'PYEOF' && pass "plan" || fail "plan"
import json, sys
p = json.load(open(sys.argv[1]))
cells = p["cells"]
assert len(cells) == 24, len(cells)
cost = [c["cost"] for c in cells]
assert cost == sorted(cost, reverse=True), "not most expensive first"
ref = {l.split("\t")[0]: int(l.split("\t")[4]) for l in open(sys.argv[2]) if l.strip()}
for c in cells:
    if c["model"] in ref:
        assert c["n_params"] == ref[c["model"]], (c["model"], c["n_params"], ref[c["model"]])
    assert c["cost"] == c["n_params"] * 4 * 16, c
revs = [c["revision"] for c in cells if c["family"] == "olmo2-tiny" and c["dataset"] == "uniform"]
want = [l.strip() for l in open(sys.argv[2].replace("cases.tsv", "cache/order.txt"))
        if l.strip() and not l.startswith("#")]
assert revs == want, (revs, want)
print("plan: 24 cells, most expensive first; n_params = HF num_parameters(); series order", revs)
PYEOF
else
    fail "plan: $(cat "$W/plan.err")"
fi

# 2. one rank
"$LMDISP" run "$SPEC" --out "$W/r1" > "$W/r1.log" 2>&1 || fail "run 1 rank: $(tail -5 "$W/r1.log")"
$PY - "$W/r1/study.h5" "$SRC" "$LMDISP" <<'PYEOF' && pass "study.h5 layout; each cell = lmdisp measure" || fail "study.h5 / measure equality"
import sys, json, subprocess, h5py, numpy as np, os
f = h5py.File(sys.argv[1], "r")
src, lmdisp = sys.argv[2], sys.argv[3]
s = lambda k: [x.decode() for x in f[k][...]]
C = len(f["/cells/id"])
assert C == 24
lm = f["/condensation/layer_mean_cossim"][...]
assert lm.shape == (24, 1, 4), lm.shape
assert f["/condensation/cossim_hist"].shape == (24, 1, 4, 128)
assert f["/tracking/step"][...].tolist() == [-1]
assert set(s("/cells/status")) == {"done"}
nl = f["/cells/n_layer"][...]
for i in range(C):  # NaN exactly past each model's n_layer + 1
    assert np.isfinite(lm[i, 0, :nl[i] + 1]).all() and np.isnan(lm[i, 0, nl[i] + 1:]).all()
assert f.attrs["kind"] == "measure"
for a in ("format", "format_version", "study_name", "spec_yaml", "spec_sha256", "lmdisp_version",
          "git_commit", "created", "start_time", "end_time", "mpi_version", "hdf5_version",
          "openblas_version", "hosts", "n_ranks", "n_cells", "n_sequences", "seq_len"):
    assert a in f.attrs, f"root attribute {a} missing"  # docs/STUDY.md: every study's provenance
assert f.attrs["start_time"] <= f.attrs["end_time"] == f.attrs["created"]
ds = {"uniform": "tests/meas/uniform.bin", "phrases": "tests/meas/phrases.bin"}
env = dict(os.environ, HF_HUB_CACHE=src + "/tests/hf/cache")
worst, n = 0.0, 0
for i in range(C):
    spec = s("/cells/model_spec")[i]
    out = subprocess.run([lmdisp, "measure", spec, "--tokens", src + "/" + ds[s("/cells/dataset")[i]],
                          "--sequences", "4", "--seq-len", "16", "--batch", "2", "--json"],
                         env=env, capture_output=True, text=True, check=True).stdout
    m = json.loads(out)
    L1 = nl[i] + 1
    assert m["n_params"] == f["/cells/n_params"][i] and m["model_type"] == s("/cells/model_type")[i]
    for key, ds_ in (("layer_mean_cossim", "layer_mean_cossim"), ("offdiag_mean_cossim", "offdiag_mean_cossim"),
                     ("singular_value_entropy", "sv_entropy"), ("mev", "mev")):
        a = np.array(m[key], dtype=float); b = f["/condensation/" + ds_][i, 0, :L1]
        worst = max(worst, float(np.max(np.abs(a - b))))
        assert np.array_equal(a, b), (s("/cells/id")[i], key, a, b)
    assert np.array_equal(np.array(m["cossim_hist"], dtype=np.float32), f["/condensation/cossim_hist"][i, 0, :L1])
    assert m["spearman"] == f["/condensation/spearman"][i, 0] and m["kendall"] == f["/condensation/kendall"][i, 0]
    n += 1
print(f"{n} cells equal to lmdisp measure --batch 2: worst |diff| {worst:.1e} (required: 0)")
PYEOF

# 3. two ranks, two groups of one
mpi 2 "$LMDISP" run "$SPEC" --out "$W/r2" > "$W/r2.log" 2>&1 || fail "run 2 ranks: $(tail -5 "$W/r2.log")"
if $PY "$LMDISP_TESTS/h5cmp.py" "$W/r1/study.h5" "$W/r2/study.h5" > "$W/cmp12.txt"; then
    pass "1 vs 2 ranks: identical study.h5"
else
    fail "1 vs 2 ranks differ: $(cat "$W/cmp12.txt")"
fi

# 4. ranks_per_model 2: one group of two ranks. The variant spec lives in $W, so its relative
# paths are made absolute: the cell ids and data sources (resolved paths) differ, nothing else.
sed "s#\.\./tests#$SRC/tests#g" "$SPEC" > "$W/abs.yaml"
sed "s#^measure:#resources: {ranks_per_model: 2}\nmeasure:#" "$W/abs.yaml" > "$W/rpm.yaml"
"$LMDISP" run "$W/abs.yaml" --out "$W/rpm1" > "$W/rpm1.log" 2>&1 || fail "absolute-path spec on 1 rank: $(tail -5 "$W/rpm1.log")"
mpi 2 "$LMDISP" run "$W/rpm.yaml" --out "$W/rpm2" > "$W/rpm2.log" 2>&1 \
    || fail "ranks_per_model 2: $(tail -5 "$W/rpm2.log")"
grep -q "1 group(s) of 2" "$W/rpm2.log" || fail "ranks_per_model 2: not one group of 2: $(head -2 "$W/rpm2.log")"
# a stop inside a cell of a group of 2 (both ranks agree before each pass), then the resume
LMDISP_TEST_STOP_AFTER_PASSES=5 mpi 2 -x LMDISP_TEST_STOP_AFTER_PASSES "$LMDISP" run "$W/rpm.yaml" --out "$W/rpm3" > "$W/rpm3.log" 2>&1
rc=$?
n3=$(ls "$W"/rpm3/cells/*/result.json 2>/dev/null | wc -l)
mpi 2 "$LMDISP" run "$W/rpm.yaml" --out "$W/rpm3" > "$W/rpm3b.log" 2>&1 || fail "rpm resume: $(tail -3 "$W/rpm3b.log")"
[ $rc = 3 ] && [ "$n3" = 2 ] && grep -q "abandoned" "$W/rpm3.log" && $PY "$LMDISP_TESTS/h5cmp.py" "$W/rpm2/study.h5" "$W/rpm3/study.h5" > /dev/null \
    && pass "ranks_per_model 2: stopped inside a cell, resumed, same study.h5" \
    || fail "ranks_per_model 2 stop: exit $rc, $n3 results, $(tail -2 "$W/rpm3.log")"
$PY - "$W/rpm1/study.h5" "$W/rpm2/study.h5" "$LMDISP_TESTS" <<'PYEOF' && pass "ranks_per_model 2 (2 ranks) = 1 rank, bitwise" || fail "ranks_per_model 2 differs from 1 rank"
import sys
sys.path.insert(0, sys.argv[3])
import h5cmp
bad = [b for b in h5cmp.compare(sys.argv[1], sys.argv[2]) if "spec_yaml" not in b and "spec_sha256" not in b]
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF
$PY - "$W/r1/study.h5" "$W/rpm2/study.h5" "$LMDISP_TESTS" <<'PYEOF' && pass "ranks_per_model 2 = the relative-path study's numbers" || fail "ranks_per_model 2 vs r1"
import sys
sys.path.insert(0, sys.argv[3])
import h5cmp
bad = [b for b in h5cmp.compare(sys.argv[1], sys.argv[2], skip=("cells/id", "cells/data_source", "cells/model_spec"))
       if "spec_yaml" not in b and "spec_sha256" not in b]
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF

# a directory submitted to Slurm (it has a manifest) keeps its spec: another one is refused
touch "$W/r1/manifest"
"$LMDISP" run "$W/abs.yaml" --out "$W/r1" > /dev/null 2> "$W/sub.err"
rc=$?
rm -f "$W/r1/manifest"
[ $rc = 2 ] && grep -q "was submitted to Slurm with another spec" "$W/sub.err" \
    && pass "run refuses another spec in a submitted directory" || fail "submitted dir: exit $rc, $(cat "$W/sub.err")"

# 5. interrupted, resumed
LMDISP_TEST_STOP_AFTER_CELLS=3 mpi 2 -x LMDISP_TEST_STOP_AFTER_CELLS "$LMDISP" run "$SPEC" --out "$W/ri" > "$W/ri1.log" 2>&1
rc=$?
n1=$(ls "$W"/ri/cells/*/result.json 2>/dev/null | wc -l)
if [ $rc = 3 ] && [ "$n1" = 6 ] && [ ! -e "$W/ri/study.h5" ]; then
    pass "interrupted: exit 3, 6 cells kept, no study.h5"
else
    fail "interrupted: exit $rc, $n1 results: $(tail -3 "$W/ri1.log")"
fi
# (a stop in the middle of a cell, before its second forward pass: that cell is abandoned)
LMDISP_TEST_STOP_AFTER_PASSES=3 "$LMDISP" run "$SPEC" --out "$W/ri" > "$W/ri1b.log" 2>&1
rc=$?
n1b=$(ls "$W"/ri/cells/*/result.json 2>/dev/null | wc -l)
[ $rc = 3 ] && [ "$n1b" = 7 ] && grep -q "abandoned (stop requested)" "$W/ri1b.log" \
    && pass "stopped inside a cell: exit 3, that cell abandoned, 7 cells kept" \
    || fail "stop inside a cell: exit $rc, $n1b results: $(tail -3 "$W/ri1b.log")"
mpi 2 "$LMDISP" run "$SPEC" --out "$W/ri" > "$W/ri2.log" 2>&1 || fail "resume: $(tail -3 "$W/ri2.log")"
nm=$(grep -c "measured (" "$W/ri2.log")
grep -q "7 cell(s) already measured, skipped" "$W/ri2.log" && [ "$nm" = 17 ] \
    || fail "resume: $nm cells measured, $(grep skipped "$W/ri2.log")"
$PY "$LMDISP_TESTS/h5cmp.py" "$W/r1/study.h5" "$W/ri/study.h5" > "$W/cmpi.txt" \
    && pass "resumed study.h5 = uninterrupted" || fail "resumed study differs: $(cat "$W/cmpi.txt")"
"$LMDISP" run "$SPEC" --out "$W/ri" > "$W/ri3.log" 2>&1 || fail "third run: $(tail -3 "$W/ri3.log")"
grep -q "24 cell(s) already measured, skipped" "$W/ri3.log" && ! grep -q "measured (" "$W/ri3.log" \
    && pass "rerun of a finished study measures nothing" || fail "rerun: $(head -3 "$W/ri3.log")"

# 6. report
"$LMDISP" report "$W/r1" > "$W/report.txt" 2> "$W/report.err" || fail "report: $(cat "$W/report.err")"
grep -q "^qwen/uniform *2 *-1.0000" "$W/report.txt" && grep -q "^qwen3 *qwen2 *uniform" "$W/report.txt" \
    && grep -q "trend over training tokens (n 7)" "$W/report.txt" \
    && pass "report: trend, series, pairs" || fail "report: $(head -50 "$W/report.txt")"
"$LMDISP" report "$W/r1" --csv > "$W/report.csv" || fail "report --csv"
[ "$(wc -l < "$W/report.csv")" = 25 ] || fail "report --csv: $(wc -l < "$W/report.csv") lines"
"$LMDISP" report "$W/r1" --table nope > /dev/null 2>&1
[ $? = 2 ] || fail "report --table nope: not exit 2"
$PY - "$W/r1/study.h5" <<'PYEOF' && pass "summary trend = scipy over n_params" || fail "summary trend"
import sys, h5py, numpy as np
from scipy.stats import spearmanr, kendalltau
f = h5py.File(sys.argv[1], "r")
s = lambda k: [x.decode() for x in f[k][...]]
fam, ds, st = s("/cells/family"), s("/cells/dataset"), s("/cells/status")
n = f["/cells/n_params"][...]; nl = f["/cells/n_layer"][...]
lm = f["/condensation/layer_mean_cossim"][:, 0, :]
last = np.array([lm[i, nl[i]] for i in range(len(n))])
for g, lab in enumerate(s("/summary/label")):
    fa, d = lab.split("/")
    idx = [i for i in range(len(n)) if fam[i] == fa and ds[i] == d and st[i] == "done"]
    x, y = n[idx], last[idx]
    want = spearmanr(x, y)[0] if len(set(x)) > 1 else np.nan
    got = f["/summary/trend/last_layer/spearman"][g, 0]
    assert (np.isnan(want) and np.isnan(got)) or abs(want - got) < 1e-12, (lab, want, got)
    want = kendalltau(x, y)[0] if len(set(x)) > 1 else np.nan
    got = f["/summary/trend/last_layer/kendall"][g, 0]
    assert (np.isnan(want) and np.isnan(got)) or abs(want - got) < 1e-12, (lab, want, got)
print("trend/last_layer matches scipy for", len(s("/summary/label")), "groups")
PYEOF

# plots in the paper's layouts (matplotlib; skipped without it)
if $PY -c "import matplotlib" 2>/dev/null; then
    if $PY "$SRC/analysis/plot_measure.py" "$W/r1/study.h5" --out "$W/plots" > "$W/plots.log" 2>&1; then
        ok=1
        for p in figure2_gpt2 s1_gpt2 figure2_qwen s1_qwen figure2_olmo2-tiny series_olmo2-tiny pairs; do
            [ -s "$W/plots/$p.png" ] || { ok=0; fail "plot $p.png missing"; }
        done
        [ $ok = 1 ] && pass "plot_measure.py: Figure 2, S1, series, pairs"
    else
        fail "plot_measure.py: $(tail -5 "$W/plots.log")"
    fi
fi

# 7. bad specs: file:line:column, exit 2, nothing created
check_bad() { # FILE LINE:COL REGEX
    local f=$LMDISP_TESTS/specs/$1
    "$LMDISP" run "$f" --out "$W/bad_$1" > "$W/bad.out" 2> "$W/bad.err"
    local rc=$?
    if [ $rc = 2 ] && grep -q "$1:$2: .*$3" "$W/bad.err" && [ ! -e "$W/bad_$1" ]; then
        pass "refused $1 at $2"
    else
        fail "$1: exit $rc, $(cat "$W/bad.err")"
    fi
}
check_bad bad_meas_model.yaml 7:26 "gpt2_missing: no such file or directory"
check_bad bad_meas_revision.yaml 9:9 "revision not in the HF cache.*huggingface-cli download"
check_bad bad_meas_short.yaml 10:5 "dataset short for model gpt2 (4 sequences x 16 tokens).*holds 40 tokens"
check_bad bad_meas_key.yaml 6:3 "measure.seq_lenght': unknown key"
check_bad bad_meas_pair.yaml 10:17 "'qwen4' is not a model name"
check_bad bad_meas_notok.yaml 9:5 "dataset own is text in each model's own tokenizer, but model gpt2: .*no tokenizer.json"

# 8. text datasets: each model's own tokenizer.json (or one for all), the paper's sampling;
# every cell = lmdisp measure --data tok:TOKENIZER:TEXT with the same seed, words, batch
TS=$LMDISP_TESTS/specs/meas_text.yaml
"$LMDISP" run "$TS" --out "$W/text" > "$W/text.log" 2>&1 || fail "text study: $(tail -5 "$W/text.log")"
$PY - "$W/text/study.h5" "$LMDISP" <<'PYEOF' && pass "text datasets: each cell = lmdisp measure --data tok:" || fail "text datasets"
import sys, os, json, struct, subprocess, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
s = lambda k: [x.decode() for x in f[k][...]]
assert set(s("/cells/status")) == {"done"}, s("/cells/status")
for i, src in enumerate(s("/cells/data_source")):
    spec = s("/cells/model_spec")[i]
    want_tok = spec if s("/cells/dataset")[i] == "own" else spec.rsplit("/", 1)[0] + "/gpt2_text_a/tokenizer.json"
    assert src.startswith("tok:") and os.path.realpath(src.split(":")[1]) == want_tok, (src, want_tok)
    m = json.loads(subprocess.run([sys.argv[2], "measure", spec, "--data", src, "--sequences", "4",
                                   "--seq-len", "16", "--min-words", "20", "--seed", "3", "--batch",
                                   "2", "--json"], capture_output=True, text=True, check=True).stdout)
    L1 = f["/cells/n_layer"][i] + 1
    assert np.array_equal(np.array(m["layer_mean_cossim"]), f["/condensation/layer_mean_cossim"][i, 0, :L1])
    assert np.array_equal(np.array(m["mev"]), f["/condensation/mev"][i, 0, :L1])
    b = open(spec + "/model.safetensors", "rb").read()
    h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
    n = sum(int(np.prod(v["shape"])) for k, v in h.items() if k != "__metadata__")
    assert f["/cells/n_params"][i] == n == m["n_params"], (n, f["/cells/n_params"][i])
print("4 text cells equal lmdisp measure --data tok:...; n_params = the safetensors' element count")
PYEOF

# an lmdisp checkpoint (DESIGN 4.1) among the models: model_type lmdisp-gpt, numbers = measure
CS=$LMDISP_TESTS/specs/meas_ckpt.yaml
"$LMDISP" run "$CS" --out "$W/ckpt" > "$W/ckpt.log" 2>&1 || fail "checkpoint study: $(tail -5 "$W/ckpt.log")"
$PY - "$W/ckpt/study.h5" "$LMDISP" "$LMDISP_TESTS" <<'PYEOF' && pass "an lmdisp checkpoint as a model: = lmdisp measure" || fail "checkpoint model"
import sys, json, subprocess, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
s = lambda k: [x.decode() for x in f[k][...]]
assert s("/cells/model_type") == ["lmdisp-gpt", "gpt2"], s("/cells/model_type")
assert s("/cells/model") == ["model_ckpt", "gpt2-hf"], s("/cells/model")
assert f["/cells/n_layer"][...].tolist() == [3, 2]
worst = 0.0
for i in range(2):
    m = json.loads(subprocess.run([sys.argv[2], "measure", s("/cells/model_spec")[i], "--tokens",
                                   sys.argv[3] + "/ref/model_tokens.bin", "--sequences", "4",
                                   "--seq-len", "16", "--json"], capture_output=True, text=True,
                                  check=True).stdout)
    L1 = f["/cells/n_layer"][i] + 1
    a, b = np.array(m["layer_mean_cossim"]), f["/condensation/layer_mean_cossim"][i, 0, :L1]
    worst = max(worst, float(np.max(np.abs(a - b))))
    assert np.array_equal(a, b), (i, a, b)
    assert np.isnan(f["/condensation/layer_mean_cossim"][1, 0, 3])  # gpt2-hf padded to L1 4
print(f"checkpoint + HF cells = lmdisp measure: worst |diff| {worst:.1e}")
PYEOF

# 9. the paper's specs in experiments/ parse and name their models right: with a fake HF cache
# holding every repo they name (each snapshot = the qwen3 test model), the only errors left are
# the text files a user exports first (docs/DATA.md)
FC=$W/fakecache
mkrepo() { # ORG/NAME REV...
    local d="$FC/models--${1%%/*}--${1#*/}" sha=0123456789abcdef0123456789abcdef01234567 r
    mkdir -p "$d/refs" "$d/snapshots/$sha"
    ln -sf "$LMDISP_TESTS/hf/qwen3/config.json" "$d/snapshots/$sha/config.json"
    ln -sf "$LMDISP_TESTS/hf/qwen3/model.safetensors" "$d/snapshots/$sha/model.safetensors"
    shift
    for r in "$@"; do printf '%s' "$sha" > "$d/refs/$r"; done
}
for r in openai-community/gpt2 openai-community/gpt2-medium openai-community/gpt2-large \
         openai-community/gpt2-xl Qwen/Qwen3-0.6B Qwen/Qwen3-1.7B Qwen/Qwen3-4B Qwen/Qwen3-8B \
         Qwen/Qwen3-14B Qwen/Qwen3-32B Qwen/Qwen2.5-Math-1.5B Qwen/Qwen2.5-Math-7B \
         deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B deepseek-ai/DeepSeek-R1-Distill-Qwen-7B; do
    mkrepo "$r" main
done
mkrepo allenai/OLMo-2-0425-1B stage1-step0-tokens0B stage1-step1000-tokens3B main
for f in meas_gpt2_family meas_qwen3_family meas_olmo2_series meas_distill_pairs; do
    HF_HUB_CACHE=$FC "$LMDISP" plan "$SRC/experiments/$f.yaml" > /dev/null 2> "$W/$f.err"
    rc=$?
    other=$(sed 's/^lmdisp plan: //' "$W/$f.err" | grep -v -E "key 'datasets': text .*/data/[a-z0-9]+\.jsonl cannot be read$")
    if [ $rc = 2 ] && [ -z "$other" ] && grep -q "cannot be read" "$W/$f.err"; then
        pass "experiments/$f.yaml: only the exported text files are missing"
    else
        fail "experiments/$f.yaml: exit $rc, $other"
    fi
done

echo "test_meas_study: $passes passed, $fails failure(s)"
exit $((fails > 0))
