#!/usr/bin/python3
"""make_hf_model.py — writes a random llama/olmo2-shaped HF model directory (config.json +
safetensors in HF's layout, sharded with model.safetensors.index.json above --shard-gb) and a
uint32 llm.c token file, for the memory and speed benchmarks of docs/PERFORMANCE.md.
numpy only. Weights: N(0, 0.02) in BF16 (round-to-nearest-even) or F32, norms 1; to write
GBs quickly the weights are slices of one random pool, not independent draws.

  make_hf_model.py OUT_DIR [--arch olmo2|llama] [--layers 6] [--hidden 2048] [--heads 16]
                   [--kv-heads H] [--inter 8192] [--vocab 100352] [--dtype bf16|f32]
                   [--shard-gb 5] [--tokens 8192]
"""
import argparse
import json
import os
import struct

import numpy as np


def bf16_bits(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--arch", default="olmo2")
    for k, v in (("layers", 6), ("hidden", 2048), ("heads", 16), ("kv-heads", 0),
                 ("inter", 8192), ("vocab", 100352), ("tokens", 8192)):
        p.add_argument("--" + k, type=int, default=v)
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--shard-gb", type=float, default=5.0)
    a = p.parse_args()
    kv = a.kv_heads or a.heads
    d, hd = a.hidden, a.hidden // a.heads
    olmo = a.arch == "olmo2"
    os.makedirs(a.out, exist_ok=True)
    cfg = {"model_type": a.arch, "architectures": ["Olmo2ForCausalLM" if olmo else "LlamaForCausalLM"],
           "vocab_size": a.vocab, "hidden_size": d, "num_hidden_layers": a.layers,
           "num_attention_heads": a.heads, "num_key_value_heads": kv, "intermediate_size": a.inter,
           "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 500000.0,
           "hidden_act": "silu", "attention_bias": False, "tie_word_embeddings": False,
           "torch_dtype": "bfloat16" if a.dtype == "bf16" else "float32"}
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    names = [("model.embed_tokens.weight", (a.vocab, d))]
    for i in range(a.layers):
        pre = f"model.layers.{i}."
        if not olmo:
            names.append((pre + "input_layernorm.weight", (d,)))
        names += [(pre + "self_attn.q_proj.weight", (a.heads * hd, d)),
                  (pre + "self_attn.k_proj.weight", (kv * hd, d)),
                  (pre + "self_attn.v_proj.weight", (kv * hd, d)),
                  (pre + "self_attn.o_proj.weight", (d, a.heads * hd))]
        if olmo:
            names += [(pre + "self_attn.q_norm.weight", (a.heads * hd,)),
                      (pre + "self_attn.k_norm.weight", (kv * hd,)),
                      (pre + "post_feedforward_layernorm.weight", (d,))]
        names += [(pre + "post_attention_layernorm.weight", (d,)),
                  (pre + "mlp.gate_proj.weight", (a.inter, d)),
                  (pre + "mlp.up_proj.weight", (a.inter, d)),
                  (pre + "mlp.down_proj.weight", (d, a.inter))]
    names += [("model.norm.weight", (d,)), ("lm_head.weight", (a.vocab, d))]
    isz = 2 if a.dtype == "bf16" else 4
    tag = "BF16" if a.dtype == "bf16" else "F32"
    rng = np.random.default_rng(0)
    pool = (rng.standard_normal(1 << 24) * 0.02).astype(np.float32)
    pool = bf16_bits(pool) if a.dtype == "bf16" else pool
    one = bf16_bits(np.ones(1, np.float32))[0] if a.dtype == "bf16" else np.float32(1)
    # shards: consecutive tensors up to --shard-gb each
    shards, cur, cur_b = [], [], 0
    for n, s in names:
        b = int(np.prod(s)) * isz
        if cur and cur_b + b > a.shard_gb * 1e9:
            shards.append(cur)
            cur, cur_b = [], 0
        cur.append((n, s))
        cur_b += b
    shards.append(cur)
    weight_map, total = {}, 0
    for k, sh in enumerate(shards):
        fname = "model.safetensors" if len(shards) == 1 else \
            f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        hdr, off = {"__metadata__": {"format": "pt"}}, 0
        for n, s in sh:
            b = int(np.prod(s)) * isz
            hdr[n] = {"dtype": tag, "shape": list(s), "data_offsets": [off, off + b]}
            off += b
            weight_map[n] = fname
        total += off
        hj = json.dumps(hdr).encode()
        hj += b" " * ((8 - len(hj) % 8) % 8)
        with open(os.path.join(a.out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(hj)))
            f.write(hj)
            for j, (n, s) in enumerate(sh):
                cnt = int(np.prod(s))
                if "norm" in n:
                    f.write(np.full(cnt, one, dtype=pool.dtype).tobytes())
                    continue
                start = (j * 7919) % len(pool)
                while cnt > 0:
                    m = min(cnt, len(pool) - start)
                    f.write(pool[start:start + m].tobytes())
                    cnt -= m
                    start = 0
        print(f"wrote {fname}: {off / 1e9:.2f} GB")
    if len(shards) > 1:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
                  open(os.path.join(a.out, "model.safetensors.index.json"), "w"), indent=1)
    tok = rng.integers(0, a.vocab, a.tokens, dtype=np.uint32)
    h = np.zeros(256, np.int32)
    h[0], h[1], h[2] = 20240801, 7, a.tokens
    with open(os.path.join(a.out, "tokens.bin"), "wb") as f:
        f.write(h.tobytes())
        f.write(tok.astype("<u4").tobytes())
    print(f"{a.out}: {a.arch}, {a.layers} layers, {total / 1e9:.2f} GB of weights, "
          f"{a.tokens} tokens in tokens.bin")


if __name__ == "__main__":
    main()
