#!/usr/bin/python3
"""Checker for tests/test_hf_forward.sh (numpy + h5py only, no torch).

  hf_compare.py compare OURS.h5 REF.h5 [--tol 2e-4] [--name CASE] [--no-attrs]
      `lmdisp forward` dump (DESIGN 4.7) against a float64 reference of tests/hf/: per hidden
      state l, max|ours - ref| / rms(ref[l]) (and the same for the logits); prints every layer
      and the worst, exits 1 above the tolerance. Also checks shapes, float32, and the root
      attributes model_type, n_layer, hidden_size, n_params against the reference's.
  hf_compare.py to-lmdisp HF_GPT2_DIR OUT.h5
      HF GPT-2 directory (single F32 model.safetensors) -> lmdisp checkpoint (DESIGN 4.1):
      Conv1D [in,out] transposed to [out,in], c_attn -> qkv (rows q | k | v), tied wte.
  hf_compare.py measure MEASURE.json REF.h5 [--name CASE]
      `lmdisp measure --json` on the reference's windows: layer means, off-diagonal means and MEV
      recomputed in numpy from the reference hidden states (DESIGN 1), within 1e-5.
  hf_compare.py order ORDER.txt OUTPUT.txt [--absent NAME ...]
      the revision names of ORDER.txt (one a line, # comments) appear in OUTPUT.txt in that
      order (first appearance of each as a whole word); --absent names must not be measured
      (they may appear only on a line that says skipped/no step).
"""
import json
import re
import struct
import sys

import h5py
import numpy as np


def compare(argv):
    tol, name, attrs = 2e-4, "", True
    pos = []
    i = 0
    while i < len(argv):
        if argv[i] == "--tol":
            tol = float(argv[i + 1]); i += 2
        elif argv[i] == "--name":
            name = argv[i + 1]; i += 2
        elif argv[i] == "--no-attrs":
            attrs = False; i += 1
        else:
            pos.append(argv[i]); i += 1
    ours_p, ref_p = pos
    bad = []
    with h5py.File(ours_p, "r") as fo, h5py.File(ref_p, "r") as fr:
        for k in ("hidden_states", "logits"):
            if k not in fo:
                print(f"{name}: {ours_p} has no /{k}")
                return 1
        H, Hr = fo["hidden_states"], fr["hidden_states"][...]
        G, Gr = fo["logits"], fr["logits"][...]
        if H.shape != Hr.shape or G.shape != Gr.shape:
            print(f"{name}: shapes hidden_states {H.shape} logits {G.shape}, "
                  f"want {Hr.shape} {Gr.shape}")
            return 1
        for k, ds in (("hidden_states", H), ("logits", G)):
            if ds.dtype != np.float32:
                bad.append(f"/{k} is {ds.dtype}, DESIGN 4.7 says float32")
        H = H[...].astype(np.float64)
        G = G[...].astype(np.float64)
        if attrs:
            for k in ("model_type", "n_layer", "hidden_size", "n_params"):
                if k not in fr.attrs:
                    continue
                want = fr.attrs[k]
                got = fo.attrs.get(k)
                if isinstance(want, bytes):
                    want = want.decode()
                if isinstance(got, bytes):
                    got = got.decode()
                if got is None:
                    bad.append(f"root attribute {k} missing (want {want})")
                elif (str(got) != str(want)) if isinstance(want, str) else (int(got) != int(want)):
                    bad.append(f"root attribute {k} = {got}, want {want}")
    errs = []
    for l in range(Hr.shape[0]):
        rms = np.sqrt((Hr[l] ** 2).mean())
        d = np.abs(H[l] - Hr[l])
        e = float(np.nanmax(d) / rms) if np.isfinite(d).all() else float("inf")
        errs.append(e)
    rms = np.sqrt((Gr ** 2).mean())
    dg = np.abs(G - Gr)
    eg = float(dg.max() / rms) if np.isfinite(dg).all() else float("inf")
    worst = int(np.argmax(errs))
    line = " ".join(f"h{l}={e:.2e}" for l, e in enumerate(errs))
    print(f"{name}: {line} logits={eg:.2e}")
    w = max(max(errs), eg)
    where = f"hidden state {worst}" if max(errs) >= eg else "logits"
    ok = w <= tol and not bad
    for b in bad:
        print(f"{name}: {b}")
    if w > tol:
        # where it goes wrong first: the first layer above the tolerance, and where in it
        first = next(l for l, e in enumerate(errs + [eg]) if e > tol)
        if first < len(errs):
            d = np.abs(H[first] - Hr[first])
            b, t, c = np.unravel_index(int(np.argmax(d)), d.shape)
            print(f"{name}: first above {tol:g}: hidden state {first} (0 = embedding output, "
                  f"{len(errs) - 1} = final norm), worst at seq {b} pos {t} dim {c}: "
                  f"ours {H[first][b, t, c]:.6g} ref {Hr[first][b, t, c]:.6g}")
    print(f"{name}: worst {w:.2e} at {where} (tol {tol:g}) {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    hdr = json.loads(data[8:8 + n])
    hdr.pop("__metadata__", None)
    buf = data[8 + n:]
    out = {}
    for k, v in hdr.items():
        assert v["dtype"] == "F32", (k, v["dtype"])
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(buf[b:e], dtype="<f4").reshape(v["shape"])
    return out


def to_lmdisp(argv):
    d, out = argv
    cfg = json.load(open(d + "/config.json"))
    W = read_st(d + "/model.safetensors")
    W = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in W.items()}
    L, C = cfg["n_layer"], cfg["n_embd"]
    M = cfg.get("n_inner") or 4 * C
    with h5py.File(out, "w") as f:
        f.attrs["format"] = "lmdisp-checkpoint"
        f.attrs["format_version"] = 1
        for k, v in dict(vocab_size=cfg["vocab_size"], n_ctx=cfg["n_positions"], n_layer=L, n_embd=C,
                         n_head=cfg["n_head"], mlp_dim=M, step=0, tokens=0, seed=0).items():
            f.attrs[k] = np.int64(v)
        g = f.create_group("params")

        def put(n, a):
            g.create_dataset(n, data=np.ascontiguousarray(a, dtype=np.float32))

        put("wte", W["wte.weight"])
        put("wpe", W["wpe.weight"])
        for i in range(L):
            h = f"h.{i}."
            for a, b in (("ln_1.weight", "ln_1.weight"), ("ln_1.bias", "ln_1.bias"),
                         ("attn.qkv.bias", "attn.c_attn.bias"), ("attn.proj.bias", "attn.c_proj.bias"),
                         ("ln_2.weight", "ln_2.weight"), ("ln_2.bias", "ln_2.bias"),
                         ("mlp.fc.bias", "mlp.c_fc.bias"), ("mlp.proj.bias", "mlp.c_proj.bias")):
                put(h + a, W[h + b])
            for a, b in (("attn.qkv.weight", "attn.c_attn.weight"), ("attn.proj.weight", "attn.c_proj.weight"),
                         ("mlp.fc.weight", "mlp.c_fc.weight"), ("mlp.proj.weight", "mlp.c_proj.weight")):
                put(h + a, W[h + b].T)
        put("ln_f.weight", W["ln_f.weight"])
        put("ln_f.bias", W["ln_f.bias"])
    return 0


def order(argv):
    absent = []
    if "--absent" in argv:
        k = argv.index("--absent")
        absent, argv = argv[k + 1:], argv[:k]
    names = [l.strip() for l in open(argv[0]) if l.strip() and not l.startswith("#")]
    text = open(argv[1], errors="replace").read()
    pos = []
    for n in names:
        # as part of a revision spec (hf:ORG/NAME@REV): a bare word could match a path such
        # as a checkout named main
        m = re.search(r"@" + re.escape(n) + r"(?![\w.-])", text)
        pos.append(m.start() if m else -1)
    bad = 0
    for n, p in zip(names, pos):
        if p < 0:
            print(f"revision {n} does not appear in the output"); bad += 1
    found = [(p, n) for n, p in zip(names, pos) if p >= 0]
    seen = [n for p, n in sorted(found)]
    want = [n for n in names if n in seen]
    if seen != want:
        print("revisions in the order", seen, "\n  want", want); bad += 1
    for n in absent:
        for line in text.splitlines():
            if re.search(r"(?<![\w.-])" + re.escape(n) + r"(?![\w.-])", line) and \
                    not re.search(r"skip|no step|without", line, re.I):
                print(f"revision {n} (no step) appears on a line that does not say it is skipped: {line!r}")
                bad += 1
    print("order:", " < ".join(seen), "ok" if not bad else "FAIL")
    return 1 if bad else 0


def measure(argv):
    """`lmdisp measure MODEL --tokens --sequences B --seq-len T --json` output vs DESIGN 1 in
    numpy on the reference hidden states (windows b*T.. = forward's batch at offset 0)."""
    js, ref = argv[0], argv[1]
    name = argv[argv.index("--name") + 1] if "--name" in argv else ""
    j = json.load(open(js))
    with h5py.File(ref, "r") as f:
        H = f["hidden_states"][...]
    L1, B, T, C = H.shape
    lm, od, mev = [], [], []
    for l in range(L1):
        X = H[l]
        Xn = X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), 1e-3)
        Cb = np.clip(np.einsum("btd,bsd->bts", Xn, Xn), -1, 1).mean(0)
        lm.append(Cb.mean())
        od.append((Cb.sum() - np.trace(Cb)) / (T * (T - 1)))
        m = []
        for b in range(B):
            sv = np.linalg.svd(X[b], compute_uv=False)
            m.append(sv[0] ** 2 / (sv ** 2).sum())
        mev.append(np.mean(m))
    bad = 0
    for key, want, tol in (("layer_mean_cossim", lm, 1e-5), ("offdiag_mean_cossim", od, 1e-5), ("mev", mev, 1e-5)):
        got = j.get(key)
        if got is None or len(got) != L1:
            print(f"{name}: measure {key} missing or not {L1} entries"); bad += 1
            continue
        d = np.abs(np.asarray(got, float) - np.asarray(want))
        ok = d.max() <= tol
        bad += not ok
        print(f"{name}: measure {key:20s} worst |diff| {d.max():.2e} at layer {int(d.argmax())} (tol {tol:g}) {'ok' if ok else 'FAIL'}")
    return 1 if bad else 0


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    sys.exit({"compare": compare, "to-lmdisp": to_lmdisp, "order": order, "measure": measure}[cmd](argv))


if __name__ == "__main__":
    main()
