// Mixed precision for training: the frozen (base) weights in bfloat16 or float16 to halve their memory,
// the trainable ones in float32 (PEFT's autocast_adapter_dtype: the optimizer's small updates are not
// lost to rounding), or everything in one dtype. The LoRA layers cast their input to the adapter's
// dtype and the sum back to the base's, and the loss is computed in float32.
import { noGrad } from '../autograd';
import { DType, isFloatingPoint } from '../dtype';
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
