// A TypeScript file run as a child process that the caller can signal (kill -9) and await, unlike
// ts-process's spawnSync. Transpiled output is cached on disk by content, so that the many restarts of
// the kill tests do not transpile the library each time.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.join(__dirname, '..', '..');

let registerFile: string | undefined;
export function register(): string {
  if (registerFile === undefined) {
    const cache = path.join(os.tmpdir(), 'tl-ts-cache');
    fs.mkdirSync(cache, { recursive: true });
    registerFile = path.join(cache, 'register.js');
    const text =
      `const ts=require(${JSON.stringify(require.resolve('typescript'))}),fs=require('fs'),path=require('path'),crypto=require('crypto');` +
      `require.extensions['.ts']=(m,f)=>{const src=fs.readFileSync(f,'utf8');const c=path.join(${JSON.stringify(cache)},crypto.createHash('sha1').update(f+'\\0'+src).digest('hex')+'.js');` +
      `let out;try{out=fs.readFileSync(c,'utf8')}catch{out=ts.transpileModule(src,{fileName:f,compilerOptions:{module:ts.ModuleKind.CommonJS,target:ts.ScriptTarget.ES2022,esModuleInterop:true}}).outputText;` +
      `const tmp=c+'.'+process.pid;fs.writeFileSync(tmp,out);fs.renameSync(tmp,c)}m._compile(out,f)};`;
    const tmp = `${registerFile}.${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, registerFile);
  }
  return registerFile;
}

export interface TsChild {
  proc: ChildProcess;
  /** stdout so far */
  out(): string;
  err(): string;
  /** Resolves when stdout has `text`, or rejects when the child ends first. */
  waitFor(text: string): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnTs(script: string, argv: string[]): TsChild {
  const proc = spawn(process.execPath, ['-r', register(), script, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  proc.stdout!.on('data', (d) => {
    out += d;
    waiters.forEach((w) => w());
  });
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      resolve({ code, signal });
      waiters.forEach((w) => w());
    }),
  );
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (out.includes(text)) resolve();
        else if (proc.exitCode !== null || proc.signalCode !== null) reject(new Error(`child ended before '${text}': ${err.slice(-2000)}`));
      };
      waiters.push(check);
      check();
    });
  return { proc, out: () => out, err: () => err, waitFor, exited };
}
