// The part every LoRA layer shares (PEFT's LoraLayer + BaseTunerLayer): it composes the layer it adapts
// as `base_layer` and keeps each adapter's pieces in dicts keyed by adapter name, so parameter names are
// PEFT's (q_proj.lora_A.default.weight). The fields below are declared in PEFT's registration order, which
// is the order the tree prints and the state dict lists.
import { noGrad } from '../../autograd';
import { Dropout, Identity, Module, ModuleDict, Parameter, ParameterDict } from '../../nn';
import { keep, scope } from '../../memory';
import { Tensor } from '../../tensor';
import { LoraConfig } from '../config';
import { peftWarn } from '../warn';
import { DoraLinearLayer, outInLayout } from './dora';

/** The per-adapter numbers a layer needs from the config (rank and alpha may come from the patterns). */
export interface AdapterSpec {
  r: number;
  loraAlpha: number;
  config: LoraConfig;
}

/** Sets requires_grad on every parameter of a module or on a parameter. */
export function setRequiresGrad(x: Module | Parameter, requiresGrad: boolean): void {
  if (x instanceof Module) for (const p of x.parameters()) p.requiresGrad_(requiresGrad);
  else x.requiresGrad_(requiresGrad);
}

/** The NaN/Inf check of a safe merge. */
export function assertFinite(t: Tensor, adapter: string): void {
  const ok = noGrad(() => scope(() => t.isfinite().all().item() as boolean));
  if (!ok) throw new Error(`NaNs detected in the merged weights. The adapter ${adapter} seems to be broken`);
}

/**
 * s·B·A in the base weight's layout (transposed when fanInFanOut), a new tensor. As PEFT, a half-precision
 * product on the CPU is computed in float32 and cast back to `dtype` (CPU half matmul is slow or missing).
 */
export function scaledLoraProduct(b: Tensor, a: Tensor, scaling: number, fanInFanOut: boolean, dtype: Tensor['dtype']): Tensor {
  return scope(() => {
    const castToFp32 = b.device === 'cpu' && (dtype === 'float16' || dtype === 'bfloat16');
    const ba = castToFp32 ? b.float().matmul(a.float()) : b.matmul(a);
    const out = outInLayout(ba, fanInFanOut).mul(scaling);
    return castToFp32 ? out.to(dtype) : out;
  });
}

export abstract class LoraLayer extends Module {
  base_layer!: Module;
  lora_dropout = new ModuleDict();
  lora_A = new ModuleDict();
  lora_B = new ModuleDict();
  lora_embedding_A = new ParameterDict();
  lora_embedding_B = new ParameterDict();
  lora_magnitude_vector = new ModuleDict();

  /** Names of the dicts holding trainable adapter weights (PEFT's adapter_layer_names). */
  static readonly adapterLayerNames = ['lora_A', 'lora_B', 'lora_embedding_A', 'lora_embedding_B', 'lora_magnitude_vector'] as const;

  readonly r = new Map<string, number>();
  readonly loraAlpha = new Map<string, number>();
  readonly scaling = new Map<string, number>();
  readonly useRslora = new Map<string, boolean>();
  readonly useDora = new Map<string, boolean>();
  readonly loraBias = new Map<string, boolean>();
  /** Adapters whose ΔW is currently added into the base weight, in merge order. */
  mergedAdapters: string[] = [];
  /** Cached DoRA weight norms from a merge, needed to unmerge exactly. */
  protected readonly mergeCache = new Map<string, Tensor>();
  protected activeAdapterNames: string[];
  protected adaptersDisabled = false;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(baseLayer: Module, adapterName: string, inFeatures: number, outFeatures: number) {
    super();
    this.base_layer = baseLayer;
    this.activeAdapterNames = [adapterName];
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
  }

  // ---- what the layer wraps ----
  /** The innermost wrapped layer (a LoRA layer may wrap another). */
  getBaseLayer(): Module {
    let m: Module = this;
    while (m instanceof LoraLayer) m = m.base_layer;
    return m;
  }
  /** The base layer's weight Parameter. */
  get baseWeight(): Parameter {
    const w = (this.getBaseLayer() as unknown as { weight?: Parameter }).weight;
    if (!(w instanceof Parameter)) throw new Error(`${this.reprName()}: the base layer ${this.getBaseLayer().reprName()} has no weight`);
    return w;
  }
  get baseBias(): Parameter | undefined {
    const b = (this.getBaseLayer() as unknown as { bias?: Parameter }).bias;
    return b instanceof Parameter ? b : undefined;
  }

  // ---- adapters ----
  get merged(): boolean {
    return this.mergedAdapters.length > 0;
  }
  get disableAdapters(): boolean {
    return this.adaptersDisabled;
  }
  get activeAdapters(): string[] {
    return [...this.activeAdapterNames];
  }
  /** Adapter names this layer holds. */
  adapterNames(): string[] {
    const names = new Set<string>();
    for (const d of [this.lora_A, this.lora_embedding_A, this.lora_magnitude_vector]) for (const k of d.keys()) names.add(k);
    for (const k of this.r.keys()) names.add(k);
    return [...names].sort();
  }
  hasAdapter(name: string): boolean {
    return this.r.has(name);
  }

  /** The dicts of trainable adapter weights, as entries name -> module-or-parameter. */
  protected *adapterEntries(): Generator<[string, Module | Parameter]> {
    for (const dictName of LoraLayer.adapterLayerNames) {
      const d = this[dictName];
      for (const [k, v] of d.entries()) yield [k, v];
    }
  }

  /**
   * Every adapter weight this layer holds (lora_A/B, lora_embedding_A/B, DoRA magnitudes, lora_B's bias),
   * of all adapters: what PEFT's autocast_adapter_dtype keeps in float32.
   */
  *adapterParameters(): Generator<Parameter> {
    for (const [, v] of this.adapterEntries()) {
      if (v instanceof Parameter) yield v;
      else yield* v.parameters();
    }
  }

  /** Activates `names`; their weights train (unless inferenceMode), every other adapter's freeze. */
  setAdapter(names: string | string[], inferenceMode = false): void {
    const list = typeof names === 'string' ? [names] : [...names];
    for (const [k, v] of this.adapterEntries()) setRequiresGrad(v, list.includes(k) && !inferenceMode);
    this.activeAdapterNames = list;
  }
  /** Turns the adapters off (the layer computes only its base) or back on. */
  enableAdapters(enabled: boolean): void {
    if (enabled) {
      this.setAdapter(this.activeAdapterNames);
      this.adaptersDisabled = false;
    } else {
      for (const [, v] of this.adapterEntries()) setRequiresGrad(v, false);
      this.adaptersDisabled = true;
    }
  }
  /** Removes an adapter's weights (disposing them) and picks a new active adapter if needed. */
  deleteAdapter(name: string): void {
    for (const dictName of [...LoraLayer.adapterLayerNames, 'lora_dropout'] as const) {
      const d = this[dictName];
      const v = d.get(name);
      if (v !== undefined) {
        d.delete(name);
        v.dispose();
      }
    }
    for (const m of [this.r, this.loraAlpha, this.scaling, this.useRslora, this.useDora, this.loraBias]) m.delete(name);
    this.mergeCache.get(name)?.dispose();
    this.mergeCache.delete(name);
    if (this.activeAdapterNames.includes(name)) {
      const rest = this.activeAdapterNames.filter((n) => n !== name);
      if (rest.length) this.setAdapter(rest);
      else {
        const remaining = this.adapterNames();
        if (remaining.length === 0) this.setAdapter([]);
        else {
          peftWarn(`Adapter ${name} was active which is now deleted. Setting active adapter to ${remaining[0]}.`);
          this.setAdapter(remaining[0]);
        }
      }
    }
  }

  /** scaling = α/r (α/√r with rsLoRA), times `scale`. */
  setScale(adapter: string, scale: number): void {
    if (!this.scaling.has(adapter)) return;
    const r = this.r.get(adapter)!;
    const a = this.loraAlpha.get(adapter)!;
    this.scaling.set(adapter, (scale * a) / (this.useRslora.get(adapter) ? Math.sqrt(r) : r));
  }

  /** Records rank, alpha and scaling of a new adapter and its dropout (Identity when p = 0, as PEFT). */
  protected registerAdapter(adapterName: string, spec: AdapterSpec): void {
    const { r, loraAlpha, config } = spec;
    if (!(Number.isInteger(r) && r > 0)) throw new Error(`\`r\` should be a positive integer value but the value passed is ${r}`);
    if (this.r.has(adapterName)) throw new Error(`${this.reprName()} already has an adapter named '${adapterName}'`);
    this.r.set(adapterName, r);
    this.loraAlpha.set(adapterName, loraAlpha);
    this.lora_dropout.set(adapterName, config.loraDropout > 0 ? new Dropout(config.loraDropout) : new Identity());
    this.scaling.set(adapterName, config.useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r);
    this.useRslora.set(adapterName, config.useRslora);
    this.useDora.set(adapterName, config.useDora);
    this.loraBias.set(adapterName, config.loraBias);
  }

  /** Which of `names` (default: the active ones) are not merged yet; warns as PEFT about the others. */
  protected adaptersToMerge(names?: string[]): string[] {
    let list = names ?? this.activeAdapters;
    if (this.merged) {
      const done = new Set(this.mergedAdapters);
      list = list.filter((n) => !done.has(n));
      if (list.length) peftWarn(`Already following adapters were merged ${this.mergedAdapters.join(',')}. You are now additionally merging ${list.join(',')}.`);
      else peftWarn('All adapters are already merged, nothing to do.');
    }
    return list;
  }

  /** ΔW of one adapter in the base weight's layout (scaling included), a new tensor. */
  abstract getDeltaWeight(adapter: string): Tensor;

  /** Whether this layer holds weights for `adapter` (in lora_A for Linear kinds, lora_embedding_A for Embedding). */
  protected hasLoraWeights(adapter: string): boolean {
    return this.lora_A.has(adapter) || this.lora_embedding_A.has(adapter);
  }

  /** s·lora_B.bias of an adapter with lora_bias, what merging adds to the base bias; layers with such a bias override. */
  protected loraBiasDelta(_adapter: string): Tensor | undefined {
    return undefined;
  }

  /**
   * m/‖W + ΔW‖ per output feature, shaped to broadcast over the base weight's layout. The DoRA layer's
   * fanInFanOut says that layout (an embedding table is [vocab, dim], i.e. transposed).
   */
  private doraFactor(dora: DoraLinearLayer, norm: Tensor): Tensor {
    return outInLayout(dora.weight.div(norm).view(-1, 1), dora.fanInFanOut);
  }

  /** DoRA's merged weight: m/‖W + ΔW‖ · (W + ΔW), caching the norm for unmerge. */
  private doraMergedWeight(adapter: string, orig: Tensor): Tensor {
    const dora = this.lora_magnitude_vector.get(adapter) as DoraLinearLayer;
    const delta = this.getDeltaWeight(adapter);
    const norm = dora.getWeightNorm(orig, outInLayout(delta, dora.fanInFanOut), 1).detach();
    this.mergeCache.get(adapter)?.dispose();
    this.mergeCache.set(adapter, keep(norm));
    return this.doraFactor(dora, norm).mul(orig.add(delta)).to(orig.dtype);
  }

  /** Adds the adapters' ΔW into the base weight (checking for NaN/Inf first with safeMerge). */
  merge(opts: { safeMerge?: boolean; adapterNames?: string[] } = {}): void {
    for (const a of this.adaptersToMerge(opts.adapterNames)) {
      if (!this.hasLoraWeights(a)) continue;
      const W = this.baseWeight;
      const bias = this.baseBias;
      if (this.loraBias.get(a) && bias === undefined)
        throw new Error('Impossible to merge LoRA with `lora_bias=True` because the base layer has no bias.');
      noGrad(() =>
        scope(() => {
          const dora = this.lora_magnitude_vector.has(a);
          const biasDelta = this.loraBias.get(a) ? this.loraBiasDelta(a) : undefined;
          if (opts.safeMerge) {
            // Nothing is written before every new value has passed the check.
            const merged = dora ? this.doraMergedWeight(a, W) : W.add(this.getDeltaWeight(a).to(W.dtype));
            assertFinite(merged, a);
            let newBias: Tensor | undefined;
            if (biasDelta) {
              newBias = bias!.add(biasDelta);
              assertFinite(newBias, a);
            }
            W.copy_(merged);
            if (newBias) bias!.copy_(newBias.to(bias!.dtype));
          } else {
            if (dora) W.copy_(this.doraMergedWeight(a, W));
            else W.add_(this.getDeltaWeight(a).to(W.dtype));
            if (biasDelta) bias!.add_(biasDelta);
          }
        }),
      );
      this.mergedAdapters.push(a);
    }
  }

  /** Subtracts every merged adapter's ΔW again, last merged first (DoRA divides by the cached factor). */
  unmerge(): void {
    if (!this.merged) {
      peftWarn('Already unmerged. Nothing to do.');
      return;
    }
    while (this.mergedAdapters.length > 0) {
      const a = this.mergedAdapters.pop()!;
      if (!this.hasLoraWeights(a)) continue;
      const W = this.baseWeight;
      noGrad(() =>
        scope(() => {
          const delta = this.getDeltaWeight(a).to(W.dtype);
          const dora = this.lora_magnitude_vector.get(a) as DoraLinearLayer | undefined;
          if (dora !== undefined) {
            const norm = this.mergeCache.get(a);
            if (norm === undefined) throw new Error(`unmerge: the DoRA weight norm of adapter '${a}' was not cached by merge`);
            this.mergeCache.delete(a);
            const factor = this.doraFactor(dora, norm);
            norm.dispose();
            W.copy_(W.div(factor).sub(delta).to(W.dtype));
          } else W.sub_(delta);
          const biasDelta = this.loraBias.get(a) ? this.loraBiasDelta(a) : undefined;
          if (biasDelta) this.baseBias!.sub_(biasDelta);
        }),
      );
    }
  }

  /* eslint-disable @typescript-eslint/no-explicit-any */
  forward(x: Tensor, ...rest: any[]): Tensor {
    const base = this.base_layer;
    // Disabled: the base alone (a merged ΔW is taken out first). Merged: the base already holds ΔW.
    if (this.disableAdapters) {
      if (this.merged) this.unmerge();
      return base.forward(x, ...rest);
    }
    if (this.merged) return base.forward(x, ...rest);
    return scope(() => this.adapterForward(x, rest));
  }
  /** The unmerged, enabled path: the base output plus each active adapter's update (runs inside a scope). */
  protected abstract adapterForward(x: Tensor, rest: any[]): Tensor;
  /* eslint-enable @typescript-eslint/no-explicit-any */

  override dispose(): void {
    for (const t of this.mergeCache.values()) t.dispose();
    this.mergeCache.clear();
    super.dispose();
  }
}
