// Mistral, Qwen2 and Qwen3 against transformers 5 and peft 0.21 (fixtures made by
// test/fixtures/<family>/make_fixture.py; sequences longer than the sliding window): logits of the base
// model (safetensors, sharded, pytorch_model.bin), padded batches, greedy generate() with the KV cache, the
// printed tree, parameter counts, PEFT's default targets, an adapter (safetensors and bin), DoRA with
// modules_to_save, merging, savePretrained and gradient checkpointing.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, loadSafetensorsSync, LoraConfig, memory, noGrad, PeftModel, scope, tensor, Tensor } from '../lib';
import { CausalLM, LlamaConfig, numParameters, readConfig } from '../lib/models';
import { settleGarbage } from './helpers/gc';
import { expectCheckpointingMatchesPlain } from './helpers/train';
import { maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

const FIX = path.join(__dirname, 'fixtures');
// float32 through a few tiny layers: transformers' and our kernels differ in summation order only.
const TOL = 1e-4;

const FAMILIES: [string, string][] = [
  ['mistral', 'MistralForCausalLM'],
  ['qwen2', 'Qwen2ForCausalLM'],
  ['qwen3', 'Qwen3ForCausalLM'],
];

const logitsOf = (m: { forward(i: { inputIds: Tensor; attentionMask?: Tensor }): { logits: Tensor } }, inputIds: Tensor, attentionMask?: Tensor) =>
  noGrad(() => m.forward({ inputIds, attentionMask }).logits);

describe.each(FAMILIES)('%s', (family, className) => {
  const dir = path.join(FIX, family);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
  let exp: Record<string, Tensor>;
  let model: CausalLM;
  beforeAll(async () => {
    exp = loadSafetensorsSync(path.join(dir, 'expect.safetensors'));
    model = await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model'));
  });
  afterAll(() => {
    model.dispose();
    Object.values(exp).forEach((t) => t.dispose());
  });

  test('logits equal transformers (1e-4), padded too; the tree prints as PyTorch; counts as num_parameters()', () => {
    expect(model.reprName()).toBe(className);
    expect(model.toString()).toBe(meta.repr);
    expect(numParameters(model)).toBe(meta.num_parameters);
    scope(() => {
      expect(maxAbsDiff(logitsOf(model, exp.input_ids), exp.logits)).toBeLessThan(TOL);
      // Padding positions (row 1's first three) are left out: their outputs are ignored, and transformers'
      // kernels and ours give them different values.
      const diff = logitsOf(model, exp.input_ids, exp.attention_mask).sub(exp.padded_logits).abs().amax(-1);
      expect(diff.mul(exp.attention_mask).max().item()).toBeLessThan(TOL);
    });
  });

  test.each(['model-sharded', 'model-bin'])('loads from %s with the same logits', async (sub) => {
    const m = await AutoModelForCausalLM.fromPretrained(path.join(dir, sub));
    scope(() => expect(maxAbsDiff(logitsOf(m, exp.input_ids), exp.logits)).toBeLessThan(TOL));
    m.dispose();
  });

  test("greedy generate() with the KV cache gives transformers' ids (past the sliding window)", () => {
    scope(() => {
      const ids = model.generate(exp.prompt, { maxNewTokens: exp.generated.shape[1] - exp.prompt.shape[1] });
      expect(ids.tolist()).toEqual(exp.generated.tolist());
      // Without the cache every step recomputes all positions; a dynamic rope then rotates the earlier keys
      // with the grown base too, so only the other rope types must give the same ids.
      if (model.config.modelType !== 'mistral' || (model.config as LlamaConfig).rope.ropeType !== 'dynamic') {
        const uncached = model.generate(exp.prompt, { maxNewTokens: exp.generated.shape[1] - exp.prompt.shape[1], useCache: false });
        expect(uncached.tolist()).toEqual(exp.generated.tolist());
      }
    });
  });

  test("a left-padded batch: generate() with the attention mask gives transformers' ids", async () => {
    const fresh = await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model')); // as the fixture: no grown rope state
    const n = exp.batch_generated.shape[1] - exp.batch_prompt.shape[1];
    scope(() => expect(fresh.generate(exp.batch_prompt, { attentionMask: exp.batch_mask, maxNewTokens: n }).tolist()).toEqual(exp.batch_generated.tolist()));
    fresh.dispose();
  });

  test("fromConfig on 'meta' allocates nothing and counts the same parameters", () => {
    const before = memory().bytes;
    const m = AutoModelForCausalLM.fromConfig(readConfig(path.join(dir, 'model')), { device: 'meta' });
    expect(m.reprName()).toBe(className);
    expect(numParameters(m)).toBe(meta.num_parameters);
    expect(memory().bytes).toBe(before);
    m.dispose();
  });

  test("PEFT's default target modules for the model_type; the adapter's logits from safetensors and bin, merged, and generate()", async () => {
    const fresh = getPeftModel(await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model')), new LoraConfig({ r: 4, loraAlpha: 8 }));
    expect([...(fresh.peftConfig.get('default')!.targetModules as unknown as Iterable<string>)].sort()).toEqual(meta.adapter_targets);
    expect(fresh.getNbTrainableParameters()).toEqual(meta.adapter_trainable);
    fresh.dispose();
    for (const sub of ['', 'bin']) {
      const base = await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model'));
      const peft = await PeftModel.fromPretrained(base, path.join(dir, 'adapter', sub));
      expect(peft.toString()).toBe(meta.peft_repr);
      scope(() => expect(maxAbsDiff(logitsOf(peft as never, exp.input_ids), exp.adapter_logits)).toBeLessThan(TOL));
      const merged = peft.mergeAndUnload() as CausalLM;
      scope(() => expect(maxAbsDiff(logitsOf(merged, exp.input_ids), exp.merged_logits)).toBeLessThan(TOL));
      merged.dispose();
    }
    // generate() on a model of its own, as the fixture did (a dynamic rope keeps what generate() grew it to)
    const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model')), path.join(dir, 'adapter'));
    const n = exp.peft_generated.shape[1] - exp.prompt.shape[1];
    scope(() => expect((peft.getBaseModel() as unknown as CausalLM).generate(exp.prompt, { maxNewTokens: n }).tolist()).toEqual(exp.peft_generated.tolist()));
    peft.dispose();
  });

  test('DoRA on all linear layers with modules_to_save: logits, trainable counts, merged', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model'));
    const peft = await PeftModel.fromPretrained(base, path.join(dir, 'dora'), { isTrainable: true });
    expect(peft.getNbTrainableParameters()).toEqual(meta.dora_trainable);
    peft.eval();
    scope(() => expect(maxAbsDiff(logitsOf(peft as never, exp.input_ids), exp.dora_logits)).toBeLessThan(TOL));
    const merged = peft.mergeAndUnload() as CausalLM;
    scope(() => expect(maxAbsDiff(logitsOf(merged, exp.input_ids), exp.dora_merged_logits)).toBeLessThan(TOL));
    merged.dispose();
    const all = getPeftModel(await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model')), new LoraConfig({ r: 16, targetModules: 'all-linear' }));
    expect(all.getNbTrainableParameters()).toEqual(meta.all_linear_r16_trainable);
    all.dispose();
  });

  test('savePretrained writes the config transformers wrote and weights that load back to the same logits', async () => {
    const out = path.join(tmpDir(`families-${family}`), 'saved');
    await model.savePretrained(out);
    const mine = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    const theirs = JSON.parse(fs.readFileSync(path.join(dir, 'model', 'config.json'), 'utf8'));
    delete theirs.transformers_version;
    delete mine.transformers_version;
    expect(mine).toEqual(theirs);
    const again = await AutoModelForCausalLM.fromPretrained(out);
    // (the shared model's dynamic rope may have grown in generate(): the fresh load is compared to transformers)
    scope(() => expect(maxAbsDiff(logitsOf(again, exp.input_ids), exp.logits)).toBeLessThan(TOL));
    again.dispose();
  });

  test('gradient checkpointing gives the gradients of a plain backward (LoRA on every linear layer)', async () => {
    const peft = getPeftModel(
      await AutoModelForCausalLM.fromPretrained(path.join(dir, 'model')),
      new LoraConfig({ r: 4, targetModules: 'all-linear', initLoraWeights: false }),
    );
    expectCheckpointingMatchesPlain(peft, { inputIds: exp.input_ids, attentionMask: exp.attention_mask, labels: exp.input_ids });
    peft.dispose();
  });
});

test('forward and generate() of a sliding-window model free what they make', async () => {
  const m = await AutoModelForCausalLM.fromPretrained(path.join(FIX, 'qwen2', 'model'));
  const ids = tensor([[3, 9, 27, 81, 5, 15, 45, 7, 21, 63, 1]], { dtype: 'int64' });
  const run = () => scope(() => void m.generate(ids, { maxNewTokens: 6 }));
  run();
  await settleGarbage();
  const before = memory().tensors;
  for (let i = 0; i < 3; i++) run();
  await settleGarbage();
  expect(memory().tensors).toBe(before);
  ids.dispose();
  m.dispose();
});

test('config errors name the key: a zero window, layer_types of the wrong length or kind', () => {
  const raw = readConfig(path.join(FIX, 'qwen2', 'model'));
  expect(() => AutoModelForCausalLM.fromConfig({ ...raw, sliding_window: 0 }, { device: 'meta' })).toThrow(/'sliding_window' must be a positive integer/);
  expect(() => AutoModelForCausalLM.fromConfig({ ...raw, layer_types: ['full_attention'] }, { device: 'meta' })).toThrow(
    /'layer_types' must list 'full_attention' or 'sliding_attention' for each of the 4 layers/,
  );
  expect(() => AutoModelForCausalLM.fromConfig({ ...raw, use_sliding_window: false, layer_types: ['sliding_attention', 'full_attention', 'full_attention', 'full_attention'] }, { device: 'meta' })).toThrow(
    /'sliding_attention' layers but there is no sliding_window/,
  );
  const mistral = readConfig(path.join(FIX, 'mistral', 'model'));
  expect(() => AutoModelForCausalLM.fromConfig({ ...mistral, sliding_window: 0 }, { device: 'meta' })).toThrow(/'sliding_window' must be a positive integer/);
  // null: full attention on every layer (Mistral 7B v0.2/v0.3)
  const full = AutoModelForCausalLM.fromConfig({ ...mistral, sliding_window: null }, { device: 'meta' });
  expect((full.config as LlamaConfig).layerTypes!.every((t) => t === 'full_attention')).toBe(true);
  full.dispose();
});
