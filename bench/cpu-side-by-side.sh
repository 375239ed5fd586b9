#!/usr/bin/env bash
# CPU side by side: a LoRA training step, ours (dist/bench/train-step.js) vs PyTorch + transformers + real
# PEFT (bench/train_step.py), on the same weights and batch, for the demo base's shape, a ~31M and a ~97M
# Llama, base weights in float32 and bfloat16 (adapters float32 on both sides, PEFT's default). Both sides
# run their default thread count (the physical cores; OMP_NUM_THREADS overrides both); ours as its Trainer
# trains (fused LoRA, chunked loss, fused SwiGLU), PEFT eager with SDPA attention. Short runs (few
# steps): the figures are for comparing the two sides under the same load, run by run in turn.
#
#   npm run bench:cpu [-- --steps N --warmup N]
#   PYTHON=/work/venv/bin/python (default: python3; must import torch, transformers, peft, safetensors)
#   OURS_ROOT=DIR  run ours from another checkout/build (e.g. one built against the same libtorch 2.x
#                  as PYTHON's, by scripts/check-libtorch2.sh); default: this one.
# Writes bench/results/cpu-side-by-side-<date>.md (and .jsonl).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OURS_ROOT="$(cd "${OURS_ROOT:-.}" && pwd)"
JS="$OURS_ROOT/dist/bench/train-step.js"
# (the report from OURS_ROOT too: its header names the libtorch ours ran on)
REPORT="$OURS_ROOT/dist/bench/cpu-side-by-side-report.js"
STEPS=3
WARMUP=1
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "cpu-side-by-side.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
. bench/preflight.sh
bench_preflight cpu-side-by-side.sh "torch, transformers, peft, safetensors" "$JS" "$REPORT"

DATE=$(date -u +%Y-%m-%d)
RESULTS="${RESULTS_DIR:-bench/results}"
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
JSONL="$RESULTS/cpu-side-by-side-$DATE.jsonl"
MD="$RESULTS/cpu-side-by-side-$DATE.md"
INIT=$(mktemp -d /tmp/cpu-side-by-side.XXXXXX)
trap 'rm -rf "$INIT"' EXIT
: > "$JSONL"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)

# case CONFIG BATCH SEQ: one init folder, then ours and PEFT in each base dtype (their order alternating).
case_runs() {
  local cfg=$1 b=$2 s=$3 dir="$INIT/$1"
  (cd "$OURS_ROOT" && node "$JS" --config "$cfg" --batch "$b" --seq "$s" --init-std 0.05 --save-init "$dir") > "$INIT/$cfg-init.log" 2>&1 \
    || { echo "save-init $cfg failed:"; tail -5 "$INIT/$cfg-init.log"; return; }
  for dt in float32 bfloat16; do
    local ours=(node "$JS" --init-from "$dir" --device cpu --dtype "$dt" --adapter-dtype float32 --fused-lora --chunked-loss --fused-swiglu --steps "$STEPS" --warmup "$WARMUP" --out "$JSONL")
    local peft=("$PYTHON" bench/train_step.py --init-from "$dir" --device cpu --dtype "$dt" --adapter-dtype float32 --steps "$STEPS" --warmup "$WARMUP" --out "$JSONL")
    echo "[$(( $(date +%s) - T0 )) s] $cfg ${b}x$s $dt"
    if [ "$dt" = float32 ]; then
      (cd "$OURS_ROOT" && "${ours[@]}") > "$INIT/log" 2>&1 || tail -3 "$INIT/log"
      "${peft[@]}" > "$INIT/log" 2>&1 || tail -3 "$INIT/log"
    else
      "${peft[@]}" > "$INIT/log" 2>&1 || tail -3 "$INIT/log"
      (cd "$OURS_ROOT" && "${ours[@]}") > "$INIT/log" 2>&1 || tail -3 "$INIT/log"
    fi
  done
}

case_runs demo 16 32
case_runs 30m 4 128
case_runs 100m 2 128

node "$REPORT" --in "$JSONL" --md "$MD" --note "From \`npm run bench:cpu\` (bench/cpu-side-by-side.sh): $STEPS timed steps after $WARMUP warm-up step(s), median; load average (1/5/15 min) $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(( $(date +%s) - T0 )) s in all."
echo "written: $MD"
