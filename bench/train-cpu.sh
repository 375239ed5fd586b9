#!/usr/bin/env bash
# LoRA training tokens/s on the CPU, ours vs Python PyTorch on the same libtorch, in one run, as one report:
# bench/results/train-cpu-<date>.md (also printed). Two cases, batches of random tokens:
#   1. a Llama of a few million parameters (hidden 256, intermediate 688, 4 layers, 8/4 heads, vocab 1024),
#      batch 8x128: the headline ratio;
#   2. the fixture tiny-llama's shape (hidden 48, 3 layers, vocab 128), batch 1x32: kernels are tiny, so the
#      step is mostly per-op cost (binding/interpreter overhead, autograd bookkeeping, thread hand-offs).
# Builds nothing: needs the addon (npm install / npm run build:native) and dist/ (npm run build:ts).
# Python: /usr/bin/python3 with torch (Debian: apt-get install python3-torch), or PYTHON=...
# Extra arguments (--steps N, --warmup N, --threads N, --variants a,b) go to both runs;
# TRAIN_CPU_SMALL=0 skips the second model.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-/usr/bin/python3}"
JS=dist/bench/train-cpu.js
. bench/preflight.sh
bench_preflight train-cpu torch "$JS"
out="bench/results/train-cpu-$(date -u +%F).md"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

node "$JS" --save-init "$tmp/main" --hidden 256 --intermediate 688 --layers 4 --heads 8 --kv-heads 4 --vocab 1024 --seq 128 --batch 8
node "$JS" --init "$tmp/main" --python "$PYTHON" --results "$out" \
  --title "A Llama of a few million parameters (kernel-bound)" "$@"
if [ "${TRAIN_CPU_SMALL:-1}" != 0 ]; then
  node "$JS" --save-init "$tmp/tiny" --hidden 48 --intermediate 96 --layers 3 --heads 4 --kv-heads 2 --vocab 128 --seq 32 --batch 1
  node "$JS" --init "$tmp/tiny" --python "$PYTHON" --results "$out" --append --steps 50 --warmup 10 \
    --title "The fixture tiny-llama's shape, batch 1x32 (per-op costs show)" "$@"
fi
