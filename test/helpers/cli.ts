// Shared by the test/cli-*.test.ts files: the CLI run in-process (main() with collected output) or as a
// real process (TypeScript transpiled on require, so no build of dist/ is needed), and a small model
// folder: the tiny-llama fixture with the demo's one-character-per-token tokenizer.
import * as fs from 'fs';
import * as path from 'path';
import { main } from '../../lib/cli/main';
import { demoTokenizerConfig, demoTokenizerJson, jsonFileText } from '../../lib/demo/demo-tokenizer';
import { finetuneSamples, toJsonl } from '../../lib/demo/synthetic-language';
import { ROOT, tsProcess } from './ts-process';
import { FIXTURES } from './train';
import { JsonlLog } from '../../lib/train/log-entry';

export { ROOT };

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** main(argv) in this process; output collected (not a TTY, so progress is plain lines). */
export async function cli(...argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: { isTTY: false, write: (s: string) => out.push(s) }, err: { write: (s: string) => err.push(s) } });
  return { code, out: out.join(''), err: err.join('') };
}

/** `node <lib/cli/main.ts> argv` as a child process, the TypeScript transpiled as it is required. */
export function cliProcess(...argv: string[]): CliResult {
  return tsProcess(path.join(ROOT, 'lib', 'cli', 'main.ts'), argv);
}

/**
 * A model folder in `dir`: tiny-llama's config and weights (or another fixture model folder's, vocabulary
 * 128 too: test/fixtures/gemma2/base ...) with the demo tokenizer (its ids fit the 128).
 */
export function makeModelDir(dir: string, source = path.join(FIXTURES, 'tiny-llama')): string {
  const m = path.join(dir, 'model');
  fs.mkdirSync(m, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json']) fs.copyFileSync(path.join(source, f), path.join(m, f));
  // The demo vocabulary has 100 tokens; tiny-llama predicts 128: the rest get names, so that every id decodes.
  const tok = demoTokenizerJson() as { model: { vocab: Record<string, number> } };
  for (let id = Object.keys(tok.model.vocab).length; id < 128; id++) tok.model.vocab[`<extra_${id}>`] = id;
  fs.writeFileSync(path.join(m, 'tokenizer.json'), jsonFileText(tok));
  fs.writeFileSync(path.join(m, 'tokenizer_config.json'), jsonFileText(demoTokenizerConfig()));
  return m;
}

/** A JSONL file of `n` prompt-completion records of the demo's task. */
export function makeDataFile(dir: string, n = 24, name = 'data.jsonl'): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, toJsonl(finetuneSamples(n, 0)));
  return f;
}

/** The adapter weights a `train` run wrote into `out`. */
export const adapterFile = (out: string): string => path.join(out, 'adapter_model.safetensors');

/** The training losses a `train` run logged (trainer_log.jsonl of `out`), in step order. */
export function loggedLosses(out: string): number[] {
  return JsonlLog.read(path.join(out, 'trainer_log.jsonl'))
    .filter((e) => e.loss !== undefined)
    .map((e) => e.loss!);
}
