// Run by memory.test.ts as a process of its own (no other file's garbage): a loop that never disposes
// its tensors, yielding to the event loop each step as a training loop does, and prints as JSON the most
// native memory it held at once and the process's peak RSS. Only the garbage collector frees these
// tensors (lib/memory.ts's safety net), and it runs when V8 knows about their memory.
import * as torch from '../../lib';

const [steps, mib] = process.argv.slice(2).map(Number);
const sleep = () => new Promise((resolve) => setImmediate(resolve));

async function main(): Promise<void> {
  const rssBefore = process.memoryUsage().rss;
  let peakBytes = 0;
  let peakTensors = 0;
  for (let i = 0; i < steps; i++) {
    const x = torch.randn([mib, 256, 1024]); // mib MiB of float32
    x.mul(2).add(1); // two more, dropped
    const m = torch.memory();
    peakBytes = Math.max(peakBytes, m.bytes);
    peakTensors = Math.max(peakTensors, m.tensors);
    await sleep();
  }
  const made = steps * 3 * mib * 2 ** 20;
  process.stdout.write(
    JSON.stringify({ made, peakBytes, peakTensors, rssBefore, peakRss: process.resourceUsage().maxRSS * 1024 }),
  );
}
main().catch((e) => {
  process.stderr.write(String(e));
  process.exit(1);
});
