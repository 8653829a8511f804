#!/usr/bin/python3
"""plot_study.py — figures of a study file (DIR/study.h5, docs/STUDY.md) or of an
`lmdisp track` trajectory (docs/ANALYSIS.md; recognised by having no /cells group).

    /usr/bin/python3 analysis/plot_study.py DIR/study.h5 --out DIR/plots

Writes PNGs into --out:
  heatmaps.png            cosine-similarity density per layer (rows named embedding, block i,
                          final norm) at the final checkpoint, one panel per (setting, width)
                          (lowest finished seed), one colour bar, as in Liu et al. Fig. 1
  heatmaps/<cell id>.png  the same for every cell with results
  figure2.png             the paper's Figure 2/3 layout: per setting, the heatmap of each model
                          and a panel of per-model Spearman / Kendall against width
  trend.png               every per-model statistic (rho, tau, last_layer, last_half) against
                          width: seeds as points, mean ± std per setting, cross-grid trend in
                          the legend
  condensation.png        last-layer and last-half mean cosine, per-model rho and validation
                          loss against training tokens from initialization, one column per
                          setting (colour: width, marker: seed)
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


def layer_names(n_layer):
    """Hidden-state names as DESIGN.md section 1 indexes them (Hugging Face's convention)."""
    return (["embedding"] + [f"block {i}" for i in range(1, n_layer)]
            + [f"final norm (block {n_layer})"])


HEAT_NORM = None  # one colour scale for every panel of a figure (set per figure)


def draw_heatmap(ax, hist, title, vmax=None, names=True):
    """hist: (L1, bins) densities on [-1, 1]; one row per hidden state, embedding at the
    bottom, the final norm at the top, labelled by name."""
    L1 = hist.shape[0]
    data = np.log1p(np.where(np.isfinite(hist), hist, 0.0))
    im = ax.imshow(data, aspect="auto", origin="lower", cmap="magma", vmin=0.0, vmax=vmax,
                   extent=[-1, 1, -0.5, L1 - 0.5], interpolation="nearest")
    ax.set_yticks(range(L1))
    ax.set_yticklabels(layer_names(L1 - 1) if names else [""] * L1, fontsize=6)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("cosine similarity", fontsize=7)
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


def save(fig, out, name, written):
    p = os.path.join(out, name)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    written.append(p)


def fmt(x):
    return "nan" if not np.isfinite(x) else f"{x:+.2f}"


def log_widths(ax, widths):
    """Log-2 width axis with the widths as ticks; also when a panel has no data."""
    if len(widths) and min(widths) > 0:
        ax.set_xscale("log", base=2)
        ax.set_xlim(min(widths) / 1.25, max(widths) * 1.25)
        ax.set_xticks(widths)
        ax.set_xticklabels([str(w) for w in widths])


MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def plot_study(f, out):
    ids = strings(f["cells/id"])
    status = strings(f["cells/status"])
    mlp = f["cells/mlp_dim"][()]
    seed = f["cells/seed"][()]
    group = f["cells/group"][()]
    n_layer = f["cells/n_layer"][()]
    labels = strings(f["summary/label"])
    widths = f["summary/mlp_dim"][()]
    steps = f["tracking/step"][()]
    tokens = f["tracking/cell_tokens"][()]
    lmc = f["condensation/layer_mean_cossim"][()]
    hist = f["condensation/cossim_hist"][()]
    rho = f["condensation/spearman"][()]
    tau = f["condensation/kendall"][()]
    lastn = f["condensation/last_n_mean"][()]
    val = f["loss/val"][()]
    C, K = rho.shape
    D, W = len(labels), len(widths)
    done = np.array([s == "done" for s in status])
    last_layer = np.array([lmc[i, :, n_layer[i]] for i in range(C)]) if C else np.zeros((0, K))
    per_model = {"rho": rho, "tau": tau, "last_layer": last_layer, "last_half": lastn[:, :, 5]}
    ylabels = {"rho": "per-model Spearman rho\n(layer index vs layer mean)",
               "tau": "per-model Kendall tau\n(layer index vs layer mean)",
               "last_layer": "last-layer mean cosine", "last_half": "last-half mean cosine"}
    trend = {s: (f[f"summary/trend/{s}/spearman"][()], f[f"summary/trend/{s}/kendall"][()])
             for s in ("rho", "last_layer", "last_half")}
    written = []

    # (a) heatmaps at each cell's final checkpoint with results: one file per cell, and one
    # panel per (setting, width) (lowest finished seed) on a common colour scale
    os.makedirs(os.path.join(out, "heatmaps"), exist_ok=True)
    final = {}
    for i, cid in enumerate(ids):
        k = last_index(np.isfinite(lmc[i, :, 0]))
        if k is not None:
            final[i] = k
    vmax = max([float(np.nanmax(np.log1p(hist[i, k, : n_layer[i] + 1]))) for i, k in final.items()]
               or [1.0])
    for i, k in final.items():
        fig, ax = plt.subplots(figsize=(5, 3.2))
        im = draw_heatmap(ax, hist[i, k, : n_layer[i] + 1], f"{ids[i]}\nstep {steps[k]}", vmax)
        fig.colorbar(im, ax=ax, label="log(1 + density)")
        fig.tight_layout()
        save(fig, os.path.join(out, "heatmaps"), f"{ids[i]}.png", written)

    def pick(d, w):
        cand = [i for i in final if group[i] == d and mlp[i] == widths[w] and done[i]]
        cand = cand or [i for i in final if group[i] == d and mlp[i] == widths[w]]
        return min(cand, key=lambda j: seed[j]) if cand else None

    def heat_row(axes_row, d):
        im = None
        for w in range(W):
            ax, i = axes_row[w], pick(d, w)
            if i is None:
                ax.set_axis_off()
                ax.set_title(f"{labels[d]}, mlp {widths[w]}: no results", fontsize=8)
                continue
            im = draw_heatmap(ax, hist[i, final[i], : n_layer[i] + 1],
                              f"{labels[d]}, mlp {widths[w]}, seed {seed[i]}", vmax, names=w == 0)
        return im

    fig, axes = plt.subplots(D, W, figsize=(2.6 * W + 2.2, 2.3 * D + 0.8), squeeze=False)
    im = None
    for d in range(D):
        im = heat_row(axes[d], d) or im
    kf = K - 1
    fig.suptitle(f"cosine-similarity density by layer at the final checkpoint (step {steps[kf]})",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), label="log(1 + density)", fraction=0.03, pad=0.02)
    save(fig, out, "heatmaps.png", written)

    # (b) the paper's Figure 2/3 layout: per setting, the heatmap of each model and a panel of
    # the per-model Spearman and Kendall against width with the cross-grid trend
    fig, axes = plt.subplots(D, W + 1, figsize=(2.6 * W + 4.6, 2.4 * D + 0.8), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * W + [1.5]})
    for d in range(D):
        im = heat_row(axes[d], d) or im
        ax = axes[d][W]
        for s, mk, col in (("rho", "o", "C0"), ("tau", "s", "C1")):
            v = per_model[s][:, kf]
            sel = [i for i in range(C) if group[i] == d and done[i] and np.isfinite(v[i])]
            ax.scatter(mlp[sel] * (1 + 0.04 * (1 if s == "tau" else -1)), v[sel], marker=mk,
                       color=col, alpha=0.45, s=14)
            m = [np.mean([v[i] for i in sel if mlp[i] == w]) if any(mlp[i] == w for i in sel)
                 else np.nan for w in widths]
            ax.plot(widths, m, "-", marker=mk, color=col,
                    label=f"{'Spearman' if s == 'rho' else 'Kendall'} per model")
        log_widths(ax, widths)
        ax.set_xlabel("MLP width", fontsize=7)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="grey", lw=0.5)
        ax.tick_params(labelsize=6)
        ax.set_title(f"{labels[d]}: trend with width\nlast_layer {fmt(trend['last_layer'][0][d, kf])}"
                     f" / {fmt(trend['last_layer'][1][d, kf])} (Spearman / Kendall)", fontsize=7)
        ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(f"layer-wise cosine similarity per model and its depth trend (step {steps[kf]}; "
                 "points = seeds, line = mean)", fontsize=10)
    fig.tight_layout()
    save(fig, out, "figure2.png", written)

    # (c) every per-model statistic against width at the final checkpoint: seeds as points,
    # mean ± std per setting; the cross-grid trend in the legend
    names = ["rho", "tau", "last_layer", "last_half"]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
    for ax, s in zip(axes[0], names):
        v = per_model[s][:, kf]
        for d in range(D):
            sel = [i for i in range(C) if group[i] == d and done[i] and np.isfinite(v[i])]
            if not sel:
                continue
            shift = 1 + 0.06 * (d - (D - 1) / 2)
            col = f"C{d}"
            ax.scatter(mlp[sel] * shift, v[sel], color=col, alpha=0.4, s=14)
            m = np.array([np.mean([v[i] for i in sel if mlp[i] == w]) if any(mlp[i] == w for i in sel)
                          else np.nan for w in widths])
            sd = np.array([np.std([v[i] for i in sel if mlp[i] == w], ddof=1)
                           if sum(mlp[i] == w for i in sel) > 1 else 0.0 for w in widths])
            src = "rho" if s == "tau" else s
            lab = labels[d]
            if s != "tau":
                lab += f" (trend {fmt(trend[src][0][d, kf])} / {fmt(trend[src][1][d, kf])})"
            ax.errorbar(widths * shift, m, yerr=sd, color=col, marker="_", ms=12, capsize=3, label=lab)
        log_widths(ax, widths)
        ax.set_xlabel("MLP width (mlp_dim)")
        ax.set_ylabel(ylabels[s])
        ax.legend(fontsize=6)
    fig.suptitle(f"per-model statistics against width at step {steps[kf]}: points = seeds, bars = "
                 "mean ± std; legend: cross-grid Spearman / Kendall with width", fontsize=9)
    fig.tight_layout()
    save(fig, out, "trend.png", written)

    # (d) condensation against tokens from initialization: one column per setting; colour =
    # width, marker = seed
    rows = [("last_layer", "last-layer mean cosine"), ("last_half", "last-half mean cosine"),
            ("rho", "per-model Spearman rho"), ("val", "validation loss")]
    fig, axes = plt.subplots(len(rows), D, figsize=(5.2 * D, 2.6 * len(rows) + 0.6), squeeze=False,
                             sharex=True)
    cmap = plt.get_cmap("viridis")
    seeds = sorted(set(int(x) for x in seed))
    for i in range(C):
        ok = np.isfinite(lmc[i, :, 0]) & (tokens[i] >= 0)
        if not ok.any():
            continue
        color = cmap(np.searchsorted(widths, mlp[i]) / max(W - 1, 1))
        mk = MARKERS[seeds.index(int(seed[i])) % len(MARKERS)]
        for r, (s, _) in enumerate(rows):
            y = val[i] if s == "val" else per_model[s][i]
            axes[r][group[i]].plot(tokens[i][ok], y[ok], "-", color=color, marker=mk, ms=3, lw=0.8,
                                   alpha=0.8)
    for d in range(D):
        axes[0][d].set_title(labels[d])
        for r, (_, yl) in enumerate(rows):
            axes[r][d].set_ylabel(yl, fontsize=8)
        symlog_tokens(axes[-1][d], tokens[tokens >= 0])
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=cmap(w / max(W - 1, 1)), lw=2, label=f"mlp {widths[w]}")
               for w in range(W)]
    handles += [Line2D([], [], color="k", ls="", marker=MARKERS[j % len(MARKERS)], label=f"seed {s}")
                for j, s in enumerate(seeds)]
    fig.suptitle("condensation during training (colour: width, marker: seed)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    fig.subplots_adjust(top=1 - 1.1 / fig.get_figheight())
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 8), fontsize=7,
               bbox_to_anchor=(0.5, 1 - 0.35 / fig.get_figheight()))
    save(fig, out, "condensation.png", written)
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
