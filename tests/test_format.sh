#!/usr/bin/env bash
# test_format.sh — every C source follows .clang-format (clang-format 14, Debian 12's): the
# layout is checked, not left to review. Skipped (exit 77) where clang-format is not installed
# (scripts/test.sh installs it). Tables kept by hand are fenced with /* clang-format off/on */.
set -u
src="${LMDISP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
. "${LMDISP_TESTS:-$(dirname "${BASH_SOURCE[0]}")}/lib.sh"  # pass, fail, mpi
command -v clang-format > /dev/null || { echo "skipped: clang-format not installed"; exit 77; }
cd "$src" || exit 1
mapfile -t files < <(find model analysis hub runner tests bench -name '*.c' -o -name '*.h' | sort)
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -eq 0 ]; then
  pass "${#files[@]} C files follow .clang-format ($(clang-format --version | head -1))"
else
  fail "${#bad[@]} of ${#files[@]} C files differ from .clang-format (clang-format -i FILE): ${bad[*]}"
  clang-format "${bad[0]}" | diff "${bad[0]}" - | head -20
fi
echo "test_format: $fails failure(s)"
[ $fails -eq 0 ]
