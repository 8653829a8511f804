#!/usr/bin/python3
"""Writes tests/ref/geometry_ref.h5: hidden states and float64 numpy/scipy values of every
metric of analysis/geometry.h (DESIGN.md section 1), read by tests/test_geometry.c.

Run with the interpreter that has numpy/scipy/h5py:  /usr/bin/python3 tests/gen_geometry_ref.py

Groups (one per shape, so both Gram-matrix branches of the spectrum are exercised):
  /a : L1=3 layers, 4 sequences, T=16, d=24 (d > T), 128 bins
  /b : L1=2 layers, 3 sequences, T=20, d=8  (d <= T), 10 bins (edges not binary fractions)
Each holds
  hidden        float32 (L1, n_seq, T, d)   the input; the references use exactly these values
  layer_mean, offdiag_mean, sv_entropy, mev    float64 (L1)
  hist          float64 (L1, nbins)          numpy.histogram(range=(-1, 1), density=True)
  spearman, kendall  float64 scalars         scipy, layer means vs layer index
  last_n_mean   float64 (6)                  N = 1..5 then floor(L1/2); NaN where N > L1
  attribute nbins
The data include rows of zero and near-zero norm (the 1e-3 norm floor matters), and
near-duplicate rows (float32 cosines slightly above 1, so the clip matters). Seeds are chosen
so that no averaged cosine lies within 1e-5 of an interior histogram edge: the float32 C code
and this float64 reference then must agree on every bin count exactly.
"""
import os
import warnings

import h5py
import numpy as np
from scipy import stats

NORM_FLOOR = 1e-3
EDGE_MARGIN = 1e-5


def make_hidden(rng, L1, n_seq, T, d, strengths):
    h = np.empty((L1, n_seq, T, d), dtype=np.float32)
    for l in range(L1):
        shared = rng.normal(size=d)  # a common direction whose weight sets the layer's mean cosine
        shared /= np.linalg.norm(shared)
        for s in range(n_seq):
            x = rng.normal(size=(T, d)) / np.sqrt(d) + strengths[l] * shared
            x *= rng.uniform(0.5, 3.0, size=(T, 1))  # norms vary; cosines must not care
            # near-duplicates: cosine 1 - O(1e-8), above 1 after float32 rounding for some
            x[1] = x[0] * 1.5 + 1e-9 * rng.normal(size=d)
            x[T - 1] = x[T - 2] * (1.0 + 1e-7)
            # Row 2 is tiny: below the 1e-3 floor a row is not rescaled to unit norm, so its
            # diagonal entry is (norm / 1e-3)^2 < 1. All tiny variants sit in the same row so
            # that its averaged diagonal is not (n_seq - 1) / n_seq, which is a bin edge.
            if s == 0:
                x[2] = 0.0  # an exactly zero row
            elif s == 1:
                x[2] *= 1e-7 / np.linalg.norm(x[2])
            else:
                x[2] *= rng.uniform(2e-4, 8e-4) / np.linalg.norm(x[2])
            h[l, s] = x.astype(np.float32)
    return h


def cos_matrix(x):
    x = x.astype(np.float64)
    nrm = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), NORM_FLOOR)
    xn = x / nrm
    return np.clip(xn @ xn.T, -1.0, 1.0)


def spectrum(x):
    s = np.linalg.svd(x.astype(np.float64), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return -(p * np.log2(p)).sum(), s[0] ** 2 / (s ** 2).sum()


def last_n(m, N):
    return float(np.mean(m[-N:])) if 1 <= N <= len(m) else float("nan")


def metrics(h, nbins):
    L1, n_seq, T, _ = h.shape
    out = {k: np.empty(L1) for k in ("layer_mean", "offdiag_mean", "sv_entropy", "mev")}
    out["hist"] = np.empty((L1, nbins))
    edges = np.linspace(-1.0, 1.0, nbins + 1)[1:-1]
    min_gap = np.inf
    for l in range(L1):
        cavg = np.mean([cos_matrix(h[l, s]) for s in range(n_seq)], axis=0)
        off = ~np.eye(T, dtype=bool)
        out["layer_mean"][l] = cavg.mean()
        out["offdiag_mean"][l] = cavg[off].mean()
        out["hist"][l] = np.histogram(cavg.ravel(), bins=nbins, range=(-1.0, 1.0), density=True)[0]
        gaps = np.abs(cavg.ravel()[:, None] - edges[None, :])
        min_gap = min(min_gap, gaps.min())
        sp = np.array([spectrum(h[l, s]) for s in range(n_seq)])
        out["sv_entropy"][l] = sp[:, 0].mean()
        out["mev"][l] = sp[:, 1].mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idx = np.arange(L1, dtype=np.float64)
        out["spearman"] = stats.spearmanr(out["layer_mean"], idx).correlation
        out["kendall"] = stats.kendalltau(out["layer_mean"], idx, variant="b").correlation
    out["last_n_mean"] = np.array([last_n(out["layer_mean"], N) for N in (1, 2, 3, 4, 5, L1 // 2)])
    return out, min_gap


def build(seed, L1, n_seq, T, d, strengths, nbins):
    # Advance the seed until no averaged cosine sits near an interior bin edge (see docstring).
    for attempt in range(100):
        rng = np.random.default_rng(seed + attempt)
        h = make_hidden(rng, L1, n_seq, T, d, strengths)
        out, gap = metrics(h, nbins)
        if gap > EDGE_MARGIN:
            return h, out, seed + attempt, gap
    raise RuntimeError("no seed without near-edge cosines")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "ref", "geometry_ref.h5")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    specs = {
        # non-monotone layer means: rho = 0.5, tau = 1/3 (wiring of the layer index matters)
        "a": dict(seed=1000, L1=3, n_seq=4, T=16, d=24, strengths=[0.3, 1.5, 0.8], nbins=128),
        "b": dict(seed=2000, L1=2, n_seq=3, T=20, d=8, strengths=[1.0, 0.2], nbins=10),
    }
    with h5py.File(path, "w") as f:
        f.attrs["generator"] = "tests/gen_geometry_ref.py"
        for name, sp in specs.items():
            h, out, seed, gap = build(sp["seed"], sp["L1"], sp["n_seq"], sp["T"], sp["d"],
                                      sp["strengths"], sp["nbins"])
            g = f.create_group(name)
            g.attrs["nbins"] = np.int64(sp["nbins"])
            g.attrs["seed"] = np.int64(seed)
            g.create_dataset("hidden", data=h)
            for k, v in out.items():
                g.create_dataset(k, data=np.asarray(v, dtype=np.float64))
            print(name, "seed", seed, "min edge gap %.2e" % gap, "layer_mean", out["layer_mean"],
                  "rho", out["spearman"], "tau", out["kendall"])
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
