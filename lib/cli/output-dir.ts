// train's --output: a new run starts in an empty folder, so that the adapter, the log and the checkpoints
// (which `latest` resumes from) are all of one run. A folder with an earlier run is refused unless the run
// resumes from it or --overwrite-output-dir (transformers' name) asks to clear it; clearing removes only
// what a training run writes, and a folder holding anything else is never cleared.
import * as fs from 'fs';
import * as path from 'path';
import { CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME } from '../peft/constants';
import { LOG_FILE_NAME, LOSS_PLOT_NAME, TRAINER_STATE_NAME, TRAINING_ARGS_NAME } from '../train';
import { TRAINABLE_WEIGHTS_NAME } from '../train/checkpoint';
import { UsageError } from './options';

/** Files and folders a training run writes into its output folder (README.md: PEFT's model card). */
const RUN_FILES = new Set([
  CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME, 'README.md', TRAINER_STATE_NAME, TRAINING_ARGS_NAME,
  LOG_FILE_NAME, LOSS_PLOT_NAME, TRAINABLE_WEIGHTS_NAME,
]); // prettier-ignore
const isRunEntry = (name: string) => RUN_FILES.has(name) || /^checkpoint-\d+$/.test(name) || /^\.tmp-checkpoint-/.test(name);

function list(names: string[]): string {
  return names.slice(0, 4).join(', ') + (names.length > 4 ? `, ... (${names.length} in all)` : '');
}

/**
 * Checks the output folder before anything is loaded: throws a UsageError when it holds files and the
 * run neither resumes nor overwrites, or when --overwrite-output-dir would delete files that no training
 * run wrote. Returns what to clear, done by clear() just before training starts (so that a run that fails
 * to load its model leaves the old one in place).
 */
export function checkOutputDir(dir: string, opts: { resuming: boolean; overwrite: boolean }): { clear(): void } {
  const nothing = { clear: () => undefined };
  if (!fs.existsSync(dir)) return nothing;
  if (!fs.statSync(dir).isDirectory()) throw new UsageError(`--output '${dir}' is a file; give a folder`);
  const entries = fs.readdirSync(dir);
  if (entries.length === 0 || opts.resuming) return nothing;
  if (!opts.overwrite)
    throw new UsageError(
      `--output '${dir}' already holds a run (${list(entries)}); continue it with --resume-from-checkpoint latest, ` +
        'replace it with --overwrite-output-dir, or give another --output',
    );
  const foreign = entries.filter((e) => !isRunEntry(e));
  if (foreign.length)
    throw new UsageError(
      `--overwrite-output-dir: '${dir}' holds files a training run does not write (${list(foreign)}); ` +
        'they are not deleted: give an --output folder of its own',
    );
  return { clear: () => entries.forEach((e) => fs.rmSync(path.join(dir, e), { recursive: true, force: true })) };
}
