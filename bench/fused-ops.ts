// The fused training ops against their unfused composites on the CPU: milliseconds per forward+backward
// (median), the memory the autograd graph holds between forward and backward, and the peak memory of the
// whole step, both above the step's starting point. Memory is the process's resident set: glibc's
// mmap threshold is pinned (the script re-runs itself with MALLOC_MMAP_THRESHOLD_ set) so that every
// tensor buffer is its own mapping, returned when freed, and the peak is the kernel's high-water mark
// (VmHWM, reset through /proc/self/clear_refs). Linux only for the memory columns.
// Run: npx tsc -p tsconfig.json && node dist/bench/fused-ops.js [--repeats N] [--no-write]
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as torch from '../lib';
import { F, scope, Tensor } from '../lib';
import { causalLMLoss } from '../lib/models';

const THRESHOLD = '65536';
if (process.platform === 'linux' && process.env.MALLOC_MMAP_THRESHOLD_ !== THRESHOLD) {
  const r = spawnSync(process.execPath, [__filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: THRESHOLD },
  });
  process.exit(r.status ?? 1);
}

const args = process.argv.slice(2);
const repeats = args.includes('--repeats') ? Number(args[args.indexOf('--repeats') + 1]) : 5;
const write = !args.includes('--no-write');

function statusKb(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}
const canMeasure = process.platform === 'linux' && fs.existsSync('/proc/self/clear_refs');
function resetPeak(): void {
  if (canMeasure) fs.writeFileSync('/proc/self/clear_refs', '5');
}

interface Case {
  /** Builds the inputs once (outside the timed region). */
  setup(): Tensor[];
  /** The forward: returns the output(s) to back-propagate. */
  forward(xs: Tensor[]): Tensor[];
}
interface Row {
  name: string;
  variant: string;
  ms: number;
  held: number;
  peak: number;
}

/** One forward+backward with fixed upstream gradients: [ms, bytes held after forward, peak bytes]. */
function step(c: Case, xs: Tensor[], grads: Tensor[]): [number, number, number] {
  for (const x of xs) if (x.grad) x.grad.zero_();
  resetPeak();
  const base = statusKb('VmRSS');
  let held = 0;
  const t0 = process.hrtime.bigint();
  scope(() => {
    const outs = c.forward(xs);
    held = statusKb('VmRSS') - base;
    if (outs.length === 1) outs[0].backward(grads[0]);
    else outs.map((o, j) => o.mul(grads[j]).sum()).reduce((a, b) => a.add(b)).backward();
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return [ms, held, statusKb('VmHWM') - base];
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/** The variants of one op, run in turn within each repetition (so that a busy machine slows them alike). */
function measureGroup(name: string, variants: Record<string, Case>): Row[] {
  const entries = Object.entries(variants).map(([variant, c]) => {
    torch.manualSeed(0);
    const xs = c.setup();
    const grads = scope(() => c.forward(xs).map((o) => torch.randnLike(o)));
    return { variant, c, xs, grads, ms: [] as number[], held: 0, peak: 0 };
  });
  for (let i = 0; i <= repeats; i++) {
    for (const e of entries) {
      const [ms, held, peak] = step(e.c, e.xs, e.grads);
      if (i === 0) continue; // warm-up
      e.ms.push(ms);
      e.held = Math.max(e.held, held);
      e.peak = Math.max(e.peak, peak);
    }
  }
  for (const e of entries) for (const t of [...e.xs, ...e.grads]) t.dispose();
  return entries.map((e) => ({ name, variant: e.variant, ms: median(e.ms), held: e.held, peak: e.peak }));
}

function leaf(shape: number[], requiresGrad: boolean): Tensor {
  const t = torch.randn(shape);
  return requiresGrad ? t.requiresGrad_(true) : t;
}

// ---- the cases (float32; sizes of a small model's layer) ----
const s = 2;
const lora = (p: number): Record<string, Case> => {
  const setup = () => [leaf([4, 256, 512], true), leaf([512, 512], false), leaf([16, 512], true), leaf([512, 16], true)];
  return {
    fused: { setup, forward: ([x, w, a, b]) => [F.loraLinear(x, w, undefined, a, b, s, { dropoutP: p })] },
    composite: {
      setup,
      forward: ([x, w, a, b]) => [F.linear(x, w).add(F.linear(F.linear(p > 0 ? F.dropout(x, p) : x, a), b).mul(s))],
    },
  };
};
const rotateHalf = (x: Tensor) => {
  const d = x.shape[x.ndim - 1] / 2;
  return torch.cat([x.narrow(-1, d, d).neg(), x.narrow(-1, 0, d)], -1);
};
const rotarySetup = () => {
  const emb = torch.randn([2, 512, 64]);
  return [leaf([2, 16, 512, 64], true), leaf([2, 4, 512, 64], true), emb.cos(), emb.sin()];
};
const rotary: Record<string, Case> = {
  fused: { setup: rotarySetup, forward: ([q, k, c, sn]) => F.applyRotaryPosEmb(q, k, c, sn) },
  composite: {
    setup: rotarySetup,
    forward: ([q, k, cos, sin]) => {
      const c = cos.unsqueeze(1);
      const sn = sin.unsqueeze(1);
      return [q.mul(c).add(rotateHalf(q).mul(sn)), k.mul(c).add(rotateHalf(k).mul(sn))];
    },
  },
};
const lossSetup = () => [leaf([2, 128, 256], true), leaf([32000, 256], false), torch.randint(0, 32000, [2, 128], { dtype: 'int64' })];
const loss: Record<string, Case> = {
  'fused (auto chunk: all 256 tokens)': { setup: lossSetup, forward: ([h, w, l]) => [F.causalLmLoss(h, w, l)] },
  'fused (chunk 64)': { setup: lossSetup, forward: ([h, w, l]) => [F.causalLmLoss(h, w, l, { chunkSize: 64 })] },
  'fused (chunk 64, recompute)': {
    setup: lossSetup,
    forward: ([h, w, l]) => [F.causalLmLoss(h, w, l, { chunkSize: 64, recompute: true })],
  },
  composite: { setup: lossSetup, forward: ([h, w, l]) => [causalLMLoss(F.linear(h, w), l)] },
};
const swigluSetup = () => [leaf([4, 256, 2816], true), leaf([4, 256, 2816], true)];
const swiglu: Record<string, Case> = {
  fused: { setup: swigluSetup, forward: ([g, u]) => [F.swiglu(g, u)] },
  composite: { setup: swigluSetup, forward: ([g, u]) => [F.silu(g).mul(u)] },
};

const groups: [string, Record<string, Case>][] = [
  ['loraLinear x[4,256,512] W frozen r=16', lora(0)],
  ['loraLinear, dropout 0.1', lora(0.1)],
  ['applyRotaryPosEmb q[2,16,512,64] k[2,4,512,64]', rotary],
  ['causalLmLoss h[2,128,256] V=32000 (W frozen)', loss],
  ['swiglu [4,256,2816]', swiglu],
];

const rows: Row[] = groups.flatMap(([name, variants]) => measureGroup(name, variants));

const mib = (b: number) => (canMeasure ? (b / 2 ** 20).toFixed(1) : 'n/a');
const lines = [
  `fused ops vs composites, CPU float32, libtorch ${torch.torchVersion}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ` +
    `${torch.getNumThreads()} threads, load average ${os.loadavg()[0].toFixed(1)}, median of ${repeats}; memory above the step's start (MiB)`,
  '',
  '| op | variant | ms fwd+bwd | held after forward | peak |',
  '|---|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${r.variant} | ${r.ms.toFixed(2)} | ${mib(r.held)} | ${mib(r.peak)} |`),
];
const text = lines.join('\n');
console.log(text);
if (write) {
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `fused-ops-${new Date().toISOString().slice(0, 10)}.md`);
  fs.writeFileSync(file, text + '\n');
  console.log(`\nwritten to ${path.relative(process.cwd(), file)}`);
}
