// Peak memory of loading a model quantized to 4 bits on load (a decoder layer at a time) against loading it
// in float32, and the resulting footprints and forward times, on a synthetic Llama written to a temporary
// folder. Each load runs in its own child process; the figure is the kernel's high-water mark of the
// resident set (VmHWM) above the process's resident set just before the load, with glibc's mmap threshold
// pinned so that freed tensor buffers are returned (as bench/fused-ops.ts). The 4-bit base runs twice in the
// same run: with the fused CPU dequantize (src/dequantize_4bit_cpu.cpp) and, as 'nf4 (generic)', with the
// generic ATen ops it replaced (TORCH_LORA_DEQUANT4BIT=generic): the before and after. Linux only.
// Run: npx tsc -p tsconfig.json && node dist/bench/quant-load.js [--layers N] [--hidden N] [--rounds N] [--no-write]
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

type Mode = 'float32' | 'bfloat16' | 'nf4' | 'nf4-generic';
async function child(dir: string, mode: Mode): Promise<void> {
  const before = statusBytes('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const t0 = Date.now();
  const model = await AutoModelForCausalLM.fromPretrained(dir, {
    dtype: mode === 'bfloat16' ? 'bfloat16' : 'float32',
    quantizationConfig: mode.startsWith('nf4') ? new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }) : undefined,
  });
  const loadMs = Date.now() - t0;
  const peak = statusBytes('VmHWM') - before;
  const ids = torch.randint(0, 100, [1, 128], { dtype: 'int64' });
  noGrad(() => scope(() => model.forward({ inputIds: ids })));
  const t1 = Date.now();
  for (let i = 0; i < 3; i++) noGrad(() => scope(() => model.forward({ inputIds: ids })));
  const fwdMs = (Date.now() - t1) / 3;
  const footprint = model.getMemoryFootprint();
  // LoRA training steps (r 8 on q/v, forward + backward, 1×128 tokens): mean time of 3, peak above the start
  const peft = getPeftModel(model, new LoraConfig({ r: 8, loraAlpha: 16, targetModules: ['q_proj', 'v_proj'] }));
  const stepOnce = () => scope(() => (peft.forward({ inputIds: ids, labels: ids }) as { loss: torch.Tensor }).loss.backward());
  stepOnce();
  const rss = statusBytes('VmRSS');
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const t2 = Date.now();
  for (let i = 0; i < 3; i++) stepOnce();
  const stepMs = (Date.now() - t2) / 3;
  const stepPeak = statusBytes('VmHWM') - rss;
  process.stdout.write(JSON.stringify({ mode, peak, footprint, loadMs, fwdMs, stepMs, stepPeak }) + '\n');
}

/**
 * The dequantize's before/after in one process, robust to a shared machine's swings: a float32 and an NF4
 * base (each with the same LoRA), forward and training step taken in turn (float32, nf4 fused, nf4 through
 * the generic ATen dequantize) for `rounds` rounds after a warm-up; the fastest of each is reported.
 */
async function interleaved(dir: string, rounds: number): Promise<void> {
  const nf4 = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
  const lora = () => new LoraConfig({ r: 8, loraAlpha: 16, targetModules: ['q_proj', 'v_proj'] });
  const f32 = getPeftModel(await AutoModelForCausalLM.fromPretrained(dir), lora());
  const q = getPeftModel(await AutoModelForCausalLM.fromPretrained(dir, { quantizationConfig: nf4 }), lora());
  const ids = torch.randint(0, 100, [1, 128], { dtype: 'int64' });
  const variants = [['float32', f32, ''], ['nf4', q, ''], ['nf4-generic', q, 'generic']] as const;
  const ms = (fn: () => void) => {
    const t = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const best: Record<string, { fwd: number; step: number }> = {};
  for (let r = 0; r <= rounds; r++)
    for (const [name, model, env] of variants) {
      process.env.TORCH_LORA_DEQUANT4BIT = env;
      const fwd = ms(() => noGrad(() => scope(() => void model.forward({ inputIds: ids }))));
      const step = ms(() => scope(() => (model.forward({ inputIds: ids, labels: ids }) as { loss: torch.Tensor }).loss.backward()));
      if (r === 0) continue; // warm-up
      const b = (best[name] ??= { fwd: Infinity, step: Infinity });
      b.fwd = Math.min(b.fwd, fwd);
      b.step = Math.min(b.step, step);
    }
  process.stdout.write(JSON.stringify(best) + '\n');
}

async function main(): Promise<void> {
  if (args[0] === '--child') return child(args[1], args[2] as Mode);
  if (args[0] === '--interleaved') return interleaved(args[1], Number(args[2]));
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
    const rows = (['float32', 'bfloat16', 'nf4', 'nf4-generic'] as const).map((mode) => {
      const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: THRESHOLD, TORCH_LORA_DEQUANT4BIT: mode === 'nf4-generic' ? 'generic' : '' };
      const r = spawnSync(process.execPath, [__filename, '--child', dir, mode], { env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { mode: string; peak: number; footprint: number; loadMs: number; fwdMs: number; stepMs: number; stepPeak: number };
    });
    const rounds = opt('--rounds', 3);
    const ri = spawnSync(process.execPath, [__filename, '--interleaved', dir, String(rounds)], { env: { ...process.env, MALLOC_MMAP_THRESHOLD_: THRESHOLD }, encoding: 'utf8' });
    if (ri.status !== 0) throw new Error(`interleaved run failed: ${ri.stderr}`);
    const inter = JSON.parse(ri.stdout.trim().split('\n').pop()!) as Record<string, { fwd: number; step: number }>;
    const mb = (b: number) => (b / 2 ** 20).toFixed(1);
    const lines = [
      `# 4-bit (NF4 + double quant) base vs float32 and bfloat16 bases: Llama ${layers} layers, hidden ${hidden}, ${mb(size)} MiB in float32`,
      '',
      `${os.cpus()[0]?.model ?? 'CPU'} (${os.cpus().length} cores), libtorch ${torch.torchVersion}, ${new Date().toISOString().slice(0, 10)}`,
      '',
      '| base | peak RSS during load (MiB) | footprint (MiB) | load (ms) | forward 1×128 (ms) | × float32 | LoRA step 1×128 (ms) | × float32 | step peak RSS (MiB) |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.mode} | ${mb(r.peak)} | ${mb(r.footprint)} | ${r.loadMs} | ${r.fwdMs.toFixed(0)} | ${(r.fwdMs / rows[0].fwdMs).toFixed(2)} | ${r.stepMs.toFixed(0)} | ${(r.stepMs / rows[0].stepMs).toFixed(2)} | ${mb(r.stepPeak)} |`,
      ),
      '',
      'nf4: NF4 with double quantization, computing in float32, through the fused CPU dequantize; nf4-generic: the same through the',
      'generic ATen dequantize it replaced (TORCH_LORA_DEQUANT4BIT=generic). The machine is shared (2 cores, several builds at once): times are upper bounds.',
      '',
      `Before/after in one process (LoRA r 8 on q/v over each base; the three taken in turn, fastest of ${rounds} rounds after a warm-up):`,
      '',
      '| base | forward 1×128 (ms) | × float32 | LoRA step 1×128 (ms) | × float32 |',
      '|---|---|---|---|---|',
      ...Object.entries(inter).map(
        ([k, v]) => `| ${k} | ${v.fwd.toFixed(0)} | ${(v.fwd / inter.float32.fwd).toFixed(2)} | ${v.step.toFixed(0)} | ${(v.step / inter.float32.step).toFixed(2)} |`,
      ),
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
