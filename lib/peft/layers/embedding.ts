// LoRA on an embedding table: lora_embedding_A [r, vocab] and lora_embedding_B [dim, r] (PEFT's
// ParameterDicts). The update is looked up, not multiplied: embed(ids, Aᵀ)·Bᵀ·s added to the base lookup.
import { noGrad } from '../../autograd';
import { randn } from '../../creation';
import { embedding } from '../../functional';
import { normal_, zeros_ } from '../../nn/init';
import { Embedding, Module, Parameter } from '../../nn';
import { Tensor } from '../../tensor';
import { DoraEmbeddingLayer } from './dora';
import { AdapterSpec, LoraLayer, scaledLoraProduct } from './lora-layer';

export class LoraEmbedding extends LoraLayer {
  constructor(baseLayer: Module, adapterName: string, spec: AdapterSpec) {
    const base = baseLayer instanceof LoraLayer ? baseLayer.getBaseLayer() : baseLayer;
    if (!(base instanceof Embedding)) throw new TypeError(`LoRA Embedding: cannot adapt a ${base.reprName()}`);
    if (spec.config.loraBias) throw new Error(`lora_bias=true is not supported for ${'lora.Embedding'}.`);
    super(baseLayer, adapterName, base.numEmbeddings, base.embeddingDim);
    this.updateLayer(adapterName, spec);
  }

  private get embeddingBase(): Embedding {
    return this.getBaseLayer() as Embedding;
  }

  updateLayer(adapterName: string, spec: AdapterSpec): void {
    const { config, r } = spec;
    this.registerAdapter(adapterName, spec);
    const w = this.baseWeight;
    const meta = w.device === 'meta';
    // As PEFT: A and B drawn from N(0, 1) (on the CPU, for the same random stream), then re-initialized.
    const opts = meta ? { device: 'meta', dtype: w.dtype } : {};
    const a = randn([r, this.inFeatures], opts);
    const b = randn([this.outFeatures, r], opts);
    this.lora_embedding_A.set(adapterName, new Parameter(a));
    this.lora_embedding_B.set(adapterName, new Parameter(b));
    a.dispose();
    b.dispose();
    const init = config.initLoraWeights;
    if (!meta) {
      if (init) this.resetLoraParameters(adapterName);
      for (const p of [this.lora_embedding_A.get(adapterName)!, this.lora_embedding_B.get(adapterName)!])
        if (p.device !== w.device || p.dtype !== w.dtype) {
          const moved = p.to({ device: w.device, dtype: w.dtype });
          noGrad(() => p.setData_(moved));
          moved.dispose();
        }
    }
    if (config.useDora) {
      const dora = new DoraEmbeddingLayer();
      if (meta) dora.allocateMeta(this.outFeatures, w);
      else dora.updateLayer(w, this.lora_embedding_A.get(adapterName)!, this.lora_embedding_B.get(adapterName)!, this.scaling.get(adapterName)!);
      this.lora_magnitude_vector.set(adapterName, dora);
    }
    this.setAdapter(this.activeAdapters, config.inferenceMode);
  }

  /** A zero, B ~ N(0, 1): the adapter starts as a no-op. */
  resetLoraParameters(adapter: string): void {
    zeros_(this.lora_embedding_A.get(adapter)!);
    normal_(this.lora_embedding_B.get(adapter)!);
  }

  /** ΔW = s·(B·A)ᵀ, [vocab, dim] like the table (computed in A's dtype, as PEFT). */
  getDeltaWeight(adapter: string): Tensor {
    const a = this.lora_embedding_A.get(adapter)!;
    const b = this.lora_embedding_B.get(adapter)!;
    return scaledLoraProduct(b, a, this.scaling.get(adapter)!, true, a.dtype);
  }

  /* eslint-disable @typescript-eslint/no-explicit-any */
  protected adapterForward(x: Tensor, rest: any[]): Tensor {
    let result: Tensor = this.base_layer.forward(x, ...rest);
    const resultDtype = result.dtype;
    for (const a of this.activeAdapters) {
      const A = this.lora_embedding_A.get(a);
      if (A === undefined) continue;
      const B = this.lora_embedding_B.get(a)!;
      const s = this.scaling.get(a)!;
      const afterA = embedding(x, A.t(), this.embeddingBase.paddingIdx);
      const dora = this.lora_magnitude_vector.get(a) as DoraEmbeddingLayer | undefined;
      if (dora === undefined) {
        let update = afterA.matmul(B.t()).mul(s);
        // A base that scales its output (Gemma's embed_scale): the update is scaled alike, as PEFT does.
        const embedScale = (this.base_layer as unknown as { embed_scale?: unknown }).embed_scale;
        if (embedScale instanceof Tensor) update = update.mul(embedScale.to(update.dtype));
        result = result.add(update);
      }
      else {
        // PEFT's DoRA embedding: scale base and update by m/‖W + s·(BA)ᵀ‖ per dimension (norm detached).
        const norm = dora.getWeightNorm(this.baseWeight.to(result.dtype), B.matmul(A).detach(), s).detach();
        const mag = dora.weight.div(norm);
        result = mag.mul(result).add(mag.mul(afterA.matmul(B.t())).mul(s));
      }
    }
    return result.dtype === resultDtype ? result : result.to(resultDtype);
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */

  reprName(): string {
    return 'lora.Embedding';
  }
}
