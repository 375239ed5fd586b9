// The one place that loads the addon. Everything native goes through `native`.
import * as fs from 'fs';
import * as path from 'path';
import type { NativeOps } from './native-ops';
import { defaultNumThreads } from './threads';

declare const handleBrand: unique symbol;
/**
 * An opaque handle to one libtorch tensor, owned by a Tensor: a BigInt key into the addon's table of
 * tensors (binding/tensor_handle.h; a plain value, so making one costs no GC bookkeeping). Free it with
 * native.dispose(handle); native.isDisposed(handle) tells. A handle the addon returns must become a
 * Tensor (whose safety net frees it if it is dropped, lib/memory.ts) or be disposed by its holder.
 */
export type NativeHandle = bigint & { readonly [handleBrand]: true };

/** The addon's ops, typed from binding/ by scripts/gen-native-types.js (lib/native-ops.ts). */
export type Native = NativeOps;

/** The package root: the nearest folder above this file with our package.json (lib/ or dist/lib/). */
function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'torch-lora') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`torch-lora: cannot find the package root above ${__dirname}`);
    dir = up;
  }
}

/** The major version of the libtorch the addon was built against (build/Release/torch-lora-build.json); 1 if unknown. */
function builtTorchMajor(root: string): number {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(root, 'build', 'Release', 'torch-lora-build.json'), 'utf8')) as { torchVersion?: unknown };
    const major = Number(String(info.torchVersion).split('.')[0]);
    return Number.isInteger(major) ? major : 1;
  } catch {
    return 1;
  }
}

function load(): Native {
  const root = packageRoot();
  // How OpenMP's idle threads wait, read by libgomp once, when the addon (and libtorch) loads: here.
  // Debian's libtorch 1.13 multiplies with OpenBLAS, whose own pthreads spinning OpenMP threads fight for
  // the cores: a 31M Llama's step took 1868 ms spinning against 560 ms waiting passively (2 cores,
  // 2026-12-02). A libtorch 2.x (pip: MKL, on libtorch's own OpenMP threads) is faster with libgomp's
  // default, spinning a while before sleeping: bfloat16 steps of the demo shape 44 against 66 ms, of a
  // 97M Llama 436 against 511 ms. So PASSIVE for 1.x, libgomp's default for 2.x, unless the user set it
  // (on a machine busier than its cores, PASSIVE is the safe choice on any libtorch).
  if (process.env.OMP_WAIT_POLICY === undefined && builtTorchMajor(root) < 2) process.env.OMP_WAIT_POLICY = 'PASSIVE';
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('node-gyp-build')(root) as Native;
  } catch (err) {
    const msg = (err as Error).message;
    const hint = /No native build was found/.test(msg)
      ? 'The native addon is not built. Run `npm install` (or `npm run build:native`) in the torch-lora ' +
        'package; it needs cmake, a C++17 compiler and libtorch (LIBTORCH/Torch_DIR, a pip PyTorch, or ' +
        '`apt-get install libtorch-dev` on Debian/Ubuntu).'
      : /lib(torch|c10)[^ ]*\.so/.test(msg)
        ? "libtorch's shared libraries could not be loaded. Install libtorch (on Debian/Ubuntu: " +
          '`apt-get install libtorch-dev`) or add the lib/ folder of the libtorch the addon was built ' +
          'against to LD_LIBRARY_PATH, or rebuild with `npm run build:native`.'
        : 'Rebuild the addon with `npm run build:native`.';
    throw new Error(`torch-lora: cannot load the native addon: ${msg}\n${hint}`);
  }
}

export const native: Native = load();
// libtorch's own default is 1 thread on Debian's 1.13 (and hyper-threads elsewhere): start from the
// physical cores; setNumThreads / --threads / OMP_NUM_THREADS choose otherwise.
native.setNumThreads(defaultNumThreads());
