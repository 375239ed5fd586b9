// Containers: Sequential, ModuleList, ModuleDict, ParameterDict. As everywhere in nn, the entries ARE the
// container's own fields ('0', '1', ... or the dict's keys), so state-dict keys are layers.0.mlp.weight
// with nothing to map. A private list keeps insertion order, which JavaScript's own key order would not
// (it puts integer-like keys first); fields assigned directly still count, after the ordered ones.
import { scope } from '../memory';
import { Tensor } from '../tensor';
import { torchTypename } from './format';
import { addIndent, Module } from './module';
import { Parameter } from './parameter';

type Fields = Record<string, unknown>;

/** PyTorch's add_module checks: a non-empty name without '.', not shadowing another attribute. */
function checkKey(owner: object, key: string, order: string[], what: string): void {
  if (typeof key !== 'string' || key === '') throw new TypeError(`${what} key must be a non-empty string, got ${String(key)}`);
  if (key.includes('.')) throw new Error(`${what} key can't contain '.', got '${key}'`);
  if (key in owner && !order.includes(key))
    throw new Error(`${what} key '${key}' clashes with an attribute of ${owner.constructor.name} that already exists`);
}

/** The shared part: children stored as fields, iterated in insertion order. */
abstract class OrderedModules<T extends Module> extends Module {
  readonly #order: string[] = [];

  protected setChild(key: string, m: T): void {
    if (!(m instanceof Module)) throw new TypeError(`${this.reprName()}: '${key}' must be a Module, got ${describe(m)}`);
    checkKey(this, key, this.#order, this.reprName());
    (this as unknown as Fields)[key] = m;
    if (!this.#order.includes(key)) this.#order.push(key);
  }
  protected deleteChild(key: string): boolean {
    const had = (this as unknown as Fields)[key] instanceof Module;
    if (had) delete (this as unknown as Fields)[key];
    const i = this.#order.indexOf(key);
    if (i >= 0) this.#order.splice(i, 1);
    return had;
  }
  protected childAt(key: string): T | undefined {
    const v = (this as unknown as Fields)[key];
    return v instanceof Module ? (v as T) : undefined;
  }

  override *moduleFields(): Generator<[string, Module]> {
    const seen = new Set<string>();
    for (const k of this.#order) {
      const v = this.childAt(k);
      if (v !== undefined) {
        seen.add(k);
        yield [k, v];
      }
    }
    for (const [k, v] of super.moduleFields()) if (!seen.has(k)) yield [k, v];
  }
  /** The entries, a module held twice counted twice (len() and iteration of PyTorch's containers). */
  protected entryModules(): T[] {
    return [...this.moduleFields()].map(([, m]) => m as T);
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x === 'object') return (x as object).constructor?.name ?? 'object';
  return typeof x;
}

/** Runs its modules one after another, each on the previous one's output, as nn.Sequential. */
export class Sequential extends OrderedModules<Module> {
  /** Sequential(a, b, c) names them '0', '1', '2'; Sequential({ conv1: a, relu1: b }) keeps the names. */
  constructor(...modules: Module[] | [Record<string, Module>]) {
    super();
    if (modules.length === 1 && !(modules[0] instanceof Module)) {
      for (const [k, m] of Object.entries(modules[0] as Record<string, Module>)) this.setChild(k, m);
    } else {
      (modules as Module[]).forEach((m, i) => this.setChild(String(i), m));
    }
  }
  get length(): number {
    return [...this.moduleFields()].length;
  }
  /** The i-th module (negative counts from the end). */
  at(i: number): Module {
    const all = this.entryModules();
    const j = i < 0 ? i + all.length : i;
    if (!Number.isInteger(j) || j < 0 || j >= all.length)
      throw new RangeError(`Sequential: index ${i} is out of range for ${all.length} modules`);
    return all[j];
  }
  append(m: Module): this {
    this.setChild(String(this.length), m);
    return this;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.entryModules()[Symbol.iterator]();
  }
  /* eslint-disable @typescript-eslint/no-explicit-any */
  forward(input: any): any {
    // Intermediate outputs are freed; the last one is the caller's.
    return scope(() => {
      let x = input;
      for (const m of this.entryModules()) x = m.forward(x);
      return x;
    });
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

/** A list of modules registered as children '0', '1', ..., as nn.ModuleList. It has no forward. */
export class ModuleList<T extends Module = Module> extends OrderedModules<T> {
  constructor(modules?: Iterable<T>) {
    super();
    if (modules !== undefined) this.extend(modules);
  }
  get length(): number {
    return [...this.moduleFields()].length;
  }
  /** The i-th module (negative counts from the end). */
  at(i: number): T {
    const n = this.length;
    const j = i < 0 ? i + n : i;
    const m = Number.isInteger(j) && j >= 0 && j < n ? this.childAt(String(j)) : undefined;
    if (m === undefined) throw new RangeError(`ModuleList: index ${i} is out of range for ${n} modules`);
    return m;
  }
  /** Replaces the i-th module. */
  set(i: number, m: T): this {
    this.at(i);
    this.setChild(String(i < 0 ? i + this.length : i), m);
    return this;
  }
  /** Appends a module (PyTorch's append); returns the list. */
  push(m: T): this {
    this.setChild(String(this.length), m);
    return this;
  }
  append(m: T): this {
    return this.push(m);
  }
  extend(modules: Iterable<T>): this {
    for (const m of modules) this.push(m);
    return this;
  }
  [Symbol.iterator](): Iterator<T> {
    return this.entryModules()[Symbol.iterator]();
  }

  /**
   * PyTorch 2.x's ModuleList repr: runs of consecutive children that print the same are folded into one
   * line, `(0-2): 3 x LlamaDecoderLayer(...)`.
   */
  override toString(): string {
    const reprs = this.entryModules().map((m) => m.toString());
    if (reprs.length === 0) return `${this.reprName()}()`;
    const lines: string[] = [];
    let start = 0;
    for (let i = 1; i <= reprs.length; i++) {
      if (i < reprs.length && reprs[i] === reprs[start]) continue;
      const end = i - 1;
      const line = start === end ? `(${start}): ${reprs[start]}` : `(${start}-${end}): ${end - start + 1} x ${reprs[start]}`;
      lines.push(addIndent(line, 2));
      start = i;
    }
    return `${this.reprName()}(\n  ${lines.join('\n  ')}\n)`;
  }
}

/** Modules by name, as nn.ModuleDict: each key is a child field, so it is the name in the state dict. */
export class ModuleDict<T extends Module = Module> extends OrderedModules<T> {
  constructor(modules?: Record<string, T> | Map<string, T> | Iterable<[string, T]>) {
    super();
    if (modules !== undefined) this.update(modules);
  }
  set(key: string, m: T): this {
    this.setChild(key, m);
    return this;
  }
  get(key: string): T | undefined {
    return this.has(key) ? this.childAt(key) : undefined;
  }
  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this, key) && this.childAt(key) !== undefined;
  }
  /** Removes the entry (the module itself is not disposed); true if there was one. */
  delete(key: string): boolean {
    return this.has(key) ? this.deleteChild(key) : false;
  }
  keys(): string[] {
    return [...this.moduleFields()].map(([k]) => k);
  }
  values(): T[] {
    return this.entryModules();
  }
  entries(): [string, T][] {
    return [...this.moduleFields()] as [string, T][];
  }
  update(modules: Record<string, T> | Map<string, T> | Iterable<[string, T]>): this {
    const pairs = modules instanceof Map || Symbol.iterator in Object(modules) ? (modules as Iterable<[string, T]>) : Object.entries(modules);
    for (const [k, m] of pairs) this.set(k, m);
    return this;
  }
  [Symbol.iterator](): Iterator<[string, T]> {
    return this.entries()[Symbol.iterator]();
  }
}

/** Parameters by name, as nn.ParameterDict: each key is a parameter field of the dict. */
export class ParameterDict extends Module {
  readonly #order: string[] = [];

  constructor(parameters?: Record<string, Tensor> | Map<string, Tensor> | Iterable<[string, Tensor]>) {
    super();
    if (parameters !== undefined) this.update(parameters);
  }
  /** A plain tensor is wrapped in a Parameter sharing its memory (the tensor stays the caller's). */
  set(key: string, value: Tensor): this {
    if (!(value instanceof Tensor)) throw new TypeError(`ParameterDict: '${key}' must be a Tensor, got ${describe(value)}`);
    checkKey(this, key, this.#order, 'ParameterDict');
    (this as unknown as Fields)[key] = value instanceof Parameter ? value : new Parameter(value);
    if (!this.#order.includes(key)) this.#order.push(key);
    return this;
  }
  get(key: string): Parameter | undefined {
    return this.has(key) ? ((this as unknown as Fields)[key] as Parameter) : undefined;
  }
  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this, key) && (this as unknown as Fields)[key] instanceof Parameter;
  }
  /** Removes the entry (the parameter is not disposed); true if there was one. */
  delete(key: string): boolean {
    if (!this.has(key)) return false;
    delete (this as unknown as Fields)[key];
    this.#order.splice(this.#order.indexOf(key), 1);
    return true;
  }
  keys(): string[] {
    return [...this.ownParameters()].map(([k]) => k);
  }
  values(): Parameter[] {
    return [...this.ownParameters()].map(([, p]) => p);
  }
  entries(): [string, Parameter][] {
    return [...this.ownParameters()];
  }
  /**
   * Adds entries in order; from a plain object in sorted key order, as PyTorch's ParameterDict.update
   * does with a dict (a Map or a list of pairs keeps its order, as an OrderedDict does).
   */
  update(parameters: Record<string, Tensor> | Map<string, Tensor> | Iterable<[string, Tensor]>): this {
    const pairs =
      parameters instanceof Map || Symbol.iterator in Object(parameters)
        ? (parameters as Iterable<[string, Tensor]>)
        : Object.entries(parameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [k, t] of pairs) this.set(k, t);
    return this;
  }
  [Symbol.iterator](): Iterator<[string, Parameter]> {
    return this.entries()[Symbol.iterator]();
  }

  override *ownParameters(): Generator<[string, Parameter]> {
    const seen = new Set<string>();
    for (const k of this.#order) {
      const v = (this as unknown as Fields)[k];
      if (v instanceof Parameter) {
        seen.add(k);
        yield [k, v];
      }
    }
    for (const [k, p] of super.ownParameters()) if (!seen.has(k)) yield [k, p];
  }

  /** PyTorch's lines: `  (default): Parameter containing: [torch.FloatTensor of size 4x20]`. */
  extraRepr(): string {
    return this.entries()
      .map(([k, p]) => {
        const device = p.device.startsWith('cuda') ? ` (${p.device.includes(':') ? p.device : `${p.device}:0`})` : '';
        return `  (${k}): Parameter containing: [${torchTypename(p.dtype, p.device)} of size ${p.shape.join('x')}${device}]`;
      })
      .join('\n');
  }
}
