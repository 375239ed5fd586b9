// LoraConfig: adapter_config.json exactly as PEFT 0.21 writes it (fixtures written by PEFT), PEFT's files
// read back unchanged (unknown keys kept with a warning), and invalid values as clear errors.
import * as fs from 'fs';
import * as path from 'path';
import { LoraConfig } from '../lib';
import { pythonJsonDumps, PyFloat } from '../lib/io/python-json';

const FIX = path.join(__dirname, 'fixtures');
const CONFIGS = [
  'llama-qv',
  'llama-all-patterns',
  'llama-embed-save',
  'llama-regex',
  'llama-dora',
  'gpt2-conv1d',
  'mlp-fc1',
  'llama-multi',
  'llama-multi/style',
].map((d) => path.join(FIX, d, 'adapter_config.json'));

afterEach(() => jest.restoreAllMocks());

test.each(CONFIGS)('reading and writing %s gives back PEFT\'s text byte for byte', (file) => {
  const text = fs.readFileSync(file, 'utf8');
  expect(LoraConfig.fromDict(text).toJSONString()).toBe(text);
});

test('a config built from options writes the same text PEFT wrote for it', () => {
  const cfg = new LoraConfig({ r: 8, loraAlpha: 16, targetModules: ['v_proj', 'q_proj'], taskType: 'CAUSAL_LM', initLoraWeights: false, inferenceMode: true });
  expect(cfg.toJSONString()).toBe(fs.readFileSync(path.join(FIX, 'llama-qv', 'adapter_config.json'), 'utf8'));
  const mlp = new LoraConfig({
    r: 4,
    loraAlpha: 16,
    loraDropout: 0.1,
    targetModules: ['fc1'],
    initLoraWeights: false,
    inferenceMode: true,
    autoMapping: { base_model_class: 'SimpleMLP', parent_library: '__main__' },
  });
  expect(mlp.toJSONString()).toBe(fs.readFileSync(path.join(FIX, 'mlp-fc1', 'adapter_config.json'), 'utf8'));
});

test('the defaults are PEFT\'s', () => {
  const d = new LoraConfig().toDict();
  expect(d).toMatchObject({ r: 8, lora_alpha: 8, lora_dropout: 0, bias: 'none', init_lora_weights: true, target_modules: null, peft_type: 'LORA', peft_version: '0.21.0', rank_pattern: {}, alpha_pattern: {}, megatron_core: 'megatron.core', qalora_group_size: 16, loftq_config: {}, inference_mode: false });
  expect(new LoraConfig().toJSONString()).toContain('"lora_dropout": 0.0,');
  // JSON.stringify(config) gives the same object.
  expect(JSON.parse(JSON.stringify(new LoraConfig({ r: 2 })))).toEqual(new LoraConfig({ r: 2 }).toDict());
});

test("Python's json.dumps spelling: floats, escapes, nesting, empty containers", () => {
  expect(pythonJsonDumps({ b: 1e-5, a: [0.1, 2, new PyFloat(16)], c: {}, d: [], e: 'é"\\\n\u007f', f: { z: true, y: null } })).toBe(
    '{\n  "a": [\n    0.1,\n    2,\n    16.0\n  ],\n  "b": 1e-05,\n  "c": {},\n  "d": [],\n  "e": "\\u00e9\\"\\\\\\n\\u007f",\n  "f": {\n    "y": null,\n    "z": true\n  }\n}',
  );
  expect(pythonJsonDumps({ lora_dropout: 0 }, ['lora_dropout'])).toBe('{\n  "lora_dropout": 0.0\n}');
});

test('unknown keys are kept (with a warning) and written back; runtime_config is dropped', () => {
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  const obj = JSON.parse(fs.readFileSync(path.join(FIX, 'llama-qv', 'adapter_config.json'), 'utf8'));
  obj.some_future_key = { x: [1, 2] };
  obj.runtime_config = { ephemeral_gpu_offload: false };
  const cfg = LoraConfig.fromDict(obj);
  expect(warn).toHaveBeenCalledWith(expect.stringContaining('some_future_key'), expect.anything());
  const back = JSON.parse(cfg.toJSONString());
  expect(back.some_future_key).toEqual({ x: [1, 2] });
  expect('runtime_config' in back).toBe(false);
  expect(cfg.toJSONString()).toMatch(/"some_future_key": \{\n    "x": \[\n      1,\n      2\n    \]\n  \},\n  "target_modules"/);
});

test('fields map to camelCase', () => {
  const cfg = LoraConfig.fromPretrained(path.join(FIX, 'llama-all-patterns'));
  expect(cfg.r).toBe(4);
  expect(cfg.loraAlpha).toBe(8);
  expect(cfg.useRslora).toBe(true);
  expect(cfg.rankPattern).toEqual({ gate_proj: 3, 'model.layers.2.self_attn.k_proj': 5 });
  expect(cfg.alphaPattern).toEqual({ v_proj: 7 });
  expect(cfg.taskType).toBe('CAUSAL_LM');
  expect(cfg.inferenceMode).toBe(true);
  expect(LoraConfig.fromPretrained(path.join(FIX, 'llama-regex')).targetModules).toBe('.*\\.(0|2)\\.self_attn\\.(q|o)_proj');
  expect(LoraConfig.fromPretrained(path.join(FIX, 'llama-multi'), { subfolder: 'style' }).targetModules).toEqual(['o_proj']);
  expect(LoraConfig.fromPretrained(path.join(FIX, 'gpt2-conv1d')).fanInFanOut).toBe(true);
});

test('target module lists behave as sets (duplicates dropped, insertion order kept)', () => {
  expect(new LoraConfig({ targetModules: ['q_proj', 'v_proj', 'q_proj'] }).targetModules).toEqual(['q_proj', 'v_proj']);
});

test.each([
  [{ r: 0 }, /r must be a positive integer, got 0/],
  [{ r: 2.5 }, /r must be a positive integer/],
  [{ loraDropout: 1 }, /loraDropout must be a probability in \[0, 1\)/],
  [{ loraAlpha: Number.NaN }, /loraAlpha must be a finite number/],
  [{ bias: 'some' }, /bias must be 'none', 'all' or 'lora_only'/],
  [{ targetModules: 'q_proj(' }, /targetModules: "q_proj\(" is not a valid regular expression/],
  [{ targetModules: ['q', 3] }, /targetModules must be a list of names, a regex string or null/],
  [{ targetModules: ['q'], layersPattern: 'layers' }, /when layersPattern is given, layersToTransform must be given too/],
  [{ targetModules: '.*q', layersToTransform: [0] }, /layersToTransform cannot be used when targetModules is a string/],
  [{ loraBias: true, useDora: true }, /loraBias=true is not supported with DoRA/],
  [{ loraBias: true, initLoraWeights: 'gaussian' }, /loraBias=true is only supported with initLoraWeights true or false/],
  [{ initLoraWeights: 'eva' }, /initLoraWeights must be true, false, 'gaussian', 'pissa' or 'olora'/],
  [{ taskType: 'CAUSAL' }, /taskType must be one of SEQ_CLS, .*CAUSAL_LM/],
  [{ rankPattern: { q_proj: 0 } }, /rankPattern\["q_proj"\] must be a positive integer/],
  // List-valued fields given a string: PEFT would iterate its letters; refused, never spread.
  [{ modulesToSave: 'lm_head' }, /modulesToSave must be a list of module names \(e.g. \["lm_head"\]\), not a string, got "lm_head"/],
  [{ modulesToSave: ['lm_head', 2] }, /modulesToSave must be a list of module names or null/],
  [{ excludeModules: ['q', 1] }, /excludeModules must be a list of names, a regex string or null/],
  [{ targetModules: ['q'], layersToTransform: '0' }, /layersToTransform must be a layer index, a list of them, or null, got "0"/],
  [{ targetModules: ['q'], layersToTransform: [0, 1.5] }, /layersToTransform must be a layer index, a list of them, or null/],
  [{ targetModules: ['q'], layersToTransform: [0], layersPattern: ['layers', 3] }, /layersPattern must be a string, a list of strings or null/],
  [{ rankPattern: 'q_proj' }, /rankPattern must be an object of name -> number, got "q_proj"/],
  [{ alphaPattern: [4] }, /alphaPattern must be an object of name -> number, got \[4\]/],
  [{ autoMapping: 'SimpleMLP' }, /autoMapping must be an object of name -> string or null, got "SimpleMLP"/],
  [{ baseModelNameOrPath: 3 }, /baseModelNameOrPath must be a string or null/],
  [{ lora_alpha: 8 }, /unknown option 'lora_alpha' \(use 'loraAlpha'\)/],
  [{ useQalora: true }, /unknown option 'useQalora' \(a PEFT feature torch-lora does not implement\)/],
])('invalid %j is a clear error', (opts, msg) => {
  expect(() => new LoraConfig(opts as never)).toThrow(msg);
});

test('list fields keep lists (copied), and a single layer index stays an index', () => {
  const names = ['lm_head', 'score'];
  const cfg = new LoraConfig({ targetModules: ['q_proj'], modulesToSave: names, layersToTransform: 1, layersPattern: 'layers' });
  expect(cfg.modulesToSave).toEqual(['lm_head', 'score']);
  names.push('other');
  expect(cfg.modulesToSave).toEqual(['lm_head', 'score']);
  expect(cfg.layersToTransform).toBe(1);
  expect(JSON.parse(cfg.toJSONString()).modules_to_save).toEqual(['lm_head', 'score']);
});

test('a file whose modules_to_save is a string is refused, naming the file, before any model is touched', () => {
  const obj = JSON.parse(fs.readFileSync(path.join(FIX, 'llama-qv', 'adapter_config.json'), 'utf8'));
  expect(() => LoraConfig.fromDict({ ...obj, modules_to_save: 'lm_head' }, { source: 'x/adapter_config.json' })).toThrow(
    /modulesToSave must be a list of module names \(e.g. \["lm_head"\]\), not a string, got "lm_head" in x\/adapter_config.json/,
  );
  expect(() => LoraConfig.fromDict({ ...obj, rank_pattern: 'q_proj' })).toThrow(/rankPattern must be an object/);
  expect(() => LoraConfig.fromDict({ ...obj, layers_to_transform: 'all' })).toThrow(/layersToTransform must be a layer index/);
  expect(LoraConfig.fromDict({ ...obj, modules_to_save: ['lm_head'] }).modulesToSave).toEqual(['lm_head']);
});

test('files asking for features we do not implement are refused, not silently ignored', () => {
  const obj = JSON.parse(fs.readFileSync(path.join(FIX, 'llama-qv', 'adapter_config.json'), 'utf8'));
  expect(() => LoraConfig.fromDict({ ...obj, use_qalora: true })).toThrow(/use_qalora=true is a PEFT feature torch-lora does not implement/);
  expect(() => LoraConfig.fromDict({ ...obj, layer_replication: [[0, 2]] })).toThrow(/layer_replication/);
  expect(() => LoraConfig.fromDict({ ...obj, peft_type: 'IA3' })).toThrow(/peft_type is "IA3".*only LORA/);
});

test('replace() copies with changes and keeps other keys', () => {
  const cfg = LoraConfig.fromPretrained(path.join(FIX, 'llama-qv'));
  const c2 = cfg.replace({ r: 2, inferenceMode: false });
  expect(c2.r).toBe(2);
  expect(c2.targetModules).toEqual(['v_proj', 'q_proj']);
  expect(cfg.r).toBe(8);
});
