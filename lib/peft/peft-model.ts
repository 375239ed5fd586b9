// PeftModel: what getPeftModel returns and PeftModel.fromPretrained loads. It holds the LoraModel as
// `base_model` (which holds the base model as `model`), so parameter names are PEFT's:
// base_model.model.fc1.lora_A.default.weight. Adapters are added, switched, merged, saved and loaded here.
import * as fs from 'fs';
import * as path from 'path';
import { Module } from '../nn';
import { Device, Tensor } from '../tensor';
import { LoraConfig } from './config';
import { PEFT_MODEL_CLASS_NAMES, PEFT_VERSION } from './constants';
import { assertAllFinite } from '../finite';
import { writeFileAtomic } from '../io/fs-atomic';
import { requireLocalFolder } from '../io/local-folder';
import { autoMappingOf, isPretrainedLike, modelConfigInfo, modelNameOrPath } from './model-info';
import { readConsistently, replaceFolder } from '../io/folder-swap';
import { getPeftModelStateDict, loadPeftWeights, saveAdapterWeights, setPeftModelStateDict, writeModelCard } from './save-and-load';
import { AddWeightedAdapterOptions, LoraModel } from './tuner';
import { LoraLayer } from './layers/lora-layer';
import { peftWarn } from './warn';
import { checkOptions, OptionKeys } from '../options';
import { DecoderOnlyLM } from '../models/decoder-only-lm';
import { generate, GenerateOptions } from '../models/generate';
import type { CausalLM, CausalLMInput, CausalLMOutput } from '../models/causal-lm';
import { withContext } from '../error-context';

export interface SavePretrainedOptions {
  /** true (default): adapter_model.safetensors; false: adapter_model.bin (torch.save format). */
  safeSerialization?: boolean;
  /** Which adapters to save (default: all). Non-default adapters go to subfolders named after them. */
  selectedAdapters?: string[];
  /** 'auto' (default): embedding tables are saved when targeted. */
  saveEmbeddingLayers?: boolean | 'auto';
}

/** @internal */
export const FROM_PRETRAINED_OPTIONS: OptionKeys<FromPretrainedOptions> = {
  adapterName: true, isTrainable: true, config: true, autocastAdapterDtype: true, device: true, subfolder: true,
}; // prettier-ignore

export interface FromPretrainedOptions {
  adapterName?: string;
  /** false (default): the adapter is frozen and the model put in eval mode. */
  isTrainable?: boolean;
  /** A config to use instead of the folder's adapter_config.json. */
  config?: LoraConfig;
  /** Upcast float16/bfloat16 adapter weights to float32 (default true, as PEFT). */
  autocastAdapterDtype?: boolean;
  /** Where the weights are read to before being copied into the model (default cpu). */
  device?: Device;
  /** A subfolder of `dir` holding the adapter. */
  subfolder?: string;
}

/** Python's f'{x:.{digits}f}': correctly rounded, ties to even (JavaScript's toFixed rounds ties up). */
export function pyFixed(x: number, digits: number): string {
  const rounded = x.toFixed(digits);
  const exact = x.toFixed(100); // the double's exact decimal expansion, as far as it goes
  const dot = exact.indexOf('.');
  const rest = exact.slice(dot + 1 + digits);
  if (!/^50*$/.test(rest)) return rounded;
  // A tie: keep the even last digit.
  const down = exact.slice(0, dot + 1 + digits).replace(/\.$/, '');
  const last = Number(down[down.length - 1]);
  return last % 2 === 0 ? down : rounded;
}

/** PEFT's line: `trainable params: 120 || all params: 382 || trainable%: 31.4136`. */
export function formatTrainableParameters(trainable: number, all: number): string {
  const thousands = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
  const pct = all === 0 ? 'nan' : pyFixed((100 * trainable) / all, 4);
  return `trainable params: ${thousands(trainable)} || all params: ${thousands(all)} || trainable%: ${pct}`;
}

/** A causal LM as generate() takes it (a config and forward()). */
function isCausalLM(m: Module): m is Module & CausalLM {
  return typeof (m as { config?: unknown }).config === 'object';
}

/** M: the base model's type, which getBaseModel, mergeAndUnload and unload give back. */
export class PeftModel<M extends Module = Module> extends Module {
  base_model: LoraModel;
  /** The adapter forward uses (PEFT assumes one). */
  activeAdapter: string;
  private adaptersDisabled = false;

  constructor(model: M, config: LoraConfig, adapterName = 'default', opts: { autocastAdapterDtype?: boolean } = {}) {
    super();
    if (!(config instanceof LoraConfig)) throw new TypeError('PeftModel: config must be a LoraConfig');
    this.activeAdapter = adapterName;
    this.base_model = new LoraModel(model, config, adapterName);
    this.base_model.castAdapterDtype(adapterName, opts.autocastAdapterDtype ?? true);
  }

  // ---- what it is ----
  get peftConfig(): Map<string, LoraConfig> {
    return this.base_model.peftConfig;
  }
  get activeAdapters(): string[] {
    return this.base_model.activeAdapters;
  }
  get activePeftConfig(): LoraConfig {
    return this.peftConfig.get(this.activeAdapter)!;
  }
  /** The model the adapters were injected into (modified in place). */
  getBaseModel(): M {
    return this.base_model.model as M;
  }
  /** Names of the modules that got a LoRA layer. */
  get targetedModuleNames(): string[] {
    return [...this.base_model.targetedModuleNames];
  }

  /* eslint-disable @typescript-eslint/no-explicit-any */
  /** The base model's forward, with the adapters in place. */
  forward(...args: any[]): any {
    return this.getBaseModel().forward(...args);
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */

  /**
   * Continues `inputIds` [B, S] with the base model and the active adapter, as PEFT's
   * PeftModelForCausalLM.generate (transformers' generate(): greedy by default, or sampled; see GenerateOptions).
   */
  generate(inputIds: Tensor, opts: GenerateOptions = {}): Tensor {
    const base = this.getBaseModel();
    if (!isCausalLM(base)) throw new TypeError(`PeftModel.generate: the base model ${base.reprName()} is not a causal LM (it has no config)`);
    return generate(base, inputIds, opts);
  }

  /**
   * The training loss for `input` (labels required): the base model's chunked forwardLoss for a decoder-only
   * LM (the LoRA layers are inside the base model), else forward()'s loss. What the Trainer calls.
   */
  forwardLoss(input: CausalLMInput & { labels: Tensor }): Tensor {
    const base = this.getBaseModel();
    if (base instanceof DecoderOnlyLM) return base.forwardLoss(input);
    const out = this.forward(input) as CausalLMOutput;
    if (out.loss === undefined) throw new Error(`PeftModel.forwardLoss: ${base.reprName()}'s forward returned no loss for labels`);
    return out.loss;
  }

  /** [trainable, all] parameter counts (each shared parameter once), as PEFT's get_nb_trainable_parameters. */
  getNbTrainableParameters(): [number, number] {
    let trainable = 0;
    let all = 0;
    for (const [, p] of this.namedParameters()) {
      const n = p.numel();
      all += n;
      if (p.requiresGrad) trainable += n;
    }
    return [trainable, all];
  }
  /** Prints PEFT's line: `trainable params: 120 || all params: 382 || trainable%: 31.4136`. */
  printTrainableParameters(): void {
    console.log(formatTrainableParameters(...this.getNbTrainableParameters()));
  }

  // ---- adapters ----
  /** Adds a new (untrained) adapter; it is not made active (use setAdapter). */
  addAdapter(adapterName: string, config: LoraConfig, opts: { autocastAdapterDtype?: boolean } = {}): void {
    if (this.peftConfig.has(adapterName)) throw new Error(`Adapter with name '${adapterName}' already exists.`);
    if ('lora_'.includes(adapterName))
      peftWarn(`Adapter name '${adapterName}' should not be contained in the prefix 'lora_'. This may lead to reinitialization of the adapter weights during loading.`);
    this.peftConfig.set(adapterName, config);
    try {
      this.base_model.injectAdapter(this.getBaseModel(), adapterName);
    } catch (e) {
      this.peftConfig.delete(adapterName);
      throw e;
    }
    this.base_model.castAdapterDtype(adapterName, opts.autocastAdapterDtype ?? true);
  }

  /** Makes `adapterName` the active adapter (trainable unless inferenceMode). */
  setAdapter(adapterName: string, opts: { inferenceMode?: boolean } = {}): void {
    if (!this.peftConfig.has(adapterName)) throw new Error(`Adapter ${adapterName} not found.`);
    this.activeAdapter = adapterName;
    this.base_model.setAdapter(adapterName, opts.inferenceMode ?? false);
  }

  /** Removes an adapter and frees its weights. */
  deleteAdapter(adapterName: string): void {
    if (!this.peftConfig.has(adapterName)) throw new Error(`Adapter ${adapterName} does not exist`);
    this.base_model.deleteAdapter(adapterName);
    const active = this.activeAdapters;
    if (active.length === 1) this.activeAdapter = active[0];
  }

  /**
   * Runs fn with every adapter off (the base model's output), then turns them back on, as PEFT's
   * `with model.disable_adapter():`. fn may be async; the adapters come back when its promise settles.
   */
  disableAdapter<T>(fn: () => T): T {
    const wasEnabled = [...this.base_model.loraLayers()].some(([, l]) => !l.disableAdapters) || ![...this.base_model.loraLayers()].length;
    this.base_model.disableAdapterLayers();
    this.adaptersDisabled = true;
    const restore = () => {
      if (wasEnabled) this.base_model.enableAdapterLayers();
      this.adaptersDisabled = false;
    };
    let result: T;
    try {
      result = fn();
    } catch (e) {
      restore();
      throw e;
    }
    if (result instanceof Promise) return result.finally(restore) as T;
    restore();
    return result;
  }
  /** True while inside disableAdapter. */
  get adaptersAreDisabled(): boolean {
    return this.adaptersDisabled;
  }

  // ---- merging ----
  /** Adds the active adapters' ΔW (or `adapterNames`') into the base weights; unmerge() undoes it. */
  merge(opts: { adapterNames?: string[]; safeMerge?: boolean } = {}): void {
    this.base_model.mergeAdapter(opts.adapterNames, opts.safeMerge ?? false);
  }
  unmerge(): void {
    this.base_model.unmergeAdapter();
  }
  /**
   * Merges the adapters into the base weights and returns the base model without LoRA layers (the adapter
   * weights are freed). safeMerge: check the merged weights for NaN/Inf before writing them.
   */
  mergeAndUnload(opts: { safeMerge?: boolean; adapterNames?: string[] } = {}): M {
    return this.base_model.mergeAndUnload(opts) as M;
  }
  /** The base model with the LoRA layers removed, unmerged. */
  unload(): M {
    return this.base_model.unload() as M;
  }
  /** A new adapter combining others: 'svd' (default), 'linear' or 'cat', as PEFT's add_weighted_adapter. */
  addWeightedAdapter(adapters: string[], weights: number[], adapterName: string, opts: AddWeightedAdapterOptions = {}): void {
    this.base_model.addWeightedAdapter(adapters, weights, adapterName, opts);
  }

  // ---- files ----
  /**
   * Writes each adapter as PEFT does: adapter_config.json + adapter_model.safetensors (or .bin), the
   * default adapter in `dir`, others in `dir/<name>`, and a README.md model card. Every file is written
   * atomically.
   */
  async savePretrained(dir: string, opts: SavePretrainedOptions = {}): Promise<void> {
    checkOptions(opts, { safeSerialization: true, selectedAdapters: true, saveEmbeddingLayers: true }, 'PeftModel.savePretrained');
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new Error(`Provided path (${dir}) should be a directory, not a file`);
    const names = [...this.peftConfig.keys()];
    const selected = opts.selectedAdapters ?? names;
    if (selected.some((a) => !names.includes(a)))
      throw new Error(`You passed an invalid \`selectedAdapters\` argument, current supported adapter names are ${JSON.stringify(names)} - got ${JSON.stringify(selected)}.`);
    // Every adapter's weights are checked before anything is written: a diverged adapter never replaces a good save.
    const states = new Map(selected.map((a) => [a, getPeftModelStateDict(this, a, { saveEmbeddingLayers: opts.saveEmbeddingLayers })]));
    for (const [a, tensors] of states) assertAllFinite(tensors, `savePretrained('${dir}'): adapter '${a}'`);
    // The folder (card, every adapter's config and weights) changes as one unit, one save at a time.
    await replaceFolder(dir, async (staging) => {
      await this.writeModelCard(staging);
      for (const adapterName of selected) {
        const config = this.peftConfig.get(adapterName)!;
        const tensors = states.get(adapterName)!;
        const outDir = adapterName === 'default' ? staging : path.join(staging, adapterName);
        await fs.promises.mkdir(outDir, { recursive: true });
        await saveAdapterWeights(tensors, outDir, opts.safeSerialization ?? true);
        if (config.baseModelNameOrPath === null) config.baseModelNameOrPath = modelNameOrPath(this.getBaseModel());
        const written = config.replace({ inferenceMode: true });
        if (config.taskType === null) written.autoMapping = autoMappingOf(this.getBaseModel());
        await writeFileAtomic(path.join(outDir, 'adapter_config.json'), written.toJSONString());
      }
    });
  }

  private async writeModelCard(dir: string): Promise<void> {
    const base = this.getBaseModel();
    const tags = new Set<string>();
    if (isPretrainedLike(base)) tags.add('transformers');
    tags.add('lora');
    const name = modelConfigInfo(base)?.nameOrPath ?? modelNameOrPath(base);
    if (name) tags.add(`base_model:adapter:${name}`);
    await writeModelCard(dir, {
      peftVersion: PEFT_VERSION,
      // transformers' config._name_or_path, which is model.name_or_path: where the base was loaded from.
      baseModel: name,
      tags: [...tags],
      pipelineTag: this.activePeftConfig?.taskType === 'CAUSAL_LM' ? 'text-generation' : undefined,
    });
  }

  /**
   * Loads a saved adapter (adapter_config.json + weights) as adapter `adapterName`; it is not made
   * active. Frozen unless isTrainable.
   */
  async loadAdapter(dir: string, adapterName: string, opts: Omit<FromPretrainedOptions, 'adapterName'> = {}): Promise<{ missingKeys: string[]; unexpectedKeys: string[] }> {
    const folder = opts.subfolder ? path.join(dir, opts.subfolder) : dir;
    const read = await readAdapterFolder(folder, { device: opts.device, config: opts.config });
    return this.loadAdapterFrom(folder, adapterName, opts, read.config, read.weights);
  }

  private async loadAdapterFrom(
    folder: string,
    adapterName: string,
    opts: Omit<FromPretrainedOptions, 'adapterName'>,
    config: LoraConfig,
    weights: Map<string, Tensor>,
  ): Promise<{ missingKeys: string[]; unexpectedKeys: string[] }> {
    const isTrainable = opts.isTrainable ?? false;
    if (!this.peftConfig.has(adapterName)) {
      warnIfBaseChanging(config, [...this.peftConfig.values()]);
      config.inferenceMode = !isTrainable;
      try {
        this.addAdapter(adapterName, config, { autocastAdapterDtype: opts.autocastAdapterDtype });
      } catch (e) {
        for (const t of weights.values()) t.dispose();
        throw e;
      }
    }
    let result: { missingKeys: string[]; unexpectedKeys: string[] };
    try {
      result = setPeftModelStateDict(this, weights, adapterName);
    } catch (e) {
      withContext(e, ` (adapter folder '${folder}')`);
      throw e;
    } finally {
      for (const t of weights.values()) t.dispose();
    }
    result.missingKeys = result.missingKeys.filter((k) => k.includes('lora_') && k.includes(adapterName));
    this.base_model.castAdapterDtype(adapterName, opts.autocastAdapterDtype ?? true);
    if (!isTrainable) this.eval();
    return result;
  }

  /**
   * Wraps `model` with the adapter saved in `dir` (PEFT's PeftModel.from_pretrained): the config from
   * adapter_config.json, the weights from adapter_model.safetensors or adapter_model.bin.
   */
  static async fromPretrained<M extends Module>(model: M, dir: string, opts: FromPretrainedOptions = {}): Promise<PeftModel<M>> {
    checkOptions(opts, FROM_PRETRAINED_OPTIONS, 'PeftModel.fromPretrained');
    const adapterName = opts.adapterName ?? 'default';
    requireLocalFolder(dir, 'adapter folder');
    const folder = opts.subfolder ? path.join(dir, opts.subfolder) : dir;
    // The config and the weights of one save (a save swapping the folder meanwhile makes a re-read).
    const { config, weights } = await readAdapterFolder(folder, { device: opts.device, config: opts.config });
    config.inferenceMode = !(opts.isTrainable ?? false);
    let peft: PeftModel<M>;
    try {
      peft = new PeftModel(model, config, adapterName, { autocastAdapterDtype: opts.autocastAdapterDtype });
    } catch (e) {
      for (const t of weights.values()) t.dispose();
      throw e;
    }
    const { missingKeys } = await peft.loadAdapterFrom(folder, adapterName, { ...opts, config }, config, weights);
    if (missingKeys.length) peftWarn(`Found missing adapter keys while loading the checkpoint: ${JSON.stringify(missingKeys)}.`);
    return peft;
  }

  /** Frees every tensor of the model and its adapters. The model is unusable after. */
  override dispose(): void {
    this.base_model.dispose();
    super.dispose();
  }

  reprName(): string {
    const t = this.peftConfig.get(this.activeAdapter)?.taskType;
    return t ? PEFT_MODEL_CLASS_NAMES[t] : 'PeftModel';
  }
}

/** adapter_config.json (unless given) and the weights of one save of `folder`. */
async function readAdapterFolder(folder: string, opts: { device?: Device; config?: LoraConfig }): Promise<{ config: LoraConfig; weights: Map<string, Tensor> }> {
  return readConsistently(
    folder,
    async () => {
      const config = opts.config ?? LoraConfig.fromPretrained(folder);
      return { config, weights: await loadPeftWeights(folder, { device: opts.device }) };
    },
    (v) => v.weights.forEach((t) => t.dispose()),
  );
}

function warnIfBaseChanging(config: LoraConfig, existing: LoraConfig[]): void {
  const all = [config, ...existing];
  if (all.length < 2) return;
  for (const init of ['pissa', 'olora'] as const)
    if (all.some((c) => c.initLoraWeights === init)) {
      peftWarn(`${init === 'pissa' ? 'PiSSA' : 'OLoRA'} changes the base weights of the model and should thus not be used with other adapters.`);
      return;
    }
}

/**
 * Wraps `model` for LoRA: swaps the target modules of `config` for LoRA layers (adapter `adapterName`)
 * and freezes everything else. The model is modified in place.
 */
export function getPeftModel<M extends Module>(
  model: M,
  config: LoraConfig,
  adapterName = 'default',
  opts: { autocastAdapterDtype?: boolean; revision?: string } = {},
): PeftModel<M> {
  const oldName = config.baseModelNameOrPath;
  const newName = modelNameOrPath(model);
  config.baseModelNameOrPath = newName;
  if ([...model.modules()].some((m) => m instanceof LoraLayer))
    peftWarn('You are trying to modify a model with PEFT for a second time. If you want to reload the model with a different config, make sure to call `.unload()` before.');
  if (oldName !== null && oldName !== newName)
    peftWarn(`The PEFT config's \`base_model_name_or_path\` was renamed from '${oldName}' to '${newName}'. Please ensure that the correct base model is loaded when loading this checkpoint.`);
  if (opts.revision !== undefined) config.revision = opts.revision;
  if ('lora_'.includes(adapterName))
    peftWarn(`Adapter name '${adapterName}' should not be contained in the prefix 'lora_'. This may lead to reinitialization of the adapter weights during loading.`);
  return new PeftModel(model, config, adapterName, opts);
}
