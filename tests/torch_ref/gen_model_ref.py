# Regenerate the fixtures: cd tests/torch_ref && /usr/bin/python3 gen_model_ref.py
# (writes tests/ref/model_*.{h5,bin}; add --skip-self-check to skip the ~40 s self-check).
"""gen_model_ref.py — the committed PyTorch reference fixtures compared by tests/test_torch_ref.c.

Writes into tests/ref/:
  model_ckpt.h5            a tiny random model (DESIGN 4.1 checkpoint, float32 params)
  model_tokens.bin         600 tokens, llm.c shard (DESIGN 4.2)
  model_step_<case>.h5     the DESIGN 4.3 dump of the first B=3, T=12 batch, float64, with the
                           flags to pass as attributes of /args
  model_train_<case>.h5    /params (float64) after 4 AdamW steps, hyperparameters in /args,
                           per-step loss / grad norm / lr in /history

It also prints how far a float32 run of the same reference lands from the float64 one, the
floor any float32 implementation (lmdisp) can be expected to reach; the C test's tolerances
are set well above that floor and well below the size of a real bug.
"""

import os
import sys

import h5py
import numpy as np
import torch

import lmdisp_ref as R

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "ref")

CFG = dict(vocab_size=61, n_ctx=16, n_layer=3, n_embd=16, n_head=4, mlp_dim=40)
B, T = 3, 12
N_TOKENS = 600

# (case name, dispersion dict or None). Coefficients and temperatures vary so that a flag the
# C side ignores shows up as a mismatch.
STEP_CASES = [
    ("off", None),
    ("angular_spread_all", dict(variant="angular_spread", location="all", coeff=0.1)),
    ("angular_spread_last", dict(variant="angular_spread", location="last", coeff=0.5,
                                 tau_cos=0.7)),
    ("decorrelation_all", dict(variant="decorrelation", location="all", coeff=0.1)),
    ("decorrelation_last", dict(variant="decorrelation", location="last", coeff=0.5)),
    ("l2_repel_all", dict(variant="l2_repel", location="all", coeff=0.1, tau_l2=2.0)),
    ("l2_repel_last", dict(variant="l2_repel", location="last", coeff=0.1)),
    ("orthogonalization_all", dict(variant="orthogonalization", location="all", coeff=0.1)),
    ("orthogonalization_last", dict(variant="orthogonalization", location="last", coeff=0.5)),
]

TRAIN = dict(steps=4, lr=1e-2, warmup_ratio=0.25, clip=1.0, weight_decay=0.1)
TRAIN_CASES = [
    ("off", None),
    ("angular_spread_all", dict(variant="angular_spread", location="all", coeff=0.5)),
]


def random_params(seed):
    """Parameters that exercise every path: weights N(0, 0.2) (10x init, so hidden states
    are far from degenerate), random biases, LayerNorm weights 1 + N(0, 0.2) and biases."""
    g = torch.Generator().manual_seed(seed)
    p = {}
    for name, shape in R.param_shapes(CFG):
        x = torch.randn(shape, dtype=torch.float64, generator=g) * 0.2
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            x = x + 1.0
        # round to float32 now: the checkpoint holds float32 and the reference computes
        # from exactly those values
        p[name] = x.to(torch.float32).to(torch.float64)
    return p


def full_disp(d):
    if d is None:
        return None
    out = dict(tau_cos=1.0, tau_l2=1.0)
    out.update(d)
    return out


def write_args(f, disp, extra):
    """Attributes of /args: what the C test passes on the lmdisp command line."""
    a = f.create_group("args")
    d = full_disp(disp)
    a.attrs["dispersion"] = np.bytes_("off" if d is None else d["variant"])
    a.attrs["location"] = np.bytes_("all" if d is None else d["location"])
    a.attrs["coeff"] = np.float64(0.0 if d is None else d["coeff"])
    a.attrs["tau_cos"] = np.float64(1.0 if d is None else d["tau_cos"])
    a.attrs["tau_l2"] = np.float64(1.0 if d is None else d["tau_l2"])
    a.attrs["batch"] = np.int64(B)
    a.attrs["seq"] = np.int64(T)
    for k, v in extra.items():
        a.attrs[k] = np.int64(v) if isinstance(v, int) else np.float64(v)


def maxrel(a, b):
    """max |a-b| / max |b| (0 if b is all zero)."""
    m = np.abs(b).max()
    return float(np.abs(a - b).max() / m) if m > 0 else float(np.abs(a - b).max())


def geometry_report(hidden):
    """How many cosines the clamp touches and how many orthogonalization hinges are active,
    per hidden state: the fixtures should exercise both sides of both."""
    for l in range(1, hidden.shape[0]):
        cl, hi, tot = 0, 0, 0
        for b in range(hidden.shape[1]):
            z = torch.tensor(hidden[l, b])
            zh = z / (z.norm(dim=1, keepdim=True) + R.DISP_EPS)
            c = R._offdiag(zh @ zh.T)
            cl += int((c.abs() > 1 - R.CLAMP_T).sum())
            hi += int((c > 0).sum())   # D < margin 0.5 <=> cos > 0
            tot += c.numel()
        print(f"  hidden {l}: {cl}/{tot} cosines clamped, {hi}/{tot} hinges active")


def main():
    if "--skip-self-check" not in sys.argv:
        R.self_check()
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float64)

    params = random_params(0)
    ck = os.path.join(OUT, "model_ckpt.h5")
    R.write_checkpoint(ck, CFG, params, step=0, tokens=0, seed=0)
    rng = np.random.default_rng(20240520)
    tokens = rng.integers(0, CFG["vocab_size"], N_TOKENS)
    tk = os.path.join(OUT, "model_tokens.bin")
    R.write_shard(tk, tokens)
    # everything below reads the files back, as lmdisp will
    cfg, _ = R.read_checkpoint(ck)
    assert cfg == CFG
    tokens = R.read_shard(tk)
    assert len(tokens) == N_TOKENS

    print(f"float32-vs-float64 floor of the reference itself (max|diff| / max|ref|):")
    for case, disp in STEP_CASES:
        _, p64 = R.read_checkpoint(ck, torch.float64)
        ref = R.step_dump(p64, cfg, tokens, B, T, full_disp(disp))
        _, p32 = R.read_checkpoint(ck, torch.float32)
        lo = R.step_dump(p32, cfg, tokens, B, T, full_disp(disp))
        worst_g = max(maxrel(lo["grads"][n], ref["grads"][n]) for n in ref["grads"])
        print(f"  {case:24s} loss {ref['loss']:.10f} ce {ref['ce_loss']:.10f} "
              f"disp {ref['dispersion_loss']:.10f} | f32: loss {abs(lo['loss']-ref['loss']):.1e} "
              f"logits {maxrel(lo['logits'], ref['logits']):.1e} "
              f"hidden {maxrel(lo['hidden_states'], ref['hidden_states']):.1e} "
              f"grads {worst_g:.1e}")
        if case == "off":
            geometry_report(ref["hidden_states"])
        with h5py.File(os.path.join(OUT, f"model_step_{case}.h5"), "w") as f:
            write_args(f, disp, {})
            for k in ("loss", "ce_loss", "dispersion_loss"):
                f.create_dataset(k, data=np.float64(ref[k]))
            f.create_dataset("logits", data=ref["logits"])
            f.create_dataset("hidden_states", data=ref["hidden_states"])
            g = f.create_group("grads")
            for n, _ in R.param_shapes(cfg):
                g.create_dataset(n, data=ref["grads"][n])

    for case, disp in TRAIN_CASES:
        res = {}
        for dt in (torch.float64, torch.float32):
            _, p = R.read_checkpoint(ck, dt)
            hist = R.train(p, cfg, tokens, B, T, TRAIN["steps"], TRAIN["lr"],
                           TRAIN["warmup_ratio"], TRAIN["clip"], TRAIN["weight_decay"],
                           full_disp(disp), log=print if dt == torch.float64 else None)
            res[dt] = ({n: p[n].detach().numpy().astype(np.float64) for n in p}, hist)
        ref, hist = res[torch.float64]
        lo = res[torch.float32][0]
        start = R.read_checkpoint(ck)[1]
        # the key bias (rows C..2C-1 of attn.qkv.bias) has an exactly zero gradient (softmax
        # ignores a per-query constant), so Adam turns rounding noise into O(lr) steps there:
        # report it apart from everything else
        C = cfg["n_embd"]
        kb = lambda n, a: a[C:2 * C] if n.endswith("attn.qkv.bias") else a[:0]
        rest = lambda n, a: (np.concatenate([a[:C], a[2 * C:]]) if n.endswith("attn.qkv.bias")
                             else a)
        worst = max(float(np.abs(rest(n, lo[n]) - rest(n, ref[n])).max()) for n in ref)
        worst_k = max([float(np.abs(kb(n, lo[n]) - kb(n, ref[n])).max(initial=0.0))
                       for n in ref])
        moved = max(float(np.abs(ref[n] - start[n].detach().numpy()).max()) for n in ref)
        print(f"  train {case}: max |param - init| {moved:.3e}; float32 run differs by at "
              f"most {worst:.2e} (key biases: {worst_k:.2e})")
        with h5py.File(os.path.join(OUT, f"model_train_{case}.h5"), "w") as f:
            write_args(f, disp, TRAIN)
            g = f.create_group("params")
            for n, _ in R.param_shapes(cfg):
                g.create_dataset(n, data=ref[n])
            h = f.create_group("history")
            h.create_dataset("loss", data=np.array([x[0] for x in hist]))
            h.create_dataset("grad_norm", data=np.array([x[1] for x in hist]))
            h.create_dataset("lr", data=np.array([x[2] for x in hist]))

    total = sum(os.path.getsize(os.path.join(OUT, fn)) for fn in os.listdir(OUT)
                if fn.startswith("model_"))
    print(f"wrote {OUT}: model_* total {total} bytes")


if __name__ == "__main__":
    main()
