// transformers' BitsAndBytesConfig in camelCase, and its config.json form (quantization_config).
import { DType } from '../dtype';
import { PyFloat } from '../io/python-json';
import { QuantType } from './functional';

export interface BitsAndBytesConfigOptions {
  loadIn4bit?: boolean;
  loadIn8bit?: boolean;
  /** 'fp4' (transformers' default) or 'nf4'. */
  bnb4bitQuantType?: QuantType;
  /** Double quantization of the absmax (8-bit, blocks of 256). Default false. */
  bnb4bitUseDoubleQuant?: boolean;
  /** The dtype Linear4bit computes in. Default float32. */
  bnb4bitComputeDtype?: DType;
  /** Modules kept in full precision besides the output head (names or name suffixes, as transformers). */
  llmInt8SkipModules?: string[];
  /** LLM.int8's outlier threshold; recorded and written back (this CPU path keeps no outlier columns). */
  llmInt8Threshold?: number;
}

const COMPUTE_DTYPES: DType[] = ['float32', 'bfloat16', 'float16'];

export class BitsAndBytesConfig {
  readonly loadIn4bit: boolean;
  readonly loadIn8bit: boolean;
  readonly bnb4bitQuantType: QuantType;
  readonly bnb4bitUseDoubleQuant: boolean;
  readonly bnb4bitComputeDtype: DType;
  readonly llmInt8SkipModules?: string[];
  readonly llmInt8Threshold: number;
  /** The block size of 4-bit weights (bitsandbytes' Linear4bit default; not a transformers option). */
  readonly blocksize = 64;

  constructor(opts: BitsAndBytesConfigOptions = {}) {
    this.loadIn4bit = opts.loadIn4bit ?? false;
    this.loadIn8bit = opts.loadIn8bit ?? false;
    if (this.loadIn4bit && this.loadIn8bit) throw new Error('BitsAndBytesConfig: loadIn4bit and loadIn8bit cannot both be true');
    this.bnb4bitQuantType = opts.bnb4bitQuantType ?? 'fp4';
    if (this.bnb4bitQuantType !== 'nf4' && this.bnb4bitQuantType !== 'fp4')
      throw new Error(`BitsAndBytesConfig: bnb4bitQuantType must be 'nf4' or 'fp4', got '${String(this.bnb4bitQuantType)}'`);
    this.bnb4bitUseDoubleQuant = opts.bnb4bitUseDoubleQuant ?? false;
    this.bnb4bitComputeDtype = opts.bnb4bitComputeDtype ?? 'float32';
    if (!COMPUTE_DTYPES.includes(this.bnb4bitComputeDtype))
      throw new Error(`BitsAndBytesConfig: bnb4bitComputeDtype must be one of ${COMPUTE_DTYPES.join(', ')}, got '${String(this.bnb4bitComputeDtype)}'`);
    if (opts.llmInt8SkipModules !== undefined) {
      if (!Array.isArray(opts.llmInt8SkipModules) || opts.llmInt8SkipModules.some((m) => typeof m !== 'string'))
        throw new Error('BitsAndBytesConfig: llmInt8SkipModules must be an array of module names');
      this.llmInt8SkipModules = [...opts.llmInt8SkipModules];
    }
    this.llmInt8Threshold = opts.llmInt8Threshold ?? 6.0;
  }

  /** Whether anything is quantized. */
  get quantized(): boolean {
    return this.loadIn4bit || this.loadIn8bit;
  }

  /** config.json's quantization_config, as transformers' to_dict() (snake_case). */
  toDict(): Record<string, unknown> {
    return {
      _load_in_4bit: this.loadIn4bit,
      _load_in_8bit: this.loadIn8bit,
      bnb_4bit_compute_dtype: this.bnb4bitComputeDtype,
      bnb_4bit_quant_storage: 'uint8',
      bnb_4bit_quant_type: this.bnb4bitQuantType,
      bnb_4bit_use_double_quant: this.bnb4bitUseDoubleQuant,
      llm_int8_enable_fp32_cpu_offload: false,
      llm_int8_has_fp16_weight: false,
      llm_int8_skip_modules: this.llmInt8SkipModules ?? null,
      llm_int8_threshold: new PyFloat(this.llmInt8Threshold),
      load_in_4bit: this.loadIn4bit,
      load_in_8bit: this.loadIn8bit,
      quant_method: 'bitsandbytes',
    };
  }

  /** From config.json's quantization_config (transformers' from_dict); refuses other quant methods. */
  static fromDict(d: Record<string, unknown>, where = 'quantization_config'): BitsAndBytesConfig {
    const method = d.quant_method;
    if (method !== undefined && method !== 'bitsandbytes')
      throw new Error(`${where}: quant_method '${String(method)}' is not supported (only 'bitsandbytes' checkpoints load)`);
    const storage = d.bnb_4bit_quant_storage;
    if (storage !== undefined && storage !== null && storage !== 'uint8')
      throw new Error(`${where}: bnb_4bit_quant_storage '${String(storage)}' is not supported (only uint8)`);
    const bool = (k: string) => d[k] === true;
    const skip = d.llm_int8_skip_modules;
    return new BitsAndBytesConfig({
      loadIn4bit: bool('load_in_4bit') || bool('_load_in_4bit'),
      loadIn8bit: bool('load_in_8bit') || bool('_load_in_8bit'),
      bnb4bitQuantType: (d.bnb_4bit_quant_type as QuantType | undefined) ?? 'fp4',
      bnb4bitUseDoubleQuant: bool('bnb_4bit_use_double_quant'),
      bnb4bitComputeDtype: (d.bnb_4bit_compute_dtype as DType | undefined) ?? 'float32',
      llmInt8SkipModules: Array.isArray(skip) ? (skip as string[]) : undefined,
      llmInt8Threshold: typeof d.llm_int8_threshold === 'number' ? d.llm_int8_threshold : undefined,
    });
  }
}
