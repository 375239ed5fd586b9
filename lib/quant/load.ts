// The bitsandbytes side of AutoModelForCausalLM.fromPretrained: which Linear layers become Linear4bit
// (transformers' should_convert_module), quantizing them as their weights arrive (one decoder layer at a
// time, so the float model is never held whole), and reading a folder saved in bitsandbytes' format.
import { DType } from '../dtype';
import { loadSafetensors } from '../io/safetensors';
import { Conv1D } from '../nn/conv1d';
import { Linear } from '../nn/linear';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { pyMatch } from '../peft/python-regex';
import { Device, Tensor } from '../tensor';
import { BitsAndBytesConfig } from './bnb-config';
import { QuantState, QuantType } from './functional';
import { Linear4bit } from './linear-4bit';
import { Linear8bit } from './linear-8bit';
import { empty } from '../creation';

const QUANT_STATE_KEY = /^(.*)\.weight\.quant_state\.bitsandbytes__(nf4|fp4)$/;
const QUANT_SUFFIXES = ['weight', 'weight.absmax', 'weight.quant_map', 'weight.nested_absmax', 'weight.nested_quant_map'];

/**
 * The quantization config of a load: the caller's (quantizationConfig) or config.json's quantization_config
 * (a pre-quantized folder; the caller's, if also given, must agree on 4-bit vs 8-bit).
 */
export function resolveQuantizationConfig(raw: Record<string, unknown>, given?: BitsAndBytesConfig): BitsAndBytesConfig | undefined {
  const saved = raw.quantization_config;
  if (saved !== undefined && saved !== null) {
    if (typeof saved !== 'object') throw new Error('config.json: quantization_config must be an object');
    const fromFile = BitsAndBytesConfig.fromDict(saved as Record<string, unknown>, "config.json's quantization_config");
    // As transformers: the checkpoint's own config wins (its weights are already quantized that way).
    return fromFile.quantized ? fromFile : given;
  }
  if (given !== undefined && !(given instanceof BitsAndBytesConfig))
    throw new TypeError('quantizationConfig must be a BitsAndBytesConfig');
  return given?.quantized ? given : undefined;
}

/** transformers' should_convert_module: not when a pattern matches as a prefix (regex, at the start) or ends the name. */
export function shouldConvertModule(name: string, patterns: string[]): boolean {
  return !patterns.some((key) => pyMatch(`${key}\\.`, name) !== null || pyMatch(key, name) !== null || name.endsWith(key));
}

/** The modules kept in full precision: llm_int8_skip_modules, else the output head (transformers' get_keys_to_not_convert). */
export function modulesToNotConvert(cfg: BitsAndBytesConfig): string[] {
  return cfg.llmInt8SkipModules ?? ['lm_head'];
}

/**
 * A float layer bitsandbytes replaces: an nn.Linear, or GPT-2's Conv1D (weight stored [in, out]), which
 * transformers turns into a Linear4bit/Linear8bitLt holding the weight transposed to Linear's [out, in].
 */
export type FloatLinear = Linear | Conv1D;

/** The [out, in] features and the bias of a Linear or Conv1D. */
export function linearShape(m: FloatLinear): { inFeatures: number; outFeatures: number; bias?: Parameter } {
  if (m instanceof Conv1D) return { inFeatures: m.nx, outFeatures: m.nf, bias: m.bias };
  return { inFeatures: m.inFeatures, outFeatures: m.outFeatures, bias: m.bias instanceof Parameter ? m.bias : undefined };
}

function setChild(model: Module, name: string, m: Module): void {
  const dot = name.lastIndexOf('.');
  const parent = dot < 0 ? model : model.getSubmodule(name.slice(0, dot));
  (parent as unknown as Record<string, unknown>)[name.slice(dot + 1)] = m;
}

export interface QuantizedLoadOptions {
  device: Device;
}

/** One fromPretrained's quantization: created after the model is built on 'meta'. */
export class BnbLoader {
  readonly skip: string[];
  /** pre-quantized module name -> its quant type, found in the checkpoint headers */
  private readonly prequantized = new Map<string, QuantType | 'int8'>();
  /** the checkpoint names of their weights (a 'meta' load marks them present) */
  readonly prequantizedWeights: string[] = [];

  constructor(
    private readonly model: Module,
    readonly config: BitsAndBytesConfig,
  ) {
    this.skip = modulesToNotConvert(config);
  }

  // As transformers: exactly nn.Linear (not its subclasses), or any Conv1D.
  private convertible(name: string, m: Module): m is FloatLinear {
    return (m.constructor === Linear || m instanceof Conv1D) && shouldConvertModule(name, this.skip);
  }

  /**
   * Splits one file's names: the keys of modules saved by bitsandbytes' Linear4bit (they have a
   * weight.quant_state.bitsandbytes__* entry) are taken out, for loadPrequantized; the rest are returned.
   */
  takePrequantized(shapes: Map<string, number[]>, keyOf: (name: string) => string): Map<string, number[]> {
    const mods = new Map<string, string>(); // checkpoint prefix -> model name
    for (const name of shapes.keys()) {
      const m8 = /^(.*)\.SCB$/.exec(name);
      if (m8 !== null) {
        // Linear8bitLt's saved layer: weight (int8), SCB, weight_format
        const modelName = keyOf(m8[1]);
        this.prequantized.set(modelName, 'int8');
        mods.set(m8[1], modelName);
        this.prequantizedWeights.push(`${m8[1]}.weight`);
        continue;
      }
      const m = QUANT_STATE_KEY.exec(name);
      if (m === null) continue;
      const modelName = keyOf(m[1]);
      this.prequantized.set(modelName, m[2] as QuantType);
      mods.set(m[1], modelName);
      this.prequantizedWeights.push(`${m[1]}.weight`);
    }
    if (mods.size === 0) return shapes;
    const rest = new Map(shapes);
    for (const prefix of mods.keys()) {
      for (const s of QUANT_SUFFIXES) rest.delete(`${prefix}.${s}`);
      rest.delete(`${prefix}.SCB`);
      rest.delete(`${prefix}.weight_format`);
      rest.delete(`${prefix}.weight.quant_state.bitsandbytes__${this.prequantized.get(mods.get(prefix)!)}`);
    }
    return rest;
  }

  /** The checkpoint names of the pre-quantized weights in a file (all of a module's quant keys). */
  prequantizedNames(names: Iterable<string>, keyOf: (name: string) => string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const name of names) {
      const m = /^(.*)\.(?:weight(?:\..*)?|SCB|weight_format)$/.exec(name);
      if (m === null) continue;
      const modelName = keyOf(m[1]);
      if (!this.prequantized.has(modelName)) continue;
      if (!out.has(m[1])) out.set(m[1], []);
      out.get(m[1])!.push(name);
    }
    return out;
  }

  /** Builds Linear4bit modules from a file's bitsandbytes tensors, in place of the model's meta Linear layers. */
  async loadPrequantized(file: string, names: Iterable<string>, keyOf: (name: string) => string, device: Device): Promise<string[]> {
    const groups = this.prequantizedNames(names, keyOf);
    const loadedWeights: string[] = [];
    for (const [prefix, keys] of groups) {
      const modelName = keyOf(prefix);
      const target = this.model.getSubmodule(modelName);
      if (!(target instanceof Linear || target instanceof Conv1D))
        throw new Error(`'${file}' holds a bitsandbytes quantized weight for '${modelName}', which is a ${target.reprName()}, not a Linear or Conv1D layer`);
      const t = await loadSafetensors(file, { device, keys });
      const local: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(t)) local[k.slice(prefix.length + 1)] = v;
      let m: Module;
      try {
        m =
          this.prequantized.get(modelName) === 'int8'
            ? linear8bitFromStateDict(modelName, target, local, file)
            : linear4bitFromStateDict(modelName, target, local, this.config.bnb4bitComputeDtype, file);
      } catch (e) {
        for (const v of Object.values(local)) v.dispose();
        throw e;
      }
      target.weight.dispose();
      setChild(this.model, modelName, m);
      loadedWeights.push(`${prefix}.weight`);
    }
    return loadedWeights;
  }

  /** Whether the checkpoint was saved quantized (then no quantization happens on load). */
  get hasPrequantized(): boolean {
    return this.prequantized.size > 0;
  }

  /**
   * The names of a file in groups that are loaded (and then quantized) together: one group per decoder
   * layer ('.layers.N.' or GPT-2's '.h.N.'), the rest (embeddings, norms, head) alone, in file order.
   */
  static layerGroups(names: string[]): string[][] {
    const groups = new Map<string, string[]>();
    for (const n of names) {
      const m = /^(.*?\.(?:layers|h)\.\d+)\./.exec(n);
      const key = m ? m[1] : n;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(n);
    }
    return [...groups.values()];
  }

  /**
   * Replaces every loaded float Linear that is not skipped with a Linear4bit and frees the float weight;
   * with `meta`, the Linear layers still on 'meta' become meta Linear4bit layers (shapes only).
   */
  quantizeLoaded(opts: { meta?: boolean } = {}): number {
    const todo: [string, FloatLinear][] = [];
    for (const [name, m] of this.model.namedModules())
      if (this.convertible(name, m) && (m.weight.device === 'meta') === (opts.meta ?? false)) todo.push([name, m]);
    const lin4 = {
      quantType: this.config.bnb4bitQuantType,
      blocksize: this.config.blocksize,
      compressStatistics: this.config.bnb4bitUseDoubleQuant,
      computeDtype: this.config.bnb4bitComputeDtype,
    };
    for (const [name, lin] of todo) {
      const { inFeatures, outFeatures, bias } = linearShape(lin);
      const fromConv1D = lin instanceof Conv1D;
      let q: Module;
      if (this.config.loadIn8bit)
        q = opts.meta
          ? new Linear8bit(inFeatures, outFeatures, empty([outFeatures, inFeatures], { device: 'meta', dtype: 'int8' }), empty([outFeatures], { device: 'meta' }), { bias, fromConv1D })
          : Linear8bit.fromLinear(lin);
      else
        q = opts.meta
          ? Linear4bit.meta(inFeatures, outFeatures, { ...lin4, bias, dtype: lin.weight.dtype, fromConv1D })
          : Linear4bit.fromLinear(lin, lin4);
      lin.weight.dispose();
      setChild(this.model, name, q);
    }
    return todo.length;
  }
}

/**
 * Quantizes a model's Linear layers in place as fromPretrained({ quantizationConfig }) does (all but the
 * output head and the skip modules); on a 'meta' model, shapes only (e.g. to size Llama-2-7B in 4 bits).
 */
export function quantizeModel(model: Module, config: BitsAndBytesConfig): number {
  const q = new BnbLoader(model, config);
  return q.quantizeLoaded() + q.quantizeLoaded({ meta: true });
}

/** A Linear8bit from Linear8bitLt's saved entries (weight int8 [out, in], SCB float32 [out], weight_format). */
export function linear8bitFromStateDict(name: string, like: FloatLinear, t: Record<string, Tensor>, file: string): Linear8bit {
  const where = `'${file}', module '${name}'`;
  const { inFeatures, outFeatures, bias } = linearShape(like);
  const w = t.weight;
  const scb = t.SCB;
  if (w === undefined || scb === undefined) throw new Error(`${where}: an 8-bit layer needs weight and SCB entries`);
  // A Conv1D's too: bitsandbytes holds it transposed, [out, in].
  if (w.dtype !== 'int8' || w.shape.length !== 2 || w.shape[0] !== outFeatures || w.shape[1] !== inFeatures)
    throw new Error(`${where}: weight must be int8 [${outFeatures}, ${inFeatures}], got ${w.dtype} [${w.shape.join(', ')}]`);
  const format = t.weight_format;
  if (format !== undefined && format.numel() === 1 && Number(format.item()) !== 0)
    throw new Error(`${where}: weight_format ${String(format.item())} is not row-major (0); only row-major 8-bit weights load`);
  format?.dispose();
  return new Linear8bit(inFeatures, outFeatures, w, scb, { bias, fromConv1D: like instanceof Conv1D });
}

function nestedDtypeOk(d: unknown): boolean {
  return d === undefined || d === 'float32';
}

/**
 * A Linear4bit from bitsandbytes' saved entries of one module (weight, weight.absmax, weight.quant_map,
 * weight.nested_*, weight.quant_state.bitsandbytes__*), checked against the Linear it replaces.
 */
export function linear4bitFromStateDict(
  name: string,
  like: FloatLinear,
  t: Record<string, Tensor>,
  computeDtype: DType,
  file: string,
): Linear4bit {
  const where = `'${file}', module '${name}'`;
  const { inFeatures, outFeatures, bias } = linearShape(like);
  const qsKey = Object.keys(t).find((k) => k.startsWith('weight.quant_state.bitsandbytes__'));
  if (qsKey === undefined) throw new Error(`${where}: no weight.quant_state.bitsandbytes__nf4/fp4 entry`);
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(Buffer.from(t[qsKey].data() as Uint8Array).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${where}: ${qsKey} is not JSON (${(e as Error).message})`);
  }
  const need = (k: string): Tensor => {
    const v = t[k];
    if (v === undefined) throw new Error(`${where}: the entry ${k} is missing`);
    return v;
  };
  const quantType = info.quant_type;
  if (quantType !== 'nf4' && quantType !== 'fp4') throw new Error(`${where}: quant_type '${String(quantType)}' is not nf4 or fp4`);
  if (qsKey !== `weight.quant_state.bitsandbytes__${quantType}`) throw new Error(`${where}: ${qsKey} says quant_type '${quantType}'`);
  const blocksize = info.blocksize;
  if (typeof blocksize !== 'number' || ![32, 64, 128, 256, 512, 1024, 2048, 4096].includes(blocksize))
    throw new Error(`${where}: blocksize ${String(blocksize)} is not one of bitsandbytes' sizes`);
  const shape = info.shape;
  // [out, in] for a Conv1D too (bitsandbytes quantizes its weight transposed)
  if (!Array.isArray(shape) || shape.length !== 2 || shape[0] !== outFeatures || shape[1] !== inFeatures)
    throw new Error(`${where}: the saved weight shape ${JSON.stringify(shape)} is not the model's [${outFeatures}, ${inFeatures}]`);
  const dtype = info.dtype;
  if (dtype !== 'float32' && dtype !== 'bfloat16' && dtype !== 'float16')
    throw new Error(`${where}: dtype '${String(dtype)}' is not float32, bfloat16 or float16`);
  const packed = need('weight');
  const absmax = need('weight.absmax');
  const quantMap = need('weight.quant_map');
  const n = outFeatures * inFeatures;
  const blocks = Math.ceil(n / blocksize);
  if (absmax.numel() !== blocks) throw new Error(`${where}: weight.absmax has ${absmax.numel()} values, ${blocks} blocks of ${blocksize} need as many`);
  if (quantMap.dtype !== 'float32' || quantMap.numel() !== 16) throw new Error(`${where}: weight.quant_map must be 16 float32 values`);
  const state: QuantState = { quantType, blocksize, dtype, shape: [shape[0], shape[1]], absmax, quantMap };
  if ('weight.nested_absmax' in t || 'nested_offset' in info) {
    const nestedAbsmax = need('weight.nested_absmax');
    const nestedMap = need('weight.nested_quant_map');
    const nb = info.nested_blocksize;
    const offset = info.nested_offset;
    if (typeof nb !== 'number' || !(nb > 0)) throw new Error(`${where}: nested_blocksize ${String(nb)} is not a positive number`);
    if (typeof offset !== 'number' || !Number.isFinite(offset)) throw new Error(`${where}: nested_offset ${String(offset)} is not a finite number`);
    if (!nestedDtypeOk(info.nested_dtype)) throw new Error(`${where}: nested_dtype '${String(info.nested_dtype)}' is not float32`);
    if (absmax.dtype !== 'uint8') throw new Error(`${where}: a double-quantized weight.absmax must be uint8, got ${absmax.dtype}`);
    if (nestedAbsmax.numel() !== Math.ceil(blocks / nb) || nestedAbsmax.dtype !== 'float32')
      throw new Error(`${where}: weight.nested_absmax must be ${Math.ceil(blocks / nb)} float32 values, got ${nestedAbsmax.numel()} of ${nestedAbsmax.dtype}`);
    if (nestedMap.dtype !== 'float32' || nestedMap.numel() !== 256) throw new Error(`${where}: weight.nested_quant_map must be 256 float32 values`);
    state.nested = { absmax: nestedAbsmax, quantMap: nestedMap, blocksize: nb, offset };
  } else if (absmax.dtype !== 'float32') {
    throw new Error(`${where}: weight.absmax must be float32 (without double quantization), got ${absmax.dtype}`);
  }
  return new Linear4bit(inFeatures, outFeatures, packed, state, { bias, computeDtype, quantStateBytes: t[qsKey], fromConv1D: like instanceof Conv1D });
}
