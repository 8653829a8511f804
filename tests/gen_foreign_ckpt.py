#!/usr/bin/python3
"""Writes tests/ref/foreign_ckpt.h5: a checkpoint as another tool (h5py) would write it,
with only the root attributes and /params (DESIGN.md 4.1), no /optimizer or /state.

h5py defaults on purpose: `format` is a variable-length UTF-8 string, integers are int64,
datasets are contiguous without filters. test_checkpoint.c loads it and recomputes every
value without Python from this documented formula:

    h(name)  = sum over the bytes b_p of name (p = 0, 1, ...) of (p + 1) * b_p, mod 997
    value[i] = float32(sin(0.01 * h(name) + 0.1 * i)),  i = row-major flat index in the dataset

Config: vocab_size 7, n_ctx 5, n_layer 2, n_embd 4, n_head 2, mlp_dim 6; step 17, tokens 4321,
seed 99.  Run: /usr/bin/python3 tests/gen_foreign_ckpt.py [out.h5]
"""
import os
import sys

import h5py
import numpy as np

CFG = dict(vocab_size=7, n_ctx=5, n_layer=2, n_embd=4, n_head=2, mlp_dim=6)


def name_hash(name):
    return sum((p + 1) * b for p, b in enumerate(name.encode("ascii"))) % 997


def shapes(c):
    V, P, C, M = c["vocab_size"], c["n_ctx"], c["n_embd"], c["mlp_dim"]
    out = [("wte", (V, C)), ("wpe", (P, C))]
    for i in range(c["n_layer"]):
        h = f"h.{i}."
        out += [
            (h + "ln_1.weight", (C,)), (h + "ln_1.bias", (C,)),
            (h + "attn.qkv.weight", (3 * C, C)), (h + "attn.qkv.bias", (3 * C,)),
            (h + "attn.proj.weight", (C, C)), (h + "attn.proj.bias", (C,)),
            (h + "ln_2.weight", (C,)), (h + "ln_2.bias", (C,)),
            (h + "mlp.fc.weight", (M, C)), (h + "mlp.fc.bias", (M,)),
            (h + "mlp.proj.weight", (C, M)), (h + "mlp.proj.bias", (C,)),
        ]
    out += [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "ref", "foreign_ckpt.h5")
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "lmdisp-checkpoint"  # h5py: variable-length UTF-8 string
        f.attrs["format_version"] = 1
        for k, v in CFG.items():
            f.attrs[k] = v
        f.attrs["step"] = 17
        f.attrs["tokens"] = 4321
        f.attrs["seed"] = 99
        g = f.create_group("params")
        for name, shape in shapes(CFG):
            i = np.arange(int(np.prod(shape)), dtype=np.float64)
            vals = np.sin(0.01 * name_hash(name) + 0.1 * i).astype(np.float32).reshape(shape)
            g.create_dataset(name, data=vals)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
