// nn.Parameter: a leaf tensor that a Module owns and an optimizer trains.
import { native } from '../native';
import { Tensor } from '../tensor';

export class Parameter extends Tensor {
  /**
   * Wraps `data`'s storage (no copy) as a leaf with requiresGrad. The Parameter is owned by its module:
   * scopes do not free it; Module.dispose() does. `data` stays the caller's to dispose.
   */
  constructor(data: Tensor, requiresGrad = true) {
    super(native.detach(data.handle), true);
    if (requiresGrad) native.setRequiresGrad(this.handle, true);
  }
  toString(): string {
    return `Parameter containing:\n${super.toString()}`;
  }
}
