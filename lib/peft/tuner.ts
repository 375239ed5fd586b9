// LoraModel, the injector (PEFT's BaseTuner + LoraModel): finds the target modules of each adapter,
// swaps each for a LoRA layer that wraps it as base_layer, freezes everything but the adapters, wraps
// modules_to_save, and undoes it all (merge_and_unload, unload). Its child is `model`, so parameter
// names read base_model.model.<the base model's own names> under a PeftModel.
import { noGrad } from '../autograd';
import { tensor } from '../creation';
import { cat, stack } from '../ops';
import { svd } from '../linalg';
import { scope } from '../memory';
import { Conv1D, Embedding, Linear, Module, Parameter } from '../nn';
import { Tensor } from '../tensor';
import { LoraConfig } from './config';
import { MIN_TARGET_MODULES_FOR_OPTIMIZATION, TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING } from './constants';
import { LoraEmbedding } from './layers/embedding';
import { LoraLinear } from './layers/linear';
import { Linear4bit } from '../quant/linear-4bit';
import { Linear8bit } from '../quant/linear-8bit';
import { AdapterSpec, LoraLayer } from './layers/lora-layer';
import { ModulesToSaveWrapper } from './layers/modules-to-save';
import { TrainableTokensWrapper } from './layers/trainable-tokens';
import { inputEmbeddings, modelConfigInfo, outputEmbeddings } from './model-info';
import { checkTargetModuleExists, findMinimalTargetModules, includeAllLinearLayers, rankAndAlpha } from './target-modules';
import { peftWarn } from './warn';

/** The parent module and attribute name of a dotted path (PEFT's _get_submodules). */
export function getSubmodules(model: Module, key: string): { parent: Module; target: Module; name: string } {
  const i = key.lastIndexOf('.');
  const parent = i < 0 ? model : model.getSubmodule(key.slice(0, i));
  const name = i < 0 ? key : key.slice(i + 1);
  const target = (parent as unknown as Record<string, unknown>)[name];
  if (!(target instanceof Module)) throw new Error(`${parent.reprName()} has no submodule '${name}' (looking up '${key}')`);
  return { parent, target, name };
}

function setChild(parent: Module, name: string, child: Module): void {
  (parent as unknown as Record<string, unknown>)[name] = child;
}

/** Adapter parameters of a LoRA layer: everything but its base_layer. */
function* adapterParams(layer: LoraLayer): Generator<Parameter> {
  for (const [k, child] of layer.namedChildren()) if (k !== 'base_layer') yield* child.parameters();
}

/** Frees a removed LoRA layer's own weights (never its base layer's). */
function disposeAdapterWeights(layer: LoraLayer): void {
  for (const [k, child] of layer.namedChildren()) if (k !== 'base_layer') child.dispose();
}

function describeModules(names: string[]): string {
  const all = names.filter((n) => n !== '');
  if (all.length <= 60) return all.join(', ');
  const leaves = [...new Set(all.map((n) => n.slice(n.lastIndexOf('.') + 1)))];
  return `${all.length} modules named ${leaves.join(', ')}`;
}

export type CombinationType = 'linear' | 'cat' | 'svd';

export interface AddWeightedAdapterOptions {
  /** 'svd' (default), 'linear' (all ranks equal) or 'cat' (ranks add up). */
  combinationType?: CombinationType;
  /** Rank of an 'svd' result (default: the largest rank of the inputs). */
  svdRank?: number;
  /** Quantile at which 'svd' factors are clamped (none by default). */
  svdClamp?: number;
  /** Full or reduced SVD (default full, as PEFT). */
  svdFullMatrices?: boolean;
}

export class LoraModel extends Module {
  model: Module;
  /** adapter name -> its config, in the order they were added. */
  readonly peftConfig = new Map<string, LoraConfig>();
  /** Names of the modules any adapter adapted. */
  readonly targetedModuleNames: string[] = [];
  activeAdapter: string | string[];

  constructor(model: Module, config: LoraConfig, adapterName = 'default') {
    super();
    this.model = model;
    this.peftConfig.set(adapterName, config);
    this.activeAdapter = adapterName;
    this.injectAdapter(model, adapterName);
  }

  get activeAdapters(): string[] {
    return typeof this.activeAdapter === 'string' ? [this.activeAdapter] : [...this.activeAdapter];
  }

  /* eslint-disable @typescript-eslint/no-explicit-any */
  forward(...args: any[]): any {
    return this.model.forward(...args);
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */

  /** Every LoRA layer of the model with its name. */
  *loraLayers(): Generator<[string, LoraLayer]> {
    for (const [name, m] of this.model.namedModules()) if (m instanceof LoraLayer) yield [name, m];
  }
  *wrappers(): Generator<[string, ModulesToSaveWrapper]> {
    for (const [name, m] of this.model.namedModules()) if (m instanceof ModulesToSaveWrapper) yield [name, m];
  }
  /** The trainable_token_indices wrappers (an embedding, a tied or listed LM head). */
  *tokenWrappers(): Generator<[string, TrainableTokensWrapper]> {
    for (const [name, m] of this.model.namedModules()) if (m instanceof TrainableTokensWrapper) yield [name, m];
  }

  // ---- injection ----
  private checkNewAdapterConfig(): void {
    if (this.peftConfig.size <= 1) return;
    const withBias = [...this.peftConfig.values()].filter((c) => c.bias !== 'none').length;
    if (withBias > 1) throw new Error('LoraModel supports only 1 adapter with bias. When using multiple adapters, set bias to \'none\' for all adapters.');
  }

  /** target_modules absent: the default of the model type (config.json's model_type). */
  private prepareAdapterConfig(config: LoraConfig, model: Module): void {
    if (config.targetModules !== null) return;
    const modelType = modelConfigInfo(model)?.modelType;
    const dflt = modelType === undefined ? undefined : TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING[modelType];
    if (dflt === undefined)
      throw new Error(
        `Please specify \`targetModules\` in the LoRA config: there is no default for ${modelType === undefined ? 'a model without a config.model_type' : `model_type '${modelType}'`}`,
      );
    config.targetModules = typeof dflt === 'string' ? dflt : [...dflt];
  }

  /** Creates the adapter layers of `adapterName` (its config must be in peftConfig) and swaps them in. */
  injectAdapter(model: Module, adapterName: string): void {
    const config = this.peftConfig.get(adapterName);
    if (config === undefined) throw new Error(`injectAdapter: no config for adapter '${adapterName}'`);
    config.validate(); // fields may have been assigned after construction (e.g. modulesToSave = 'lm_head')
    this.checkNewAdapterConfig();
    this.prepareAdapterConfig(config, model);
    const named = [...model.namedModules()];
    const keys = named.map(([k]) => k);
    includeAllLinearLayers(config, model);
    const tm = config.targetModules;
    if (Array.isArray(tm) && tm.length >= MIN_TARGET_MODULES_FOR_OPTIMIZATION) {
      const suffixes = tm.map((t) => '.' + t);
      const others = keys.filter((k) => !tm.includes(k) && !suffixes.some((s) => k.endsWith(s)));
      const minimal = findMinimalTargetModules(tm, others);
      if (minimal.length < tm.length) config.targetModules = minimal;
    }

    const existingPrefixes = named.filter(([, m]) => m instanceof LoraLayer).map(([k]) => k + '.');
    const excluded: string[] = [];
    const unmatched: string[] = [];
    const targeted: string[] = [];
    for (const [key] of named) {
      if (!key) continue;
      if (existingPrefixes.some((p) => key.startsWith(p))) continue;
      const result = checkTargetModuleExists(config, key);
      if (result === 'excluded') excluded.push(key);
      else if (result === 'unmatched') unmatched.push(key);
      else {
        targeted.push(key);
        const { parent, target, name } = getSubmodules(model, key);
        this.createAndReplace(config, adapterName, target, name, parent, key);
      }
    }

    if (targeted.length === 0) {
      const seen = `The model's modules are: ${describeModules(keys)}.`;
      let msg: string;
      if (excluded.length && !unmatched.length)
        msg = 'All modules were excluded. This is likely unintended. Check your `targetModules`, `excludeModules` and `modulesToSave` configuration.';
      else if (!excluded.length && unmatched.length && (config.targetModules === null || config.targetModules.length === 0))
        msg = 'No `targetModules` passed. Please check the value of this argument.';
      else if (!excluded.length)
        msg = `Target modules ${JSON.stringify(config.targetModules)} not found in the base model. Please check the target modules and try again.`;
      else
        msg =
          'No modules were targeted for adaptation. This might be caused by a combination of mismatched target modules and excluded modules. ' +
          'Please check your `targetModules` and `excludeModules` configuration. You may also have only targeted modules that are marked to be saved (`modulesToSave`).';
      if (config.layersToTransform !== null) msg += ` Note: You specified 'layersToTransform': ${JSON.stringify(config.layersToTransform)}.`;
      if (config.layersPattern !== null) msg += ` You also specified 'layersPattern': ${JSON.stringify(config.layersPattern)}.`;
      throw new Error(`${msg} ${seen}`);
    } else if (config.excludeModules && config.excludeModules.length && !excluded.length) {
      peftWarn(`You have passed excludeModules=${JSON.stringify(config.excludeModules)} but no modules were excluded. Please check that excludeModules was set correctly.`);
    }
    for (const k of targeted) if (!this.targetedModuleNames.includes(k)) this.targetedModuleNames.push(k);

    // A second adapter that targets other layers must not activate them.
    for (const [, layer] of this.loraLayers()) layer.setAdapter(this.activeAdapters, config.inferenceMode);
    this.markOnlyAdaptersAsTrainable(model);
    if (config.inferenceMode) for (const [n, p] of model.namedParameters()) if (n.includes(adapterName)) p.requiresGrad_(false);
    this.setAdditionalTrainableModules(model, config, adapterName, this.activeAdapters.includes(adapterName));
    this.setTrainableTokens(model, config, adapterName, this.activeAdapters.includes(adapterName));
  }

  private createAndReplace(config: LoraConfig, adapterName: string, target: Module, targetName: string, parent: Module, key: string): void {
    const { r, loraAlpha } = rankAndAlpha(config, key);
    const spec: AdapterSpec = { r, loraAlpha, config };
    if (target instanceof LoraLayer) {
      (target as LoraLinear | LoraEmbedding).updateLayer(adapterName, spec);
      return;
    }
    let layer: LoraLayer;
    if (target instanceof Embedding) layer = new LoraEmbedding(target, adapterName, spec);
    else if (target instanceof Linear || target instanceof Conv1D || target instanceof Linear4bit || target instanceof Linear8bit) layer = new LoraLinear(target, adapterName, spec);
    else
      throw new Error(
        `Target module ${target.reprName()} (${key}) is not supported. Currently, only the following modules are supported: Linear, Embedding, Conv1D (and Linear4bit).`,
      );
    if (!this.activeAdapters.includes(adapterName)) layer.requiresGrad_(false);
    setChild(parent, targetName, layer);
  }

  /** Freezes every parameter but the adapters' (and modules_to_save copies), then thaws biases per `bias`. */
  private markOnlyAdaptersAsTrainable(model: Module): void {
    const keep = new Set<Parameter>();
    for (const [, layer] of this.loraLayers()) for (const p of adapterParams(layer)) keep.add(p);
    for (const [, w] of this.wrappers()) for (const p of w.parameters()) keep.add(p);
    for (const [, w] of this.tokenWrappers()) for (const p of w.adapterParameters()) keep.add(p);
    for (const p of model.parameters()) if (!keep.has(p)) p.requiresGrad_(false);
    for (const a of this.activeAdapters) {
      const bias = this.peftConfig.get(a)?.bias ?? 'none';
      if (bias === 'all') {
        for (const [n, p] of model.namedParameters()) if (n === 'bias' || n.endsWith('.bias')) p.requiresGrad_(true);
      } else if (bias === 'lora_only') {
        for (const [, layer] of this.loraLayers()) layer.baseBias?.requiresGrad_(true);
      }
    }
  }

  /** Wraps config.modulesToSave (names ending the module path) in ModulesToSaveWrapper. */
  private setAdditionalTrainableModules(model: Module, config: LoraConfig, adapterName: string, activate: boolean): void {
    const names = config.modulesToSave;
    if (!names || names.length === 0) return;
    const keys = [...model.namedModules('', new NoMemoSet())].map(([k]) => k);
    for (const key of keys) {
      if (!key || !names.some((t) => key.endsWith(t))) continue;
      let found: ReturnType<typeof getSubmodules>;
      try {
        found = getSubmodules(model, key);
      } catch {
        continue; // inside a module that was just wrapped
      }
      const { parent, target, name } = found;
      const i = key.lastIndexOf('.');
      const parentKey = i < 0 ? '' : key.slice(0, i);
      const j = parentKey.lastIndexOf('.');
      const grandparent = parentKey === '' ? undefined : j < 0 ? model : model.getSubmodule(parentKey.slice(0, j));
      if (grandparent instanceof LoraLayer)
        throw new Error(
          `You are trying to target a module with ModulesToSaveWrapper that is a child of ${grandparent.reprName()}. This is almost certainly not the intended behavior. Please ensure that the adapter name, '${adapterName}', does not conflict with any of the targeted modules.`,
        );
      if (grandparent instanceof ModulesToSaveWrapper) continue;
      if (target instanceof ModulesToSaveWrapper) {
        target.update(adapterName);
        target.setAdapter(target.activeAdapters, config.inferenceMode);
      } else if (!(parent instanceof ModulesToSaveWrapper)) {
        const w = new ModulesToSaveWrapper(target, adapterName);
        w.setAdapter(activate ? adapterName : [], config.inferenceMode);
        setChild(parent, name, w);
      }
    }
  }

  /**
   * trainable_token_indices (PEFT's _set_trainable with TrainableTokensWrapper): a list trains those rows of
   * the input embedding, an object names the modules (a name or the end of one); an LM head tied to the
   * embedding gets a wrapper that follows the embedding's rows (and saves nothing of its own).
   */
  private setTrainableTokens(model: Module, config: LoraConfig, adapterName: string, activate: boolean): void {
    const tt = config.trainableTokenIndices;
    if (tt === null) return;
    const named = () => [...model.namedModules('', new NoMemoSet())];
    const nameOf = (m: Module | undefined) => (m === undefined ? undefined : named().find(([, x]) => x === m)?.[0]);
    const targets: Record<string, number[]> = Array.isArray(tt) ? { [nameOf(inputEmbeddings(model)) ?? 'embed_tokens']: tt } : tt;
    for (const name of Object.keys(targets))
      if (config.modulesToSave?.includes(name))
        throw new Error(
          `The embedding layer is already marked to be trained fully, either specify modulesToSave=[..., '${name}', ...] or trainableTokenIndices={'${name}': x} but not both.`,
        );
    // An LM head that shares the embedding's weight (tie_word_embeddings) follows the embedding's rows.
    const info = modelConfigInfo(model);
    const head = outputEmbeddings(model);
    const embed = inputEmbeddings(model);
    const weightOf = (m: Module | undefined) => (m as unknown as { weight?: unknown } | undefined)?.weight;
    const baseOf = (m: Module | undefined) => (m instanceof TrainableTokensWrapper ? m.originalModule : m);
    const tied = Boolean(info?.tieWordEmbeddings) && head !== undefined && weightOf(baseOf(head)) !== undefined && weightOf(baseOf(head)) === weightOf(baseOf(embed));
    const headName = tied ? nameOf(head) : undefined;
    const embedName = nameOf(embed);
    let skip = new Set<string>();
    let mismatch = false;
    if (tied && headName !== undefined && Object.keys(targets).length > 1) {
      const tiedKeys = Object.keys(targets).filter((k) => embedName?.endsWith(k) || headName.endsWith(k) || headName.split('.').includes(k));
      if (tiedKeys.length >= 2) {
        const first = JSON.stringify(targets[tiedKeys[0]]);
        mismatch = tiedKeys.some((k) => JSON.stringify(targets[k]) !== first);
        if (!mismatch) skip = new Set(tiedKeys.filter((k) => k === headName));
      }
    }
    const wrap = (key: string, indices: number[], tiedAdapter?: import('./layers/trainable-tokens').TrainableTokensLayer) => {
      let found = false;
      for (const [k] of named()) {
        if (!k || !k.endsWith(key)) continue;
        let at: ReturnType<typeof getSubmodules>;
        try {
          at = getSubmodules(model, k);
        } catch {
          continue;
        }
        const { parent, target, name } = at;
        if (parent instanceof TrainableTokensWrapper || parent instanceof LoraLayer || parent instanceof ModulesToSaveWrapper) continue;
        found = true;
        if (target instanceof TrainableTokensWrapper) {
          target.update(adapterName, indices, k);
          target.setAdapter(target.activeAdapters, config.inferenceMode);
        } else if (target instanceof LoraLayer || target instanceof ModulesToSaveWrapper) {
          throw new Error(`trainableTokenIndices names '${k}', which is already adapted (${target.reprName()}): remove it from targetModules / modulesToSave`);
        } else {
          const w = new TrainableTokensWrapper(target, adapterName, indices, k, tiedAdapter);
          w.setAdapter(activate ? adapterName : [], config.inferenceMode);
          setChild(parent, name, w);
        }
      }
      if (!found) throw new Error(`Target modules {'${key}'} not found in the base model (trainableTokenIndices). Please check the target modules and try again.`);
    };
    for (const [key, indices] of Object.entries(targets)) if (!skip.has(key)) wrap(key, indices);
    const embedNow = inputEmbeddings(model);
    // (unless the head has rows of its own: listed with other ids than the embedding)
    const headOwnRows = headName !== undefined && Object.hasOwn(targets, headName) && !skip.has(headName);
    if (tied && headName !== undefined && !mismatch && !headOwnRows && embedNow instanceof TrainableTokensWrapper)
      wrap(headName, embedNow.token_adapter.tokenIndices.get(adapterName) ?? [], embedNow.token_adapter);
    this.markOnlyAdaptersAsTrainable(model);
    for (const [, w] of this.tokenWrappers()) w.setAdapter(w.activeAdapters, config.inferenceMode);
  }

  // ---- adapters ----
  setAdapter(adapterName: string | string[], inferenceMode = false): void {
    const names = typeof adapterName === 'string' ? [adapterName] : adapterName;
    for (const [, w] of this.tokenWrappers()) {
      const toSet = w.adapterToSet(adapterName);
      w.setAdapter(toSet !== undefined && w.adapters.has(toSet) ? toSet : [], inferenceMode);
    }
    for (const [, w] of this.wrappers()) {
      const toSet = w.adapterToSet(adapterName);
      if (toSet !== undefined && w.adapters.has(toSet)) w.setAdapter(toSet, inferenceMode);
      else w.setAdapter([], inferenceMode);
    }
    for (const [, layer] of this.loraLayers()) {
      if (layer.merged) {
        peftWarn('Adapter cannot be set when the model is merged. Unmerging the model first.');
        layer.unmerge();
      }
      layer.setAdapter(names, inferenceMode);
    }
    this.activeAdapter = adapterName;
  }

  enableAdapterLayers(): void {
    for (const m of this.model.modules()) if (m instanceof LoraLayer || m instanceof ModulesToSaveWrapper || m instanceof TrainableTokensWrapper) m.enableAdapters(true);
  }
  disableAdapterLayers(): void {
    for (const a of this.activeAdapters) {
      const bias = this.peftConfig.get(a)?.bias ?? 'none';
      if (bias !== 'none')
        peftWarn(`Careful, disabling adapter layers with bias configured to be '${bias}' does not produce the same output as the base model would without adaption.`);
    }
    for (const m of this.model.modules()) if (m instanceof LoraLayer || m instanceof ModulesToSaveWrapper || m instanceof TrainableTokensWrapper) m.enableAdapters(false);
  }

  deleteAdapter(adapterName: string): void {
    if (!this.peftConfig.has(adapterName)) throw new Error(`Adapter ${adapterName} does not exist`);
    const stillMerged = [...this.loraLayers()].some(([, l]) => l.mergedAdapters.includes(adapterName));
    if (stillMerged) throw new Error(`Cannot delete adapter(s) ['${adapterName}'] while they are merged. Please unmerge them first.`);
    this.peftConfig.delete(adapterName);
    let newActive: string[] | undefined;
    for (const [, layer] of this.loraLayers()) {
      layer.deleteAdapter(adapterName);
      if (newActive === undefined) newActive = layer.activeAdapters;
    }
    for (const [, w] of this.wrappers()) w.deleteAdapter(adapterName, newActive);
    for (const [, w] of this.tokenWrappers()) w.deleteAdapter(adapterName, newActive);
    this.activeAdapter = newActive ?? [];
  }

  /** Upcasts float16/bfloat16 adapter weights to float32 (PEFT's autocast_adapter_dtype). */
  castAdapterDtype(adapterName: string, autocast = true): void {
    if (!autocast) return;
    // The trained token rows are adapter weights too (PEFT casts every tuner layer's).
    for (const [, w] of this.tokenWrappers()) {
      const p = w.token_adapter.tiedAdapter ? undefined : w.token_adapter.trainable_tokens_delta.get(adapterName);
      if (p !== undefined && (p.dtype === 'float16' || p.dtype === 'bfloat16')) {
        const f = p.to('float32');
        noGrad(() => p.setData_(f));
        f.dispose();
      }
    }
    for (const [, layer] of this.loraLayers()) {
      for (const dictName of LoraLayer.adapterLayerNames) {
        const entry = layer[dictName].get(adapterName);
        if (entry === undefined) continue;
        const params = entry instanceof Parameter ? [entry] : [...(entry as Module).parameters()];
        for (const p of params)
          if (p.dtype === 'float16' || p.dtype === 'bfloat16') {
            const f = p.to('float32');
            noGrad(() => p.setData_(f));
            f.dispose();
          }
      }
    }
  }

  // ---- merging ----
  mergeAdapter(adapterNames?: string[], safeMerge = false): void {
    for (const [, layer] of this.loraLayers()) layer.merge({ safeMerge, adapterNames });
    for (const [, w] of this.tokenWrappers()) w.token_adapter.merge({ safeMerge, adapterNames });
  }
  unmergeAdapter(): void {
    for (const [, layer] of this.loraLayers()) if (layer.merged) layer.unmerge();
    for (const [, w] of this.tokenWrappers()) if (w.token_adapter.merged) w.token_adapter.unmerge();
  }

  private unloadAndOptionallyMerge(merge: boolean, safeMerge: boolean, adapterNames?: string[]): Module {
    const layerNames = new Set([...this.loraLayers()].map(([k]) => k));
    const inside = (key: string) => {
      const parent = key.slice(0, Math.max(0, key.lastIndexOf('.')));
      return [...layerNames].some((n) => parent === n || parent.startsWith(n + '.'));
    };
    const keys = [...this.model.namedModules()].map(([k]) => k).filter((k) => k !== '' && !inside(k));
    const tokenWrappers: TrainableTokensWrapper[] = [];
    for (const key of keys) {
      let found: ReturnType<typeof getSubmodules>;
      try {
        found = getSubmodules(this.model, key);
      } catch {
        continue;
      }
      const { parent, target, name } = found;
      if (target instanceof TrainableTokensWrapper) {
        setChild(parent, name, target.unloadModule(merge, { safeMerge, adapterNames }));
        tokenWrappers.push(target);
      } else if (target instanceof ModulesToSaveWrapper) {
        const kept = target.unloadModule();
        setChild(parent, name, kept);
        for (const copy of target.modules_to_save.values()) if (copy !== kept) copy.dispose();
      } else if (target instanceof LoraLayer) {
        if (merge) target.merge({ safeMerge, adapterNames });
        setChild(parent, name, target.getBaseLayer());
        disposeAdapterWeights(target);
      }
    }
    // The trained rows are freed once every wrapper is unloaded (a tied head's layer reads its source's rows).
    for (const w of tokenWrappers)
      if (!w.token_adapter.tiedAdapter) {
        w.token_adapter.trainable_tokens_delta.dispose();
        w.token_adapter.trainable_tokens_original.dispose();
      }
    return this.model;
  }

  /** Merges the active adapters (or `adapterNames`) into the base weights and returns the bare model. */
  mergeAndUnload(opts: { safeMerge?: boolean; adapterNames?: string[] } = {}): Module {
    return this.unloadAndOptionallyMerge(true, opts.safeMerge ?? false, opts.adapterNames);
  }
  /** The bare base model, adapters removed unmerged. */
  unload(): Module {
    return this.unloadAndOptionallyMerge(false, false);
  }

  // ---- combining adapters ----
  /**
   * A new adapter from weighted existing ones: 'linear' mixes A and B (√|w·s| on each side), 'cat'
   * stacks them (ranks add up), 'svd' takes the best rank-k factors of Σ w·ΔW, ΔW = s·B·A (PEFT's arithmetic).
   */
  addWeightedAdapter(adapters: string[], weights: number[], adapterName: string, opts: AddWeightedAdapterOptions = {}): void {
    if (this.peftConfig.has(adapterName)) return;
    if (adapters.length !== weights.length) throw new Error(`addWeightedAdapter: ${adapters.length} adapters but ${weights.length} weights`);
    for (const a of adapters) if (!this.peftConfig.has(a)) throw new Error(`Adapter ${a} does not exist`);
    const problematic = [...this.wrappers()].filter(([, w]) => adapters.filter((a) => w.modules_to_save.has(a)).length > 1);
    if (problematic.length)
      throw new Error(`Cannot add weighted adapters if they target the same module with modules_to_save, but found ${problematic.length} such instance(s).`);
    let combination: CombinationType = adapters.length === 1 ? 'linear' : (opts.combinationType ?? 'svd');
    if (!['linear', 'cat', 'svd'].includes(combination)) throw new Error(`Invalid combination_type: ${combination} (torch-lora implements linear, cat and svd)`);
    const configs = adapters.map((a) => this.peftConfig.get(a)!);
    const ranks = configs.map((c) => Math.max(c.r, ...Object.values(c.rankPattern)));
    let newRank: number;
    if (combination === 'linear') {
      if (new Set(ranks).size !== 1) throw new Error('All adapters must have the same r value when using combination_type linear, ties, dare_ties or dare_linear.');
      newRank = ranks[0];
    } else if (combination === 'cat') newRank = ranks.reduce((a, b) => a + b, 0);
    else newRank = opts.svdRank ?? Math.max(...ranks);
    const kinds = new Set(configs.map((c) => (typeof c.targetModules === 'string' ? 'str' : 'list')));
    if (kinds.size > 1)
      throw new Error('all adapter configs should follow the same target modules type. Combining adapters with `target_modules` type being a mix of list/set and string is not supported.');
    const newTargets =
      typeof configs[0].targetModules === 'string'
        ? configs.map((c) => `(${c.targetModules})`).join('|')
        : [...new Set(configs.flatMap((c) => (c.targetModules as string[]) ?? []))];
    this.peftConfig.set(adapterName, configs[0].replace({ r: newRank, loraAlpha: newRank, targetModules: newTargets, alphaPattern: {}, rankPattern: {} }));
    this.injectAdapter(this.model, adapterName);
    for (const [n, p] of this.model.namedParameters()) if (n.includes(adapterName)) p.requiresGrad_(false);

    for (const [key, layer] of this.loraLayers()) {
      if (key.includes('lora_')) continue;
      let targetA: Tensor, targetB: Tensor;
      const emb = layer.lora_embedding_A.has(adapterName);
      if (layer.lora_A.has(adapterName)) {
        targetA = (layer.lora_A.get(adapterName) as Linear).weight;
        targetB = (layer.lora_B.get(adapterName) as Linear).weight;
      } else if (emb) {
        targetA = layer.lora_embedding_A.get(adapterName)!;
        targetB = layer.lora_embedding_B.get(adapterName)!;
      } else continue;
      const factors = (a: string): [Tensor, Tensor] | undefined => {
        if (layer.lora_A.has(a)) return [(layer.lora_A.get(a) as Linear).weight, (layer.lora_B.get(a) as Linear).weight];
        if (layer.lora_embedding_A.has(a)) return [layer.lora_embedding_A.get(a)!, layer.lora_embedding_B.get(a)!];
        return undefined;
      };
      noGrad(() =>
        scope(() => {
          targetA.zero_();
          targetB.zero_();
          if (combination === 'cat') {
            const As: Tensor[] = [];
            const Bs: Tensor[] = [];
            adapters.forEach((a, i) => {
              const f = factors(a);
              if (!f) return;
              As.push(f[0].mul(weights[i] * layer.scaling.get(a)!));
              Bs.push(f[1]);
            });
            if (As.length === 0) throw new Error('No matching LoRAs found.');
            const A = cat(As, 0);
            const B = cat(Bs, 1);
            targetA.narrow(0, 0, A.shape[0]).copy_(A);
            targetB.narrow(1, 0, B.shape[1]).copy_(B);
          } else if (combination === 'svd') {
            const valid = adapters.map((a, i) => [a, weights[i]] as const).filter(([a]) => factors(a) !== undefined);
            if (valid.length === 0) throw new Error('No matching LoRAs found.');
            // getDeltaWeight already holds the scaling: the weights multiply it as they are (PEFT).
            const deltas = valid.map(([a]) => layer.getDeltaWeight(a));
            const w = tensor(valid.map(([, wt]) => wt), { device: deltas[0].device }).to(deltas[0].dtype);
            const stacked = stack(deltas, 0);
            let delta = stacked.mul(w.view(-1, 1, 1)).sum(0);
            if ((layer instanceof LoraLinear && layer.fanInFanOut) || emb) delta = delta.t();
            const [U0, S0, Vh0] = svd(delta, { fullMatrices: opts.svdFullMatrices ?? true });
            let U = U0.narrow(1, 0, newRank).mul(S0.narrow(0, 0, newRank).unsqueeze(0));
            let Vh = Vh0.narrow(0, 0, newRank);
            if (opts.svdClamp !== undefined) {
              const dist = cat([U.flatten(), Vh.flatten()]);
              const hi = quantile(dist, opts.svdClamp);
              U = U.clamp(-hi, hi);
              Vh = Vh.clamp(-hi, hi);
            }
            targetA.copy_(Vh);
            targetB.copy_(U);
          } else {
            const wA: number[] = [];
            const wB: number[] = [];
            const As: Tensor[] = [];
            const Bs: Tensor[] = [];
            adapters.forEach((a, i) => {
              const f = factors(a);
              if (!f) return;
              const ws = weights[i] * layer.scaling.get(a)!;
              wA.push(Math.sqrt(Math.abs(ws)) * (ws >= 0 ? 1 : -1));
              wB.push(Math.sqrt(Math.abs(ws)));
              As.push(f[0]);
              Bs.push(f[1]);
            });
            const mix = (ts: Tensor[], ws: number[]) => {
              const w = tensor(ws, { device: ts[0].device }).to(ts[0].dtype);
              return stack(ts, 0).mul(w.view(-1, 1, 1)).sum(0);
            };
            targetA.copy_(mix(As, wA));
            targetB.copy_(mix(Bs, wB));
          }
        }),
      );
    }
  }

  /** Frees the model's tensors, the adapters' and the LoRA layers' caches (merged DoRA norms). */
  override dispose(): void {
    for (const [, layer] of this.loraLayers()) layer.dispose();
    super.dispose();
  }

  reprName(): string {
    return 'LoraModel';
  }
}

/** torch.quantile with linear interpolation over all elements. */
function quantile(t: Tensor, q: number): number {
  const [sorted] = t.flatten().sort();
  const n = sorted.shape[0];
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const v = sorted.data();
  return Number(v[lo]) + (Number(v[hi]) - Number(v[lo])) * (pos - lo);
}

/** A memo that remembers nothing: walks list shared modules under each of their names. */
class NoMemoSet extends Set<Module> {
  override has(): boolean {
    return false;
  }
}
