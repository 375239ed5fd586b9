#!/usr/bin/env bash
# A LoRA training step, ours (dist/bench/train-step.js) next to transformers + peft (bench/train_step.py),
# in one run on one machine, as one table: bench/results/train-step-<date>-<gpu>.md (and .jsonl).
# Each run is its own process (an out-of-memory run cannot disturb the next) with its own time limit,
# and the table is rewritten after every run, so a run cut short still leaves what it measured.
#
#   bash bench/train-step.sh [--set main|7b|sweep|ablate|all] [--budget-s S] [--out-dir DIR]
#   bash bench/train-step.sh --cpu-smoke [--with-compile]      (the tiny config on the CPU, both sides)
#
# Sets (GPU): main = 1.1B at 4×2048, 125M at 8×2048 and a same-weights check (125M, --init-from);
# 7b = the Llama-2-7B shape at 2×2048 and 4×2048; sweep = 1.1B at seq 512..8192 with 8192 tokens per
# step (batch 16..1); ablate = 1.1B at 4×2048, ours with each fused op alone; all = every set.
# Needs dist/ (npx tsc -p tsconfig.json) and the addon; on the GPU machine, first
#   source .device/env.sh && npx cmake-js compile
# PYTHON (default python3) must import torch, transformers, peft and safetensors. RESULTS_DIR (default
# bench/results) is where the table goes; --out-dir DIR gets a copy of it and the logs after every run.
set -uo pipefail
cd "$(dirname "$0")/.."

SET=main
BUDGET=""
OUT_DIR=""
CPU_SMOKE=0
LOAD_NOTE=""
WITH_COMPILE=0
STEPS=10
WARMUP=3
while [ $# -gt 0 ]; do
  case "$1" in
    --set) SET="$2"; shift 2 ;;
    --budget-s) BUDGET="$2"; shift 2 ;;
    --out-dir) OUT_DIR="$2"; shift 2 ;;
    --cpu-smoke) CPU_SMOKE=1; shift ;;
    --with-compile) WITH_COMPILE=1; shift ;;
    --steps) STEPS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "train-step.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
JS=dist/bench/train-step.js
REPORT=dist/bench/train-step-report.js
. bench/preflight.sh
bench_preflight train-step.sh "torch, transformers, peft, safetensors" "$JS" "$REPORT"

T0=$(date +%s)
# Seconds for all runs together (runs that would start later are skipped): under a device call's 10 minutes.
[ -n "$BUDGET" ] || { [ "$CPU_SMOKE" = 1 ] && BUDGET=1800 || BUDGET=540; }
DATE=$(date -u +%Y-%m-%d)
case "$SET" in main|7b|sweep|ablate|all) ;; *) echo "train-step.sh: unknown --set '$SET' (main, 7b, sweep, ablate, all)" >&2; exit 2 ;; esac
RESULTS="${RESULTS_DIR:-bench/results}"
mkdir -p "$RESULTS"
if [ "$CPU_SMOKE" = 1 ]; then
  NAME="train-step-cpu-smoke-$DATE"
  GPU="CPU ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//'), 1 thread)"
  LOAD_NOTE=" CPU timings (load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc --all) cores at the start) only show that everything runs; they say nothing about speed. In bfloat16 the two sides run different libtorch builds here ($(node -p "require('./dist/lib').torchVersion" 2>/dev/null) and $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)), whose CPU kernels round differently: the base model alone (adapters off) already differs by a few 1e-3 in loss."
  # One intra-op thread on both sides: CPU timings here only show that everything runs.
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
else
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  [ -n "$GPU" ] || { echo "train-step.sh: no GPU (nvidia-smi found none); use --cpu-smoke on a CPU machine" >&2; exit 1; }
  SLUG=$(echo "$GPU" | tr 'A-Z' 'a-z' | sed -e 's/^nvidia //' -e 's/[^a-z0-9]\+/-/g' -e 's/-$//')
  NAME="train-step-$DATE-$SLUG${SET:+-$SET}"
  [ "$SET" = main ] && NAME="train-step-$DATE-$SLUG"
fi
JSONL="$RESULTS/$NAME.jsonl"
MD="$RESULTS/$NAME.md"
LOGS=$(mktemp -d /tmp/train-step-logs.XXXXXX)
INIT_ROOT=$(mktemp -d /tmp/train-step-init.XXXXXX)
trap 'rm -rf "$INIT_ROOT"' EXIT
: > "$JSONL"

report() {
  node "$REPORT" --in "$JSONL" --md "$MD" \
    --title "LoRA training step: ours vs transformers + peft ($GPU, $DATE)" \
    --note "From \`bash bench/train-step.sh ${ARGS_TEXT}\`; $STEPS timed steps after $WARMUP warm-up steps; rows with an error did not finish (OOM: out of memory).${LOAD_NOTE}" \
    > "$LOGS/report.txt" 2>&1 || cat "$LOGS/report.txt" >&2
  if [ -n "$OUT_DIR" ]; then
    mkdir -p "$OUT_DIR/logs"
    cp "$MD" "$JSONL" "$OUT_DIR/" 2>/dev/null
    cp "$LOGS"/*.log "$OUT_DIR/logs/" 2>/dev/null
  fi
}
ARGS_TEXT="$( [ "$CPU_SMOKE" = 1 ] && echo "--cpu-smoke$( [ "$WITH_COMPILE" = 1 ] && echo ' --with-compile')" || echo "--set $SET")"

N=0
# run SIDE LIMIT_S ARGS...: SIDE is ours or peft; the run appends its JSON line to $JSONL.
run() {
  local side=$1 limit=$2; shift 2
  local now=$(( $(date +%s) - T0 ))
  local left=$(( BUDGET - now ))
  N=$((N + 1))
  local log="$LOGS/$(printf %02d $N)-$side.log"
  if [ "$left" -lt 20 ]; then
    echo "[$now s] skipped (budget of $BUDGET s spent): $side $*" | tee -a "$LOGS/skipped.log"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "[$now s] $side $* (limit ${limit}s)"
  local rc
  if [ "$side" = ours ]; then
    timeout -k 10 "$limit" node "$JS" --steps "$STEPS" --warmup "$WARMUP" --out "$JSONL" "$@" > "$log" 2>&1; rc=$?
  else
    timeout -k 10 "$limit" "$PYTHON" bench/train_step.py --steps "$STEPS" --warmup "$WARMUP" --out "$JSONL" "$@" > "$log" 2>&1; rc=$?
  fi
  grep -E '^\| (ours|peft) ' "$log" || { echo "  (no result, exit $rc; last lines of $log:)"; tail -5 "$log" | sed 's/^/  /'; }
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    # A run killed by its limit wrote nothing: record it so the table says so.
    local cfg=tiny b=4 s=2048 prev="" dtype="" dev=cuda init=null a base
    [ "$CPU_SMOKE" = 1 ] && dev=cpu
    for a in "$@"; do
      case "$prev" in
        --config) cfg=$a ;; --batch) b=$a ;; --seq) s=$a ;; --dtype) dtype=$a ;; --device) dev=$a ;;
        --init-from) base=$(basename "$a"); cfg="${base%%-*}(init)"; base=${base#*-}; b=${base%x*}; s=${base#*x}; init="\"$a\"" ;;  # parity_runs' CFG-BxS
      esac
      prev=$a
    done
    [ -n "$dtype" ] || { [ "$dev" = cpu ] && dtype=float32 || dtype=bfloat16; }
    printf '{"impl":"%s","variant":"%s","config":"%s","batch":%s,"seq":%s,"device":"%s","device_name":"","dtype":"%s","adapter_dtype":"","compile":false,"gradient_checkpointing":false,"flags":[],"steps":0,"warmup":0,"ms_per_step":null,"tokens_per_s":null,"peak_gib":null,"tflops":null,"frozen_matmul_params":null,"trainable_params":null,"flops_per_token":null,"losses":[],"loss_first":null,"loss_last":null,"init_from":%s,"torch":"","error":"killed after %s s (time limit)"}\n' \
      "$side" "$side $*" "$cfg" "$b" "$s" "$dev" "$dtype" "$init" "$limit" >> "$JSONL"
  fi
  report
}

# The runs of one config: ours (fused ops on; float32 and bfloat16 adapters) and the three peers.
config_runs() {
  local cfg=$1 b=$2 s=$3
  local fast=(--fused-lora --chunked-loss --fused-swiglu)
  run ours 180 --config "$cfg" --batch "$b" --seq "$s" --adapter-dtype bfloat16 "${fast[@]}"
  run peft 300 --config "$cfg" --batch "$b" --seq "$s" --adapter-dtype bfloat16 --compile
  run peft 180 --config "$cfg" --batch "$b" --seq "$s" --adapter-dtype bfloat16
  run peft 180 --config "$cfg" --batch "$b" --seq "$s" --adapter-dtype float32
  run ours 180 --config "$cfg" --batch "$b" --seq "$s" --adapter-dtype float32 "${fast[@]}"
}

# Same weights and batch on both sides (a random model with larger weights, so the loss depends on them).
parity_runs() {
  local cfg=$1 b=$2 s=$3 std=$4; shift 4
  local dir="$INIT_ROOT/$cfg-${b}x$s"
  node "$JS" --config "$cfg" --batch "$b" --seq "$s" --init-std "$std" --save-init "$dir" "$@" > "$LOGS/save-init-$cfg.log" 2>&1 \
    || { echo "save-init failed:"; tail -5 "$LOGS/save-init-$cfg.log"; return; }
  for ad in float32 bfloat16; do
    [ "$CPU_SMOKE" = 1 ] && run ours 180 --init-from "$dir" --adapter-dtype "$ad" "$@"  # the library's default path too
    run ours 180 --init-from "$dir" --adapter-dtype "$ad" --fused-lora --chunked-loss --fused-swiglu "$@"
    run peft 180 --init-from "$dir" --adapter-dtype "$ad" "$@"
  done
}

if [ "$CPU_SMOKE" = 1 ]; then
  DEV=(--device cpu)
  parity_runs tiny 2 32 0.2 "${DEV[@]}"
  parity_runs tiny 2 32 0.2 "${DEV[@]}" --dtype bfloat16
  run ours 120 --config tiny --batch 2 --seq 32 "${DEV[@]}" --gradient-checkpointing
  run ours 120 --config tiny --batch 2 --seq 32 "${DEV[@]}" --gradient-checkpointing --fused-lora --chunked-loss --fused-swiglu
  run peft 120 --config tiny --batch 2 --seq 32 "${DEV[@]}" --gradient-checkpointing
  if [ "$WITH_COMPILE" = 1 ]; then
    dir="$INIT_ROOT/tiny-2x32"
    run peft 600 --init-from "$dir" --compile "${DEV[@]}"
  fi
else
  case "$SET" in
    main|all)
      config_runs 1.1b 4 2048
      config_runs 125m 8 2048
      parity_runs 125m 2 512 0.05
      ;;&
    7b|all)
      config_runs 7b 2 2048
      config_runs 7b 4 2048
      ;;&
    sweep|all)
      for s in 512 1024 2048 4096 8192; do
        b=$((8192 / s))
        run ours 180 --config 1.1b --batch "$b" --seq "$s" --adapter-dtype bfloat16 --fused-lora --chunked-loss --fused-swiglu
        run peft 300 --config 1.1b --batch "$b" --seq "$s" --adapter-dtype bfloat16 --compile
        run peft 180 --config 1.1b --batch "$b" --seq "$s" --adapter-dtype bfloat16
      done
      ;;&
    ablate|all)
      for flags in "" "--fused-lora" "--chunked-loss" "--fused-swiglu" "--fused-lora --chunked-loss --fused-swiglu" "--fused-lora --chunked-loss --fused-swiglu --gradient-checkpointing"; do
        # shellcheck disable=SC2086
        run ours 180 --config 1.1b --batch 4 --seq 2048 --adapter-dtype bfloat16 $flags
      done
      ;;
    *) ;;
  esac
fi

report
cat "$LOGS/report.txt"
echo "written: $MD, $JSONL (logs in $LOGS; $(( $(date +%s) - T0 )) s)"
