// Interop, step 1 (run with node after `npx tsc -p tsconfig.json`): writes adapters with torch-lora for
// real PEFT to load (step 2, peft_interop.py). For each case, OUT/<case>/st (safetensors) and
// OUT/<case>/bin (adapter_model.bin), our logits in OUT/<case>/expect.safetensors, and OUT/<case>/case.json.
// Cases: every PEFT fixture re-saved by us, and adapters we create from scratch (random non-zero
// weights), so that PEFT reads weights it never wrote.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, loadSafetensorsSync, LoraConfig, manualSeed, noGrad, PeftModel, saveSafetensors, scope, Tensor } from '../../lib';
import type { CausalLM } from '../../lib';
import { PEFT_FIXTURES } from '../helpers/peft-fixtures';

// Run from the repository root (run.sh does), or point TL_FIXTURES at test/fixtures.
const FIX = path.resolve(process.env.TL_FIXTURES ?? path.join('test', 'fixtures'));
const OUT = path.resolve(process.argv[2] ?? 'interop-out');

// `active`: the adapter the logits are computed with (PEFT sets the same one before comparing).
async function emit(name: string, base: string, peft: PeftModel, inputIds: Tensor, active?: string): Promise<void> {
  const dir = path.join(OUT, name);
  fs.mkdirSync(dir, { recursive: true });
  if (active) peft.setAdapter(active);
  peft.eval();
  const logits = noGrad(() => (peft.forward({ inputIds }) as { logits: Tensor }).logits);
  await peft.savePretrained(path.join(dir, 'st'));
  await peft.savePretrained(path.join(dir, 'bin'), { safeSerialization: false });
  await saveSafetensors({ input_ids: inputIds, logits }, path.join(dir, 'expect.safetensors'));
  fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ base, adapters: [...peft.peftConfig.keys()], active: peft.activeAdapter }));
  console.log(`wrote ${name}`);
}

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const model = (b: string) => AutoModelForCausalLM.fromPretrained(path.join(FIX, b)) as Promise<CausalLM>;
  const ids = loadSafetensorsSync(path.join(FIX, 'llama-qv', 'expect.safetensors')).input_ids;
  for (const { name, base } of PEFT_FIXTURES) {
    const peft = await PeftModel.fromPretrained(await model(base), path.join(FIX, name));
    await emit(`resaved-${name}`, base, peft, ids);
  }
  // Two adapters: the second is saved in a subfolder named after it; each is compared active alone.
  for (const active of ['default', 'style']) {
    const peft = await PeftModel.fromPretrained(await model('tiny-llama'), path.join(FIX, 'llama-multi'));
    await peft.loadAdapter(path.join(FIX, 'llama-multi', 'style'), 'style');
    await emit(`resaved-llama-multi-${active}`, 'tiny-llama', peft, ids, active);
  }
  manualSeed(1234);
  const fresh: [string, string, LoraConfig][] = [
    ['fresh-llama-all-linear-dora-rslora', 'tiny-llama', new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', useDora: true, useRslora: true, rankPattern: { up_proj: 2 }, initLoraWeights: false, taskType: 'CAUSAL_LM' })],
    ['fresh-llama-embed-modules-to-save', 'tiny-llama', new LoraConfig({ r: 3, loraAlpha: 6, targetModules: ['embed_tokens', 'o_proj'], modulesToSave: ['lm_head'], initLoraWeights: false })],
    ['fresh-llama-embed-dora', 'tiny-llama', new LoraConfig({ r: 2, loraAlpha: 4, targetModules: ['embed_tokens', 'q_proj'], useDora: true, initLoraWeights: false })],
    ['fresh-gpt2-default-targets', 'tiny-gpt2', new LoraConfig({ r: 2, loraAlpha: 4, initLoraWeights: false, loraDropout: 0.1 })],
  ];
  for (const [name, base, cfg] of fresh) {
    const peft = getPeftModel(await model(base), cfg);
    // Random non-zero adapter weights everywhere (B too), and a changed lm_head copy.
    noGrad(() => {
      for (const p of peft.parameters()) if (p.requiresGrad) scope(() => p.add_(p.mul(0).normal_(0, 0.05)));
    });
    await emit(name, base, peft, ids);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
