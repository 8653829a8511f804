#!/usr/bin/env bash
# test_config.sh — `lmdisp train --config FILE.yaml`: a file gives the same run as the same
# flags; its errors name file:line:column (a bad value, an unknown key once with the nearest
# name, a key given twice); flags on the command line override the file; a flag given twice
# on the command line is refused.
set -u
: "${LMDISP:?}" "${LMDISP_TMP:?}"
tmp="$LMDISP_TMP/test_config"
rm -rf "$tmp" && mkdir -p "$tmp"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail

# 1. a good file equals the same flags, bit for bit
cat > "$tmp/good.yaml" <<'YAML'
# the flags of lmdisp train, `_` or `-` alike
n_layer: 2
n-embd: 32
n_head: 2
mlp_dim: 64
n_ctx: 32
batch: 4
seq: 16
steps: 6
lr: 3e-3
warmup_ratio: 0.5
dispersion: angular_spread
coeff: 0.2
max_tokens: 8
seed: 5
checkpoint_steps: 3,6
YAML
flags=(--n-layer 2 --n-embd 32 --n-head 2 --mlp-dim 64 --n-ctx 32 --batch 4 --seq 16 --steps 6
       --lr 3e-3 --warmup-ratio 0.5 --dispersion angular_spread --coeff 0.2 --max-tokens 8 --seed 5
       --checkpoint-steps 3,6)
"$LMDISP" train --config "$tmp/good.yaml" --out "$tmp/cfg" > "$tmp/cfg.log" 2>&1 \
  || { fail "training from good.yaml"; cat "$tmp/cfg.log"; }
"$LMDISP" train "${flags[@]}" --out "$tmp/flags" > "$tmp/flags.log" 2>&1 \
  || { fail "training from the same flags"; cat "$tmp/flags.log"; }
if [ -f "$tmp/cfg/step0000006.h5" ] && [ -f "$tmp/cfg/step0000003.h5" ] &&
   h5diff -q "$tmp/cfg/step0000006.h5" "$tmp/flags/step0000006.h5" > /dev/null 2>&1; then
  pass "--config good.yaml == the same flags (step 6 bitwise, checkpoint_steps 3,6 honoured)"
else
  fail "--config good.yaml differs from the same flags"; ls "$tmp/cfg" "$tmp/flags"
fi
if grep -q "dispersion angular_spread" "$tmp/cfg.log" && grep -q "batch 4 x 16; 6 steps" "$tmp/cfg.log"; then
  pass "the file's settings are the run's"; else fail "run settings: $(head -2 "$tmp/cfg.log")"; fi

# expect_config WANT-RC NAME FILE-TEXT EXPECTED-LINE [flags...]: exit code and one exact line
expect_config() {
  local rc_want=$1 name=$2 text=$3 want=$4; shift 4
  printf '%s' "$text" > "$tmp/$name.yaml"
  local out rc
  out=$(cd "$tmp" && "$LMDISP" train --config "$name.yaml" --out "$tmp/o_$name" "$@" 2>&1); rc=$?
  if [ "$rc" -eq "$rc_want" ] && grep -qxF -- "$want" <<<"$out"; then pass "$name: $want"
  else fail "$name: expected exit $rc_want and the line '$want'; got rc=$rc: $out"; fi
  last_out=$out
}

# 2. a bad value: file:line:column of the value, the spec parser's message
expect_config 2 badlr $'n_layer: 2\nlr: abc\n' "badlr.yaml:2:5: key 'lr': expected a number, got 'abc'"
expect_config 2 range $'steps: 5\n\nclip: -1\n' \
  "range.yaml:3:7: key 'clip': value -1 is out of range: expected a number in [0, 1e+30]"
expect_config 2 ckevery $'checkpoint_every: 0\n' \
  "ckevery.yaml:1:19: key 'checkpoint_every': expected an integer >= 1, got '0'"
expect_config 2 ckbad $'checkpoint_steps: 1,x\n' \
  "ckbad.yaml:1:19: key 'checkpoint_steps': expected a list of steps like 0,100,500, got '1,x'"
expect_config 2 nested $'model:\n  n_layer: 2\n' "nested.yaml:1:1: key 'model': unknown key"

# 3. an unknown key: reported once, with the nearest name
expect_config 2 unknown $'steps: 2\nn_embed: 64\n' \
  "unknown.yaml:2:1: key 'n_embed': unknown key; did you mean 'n_embd'?"
n=$(grep -c "n_embed" <<<"$last_out")
if [ "$n" -eq 1 ]; then pass "the unknown key is reported once"
else fail "the unknown key is reported $n times: $last_out"; fi

# 4. a key given twice: refused as in a spec (also when spelled n_layer and n-layer)
expect_config 2 dup $'steps: 2\nlr: 1e-3\nlr: 2e-3\n' "dup.yaml:3:1: key 'lr': duplicate key"
expect_config 2 dup2 $'n_layer: 2\nn-layer: 3\n' "dup2.yaml:2:1: key 'n-layer': duplicate key"
# and every problem of the file at once
expect_config 2 many $'lr: abc\nn_embed: 1\nsteps: x\n' "many.yaml:3:8: key 'steps': expected an integer, got 'x'"
n=$(grep -c "^many.yaml:" <<<"$last_out")
[ "$n" -eq 3 ] && pass "all 3 problems of the file reported" || fail "$n problems reported: $last_out"

# 5. flags on the command line override the file
printf 'n_layer: 1\nn_embd: 16\nn_head: 2\nmlp_dim: 32\nbatch: 2\nseq: 8\nsteps: 4\n' > "$tmp/over.yaml"
out=$("$LMDISP" train --config "$tmp/over.yaml" --steps 2 --mlp-dim 48 --out "$tmp/over" 2>&1); rc=$?
if [ $rc -eq 0 ] && grep -q "2 steps" <<<"$out" && grep -q "mlp_dim 48" <<<"$out" &&
   grep -q "n_embd 16" <<<"$out" && [ -f "$tmp/over/step0000002.h5" ] && [ ! -f "$tmp/over/step0000004.h5" ]; then
  pass "--steps 2 --mlp-dim 48 override the file's steps 4 and mlp_dim 32, the rest is the file's"
else fail "command-line override: rc=$rc: $out"; fi

# 6. the file must exist and hold a mapping; a flag is given once on the command line
out=$("$LMDISP" train --config "$tmp/missing.yaml" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "missing.yaml: cannot open" <<<"$out" && pass "missing file: $out" \
  || fail "missing file: rc=$rc: $out"
expect_config 2 list $'- n_layer\n' "list.yaml:1:1: expected a mapping of \`key: value\` lines, got a list"
out=$("$LMDISP" train --steps 1 --seed 1 --seed 2 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q -- "--seed is given twice" <<<"$out" && pass "--seed twice refused" \
  || fail "--seed twice: rc=$rc: $out"
out=$("$LMDISP" train --config "$tmp/over.yaml" --config "$tmp/good.yaml" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q -- "--config is given twice" <<<"$out" && pass "--config twice refused" \
  || fail "--config twice: rc=$rc: $out"

echo "test_config: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
