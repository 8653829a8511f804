#!/usr/bin/python3
"""torch_reference.py — the PyTorch side of the issue-8 speed comparison.

Trains the same reference model as bench/bench_train.c, in float32 PyTorch (Debian's
python3-torch, which runs its matrix products on the same OpenBLAS as lmdisp), with the same
batch and the same optimizer, and prints tokens/s and ms per step:

  model      n_layer 6, n_embd 256, n_head 8, n_ctx 256, vocab 256, mlp_dim from the flag;
             GPT-2 pre-LN blocks, causal multi-head attention, tanh GELU, final LayerNorm,
             LM head tied to wte (DESIGN.md section 2; tests/torch_ref/lmdisp_ref.py is the
             float64 correctness reference this mirrors)
  batch      B 8 x T 256 random tokens (inputs and targets), cross-entropy mean over B*T
  dispersion off, or angular_spread on hidden states 1..n_layer, coeff 0.1, tau_cos 1
             (lmdisp's defaults; T = max_tokens, so no token subset)
  optimizer  global grad-norm clip at 1.0, then AdamW lr 1e-4, betas 0.9/0.95, eps 1e-8,
             weight decay 0.1 on 2-D weights only (two parameter groups), as bench_train

Speed settings are the ones a fair user would pick on a CPU with torch 1.13 (no
torch.compile, no F.scaled_dot_product_attention): nn.Linear / F.layer_norm /
F.gelu(approximate="tanh") / F.cross_entropy fused kernels, attention scores through one
baddbmm with an additive causal mask (scale and mask in one kernel), foreach AdamW, the
dispersion of all layers batched into one bmm, plain autograd (no hooks, no anomaly
mode), gradients set to None instead of zeroed. --attention sdpa uses torch 1.13's
private fused _scaled_dot_product_attention instead (slower here: its CPU path is the
unfused math); --jit script scripts the blocks with TorchScript, --jit fuse also enables
TorchScript's CPU fuser. bench/compare_torch.sh runs several of these and keeps the best.
TorchScript's profiling executor specializes a graph on its second run, so keep --warmup >= 2.

Run with /usr/bin/python3:
  bench/torch_reference.py [--mlp-dim N] [--threads N] [--blas-threads N] [--steps N] [--warmup N]
                           [--dispersion angular_spread|off|none] [--attention baddbmm|sdpa]
                           [--jit none|script|fuse] [--json] [--profile] [--check]
  --check compares this model (float64) with tests/torch_ref/lmdisp_ref.py and exits.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlp-dim", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads (torch.set_num_threads, OpenBLAS, OpenMP); "
                         "inter-op threads are always 1")
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="OpenBLAS threads, when not the same as --threads (torch's OpenMP "
                         "intra-op threads and OpenBLAS's pthreads are separate pools: on two "
                         "cores, 1 torch thread over 2 BLAS threads can beat 2 over 2)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed steps first (>= 2 so that TorchScript has specialized)")
    ap.add_argument("--dispersion", default="off",
                    choices=["off", "none", "angular_spread"])
    ap.add_argument("--attention", default="baddbmm", choices=["baddbmm", "sdpa"])
    ap.add_argument("--jit", default="none", choices=["none", "script", "fuse"],
                    help="script: TorchScript the blocks; fuse: also turn on TorchScript's "
                         "CPU kernel fuser (NNC), which Debian's 1.13 leaves off")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="after the timed steps, profile one more step with the autograd "
                         "profiler and print the operators by self CPU time (to stderr)")
    ap.add_argument("--check", action="store_true",
                    help="only check this model against tests/torch_ref/lmdisp_ref.py "
                         "(float64, small batch) and exit")
    a = ap.parse_args(argv)
    if a.dispersion == "none":
        a.dispersion = "off"
    if a.blas_threads == 0:
        a.blas_threads = a.threads
    if a.threads < 1 or a.blas_threads < 1 or a.steps < 1 or a.warmup < 0 or a.mlp_dim < 1:
        ap.error("--threads, --blas-threads, --steps, --mlp-dim must be >= 1 and --warmup >= 0")
    return a


ARGS = parse_args(sys.argv[1:])
# OpenBLAS sizes its thread pool when the library is loaded (torch links the same
# libopenblas, the pthread build, as lmdisp) and torch.set_num_threads sets OpenMP only, so
# the thread count must be in the environment before torch is imported.
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.blas_threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)
torch.set_num_interop_threads(1)

N_LAYER, N_EMBD, N_HEAD, N_CTX, VOCAB, B, T = 6, 256, 8, 256, 256, 8, 256
LN_EPS = 1e-5
DISP_EPS, CLAMP_T, DISP_COEFF, TAU_COS = 1e-2, 0.25, 0.1, 1.0
LR, BETAS, ADAM_EPS, WD, CLIP = 1e-4, (0.9, 0.95), 1e-8, 0.1, 1.0


class Block(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)), then + mlp(ln_2(x)). qkv rows: q, k, v, heads
    contiguous in each (DESIGN 4.1), which is what the reshape to (B,T,3,H,hd) reads."""

    def __init__(self, C, H, M, use_sdpa):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=LN_EPS)
        self.qkv = nn.Linear(C, 3 * C)
        self.proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=LN_EPS)
        self.fc = nn.Linear(C, M)
        self.fc_proj = nn.Linear(M, C)
        self.n_head = H
        self.use_sdpa = use_sdpa
        self.scale = 1.0 / math.sqrt(C // H)

    def forward(self, x, mask_add):
        Bb, Tt, C = x.shape
        H = self.n_head
        hd = C // H
        qkv = self.qkv(self.ln_1(x)).view(Bb, Tt, 3, H, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B,H,T,hd) each
        if self.use_sdpa:
            y = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]
        else:
            # scores = mask + scale * q k^T in one kernel, on (B*H, T, T)
            qf = q.reshape(Bb * H, Tt, hd)
            kf = k.reshape(Bb * H, Tt, hd)
            att = torch.baddbmm(mask_add[:Tt, :Tt], qf, kf.transpose(1, 2), beta=1.0,
                                alpha=self.scale)
            att = torch.softmax(att, dim=-1)
            y = torch.bmm(att, v.reshape(Bb * H, Tt, hd)).view(Bb, H, Tt, hd)
        y = y.transpose(1, 2).reshape(Bb, Tt, C)
        x = x + self.proj(y)
        x = x + self.fc_proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    def __init__(self, M, use_sdpa):
        super().__init__()
        self.wte = nn.Parameter(torch.empty(VOCAB, N_EMBD))
        self.wpe = nn.Parameter(torch.empty(N_CTX, N_EMBD))
        self.h = nn.ModuleList(Block(N_EMBD, N_HEAD, M, use_sdpa) for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD, eps=LN_EPS)
        mask = torch.full((N_CTX, N_CTX), float("-inf")).triu(1)
        self.register_buffer("mask_add", mask, persistent=False)
        # DESIGN init: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), biases 0
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * N_LAYER) if n.endswith(("proj.weight",)) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, inputs):
        """inputs (B,T) int64 -> logits (B,T,V), hidden states 1..n_layer (list of (B,T,C);
        the last is ln_f(block output), the Hugging Face convention)."""
        Tt = inputs.shape[1]
        x = F.embedding(inputs, self.wte) + self.wpe[:Tt]
        hidden = []
        for i, blk in enumerate(self.h):
            x = blk(x, self.mask_add)
            if i < N_LAYER - 1:
                hidden.append(x)
        xf = self.ln_f(x)
        hidden.append(xf)
        return F.linear(xf, self.wte), hidden


def angular_spread(hidden):
    """Mean over hidden states and sequences of DESIGN 3's angular_spread, all layers at once:
    hidden is a list of L (B,T,C) tensors -> one (L*B, T, T) cosine bmm."""
    z = torch.cat(hidden, 0)  # (L*B, T, C)
    n, Tt = z.shape[0], z.shape[1]
    zh = z / (torch.linalg.vector_norm(z, dim=-1, keepdim=True) + DISP_EPS)
    c = torch.bmm(zh, zh.transpose(1, 2))
    # straight-through clamp: clamped value, unit gradient
    c = c + (c.clamp(-1.0 + CLAMP_T, 1.0 - CLAMP_T) - c).detach()
    l = torch.arccos(c) * (-1.0 / (math.pi * TAU_COS))
    diag = torch.eye(Tt, dtype=torch.bool)
    l = l.masked_fill(diag, float("-inf"))
    per_seq = torch.logsumexp(l.view(n, -1), dim=1) + DISP_EPS - math.log(Tt * (Tt - 1))
    return per_seq.mean()


def check():
    """Float64 comparison with the float64 reference lmdisp is tested against: loss with
    dispersion and every parameter gradient, on a small batch. Returns the failure count."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                    "torch_ref"))
    import lmdisp_ref as R
    torch.manual_seed(5)
    cfg = dict(vocab_size=VOCAB, n_ctx=N_CTX, n_layer=N_LAYER, n_embd=N_EMBD, n_head=N_HEAD,
               mlp_dim=ARGS.mlp_dim)
    fails = 0
    for sdpa in (False, True):
        model = GPT(ARGS.mlp_dim, sdpa).double()
        with torch.no_grad():  # random biases / LN params so every path is exercised
            for p in model.parameters():
                if p.dim() == 1:
                    p.normal_(0.0, 0.1).add_(1.0 if p.shape[0] == N_EMBD else 0.0)
        ref = {"wte": model.wte, "wpe": model.wpe, "ln_f.weight": model.ln_f.weight,
               "ln_f.bias": model.ln_f.bias}
        for i, blk in enumerate(model.h):
            for ours, theirs in (("ln_1", "ln_1"), ("qkv", "attn.qkv"), ("proj", "attn.proj"),
                                 ("ln_2", "ln_2"), ("fc", "mlp.fc"), ("fc_proj", "mlp.proj")):
                ref[f"h.{i}.{theirs}.weight"] = getattr(blk, ours).weight
                ref[f"h.{i}.{theirs}.bias"] = getattr(blk, ours).bias
        inputs = torch.randint(0, VOCAB, (2, 40))
        targets = torch.randint(0, VOCAB, (2, 40))
        logits, hidden = model(inputs)
        loss = F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1)) \
            + DISP_COEFF * angular_spread(hidden)
        ours_g = torch.autograd.grad(loss, [ref[n] for n, _ in R.param_shapes(cfg)])
        want, _, _, _, _ = R.total_loss(ref, cfg, inputs, targets,
                                        dict(variant="angular_spread", location="all",
                                             coeff=DISP_COEFF))
        want_g = torch.autograd.grad(want, [ref[n] for n, _ in R.param_shapes(cfg)])
        dl = abs(loss.item() - want.item())
        dg = max(((a - b).abs().max() / (b.abs().max() + 1e-30)).item()
                 for a, b in zip(ours_g, want_g))
        ok = dl < 1e-10 and dg < 1e-9
        fails += not ok
        print(f"check ({'sdpa' if sdpa else 'baddbmm'} attention, float64): |loss diff| "
              f"{dl:.2e} (tol 1e-10), worst relative grad diff {dg:.2e} (tol 1e-9): "
              f"{'ok' if ok else 'FAIL'}")
    return fails


def main():
    a = ARGS
    if a.check:
        return 1 if check() else 0
    torch.manual_seed(a.seed)
    model = GPT(a.mlp_dim, a.attention == "sdpa")
    if a.jit == "fuse":
        torch._C._jit_override_can_fuse_on_cpu(True)
    if a.jit in ("script", "fuse"):
        for i in range(len(model.h)):
            model.h[i] = torch.jit.script(model.h[i])
    model.train()
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=ADAM_EPS, foreach=True)
    params = list(model.parameters())
    g = torch.Generator().manual_seed(a.seed + 99)
    inputs = torch.randint(0, VOCAB, (B, T), generator=g)
    targets = torch.randint(0, VOCAB, (B, T), generator=g)
    disp = a.dispersion == "angular_spread"

    times = []  # (forward, dispersion, backward, optimizer) seconds per timed step
    cpu = []  # process CPU seconds (all threads) per timed step
    for s in range(a.warmup + a.steps + a.profile):
        prof = None
        if a.profile and s == a.warmup + a.steps:
            prof = torch.autograd.profiler.profile()
            prof.__enter__()
        c0, t0 = time.process_time(), time.perf_counter()
        logits, hidden = model(inputs)
        loss = F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))
        t1 = time.perf_counter()
        if disp:
            loss = loss + DISP_COEFF * angular_spread(hidden)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        t4, c4 = time.perf_counter(), time.process_time()
        if not math.isfinite(loss.item()):
            print(f"torch_reference: loss {loss.item()} at step {s}", file=sys.stderr)
            return 1
        if prof is not None:
            prof.__exit__(None, None, None)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25),
                  file=sys.stderr)
        elif s >= a.warmup:
            times.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3))
            cpu.append(c4 - c0)

    steps = [sum(t) for t in times]
    med = statistics.median(steps)
    mean = sum(steps) / len(steps)
    phase = [statistics.median(t[k] for t in times) * 1e3 for k in range(4)]
    BT = B * T
    out = {
        "impl": "torch", "torch_version": torch.__version__,
        "mlp_dim": a.mlp_dim, "threads": a.threads, "blas_threads": a.blas_threads,
        "dispersion": a.dispersion,
        "attention": a.attention, "jit": a.jit, "steps": a.steps, "warmup": a.warmup,
        # same meaning as bench_train's keys: tokens_per_s / ms_step from the mean step
        "tokens_per_s": BT / mean, "ms_step": mean * 1e3,
        "tokens_per_s_median": BT / med, "ms_step_median": med * 1e3,
        "ms_step_min": min(steps) * 1e3, "ms_step_max": max(steps) * 1e3,
        "ms_forward": phase[0], "ms_dispersion": phase[1], "ms_backward": phase[2],
        "ms_optimizer": phase[3], "loss": loss.item(),
        # CPU time of the median step: not inflated by other processes sharing the core
        "cpu_ms_step_median": statistics.median(cpu) * 1e3,
    }
    if a.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                          for k, v in out.items()}))
    else:
        print(f"PyTorch {torch.__version__} reference model n_layer {N_LAYER} n_embd {N_EMBD} "
              f"n_head {N_HEAD} T {T} B {B} vocab {VOCAB} mlp_dim {a.mlp_dim}, "
              f"{a.threads} thread(s) ({a.blas_threads} BLAS), dispersion {a.dispersion}, "
              f"attention {a.attention}, "
              f"jit {a.jit}, {a.steps} timed steps after {a.warmup} warm-up")
        print(f"  tokens/s {BT / med:.0f} from the median step ({BT / mean:.0f} from the mean)"
              f"   ms/step median {med * 1e3:.1f} (min {out['ms_step_min']:.1f}, "
              f"max {out['ms_step_max']:.1f}), CPU time {out['cpu_ms_step_median']:.1f} ms")
        print(f"  median ms by phase: forward {phase[0]:.1f}, dispersion {phase[1]:.1f}, "
              f"backward {phase[2]:.1f}, optimizer (clip + AdamW) {phase[3]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
