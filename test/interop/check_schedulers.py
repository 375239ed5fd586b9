# Checks the scheduler references in test/fixtures/optim-reference.safetensors (made by
# make_optim_reference.py from transformers' schedule formulas, with torch 1.13, which has no transformers)
# against the real transformers get_scheduler. Needs Python with torch and transformers, run from the
# repository root:  PYTHON=/path/to/python $PYTHON test/interop/check_schedulers.py
import json
import sys

import torch
from transformers import get_scheduler
sys.path.insert(0, 'test/fixtures')
from reference_io import read_safetensors  # noqa
import transformers
metadata, entries = read_safetensors('test/fixtures/optim-reference.safetensors')
tensors = {k: v[1] for k, v in entries.items()}
cfg = json.loads(metadata['config'])['sched']
worst = 0.0
for name, c in cfg['cases'].items():
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in cfg['base_lrs']]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, cfg['base_lrs'])], lr=1.0)
    kw = {}
    if c['num_warmup_steps'] is not None: kw['num_warmup_steps'] = c['num_warmup_steps']
    if c['num_training_steps'] is not None: kw['num_training_steps'] = c['num_training_steps']
    s = get_scheduler(c['name'], opt, **kw)
    rows = [list(s.get_last_lr())]
    for _ in range(cfg['steps']):
        opt.step(); s.step(); rows.append(list(s.get_last_lr()))
    got = torch.tensor(rows, dtype=torch.float64)
    ref = tensors[f'sched.{name}']
    ref = torch.as_tensor(ref, dtype=torch.float64) if not isinstance(ref, torch.Tensor) else ref.double()
    d = (got - ref).abs().max().item()
    worst = max(worst, d)
    print(f'{name:22s} max |transformers - reference| = {d:.3e}')
print('transformers', transformers.__version__, 'worst', worst)
