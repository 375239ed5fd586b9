// Loads test/fixtures/optim-reference.safetensors (written by make_optim_reference.py with PyTorch
// 1.13) and builds our optimizers from the case configurations it carries.
import * as path from 'path';
import { AdamW, nn, optim, readSafetensorsHeader, SGD } from '../../lib';
import { loadReferenceFile, ReferenceTensors } from './reference';

const FILE = path.join(__dirname, '..', 'fixtures', 'optim-reference.safetensors');

export interface OptimCase {
  class: 'AdamW' | 'SGD';
  groups: ({ params: number[] } & Record<string, unknown>)[];
  defaults: Record<string, unknown>;
}
export interface OptimConfig {
  steps: number;
  skip: [number, number][];
  optimizers: Record<string, OptimCase>;
  clip: Record<string, { max_norm: number; norm_type: number | 'inf' }>;
  sched: {
    steps: number;
    base_lrs: number[];
    cases: Record<string, { name: optim.SchedulerType; num_warmup_steps: number | null; num_training_steps: number | null }>;
  };
}

export function loadOptimReference(): ReferenceTensors & { config: OptimConfig } {
  const config = JSON.parse(readSafetensorsHeader(FILE).metadata.config) as OptimConfig;
  return { ...loadReferenceFile(FILE, 'make_optim_reference.py'), config };
}

/** PyTorch's option names -> ours. */
const NAMES: Record<string, string> = { weight_decay: 'weightDecay' };
export function hyper(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (k !== 'params') out[NAMES[k] ?? k] = v;
  return out;
}

/** The case's optimizer over `params` (indices in the case's groups refer to it). */
export function makeOptimizer(c: OptimCase, params: nn.Parameter[]): AdamW | SGD {
  const groups = c.groups.map((g) => ({ params: g.params.map((i) => params[i]), ...hyper(g) }));
  /* eslint-disable @typescript-eslint/no-explicit-any */
  return c.class === 'AdamW' ? new AdamW(groups as any, hyper(c.defaults)) : new SGD(groups as any, hyper(c.defaults) as any);
  /* eslint-enable @typescript-eslint/no-explicit-any */
}
