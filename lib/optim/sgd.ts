// torch.optim.SGD: plain, with momentum (and dampening), or Nesterov momentum, with L2 weight decay
// added to the gradient. The update runs in native code (src/sgd.cpp), PyTorch's arithmetic op for op.
import { native, NativeHandle } from '../native';
import { Tensor } from '../tensor';
import { Optimizer, ParamGroup, ParamsInput } from './optimizer';

export interface SGDHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export type SGDOptions = Partial<SGDHyper> & { lr: number };

export class SGD extends Optimizer<SGDHyper> {
  /** params: parameters or groups, as AdamW. lr is required, as in PyTorch; the rest default to 0 / false. */
  constructor(params: ParamsInput<SGDHyper>, opts: SGDOptions) {
    if (opts === undefined || opts.lr === undefined) throw new TypeError('SGD: the learning rate `lr` is required');
    super(params, {
      lr: opts.lr,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      weightDecay: opts.weightDecay ?? 0,
      nesterov: opts.nesterov ?? false,
      maximize: opts.maximize ?? false,
    });
  }

  protected checkHyper(h: SGDHyper): void {
    if (!(h.lr >= 0)) throw new RangeError(`SGD: invalid learning rate: ${h.lr}`);
    if (!(h.momentum >= 0)) throw new RangeError(`SGD: invalid momentum value: ${h.momentum}`);
    if (!(h.weightDecay >= 0)) throw new RangeError(`SGD: invalid weightDecay value: ${h.weightDecay}`);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0))
      throw new RangeError('SGD: Nesterov momentum requires a momentum and zero dampening');
  }

  protected update(group: ParamGroup<SGDHyper>, params: Tensor[]): void {
    const buffers: NativeHandle[] = [];
    const initialized: number[] = [];
    if (group.momentum !== 0) {
      for (const p of params) {
        let s = this.state.get(p);
        if (s === undefined) this.state.set(p, (s = {}));
        const buf = s.momentum_buffer;
        initialized.push(buf === undefined ? 0 : 1);
        // A new buffer is filled by the step itself (PyTorch clones the first direction into it).
        if (buf === undefined) s.momentum_buffer = this.zerosLike(p);
        buffers.push((s.momentum_buffer as Tensor).handle);
      }
    }
    try {
      native.sgdStep(
        params.map((p) => p.handle),
        buffers,
        initialized,
        group.lr,
        group.momentum,
        group.dampening,
        group.weightDecay,
        group.nesterov,
        group.maximize,
      );
    } catch (err) {
      // A buffer made for this step was never filled: drop it so that the next step starts it afresh.
      params.forEach((p, i) => {
        const s = this.state.get(p);
        if (initialized[i] === 0 && s?.momentum_buffer instanceof Tensor) {
          s.momentum_buffer.dispose();
          delete s.momentum_buffer;
        }
      });
      throw err;
    }
  }
}
