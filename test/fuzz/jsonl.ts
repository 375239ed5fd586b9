// Fuzz target: a JSONL dataset as loadDataset reads and tokenizes it (tiny-bpe tokenizer). Corpus: the
// .jsonl fixtures (text, prompt/completion, chat). A clear error is an Error that names the file.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AutoTokenizer, loadDataset } from '../../lib';
import { FuzzOptions, mutateBytes, mutateJsonValue, readCorpus, Rng } from './driver';

const DATA = path.join(__dirname, '..', 'fixtures', 'data');

/** A line-wise edit: one record's JSON mutated, a line dropped or duplicated, or a byte edit. */
function mutateJsonl(rng: Rng, input: Buffer, corpus: readonly Buffer[]): Buffer {
  const lines = input.toString('utf8').split('\n');
  const i = rng.int(lines.length);
  switch (rng.int(4)) {
    case 0:
      try {
        lines[i] = JSON.stringify(mutateJsonValue(rng, JSON.parse(lines[i]))) ?? 'null';
      } catch {
        return mutateBytes(rng, input, corpus);
      }
      break;
    case 1:
      lines.splice(i, 1);
      break;
    case 2:
      lines.splice(i, 0, lines[rng.int(lines.length)]);
      break;
    default:
      return mutateBytes(rng, input, corpus);
  }
  return Buffer.from(lines.join('\n'));
}

export function jsonlTarget(): Omit<FuzzOptions, 'seed' | 'maxInputs' | 'maxMs'> & { cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-fuzz-jsonl-'));
  const file = path.join(dir, 'data.jsonl');
  const tokenizer = AutoTokenizer.fromPretrainedSync(path.join(DATA, 'tiny-bpe'));
  const quiet = () => undefined;
  return {
    name: 'JSONL dataset',
    corpus: readCorpus(['text.jsonl', 'prompt_completion.jsonl', 'chat.jsonl'].map((f) => path.join(DATA, 'datasets', f))),
    mutate: mutateJsonl,
    target: (input) => {
      fs.writeFileSync(file, input);
      loadDataset(file, tokenizer, { onWarning: quiet });
    },
    isClear: (e) => e.message.includes(file),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
