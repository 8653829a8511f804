#!/usr/bin/env bash
# quickstart.sh — installs what is missing, builds, and runs the main job on the built-in
# default: one small model trained on the synthetic corpus, with checkpoints in results/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
bash "$here/scripts/setup.sh" "$here/build"
cd "$here"
exec build/lmdisp train --n-layer 4 --n-embd 128 --n-head 4 --mlp-dim 512 --batch 8 --seq 64 \
  --steps 300 --lr 2e-3 --checkpoint-steps 0,10,30,100,300 --out results/quickstart "$@"
