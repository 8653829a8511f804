#!/usr/bin/python3
"""Reference values for tests/test_dispersion.c: the four dispersion losses of DESIGN.md
section 3, written straight from their definitions in PyTorch (float64), gradients by autograd.

Run with /usr/bin/python3 (needs torch, numpy, h5py):
    /usr/bin/python3 tests/gen_dispersion_ref.py [tests/ref/dispersion_ref.h5]

Output layout (small, committed; CI has no torch):
    /            attrs n_cases (int64), eps, clamp_threshold, margin, generator
    /case_NN     attrs variant (fixed-length ASCII), tau_cos, tau_l2 (float64), note (ASCII)
                 z     float32 (L, F)   the input, exactly as the C test reads it
                 loss  float64 scalar   loss at z (computed in float64 from the float32 z)
                 grad  float64 (L, F)   dloss/dz
"""
import math
import sys

import h5py
import numpy as np
import torch

EPS = 1e-2
CLAMP_T = 0.25
MARGIN = 0.5
L2_MEAN_SQ = 0.1


def st_clamp(c):
    """Value of clamp(c, -1+t, 1-t), gradient of the identity (straight-through)."""
    return c + (c.clamp(-1.0 + CLAMP_T, 1.0 - CLAMP_T) - c).detach()


def angular_distance(z):
    zhat = z / (z.norm(dim=-1, keepdim=True) + EPS)
    c = zhat @ zhat.T
    return torch.arccos(st_clamp(c)) / math.pi


def offdiag(L):
    return ~torch.eye(L, dtype=torch.bool)


def angular_spread(z, tau_cos, tau_l2):
    L = z.shape[0]
    l = -angular_distance(z) / tau_cos
    return torch.logsumexp(l[offdiag(L)] + EPS, dim=0) - math.log(L * (L - 1))


def decorrelation(z, tau_cos, tau_l2):
    L, F = z.shape
    zbar = (z - z.mean(dim=-1, keepdim=True)) / z.std(dim=-1, keepdim=True)  # unbiased std
    cov = zbar @ zbar.T / (F - 1)
    return (cov[offdiag(L)] ** 2).mean()


def l2_repel(z, tau_cos, tau_l2):
    L = z.shape[0]
    D = ((z[:, None, :] - z[None, :, :]) ** 2).sum(dim=-1)  # all (i, j), diagonal included
    return (torch.logsumexp((-D / tau_l2 + EPS).reshape(-1), dim=0) - math.log(L * L)
            + L2_MEAN_SQ * (z ** 2).mean())


def orthogonalization(z, tau_cos, tau_l2):
    L = z.shape[0]
    D = angular_distance(z)
    return (torch.clamp(MARGIN - D[offdiag(L)], min=0.0) ** 2).mean()


VARIANTS = {
    "angular_spread": angular_spread,
    "decorrelation": decorrelation,
    "l2_repel": l2_repel,
    "orthogonalization": orthogonalization,
}


def make_z(rng, L, F, scale, offset=0.0, clamp_pairs=False):
    z = scale * rng.standard_normal((L, F))
    if offset:
        # A shared component, as in condensed hidden states.
        z += offset * rng.standard_normal(F)[None, :]
    if clamp_pairs:
        # Token 1 nearly parallel to token 0 (cos > 0.75), token 3 nearly anti-parallel to
        # token 2 (cos < -0.75): both pairs sit in the clamped region.
        z[1] = 1.3 * z[0] + 0.05 * scale * rng.standard_normal(F)
        z[3] = -0.8 * z[2] + 0.05 * scale * rng.standard_normal(F)
    return z.astype(np.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/ref/dispersion_ref.h5"
    rng = np.random.default_rng(20260217)
    cases = []  # (variant, z, tau_cos, tau_l2, note)
    for L, F in [(5, 8), (17, 24)]:
        for tau in [1.0, 0.3]:
            cases.append(("angular_spread", make_z(rng, L, F, 1.0), tau, 1.0, "random"))
        cases.append(("decorrelation", make_z(rng, L, F, 1.0, offset=0.5), 1.0, 1.0, "random"))
        cases.append(("orthogonalization", make_z(rng, L, F, 1.0), 1.0, 1.0, "random"))
        for tau in [1.0, 4.0]:
            cases.append(("l2_repel", make_z(rng, L, F, 0.3), 1.0, tau, "random"))
    # Clamped pairs: the straight-through gradient must be the arccos derivative at the edge.
    cases.append(("angular_spread", make_z(rng, 6, 8, 1.0, clamp_pairs=True), 0.5, 1.0, "clamped"))
    cases.append(("orthogonalization", make_z(rng, 6, 8, 1.0, clamp_pairs=True), 1.0, 1.0,
                  "clamped"))
    # Condensed tokens: a large shared component on top of small differences.
    cases.append(("l2_repel", make_z(rng, 9, 16, 0.3, offset=3.0), 1.0, 2.0, "condensed"))
    cases.append(("angular_spread", make_z(rng, 9, 16, 0.3, offset=1.0), 0.2, 1.0, "condensed"))

    with h5py.File(out, "w") as f:
        f.attrs["n_cases"] = np.int64(len(cases))
        f.attrs["eps"] = EPS
        f.attrs["clamp_threshold"] = CLAMP_T
        f.attrs["margin"] = MARGIN
        f.attrs["generator"] = np.bytes_("tests/gen_dispersion_ref.py (torch %s, float64)"
                                         % torch.__version__)
        for n, (variant, z32, tau_cos, tau_l2, note) in enumerate(cases):
            z = torch.tensor(z32.astype(np.float64), requires_grad=True)
            loss = VARIANTS[variant](z, tau_cos, tau_l2)
            (grad,) = torch.autograd.grad(loss, z)
            g = f.create_group("case_%02d" % n)
            g.attrs["variant"] = np.bytes_(variant)
            g.attrs["tau_cos"] = float(tau_cos)
            g.attrs["tau_l2"] = float(tau_l2)
            g.attrs["note"] = np.bytes_(note)
            g.create_dataset("z", data=z32)
            g.create_dataset("loss", data=np.float64(loss.item()))
            g.create_dataset("grad", data=grad.numpy())
            print("case_%02d %-18s L=%-3d F=%-3d tau_cos=%-4g tau_l2=%-4g %-9s loss=%.10g |grad|max=%.3e"
                  % (n, variant, z32.shape[0], z32.shape[1], tau_cos, tau_l2, note, loss.item(),
                     grad.abs().max().item()))


if __name__ == "__main__":
    main()
