// Fuzz target: a JSONL dataset as loadDataset reads and tokenizes it (tiny-bpe tokenizer). Corpus: the
// .jsonl fixtures (text, prompt/completion, chat). A clear error is an Error that names the file.
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer, loadDataset, Tokenizer } from '../../lib';
import { mutateBytes, mutateJsonValue, Rng } from './driver';
import { FuzzTarget, namesFile, ROOT, scratchFile } from './target';

const DATA = path.join(ROOT, 'test', 'fixtures', 'data');
const file = scratchFile('jsonl', 'data.jsonl');
let tokenizer: Tokenizer | undefined;
const quiet = () => undefined;

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

export const fuzzTarget: FuzzTarget = {
  name: 'jsonl',
  corpus: () => ['text.jsonl', 'prompt_completion.jsonl', 'chat.jsonl'].map((f) => fs.readFileSync(path.join(DATA, 'datasets', f))),
  mutate: mutateJsonl,
  target: (input) => {
    tokenizer ??= AutoTokenizer.fromPretrainedSync(path.join(DATA, 'tiny-bpe'));
    fs.writeFileSync(file, input);
    loadDataset(file, tokenizer, { onWarning: quiet });
  },
  isClear: namesFile(file, { quoted: false }),
};
