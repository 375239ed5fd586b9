// The thread count torch-lora starts with (physical cores, OMP_NUM_THREADS, setNumThreads, --threads) and
// what `torch-lora info` / `--version` report: libtorch, the BLAS read from the loaded library, CUDA, threads.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { getNumThreads, runtimeInfo, setNumThreads } from '../lib';
import { cgroupCpuLimit, defaultNumThreads, physicalCores } from '../lib/threads';
import { cli, ROOT } from './helpers/cli';
import { tmpDir } from './helpers/train';
import { tsProcess } from './helpers/ts-process';

/** A fake /sys/devices/system/cpu: `cores` is one [package, core] pair per logical CPU; null = offline. */
function fakeSysCpu(cores: ([number, number] | null)[]): string {
  const dir = tmpDir('sys-cpu');
  cores.forEach((pc, i) => {
    const topo = path.join(dir, `cpu${i}`, 'topology');
    fs.mkdirSync(pc ? topo : path.join(dir, `cpu${i}`), { recursive: true });
    if (pc) {
      fs.writeFileSync(path.join(topo, 'physical_package_id'), `${pc[0]}\n`);
      fs.writeFileSync(path.join(topo, 'core_id'), `${pc[1]}\n`);
    }
  });
  fs.mkdirSync(path.join(dir, 'cpufreq'));
  return dir;
}

test('physicalCores counts package/core pairs, not hyper-threads or offline CPUs', () => {
  // 2 packages x 2 cores x 2 hyper-threads, and one CPU offline: 4 cores.
  const sys = fakeSysCpu([[0, 0], [0, 1], [1, 0], [1, 1], [0, 0], [0, 1], [1, 0], [1, 1], null]);
  expect(physicalCores(sys)).toBe(4);
  expect(physicalCores(path.join(sys, 'nope'))).toBeUndefined();
});

test('cgroupCpuLimit reads a cgroup v2 cpu.max quota, rounded up; "max" is no limit', () => {
  const dir = tmpDir('cgroup');
  const f = path.join(dir, 'cpu.max');
  fs.writeFileSync(f, '150000 100000\n');
  expect(cgroupCpuLimit(f)).toBe(2);
  fs.writeFileSync(f, 'max 100000\n');
  expect(cgroupCpuLimit(f)).toBeUndefined();
  expect(cgroupCpuLimit(path.join(dir, 'none'))).toBeUndefined();
});

test('defaultNumThreads: OMP_NUM_THREADS wins; else the physical cores this process may use', () => {
  expect(defaultNumThreads({ OMP_NUM_THREADS: '3' })).toBe(3);
  const n = defaultNumThreads({ OMP_NUM_THREADS: 'many' }); // not a count: ignored
  expect(n).toBeGreaterThanOrEqual(1);
  expect(n).toBeLessThanOrEqual(Math.min(physicalCores() ?? Infinity, os.availableParallelism()));
  expect(defaultNumThreads({})).toBe(n);
});

test('a fresh process starts libtorch (and OpenBLAS) at the default thread count; OMP_NUM_THREADS overrides it', () => {
  const env = { ...process.env };
  delete env.OMP_NUM_THREADS;
  const run = (e: NodeJS.ProcessEnv) => {
    const r = tsProcess(path.join(ROOT, 'lib', 'cli', 'main.ts'), ['info', '--json'], [], e);
    expect([r.code, r.err]).toEqual([0, '']);
    return JSON.parse(r.out);
  };
  const plain = run(env);
  expect(plain.threads).toBe(defaultNumThreads(env));
  if (plain.blas.threads !== undefined) expect(plain.blas.threads).toBe(plain.threads);
  expect(run({ ...env, OMP_NUM_THREADS: '1' }).threads).toBe(1);
});

test('setNumThreads sets libtorch and OpenBLAS alike; a count out of 1..4096 is a RangeError', () => {
  const before = getNumThreads();
  try {
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    const blas = runtimeInfo().blas;
    if (blas.threads !== undefined) expect(blas.threads).toBe(1);
    for (const bad of [0, -1, 1.5, NaN, 5000]) expect(() => setNumThreads(bad)).toThrow(/setNumThreads\(n\): n must be an integer from 1 to 4096/);
    expect(getNumThreads()).toBe(1);
  } finally {
    setNumThreads(before);
  }
});

test('torch-lora info: libtorch, the BLAS file libtorch calls, CUDA and threads; --threads sets them', async () => {
  const r = await cli('info', '--json', '--threads', '1');
  expect([r.code, r.err]).toEqual([0, '']);
  const info = JSON.parse(r.out);
  expect(info.libtorch).toMatch(/^\d+\.\d+/);
  expect(info.threads).toBe(1);
  expect(typeof info.cuda.available).toBe('boolean');
  // The BLAS is the file that defines sgemm_ (a real file on disk), or BLAS built into libtorch (pip's MKL).
  if (info.blas.library) expect(fs.existsSync(info.blas.library)).toBe(true);
  expect(info.blas.name).not.toBe('unknown');
  const text = await cli('info');
  expect(text.out).toMatch(/^libtorch +\d/m);
  expect(text.out).toMatch(/^BLAS +\S/m);
  expect(text.out).toMatch(/^CUDA +\S/m);
  expect(text.out).toMatch(/^threads +\d+ \(/m);
  for (const bad of ['0', '9999']) {
    const e = await cli('info', '--threads', bad);
    expect([bad, e.code]).toEqual([bad, 2]);
    expect(e.err).toContain('--threads must be an integer from 1 to 4096');
  }
  setNumThreads(defaultNumThreads());
});

test("Debian's libtorch runs on an optimized BLAS, not the reference one (scripts/setup.sh installs OpenBLAS)", () => {
  const info = runtimeInfo();
  // Debian's libtorch is built against the generic libblas.so.3 interface; which BLAS it gets is the
  // machine's. A pip/libtorch-zip build brings its own (MKL, OpenBLAS) and passes on its own.
  expect(info.blas.name).not.toMatch(/reference/);
  if (info.buildSettings.BLAS_INFO === 'generic') expect(info.blas.library).toMatch(/openblas|blis|mkl/i);
});

test('the CLI starts libgomp with OMP_WAIT_POLICY=PASSIVE on libtorch 1.x (libgomp\'s default on 2.x) unless the user set it', () => {
  const env = { ...process.env };
  delete env.OMP_WAIT_POLICY;
  const run = (e: NodeJS.ProcessEnv) => {
    const r = tsProcess(path.join(ROOT, 'lib', 'cli', 'main.ts'), ['info', '--json'], [], e);
    expect([r.code, r.err]).toEqual([0, '']);
    return JSON.parse(r.out).ompWaitPolicy;
  };
  expect(run(env)).toBe(Number(runtimeInfo().libtorch.split('.')[0]) >= 2 ? 'default' : 'PASSIVE');
  expect(run({ ...env, OMP_WAIT_POLICY: 'ACTIVE' })).toBe('ACTIVE');
});
