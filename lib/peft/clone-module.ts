// copy.deepcopy for modules: the same class and structure with their own copies of every parameter and
// buffer (tied tensors stay tied within the copy). Used for modules_to_save, which trains a copy of a
// module while the original stays frozen.
import { noGrad } from '../autograd';
import { keep } from '../memory';
import { Module, ModuleDict, ModuleList, Parameter, ParameterDict, Sequential } from '../nn';
import { Tensor } from '../tensor';

type Memo = Map<unknown, unknown>;

function copyValue(v: unknown, memo: Memo): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (memo.has(v)) return memo.get(v);
  let out: unknown;
  if (v instanceof Module) out = cloneModule(v, memo);
  else if (v instanceof Parameter) {
    const data = noGrad(() => v.clone());
    const p = new Parameter(data, v.requiresGrad);
    data.dispose();
    out = p;
  } else if (v instanceof Tensor) {
    // Buffers belong to their module, not to whatever scope is open.
    out = keep(noGrad(() => v.clone()));
  } else if (v instanceof Map) {
    const m = new Map();
    memo.set(v, m);
    for (const [k, x] of v) m.set(k, copyValue(x, memo));
    return m;
  } else if (v instanceof Set) {
    const s = new Set();
    memo.set(v, s);
    for (const x of v) s.add(copyValue(x, memo));
    return s;
  } else if (Array.isArray(v)) {
    const a: unknown[] = [];
    memo.set(v, a);
    for (const x of v) a.push(copyValue(x, memo));
    return a;
  } else if (Object.getPrototypeOf(v) === Object.prototype) {
    const o: Record<string, unknown> = {};
    memo.set(v, o);
    for (const [k, x] of Object.entries(v)) o[k] = copyValue(x, memo);
    return o;
  } else out = v; // other objects (configs with methods, functions' holders) are shared, as deepcopy would keep immutables
  memo.set(v, out);
  return out;
}

/** A deep copy of `m`: same class, own parameters and buffers (requires_grad kept). */
export function cloneModule<T extends Module>(m: T, memo: Memo = new Map()): T {
  if (memo.has(m)) return memo.get(m) as T;
  // The containers keep their order in private fields, which only their constructors create.
  if (m instanceof ModuleDict || m instanceof ModuleList || m instanceof Sequential || m instanceof ParameterDict) {
    let copy: Module;
    if (m instanceof ModuleDict) copy = new ModuleDict(m.entries().map(([k, c]) => [k, cloneModule(c, memo)] as [string, Module]));
    else if (m instanceof ModuleList) copy = new ModuleList([...m].map((c) => cloneModule(c, memo)));
    else if (m instanceof Sequential)
      copy = new Sequential(Object.fromEntries([...m.moduleFields()].map(([k, c]) => [k, cloneModule(c, memo)])));
    else copy = new ParameterDict((m as ParameterDict).entries().map(([k, p]) => [k, copyValue(p, memo) as Parameter] as [string, Tensor]));
    copy.training = m.training;
    memo.set(m, copy);
    return copy as T;
  }
  const copy = Object.create(Object.getPrototypeOf(m)) as T;
  memo.set(m, copy);
  for (const key of Reflect.ownKeys(m)) {
    const desc = Object.getOwnPropertyDescriptor(m, key)!;
    if ('value' in desc) desc.value = copyValue(desc.value, memo);
    Object.defineProperty(copy, key, desc);
  }
  return copy;
}
