#!/usr/bin/python3
"""Writes tests/hf/: small random Hugging Face models of every architecture lmdisp reads
(gpt2, llama, qwen2, qwen3, olmo2, olmo3) in HF's exact on-disk layout, each with a token
file and a float64 reference of what transformers' `output_hidden_states=True` returns, plus
bad inputs (tests/hf/bad/) and a fake HF hub cache (tests/hf/cache/). Independent of
lmdisp's C code: the forward passes below are written from transformers' modeling files
(models/<arch>/modeling_<arch>.py, modeling_rope_utils.py, masking_utils.py; the version
that added OLMo-3) and ../shared/HF.md.

Run: /usr/bin/python3 tests/gen_hf_models.py [--check-only] [--lmdisp BUILD/lmdisp]
Deterministic (fixed seeds): a rerun rewrites identical files.

Self-checks run every time (the script fails if one does):
  1. the vectorised float64 torch forward against a naive per-token, per-head numpy loop
     formulation (every case);
  2. mutation sensitivity: each semantic detail the C side could get wrong (rope pairing,
     GQA mapping, qk-norm, window, YaRN, final norm, ...) changes the reference by far more
     than the test tolerance 2e-4, so the committed cases can detect it;
  3. with --lmdisp: the gpt2 case against lmdisp's own GPT-2 (`lmdisp step` on the same
     weights written as an lmdisp checkpoint, DESIGN 4.1/4.3).
"""
import hashlib
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import h5py
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hf")
TOL = 2e-4

# --------------------------------------------------------------------------------------------
# storage dtypes
# --------------------------------------------------------------------------------------------


def to_bf16_bits(a):
    """float64/float32 array -> uint16 bf16 bits, round to nearest even, NaN -> 0x7FC0."""
    f = np.asarray(a, dtype=np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[np.isnan(f)] = 0x7FC0
    return r


def bf16_bits_to_f64(b):
    return (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def quantize(a, tag):
    """-> (raw little-endian bytes, the float64 values the file really holds)."""
    a = np.asarray(a, dtype=np.float64)
    if tag == "F32":
        q = a.astype("<f4")
        return q.tobytes(), q.astype(np.float64)
    if tag == "F16":
        q = a.astype("<f2")
        return q.tobytes(), q.astype(np.float64)
    if tag == "BF16":
        b = to_bf16_bits(a).astype("<u2")
        return b.tobytes(), bf16_bits_to_f64(b)
    if tag == "F64":
        q = a.astype("<f8")
        return q.tobytes(), q
    raise ValueError(tag)


def bf16_selftest():
    # Values whose low 16 bits sit exactly at the half-way point round to even; NaN -> 0x7FC0.
    f = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 1.0 + 2 ** -9, -2.5, np.inf, np.nan,
                  3.0e38, 1e-40], dtype=np.float32)
    got = to_bf16_bits(f)
    want = torch.tensor(f).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16).copy()
    want[np.isnan(f)] = 0x7FC0
    assert (got == want).all(), (got, want)
    assert got[1] == 0x3F80 and got[2] == 0x3F82, got  # ties to even


# --------------------------------------------------------------------------------------------
# safetensors writer (our own: u64 LE header length, JSON header, byte buffer)
# --------------------------------------------------------------------------------------------


def st_layout(tensors, data_order=None):
    """tensors: list of (name, tag, shape, raw bytes). Returns (header dict, buffer bytes).
    Data is laid out in data_order (default: reverse of the given order), so data order
    differs from the header's key order (sorted)."""
    by = {t[0]: t for t in tensors}
    order = data_order if data_order is not None else [t[0] for t in reversed(tensors)]
    hdr, buf, off = {}, bytearray(), 0
    for name in order:
        _, tag, shape, raw = by[name]
        hdr[name] = {"dtype": tag, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        buf += raw
        off += len(raw)
    return hdr, bytes(buf)


def st_bytes(hdr, buf, metadata={"format": "pt"}, pad_to=8, extra_pad=0, key_order=None):
    d = {}
    if metadata is not None:
        d["__metadata__"] = metadata
    for k in (key_order if key_order is not None else sorted(hdr)):
        d[k] = hdr[k]
    js = json.dumps(d, separators=(",", ":")).encode()
    n = len(js) + extra_pad
    if pad_to:
        n = (n + pad_to - 1) // pad_to * pad_to
    js = js + b" " * (n - len(js))
    return struct.pack("<Q", len(js)) + js + buf


def write_st(path, tensors, **kw):
    data_order = kw.pop("data_order", None)
    hdr, buf = st_layout(tensors, data_order)
    with open(path, "wb") as f:
        f.write(st_bytes(hdr, buf, **kw))


def write_tokens(path, toks, form):
    toks = np.asarray(toks, dtype=np.int64)
    h = np.zeros(256, dtype="<i4")
    if form == "u16":
        assert toks.max() < 65536
        h[0], h[1], body = 20240520, 1, toks.astype("<u2")
    else:
        h[0], h[1], body = 20240801, 7, toks.astype("<u4")
    h[2] = len(toks)
    with open(path, "wb") as f:
        f.write(h.tobytes())
        f.write(body.tobytes())


# --------------------------------------------------------------------------------------------
# configs (fields as save_pretrained writes them for each class)
# --------------------------------------------------------------------------------------------

LLAMA_FAMILY = ("llama", "qwen2", "qwen3", "olmo2", "olmo3")
ARCH_CLASS = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
              "qwen3": "Qwen3ForCausalLM", "olmo2": "Olmo2ForCausalLM", "olmo3": "Olmo3ForCausalLM"}
DTYPE_NAME = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def make_config(mt, dtype, **f):
    """A config.json dict as transformers' save_pretrained writes it (class fields all
    present, base-class fields only when they differ from PretrainedConfig's defaults)."""
    c = {"architectures": [ARCH_CLASS[mt]], "model_type": mt}
    if mt == "gpt2":
        c.update(activation_function="gelu_new", attn_pdrop=0.1, bos_token_id=f["vocab_size"] - 1,
                 embd_pdrop=0.1, eos_token_id=f["vocab_size"] - 1, initializer_range=0.02,
                 layer_norm_epsilon=1e-05, n_inner=None, reorder_and_upcast_attn=False,
                 resid_pdrop=0.1, scale_attn_by_inverse_layer_idx=False, scale_attn_weights=True,
                 summary_activation=None, summary_first_dropout=0.1, summary_proj_to_labels=True,
                 summary_type="cls_index", summary_use_proj=True, use_cache=True)
    elif mt == "llama":
        c.update(attention_bias=False, attention_dropout=0.0, bos_token_id=1, eos_token_id=2,
                 hidden_act="silu", initializer_range=0.02, mlp_bias=False, pretraining_tp=1,
                 rms_norm_eps=1e-06, rope_scaling=None, rope_theta=10000.0,
                 tie_word_embeddings=False, use_cache=True)
    elif mt in ("qwen2", "qwen3"):
        c.update(attention_dropout=0.0, bos_token_id=f["vocab_size"] - 2,
                 eos_token_id=f["vocab_size"] - 1, hidden_act="silu", initializer_range=0.02,
                 max_window_layers=28, rms_norm_eps=1e-06, rope_scaling=None, rope_theta=1000000.0,
                 sliding_window=None, tie_word_embeddings=True, use_cache=True,
                 use_sliding_window=False)
        if mt == "qwen3":
            c["attention_bias"] = False
    elif mt in ("olmo2", "olmo3"):
        c.update(attention_bias=False, attention_dropout=0.0, bos_token_id=None,
                 eos_token_id=f["vocab_size"] - 1, hidden_act="silu", initializer_range=0.02,
                 pad_token_id=1, rms_norm_eps=1e-06, rope_scaling=None, rope_theta=500000,
                 tie_word_embeddings=False, use_cache=True)
    c.update(f)
    c["torch_dtype"] = DTYPE_NAME[dtype]
    c["transformers_version"] = "4.57.0.dev0" if mt == "olmo3" else "4.51.3"
    if mt == "olmo3":  # >= 4.56 writes `dtype` instead of `torch_dtype`
        c["dtype"] = c.pop("torch_dtype")
    return dict(sorted(c.items()))


class Cfg:
    """The config as HF's classes read it, with their per-class defaults."""

    def __init__(self, c):
        self.c = c
        mt = self.mt = c["model_type"]
        if mt == "gpt2":
            self.V, self.d, self.L, self.H = c["vocab_size"], c["n_embd"], c["n_layer"], c["n_head"]
            self.KV, self.hd = self.H, self.d // self.H
            self.I = c.get("n_inner") or 4 * self.d
            self.eps = c.get("layer_norm_epsilon", 1e-5)
            self.P = c.get("n_positions", 1024)
            self.tie = c.get("tie_word_embeddings", True)
            self.scale_w = c.get("scale_attn_weights", True)
            self.inv_layer = c.get("scale_attn_by_inverse_layer_idx", False)
            assert c.get("activation_function", "gelu_new") == "gelu_new"
            return
        self.V, self.d = c["vocab_size"], c["hidden_size"]
        self.L, self.H = c["num_hidden_layers"], c["num_attention_heads"]
        self.KV = c.get("num_key_value_heads") or self.H
        self.hd = c.get("head_dim") or self.d // self.H
        self.I = c["intermediate_size"]
        self.eps = c.get("rms_norm_eps", 1e-5 if mt.startswith("olmo") else 1e-6)
        self.theta = c.get("rope_theta", 10000.0)
        self.tie = c.get("tie_word_embeddings", False)
        self.P = c.get("max_position_embeddings")
        ab = c.get("attention_bias", False)
        self.qkv_bias = True if mt == "qwen2" else ab
        self.o_bias = False if mt == "qwen2" else ab
        self.mlp_bias = c.get("mlp_bias", False) if mt == "llama" else False
        assert c.get("hidden_act", "silu") == "silu"
        assert c.get("partial_rotary_factor", 1.0) == 1.0
        assert not c.get("use_sliding_window", False)
        self.rope_scaling = c.get("rope_scaling")
        if mt == "olmo3":
            lt = c.get("layer_types") or ["sliding_attention" if (i + 1) % 4 else "full_attention"
                                          for i in range(self.L)]
            self.sliding = [t == "sliding_attention" for t in lt]
            self.window = c.get("sliding_window", 4096)
        else:
            self.sliding = [False] * self.L
            self.window = None


# --------------------------------------------------------------------------------------------
# weights: names and shapes per architecture (HF.md), random values
# --------------------------------------------------------------------------------------------


def tensor_specs(cfg, prefix="transformer.", legacy=False):
    """[(name, shape, kind)] in HF's state_dict order; kind drives the random init."""
    V, d, L, H, KV, hd, I = cfg.V, cfg.d, cfg.L, cfg.H, cfg.KV, cfg.hd, cfg.I
    out = []
    if cfg.mt == "gpt2":
        p = prefix
        out += [(p + "wte.weight", (V, d), "emb"), (p + "wpe.weight", (cfg.P, d), "emb")]
        for i in range(L):
            h = f"{p}h.{i}."
            out += [(h + "ln_1.weight", (d,), "norm"), (h + "ln_1.bias", (d,), "bias")]
            if legacy:
                out += [(h + "attn.bias", (1, 1, cfg.P, cfg.P), "mask"), (h + "attn.masked_bias", (), "mbias")]
            out += [(h + "attn.c_attn.weight", (d, 3 * d), "lin"), (h + "attn.c_attn.bias", (3 * d,), "bias"),
                    (h + "attn.c_proj.weight", (d, d), "lin"), (h + "attn.c_proj.bias", (d,), "bias"),
                    (h + "ln_2.weight", (d,), "norm"), (h + "ln_2.bias", (d,), "bias"),
                    (h + "mlp.c_fc.weight", (d, I), "lin"), (h + "mlp.c_fc.bias", (I,), "bias"),
                    (h + "mlp.c_proj.weight", (I, d), "lin"), (h + "mlp.c_proj.bias", (d,), "bias")]
        out += [(p + "ln_f.weight", (d,), "norm"), (p + "ln_f.bias", (d,), "bias")]
        if not cfg.tie:
            out += [("lm_head.weight", (V, d), "lin")]
        return out
    out.append(("model.embed_tokens.weight", (V, d), "emb"))
    for i in range(L):
        a = f"model.layers.{i}.self_attn."
        out += [(a + "q_proj.weight", (H * hd, d), "lin")]
        if cfg.qkv_bias:
            out += [(a + "q_proj.bias", (H * hd,), "bias")]
        out += [(a + "k_proj.weight", (KV * hd, d), "lin")]
        if cfg.qkv_bias:
            out += [(a + "k_proj.bias", (KV * hd,), "bias")]
        out += [(a + "v_proj.weight", (KV * hd, d), "lin")]
        if cfg.qkv_bias:
            out += [(a + "v_proj.bias", (KV * hd,), "bias")]
        out += [(a + "o_proj.weight", (d, H * hd), "lin")]
        if cfg.o_bias:
            out += [(a + "o_proj.bias", (d,), "bias")]
        if cfg.mt == "qwen3":
            out += [(a + "q_norm.weight", (hd,), "norm"), (a + "k_norm.weight", (hd,), "norm")]
        if cfg.mt.startswith("olmo"):
            out += [(a + "q_norm.weight", (H * hd,), "norm"), (a + "k_norm.weight", (KV * hd,), "norm")]
        m = f"model.layers.{i}.mlp."
        for nm, shp in (("gate_proj", (I, d)), ("up_proj", (I, d)), ("down_proj", (d, I))):
            out += [(m + nm + ".weight", shp, "lin")]
            if cfg.mlp_bias:
                out += [(m + nm + ".bias", (shp[0],), "bias")]
        ln = f"model.layers.{i}."
        if cfg.mt.startswith("olmo"):
            out += [(ln + "post_attention_layernorm.weight", (d,), "norm"),
                    (ln + "post_feedforward_layernorm.weight", (d,), "norm")]
        else:
            out += [(ln + "input_layernorm.weight", (d,), "norm"),
                    (ln + "post_attention_layernorm.weight", (d,), "norm")]
    out.append(("model.norm.weight", (d,), "norm"))
    if not cfg.tie:
        out.append(("lm_head.weight", (V, d), "lin"))
    return out


def random_value(rng, shape, kind, cfg):
    if kind == "emb":
        return rng.normal(0, 1.0 if cfg.mt != "gpt2" else 0.5, shape)
    if kind == "norm":
        return 1.0 + 0.2 * rng.normal(size=shape)
    if kind == "bias":
        return 0.1 * rng.normal(size=shape)
    if kind == "lin":
        fan_in = shape[0] if cfg.mt == "gpt2" and len(shape) == 2 else shape[-1]
        return rng.normal(0, 1.6 / math.sqrt(fan_in), shape)
    if kind == "mask":
        P = shape[-1]
        return np.tril(np.ones((P, P))).reshape(shape)
    if kind == "mbias":
        return np.array(-1e4)
    raise ValueError(kind)


def make_weights(cfg, seed, tag, prefix="transformer.", legacy=False):
    """-> (list of (name, tag, shape, raw) for the file, dict name -> float64 torch tensor
    of the stored values with the prefix removed for gpt2)."""
    rng = np.random.default_rng(seed)
    st, W = [], {}
    for name, shape, kind in tensor_specs(cfg, prefix, legacy):
        v = random_value(rng, shape, kind, cfg)
        t = "F32" if kind in ("mask", "mbias") else tag
        raw, q = quantize(v, t)
        st.append((name, t, shape, raw))
        key = name[len(prefix):] if cfg.mt == "gpt2" and name.startswith(prefix) else name
        W[key] = torch.tensor(q.reshape(shape))
    return st, W


def n_params(st):
    return int(sum(np.prod(s) for n, _, s, _ in st if not n.endswith((".attn.bias", ".attn.masked_bias"))))


# --------------------------------------------------------------------------------------------
# float64 reference forward (vectorised torch), from HF's modeling files
# --------------------------------------------------------------------------------------------


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def causal_mask(T, window=None):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    m = j <= i
    if window is not None:
        m = m & (j > i - window)
    return m


def softmax_attn(q, k, v, scale, mask):
    """q [B,H,T,hd], k/v [B,H,T,hd] (already repeated), mask [T,T] bool."""
    s = (q @ k.transpose(-1, -2)) * scale
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def gpt2_forward(cfg, W, tok, mut=()):
    B, T = tok.shape
    d, H, hd = cfg.d, cfg.H, cfg.hd
    x = W["wte.weight"][tok] + W["wpe.weight"][torch.arange(T)][None]
    hs = [x]
    mask = causal_mask(T)
    for i in range(cfg.L):
        p = f"h.{i}."
        a = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], cfg.eps)
        qkv = a @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]  # Conv1D: x W + b
        q, k, v = qkv.split(d, dim=-1)
        q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))
        scale = 1.0
        if cfg.scale_w:
            scale /= math.sqrt(hd)
        if cfg.inv_layer and "no_inv_layer" not in mut:
            scale /= float(i + 1)
        o = softmax_attn(q, k, v, scale, mask).transpose(1, 2).reshape(B, T, d)
        Wp = W[p + "attn.c_proj.weight"]
        x = x + o @ (Wp.T if "c_proj_transposed" in mut else Wp) + W[p + "attn.c_proj.bias"]
        m = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], cfg.eps)
        act = gelu_new if "erf_gelu" not in mut else torch.nn.functional.gelu
        m = act(m @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = x + m @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
        hs.append(x)
    x = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], cfg.eps)
    if "no_final_norm" not in mut:
        hs[-1] = x
    else:
        x = hs[-1]
    lm = W["wte.weight"] if cfg.tie else W["lm_head.weight"]
    return torch.stack(hs), x @ lm.T


def default_inv_freq(cfg):
    dim = cfg.hd
    return 1.0 / (cfg.theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))


def yarn_inv_freq(cfg, truncate=None):
    """modeling_rope_utils._compute_yarn_parameters, in float64. -> (inv_freq, attention_factor)."""
    rs = cfg.rope_scaling
    base, dim = cfg.theta, cfg.hd
    factor = rs["factor"]
    attention_factor = rs.get("attention_factor")
    mscale, mscale_all_dim = rs.get("mscale"), rs.get("mscale_all_dim")
    omax = rs.get("original_max_position_embeddings") or cfg.P

    def get_mscale(scale, m=1):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = get_mscale(factor)
    beta_fast = rs.get("beta_fast") or 32
    beta_slow = rs.get("beta_slow") or 1

    def corr_dim(nrot):
        return (dim * math.log(omax / (nrot * 2 * math.pi))) / (2 * math.log(base))

    low, high = corr_dim(beta_fast), corr_dim(beta_slow)
    if (rs.get("truncate", True) if truncate is None else truncate):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low), 0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    extra, inter = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
    ef = 1 - ramp  # inv_freq_extrapolation_factor
    return inter * (1 - ef) + extra * ef, attention_factor


def rope_tables(cfg, T, sliding, mut=()):
    rs = cfg.rope_scaling
    rtype = None if rs is None else rs.get("rope_type", rs.get("type"))
    use_yarn = rtype == "yarn" and (not sliding or "yarn_on_sliding" in mut) and "no_yarn" not in mut
    if rtype not in (None, "default", "yarn"):
        raise ValueError(rtype)
    if use_yarn:
        inv, att = yarn_inv_freq(cfg, truncate=False if "yarn_no_truncate" in mut else
                                 True if "yarn_force_truncate" in mut else None)
        if "no_attention_factor" in mut:
            att = 1.0
        if "yarn_default_freqs" in mut:
            inv = default_inv_freq(cfg)
    else:
        inv, att = default_inv_freq(cfg), 1.0
    f = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat([f, f], dim=-1)
    return emb.cos() * att, emb.sin() * att


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin, mut=()):
    if "adjacent_rope" in mut:  # Meta / GGUF pairing (2i, 2i+1): the wrong one for HF weights
        x2 = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
        c = torch.repeat_interleave(cos[..., : cos.shape[-1] // 2], 2, dim=-1)
        s = torch.repeat_interleave(sin[..., : sin.shape[-1] // 2], 2, dim=-1)
        return x * c + x2 * s
    return x * cos + rotate_half(x) * sin


def llama_forward(cfg, W, tok, mut=()):
    B, T = tok.shape
    H, KV, hd, eps = cfg.H, cfg.KV, cfg.hd, cfg.eps
    mt = cfg.mt
    olmo = mt.startswith("olmo")
    x = W["model.embed_tokens.weight"][tok]
    hs = [x]

    def lin(t, name, bias):
        y = t @ W[name + ".weight"].T
        return y + W[name + ".bias"] if bias and "no_bias" not in mut else y

    for i in range(cfg.L):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        sliding = cfg.sliding[i] and "no_window" not in mut
        cos, sin = rope_tables(cfg, T, cfg.sliding[i], mut)
        hin = x if olmo else rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = lin(hin, a + "q_proj", cfg.qkv_bias)
        k = lin(hin, a + "k_proj", cfg.qkv_bias)
        v = lin(hin, a + "v_proj", cfg.qkv_bias)
        if olmo and "no_qk_norm" not in mut:  # whole projection, before the head split
            q = rms_norm(q, W[a + "q_norm.weight"], eps)
            k = rms_norm(k, W[a + "k_norm.weight"], eps)
        q = q.view(B, T, H, hd)
        k = k.view(B, T, KV, hd)
        v = v.view(B, T, KV, hd)
        if mt == "qwen3" and "no_qk_norm" not in mut:  # per head, before RoPE
            q = rms_norm(q, W[a + "q_norm.weight"], eps)
            k = rms_norm(k, W[a + "k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = apply_rope(q, cos, sin, mut), apply_rope(k, cos, sin, mut)
        if "gqa_modulo" in mut:
            idx = torch.arange(H) % KV
        else:
            idx = torch.arange(H) // (H // KV)  # repeat_kv: head h uses kv head h // (H/KV)
        k, v = k[:, idx], v[:, idx]
        mask = causal_mask(T, (cfg.window + ("window_plus_one" in mut)) if sliding else None)
        o = softmax_attn(q, k, v, hd ** -0.5, mask).transpose(1, 2).reshape(B, T, H * hd)
        o = lin(o, a + "o_proj", cfg.o_bias)
        if olmo:
            x = x + rms_norm(o, W[p + "post_attention_layernorm.weight"], eps)
        else:
            x = x + o
        m = p + "mlp."
        hin = x if olmo else rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = lin(hin, m + "gate_proj", cfg.mlp_bias)
        u = lin(hin, m + "up_proj", cfg.mlp_bias)
        y = lin(torch.nn.functional.silu(g) * u, m + "down_proj", cfg.mlp_bias)
        x = x + (rms_norm(y, W[p + "post_feedforward_layernorm.weight"], eps) if olmo else y)
        hs.append(x)
    xf = rms_norm(x, W["model.norm.weight"], eps)
    if "no_final_norm" not in mut:
        hs[-1] = xf
    else:
        xf = x
    tie = cfg.tie if "tie_flipped" not in mut else not cfg.tie
    lm = W["model.embed_tokens.weight"] if tie else W["lm_head.weight"]
    return torch.stack(hs), xf @ lm.T


def forward(cfg, W, tok, mut=()):
    tok = torch.as_tensor(np.asarray(tok, dtype=np.int64))
    f = gpt2_forward if cfg.mt == "gpt2" else llama_forward
    with torch.no_grad():
        h, lg = f(cfg, W, tok, mut)
    return h.numpy(), lg.numpy()


# --------------------------------------------------------------------------------------------
# independent naive formulation (numpy, explicit loops over tokens/heads, rope as explicit
# 2-D rotations of the (j, j + hd/2) pairs, no rotate_half, no masks)
# --------------------------------------------------------------------------------------------


def naive_forward(cfg, W, tok):
    Wn = {k: v.numpy() for k, v in W.items()}
    tok = np.asarray(tok)
    B, T = tok.shape
    d, H, KV, hd, L = cfg.d, cfg.H, cfg.KV, cfg.hd, cfg.L
    hs = np.zeros((L + 1, B, T, d))
    logits = np.zeros((B, T, cfg.V))

    def lnorm(v, w, b):
        mu = sum(v) / len(v)
        var = sum((e - mu) ** 2 for e in v) / len(v)
        return np.array([(v[j] - mu) / math.sqrt(var + cfg.eps) * w[j] + b[j] for j in range(len(v))])

    def rnorm(v, w):
        ms = sum(e * e for e in v) / len(v)
        return np.array([v[j] / math.sqrt(ms + cfg.eps) * w[j] for j in range(len(v))])

    def gelu(z):
        return 0.5 * z * (1 + math.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))

    def silu(z):
        return z / (1 + math.exp(-z))

    def attend(qs, ks, vs, scale, allowed):
        """qs, ks, vs: lists over t of vectors for one head."""
        out = []
        for t in range(T):
            js = [j for j in range(T) if allowed(t, j)]
            sc = [scale * float(np.dot(qs[t], ks[j])) for j in js]
            mx = max(sc)
            e = [math.exp(s - mx) for s in sc]
            z = sum(e)
            out.append(sum((e[n] / z) * vs[j] for n, j in enumerate(js)))
        return out

    if cfg.mt == "gpt2":
        for b in range(B):
            x = [Wn["wte.weight"][tok[b, t]] + Wn["wpe.weight"][t] for t in range(T)]
            hs[0, b] = x
            for i in range(L):
                p = f"h.{i}."
                a = [lnorm(x[t], Wn[p + "ln_1.weight"], Wn[p + "ln_1.bias"]) for t in range(T)]
                Wa, ba = Wn[p + "attn.c_attn.weight"], Wn[p + "attn.c_attn.bias"]
                qkv = [np.array([sum(a[t][r] * Wa[r, c] for r in range(d)) + ba[c] for c in range(3 * d)])
                       for t in range(T)]
                scale = (1 / math.sqrt(hd) if cfg.scale_w else 1.0) / ((i + 1) if cfg.inv_layer else 1)
                o = [np.zeros(d) for _ in range(T)]
                for h in range(H):
                    qs = [qkv[t][h * hd:(h + 1) * hd] for t in range(T)]
                    ks = [qkv[t][d + h * hd:d + (h + 1) * hd] for t in range(T)]
                    vs = [qkv[t][2 * d + h * hd:2 * d + (h + 1) * hd] for t in range(T)]
                    for t, r in enumerate(attend(qs, ks, vs, scale, lambda t, j: j <= t)):
                        o[t][h * hd:(h + 1) * hd] = r
                x = [x[t] + o[t] @ Wn[p + "attn.c_proj.weight"] + Wn[p + "attn.c_proj.bias"] for t in range(T)]
                for t in range(T):
                    m = lnorm(x[t], Wn[p + "ln_2.weight"], Wn[p + "ln_2.bias"])
                    f = m @ Wn[p + "mlp.c_fc.weight"] + Wn[p + "mlp.c_fc.bias"]
                    f = np.array([gelu(z) for z in f])
                    x[t] = x[t] + f @ Wn[p + "mlp.c_proj.weight"] + Wn[p + "mlp.c_proj.bias"]
                hs[i + 1, b] = x
            xf = [lnorm(x[t], Wn["ln_f.weight"], Wn["ln_f.bias"]) for t in range(T)]
            hs[L, b] = xf
            lm = Wn["wte.weight"] if cfg.tie else Wn["lm_head.weight"]
            logits[b] = np.array([[float(np.dot(xf[t], lm[vv])) for vv in range(cfg.V)] for t in range(T)])
        return hs, logits

    olmo = cfg.mt.startswith("olmo")

    def mv(name, v, bias):
        y = Wn[name + ".weight"] @ v
        return y + Wn[name + ".bias"] if bias else y

    def angles(i, t):
        """per-pair (j, j+hd/2) angle and amplitude for layer i at position t."""
        rs = cfg.rope_scaling
        half = hd // 2
        if rs is not None and rs.get("rope_type", rs.get("type")) == "yarn" and not cfg.sliding[i]:
            # recomputed from the YaRN paper's definition with HF's ramp conventions
            base, factor = cfg.theta, rs["factor"]
            omax = rs.get("original_max_position_embeddings") or cfg.P
            af = rs.get("attention_factor")
            ms, msa = rs.get("mscale"), rs.get("mscale_all_dim")
            if af is None and ms and msa:
                af = (0.1 * ms * math.log(factor) + 1.0) / (0.1 * msa * math.log(factor) + 1.0)
            elif af is None:
                af = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0
            bf, bs = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1
            lo = hd * math.log(omax / (bf * 2 * math.pi)) / (2 * math.log(base))
            hi = hd * math.log(omax / (bs * 2 * math.pi)) / (2 * math.log(base))
            if rs.get("truncate", True):
                lo, hi = math.floor(lo), math.ceil(hi)
            lo, hi = max(lo, 0), min(hi, hd - 1)
            out = []
            for j in range(half):
                theta_j = base ** (-2.0 * j / hd)
                gamma = min(max((j - lo) / ((hi - lo) if hi != lo else 0.001), 0.0), 1.0)
                # gamma = 0: keep the original frequency (extrapolate); 1: divide by factor
                w = theta_j * (1 - gamma) + theta_j / factor * gamma
                out.append((t * w, af))
            return out
        return [(t * cfg.theta ** (-2.0 * j / hd), 1.0) for j in range(half)]

    def rot(v, i, t):
        half = hd // 2
        r = np.zeros(hd)
        for j, (ang, amp) in enumerate(angles(i, t)):
            c, s = math.cos(ang) * amp, math.sin(ang) * amp
            r[j] = v[j] * c - v[j + half] * s
            r[j + half] = v[j + half] * c + v[j] * s
        return r

    for b in range(B):
        x = [Wn["model.embed_tokens.weight"][tok[b, t]].copy() for t in range(T)]
        hs[0, b] = x
        for i in range(L):
            p = f"model.layers.{i}."
            a = p + "self_attn."
            Q, K, Vv = [], [], []
            for t in range(T):
                hin = x[t] if olmo else rnorm(x[t], Wn[p + "input_layernorm.weight"])
                q, k, v = (mv(a + n, hin, cfg.qkv_bias) for n in ("q_proj", "k_proj", "v_proj"))
                if olmo:
                    q, k = rnorm(q, Wn[a + "q_norm.weight"]), rnorm(k, Wn[a + "k_norm.weight"])
                qh = [q[h * hd:(h + 1) * hd] for h in range(H)]
                kh = [k[g * hd:(g + 1) * hd] for g in range(KV)]
                vh = [v[g * hd:(g + 1) * hd] for g in range(KV)]
                if cfg.mt == "qwen3":
                    qh = [rnorm(z, Wn[a + "q_norm.weight"]) for z in qh]
                    kh = [rnorm(z, Wn[a + "k_norm.weight"]) for z in kh]
                Q.append([rot(z, i, t) for z in qh])
                K.append([rot(z, i, t) for z in kh])
                Vv.append(vh)
            W_ = cfg.window if cfg.sliding[i] else None
            allowed = (lambda t, j: j <= t) if W_ is None else (lambda t, j, W_=W_: t - W_ < j <= t)
            o = [np.zeros(H * hd) for _ in range(T)]
            group = H // KV
            for h in range(H):
                g = h // group
                res = attend([Q[t][h] for t in range(T)], [K[t][g] for t in range(T)],
                             [Vv[t][g] for t in range(T)], 1 / math.sqrt(hd), allowed)
                for t in range(T):
                    o[t][h * hd:(h + 1) * hd] = res[t]
            for t in range(T):
                y = mv(a + "o_proj", o[t], cfg.o_bias)
                x[t] = x[t] + (rnorm(y, Wn[p + "post_attention_layernorm.weight"]) if olmo else y)
                hin = x[t] if olmo else rnorm(x[t], Wn[p + "post_attention_layernorm.weight"])
                m = p + "mlp."
                g_ = mv(m + "gate_proj", hin, cfg.mlp_bias)
                u_ = mv(m + "up_proj", hin, cfg.mlp_bias)
                z = np.array([silu(e) for e in g_]) * u_
                y = mv(m + "down_proj", z, cfg.mlp_bias)
                x[t] = x[t] + (rnorm(y, Wn[p + "post_feedforward_layernorm.weight"]) if olmo else y)
            hs[i + 1, b] = x
        xf = [rnorm(x[t], Wn["model.norm.weight"]) for t in range(T)]
        hs[L, b] = xf
        lm = Wn["model.embed_tokens.weight"] if cfg.tie else Wn["lm_head.weight"]
        logits[b] = np.array([lm @ xf[t] for t in range(T)])
    return hs, logits


def rel_err(got, ref):
    """per layer max|got - ref| / rms(ref)."""
    return [float(np.abs(got[l] - ref[l]).max() / np.sqrt((ref[l] ** 2).mean())) for l in range(ref.shape[0])]


# --------------------------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------------------------

YARN = {"attention_factor": 1.2079441541679836, "beta_fast": 32, "beta_slow": 1, "factor": 8.0,
        "original_max_position_embeddings": 1024, "rope_type": "yarn"}

CASES = [
    # name, config fields, dtype, seed, B, T, token form, offset, extras
    dict(name="gpt2", mt="gpt2", dtype="F32", seed=11, B=2, T=16, form="u16", offset=0,
         prefix="", legacy=True,
         cfg=dict(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=32, n_ctx=32),
         covers="no `transformer.` prefix (openai-community/gpt2 layout), legacy h.{i}.attn.bias "
                "[1,1,P,P] and attn.masked_bias [] buffers to ignore, F32, tied (field absent), "
                "n_inner null = 4d; the test also converts it to an lmdisp checkpoint (hf_compare.py "
                "to-lmdisp) and checks forward on that"),
    dict(name="gpt2_prefix", mt="gpt2", dtype="BF16", seed=12, B=3, T=20, form="u16", offset=0,
         prefix="transformer.", legacy=False, extra_pad=37,
         cfg=dict(vocab_size=120, n_embd=32, n_layer=3, n_head=2, n_positions=24, n_ctx=24,
                  n_inner=80, scale_attn_by_inverse_layer_idx=True),
         covers="`transformer.` prefix (GPT2LMHeadModel.save_pretrained), BF16, n_inner 80, "
                "scale_attn_by_inverse_layer_idx true, header padded with extra spaces"),
    dict(name="llama", mt="llama", dtype="BF16", seed=21, B=2, T=16, form="u32", offset=0,
         cfg=dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=6, num_key_value_heads=2, head_dim=8,
                  max_position_embeddings=64, rms_norm_eps=1e-05),
         covers="GQA 6 heads / 2 kv heads (head h uses kv h // 3), head_dim 8 with hidden 32 "
                "(q_proj [48,32], o_proj [32,48]), BF16, untied (lm_head.weight), "
                "rms_norm_eps 1e-5, uint32 tokens"),
    dict(name="llama_bias", mt="llama", dtype="F16", seed=22, B=2, T=16, form="u32", offset=0,
         drop=("num_key_value_heads", "head_dim"),
         cfg=dict(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=64, attention_bias=True,
                  mlp_bias=True, tie_word_embeddings=True, rope_theta=500000.0),
         covers="attention_bias (q,k,v,o biases) + mlp_bias (gate, up, down biases), F16, tied, "
                "num_key_value_heads and head_dim absent (-> heads, hidden/heads), rope_theta 5e5"),
    dict(name="qwen2", mt="qwen2", dtype="BF16", seed=31, B=2, T=16, form="u16", offset=0,
         shards=2,
         cfg=dict(vocab_size=150, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=128,
                  sliding_window=128, max_window_layers=21),
         covers="q/k/v biases (no o bias, no config flag), GQA 4/1, BF16, tied, sharded "
                "(model.safetensors.index.json + 2 shards), use_sliding_window false"),
    dict(name="qwen3", mt="qwen3", dtype="BF16", seed=41, B=2, T=20, form="u32", offset=5,
         cfg=dict(vocab_size=140, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  max_position_embeddings=128, layer_types=["full_attention"] * 3),
         covers="head_dim 16 != hidden/heads 8 (q_proj [64,32], o_proj [32,64]), per-head "
                "q_norm/k_norm [head_dim] before RoPE, GQA 4/2, BF16, tied, --offset 5"),
    dict(name="olmo2", mt="olmo2", dtype="F32", seed=51, B=2, T=16, form="u32", offset=0,
         cfg=dict(vocab_size=110, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64),
         covers="no pre-norms, post_attention/post_feedforward norms, whole-projection "
                "q_norm [H*hd] / k_norm [KV*hd] before RoPE, F32, untied, rope_theta 5e5"),
    dict(name="olmo3", mt="olmo3", dtype="BF16", seed=61, B=2, T=24, form="u32", offset=0,
         cfg=dict(vocab_size=128, hidden_size=48, intermediate_size=64, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                  rope_theta=10000.0, sliding_window=6, rope_scaling=YARN,
                  layer_types=["sliding_attention", "sliding_attention", "full_attention",
                               "sliding_attention"]),
         covers="layer_types mixing sliding and full, sliding_window 6 < T 24 (keys i-6 < j <= i), "
                "YaRN (Olmo-3 7B's rope_scaling fields: attention_factor, beta_fast, beta_slow, "
                "factor 8, original_max_position_embeddings) on the full layer only, default RoPE "
                "on sliding layers, GQA 4/2, BF16, untied, config writes `dtype`"),
    dict(name="olmo3_yarn_mscale", mt="olmo3", dtype="BF16", seed=63, B=2, T=12, form="u32", offset=0,
         cfg=dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                  rope_theta=10000.0, sliding_window=4,
                  rope_scaling={"factor": 4.0, "mscale": 2.0, "mscale_all_dim": 0.5,
                                "beta_fast": 16.0, "beta_slow": 2.0, "truncate": False,
                                "rope_type": "yarn"},
                  layer_types=["full_attention", "sliding_attention"]),
         covers="YaRN without attention_factor (derived from mscale 2 / mscale_all_dim 0.5: "
                "(0.2 ln4 + 1) / (0.05 ln4 + 1)), no original_max_position_embeddings (-> "
                "max_position_embeddings), beta_fast 16, beta_slow 2, truncate false; full layer "
                "first, window 4, GQA 2/1, BF16, untied"),
    dict(name="olmo3_default", mt="olmo3", dtype="F16", seed=62, B=2, T=16, form="u32", offset=0,
         drop=("layer_types",),
         cfg=dict(vocab_size=90, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                  num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                  sliding_window=5, tie_word_embeddings=True, rms_norm_eps=1e-05),
         covers="layer_types absent -> HF default sliding,sliding,sliding,full; sliding_window 5; "
                "no rope_scaling; F16; tied"),
]

MUTATIONS = {  # case -> semantic slips the committed reference must detect (rel err >> 2e-4)
    "gpt2": ["erf_gelu", "no_final_norm", "c_proj_transposed"],
    "gpt2_prefix": ["no_inv_layer"],
    "llama": ["adjacent_rope", "gqa_modulo", "tie_flipped"],
    "qwen3": ["no_qk_norm", "gqa_modulo"],
    "llama_bias": ["no_bias"],
    "qwen2": ["no_bias"],
    "olmo2": ["no_qk_norm", "no_final_norm"],
    "olmo3": ["no_window", "window_plus_one", "no_yarn", "no_attention_factor", "yarn_default_freqs",
              "yarn_no_truncate", "yarn_on_sliding", "gqa_modulo", "tie_flipped"],
    "olmo3_yarn_mscale": ["no_yarn", "no_attention_factor", "yarn_default_freqs", "yarn_force_truncate",
                          "window_plus_one"],
    "olmo3_default": ["no_window", "window_plus_one"],
}


def write_model_dir(d, config, st, shards=1, extra_pad=0):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    if shards == 1:
        write_st(os.path.join(d, "model.safetensors"), st, extra_pad=extra_pad)
        return
    # split by layers, keeping each tensor whole; HF names shards 1-based, 5 digits
    names = [t[0] for t in st]
    per = (len(st) + shards - 1) // shards
    wmap, total = {}, 0
    for s in range(shards):
        part = st[s * per:(s + 1) * per]
        fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        write_st(os.path.join(d, fn), part)
        for t in part:
            wmap[t[0]] = fn
            total += len(t[3])
    assert set(wmap) == set(names)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wmap.items()))}, f, indent=2)
        f.write("\n")


def write_ref(path, hs, logits, attrs):
    with h5py.File(path, "w") as f:
        for k, v in (("hidden_states", hs), ("logits", logits)):
            f.create_dataset(k, data=v.astype(np.float64))  # random floats: gzip gains nothing
        for k, v in attrs.items():
            f.attrs[k] = v


def write_lmdisp_ckpt(path, cfg, W):
    """DESIGN 4.1: HF GPT-2 (Conv1D [in,out]) -> lmdisp /params (nn.Linear [out,in])."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "lmdisp-checkpoint"
        f.attrs["format_version"] = 1
        for k, v in dict(vocab_size=cfg.V, n_ctx=cfg.P, n_layer=cfg.L, n_embd=cfg.d, n_head=cfg.H,
                         mlp_dim=cfg.I, step=0, tokens=0, seed=0).items():
            f.attrs[k] = np.int64(v)
        g = f.create_group("params")

        def put(n, t):
            g.create_dataset(n, data=np.ascontiguousarray(t.numpy()).astype(np.float32))

        put("wte", W["wte.weight"])
        put("wpe", W["wpe.weight"])
        for i in range(cfg.L):
            h = f"h.{i}."
            put(h + "ln_1.weight", W[h + "ln_1.weight"])
            put(h + "ln_1.bias", W[h + "ln_1.bias"])
            put(h + "attn.qkv.weight", W[h + "attn.c_attn.weight"].T)  # rows q | k | v
            put(h + "attn.qkv.bias", W[h + "attn.c_attn.bias"])
            put(h + "attn.proj.weight", W[h + "attn.c_proj.weight"].T)
            put(h + "attn.proj.bias", W[h + "attn.c_proj.bias"])
            put(h + "ln_2.weight", W[h + "ln_2.weight"])
            put(h + "ln_2.bias", W[h + "ln_2.bias"])
            put(h + "mlp.fc.weight", W[h + "mlp.c_fc.weight"].T)
            put(h + "mlp.fc.bias", W[h + "mlp.c_fc.bias"])
            put(h + "mlp.proj.weight", W[h + "mlp.c_proj.weight"].T)
            put(h + "mlp.proj.bias", W[h + "mlp.c_proj.bias"])
        put("ln_f.weight", W["ln_f.weight"])
        put("ln_f.bias", W["ln_f.bias"])


def gen_case(c, results):
    name, mt = c["name"], c["mt"]
    config = make_config(mt, c["dtype"], **c["cfg"])
    for k in c.get("drop", ()):
        config.pop(k, None)
    if mt == "gpt2":
        config.pop("n_ctx", None) if False else None
    cfg = Cfg(config)
    st, W = make_weights(cfg, c["seed"], c["dtype"], c.get("prefix", "transformer."), c.get("legacy", False))
    d = os.path.join(OUT, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    write_model_dir(d, config, st, c.get("shards", 1), c.get("extra_pad", 0))
    B, T, O = c["B"], c["T"], c["offset"]
    rng = np.random.default_rng(1000 + c["seed"])
    toks = rng.integers(0, cfg.V, size=O + B * T + 7)
    write_tokens(os.path.join(d, "tokens.bin"), toks, c["form"])
    tok = toks[O:O + B * T].reshape(B, T)
    hs, lg = forward(cfg, W, tok)
    np_ = n_params(st)
    write_ref(os.path.join(d, "ref.h5"), hs, lg,
              dict(model_type=mt, n_layer=cfg.L, hidden_size=cfg.d, vocab_size=cfg.V, n_params=np_,
                   batch=B, seq=T, offset=O, tokens="tokens.bin"))
    # self-check 1: naive loops
    nh, nl = naive_forward(cfg, W, tok)
    e = max(rel_err(nh, hs) + rel_err(nl[None], lg[None]))
    results.append((name, "naive", e))
    # self-check 2: mutations
    for m in MUTATIONS.get(name, []):
        mh, ml = forward(cfg, W, tok, mut=(m,))
        results.append((name, "mut:" + m, max(rel_err(mh, hs) + rel_err(ml[None], lg[None]))))
    return dict(name=name, B=B, T=T, offset=O, form=c["form"], n_params=np_, cfg=cfg, W=W, tok=tok,
                hs=hs, lg=lg)


def check_with_lmdisp(lmdisp, info, results):
    """self-check 3: lmdisp's own GPT-2 (`lmdisp step`, DESIGN 4.3) on the gpt2 case."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "step.h5")
        ck = os.path.join(tmp, "gpt2_lmdisp.h5")
        write_lmdisp_ckpt(ck, info["cfg"], info["W"])
        # the numpy-only converter the shell test uses must write the same checkpoint
        ck2 = os.path.join(tmp, "gpt2_lmdisp2.h5")
        subprocess.run([sys.executable, os.path.join(HERE, "hf_compare.py"), "to-lmdisp",
                        os.path.join(OUT, "gpt2"), ck2], check=True)
        with h5py.File(ck, "r") as a, h5py.File(ck2, "r") as b:
            assert sorted(a["params"]) == sorted(b["params"])
            for n in a["params"]:
                assert np.array_equal(a["params"][n][...], b["params"][n][...]), n
            for k in a.attrs:
                assert a.attrs[k] == b.attrs[k], k
        cmd = [lmdisp, "step", "--checkpoint", ck, "--tokens",
               os.path.join(OUT, "gpt2", "tokens.bin"), "--batch", str(info["B"]), "--seq",
               str(info["T"]), "--out", out]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with h5py.File(out, "r") as f:
            h = f["hidden_states"][...].astype(np.float64)
            lg = f["logits"][...].astype(np.float64)
    errs = rel_err(h, info["hs"])
    print("  lmdisp step vs reference, per layer:", " ".join(f"{x:.2e}" for x in errs),
          f"logits {rel_err(lg[None], info['lg'][None])[0]:.2e}")
    results.append(("gpt2", "lmdisp-step", max(errs + rel_err(lg[None], info["lg"][None]))))


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------

def gen_bad():
    bd = os.path.join(OUT, "bad")
    if os.path.isdir(bd):
        shutil.rmtree(bd)
    os.makedirs(bd)
    base_fields = dict(vocab_size=32, hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, head_dim=8,
                       max_position_embeddings=32)
    rows = []  # (dir, patterns (all must match, grep -iE), what must be refused)

    def base(mt="llama", dtype="F32", **extra):
        cf = make_config(mt, dtype, **dict(base_fields, **extra))
        cfg = Cfg(cf) if not (cf.get("rope_scaling") or cf.get("partial_rotary_factor")
                              or cf.get("use_sliding_window") or cf.get("hidden_act") != "silu"
                              or mt not in ARCH_CLASS) else None
        return cf, cfg

    def model(name, cf, st, raw=None, link=False, **kw):
        d = os.path.join(bd, name)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cf, f, indent=2)
            f.write("\n")
        p = os.path.join(d, "model.safetensors")
        if link:  # config-only refusals share the control's weights (as snapshots share blobs)
            os.symlink(os.path.join("..", "good", "model.safetensors"), p)
        elif raw is not None:
            open(p, "wb").write(raw)
        elif st is not None:
            write_st(p, st, **kw)
        return d

    cf, cfg = base()
    st, _ = make_weights(cfg, 7, "F32")
    good_hdr, good_buf = st_layout(st)
    good = st_bytes(good_hdr, good_buf)
    open(os.path.join(bd, "tokens.bin"), "wb").close()
    write_tokens(os.path.join(bd, "tokens.bin"), np.arange(64) % 32, "u16")

    model("good", cf, st)  # the control: must load (the test checks it runs)
    rows.append(("good", "", "control: a valid model that must be accepted (exit 0)"))

    model("truncated", cf, None, raw=good[:len(good) - 100])
    rows.append(("truncated", "model\\.safetensors", "file cut 100 bytes short of its last tensor"))

    raw = struct.pack("<Q", len(good) * 4) + good[8:]
    model("header_len_beyond", cf, None, raw=raw)
    rows.append(("header_len_beyond", "model\\.safetensors", "u64 header length larger than the file"))

    h = json.loads(json.dumps(good_hdr))
    nm = "model.layers.0.mlp.up_proj.weight"
    b0, e0 = h[nm]["data_offsets"]
    h[nm]["data_offsets"] = [b0 + len(good_buf), e0 + len(good_buf)]
    model("offsets_out_of_range", cf, None, raw=st_bytes(h, good_buf))
    rows.append(("offsets_out_of_range", "model\\.safetensors;up_proj", f"{nm} data_offsets past the end of the buffer"))

    # two tensors of the same size: the second's range starts inside the first's
    h = json.loads(json.dumps(good_hdr))
    a_, b_ = "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight"
    ga, gb = h[a_]["data_offsets"], h[b_]["data_offsets"]
    n = ga[1] - ga[0]
    h[b_]["data_offsets"] = [ga[0] + n // 2, ga[0] + n // 2 + n]
    model("offsets_overlap", cf, None, raw=st_bytes(h, good_buf))
    rows.append(("offsets_overlap", "model\\.safetensors;(gate_proj|up_proj)", f"{b_} overlaps {a_}"))

    h = json.loads(json.dumps(good_hdr))
    nm = "model.layers.0.self_attn.v_proj.weight"
    h[nm]["shape"] = [16, 15]  # 240 floats declared, 256 floats of bytes
    model("size_mismatch", cf, None, raw=st_bytes(h, good_buf))
    rows.append(("size_mismatch", "model\\.safetensors;v_proj", f"{nm}: end - begin != numel x itemsize"))

    # q_proj [8,32] instead of [16,16]: same byte count, wrong shape for the name
    h = json.loads(json.dumps(good_hdr))
    nm = "model.layers.0.self_attn.q_proj.weight"
    h[nm]["shape"] = [8, 32]
    model("wrong_shape", cf, None, raw=st_bytes(h, good_buf))
    rows.append(("wrong_shape", "model\\.safetensors;q_proj", f"{nm} is [8,32], the architecture expects [16,16]"))

    st2 = [t for t in st if t[0] != "model.layers.0.mlp.down_proj.weight"]
    model("missing_tensor", cf, st2)
    rows.append(("missing_tensor", "missing_tensor|model\\.safetensors;down_proj", "model.layers.0.mlp.down_proj.weight absent"))

    # dtype tags
    h = json.loads(json.dumps(good_hdr))
    h["model.norm.weight"]["dtype"] = "Q8_0"
    model("dtype_unknown", cf, None, raw=st_bytes(h, good_buf))
    rows.append(("dtype_unknown", "model\\.safetensors;Q8_0", "unknown dtype tag Q8_0 on model.norm.weight"))
    st3 = [(n_, "F64", s, np.frombuffer(r, "<f4").astype("<f8").tobytes()) if n_ == "model.norm.weight"
           else (n_, t, s, r) for n_, t, s, r in st]
    model("dtype_f64", cf, st3)
    rows.append(("dtype_f64", "model\\.safetensors;F64", "F64 weight (a recognised tag lmdisp does not compute with)"))

    raw = struct.pack("<Q", 40) + b'{"__metadata__": {"format": "pt"}, "x": ' + good_buf[:100]
    model("header_not_json", cf, None, raw=raw)
    rows.append(("header_not_json", "model\\.safetensors", "header is not valid JSON"))

    # config refusals (weights are valid)
    def cfg_case(name, pats, why, mt="llama", **extra):
        c2 = make_config(mt if mt in ARCH_CLASS else "llama", "F32", **dict(base_fields, **extra))
        if mt not in ARCH_CLASS:
            c2["model_type"] = mt
            c2["architectures"] = ["GemmaForCausalLM"]
        model(name, c2, st, link=True)
        rows.append((name, pats, why))

    cfg_case("unknown_model_type", "config\\.json;model_type;gemma", "model_type gemma is not implemented", mt="gemma")
    cfg_case("rope_llama3", "config\\.json;rope_scaling|rope_type;llama3", "rope_scaling rope_type llama3 (Llama-3.1)",
             rope_scaling={"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                           "original_max_position_embeddings": 8192, "rope_type": "llama3"})
    cfg_case("rope_linear", "config\\.json;rope_scaling|type;linear", "legacy rope_scaling {type: linear}",
             rope_scaling={"factor": 2.0, "type": "linear"})
    cfg_case("partial_rotary", "config\\.json;partial_rotary_factor", "partial_rotary_factor 0.5",
             partial_rotary_factor=0.5)
    cfg_case("hidden_act", "config\\.json;hidden_act", "hidden_act gelu_pytorch_tanh (not silu)",
             hidden_act="gelu_pytorch_tanh")
    # qwen2 with use_sliding_window true: weights are qwen2's (with biases)
    c2 = make_config("qwen2", "F32", **dict(base_fields, use_sliding_window=True, sliding_window=4,
                                            max_window_layers=0, tie_word_embeddings=False))
    c2q = dict(c2, use_sliding_window=False)
    stq, _ = make_weights(Cfg(c2q), 8, "F32")
    model("qwen_sliding", c2, stq)
    rows.append(("qwen_sliding", "config\\.json;use_sliding_window", "qwen2 use_sliding_window true"))

    # config and weights disagree
    c3 = dict(cf, vocab_size=40)
    model("vocab_mismatch", c3, st, link=True)
    rows.append(("vocab_mismatch", "embed_tokens|vocab_size", "config vocab_size 40, embed_tokens [32,16]"))
    c4 = dict(cf, hidden_size=24)
    model("hidden_mismatch", c4, st, link=True)
    rows.append(("hidden_mismatch", "model\\.safetensors|config\\.json", "config hidden_size 24, weights 16"))

    st5 = [t for t in st if t[0] != "lm_head.weight"]
    assert len(st5) == len(st) - 1
    model("untied_no_lm_head", cf, st5)
    rows.append(("untied_no_lm_head", "untied_no_lm_head|model\\.safetensors|config\\.json;lm_head", "tie_word_embeddings false and no lm_head.weight"))

    # sharded index naming a shard that is missing
    d = os.path.join(bd, "missing_shard")
    write_model_dir(d, cf, st, shards=2)
    os.remove(os.path.join(d, "model-00002-of-00002.safetensors"))
    rows.append(("missing_shard", "model-00002-of-00002\\.safetensors", "index names a shard that is not there"))

    with open(os.path.join(bd, "README.md"), "w") as f:
        f.write("# Bad inputs for the HF reader (tests/test_hf_forward.sh)\n\n"
                "Each directory must be refused by `lmdisp forward DIR --tokens tokens.bin --batch 1 "
                "--seq 8` with exit 2 and a message matching every `;`-separated extended regex "
                "(case-insensitive) of cases.tsv; `good` is the control that must load. "
                "Written by tests/gen_hf_models.py.\n\n| dir | must match | refused because |\n|---|---|---|\n")
        for r in rows:
            f.write(f"| {r[0]} | `{r[1]}` | {r[2]} |\n")
    with open(os.path.join(bd, "cases.tsv"), "w") as f:
        for r in rows:
            f.write(f"{r[0]}\t{r[1]}\t{r[2]}\n")


# --------------------------------------------------------------------------------------------
# fake HF hub cache
# --------------------------------------------------------------------------------------------

CACHE_REVS = [  # written in this (scrambled) order; DESIGN 4.6 order is the sorted one
    "stage1-step1000-tokens5B", "stage1-step0-tokens0B", "main", "stage1-step10000-tokens21B",
    "stage2-ingredient1-step11931-tokens50B", "stage1-step9000-tokens38B",
    "stage2-ingredient2-step11931-tokens50B", "olmo2-tiny-dev", "stage2-ingredient1-step5000-tokens21B",
]
CACHE_ORDER = ["stage1-step0-tokens0B", "stage1-step1000-tokens5B", "stage1-step9000-tokens38B",
               "stage1-step10000-tokens21B", "stage2-ingredient1-step5000-tokens21B",
               "stage2-ingredient1-step11931-tokens50B", "stage2-ingredient2-step11931-tokens50B", "main"]
CACHE_REVS1 = ["step20000-tokens84B", "main", "step1000-tokens4B", "step330000-tokens1384B"]
CACHE_ORDER1 = ["step1000-tokens4B", "step20000-tokens84B", "step330000-tokens1384B", "main"]


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def gen_cache():
    cd = os.path.join(OUT, "cache")
    if os.path.isdir(cd):
        shutil.rmtree(cd)
    refs_out = {}
    for repo, revs, fields in (
            ("models--allenai--OLMo-2-tiny", CACHE_REVS, dict(vocab_size=48, hidden_size=16,
                                                              intermediate_size=24, num_hidden_layers=2,
                                                              num_attention_heads=2, num_key_value_heads=2,
                                                              max_position_embeddings=64)),
            ("models--allenai--OLMo-1B-tiny-hf", CACHE_REVS1, dict(vocab_size=48, hidden_size=16,
                                                                   intermediate_size=24,
                                                                   num_hidden_layers=1,
                                                                   num_attention_heads=2,
                                                                   num_key_value_heads=2,
                                                                   max_position_embeddings=64))):
        rd = os.path.join(cd, repo)
        for sub in ("refs", "snapshots", "blobs"):
            os.makedirs(os.path.join(rd, sub))
        config = make_config("olmo2", "BF16", **fields)
        cbytes = (json.dumps(config, indent=2) + "\n").encode()
        cblob = git_blob_sha1(cbytes)
        open(os.path.join(rd, "blobs", cblob), "wb").write(cbytes)
        cfg = Cfg(config)
        for k, rev in enumerate(revs):
            sha = hashlib.sha1(("lmdisp-fake-" + repo + rev).encode()).hexdigest()
            with open(os.path.join(rd, "refs", rev), "w") as f:
                f.write(sha)  # huggingface_hub writes the bare sha, no newline
            st, W = make_weights(cfg, 500 + 17 * k + len(repo), "BF16")
            hdr, buf = st_layout(st)
            mb = st_bytes(hdr, buf)
            mblob = hashlib.sha256(mb).hexdigest()  # LFS files: blob name = sha256
            open(os.path.join(rd, "blobs", mblob), "wb").write(mb)
            sd = os.path.join(rd, "snapshots", sha)
            os.makedirs(sd)
            os.symlink(os.path.join("..", "..", "blobs", cblob), os.path.join(sd, "config.json"))
            os.symlink(os.path.join("..", "..", "blobs", mblob), os.path.join(sd, "model.safetensors"))
            refs_out[(repo, rev)] = (sha, cfg, W)
        # huggingface_hub's marker of a file known to be absent at a revision
        os.makedirs(os.path.join(rd, ".no_exist", refs_out[(repo, revs[0])][0]))
        open(os.path.join(rd, ".no_exist", refs_out[(repo, revs[0])][0], "model.safetensors.index.json"), "w").close()
    # references for forward on single revisions (by name, by sha, default main)
    toks = np.random.default_rng(77).integers(0, 48, size=2 * 8 + 3)
    write_tokens(os.path.join(cd, "tokens.bin"), toks, "u32")
    tok = toks[:16].reshape(2, 8)
    repo = "models--allenai--OLMo-2-tiny"
    for rev in ("stage1-step1000-tokens5B", "stage2-ingredient1-step11931-tokens50B", "main"):
        sha, cfg, W = refs_out[(repo, rev)]
        hs, lg = forward(cfg, W, tok)
        write_ref(os.path.join(cd, f"ref-{rev}.h5"), hs, lg,
                  dict(model_type="olmo2", batch=2, seq=8, offset=0, sha=sha, revision=rev))
    with open(os.path.join(cd, "order.txt"), "w") as f:
        f.write("# hf:allenai/OLMo-2-tiny@* in DESIGN 4.6 order (olmo2-tiny-dev has no step: skipped)\n")
        f.write("\n".join(CACHE_ORDER) + "\n")
    with open(os.path.join(cd, "order-OLMo-1B-tiny-hf.txt"), "w") as f:
        f.write("\n".join(CACHE_ORDER1) + "\n")
    with open(os.path.join(cd, "shas.tsv"), "w") as f:
        for (r, rev), (sha, _, _) in sorted(refs_out.items()):
            f.write(f"{r}\t{rev}\t{sha}\n")


def main():
    args = sys.argv[1:]
    lmdisp = None
    if "--lmdisp" in args:
        lmdisp = args[args.index("--lmdisp") + 1]
    bf16_selftest()
    os.makedirs(OUT, exist_ok=True)
    results, infos = [], {}
    for c in CASES:
        infos[c["name"]] = gen_case(c, results)
        print(f"wrote {c['name']}")
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        for c in CASES:
            i = infos[c["name"]]
            f.write(f"{c['name']}\t{i['B']}\t{i['T']}\t{i['offset']}\t{i['n_params']}\t{c['covers']}\n")
    gen_bad()
    print("wrote bad/")
    gen_cache()
    print("wrote cache/")
    if lmdisp:
        check_with_lmdisp(lmdisp, infos["gpt2"], results)
    bad = 0
    print("self-checks (max over layers and logits of max|x - ref| / rms(ref)):")
    for case, what, e in results:
        if what.startswith("mut:"):
            ok = e > 2 * TOL  # a slip must show above the tolerance
        else:
            ok = e < 1e-9 if what == "naive" else e < TOL
        bad += not ok
        print(f"  {case:14s} {what:24s} {e:.3e} {'ok' if ok else 'FAIL'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
