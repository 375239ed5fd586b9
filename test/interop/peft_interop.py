"""Interop, step 2: real PEFT loads the adapters torch-lora saved (save-adapters.ts) onto the same base
models and must give torch-lora's logits. Prints one line per case and format; exits 1 on any mismatch.

    python3 test/interop/peft_interop.py OUT test/fixtures
"""
import json
import os
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

out, fixtures = sys.argv[1], sys.argv[2]
tol = 1e-5
failed = 0
for case in sorted(os.listdir(out)):
    meta_file = os.path.join(out, case, "case.json")
    if not os.path.exists(meta_file):
        continue
    meta = json.load(open(meta_file))
    expect = load_file(os.path.join(out, case, "expect.safetensors"))
    for fmt in ("st", "bin"):
        base = AutoModelForCausalLM.from_pretrained(os.path.join(fixtures, meta["base"]), dtype=torch.float32)
        folder = os.path.join(out, case, fmt)
        model = PeftModel.from_pretrained(base, folder)
        for extra in meta["adapters"][1:]:
            model.load_adapter(os.path.join(folder, extra), extra)
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=expect["input_ids"]).logits
        diff = (logits - expect["logits"]).abs().max().item()
        ok = diff < tol
        failed += not ok
        print(f"{case:45s} {fmt:3s} max|peft - ours| = {diff:.3e} {'OK' if ok else 'FAIL'}", flush=True)
print("all OK" if failed == 0 else f"{failed} FAILED")
sys.exit(1 if failed else 0)
