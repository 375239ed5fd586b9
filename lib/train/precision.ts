// Mixed precision for training, PEFT's policy: the model in bfloat16 or float16 to halve its memory,
// with only the adapter weights (lora_A/B, lora_embedding_A/B, DoRA magnitudes) upcast to float32 (PEFT's
// autocast_adapter_dtype: the optimizer's small updates are not lost to rounding); modules_to_save copies
// and trained biases stay in the model's dtype, as they do under PEFT, so that they meet activations of
// their own dtype. Or everything in one dtype. The LoRA layers cast their input to the adapter's dtype and
// the sum back to the base's, and the loss is computed in float32.
import { noGrad } from '../autograd';
import { ones } from '../creation';
import { DType, isFloatingPoint } from '../dtype';
import { linear } from '../functional';
import { scope } from '../memory';
import { native } from '../native';
import { Module, Parameter } from '../nn';
import { LoraLayer } from '../peft';

/** The adapter weights of every LoRA layer in `model`. */
function adapterParameters(model: Module): Set<Parameter> {
  const out = new Set<Parameter>();
  for (const m of model.modules()) if (m instanceof LoraLayer) for (const p of m.adapterParameters()) out.add(p);
  return out;
}

/**
 * Casts `model`'s floating-point parameters in place (the same Parameter objects, so optimizers and
 * tied weights stay valid) to `dtype`, except the LoRA adapter weights, which go to float32 or, with
 * trainable 'same', to `dtype` as well. Buffers (rotary tables) are left in their dtype.
 */
export function castForTraining(model: Module, dtype: DType, trainable: 'float32' | 'same' = 'float32'): void {
  const adapters = trainable === 'float32' ? adapterParameters(model) : new Set<Parameter>();
  noGrad(() => {
    for (const p of model.parameters()) {
      if (!isFloatingPoint(p.dtype)) continue;
      const want: DType = adapters.has(p) ? 'float32' : dtype;
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
 * float16 weights asked for on a CPU whose libtorch cannot multiply them. It carries the facts (the
 * libtorch version, its error, what the weights were for), so that a command can word it in its flags.
 */
export class CpuFloat16Error extends Error {
  constructor(
    message: string,
    readonly torchVersion: string,
    readonly reason: string,
    readonly purpose: 'training' | 'inference',
  ) {
    super(message);
    this.name = 'CpuFloat16Error';
  }
}

export interface CpuDTypeOptions {
  /** What the weights are for, as the message says it: 'training' (default) or 'inference'. */
  purpose?: 'training' | 'inference';
}

/** The dtype to load or train in, and a note for the user when it is not the one asked for. */
export interface CpuDType {
  dtype: DType | 'auto';
  note?: string;
}

/**
 * Where libtorch has no CPU float16 matrix product (1.x; probed, not read off the version), decides what
 * float16 on `device` becomes, before anything is loaded: asking for float16 throws a CpuFloat16Error,
 * 'auto' on a float16 checkpoint loads float32 instead, with a note; anything else (another device, a
 * libtorch 2.x) is kept. `checkpointDType` (config.json's dtype) may be given as a function, called only
 * when it matters (so that a command reads config.json again only then).
 */
export function resolveCpuDType(
  requested: DType | 'auto',
  checkpointDType: DType | undefined | (() => DType | undefined),
  device: string,
  opts: CpuDTypeOptions = {},
): CpuDType {
  if (!device.startsWith('cpu') || (requested !== 'float16' && requested !== 'auto')) return { dtype: requested };
  const why = cpuFloat16Unsupported();
  if (why === undefined) return { dtype: requested };
  const version = native.torchVersion();
  if (requested === 'float16') {
    const purpose = opts.purpose ?? 'training';
    const message =
      purpose === 'inference'
        ? `libtorch ${version} cannot multiply float16 matrices on the CPU (${why}); use dtype 'bfloat16' or 'float32' on the CPU, or a CUDA device`
        : `Trainer: float16 weights cannot be trained on the CPU with libtorch ${version} (${why}); use dtype 'bfloat16' on the CPU, or float16 on a CUDA device`;
    throw new CpuFloat16Error(message, version, why, purpose);
  }
  const checkpoint = typeof checkpointDType === 'function' ? checkpointDType() : checkpointDType;
  if (checkpoint !== 'float16') return { dtype: requested };
  return { dtype: 'float32', note: `the checkpoint is float16, which libtorch ${version} cannot run on the CPU; loading it as float32` };
}

/**
 * Throws a clear error when float16 weights are to be trained on the CPU and this libtorch cannot
 * multiply float16 matrices there (the first step would otherwise fail deep in a LoRA layer). For
 * library users of the Trainer; the train command asks resolveCpuDType before it loads the model.
 */
export function checkTrainingPrecision(dtypes: Iterable<DType>, device: string): void {
  for (const d of new Set(dtypes)) resolveCpuDType(d, undefined, device, { purpose: 'training' });
}
