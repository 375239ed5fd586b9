// LoRA+ against PEFT's create_loraplus_optimizer (fixture llama-loraplus, made by its make_fixture.py with
// PEFT 0.21): the same four parameter groups (names, learning rates, weight decay) on a Llama adapter with
// an embedding target and on a GPT-2 one that fills every group; and 5 Trainer steps with
// loraplusLrRatio 16, loraplusLrEmbedding 5e-4, weight decay 0.01 give PEFT's losses and adapter. Then the
// Trainer's `optimizers` (a user's optimizer and scheduler, as transformers' optimizers=(opt, sched)):
// used as given, saved in checkpoints and resumed exactly; and the errors of wrong combinations.
import * as fs from 'fs';
import * as path from 'path';
import { AdamW, AutoModelForCausalLM, createLoraplusOptimizer, getPeftModel, loadSafetensorsSync, LoraConfig, PeftModel, scope, SGD, Tensor, Trainer } from '../lib';
import { LambdaLR, Optimizer } from '../lib/optim';
import { loraplusParameterGroups, LORAPLUS_GROUP_NAMES } from '../lib/peft';
import { TrainingArgumentsOptions } from '../lib/train';
import { FIXTURES, maxFileDiff, randomExamples, tinyLoraModel, TINY_LLAMA, tmpDir } from './helpers/train';
import { fixtureExamples, fixtureLoopArgs } from './helpers/train-parity';

const FIX = path.join(FIXTURES, 'llama-loraplus');
const meta = JSON.parse(fs.readFileSync(path.join(FIX, 'meta.json'), 'utf8'));

const loadInit = async () => PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(TINY_LLAMA), path.join(FIX, 'init'), { isTrainable: true });

/** The fixture's settings: 5 steps over the whole batch of 4, constant lr, no clipping (as helpers/train-parity). */
function parityArgs(outputDir: string, extra: Partial<TrainingArgumentsOptions> = {}): TrainingArgumentsOptions {
  return fixtureLoopArgs(outputDir, 4, { chunkedLoss: false, ...extra });
}

const lossesOf = (r: { logHistory: { loss?: number }[] }) => r.logHistory.filter((e) => e.loss !== undefined).map((e) => e.loss!);

test("Llama with an embedding target: PEFT's four groups, names, learning rates and weight decay", async () => {
  const model = await loadInit();
  const groups = loraplusParameterGroups(model);
  const want = meta.param_groups as { name: string; lr: number; weight_decay: number; params: string[] }[];
  expect(want.map((g) => g.name)).toEqual([...LORAPLUS_GROUP_NAMES]);
  for (const g of want) expect([g.name, groups[g.name as keyof typeof groups].map(([n]) => n)]).toEqual([g.name, g.params]);
  const opt = createLoraplusOptimizer(model, AdamW, { lr: 1e-3, loraplusLrRatio: 16, loraplusLrEmbedding: 5e-4, loraplusWeightDecay: 0.01 }, { eps: 1e-8 });
  expect(opt).toBeInstanceOf(AdamW);
  expect(opt.paramGroups.map((g) => [g.params.length, g.lr, g.weightDecay, g.eps])).toEqual(want.map((g) => [g.params.length, g.lr, g.weight_decay, 1e-8]));
  opt.dispose();
  model.dispose();
});

test("GPT-2 (Conv1D, a trained bias, a LayerNorm in modules_to_save): PEFT's groups, biases and LayerNorm without decay", async () => {
  const base = await AutoModelForCausalLM.fromPretrained(path.join(FIXTURES, 'tiny-gpt2'));
  const model = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: ['c_attn', 'wte'], bias: 'lora_only', modulesToSave: ['ln_f'], fanInFanOut: true }));
  const groups = loraplusParameterGroups(model);
  const want = meta.gpt2_groups as Record<string, string[]>;
  for (const name of LORAPLUS_GROUP_NAMES) expect([name, groups[name].map(([n]) => n)]).toEqual([name, want[name]]);
  expect(want.groupB_no_decay.length).toBeGreaterThan(0);
  const opt = createLoraplusOptimizer(model, SGD, { lr: 0.1, loraplusLrRatio: 4, loraplusWeightDecay: 0.5 }, { momentum: 0.9 });
  expect(opt.paramGroups.map((g) => [g.lr, g.weightDecay, g.momentum])).toEqual([
    [0.1, 0.5, 0.9],
    [1e-6, 0.5, 0.9], // PEFT's default embedding rate
    [0.4, 0.5, 0.9],
    [0.4, 0, 0.9],
  ]);
  model.dispose();
});

/**
 * Per tensor of the adapter: ||ours - PEFT's|| / ||PEFT's - init|| (Frobenius, float64): the difference
 * relative to how far training moved the tensor. float32 sums in another order (OpenBLAS vs PEFT's MKL)
 * bound it by about 4·K·2^-24 = 6.7e-4 for tiny-llama (K ≈ 2.8e3 the chain of sums from a weight to the
 * loss and back; train-parity.test.ts derives it); we hold it to 1e-4. Measured on the 2-core CPU with
 * libtorch 1.13.1 + OpenBLAS: 4e-6 at most (one entry of layer 2's q_proj lora_B is 4.3e-6 off of a 0.08
 * move; every other entry within 6e-7), the five losses equal to PEFT's.
 */
function relativeAdapterDiffs(file: string): [string, number][] {
  const ours = loadSafetensorsSync(file);
  const peft = loadSafetensorsSync(path.join(FIX, 'final', 'adapter_model.safetensors'));
  const init = loadSafetensorsSync(path.join(FIX, 'init', 'adapter_model.safetensors'));
  const norm = (t: Tensor) => t.double().pow(2).sum().sqrt().item() as number;
  try {
    expect(Object.keys(ours).sort()).toEqual(Object.keys(peft).sort());
    return Object.keys(peft)
      .sort()
      .map((k) =>
        scope(() => {
          const moved = norm(peft[k].sub(init[k]));
          const diff = norm(ours[k].sub(peft[k]));
          return [k, moved === 0 ? diff : diff / moved] as [string, number];
        }),
      );
  } finally {
    for (const t of [...Object.values(ours), ...Object.values(peft), ...Object.values(init)]) t.dispose();
  }
}

test("Trainer with loraplusLrRatio 16: PEFT's five losses within 1e-5, its adapter within 1e-4 of each tensor's move (float32)", async () => {
  const model = await loadInit();
  const out = tmpDir('loraplus');
  const trainer = new Trainer({ model, trainDataset: fixtureExamples(FIX), args: parityArgs(out, { loraplusLrRatio: 16, loraplusLrEmbedding: 5e-4 }) });
  expect(trainer.optimizer.paramGroups.map((g) => g.lr)).toEqual([1e-3, 5e-4, 16e-3, 16e-3]);
  const r = await trainer.train();
  trainer.optimizer.dispose();
  model.dispose();
  const want: number[] = meta.losses;
  const losses = lossesOf(r);
  expect(losses).toHaveLength(5);
  losses.forEach((l, i) => expect(Math.abs(l - want[i])).toBeLessThan(1e-5));
  // learning_rate logs group 0's (the A matrices'), as transformers' get_last_lr()[0].
  expect(r.logHistory.filter((e) => e.loss !== undefined).map((e) => e.learning_rate)).toEqual([1e-3, 1e-3, 1e-3, 1e-3, 1e-3]);
  const diffs = relativeAdapterDiffs(path.join(out, 'adapter_model.safetensors'));
  expect(diffs.length).toBe(22); // lm_head's copy, the embedding's base (saved, unchanged), A and B of 9 Linear and 1 Embedding
  for (const [k, d] of diffs) expect([k, d < 1e-4]).toEqual([k, true]);
  // Without LoRA+ (every rate 1e-3) the same run ends elsewhere: the fixture does tell the two apart.
  const plain = await loadInit();
  const outPlain = tmpDir('loraplus-off');
  const t2 = new Trainer({ model: plain, trainDataset: fixtureExamples(FIX), args: parityArgs(outPlain) });
  await t2.train();
  t2.optimizer.dispose();
  plain.dispose();
  expect(maxFileDiff(path.join(outPlain, 'adapter_model.safetensors'), path.join(FIX, 'final', 'adapter_model.safetensors'))).toBeGreaterThan(1e-3);
});

test('optimizers: [createLoraplusOptimizer(...), null] trains as loraplusLrRatio does, byte for byte, with the args schedule', async () => {
  const runs: Buffer[] = [];
  for (const own of [false, true]) {
    const model = await loadInit();
    const out = tmpDir('loraplus-own');
    const args = parityArgs(out, { lrSchedulerType: 'linear', warmupSteps: 2, ...(own ? {} : { loraplusLrRatio: 16, loraplusLrEmbedding: 5e-4 }) });
    const optimizer = own
      ? createLoraplusOptimizer(model, AdamW, { lr: 1e-3, loraplusLrRatio: 16, loraplusLrEmbedding: 5e-4, loraplusWeightDecay: 0.01 }, { betas: [0.9, 0.999], eps: 1e-8 })
      : null;
    const trainer = new Trainer({ model, trainDataset: fixtureExamples(FIX), args, optimizers: [optimizer, null] });
    if (optimizer) expect(trainer.optimizer).toBe(optimizer);
    const r = await trainer.train();
    // The schedule scales every group: warmup 0, 1/2, then linear decay, each group from its own rate.
    expect(lossesOf(r)).toHaveLength(5);
    expect(r.logHistory.filter((e) => e.loss !== undefined).map((e) => e.learning_rate)).toEqual([0, 5e-4, 1e-3, 2e-3 / 3, 1e-3 / 3]);
    expect(trainer.optimizer.paramGroups.map((g) => g.initialLr)).toEqual([1e-3, 5e-4, 16e-3, 16e-3]);
    expect(trainer.optimizer.paramGroups.map((g) => g.lr)).toEqual([0, 0, 0, 0]);
    runs.push(fs.readFileSync(path.join(out, 'adapter_model.safetensors')));
    trainer.optimizer.dispose();
    model.dispose();
  }
  expect(runs[1].equals(runs[0])).toBe(true);
});

/** SGD with momentum and a schedule of our own, stopped after step 3 and resumed from checkpoint-2. */
async function ownOptimizerRun(outputDir: string, opts: { stopAt?: number; resume?: boolean; lr?: number }) {
  const model = await tinyLoraModel(opts.resume ? 99 : 0); // a resumed run must get its weights from the checkpoint
  const params = [...model.parameters()].filter((p) => p.requiresGrad);
  const optimizer = new SGD(params, { lr: opts.lr ?? 0.05, momentum: 0.9 });
  const scheduler = new LambdaLR(optimizer, (step) => 0.5 ** step);
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(12, 3),
    args: { outputDir, maxSteps: 5, perDeviceTrainBatchSize: 4, learningRate: 1, loggingSteps: 1, saveSteps: 2, seed: 3, report: 'none' },
    optimizers: [optimizer, scheduler],
    callbacks: { onStepEnd: ({ globalStep }) => globalStep === opts.stopAt },
  });
  expect(trainer.optimizer).toBe(optimizer);
  expect(trainer.scheduler).toBe(scheduler);
  const r = await trainer.train({ resumeFromCheckpoint: opts.resume });
  optimizer.dispose();
  model.dispose();
  return r;
}

test("optimizers: [SGD, LambdaLR] of the user's: its rates are logged, its momentum is checkpointed, a resumed run ends byte for byte as an unbroken one", async () => {
  const whole = tmpDir('own-whole');
  const broken = tmpDir('own-broken');
  const a = await ownOptimizerRun(whole, {});
  // The user's schedule (0.05 halved each step), not learningRate 1 nor the args' linear schedule.
  expect(a.logHistory.filter((e) => e.loss !== undefined).map((e) => e.learning_rate)).toEqual([0.05, 0.025, 0.0125, 0.00625, 0.003125]);
  const saved = JSON.parse(fs.readFileSync(path.join(whole, 'checkpoint-2', 'optimizer.json'), 'utf8'));
  expect(saved.paramGroups[0]).toMatchObject({ lr: 0.0125, momentum: 0.9, initialLr: 0.05 });
  expect(fs.readdirSync(path.join(whole, 'checkpoint-2'))).toContain('optimizer.safetensors');
  expect(fs.statSync(path.join(whole, 'checkpoint-2', 'optimizer.safetensors')).size).toBeGreaterThan(1000); // momentum buffers

  await ownOptimizerRun(broken, { stopAt: 3 });
  const c = await ownOptimizerRun(broken, { resume: true });
  expect(c.resumedFrom).toBe(path.join(broken, 'checkpoint-2'));
  expect(lossesOf(c)).toEqual(lossesOf(a));
  const bytes = (...p: string[]) => fs.readFileSync(path.join(...p));
  expect(bytes(broken, 'adapter_model.safetensors').equals(bytes(whole, 'adapter_model.safetensors'))).toBe(true);
  for (const f of ['optimizer.safetensors', 'optimizer.json', 'scheduler.json']) expect([f, bytes(broken, 'checkpoint-4', f).equals(bytes(whole, 'checkpoint-4', f))]).toEqual([f, true]);

  // lr 0: the user's optimizer does the stepping (the Trainer's own AdamW would move the weights).
  const still = tmpDir('own-zero');
  await ownOptimizerRun(still, { lr: 0 });
  const model = await tinyLoraModel(0);
  await model.savePretrained(path.join(still, 'start'));
  model.dispose();
  expect(maxFileDiff(path.join(still, 'adapter_model.safetensors'), path.join(still, 'start', 'adapter_model.safetensors'))).toBe(0);
});

test('a LoRA+ run resumes exactly; resuming it without loraplusLrRatio says what does not fit', async () => {
  const data = randomExamples(12, 5);
  const run = async (out: string, extra: Partial<TrainingArgumentsOptions>, stopAt?: number, resume?: string | boolean) => {
    const model = await tinyLoraModel(resume ? 42 : 0, { targetModules: ['q_proj', 'v_proj', 'embed_tokens'] });
    const trainer = new Trainer({
      model,
      trainDataset: data,
      args: { outputDir: out, maxSteps: 4, perDeviceTrainBatchSize: 4, learningRate: 2e-3, lrSchedulerType: 'cosine', loggingSteps: 1, saveSteps: 2, report: 'none', ...extra },
      callbacks: { onStepEnd: ({ globalStep }) => globalStep === stopAt },
    });
    try {
      return await trainer.train({ resumeFromCheckpoint: resume });
    } finally {
      trainer.optimizer.dispose();
      model.dispose();
    }
  };
  const lp = { loraplusLrRatio: 8, loraplusLrEmbedding: 1e-3 };
  const whole = tmpDir('lp-whole');
  const broken = tmpDir('lp-broken');
  const a = await run(whole, lp);
  const groups = JSON.parse(fs.readFileSync(path.join(whole, 'checkpoint-2', 'optimizer.json'), 'utf8')).paramGroups;
  expect(groups.map((g: { initialLr: number; params: number[] }) => [g.initialLr, g.params.length])).toEqual([
    [2e-3, 6],
    [1e-3, 2],
    [16e-3, 6],
    [16e-3, 0],
  ]);
  await run(broken, lp, 3);
  const c = await run(broken, lp, undefined, true);
  expect(lossesOf(c)).toEqual(lossesOf(a));
  expect(fs.readFileSync(path.join(broken, 'adapter_model.safetensors')).equals(fs.readFileSync(path.join(whole, 'adapter_model.safetensors')))).toBe(true);
  await expect(run(broken, {}, undefined, path.join(broken, 'checkpoint-2'))).rejects.toThrow(
    /checkpoint '.*checkpoint-2' does not fit this run's optimizer: AdamW.loadStateDict: the state dict has 4 parameter groups, the optimizer 1; resume with the optimizer the run was made with \(the same LoRA\+ loraplusLrRatio, the CLI's --loraplus-lr-ratio/,
  );
});

test('wrong LoRA+ settings and optimizers are errors that say what to do', async () => {
  const model = await tinyLoraModel(0);
  const other = await tinyLoraModel(1);
  const data = randomExamples(4, 1);
  const out = tmpDir('lp-errors');
  const make = (args: Partial<TrainingArgumentsOptions>, optimizers?: unknown) =>
    new Trainer({ model, trainDataset: data, args: { outputDir: out, report: 'none', ...args }, optimizers: optimizers as [Optimizer, LambdaLR] });
  expect(() => make({ loraplusLrEmbedding: 1e-4 })).toThrow('TrainingArguments: loraplusLrEmbedding is the embedding rate of LoRA+, which needs loraplusLrRatio too');
  expect(() => make({ loraplusLrRatio: 0 })).toThrow('TrainingArguments: loraplusLrRatio must be a positive number, got 0');
  expect(() => make({ loraplusLrRatio: Infinity })).toThrow('loraplusLrRatio must be a positive number');
  expect(() => make({ loraplusLrRatio: 16, loraplusLrEmbedding: -1 })).toThrow('loraplusLrEmbedding must be a non-negative number, got -1');
  const mine = new AdamW([...model.parameters()].filter((p) => p.requiresGrad));
  const theirs = new AdamW([...other.parameters()].filter((p) => p.requiresGrad));
  expect(() => make({ loraplusLrRatio: 16 }, [mine, null])).toThrow("loraplusLrRatio makes the Trainer's LoRA+ optimizer, and `optimizers` gives one");
  expect(() => make({}, [theirs, null])).toThrow('optimizers[0] holds 18 parameter(s) that are not trainable parameters of the model');
  expect(() => make({}, [mine, new LambdaLR(theirs, () => 1)])).toThrow('the scheduler was made for another optimizer than optimizers[0]');
  expect(() => make({}, [null, new LambdaLR(mine, () => 1)])).toThrow('a scheduler was given without its optimizer');
  expect(() => make({}, [mine])).toThrow('`optimizers` must be [optimizer, scheduler]');
  expect(() => make({}, [{ step() {} }, null])).toThrow('optimizers[0] must be an Optimizer');
  // A model without LoRA: nothing for LoRA+ to set apart.
  const plain = await AutoModelForCausalLM.fromPretrained(TINY_LLAMA);
  expect(() => new Trainer({ model: plain, trainDataset: data, args: { outputDir: out, loraplusLrRatio: 4, report: 'none' } })).toThrow(
    /^Trainer: loraplusLrRatio: LlamaForCausalLM has no trainable LoRA B or embedding weights/,
  );
  expect(() => createLoraplusOptimizer(model, AdamW, { lr: 1e-3, loraplusLrRatio: -2 })).toThrow('createLoraplusOptimizer: loraplusLrRatio must be a positive finite number, got -2');
  expect(() => createLoraplusOptimizer(model, AdamW, { lr: 1e-3, loraplusLrRatio: 2, betas: [0.9, 0.99] } as never)).toThrow("unknown option 'betas'");
  for (const o of [mine, theirs]) o.dispose();
  for (const m of [model, other, plain]) m.dispose();
});
