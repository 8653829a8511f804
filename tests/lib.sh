# lib.sh — sourced by the shell tests: pass/fail counters and the MPI launcher they share.
# A test reports with pass/fail and ends with `exit $((fails > 0))` (or its own summary).
fails=0 passes=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }
# mpi N CMD...: CMD on N ranks; --oversubscribe so tests run on a machine with fewer cores
mpi() { mpirun --oversubscribe -np "$@"; }
