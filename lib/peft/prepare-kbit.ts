// PEFT's prepare_model_for_kbit_training for a quantized (bitsandbytes) base: every parameter frozen, the
// float16/bfloat16 ones (norms, embeddings, the head: not the 4-bit weights) in float32 for stable training.
import { noGrad } from '../autograd';
import { Module } from '../nn/module';

export interface PrepareModelForKbitTrainingOptions {
  /**
   * Default true, as PEFT. Gradient checkpointing here is the Trainer's (TrainingArguments
   * gradientCheckpointing): its checkpointed segments feed each decoder layer an input that requires grad,
   * which is what PEFT's enable_input_require_grads is for; the flag is recorded on the model for it.
   */
  useGradientCheckpointing?: boolean;
}

/** Freezes the model and casts its half-precision parameters to float32 (in place); returns the model. */
export function prepareModelForKbitTraining<M extends Module>(model: M, opts: PrepareModelForKbitTrainingOptions = {}): M {
  noGrad(() => {
    for (const p of model.parameters()) {
      p.requiresGrad_(false);
      if (p.dtype === 'float16' || p.dtype === 'bfloat16') {
        const f = p.to('float32');
        p.setData_(f);
        f.dispose();
      }
    }
  });
  (model as unknown as { isGradientCheckpointing?: boolean }).isGradientCheckpointing = opts.useGradientCheckpointing ?? true;
  return model;
}
