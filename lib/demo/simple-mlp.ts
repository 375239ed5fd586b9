// The seed article's example, end to end on the native layer: SimpleMLP (fc1 Linear(10,20), ReLU,
// fc2 Linear(20,2)) is pretrained on one rule, frozen, and a rank-4 LoRA on fc1 (α=16) learns a
// second rule. It prints the loss falling and the accuracy before and after.
import * as torch from '../index';
import { nn, F, Tensor } from '../index';

class SimpleMLP extends nn.Module {
  fc1 = new nn.Linear(10, 20);
  fc2 = new nn.Linear(20, 2);
  forward(x: Tensor, fc1?: (x: Tensor) => Tensor): Tensor {
    return this.fc2.forward((fc1 ?? ((v: Tensor) => this.fc1.forward(v)))(x).relu());
  }
}

/** Labels: rule 'a' is sign(x0 + x1), rule 'b' is sign(x2 - x3·x4). */
function batch(n: number, rule: 'a' | 'b'): { x: Tensor; y: Tensor } {
  return torch.scope(() => {
    const x = torch.randn([n, 10]);
    const s = rule === 'a' ? x.select(1, 0).add(x.select(1, 1)) : x.select(1, 2).sub(x.select(1, 3).mul(x.select(1, 4)));
    return { x, y: s.gt(0).long() };
  });
}

function accuracy(logits: Tensor, y: Tensor): number {
  return torch.scope(() => logits.argmax(-1).eq(y).float().mean().item() as number);
}

function sgd(params: Tensor[], lr: number): void {
  torch.noGrad(() => {
    for (const p of params) {
      const g = p.grad;
      if (g === undefined) continue;
      p.sub_(g, lr);
      g.dispose();
      p.grad = undefined;
    }
  });
}

function main(): void {
  torch.manualSeed(0);
  const model = new SimpleMLP();
  const test = batch(2000, 'b');

  // 1. Pretrain the whole model on rule a.
  for (let step = 0; step < 300; step++) {
    torch.scope(() => {
      const { x, y } = batch(64, 'a');
      F.crossEntropy(model.forward(x), y).backward();
    });
    sgd([...model.parameters()], 0.1);
  }
  model.requiresGrad_(false);
  const before = torch.noGrad(() => torch.scope(() => accuracy(model.forward(test.x), test.y)));

  // 2. LoRA on fc1: W·x + (α/r)·B·A·x with A [r, 10] kaiming-uniform, B [20, r] zeros.
  const r = 4;
  const scaling = 16 / r;
  const loraA = new nn.Parameter(torch.empty([r, 10]));
  nn.init.kaimingUniform_(loraA, { a: Math.sqrt(5) });
  const loraB = new nn.Parameter(torch.zeros([20, r]));
  const fc1 = (x: Tensor) => model.fc1.forward(x).add(F.linear(F.linear(x, loraA), loraB), scaling);
  const trainable = loraA.numel() + loraB.numel();
  const all = trainable + [...model.parameters()].reduce((n, p) => n + p.numel(), 0);
  console.log(`trainable params: ${trainable} || all params: ${all} || trainable%: ${((100 * trainable) / all).toFixed(4)}`);
  console.log(`accuracy on rule b before LoRA: ${(100 * before).toFixed(1)}%`);

  for (let step = 0; step <= 600; step++) {
    const loss = torch.scope(() => {
      const { x, y } = batch(64, 'b');
      const l = F.crossEntropy(model.forward(x, fc1), y);
      l.backward();
      return l.item() as number;
    });
    sgd([loraA, loraB], 0.05);
    if (step % 100 === 0) console.log(`step ${String(step).padStart(3)}  loss ${loss.toFixed(4)}`);
  }
  const after = torch.noGrad(() => torch.scope(() => accuracy(model.forward(test.x, fc1), test.y)));
  console.log(`accuracy on rule b after LoRA:  ${(100 * after).toFixed(1)}%`);
  console.log(`live tensors: ${torch.memory().tensors} (model, adapter and the test set)`);
}

main();
