// Gradient checkpointing of the decoder layers, segment by segment in TypeScript (libtorch's C++ API has
// no checkpoint for JavaScript modules): the forward runs the layers without autograd, keeping only
// each layer's input; the head's loss is computed on a detached leaf and its backward gives the gradient
// at the top of the stack; then, from the last layer to the first, each layer is run again with autograd
// on a detached leaf of its input and backpropagated with the gradient from above, which yields its
// parameters' gradients and the gradient for the layer below. Memory holds one layer's activations at a
// time instead of all of them, for about one more forward of compute.
//
// Random numbers (dropout) are replayed: the generator's state before each layer's first run is set
// again for its second run, so the recomputed activations are the ones the forward used, and set back
// afterwards to where the forward left it (PyTorch's checkpoint with preserve_rng_state).
import { enableGrad, noGrad } from '../autograd';
import { scope } from '../memory';
import { CausalLMInput, DecoderSegments } from '../models';
import { getRngState, setRngState } from '../random-state';
import { Tensor } from '../tensor';

/** A model that can be run in segments (LlamaForCausalLM, GPT2LMHeadModel). */
export interface Segmentable {
  segments(input: CausalLMInput): DecoderSegments;
}

export function isSegmentable(m: unknown): m is Segmentable {
  return typeof (m as { segments?: unknown })?.segments === 'function';
}

/** The generators a layer on `device` draws from: the CPU's, and the GPU's when it runs on one. */
function rngDevices(device: string): string[] {
  return device.startsWith('cuda') ? ['cpu', device] : ['cpu'];
}
function saveRng(devices: string[]): Tensor[] {
  return devices.map((d) => getRngState(d));
}
function restoreRng(devices: string[], states: Tensor[]): void {
  devices.forEach((d, i) => setRngState(states[i], d));
}

/**
 * Forward and backward of one batch with the decoder layers checkpointed. The gradients of
 * `lossScale × loss` accumulate into the parameters' .grad exactly as `forwardLoss(input).mul(lossScale)
 * .backward()` would put them there. Returns the (unscaled) loss, detached.
 */
export function checkpointedForwardBackward(model: Segmentable, input: CausalLMInput, lossScale = 1): Tensor {
  if (input.labels === undefined) throw new Error('checkpointedForwardBackward: the input needs labels (the loss is what is backpropagated)');
  return scope(() => {
    const seg = model.segments(input);
    // The embeddings keep their (small) graph: the gradient at the bottom of the stack goes into them at the end.
    const embedded = seg.embed();
    const devices = rngDevices(embedded.device);
    const inputs: Tensor[] = [];
    const states: Tensor[][] = [];
    let hidden = embedded.detach();
    noGrad(() => {
      for (const layer of seg.layers) {
        inputs.push(hidden);
        states.push(saveRng(devices));
        hidden = layer(hidden);
      }
    });
    const top = hidden.requiresGrad_(true);
    const loss = seg.loss(top);
    scope(() => (lossScale === 1 ? loss : loss.mul(lossScale)).backward());
    const after = saveRng(devices);
    let grad = top.grad;
    if (grad === undefined) throw new Error('checkpointedForwardBackward: the loss does not depend on the decoder layers');
    for (let i = seg.layers.length - 1; i >= 0; i--) {
      restoreRng(devices, states[i]);
      const upstream: Tensor = grad;
      grad = scope(() => {
        const x = inputs[i].detach().requiresGrad_(true);
        const y = enableGrad(() => seg.layers[i](x));
        y.backward(upstream);
        return x.grad;
      });
      upstream.dispose();
      inputs[i].dispose(); // this layer's input is no longer needed: memory goes down as backward goes down
      for (const s of states[i]) s.dispose();
      if (grad === undefined) throw new Error(`checkpointedForwardBackward: no gradient reached the input of layer ${i}`);
    }
    restoreRng(devices, after);
    for (const s of after) s.dispose();
    if (embedded.requiresGrad) embedded.backward(grad);
    grad.dispose();
    return loss.detach();
  });
}
