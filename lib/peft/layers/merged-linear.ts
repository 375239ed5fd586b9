// LoRA over a fused projection (lit-llama's MergedLinear): one Linear computes q, k and v at once
// (weight [3·d, d]), and LoRA adapts only the blocks enableLora marks, e.g. [true, false, true] for q and v.
// lora_A stacks one [r, in] matrix per adapted block ([r·n, in]); lora_B stacks one [out/k, r] matrix per
// adapted block ([out/k·n, r]) and is applied block by block (a grouped product), so for LLaMA-7B and
// r = 8: lora_A 16×4096, lora_B 8192×8. Non-adapted blocks get no update. ΔW is never formed in forward.
import { zeros } from '../../creation';
import { cat } from '../../ops';
import { Linear, Module } from '../../nn';
import { scope } from '../../memory';
import { Tensor } from '../../tensor';
import { AdapterSpec } from './lora-layer';
import { adapterLinear, LoraLinear } from './linear';
import { kaimingUniform_, zeros_ } from '../../nn/init';

export interface MergedAdapterSpec extends AdapterSpec {
  /** One flag per block of the fused output (out features must divide evenly). */
  enableLora: boolean[];
}

export class LoraMergedLinear extends LoraLinear {
  /** Set once by the first updateLayer (declared, not defined, so the subclass field does not reset it). */
  declare readonly enableLora: boolean[];

  constructor(baseLayer: Module, adapterName: string, spec: MergedAdapterSpec) {
    super(baseLayer, adapterName, spec);
  }

  private get blockSize(): number {
    return this.outFeatures / this.enableLora.length;
  }
  private get enabledBlocks(): number[] {
    return this.enableLora.flatMap((e, i) => (e ? [i] : []));
  }

  override updateLayer(adapterName: string, spec: AdapterSpec): void {
    const enableLora = (spec as MergedAdapterSpec).enableLora ?? this.enableLora;
    if (!Array.isArray(enableLora) || enableLora.length === 0 || !enableLora.some((e) => e))
      throw new Error('LoraMergedLinear: enableLora must be a non-empty list of booleans with at least one true');
    if (this.outFeatures % enableLora.length !== 0)
      throw new Error(`LoraMergedLinear: out_features ${this.outFeatures} is not divisible by the ${enableLora.length} blocks of enableLora`);
    if (this.enableLora === undefined) Object.defineProperty(this, 'enableLora', { value: [...enableLora], enumerable: false });
    else if (JSON.stringify(this.enableLora) !== JSON.stringify(enableLora)) throw new Error('LoraMergedLinear: every adapter must use the same enableLora');
    const { config, r } = spec;
    if (config.useDora) throw new Error('LoraMergedLinear: DoRA is not supported on fused projections');
    if (config.loraBias) throw new Error('LoraMergedLinear: loraBias is not supported on fused projections');
    if (config.initLoraWeights === 'pissa' || config.initLoraWeights === 'olora')
      throw new Error(`LoraMergedLinear: initLoraWeights '${config.initLoraWeights}' is not supported on fused projections`);
    this.registerAdapter(adapterName, spec);
    const w = this.baseWeight;
    const n = this.enabledBlocks.length;
    this.lora_A.set(adapterName, adapterLinear(this.inFeatures, r * n, false, w));
    this.lora_B.set(adapterName, adapterLinear(r, this.blockSize * n, config.loraBias, w));
    if (w.device !== 'meta') {
      const init = config.initLoraWeights;
      if (init) {
        const A = this.lora_A.get(adapterName) as Linear;
        const B = this.lora_B.get(adapterName) as Linear;
        // Each block's A is initialized as its own [r, in] matrix would be.
        if (init === true) scope(() => A.weight.split(r, 0).forEach((a) => kaimingUniform_(a, { a: Math.sqrt(5) })));
        else this.resetLoraParameters(adapterName, init);
        zeros_(B.weight);
        if (B.bias) zeros_(B.bias);
      }
      this.moveAdapterToBase(adapterName);
    }
    this.setAdapter(this.activeAdapters, config.inferenceMode);
  }

  /** ΔW = s·[B₀A₀; 0; B₂A₂] block by block, zeros for the blocks LoRA leaves alone. */
  override getDeltaWeight(adapter: string): Tensor {
    return scope(() => {
      const a = this.loraAWeight(adapter);
      const b = this.loraBWeight(adapter);
      const r = this.r.get(adapter)!;
      const blocks: Tensor[] = [];
      let j = 0;
      for (const enabled of this.enableLora) {
        if (enabled) {
          blocks.push(b.narrow(0, j * this.blockSize, this.blockSize).matmul(a.narrow(0, j * r, r)));
          j++;
        } else blocks.push(zeros([this.blockSize, this.inFeatures], { dtype: a.dtype, device: a.device }));
      }
      return cat(blocks, 0).mul(this.scaling.get(adapter)!);
    });
  }

  /* eslint-disable @typescript-eslint/no-explicit-any */
  protected override adapterForward(x: Tensor, rest: any[]): Tensor {
    let result: Tensor = this.base_layer.forward(x, ...rest);
    for (const a of this.activeAdapters) {
      const A = this.lora_A.get(a) as Linear | undefined;
      if (A === undefined) continue;
      const B = this.lora_B.get(a) as Linear;
      const r = this.r.get(a)!;
      const afterA = A.forward(this.lora_dropout.get(a)!.forward(x) as Tensor);
      const pieces: Tensor[] = [];
      let j = 0;
      for (const enabled of this.enableLora) {
        if (enabled) {
          const bj = B.weight.narrow(0, j * this.blockSize, this.blockSize);
          const bias = B.bias?.narrow(0, j * this.blockSize, this.blockSize);
          let y = afterA.narrow(-1, j * r, r).matmul(bj.t());
          if (bias) y = y.add(bias);
          pieces.push(y);
          j++;
        } else pieces.push(zeros([...result.shape.slice(0, -1), this.blockSize], { dtype: result.dtype, device: result.device }));
      }
      result = result.add(cat(pieces, -1).mul(this.scaling.get(a)!));
    }
    return result;
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */

  reprName(): string {
    return 'lora.MergedLinear';
  }

  extraRepr(): string {
    return `enable_lora=[${this.enableLora.map((e) => (e ? 'True' : 'False')).join(', ')}]`;
  }
}
