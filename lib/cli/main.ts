#!/usr/bin/env node
// torch-lora: the command line. One file per command (train, generate, merge, inspect, demo); this one
// picks the command, prints help, and turns errors into a message and an exit code (2: the command was
// called wrongly, 1: it failed).
import * as fs from 'fs';
import * as path from 'path';
import { CliIO, packageRoot, processIO } from './io';
import { CommandSpec, helpText, parseCommand, Parsed, UsageError } from './options';

// (OMP_WAIT_POLICY: lib/native.ts sets PASSIVE on a libtorch 1.x build, unless the user set it, when it loads the addon.)

export interface Command {
  spec: CommandSpec;
  /** Resolves with the exit code when it is not 0 (130: stopped by Ctrl-C / SIGTERM). */
  run(parsed: Parsed, io: CliIO): Promise<void | number>;
}

/** Loaded on use, so that `--help` answers without loading libtorch. */
const COMMANDS: Record<string, () => Command> = {
  train: () => require('./train').command,
  generate: () => require('./generate').command,
  merge: () => require('./merge').command,
  inspect: () => require('./inspect').command,
  demo: () => require('./demo').command,
  info: () => require('./info').command,
};

const SUMMARIES: Record<string, string> = {
  train: 'fine-tune a Hugging Face causal LM with LoRA; writes a PEFT adapter',
  generate: 'continue prompts with a model, with or without an adapter',
  merge: 'merge an adapter into its base model; writes a Hugging Face checkpoint',
  inspect: "show an adapter's config, per-module ranks and parameter counts",
  demo: 'teach the embedded tiny Llama a new task with LoRA in about a minute',
  info: 'show the libtorch, BLAS, CUDA and thread count it runs with',
};

function version(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

export function mainHelp(): string {
  const lines = [
    'Usage: torch-lora <command> [options]',
    '',
    'LoRA fine-tuning of Hugging Face models on libtorch, from the command line. Adapters are PEFT\'s format.',
    '',
    'Commands:',
    ...Object.keys(COMMANDS).map((c) => `  ${c.padEnd(12)}${SUMMARIES[c]}`),
    '',
    "Run 'torch-lora <command> --help' for a command's options. Start with: torch-lora demo",
  ];
  return lines.join('\n') + '\n';
}

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.err.write(mainHelp());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out.write(mainHelp());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    // The package's version alone on the first line (for scripts), then what it runs on.
    io.out.write(`${version()}\n`);
    try {
      const { runtimeSummary } = require('../runtime-info') as typeof import('../runtime-info');
      io.out.write(`${runtimeSummary()}\n`);
    } catch (e) {
      io.out.write(`native addon not loadable: ${(e as Error).message.split('\n')[0]}\n`);
    }
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    io.err.write(`torch-lora: unknown command '${name}'. Commands: ${Object.keys(COMMANDS).join(', ')}. See 'torch-lora --help'.\n`);
    return 2;
  }
  let command: Command | undefined;
  try {
    command = load();
    const parsed = parseCommand(command.spec, rest);
    if (parsed.help) {
      io.out.write(helpText(command.spec));
      return 0;
    }
    return (await command.run(parsed, io)) ?? 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err.write(`torch-lora ${name}: ${e.message}\nSee 'torch-lora ${name} --help'.\n`);
      return 2;
    }
    const err = e as Error;
    io.err.write(`torch-lora ${name}: error: ${err?.message ?? String(e)}\n`);
    if (process.env.TORCH_LORA_DEBUG) io.err.write(`${err?.stack ?? ''}\n`);
    return 1;
  }
}

if (require.main === module) {
  // Output piped into a program that stops reading (| head) ends the command quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`torch-lora: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
