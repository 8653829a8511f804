#!/usr/bin/env bash
# grid_throughput.sh — does a second rank slow the first one down? (issue 8: "two ranks x one
# thread on two cores: grid throughput >= 90% of twice the one-rank rate").
#
# A grid's ranks train independent cells and never communicate during a step, so a rank is
# one single-threaded training process; two ranks are two such processes, each pinned
# (taskset) to its own core. Each round measures
#   solo:  one bench_train --threads 1 alone, on core A (A alternates between the two cores
#          from round to round), tokens/s from its median step;
#   pair:  two bench_train --threads 1 started together, on cores A and B;
# and prints  efficiency = (pair rate on A + pair rate on B) / (2 x solo rate).
# What is left below 1 is what two ranks cost each other: shared caches, memory bandwidth,
# frequency. Median, min and max over the rounds. It also prints the same efficiency from the
# CPU time of each process's median step (solo CPU ms / pair CPU ms, averaged over the pair):
# other people's processes time-slicing the cores inflate wall time but not CPU time, so on a
# shared machine that column isolates what the two ranks do to each other. Builds nothing.
#
#   bench/grid_throughput.sh [--mlp-dim N] [--dispersion off|angular_spread] [--rounds 3]
#                            [--steps 5] [--warmup 1] [--cores "0 1"]
# Environment equivalents: MLP_DIM DISPERSION ROUNDS STEPS WARMUP CORES; BENCH_TRAIN
# (default ./build/bench_train, else ./build-*/bench_train); PYTHON (for the JSON, default
# /usr/bin/python3).
# The two processes start together, but one may finish a little earlier and run its last
# steps alone; the median step keeps that tail from inflating the pair rate.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
MLP_DIM=${MLP_DIM:-1024}
DISPERSION=${DISPERSION:-off}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-1}
CORES=${CORES:-0 1}
PYTHON=${PYTHON:-/usr/bin/python3}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --mlp-dim) MLP_DIM=$2; shift 2 ;;
        --dispersion) DISPERSION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --cores) CORES=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "grid_throughput.sh: unknown option $1" >&2; usage 2 ;;
    esac
done
[ "$DISPERSION" = none ] && DISPERSION=off
read -r -a cores <<< "$CORES"
if [ "${#cores[@]}" -ne 2 ]; then
    echo "grid_throughput.sh: --cores needs exactly two core ids, got '$CORES'" >&2
    exit 2
fi
command -v taskset >/dev/null || { echo "grid_throughput.sh: taskset not found" >&2; exit 1; }
if [ -z "${BENCH_TRAIN:-}" ]; then
    for c in ./build/bench_train "$here"/../build/bench_train "$here"/../build-*/bench_train; do
        if [ -x "$c" ]; then BENCH_TRAIN=$c; break; fi
    done
fi
if [ -z "${BENCH_TRAIN:-}" ] || [ ! -x "$BENCH_TRAIN" ]; then
    echo "grid_throughput.sh: no bench_train binary; build lmdisp or set BENCH_TRAIN" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# one rank: single-threaded bench_train pinned to core $1, JSON to file $2
rank() {
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c "$1" "$BENCH_TRAIN" --mlp-dim "$MLP_DIM" \
        --threads 1 --steps "$STEPS" --warmup "$WARMUP" --dispersion "$DISPERSION" --json > "$2"
}
# tokens/s of the median step and CPU ms of the median step, from a JSON file
rate() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["tokens_per_s_median"], d["cpu_ms_step_median"])' "$1"; }

echo "Grid throughput: two single-thread ranks on cores ${cores[0]} and ${cores[1]} vs twice one rank alone."
echo "Rank = bench_train --threads 1 (reference model, mlp_dim $MLP_DIM, dispersion $DISPERSION),"
echo "$WARMUP warm-up + $STEPS timed steps, tokens/s from the median step; $ROUNDS rounds."
echo "bench_train: $BENCH_TRAIN   load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%5s %6s %12s %12s %12s %11s %15s\n' round "solo@" "solo tok/s" "pair A" "pair B" efficiency "CPU-time eff."
effs=()
ceffs=()
for r in $(seq 1 "$ROUNDS"); do
    a=${cores[$(((r - 1) % 2))]}
    b=${cores[$((r % 2))]}
    rank "$a" "$tmp/solo.json"
    read -r solo csolo < <(rate "$tmp/solo.json")
    rank "$a" "$tmp/pa.json" &
    pa=$!
    rank "$b" "$tmp/pb.json" &
    pb=$!
    wait "$pa"
    wait "$pb"
    read -r ra ca < <(rate "$tmp/pa.json")
    read -r rb cb < <(rate "$tmp/pb.json")
    e=$("$PYTHON" -c "print(($ra + $rb) / (2 * $solo))")
    ce=$("$PYTHON" -c "print(($csolo / $ca + $csolo / $cb) / 2)")
    effs+=("$e")
    ceffs+=("$ce")
    printf '%5d %6s %12.1f %12.1f %12.1f %11.3f %15.3f\n' "$r" "$a" "$solo" "$ra" "$rb" "$e" "$ce"
done
echo
"$PYTHON" -c '
import statistics, sys
n = (len(sys.argv) - 1) // 2
e, c = [float(x) for x in sys.argv[1:1 + n]], [float(x) for x in sys.argv[1 + n:]]
print(f"grid efficiency (sum of the two concurrent ranks / twice one rank alone): median "
      f"{statistics.median(e):.3f} (min {min(e):.3f}, max {max(e):.3f}, {n} rounds); "
      "issue-8 target >= 0.90")
print(f"same from CPU time per step (immune to other processes time-slicing the cores): median "
      f"{statistics.median(c):.3f} (min {min(c):.3f}, max {max(c):.3f})")' "${effs[@]}" "${ceffs[@]}"
