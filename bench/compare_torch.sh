#!/usr/bin/env bash
# compare_torch.sh — lmdisp vs PyTorch training speed on the same model, batch, optimizer and
# cores (issue 8: target lmdisp >= 1.2x PyTorch's tokens/s).
#
# Runs build/bench_train and bench/torch_reference.py alternately, ROUNDS times, each pinned
# (taskset) to the same cores, and prints every run's tokens/s and the median, min and max of
# the per-round ratio lmdisp / PyTorch. tokens/s is B*T over the MEDIAN timed step of a run
# (robust to a burst from another process on a shared machine). When several thread counts
# are given for an implementation, each round runs all of them and that round uses the best
# one ("each side at its best thread setting on these cores"). Each run also reports the CPU
# time of its median step; at one thread, tokens per CPU-second is what the run would do with
# the core to itself, so on a shared machine the CPU-time ratio is the steadier figure. PyTorch likewise runs with
# each --torch-jit mode (default: eager and TorchScript) and keeps the best, so noise favours
# PyTorch, never lmdisp. Builds nothing.
#
#   bench/compare_torch.sh [--mlp-dim N] [--dispersion off|angular_spread] [--threads "1"]
#                          [--torch-threads "1 2"] [--torch-jit "none script"] [--rounds 5]
#                          [--steps 5] [--warmup 2] [--cores 0] [--torch-args "..."]
# Environment equivalents: MLP_DIM DISPERSION THREADS TORCH_THREADS TORCH_JIT ROUNDS STEPS
# WARMUP CORES TORCH_ARGS; BENCH_TRAIN (default ./build/bench_train, else
# ./build-*/bench_train), PYTHON (default /usr/bin/python3, which has torch).
# A --torch-threads entry T/K runs PyTorch with T intra-op (OpenMP) threads over K OpenBLAS
# threads (two separate pools; "1/2" is often PyTorch's best on two cores); T alone means T/T.
# --cores "" disables pinning. Default cores: 0 .. (largest thread count - 1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
MLP_DIM=${MLP_DIM:-1024}
DISPERSION=${DISPERSION:-off}
THREADS=${THREADS:-1}
TORCH_THREADS=${TORCH_THREADS:-}
TORCH_JIT=${TORCH_JIT:-none script}
ROUNDS=${ROUNDS:-5}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
CORES=${CORES-unset}
TORCH_ARGS=${TORCH_ARGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --mlp-dim) MLP_DIM=$2; shift 2 ;;
        --dispersion) DISPERSION=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --torch-threads) TORCH_THREADS=$2; shift 2 ;;
        --torch-jit) TORCH_JIT=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --cores) CORES=$2; shift 2 ;;
        --torch-args) TORCH_ARGS=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "compare_torch.sh: unknown option $1" >&2; usage 2 ;;
    esac
done
[ -n "$TORCH_THREADS" ] || TORCH_THREADS=$THREADS
[ "$DISPERSION" = none ] && DISPERSION=off

if [ -z "${BENCH_TRAIN:-}" ]; then
    for c in ./build/bench_train "$here"/../build/bench_train "$here"/../build-*/bench_train; do
        if [ -x "$c" ]; then BENCH_TRAIN=$c; break; fi
    done
fi
if [ -z "${BENCH_TRAIN:-}" ] || [ ! -x "$BENCH_TRAIN" ]; then
    echo "compare_torch.sh: no bench_train binary; build lmdisp or set BENCH_TRAIN" >&2
    exit 1
fi
"$PYTHON" -c 'import torch' 2>/dev/null || {
    echo "compare_torch.sh: $PYTHON cannot import torch (set PYTHON)" >&2; exit 1; }

# Both sides use the same OpenBLAS kernels: the ones lmdisp selects (model/blascore.h; PyTorch
# links the same libopenblas), unless OPENBLAS_CORETYPE is set already.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    OPENBLAS_CORETYPE=$("$BENCH_TRAIN" --blas-core)
    export OPENBLAS_CORETYPE
fi

maxt=1
for t in $THREADS ${TORCH_THREADS//\// }; do [ "$t" -gt "$maxt" ] && maxt=$t; done
if [ "$CORES" = unset ]; then CORES="0-$((maxt - 1))"; [ "$maxt" = 1 ] && CORES=0; fi
pin=()
if [ -n "$CORES" ]; then
    command -v taskset >/dev/null || { echo "compare_torch.sh: taskset not found; use --cores ''" >&2; exit 1; }
    pin=(taskset -c "$CORES")
fi

echo "lmdisp vs PyTorch: tokens/s training the reference model (n_layer 6, n_embd 256, n_head 8,"
echo "T 256, B 8, vocab 256, mlp_dim $MLP_DIM, dispersion $DISPERSION, AdamW + clip 1.0)."
echo "Each run: $WARMUP warm-up + $STEPS timed steps; tokens/s from the median step."
echo "$ROUNDS rounds, lmdisp then PyTorch in each, cores: ${CORES:-unpinned}; lmdisp threads {$THREADS},"
echo "PyTorch threads {$TORCH_THREADS} x jit {$TORCH_JIT} ${TORCH_ARGS:+($TORCH_ARGS)}; ratio = best lmdisp / best PyTorch of the round."
echo "bench_train: $BENCH_TRAIN   OpenBLAS kernels (both): $OPENBLAS_CORETYPE   load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# prints the named fields of the JSON line a benchmark printed last, space separated
json_fields() {
    "$PYTHON" -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(*(d[k] for k in sys.argv[1:]))' "$@"
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for r in $(seq 1 "$ROUNDS"); do
    for t in $THREADS; do
        out=$(OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "${pin[@]}" "$BENCH_TRAIN" --mlp-dim "$MLP_DIM" \
            --threads "$t" --steps "$STEPS" --warmup "$WARMUP" --dispersion "$DISPERSION" --json)
        read -r v c < <(echo "$out" | json_fields tokens_per_s_median cpu_ms_step_median)
        echo "$r lmdisp $t $v $c" >> "$results"
        printf 'round %d  lmdisp  %d thread(s):             %8.1f tokens/s  (CPU %7.1f ms/step)\n' "$r" "$t" "$v" "$c"
    done
    for t in $TORCH_THREADS; do
        tt=${t%%/*} tb=${t#*/}
        for j in $TORCH_JIT; do
            # shellcheck disable=SC2086  # TORCH_ARGS is a list of flags
            out=$("${pin[@]}" "$PYTHON" "$here/torch_reference.py" --mlp-dim "$MLP_DIM" --threads "$tt" \
                --blas-threads "$tb" --jit "$j" --steps "$STEPS" --warmup "$WARMUP" --dispersion "$DISPERSION" $TORCH_ARGS --json)
            read -r v c < <(echo "$out" | json_fields tokens_per_s_median cpu_ms_step_median)
            echo "$r torch $t/$j $v $c" >> "$results"
            printf 'round %d  PyTorch %-3s thread(s), jit %-6s: %8.1f tokens/s  (CPU %7.1f ms/step)\n' "$r" "$t" "$j" "$v" "$c"
        done
    done
done
echo

"$PYTHON" - "$results" "$THREADS ${TORCH_THREADS//\// }" <<'EOF'
import statistics, sys
BT = 8 * 256
rows = [l.split() for l in open(sys.argv[1])]  # round impl config tokens/s cpu_ms
single = set(sys.argv[2].split()) == {"1"}
rounds = sorted({int(r[0]) for r in rows})
best, best_cpu = {}, {}
for r, impl, t, v, c in rows:
    key = (int(r), impl)
    if float(v) > best.get(key, (0, ""))[0]:
        best[key] = (float(v), t)
    best_cpu[key] = max(best_cpu.get(key, 0.0), BT / (float(c) / 1e3))
print(f"{'round':>5} {'lmdisp tok/s':>13} {'(thr)':>5} {'PyTorch tok/s':>14} {'(thr/jit)':>10} "
      f"{'ratio':>7}   {'ratio per CPU-second':>20}")
ratios, cratios = [], []
for r in rounds:
    (a, ta), (b, tb) = best[(r, "lmdisp")], best[(r, "torch")]
    ratios.append(a / b)
    cratios.append(best_cpu[(r, "lmdisp")] / best_cpu[(r, "torch")])
    print(f"{r:>5} {a:>13.1f} {ta:>5} {b:>14.1f} {tb:>10} {a / b:>7.3f}   {cratios[-1]:>20.3f}")
for impl, name in (("lmdisp", "lmdisp"), ("torch", "PyTorch")):
    for t in sorted({x[2] for x in rows if x[1] == impl}):
        v = [float(x[3]) for x in rows if x[1] == impl and x[2] == t]
        c = [BT / (float(x[4]) / 1e3) for x in rows if x[1] == impl and x[2] == t]
        print(f"{name} {t} (threads[/jit]): median {statistics.median(v):.1f} tokens/s "
              f"(min {min(v):.1f}, max {max(v):.1f}, {len(v)} runs); "
              f"median {statistics.median(c):.1f} tokens per CPU-second")
print(f"lmdisp / PyTorch tokens/s, paired by round: median {statistics.median(ratios):.3f} "
      f"(min {min(ratios):.3f}, max {max(ratios):.3f}); issue-8 target >= 1.2")
note = ("" if single else
        "  [more than one thread: CPU time also counts threads waiting, so only a hint]")
print(f"lmdisp / PyTorch tokens per CPU-second, paired by round: median "
      f"{statistics.median(cratios):.3f} (min {min(cratios):.3f}, max {max(cratios):.3f}){note}")
EOF
