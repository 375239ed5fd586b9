// nn.Embedding: a lookup table, weight [numEmbeddings, embeddingDim].
import { empty } from '../creation';
import { embedding } from '../functional';
import { noGrad } from '../autograd';
import { Tensor } from '../tensor';
import { normal_ } from './init';
import { FactoryOptions } from './linear';
import { Module } from './module';
import { Parameter } from './parameter';

export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  /** Normalized to a non-negative row index, as PyTorch does with a negative one. */
  readonly paddingIdx?: number;
  weight: Parameter;

  constructor(numEmbeddings: number, embeddingDim: number, opts: FactoryOptions & { paddingIdx?: number } = {}) {
    super();
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    if (opts.paddingIdx !== undefined) {
      const p = opts.paddingIdx;
      if (!Number.isInteger(p) || p >= numEmbeddings || p < -numEmbeddings)
        throw new RangeError(`Embedding: paddingIdx must be an integer in [-${numEmbeddings}, ${numEmbeddings}), got ${p}`);
      this.paddingIdx = p < 0 ? numEmbeddings + p : p;
    }
    const w = empty([numEmbeddings, embeddingDim], opts);
    this.weight = new Parameter(w);
    w.dispose();
    this.resetParameters();
  }

  /** PyTorch's default: N(0, 1), then the padding row zeroed. */
  resetParameters(): void {
    if (this.weight.device === 'meta') return;
    normal_(this.weight);
    if (this.paddingIdx !== undefined) {
      const p = this.paddingIdx;
      noGrad(() => {
        const row = this.weight.select(0, p);
        row.zero_();
        row.dispose();
      });
    }
  }

  /** ids (int64, any shape) -> [...ids.shape, embeddingDim]. The padding row gets no gradient. */
  forward(ids: Tensor): Tensor {
    return embedding(ids, this.weight, this.paddingIdx);
  }

  extraRepr(): string {
    let s = `${this.numEmbeddings}, ${this.embeddingDim}`;
    if (this.paddingIdx !== undefined) s += `, padding_idx=${this.paddingIdx}`;
    return s;
  }
}
