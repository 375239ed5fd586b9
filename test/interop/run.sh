#!/usr/bin/env bash
# Interop check (needs Python with peft, transformers and safetensors, e.g. the CUDA machines):
# torch-lora saves adapters in both formats, real PEFT loads them and compares logits.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-${TMPDIR:-/tmp}/torch-lora-interop}"
rm -rf "$OUT"
npx tsc -p tsconfig.json
node dist/test/interop/save-adapters.js "$OUT"
python3 test/interop/peft_interop.py "$OUT" test/fixtures
