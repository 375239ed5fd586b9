// Every adapter PEFT 0.21 saved in test/fixtures (tiny LLaMA and GPT-2 bases): loaded from safetensors and
// from bin/, our logits equal PEFT's within 1e-5 in float32 (merged logits too), and the trainable counts
// equal PEFT's get_nb_trainable_parameters().
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, loadSafetensorsSync, memory, noGrad, PeftModel, Tensor } from '../lib';
import type { CausalLM } from '../lib';
import { PEFT_FIXTURES } from './helpers/peft-fixtures';
import { maxAbsDiff } from './helpers/tensors';

const FIX = path.join(__dirname, 'fixtures');
const meta = JSON.parse(fs.readFileSync(path.join(FIX, 'meta.json'), 'utf8'));

function logitsOf(model: { forward(i: { inputIds: Tensor }): { logits: Tensor } }, ids: Tensor): Tensor {
  return noGrad(() => model.forward({ inputIds: ids }).logits);
}

async function base(name: string): Promise<CausalLM> {
  return AutoModelForCausalLM.fromPretrained(path.join(FIX, name));
}

for (const c of PEFT_FIXTURES) {
  describe(c.name, () => {
    let exp: Record<string, Tensor>;
    beforeAll(() => {
      exp = loadSafetensorsSync(path.join(FIX, c.name, 'expect.safetensors'));
    });
    afterAll(() => Object.values(exp).forEach((t) => t.dispose()));

    for (const sub of ['', 'bin']) {
      test(`logits from ${sub || 'safetensors'} equal PEFT's (1e-5)${c.merged ? ', merged too' : ''}`, async () => {
        const peft = await PeftModel.fromPretrained(await base(c.base), path.join(FIX, c.name, sub));
        const logits = logitsOf(peft as never, exp.input_ids);
        expect(logits.shape).toEqual(exp.logits.shape);
        expect(maxAbsDiff(logits, exp.logits)).toBeLessThan(1e-5);
        logits.dispose();
        if (c.merged) {
          const merged = peft.mergeAndUnload() as CausalLM;
          expect(merged.toString()).not.toContain('lora');
          const ml = logitsOf(merged, exp.input_ids);
          expect(maxAbsDiff(ml, exp.merged_logits)).toBeLessThan(1e-5);
          ml.dispose();
          merged.dispose();
        } else peft.dispose();
      });
    }

    if (meta[c.name]?.trainable !== undefined) {
      test('trainable parameter counts equal PEFT', async () => {
        const peft = await PeftModel.fromPretrained(await base(c.base), path.join(FIX, c.name), { isTrainable: true });
        expect(peft.getNbTrainableParameters()).toEqual([meta[c.name].trainable, meta[c.name].all]);
        peft.dispose();
      });
    }
  });
}

describe('llama-multi', () => {
  let exp: Record<string, Tensor>;
  beforeAll(() => {
    exp = loadSafetensorsSync(path.join(FIX, 'llama-multi', 'expect.safetensors'));
  });
  afterAll(() => Object.values(exp).forEach((t) => t.dispose()));

  test('two adapters, each active alone, give PEFT their logits (1e-5)', async () => {
    const dir = path.join(FIX, 'llama-multi');
    const peft = await PeftModel.fromPretrained(await base('tiny-llama'), dir);
    await peft.loadAdapter(path.join(dir, 'style'), 'style');
    expect([...peft.peftConfig.keys()]).toEqual(['default', 'style']);
    expect(peft.activeAdapter).toBe('default');
    const a = logitsOf(peft as never, exp.input_ids);
    expect(maxAbsDiff(a, exp.logits_default)).toBeLessThan(1e-5);
    peft.setAdapter('style');
    const b = logitsOf(peft as never, exp.input_ids);
    expect(maxAbsDiff(b, exp.logits_style)).toBeLessThan(1e-5);
    peft.setAdapter('default');
    const c = logitsOf(peft as never, exp.input_ids);
    expect(maxAbsDiff(c, a)).toBe(0);
    // The subfolder form of loadAdapter reads the same files.
    await peft.loadAdapter(dir, 'style2', { subfolder: 'style' });
    peft.setAdapter('style2');
    const d = logitsOf(peft as never, exp.input_ids);
    expect(maxAbsDiff(d, exp.logits_style)).toBeLessThan(1e-5);
    for (const t of [a, b, c, d]) t.dispose();
    peft.dispose();
  });
});

test('disposing a PeftModel frees every tensor it and its base model made (a merged DoRA adapter too)', async () => {
  const before = memory().tensors;
  const peft = await PeftModel.fromPretrained(await base('tiny-llama'), path.join(FIX, 'llama-dora'));
  peft.merge();
  peft.dispose();
  expect(memory().tensors).toBe(before);
});
