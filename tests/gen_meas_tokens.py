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
