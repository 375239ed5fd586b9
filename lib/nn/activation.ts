// Activation modules: PyTorch's (ReLU, GELU, SiLU, Tanh, Sigmoid) and Hugging Face's, looked up by the
// names configs use (hidden_act: "silu", activation_function: "gelu_new"), as transformers' ACT2FN.
import { gelu, relu, silu } from '../functional';
import { scope } from '../memory';
import { Tensor } from '../tensor';
import { pyFloat } from './format';
import { Module } from './module';

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';
  constructor(opts: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.approximate = opts.approximate ?? 'none';
  }
  forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }
  extraRepr(): string {
    return `approximate='${this.approximate}'`;
  }
}

export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return x.tanh();
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
}

/** min(max(0, x), 6) */
export class ReLU6 extends Module {
  forward(x: Tensor): Tensor {
    return x.clamp(0, 6);
  }
}

// ---- Hugging Face's (transformers/activations.py), named as transformers names them so reprs match ----

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), written out as transformers writes it. */
function geluTanhFormula(x: Tensor): Tensor {
  return scope(() => {
    const inner = x.add(x.pow(3).mul(0.044715)).mul(SQRT_2_OVER_PI);
    return x.mul(0.5).mul(inner.tanh().add(1));
  });
}

/** "silu": transformers 5's SiLUActivation (F.silu). */
export class SiLUActivation extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** "gelu" (erf GELU via F.gelu) and "gelu_python" (the erf formula written out). */
export class GELUActivation extends Module {
  readonly useGeluPython: boolean;
  constructor(opts: { useGeluPython?: boolean } = {}) {
    super();
    this.useGeluPython = opts.useGeluPython ?? false;
  }
  forward(x: Tensor): Tensor {
    if (!this.useGeluPython) return gelu(x);
    return scope(() => x.mul(0.5).mul(x.div(Math.SQRT2).erf().add(1)));
  }
}

/** "gelu_new" (GPT-2): the tanh approximation written out. */
export class NewGELUActivation extends Module {
  forward(x: Tensor): Tensor {
    return geluTanhFormula(x);
  }
}

/** "gelu_pytorch_tanh": F.gelu(approximate='tanh'); "gelu_python_tanh": the formula written out. */
export class GELUTanh extends Module {
  readonly useGeluTanhPython: boolean;
  constructor(opts: { useGeluTanhPython?: boolean } = {}) {
    super();
    this.useGeluTanhPython = opts.useGeluTanhPython ?? false;
  }
  forward(x: Tensor): Tensor {
    return this.useGeluTanhPython ? geluTanhFormula(x) : gelu(x, { approximate: 'tanh' });
  }
}

/** "gelu_fast": 0.5·x·(1 + tanh(x·0.7978845608·(1 + 0.044715·x²))). */
export class FastGELUActivation extends Module {
  forward(x: Tensor): Tensor {
    return scope(() => {
      const inner = x.mul(0.7978845608).mul(x.mul(0.044715).mul(x).add(1));
      return x.mul(0.5).mul(inner.tanh().add(1));
    });
  }
}

/** "quick_gelu": x·sigmoid(1.702·x). */
export class QuickGELUActivation extends Module {
  forward(x: Tensor): Tensor {
    return scope(() => x.mul(x.mul(1.702).sigmoid()));
  }
}

/** "gelu_accurate": the tanh formula with √(2/π) precomputed. */
export class AccurateGELUActivation extends Module {
  forward(x: Tensor): Tensor {
    return scope(() => {
      const inner = x.add(x.pow(3).mul(0.044715)).mul(SQRT_2_OVER_PI);
      return x.mul(0.5).mul(inner.tanh().add(1));
    });
  }
}

/** "gelu_10": erf GELU clipped to [min, max]. */
export class ClippedGELUActivation extends Module {
  readonly min: number;
  readonly max: number;
  constructor(min: number, max: number) {
    super();
    if (min > max) throw new RangeError(`ClippedGELUActivation: min should be < max (got min: ${pyFloat(min)}, max: ${pyFloat(max)})`);
    this.min = min;
    this.max = max;
  }
  forward(x: Tensor): Tensor {
    return scope(() => gelu(x).clamp(this.min, this.max));
  }
}

/** "linear": the identity (returns the input tensor itself, as transformers does). */
export class LinearActivation extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** "relu2": relu(x)². */
export class ReLUSquaredActivation extends Module {
  forward(x: Tensor): Tensor {
    return scope(() => relu(x).square());
  }
}

/** transformers' ACT2CLS for the names implemented here: config name -> a fresh module. */
const ACTIVATIONS: Record<string, () => Module> = {
  gelu: () => new GELUActivation(),
  gelu_10: () => new ClippedGELUActivation(-10, 10),
  gelu_fast: () => new FastGELUActivation(),
  gelu_new: () => new NewGELUActivation(),
  gelu_python: () => new GELUActivation({ useGeluPython: true }),
  gelu_pytorch_tanh: () => new GELUTanh(),
  gelu_python_tanh: () => new GELUTanh({ useGeluTanhPython: true }),
  gelu_accurate: () => new AccurateGELUActivation(),
  linear: () => new LinearActivation(),
  quick_gelu: () => new QuickGELUActivation(),
  relu: () => new ReLU(),
  relu2: () => new ReLUSquaredActivation(),
  relu6: () => new ReLU6(),
  sigmoid: () => new Sigmoid(),
  silu: () => new SiLUActivation(),
  swish: () => new SiLU(),
  tanh: () => new Tanh(),
};

/** The names getActivation knows. */
export const activationNames: readonly string[] = Object.keys(ACTIVATIONS);

/** A new activation module for a config's name (hidden_act, activation_function), as ACT2FN[name]. */
export function getActivation(name: string): Module {
  const make = ACTIVATIONS[name];
  if (make === undefined || !Object.prototype.hasOwnProperty.call(ACTIVATIONS, name))
    throw new Error(`unknown activation function '${name}'; known: ${activationNames.join(', ')}`);
  return make();
}
