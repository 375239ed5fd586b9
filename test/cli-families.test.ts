// The CLI on the families built on Llama (tiny Qwen2 and Mistral fixtures with the demo tokenizer):
// train with PEFT's default targets for the model_type, generate with the adapter (the library's greedy
// ids), and merge into a folder of the same family that computes what base + adapter compute.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, AutoTokenizer, PeftModel, scope, tensor } from '../lib';
import { demoTokenizerConfig, demoTokenizerJson, jsonFileText } from '../lib/demo/demo-tokenizer';
import { cli, makeDataFile } from './helpers/cli';
import { FIXTURES, tmpDir } from './helpers/train';

/** A model folder: the family fixture's config and weights with the demo tokenizer (ids fit its 128). */
function familyModelDir(dir: string, family: string): string {
  const m = path.join(dir, family);
  fs.mkdirSync(m, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json']) fs.copyFileSync(path.join(FIXTURES, family, 'model', f), path.join(m, f));
  const tok = demoTokenizerJson() as { model: { vocab: Record<string, number> } };
  for (let id = Object.keys(tok.model.vocab).length; id < 128; id++) tok.model.vocab[`<extra_${id}>`] = id;
  fs.writeFileSync(path.join(m, 'tokenizer.json'), jsonFileText(tok));
  fs.writeFileSync(path.join(m, 'tokenizer_config.json'), jsonFileText(demoTokenizerConfig()));
  return m;
}

describe.each([
  ['qwen2', 'Qwen2ForCausalLM'],
  ['mistral', 'MistralForCausalLM'],
])('%s', (family, className) => {
  let dir: string;
  let model: string;
  let out: string;
  beforeAll(async () => {
    dir = tmpDir(`cli-${family}`);
    model = familyModelDir(dir, family);
    const data = makeDataFile(dir, 12);
    out = path.join(dir, 'adapter');
    const r = await cli('train', '--model', model, '--data', data, '--output', out, '--max-steps', '3', '--batch-size', '4', '--lr', '0.01', '--r', '4', '--seed', '1', '--report', 'plain');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^step 3\/3 \| epoch [\d.]+ \| loss \d/m);
  });

  test("train writes an adapter on PEFT's default targets for the model_type", () => {
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    expect([...cfg.target_modules].sort()).toEqual(['q_proj', 'v_proj']);
    expect(cfg.r).toBe(4);
  });

  test("generate with the adapter prints the library's greedy continuation", async () => {
    const r = await cli('generate', '--model', model, '--adapter', out, '--prompt', 'shift cat ->', '--only-new', '--max-new-tokens', '6');
    expect(r.code).toBe(0);
    const tok = await AutoTokenizer.fromPretrained(model);
    const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(model), out);
    const prompt = tok.encode('shift cat ->');
    const ids = scope(() => (peft.getBaseModel() as never as { generate(t: unknown, o: unknown): { tolist(): number[][] } }).generate(tensor([prompt], { dtype: 'int64' }), { maxNewTokens: 6 }).tolist()[0]);
    peft.dispose();
    expect(r.out.replace(/\n$/, '')).toBe(tok.decode(ids.slice(prompt.length), { skipSpecialTokens: true }));
  });

  test('merge writes a folder of the same family computing what base + adapter compute', async () => {
    const merged = path.join(dir, 'merged');
    const r = await cli('merge', '--model', model, '--adapter', out, '--output', merged);
    expect(r.code).toBe(0);
    const cfg = JSON.parse(fs.readFileSync(path.join(merged, 'config.json'), 'utf8'));
    expect([cfg.model_type, cfg.architectures]).toEqual([family, [className]]);
    const ids = tensor([[1, 5, 9, 33, 17, 64, 101, 7, 8, 12, 40]], { dtype: 'int64' });
    const plain = await AutoModelForCausalLM.fromPretrained(merged);
    expect(plain.reprName()).toBe(className);
    const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(model), out);
    const diff = scope(() => {
      const a = plain.forward({ inputIds: ids }).logits;
      const b = (peft.forward({ inputIds: ids }) as { logits: typeof a }).logits;
      return a.sub(b).abs().max().item() as number;
    });
    expect(diff).toBeLessThan(1e-5); // merged W + BA vs W·x + B·A·x in float32
    const base = await AutoModelForCausalLM.fromPretrained(model);
    const changed = scope(() => plain.forward({ inputIds: ids }).logits.sub(base.forward({ inputIds: ids }).logits).abs().max().item() as number);
    expect(changed).toBeGreaterThan(1e-4); // the trained adapter did something
    [plain, peft, base, ids].forEach((m) => m.dispose());
  });
});

test('a Hub id for --model is refused with the download command', async () => {
  const r = await cli('generate', '--model', 'Qwen/Qwen2.5-0.5B', '--prompt', 'hi');
  expect(r.code).not.toBe(0);
  expect(r.err).toContain("model folder 'Qwen/Qwen2.5-0.5B' is not a local folder: torch-lora reads only local folders");
  expect(r.err).toContain('hf download Qwen/Qwen2.5-0.5B --local-dir ./Qwen2.5-0.5B');
});
