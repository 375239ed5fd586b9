// What the Trainer does before anything reaches the training device: the weights are cast to the
// training dtype where they are and then moved (a float32 copy on a GPU would double its peak memory),
// and token ids are range-checked on the CPU (on CUDA an id past the embedding table is a device-side
// assert that kills the process's CUDA context, naming nothing).
import { Dataset, Trainer } from '../lib';
import { Example } from '../lib/data';
import { randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

const VOCAB = 128; // tiny-llama's vocab_size

function withExample(base: Dataset<Example>, index: number, change: (e: Example) => void): Dataset<Example> {
  const items = [...base].map((e) => ({ inputIds: Int32Array.from(e.inputIds), labels: Int32Array.from(e.labels) }));
  change(items[index]);
  return new Dataset(items);
}

const args = () => ({ outputDir: tmpDir('device-inputs'), maxSteps: 1, perDeviceTrainBatchSize: 2, report: 'none' as const });

test('the model is cast to the training dtype before it is moved to the device', async () => {
  const model = await tinyLoraModel(0);
  try {
    const frozenDTypesAtMove: string[][] = [];
    const move = model.to.bind(model);
    jest.spyOn(model, 'to').mockImplementation((target) => {
      frozenDTypesAtMove.push([...new Set([...model.parameters()].filter((p) => !p.requiresGrad).map((p) => p.dtype))]);
      return move(target);
    });
    new Trainer({ model, trainDataset: randomExamples(4, 6), args: { ...args(), device: 'cpu', dtype: 'bfloat16' } });
    expect(frozenDTypesAtMove).toEqual([['bfloat16']]);
    // The adapter stays float32 (PEFT's autocast_adapter_dtype).
    expect(new Set([...model.parameters()].filter((p) => p.requiresGrad).map((p) => p.dtype))).toEqual(new Set(['float32']));
  } finally {
    model.dispose();
  }
});

test('an input id outside the vocabulary is a clear error naming the id, vocab size and example, before any step', async () => {
  const model = await tinyLoraModel(0);
  try {
    const ds = withExample(randomExamples(6, 6), 3, (e) => (e.inputIds[2] = VOCAB));
    expect(() => new Trainer({ model, trainDataset: ds, args: args() })).toThrow(
      `token id ${VOCAB} at position 2 of example 3 of the training dataset is outside the model's vocabulary (vocab_size ${VOCAB}; ids must be 0 to ${VOCAB - 1})`,
    );
    const negative = withExample(randomExamples(6, 6), 0, (e) => (e.inputIds[0] = -5));
    expect(() => new Trainer({ model, trainDataset: negative, args: args() })).toThrow(/token id -5 at position 0 of example 0 of the training dataset/);
    const evalBad = withExample(randomExamples(3, 7), 1, (e) => (e.inputIds[0] = 1000));
    expect(() => new Trainer({ model, trainDataset: randomExamples(4, 6), evalDataset: evalBad, args: args() })).toThrow(
      /token id 1000 at position 0 of example 1 of the evaluation dataset/,
    );
  } finally {
    model.dispose();
  }
});

test('a label outside the vocabulary (other than -100) and an unknown padding id are refused too', async () => {
  const model = await tinyLoraModel(0);
  try {
    const ds = withExample(randomExamples(6, 6), 5, (e) => (e.labels[e.labels.length - 1] = 500));
    expect(() => new Trainer({ model, trainDataset: ds, args: args() })).toThrow(/label 500 at position \d+ of example 5 of the training dataset .*or -100 for no loss/);
    expect(() => new Trainer({ model, trainDataset: randomExamples(4, 6), padTokenId: VOCAB, args: args() })).toThrow(
      `the padding token id ${VOCAB} is outside the model's vocabulary (vocab_size ${VOCAB})`,
    );
    // In range everywhere: accepted.
    expect(() => new Trainer({ model, trainDataset: randomExamples(4, 6), padTokenId: VOCAB - 1, args: args() })).not.toThrow();
  } finally {
    model.dispose();
  }
});
