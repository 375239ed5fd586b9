// Run by tensor-handle.test.ts as a process of its own (node --expose-gc), so that no other test file's
// garbage or finalizers share the measurement: checks the finalizer safety net (lib/memory.ts) and prints
// what it saw as JSON. Mode `drop N`: N pairs of tensors dropped without dispose() must be freed once
// collected, while a reachable one stays; mode `stale`: a late cleanup of a disposed tensor must not
// free the tensor that reused its slot.
import * as torch from '../../lib';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Collects until `done()` or 10 s: registration waits for a microtask, V8 runs cleanups as a later task. */
async function collectUntil(done: () => boolean): Promise<number> {
  const t0 = Date.now();
  let rounds = 0;
  while (!done() && Date.now() - t0 < 10000) {
    await tick(0);
    gc!();
    await tick(5);
    rounds++;
  }
  return rounds;
}

function dropTensors(n: number): void {
  for (let i = 0; i < n; i++) torch.ones([4]).mul(2);
}

async function drop(n: number): Promise<object> {
  const kept = torch.full([3], 7);
  const before = torch.memory();
  dropTensors(n);
  const dropped = torch.memory();
  const rounds = await collectUntil(() => torch.memory().tensors <= before.tensors);
  const after = torch.memory();
  const keptAlive = !kept.isDisposed && JSON.stringify(kept.tolist()) === '[7,7,7]';
  kept.dispose();
  return { before, dropped, after, rounds, keptAlive, afterKept: torch.memory() };
}

async function stale(): Promise<object> {
  const before = torch.memory();
  let old: torch.Tensor | undefined = torch.ones([2]);
  await null; // the sweep registers `old` with the registry
  old.dispose();
  const reused = torch.zeros([5]); // takes the slot `old` had, with a new generation
  old = undefined;
  // Give `old`'s cleanup every chance to run (its key is stale, so it must free nothing).
  const sentinel = new WeakRef({});
  await collectUntil(() => sentinel.deref() === undefined);
  for (let i = 0; i < 5; i++) {
    gc!();
    await tick(5);
  }
  const result = { before, after: torch.memory(), reusedAlive: !reused.isDisposed, reusedSum: torch.scope(() => reused.sum().item()) };
  reused.dispose();
  return result;
}

async function main(): Promise<void> {
  const [mode, n] = process.argv.slice(2);
  const out = mode === 'drop' ? await drop(Number(n)) : await stale();
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e));
  process.exit(1);
});
