// Issue 10: every error about a JSON file names the file: invalid JSON, NaN where a number must be finite,
// a folder where the file should be, a '__proto__' key (read as a plain unknown key, as Python reads it).
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, LoraConfig } from '../lib';
import { readConfig } from '../lib/models/config';
import { parsePythonJson } from '../lib/io/json-file';
import { LLAMA_DIR } from './helpers/models';
import { tmpDir } from './helpers/tmp-dir';

/** A folder holding one adapter_config.json with `text`. */
function adapterDir(text: string): { dir: string; file: string } {
  const dir = tmpDir('json-err');
  const file = path.join(dir, 'adapter_config.json');
  fs.writeFileSync(file, text);
  return { dir, file };
}

const quiet = () => jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
afterEach(() => jest.restoreAllMocks());

describe('adapter_config.json errors name the file', () => {
  test('invalid JSON: the file and the line, not a bare SyntaxError', () => {
    const { dir, file } = adapterDir('{\n  "r": 8,\n');
    expect(() => LoraConfig.fromPretrained(dir)).toThrow(`adapter config '${file}' is not valid JSON`);
  });

  test('NaN is read as Python reads it, then refused by the field check naming the key and the file', () => {
    const { dir, file } = adapterDir('{"r": 8, "lora_alpha": NaN, "peft_type": "LORA"}');
    expect(() => LoraConfig.fromPretrained(dir)).toThrow(/loraAlpha must be a finite number, got null in .*adapter_config\.json/);
    expect(() => LoraConfig.fromPretrained(dir)).toThrow(file);
  });

  test('NaN in an unknown key is kept as Python keeps it', () => {
    quiet();
    const { dir } = adapterDir('{"r": 4, "some_future_float": NaN, "peft_type": "LORA"}');
    const c = LoraConfig.fromPretrained(dir);
    expect(c.r).toBe(4);
    expect(Number.isNaN(c.otherKeys.some_future_float as number)).toBe(true);
    expect(c.toJSONString()).toContain('"some_future_float": NaN');
  });

  test('a folder named adapter_config.json: EISDIR with the path', () => {
    const dir = tmpDir('json-err');
    fs.mkdirSync(path.join(dir, 'adapter_config.json'));
    expect(() => LoraConfig.fromPretrained(dir)).toThrow(`adapter config '${path.join(dir, 'adapter_config.json')}' is a folder`);
  });

  test("a '__proto__' key is an unknown key, kept as a key (was: unknown option '[object Object]')", () => {
    const warn = quiet();
    const { dir } = adapterDir('{"r": 4, "__proto__": {"r": 99}, "constructor": 1, "peft_type": "LORA"}');
    const c = LoraConfig.fromPretrained(dir);
    expect(c.r).toBe(4);
    expect(Object.getPrototypeOf(c.otherKeys)).toBe(Object.prototype);
    expect(Object.keys(c.otherKeys)).toEqual(expect.arrayContaining(['__proto__', 'constructor']));
    expect(String(warn.mock.calls[0][0])).toContain('__proto__, constructor');
    // Written back as it was read.
    expect(JSON.parse(c.toJSONString())).toEqual(expect.objectContaining({ constructor: 1 }));
    expect(c.toJSONString()).toContain('"__proto__": {\n    "r": 99\n  }');
  });

  test("LoraConfig options named like Object's members are unknown options", () => {
    expect(() => new LoraConfig({ constructor: 1 } as never)).toThrow("LoraConfig: unknown option 'constructor'");
    expect(() => new LoraConfig({ toString: 1 } as never)).toThrow("LoraConfig: unknown option 'toString'");
  });
});

describe('config.json and the weight index name the file', () => {
  function modelDir(): string {
    const dir = tmpDir('json-err');
    for (const f of fs.readdirSync(LLAMA_DIR)) fs.copyFileSync(path.join(LLAMA_DIR, f), path.join(dir, f));
    return dir;
  }

  test('a folder named config.json', async () => {
    const dir = modelDir();
    fs.rmSync(path.join(dir, 'config.json'));
    fs.mkdirSync(path.join(dir, 'config.json'));
    await expect(AutoModelForCausalLM.fromPretrained(dir)).rejects.toThrow(`config '${path.join(dir, 'config.json')}' is a folder`);
  });

  test('invalid JSON in config.json and generation_config.json', async () => {
    const dir = modelDir();
    fs.writeFileSync(path.join(dir, 'generation_config.json'), '{"do_sample": tru}');
    await expect(AutoModelForCausalLM.fromPretrained(dir)).rejects.toThrow(`generation config '${path.join(dir, 'generation_config.json')}' is not valid JSON`);
    fs.writeFileSync(path.join(dir, 'config.json'), '{\n"model_type": "llama",\n"hidden_size": 48,\n}');
    expect(() => readConfig(dir)).toThrow(`config '${path.join(dir, 'config.json')}' is not valid JSON, line 4`);
  });

  test('NaN in config.json: the key named', () => {
    const dir = modelDir();
    const text = fs.readFileSync(path.join(dir, 'config.json'), 'utf8').replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": NaN');
    fs.writeFileSync(path.join(dir, 'config.json'), text);
    return expect(AutoModelForCausalLM.fromPretrained(dir)).rejects.toThrow("config: 'rms_norm_eps' must be a number, got null");
  });

  test('a weight index whose shard names leave the folder', async () => {
    const dir = modelDir();
    fs.renameSync(path.join(dir, 'model.safetensors'), path.join(dir, 'model-00001-of-00001.safetensors'));
    const index = path.join(dir, 'model.safetensors.index.json');
    fs.writeFileSync(index, JSON.stringify({ weight_map: { 'lm_head.weight': '../model-00001-of-00001.safetensors' } }));
    await expect(AutoModelForCausalLM.fromPretrained(dir)).rejects.toThrow(`'${index}': weight_map values must be file names in the same folder`);
    fs.writeFileSync(index, JSON.stringify({ weight_map: { 'lm_head.weight': 7 } }));
    await expect(AutoModelForCausalLM.fromPretrained(dir)).rejects.toThrow('got 7');
  });
});

test('parsePythonJson reads NaN and ±Infinity outside strings only', () => {
  const v = parsePythonJson('{"a": NaN, "b": [-Infinity, Infinity], "c": "NaN -Infinity \\" NaN"}') as Record<string, unknown>;
  expect(Number.isNaN(v.a)).toBe(true);
  expect(v.b).toEqual([-Infinity, Infinity]);
  expect(v.c).toBe('NaN -Infinity " NaN');
  expect(() => parsePythonJson('{"a": NaNa}')).toThrow(SyntaxError);
});
