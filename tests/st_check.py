"""st_check.py HFDIR CK.h5 — checks an `lmdisp export` directory against the lmdisp checkpoint
it came from, with a safetensors parser of its own (numpy only; h5py for the checkpoint, no
torch, no transformers). What transformers' GPT2LMHeadModel.from_pretrained needs:
  * model.safetensors: u64 LE header length, JSON header (padded with spaces), byte buffer
    covered exactly by the tensors, no overlaps; __metadata__ {"format": "pt"};
  * the names GPT2LMHeadModel's state_dict holds ("transformer." prefix; lm_head.weight
    absent because it is tied to wte), every one F32 with the shape of GPT-2's modules, where
    Conv1D weights are [in, out] (c_attn [d, 3d], c_proj [d, d], c_fc [d, inner],
    mlp.c_proj [inner, d]);
  * each tensor bitwise equal to the checkpoint's /params/<name> (transposed for Conv1D);
  * config.json: GPT2Config's fields (models/gpt2/configuration_gpt2.py), n_inner = mlp_dim,
    n_positions = n_ctx, gelu_new, eps 1e-5, tie_word_embeddings left at its default (True).
With --forward DUMP.h5 TOKENS.bin: also runs GPT-2's forward in float64 numpy from the exported
files alone, as transformers' modeling_gpt2.py computes it (Conv1D y = x W + b, q|k|v split of
c_attn, causal softmax scaled by 1/sqrt(head_dim), gelu_new, eps 1e-5, final ln_f, logits =
ln_f(h) wte^T), on the dump's sequences (`lmdisp forward CK.h5 --tokens TOKENS.bin`, offset 0)
and compares hidden states and logits: max |diff| / rms(ref) <= 1e-5 (float32 vs float64).
Exit 0 when all hold, else 1 with every problem listed."""
import json
import struct
import sys

import h5py
import numpy as np

GPT2_CONFIG_FIELDS = {  # GPT2Config.__init__'s parameters + what PretrainedConfig adds
    "activation_function", "architectures", "attn_pdrop", "bos_token_id", "embd_pdrop",
    "eos_token_id", "initializer_range", "layer_norm_epsilon", "model_type", "n_embd", "n_head",
    "n_inner", "n_layer", "n_positions", "reorder_and_upcast_attn", "resid_pdrop",
    "scale_attn_by_inverse_layer_idx", "scale_attn_weights", "summary_activation",
    "summary_first_dropout", "summary_proj_to_labels", "summary_type", "summary_use_proj",
    "torch_dtype", "transformers_version", "use_cache", "vocab_size"}


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr_bytes = raw[8:8 + n]
    hdr = json.loads(hdr_bytes.decode("utf-8"))
    buf = raw[8 + n:]
    meta = hdr.pop("__metadata__", None)
    spans, tensors = [], {}
    for name, t in hdr.items():
        a, b = t["data_offsets"]
        assert t["dtype"] == "F32", f"{name}: dtype {t['dtype']}"
        shape = tuple(t["shape"])
        assert b - a == 4 * int(np.prod(shape)), f"{name}: {b - a} bytes for shape {shape}"
        tensors[name] = np.frombuffer(buf[a:b], dtype="<f4").reshape(shape)
        spans.append((a, b, name))
    spans.sort()
    pos = 0
    for a, b, name in spans:
        assert a == pos, f"{name}: starts at {a}, previous tensor ended at {pos} (gap/overlap)"
        pos = b
    assert pos == len(buf), f"tensors cover {pos} of the {len(buf)}-byte buffer"
    return n, meta, tensors


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def hf_gpt2_forward(cfg, W, tok):
    """tok [B, T] -> (hidden states [L+1, B, T, d], logits [B, T, V]), float64."""
    W = {k[len("transformer."):]: v.astype(np.float64) for k, v in W.items()}
    B, T = tok.shape
    d, H, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    hd = d // H
    x = W["wte.weight"][tok] + W["wpe.weight"][:T][None]
    hs = [x]
    mask = np.tril(np.ones((T, T), dtype=bool))
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        a = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        qkv = a @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        q, k, v = (t.reshape(B, T, H, hd).transpose(0, 2, 1, 3) for t in np.split(qkv, 3, axis=-1))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
        s = np.where(mask, s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        o = (s / s.sum(-1, keepdims=True)) @ v
        o = o.transpose(0, 2, 1, 3).reshape(B, T, d)
        x = x + o @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        m = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        m = gelu_new(m @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = x + m @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
        hs.append(x)
    x = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    hs[-1] = x
    return np.stack(hs), x @ W["wte.weight"].T


def read_tokens(path, n):
    raw = open(path, "rb").read()
    h = np.frombuffer(raw[:1024], dtype="<i4")
    dt = "<u2" if h[0] == 20240520 else "<u4"
    return np.frombuffer(raw[1024:], dtype=dt)[:n].astype(np.int64)


def check_forward(cfg, T, dump, tokens, bad):
    with h5py.File(dump, "r") as f:
        hs, lg = f["hidden_states"][()], f["logits"][()]
    B, S = lg.shape[:2]
    tok = read_tokens(tokens, B * S).reshape(B, S)
    rhs, rlg = hf_gpt2_forward(cfg, T, tok)
    worst = 0.0
    for l in range(rhs.shape[0]):
        r = np.abs(hs[l] - rhs[l]).max() / np.sqrt((rhs[l] ** 2).mean())
        worst = max(worst, r)
    rl = np.abs(lg - rlg).max() / np.sqrt((rlg ** 2).mean())
    print(f"numpy float64 HF GPT-2 forward of the exported files vs {dump}: worst max|diff|/rms "
          f"hidden states {worst:.2e}, logits {rl:.2e} (bound 1e-5; {B} x {S} tokens)")
    if not (worst <= 1e-5 and rl <= 1e-5):
        bad.append(f"forward of the exported files differs from {dump}")


def main(hfdir, ck, *fwd):
    bad = []
    cfg = json.load(open(f"{hfdir}/config.json"))
    with h5py.File(ck, "r") as f:
        A = {k: int(f.attrs[k]) for k in ("vocab_size", "n_ctx", "n_layer", "n_embd", "n_head", "mlp_dim")}
        P = {k: f["params"][k][()] for k in f["params"]}
    want_cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": A["vocab_size"],
                "n_positions": A["n_ctx"], "n_layer": A["n_layer"], "n_embd": A["n_embd"],
                "n_head": A["n_head"], "n_inner": A["mlp_dim"], "activation_function": "gelu_new",
                "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
                "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False}
    for k, v in want_cfg.items():
        if cfg.get(k) != v:
            bad.append(f"config.json {k} = {cfg.get(k)!r}, want {v!r}")
    if set(cfg) != GPT2_CONFIG_FIELDS:
        bad.append(f"config.json fields differ from GPT2Config's: {sorted(set(cfg) ^ GPT2_CONFIG_FIELDS)}")
    if cfg.get("tie_word_embeddings", True) is not True:
        bad.append("config.json unties the embeddings")
    n, meta, T = read_safetensors(f"{hfdir}/model.safetensors")
    if n % 8:
        bad.append(f"header length {n} is not a multiple of 8")
    if meta != {"format": "pt"}:
        bad.append(f"__metadata__ {meta!r}, want {{'format': 'pt'}}")
    V, C, M, L, Pn = A["vocab_size"], A["n_embd"], A["mlp_dim"], A["n_layer"], A["n_ctx"]
    # HF name -> (checkpoint name, HF shape, transposed)
    want = {"transformer.wte.weight": ("wte", (V, C), False),
            "transformer.wpe.weight": ("wpe", (Pn, C), False),
            "transformer.ln_f.weight": ("ln_f.weight", (C,), False),
            "transformer.ln_f.bias": ("ln_f.bias", (C,), False)}
    for i in range(L):
        h, c = f"transformer.h.{i}.", f"h.{i}."
        want.update({
            h + "ln_1.weight": (c + "ln_1.weight", (C,), False), h + "ln_1.bias": (c + "ln_1.bias", (C,), False),
            h + "attn.c_attn.weight": (c + "attn.qkv.weight", (C, 3 * C), True),
            h + "attn.c_attn.bias": (c + "attn.qkv.bias", (3 * C,), False),
            h + "attn.c_proj.weight": (c + "attn.proj.weight", (C, C), True),
            h + "attn.c_proj.bias": (c + "attn.proj.bias", (C,), False),
            h + "ln_2.weight": (c + "ln_2.weight", (C,), False), h + "ln_2.bias": (c + "ln_2.bias", (C,), False),
            h + "mlp.c_fc.weight": (c + "mlp.fc.weight", (C, M), True),
            h + "mlp.c_fc.bias": (c + "mlp.fc.bias", (M,), False),
            h + "mlp.c_proj.weight": (c + "mlp.proj.weight", (M, C), True),
            h + "mlp.c_proj.bias": (c + "mlp.proj.bias", (C,), False)})
    if set(T) != set(want):
        bad.append(f"tensor names differ from GPT2LMHeadModel's state_dict: {sorted(set(T) ^ set(want))}")
    checked = 0
    for name, (src, shape, tr) in want.items():
        if name not in T:
            continue
        if T[name].shape != shape:
            bad.append(f"{name}: shape {T[name].shape}, want {shape}")
            continue
        ref = P[src].T if tr else P[src]
        if not np.array_equal(T[name], ref):
            bad.append(f"{name}: differs from /params/{src}{'.T' if tr else ''} "
                       f"(max |diff| {np.abs(T[name] - ref).max():.3g})")
        checked += 1
    if fwd and not bad:
        check_forward(cfg, T, fwd[1], fwd[2], bad)
    for b in bad:
        print("  " + b)
    print(f"st_check: {checked}/{len(want)} tensors bitwise equal to the checkpoint, "
          f"{len(cfg)} config fields, header {n} bytes: {'FAIL' if bad else 'ok'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
