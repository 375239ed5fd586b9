// `torch-lora demo` end to end on the embedded model (assets/demo-base, assets/demo-data) with a tiny
// step count: it answers the evaluation prompts before and after, trains, prints the table and the
// loss, and leaves a PEFT adapter (which loads onto the demo base) and the loss picture.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, PeftModel } from '../lib';
import { cli, ROOT } from './helpers/cli';
import { tmpDir } from './helpers/train';

test('demo --steps 3 runs end to end and writes a loadable adapter', async () => {
  const out = path.join(tmpDir('demo'), 'demo-out');
  const r = await cli('demo', '--steps', '3', '--batch-size', '4', '--output', out, '--report', 'plain');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const evalPrompts = fs
    .readFileSync(path.join(ROOT, 'assets', 'demo-data', 'eval.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).prompt as string);
  expect(r.out).toMatch(/^torch-lora demo: /);
  expect(r.out).toMatch(/^ {2}prompt +before +after +right answer$/m);
  for (const p of evalPrompts) expect(r.out).toContain(`  ${p}`);
  expect(r.out).toMatch(/^step 3\/3 \| epoch [\d.]+ \| loss \d/m);
  expect(r.out).toMatch(/^loss {9}\d+\.\d{3} \(step 1\) -> \d+\.\d{3} \(step 3\)$/m);
  expect(r.out).toMatch(/^right {8}\d\/\d+ before, \d\/\d+ after$/m);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'trainer_log.jsonl', 'training_loss.svg']) expect(fs.existsSync(path.join(out, f))).toBe(true);
  const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(path.join(ROOT, 'assets', 'demo-base')), out);
  expect(peft.targetedModuleNames.length).toBeGreaterThan(0);
  peft.dispose();
});
