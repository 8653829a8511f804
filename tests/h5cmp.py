"""h5cmp.py A.h5 B.h5 — exit 0 when two study files hold the same datasets and attributes,
ignoring the provenance attributes that legitimately differ between runs (times, hosts, rank
count). NaN equals NaN; dtypes must match. Used by test_study.sh and test_slurm.sh."""
import sys, h5py, numpy as np
VOLATILE = {"created", "start_time", "end_time", "hosts", "n_ranks"}
def items(f):
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
def same(a, b):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b) and getattr(a, "dtype", None) == getattr(b, "dtype", None)
def compare(pa, pb, skip=()):
    bad = []
    with h5py.File(pa, "r") as fa, h5py.File(pb, "r") as fb:
        da, db = items(fa), items(fb)
        if set(da) != set(db): bad.append(f"dataset sets differ: {sorted(set(da) ^ set(db))}")
        for k in sorted(set(da) & set(db)):
            if any(k.startswith(s) for s in skip): continue
            if not same(da[k], db[k]): bad.append(f"dataset {k} differs")
        for k in set(fa.attrs) | set(fb.attrs):
            if k in VOLATILE: continue
            if k not in fa.attrs or k not in fb.attrs or not same(fa.attrs[k], fb.attrs[k]):
                bad.append(f"attribute {k} differs")
    return bad
if __name__ == "__main__":
    bad = compare(sys.argv[1], sys.argv[2])
    for b in bad: print("  " + b)
    sys.exit(1 if bad else 0)
