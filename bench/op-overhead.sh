#!/usr/bin/env bash
# Per-op cost through our binding vs Python PyTorch on the same libtorch, in one run, as one table
# (also written to bench/results/op-overhead-<date>.md). Builds nothing: it needs the addon
# (npm install / npm run build:native) and dist/ (npm run build:ts).
# Python: /usr/bin/python3 with torch (Debian 12: apt-get install python3-torch), or PYTHON=...
# Arguments go to dist/bench/op-overhead.js: --rounds N, --repeats N, --target-ms MS, --no-write.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/usr/bin/python3}"
JS=dist/bench/op-overhead.js
. bench/preflight.sh
bench_preflight op-overhead torch "$JS"
# The same thread settings on both sides: one intra-op thread (each side also calls set_num_threads(1)).
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec node "$JS" --python "$PYTHON" "$@"
