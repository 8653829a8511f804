#!/usr/bin/python3
"""plot_study.py — figures of a study file (DIR/study.h5, docs/STUDY.md) or of an
`lmdisp track` trajectory (docs/ANALYSIS.md; recognised by having no /cells group).

    /usr/bin/python3 analysis/plot_study.py DIR/study.h5 --out DIR/plots

Writes PNGs into --out:
  heatmaps.png            cosine-similarity density per layer at the final checkpoint, one panel
                          per (setting, width) (first finished seed), as in Liu et al. Fig. 1
  heatmaps/<cell id>.png  the same for every cell with results
  trend.png               per-model Spearman / Kendall (layer index vs layer mean cosine) against
                          MLP width, one line per setting, mean ± std over seeds
  condensation.png        last-layer mean cosine and per-model Spearman against training tokens
                          from initialization, one line per cell
For a trajectory file: heatmaps.png (final checkpoint) and condensation.png.
Needs h5py, numpy and matplotlib (Agg backend, no display).
"""
import argparse
import os
import sys

import h5py
import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def strings(ds):
    return [s.decode() if isinstance(s, bytes) else str(s) for s in ds[()]]


def draw_heatmap(ax, hist, title):
    """hist: (L1, bins) densities on [-1, 1]; y axis = layer fraction 0..1 (embedding at 0)."""
    L1 = hist.shape[0]
    data = np.where(np.isfinite(hist), hist, 0.0)
    # layer l at fraction l/(L1-1); each row spans half a step either side
    half = 0.5 / max(L1 - 1, 1)
    im = ax.imshow(np.log1p(data), aspect="auto", origin="lower", cmap="magma",
                   extent=[-1, 1, -half, 1 + half], interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("cosine similarity", fontsize=7)
    ax.set_ylabel("layer fraction", fontsize=7)
    ax.tick_params(labelsize=6)
    return im


def symlog_tokens(ax, tokens):
    pos = tokens[tokens > 0]
    if pos.size:
        ax.set_xscale("symlog", linthresh=float(pos.min()))
    ax.set_xlabel("training tokens (0 = initialization)")


def last_index(valid):
    idx = np.nonzero(valid)[0]
    return int(idx[-1]) if idx.size else None


def plot_study(f, out):
    ids = strings(f["cells/id"])
    status = strings(f["cells/status"])
    mlp = f["cells/mlp_dim"][()]
    seed = f["cells/seed"][()]
    group = f["cells/group"][()]
    n_layer = f["cells/n_layer"][()]
    labels = strings(f["summary/label"])
    widths = f["summary/mlp_dim"][()]
    tokens = f["tracking/cell_tokens"][()]
    lmc = f["condensation/layer_mean_cossim"][()]
    hist = f["condensation/cossim_hist"][()]
    rho = f["condensation/spearman"][()]
    written = []

    # (a) heatmaps at each cell's final checkpoint with results
    os.makedirs(os.path.join(out, "heatmaps"), exist_ok=True)
    final = {}
    for i, cid in enumerate(ids):
        k = last_index(np.isfinite(lmc[i, :, 0]))
        if k is None:
            continue
        final[i] = k
        h = hist[i, k, : n_layer[i] + 1]
        fig, ax = plt.subplots(figsize=(4, 3))
        im = draw_heatmap(ax, h, f"{cid}\nstep {f['tracking/step'][k]}")
        fig.colorbar(im, ax=ax, label="log(1 + density)")
        fig.tight_layout()
        p = os.path.join(out, "heatmaps", f"{cid}.png")
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)
    D, W = len(labels), len(widths)
    fig, axes = plt.subplots(D, W, figsize=(2.8 * W + 1, 2.4 * D + 0.5), squeeze=False)
    for d in range(D):
        for w in range(W):
            ax = axes[d][w]
            cand = [i for i in final if group[i] == d and mlp[i] == widths[w] and status[i] == "done"]
            cand = cand or [i for i in final if group[i] == d and mlp[i] == widths[w]]
            if not cand:
                ax.set_axis_off()
                ax.set_title(f"{labels[d]}, mlp {widths[w]}: no results", fontsize=8)
                continue
            i = min(cand, key=lambda j: seed[j])
            draw_heatmap(ax, hist[i, final[i], : n_layer[i] + 1],
                         f"{labels[d]}, mlp {widths[w]}, seed {seed[i]}")
    fig.suptitle("cosine-similarity density by layer, final checkpoint", fontsize=10)
    fig.tight_layout()
    p = os.path.join(out, "heatmaps.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)

    # (b) per-model rank correlations against width, mean ± std over seeds, final checkpoint
    K = f["tracking/step"].shape[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for m, ax in zip(("spearman", "kendall"), axes):
        mean = f[f"summary/by_width/{m}_mean"][()]
        std = f[f"summary/by_width/{m}_std"][()]
        trend = f[f"summary/trend_{m}"][()]
        for d in range(D):
            k = last_index(np.isfinite(mean[d]).any(axis=0)) if K else None
            if k is None:
                continue
            y, e = mean[d, :, k], np.nan_to_num(std[d, :, k])  # one seed: no error bar
            ax.errorbar(widths, y, yerr=e, marker="o", capsize=3,
                        label=f"{labels[d]} (trend {m} {trend[d, k]:+.2f})")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("MLP width (mlp_dim)")
        ax.set_ylabel(f"per-model {m} (layer index vs mean cosine)")
        ax.axhline(0, color="grey", lw=0.5)
        ax.legend(fontsize=7)
    fig.suptitle("condensation against width at the final checkpoint (mean ± std over seeds)")
    fig.tight_layout()
    p = os.path.join(out, "trend.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)

    # (c) condensation against tokens from initialization
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-."]
    for i, cid in enumerate(ids):
        ok = np.isfinite(lmc[i, :, 0]) & (tokens[i] >= 0)
        if not ok.any():
            continue
        color = cmap(np.searchsorted(widths, mlp[i]) / max(W - 1, 1))
        ls = styles[group[i] % len(styles)]
        lab = f"mlp {mlp[i]}, {labels[group[i]]}, s{seed[i]}"
        axes[0].plot(tokens[i][ok], lmc[i, ok, n_layer[i]], ls, color=color, marker=".", label=lab)
        axes[1].plot(tokens[i][ok], rho[i, ok], ls, color=color, marker=".", label=lab)
    for ax, yl in zip(axes, ("last-layer mean cosine similarity", "per-model Spearman rho")):
        symlog_tokens(ax, tokens[tokens >= 0])
        ax.set_ylabel(yl)
    axes[1].legend(fontsize=6)
    fig.suptitle("condensation during training (colour: width, line style: setting)")
    fig.tight_layout()
    p = os.path.join(out, "condensation.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)
    return written


def plot_track(f, out):
    step = f["step"][()]
    tokens = f["tokens"][()] if "tokens" in f else step
    lmc = f["layer_mean_cossim"][()]
    hist = f["cossim_hist"][()]
    rho = f["spearman"][()]
    written = []
    fig, ax = plt.subplots(figsize=(5, 3.5))
    im = draw_heatmap(ax, hist[-1], f"final checkpoint (step {step[-1]})")
    fig.colorbar(im, ax=ax, label="log(1 + density)")
    fig.tight_layout()
    p = os.path.join(out, "heatmaps.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)
    x = tokens if (tokens >= 0).all() else step
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(x, lmc[:, -1], marker=".")
    axes[1].plot(x, rho, marker=".")
    for ax, yl in zip(axes, ("last-layer mean cosine similarity", "Spearman rho")):
        symlog_tokens(ax, np.asarray(x))
        if x is step:
            ax.set_xlabel("training step (0 = initialization)")
        ax.set_ylabel(yl)
    fig.tight_layout()
    p = os.path.join(out, "condensation.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", help="study.h5 or an `lmdisp track` trajectory file")
    ap.add_argument("--out", required=True, help="directory for the PNGs (created)")
    a = ap.parse_args()
    try:
        f = h5py.File(a.file, "r")
    except OSError as e:
        sys.exit(f"plot_study.py: cannot open {a.file}: {e}")
    os.makedirs(a.out, exist_ok=True)
    with f:
        written = plot_study(f, a.out) if "cells" in f else plot_track(f, a.out)
    for p in written:
        print(p)


if __name__ == "__main__":
    main()
