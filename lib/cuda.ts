// torch.cuda's questions.
import { native } from './native';

export const cuda = {
  /** Whether libtorch was built with CUDA and sees at least one GPU. */
  isAvailable(): boolean {
    return native.cudaIsAvailable();
  },
  deviceCount(): number {
    return native.cudaDeviceCount();
  },
};
