// nn.Identity: returns its input unchanged (PEFT's lora_dropout when p = 0).
import { Module } from './module';

export class Identity extends Module {
  /* eslint-disable @typescript-eslint/no-explicit-any */
  forward(x: any): any {
    return x;
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */
}
