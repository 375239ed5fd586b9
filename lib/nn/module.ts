// nn.Module the PyTorch way: a module's fields ARE its structure. A field holding a Module is a child,
// a field holding a Parameter is a parameter, and the field's name is the name in the state dict
// (model.layers.0.self_attn.q_proj.weight) — no registration calls, no key maps. Buffers, which are
// plain tensors, are the one thing registered (registerBuffer), so that temporary tensor fields are not.
import { noGrad } from '../autograd';
import { DType } from '../dtype';
import { Device, Tensor } from '../tensor';
import { Parameter } from './parameter';

const BUFFERS = Symbol('torch-lora.buffers');

/** PyTorch's _addindent: every line after the first gets `n` more spaces. */
export function addIndent(s: string, n: number): string {
  const lines = s.split('\n');
  if (lines.length === 1) return s;
  const pad = ' '.repeat(n);
  return [lines[0], ...lines.slice(1).map((l) => pad + l)].join('\n');
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export type ToTarget = Device | DType | { device?: Device; dtype?: DType };

export abstract class Module {
  /** train() / eval() mode, as module.training. */
  training = true;
  /** buffer name -> persistent (in the state dict) */
  private readonly [BUFFERS] = new Map<string, boolean>();

  /* eslint-disable @typescript-eslint/no-explicit-any */
  /** The computation. Subclasses narrow the signature. */
  forward(..._args: any[]): any {
    throw new Error(`${this.reprName()} has no forward()`);
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */

  // ---- structure ----
  /**
   * Every field holding a Module, in registration order, a module held under two names listed under
   * each (PyTorch's `_modules.items()`: what repr, named_modules and the containers' len/iteration use).
   */
  *moduleFields(): Generator<[string, Module]> {
    for (const key of Object.keys(this)) {
      const v = (this as Record<string, unknown>)[key];
      if (v instanceof Module) yield [key, v];
    }
  }
  /** Direct children in registration order, each once (under its first name), as named_children(). */
  *namedChildren(): Generator<[string, Module]> {
    const seen = new Set<Module>();
    for (const [key, m] of this.moduleFields()) {
      if (seen.has(m)) continue;
      seen.add(m);
      yield [key, m];
    }
  }
  *children(): Generator<Module> {
    for (const [, m] of this.namedChildren()) yield m;
  }
  /** This module and every descendant, depth first, each once, as named_modules(). */
  *namedModules(prefix = '', memo: Set<Module> = new Set()): Generator<[string, Module]> {
    if (memo.has(this)) return;
    memo.add(this);
    yield [prefix, this];
    for (const [name, child] of this.moduleFields())
      yield* child.namedModules(prefix ? `${prefix}.${name}` : name, memo);
  }
  *modules(): Generator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }
  /** Looks up a descendant by dotted path ('model.layers.0.mlp'), as get_submodule(). */
  getSubmodule(target: string): Module {
    if (target === '') return this;
    let m: Module = this;
    for (const part of target.split('.')) {
      const next = (m as unknown as Record<string, unknown>)[part];
      if (!(next instanceof Module)) throw new Error(`${m.reprName()} has no submodule '${part}' (looking up '${target}')`);
      m = next;
    }
    return m;
  }

  /** Own parameters, in field order. */
  *ownParameters(): Generator<[string, Parameter]> {
    for (const key of Object.keys(this)) {
      const v = (this as Record<string, unknown>)[key];
      if (v instanceof Parameter) yield [key, v];
    }
  }
  /**
   * Parameters with their dotted names: own first, then each child's, as named_parameters(). A
   * parameter shared by two modules (tied weights) is listed once unless removeDuplicate is false.
   */
  *namedParameters(prefix = '', recurse = true, removeDuplicate = true): Generator<[string, Parameter]> {
    const seen = new Set<Parameter>();
    const mods: Iterable<[string, Module]> = recurse
      ? this.namedModules(prefix, removeDuplicate ? new Set() : new NoMemo())
      : [[prefix, this]];
    for (const [mp, m] of mods) {
      for (const [name, p] of m.ownParameters()) {
        if (removeDuplicate) {
          if (seen.has(p)) continue;
          seen.add(p);
        }
        yield [mp ? `${mp}.${name}` : name, p];
      }
    }
  }
  *parameters(recurse = true): Generator<Parameter> {
    for (const [, p] of this.namedParameters('', recurse)) yield p;
  }

  /** A tensor that is state but not a parameter (running stats, rotary tables). */
  registerBuffer(name: string, tensor: Tensor | undefined, persistent = true): void {
    if (tensor instanceof Parameter) throw new TypeError(`registerBuffer('${name}'): a Parameter is not a buffer`);
    (this as unknown as Record<string, unknown>)[name] = tensor;
    this[BUFFERS].set(name, persistent);
  }
  *ownBuffers(onlyPersistent = false): Generator<[string, Tensor]> {
    for (const [name, persistent] of this[BUFFERS]) {
      if (onlyPersistent && !persistent) continue;
      const t = (this as unknown as Record<string, unknown>)[name];
      if (t instanceof Tensor) yield [name, t];
    }
  }
  /** Buffers with their dotted names; one shared by two modules is listed once, as named_buffers(). */
  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [mp, m] of this.namedModules(prefix))
      for (const [name, b] of m.ownBuffers()) {
        if (seen.has(b)) continue;
        seen.add(b);
        yield [mp ? `${mp}.${name}` : name, b];
      }
  }
  *buffers(): Generator<Tensor> {
    for (const [, b] of this.namedBuffers()) yield b;
  }

  // ---- modes ----
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }
  /** Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = undefined;
  }
  /** Calls fn on every descendant and then on this module, as apply(). */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /**
   * Moves or casts parameters and buffers in place (same Parameter objects, so optimizers and tied
   * weights stay valid), as module.to(). Casts only floating-point tensors to a dtype, as PyTorch.
   */
  to(target: ToTarget): this {
    const { device, dtype } =
      typeof target === 'string'
        ? /^(cpu|cuda|meta)(:\d+)?$/.test(target)
          ? { device: target, dtype: undefined }
          : { device: undefined, dtype: target as DType }
        : target;
    for (const m of this.modules()) m.checkTo(device, dtype);
    const done = new Set<Tensor>();
    const move = (t: Tensor) => {
      if (done.has(t)) return;
      done.add(t);
      const isFloat = ['float32', 'float64', 'float16', 'bfloat16'].includes(t.dtype);
      const moved = t.to({ device, dtype: isFloat ? dtype : undefined });
      noGrad(() => t.setData_(moved));
      moved.dispose();
      // A gradient follows its parameter (PyTorch's _apply converts param.grad too), else the next
      // backward would accumulate a float32 gradient into a float64 parameter.
      const g = t.grad;
      if (g !== undefined) {
        const gm = g.to({ device, dtype: isFloat ? dtype : undefined });
        t.grad = gm;
        gm.dispose();
        g.dispose();
      }
    };
    for (const p of this.parameters()) move(p);
    for (const b of this.buffers()) move(b);
    return this;
  }

  /** Refuses a to() this module cannot follow (a quantized layer refuses a dtype cast); called on each module first. */
  protected checkTo(_device: Device | undefined, _dtype: DType | undefined): void {}

  // ---- state dict ----
  /**
   * name -> tensor for every parameter and persistent buffer, tied weights under each of their names,
   * as state_dict(keep_vars=True): the module's own tensors, not copies (do not dispose them).
   */
  stateDict(prefix = ''): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [mp, m] of this.namedModules(prefix, new NoMemo())) {
      const p = mp ? `${mp}.` : '';
      for (const [name, t] of m.ownParameters()) out[p + name] = t;
      for (const [name, t] of m.ownBuffers(true)) out[p + name] = t;
    }
    return out;
  }

  /**
   * Copies values from `state` into the module's tensors (converting dtype and device). strict: every
   * key must match and every shape agree, else one Error lists the missing, unexpected and mismatched.
   * assign: the module's tensors take the checkpoint's tensors (storage shared, their dtype and device)
   * instead of copying, as load_state_dict(assign=True): loading into a model built on 'meta'.
   */
  loadStateDict(
    state: Record<string, Tensor> | Map<string, Tensor>,
    opts: { strict?: boolean; assign?: boolean } = {},
  ): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const src = state instanceof Map ? state : new Map(Object.entries(state));
    const own = new Map(Object.entries(this.stateDict()));
    const missingKeys = [...own.keys()].filter((k) => !src.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, t] of src) {
      const mine = own.get(k);
      if (mine === undefined) continue;
      if (!(t instanceof Tensor)) {
        mismatched.push(`${k}: the checkpoint holds ${t === null ? 'null' : typeof t}, not a tensor`);
        continue;
      }
      const a = mine.shape;
      const b = t.shape;
      if (a.length !== b.length || a.some((d, i) => d !== b[i]))
        mismatched.push(`${k}: the checkpoint has shape [${b.join(', ')}], the model [${a.join(', ')}]`);
    }
    if (mismatched.length > 0 || (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0))) {
      const parts: string[] = [];
      if (strict && missingKeys.length) parts.push(`missing keys: ${missingKeys.join(', ')}`);
      if (strict && unexpectedKeys.length) parts.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
      if (mismatched.length) parts.push(`shape mismatches:\n  ${mismatched.join('\n  ')}`);
      throw new Error(`Error(s) in loading state dict for ${this.reprName()}:\n${parts.join('\n')}`);
    }
    noGrad(() => {
      for (const [k, t] of src) {
        const mine = own.get(k);
        if (mine === undefined) continue;
        if (opts.assign) mine.setData_(t);
        else mine.copy_(t);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  // ---- printing ----
  /** The class name printed in the tree (PyTorch's _get_name). */
  reprName(): string {
    return this.constructor.name;
  }
  /** The text inside this module's parentheses, as extra_repr(). */
  extraRepr(): string {
    return '';
  }
  /** The tree text PyTorch prints. */
  toString(): string {
    const extra = this.extraRepr();
    const extraLines = extra ? extra.split('\n') : [];
    const childLines = [...this.moduleFields()].map(([k, m]) => `(${k}): ${addIndent(m.toString(), 2)}`);
    const lines = [...extraLines, ...childLines];
    let s = `${this.reprName()}(`;
    if (lines.length) {
      if (extraLines.length === 1 && childLines.length === 0) s += extraLines[0];
      else s += `\n  ${lines.join('\n  ')}\n`;
    }
    return `${s})`;
  }

  // ---- memory ----
  /** Frees every parameter and buffer (each once, tied ones too). The module is unusable after. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const b of this.buffers()) b.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** A memo that remembers nothing: walks visit shared modules under each of their names. */
class NoMemo extends Set<Module> {
  override has(): boolean {
    return false;
  }
}
