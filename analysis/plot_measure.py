#!/usr/bin/python3
"""plot_measure.py — figures of a measurement study file (DIR/study.h5 with kind "measure",
docs/STUDY.md "Measurement studies") in the paper's layouts.

    /usr/bin/python3 analysis/plot_measure.py DIR/study.h5 --out DIR/plots [--dataset NAME]

Writes PNGs into --out:
  figure2_<family>.png  Figure 2: the family's models (by n_params) as cosine-similarity heatmaps
                        (rows = hidden states, embedding at the bottom), and a panel of each
                        model's Spearman / Kendall (layer index vs layer mean) against n_params,
                        the family trend in its title; on --dataset (default: the first)
  s1_<family>.png       Figure S1: the same, one row per dataset
  series_<family>.png   Feature 3, for families whose models carry training tokens (an
                        hf:ORG/NAME@* series): last-layer and last-half mean cosine and the
                        per-model rho against training tokens from step 0, one line per dataset
  pairs.png             Feature 4: each pair's distilled and base model side by side
                        (heatmaps per dataset, and their rho / last-layer / last-half)
Needs h5py, numpy and matplotlib (Agg backend, no display).
"""
import argparse
import os
import re
import sys

import h5py
import numpy as np

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_study import draw_heatmap, strings, fmt, save  # noqa: E402


def safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def load(path):
    f = h5py.File(path, "r")
    if f.attrs.get("kind") != "measure":
        sys.exit(f"{path}: not a measurement study (root attribute kind != measure)")
    d = {k: strings(f[f"cells/{k}"]) for k in ("id", "family", "model", "dataset", "status")}
    for k in ("n_params", "n_layer", "train_tokens"):
        d[k] = f[f"cells/{k}"][()]
    d["hist"] = f["condensation/cossim_hist"][:, 0]
    d["lmc"] = f["condensation/layer_mean_cossim"][:, 0]
    d["rho"] = f["condensation/spearman"][:, 0]
    d["tau"] = f["condensation/kendall"][:, 0]
    d["half"] = f["condensation/last_n_mean"][:, 0, 5]
    d["last"] = np.array([d["lmc"][i, n] for i, n in enumerate(d["n_layer"])])
    d["label"] = strings(f["summary/label"])
    d["trend"] = {s: (f[f"summary/trend/{s}/spearman"][:, 0], f[f"summary/trend/{s}/kendall"][:, 0])
                  for s in ("rho", "last_layer", "last_half")}
    d["pairs"] = ((f["summary/pairs/distilled_cell"][()], f["summary/pairs/base_cell"][()])
                  if "summary/pairs" in f else (np.zeros(0, int), np.zeros(0, int)))
    return d


def cells_of(d, fam, ds):
    idx = [i for i in range(len(d["id"])) if d["family"][i] == fam and d["dataset"][i] == ds
           and d["status"][i] == "done"]
    return sorted(idx, key=lambda i: (d["n_params"][i], d["model"][i]))


def family_rows(d, fam, datasets, out, name, written, vmax):
    W = max(len(cells_of(d, fam, ds)) for ds in datasets)
    if W == 0:
        return
    fig, axes = plt.subplots(len(datasets), W + 1, figsize=(2.6 * W + 4.2, 2.5 * len(datasets) + 0.8),
                             squeeze=False, gridspec_kw={"width_ratios": [1] * W + [1.5]})
    for r, ds in enumerate(datasets):
        idx = cells_of(d, fam, ds)
        for w in range(W):
            ax = axes[r][w]
            if w >= len(idx):
                ax.set_axis_off()
                continue
            i = idx[w]
            draw_heatmap(ax, d["hist"][i, : d["n_layer"][i] + 1],
                         f"{d['model'][i]}\n{d['n_params'][i]:.3g} params, {ds}", vmax, names=w == 0)
        ax = axes[r][W]
        x = d["n_params"][idx]
        ax.plot(x, d["rho"][idx], "o-", label="Spearman per model")
        ax.plot(x, d["tau"][idx], "s-", label="Kendall per model")
        if len(x) and x.min() > 0 and x.max() > x.min():
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_xticks(x)
            ax.set_xticklabels([f"{v:.3g}" for v in x], fontsize=6)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("parameters", fontsize=7)
        ax.tick_params(labelsize=6)
        g = d["label"].index(f"{fam}/{ds}")
        t = d["trend"]["last_layer"]
        ax.set_title(f"{fam}/{ds}: trend with size\nlast_layer {fmt(t[0][g])} / {fmt(t[1][g])} "
                     "(Spearman / Kendall)", fontsize=7)
        ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{fam}: layer-wise cosine similarity per model and its depth trend", fontsize=10)
    fig.tight_layout()
    save(fig, out, name, written)


def series(d, fam, datasets, out, written):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    any_ = False
    for ds in datasets:
        idx = [i for i in cells_of(d, fam, ds) if d["train_tokens"][i] >= 0]
        idx.sort(key=lambda i: d["train_tokens"][i])
        if len(idx) < 2:
            continue
        any_ = True
        x = d["train_tokens"][idx].astype(float)
        for ax, key, lab in zip(axes, ("last", "half", "rho"),
                                ("last-layer mean cosine", "last-half mean cosine", "per-model rho")):
            ax.plot(x, d[key][idx], "o-", label=ds)
            ax.set_ylabel(lab)
    if not any_:
        plt.close(fig)
        return
    for ax in axes:
        pos = [t for t in d["train_tokens"] if t > 0]
        if pos:
            ax.set_xscale("symlog", linthresh=float(min(pos)))
        ax.set_xlabel("training tokens (revision name; 0 = step 0)")
        ax.legend(fontsize=7)
    fig.suptitle(f"{fam}: condensation over the checkpoint series", fontsize=10)
    fig.tight_layout()
    save(fig, out, f"series_{safe(fam)}.png", written)


def pairs(d, out, written, vmax):
    pd, pb = d["pairs"]
    if not len(pd):
        return
    fig, axes = plt.subplots(len(pd), 3, figsize=(11, 2.6 * len(pd) + 0.6), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1.3]})
    for r, (a, b) in enumerate(zip(pd, pb)):
        for c, i in enumerate((a, b)):
            draw_heatmap(axes[r][c], d["hist"][i, : d["n_layer"][i] + 1],
                         f"{'distilled' if c == 0 else 'base'}: {d['model'][i]}\n{d['dataset'][i]}",
                         vmax, names=c == 0)
        ax = axes[r][2]
        keys = ("rho", "last", "half")
        xs = np.arange(3)
        ax.bar(xs - 0.18, [d[k][a] for k in keys], 0.36, label=d["model"][a])
        ax.bar(xs + 0.18, [d[k][b] for k in keys], 0.36, label=d["model"][b])
        ax.set_xticks(xs)
        ax.set_xticklabels(["rho", "last layer", "last half"], fontsize=7)
        ax.legend(fontsize=6)
    fig.suptitle("distilled models next to their bases", fontsize=10)
    fig.tight_layout()
    save(fig, out, "pairs.png", written)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dataset", help="the dataset of figure2_*.png (default: the first)")
    a = ap.parse_args()
    d = load(a.study)
    os.makedirs(a.out, exist_ok=True)
    datasets = list(dict.fromkeys(d["dataset"]))
    families = list(dict.fromkeys(d["family"]))
    if a.dataset and a.dataset not in datasets:
        sys.exit(f"--dataset {a.dataset}: the study's datasets are {', '.join(datasets)}")
    first = a.dataset or datasets[0]
    fin = np.isfinite(d["hist"])
    vmax = float(np.log1p(d["hist"][fin]).max()) if fin.any() else 1.0
    written = []
    for fam in families:
        family_rows(d, fam, [first], a.out, f"figure2_{safe(fam)}.png", written, vmax)
        family_rows(d, fam, datasets, a.out, f"s1_{safe(fam)}.png", written, vmax)
        series(d, fam, datasets, a.out, written)
    pairs(d, a.out, written, vmax)
    for p in written:
        print(p)


if __name__ == "__main__":
    main()
