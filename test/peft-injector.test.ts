// The injector (LoraModel): which modules each config targets (lists, regexes, 'all-linear', defaults,
// exclusions, layer indices), modules_to_save, bias modes, several adapters, and combining adapters.
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, LoraConfig, manualSeed, nn, noGrad, PeftModel, peft as P, scope, Tensor, randint } from '../lib';
import type { CausalLM } from '../lib';
import { maxAbsDiff } from './helpers/tensors';

const FIX = path.join(__dirname, 'fixtures');
const llama = () => AutoModelForCausalLM.fromPretrained(path.join(FIX, 'tiny-llama'));
const gpt2 = () => AutoModelForCausalLM.fromPretrained(path.join(FIX, 'tiny-gpt2'));

class Net extends nn.Module {
  fc1 = new nn.Linear(4, 6);
  act = new nn.ReLU();
  block = new Block();
  fc2 = new nn.Linear(6, 2);
  forward(x: Tensor): Tensor {
    return scope(() => this.fc2.forward(this.block.forward(this.act.forward(this.fc1.forward(x)))));
  }
}
class Block extends nn.Module {
  fc1 = new nn.Linear(6, 6);
  xfc1 = new nn.Linear(6, 6);
  forward(x: Tensor): Tensor {
    return scope(() => this.xfc1.forward(this.fc1.forward(x)));
  }
}

const targeted = (p: PeftModel) => p.targetedModuleNames;
const trainable = (p: PeftModel) => [...p.namedParameters()].filter(([, t]) => t.requiresGrad).map(([n]) => n);

beforeEach(() => manualSeed(0));
afterEach(() => jest.restoreAllMocks());

describe('matching target modules', () => {
  test('a list entry matches the exact name or a name ending with "." + entry', () => {
    expect(targeted(getPeftModel(new Net(), new LoraConfig({ targetModules: ['fc1'] })))).toEqual(['fc1', 'block.fc1']);
    expect(targeted(getPeftModel(new Net(), new LoraConfig({ targetModules: ['block.fc1'] })))).toEqual(['block.fc1']);
  });
  test('a string is a regex that must match the whole name', () => {
    expect(targeted(getPeftModel(new Net(), new LoraConfig({ targetModules: '.*fc1' })))).toEqual(['fc1', 'block.fc1', 'block.xfc1']);
    expect(() => getPeftModel(new Net(), new LoraConfig({ targetModules: 'fc' }))).toThrow(/not found in the base model/);
  });
  test('excludeModules (a list or a regex) wins', () => {
    expect(targeted(getPeftModel(new Net(), new LoraConfig({ targetModules: ['fc1'], excludeModules: ['block.fc1'] })))).toEqual(['fc1']);
    expect(targeted(getPeftModel(new Net(), new LoraConfig({ targetModules: '.*fc1', excludeModules: 'block\\..*' })))).toEqual(['fc1']);
    expect(() => getPeftModel(new Net(), new LoraConfig({ targetModules: ['fc1'], excludeModules: ['fc1'] }))).toThrow(/No modules were targeted for adaptation/);
    expect(() => getPeftModel(new Net(), new LoraConfig({ targetModules: '.*', excludeModules: '.*' }))).toThrow(/All modules were excluded/);
  });
  test('no match: the error lists the module names it saw', () => {
    expect(() => getPeftModel(new Net(), new LoraConfig({ targetModules: ['q_proj'] }))).toThrow(
      'Target modules ["q_proj"] not found in the base model. Please check the target modules and try again. The model\'s modules are: fc1, act, block, block.fc1, block.xfc1, fc2.',
    );
  });
  test('an unsupported module type is a clear error', () => {
    expect(() => getPeftModel(new Net(), new LoraConfig({ targetModules: ['act'] }))).toThrow(/Target module ReLU \(act\) is not supported. Currently, only the following modules are supported: Linear, Embedding, Conv1D/);
  });
  test('layersToTransform / layersPattern pick layer indices', async () => {
    const p = getPeftModel(await llama(), new LoraConfig({ targetModules: ['q_proj'], layersToTransform: [0, 2] }));
    expect(targeted(p)).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.2.self_attn.q_proj']);
    const q = getPeftModel(await llama(), new LoraConfig({ targetModules: ['q_proj', 'down_proj'], layersToTransform: 1, layersPattern: 'layers' }));
    expect(targeted(q)).toEqual(['model.layers.1.self_attn.q_proj', 'model.layers.1.mlp.down_proj']);
    expect(() => getPeftModel(new Net(), new LoraConfig({ targetModules: ['xfc1'], layersToTransform: [3], layersPattern: 'h' }))).toThrow(
      /not found.*Note: You specified 'layersToTransform': \[3\]. You also specified 'layersPattern': "h"/,
    );
  });
  test("'all-linear' takes every Linear/Conv1D but the output head, and condenses the names as PEFT", async () => {
    const cfg = new LoraConfig({ targetModules: 'all-linear' });
    const p = getPeftModel(await llama(), cfg);
    expect(cfg.targetModules).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(targeted(p)).toHaveLength(21);
    expect(targeted(p)).not.toContain('lm_head');
    const g = new LoraConfig({ targetModules: 'ALL-LINEAR' });
    const pg = getPeftModel(await gpt2(), g);
    expect([...(g.targetModules as string[])].sort()).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_fc', 'transformer.h.0.mlp.c_proj', 'transformer.h.1.attn.c_attn', 'transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_fc', 'transformer.h.1.mlp.c_proj']);
    expect(g.fanInFanOut).toBe(true);
    expect(targeted(pg)).not.toContain('lm_head');
    // Without a config (not a transformers model) nothing is excluded.
    expect(targeted(getPeftModel(new Net(), new LoraConfig({ targetModules: 'all-linear' })))).toEqual(['fc1', 'block.fc1', 'block.xfc1', 'fc2']);
  });
  test('no targetModules: the model type default (gpt2: c_attn), else an error', async () => {
    const cfg = new LoraConfig();
    const p = getPeftModel(await gpt2(), cfg);
    expect(cfg.targetModules).toEqual(['c_attn']);
    expect(targeted(p)).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
    expect(() => getPeftModel(new Net(), new LoraConfig())).toThrow(/Please specify `targetModules`/);
  });
  test('rank and alpha patterns set each module\'s rank and scaling', async () => {
    const p = getPeftModel(await llama(), new LoraConfig({ r: 4, loraAlpha: 8, useRslora: true, targetModules: ['k_proj', 'v_proj', 'gate_proj'], rankPattern: { gate_proj: 3, 'model.layers.2.self_attn.k_proj': 5 }, alphaPattern: { v_proj: 7 } }));
    const layer = (k: string) => p.getBaseModel().getSubmodule(k) as P.LoraLinear;
    expect(layer('model.layers.0.mlp.gate_proj').r.get('default')).toBe(3);
    expect(layer('model.layers.0.mlp.gate_proj').scaling.get('default')).toBe(8 / Math.sqrt(3));
    expect(layer('model.layers.2.self_attn.k_proj').r.get('default')).toBe(5);
    expect(layer('model.layers.1.self_attn.k_proj').r.get('default')).toBe(4);
    expect(layer('model.layers.1.self_attn.v_proj').scaling.get('default')).toBe(7 / 2);
  });
});

describe('what trains', () => {
  test("only the adapters by default; bias 'all' adds every bias, 'lora_only' the adapted layers' biases", () => {
    expect(trainable(getPeftModel(new Net(), new LoraConfig({ r: 2, targetModules: ['fc2'] })))).toEqual(['base_model.model.fc2.lora_A.default.weight', 'base_model.model.fc2.lora_B.default.weight']);
    expect(trainable(getPeftModel(new Net(), new LoraConfig({ r: 2, targetModules: ['fc2'], bias: 'all' })))).toEqual([
      'base_model.model.fc1.bias',
      'base_model.model.block.fc1.bias',
      'base_model.model.block.xfc1.bias',
      'base_model.model.fc2.base_layer.bias',
      'base_model.model.fc2.lora_A.default.weight',
      'base_model.model.fc2.lora_B.default.weight',
    ]);
    expect(trainable(getPeftModel(new Net(), new LoraConfig({ r: 2, targetModules: ['fc2'], bias: 'lora_only' })))).toEqual([
      'base_model.model.fc2.base_layer.bias',
      'base_model.model.fc2.lora_A.default.weight',
      'base_model.model.fc2.lora_B.default.weight',
    ]);
  });

  test('modulesToSave set to a string after construction is refused by getPeftModel (nothing gets wrapped)', () => {
    const cfg = new LoraConfig({ r: 2, targetModules: ['fc2'] });
    (cfg as unknown as { modulesToSave: unknown }).modulesToSave = 'fc1';
    const net = new Net();
    expect(() => getPeftModel(net, cfg)).toThrow(/modulesToSave must be a list of module names \(e.g. \["fc1"\]\), not a string/);
    expect(net.toString()).not.toContain('lora');
    expect(net.toString()).not.toContain('ModulesToSaveWrapper');
  });

  test('modules_to_save: a trainable copy per adapter beside the frozen original; saved under the plain name', async () => {
    const p = getPeftModel(await llama(), new LoraConfig({ r: 2, targetModules: ['q_proj', 'lm_head'], modulesToSave: ['lm_head'] }));
    expect(targeted(p)).not.toContain('lm_head');
    expect(trainable(p).filter((n) => n.includes('lm_head'))).toEqual(['base_model.model.lm_head.modules_to_save.default.weight']);
    const head = p.getBaseModel().getSubmodule('lm_head') as P.ModulesToSaveWrapper;
    expect(head.toString()).toBe(
      'ModulesToSaveWrapper(\n  (original_module): Linear(in_features=48, out_features=128, bias=False)\n  (modules_to_save): ModuleDict(\n    (default): Linear(in_features=48, out_features=128, bias=False)\n  )\n)',
    );
    const sd = P.getPeftModelStateDict(p);
    expect([...sd.keys()].filter((k) => k.includes('lm_head'))).toEqual(['base_model.model.lm_head.weight']);
    // Training the copy changes the output; the original stays.
    noGrad(() => (head.modules_to_save.get('default') as nn.Linear).weight.mul_(2));
    const ids = randint(0, 128, [1, 5]);
    const out = noGrad(() => (p.forward({ inputIds: ids }) as { logits: Tensor }).logits);
    const orig = p.disableAdapter(() => noGrad(() => (p.forward({ inputIds: ids }) as { logits: Tensor }).logits));
    expect(maxAbsDiff(out, orig)).toBeGreaterThan(0);
    const unloaded = p.unload() as CausalLM;
    expect((unloaded as unknown as { lm_head: nn.Linear }).lm_head).toBe(head.modules_to_save.get('default'));
    unloaded.dispose();
  });
});

describe('several adapters', () => {
  test('addAdapter adds an inactive, frozen adapter; setAdapter switches; deleteAdapter removes', () => {
    const p = getPeftModel(new Net(), new LoraConfig({ r: 2, targetModules: ['fc1'], initLoraWeights: false }));
    p.addAdapter('other', new LoraConfig({ r: 3, targetModules: ['fc2'], initLoraWeights: false }));
    expect(p.activeAdapters).toEqual(['default']);
    expect(trainable(p)).toEqual(['base_model.model.fc1.lora_A.default.weight', 'base_model.model.fc1.lora_B.default.weight', 'base_model.model.block.fc1.lora_A.default.weight', 'base_model.model.block.fc1.lora_B.default.weight']);
    expect(() => p.addAdapter('other', new LoraConfig({ targetModules: ['fc2'] }))).toThrow("Adapter with name 'other' already exists.");
    p.setAdapter('other');
    expect(p.activeAdapter).toBe('other');
    expect(trainable(p)).toEqual(['base_model.model.fc2.lora_A.other.weight', 'base_model.model.fc2.lora_B.other.weight']);
    expect(() => p.setAdapter('nope')).toThrow('Adapter nope not found.');
    const x = new Net().fc1.weight.narrow(0, 0, 3).detach();
    const yOther = noGrad(() => p.forward(x));
    p.setAdapter('default');
    const yDefault = noGrad(() => p.forward(x));
    expect(maxAbsDiff(yOther, yDefault)).toBeGreaterThan(0);
    p.deleteAdapter('other');
    expect([...p.peftConfig.keys()]).toEqual(['default']);
    expect(p.toString()).not.toContain('other');
    expect(() => p.deleteAdapter('other')).toThrow('Adapter other does not exist');
    // A failed addAdapter leaves nothing behind.
    expect(() => p.addAdapter('bad', new LoraConfig({ targetModules: ['zzz'] }))).toThrow(/not found/);
    expect([...p.peftConfig.keys()]).toEqual(['default']);
  });

  test('disableAdapter works with async functions too', async () => {
    const p = getPeftModel(new Net(), new LoraConfig({ r: 2, targetModules: ['fc1'], initLoraWeights: false }));
    const layer = p.getBaseModel().getSubmodule('fc1') as P.LoraLinear;
    await p.disableAdapter(async () => {
      await new Promise((r) => setTimeout(r, 1));
      expect(layer.disableAdapters).toBe(true);
    });
    expect(layer.disableAdapters).toBe(false);
    expect(() => p.disableAdapter(() => { throw new Error('boom'); })).toThrow('boom');
    expect(layer.disableAdapters).toBe(false);
  });
});

test('unload removes the LoRA layers unmerged: the base model computes what it did before', async () => {
  const base = await llama();
  const ids = randint(0, 128, [1, 6]);
  const before = noGrad(() => base.forward({ inputIds: ids }).logits);
  const p = await PeftModel.fromPretrained(base, path.join(FIX, 'llama-qv'));
  const withAdapter = noGrad(() => (p.forward({ inputIds: ids }) as { logits: Tensor }).logits);
  expect(maxAbsDiff(withAdapter, before)).toBeGreaterThan(1e-4);
  const bare = p.unload() as CausalLM;
  expect(bare).toBe(base);
  expect([...bare.modules()].some((m) => m instanceof P.LoraLayer)).toBe(false);
  expect(maxAbsDiff(noGrad(() => bare.forward({ inputIds: ids }).logits), before)).toBe(0);
  bare.dispose();
});

describe('addWeightedAdapter', () => {
  async function twoAdapters() {
    const p = await PeftModel.fromPretrained(await llama(), path.join(FIX, 'llama-multi'));
    await p.loadAdapter(path.join(FIX, 'llama-multi', 'style'), 'style');
    return p;
  }
  const layers = (p: PeftModel) => [...p.base_model.loraLayers()].map(([, l]) => l as P.LoraLinear);

  test("'cat' stacks the factors: ΔW_new = Σ wᵢ·ΔWᵢ, rank = Σ rᵢ", async () => {
    const p = await twoAdapters();
    p.addWeightedAdapter(['default', 'style'], [0.7, -1.3], 'mix', { combinationType: 'cat' });
    expect(p.peftConfig.get('mix')!.r).toBe(10);
    expect(p.peftConfig.get('mix')!.targetModules).toEqual(['v_proj', 'q_proj', 'o_proj']);
    for (const l of layers(p)) {
      const want = scope(() => {
        let acc: Tensor | undefined;
        for (const [a, w] of [['default', 0.7], ['style', -1.3]] as const)
          if (l.lora_A.has(a)) acc = acc ? acc.add(l.getDeltaWeight(a).mul(w)) : l.getDeltaWeight(a).mul(w);
        return acc!;
      });
      expect(maxAbsDiff(l.getDeltaWeight('mix'), want)).toBeLessThan(1e-6);
    }
    p.dispose();
  });

  test("'svd' takes the rank-r factors of Σ wᵢ·ΔWᵢ, ΔWᵢ = sᵢ·Bᵢ·Aᵢ (PEFT's arithmetic: the scaling counts once)", async () => {
    const p = await twoAdapters();
    p.addWeightedAdapter(['default', 'style'], [0.5, 2], 'mix');
    expect(p.peftConfig.get('mix')!.r).toBe(8);
    for (const l of layers(p)) {
      const want = scope(() => {
        let acc: Tensor | undefined;
        for (const [a, w] of [['default', 0.5], ['style', 2]] as const)
          if (l.lora_A.has(a)) {
            const d = l.getDeltaWeight(a).mul(w);
            acc = acc ? acc.add(d) : d;
          }
        return acc!;
      });
      expect(maxAbsDiff(l.getDeltaWeight('mix'), want)).toBeLessThan(1e-5);
    }
    p.dispose();
  });

  test("'linear' mixes A and B (√|w·s| each side) and needs equal ranks", async () => {
    const p = await twoAdapters();
    expect(() => p.addWeightedAdapter(['default', 'style'], [1, 1], 'mix', { combinationType: 'linear' })).toThrow(/same r value/);
    p.addAdapter('b', new LoraConfig({ r: 8, loraAlpha: 4, targetModules: ['q_proj', 'v_proj'], initLoraWeights: false }));
    p.addWeightedAdapter(['default', 'b'], [0.5, -2], 'lin', { combinationType: 'linear' });
    const l = p.getBaseModel().getSubmodule('model.layers.1.self_attn.q_proj') as P.LoraLinear;
    const wd = 0.5 * 2;
    const wb = -2 * 0.5;
    const A = scope(() => l.loraAWeight('default').mul(Math.sqrt(Math.abs(wd))).add(l.loraAWeight('b').mul(-Math.sqrt(Math.abs(wb)))));
    const B = scope(() => l.loraBWeight('default').mul(Math.sqrt(Math.abs(wd))).add(l.loraBWeight('b').mul(Math.sqrt(Math.abs(wb)))));
    expect(maxAbsDiff(l.loraAWeight('lin'), A)).toBeLessThan(1e-6);
    expect(maxAbsDiff(l.loraBWeight('lin'), B)).toBeLessThan(1e-6);
    p.dispose();
  });
});
