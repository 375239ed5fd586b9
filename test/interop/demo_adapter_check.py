# Loads the adapter that `torch-lora demo` wrote (./torch-lora-demo) with real transformers + PEFT onto the
# embedded demo base and prints greedy answers to three of the demo's prompts, to compare with what the
# demo printed. Run from the repository root after the demo:  $PYTHON test/interop/demo_adapter_check.py
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
base = AutoModelForCausalLM.from_pretrained('assets/demo-base', dtype=torch.float32)
tok = AutoTokenizer.from_pretrained('assets/demo-base')
m = PeftModel.from_pretrained(base, 'torch-lora-demo')
m.eval()
for p, want in [('shift lora ->', 'mpsb'), ('shift cat ->', 'dbu'), ('shift quiz ->', 'rvja')]:
    ids = tok(p, return_tensors='pt').input_ids
    out = m.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
    text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    print(repr(p), '->', repr(text), 'want', want)
