// Fuzz target: adapter_config.json as LoraConfig reads it. Corpus: every adapter_config.json of the
// PEFT-made fixtures. What is accepted must write back as PEFT writes it and read back the same.
import * as fs from 'fs';
import { LoraConfig } from '../../lib';
import { mutateJson } from './driver';
import { FuzzTarget, fixtureFiles, namesFile, scratchFile } from './target';

const file = scratchFile('adapter-config', 'adapter_config.json');

export const fuzzTarget: FuzzTarget = {
  name: 'adapter-config',
  corpus: () => fixtureFiles('adapter_config.json', 64 * 1024).map((f) => fs.readFileSync(f)),
  mutate: mutateJson,
  target: (input) => {
    fs.writeFileSync(file, input);
    const c = LoraConfig.fromDict(fs.readFileSync(file, 'utf8'), { source: file, quiet: true });
    const again = LoraConfig.fromDict(c.toJSONString(), { source: file, quiet: true });
    if (again.toJSONString() !== c.toJSONString()) throw new Error(`${file}: written config does not read back the same`);
  },
  isClear: namesFile(file, { quoted: false }),
};
