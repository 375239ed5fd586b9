// Issue 10: an adapter_config.json whose modules_to_save overlaps target_modules, or names a module the
// adapter file has no weights for, loaded silently with the LoRA weights dropped. PEFT 0.21 raises
// (test/fixtures/modules-to-save-missing/reference.json, from make_reference.py); so do we, naming the keys.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, PeftModel } from '../lib';
import { FIXTURES } from './helpers/models';
import { tmpDir } from './helpers/tmp-dir';

const reference = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'modules-to-save-missing', 'reference.json'), 'utf8'));

/** The PEFT-made llama-qv adapter with adapter_config.json's modules_to_save replaced, as the generator made it. */
function editedAdapter(modulesToSave: string[]): string {
  const dir = tmpDir('mts-load');
  for (const f of ['adapter_config.json', 'adapter_model.safetensors']) fs.copyFileSync(path.join(FIXTURES, 'llama-qv', f), path.join(dir, f));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ ...config, modules_to_save: modulesToSave }));
  return dir;
}

async function loadError(dir: string): Promise<string> {
  const base = await AutoModelForCausalLM.fromPretrained(path.join(FIXTURES, 'tiny-llama'));
  try {
    const peft = await PeftModel.fromPretrained(base, dir);
    peft.dispose();
  } catch (e) {
    base.dispose();
    return (e as Error).message;
  }
  throw new Error('loaded');
}

test('the reference: PEFT raised for both edits, on the first missing key', () => {
  expect(reference.overlap).toEqual(expect.objectContaining({ raised: true, type: 'KeyError' }));
  expect(reference.missing).toEqual(expect.objectContaining({ raised: true, type: 'KeyError' }));
});

test('modules_to_save overlapping target_modules: an error naming the missing keys and the LoRA keys the file holds', async () => {
  const dir = editedAdapter(['q_proj']);
  const message = await loadError(dir);
  // PEFT's KeyError names the first missing key; ours names them all.
  expect(message).toContain(JSON.parse(reference.overlap.message.replace(/'/g, '"')).replace('base_model.model.', ''));
  expect(message).toContain('model.layers.2.self_attn.q_proj.weight');
  expect(message).toContain('model.layers.0.self_attn.q_proj.lora_A.weight');
  expect(message).toContain('["q_proj"] is in both target_modules and modules_to_save');
  expect(message).toContain(`adapter folder '${dir}'`);
});

test('modules_to_save naming a module without saved weights', async () => {
  const message = await loadError(editedAdapter(['lm_head']));
  expect(message).toContain(`modules_to_save ["lm_head"] names modules whose weights the adapter file does not hold: missing keys lm_head.weight`);
  expect(message).not.toContain('target_modules');
});

test('the PEFT-made adapter with modules_to_save (llama-embed-save) still loads', async () => {
  const cfg = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'llama-embed-save', 'adapter_config.json'), 'utf8'));
  const base = await AutoModelForCausalLM.fromPretrained(path.join(FIXTURES, 'tiny-llama'));
  const peft = await PeftModel.fromPretrained(base, path.join(FIXTURES, 'llama-embed-save'));
  expect(cfg.modules_to_save).toEqual(['lm_head']); // its lm_head weights are in the file
  peft.dispose();
});
