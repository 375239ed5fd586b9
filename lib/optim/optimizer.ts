// torch.optim.Optimizer: parameter groups with their own hyperparameters, per-parameter state kept
// between steps, zeroGrad, and a state dict to save and resume. The update itself is the subclass's
// step(), one native call per group.
import { enableGrad } from '../autograd';
import { dtypeCode } from '../dtype';
import { native, NativeHandle } from '../native';
import { Tensor } from '../tensor';
import { OptimizerStateDict, ParamState, SavedParamGroup } from './state_dict';

/** Hyperparameters every optimizer has. */
export interface BaseHyper {
  lr: number;
}

/** A group as given: its parameters and any hyperparameters that differ from the defaults. */
export type ParamGroupInput<H> = { params: Iterable<Tensor> } & Partial<H>;

/** The parameters to optimize: parameters (an array, or module.parameters()) or groups of them. */
export type ParamsInput<H> = Iterable<Tensor> | Iterable<ParamGroupInput<H>>;

/** A group as the optimizer holds it: every hyperparameter filled in. Schedulers change `lr`. */
export type ParamGroup<H> = H & { params: Tensor[]; initialLr?: number };

const FLOAT_DTYPES = new Set(['float32', 'float64', 'float16', 'bfloat16']);

export abstract class Optimizer<H extends BaseHyper = BaseHyper> implements Disposable {
  readonly defaults: H;
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Per-parameter state, created at a parameter's first step with a gradient. */
  readonly state = new Map<Tensor, ParamState>();

  protected constructor(params: ParamsInput<H>, defaults: H) {
    this.checkHyper(defaults);
    this.defaults = defaults;
    if (params instanceof Tensor)
      throw new TypeError(`${this.constructor.name}: params must be an iterable of Tensors or of parameter groups, got a single Tensor; wrap it in an array`);
    const list = [...(params as Iterable<Tensor | ParamGroupInput<H>>)];
    if (list.length === 0) throw new Error(`${this.constructor.name}: got an empty parameter list`);
    const groups: ParamGroupInput<H>[] = list[0] instanceof Tensor ? [{ params: list as Tensor[] } as unknown as ParamGroupInput<H>] : (list as ParamGroupInput<H>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Checks a group's hyperparameters (the subclass's rules, PyTorch's messages). */
  protected abstract checkHyper(h: H): void;

  /** Adds a group; hyperparameters it leaves out come from the defaults. */
  addParamGroup(group: ParamGroupInput<H>): void {
    if (group === null || typeof group !== 'object' || !('params' in group))
      throw new TypeError(`${this.constructor.name}: a parameter group must be an object with \`params\``);
    if (group.params instanceof Tensor)
      throw new TypeError(`${this.constructor.name}: a group's params must be an iterable of Tensors, got a single Tensor`);
    const params = [...group.params];
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new TypeError(`${this.constructor.name}: params[${i}] of a group is not a Tensor`);
      if (p.isDisposed) throw new Error(`${this.constructor.name}: params[${i}] of a group has been disposed`);
      if (!p.isLeaf) throw new Error(`${this.constructor.name}: can't optimize a non-leaf Tensor (params[${i}] of a group)`);
    });
    const taken = new Set(this.paramGroups.flatMap((g) => g.params));
    if (params.some((p) => taken.has(p))) throw new Error(`${this.constructor.name}: some parameters appear in more than one parameter group`);
    const full = { ...structuredCloneHyper(this.defaults), ...group, params } as ParamGroup<H>;
    this.checkHyper(full);
    this.paramGroups.push(full);
  }

  /**
   * One update of every parameter that has a gradient. With a closure, calls it first (autograd on)
   * and returns its result, as PyTorch does.
   */
  step<T = void>(closure?: () => T): T | undefined {
    const result = closure ? enableGrad(closure) : undefined;
    for (const group of this.paramGroups) {
      if (group.params.length === 0) continue;
      const handles = group.params.map((p) => p.handle);
      const has = native.gradsDefined(handles);
      const withGrad = group.params.filter((_, i) => has[i]);
      if (withGrad.length > 0) this.update(group, withGrad);
    }
    return result;
  }

  /** Updates `params` (those of `group` that have a gradient) in one native call. */
  protected abstract update(group: ParamGroup<H>, params: Tensor[]): void;

  /** Drops every gradient (setToNone, the default, as PyTorch 2) or zeroes it in place. One native call. */
  zeroGrad(setToNone = true): void {
    const handles: NativeHandle[] = [];
    for (const g of this.paramGroups) for (const p of g.params) handles.push(p.handle);
    native.zeroGrads(handles, setToNone);
  }

  /** A zero-filled tensor like `p` that the optimizer owns (no scope frees it). */
  protected zerosLike(p: Tensor): Tensor {
    return new Tensor(native.zerosLike(p.handle), true);
  }

  /** PyTorch's state_dict(): see OptimizerStateDict. The tensors are the optimizer's own. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups: SavedParamGroup[] = this.paramGroups.map((g) => {
      const ids = g.params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p) as number;
      });
      const { params: _params, ...hyper } = g;
      return { ...structuredCloneHyper(hyper), params: ids };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = { ...s };
    }
    return { state, paramGroups };
  }

  /**
   * PyTorch's load_state_dict(): takes the saved hyperparameters and copies the saved state (cast to
   * each parameter's dtype when floating point, moved to its device). The caller keeps ownership of
   * `sd`'s tensors.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const name = this.constructor.name;
    if (sd === null || typeof sd !== 'object' || !Array.isArray(sd.paramGroups) || typeof sd.state !== 'object')
      throw new TypeError(`${name}.loadStateDict: expected an object with \`state\` and \`paramGroups\` (from stateDict())`);
    if (sd.paramGroups.length !== this.paramGroups.length)
      throw new Error(`${name}.loadStateDict: the state dict has ${sd.paramGroups.length} parameter groups, the optimizer ${this.paramGroups.length}`);
    const byIndex = new Map<number, Tensor>();
    sd.paramGroups.forEach((saved, gi) => {
      const mine = this.paramGroups[gi].params;
      if (!Array.isArray(saved.params) || saved.params.length !== mine.length)
        throw new Error(`${name}.loadStateDict: parameter group ${gi} has ${saved.params?.length} parameters in the state dict and ${mine.length} in the optimizer`);
      saved.params.forEach((id, k) => byIndex.set(id, mine[k]));
    });
    // Build the new state completely before replacing the old, so that an error leaves things as they were.
    const next = new Map<Tensor, ParamState>();
    try {
      for (const [key, entry] of Object.entries(sd.state)) {
        const p = byIndex.get(Number(key));
        if (p === undefined) throw new Error(`${name}.loadStateDict: there is state for parameter ${key}, which no parameter group lists`);
        const s: ParamState = {};
        next.set(p, s);
        for (const [k, v] of Object.entries(entry)) {
          if (typeof v === 'number') {
            s[k] = v;
            continue;
          }
          if (!(v instanceof Tensor)) throw new TypeError(`${name}.loadStateDict: state[${key}].${k} must be a Tensor or a number`);
          if (k === 'step' && v.numel() === 1) {
            s[k] = Number(v.item()); // PyTorch keeps the step count as a one-element tensor
            continue;
          }
          const a = v.shape;
          const b = p.shape;
          if (a.length !== b.length || a.some((d, i) => d !== b[i]))
            throw new Error(`${name}.loadStateDict: state[${key}].${k} has shape [${a.join(', ')}] but its parameter has shape [${b.join(', ')}]`);
          const dtype = FLOAT_DTYPES.has(p.dtype) ? dtypeCode(p.dtype) : undefined;
          s[k] = new Tensor(native.to(v.handle, dtype, p.device, true), true);
        }
      }
    } catch (err) {
      for (const s of next.values()) disposeState(s);
      throw err;
    }
    for (const s of this.state.values()) disposeState(s);
    this.state.clear();
    for (const [p, s] of next) this.state.set(p, s);
    sd.paramGroups.forEach((saved, gi) => {
      const { params: _params, ...hyper } = saved;
      const group = this.paramGroups[gi];
      Object.assign(group, structuredCloneHyper(hyper));
    });
  }

  /** Frees the state tensors. The parameters are not the optimizer's and stay. */
  dispose(): void {
    for (const s of this.state.values()) disposeState(s);
    this.state.clear();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function disposeState(s: ParamState): void {
  for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
}

/** A copy of hyperparameters deep enough that arrays (betas) are not shared between groups. */
function structuredCloneHyper<T extends object>(h: T): T {
  const out = {} as Record<string, unknown>;
  for (const [k, v] of Object.entries(h)) out[k] = Array.isArray(v) ? [...v] : v;
  return out as T;
}
