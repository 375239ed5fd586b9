// The CLI on the tiny Gemma 2 and Phi-3 fixtures (soft-caps and sliding windows; fused qkv_proj and
// gate_up_proj): train writes an adapter, generate runs with it, merge writes a plain folder computing
// what base + adapter compute.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, PeftModel, scope, tensor, Tensor } from '../lib';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { FIXTURES, tmpDir } from './helpers/train';

for (const [family, targets, className] of [
  ['gemma2', 'q_proj,v_proj,o_proj,down_proj', 'Gemma2ForCausalLM'],
  ['phi3', 'qkv_proj,gate_up_proj', 'Phi3ForCausalLM'],
] as const) {
  test(`${family}: train, generate with the adapter, merge`, async () => {
    const dir = tmpDir(`cli-${family}`);
    const model = makeModelDir(dir, path.join(FIXTURES, family, 'base'));
    const data = makeDataFile(dir, 12);
    const out = path.join(dir, 'out');
    const r = await cli('train', '--model', model, '--data', data, '--output', out, '--max-steps', '3', '--r', '4', '--lora-alpha', '8', '--target-modules', targets, '--lr', '0.01', '--batch-size', '4', '--seed', '1', '--report', 'plain');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    expect([...cfg.target_modules].sort()).toEqual(targets.split(',').sort());

    const base = await cli('generate', '--model', model, '--prompt', 'shift cat ->', '--max-new-tokens', '6');
    const tuned = await cli('generate', '--model', model, '--adapter', out, '--prompt', 'shift cat ->', '--max-new-tokens', '6');
    for (const g of [base, tuned]) {
      expect(g.code).toBe(0);
      expect(g.out.startsWith('shift cat ->')).toBe(true);
    }

    const merged = path.join(dir, 'merged');
    const m = await cli('merge', '--model', model, '--adapter', out, '--output', merged);
    expect(m.code).toBe(0);
    const ids = tensor([[1, 5, 9, 33, 17, 64, 101, 7]], { dtype: 'int64' });
    const plain = await AutoModelForCausalLM.fromPretrained(merged);
    expect(plain.reprName()).toBe(className);
    const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(model), out);
    const orig = await AutoModelForCausalLM.fromPretrained(model);
    const [diff, changed] = scope(() => {
      const a = plain.forward({ inputIds: ids }).logits;
      const b = (peft.forward({ inputIds: ids }) as { logits: Tensor }).logits;
      const c = orig.forward({ inputIds: ids }).logits;
      return [a.sub(b).abs().max().item() as number, a.sub(c).abs().max().item() as number];
    });
    expect(diff).toBeLessThan(1e-5); // merging is exact up to float32 rounding of W + BA
    expect(changed).toBeGreaterThan(1e-3); // the adapter did something
    [plain, peft, orig, ids].forEach((x) => x.dispose());
  });
}
