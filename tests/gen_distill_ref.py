#!/usr/bin/python3
"""Reference values for tests/test_distill.c: the distillation loss of docs/DISTILL.md,
written from its definition with torch.nn.functional (float64), gradient by autograd.

    loss = (1 - alpha) * mean_n CE(s_n, y_n)
           + alpha * T^2 * mean_n KL(softmax(t_n / T) || softmax(s_n / T))

(KL computed as F.kl_div(log_softmax(s/T), log_softmax(t/T), log_target=True,
reduction='batchmean'), which is sum over the vocabulary, mean over the N rows.)

Run with /usr/bin/python3 (needs torch, numpy, h5py):
    /usr/bin/python3 tests/gen_distill_ref.py [tests/ref/distill_ref.h5]

Layout (small, committed; CI has no torch):
    /n_cases                int64 scalar
    /case_K/s, /case_K/t    float32 (N, V) student and teacher logits, as the C test reads them
    /case_K/targets         int32 (N)
    /case_K/alpha, /T       float64 scalars
    /case_K/loss, /ce, /kl  float64 scalars (from the float32 inputs, in float64)
    /case_K/grad            float64 (N, V) d loss / d s
"""
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F


def reference(s32, t32, y, alpha, T):
    s = torch.tensor(s32.astype(np.float64), requires_grad=True)
    t = torch.tensor(t32.astype(np.float64))
    yy = torch.tensor(y.astype(np.int64))
    ce = F.cross_entropy(s, yy)
    kl = F.kl_div(F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1), log_target=True,
                  reduction="batchmean")
    loss = (1 - alpha) * ce + alpha * T * T * kl
    loss.backward()
    return loss.item(), ce.item(), kl.item(), s.grad.numpy()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/ref/distill_ref.h5"
    rng = np.random.default_rng(20261202)
    cases = [
        # N, V, alpha, T, logit scale of s, of t
        (6, 11, 0.5, 2.0, 1.0, 1.5),
        (5, 7, 1.0, 1.0, 2.0, 2.0),     # pure KL
        (4, 9, 0.3, 4.0, 1.0, 1.0),
        (3, 13, 0.9, 0.5, 3.0, 200.0),  # sharp teacher: some p_t underflow to exactly 0 at T = 0.5
    ]
    with h5py.File(out, "w") as f:
        f["n_cases"] = np.int64(len(cases))
        for k, (N, V, alpha, T, ss, ts) in enumerate(cases):
            s = (ss * rng.standard_normal((N, V))).astype(np.float32)
            t = (ts * rng.standard_normal((N, V))).astype(np.float32)
            y = rng.integers(0, V, N).astype(np.int32)
            loss, ce, kl, grad = reference(s, t, y, alpha, T)
            g = f.create_group(f"case_{k}")
            g["s"], g["t"], g["targets"] = s, t, y
            g["alpha"], g["T"] = np.float64(alpha), np.float64(T)
            g["loss"], g["ce"], g["kl"] = np.float64(loss), np.float64(ce), np.float64(kl)
            g["grad"] = grad
            print(f"case {k}: N={N} V={V} alpha={alpha} T={T} loss={loss:.6f} ce={ce:.6f} kl={kl:.6f}")
    print("wrote", out)


if __name__ == "__main__":
    main()
