// Issue 10: config.json with absurd sizes fails at once, naming the key and the file, before anything is
// built (head_dim 2^31 took 51 s and 4 GB before its error); sizes the checkpoint does not hold too.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM } from '../lib';
import { GPT2_DIR, LLAMA_DIR } from './helpers/models';
import { tmpDir } from './helpers/tmp-dir';

/** A copy of a fixture model folder with config.json's keys changed. */
function withConfig(src: string, changes: Record<string, unknown>): { dir: string; configFile: string } {
  const dir = tmpDir('cfg-sizes');
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  const configFile = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  fs.writeFileSync(configFile, JSON.stringify({ ...c, ...changes }));
  return { dir, configFile };
}

/** Loads and returns the error and how long it took. */
async function loadError(dir: string): Promise<{ message: string; ms: number }> {
  const t0 = Date.now();
  try {
    (await AutoModelForCausalLM.fromPretrained(dir)).dispose();
  } catch (e) {
    return { message: (e as Error).message, ms: Date.now() - t0 };
  }
  throw new Error(`'${dir}' loaded`);
}

describe('absurd sizes are refused before building, naming key and file', () => {
  test.each([
    ['head_dim', 2 ** 31],
    ['num_hidden_layers', 1e6],
    ['vocab_size', 2 ** 40],
    ['intermediate_size', 2 ** 33],
    ['hidden_size', 2 ** 31],
    ['num_key_value_heads', 2 ** 31],
  ])('llama %s = %d', async (key, value) => {
    const changes: Record<string, unknown> = { [key]: value };
    // num_attention_heads must stay a multiple of num_key_value_heads, or that check speaks first.
    if (key === 'num_key_value_heads') changes.num_attention_heads = value;
    const { dir, configFile } = withConfig(LLAMA_DIR, changes);
    const { message, ms } = await loadError(dir);
    expect(message).toContain(`config '${configFile}'`);
    expect(message).toContain(`'${key}' is ${value}`);
    // Without the checks these took tens of seconds (2^31: 51 s, 4 GB); a check is a few milliseconds.
    expect(ms).toBeLessThan(2000);
  });

  test('partial_rotary_factor above 1 (it sizes the rotary frequencies)', async () => {
    const { dir } = withConfig(LLAMA_DIR, { partial_rotary_factor: 1e9 });
    expect((await loadError(dir)).message).toContain("'partial_rotary_factor' is 1000000000; it must be in (0, 1]");
  });

  test('fromConfig checks the same bounds', () => {
    const c = JSON.parse(fs.readFileSync(path.join(LLAMA_DIR, 'config.json'), 'utf8'));
    expect(() => AutoModelForCausalLM.fromConfig({ ...c, head_dim: 2 ** 31 }, { device: 'meta' })).toThrow("'head_dim' is 2147483648");
  });

  test("GPT-2's own key names are the ones named", async () => {
    const { dir } = withConfig(GPT2_DIR, { n_embd: 2 ** 30, n_head: 2 });
    expect((await loadError(dir)).message).toContain("'n_embd' is 1073741824");
  });
});

describe('sizes the checkpoint does not hold are refused before loading', () => {
  test('more layers than the checkpoint holds', async () => {
    const { dir, configFile } = withConfig(LLAMA_DIR, { num_hidden_layers: 40 });
    const { message } = await loadError(dir);
    expect(message).toContain(`config '${configFile}'`);
    expect(message).toContain("'num_hidden_layers' is 40, but the checkpoint holds 3 layers");
  });

  test('sizes within bounds that the checkpoint does not hold: the shape check, fast, before any data is read', async () => {
    const { dir } = withConfig(LLAMA_DIR, { head_dim: 4096 });
    const { message, ms } = await loadError(dir);
    expect(message).toContain("model.layers.0.self_attn.q_proj.weight: 'model.safetensors' has shape [48, 48], the model expects [16384, 48]");
    expect(ms).toBeLessThan(2000);
    const gpt2 = withConfig(GPT2_DIR, { vocab_size: 100000 });
    expect((await loadError(gpt2.dir)).message).toContain('transformer.wte.weight');
  });

  test('the fixtures themselves still load', async () => {
    for (const d of [LLAMA_DIR, GPT2_DIR]) (await AutoModelForCausalLM.fromPretrained(d)).dispose();
  });
});

test("an error the native layer throws while building (a TypeError from another realm under jest) still names config.json", async () => {
  // Found by the model-config fuzz target: n_positions 1e308 reached empty() and its TypeError, made by the
  // addon outside jest's realm, failed `instanceof Error` and lost the file name.
  const { dir, configFile } = withConfig(GPT2_DIR, { n_positions: 1e308 });
  const { message } = await loadError(dir);
  expect(message).toContain('1e+308');
  expect(message).toContain(configFile);
});
