#!/usr/bin/env bash
# grid_run.sh — grid throughput of the real runner: the same study run by `mpirun -np 1
# lmdisp run` and by `mpirun -np 2 lmdisp run` (one thread per rank), alternately, several
# rounds (issue 8: "two ranks x one thread on two cores: grid throughput >= 90% of twice the
# one-rank rate").
#
# bench/grid_throughput.sh asks the narrow question (two training processes side by side);
# this one times everything a study does: start-up, the one-sided claim of cells, training,
# the measurements at tracked steps, HDF5 writes and the final study.h5. The study is
# CELLS cells of the bench_train reference model (n_layer 6, n_embd 256, n_head 8, T 256,
# batch 8, vocab 256, mlp_dim MLP_DIM), one per seed, so that they cost the same and two
# ranks split them evenly; STEPS steps each, tracked at steps 0 and STEPS. Each round:
#   efficiency = (cells / wall time on 2 ranks) / (2 x cells / wall time on 1 rank)
#              = wall(1 rank) / (2 x wall(2 ranks))
# printed per round with its median, min and max. The two runs also give the same numbers
# (checked: every track file compared with h5diff), as the runner promises.
#
#   bench/grid_run.sh [--mlp-dim N] [--cells N] [--steps N] [--rounds N] [--dispersion V]
# Environment: LMDISP (default ./build/lmdisp), MPIRUN (default mpirun), KEEP=1 keeps the
# study directories (printed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
MLP_DIM=${MLP_DIM:-1024}
CELLS=${CELLS:-4}
STEPS=${STEPS:-12}
ROUNDS=${ROUNDS:-3}
DISPERSION=${DISPERSION:-off}
MPIRUN=${MPIRUN:-mpirun}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --mlp-dim) MLP_DIM=$2; shift 2 ;;
        --cells) CELLS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --dispersion) DISPERSION=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "grid_run.sh: unknown option $1" >&2; usage 2 ;;
    esac
done
for v in MLP_DIM CELLS STEPS ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "grid_run.sh: $v must be a positive integer, got '${!v}'" >&2; exit 2; }
done
if [ -z "${LMDISP:-}" ]; then
    for c in ./build/lmdisp "$here"/../build/lmdisp; do
        if [ -x "$c" ]; then LMDISP=$c; break; fi
    done
fi
[ -n "${LMDISP:-}" ] && [ -x "$LMDISP" ] || { echo "grid_run.sh: no lmdisp binary; build it or set LMDISP" >&2; exit 1; }
command -v "$MPIRUN" >/dev/null || { echo "grid_run.sh: $MPIRUN not found" >&2; exit 1; }
command -v h5diff >/dev/null || { echo "grid_run.sh: h5diff not found (hdf5-tools)" >&2; exit 1; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

work=$(mktemp -d /tmp/lmdisp-grid-run.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
seeds=$(seq -s, 0 $((CELLS - 1)))
cat > "$work/grid.yaml" <<EOF
name: grid_run
data: {source: synthetic, synthetic_tokens: $((STEPS * 2048 + 300000)), val_fraction: 0.1}
model: {n_layer: 6, n_embd: 256, n_head: 8, n_ctx: 256}
train: {steps: $STEPS, batch: 8, seq: 256, lr: 6.0e-4}
dispersion: {coeff: 0.1, location: all}
tracking: {checkpoints: [0, $STEPS], eval_sequences: 16}
grid: {mlp_dim: [$MLP_DIM], dispersion: [$DISPERSION], seed: [$seeds]}
resources: {ranks_per_model: 1, threads_per_rank: 1}
EOF

echo "Grid throughput of mpirun lmdisp run: $CELLS cells (reference model, mlp_dim $MLP_DIM,"
echo "dispersion $DISPERSION, $STEPS steps, tracked at 0 and $STEPS) on 1 rank and on 2 ranks x 1 thread, alternately."
echo "lmdisp: $LMDISP   load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

run() { # ranks out -> wall seconds
    local np=$1 out=$2 t0 t1
    t0=$(date +%s.%N)
    "$MPIRUN" -np "$np" --bind-to core "$LMDISP" run "$work/grid.yaml" --out "$out" > "$out.log" 2>&1 || {
        echo "grid_run.sh: the $np-rank run failed; its output:" >&2; cat "$out.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

printf '%5s %12s %12s %11s\n' round "1 rank s" "2 ranks s" efficiency
effs=()
for r in $(seq 1 "$ROUNDS"); do
    # alternate which goes first, so that a slow stretch of the host does not always hit one
    if [ $((r % 2)) = 1 ]; then
        t1=$(run 1 "$work/r$r-np1"); t2=$(run 2 "$work/r$r-np2")
    else
        t2=$(run 2 "$work/r$r-np2"); t1=$(run 1 "$work/r$r-np1")
    fi
    e=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.4f", a / (2 * b) }')
    effs+=("$e")
    printf '%5d %12.2f %12.2f %11.3f\n' "$r" "$t1" "$t2" "$e"
    # same numbers whatever the rank count: every tracked step of every cell
    n=0
    for f in "$work/r$r-np1"/cells/*/track/*.h5; do
        g="$work/r$r-np2/${f#"$work/r$r-np1/"}"
        h5diff -q "$f" "$g" > /dev/null || { echo "grid_run.sh: $f differs between 1 and 2 ranks" >&2; exit 1; }
        n=$((n + 1))
    done
    [ "$n" -eq $((2 * CELLS)) ] || { echo "grid_run.sh: expected $((2 * CELLS)) track files, found $n" >&2; exit 1; }
    [ "${KEEP:-0}" = 1 ] || rm -rf "$work/r$r-np1" "$work/r$r-np2"
done
printf '%s\n' "${effs[@]}" | sort -g | awk -v n="$ROUNDS" '
    { v[NR] = $1 }
    END { med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
          printf "\ngrid efficiency (2 ranks vs twice 1 rank, whole runs): median %.3f (min %.3f, max %.3f, %d rounds); issue-8 target >= 0.90\n", med, v[1], v[n], n }'
echo "track files identical between 1 and 2 ranks in every round ($((2 * CELLS)) per run)"
[ "${KEEP:-0}" = 1 ] && echo "study directories kept in $work"
exit 0
