// One LoRA training step of a Llama, timed: ours (this library) in the same shape as bench/train_step.py
// (transformers + peft), so that bench/train-step.sh can put the two side by side.
//
// A Llama is built from a named config with random weights (AutoModelForCausalLM.fromConfig, bfloat16 on
// CUDA), LoRA r=16, α=16, dropout 0 goes on q,k,v,o,gate,up,down (getPeftModel), and AdamW trains the
// adapters on one fixed batch of random tokens (fixed so that the loss can fall: fresh uniform tokens
// would leave nothing to learn). After --warmup steps, --steps steps are timed one by one (the only host
// sync of a step is the cuda.synchronize that ends its timing); the losses stay on the device and are
// read once, after the timing.
//
//   node dist/bench/train-step.js --config 1.1b --batch 4 --seq 2048 [--adapter-dtype bfloat16]
//        [--fused-lora] [--chunked-loss] [--fused-swiglu] [--gradient-checkpointing] [--out FILE]
//   node dist/bench/train-step.js --config tiny --save-init DIR   (random model + adapter + batch, HF/PEFT files)
//   node dist/bench/train-step.js --init-from DIR ...             (start from such a folder; train_step.py too)
//
// Prints a one-row table and one JSON line (the same fields as train_step.py); --out FILE appends the
// JSON line to FILE.
import * as fs from 'fs';
import * as path from 'path';
import * as torch from '../lib';
import { cuda, F, keep, noGrad, scope, stack, Tensor } from '../lib';
import type { DType } from '../lib';
import { LlamaForCausalLM, LlamaMLP } from '../lib/models';
import type { HFConfig } from '../lib/models';
import { init, Linear, Module } from '../lib/nn';
import { getPeftModel, LoraConfig, LoraLinear, PeftModel } from '../lib/peft';
import { checkpointedForwardBackward } from '../lib/train';
import type { Segmentable } from '../lib/train/gradient-checkpointing';
import { lmHeadLoss } from '../lib/models/lm-head-loss';

/** The benchmark's model shapes, in config.json's key names (the same table as train_step.py's). */
export const PRESETS: Record<string, HFConfig> = {
  tiny: { hidden_size: 64, intermediate_size: 176, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512 },
  // The CPU side-by-side (bench/cpu-side-by-side.sh): the demo base's shape (assets/demo-base, 0.9M), and
  // Llamas of ~31M and ~97M parameters.
  demo: { hidden_size: 128, intermediate_size: 352, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 128 },
  '30m': { hidden_size: 512, intermediate_size: 1376, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 8000 },
  '100m': { hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 12, vocab_size: 8000 },
  '125m': { hidden_size: 768, intermediate_size: 2048, num_hidden_layers: 12, num_attention_heads: 12, num_key_value_heads: 12, vocab_size: 32000 },
  '1.1b': { hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000 },
  '7b': { hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 32000 },
};
export const TARGET_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** The full config.json of a preset (the keys both sides need to build the same model). */
export function hfConfig(name: string, seq: number, initStd?: number): HFConfig {
  const p = PRESETS[name];
  if (p === undefined) throw new Error(`train-step: unknown --config '${name}'; one of ${Object.keys(PRESETS).join(', ')}`);
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    ...p,
    hidden_act: 'silu',
    max_position_embeddings: Math.max(2048, seq),
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    initializer_range: initStd ?? 0.02,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

interface Args {
  config: string;
  seq: number;
  batch: number;
  steps: number;
  warmup: number;
  device: string;
  dtype: DType;
  adapterDtype: DType;
  gradientCheckpointing: boolean;
  chunkedLoss: boolean;
  fusedLora: boolean;
  fusedSwiglu: boolean;
  atenLora: boolean;
  lr: number;
  seed: number;
  initStd?: number;
  initFrom?: string;
  saveInit?: string;
  out?: string;
  label?: string;
}

const USAGE = `usage: node dist/bench/train-step.js [--config tiny|125m|1.1b|7b] [--seq N] [--batch N] [--steps N]
  [--warmup N] [--device cpu|cuda] [--dtype float32|bfloat16|float16] [--adapter-dtype float32|bfloat16]
  [--gradient-checkpointing] [--chunked-loss] [--fused-lora] [--fused-swiglu] [--aten-lora] [--lr X]
  [--seed N] [--init-std X] [--init-from DIR | --save-init DIR] [--label TEXT] [--out FILE]`;

function parseArgs(argv: string[]): Args {
  const onCuda = cuda.isAvailable();
  const a: Partial<Args> & { dtype?: DType } = {
    config: 'tiny',
    seq: 2048,
    batch: 4,
    steps: 10,
    warmup: 3,
    device: onCuda ? 'cuda' : 'cpu',
    adapterDtype: 'float32',
    gradientCheckpointing: false,
    chunkedLoss: false,
    fusedLora: false,
    fusedSwiglu: false,
    atenLora: false,
    lr: 1e-3,
    seed: 0,
  };
  const dtypes = ['float32', 'bfloat16', 'float16'];
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`train-step: ${k} needs a value\n${USAGE}`);
      return v;
    };
    const int = (): number => {
      const s = val();
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) throw new Error(`train-step: ${k} needs a non-negative integer, got '${s}'`);
      return n;
    };
    const dt = (): DType => {
      const s = val();
      if (!dtypes.includes(s)) throw new Error(`train-step: ${k} must be one of ${dtypes.join(', ')}, got '${s}'`);
      return s as DType;
    };
    switch (k) {
      case '--config': a.config = val(); break;
      case '--seq': a.seq = int(); break;
      case '--batch': a.batch = int(); break;
      case '--steps': a.steps = int(); break;
      case '--warmup': a.warmup = int(); break;
      case '--device': a.device = val(); break;
      case '--dtype': a.dtype = dt(); break;
      case '--adapter-dtype': a.adapterDtype = dt(); break;
      case '--gradient-checkpointing': a.gradientCheckpointing = true; break;
      case '--chunked-loss': a.chunkedLoss = true; break;
      case '--fused-lora': a.fusedLora = true; break;
      case '--fused-swiglu': a.fusedSwiglu = true; break;
      // the fused LoRA op's rank-r products by ATen's BLAS instead of src/lora_cpu_kernels (CPU A/B)
      case '--aten-lora': a.atenLora = true; break;
      case '--lr': a.lr = Number(val()); break;
      case '--seed': a.seed = int(); break;
      case '--init-std': a.initStd = Number(val()); break;
      case '--init-from': a.initFrom = val(); break;
      case '--save-init': a.saveInit = val(); break;
      case '--label': a.label = val(); break;
      case '--out': a.out = val(); break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`train-step: unknown argument '${k}'\n${USAGE}`);
    }
  }
  if (a.steps! < 1 || a.seq! < 2 || a.batch! < 1) throw new Error('train-step: --steps >= 1, --seq >= 2 and --batch >= 1 are needed');
  if (a.device!.startsWith('cuda') && !onCuda) throw new Error(`train-step: --device ${a.device}, but this libtorch (${torch.torchVersion}) has no CUDA or sees no GPU`);
  a.dtype ??= a.device!.startsWith('cuda') ? 'bfloat16' : 'float32';
  if (!(a.config! in PRESETS)) throw new Error(`train-step: unknown --config '${a.config}'; one of ${Object.keys(PRESETS).join(', ')}`);
  if (a.initFrom && a.saveInit) throw new Error('train-step: --init-from and --save-init exclude each other');
  return a as Args;
}

/** Casts the trainable parameters in place (the same Parameter objects) to `dtype`. */
function castTrainable(model: Module, dtype: DType): void {
  noGrad(() => {
    for (const p of model.parameters()) {
      if (!p.requiresGrad || p.dtype === dtype) continue;
      const c = p.to(dtype);
      p.setData_(c);
      c.dispose();
    }
  });
}

function loraConfig(): LoraConfig {
  return new LoraConfig({ r: 16, loraAlpha: 16, loraDropout: 0, targetModules: TARGET_MODULES, taskType: 'CAUSAL_LM' });
}

/**
 * --save-init: a random float32 model in Hugging Face's layout (config.json + model.safetensors), a
 * PEFT adapter with lora_B drawn too (so that the adapter counts from step 0) in DIR/adapter, and the
 * batch (input_ids.safetensors). Both benchmarks start from it with --init-from.
 */
async function saveInit(a: Args): Promise<void> {
  const dir = a.saveInit!;
  fs.mkdirSync(dir, { recursive: true });
  torch.manualSeed(a.seed);
  const config = hfConfig(a.config, a.seq, a.initStd);
  const model = torch.AutoModelForCausalLM.fromConfig(config, { device: 'cpu', dtype: 'float32' }) as LlamaForCausalLM;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, torch_dtype: 'float32' }, null, 2) + '\n');
  // What the folder is, for the benchmarks' labels (train_step.py reads it too).
  const about = { config: a.config, seed: a.seed, init_std: config.initializer_range, batch: a.batch, seq: a.seq };
  fs.writeFileSync(path.join(dir, 'bench.json'), JSON.stringify(about) + '\n');
  await torch.saveSafetensors(model.stateDict(), path.join(dir, 'model.safetensors'), { metadata: { format: 'pt' } });
  const peft = getPeftModel(model, loraConfig());
  noGrad(() => {
    for (const m of peft.modules()) if (m instanceof LoraLinear) init.normal_((m.lora_B.get('default') as Linear).weight, 0, config.initializer_range as number);
  });
  await peft.savePretrained(path.join(dir, 'adapter'));
  const ids = torch.randint(0, config.vocab_size as number, [a.batch, a.seq], { dtype: 'int64' });
  await torch.saveSafetensors({ input_ids: ids }, path.join(dir, 'input_ids.safetensors'), { metadata: { format: 'pt' } });
  ids.dispose();
  peft.dispose();
  console.log(`train-step: wrote ${a.config} (seed ${a.seed}, init std ${config.initializer_range}), its adapter and a ${a.batch}x${a.seq} batch to ${dir}`);
}

/** The model with its adapter, the batch, and what the FLOP count needs. */
async function build(a: Args): Promise<{ peft: PeftModel; base: LlamaForCausalLM; inputIds: Tensor; config: HFConfig }> {
  torch.manualSeed(a.seed);
  const autocast = a.adapterDtype === 'float32';
  let peft: PeftModel;
  let config: HFConfig;
  let inputIds: Tensor;
  if (a.initFrom) {
    config = torch.models.readConfig(a.initFrom);
    const about = path.join(a.initFrom, 'bench.json');
    if (fs.existsSync(about)) a.config = String((JSON.parse(fs.readFileSync(about, 'utf8')) as { config?: string }).config ?? a.config);
    const model = await torch.AutoModelForCausalLM.fromPretrained(a.initFrom, { device: a.device, dtype: a.dtype });
    model.train();
    peft = await PeftModel.fromPretrained(model, path.join(a.initFrom, 'adapter'), { isTrainable: true, autocastAdapterDtype: autocast, device: a.device });
    const saved = await torch.loadSafetensors(path.join(a.initFrom, 'input_ids.safetensors'), { device: a.device });
    inputIds = saved.input_ids;
    if (inputIds === undefined) throw new Error(`train-step: ${a.initFrom}/input_ids.safetensors has no tensor 'input_ids'`);
    const [b, s] = inputIds.shape;
    if (b !== a.batch || s !== a.seq) console.log(`train-step: the batch in ${a.initFrom} is ${b}x${s}; using it (not ${a.batch}x${a.seq})`);
    a.batch = b;
    a.seq = s;
  } else {
    config = hfConfig(a.config, a.seq, a.initStd);
    const model = torch.AutoModelForCausalLM.fromConfig(config, { device: a.device, dtype: a.dtype });
    peft = getPeftModel(model, loraConfig(), 'default', { autocastAdapterDtype: autocast });
    inputIds = torch.randint(0, config.vocab_size as number, [a.batch, a.seq], { dtype: 'int64', device: a.device });
  }
  castTrainable(peft, a.adapterDtype);
  const base = peft.getBaseModel();
  if (!(base instanceof LlamaForCausalLM)) throw new Error(`train-step: expected a Llama, got ${base.reprName()}`);
  return { peft, base, inputIds, config };
}

/** --fused-lora: each LoRA linear as one autograd node (F.loraLinear) instead of base + B(A(x))·s. */
function useFusedLora(peft: PeftModel): number {
  let n = 0;
  for (const m of peft.modules()) {
    if (!(m instanceof LoraLinear)) continue;
    const w = m.baseWeight;
    const b = m.baseBias;
    const A = (m.lora_A.get('default') as Linear).weight;
    const B = (m.lora_B.get('default') as Linear).weight;
    const s = m.scaling.get('default')!;
    m.forward = (x: Tensor) => F.loraLinear(x, w, b, A, B, s, { dropoutP: 0, training: m.training });
    n++;
  }
  return n;
}

/** --fused-swiglu: silu(gate)·up as one node that does not keep silu(gate) for the backward. */
function useFusedSwiglu(base: LlamaForCausalLM): void {
  for (const m of base.modules()) {
    if (!(m instanceof LlamaMLP)) continue;
    m.forward = (x: Tensor) =>
      scope(() => m.down_proj.forward(F.swiglu(m.gate_proj.forward(x) as Tensor, m.up_proj.forward(x) as Tensor)) as Tensor);
  }
}

/** The model cut into segments for gradient checkpointing, its head's loss chunked when asked. */
function segmentable(base: LlamaForCausalLM, chunked: boolean): Segmentable {
  if (!chunked) return base;
  return {
    segments: (input) => {
      const seg = base.segments(input);
      return {
        ...seg,
        // checkpointedForwardBackward only backpropagates the loss and disposes `logits`: no logits are made.
        head: (hidden: Tensor) =>
          scope(() => ({ logits: torch.empty([0], { device: hidden.device }), loss: lmHeadLoss(base.lm_head, base.model.norm.forward(hidden), input.labels!) })),
      };
    },
  };
}

/** Counts for TFLOP/s: weights of frozen matmuls (each token: 2 FLOPs forward, 2 for the input's gradient) and trainable parameters (6). */
function paramCounts(model: Module): { frozenMatmul: number; trainable: number } {
  let frozenMatmul = 0;
  let trainable = 0;
  for (const m of model.modules()) if (m instanceof Linear && !m.weight.requiresGrad) frozenMatmul += m.weight.numel();
  for (const p of model.parameters()) if (p.requiresGrad) trainable += p.numel();
  return { frozenMatmul, trainable };
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface RunResult {
  impl: 'ours' | 'peft';
  variant: string;
  config: string;
  batch: number;
  seq: number;
  device: string;
  device_name: string;
  dtype: string;
  adapter_dtype: string;
  compile: boolean;
  gradient_checkpointing: boolean;
  flags: string[];
  steps: number;
  warmup: number;
  ms_per_step: number | null;
  tokens_per_s: number | null;
  peak_gib: number | null;
  /** The process's peak resident memory (VmHWM), MiB: the CPU's peak, runtime and all. */
  peak_rss_mib: number | null;
  /** Intra-op threads the run used. */
  threads: number;
  tflops: number | null;
  frozen_matmul_params: number | null;
  trainable_params: number | null;
  flops_per_token: number | null;
  losses: number[];
  loss_first: number | null;
  loss_last: number | null;
  init_from: string | null;
  torch: string;
  error: string | null;
}

function variantName(a: Args): { flags: string[]; variant: string } {
  const flags: string[] = [];
  if (a.fusedLora) flags.push('fused-lora');
  if (a.chunkedLoss) flags.push('chunked-loss');
  if (a.fusedSwiglu) flags.push('fused-swiglu');
  if (a.atenLora) flags.push('aten-lora');
  if (a.gradientCheckpointing) flags.push('grad-ckpt');
  const ad = a.adapterDtype === 'float32' ? 'fp32-adapters' : a.adapterDtype === 'bfloat16' ? 'bf16-adapters' : `${a.adapterDtype}-adapters`;
  return { flags, variant: a.label ?? ['ours', ad, ...flags].join(' ') };
}

function emptyResult(a: Args): RunResult {
  const { flags, variant } = variantName(a);
  return {
    impl: 'ours',
    variant,
    config: a.config,
    batch: a.batch,
    seq: a.seq,
    device: a.device,
    device_name: a.device.startsWith('cuda') ? 'cuda' : 'cpu',
    dtype: a.dtype,
    adapter_dtype: a.adapterDtype,
    compile: false,
    gradient_checkpointing: a.gradientCheckpointing,
    flags,
    steps: a.steps,
    warmup: a.warmup,
    ms_per_step: null,
    tokens_per_s: null,
    peak_gib: null,
    peak_rss_mib: null,
    threads: torch.getNumThreads(),
    tflops: null,
    frozen_matmul_params: null,
    trainable_params: null,
    flops_per_token: null,
    losses: [],
    loss_first: null,
    loss_last: null,
    init_from: a.initFrom ?? null,
    torch: torch.torchVersion,
    error: null,
  };
}

/** VmHWM of /proc/self/status in MiB (null where there is no /proc). */
function peakRssMiB(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

async function run(a: Args, r: RunResult): Promise<void> {
  const onCuda = a.device.startsWith('cuda');
  const { peft, base, inputIds, config } = await build(a);
  r.config = a.initFrom ? `${a.config}(init)` : a.config;
  r.batch = a.batch;
  r.seq = a.seq;
  if (a.fusedLora) useFusedLora(peft);
  if (a.fusedSwiglu) {
    if (config.hidden_act !== undefined && config.hidden_act !== 'silu') throw new Error(`train-step: --fused-swiglu needs hidden_act silu, got ${String(config.hidden_act)}`);
    useFusedSwiglu(base);
  }
  peft.train();
  const { frozenMatmul, trainable } = paramCounts(peft);
  const layers = config.num_hidden_layers as number;
  const hidden = config.hidden_size as number;
  const flopsPerToken = 4 * frozenMatmul + 6 * trainable + 12 * layers * a.seq * hidden;
  r.frozen_matmul_params = frozenMatmul;
  r.trainable_params = trainable;
  r.flops_per_token = flopsPerToken;

  const params = [...peft.parameters()].filter((p) => p.requiresGrad);
  const opt = new torch.AdamW(params, { lr: a.lr });
  const input = { inputIds, labels: inputIds };
  const seg = a.gradientCheckpointing ? segmentable(base, a.chunkedLoss) : undefined;

  /** One step; returns the loss (detached, kept, still on the device). */
  const step = (): Tensor =>
    scope(() => {
      let loss: Tensor;
      if (seg) loss = checkpointedForwardBackward(seg, input);
      else {
        loss = a.chunkedLoss ? base.forwardLoss(input) : (peft.forward(input) as torch.CausalLMOutput).loss!;
        loss.backward();
      }
      opt.step();
      opt.zeroGrad();
      return keep(loss.detach());
    });

  const losses: Tensor[] = [];
  const sync = () => {
    if (onCuda) cuda.synchronize();
  };
  for (let i = 0; i < a.warmup; i++) losses.push(step());
  sync();
  if (onCuda) cuda.resetPeakMemoryStats();
  const times: number[] = [];
  for (let i = 0; i < a.steps; i++) {
    const t0 = process.hrtime.bigint();
    losses.push(step());
    sync();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const peak = onCuda ? cuda.maxMemoryAllocated() : null;
  // Read the losses once, after the timing (one device-to-host copy).
  const all = scope(() => stack(losses).float().cpu().tolist() as number[]);
  for (const l of losses) l.dispose();
  const ms = median(times);
  const tokensPerS = (a.batch * a.seq) / (ms / 1000);
  r.ms_per_step = ms;
  r.tokens_per_s = tokensPerS;
  r.peak_gib = peak === null ? null : peak / 2 ** 30;
  r.peak_rss_mib = peakRssMiB();
  r.tflops = (flopsPerToken * tokensPerS) / 1e12;
  r.losses = all;
  r.loss_first = all[0];
  r.loss_last = all[all.length - 1];
  opt.dispose();
  inputIds.dispose();
  peft.dispose();
}

const fmt = (x: number | null, d: number) => (x === null || !Number.isFinite(x) ? 'n/a' : Math.abs(x) < 1 && x !== 0 && d <= 1 ? x.toPrecision(3) : x.toFixed(d));

export function rowOf(r: RunResult): string {
  return `| ${r.impl} | ${r.variant} | ${r.config} | ${r.batch}x${r.seq} | ${fmt(r.tokens_per_s, 0)} | ${fmt(r.ms_per_step, 1)} | ${fmt(r.peak_gib, 2)} | ${fmt(r.tflops, 1)} | ${fmt(r.loss_first, 4)} | ${fmt(r.loss_last, 4)} |${r.error ? ` ${r.error} |` : ''}`;
}
export const TABLE_HEAD = '| impl | variant | config | batch x seq | tokens/s | ms/step | peak GiB | TFLOP/s | loss step 0 | loss last |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|';

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.saveInit) {
    await saveInit(a);
    return;
  }
  if (a.atenLora) F.useLoraCpuKernels(false);
  const r = emptyResult(a);
  let code = 0;
  try {
    await run(a, r);
    const falling = r.losses.length >= 2 && r.loss_last! < r.loss_first!;
    if (!falling) {
      r.error = `loss did not fall (${fmt(r.loss_first, 4)} -> ${fmt(r.loss_last, 4)})`;
      code = 3;
    }
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    r.error = /out of memory/i.test(msg) ? `OOM: ${msg.split('\n')[0].slice(0, 200)}` : msg.split('\n')[0].slice(0, 300);
    code = 2;
  }
  console.log(`${TABLE_HEAD}\n${rowOf(r)}`);
  if (r.losses.length) console.log(`losses: ${r.losses.map((l) => l.toFixed(4)).join(' ')}`);
  const line = JSON.stringify(r);
  console.log(line);
  if (a.out) fs.appendFileSync(a.out, line + '\n');
  process.exitCode = code;
}

if (require.main === module) {
  main().catch((e) => {
    console.error((e as Error).message ?? e);
    process.exit(1);
  });
}
