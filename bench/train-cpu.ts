// LoRA training throughput of a small Llama on the CPU: ours next to the same model and LoRA in Python
// PyTorch on the same libtorch (bench/llama_lora_cpu.py), in one run, as tokens/s and a ratio.
// bench/train-cpu.sh runs the two stages:
//
//   node dist/bench/train-cpu.js --save-init DIR [shape flags]   random model + adapter + batch (HF/PEFT files)
//   node dist/bench/train-cpu.js --init DIR [--results FILE]     both sides, the table
//
// Both sides load the same weights (model.safetensors, adapter/adapter_model.safetensors with lora_B drawn
// too, so that every adapter weight has a gradient from step 0) and the same batch of random tokens with
// labels = inputs, and run with the same intra-op thread count. A step = forward, loss, backward, AdamW
// step, zero grad. The Python side runs as a child process that steps on request, so the steps alternate
// round by round (--warmup rounds, then --steps timed rounds, the order rotating): on a shared machine
// both sides see the same load. The step-0 losses must agree within 1e-4 (the run fails otherwise); with
// LoRA dropout 0 the later losses follow along.
//
// Variants of ours (--variants, comma-separated; the first is the headline row):
//   peft      the library as a user's own loop calls it: PeftModel.forward(...).loss, whatever its layers
//             do by default
//   composite-lora   peft, each LoRA layer forced to PEFT's composite base(x) + B(A(dropout(x)))·s
//   fused     each LoRA layer as one node (F.loraLinear, called directly), the chunked LM-head loss
//             (F.causalLmLoss via forwardLoss, as the Trainer does) and F.swiglu in the MLP
//   fused-lora, chunked-loss, fused-swiglu   one of those at a time
//   composite-rotary   peft, with transformers' composite rotary instead of F.applyRotaryPosEmb
// After the timed rounds, three more steps of each variant run with every native call counted and timed,
// to split a step into time inside native calls and time in JavaScript around them.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import * as torch from '../lib';
import { F, keep, noGrad, scope, Tensor } from '../lib';
import * as functional from '../lib/functional';
import { LlamaForCausalLM, LlamaMLP } from '../lib/models';
import type { HFConfig } from '../lib/models';
import { native } from '../lib/native';
import { init, Linear } from '../lib/nn';
import { getPeftModel, LoraConfig, LoraLinear, PeftModel } from '../lib/peft';

const TARGET_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const VARIANTS = ['peft', 'composite-lora', 'fused', 'fused-lora', 'chunked-loss', 'fused-swiglu', 'composite-rotary'] as const;
type Variant = (typeof VARIANTS)[number];
const LOSS_TOLERANCE = 1e-4;

interface Args {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seq: number;
  batch: number;
  r: number;
  alpha: number;
  steps: number;
  warmup: number;
  threads: number;
  lr: number;
  seed: number;
  variants: Variant[];
  saveInit?: string;
  init?: string;
  /** The Python with torch that runs bench/llama_lora_cpu.py. */
  python: string;
  /** Markdown file for the report; with append, a section added to it. */
  results?: string;
  append: boolean;
  title?: string;
}

const USAGE = `usage: node dist/bench/train-cpu.js --save-init DIR [--hidden 256] [--intermediate 688] [--layers 4]
         [--heads 8] [--kv-heads 4] [--vocab 1024] [--seq 128] [--batch 8] [--r 8] [--alpha 16] [--seed 0]
       node dist/bench/train-cpu.js --init DIR [--python /usr/bin/python3] [--variants peft,composite-lora,fused] [--steps 10]
         [--warmup 2] [--threads 2] [--lr 1e-3] [--results FILE.md [--append]] [--title TEXT]
variants: ${VARIANTS.join(', ')}`;

function parseArgs(argv: string[]): Args {
  const a: Args = {
    hidden: 256,
    intermediate: 688,
    layers: 4,
    heads: 8,
    kvHeads: 4,
    vocab: 1024,
    seq: 128,
    batch: 8,
    r: 8,
    alpha: 16,
    steps: 10,
    warmup: 2,
    threads: 2,
    lr: 1e-3,
    seed: 0,
    variants: ['peft', 'composite-lora', 'fused'],
    python: process.env.PYTHON || '/usr/bin/python3',
    append: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`train-cpu: ${k} needs a value\n${USAGE}`);
      return v;
    };
    const int = (min = 1): number => {
      const s = val();
      const n = Number(s);
      if (!Number.isInteger(n) || n < min) throw new Error(`train-cpu: ${k} needs an integer >= ${min}, got '${s}'`);
      return n;
    };
    switch (k) {
      case '--hidden': a.hidden = int(); break;
      case '--intermediate': a.intermediate = int(); break;
      case '--layers': a.layers = int(); break;
      case '--heads': a.heads = int(); break;
      case '--kv-heads': a.kvHeads = int(); break;
      case '--vocab': a.vocab = int(2); break;
      case '--seq': a.seq = int(2); break;
      case '--batch': a.batch = int(); break;
      case '--r': a.r = int(); break;
      case '--alpha': a.alpha = Number(val()); break;
      case '--steps': a.steps = int(); break;
      case '--warmup': a.warmup = int(0); break;
      case '--threads': a.threads = int(); break;
      case '--lr': a.lr = Number(val()); break;
      case '--seed': a.seed = int(0); break;
      case '--variants': {
        const list = val().split(',').filter((s) => s !== '');
        for (const v of list) if (!(VARIANTS as readonly string[]).includes(v)) throw new Error(`train-cpu: unknown variant '${v}'; one of ${VARIANTS.join(', ')}`);
        if (list.length === 0) throw new Error('train-cpu: --variants needs at least one variant');
        a.variants = list as Variant[];
        break;
      }
      case '--save-init': a.saveInit = val(); break;
      case '--init': a.init = val(); break;
      case '--python': a.python = val(); break;
      case '--results': a.results = val(); break;
      case '--append': a.append = true; break;
      case '--title': a.title = val(); break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`train-cpu: unknown argument '${k}'\n${USAGE}`);
    }
  }
  if (!a.saveInit === !a.init) throw new Error(`train-cpu: give exactly one of --save-init DIR and --init DIR\n${USAGE}`);
  if (a.hidden % a.heads !== 0 || a.heads % a.kvHeads !== 0)
    throw new Error(`train-cpu: --hidden (${a.hidden}) must divide by --heads (${a.heads}), and --heads by --kv-heads (${a.kvHeads})`);
  return a;
}

/** config.json of the benchmark's Llama (transformers' key names; float32, untied head, rope 10000). */
function hfConfig(a: Args): HFConfig {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: a.hidden,
    intermediate_size: a.intermediate,
    num_hidden_layers: a.layers,
    num_attention_heads: a.heads,
    num_key_value_heads: a.kvHeads,
    head_dim: a.hidden / a.heads,
    vocab_size: a.vocab,
    hidden_act: 'silu',
    max_position_embeddings: Math.max(128, a.seq),
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    initializer_range: 0.02,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
}

/** --save-init: the random model, its adapter (lora_B drawn as well) and the batch, in HF/PEFT files. */
async function saveInit(a: Args): Promise<void> {
  const dir = a.saveInit!;
  fs.mkdirSync(dir, { recursive: true });
  torch.manualSeed(a.seed);
  const config = hfConfig(a);
  const model = torch.AutoModelForCausalLM.fromConfig(config, { device: 'cpu', dtype: 'float32' }) as LlamaForCausalLM;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  await torch.saveSafetensors(model.stateDict(), path.join(dir, 'model.safetensors'), { metadata: { format: 'pt' } });
  const peft = getPeftModel(model, new LoraConfig({ r: a.r, loraAlpha: a.alpha, loraDropout: 0, targetModules: TARGET_MODULES, taskType: 'CAUSAL_LM' }));
  noGrad(() => {
    for (const m of peft.modules()) if (m instanceof LoraLinear) init.normal_(m.loraBWeight('default'), 0, 0.02);
  });
  await peft.savePretrained(path.join(dir, 'adapter'));
  const ids = torch.randint(0, a.vocab, [a.batch, a.seq], { dtype: 'int64' });
  await torch.saveSafetensors({ input_ids: ids }, path.join(dir, 'input_ids.safetensors'), { metadata: { format: 'pt' } });
  ids.dispose();
  peft.dispose();
  console.error(`train-cpu: wrote the model (${JSON.stringify({ hidden: a.hidden, intermediate: a.intermediate, layers: a.layers, heads: a.heads, kvHeads: a.kvHeads, vocab: a.vocab })}), its adapter (r=${a.r}, alpha=${a.alpha}) and a ${a.batch}x${a.seq} batch to ${dir}`);
}

// ---- our variants: what each one swaps in ----

function has(v: Variant, what: 'lora' | 'loss' | 'swiglu'): boolean {
  if (v === 'fused') return true;
  return (what === 'lora' && v === 'fused-lora') || (what === 'loss' && v === 'chunked-loss') || (what === 'swiglu' && v === 'fused-swiglu');
}

/** Each LoRA layer as PEFT computes it, op by op: base(x) + B(A(dropout(x)))·s (one adapter, same dtypes). */
function useCompositeLora(peft: PeftModel): void {
  for (const m of peft.modules()) {
    if (!(m instanceof LoraLinear)) continue;
    const base = m.base_layer;
    const A = m.lora_A.get('default')!;
    const B = m.lora_B.get('default')!;
    const dropout = m.lora_dropout.get('default')!;
    const s = m.scaling.get('default')!;
    m.forward = (x: Tensor) =>
      scope(() => (base.forward(x) as Tensor).add((B.forward(A.forward(dropout.forward(x) as Tensor) as Tensor) as Tensor).mul(s)));
  }
}

/** Each LoRA layer's forward as one F.loraLinear node (LoRA dropout is 0 here, as in the adapter). */
function useFusedLora(peft: PeftModel): void {
  for (const m of peft.modules()) {
    if (!(m instanceof LoraLinear)) continue;
    const w = m.baseWeight;
    const A = m.loraAWeight('default');
    const B = m.loraBWeight('default');
    const s = m.scaling.get('default')!;
    m.forward = (x: Tensor) => F.loraLinear(x, w, undefined, A, B, s, { dropoutP: 0, training: m.training });
  }
}

function useFusedSwiglu(base: LlamaForCausalLM): void {
  for (const m of base.modules()) {
    if (!(m instanceof LlamaMLP)) continue;
    m.forward = (x: Tensor) => scope(() => m.down_proj.forward(F.swiglu(m.gate_proj.forward(x) as Tensor, m.up_proj.forward(x) as Tensor)) as Tensor);
  }
}

/** transformers' apply_rotary_pos_emb as separate ops (what llama.ts did before F.applyRotaryPosEmb). */
function compositeRotary(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor): [Tensor, Tensor] {
  return scope(() => {
    const c = cos.unsqueeze(1);
    const s = sin.unsqueeze(1);
    const rot = (x: Tensor): Tensor => {
      const half = x.shape[x.shape.length - 1] / 2;
      return torch.cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
    };
    return [q.mul(c).add(rot(q).mul(s)), k.mul(c).add(rot(k).mul(s))] as [Tensor, Tensor];
  });
}

// ---- counting native calls ----

interface CallStats {
  calls: number;
  /** Milliseconds inside native calls (kernels + binding), per phase. */
  nativeMs: number;
  byName: Map<string, number>;
}

/** Wraps every addon function with a counter and a timer until the returned `restore` is called. */
function instrumentNative(): { stats: () => CallStats; restore: () => void } {
  const originals = new Map<string, (...args: unknown[]) => unknown>();
  const byName = new Map<string, number>();
  let ns = 0n;
  let calls = 0;
  let depth = 0;
  // (every op by name: the typed declaration has no index signature)
  const ops = native as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const [name, fn] of Object.entries(ops)) {
    if (typeof fn !== 'function') continue;
    originals.set(name, fn);
    ops[name] = (...args: unknown[]) => {
      calls++;
      byName.set(name, (byName.get(name) ?? 0) + 1);
      if (depth > 0) return fn(...args); // a native call made from JS inside a native call (a custom autograd function)
      depth++;
      const t0 = process.hrtime.bigint();
      try {
        return fn(...args);
      } finally {
        ns += process.hrtime.bigint() - t0;
        depth--;
      }
    };
  }
  return {
    stats: () => ({ calls, nativeMs: Number(ns) / 1e6, byName: new Map(byName) }),
    restore: () => {
      for (const [name, fn] of originals) ops[name] = fn;
    },
  };
}

// ---- the participants: our variants and the Python process, stepped in turn ----

interface Phases {
  forward: number;
  backward: number;
  optimizer: number;
}

interface StepResult {
  loss: number;
  ms: number;
  cpuMs: number;
  phases: Phases;
}

interface Participant {
  name: string;
  step(): Promise<StepResult>;
  dispose(): Promise<void>;
}

interface CountResult {
  calls: number;
  perPhase: Record<keyof Phases, { calls: number; nativeMs: number; wallMs: number }>;
  top: [string, number][];
}

interface Ours extends Participant {
  variant: Variant;
  trainable: number;
  total: number;
  /** One more step with every native call counted and timed (slower; not part of the timing). */
  countedStep(): CountResult;
}

function cpuMsSince(c0: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1e3;
}

async function makeOurs(dir: string, variant: Variant, lr: number): Promise<Ours> {
  const model = (await torch.AutoModelForCausalLM.fromPretrained(dir, { device: 'cpu', dtype: 'float32' })) as LlamaForCausalLM;
  if (!(model instanceof LlamaForCausalLM)) throw new Error(`train-cpu: ${dir} holds a ${(model as { reprName(): string }).reprName()}, expected a Llama`);
  const peft = await PeftModel.fromPretrained(model, path.join(dir, 'adapter'), { isTrainable: true });
  const saved = await torch.loadSafetensors(path.join(dir, 'input_ids.safetensors'));
  const inputIds = saved.input_ids;
  if (inputIds === undefined) throw new Error(`train-cpu: ${dir}/input_ids.safetensors has no tensor 'input_ids'`);
  if (has(variant, 'lora')) useFusedLora(peft);
  if (variant === 'composite-lora') useCompositeLora(peft);
  if (has(variant, 'swiglu')) useFusedSwiglu(model);
  const chunkedLoss = has(variant, 'loss');
  peft.train();

  const params = [...peft.parameters()].filter((p) => p.requiresGrad);
  const opt = new torch.AdamW(params, { lr });
  const input = { inputIds, labels: inputIds };
  // composite-rotary swaps the function llama.ts calls (a module export), only while its own step runs.
  const fns = functional as unknown as Record<string, unknown>;
  const withRotary = <T>(fn: () => T): T => {
    if (variant !== 'composite-rotary') return fn();
    const fused = fns.applyRotaryPosEmb;
    fns.applyRotaryPosEmb = compositeRotary;
    try {
      return fn();
    } finally {
      fns.applyRotaryPosEmb = fused;
    }
  };

  /** One step; `mark` is called at the end of each phase. Returns the loss (read after the step). */
  const run = (mark: (phase: keyof Phases) => void): number => {
    const loss = withRotary(() =>
      scope(() => {
        const l = chunkedLoss ? model.forwardLoss(input) : (peft.forward(input) as torch.CausalLMOutput).loss!;
        mark('forward');
        l.backward();
        mark('backward');
        opt.step();
        opt.zeroGrad();
        mark('optimizer');
        return keep(l.detach());
      }),
    );
    const v = loss.item() as number;
    loss.dispose();
    return v;
  };

  return {
    name: variant,
    variant,
    trainable: params.reduce((n, p) => n + p.numel(), 0),
    total: [...peft.parameters()].reduce((n, p) => n + p.numel(), 0),
    async step(): Promise<StepResult> {
      const phases: Phases = { forward: 0, backward: 0, optimizer: 0 };
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      let last = t0;
      let end = t0;
      const loss = run((p) => {
        end = process.hrtime.bigint();
        phases[p] = Number(end - last) / 1e6;
        last = end;
      });
      return { loss, ms: Number(end - t0) / 1e6, cpuMs: cpuMsSince(c0), phases };
    },
    countedStep(): CountResult {
      const inst = instrumentNative();
      const perPhase = {} as CountResult['perPhase'];
      let prev = inst.stats();
      let prevT = process.hrtime.bigint();
      try {
        run((p) => {
          const now = process.hrtime.bigint();
          const s = inst.stats();
          perPhase[p] = { calls: s.calls - prev.calls, nativeMs: s.nativeMs - prev.nativeMs, wallMs: Number(now - prevT) / 1e6 };
          prev = s;
          prevT = process.hrtime.bigint();
        });
      } finally {
        inst.restore();
      }
      const all = prev;
      return { calls: all.calls, perPhase, top: [...all.byName.entries()].sort((p, q) => q[1] - p[1]).slice(0, 12) };
    },
    async dispose(): Promise<void> {
      opt.dispose();
      inputIds.dispose();
      peft.dispose();
    },
  };
}

interface PyInfo {
  torch: string;
  threads: number;
  batch: number;
  seq: number;
  trainable_params: number;
  total_params: number;
}

/** bench/llama_lora_cpu.py --serve as a child process: one 'step' line out, one JSON line back. */
async function startPython(python: string, dir: string, threads: number, lr: number): Promise<Participant & { info: PyInfo }> {
  const script = path.resolve(__dirname, '..', '..', 'bench', 'llama_lora_cpu.py');
  const child = spawn(python, [script, '--init', dir, '--threads', String(threads), '--lr', String(lr), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
  child.on('error', (e) => (exited = e.message));
  const next = async (): Promise<Record<string, unknown>> => {
    const r = await lines.next();
    if (r.done) throw new Error(`train-cpu: the Python side (${python} ${script}) ${exited ?? 'closed its output'} before answering`);
    try {
      return JSON.parse(r.value);
    } catch {
      throw new Error(`train-cpu: the Python side printed a line that is not JSON: ${r.value.slice(0, 200)}`);
    }
  };
  const info = (await next()) as unknown as PyInfo;
  return {
    name: 'python',
    info,
    async step(): Promise<StepResult> {
      child.stdin.write('step\n');
      const r = (await next()) as { loss: number; ms: number; cpu_ms: number; phases: Phases };
      return { loss: r.loss, ms: r.ms, cpuMs: r.cpu_ms, phases: r.phases };
    },
    async dispose(): Promise<void> {
      if (exited) return;
      const done = new Promise((res) => child.on('exit', res));
      child.stdin.end('exit\n');
      await done;
    },
  };
}

// ---- the report ----

/** The BLAS library this process mapped (libtorch's float matmuls go there; the Python child inherits the environment). */
function blasLibrary(): string {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const libs = new Set(maps.split('\n').map((l) => l.split(/\s+/)[5] ?? '').filter((f) => /blas/i.test(path.basename(f))));
    return libs.size ? [...libs].map((f) => (fs.existsSync(f) ? fs.realpathSync(f) : f)).join(', ') : 'none mapped';
  } catch {
    return 'unknown (no /proc/self/maps)';
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Summary {
  name: string;
  ms: number;
  msMin: number;
  msMax: number;
  cpuMs: number;
  tokensPerS: number;
  phases: Phases;
  losses: number[];
}

function summarize(name: string, warm: StepResult[], timed: StepResult[], tokens: number): Summary {
  const ms = median(timed.map((s) => s.ms));
  return {
    name,
    ms,
    msMin: Math.min(...timed.map((s) => s.ms)),
    msMax: Math.max(...timed.map((s) => s.ms)),
    cpuMs: median(timed.map((s) => s.cpuMs)),
    tokensPerS: tokens / (ms / 1000),
    phases: {
      forward: median(timed.map((s) => s.phases.forward)),
      backward: median(timed.map((s) => s.phases.backward)),
      optimizer: median(timed.map((s) => s.phases.optimizer)),
    },
    losses: [...warm, ...timed].map((s) => s.loss),
  };
}

const f1 = (x: number) => x.toFixed(1);
const f0 = (x: number) => x.toFixed(0);

const DESCRIPTION: Record<Variant | 'python', string> = {
  python: 'Python PyTorch (eager; plain modules, peft-style LoRA)',
  peft: 'ours: PeftModel.forward(...).loss, library default',
  'composite-lora': "ours: same, LoRA layers forced to PEFT's composite B(A(x))·s + base(x)",
  fused: 'ours: F.loraLinear + F.causalLmLoss (forwardLoss, as the Trainer) + F.swiglu',
  'fused-lora': 'ours: library default, LoRA layers replaced by direct F.loraLinear calls',
  'chunked-loss': 'ours: library default + F.causalLmLoss (forwardLoss)',
  'fused-swiglu': 'ours: library default + F.swiglu',
  'composite-rotary': 'ours: library default, composite rotary instead of F.applyRotaryPosEmb',
};

interface Report {
  a: Args;
  py: PyInfo;
  pySummary: Summary;
  ours: { o: Ours; s: Summary; count: CountResult }[];
  load: [number[], number[]];
  wallS: number;
}

function report(r: Report): { text: string; ok: boolean } {
  const { a, py, pySummary } = r;
  const lines: string[] = [];
  const cpu = os.cpus();
  const o0 = r.ours[0].o;
  lines.push(
    `Llama, float32: hidden ${a.hidden}, intermediate ${a.intermediate}, ${a.layers} layers, ${a.heads} heads / ${a.kvHeads} kv heads, ` +
      `vocab ${a.vocab}, untied lm_head; ${o0.total.toLocaleString('en-US')} parameters (Python side: ${py.total_params.toLocaleString('en-US')}). ` +
      `LoRA r=${a.r} α=${a.alpha} dropout 0 on ${TARGET_MODULES.join(', ')}: ${o0.trainable.toLocaleString('en-US')} trainable ` +
      `(Python: ${py.trainable_params.toLocaleString('en-US')}); AdamW lr ${a.lr}, weight decay 0.01, adapters only. ` +
      `Batch ${a.batch}x${a.seq} random tokens (labels = inputs), the same batch every step; identical starting weights on both sides.`,
  );
  lines.push('');
  lines.push(
    `Step = forward + loss + backward + AdamW step + zero grad (set to None). ${a.warmup} warm-up rounds, then ${a.steps} timed rounds; ` +
      `in each round every implementation runs one step in turn (the order rotating), so all see the same machine load; medians per step. ` +
      `${a.threads} intra-op threads on both sides. CPU ms = process CPU time (all threads) per step.`,
  );
  lines.push(
    `Machine: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores; Node ${process.version}, ours on libtorch ${torch.torchVersion}; ` +
      `Python PyTorch ${py.torch} (${py.threads} thread${py.threads === 1 ? "" : "s"}), the same libtorch_cpu.so; BLAS ${blasLibrary()}. Load average (1/5/15 min) ${r.load[0].map((x) => x.toFixed(2)).join('/')} ` +
      `at the start, ${r.load[1].map((x) => x.toFixed(2)).join('/')} at the end; the run took ${r.wallS.toFixed(0)} s.`,
  );
  lines.push('');
  lines.push('| implementation | ms/step | min–max | CPU ms/step | forward | backward | optim+zero | tokens/s | ours ÷ Python (tokens/s) |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const row = (s: Summary, ratio: string) =>
    `| ${DESCRIPTION[s.name as Variant | 'python']} | ${f1(s.ms)} | ${f1(s.msMin)}–${f1(s.msMax)} | ${f1(s.cpuMs)} | ${f1(s.phases.forward)} | ${f1(s.phases.backward)} | ${f1(s.phases.optimizer)} | ${f0(s.tokensPerS)} | ${ratio} |`;
  lines.push(row(pySummary, '1.00'));
  for (const { s } of r.ours) lines.push(row(s, (s.tokensPerS / pySummary.tokensPerS).toFixed(2)));

  let ok = true;
  lines.push('');
  const n = pySummary.losses.length;
  for (const { s } of r.ours) {
    const d0 = Math.abs(s.losses[0] - pySummary.losses[0]);
    let dMax = 0;
    for (let i = 0; i < n; i++) dMax = Math.max(dMax, Math.abs(s.losses[i] - pySummary.losses[i]));
    const pass = d0 <= LOSS_TOLERANCE;
    ok &&= pass;
    lines.push(
      `- Loss, ${s.name}: step 0 ${s.losses[0].toFixed(6)} vs Python ${pySummary.losses[0].toFixed(6)}, |Δ| ${d0.toExponential(2)} ` +
        `(${pass ? 'within' : 'NOT within'} ${LOSS_TOLERANCE}); step ${n - 1} ${s.losses[n - 1].toFixed(6)} vs ${pySummary.losses[n - 1].toFixed(6)}; ` +
        `largest |Δ| over the ${n} steps ${dMax.toExponential(2)}.`,
    );
  }

  lines.push('');
  lines.push(
    'Ours, after the timing, three more steps per variant with every native (addon) call counted and timed (the step of median ' +
      'wall time shown): calls per phase, and milliseconds inside native calls (kernels + binding) against the wall time of the ' +
      'phase; the rest is JavaScript between the calls.',
  );
  lines.push('');
  lines.push('| variant | native calls/step | forward | backward | optim+zero | forward: ms native / wall | backward: ms native / wall | optim: ms native / wall | outside native calls |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const { o, count } of r.ours) {
    const p = count.perPhase;
    const wall = p.forward.wallMs + p.backward.wallMs + p.optimizer.wallMs;
    const nat = p.forward.nativeMs + p.backward.nativeMs + p.optimizer.nativeMs;
    lines.push(
      `| ${o.variant} | ${count.calls} | ${p.forward.calls} | ${p.backward.calls} | ${p.optimizer.calls} | ` +
        `${f1(p.forward.nativeMs)} / ${f1(p.forward.wallMs)} | ${f1(p.backward.nativeMs)} / ${f1(p.backward.wallMs)} | ${f1(p.optimizer.nativeMs)} / ${f1(p.optimizer.wallMs)} | ` +
        `${(wall - nat).toFixed(2)} ms (${((100 * (wall - nat)) / wall).toFixed(2)}%) |`,
    );
  }
  lines.push('');
  for (const { o, count } of r.ours) lines.push(`- Most called, ${o.variant}: ${count.top.map(([k, c]) => `${k} ${c}`).join(', ')}.`);
  return { text: lines.join('\n'), ok };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  torch.setNumThreads(a.threads);
  if (a.saveInit) {
    await saveInit(a);
    return;
  }
  const dir = a.init!;
  for (const f of ['config.json', 'model.safetensors', 'adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'input_ids.safetensors'])
    if (!fs.existsSync(path.join(dir, f))) throw new Error(`train-cpu: ${path.join(dir, f)} is missing; write the folder first with --save-init ${dir}`);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as HFConfig;
  a.hidden = cfg.hidden_size as number;
  a.intermediate = cfg.intermediate_size as number;
  a.layers = cfg.num_hidden_layers as number;
  a.heads = cfg.num_attention_heads as number;
  a.kvHeads = cfg.num_key_value_heads as number;
  a.vocab = cfg.vocab_size as number;
  const adapterCfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter', 'adapter_config.json'), 'utf8'));
  a.r = adapterCfg.r;
  a.alpha = adapterCfg.lora_alpha;

  const load0 = os.loadavg();
  const t0 = Date.now();
  const py = await startPython(a.python, dir, a.threads, a.lr);
  const ours: Ours[] = [];
  try {
    if (py.info.threads !== a.threads) throw new Error(`train-cpu: the Python side runs ${py.info.threads} threads, ours ${a.threads}`);
    a.batch = py.info.batch;
    a.seq = py.info.seq;
    for (const v of a.variants) ours.push(await makeOurs(dir, v, a.lr));
    const all: Participant[] = [py, ...ours];
    const warm = new Map<string, StepResult[]>(all.map((p) => [p.name, []]));
    const timed = new Map<string, StepResult[]>(all.map((p) => [p.name, []]));
    for (let round = 0; round < a.warmup + a.steps; round++) {
      const into = round < a.warmup ? warm : timed;
      for (let k = 0; k < all.length; k++) {
        const p = all[(round + k) % all.length];
        const r = await p.step();
        into.get(p.name)!.push(r);
      }
      const last = [...timed.values()].every((x) => x.length) ? ` (${all.map((p) => `${p.name} ${f0(timed.get(p.name)!.at(-1)!.ms)} ms`).join(', ')})` : '';
      console.error(`train-cpu: round ${round + 1}/${a.warmup + a.steps}${round < a.warmup ? ' (warm-up)' : ''}${last}`);
    }
    const tokens = a.batch * a.seq;
    // Three counted steps per variant; the one of median wall time is reported (one step can hit a GC pause or a load spike).
    const counts = ours.map((o) => {
      const wall = (c: CountResult) => c.perPhase.forward.wallMs + c.perPhase.backward.wallMs + c.perPhase.optimizer.wallMs;
      const three = [o.countedStep(), o.countedStep(), o.countedStep()].sort((x, y) => wall(x) - wall(y));
      return three[1];
    });
    const rep: Report = {
      a,
      py: py.info,
      pySummary: summarize('python', warm.get('python')!, timed.get('python')!, tokens),
      ours: ours.map((o, i) => ({ o, s: summarize(o.name, warm.get(o.name)!, timed.get(o.name)!, tokens), count: counts[i] })),
      load: [load0, os.loadavg()],
      wallS: (Date.now() - t0) / 1000,
    };
    const { text, ok } = report(rep);
    const title = a.title ?? `${a.hidden}-hidden Llama`;
    console.log(`## ${title}\n\n${text}`);
    if (a.results) {
      const file = path.resolve(a.results);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      if (a.append && fs.existsSync(file)) fs.appendFileSync(file, `\n## ${title}\n\n${text}\n`);
      else {
        const date = new Date().toISOString().slice(0, 10);
        fs.writeFileSync(file, `# LoRA training on the CPU: ours vs Python PyTorch, ${date}\n\nFrom \`npm run bench:train-cpu\` (bench/train-cpu.sh).\n\n## ${title}\n\n${text}\n`);
      }
      console.log(`\nwritten: ${path.relative(process.cwd(), file)}`);
    }
    if (!ok) {
      console.error(`train-cpu: the step-0 losses differ by more than ${LOSS_TOLERANCE}: the two sides do not compute the same thing`);
      process.exitCode = 3;
    }
  } finally {
    for (const o of ours) await o.dispose();
    await py.dispose();
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
