#!/usr/bin/env bash
# test.sh — installs what is missing, builds, and runs the whole test suite (ctest), then the
# fast unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# clang-format: tests/test_format.sh checks the layout of the C sources (.clang-format)
LMDISP_PACKAGES_EXTRA="${LMDISP_PACKAGES_EXTRA:-} clang-format" bash "$here/scripts/setup.sh" "$here/build"
echo "== test suite =="
(cd "$here/build" && ctest --output-on-failure --timeout 900)

echo "== sanitizer build (ASan + UBSan) =="
bash "$here/scripts/setup.sh" "$here/build-asan" -DLMDISP_SANITIZE=ON
# HDF5 and Open MPI keep global allocations alive until exit; leak reports from them are not ours.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$here/build-asan" && ctest --output-on-failure --timeout 900 -L unit)
