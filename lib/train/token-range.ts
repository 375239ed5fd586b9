// Token ids checked against the model's vocabulary on the CPU, before any batch reaches the device: an id
// past the embedding table is an index error on the CPU, but on CUDA a device-side assert that kills the
// process's CUDA context (every later call fails) without a word about which example was wrong.
import { Dataset, Example, IGNORE_INDEX } from '../data';
import { Embedding, Module } from '../nn';

/** The model's vocabulary size: its config's vocab_size, else the rows of its first Embedding. */
export function modelVocabSize(model: Module): number | undefined {
  const c = (model as { config?: { vocabSize?: number } }).config;
  if (typeof c?.vocabSize === 'number') return c.vocabSize;
  for (const m of model.modules()) if (m instanceof Embedding) return m.numEmbeddings;
  return undefined;
}

/**
 * Throws, naming the example, position and id, where an input id is outside [0, vocabSize) or a label
 * is neither IGNORE_INDEX (-100) nor a token id. `which` names the dataset in the message.
 */
export function checkTokenIds(ds: Dataset<Example>, vocabSize: number, which: string): void {
  const bad = (what: string, i: number, t: number, id: number, ok: string) =>
    new RangeError(
      `${what} ${id} at position ${t} of example ${i} of the ${which} dataset is outside the model's vocabulary ` +
        `(vocab_size ${vocabSize}; ${ok}). Was the dataset tokenized with another model's tokenizer?`,
    );
  for (let i = 0; i < ds.length; i++) {
    const e = ds.get(i);
    const ids = e.inputIds;
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t];
      if (id < 0 || id >= vocabSize) throw bad('token id', i, t, id, `ids must be 0 to ${vocabSize - 1}`);
    }
    const labels = e.labels;
    for (let t = 0; t < labels.length; t++) {
      const id = labels[t];
      if (id !== IGNORE_INDEX && (id < 0 || id >= vocabSize))
        throw bad('label', i, t, id, `labels must be 0 to ${vocabSize - 1}, or ${IGNORE_INDEX} for no loss`);
    }
  }
}

/** The padding id goes into batches as an input id: the same range applies. */
export function checkPadTokenId(padTokenId: number | undefined, vocabSize: number): void {
  if (padTokenId !== undefined && (padTokenId < 0 || padTokenId >= vocabSize))
    throw new RangeError(
      `the padding token id ${padTokenId} is outside the model's vocabulary (vocab_size ${vocabSize}); give ` +
        `padTokenId (or a tokenizer whose pad token the model knows), e.g. the eos token id`,
    );
}
