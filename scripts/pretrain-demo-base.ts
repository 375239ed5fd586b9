// Pretrains the package's embedded demo model from scratch with this library alone, and writes it in
// Hugging Face's layout:
//   assets/demo-base/   config.json, generation_config.json, model.safetensors, tokenizer.json,
//                       tokenizer_config.json, README.md (how it was made, with the loss log)
//   assets/demo-data/   finetune.jsonl (the task the demo teaches with LoRA) and eval.jsonl
// The model is a tiny Llama (AutoModelForCausalLM.fromConfig) trained on sentences of the synthetic
// language (lib/demo/synthetic-language.ts) with AdamW, a cosine schedule with warmup and gradient
// clipping; each batch is one sentence per row, padded on the right, as prompt-completion records: the
// loss is on the answers (and </s>), not on the random letters of the questions, which no model can
// predict and whose noise slows Adam down a lot at this size.
// Same seed, same files (on the same libtorch and thread count).
//
//   npx tsc -p tsconfig.json && node dist/scripts/pretrain-demo-base.js [--steps N] [--out DIR] ...
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as torch from '../lib';
import { AutoModelForCausalLM, AdamW, getScheduler, clipGradNorm } from '../lib';
import { collate, datasetFromRecords, Tokenizer } from '../lib/data';
import { numParameters } from '../lib/models';
import { greedyAnswers } from '../lib/demo/answers';
import { pythonJsonDumps } from '../lib/io/python-json';
import {
  BOS_ID,
  DEMO_MAX_LENGTH,
  demoTokenizerConfig,
  demoTokenizerJson,
  EOS_ID,
  jsonFileText,
  PAD_ID,
} from '../lib/demo/demo-tokenizer';
import {
  evalSamples,
  finetuneSamples,
  pretrainProbeSamples,
  Sample,
  SyntheticLanguage,
  toJsonl,
} from '../lib/demo/synthetic-language';

interface Options {
  out: string;
  dataOut: string;
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  seed: number;
  evalEvery: number;
  finetuneSize: number;
  threads: number;
}

const DEFAULTS: Options = {
  out: 'assets/demo-base',
  dataOut: 'assets/demo-data',
  steps: 4000,
  batchSize: 64,
  lr: 2e-3,
  warmup: 100,
  weightDecay: 0.01,
  seed: 0,
  evalEvery: 250,
  finetuneSize: 2000,
  threads: 2,
};

/** The model: a Llama of a few MB (config.json keys as transformers 5 writes a LlamaConfig). */
export const DEMO_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: BOS_ID,
  dtype: 'float32',
  eos_token_id: EOS_ID,
  head_dim: 32,
  hidden_act: 'silu',
  hidden_size: 128,
  initializer_range: 0.02,
  intermediate_size: 352,
  max_position_embeddings: DEMO_MAX_LENGTH,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 4,
  num_hidden_layers: 4,
  num_key_value_heads: 2,
  pad_token_id: PAD_ID,
  pretraining_tp: 1,
  rms_norm_eps: 1e-6,
  rope_parameters: { rope_theta: 10000.0, rope_type: 'default' },
  tie_word_embeddings: false,
  transformers_version: '5.17.0',
  use_cache: true,
  vocab_size: 128,
};

export const GENERATION_CONFIG = {
  _from_model_config: true,
  bos_token_id: BOS_ID,
  eos_token_id: EOS_ID,
  output_attentions: false,
  output_hidden_states: false,
  pad_token_id: PAD_ID,
  transformers_version: '5.17.0',
  use_cache: true,
};

function parseArgs(argv: string[]): Options {
  const o: Options = { ...DEFAULTS };
  const numeric = new Set(['steps', 'batchSize', 'lr', 'warmup', 'weightDecay', 'seed', 'evalEvery', 'finetuneSize', 'threads']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(
        'usage: node dist/scripts/pretrain-demo-base.js [--out DIR] [--data-out DIR] [--steps N] [--batch-size N] [--lr X]\n' +
          '       [--warmup N] [--weight-decay X] [--seed N] [--eval-every N] [--finetune-size N] [--threads N]\n' +
          `defaults: ${JSON.stringify(DEFAULTS)}`,
      );
      process.exit(0);
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}' (see --help)`);
    const key = a.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase()) as keyof Options;
    if (!(key in o)) throw new Error(`unknown option '${a}' (see --help)`);
    const v = argv[++i];
    if (v === undefined) throw new Error(`option '${a}' needs a value`);
    if (numeric.has(key)) {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`option '${a}' needs a number, got '${v}'`);
      (o as unknown as Record<string, number>)[key] = n;
    } else (o as unknown as Record<string, string>)[key] = v;
  }
  return o;
}

/** The BLAS library libtorch runs matrix products on, as this process mapped it (Linux), for the record. */
function blasLibrary(): string {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const lib = maps.split('\n').map((l) => l.split(/\s+/)[5] ?? '').find((f) => /lib(open)?blas[^/]*\.so/.test(f));
    return lib ? fs.realpathSync(lib).split('/').slice(-2).join('/') : 'unknown';
  } catch {
    return 'unknown';
  }
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The floats of config.json, which Python writes as 0.0, 1e-06, 10000.0. */
const CONFIG_FLOATS = ['attention_dropout', 'initializer_range', 'rms_norm_eps', 'rope_theta'];

/** config.json and generation_config.json as transformers writes them (json.dumps, indent 2, sorted keys). */
export function writeModelConfigs(dir: string): void {
  fs.writeFileSync(path.join(dir, 'config.json'), pythonJsonDumps(DEMO_CONFIG, CONFIG_FLOATS) + '\n');
  fs.writeFileSync(path.join(dir, 'generation_config.json'), pythonJsonDumps(GENERATION_CONFIG) + '\n');
}

/** Fraction of samples whose greedy answer is exactly the completion. */
function accuracy(model: torch.CausalLM, tok: Tokenizer, samples: Sample[]): { acc: number; answers: string[] } {
  const answers = greedyAnswers(model, tok, samples.map((s) => s.prompt));
  const right = answers.filter((a, i) => a === samples[i].completion).length;
  return { acc: right / samples.length, answers };
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  torch.setNumThreads(o.threads);
  torch.manualSeed(o.seed);
  const t0 = Date.now();

  const tok = new Tokenizer(demoTokenizerJson(), demoTokenizerConfig());
  const model = AutoModelForCausalLM.fromConfig(DEMO_CONFIG);
  model.train();
  const nParams = numParameters(model);
  console.log(`demo base: LlamaForCausalLM, ${nParams} parameters; ${o.steps} steps of ${o.batchSize} sentences`);

  const optimizer = new AdamW(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay, betas: [0.9, 0.98] });
  const scheduler = getScheduler('cosine', optimizer, { numWarmupSteps: o.warmup, numTrainingSteps: o.steps });

  // Held-out checks: fresh sentences of every task (another seed) and the fine-tuning task.
  const heldOut = new SyntheticLanguage(o.seed + 1000);
  const probe = Array.from({ length: 140 }, () => heldOut.pretrainSample());
  const evals = evalSamples();

  const lang = new SyntheticLanguage(o.seed);
  const log: string[] = [];
  const say = (line: string) => {
    console.log(line);
    log.push(line);
  };
  let tokens = 0;
  let lossSum = 0;
  let lossCount = 0;
  const tTrain = Date.now();
  for (let step = 1; step <= o.steps; step++) {
    const sentences = Array.from({ length: o.batchSize }, () => {
      const s = lang.pretrainSample();
      return { prompt: s.prompt, completion: s.completion };
    });
    const examples = datasetFromRecords(sentences, tok).toArray();
    const loss = torch.scope(() => {
      const batch = collate(examples, { padTokenId: tok.padTokenId });
      tokens += examples.reduce((n, e) => n + e.inputIds.length, 0);
      const out = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels });
      out.loss!.backward();
      clipGradNorm(model.parameters(), 1.0);
      optimizer.step();
      optimizer.zeroGrad();
      scheduler.step();
      return out.loss!.item() as number;
    });
    lossSum += loss;
    lossCount++;
    if (step % o.evalEvery === 0 || step === o.steps) {
      const { acc } = accuracy(model, tok, probe);
      const shift = accuracy(model, tok, evals).acc;
      const secs = (Date.now() - tTrain) / 1000;
      say(
        `step ${String(step).padStart(5)}  loss ${(lossSum / lossCount).toFixed(4)}  lr ${scheduler.getLastLr()[0].toExponential(2)}  ` +
          `held-out accuracy ${(acc * 100).toFixed(1)}%  shift ${(shift * 100).toFixed(0)}%  ` +
          `${Math.round(tokens / secs)} tok/s  ${secs.toFixed(0)} s`,
      );
      lossSum = 0;
      lossCount = 0;
    }
  }
  const trainSeconds = (Date.now() - tTrain) / 1000;
  model.eval();

  // What the base answers: the pretraining probes (it should be right) and the demo's prompts (it should not).
  const probes = pretrainProbeSamples();
  const probeAnswers = greedyAnswers(model, tok, probes.map((s) => s.prompt));
  const evalAnswers = greedyAnswers(model, tok, evals.map((s) => s.prompt));
  const table = (samples: Sample[], answers: string[]) =>
    samples.map((s, i) => `  ${s.prompt}${answers[i].padEnd(10)} ${answers[i] === s.completion ? 'right' : `wrong (want${s.completion})`}`);

  fs.mkdirSync(o.out, { recursive: true });
  fs.mkdirSync(o.dataOut, { recursive: true });
  writeModelConfigs(o.out);
  fs.writeFileSync(path.join(o.out, 'tokenizer.json'), jsonFileText(demoTokenizerJson()));
  fs.writeFileSync(path.join(o.out, 'tokenizer_config.json'), jsonFileText(demoTokenizerConfig()));
  torch.saveSafetensorsSync(model.stateDict(), path.join(o.out, 'model.safetensors'), { metadata: { format: 'pt' } });
  fs.writeFileSync(path.join(o.dataOut, 'finetune.jsonl'), toJsonl(finetuneSamples(o.finetuneSize, o.seed)));
  fs.writeFileSync(path.join(o.dataOut, 'eval.jsonl'), toJsonl(evals));

  const nonDefault = (Object.keys(o) as (keyof Options)[])
    .filter((k) => o[k] !== DEFAULTS[k])
    .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${o[k]}`);
  const readme = [
    '# demo-base: the embedded demo model',
    '',
    'A tiny Llama (LlamaForCausalLM: hidden 128, 4 layers, 4 attention heads, 2 key/value heads,',
    `intermediate 352, vocabulary 128, ${DEMO_MAX_LENGTH} positions; ${nParams} parameters, float32) pretrained from`,
    'scratch by this package alone on the synthetic language of `lib/demo/synthetic-language.ts`:',
    'sentences `<question> -> <answer>` of addition (`12+7 -> 19`), copy, reverse, count, next, first and',
    'last. Its tokenizer (`lib/demo/demo-tokenizer.ts`) has one token per character, and one for each',
    'instruction word and for `->` (tokenizer.json: pieces split at spaces, a BPE model without merges',
    'that keeps whole-vocabulary pieces; <s> added in front, </s> ends each sentence).',
    '',
    'The demo (`torch-lora demo`) teaches it a task it never saw with LoRA: `shift <word> -> <word with',
    'every letter replaced by the next one>` (../demo-data/finetune.jsonl, prompt/completion records; the',
    'prompts of ../demo-data/eval.jsonl use words that are not in the training file).',
    '',
    '## How it was made',
    '',
    '```sh',
    `npx tsc -p tsconfig.json && node dist/scripts/pretrain-demo-base.js${nonDefault.length ? ' ' + nonDefault.join(' ') : ''}`,
    '```',
    '',
    `AdamW (lr ${o.lr}, betas (0.9, 0.98), weight decay ${o.weightDecay}), cosine schedule with ${o.warmup} warmup steps,`,
    `gradient norm clipped to 1, ${o.steps} steps of ${o.batchSize} fresh sentences each (one per row, padded;`,
    'prompt-completion records: the loss is the mean cross-entropy of the answers and </s>, not of the',
    `questions' random letters), seed ${o.seed}, ${o.threads} thread${o.threads === 1 ? '' : 's'}.`,
    `libtorch ${torch.torchVersion} with BLAS ${blasLibrary()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}:`,
    `${trainSeconds.toFixed(0)} s of training, ${((Date.now() - t0) / 1000).toFixed(0)} s in all, ${cpuSeconds().toFixed(0)} s of CPU time (the machine was shared;`,
    `load average ${os.loadavg()[2].toFixed(1)} over the last 15 minutes). The held-out accuracy is the share of 140 fresh`,
    'sentences (all tasks, another seed) whose greedy answer is exactly right; "shift" is the same for the',
    'demo prompts, which the base is not meant to answer.',
    '',
    "Matrix products are most of the work: with Debian's reference BLAS (libblas3, what libtorch-dev pulls",
    'in) a step is 5 to 20 times slower than with OpenBLAS (`apt-get install libopenblas0-pthread`, which',
    'takes over libblas.so.3). Results differ in the last bits between BLAS libraries and thread counts.',
    '',
    '## Pretraining log',
    '',
    '```',
    ...log,
    '```',
    '',
    '## What the base answers (greedy)',
    '',
    'Pretraining-style prompts:',
    '',
    '```',
    ...table(probes, probeAnswers),
    '```',
    '',
    'The demo prompts (the task the LoRA adapter learns):',
    '',
    '```',
    ...table(evals, evalAnswers),
    '```',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(o.out, 'README.md'), readme);
  console.log(table(probes, probeAnswers).join('\n'));
  console.log(table(evals, evalAnswers).join('\n'));
  console.log(`wrote ${o.out} and ${o.dataOut} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

if (require.main === module) main();
