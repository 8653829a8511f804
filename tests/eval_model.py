"""eval_model.py OUT_DIR — the HF GPT-2 that test_eval.sh scores its task file with: tests/hf/gpt2
(random, vocab 96, 2 layers, n_embd 32, 32 positions) widened to GPT-2's vocabulary of 50,257 so
the real GPT-2 tokenizer applies: row i of wte is row i % 96 scaled by 1 + 0.01 * ((i // 96) % 7)
(float32 arithmetic, so ids 96 apart still differ). numpy only, deterministic, no RNG: CI builds
the same file the committed reference (tests/eval/ref.json, gen_eval_ref.py) was computed on.
Also writes OUT_DIR/ck.h5 when h5py is given --ckpt: the same weights as an lmdisp checkpoint
(DESIGN 4.1: Conv1D [in, out] transposed to (out, in))."""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
V = 50257


def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    out = {}
    for k, t in hdr.items():
        assert t["dtype"] == "F32", (k, t["dtype"])
        a, b = t["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(t["shape"]).copy()
    return out


def write_st(path, tensors):
    names = sorted(tensors)
    hdr, off = {"__metadata__": {"format": "pt"}}, 0
    for k in names:
        nb = tensors[k].size * 4
        hdr[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + nb]}
        off += nb
    js = json.dumps(hdr, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js)
        for k in names:
            f.write(tensors[k].astype("<f4").tobytes())


def build(out):
    src = os.path.join(HERE, "hf", "gpt2")
    cfg = json.load(open(os.path.join(src, "config.json")))
    W = read_st(os.path.join(src, "model.safetensors"))
    key = next(k for k in W if k.endswith("wte.weight"))
    base = W[key]
    V0 = base.shape[0]
    i = np.arange(V)
    scale = (1.0 + 0.01 * ((i // V0) % 7)).astype(np.float32)
    W[key] = (base[i % V0] * scale[:, None]).astype(np.float32)
    cfg["vocab_size"] = V
    cfg["bos_token_id"] = cfg["eos_token_id"] = V - 1
    os.makedirs(out, exist_ok=True)
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)
    write_st(os.path.join(out, "model.safetensors"), W)
    return cfg, W


def write_ckpt(path, cfg, W):
    import h5py
    p = "transformer." if any(k.startswith("transformer.") for k in W) else ""
    L, d = cfg["n_layer"], cfg["n_embd"]
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "lmdisp-checkpoint"
        for k, v in (("format_version", 1), ("vocab_size", V), ("n_ctx", cfg["n_positions"]),
                     ("n_layer", L), ("n_embd", d), ("n_head", cfg["n_head"]),
                     ("mlp_dim", cfg.get("n_inner") or 4 * d), ("step", 0), ("tokens", 0), ("seed", 0)):
            f.attrs[k] = np.int64(v)
        g = f.create_group("params")
        g["wte"], g["wpe"] = W[p + "wte.weight"], W[p + "wpe.weight"]
        g["ln_f.weight"], g["ln_f.bias"] = W[p + "ln_f.weight"], W[p + "ln_f.bias"]
        for i in range(L):
            h = f"{p}h.{i}."
            for a, b, tr in (("ln_1.weight", "ln_1.weight", 0), ("ln_1.bias", "ln_1.bias", 0),
                             ("attn.c_attn.weight", "attn.qkv.weight", 1), ("attn.c_attn.bias", "attn.qkv.bias", 0),
                             ("attn.c_proj.weight", "attn.proj.weight", 1), ("attn.c_proj.bias", "attn.proj.bias", 0),
                             ("ln_2.weight", "ln_2.weight", 0), ("ln_2.bias", "ln_2.bias", 0),
                             ("mlp.c_fc.weight", "mlp.fc.weight", 1), ("mlp.c_fc.bias", "mlp.fc.bias", 0),
                             ("mlp.c_proj.weight", "mlp.proj.weight", 1), ("mlp.c_proj.bias", "mlp.proj.bias", 0)):
                v = W[h + a]
                g[f"h.{i}.{b}"] = np.ascontiguousarray(v.T) if tr else v


if __name__ == "__main__":
    cfg, W = build(sys.argv[1])
    if "--ckpt" in sys.argv:
        write_ckpt(os.path.join(sys.argv[1], "..", "eval_ck.h5"), cfg, W)
