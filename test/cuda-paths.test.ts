// The CUDA paths a CPU cannot exercise: GPU memory while a model is loaded and cast, the attention
// kernel that training batches reach, and an out-of-range token id. Each test is skipped (with the
// reason in its name) where cuda.isAvailable() is false; scripts/gpu-check.sh runs them on a GPU.
import { cuda, F, randn, scope, tensor, Trainer } from '../lib';
import { AutoModelForCausalLM } from '../lib/models';
import { randomExamples, TINY_LLAMA, tinyLoraModel, tmpDir } from './helpers/train';

const gpu = cuda.isAvailable() ? test : test.skip;
const round512 = (bytes: number) => Math.ceil(bytes / 512) * 512; // the caching allocator's block size

gpu('(GPU) fromPretrained with a dtype casts on the CPU: the GPU never holds the float32 checkpoint', async () => {
  const cpu = await AutoModelForCausalLM.fromPretrained(TINY_LLAMA); // float32, as the checkpoint
  const float32Bytes = [...cpu.parameters()].reduce((s, p) => s + round512(p.numel() * 4), 0);
  cpu.dispose();
  cuda.synchronize();
  const before = cuda.memoryAllocated();
  cuda.resetPeakMemoryStats();
  const model = await AutoModelForCausalLM.fromPretrained(TINY_LLAMA, { device: 'cuda', dtype: 'bfloat16' });
  cuda.synchronize();
  const peak = cuda.maxMemoryAllocated() - before;
  const bf16Bytes = [...model.parameters()].reduce((s, p) => s + round512(p.numel() * 2), 0);
  model.dispose();
  // Reading float32 onto the GPU and casting there peaks at >= float32Bytes (every tensor of the file at
  // once); casting first stays near the bfloat16 weights (plus the rotary buffers).
  expect(peak).toBeLessThan(float32Bytes);
  expect(peak).toBeGreaterThanOrEqual(bf16Bytes);
});

gpu('(GPU) the Trainer casts before it moves: the GPU never holds the float32 base weights', async () => {
  const model = await tinyLoraModel(0); // on the CPU, float32
  const float32Bytes = [...model.parameters()].reduce((s, p) => s + round512(p.numel() * 4), 0);
  cuda.synchronize();
  const before = cuda.memoryAllocated();
  cuda.resetPeakMemoryStats();
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(4, 6),
    args: { outputDir: tmpDir('cuda-cast'), maxSteps: 1, device: 'cuda', dtype: 'bfloat16', report: 'none' },
  });
  cuda.synchronize();
  expect(cuda.maxMemoryAllocated() - before).toBeLessThan(float32Bytes);
  expect(trainer).toBeDefined();
  model.dispose();
});

gpu('(GPU) an out-of-range token id is a JS error before the batch moves, and CUDA keeps working', async () => {
  const model = await tinyLoraModel(0);
  try {
    const ds = randomExamples(4, 6);
    ds.get(2).inputIds[1] = 128;
    expect(() => new Trainer({ model, trainDataset: ds, args: { outputDir: tmpDir('cuda-ids'), maxSteps: 1, device: 'cuda', report: 'none' } })).toThrow(
      /token id 128 at position 1 of example 2 of the training dataset .*vocab_size 128/,
    );
    scope(() => expect(tensor([1, 2], { device: 'cuda' }).add(1).cpu().tolist()).toEqual([2, 3]));
  } finally {
    model.dispose();
  }
});

gpu('(GPU) attention: a batch without padding and a padded grouped-query batch both reach a fused kernel, not math', () =>
  scope(() => {
    // Llama-like shapes the fused kernels take: bfloat16, head_dim 64, 8 query heads over 2 k/v heads.
    const q = randn([2, 8, 128, 64], { device: 'cuda', dtype: 'bfloat16' });
    const k = randn([2, 2, 128, 64], { device: 'cuda', dtype: 'bfloat16' });
    const v = randn([2, 2, 128, 64], { device: 'cuda', dtype: 'bfloat16' });
    F.resetAttentionCounts();
    F.scaledDotProductAttention(q, k, v, { isCausal: true, enableGqa: true });
    let c = F.attentionCounts();
    expect(c.math).toBe(0);
    expect(c.flash + c.efficient + c.cudnn).toBe(1);
    const keep = tensor([Array(128).fill(true), [...Array(100).fill(true), ...Array(28).fill(false)]], { device: 'cuda', dtype: 'bool' });
    const mask = keep.view(2, 1, 1, 128);
    F.resetAttentionCounts();
    F.scaledDotProductAttention(q, k, v, { attnMask: mask, enableGqa: true });
    c = F.attentionCounts();
    expect(c.gqaExpanded).toBe(1);
    expect(c.math).toBe(0);
    expect(c.efficient + c.cudnn + c.flash).toBe(1);
  }));
