// torch-lora info: what this installation runs with: libtorch, the BLAS it calls, CUDA, the threads.
// A slow BLAS (Debian's reference libblas.so.3) makes training several times slower; this says so.
import { runtimeInfo } from '../runtime-info';
import { CliIO } from './io';
import type { Command } from './main';
import { CommandSpec, Parsed } from './options';
import { applyThreads, threadsOption } from './threads';

const spec: CommandSpec = {
  name: 'info',
  usage: '[--json] [--threads N]',
  summary: 'Shows the libtorch, BLAS, CUDA and thread count torch-lora runs with.',
  options: [
    { name: 'json', type: 'boolean', description: 'print JSON instead of text' },
    threadsOption(),
  ],
  details: 'A reference BLAS (netlib) is slow; on Debian/Ubuntu: apt-get install libopenblas0-pthread (scripts/setup.sh does).',
};

async function run(parsed: Parsed, io: CliIO): Promise<void> {
  applyThreads(parsed.values.threads);
  const info = runtimeInfo();
  if (parsed.values.json) {
    io.out.write(`${JSON.stringify(info, null, 2)}\n`);
    return;
  }
  const s = info.buildSettings;
  const rows: [string, string][] = [
    ['libtorch', `${info.libtorch}${s.BLAS_INFO ? ` (built with BLAS_INFO=${s.BLAS_INFO})` : ''}`],
    ['BLAS', `${info.blas.name}${info.blas.threads !== undefined ? `, ${info.blas.threads} thread${info.blas.threads === 1 ? '' : 's'} of its own` : ''}`],
    ['BLAS library', info.blas.library || 'none visible'],
    ...(info.blas.config ? [['BLAS config', info.blas.config] as [string, string]] : []),
    ['CUDA', info.cuda.built ? `${info.cuda.runtime ?? 'built'}; ${info.cuda.available ? `${info.cuda.devices} GPU(s) visible` : 'no GPU visible'}` : 'not built (CPU only)'],
    ['threads', `${info.threads} (${info.parallelBackend}; OMP_WAIT_POLICY ${info.ompWaitPolicy})`],
    ['malloc', info.malloc],
  ];
  for (const [k, v] of rows) io.out.write(`${k.padEnd(14)}${v}\n`);
  if (/reference BLAS/.test(info.blas.name)) {
    io.out.write('\nwarning: the reference BLAS is several times slower than OpenBLAS: apt-get install libopenblas0-pthread\n');
  }
}

export const command: Command = { spec, run };
