#!/usr/bin/env bash
# quickstart.sh — installs what is missing, builds, and runs the main job on the built-in
# default: the quickstart study (experiments/quickstart.yaml: 4 MLP widths x {off,
# angular_spread} x 3 seeds, 6 layers, 400 steps on the synthetic corpus; a few minutes) on 2
# MPI ranks, then its plots. The report it prints ends with one line per claim of the paper.
# Output: results/quickstart/ (study.h5, cells/, plots/). Extra arguments go to `lmdisp run`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
bash "$here/scripts/setup.sh" "$here/build"
cd "$here"
ranks="${LMDISP_RANKS:-2}"
mpirun --oversubscribe -np "$ranks" build/lmdisp run experiments/quickstart.yaml \
  --out results/quickstart "$@"
if /usr/bin/python3 -c "import h5py, matplotlib" 2>/dev/null; then
  /usr/bin/python3 analysis/plot_study.py results/quickstart/study.h5 --out results/quickstart/plots
else
  echo "(plots skipped: python3-h5py and python3-matplotlib are not installed)"
fi
