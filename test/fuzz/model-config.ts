// Fuzz target: config.json as AutoModelForCausalLM.fromPretrained reads it, over the tiny-llama and tiny-gpt2
// fixtures' weights, on 'meta' (headers only: the target is the config, not the weights). Corpus: the
// fixtures' config.json files. A clear error is an Error that names the model folder or its files.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AutoModelForCausalLM } from '../../lib';
import { FuzzOptions, mutateJson, readCorpus } from './driver';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
const MODELS = ['tiny-llama', 'tiny-gpt2'];

export function modelConfigTarget(): Omit<FuzzOptions, 'seed' | 'maxInputs' | 'maxMs'> & { cleanup(): void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-fuzz-model-config-'));
  // One folder per fixture's weights; an input is tried over both (the config picks the architecture).
  const dirs = MODELS.map((m) => {
    const d = path.join(root, m);
    fs.mkdirSync(d);
    fs.copyFileSync(path.join(FIXTURES, m, 'model.safetensors'), path.join(d, 'model.safetensors'));
    return d;
  });
  let i = 0;
  return {
    name: 'config.json',
    corpus: readCorpus(MODELS.map((m) => path.join(FIXTURES, m, 'config.json'))),
    mutate: mutateJson,
    target: async (input) => {
      const dir = dirs[i++ % dirs.length];
      fs.writeFileSync(path.join(dir, 'config.json'), input);
      const model = await AutoModelForCausalLM.fromPretrained(dir, { device: 'meta' });
      model.dispose();
    },
    isClear: (e) => e.message.includes(root),
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}
