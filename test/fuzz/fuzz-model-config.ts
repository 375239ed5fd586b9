// Fuzz target: config.json as AutoModelForCausalLM.fromPretrained reads it, over the tiny-llama and
// tiny-gpt2 fixtures' weights, on 'meta' (headers only: the target is the config, not the weights).
// Corpus: those fixtures' config.json files. A clear error names the model folder or its files.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM } from '../../lib';
import { mutateJson } from './driver';
import { FuzzTarget, namesFile, ROOT, scratchDir } from './target';

const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const MODELS = ['tiny-llama', 'tiny-gpt2'];

// One folder per fixture's weights, made on first use; an input is tried over both in turn (the config
// picks the architecture).
let root: string | undefined;
let dirs: string[] = [];
function folders(): string[] {
  if (root === undefined) {
    root = scratchDir('model-config');
    dirs = MODELS.map((m) => {
      const d = path.join(root!, m);
      fs.mkdirSync(d);
      fs.copyFileSync(path.join(FIXTURES, m, 'model.safetensors'), path.join(d, 'model.safetensors'));
      return d;
    });
  }
  return dirs;
}
let i = 0;

export const fuzzTarget: FuzzTarget = {
  name: 'model-config',
  corpus: () => MODELS.map((m) => fs.readFileSync(path.join(FIXTURES, m, 'config.json'))),
  mutate: mutateJson,
  target: async (input) => {
    const all = folders();
    const dir = all[i++ % all.length];
    fs.writeFileSync(path.join(dir, 'config.json'), input);
    const model = await AutoModelForCausalLM.fromPretrained(dir, { device: 'meta' });
    model.dispose();
  },
  isClear: (e) => root !== undefined && namesFile(root, { quoted: false })(e),
};
