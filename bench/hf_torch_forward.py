#!/usr/bin/python3
"""hf_torch_forward.py — the same forward as bench/bench_hf_forward.c in plain PyTorch (fp32;
transformers is not installed here, so the HF modules are written out: GPT-2 and Llama/OLMo-2
blocks as in modeling_gpt2.py / modeling_llama.py / modeling_olmo2.py, eager attention via
F.scaled_dot_product_attention when torch has it, else matmul + causal mask + softmax).

  hf_torch_forward.py [--arch gpt2|llama|olmo2] [--layers L] [--hidden D] [--heads H]
                      [--kv-heads KV] [--inter I] [--vocab V] [--batch B] [--seq T]
                      [--threads N] [--reps R] [--warmup W]

Times, under torch.inference_mode(), model(tokens) returning every hidden state and the logits
(a CausalLM forward with output_hidden_states=True) and, in the same run, the base model alone
(every hidden state, no LM head: what a measurement needs, HF's GPT2Model / LlamaModel /
Olmo2Model with output_hidden_states=True); prints the medians as
`RESULT tokens_per_s_logits=... tokens_per_s_nohead=...`.
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def attn(q, k, v, scale):
    # q (B,H,T,hd), k/v (B,H,T,hd): causal softmax(q k^T * scale) v
    T = q.shape[2]
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    s = s.masked_fill(mask, torch.finfo(s.dtype).min)
    return torch.matmul(torch.softmax(s, dim=-1), v)


class GPT2Block(nn.Module):
    def __init__(self, d, H, inner):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.proj = nn.Linear(d, inner), nn.Linear(inner, d)
        self.H = H

    def forward(self, x):
        B, T, d = x.shape
        hd = d // self.H
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (t.view(B, T, self.H, hd).transpose(1, 2) for t in (q, k, v))
        a = attn(q, k, v, 1.0 / math.sqrt(hd)).transpose(1, 2).reshape(B, T, d)
        x = x + self.c_proj(a)
        return x + self.proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., h:], x[..., :h]), dim=-1) * sin


class LlamaBlock(nn.Module):
    def __init__(self, d, H, KV, inter, olmo):
        super().__init__()
        hd = d // H
        self.q, self.k = nn.Linear(d, H * hd, bias=False), nn.Linear(d, KV * hd, bias=False)
        self.v, self.o = nn.Linear(d, KV * hd, bias=False), nn.Linear(H * hd, d, bias=False)
        self.g, self.u = nn.Linear(d, inter, bias=False), nn.Linear(d, inter, bias=False)
        self.dn = nn.Linear(inter, d, bias=False)
        self.n1, self.n2 = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))
        self.qn, self.kn = nn.Parameter(torch.ones(H * hd)), nn.Parameter(torch.ones(KV * hd))
        self.H, self.KV, self.hd, self.olmo = H, KV, hd, olmo

    def forward(self, x, cos, sin):
        B, T, d = x.shape
        xi = x if self.olmo else rms(x, self.n1)
        q, k, v = self.q(xi), self.k(xi), self.v(xi)
        if self.olmo:
            q, k = rms(q, self.qn), rms(k, self.kn)
        q = q.view(B, T, self.H, self.hd).transpose(1, 2)
        k = k.view(B, T, self.KV, self.hd).transpose(1, 2)
        v = v.view(B, T, self.KV, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.H // self.KV
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        a = self.o(attn(q, k, v, self.hd ** -0.5).transpose(1, 2).reshape(B, T, -1))
        if self.olmo:
            x = x + rms(a, self.n2)
            return x + rms(self.dn(F.silu(self.g(x)) * self.u(x)), self.n1)
        x = x + a
        h = rms(x, self.n2)
        return x + self.dn(F.silu(self.g(h)) * self.u(h))


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        d = a.hidden
        self.wte = nn.Embedding(a.vocab, d)
        if a.arch == "gpt2":
            self.wpe = nn.Embedding(max(1024, a.seq), d)
            self.blocks = nn.ModuleList(GPT2Block(d, a.heads, a.inter) for _ in range(a.layers))
            self.ln_f = nn.LayerNorm(d)
        else:
            self.blocks = nn.ModuleList(LlamaBlock(d, a.heads, a.kv_heads, a.inter,
                                                   a.arch == "olmo2") for _ in range(a.layers))
            self.norm = nn.Parameter(torch.ones(d))
            self.lm_head = nn.Linear(d, a.vocab, bias=False)
            hd = d // a.heads
            inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
            f = torch.outer(torch.arange(a.seq).float(), inv)
            emb = torch.cat((f, f), dim=-1)
            self.cos, self.sin = emb.cos(), emb.sin()

    def forward(self, tok, head=True):
        hs = []
        if self.a.arch == "gpt2":
            x = self.wte(tok) + self.wpe(torch.arange(tok.shape[1]))
            for b in self.blocks:
                hs.append(x)
                x = b(x)
            x = self.ln_f(x)
            hs.append(x)
            return hs, x @ self.wte.weight.t() if head else None
        x = self.wte(tok)
        for b in self.blocks:
            hs.append(x)
            x = b(x, self.cos, self.sin)
        x = rms(x, self.norm)
        hs.append(x)
        return hs, self.lm_head(x) if head else None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="gpt2")
    for k, v in (("layers", 12), ("hidden", 768), ("heads", 12), ("kv-heads", 0), ("inter", 0),
                 ("vocab", 50257), ("batch", 4), ("seq", 512), ("threads", 1), ("reps", 3),
                 ("warmup", 1)):
        p.add_argument("--" + k, type=int, default=v)
    a = p.parse_args()
    a.kv_heads = a.kv_heads or a.heads
    a.inter = a.inter or 4 * a.hidden
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Model(a).eval()
    tok = torch.randint(0, a.vocab, (a.batch, a.seq))
    times, times_nh = [], []
    with torch.inference_mode():
        for r in range(-a.warmup, a.reps):
            t0 = time.perf_counter()
            hs, logits = m(tok)
            t1 = time.perf_counter()
            hs, _ = m(tok, head=False)
            t2 = time.perf_counter()
            print(f"  run {r}{' (warm-up)' if r < 0 else ''}: forward+logits {t1 - t0:.3f} s, "
                  f"forward without head {t2 - t1:.3f} s")
            if r >= 0:
                times.append(t1 - t0)
                times_nh.append(t2 - t1)
    n = a.batch * a.seq
    med, med_nh = statistics.median(times), statistics.median(times_nh)
    print(f"torch {torch.__version__}, {a.arch}, {a.threads} thread(s): median {n / med:.0f} "
          f"tokens/s with logits, {n / med_nh:.0f} without the head")
    print(f"RESULT tokens_per_s_logits={n / med:.1f} tokens_per_s_nohead={n / med_nh:.1f}")


if __name__ == "__main__":
    main()
