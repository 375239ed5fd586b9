// The Trainer against PEFT on the tiny Gemma 2 (fixture test/fixtures/gemma2/train, made by
// make_gemma2_train.py): LoRA r=8 on all seven projections, 5 steps of AdamW on one batch of 4 × 16
// tokens (past the window of 4 of the sliding layers), the loss of the soft-capped logits. Losses within
// 1e-5 and the final adapter within 2e-5 of PEFT's, in float32 on the CPU: eager soft-capped attention
// rounds as transformers' composite does (~1e-7 per op), and AdamW's division by the root of tiny
// second moments magnifies that in a few adapter entries (as in train-parity.test.ts).
import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES } from './helpers/train';
import { trainFixture } from './helpers/train-parity';

const FIX = path.join(FIXTURES, 'gemma2', 'train');
const BASE = path.join(FIXTURES, 'gemma2', 'base');
const want: number[] = JSON.parse(fs.readFileSync(path.join(FIX, 'meta.json'), 'utf8')).losses;

for (const [name, opts] of [
  ['default chunked loss', { chunkedLoss: true }],
  ['gradient checkpointing', { chunkedLoss: true, gradientCheckpointing: true }],
] as const) {
  test(`Trainer (${name}): PEFT's five losses within 1e-5 and its final adapter within 2e-5`, async () => {
    const { losses, adapterDiff } = await trainFixture(BASE, FIX, opts);
    expect(want).toHaveLength(5);
    expect(losses).toHaveLength(want.length);
    losses.forEach((l, i) => expect(Math.abs(l - want[i])).toBeLessThan(1e-5));
    expect(adapterDiff).toBeLessThan(2e-5);
  });
}
