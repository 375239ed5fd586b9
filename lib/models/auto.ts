// AutoModelForCausalLM: picks the architecture from config.json and fills it from the checkpoint in a
// Hugging Face model folder (model.safetensors, a sharded model.safetensors.index.json, or
// pytorch_model.bin). The model is built on 'meta' first, so that no random weights are made only to be
// overwritten: each parameter takes the loaded tensor's storage (cast to the requested dtype).
import * as fs from 'fs';
import * as path from 'path';
import { noGrad } from '../autograd';
import { DType, isFloatingPoint } from '../dtype';
import { requireLocalFolder } from '../io/local-folder';
import { loadSafetensors, readSafetensorsHeader } from '../io/safetensors';
import { readConsistently } from '../io/folder-swap';
import { readJsonObject } from '../io/json-file';
import { loadTorchBin } from '../io/torch-bin';
import { keep } from '../memory';
import { Module, Parameter } from '../nn';
import { BitsAndBytesConfig } from '../quant/bnb-config';
import { BnbLoader, resolveQuantizationConfig } from '../quant/load';
import { Device, Tensor } from '../tensor';
import { CausalLM } from './causal-lm';
import { CausalLMConfig, HFConfig, parseGPT2Config, parseLlamaConfig, readConfig } from './config';
import { checkConfigSizes } from './config-sizes';
import { readGenerationConfig } from './generation-config';
import { GemmaForCausalLM, GemmaConfig, parseGemmaConfig } from './gemma';
import { Gemma2Config, Gemma2ForCausalLM, parseGemma2Config } from './gemma2';
import { Gemma3ForCausalLM, Gemma3TextConfig, parseGemma3TextConfig } from './gemma3';
import { parsePhi3Config, Phi3Config, Phi3ForCausalLM } from './phi3';
import { GPT2LMHeadModel } from './gpt2';
import { LlamaForCausalLM } from './llama';
import { MistralConfig, MistralForCausalLM, parseMistralConfig } from './mistral';
import { parseQwen2Config, Qwen2Config, Qwen2ForCausalLM } from './qwen2';
import { parseQwen3Config, Qwen3Config, Qwen3ForCausalLM } from './qwen3';
import { checkOptions } from '../options';
import { withContext } from '../error-context';

interface Architecture {
  modelType: string;
  className: string;
  parse(c: HFConfig): CausalLMConfig;
  build(c: CausalLMConfig, opts: { device?: Device; dtype?: DType }): CausalLM & { initWeights(): unknown };
  /** The base model's field: a checkpoint of the bare base model has keys without it. */
  basePrefix: string;
  /** Checkpoint keys transformers drops silently (buffers older versions saved). */
  ignoreUnexpected: RegExp[];
}

const ARCHITECTURES: Architecture[] = [
  {
    modelType: 'llama',
    className: 'LlamaForCausalLM',
    parse: parseLlamaConfig,
    build: (c, o) => new LlamaForCausalLM(c as ReturnType<typeof parseLlamaConfig>, o),
    basePrefix: 'model',
    ignoreUnexpected: [/(^|\.)rotary_emb\.inv_freq$/],
  },
  {
    modelType: 'mistral',
    className: 'MistralForCausalLM',
    parse: parseMistralConfig,
    build: (c, o) => new MistralForCausalLM(c as MistralConfig, o),
    basePrefix: 'model',
    ignoreUnexpected: [/(^|\.)rotary_emb\.inv_freq$/],
  },
  {
    modelType: 'qwen2',
    className: 'Qwen2ForCausalLM',
    parse: parseQwen2Config,
    build: (c, o) => new Qwen2ForCausalLM(c as Qwen2Config, o),
    basePrefix: 'model',
    ignoreUnexpected: [/(^|\.)rotary_emb\.inv_freq$/],
  },
  {
    modelType: 'qwen3',
    className: 'Qwen3ForCausalLM',
    parse: parseQwen3Config,
    build: (c, o) => new Qwen3ForCausalLM(c as Qwen3Config, o),
    basePrefix: 'model',
    ignoreUnexpected: [/(^|\.)rotary_emb\.inv_freq$/],
  },
  {
    modelType: 'gpt2',
    className: 'GPT2LMHeadModel',
    parse: parseGPT2Config,
    build: (c, o) => new GPT2LMHeadModel(c as ReturnType<typeof parseGPT2Config>, o),
    basePrefix: 'transformer',
    ignoreUnexpected: [/(^|\.)attn\.masked_bias$/, /(^|\.)attn\.bias$/],
  },
  {
    modelType: 'gemma',
    className: 'GemmaForCausalLM',
    parse: parseGemmaConfig,
    build: (c, o) => new GemmaForCausalLM(c as GemmaConfig, o),
    basePrefix: 'model',
    ignoreUnexpected: [/(^|\.)rotary_emb\.inv_freq$/],
  },
  {
    modelType: 'gemma2',
    className: 'Gemma2ForCausalLM',
    parse: parseGemma2Config,
    build: (c, o) => new Gemma2ForCausalLM(c as Gemma2Config, o),
    basePrefix: 'model',
    ignoreUnexpected: [/(^|\.)rotary_emb\.inv_freq$/],
  },
  {
    modelType: 'gemma3_text',
    className: 'Gemma3ForCausalLM',
    parse: parseGemma3TextConfig,
    build: (c, o) => new Gemma3ForCausalLM(c as Gemma3TextConfig, o),
    basePrefix: 'model',
    ignoreUnexpected: [/(^|\.)rotary_emb\.\w*inv_freq$/],
  },
  {
    modelType: 'phi3',
    className: 'Phi3ForCausalLM',
    parse: parsePhi3Config,
    build: (c, o) => new Phi3ForCausalLM(c as Phi3Config, o),
    basePrefix: 'model',
    ignoreUnexpected: [/(^|\.)rotary_emb\.inv_freq$/],
  },
];

/**
 * The architecture for a config: by model_type as transformers' Auto classes do, else (a model_type we
 * do not build, or none) by a class name in architectures that we do.
 */
function architectureOf(c: HFConfig): Architecture {
  const modelType = typeof c.model_type === 'string' ? c.model_type : undefined;
  const names = Array.isArray(c.architectures) ? (c.architectures as unknown[]).map(String) : [];
  const found =
    (modelType !== undefined ? ARCHITECTURES.find((a) => a.modelType === modelType) : undefined) ??
    ARCHITECTURES.find((a) => names.includes(a.className));
  if (found === undefined) {
    const said = [
      modelType !== undefined ? `model_type '${modelType}'` : 'no model_type',
      names.length ? `architectures ${JSON.stringify(names)}` : 'no architectures',
    ].join(', ');
    throw new Error(
      `unsupported architecture (${said}); AutoModelForCausalLM supports ${ARCHITECTURES.map((a) => `${a.className} (model_type '${a.modelType}')`).join(', ')}`,
    );
  }
  return found;
}

/** The model_types AutoModelForCausalLM builds, with their class names. */
export function supportedArchitectures(): { modelType: string; className: string }[] {
  return ARCHITECTURES.map((a) => ({ modelType: a.modelType, className: a.className }));
}

/** A parsed config (from config.ts) or config.json's raw object. */
function isParsed(c: HFConfig | CausalLMConfig): c is CausalLMConfig {
  return typeof (c as CausalLMConfig).modelType === 'string' && typeof (c as CausalLMConfig).hiddenSize === 'number';
}

export interface FromConfigOptions {
  /** Default 'cpu'. 'meta' builds shapes only and allocates nothing (e.g. to count a 7B model's parameters). */
  device?: Device;
  /** Default float32; 'auto' takes the config's dtype (torch_dtype / dtype). */
  dtype?: DType | 'auto';
}

export interface FromPretrainedOptions {
  /** Default 'cpu'. With 'meta' only the checkpoint's headers are read (names and shapes are checked). */
  device?: Device;
  /**
   * Default 'auto', as transformers 5: the config's dtype (torch_dtype / dtype), else each checkpoint
   * tensor's own. A dtype casts every floating-point weight to it.
   */
  dtype?: DType | 'auto';
  /**
   * Refuse checkpoint keys the model does not have (default true; transformers only warns). Keys
   * transformers itself ignores (old GPT-2 attn.bias buffers, rotary inv_freq) are always skipped.
   */
  strict?: boolean;
  /**
   * bitsandbytes quantization (transformers' quantization_config): loadIn4bit quantizes every Linear layer
   * but the output head and llmInt8SkipModules as its decoder layer is read. A folder whose config.json has
   * a bitsandbytes quantization_config loads quantized as it was saved, without this.
   */
  quantizationConfig?: BitsAndBytesConfig;
}

function resolveDType(opt: DType | 'auto', config: CausalLMConfig): DType | undefined {
  if (opt === 'auto') return config.dtype; // undefined: keep each checkpoint tensor's dtype
  return opt;
}

/** The weight files of a model folder, as transformers looks for them. */
function weightFiles(dir: string): { kind: 'safetensors' | 'bin'; files: string[] } {
  const p = (f: string) => path.join(dir, f);
  if (fs.existsSync(p('model.safetensors'))) return { kind: 'safetensors', files: [p('model.safetensors')] };
  for (const [index, kind] of [
    ['model.safetensors.index.json', 'safetensors'],
    ['pytorch_model.bin.index.json', 'bin'],
  ] as const) {
    if (!fs.existsSync(p(index))) continue;
    const map = readJsonObject(p(index), 'weight index').weight_map;
    if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new Error(`'${p(index)}' has no weight_map object`);
    const values = Object.values(map as Record<string, unknown>);
    // A shard name is a file in this folder: a path elsewhere ('../x', '/etc/x') is refused, as a wrong type is.
    const badShard = values.find((v) => typeof v !== 'string' || v !== path.basename(v) || v === '.' || v === '..');
    if (badShard !== undefined) throw new Error(`'${p(index)}': weight_map values must be file names in the same folder, got ${JSON.stringify(badShard)}`);
    const shards = [...new Set(values as string[])];
    for (const s of shards) if (!fs.existsSync(p(s))) throw new Error(`shard '${s}' listed in '${p(index)}' does not exist in '${dir}'`);
    return { kind, files: shards.map(p) };
  }
  if (fs.existsSync(p('pytorch_model.bin'))) return { kind: 'bin', files: [p('pytorch_model.bin')] };
  throw new Error(
    `no model weights in '${dir}': expected model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json`,
  );
}

/**
 * Fills a model built on 'meta' from checkpoint tensors: parameters (and persistent buffers) are made
 * from the tensors' storage, cast to `dtype` when given. Checks names and shapes; throws one Error listing the
 * problems.
 */
class CheckpointLoader {
  private readonly own: Record<string, Tensor>;
  private readonly filled = new Set<Tensor>();
  private readonly unexpected: string[] = [];
  private readonly mismatched: string[] = [];
  /** meta tensor of the model -> the loaded one that replaces it */
  private readonly replacement = new Map<Tensor, Tensor>();
  /** Keys of tied weights the checkpoint holds with other values than the first name's: key -> its own tensor. */
  private readonly untied = new Map<string, Tensor>();
  private addPrefix?: boolean;

  constructor(
    private readonly model: Module,
    private readonly arch: Architecture,
    private readonly opts: { device: Device; dtype?: DType; strict: boolean },
  ) {
    this.own = model.stateDict();
  }

  /**
   * A checkpoint of the bare base model (GPT2Model's 'h.0.attn...', as the original gpt2 weights) has
   * keys without the base prefix: decided once, from the first file's names, as transformers does.
   */
  decidePrefix(names: string[]): void {
    if (this.addPrefix !== undefined) return;
    const prefix = `${this.arch.basePrefix}.`;
    this.addPrefix = !names.some((n) => n in this.own) && names.some((n) => prefix + n in this.own);
  }

  /** The model's key for a checkpoint key. */
  keyOf(name: string): string {
    return this.addPrefix ? `${this.arch.basePrefix}.${name}` : name;
  }

  /** Checks names and shapes of one file's tensors (before any is loaded). */
  check(file: string, shapes: Map<string, number[]>): void {
    this.decidePrefix([...shapes.keys()]);
    for (const [name, shape] of shapes) {
      const key = this.keyOf(name);
      const mine = this.own[key];
      if (mine === undefined) {
        if (!this.arch.ignoreUnexpected.some((r) => r.test(name))) this.unexpected.push(name);
        continue;
      }
      const want = mine.shape;
      if (want.length !== shape.length || want.some((d, i) => d !== shape[i]))
        this.mismatched.push(`${key}: '${path.basename(file)}' has shape [${shape.join(', ')}], the model expects [${want.join(', ')}]`);
    }
    this.throwIfBad(file);
  }

  private throwIfBad(file: string): void {
    const parts: string[] = [];
    if (this.mismatched.length) parts.push(`shape mismatches:\n  ${this.mismatched.join('\n  ')}`);
    if (this.opts.strict && this.unexpected.length)
      parts.push(`unexpected keys (not in ${this.model.reprName()}): ${this.unexpected.join(', ')}`);
    if (parts.length) throw new Error(`cannot load '${file}' into ${this.model.reprName()}:\n${parts.join('\n')}`);
  }

  /**
   * Takes loaded tensors for the model (disposing the handles it is given): each becomes a new
   * Parameter (or buffer) replacing the meta one. A meta tensor cannot take another device's storage in
   * place (libtorch's set_data refuses), so the objects are swapped, as load_state_dict(assign=True).
   */
  assign(tensors: Record<string, Tensor> | Map<string, Tensor>): void {
    const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
    noGrad(() => {
      for (const [name, t] of entries) {
        const key = this.keyOf(name);
        const mine = this.own[key];
        if (mine !== undefined) {
          const first = this.replacement.get(mine);
          const cast = this.opts.dtype !== undefined && isFloatingPoint(t.dtype) && isFloatingPoint(mine.dtype) ? this.opts.dtype : undefined;
          const moved = t.to({ device: this.opts.device, dtype: cast });
          if (first === undefined || !moved.equal(first)) {
            // A tied weight (tie_word_embeddings) whose second name holds other values: as transformers 5,
            // each name keeps its own values, with a warning, rather than one silently taking the other's.
            if (first !== undefined) this.warnUntied(key);
            const fresh = mine instanceof Parameter ? new Parameter(moved, mine.requiresGrad) : keep(moved.detach());
            if (first === undefined) this.replacement.set(mine, fresh);
            else this.untied.set(key, fresh);
            this.filled.add(mine);
          }
          moved.dispose();
        }
        t.dispose();
      }
    });
  }

  private warnUntied(key: string): void {
    const others = Object.entries(this.own)
      .filter(([k, t]) => k !== key && t === this.own[key])
      .map(([k]) => k);
    process.emitWarning(
      `config.json ties ${key} to ${others.join(', ')} (tie_word_embeddings), but the checkpoint holds both with different values: ` +
        'they are not tied, as transformers does. Set tie_word_embeddings to false in config.json to silence this warning.',
      { type: 'TransformersWarning' },
    );
  }

  /** Puts the loaded tensors in place of the meta ones, in every field that held one (tied weights too). */
  install(): void {
    if (this.replacement.size === 0) return;
    this.installReplacements();
    // Untied weights: the named field only (the other names keep the first tensor).
    for (const [key, fresh] of this.untied) {
      const dot = key.lastIndexOf('.');
      const owner = (dot < 0 ? this.model : this.model.getSubmodule(key.slice(0, dot))) as unknown as Record<string, unknown>;
      owner[key.slice(dot + 1)] = fresh;
    }
    this.untied.clear();
  }

  private installReplacements(): void {
    for (const m of this.model.modules()) {
      const fields = m as unknown as Record<string, unknown>;
      for (const key of Object.keys(fields)) {
        const v = fields[key];
        if (v instanceof Tensor) {
          const r = this.replacement.get(v);
          if (r !== undefined) fields[key] = r;
        }
      }
    }
    for (const old of this.replacement.keys()) old.dispose();
    this.replacement.clear();
  }

  /** Frees what was loaded but not installed (after an error). */
  discard(): void {
    for (const t of [...this.replacement.values(), ...this.untied.values()]) t.dispose();
    this.replacement.clear();
    this.untied.clear();
  }

  /** Marks tensors as present without data (a 'meta' load). */
  markPresent(names: Iterable<string>): void {
    for (const name of names) {
      const mine = this.own[this.keyOf(name)];
      if (mine !== undefined) this.filled.add(mine);
    }
  }

  /** Every parameter and persistent buffer must have been filled (tied weights count once filled under either name). */
  finish(where: string): void {
    const missing = Object.entries(this.own)
      .filter(([, t]) => !this.filled.has(t))
      .map(([k]) => k);
    if (missing.length)
      throw new Error(`the checkpoint in '${where}' lacks weights of ${this.model.reprName()}: missing keys: ${missing.join(', ')}`);
  }
}

export class AutoModelForCausalLM {
  /**
   * Builds the model a config describes with random weights (transformers' initialization; manualSeed
   * makes it repeatable), in train mode as transformers' from_config. `config` is config.json's object
   * (transformers' key names) or a parsed config.
   */
  static fromConfig(config: HFConfig | CausalLMConfig, opts: FromConfigOptions = {}): CausalLM {
    const arch = architectureOf(isParsed(config) ? { model_type: config.modelType } : config);
    const parsed = isParsed(config) ? config : arch.parse(config);
    checkConfigSizes(parsed, 'the config given to fromConfig', { raw: isParsed(config) ? undefined : config });
    const device = opts.device ?? 'cpu';
    const model = arch.build(parsed, { device, dtype: resolveDType(opts.dtype ?? 'float32', parsed) ?? 'float32' });
    if (device !== 'meta') model.initWeights();
    return model;
  }

  /**
   * Loads a Hugging Face model folder: config.json and model.safetensors (or a sharded
   * model.safetensors.index.json, or pytorch_model.bin). Returns the model in eval mode, as
   * transformers' from_pretrained. With device 'meta' only the headers are read (shapes are checked).
   */
  static async fromPretrained(dir: string, opts: FromPretrainedOptions = {}): Promise<CausalLM> {
    checkOptions(opts, { device: true, dtype: true, strict: true, quantizationConfig: true }, 'AutoModelForCausalLM.fromPretrained');
    // Read again if a save replaced the folder meanwhile: a model never mixes the files of two saves.
    return readConsistently(dir, () => loadPretrained(dir, opts), (m) => m.dispose());
  }
}

/** One read of a model folder (fromPretrained repeats it if a save swapped the folder meanwhile). */
async function loadPretrained(dir: string, opts: FromPretrainedOptions): Promise<CausalLM> {
  // Checked here, after readConsistently put back a folder a killed save left aside (not before it).
  requireLocalFolder(dir, 'model folder');
  const raw = readConfig(dir);
  const configFile = path.join(dir, 'config.json');
  let arch: Architecture;
  let config: CausalLMConfig;
  try {
    arch = architectureOf(raw);
    config = arch.parse(raw);
  } catch (e) {
    // The parsers name the key; the file is named here.
    throw withContext(e, ` (in '${configFile}')`);
  }
  const device = opts.device ?? 'cpu';
  const dtype = resolveDType(opts.dtype ?? 'auto', config);
  const { kind, files } = weightFiles(dir);
  // safetensors headers are read before anything is built: the config's sizes are checked against them.
  const headers = kind === 'safetensors' ? files.map((f) => readSafetensorsHeader(f)) : [];
  const allShapes = new Map(headers.flatMap((h) => [...h.tensors].map(([k, e]) => [k, e.shape] as [string, number[]])));
  checkConfigSizes(config, configFile, { raw, shapes: kind === 'safetensors' ? allShapes : undefined });
  let model: CausalLM;
  try {
    model = arch.build(config, { device: 'meta', dtype: dtype ?? 'float32' });
  } catch (e) {
    // A value the parser let through that the architecture refuses (an activation, a rope type).
    throw withContext(e, ` (in '${configFile}')`);
  }
  const loader = new CheckpointLoader(model, arch, { device, dtype, strict: opts.strict ?? true });
  const quantConfig = resolveQuantizationConfig(raw, opts.quantizationConfig);
  const bnb = quantConfig !== undefined ? new BnbLoader(model, quantConfig) : undefined;
  // Read straight onto a GPU and cast there, a checkpoint would sit on it in both dtypes at once: when
  // a dtype is asked for, read to the CPU, where assign() casts each tensor before it moves.
  const readDevice = dtype !== undefined && device !== 'cpu' && device !== 'meta' ? 'cpu' : device;
  try {
    for (const [i, file] of files.entries()) {
      if (kind === 'safetensors') {
        const header = headers[i];
        let shapes = new Map([...header.tensors].map(([k, e]) => [k, e.shape]));
        if (bnb !== undefined) {
          loader.decidePrefix([...shapes.keys()].map((k) => k.replace(/\.weight\..*$/, '.weight')));
          shapes = bnb.takePrequantized(shapes, (n) => loader.keyOf(n));
        }
        loader.check(file, shapes);
        if (device === 'meta') {
          loader.markPresent(shapes.keys());
          if (bnb !== undefined) loader.markPresent(bnb.prequantizedWeights);
          continue;
        }
        if (bnb === undefined) {
          if (dtype === undefined) {
            loader.assign(await loadSafetensors(file, { device: readDevice }));
            continue;
          }
          // Cast on load: a decoder layer at a time, so that the file's dtype and the model's are never
          // both whole in memory (a 97M Llama's float32 file loaded as bfloat16 peaked 1035 MiB read whole).
          for (const group of BnbLoader.layerGroups([...shapes.keys()])) loader.assign(await loadSafetensors(file, { device: readDevice, keys: group }));
          continue;
        }
        // bitsandbytes: the saved 4-bit modules first, then the float tensors a decoder layer at a time,
        // each layer's Linear weights quantized before the next is read.
        loader.markPresent(await bnb.loadPrequantized(file, header.tensors.keys(), (n) => loader.keyOf(n), device));
        for (const group of BnbLoader.layerGroups([...shapes.keys()])) {
          loader.assign(await loadSafetensors(file, { device, keys: group }));
          loader.install();
          if (!bnb.hasPrequantized) bnb.quantizeLoaded();
        }
      } else {
        if (bnb !== undefined) throw new Error(`quantizationConfig: quantizing on load reads safetensors checkpoints; '${file}' is a torch.save file`);
        // torch.save files have no separate header: the tensors are read (on the CPU for a meta load).
        const tensors = await loadTorchBin(file, { device: device === 'meta' ? 'cpu' : readDevice });
        const entries = Object.entries(tensors);
        try {
          loader.check(file, new Map(entries.map(([k, t]) => [k, t.shape])));
        } catch (e) {
          for (const [, t] of entries) t.dispose();
          throw e;
        }
        if (device === 'meta') {
          loader.markPresent(entries.map(([k]) => k));
          for (const [, t] of entries) t.dispose();
        } else {
          loader.assign(tensors);
        }
      }
    }
    loader.finish(dir);
    loader.install();
    // A 'meta' load of a 4-bit model: its Linear layers take their 4-bit shapes (nothing is read).
    if (bnb !== undefined && device === 'meta') bnb.quantizeLoaded({ meta: true });
    // Non-persistent buffers (rotary inv_freq) are computed, not loaded.
    for (const m of model.modules()) {
      const reset = (m as { resetBuffers?: (o: { device?: Device }) => void }).resetBuffers;
      if (typeof reset === 'function') reset.call(m, { device });
    }
  } catch (e) {
    loader.discard();
    model.dispose();
    throw e;
  }
  if (quantConfig !== undefined) model.quantizationConfig = quantConfig;
  model.eval();
  model.nameOrPath = dir;
  model.generationConfig = readGenerationConfig(dir);
  return model;
}

/** Parameters of a model, counted as transformers' num_parameters() (tied weights once). */
export function numParameters(model: Module, opts: { onlyTrainable?: boolean } = {}): number {
  let n = 0;
  for (const p of model.parameters()) if (!opts.onlyTrainable || p.requiresGrad) n += p.numel();
  return n;
}

