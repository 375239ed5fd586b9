// trainable_token_indices: train only some rows of an embedding (new special tokens) instead of the whole
// table (PEFT's TrainableTokensLayer inside a TrainableTokensWrapper). The layer holds, per adapter, the
// trained rows (trainable_tokens_delta: the rows' values, not a difference) and their originals; the
// forward writes the rows into a copy of the weight (index_copy) and looks up / projects with it. A tied
// LM head gets a layer that shares the embedding layer's rows, so both use the same trained values.
// State-dict names are PEFT's: <embed>.token_adapter.base_layer.weight, .token_adapter.trainable_tokens_delta.<adapter>.
import { tensor } from '../../creation';
import { embedding, linear } from '../../functional';
import { noGrad } from '../../autograd';
import { scope } from '../../memory';
import { Embedding, Linear, Module, ParameterDict } from '../../nn';
import { Parameter } from '../../nn/parameter';
import { Tensor } from '../../tensor';

/** Non-persistent buffers by adapter name (PEFT's BufferDict(persistent=False)): kept out of the state dict. */
export class TokenOriginals extends Module {
  set(name: string, t: Tensor): void {
    (this as unknown as Record<string, Tensor | undefined>)[name]?.dispose();
    this.registerBuffer(name, t, false);
  }
  get(name: string): Tensor | undefined {
    const t = (this as unknown as Record<string, unknown>)[name];
    return t instanceof Tensor ? t : undefined;
  }
  delete(name: string): void {
    this.get(name)?.dispose();
    this.registerBuffer(name, undefined, false);
    delete (this as unknown as Record<string, unknown>)[name];
  }
  reprName(): string {
    return 'BufferDict';
  }
}

function checkIndices(indices: number[], rows: number, where: string): void {
  if (!Array.isArray(indices) || indices.length === 0 || !indices.every((i) => Number.isInteger(i)))
    throw new TypeError(`trainable_token_indices for '${where}' must be a non-empty list of token ids, got ${JSON.stringify(indices)}`);
  const bad = indices.filter((i) => i < 0 || i >= rows);
  if (bad.length)
    throw new RangeError(
      `trainable_token_indices for '${where}': token ids ${bad.join(', ')} are outside its ${rows} rows; resize the token embeddings first (model.resizeTokenEmbeddings)`,
    );
  if (new Set(indices).size !== indices.length) throw new Error(`trainable_token_indices for '${where}' lists a token id twice: ${JSON.stringify(indices)}`);
}

export class TrainableTokensLayer extends Module {
  base_layer: Embedding | Linear;
  trainable_tokens_delta: ParameterDict;
  trainable_tokens_original: TokenOriginals;
  /** adapter -> the rows it trains (shared with a tied layer). */
  readonly tokenIndices: Map<string, number[]>;
  /** Adapters merged into base_layer.weight, in order. */
  mergedAdapters: string[] = [];
  /** The embedding's layer this one follows (a tied LM head); not a child, so not in the state dict twice. */
  readonly #tied?: TrainableTokensLayer;
  #active: string[];
  #disabled = false;

  constructor(baseLayer: Embedding | Linear, adapterName: string, tiedAdapter?: TrainableTokensLayer) {
    super();
    this.base_layer = baseLayer;
    this.#active = [adapterName];
    this.#tied = tiedAdapter;
    if (tiedAdapter) {
      this.trainable_tokens_delta = tiedAdapter.trainable_tokens_delta;
      this.trainable_tokens_original = tiedAdapter.trainable_tokens_original;
      this.tokenIndices = tiedAdapter.tokenIndices;
    } else {
      this.trainable_tokens_delta = new ParameterDict();
      this.trainable_tokens_original = new TokenOriginals();
      this.tokenIndices = new Map();
    }
  }

  get tiedAdapter(): TrainableTokensLayer | undefined {
    return this.#tied;
  }
  get activeAdapters(): string[] {
    return [...this.#active];
  }
  get merged(): boolean {
    return this.mergedAdapters.length > 0;
  }

  /** Adds `adapterName`'s rows: trainable copies of the base rows (PEFT's init_weights=True). A tied layer follows its source. */
  updateLayer(adapterName: string, indices: number[], where: string): void {
    if (this.#tied) return;
    const w = this.base_layer.weight;
    checkIndices(indices, w.shape[0], where);
    this.tokenIndices.set(adapterName, [...indices]);
    const originals = scope(() => noGrad(() => w.indexSelect(0, tensor(indices, { dtype: 'int64', device: w.device }))));
    // The Parameter gets its own copy: training updates it in place, the originals must stay.
    const values = originals.clone();
    this.trainable_tokens_delta.set(adapterName, new Parameter(values));
    values.dispose();
    this.trainable_tokens_original.set(adapterName, originals);
  }

  /** The base weight with the rows of `adapters` written in (differentiable in the rows). */
  getMergedWeights(adapters: string[]): Tensor {
    return scope(() => {
      let w: Tensor = this.base_layer.weight;
      for (const a of adapters) {
        const delta = this.trainable_tokens_delta.get(a);
        if (delta === undefined) continue;
        const idx = tensor(this.tokenIndices.get(a)!, { dtype: 'int64', device: w.device });
        w = w.indexCopy(0, idx, delta.to({ dtype: w.dtype, device: w.device }));
      }
      return w === this.base_layer.weight ? w.detach().requiresGrad_(false) : w;
    });
  }

  private checkOverlap(adapters: string[]): void {
    const all = [...new Set([...this.mergedAdapters, ...adapters])];
    if (all.length <= 1) return;
    const seen = new Set<number>();
    for (const a of all) {
      const idx = this.tokenIndices.get(a) ?? [];
      if (idx.some((i) => seen.has(i)))
        throw new Error(`Token indices of adapter ${a} are already defined and would result in undefined merging behavior. Only disjunct token indices are currently supported.`);
      for (const i of idx) seen.add(i);
    }
  }

  forward(x: Tensor): Tensor {
    const active = this.#active.filter((a) => this.tokenIndices.has(a));
    if (this.#disabled || active.length === 0) {
      if (this.merged) this.unmerge();
      return this.base_layer.forward(x);
    }
    if (this.merged) return this.base_layer.forward(x);
    this.checkOverlap(active);
    return scope(() => {
      const w = this.getMergedWeights(active);
      if (this.base_layer instanceof Embedding) {
        const out = embedding(x, w, this.base_layer.paddingIdx);
        // Scaled embeddings (Gemma) multiply in their own forward, which F.embedding bypasses.
        const scale = (this.base_layer as unknown as { embed_scale?: Tensor }).embed_scale;
        return scale instanceof Tensor ? out.mul(scale.to(out.dtype)) : out;
      }
      // A tied LM head: PEFT's F.linear(x, W) (the head's bias, if it had one, is added too).
      return linear(x, w, this.base_layer.bias);
    });
  }

  /** Writes the adapters' rows into base_layer.weight (kept the same Parameter, so a tied head sees it). */
  merge(opts: { safeMerge?: boolean; adapterNames?: string[] } = {}): void {
    const names = (opts.adapterNames ?? this.#active).filter((a) => this.tokenIndices.has(a) && !this.mergedAdapters.includes(a));
    if (names.length === 0) return;
    this.checkOverlap(names);
    const merged = this.getMergedWeights(names);
    if (opts.safeMerge) {
      const finite = scope(() => merged.isfinite().all().item());
      if (!finite) {
        merged.dispose();
        throw new Error(`NaNs detected in the merged weights. The adapter ${names.join(', ')} seems to be broken`);
      }
    }
    const data = merged.detach();
    noGrad(() => this.base_layer.weight.setData_(data));
    data.dispose();
    merged.dispose();
    this.mergedAdapters.push(...names);
  }

  /** Puts the original rows back. */
  unmerge(): void {
    while (this.mergedAdapters.length) {
      const a = this.mergedAdapters.pop()!;
      const w = this.base_layer.weight;
      scope(() => {
        const idx = tensor(this.tokenIndices.get(a)!, { dtype: 'int64', device: w.device });
        const restored = w.detach().indexCopy(0, idx, this.trainable_tokens_original.get(a)!.to({ dtype: w.dtype, device: w.device }));
        noGrad(() => w.setData_(restored));
      });
    }
  }

  setAdapter(names: string[], inferenceMode = false): void {
    this.#active = [...names];
    if (this.#tied) return; // the rows are its source's: the source decides whether they train
    for (const a of this.trainable_tokens_delta.keys()) {
      const p = this.trainable_tokens_delta.get(a)!;
      p.requiresGrad_(names.includes(a) && !inferenceMode);
    }
  }

  enableAdapters(enabled: boolean): void {
    this.#disabled = !enabled;
    if (this.#tied) return;
    for (const a of this.#active) this.trainable_tokens_delta.get(a)?.requiresGrad_(enabled);
  }

  deleteAdapter(name: string): void {
    this.#active = this.#active.filter((a) => a !== name);
    if (this.#tied) return;
    const p = this.trainable_tokens_delta.get(name);
    if (p === undefined) return;
    this.trainable_tokens_delta.delete(name);
    p.dispose();
    this.trainable_tokens_original.delete(name);
    this.tokenIndices.delete(name);
  }

  reprName(): string {
    return 'TrainableTokensLayer';
  }
}

/**
 * The module in the model's tree where an embedding (or a tied LM head) was: its child `token_adapter` does
 * the work. Active adapters, enabling and the saved keys are handled here, as for modules_to_save.
 */
export class TrainableTokensWrapper extends Module {
  token_adapter: TrainableTokensLayer;
  /** Adapters that have rows here. */
  readonly adapters = new Set<string>();
  #active: string[];
  #disabled = false;

  constructor(module: Module, adapterName: string, tokenIndices: number[], where: string, tiedAdapter?: TrainableTokensLayer) {
    super();
    if (!(module instanceof Embedding || module instanceof Linear))
      throw new TypeError(`trainable_token_indices cannot be applied to '${where}', a ${module.reprName()}: it must name an Embedding (or the LM head tied to it)`);
    this.token_adapter = new TrainableTokensLayer(module, adapterName, tiedAdapter);
    this.#active = [adapterName];
    this.update(adapterName, tokenIndices, where);
  }

  get activeAdapters(): string[] {
    return [...this.#active];
  }
  get disableAdapters(): boolean {
    return this.#disabled;
  }
  get originalModule(): Module {
    return this.token_adapter.base_layer;
  }

  update(adapterName: string, tokenIndices: number[], where: string): void {
    if (!this.adapters.has(adapterName)) this.token_adapter.updateLayer(adapterName, tokenIndices, where);
    this.adapters.add(adapterName);
    this.token_adapter.base_layer.requiresGrad_(false);
  }

  forward(x: Tensor): Tensor {
    return this.token_adapter.forward(x);
  }

  enableAdapters(enabled: boolean): void {
    this.#disabled = !enabled;
    this.token_adapter.enableAdapters(enabled);
  }

  /** Makes `names` (at most one) the active adapter, trainable unless inferenceMode; [] uses the base rows. */
  setAdapter(names: string | string[], inferenceMode = false): void {
    const list = typeof names === 'string' ? [names] : names;
    if (list.length > 1) throw new Error(`Attempted to set multiple (${list.join(', ')}) adapters at once for trainable_token_indices.`);
    if (list.length && !this.adapters.has(list[0])) throw new Error(`Adapter ${list[0]} not found in ${[...this.adapters].join(', ')}`);
    this.#active = [...list];
    this.token_adapter.setAdapter(list, inferenceMode);
  }

  /** Of the adapters a model activates, the one this wrapper has (undefined: none). */
  adapterToSet(names: string | string[]): string | undefined {
    if (typeof names === 'string') return names;
    const mine = names.filter((n) => this.adapters.has(n));
    if (mine.length > 1) throw new Error(`Only one adapter can be set at a time for trainable_token_indices, got ${mine.length}`);
    return mine[0];
  }

  deleteAdapter(name: string, newActive: string[] | undefined): void {
    if (!this.adapters.has(name)) return;
    if (newActive && newActive.length > 1) throw new Error(`Attempted to set multiple (${newActive.join(', ')}) adapters at once for TrainableTokensWrapper, which is not allowed.`);
    this.token_adapter.deleteAdapter(name);
    this.adapters.delete(name);
    const next = newActive?.[0];
    if (next === undefined || !this.adapters.has(next)) {
      this.#active = [];
      this.token_adapter.setAdapter([]);
    } else this.setAdapter(next);
  }

  /** Saved key (no wrapper prefix, no adapter name) -> key in this wrapper's state dict; a tied head saves nothing. */
  adapterStateDictLoadMap(adapterName: string): Record<string, string> {
    if (this.token_adapter.tiedAdapter || !this.adapters.has(adapterName)) return {};
    return { 'token_adapter.trainable_tokens_delta': `token_adapter.trainable_tokens_delta.${adapterName}` };
  }

  /** The embedding with the active rows written in (merge) or as it was; the wrapper goes away. */
  unloadModule(merge: boolean, opts: { safeMerge?: boolean; adapterNames?: string[] } = {}): Module {
    if (merge) this.token_adapter.merge(opts);
    return this.token_adapter.base_layer;
  }

  /** The trainable rows' parameters (the tied head's are its source's). */
  *adapterParameters(): Generator<Parameter> {
    if (this.token_adapter.tiedAdapter) return;
    yield* this.token_adapter.trainable_tokens_delta.values();
  }

  reprName(): string {
    return 'TrainableTokensWrapper';
  }
}

