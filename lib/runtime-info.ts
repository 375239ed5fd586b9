// What torch-lora runs with (torch-lora info, --version): libtorch's version, the BLAS it calls (read from
// the loaded library, not from how libtorch was built), CUDA, and the thread counts.
import * as fs from 'fs';
import { native } from './native';

export interface BlasReport {
  /** 'OpenBLAS 0.3.21', 'reference BLAS (netlib)', 'MKL', ... */
  name: string;
  /** The file that defines sgemm_ as libtorch resolves it (symlinks resolved); '' if none is visible. */
  library: string;
  /** OpenBLAS's build line (openblas_get_config); '' for other BLAS. */
  config: string;
  /** OpenBLAS's own thread count, or undefined for another BLAS. */
  threads?: number;
}

export interface RuntimeInfo {
  libtorch: string;
  blas: BlasReport;
  /** libtorch's build settings line (torch.__config__.show()): BLAS_INFO, USE_CUDA, ... */
  buildSettings: Record<string, string>;
  cuda: { built: boolean; available: boolean; devices: number; runtime?: string };
  threads: number;
  /** The parallel backend (OpenMP, native thread pool ...), from at::get_parallel_info. */
  parallelBackend: string;
  /** OMP_WAIT_POLICY as libgomp read it at load ('default': spin a while, then sleep). */
  ompWaitPolicy: string;
  /** How the C library's malloc is set (src/malloc_tuning.h). */
  malloc: string;
}

function buildSettings(config: string): Record<string, string> {
  const line = /Build settings:\s*(.*)/.exec(config)?.[1] ?? '';
  const out: Record<string, string> = {};
  // Values such as CXX_FLAGS hold spaces and '=': split on the ", KEY=" boundaries only.
  for (const part of line.split(/, (?=[A-Z0-9_]+=)/)) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).replace(/,\s*$/, '').trim();
  }
  return out;
}

function blasName(library: string, config: string, blasInfo: string | undefined): string {
  if (config) return config.split(/\s+/).slice(0, 2).join(' '); // "OpenBLAS 0.3.21"
  const file = library.toLowerCase();
  if (/mkl/.test(file)) return 'MKL';
  if (/blis/.test(file)) return 'BLIS';
  if (/atlas/.test(file)) return 'ATLAS';
  // Debian's reference BLAS: /usr/lib/<arch>/blas/libblas.so.3 (the netlib Fortran code; slow).
  if (/\/blas\/libblas\.so/.test(file)) return 'reference BLAS (netlib)';
  if (/libtorch|libcaffe2/.test(file) || !file) return blasInfo ? `${blasInfo} (linked into libtorch)` : 'unknown';
  return library.split('/').pop() ?? 'unknown';
}

/** libtorch, BLAS, CUDA and threads of this process (loads nothing new). */
export function runtimeInfo(): RuntimeInfo {
  const config: string = native.showConfig();
  const settings = buildSettings(config);
  const b = native.blasInfo();
  const library = b.library && fs.existsSync(b.library) ? fs.realpathSync(b.library) : b.library;
  const available = native.cudaIsAvailable();
  const backend = /ATen parallel backend:\s*(.*)/.exec(native.parallelInfo())?.[1]?.trim() ?? 'unknown';
  return {
    libtorch: native.torchVersion(),
    blas: {
      name: blasName(library, b.config.trim(), settings.BLAS_INFO),
      library,
      config: b.config.trim(),
      ...(b.threads >= 0 ? { threads: b.threads } : {}),
    },
    buildSettings: settings,
    cuda: {
      built: settings.USE_CUDA === 'ON' || settings.USE_CUDA === '1',
      available,
      devices: native.cudaDeviceCount(),
      ...(/CUDA Runtime ([\d.]+)/.exec(config) ? { runtime: /CUDA Runtime ([\d.]+)/.exec(config)![1] } : {}),
    },
    threads: native.getNumThreads(),
    parallelBackend: backend,
    ompWaitPolicy: process.env.OMP_WAIT_POLICY || 'default',
    malloc: native.mallocInfo(),
  };
}

/** One line: "libtorch 1.13.1, BLAS OpenBLAS 0.3.21 (2 threads), CUDA not built, 2 threads (OpenMP)". */
export function runtimeSummary(info: RuntimeInfo = runtimeInfo()): string {
  const blas = `BLAS ${info.blas.name}${info.blas.threads !== undefined ? ` (${info.blas.threads} thread${info.blas.threads === 1 ? '' : 's'})` : ''}`;
  const cuda = !info.cuda.built
    ? 'CUDA not built'
    : `CUDA ${info.cuda.runtime ?? ''}`.trim() + (info.cuda.available ? `, ${info.cuda.devices} GPU${info.cuda.devices === 1 ? '' : 's'}` : ', no GPU visible');
  return `libtorch ${info.libtorch}, ${blas}, ${cuda}, ${info.threads} thread${info.threads === 1 ? '' : 's'} (${info.parallelBackend})`;
}
