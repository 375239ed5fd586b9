// Fuzz target: adapter_config.json as LoraConfig.fromPretrained reads it. Corpus: every adapter_config.json
// of the PEFT-made fixtures. A clear error is an Error that names the file.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LoraConfig } from '../../lib';
import { FuzzOptions, mutateJson, readCorpus } from './driver';

const FIXTURES = path.join(__dirname, '..', 'fixtures');

export function adapterConfigTarget(): Omit<FuzzOptions, 'seed' | 'maxInputs' | 'maxMs'> & { cleanup(): void } {
  const corpusFiles = fs
    .readdirSync(FIXTURES)
    .map((d) => path.join(FIXTURES, d, 'adapter_config.json'))
    .filter((f) => fs.existsSync(f));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-fuzz-adapter-config-'));
  const file = path.join(dir, 'adapter_config.json');
  return {
    name: 'adapter_config.json',
    corpus: readCorpus(corpusFiles),
    mutate: mutateJson,
    target: (input) => {
      fs.writeFileSync(file, input);
      const c = LoraConfig.fromDict(fs.readFileSync(file, 'utf8'), { source: file, quiet: true });
      // What was accepted is written back as PEFT would write it, and reads back the same.
      const again = LoraConfig.fromDict(c.toJSONString(), { source: file, quiet: true });
      if (again.toJSONString() !== c.toJSONString()) throw new Error(`${file}: written config does not read back the same`);
    },
    isClear: (e) => e.message.includes(file),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
