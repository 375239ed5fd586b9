// Explicit native memory: scopes that free what they made, and the live-tensor counts tests rely on.
import { native, NativeHandle } from './native';

/** What a scope can track and free. Tensor implements it. */
export interface Disposable {
  dispose(): void;
}

const scopes: Disposable[][] = [];

// ---- the safety net: a tensor dropped without dispose() is freed after the GC collects it ----
// Registering with a FinalizationRegistry costs more than a small op, and most tensors are disposed
// soon after they are made (by hand or by a scope), so registration waits: new tensors gather in
// `young` until the current synchronous work ends (a microtask) or YOUNG_MAX have gathered, and only
// those not disposed by then are registered. Freeing an already disposed handle is a no-op, and a
// handle's key is never reused for another tensor, so a late cleanup can never free the wrong one.
interface Owned {
  readonly handle: NativeHandle;
  readonly released: boolean;
}
const registry = new FinalizationRegistry<NativeHandle>((handle) => native.dispose(handle));
const YOUNG_MAX = 4096;
// A fixed array and a count, not push(): this runs once per op.
const young: (Owned | undefined)[] = new Array<Owned | undefined>(YOUNG_MAX).fill(undefined);
let youngCount = 0;
let sweepQueued = false;

function sweep(): void {
  sweepQueued = false;
  const n = youngCount;
  youngCount = 0;
  for (let i = 0; i < n; i++) {
    const t = young[i]!;
    young[i] = undefined;
    if (!t.released) registry.register(t, t.handle);
  }
}

/** @internal Gives a freshly made tensor the finalizer safety net (lazily, as above). */
export function watch(t: Owned): void {
  young[youngCount++] = t;
  if (youngCount === YOUNG_MAX) sweep();
  else if (!sweepQueued) {
    sweepQueued = true;
    queueMicrotask(sweep);
  }
}

/** @internal Registers a freshly made tensor with the innermost open scope. */
export function track(t: Disposable): void {
  // (not scopes[scopes.length - 1]: reading index -1 of an empty array is a slow property lookup)
  const n = scopes.length;
  if (n !== 0) scopes[n - 1].push(t);
}

function collectKept(value: unknown, out: Set<unknown>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (typeof (value as Disposable).dispose === 'function' && (value as { isTensor?: boolean }).isTensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectKept(v, out, seen);
  } else if (value instanceof Map) {
    for (const v of value.values()) collectKept(v, out, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectKept(v, out, seen);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it, except the tensors it returns (found inside
 * arrays, Maps and plain objects too), which move to the enclosing scope. Scopes nest. `fn` must be
 * synchronous: tensors made after an `await` could not be told apart from other work's.
 */
export function scope<T>(fn: () => T): T {
  const mine: Disposable[] = [];
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of mine) t.dispose();
    throw err;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of mine) t.dispose();
    throw new TypeError('scope(fn): fn returned a Promise; scopes track synchronous work only');
  }
  const kept = new Set<unknown>();
  collectKept(result, kept, new Set());
  const parent = scopes[scopes.length - 1];
  for (const t of mine) {
    if (kept.has(t)) {
      if (parent !== undefined) parent.push(t);
    } else {
      t.dispose();
    }
  }
  return result;
}

/** Takes `t` out of the innermost scope so that it outlives it. Returns `t`. */
export function keep<T extends Disposable>(t: T): T {
  for (let s = scopes.length - 1; s >= 0; s--) {
    const i = scopes[s].lastIndexOf(t);
    if (i >= 0) {
      scopes[s].splice(i, 1);
      break;
    }
  }
  return t;
}

/** Disposes every tensor found in `value` (a tensor, or arrays/Maps/plain objects of them). */
export function dispose(value: unknown): void {
  const found = new Set<unknown>();
  collectKept(value, found, new Set());
  for (const t of found) (t as Disposable).dispose();
}

export interface MemoryInfo {
  /** Tensors whose native memory is still referenced from JavaScript (not disposed, not collected). */
  tensors: number;
  /** Bytes those tensors view (numel × itemsize each; meta tensors count 0): cpuBytes + cudaBytes. */
  bytes: number;
  /** The part of `bytes` in host memory. */
  cpuBytes: number;
  /** The part of `bytes` on CUDA devices (what the tensors view, not what the caching allocator holds). */
  cudaBytes: number;
}

/**
 * Live-tensor and byte counts of the native layer: a loop that frees what it makes keeps them flat. The
 * same bytes are reported to V8 as external memory, so that tensors left to the garbage collector make
 * it run.
 */
export function memory(): MemoryInfo {
  const bytes = native.liveBytes();
  const cudaBytes = native.liveCudaBytes();
  return { tensors: native.liveTensors(), bytes, cpuBytes: bytes - cudaBytes, cudaBytes };
}
