// Mixed precision for training: the frozen (base) weights in bfloat16 or float16 to halve their memory,
// the trainable ones in float32 (PEFT's autocast_adapter_dtype: the optimizer's small updates are not
// lost to rounding), or everything in one dtype. The LoRA layers cast their input to the adapter's
// dtype and the sum back to the base's, and the loss is computed in float32.
import { noGrad } from '../autograd';
import { ones } from '../creation';
import { DType, isFloatingPoint } from '../dtype';
import { linear } from '../functional';
import { scope } from '../memory';
import { native } from '../native';
import { Module } from '../nn';

/**
 * Casts `model`'s floating-point parameters in place (the same Parameter objects, so optimizers and
 * tied weights stay valid): frozen ones to `dtype`, trainable ones to float32 or, with trainable
 * 'same', to `dtype` as well. Buffers (rotary tables) are left in their dtype.
 */
export function castForTraining(model: Module, dtype: DType, trainable: 'float32' | 'same' = 'float32'): void {
  noGrad(() => {
    for (const p of model.parameters()) {
      if (!isFloatingPoint(p.dtype)) continue;
      const want: DType = p.requiresGrad && trainable === 'float32' ? 'float32' : dtype;
      if (p.dtype === want) continue;
      const cast = p.to(want);
      p.setData_(cast);
      cast.dispose();
    }
  });
}

// undefined: not probed yet; null: a float16 matrix product works on the CPU; a string: libtorch's error.
let cpuHalfMatmul: string | null | undefined;

/**
 * Why float16 weights cannot be trained on the CPU with this libtorch, or undefined when they can.
 * libtorch 1.x has no CPU float16 kernel for addmm/mm (every Linear), 2.x has one: rather than trust a
 * version number, a 1×2 by 2×2 float16 linear is tried once and its error kept.
 */
export function cpuFloat16Unsupported(): string | undefined {
  if (cpuHalfMatmul === undefined) {
    try {
      scope(() => linear(ones([1, 2], { dtype: 'float16' }), ones([2, 2], { dtype: 'float16' }), ones([2], { dtype: 'float16' })));
      cpuHalfMatmul = null;
    } catch (e) {
      cpuHalfMatmul = (e as Error).message;
    }
  }
  return cpuHalfMatmul ?? undefined;
}

/**
 * Throws a clear error when float16 weights are to be trained on the CPU and this libtorch cannot
 * multiply float16 matrices there (the first step would otherwise fail deep in a LoRA layer).
 */
export function checkTrainingPrecision(dtypes: Iterable<DType>, device: string): void {
  if (!device.startsWith('cpu')) return;
  if (![...dtypes].includes('float16')) return;
  const why = cpuFloat16Unsupported();
  if (why === undefined) return;
  throw new Error(
    `Trainer: float16 weights cannot be trained on the CPU with libtorch ${native.torchVersion()} (${why}); ` +
      "use dtype 'bfloat16' on the CPU, or float16 on a CUDA device",
  );
}
