#!/usr/bin/env bash
# Everything issue 16 needs from a GPU machine, in one call of the device tool: build the addon against
# the machine's CUDA PyTorch, check what the build says (CUDA runtime headers found, libtorch_cuda
# linked), run the test suite there (every test gated on cuda.isAvailable() runs; see test/cuda-paths),
# then the side-by-side training-step benchmark. Logs and tables go to $OUT (the device tool brings back
# what is under it). Written for /work/shared/device/README.md's machines: PyTorch, no Node, no registry.
#
# On the development machine, once (fills the git-ignored .device/ and dist/; prints the carry list):
#   bash scripts/gpu-check.sh --prepare
# Then the device tool's run, with carry [".device", "dist"]:
#   source .device/env.sh && bash scripts/gpu-check.sh [--stages build,test,bench] [--bench-set main|7b|sweep|all] [--bench-budget-s S]
# Each stage has its own time limit, so that one stuck stage still leaves the others' results. A device
# command may run 10 minutes: e.g. `--stages build,test` in one call and `--stages bench` in the next
# (the build/ folder stays on a warm machine; the bench stage rebuilds only if it is gone).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if [[ "${1:-}" == "--prepare" ]]; then
  set -e
  shared="${SHARED_DEVICE:-}"
  for d in ../shared/device ../../shared/device /work/shared/device; do
    [[ -z "$shared" && -f "$d/prepare.sh" ]] && shared="$d"
  done
  [[ -n "$shared" ]] || { echo "gpu-check: set SHARED_DEVICE to the folder with prepare.sh" >&2; exit 2; }
  bash "$shared/prepare.sh"
  # jest (no ts-jest: the tests travel compiled, in dist/test) into .device/jest
  v="$(node -p "require('./node_modules/jest/package.json').version")"
  rm -rf .device/jest && mkdir -p .device/jest
  (cd .device/jest && npm init -y >/dev/null && npm install --no-audit --no-fund --silent "jest@$v" >/dev/null)
  npx tsc -p tsconfig.json && node scripts/make-bins-executable.js
  du -sh .device dist
  echo 'carry: [".device", "dist"]   command: source .device/env.sh && bash scripts/gpu-check.sh'
  exit 0
fi

BENCH_SET=main
BENCH_BUDGET=420
STAGES=build,test,bench
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stages) STAGES="$2"; shift 2 ;;
    --bench-set) BENCH_SET="$2"; shift 2 ;;
    --bench-budget-s) BENCH_BUDGET="$2"; shift 2 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$ROOT/gpu-check-out}"
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
stage() { # name, seconds, command...: runs it with a limit, its output to $OUT/<name>.log
  local name="$1" secs="$2"; shift 2
  local t0=$SECONDS rc=0
  timeout "$secs" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  note "$name: exit $rc in $((SECONDS - t0)) s (log: $name.log)"
  return $rc
}

note "gpu-check $(date -u +%FT%TZ) on $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
note "torch $(python3 -c 'import torch;print(torch.__version__, torch.version.cuda)' 2>/dev/null)"
[[ -d dist/lib && -d .device ]] || { note "dist/ or .device/ is missing: run scripts/gpu-check.sh --prepare here first and carry both"; exit 2; }

want() { [[ ",$STAGES," == *",$1,"* ]]; }
# 1. The addon, against the machine's CUDA PyTorch (.device/env.sh exported LIBTORCH and Torch_DIR).
if ! want build && [[ -f build/Release/torch_lora.node ]]; then
  note "build: kept the addon already built"
elif stage build 540 npx cmake-js compile; then
  grep -E "torch-lora:" "$OUT/build.log" | sort -u | tee -a "$summary"
  node -e "const t=require('./dist/lib');console.log('addon: libtorch', t.torchVersion, 'cuda.isAvailable()', t.cuda.isAvailable(), 'devices', t.cuda.deviceCount())" 2>&1 | tee -a "$summary"
else
  tail -40 "$OUT/build.log" >>"$summary"
  exit 1
fi

if want test; then
# 2. The test suite on the GPU machine: the compiled tests (dist/test) under the carried jest, one file per
# worker process as jest.config.js does. Fixtures are read beside the compiled tests.
ln -sfn "$ROOT/test/fixtures" dist/test/fixtures
JEST_CONFIG="{\"rootDir\":\"$ROOT\",\"testEnvironment\":\"node\",\"roots\":[\"<rootDir>/dist/test\"],\"testMatch\":[\"**/*.test.js\"],\"testTimeout\":600000,\"maxWorkers\":4,\"workerIdleMemoryLimit\":\"1KB\"}"
jest_bin="$ROOT/.device/jest/node_modules/jest/bin/jest.js"
# First the CUDA paths alone (quick, the point of the run), then everything.
stage test-cuda-paths 300 node "$jest_bin" --config "$JEST_CONFIG" --json --outputFile="$OUT/test-cuda-paths.json" \
  dist/test/cuda-paths.test.js dist/test/models-attention-path.test.js dist/test/tensor-creation.test.js dist/test/errors.test.js
stage test-all 420 node "$jest_bin" --config "$JEST_CONFIG" --json --outputFile="$OUT/test-all.json"
node -e "
for (const f of ['test-cuda-paths', 'test-all']) {
  try {
    const r = require('$OUT/' + f + '.json');
    console.log(f + ': ' + r.numPassedTests + ' passed, ' + r.numFailedTests + ' failed, ' + r.numPendingTests + ' skipped');
    for (const s of r.testResults) for (const a of s.assertionResults) if (a.status === 'failed') console.log('  FAILED ' + a.fullName);
  } catch (e) { console.log(f + ': no result (' + e.message + ')'); }
}" 2>&1 | tee -a "$summary"
fi

# 3. The side-by-side benchmark (bench/train-step.sh writes its table after every run).
if want bench; then
  stage bench "$((BENCH_BUDGET + 120))" bash bench/train-step.sh --set "$BENCH_SET" --budget-s "$BENCH_BUDGET" --out-dir "$OUT/bench"
  ls "$OUT/bench" 2>/dev/null | sed 's/^/bench: /' | tee -a "$summary"
fi
note "gpu-check: done"
