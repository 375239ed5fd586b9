// The default random generators' states, as torch.get_rng_state / torch.set_rng_state (CPU) and
// torch.cuda.get_rng_state / set_rng_state (a GPU): saving one and setting it back later replays the
// same random numbers. Training uses it to resume exactly and to recompute dropout masks unchanged
// under gradient checkpointing.
import { native } from './native';
import { Tensor } from './tensor';

function deviceOf(device: string | undefined): string {
  const d = device ?? 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(d)) throw new TypeError(`expected a device 'cpu', 'cuda' or 'cuda:N' for a random generator, got '${d}'`);
  return d;
}

/** The state of the default generator of `device` (default 'cpu'): a uint8 CPU tensor, yours to dispose. */
export function getRngState(device?: string): Tensor {
  return Tensor.wrap(native.getRngState(deviceOf(device)));
}

/** Sets the default generator of `device` (default 'cpu') to a state getRngState returned. */
export function setRngState(state: Tensor, device?: string): void {
  if (!(state instanceof Tensor)) throw new TypeError('setRngState: state must be the Tensor getRngState returned');
  if (state.dtype !== 'uint8' || state.device !== 'cpu')
    throw new TypeError(`setRngState: state must be a uint8 CPU tensor (from getRngState), got ${state.dtype} on ${state.device}`);
  native.setRngState(state.handle, deviceOf(device));
}
