// The seed article's model, SimpleMLP (fc1 Linear(10, 20), ReLU, fc2 Linear(20, 2); 262 parameters), and
// its pretrained weights test/fixtures/mlp-base.safetensors (the base of PEFT's mlp-fc1 fixture).
import * as path from 'path';
import { loadSafetensorsSync, nn, scope, Tensor } from '../../lib';

/** Written the PyTorch way: fields in __init__ order. */
export class SimpleMLP extends nn.Module {
  fc1 = new nn.Linear(10, 20);
  relu = new nn.ReLU();
  fc2 = new nn.Linear(20, 2);
  forward(x: Tensor): Tensor {
    return scope(() => this.fc2.forward(this.relu.forward(this.fc1.forward(x))));
  }
}

/** A SimpleMLP with the weights of mlp-base.safetensors. */
export function loadedSimpleMLP(): SimpleMLP {
  const m = new SimpleMLP();
  const sd = loadSafetensorsSync(path.join(__dirname, '..', 'fixtures', 'mlp-base.safetensors'));
  m.loadStateDict(sd);
  for (const t of Object.values(sd)) t.dispose();
  return m;
}
