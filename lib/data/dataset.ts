// Datasets: a list of items with the operations training needs (seeded shuffle, select, a train/eval
// split as Hugging Face datasets' train_test_split), and loadDataset, which reads a JSONL/JSON file of
// text, prompt-completion or chat records and tokenizes it into input ids and labels.
import { Example, tokenizeRecord, TokenizeOptions, trainsOnInputs } from './labels';
import { permutation } from './random';
import { readRecords, SourcedRecord, toRecord } from './records';
import { Tokenizer } from './tokenizer';
import { checkOptions, OptionKeys } from '../options';

export interface SplitOptions {
  /** A fraction in (0, 1) or a count of items for the test split. */
  testSize: number;
  /** A fraction or count for the train split; default: the rest. */
  trainSize?: number;
  /** Default 0. */
  seed?: number;
  /** Default true; false takes the test split from the end, in order. */
  shuffle?: boolean;
}

export class Dataset<T> implements Iterable<T> {
  private readonly items: readonly T[];

  constructor(items: readonly T[]) {
    this.items = items;
  }

  get length(): number {
    return this.items.length;
  }

  get(i: number): T {
    if (!Number.isInteger(i) || i < 0 || i >= this.items.length)
      throw new RangeError(`Dataset.get(${i}): index out of range for ${this.items.length} items`);
    return this.items[i];
  }

  [Symbol.iterator](): Iterator<T> {
    return this.items[Symbol.iterator]();
  }

  toArray(): T[] {
    return this.items.slice();
  }

  /** The items at `indices`, in that order. */
  select(indices: Iterable<number>): Dataset<T> {
    return new Dataset([...indices].map((i) => this.get(i)));
  }

  /** The same items in a seeded random order. */
  shuffle(opts: { seed?: number } = {}): Dataset<T> {
    return this.select(permutation(this.items.length, opts.seed ?? 0));
  }

  map<U>(fn: (item: T, index: number) => U): Dataset<U> {
    return new Dataset(this.items.map(fn));
  }

  filter(fn: (item: T, index: number) => boolean): Dataset<T> {
    return new Dataset(this.items.filter(fn));
  }

  /**
   * A train/test split, as datasets' train_test_split: a fractional size rounds the test split up and
   * the train split down; the same seed gives the same split.
   */
  trainTestSplit(opts: SplitOptions): { train: Dataset<T>; test: Dataset<T> } {
    const n = this.items.length;
    const count = (size: number, what: string, round: (x: number) => number): number => {
      if (!(size > 0)) throw new RangeError(`trainTestSplit: ${what} must be positive, got ${size}`);
      if (size < 1) return round(size * n);
      if (!Number.isInteger(size)) throw new RangeError(`trainTestSplit: ${what} must be a fraction in (0, 1) or a count, got ${size}`);
      return size;
    };
    const nTest = count(opts.testSize, 'testSize', Math.ceil);
    const nTrain = opts.trainSize === undefined ? n - nTest : count(opts.trainSize, 'trainSize', Math.floor);
    if (nTest < 1 || nTrain < 1 || nTest + nTrain > n)
      throw new RangeError(
        `trainTestSplit: ${n} items cannot give ${nTrain} train and ${nTest} test items (testSize ${opts.testSize})`,
      );
    if (opts.shuffle === false)
      return {
        train: this.select(range(0, nTrain)),
        test: this.select(range(n - nTest, n)),
      };
    const order = permutation(n, opts.seed ?? 0);
    return {
      train: this.select(order.slice(nTest, nTest + nTrain)),
      test: this.select(order.slice(0, nTest)),
    };
  }
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, i) => a + i);
}

export interface LoadDatasetOptions extends TokenizeOptions {
  /**
   * Called once for each thing worth knowing (default: console.warn): some boundary fell inside a
   * token; some conversations were rendered turn by turn; a built-in template's markers are not tokens.
   */
  onWarning?: (message: string) => void;
}

const LOAD_DATASET_OPTIONS: OptionKeys<LoadDatasetOptions> = {
  onWarning: true,
  addEos: true,
  maxLength: true,
  chatTemplate: true,
  templateVariables: true,
  trainOnInputs: true,
  completionOnlyLoss: true,
};

function tokenizeAll(
  tok: Tokenizer,
  records: { record: SourcedRecord | ReturnType<typeof toRecord>; at: string }[],
  opts: LoadDatasetOptions,
): Dataset<Example> {
  trainsOnInputs(opts); // a contradiction is an error even for records it would not touch
  const warn = opts.onWarning ?? console.warn;
  const out: Example[] = [];
  let straddled = 0;
  let turnByTurn = 0;
  let chats = 0;
  for (const { record, at } of records) {
    let r;
    try {
      r = tokenizeRecord(tok, record, opts);
    } catch (err) {
      throw new Error(`${at}: ${(err as Error).message}`);
    }
    if (r.straddled) straddled++;
    if (record.kind === 'messages' || record.kind === 'chat_prompt_completion') chats++;
    if (r.perTurn) {
      turnByTurn++;
      out.push(...r.perTurn);
    } else out.push({ inputIds: r.inputIds, labels: r.labels });
  }
  if (straddled > 0)
    warn(
      `${straddled} of ${records.length} records have a prompt/assistant boundary inside a token (the tokenizer ` +
        'merged across it); that token was counted as the completion/assistant part',
    );
  if (turnByTurn > 0)
    warn(
      `the chat template renders earlier turns differently once later turns follow (e.g. it drops their thinking), ` +
        `so ${turnByTurn} of ${records.length} conversations were rendered turn by turn: one example per assistant turn ` +
        `(the conversation through it, the loss on that turn only), ${out.length} examples from ${records.length} records. ` +
        'A template with {% generation %} blocks, or trainOnInputs (--train-on-inputs), keeps one example per conversation',
    );
  const missing = chats > 0 ? tok.missingTemplateTokens(opts.chatTemplate) : [];
  if (missing.length > 0)
    warn(
      `the '${opts.chatTemplate}' chat format's ${missing.join(' ')} are not tokens of this tokenizer, so each is split ` +
        'into pieces; a tokenizer made for the format (or one of its own templates) trains the model on its real markers',
    );
  return new Dataset(out);
}

/**
 * Reads a JSONL or JSON file of {"text"}, {"prompt","completion"} or {"messages"} records and tokenizes
 * each into input ids and labels (-100 where no loss is taken).
 */
export function loadDataset(file: string, tokenizer: Tokenizer, opts: LoadDatasetOptions = {}): Dataset<Example> {
  checkOptions(opts, LOAD_DATASET_OPTIONS, 'loadDataset');
  const records = readRecords(file);
  return tokenizeAll(
    tokenizer,
    records.map((record) => ({ record, at: `${record.source.file}:${record.source.line}` })),
    opts,
  );
}

/** The same from records in memory (plain objects of the same shapes). */
export function datasetFromRecords(records: unknown[], tokenizer: Tokenizer, opts: LoadDatasetOptions = {}): Dataset<Example> {
  checkOptions(opts, LOAD_DATASET_OPTIONS, 'datasetFromRecords');
  if (!Array.isArray(records)) throw new TypeError('datasetFromRecords: expected an array of records');
  return tokenizeAll(
    tokenizer,
    records.map((r, i) => {
      const at = `record ${i}`;
      return { record: toRecord(r, at), at };
    }),
    opts,
  );
}
