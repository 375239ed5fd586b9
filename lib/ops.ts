// Free functions over several tensors, as torch.cat, torch.where, ... are.
import { native } from './native';
import { Tensor, TensorOrScalar } from './tensor';

function h(x: TensorOrScalar) {
  return x instanceof Tensor ? x.handle : x;
}

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return Tensor.wrap(native.cat(tensors.map((t) => t.handle), dim));
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return Tensor.wrap(native.stack(tensors.map((t) => t.handle), dim));
}
/** torch.where(condition, x, y): x where condition holds, else y (either may be a number). */
export function where(condition: Tensor, x: TensorOrScalar, y: TensorOrScalar): Tensor {
  return Tensor.wrap(native.where(condition.handle, h(x), h(y)));
}
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return Tensor.wrap(native.einsum(equation, operands.map((t) => t.handle)));
}
/** Samples `numSamples` indices per row from the (unnormalized) probabilities in `probs`. */
export function multinomial(probs: Tensor, numSamples: number, replacement = false): Tensor {
  return Tensor.wrap(native.multinomial(probs.handle, numSamples, replacement));
}
export function addmm(input: Tensor, mat1: Tensor, mat2: Tensor, beta = 1, alpha = 1): Tensor {
  return Tensor.wrap(native.addmm(input.handle, mat1.handle, mat2.handle, beta, alpha));
}
export function baddbmm(input: Tensor, b1: Tensor, b2: Tensor, beta = 1, alpha = 1): Tensor {
  return Tensor.wrap(native.baddbmm(input.handle, b1.handle, b2.handle, beta, alpha));
}
