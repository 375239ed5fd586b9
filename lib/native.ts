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

function load(): Native {
  const root = packageRoot();
  // libgomp's threads spin while they wait for work, and on Debian's libtorch 1.13 they then fight
  // OpenBLAS's own pthreads for the cores: a 31M Llama's step took 1868 ms spinning against 560 ms waiting
  // passively (2 cores, 2026-12-02; the demo 104 s against 22 s). libtorch 2.x (MKL on OpenMP) is a little
  // faster spinning on idle cores (7.1 s against 9.3 s) but far slower on a busy machine (148 s against
  // 7.2 s for 20 steps at a load of ~20). So passive, unless the user set it; libgomp reads it when the
  // addon (and with it libtorch) is loaded, here.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
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
