// float16 training scales the loss (GradScaler) so that small gradients survive float16; the chunked loss
// must not take its gradient before the scale reaches it. (softmax − onehot)/count of 8192 tokens over a
// 1024-token vocabulary is ~1e-7 per entry, below float16's normal range (6e-5) and near its smallest
// subnormal (6e-8): kept in float16 unscaled it rounds to zero or one ulp. The chunked loss's gradients
// must match the unchunked path's (float16 logits, float32 cross-entropy, as transformers) under the scale.
import { cuda, F, manualSeed, noGrad, randn, randint, scope, Tensor } from '../lib';
import { cpuFloat16Unsupported } from '../lib/train';

const device = cuda.isAvailable() ? 'cuda' : 'cpu';
// libtorch 1.x has no CPU float16 matrix product: nothing float16 can run there without a GPU.
const why = device === 'cpu' ? cpuFloat16Unsupported() : undefined;
const maybe = why === undefined ? test : test.skip;

maybe(`float16: the chunked loss's gradients match the unchunked path's under a 65536 loss scale${why ? ` [skipped: ${why}]` : ''}`, () => {
  const SCALE = 65536;
  const [B, S, H, V] = [8, 1024, 32, 1024];
  const grads = (lossOf: (h: Tensor, w: Tensor) => Tensor): { h: Float32Array; w: Float32Array } =>
    scope(() => {
      const h = (manualSeed(1), randn([B, S, H])).mul(0.5).to({ device, dtype: 'float16' }).detach().requiresGrad_(true);
      const w = (manualSeed(2), randn([V, H])).mul(0.5).to({ device, dtype: 'float16' }).detach().requiresGrad_(true);
      lossOf(h, w).mul(SCALE).backward();
      // Unscaled in float32, as GradScaler.unscale does.
      return { h: h.grad!.float().div(SCALE).cpu().data() as Float32Array, w: w.grad!.float().div(SCALE).cpu().data() as Float32Array };
    });
  manualSeed(3);
  const labels = noGrad(() => randint(0, V, [B, S]).to(device));
  const reference = grads((h, w) => F.crossEntropy(F.linear(h, w).float().narrow(1, 0, S - 1).reshape(-1, V), labels.narrow(1, 1, S - 1).reshape(-1)));
  for (const recompute of [false, true])
    for (const chunkSize of [4096, 0]) {
      const fused = grads((h, w) => F.causalLmLoss(h, w, labels, { chunkSize, recompute }));
      for (const k of ['h', 'w'] as const) {
        const a = reference[k];
        const b = fused[k];
        let num = 0;
        let den = 0;
        let maxDiff = 0;
        for (let i = 0; i < a.length; i++) {
          num += (a[i] - b[i]) ** 2;
          den += a[i] ** 2;
          maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        }
        // (reported: the figures of a libtorch 2.x run)
        process.stdout.write(
          `float16 ${k}.grad recompute=${recompute} chunkSize=${chunkSize}: relative error ${Math.sqrt(num / den).toExponential(2)} (norm), ` +
            `max |diff| ${maxDiff.toExponential(2)} of max |grad| ${a.reduce((m, x) => Math.max(m, Math.abs(x)), 0).toExponential(2)}\n`,
        );
        // Both round the scaled gradient to float16 (2^-11 relative) once per product; summed over 8192
        // tokens that stays well under 1% in norm. Unscaled float16 gradients were off by ~100%.
        expect([k, recompute, chunkSize, Math.sqrt(num / den) < 1e-2]).toEqual([k, recompute, chunkSize, true]);
      }
    }
  labels.dispose();
});
