#!/usr/bin/env bash
# test_study.sh — the results layer: `lmdisp run` writes study.h5 (DESIGN 4.4, docs/STUDY.md)
# collectively; the file does not depend on the rank count; its values equal the per-cell
# track files; the summary matches an independent numpy computation; `aggregate` rebuilds it
# from DIR alone (missing / running / diverged cells get their status and NaN rows) and is
# repeatable; `report` prints text and CSV; plot_study.py writes PNGs.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}" "${LMDISP_TESTS:?}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
src="${LMDISP_SRC:-$LMDISP_TESTS/..}"
spec="$LMDISP_TESTS/specs/study_tiny.yaml"
tmp="$LMDISP_TMP/test_study"
rm -rf "$tmp" && mkdir -p "$tmp"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

# 1. the same study on 1 and 2 ranks
if mpi 1 "$LMDISP" run "$spec" --out "$tmp/A" > "$tmp/A.log" 2>&1; then pass "run on 1 rank"
else fail "run on 1 rank"; cat "$tmp/A.log"; fi
if mpi 2 "$LMDISP" run "$spec" --out "$tmp/B" > "$tmp/B.log" 2>&1; then pass "run on 2 ranks"
else fail "run on 2 ranks"; cat "$tmp/B.log"; fi
for d in A B; do
  if [ -f "$tmp/$d/study.h5" ] && ! ls "$tmp/$d"/study.h5.tmp.* > /dev/null 2>&1; then
    pass "$d/study.h5 written, no temporary left"
  else fail "$d/study.h5 missing or a temporary left behind"; ls -la "$tmp/$d"; fi
done
if grep -q "cross-grid trend" "$tmp/A.log" && grep -q "mlp32-off-s0" "$tmp/A.log"; then
  pass "run prints the cell table and the trend"; else fail "run printed no summary"; cat "$tmp/A.log"; fi

# dataset/attribute comparison ignoring provenance that legitimately differs between runs
cp "$LMDISP_TESTS/h5cmp.py" "$tmp/h5cmp.py"
if $PY "$tmp/h5cmp.py" "$tmp/A/study.h5" "$tmp/B/study.h5"; then
  pass "1 rank and 2 ranks give identical datasets and attributes (times, hosts, n_ranks aside)"
else fail "study.h5 differs between 1 and 2 ranks"; fi

# 2. contract: every DESIGN 4.4 path with its shape and type; values equal the track files;
#    the summary equals an independent computation.
cat > "$tmp/check.py" <<'PY'
import sys, os, h5py, numpy as np
d = sys.argv[1]
f = h5py.File(os.path.join(d, "study.h5"), "r")
fails = []
def check(cond, msg):
    if not cond: fails.append(msg)
C, K, L1, BINS = 4, 5, 3, 128
contract = {  # DESIGN 4.4 plus the documented extensions
    "cells/id": ("S", (C,)), "cells/mlp_dim": ("i8", (C,)), "cells/seed": ("i8", (C,)),
    "cells/dispersion": ("S", (C,)), "cells/n_params": ("i8", (C,)), "cells/status": ("S", (C,)),
    "tracking/step": ("i8", (K,)), "tracking/tokens": ("i8", (K,)),
    "condensation/layer_mean_cossim": ("f8", (C, K, L1)),
    "condensation/offdiag_mean_cossim": ("f8", (C, K, L1)),
    "condensation/cossim_hist": ("f4", (C, K, L1, BINS)),
    "condensation/spearman": ("f8", (C, K)), "condensation/kendall": ("f8", (C, K)),
    "loss/val": ("f8", (C, K)), "loss/train": ("f8", (C, K)),
    "condensation/singular_value_entropy": ("f8", (C, K, L1)), "condensation/mev": ("f8", (C, K, L1)),
    "condensation/last_n_mean": ("f8", (C, K, 6)), "tracking/cell_tokens": ("i8", (C, K)),
    "summary/dispersion": ("S", (2,)), "summary/label": ("S", (2,)), "summary/mlp_dim": ("i8", (2,)),
    "summary/trend_spearman": ("f8", (2, K)), "summary/trend_kendall": ("f8", (2, K)),
    "summary/trend_n": ("i8", (2, K)), "summary/by_width/n_seeds": ("i8", (2, 2)),
    "summary/trend/rho/saturated": ("i8", (2, K)),
}
for sname in ("rho", "last_layer", "last_half"):
    contract[f"summary/trend/{sname}/spearman"] = ("f8", (2, K))
    contract[f"summary/trend/{sname}/kendall"] = ("f8", (2, K))
    contract[f"summary/trend/{sname}/n"] = ("i8", (2, K))
for m in ("spearman", "kendall", "last_layer_cossim", "last_half_cossim", "val_loss"):
    for s in ("mean", "std"):
        contract[f"summary/by_width/{m}_{s}"] = ("f8", (2, 2, K))
for p, (t, shape) in contract.items():
    if p not in f: fails.append(f"missing {p}"); continue
    ds = f[p]
    ok = ds.dtype.kind == "S" if t == "S" else ds.dtype == np.dtype(t)
    check(ok and ds.shape == shape, f"{p}: {ds.dtype} {ds.shape}, expected {t} {shape}")
for a in ("spec_yaml", "spec_sha256", "lmdisp_version", "git_commit", "created", "mpi_version",
          "hdf5_version", "openblas_version", "hosts", "n_ranks", "start_time", "end_time"):
    check(a in f.attrs, f"root attribute {a} missing")
# self-description: dimension names on every dataset, the varying settings listed
def dims_ok(name, obj):
    if isinstance(obj, h5py.Dataset):
        dims = obj.attrs.get("dims")
        check(dims is not None and len(dims.split(",")) == obj.ndim,
              f"{name}: attribute dims {dims!r} does not name its {obj.ndim} dimension(s)")
f.visititems(dims_ok)
check(f["cells"].attrs.get("varying") == "mlp_dim,dispersion", f"/cells varying {f['cells'].attrs.get('varying')!r}")
spec_text = open(sys.argv[2]).read()
check(f.attrs.get("spec_yaml") == spec_text, "spec_yaml is not the spec text")
if fails:
    print("\n".join("  " + x for x in fails)); sys.exit(1)

ids = f["cells/id"].asstr()[()]
status = f["cells/status"].asstr()[()]
steps = f["tracking/step"][()]
check(list(steps) == [0, 2, 4, 8, 10], f"tracking/step {steps} (warmup: step 1 equals step 0 and is not tracked)")
check(list(f["tracking/tokens"][()]) == [s * 4 * 16 for s in steps], "tracking/tokens != step*B*T")
check(sorted(f["cells/mlp_dim"][()]) == [32, 32, 64, 64], "mlp_dim")
check(sorted(f["cells/dispersion"].asstr()[()]) == ["angular_spread", "angular_spread", "off", "off"], "dispersion")
maps = {"layer_mean_cossim": "condensation/layer_mean_cossim",
        "offdiag_mean_cossim": "condensation/offdiag_mean_cossim",
        "cossim_hist": "condensation/cossim_hist",
        "singular_value_entropy": "condensation/singular_value_entropy",
        "mev": "condensation/mev", "last_n_mean": "condensation/last_n_mean",
        "spearman": "condensation/spearman", "kendall": "condensation/kendall",
        "val_loss": "loss/val", "train_loss": "loss/train"}
worst = 0.0
compared = 0
for i, cid in enumerate(ids):
    check(status[i] == "done", f"{cid}: status {status[i]}")
    for k, s in enumerate(steps):
        tp = os.path.join(d, "cells", cid, "track", "step%07d.h5" % s)
        with h5py.File(tp, "r") as t:
            check(t.attrs["tokens"] == f["tracking/cell_tokens"][i, k], f"{tp}: tokens attribute")
            for name, path in maps.items():
                a, b = t[name][()], f[path][i, k]
                equal = np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
                if not equal:
                    diff = np.nanmax(np.abs(np.asarray(a, float) - np.asarray(b, float)))
                    worst = max(worst, diff)
                    fails.append(f"{cid} step {s} {name}: differs (max |diff| {diff:g})")
                compared += 1
print(f"  compared {compared} track datasets bit for bit with study.h5 (worst |diff| {worst:g})")

def ranks(x):
    x = np.asarray(x, float); o = np.argsort(x, kind="mergesort"); r = np.empty(len(x))
    r[o] = np.arange(1, len(x) + 1)
    for v in np.unique(x): r[x == v] = r[x == v].mean()
    return r
def spearman(x, y):
    if len(x) < 2: return np.nan
    a, b = ranks(x), ranks(y)
    if a.std() == 0 or b.std() == 0: return np.nan
    return float(np.corrcoef(a, b)[0, 1])
def kendall(x, y):
    n = len(x); c = dd = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            if sx == 0: tx += 1
            if sy == 0: ty += 1
            if sx * sy > 0: c += 1
            elif sx * sy < 0: dd += 1
    n0 = n * (n - 1) / 2
    den = np.sqrt((n0 - tx) * (n0 - ty))
    return (c - dd) / den if den > 0 else np.nan
try:
    import warnings
    from scipy import stats
    warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN, as we do
    def ref_spearman(x, y):
        return float(stats.spearmanr(x, y)[0]) if len(x) >= 2 else np.nan
    def ref_kendall(x, y):
        return float(stats.kendalltau(x, y)[0]) if len(x) >= 2 else np.nan
    REF = "scipy.stats"
except ImportError:
    ref_spearman, ref_kendall, REF = spearman, kendall, "numpy"
n_trend_checked = [0]
labels = list(f["summary/label"].asstr()[()])
check(labels == ["off", "angular_spread"], f"summary labels {labels}")
group = f["cells/group"][()]
mlp = f["cells/mlp_dim"][()]
rho = f["condensation/spearman"][()]
tol = 1e-12
for g in range(len(labels)):
    sel = [i for i in range(len(ids)) if group[i] == g and status[i] == "done"]
    check(all(f["cells/dispersion"].asstr()[i] == labels[g] for i in sel), "group of a cell")
    for k in range(len(steps)):
        use = [i for i in sel if np.isfinite(rho[i, k])]
        x, y = mlp[use].astype(float), rho[use, k]
        for name, fn in (("trend_spearman", spearman), ("trend_kendall", kendall)):
            want, got = fn(x, y), f["summary/" + name][g, k]
            ok = (np.isnan(want) and np.isnan(got)) or abs(want - got) <= tol
            check(ok, f"summary/{name}[{g},{k}] = {got}, numpy gives {want} (tol {tol})")
        check(f["summary/trend_n"][g, k] == len(use), "trend_n")
    # DESIGN 1: /summary/trend/<s>/{spearman,kendall} for rho, last_layer, last_half, against
    # scipy.stats (tau-b, average ranks) when it is installed, else the numpy versions above
    per_model = {"rho": rho,
                 "last_layer": f["condensation/layer_mean_cossim"][:, :, -1],
                 "last_half": f["condensation/last_n_mean"][:, :, 5]}
    for sname, arr in per_model.items():
        for k in range(len(steps)):
            use = [i for i in sel if np.isfinite(arr[i, k])]
            x, y = mlp[use].astype(float), arr[use, k]
            for part, fn in (("spearman", ref_spearman), ("kendall", ref_kendall)):
                want, got = fn(x, y), f[f"summary/trend/{sname}/{part}"][g, k]
                ok = (np.isnan(want) and np.isnan(got)) or abs(want - got) <= tol
                check(ok, f"summary/trend/{sname}/{part}[{g},{k}] = {got}, {REF} gives {want} (tol {tol})")
                if ok and np.isfinite(want): n_trend_checked[0] += 1
            check(f[f"summary/trend/{sname}/n"][g, k] == len(use), f"trend/{sname}/n")
        if sname == "rho":
            for k in range(len(steps)):
                use = [i for i in sel if np.isfinite(rho[i, k])]
                sat = int(len(use) > 0 and all(rho[i, k] == 1.0 for i in use))
                check(f["summary/trend/rho/saturated"][g, k] == sat, f"trend/rho/saturated[{g},{k}]")
    for part in ("spearman", "kendall"):
        check(np.array_equal(f[f"summary/trend/rho/{part}"][g], f[f"summary/trend_{part}"][g],
                             equal_nan=True), f"summary/trend_{part} is not the rho trend")
    widths = f["summary/mlp_dim"][()]
    for w, width in enumerate(widths):
        cells = [i for i in sel if mlp[i] == width]
        check(f["summary/by_width/n_seeds"][g, w] == len(cells), "n_seeds")
        vals = {"spearman": rho, "kendall": f["condensation/kendall"][()],
                "val_loss": f["loss/val"][()],
                "last_layer_cossim": f["condensation/layer_mean_cossim"][:, :, -1],
                "last_half_cossim": f["condensation/last_n_mean"][:, :, 5]}
        for m, arr in vals.items():
            mean = f[f"summary/by_width/{m}_mean"][g, w]
            want = np.nanmean(arr[cells], axis=0) if cells else np.full(len(steps), np.nan)
            check(np.allclose(mean, want, rtol=0, atol=tol, equal_nan=True), f"{m}_mean [{g},{w}]")
            std = f[f"summary/by_width/{m}_std"][g, w]
            check(np.all(np.isnan(std)) if len(cells) < 2 else True, f"{m}_std with one seed is not NaN")
print(f"  {n_trend_checked[0]} finite trend values equal {REF} (tol {tol})")
check(n_trend_checked[0] >= 6, "too few finite trend values to test the summary")
if fails:
    print("\n".join("  " + x for x in fails)); sys.exit(1)
PY
if $PY "$tmp/check.py" "$tmp/A" "$spec"; then
  pass "every DESIGN 4.4 path has its shape and type; values equal the track files; summary matches numpy"
else fail "study.h5 contents"; fi

# 3. aggregate: rebuilds the same file from DIR alone; marks missing/running/diverged cells
cp -r "$tmp/A" "$tmp/G"
rm "$tmp/G/study.h5"
if mpi 2 "$LMDISP" aggregate "$tmp/G" --quiet > "$tmp/G.log" 2>&1 && \
   $PY "$tmp/h5cmp.py" "$tmp/A/study.h5" "$tmp/G/study.h5"; then
  pass "aggregate (2 ranks) rebuilds the run's study.h5 from DIR alone"
else fail "aggregate of an intact run differs from the run's study.h5"; cat "$tmp/G.log"; fi

cp -r "$tmp/A" "$tmp/M"
gone=$(ls "$tmp/M/cells" | grep '^mlp64-off-')
running=$(ls "$tmp/M/cells" | grep '^mlp32-angular_spread-')
diverged=$(ls "$tmp/M/cells" | grep '^mlp64-angular_spread-')
rm -rf "$tmp/M/cells/$gone"
printf 'status: running\nstep: 4\nmessage: \n' > "$tmp/M/cells/$running/state"
printf 'status: diverged\nstep: 7\nmessage: non-finite loss or gradient at step 7\n' > "$tmp/M/cells/$diverged/state"
ok=1
mpi 2 "$LMDISP" aggregate "$tmp/M" > "$tmp/M.log" 2>&1 || { ok=0; cat "$tmp/M.log"; }
cp "$tmp/M/study.h5" "$tmp/M1.h5"
mpi 1 "$LMDISP" aggregate "$tmp/M" --quiet > "$tmp/M2.log" 2>&1 || { ok=0; cat "$tmp/M2.log"; }
[ $ok = 1 ] && pass "aggregate with a deleted, a running and a diverged cell" || fail "aggregate failed"
if $PY "$tmp/h5cmp.py" "$tmp/M1.h5" "$tmp/M/study.h5"; then
  pass "aggregating twice (2 ranks, then 1) gives the same contents"
else fail "aggregate is not repeatable"; fi
if $PY - "$tmp/A/study.h5" "$tmp/M/study.h5" "$gone" "$running" "$diverged" <<'PY'
import sys, h5py, numpy as np
a, m = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
want = {sys.argv[3]: "missing", sys.argv[4]: "missing", sys.argv[5]: "diverged"}
ids = list(m["cells/id"].asstr()[()])
status = m["cells/status"].asstr()[()]
bad = []
for i, cid in enumerate(ids):
    exp = want.get(cid, "done")
    if status[i] != exp: bad.append(f"{cid}: status {status[i]}, expected {exp}")
    for p in ("condensation/layer_mean_cossim", "condensation/offdiag_mean_cossim",
              "condensation/cossim_hist", "condensation/spearman", "condensation/kendall",
              "loss/val", "loss/train", "condensation/mev"):
        row = m[p][i]
        if exp != "done" and not np.all(np.isnan(row)): bad.append(f"{cid}: {p} row not NaN")
        if exp == "done" and not np.array_equal(row, a[p][i], equal_nan=True):
            bad.append(f"{cid}: {p} row changed")
msg = dict(zip(ids, m["cells/message"].asstr()[()]))
if "not found" not in msg[sys.argv[3]]: bad.append(f"message of the deleted cell: {msg[sys.argv[3]]!r}")
if "running" not in msg[sys.argv[4]]: bad.append(f"message of the running cell: {msg[sys.argv[4]]!r}")
if "non-finite" not in msg[sys.argv[5]]: bad.append(f"message of the diverged cell: {msg[sys.argv[5]]!r}")
if list(m["summary/trend_n"][:, -1]) != [1, 0]: bad.append(f"trend_n {m['summary/trend_n'][:, -1]}")
if not np.all(np.isnan(m["summary/trend_spearman"][()])): bad.append("trend of < 2 cells not NaN")
print("\n".join("  " + b for b in bad)); sys.exit(1 if bad else 0)
PY
then pass "missing/running/diverged cells: status, reason and NaN rows; the other rows unchanged"
else fail "aggregate after removing cells"; fi
if grep -q "missing" "$tmp/M.log" && grep -q "diverged" "$tmp/M.log"; then pass "aggregate prints the statuses"
else fail "aggregate table lacks the statuses"; cat "$tmp/M.log"; fi

# 4. report, text and CSV
if "$LMDISP" report "$tmp/A/study.h5" > "$tmp/report.txt" 2>&1 && grep -q "rho@end" "$tmp/report.txt" \
   && grep -q "cross-grid trend" "$tmp/report.txt" && grep -q "per width" "$tmp/report.txt" \
   && grep -q "^claims" "$tmp/report.txt"; then
  pass "report prints the cell, trend and width tables and the claims"
else fail "report"; cat "$tmp/report.txt"; fi
# the claims lines carry the numbers of the file: trend at the last checkpoint, the paired
# dispersion difference per width, the layer profile at step 0
if $PY - "$tmp/report.txt" "$tmp/A/study.h5" <<'PY'
import re, sys, h5py, numpy as np
text = open(sys.argv[1]).read()
f = h5py.File(sys.argv[2], "r")
bad = []
lines = text[text.find("claims ("):].splitlines()
labels = list(f["summary/label"].asstr()[()])
for g, lab in enumerate(labels):
    l = [x for x in lines if x.strip().startswith(f"larger MLP, less condensation [{lab}]")]
    if len(l) != 1: bad.append(f"no width claim line for {lab}"); continue
    got = [float(v) for v in re.findall(r"(?:spearman|kendall) (-?\d\.\d+)", l[0])]
    want = [f[f"summary/trend/{s}/{p}"][g, -1] for s in ("last_layer", "last_half") for p in ("spearman", "kendall")]
    if len(got) != 4 or any(abs(a - b) > 5e-4 for a, b in zip(got, want)): bad.append(f"{l[0]!r} vs {want}")
    if f"(n {f['summary/trend/last_layer/n'][g, -1]} cells" not in l[0]: bad.append(f"n cells in {l[0]!r}")
    verdict = "holds" if all(w < 0 for w in want) else "does not hold" if all(w > 0 for w in want) else None
    if verdict and not l[0].endswith("-> " + verdict): bad.append(f"verdict of {l[0]!r}, expected {verdict}")
ids = f["cells/id"].asstr()[()]; grp = f["cells/group"][()]; mlp = f["cells/mlp_dim"][()]
seed = f["cells/seed"][()]; last = f["condensation/layer_mean_cossim"][:, -1, -1]
l = [x for x in lines if "dispersion lowers condensation [angular_spread - off, last_layer" in x]
if len(l) != 1: bad.append("no dispersion claim line")
else:
    for w in f["summary/mlp_dim"][()]:
        d = [last[i] - last[j] for i in range(len(ids)) for j in range(len(ids))
             if grp[i] == 1 and grp[j] == 0 and mlp[i] == w and mlp[j] == w and seed[i] == seed[j]]
        if f" {w}: {np.mean(d):.3f} (n {len(d)})" not in l[0]: bad.append(f"width {w}: {np.mean(d):.3f} not in {l[0]!r}")
l = [x for x in lines if "condensation at initialization" in x]
k0 = list(f["tracking/step"][()]).index(0)
prof = f["condensation/layer_mean_cossim"][:, k0, :].mean(axis=0)
if len(l) != 1 or " ".join(f"{v:.3f}" for v in prof) not in l[0]: bad.append(f"init profile {prof} not in {l}")
print("\n".join("  " + b for b in bad)); sys.exit(1 if bad else 0)
PY
then pass "report: the claims lines carry the trend, the paired dispersion difference and the step-0 profile"
else fail "report claims lines"; sed -n '/^claims/,$p' "$tmp/report.txt"; fi
"$LMDISP" report "$tmp/M/study.h5" --csv > "$tmp/cells.csv" 2> "$tmp/csv.err"; rc=$?
"$LMDISP" report "$tmp/M" --csv --table trend > "$tmp/trend.csv" 2>> "$tmp/csv.err"; rc2=$?
if [ $rc = 0 ] && [ $rc2 = 0 ] && $PY - "$tmp/cells.csv" "$tmp/trend.csv" "$tmp/M/study.h5" <<'PY'
import csv, sys, h5py, numpy as np
rows = list(csv.DictReader(open(sys.argv[1])))
trend = list(csv.DictReader(open(sys.argv[2])))
f = h5py.File(sys.argv[3], "r")
C, K = f["loss/val"].shape
ids = list(f["cells/id"].asstr()[()])
bad = []
if len(rows) != C * K: bad.append(f"{len(rows)} cell rows, expected {C*K}")
for r in rows:
    i, k = ids.index(r["id"]), list(f["tracking/step"][()]).index(int(r["step"]))
    v = f["loss/val"][i, k]
    got = float(r["val_loss"]) if r["val_loss"] else np.nan
    if not ((np.isnan(v) and np.isnan(got)) or got == v): bad.append(f"val_loss {r['id']} {k}: {got} vs {v}")
if len(trend) != f["summary/label"].shape[0] * K: bad.append(f"{len(trend)} trend rows")
print("\n".join("  " + b for b in bad)); sys.exit(1 if bad else 0)
PY
then pass "report --csv: one row per cell and checkpoint, values round-trip; --table trend"
else fail "report --csv"; cat "$tmp/csv.err"; fi
"$LMDISP" report "$tmp/nonexistent.h5" > /dev/null 2> "$tmp/r.err"; rc=$?
if [ $rc -ne 0 ] && grep -q "nonexistent.h5" "$tmp/r.err"; then pass "report names a missing file"
else fail "report of a missing file: rc $rc"; cat "$tmp/r.err"; fi

# the docs/STUDY.md "Reading it" examples run on this file (pandas when it is installed)
awk '/^## Reading it/{r=1} /^## Plots/{r=0} r && /^```python/{n++; f=1; next} r && /^```/{f=0} f{print > (dir "/doc_example" n ".py")}' \
  dir="$tmp" "$src/docs/STUDY.md"
for ex in "$tmp"/doc_example*.py; do
  [ -f "$ex" ] || { fail "no python example in docs/STUDY.md"; break; }
  sed -i "s#results/quickstart/study.h5#$tmp/A/study.h5#" "$ex"
  if grep -q "import pandas\|pandas as pd" "$ex" && ! $PY -c "import pandas" 2> /dev/null; then
    echo "skip: pandas is not installed for $PY, $(basename "$ex") not run"; continue
  fi
  if $PY "$ex" > "$ex.out" 2>&1 && [ -s "$ex.out" ]; then pass "docs/STUDY.md example $(basename "$ex") runs"
  else fail "docs/STUDY.md example $(basename "$ex")"; cat "$ex.out"; fi
done

# every other varying grid axis is a /cells column with its dotted setting name
if mpi 1 "$LMDISP" run "$LMDISP_TESTS/specs/study_axes.yaml" --out "$tmp/X" > "$tmp/X.log" 2>&1 && \
   $PY - "$tmp/X/study.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
bad = []
c = f["cells"]
if c.attrs.get("varying") != "lr,coeff": bad.append(f"varying {c.attrs.get('varying')!r}")
for col, setting, want in (("coeff", "dispersion.coeff", [0.1, 0.1, 0.5, 0.5]),
                           ("lr", "train.lr", [1e-3, 3e-3, 1e-3, 3e-3])):
    if col not in c: bad.append(f"no /cells/{col}"); continue
    if c[col].dtype != np.float64 or not np.allclose(c[col][()], want, rtol=1e-12, atol=0):
        bad.append(f"/cells/{col} = {c[col][()]} ({c[col].dtype}), expected {want}")
    if c[col].attrs.get("setting") != setting or c[col].attrs.get("dims") != "cell":
        bad.append(f"/cells/{col} attributes {dict(c[col].attrs)}")
if "n_embd" in c or "steps" in c: bad.append("a setting that does not vary got a column")
print("\n".join("  " + b for b in bad)); sys.exit(1 if bad else 0)
PY
then pass "varying grid axes (coeff, lr) are /cells columns with their setting names"
else fail "varying grid axes as /cells columns"; cat "$tmp/X.log" | tail -5; fi

# 5. plots (study and `lmdisp track` trajectory)
if $PY -c "import matplotlib" 2> /dev/null; then
  if $PY "$src/analysis/plot_study.py" "$tmp/M/study.h5" --out "$tmp/plots" > "$tmp/plot.log" 2>&1; then
    n=0; for p in heatmaps figure2 trend condensation; do [ -s "$tmp/plots/$p.png" ] && n=$((n + 1)); done
    [ $n = 4 ] && pass "plot_study.py: heatmaps, figure2, trend and condensation PNGs" || fail "plot PNGs missing"
  else fail "plot_study.py on study.h5"; cat "$tmp/plot.log"; fi
  "$LMDISP" train --n-layer 2 --n-embd 16 --n-head 2 --mlp-dim 32 --batch 4 --seq 16 --steps 4 \
    --checkpoint-steps 0,2,4 --out "$tmp/tr" > /dev/null 2>&1 && \
  "$LMDISP" track "$tmp/tr" --out "$tmp/traj.h5" --sequences 4 --seq-len 16 > /dev/null 2>&1
  if [ -f "$tmp/traj.h5" ] && $PY "$src/analysis/plot_study.py" "$tmp/traj.h5" --out "$tmp/tplots" > "$tmp/tplot.log" 2>&1 \
     && [ -s "$tmp/tplots/heatmaps.png" ] && [ -s "$tmp/tplots/condensation.png" ]; then
    pass "plot_study.py on an lmdisp track trajectory"
  else fail "plot_study.py on a trajectory"; cat "$tmp/tplot.log" 2>/dev/null; fi
else
  echo "skip: matplotlib is not installed for $PY, plots not tested"
fi

echo "test_study: $passes passed, $fails failed"
exit $fails
