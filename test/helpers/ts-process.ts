// A TypeScript file run as its own Node process (transpiled as it is required, so no build of dist/ is
// needed): for what must not share a process with other test files (the CLI's exit codes, the garbage
// collector's finalizers).
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './tmp-dir';

export const ROOT = path.join(__dirname, '..', '..');

export interface ProcessResult {
  code: number;
  out: string;
  err: string;
}

// Written once per test file, in a tmpDir (removed after the file's tests).
let registerFile: string | undefined;
function register(): string {
  if (registerFile === undefined) {
    registerFile = path.join(tmpDir('ts-process'), 'register.js');
    fs.writeFileSync(
      registerFile,
      `const ts=require(${JSON.stringify(require.resolve('typescript'))}),fs=require('fs');` +
        "require.extensions['.ts']=(m,f)=>m._compile(ts.transpileModule(fs.readFileSync(f,'utf8'),{fileName:f,compilerOptions:{module:ts.ModuleKind.CommonJS,target:ts.ScriptTarget.ES2022,esModuleInterop:true}}).outputText,f);",
    );
  }
  return registerFile;
}

/** `node [nodeArgs] <script.ts> argv` in the repository root; `env` replaces the environment. */
export function tsProcess(script: string, argv: string[] = [], nodeArgs: string[] = [], env?: NodeJS.ProcessEnv): ProcessResult {
  const r = spawnSync(process.execPath, [...nodeArgs, '-r', register(), script, ...argv], { cwd: ROOT, encoding: 'utf8', timeout: 60000, ...(env ? { env } : {}) });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** `node <script.ts> argv` started in the repository root and left running (to send it signals). */
export function tsSpawn(script: string, argv: string[] = []): ChildProcess {
  return spawn(process.execPath, ['-r', register(), script, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `node -e <code>` in the repository root, where require('./lib') loads the TypeScript sources. */
export function tsEval(code: string): ProcessResult {
  const r = spawnSync(process.execPath, ['-r', register(), '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
