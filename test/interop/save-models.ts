// Interop, models step 1 (run with node after `npx tsc -p tsconfig.json`; run.sh does): writes causal LMs
// with savePretrained for real transformers to load (step 2, transformers_interop.py). For each case,
// OUT/<case>/model (the saved folder), our float32 logits in OUT/<case>/expect.safetensors and
// OUT/<case>/case.json (the maxShardSize used, in bytes, or null for the default).
// Cases: the fixture models saved whole and sharded (Gemma, Gemma 2, Gemma 3 text and Phi-3 too), a tied model built by fromConfig, bfloat16 weights,
// and merged PEFT models (a PEFT fixture and a fresh random adapter on GPT-2's Conv1D).
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, loadSafetensorsSync, LoraConfig, manualSeed, noGrad, PeftModel, saveSafetensors, scope, Tensor } from '../../lib';
import type { CausalLM } from '../../lib';
import { parseShardSize, readConfig } from '../../lib/models';

const FIX = path.resolve(process.env.TL_FIXTURES ?? path.join('test', 'fixtures'));
const OUT = path.resolve(process.argv[2] ?? 'interop-models-out');

async function emit(name: string, model: CausalLM, maxShardSize: string | number | undefined, inputIds: Tensor): Promise<void> {
  const dir = path.join(OUT, name);
  fs.mkdirSync(dir, { recursive: true });
  const saved = await model.savePretrained(path.join(dir, 'model'), { maxShardSize });
  // Our logits in float32, from the folder as written (a bfloat16 save is read back upcast, as transformers will).
  const back = await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model'), { dtype: 'float32' });
  back.eval();
  const logits = noGrad(() => back.forward({ inputIds }).logits);
  await saveSafetensors({ input_ids: inputIds, logits }, path.join(dir, 'expect.safetensors'));
  fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ max_shard_size: maxShardSize === undefined ? null : parseShardSize(maxShardSize), dtype: saved.dtype }));
  console.log(`wrote ${name}: ${saved.files.filter((f) => f !== 'config.json').join(', ')}`);
  [logits, back, model].forEach((t) => t.dispose());
}

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const ids = loadSafetensorsSync(path.join(FIX, 'llama-qv', 'expect.safetensors')).input_ids;
  const load = (b: string, dtype?: 'bfloat16') => AutoModelForCausalLM.fromPretrained(path.join(FIX, b), { dtype });
  for (const [base, short] of [
    ['tiny-llama', 'llama'],
    ['tiny-gpt2', 'gpt2'],
  ]) {
    await emit(`${short}-single`, await load(base), undefined, ids);
    await emit(`${short}-sharded`, await load(base), 60000, ids);
  }
  await emit('llama-bf16-sharded', await load('tiny-llama', 'bfloat16'), '50KB', ids);
  // The Gemma families and Phi-3 (soft-caps, windows, two ropes, fused projections), sharded, and merged.
  for (const family of ['gemma', 'gemma2', 'gemma3_text', 'phi3']) {
    await emit(`${family}-sharded`, await load(path.join(family, 'base')), '20KB', ids);
    const lora = await PeftModel.fromPretrained(await load(path.join(family, 'base')), path.join(FIX, family, 'lora'));
    await emit(`merged-${family}-lora-single`, lora.mergeAndUnload() as CausalLM, undefined, ids);
  }
  manualSeed(7);
  const tied = AutoModelForCausalLM.fromConfig({ ...readConfig(path.join(FIX, 'tiny-llama')), tie_word_embeddings: true, my_unknown_key: 'kept' });
  await emit('llama-tied-from-config-sharded', tied, 30000, ids);

  const merged = await PeftModel.fromPretrained(await load('tiny-llama'), path.join(FIX, 'llama-qv'));
  await emit('merged-llama-qv-sharded', merged.mergeAndUnload() as CausalLM, '100KB', ids);
  manualSeed(1234);
  const fresh = getPeftModel(await load('tiny-gpt2'), new LoraConfig({ r: 2, loraAlpha: 4, initLoraWeights: false }));
  noGrad(() => {
    for (const p of fresh.parameters()) if (p.requiresGrad) scope(() => p.add_(p.mul(0).normal_(0, 0.05)));
  });
  await emit('merged-fresh-gpt2-single', fresh.mergeAndUnload() as CausalLM, undefined, ids);
  ids.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
