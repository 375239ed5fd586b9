# Sourced by the bench/*.sh scripts: stops with a clear message when the compiled benchmark or the Python
# baseline is missing. Usage: bench_preflight NAME PYTHON_MODULES FILE...
#   NAME: the script's name for messages; PYTHON_MODULES: what $PYTHON must import, comma-separated;
#   FILE...: the compiled dist/ files the script runs.
bench_preflight() {
  local name="$1" modules="$2"
  shift 2
  local f
  for f in "$@"; do
    [ -f "$f" ] || { echo "$name: $f is missing; compile first: npx tsc -p tsconfig.json (npm run build:ts)" >&2; exit 1; }
  done
  if ! "$PYTHON" -c "import $modules" 2>/dev/null; then
    echo "$name: $PYTHON cannot import $modules (Debian 12: apt-get install python3-torch for torch; or set PYTHON=)" >&2
    exit 1
  fi
}
