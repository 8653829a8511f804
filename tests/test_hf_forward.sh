#!/bin/bash
# test_hf_forward.sh — pretrained Hugging Face models (issue 15, DESIGN 4.6/4.7) against the
# independent float64 PyTorch reference committed in tests/hf/ (tests/gen_hf_models.py; see
# tests/hf/README.md): `lmdisp forward` on every case agrees within max|diff|/rms <= 2e-4 per
# hidden state and for the logits, and `lmdisp measure` with the metrics recomputed from them; every bad input of tests/hf/bad/ is refused with exit 2 and
# a message naming the file and field/tensor; the fake hub cache tests/hf/cache/ resolves
# hf:ORG/NAME[@REV] and `track hf:ORG/NAME@*` walks its revisions in DESIGN 4.6 order.
# Needs /usr/bin/python3 with numpy + h5py (no torch). Exit 77 (skipped) only when the binary
# has no `forward` command.
set -u
: "${LMDISP:?}" "${LMDISP_TESTS:?}" "${LMDISP_TMP:?}"
PY=/usr/bin/python3
HF=$LMDISP_TESTS/hf
CMP="$PY $LMDISP_TESTS/hf_compare.py"
W=$LMDISP_TMP/test_hf_forward
rm -rf "$W" && mkdir -p "$W"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi

if ! "$LMDISP" help 2>/dev/null | grep -qE '^[[:space:]]+forward[[:space:]]'; then
    echo "SKIP: $LMDISP has no 'forward' command (issue 15 not built in): nothing to test"
    exit 77
fi

# 1. every case of tests/hf/cases.tsv: name B T offset n_params what-it-covers
while IFS=$'\t' read -r name B T O np covers; do
    [ -n "$name" ] || continue
    echo "== $name: $covers"
    if "$LMDISP" forward "$HF/$name" --tokens "$HF/$name/tokens.bin" --batch "$B" --seq "$T" \
        --offset "$O" --out "$W/$name.h5" > "$W/$name.out" 2> "$W/$name.err"; then
        $CMP compare "$W/$name.h5" "$HF/$name/ref.h5" --name "$name" || fail "forward $name vs reference"
    else
        fail "forward $name exited $?: $(cat "$W/$name.err")"
    fi
    # measure (DESIGN 4.5) on the same windows (it has no offset: cases at offset 0 only)
    [ "$O" = 0 ] || continue
    if "$LMDISP" measure "$HF/$name" --tokens "$HF/$name/tokens.bin" --sequences "$B" \
        --seq-len "$T" --json > "$W/$name.json" 2> "$W/$name.merr"; then
        $CMP measure "$W/$name.json" "$HF/$name/ref.h5" --name "$name" || fail "measure $name vs reference"
    else
        fail "measure $name exited $?: $(cat "$W/$name.merr")"
    fi
done < "$HF/cases.tsv"

# 1b. an lmdisp checkpoint holding the gpt2 case's weights: forward = the same reference
#     (and = `lmdisp step`, DESIGN 4.7), and `step` itself on it.
if $CMP to-lmdisp "$HF/gpt2" "$W/gpt2_lmdisp.h5"; then
    if "$LMDISP" forward "$W/gpt2_lmdisp.h5" --tokens "$HF/gpt2/tokens.bin" --batch 2 --seq 16 \
        --out "$W/gpt2_lmdisp_fwd.h5" > /dev/null 2> "$W/ck.err"; then
        $CMP compare "$W/gpt2_lmdisp_fwd.h5" "$HF/gpt2/ref.h5" --name gpt2-as-lmdisp-checkpoint \
            --no-attrs || fail "forward on the lmdisp checkpoint of gpt2"
    else
        fail "forward on an lmdisp checkpoint exited $?: $(cat "$W/ck.err")"
    fi
    if "$LMDISP" step --checkpoint "$W/gpt2_lmdisp.h5" --tokens "$HF/gpt2/tokens.bin" --batch 2 \
        --seq 16 --out "$W/gpt2_step.h5" > /dev/null 2> "$W/step.err"; then
        $CMP compare "$W/gpt2_step.h5" "$HF/gpt2/ref.h5" --name gpt2-lmdisp-step --no-attrs \
            || fail "lmdisp step (its own GPT-2) vs the HF gpt2 reference"
    else
        fail "step exited $?: $(cat "$W/step.err")"
    fi
else
    fail "converting tests/hf/gpt2 to an lmdisp checkpoint"
fi

# 1c. HF's rule: model.safetensors wins over an index. A copy of the sharded qwen2 with a
#     model.safetensors of garbage next to the index must read the garbage (and refuse it).
cp -r "$HF/qwen2" "$W/qwen2_both"
printf 'not a safetensors file' > "$W/qwen2_both/model.safetensors"
"$LMDISP" forward "$W/qwen2_both" --tokens "$HF/qwen2/tokens.bin" --batch 2 --seq 16 \
    --out "$W/both.h5" > /dev/null 2> "$W/both.err"
rc=$?
if [ $rc -ne 2 ] || ! grep -q 'model\.safetensors' "$W/both.err"; then
    fail "model.safetensors next to an index must be the file read (exit $rc: $(cat "$W/both.err"))"
fi

# 2. bad inputs: exit 2, message matching every ;-separated regex of bad/cases.tsv
while IFS=$'\t' read -r name pats why; do
    [ -n "$name" ] || continue
    "$LMDISP" forward "$HF/bad/$name" --tokens "$HF/bad/tokens.bin" --batch 1 --seq 8 \
        --out "$W/bad_$name.h5" > "$W/bad_$name.out" 2> "$W/bad_$name.err"
    rc=$?
    msg=$(head -c 600 "$W/bad_$name.err" | tr '\n' ' ')
    if [ "$name" = good ]; then
        [ $rc -eq 0 ] || fail "bad/good (the control) must load: exit $rc: $msg"
        continue
    fi
    if [ $rc -ne 2 ]; then
        fail "bad/$name ($why): exit $rc, want 2: $msg"
        continue
    fi
    ok=1
    IFS=';' read -ra P <<< "$pats"
    for p in "${P[@]}"; do
        grep -qiE -- "$p" "$W/bad_$name.err" || { ok=0; fail "bad/$name ($why): message lacks /$p/: $msg"; }
    done
    [ $ok -eq 1 ] && echo "ok: bad/$name refused: $msg"
done < "$HF/bad/cases.tsv"
# measure refuses the same way (one file error, one config error)
for name in offsets_overlap rope_llama3; do
    "$LMDISP" measure "$HF/bad/$name" --tokens "$HF/bad/tokens.bin" --sequences 1 --seq-len 8 \
        --json > /dev/null 2> "$W/m_$name.err"
    rc=$?
    [ $rc -eq 2 ] || fail "measure bad/$name: exit $rc, want 2: $(head -c 300 "$W/m_$name.err")"
done

# 3. the fake hub cache: hf:ORG/NAME[@REV]
export HF_HUB_CACHE=$HF/cache
C=$HF/cache
for rev in stage1-step1000-tokens5B stage2-ingredient1-step11931-tokens50B main; do
    spec="hf:allenai/OLMo-2-tiny@$rev"
    [ $rev = main ] && spec="hf:allenai/OLMo-2-tiny"  # REVISION defaults to main
    if "$LMDISP" forward "$spec" --tokens "$C/tokens.bin" --batch 2 --seq 8 --out "$W/c_$rev.h5" \
        > /dev/null 2> "$W/c_$rev.err"; then
        $CMP compare "$W/c_$rev.h5" "$C/ref-$rev.h5" --name "$spec" || fail "forward $spec"
    else
        fail "forward $spec exited $?: $(cat "$W/c_$rev.err")"
    fi
done
# a 40-hex revision names the snapshot directly
sha=$(awk -F'\t' '$1 == "models--allenai--OLMo-2-tiny" && $2 == "stage1-step1000-tokens5B" {print $3}' "$C/shas.tsv")
if "$LMDISP" forward "hf:allenai/OLMo-2-tiny@$sha" --tokens "$C/tokens.bin" --batch 2 --seq 8 \
    --out "$W/c_sha.h5" > /dev/null 2> "$W/c_sha.err"; then
    $CMP compare "$W/c_sha.h5" "$C/ref-stage1-step1000-tokens5B.h5" --name "@$sha" || fail "forward @sha"
else
    fail "forward hf:allenai/OLMo-2-tiny@$sha exited $?: $(cat "$W/c_sha.err")"
fi
# HF_HOME/hub is the fallback when HF_HUB_CACHE is unset
mkdir -p "$W/hfhome" && ln -s "$(cd "$C" && pwd)" "$W/hfhome/hub"
if ! env -u HF_HUB_CACHE HF_HOME="$W/hfhome" "$LMDISP" forward "hf:allenai/OLMo-2-tiny@main" \
    --tokens "$C/tokens.bin" --batch 2 --seq 8 --out "$W/c_home.h5" > /dev/null 2> "$W/c_home.err"; then
    fail "HF_HOME/hub fallback: $(cat "$W/c_home.err")"
fi
# missing revision / missing snapshot / missing repo: exit 2 naming the path
check_missing() {  # spec, regex the message must match
    "$LMDISP" forward "$1" --tokens "$C/tokens.bin" --batch 2 --seq 8 --out "$W/miss.h5" \
        > /dev/null 2> "$W/miss.err"
    local rc=$?
    if [ $rc -ne 2 ] || ! grep -qE -- "$2" "$W/miss.err"; then
        fail "$1: exit $rc (want 2), message must match /$2/: $(head -c 400 "$W/miss.err")"
    else
        echo "ok: $1 refused: $(head -c 300 "$W/miss.err" | tr '\n' ' ')"
    fi
}
check_missing "hf:allenai/OLMo-2-tiny@stage9-step1-tokens1B" "refs/stage9-step1-tokens1B"
check_missing "hf:allenai/OLMo-2-tiny@0123456789abcdef0123456789abcdef01234567" \
    "snapshots/0123456789abcdef0123456789abcdef01234567"
check_missing "hf:allenai/OLMo-9-absent" "models--allenai--OLMo-9-absent"

# 4. track hf:ORG/NAME@*: every revision in training order (DESIGN 4.6), main last, the
#    revision without a step named as skipped
for repo in OLMo-2-tiny OLMo-1B-tiny-hf; do
    order=$C/order.txt absent="--absent olmo2-tiny-dev"
    [ $repo = OLMo-1B-tiny-hf ] && order=$C/order-OLMo-1B-tiny-hf.txt absent=""
    "$LMDISP" track "hf:allenai/$repo@*" --tokens "$C/tokens.bin" --sequences 2 --seq-len 8 \
        --out "$W/traj_$repo.h5" > "$W/track_$repo.out" 2>&1
    rc=$?
    cat "$W/track_$repo.out"
    [ $rc -eq 0 ] || fail "track hf:allenai/$repo@* exited $rc"
    $CMP order "$order" "$W/track_$repo.out" $absent || fail "track $repo: revision order in its output"
    if [ -f "$W/traj_$repo.h5" ]; then
        $PY - "$W/traj_$repo.h5" "$order" <<'PYEOF' || fail "track $repo: order of /checkpoint rows"
import sys, h5py
names = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
with h5py.File(sys.argv[1], "r") as f:
    rows = [c.decode() if isinstance(c, bytes) else str(c) for c in f["checkpoint"][...]]
    K = len(rows)
print("trajectory /checkpoint:", rows)
got = [next((n for n in names if r.endswith("@" + n) or r.endswith("/" + n) or r == n), r) for r in rows]
sys.exit(0 if got == names else 1)
PYEOF
    else
        fail "track $repo wrote no trajectory"
    fi
done
if [ -n "$(grep -i 'olmo2-tiny-dev' "$W/track_OLMo-2-tiny.out")" ]; then
    echo "ok: the revision without a step is named"
else
    fail "track must name the skipped revision olmo2-tiny-dev"
fi

echo "test_hf_forward: $fails failure(s)"
[ $fails -eq 0 ]
