#!/usr/bin/env bash
# Interop check (needs Python with peft, transformers and safetensors, e.g. the CUDA machines):
# torch-lora saves adapters in both formats, real PEFT loads them and compares logits; torch-lora saves
# causal LMs with savePretrained (whole, sharded, merged), real transformers loads them and compares.
# PYTHON picks the interpreter (default python3), e.g. PYTHON=/tmp/py2/bin/python test/interop/run.sh
set -euo pipefail
PYTHON="${PYTHON:-python3}"
cd "$(dirname "$0")/../.."
OUT="${1:-${TMPDIR:-/tmp}/torch-lora-interop}"
rm -rf "$OUT"
npx tsc -p tsconfig.json
node dist/test/interop/save-adapters.js "$OUT"
"$PYTHON" test/interop/peft_interop.py "$OUT" test/fixtures
rm -rf "$OUT-models"
node dist/test/interop/save-models.js "$OUT-models"
"$PYTHON" test/interop/transformers_interop.py "$OUT-models"
