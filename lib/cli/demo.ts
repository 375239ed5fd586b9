// torch-lora demo: the whole job in about a minute on two CPU cores. The package ships a tiny Llama it
// pretrained itself on a synthetic language (assets/demo-base, see its README.md) and a task that model
// cannot do (assets/demo-data: `shift <word>` -> each letter moved one on). The demo asks the base the
// evaluation prompts, fine-tunes a LoRA adapter on the task with the Trainer (progress bar, log, loss
// curve), asks again, and prints both answers side by side. The adapter is PEFT's format.
import * as fs from 'fs';
import * as path from 'path';
import { getNumThreads, manualSeed } from '../autograd';
import { loadDataset, readRecords } from '../data';
import { greedyAnswers } from '../demo/answers';
import { numParameters } from '../models';
import { getPeftModel, LoraConfig } from '../peft';
import { Trainer, TrainingArgumentsOptions } from '../train';
import { CliIO, formatCount, packageRoot, requireDir, requireFile, say } from './io';
import { checkDevice, loadBaseModel, loadTokenizer } from './load-model';
import type { Command } from './main';
import { CommandSpec, Parsed, UsageError } from './options';
import { applyModelThreads, applyThreads, threadsOption } from './threads';

const spec: CommandSpec = {
  name: 'demo',
  usage: '[--output DIR] [options]',
  summary: 'Teaches the embedded tiny Llama a new task with LoRA in about a minute, and shows its answers before and after.',
  options: [
    { name: 'output', short: 'o', type: 'string', placeholder: 'DIR', default: 'torch-lora-demo', description: 'where the adapter, log and loss curve go' },
    { name: 'steps', type: 'integer', placeholder: 'N', default: 120, description: 'optimizer steps' },
    { name: 'batch-size', type: 'integer', placeholder: 'N', default: 16, description: 'examples per step' },
    { name: 'lr', type: 'number', placeholder: 'X', default: 5e-3, description: 'peak learning rate' },
    { name: 'r', type: 'integer', placeholder: 'N', default: 8, description: 'LoRA rank' },
    { name: 'seed', type: 'integer', placeholder: 'N', default: 0, description: 'random seed' },
    { name: 'device', type: 'string', placeholder: 'DEV', default: 'cpu', description: 'cpu, cuda or cuda:N' },
    threadsOption(),
    { name: 'report', type: 'string', placeholder: 'MODE', default: 'auto', choices: ['auto', 'progress', 'plain', 'none'], description: 'progress output (auto: a bar on a terminal)' },
    { name: 'base', type: 'string', placeholder: 'DIR', description: 'another base model folder [default: the embedded assets/demo-base]' },
    { name: 'data', type: 'string', placeholder: 'DIR', description: 'another folder with finetune.jsonl and eval.jsonl [default: assets/demo-data]' },
  ],
  details: 'Then:\n  torch-lora inspect torch-lora-demo\n  torch-lora generate --model <the base printed above> --adapter torch-lora-demo --prompt "shift lora ->"',
};

async function run(parsed: Parsed, io: CliIO): Promise<void> {
  const v = parsed.values;
  const t0 = Date.now();
  applyThreads(v.threads);
  const steps = v.steps as number;
  const batchSize = v.batchSize as number;
  if (steps < 1) throw new UsageError(`--steps must be at least 1, got ${steps}`);
  if (batchSize < 1) throw new UsageError(`--batch-size must be at least 1, got ${batchSize}`);
  const device = checkDevice(v.device as string);
  const root = packageRoot();
  const baseDir = requireDir((v.base as string | undefined) ?? path.join(root, 'assets', 'demo-base'), 'demo base model folder', ['config.json', 'model.safetensors', 'tokenizer.json']);
  const dataDir = requireDir((v.data as string | undefined) ?? path.join(root, 'assets', 'demo-data'), 'demo data folder');
  const trainFile = requireFile(path.join(dataDir, 'finetune.jsonl'), 'demo training data');
  const evalFile = requireFile(path.join(dataDir, 'eval.jsonl'), 'demo evaluation prompts');
  const out = v.output as string;

  const tokenizer = await loadTokenizer(baseDir);
  const base = await loadBaseModel(baseDir, { device, dtype: 'float32' });
  applyModelThreads(v.threads, numParameters(base), device);
  const evals = readRecords(evalFile).map((r) => {
    if (r.kind !== 'prompt_completion') throw new Error(`${r.source.file}:${r.source.line}: the demo's evaluation records are {"prompt", "completion"}`);
    return { prompt: r.prompt, want: r.completion };
  });
  const train = loadDataset(trainFile, tokenizer);

  say(io, 'torch-lora demo: LoRA fine-tuning of a tiny Llama, start to finish');
  say(io);
  say(io, `base model   ${baseDir}`);
  say(io, `             LlamaForCausalLM, ${formatCount(numParameters(base))} parameters, pretrained by this package on a synthetic`);
  say(io, '             language: "12+7 -> 19", "reverse abc -> cba", "next k -> l", "copy kqz -> kqz", ...');
  say(io, 'new task     "shift <word> -> <word>": every letter moved one on (cat -> dbu); the base has never seen it');

  const before = greedyAnswers(base, tokenizer, evals.map((e) => e.prompt));

  manualSeed(v.seed as number);
  const model = getPeftModel(
    base,
    new LoraConfig({
      r: v.r as number,
      loraAlpha: 2 * (v.r as number),
      loraDropout: 0.05,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      taskType: 'CAUSAL_LM',
    }),
  );
  const [trainable, all] = model.getNbTrainableParameters();
  say(io, `LoRA         r ${v.r}, alpha ${2 * (v.r as number)} on q,k,v,o,gate,up,down: ${formatCount(trainable)} trainable parameters (${((100 * trainable) / all).toFixed(2)}%)`);
  say(io, `training     ${formatCount(train.length)} examples (loss on the answers only), ${steps} steps of ${batchSize}, AdamW lr ${v.lr}, cosine; ${device}${device === 'cpu' ? `, ${getNumThreads()} thread${getNumThreads() === 1 ? '' : 's'}` : ''}`);
  say(io);

  const args: TrainingArgumentsOptions = {
    outputDir: out,
    maxSteps: steps,
    perDeviceTrainBatchSize: batchSize,
    learningRate: v.lr as number,
    lrSchedulerType: 'cosine',
    warmupRatio: 0.05,
    weightDecay: 0.01,
    maxGradNorm: 1,
    loggingSteps: Math.max(1, Math.round(steps / 25)),
    seed: v.seed as number,
    report: v.report as TrainingArgumentsOptions['report'],
    device,
  };
  const trainer = new Trainer({ model, trainDataset: train, tokenizer, args, stream: io.out });
  const result = await trainer.train();

  const after = greedyAnswers(base, tokenizer, evals.map((e) => e.prompt));
  const show = (s: string) => JSON.stringify(s.trim()).slice(1, -1) || '(nothing)';
  const rows = [['prompt', 'before', 'after', 'right answer']];
  evals.forEach((e, i) => rows.push([e.prompt, show(before[i]), show(after[i]) + (after[i] === e.want ? ' ✓' : ' ✗'), show(e.want)]));
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => [...r[c]].length)));
  say(io);
  say(io, 'The same prompts, before and after (greedy decoding):');
  for (const r of rows) say(io, '  ' + r.map((cell, c) => cell + ' '.repeat(widths[c] - [...cell].length)).join('   ').trimEnd());
  const right = (answers: string[]) => answers.filter((a, i) => a === evals[i].want).length;
  say(io);
  const losses = result.logHistory.filter((e) => e.loss !== undefined);
  if (losses.length > 0)
    say(io, `loss         ${losses[0].loss!.toFixed(3)} (step ${losses[0].step}) -> ${losses[losses.length - 1].loss!.toFixed(3)} (step ${losses[losses.length - 1].step})`);
  say(io, `right        ${right(before)}/${evals.length} before, ${right(after)}/${evals.length} after`);
  const files = ['adapter_config.json', 'adapter_model.safetensors', 'trainer_log.jsonl', 'training_loss.svg'].filter((f) => fs.existsSync(path.join(out, f)));
  say(io, `wrote        ${out}/: ${files.join(', ')}`);
  say(io, `             (a PEFT adapter: PeftModel.from_pretrained(base, "${out}") loads it in Python)`);
  say(io, `time         ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  say(io);
  say(io, `next         torch-lora inspect ${out}`);
  say(io, `             torch-lora generate --model ${baseDir} --adapter ${out} --prompt "shift lora ->"`);
  model.dispose();
}

export const command: Command = { spec, run };
