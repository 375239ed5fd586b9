// Every TypeScript snippet of the README runs as written, so that none rots: each is taken out of
// README.md, its `from 'torch-lora'` pointed at this checkout's lib/, top-level await wrapped, and run as
// its own process in a scratch folder holding the package's assets/ (as a user's project next to an
// installed torch-lora would). The shell snippets: `npx torch-lora` is run by cli-errors.test.ts; the
// setup, test and CUDA build commands install or build and are not run here.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT } from './helpers/ts-process';
import { tmpDir } from './helpers/train';

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const snippets = [...README.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

test('the README has its TypeScript snippets, the complete fine-tuning example among them', () => {
  expect(snippets.length).toBeGreaterThanOrEqual(2);
  const example = snippets.find((s) => s.includes('new Trainer(') && s.includes('AutoPeftModelForCausalLM'));
  for (const part of ['AutoModelForCausalLM.fromPretrained', 'AutoTokenizer.fromPretrained', 'loadDataset(', 'getPeftModel(', 'trainer.train()', 'AutoPeftModelForCausalLM.fromPretrained', '.generate('])
    expect([part, example?.includes(part)]).toEqual([part, true]);
});

test.each(snippets.map((s, i) => [i, s.split('\n')[0]] as const))('README snippet %i (%s) runs as written', (i) => {
  const dir = tmpDir('readme');
  fs.symlinkSync(path.join(ROOT, 'assets'), path.join(dir, 'assets'));
  const body = snippets[i].replace(/from 'torch-lora'/g, `from ${JSON.stringify(path.join(ROOT, 'lib'))}`);
  // Imports stay at the top; the rest goes into an async function (top-level await in CommonJS).
  const lines = body.split('\n');
  const imports = lines.filter((l) => l.startsWith('import '));
  const rest = lines.filter((l) => !l.startsWith('import '));
  const file = path.join(dir, `snippet-${i}.ts`);
  fs.writeFileSync(file, `${imports.join('\n')}\n(async () => {\n${rest.join('\n')}\n})().catch((e) => { console.error(e); process.exit(1); });\n`);
  const register = path.join(dir, 'register.js');
  fs.writeFileSync(
    register,
    `const ts=require(${JSON.stringify(require.resolve('typescript'))}),fs=require('fs');` +
      "require.extensions['.ts']=(m,f)=>m._compile(ts.transpileModule(fs.readFileSync(f,'utf8'),{fileName:f,compilerOptions:{module:ts.ModuleKind.CommonJS,target:ts.ScriptTarget.ES2022,esModuleInterop:true}}).outputText,f);",
  );
  const r = spawnSync(process.execPath, ['-r', register, file], { cwd: dir, encoding: 'utf8', timeout: 300000 });
  expect([r.status, r.stderr]).toEqual([0, '']);
  if (snippets[i].includes("outputDir: 'best-adapter'")) {
    // Early stopping / best model: the best checkpoint's adapter was written, its name and metric printed.
    expect(fs.existsSync(path.join(dir, 'best-adapter', 'adapter_model.safetensors'))).toBe(true);
    expect(r.stdout).toMatch(/^(true|false) \S*best-adapter\/checkpoint-\d+ [\d.]+\n$/);
  } else if (snippets[i].includes('AutoPeftModelForCausalLM.fromPretrained')) {
    // It trained (with an evaluation), saved, reloaded, generated and merged.
    expect(fs.existsSync(path.join(dir, 'my-adapter', 'adapter_model.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'my-merged', 'model.safetensors'))).toBe(true);
    expect(r.stdout).toMatch(/eval loss \d/);
  }
}, 600000);
