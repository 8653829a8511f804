"""gen_meas_tokens.py — writes the two token files of the small measurement study
(experiments/meas_tiny_hf.yaml) into tests/meas/: llm.c uint16 token files (DESIGN 4.2) with ids
below 48, the smallest vocabulary of the random HF test models (OLMo-2-tiny). Pure Python,
deterministic: `/usr/bin/python3 tests/gen_meas_tokens.py`."""
import os, random, struct
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "meas")
def write(name, toks):
    with open(os.path.join(HERE, name), "wb") as f:
        hdr = [20240520, 1, len(toks)] + [0] * 253
        f.write(struct.pack("<256i", *hdr))
        f.write(struct.pack("<%dH" % len(toks), *toks))
rng = random.Random(18)
write("uniform.bin", [rng.randrange(48) for _ in range(256)])
# a skewed, repetitive stream: a few ids dominate, short phrases recur
phrases = [[rng.randrange(48) for _ in range(rng.randrange(2, 6))] for _ in range(12)]
out = []
while len(out) < 256:
    out += phrases[min(int(rng.expovariate(0.5)), 11)]
write("phrases.bin", out[:256])
# too short for 4 x 16 tokens: for tests/specs/bad_meas_short.yaml
write("short.bin", [rng.randrange(48) for _ in range(40)])

# Two random GPT-2 models in HF layout (config.json, model.safetensors) with vocabularies of 300
# ids, each with its own tokenizer.json (a byte-level BPE: the 256 byte tokens in GPT-2's
# bytes_to_unicode order, 10 merges, <|endoftext|>), and a text of paragraphs, for the text
# dataset of tests/specs/meas_text.yaml (the paper's sampling with each model's own tokenizer,
# docs/DATA.md). numpy only.
import json
import numpy as np

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) \
        + list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]

vocab = {ch: i for i, ch in enumerate(bytes_to_unicode())}
merges = [["t", "h"], ["th", "e"], ["\u0120", "the"], ["a", "n"], ["i", "n"], ["e", "r"],
          ["o", "n"], ["\u0120", "a"], ["r", "e"], ["\u0120", "s"]]
for a, b in merges:
    vocab[a + b] = len(vocab)
vocab["<|endoftext|>"] = len(vocab)
tok = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": vocab["<|endoftext|>"], "content": "<|endoftext|>", "single_word": False,
                      "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                      "use_regex": True},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                       "use_regex": True},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
              "vocab": vocab, "merges": [" ".join(m) for m in merges]},
}

def write_gpt2(name, n_layer, d, n_head, seed, V=300, P=32):
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    g = np.random.default_rng(seed)
    t = {"wte.weight": g.normal(0, 0.5, (V, d)), "wpe.weight": g.normal(0, 0.1, (P, d)),
         "ln_f.weight": 1 + g.normal(0, 0.1, d), "ln_f.bias": g.normal(0, 0.1, d)}
    for i in range(n_layer):
        h = f"h.{i}."
        t[h + "ln_1.weight"] = 1 + g.normal(0, 0.1, d)
        t[h + "ln_1.bias"] = g.normal(0, 0.1, d)
        t[h + "attn.c_attn.weight"] = g.normal(0, 0.3, (d, 3 * d))
        t[h + "attn.c_attn.bias"] = g.normal(0, 0.1, 3 * d)
        t[h + "attn.c_proj.weight"] = g.normal(0, 0.3, (d, d))
        t[h + "attn.c_proj.bias"] = g.normal(0, 0.1, d)
        t[h + "ln_2.weight"] = 1 + g.normal(0, 0.1, d)
        t[h + "ln_2.bias"] = g.normal(0, 0.1, d)
        t[h + "mlp.c_fc.weight"] = g.normal(0, 0.3, (d, 4 * d))
        t[h + "mlp.c_fc.bias"] = g.normal(0, 0.1, 4 * d)
        t[h + "mlp.c_proj.weight"] = g.normal(0, 0.3, (4 * d, d))
        t[h + "mlp.c_proj.bias"] = g.normal(0, 0.1, d)
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k in sorted(t):
        b = np.ascontiguousarray(t[k], dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(np.shape(t[k])), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header).encode()
    hj += b" " * (-len(hj) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
    cfg = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
           "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": P, "n_embd": d,
           "n_head": n_head, "n_inner": None, "n_layer": n_layer, "n_positions": P,
           "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
           "torch_dtype": "float32", "vocab_size": V,
           "bos_token_id": vocab["<|endoftext|>"], "eos_token_id": vocab["<|endoftext|>"]}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tok, f, indent=1)

write_gpt2("gpt2_text_a", 2, 16, 2, 1)
write_gpt2("gpt2_text_b", 3, 24, 3, 2)
words = ["the", "cat", "sat", "on", "a", "mat", "rain", "and", "sun", "river", "stone", "green",
         "in", "her", "garden", "there", "were", "seven", "quiet", "hours"]
paras = []
for p in range(30):
    sents = []
    for s in range(rng.randrange(2, 5)):
        sents.append(" ".join(rng.choice(words) for _ in range(rng.randrange(4, 10))) + ".")
    paras.append(" ".join(sents))
with open(os.path.join(HERE, "paragraphs.txt"), "w") as f:
    f.write("\n\n".join(paras) + "\n")
