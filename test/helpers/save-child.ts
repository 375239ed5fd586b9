// A child process for the concurrency and kill -9 tests of saves (test/save-concurrency.test.ts and
// scripts/kill-saves.ts): saves into one folder, again and again, alternating between two variants that a
// reader can tell apart, and prints "saved <n>" after each completed save.
//   node -r <register> test/helpers/save-child.ts <adapter|model> <dir> <saves> [first variant 0|1]
// adapter: LoRA r=2 or r=4 on tiny-llama (the config's r must match the weights' shapes).
// model: tiny-llama's weights or all of them doubled, sharded (every tensor must come from one variant).
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, LoraConfig, noGrad } from '../../lib';

const LLAMA = path.join(__dirname, '..', 'fixtures', 'tiny-llama');

async function main(): Promise<void> {
  const [kind, dir, savesArg, firstArg] = process.argv.slice(2);
  const saves = Number(savesArg);
  const first = Number(firstArg ?? 0);
  process.removeAllListeners('warning');
  const variants: { save: () => Promise<unknown> }[] = [];
  for (const v of [0, 1]) {
    const base = await AutoModelForCausalLM.fromPretrained(LLAMA);
    if (kind === 'adapter') {
      const peft = getPeftModel(base, new LoraConfig({ r: v === 0 ? 2 : 4, targetModules: ['q_proj', 'v_proj'], initLoraWeights: false }));
      variants.push({ save: () => peft.savePretrained(dir) });
    } else {
      if (v === 1) noGrad(() => [...base.parameters()].forEach((p) => p.mul_(2)));
      variants.push({ save: () => base.savePretrained(dir, { maxShardSize: 40000 }) });
    }
  }
  process.stdout.write('ready\n');
  for (let i = 0; i < saves; i++) {
    await variants[(first + i) % 2].save();
    process.stdout.write(`saved ${i + 1}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(String((e as Error).stack ?? e));
  process.exit(1);
});
