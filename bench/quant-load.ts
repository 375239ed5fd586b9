// Peak memory of loading a model quantized to 4 bits on load (a decoder layer at a time) against loading it
// in float32, and the resulting footprints and forward times, on a synthetic Llama written to a temporary
// folder. Each load runs in its own child process; the figure is the kernel's high-water mark of the
// resident set (VmHWM) above the process's resident set just before the load, with glibc's mmap threshold
// pinned so that freed tensor buffers are returned (as bench/fused-ops.ts). Linux only.
// Run: npx tsc -p tsconfig.json && node dist/bench/quant-load.js [--layers N] [--hidden N] [--no-write]
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as torch from '../lib';
import { BitsAndBytesConfig, getPeftModel, LoraConfig, noGrad, scope } from '../lib';
import { AutoModelForCausalLM } from '../lib/models';

const THRESHOLD = '65536';
const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);

function statusBytes(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

type Mode = 'float32' | 'bfloat16' | 'nf4';
async function child(dir: string, mode: Mode): Promise<void> {
  const before = statusBytes('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const t0 = Date.now();
  const model = await AutoModelForCausalLM.fromPretrained(dir, {
    dtype: mode === 'bfloat16' ? 'bfloat16' : 'float32',
    quantizationConfig: mode === 'nf4' ? new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }) : undefined,
  });
  const loadMs = Date.now() - t0;
  const peak = statusBytes('VmHWM') - before;
  const ids = torch.randint(0, 100, [1, 128], { dtype: 'int64' });
  noGrad(() => scope(() => model.forward({ inputIds: ids })));
  const t1 = Date.now();
  for (let i = 0; i < 3; i++) noGrad(() => scope(() => model.forward({ inputIds: ids })));
  const fwdMs = (Date.now() - t1) / 3;
  const footprint = model.getMemoryFootprint();
  // one LoRA training step (r 8 on q/v, forward + backward, 1×128 tokens): time and peak above the start
  const peft = getPeftModel(model, new LoraConfig({ r: 8, loraAlpha: 16, targetModules: ['q_proj', 'v_proj'] }));
  const stepOnce = () => scope(() => (peft.forward({ inputIds: ids, labels: ids }) as { loss: torch.Tensor }).loss.backward());
  stepOnce();
  const rss = statusBytes('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const t2 = Date.now();
  stepOnce();
  const stepMs = Date.now() - t2;
  const stepPeak = statusBytes('VmHWM') - rss;
  process.stdout.write(JSON.stringify({ mode, peak, footprint, loadMs, fwdMs, stepMs, stepPeak }) + '\n');
}

async function main(): Promise<void> {
  if (args[0] === '--child') return child(args[1], args[2] as Mode);
  const layers = opt('--layers', 6);
  const hidden = opt('--hidden', 768);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-quant-bench-'));
  try {
    const config = {
      model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: hidden, intermediate_size: Math.round((hidden * 8) / 3 / 64) * 64,
      num_hidden_layers: layers, num_attention_heads: hidden / 64, num_key_value_heads: hidden / 64, vocab_size: 8000,
      max_position_embeddings: 512, rms_norm_eps: 1e-6, tie_word_embeddings: false, torch_dtype: 'float32',
    };
    torch.manualSeed(0);
    const m = AutoModelForCausalLM.fromConfig(config);
    await m.savePretrained(dir);
    const size = m.getMemoryFootprint();
    m.dispose();
    const rows = (['float32', 'bfloat16', 'nf4'] as const).map((mode) => {
      const r = spawnSync(process.execPath, [__filename, '--child', dir, mode], { env: { ...process.env, MALLOC_MMAP_THRESHOLD_: THRESHOLD }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { mode: string; peak: number; footprint: number; loadMs: number; fwdMs: number; stepMs: number; stepPeak: number };
    });
    const mb = (b: number) => (b / 2 ** 20).toFixed(1);
    const lines = [
      `# 4-bit (NF4 + double quant) base vs float32 and bfloat16 bases: Llama ${layers} layers, hidden ${hidden}, ${mb(size)} MiB in float32`,
      '',
      `${os.cpus()[0]?.model ?? 'CPU'} (${os.cpus().length} cores), libtorch ${torch.torchVersion}, ${new Date().toISOString().slice(0, 10)}`,
      '',
      '| base | peak RSS during load (MiB) | footprint (MiB) | load (ms) | forward 1×128 (ms) | LoRA step 1×128 (ms) | step peak RSS (MiB) |',
      '|---|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.mode} | ${mb(r.peak)} | ${mb(r.footprint)} | ${r.loadMs} | ${r.fwdMs.toFixed(0)} | ${r.stepMs} | ${mb(r.stepPeak)} |`),
      '',
      'nf4: NF4 with double quantization, computing in float32. The machine is shared (2 cores, several builds at once): times are upper bounds.',
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (!args.includes('--no-write')) {
      const out = path.join(__dirname, '..', '..', 'bench', 'results', `quant-load-${new Date().toISOString().slice(0, 10)}.md`);
      fs.writeFileSync(out, lines.join('\n') + '\n');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
