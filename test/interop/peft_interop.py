"""Interop, step 2: real PEFT loads the adapters torch-lora saved (save-adapters.ts) onto the same base
models and must give torch-lora's logits. Per case and format it checks that
  - PEFT's adapter state dict after loading (get_peft_model_state_dict, what PEFT itself would save) has
    exactly the keys and the values of the file we wrote: nothing we wrote was ignored, nothing missing;
  - PEFT's logits with the case's active adapter equal ours (max abs difference < 1e-5, float32);
  - the adapter changes the logits (max |adapter - base| > 1e-3), so the comparison can fail.
Prints one line per case and format; exits 1 on any failure.

    python3 test/interop/peft_interop.py OUT test/fixtures
"""
import json
import os
import sys
import warnings

import torch
from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

out, fixtures = sys.argv[1], sys.argv[2]
tol = 1e-5
min_effect = 1e-3
failed = 0


def saved_tensors(folder):
    st = os.path.join(folder, "adapter_model.safetensors")
    if os.path.exists(st):
        return load_file(st)
    return torch.load(os.path.join(folder, "adapter_model.bin"), weights_only=True)


def state_dict_problem(model, name, folder):
    """None when PEFT's state dict of adapter `name` equals the file in `folder` key for key, bit for bit."""
    ours = saved_tensors(folder)
    theirs = get_peft_model_state_dict(model, adapter_name=name)
    if set(ours) != set(theirs):
        return f"keys differ: only in ours {sorted(set(ours) - set(theirs))}, only in PEFT's {sorted(set(theirs) - set(ours))}"
    for k in ours:
        if ours[k].shape != theirs[k].shape or ours[k].dtype != theirs[k].dtype or not torch.equal(ours[k], theirs[k].cpu()):
            return f"{k}: ours {tuple(ours[k].shape)} {ours[k].dtype}, PEFT's {tuple(theirs[k].shape)} {theirs[k].dtype}"
    return None


for case in sorted(os.listdir(out)):
    meta_file = os.path.join(out, case, "case.json")
    if not os.path.exists(meta_file):
        continue
    meta = json.load(open(meta_file))
    expect = load_file(os.path.join(out, case, "expect.safetensors"))
    adapters = meta["adapters"]
    active = meta.get("active", adapters[0])
    for fmt in ("st", "bin"):
        base = AutoModelForCausalLM.from_pretrained(os.path.join(fixtures, meta["base"]), dtype=torch.float32)
        folder = os.path.join(out, case, fmt)
        problems = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = PeftModel.from_pretrained(base, folder)
            for extra in adapters[1:]:
                res = model.load_adapter(os.path.join(folder, extra), extra)
                if res.missing_keys:
                    problems.append(f"{extra}: missing keys {res.missing_keys}")
        problems += [str(w.message) for w in caught if "missing adapter keys" in str(w.message)]
        for name in adapters:
            sub = folder if name == adapters[0] else os.path.join(folder, name)
            p = state_dict_problem(model, name, sub)
            if p:
                problems.append(f"{name}: {p}")
        model.set_adapter(active)
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=expect["input_ids"]).logits
            with model.disable_adapter():
                base_logits = model(input_ids=expect["input_ids"]).logits
        diff = (logits - expect["logits"]).abs().max().item()
        effect = (logits - base_logits).abs().max().item()
        if diff >= tol:
            problems.append(f"logits differ by {diff:.3e}")
        if effect <= min_effect:
            problems.append(f"the adapter barely changes the logits ({effect:.3e})")
        failed += bool(problems)
        label = f"{case} [{active}]" if len(adapters) > 1 else case
        print(f"{label:50s} {fmt:3s} max|peft - ours| = {diff:.3e}  max|adapter - base| = {effect:.3e}  "
              f"{'OK' if not problems else 'FAIL: ' + '; '.join(problems)}", flush=True)
print("all OK" if failed == 0 else f"{failed} FAILED")
sys.exit(1 if failed else 0)
