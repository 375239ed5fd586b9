"""Interop, models step 2: real transformers loads the model folders torch-lora wrote with savePretrained
(save-models.ts) and must give torch-lora's logits. Per case it checks that
  - AutoModelForCausalLM.from_pretrained reports no missing, unexpected or mismatched keys, and the
    model's state dict equals the tensors of our files bit for bit (tied lm_head.weight: absent from the
    files, tied to the input embedding after loading);
  - with the default dtype ('auto') the parameters have the dtype config.json names;
  - its logits in float32 equal ours (max abs difference < 1e-5);
  - transformers' own save_pretrained of the loaded model, with the same max_shard_size, writes the same
    weight files byte for byte, the same model.safetensors.index.json, and the same config.json apart
    from transformers_version.
Prints one line per case; exits 1 on any failure.

    python3 test/interop/transformers_interop.py OUT
"""
import json
import os
import re
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

out = sys.argv[1]
tol = 1e-5
failed = 0


def weight_files(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))


def file_tensors(folder):
    tensors = {}
    for f in weight_files(folder):
        tensors.update(load_file(os.path.join(folder, f)))
    return tensors


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def without_version(text):
    return re.sub(r'\n  "transformers_version": "[^"]*",', "", text)


for case in sorted(os.listdir(out)):
    meta_file = os.path.join(out, case, "case.json")
    if not os.path.exists(meta_file):
        continue
    meta = json.load(open(meta_file))
    folder = os.path.join(out, case, "model")
    expect = load_file(os.path.join(out, case, "expect.safetensors"))
    problems = []

    # Gemma 2's attention-logit soft-cap is applied by transformers' eager attention only (its default, sdpa,
    # leaves it out): we compute the capped model, so it is compared with eager.
    capped = json.load(open(os.path.join(folder, "config.json"))).get("attn_logit_softcapping") is not None
    extra = {"attn_implementation": "eager"} if capped else {}
    model, info = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, output_loading_info=True, **extra)
    model.eval()
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(kind):
            problems.append(f"{kind}: {sorted(info[kind])[:5]}")
    ours = file_tensors(folder)
    theirs = model.state_dict()
    tied = model.config.tie_word_embeddings
    only_theirs = set(theirs) - set(ours) - ({"lm_head.weight"} if tied else set())
    if set(ours) - set(theirs) or only_theirs:
        problems.append(f"keys differ: only in our files {sorted(set(ours) - set(theirs))}, only in transformers' {sorted(only_theirs)}")
    for k, t in ours.items():
        if k in theirs and not torch.equal(t.float(), theirs[k]):
            problems.append(f"{k} differs")
    if tied and model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        problems.append("lm_head.weight is not tied to the input embedding")
    with torch.no_grad():
        logits = model(expect["input_ids"]).logits
    diff = (logits - expect["logits"]).abs().max().item()
    if not diff < tol:
        problems.append(f"logits differ by {diff:.3e}")

    # The default dtype ('auto') is config.json's, and transformers re-saves what we saved.
    native = AutoModelForCausalLM.from_pretrained(folder)
    want = meta["dtype"]
    if str(native.dtype).removeprefix("torch.") != want:
        problems.append(f"dtype {native.dtype}, config says {want}")
    with tempfile.TemporaryDirectory() as again:
        kwargs = {} if meta["max_shard_size"] is None else {"max_shard_size": meta["max_shard_size"]}
        native.save_pretrained(again, **kwargs)
        if weight_files(again) != weight_files(folder):
            problems.append(f"transformers writes {weight_files(again)}, we wrote {weight_files(folder)}")
        else:
            for f in weight_files(folder):
                if read(os.path.join(again, f)) != read(os.path.join(folder, f)):
                    problems.append(f"{f} differs from transformers' bytes")
        index = "model.safetensors.index.json"
        if os.path.exists(os.path.join(again, index)) != os.path.exists(os.path.join(folder, index)):
            problems.append(f"{index}: written by only one of us")
        elif os.path.exists(os.path.join(folder, index)) and read(os.path.join(again, index)) != read(os.path.join(folder, index)):
            problems.append(f"{index} differs from transformers'")
        mine = json.load(open(os.path.join(folder, "config.json")))
        hf = json.load(open(os.path.join(again, "config.json")))
        for c in (mine, hf):
            c.pop("transformers_version", None)
        if mine != hf:
            keys = sorted(k for k in set(mine) | set(hf) if mine.get(k) != hf.get(k))
            problems.append(f"config.json differs at {keys}")
        # The text too, but for the transformers_version line (ours keeps the source's, or has none).
        same_text = without_version(read(os.path.join(again, "config.json"), "r")) == without_version(read(os.path.join(folder, "config.json"), "r"))

    files = weight_files(folder)
    shards = f"{len(files)} shards" if len(files) > 1 else files[0]
    resave = "re-save identical" + (" (config text too)" if same_text else " (config keys)")
    status = "OK" if not problems else "FAIL: " + "; ".join(problems)
    print(f"{case:32s} {shards:18s} {want:9s} max|transformers - ours| = {diff:.3e}  {resave if not problems else ''}  {status}")
    failed += bool(problems)

print("all OK" if failed == 0 else f"{failed} FAILED")
sys.exit(1 if failed else 0)
