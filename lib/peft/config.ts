// LoraConfig: PEFT's LoraConfig with camelCase fields, and adapter_config.json exactly as PEFT 0.21 writes
// it (every key, snake_case, sorted, 2-space indent, lists for sets) and reads it (unknown keys kept).
import * as fs from 'fs';
import * as path from 'path';
import { CONFIG_NAME, INCLUDE_LINEAR_LAYERS_SHORTHAND, PEFT_VERSION, TASK_TYPES, TaskType } from './constants';
import { writeFileAtomic } from '../io/fs-atomic';
import { putBackFolderSync } from '../io/folder-swap';
import { parseJsonText, readTextFile } from '../io/json-file';
import { pythonJsonDumps } from '../io/python-json';
import { checkPattern } from './python-regex';
import { peftWarn } from './warn';
import { hubIdError, looksLikeHubId } from '../io/local-folder';
import { withContext } from '../error-context';

export type LoraBias = 'none' | 'all' | 'lora_only';
/** true: A kaiming-uniform(a=√5), B zeros; 'gaussian': A ~ N(0, 1/r); false: random A and B (no-op not guaranteed). */
export type InitLoraWeights = boolean | 'gaussian' | 'pissa' | 'olora';
export type { TaskType };

export interface LoraConfigOptions {
  /** The rank (default 8). */
  r?: number;
  /** α: the update is scaled by α/r (α/√r with useRslora). Default 8. */
  loraAlpha?: number;
  /** Dropout on the LoRA input (not on the base path). Default 0. */
  loraDropout?: number;
  /**
   * A list (exact module name, or name ending with "." + entry), a string (a regex that must match the
   * whole module name), 'all-linear' (every Linear/Conv1D but the output head), or null: the default of
   * the model type (llama: q_proj, v_proj; gpt2: c_attn).
   */
  targetModules?: string[] | string | null;
  /** Modules never adapted: a list (as targetModules) or a regex string. */
  excludeModules?: string[] | string | null;
  /** The base stores weight as [in, out] (GPT-2's Conv1D). */
  fanInFanOut?: boolean;
  /** Which biases train: 'none', 'all' (every bias), 'lora_only' (biases of adapted layers). */
  bias?: LoraBias;
  /** Rank-stabilized scaling α/√r. */
  useRslora?: boolean;
  /** Modules trained in full and saved with the adapter (e.g. a new classification head). */
  modulesToSave?: string[] | null;
  initLoraWeights?: InitLoraWeights;
  /** Only these layer indices (with layersPattern naming the ModuleList, e.g. 'layers' or 'h'). */
  layersToTransform?: number[] | number | null;
  layersPattern?: string[] | string | null;
  /** Module name (or regex suffix) -> rank, overriding r. */
  rankPattern?: Record<string, number>;
  /** Module name (or regex suffix) -> α, overriding loraAlpha. */
  alphaPattern?: Record<string, number>;
  /** Weight-decomposed LoRA: a trainable magnitude per output feature. */
  useDora?: boolean;
  /** A bias on lora_B. */
  loraBias?: boolean;
  taskType?: TaskType | null;
  /** Adapters frozen (saved files always say true). */
  inferenceMode?: boolean;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
  /** {base_model_class, parent_library} PEFT records for models without a task type. */
  autoMapping?: Record<string, string> | null;
  /** The PEFT version that wrote the file (default: the one we write, 0.21.0). */
  peftVersion?: string;
  /**
   * Train only these rows of the token embedding (new special tokens) besides the LoRA layers: a list of
   * token ids (the model's input embedding, and the LM head tied to it), or module name -> ids (e.g.
   * { embed_tokens: [...], lm_head: [...] } for an untied head). Saved as PEFT saves them (the rows only).
   */
  trainableTokenIndices?: number[] | Record<string, number[]> | null;
}

/** Keys PEFT writes that belong to features torch-lora does not implement, with PEFT's defaults. */
const PASSTHROUGH_DEFAULTS: Record<string, unknown> = {
  alora_invocation_tokens: null,
  arrow_config: null,
  corda_config: null,
  ensure_weight_tying: false,
  eva_config: null,
  kasa_config: null,
  layer_replication: null,
  loftq_config: {},
  lora_ga_config: null,
  megatron_config: null,
  megatron_core: 'megatron.core',
  monteclora_config: null,
  qalora_group_size: 16,
  target_parameters: null,
  use_bdlora: null,
  use_qalora: false,
  velora_config: null,
};
/** Of those, the ones that change what the adapter computes when set: refused rather than ignored. */
const UNSUPPORTED_WHEN_SET = [
  'alora_invocation_tokens',
  'arrow_config',
  'ensure_weight_tying',
  'kasa_config',
  'layer_replication',
  'monteclora_config',
  'target_parameters',
  'use_bdlora',
  'use_qalora',
  'velora_config',
];

/** camelCase option -> the snake_case key in adapter_config.json. */
const KEYS: Record<keyof LoraConfigOptions, string> = {
  r: 'r',
  loraAlpha: 'lora_alpha',
  loraDropout: 'lora_dropout',
  targetModules: 'target_modules',
  excludeModules: 'exclude_modules',
  fanInFanOut: 'fan_in_fan_out',
  bias: 'bias',
  useRslora: 'use_rslora',
  modulesToSave: 'modules_to_save',
  initLoraWeights: 'init_lora_weights',
  layersToTransform: 'layers_to_transform',
  layersPattern: 'layers_pattern',
  rankPattern: 'rank_pattern',
  alphaPattern: 'alpha_pattern',
  useDora: 'use_dora',
  loraBias: 'lora_bias',
  taskType: 'task_type',
  inferenceMode: 'inference_mode',
  baseModelNameOrPath: 'base_model_name_or_path',
  revision: 'revision',
  autoMapping: 'auto_mapping',
  peftVersion: 'peft_version',
  trainableTokenIndices: 'trainable_token_indices',
};
const FROM_SNAKE: Record<string, keyof LoraConfigOptions> = Object.fromEntries(
  Object.entries(KEYS).map(([camel, snake]) => [snake, camel as keyof LoraConfigOptions]),
);
/** Values PEFT types as float (json writes 0.0, not 0). */
const FLOAT_KEYS = ['lora_dropout'];

function isStringList(x: unknown): x is string[] {
  return Array.isArray(x) && x.every((s) => typeof s === 'string');
}
function uniq(xs: string[]): string[] {
  return [...new Set(xs)];
}
function bad(field: string, want: string, got: unknown): Error {
  return new TypeError(`LoraConfig: ${field} must be ${want}, got ${JSON.stringify(got)}`);
}
function isRecord(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}
/** A shallow copy of a plain object; anything else as it is (for validate() to refuse). */
function copyRecord<T>(x: T): T {
  return (isRecord(x) ? { ...x } : x) as T;
}
/** Object.assign without setters: a '__proto__' key is copied as a key, not made the prototype. */
function assignKeys(to: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(from)) Object.defineProperty(to, k, { value: v, enumerable: true, writable: true, configurable: true });
}
function isDefault(value: unknown, dflt: unknown): boolean {
  return JSON.stringify(value) === JSON.stringify(dflt);
}

export class LoraConfig {
  readonly peftType = 'LORA' as const;
  r: number;
  loraAlpha: number;
  loraDropout: number;
  /** A list (kept in insertion order, no duplicates: PEFT's set), a regex string, or null. */
  targetModules: string[] | string | null;
  excludeModules: string[] | string | null;
  fanInFanOut: boolean;
  bias: LoraBias;
  useRslora: boolean;
  modulesToSave: string[] | null;
  initLoraWeights: InitLoraWeights;
  layersToTransform: number[] | number | null;
  layersPattern: string[] | string | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  useDora: boolean;
  loraBias: boolean;
  taskType: TaskType | null;
  inferenceMode: boolean;
  baseModelNameOrPath: string | null;
  revision: string | null;
  autoMapping: Record<string, string> | null;
  peftVersion: string;
  trainableTokenIndices: number[] | Record<string, number[]> | null;
  /** Keys of features we do not implement (at their defaults) and unknown keys, written back as read. */
  readonly otherKeys: Record<string, unknown>;

  constructor(opts: LoraConfigOptions = {}) {
    for (const k of Object.keys(opts)) {
      if (!Object.hasOwn(KEYS, k)) {
        const snake = k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
        const hint = Object.hasOwn(FROM_SNAKE, k) ? ` (use '${FROM_SNAKE[k]}')` : Object.hasOwn(PASSTHROUGH_DEFAULTS, snake) ? ' (a PEFT feature torch-lora does not implement)' : '';
        throw new TypeError(`LoraConfig: unknown option '${k}'${hint}`);
      }
    }
    this.r = opts.r ?? 8;
    this.loraAlpha = opts.loraAlpha ?? 8;
    this.loraDropout = opts.loraDropout ?? 0;
    // Lists and objects are copied only when they are lists and objects: anything else is kept as given,
    // so that validate() names it (spreading a string would turn 'lm_head' into its letters).
    const tm = opts.targetModules ?? null;
    this.targetModules = Array.isArray(tm) ? uniq(tm) : tm;
    const em = opts.excludeModules ?? null;
    this.excludeModules = Array.isArray(em) ? uniq(em) : em;
    this.fanInFanOut = opts.fanInFanOut ?? false;
    this.bias = opts.bias ?? 'none';
    this.useRslora = opts.useRslora ?? false;
    const ms = opts.modulesToSave ?? null;
    this.modulesToSave = Array.isArray(ms) ? [...ms] : ms;
    this.initLoraWeights = opts.initLoraWeights ?? true;
    const lt = opts.layersToTransform ?? null;
    this.layersToTransform = Array.isArray(lt) ? [...lt] : lt;
    const lp = opts.layersPattern ?? null;
    this.layersPattern = Array.isArray(lp) ? [...lp] : lp;
    this.rankPattern = copyRecord(opts.rankPattern ?? {});
    this.alphaPattern = copyRecord(opts.alphaPattern ?? {});
    this.useDora = opts.useDora ?? false;
    this.loraBias = opts.loraBias ?? false;
    this.taskType = opts.taskType ?? null;
    this.inferenceMode = opts.inferenceMode ?? false;
    this.baseModelNameOrPath = opts.baseModelNameOrPath ?? null;
    this.revision = opts.revision ?? null;
    this.autoMapping = copyRecord(opts.autoMapping ?? null);
    this.peftVersion = opts.peftVersion ?? PEFT_VERSION;
    const tt = opts.trainableTokenIndices ?? null;
    this.trainableTokenIndices = Array.isArray(tt) ? [...tt] : isRecord(tt) ? Object.fromEntries(Object.entries(tt).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v])) : tt;
    this.otherKeys = { ...PASSTHROUGH_DEFAULTS };
    this.validate();
  }

  /** Checks every field as PEFT's __post_init__ does (and the types PEFT's dataclass implies). */
  validate(): void {
    const posInt = (x: unknown) => Number.isInteger(x) && (x as number) > 0;
    if (!posInt(this.r)) throw bad('r', 'a positive integer', this.r);
    if (typeof this.loraAlpha !== 'number' || !Number.isFinite(this.loraAlpha)) throw bad('loraAlpha', 'a finite number', this.loraAlpha);
    if (typeof this.loraDropout !== 'number' || !(this.loraDropout >= 0 && this.loraDropout < 1))
      throw bad('loraDropout', 'a probability in [0, 1)', this.loraDropout);
    const tm = this.targetModules;
    if (tm !== null && typeof tm !== 'string' && !isStringList(tm)) throw bad('targetModules', 'a list of names, a regex string or null', tm);
    if (typeof tm === 'string' && tm.toLowerCase() !== INCLUDE_LINEAR_LAYERS_SHORTHAND) checkPattern(tm, 'LoraConfig: targetModules');
    const em = this.excludeModules;
    if (em !== null && typeof em !== 'string' && !isStringList(em)) throw bad('excludeModules', 'a list of names, a regex string or null', em);
    if (typeof em === 'string') checkPattern(em, 'LoraConfig: excludeModules');
    if (!['none', 'all', 'lora_only'].includes(this.bias)) throw bad('bias', "'none', 'all' or 'lora_only'", this.bias);
    // PEFT types modules_to_save as a list: a string would be iterated letter by letter there (every
    // module whose name ends in one of its characters would be wrapped), so it has no meaning; refuse it.
    const ms = this.modulesToSave;
    if (typeof ms === 'string') throw bad('modulesToSave', `a list of module names (e.g. [${JSON.stringify(ms)}]), not a string`, ms);
    if (ms !== null && !isStringList(ms)) throw bad('modulesToSave', 'a list of module names or null', ms);
    const init = this.initLoraWeights;
    if (!(typeof init === 'boolean' || init === 'gaussian' || init === 'pissa' || init === 'olora')) {
      const hint = typeof init === 'string' ? ' (PEFT also has eva, corda, loftq, pissa_niter_N, orthogonal, lora_ga, mica: not implemented here)' : '';
      throw bad('initLoraWeights', "true, false, 'gaussian', 'pissa' or 'olora'", init + hint);
    }
    const lt = this.layersToTransform;
    if (lt !== null && !(Number.isInteger(lt) || (Array.isArray(lt) && lt.every((i) => Number.isInteger(i)))))
      throw bad('layersToTransform', 'a layer index, a list of them, or null', lt);
    const lp = this.layersPattern;
    if (lp !== null && typeof lp !== 'string' && !isStringList(lp)) throw bad('layersPattern', 'a string, a list of strings or null', lp);
    const am = this.autoMapping;
    if (am !== null && !(isRecord(am) && Object.values(am).every((v) => typeof v === 'string' || v === null)))
      throw bad('autoMapping', 'an object of name -> string or null', am);
    if (typeof tm === 'string' && lt !== null) throw new Error('LoraConfig: layersToTransform cannot be used when targetModules is a string (a regex)');
    if (typeof tm === 'string' && lp !== null) throw new Error('LoraConfig: layersPattern cannot be used when targetModules is a string (a regex)');
    if (lp && (lp.length > 0) && lt === null) throw new Error('LoraConfig: when layersPattern is given, layersToTransform must be given too');
    for (const [name, pat] of [['rankPattern', this.rankPattern], ['alphaPattern', this.alphaPattern]] as const) {
      if (!isRecord(pat)) throw bad(name, 'an object of name -> number', pat);
      for (const [k, v] of Object.entries(pat)) {
        if (name === 'rankPattern' ? !posInt(v) : typeof v !== 'number' || !Number.isFinite(v))
          throw bad(`${name}[${JSON.stringify(k)}]`, name === 'rankPattern' ? 'a positive integer' : 'a finite number', v);
        checkPattern(k, `LoraConfig: ${name} key`);
      }
    }
    for (const [name, v] of [['baseModelNameOrPath', this.baseModelNameOrPath], ['revision', this.revision]] as const)
      if (v !== null && typeof v !== 'string') throw bad(name, 'a string or null', v);
    if (typeof this.peftVersion !== 'string') throw bad('peftVersion', 'a string', this.peftVersion);
    for (const [name, v] of [['fanInFanOut', this.fanInFanOut], ['useRslora', this.useRslora], ['useDora', this.useDora], ['loraBias', this.loraBias], ['inferenceMode', this.inferenceMode]] as const)
      if (typeof v !== 'boolean') throw bad(name, 'a boolean', v);
    if (this.loraBias && typeof init !== 'boolean')
      throw new Error(`LoraConfig: loraBias=true is only supported with initLoraWeights true or false, got ${JSON.stringify(init)}`);
    if (this.loraBias && this.useDora) throw new Error('LoraConfig: loraBias=true is not supported with DoRA (useDora)');
    const tt = this.trainableTokenIndices;
    const ids = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((i) => Number.isInteger(i) && i >= 0);
    if (tt !== null && !ids(tt) && !(isRecord(tt) && Object.keys(tt).length > 0 && Object.values(tt).every(ids)))
      throw bad('trainableTokenIndices', 'a non-empty list of token ids (non-negative integers), an object of module name -> such a list, or null', tt);
    if (isRecord(tt) && this.modulesToSave)
      for (const name of Object.keys(tt))
        if (this.modulesToSave.includes(name))
          throw new Error(
            `LoraConfig: '${name}' is in both modulesToSave (trained in full) and trainableTokenIndices (some rows trained): give it in one of them`,
          );
    if (this.taskType !== null && !(TASK_TYPES as readonly string[]).includes(this.taskType))
      throw bad('taskType', `one of ${TASK_TYPES.join(', ')} or null`, this.taskType);
    for (const key of UNSUPPORTED_WHEN_SET) {
      const v = this.otherKeys?.[key];
      if (v !== undefined && !isDefault(v, PASSTHROUGH_DEFAULTS[key]) && !(key === 'target_parameters' && Array.isArray(v) && v.length === 0))
        throw new Error(`LoraConfig: ${key}=${JSON.stringify(v)} is a PEFT feature torch-lora does not implement`);
    }
  }

  /** A copy with some fields replaced (dataclasses.replace). */
  replace(changes: LoraConfigOptions): LoraConfig {
    const c = new LoraConfig({ ...this.toOptions(), ...changes });
    assignKeys(c.otherKeys, structuredClone(this.otherKeys));
    c.validate();
    return c;
  }

  /** The camelCase options this config was made of. */
  toOptions(): LoraConfigOptions {
    const o: Record<string, unknown> = {};
    for (const camel of Object.keys(KEYS)) o[camel] = structuredClone((this as unknown as Record<string, unknown>)[camel]);
    return o as LoraConfigOptions;
  }

  /** adapter_config.json's content: every key PEFT 0.21 writes, snake_case (sets as lists). */
  toDict(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...structuredClone(this.otherKeys), peft_type: this.peftType };
    for (const [camel, snake] of Object.entries(KEYS)) out[snake] = structuredClone((this as unknown as Record<string, unknown>)[camel]);
    return out;
  }
  /** For JSON.stringify(config): the same object as toDict(). */
  toJSON(): Record<string, unknown> {
    return this.toDict();
  }
  /** The exact text PEFT writes to adapter_config.json (json.dumps(indent=2, sort_keys=True)). */
  toJSONString(): string {
    return pythonJsonDumps(this.toDict(), FLOAT_KEYS);
  }

  /**
   * A config from adapter_config.json's content (a parsed object or the text). Unknown keys are kept (and
   * written back) with a warning; features we do not implement are refused when set.
   */
  static fromDict(json: Record<string, unknown> | string, opts: { quiet?: boolean; source?: string } = {}): LoraConfig {
    const where = opts.source ? ` in ${opts.source}` : '';
    // Python's json.loads reads what PEFT writes (NaN included); a syntax error names the file.
    const obj = (typeof json === 'string' ? parseJsonText(json, opts.source ?? '<string>', 'adapter config') : copyRecord(json)) as Record<string, unknown>;
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new TypeError(`LoraConfig.fromDict: expected a JSON object${where}`);
    if (obj.peft_type !== undefined && obj.peft_type !== 'LORA')
      throw new Error(`LoraConfig: peft_type is ${JSON.stringify(obj.peft_type)}${where}; only LORA adapters are supported`);
    if ('runtime_config' in obj) {
      if (!opts.quiet) peftWarn(`The configuration${where} contains a runtime_config key. This is ignored.`);
      delete obj.runtime_config;
    }
    const options: Record<string, unknown> = {};
    const other: Record<string, unknown> = {};
    const unknown: string[] = [];
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'peft_type') continue;
      // Own keys only: '__proto__' or 'constructor' in the file are unknown keys, not Object's members.
      const camel = Object.hasOwn(FROM_SNAKE, k) ? FROM_SNAKE[k] : undefined;
      if (camel !== undefined) options[camel] = v;
      else {
        Object.defineProperty(other, k, { value: v, enumerable: true, writable: true, configurable: true });
        if (!Object.hasOwn(PASSTHROUGH_DEFAULTS, k)) unknown.push(k);
      }
    }
    if (unknown.length && !opts.quiet)
      peftWarn(`adapter config${where} has keys torch-lora does not know: ${unknown.join(', ')}; they are kept and written back unchanged`);
    // JSON null for fields PEFT types as dicts/bools means "default" to PEFT's dataclass only for the
    // optional ones; keep nulls where PEFT allows them.
    for (const k of ['rankPattern', 'alphaPattern'] as const) if (options[k] === null) options[k] = {};
    try {
      const config = new LoraConfig(options as LoraConfigOptions);
      assignKeys(config.otherKeys, other);
      config.validate();
      return config;
    } catch (e) {
      // Name the file the bad value came from.
      if (where) withContext(e, where);
      throw e;
    }
  }

  /** The same as fromDict (the parsed object or the text of adapter_config.json). */
  static fromJSON(json: Record<string, unknown> | string, opts: { quiet?: boolean; source?: string } = {}): LoraConfig {
    return LoraConfig.fromDict(json, opts);
  }

  /** Reads `dir`/adapter_config.json (or `dir`/`subfolder`/adapter_config.json). */
  static fromPretrained(dir: string, opts: { subfolder?: string } = {}): LoraConfig {
    if (looksLikeHubId(dir)) throw hubIdError(dir, 'adapter folder');
    const folder = opts.subfolder ? path.join(dir, opts.subfolder) : dir;
    // A save killed between its folder swap's two renames left the folder aside: put it back first, as
    // PeftModel.fromPretrained's read does (saves swap the whole folder given to savePretrained).
    putBackFolderSync(dir);
    if (folder !== dir) putBackFolderSync(folder);
    const file = path.join(folder, CONFIG_NAME);
    if (!fs.existsSync(file)) throw new Error(`Can't find '${CONFIG_NAME}' at '${folder}'`);
    return LoraConfig.fromDict(readTextFile(file, 'adapter config'), { source: file });
  }

  /** Writes `dir`/adapter_config.json atomically (the directory is created). */
  async savePretrained(dir: string): Promise<void> {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory())
      throw new Error(`LoraConfig.savePretrained: '${dir}' should be a directory, not a file`);
    await fs.promises.mkdir(dir, { recursive: true });
    await writeFileAtomic(path.join(dir, CONFIG_NAME), this.toJSONString());
  }
}
