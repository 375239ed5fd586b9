// The per-op cost of small ops through our binding (TS method -> N-API -> ATen -> new Tensor), next to
// Python PyTorch on the same libtorch (bench/op_overhead.py). Rounds alternate the two sides (Python,
// then ours, ...) so that a change in machine load hits both alike; a round's figure is the median of
// its repeats, and the table shows each side's best (lowest) round: on a busy machine the other
// processes only ever add time, so the best round is the closest to the op's own cost. Prints one
// table and writes it to bench/results/.
// Run through bench/op-overhead.sh (npm run bench:ops), or:
//   node dist/bench/op-overhead.js [--python /usr/bin/python3 | --no-python] [--rounds N]
//                                  [--repeats N] [--target-ms MS] [--clock wall|cpu] [--no-write]
// --clock cpu times by the process's CPU time instead of the wall clock: steadier on a busy machine.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as torch from '../lib';
import type { Tensor } from '../lib';

interface Args {
  python?: string;
  rounds: number;
  repeats: number;
  targetMs: number;
  clock: 'wall' | 'cpu';
  write: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { python: '/usr/bin/python3', rounds: 5, repeats: 5, targetMs: 60, clock: 'wall', write: true };
  const num = (i: number): number => {
    const v = Number(argv[i]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`op-overhead: ${argv[i - 1]} needs a positive number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--python') a.python = argv[++i];
    else if (k === '--no-python') a.python = undefined;
    else if (k === '--rounds') a.rounds = Math.round(num(++i));
    else if (k === '--repeats') a.repeats = Math.round(num(++i));
    else if (k === '--target-ms') a.targetMs = num(++i);
    else if (k === '--clock') {
      const c = argv[++i];
      if (c !== 'wall' && c !== 'cpu') throw new Error(`op-overhead: --clock takes wall or cpu, got ${c}`);
      a.clock = c;
    } else if (k === '--no-write') a.write = false;
    else throw new Error(`op-overhead: unknown argument ${k}`);
  }
  return a;
}

interface Env {
  a: Tensor;
  b: Tensor;
  m: Tensor;
  x: Tensor;
}

// The same ops, names and shapes as bench/op_overhead.py. Each statement frees what it makes, as the
// Python statement's results are freed by reference counting.
const OPS: [string, string][] = [
  ['numel (call only)', 'e.a.numel();'],
  ['add 16 f32', 'e.a.add(e.b).dispose();'],
  ['mul scalar 16 f32', 'e.a.mul(2.5).dispose();'],
  ['matmul 64x64', 'e.m.matmul(e.m).dispose();'],
  ['sum 16 f32', 'e.a.sum().dispose();'],
  ['relu 16 f32', 'e.a.relu().dispose();'],
  ['view 16 -> 4x4', 'e.a.view(4, 4).dispose();'],
  ['reshape 16 -> 2x8', 'e.a.reshape(2, 8).dispose();'],
  ['add+sum+backward (grad)', 'const y = e.x.add(e.b); const s = y.sum(); s.backward(); s.dispose(); y.dispose();'],
];

type Loop = (e: Env, n: number) => void;
/**
 * A loop with the statement inlined, compiled for this op alone, as Python's timeit does: a shared
 * loop calling a closure per op would add a call the Python side does not pay.
 */
function makeLoop(statement: string): Loop {
  return new Function('e', 'n', `for (let i = 0; i < n; i++) { ${statement} }`) as Loop;
}

let clock: 'wall' | 'cpu' = 'wall';

/** Seconds that n runs of the statement take, by the chosen clock. */
function timeLoop(loop: Loop, env: Env, n: number): number {
  if (clock === 'cpu') {
    const c0 = process.cpuUsage();
    loop(env, n);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1e6;
  }
  const t0 = process.hrtime.bigint();
  loop(env, n);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** µs per op: warm-up/calibration to about targetMs per repeat, then the median of the repeats. */
function measure(loop: Loop, env: Env, args: Args): number {
  let n = 100;
  let t = 0;
  for (;;) {
    t = timeLoop(loop, env, n);
    if (t >= 0.02) break;
    n *= 4;
  }
  const number = Math.max(100, Math.floor((n * (args.targetMs / 1000)) / t));
  const times: number[] = [];
  for (let r = 0; r < args.repeats; r++) times.push(timeLoop(loop, env, number));
  return (median(times) / number) * 1e6;
}

let gradMade = false;
const loops = new Map(OPS.map(([name, statement]) => [name, makeLoop(statement)]));

function measureOurs(env: Env, args: Args): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name] of OPS) {
    const before = torch.memory().tensors;
    out[name] = measure(loops.get(name)!, env, args);
    // x.grad is made by the first backward and then accumulated in place: one tensor, once.
    const allowed = name.includes('backward') && !gradMade ? 1 : 0;
    if (name.includes('backward')) gradMade = true;
    const grew = torch.memory().tensors - before;
    if (grew > allowed) throw new Error(`op-overhead: '${name}' left ${grew} tensors behind`);
  }
  return out;
}

interface PythonRun {
  torch: string;
  threads: number;
  ops: Record<string, number>;
}

function runPython(args: Args): PythonRun {
  const script = path.resolve(__dirname, '..', '..', 'bench', 'op_overhead.py');
  const pyArgs = [script, '--repeats', String(args.repeats), '--target-ms', String(args.targetMs), '--clock', args.clock];
  const r = spawnSync(args.python!, pyArgs, {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' },
  });
  if (r.error || r.status !== 0)
    throw new Error(
      `op-overhead: ${args.python} ${script} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}\n` +
        'It needs Python with torch (Debian: apt-get install python3-torch); --no-python measures ours alone.',
    );
  return JSON.parse(r.stdout) as PythonRun;
}

function fmt(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  clock = args.clock;
  torch.setNumThreads(1); // as torch.set_num_threads(1) on the Python side
  torch.manualSeed(0);
  const env: Env = {
    a: torch.randn([16]),
    b: torch.randn([16]),
    m: torch.randn([64, 64]),
    x: torch.randn([16], { requiresGrad: true }),
  };

  const load0 = os.loadavg()[0];
  const ours: Record<string, number[]> = {};
  const py: Record<string, number[]> = {};
  let pyInfo: PythonRun | undefined;
  for (let round = 0; round < args.rounds; round++) {
    if (args.python) {
      pyInfo = runPython(args);
      for (const [k, v] of Object.entries(pyInfo.ops)) (py[k] ??= []).push(v);
    }
    for (const [k, v] of Object.entries(measureOurs(env, args))) (ours[k] ??= []).push(v);
  }
  const load1 = os.loadavg()[0];

  const rows = OPS.map(([name]) => {
    const o = Math.min(...ours[name]);
    const p = py[name] ? Math.min(...py[name]) : undefined;
    return `| ${name} | ${fmt(o)} | ${fmt(p)} | ${p === undefined ? '-' : fmt(o / p)} |`;
  });
  const cpu = os.cpus();
  const table = [
    `µs per op, ${args.clock === 'cpu' ? 'process CPU time' : 'wall clock'}: the best of ${args.rounds} alternating rounds, ` +
      `a round being the median of ${args.repeats} repeats of ~${args.targetMs} ms after warm-up; 1 intra-op thread on ` +
      'both sides; results freed inside the loop (ours: dispose(); Python: reference counting).',
    `Machine: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, load average ${load0.toFixed(2)} -> ` +
      `${load1.toFixed(2)}; Node ${process.version}, libtorch ${torch.torchVersion} (ours)` +
      (pyInfo ? `; Python ${pyInfo.torch} (torch.get_num_threads() = ${pyInfo.threads}).` : '; Python not run.'),
    '',
    '| op | ours µs/op | PyTorch µs/op | ratio (ours/PyTorch) |',
    '|---|---:|---:|---:|',
    ...rows,
  ].join('\n');
  console.log(table);

  if (args.write && pyInfo) {
    const date = new Date().toISOString().slice(0, 10);
    const dir = path.resolve(__dirname, '..', '..', 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `op-overhead-${date}${args.clock === 'cpu' ? '-cpu' : ''}.md`);
    fs.writeFileSync(file, `# Op overhead, ${date}\n\nFrom \`npm run bench:ops\` (bench/op-overhead.sh).\n\n${table}\n`);
    console.log(`\nwritten: ${path.relative(process.cwd(), file)}`);
  }
  torch.dispose(env);
}

main();
