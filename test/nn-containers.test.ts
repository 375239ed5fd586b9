// Containers (Sequential, ModuleList, ModuleDict, ParameterDict) and the tree text PyTorch prints:
// reprs, names and key orders from make_nn_reference.py (torch 1.13), peft's printed SimpleMLP with a
// LoRA layer (mlp-fc1/repr.txt, torch 2.11), and PyTorch 2.x's folding of repeated ModuleList entries.
import * as fs from 'fs';
import * as path from 'path';
import { memory, scope, Tensor, zeros, nn } from '../lib';
import { NN_INFO } from './helpers/nn-reference';

const FIX = path.join(__dirname, 'fixtures');
const reprs = NN_INFO.reprs;

class LlamaRMSNorm extends nn.RMSNorm {}

/** A Parameter of zeros (the temporary tensor is freed). */
function zerosParam(shape: number[], dtype: 'float32' | 'float64' = 'float32'): nn.Parameter {
  return scope(() => new nn.Parameter(zeros(shape, { dtype })));
}

class Block extends nn.Module {
  norm: LlamaRMSNorm;
  proj: nn.Conv1D;
  act = new nn.GELU({ approximate: 'tanh' });
  drop = new nn.Dropout(0.1);
  constructor(d: number) {
    super();
    this.norm = new LlamaRMSNorm(d);
    this.proj = new nn.Conv1D(3 * d, d);
  }
}

/** The generator's Tree, field for field. */
class Tree extends nn.Module {
  embed = new nn.Embedding(16, 8, { paddingIdx: 0 });
  layers = new nn.ModuleList<nn.Module>([new Block(8), new nn.Linear(8, 8, { bias: false }), new Block(4)]);
  heads = new nn.ModuleDict({ b: new nn.Linear(8, 2), a: new nn.Sequential(new nn.Linear(8, 3), new nn.SiLU()) });
  extra = new nn.ParameterDict({ default: zerosParam([4, 20]) });
  empty = new nn.ParameterDict();
  ln = new nn.LayerNorm(8);
  declare steps: Tensor;
  declare scratch: Tensor;
  constructor() {
    super();
    this.registerBuffer('steps', scope(() => zeros([3], { dtype: 'int64' })));
    this.registerBuffer('scratch', scope(() => zeros([2])), false);
  }
}

describe('a tree with every container', () => {
  test('prints, names and counts as PyTorch', () => {
    const t = new Tree();
    expect(t.toString()).toBe(reprs.Tree);
    expect(Object.keys(t.stateDict())).toEqual(NN_INFO['Tree.stateDictKeys']);
    expect([...t.namedParameters()].map(([k]) => k)).toEqual(NN_INFO['Tree.namedParameters']);
    expect([...t.namedModules()].map(([k]) => k)).toEqual(NN_INFO['Tree.namedModules']);
    expect([...t.namedBuffers()].map(([k]) => k)).toEqual(NN_INFO['Tree.namedBuffers']);
    expect([...t.parameters()].reduce((s, p) => s + p.numel(), 0)).toBe(NN_INFO['Tree.numParameters']);
    expect(t.getSubmodule('heads.a.1')).toBeInstanceOf(nn.SiLU);
    expect(t.getSubmodule('layers.2.proj')).toBe((t.layers.at(2) as Block).proj);
    t.dispose();
  });

  test("peft's printed SimpleMLP with a LoRA layer (torch 2.11, peft 0.21)", () => {
    const meta = { device: 'meta' } as const;
    class LoraLinear extends nn.Module {
      base_layer = new nn.Linear(10, 20, meta);
      lora_dropout = new nn.ModuleDict({ default: new nn.Dropout(0.1) });
      lora_A = new nn.ModuleDict({ default: new nn.Linear(10, 4, { ...meta, bias: false }) });
      lora_B = new nn.ModuleDict({ default: new nn.Linear(4, 20, { ...meta, bias: false }) });
      lora_embedding_A = new nn.ParameterDict();
      lora_embedding_B = new nn.ParameterDict();
      lora_magnitude_vector = new nn.ModuleDict();
      reprName(): string {
        return 'lora.Linear';
      }
    }
    class SimpleMLP extends nn.Module {
      fc1 = new LoraLinear();
      relu = new nn.ReLU();
      fc2 = new nn.Linear(20, 2, meta);
    }
    class LoraModel extends nn.Module {
      model = new SimpleMLP();
    }
    class PeftModel extends nn.Module {
      base_model = new LoraModel();
    }
    const expected = fs.readFileSync(path.join(FIX, 'mlp-fc1', 'repr.txt'), 'utf8');
    expect(new PeftModel().toString()).toBe(expected);
  });
});

describe('ModuleList', () => {
  test('push, length, at, set, iteration; entries are the fields 0, 1, ...', () => {
    const l = new nn.ModuleList<nn.Linear>();
    expect(l.length).toBe(0);
    expect(l.toString()).toBe('ModuleList()');
    expect(l.push(new nn.Linear(2, 3))).toBe(l);
    l.push(new nn.Linear(3, 4)).push(new nn.Linear(4, 5));
    expect(l.length).toBe(3);
    expect(l.at(-1).outFeatures).toBe(5);
    expect([...l].map((m) => m.inFeatures)).toEqual([2, 3, 4]);
    expect(() => l.at(3)).toThrow(RangeError);
    expect(() => l.at(-4)).toThrow(/index -4 is out of range for 3 modules/);
    const old = l.at(1);
    l.set(1, new nn.Linear(3, 7));
    expect(l.at(1).outFeatures).toBe(7);
    old.dispose();
    expect(Object.keys(l.stateDict())).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '2.weight', '2.bias']);
    expect((l as unknown as Record<string, unknown>)['2']).toBe(l.at(2));
    expect(() => l.forward()).toThrow(/ModuleList has no forward/);
    l.dispose();
  });

  test('prints as PyTorch without repeats', () => {
    const l = new nn.ModuleList([new nn.Linear(4, 4), new nn.ReLU(), new nn.Linear(4, 2)]);
    expect(l.toString()).toBe(reprs.ModuleListDistinct);
    l.dispose();
  });

  test("folds runs of identical entries as PyTorch 2.x's ModuleList.__repr__", () => {
    // Expected text per torch/nn/modules/container.py (ModuleList.__repr__, PyTorch >= 2.0): a run of
    // consecutive entries that print the same is one line `(start-end): n x <repr>`, indented by _addindent.
    const meta = { device: 'meta' } as const;
    class Layer extends nn.Module {
      q_proj = new nn.Linear(48, 48, { ...meta, bias: false });
      input_layernorm = new LlamaRMSNorm(48, meta);
    }
    class Model extends nn.Module {
      layers = new nn.ModuleList<nn.Module>([new Layer(), new Layer(), new Layer(), new nn.ReLU(), new nn.Dropout(0.1), new nn.Dropout(0.1)]);
    }
    const expected = [
      'Model(',
      '  (layers): ModuleList(',
      '    (0-2): 3 x Layer(',
      '      (q_proj): Linear(in_features=48, out_features=48, bias=False)',
      '      (input_layernorm): LlamaRMSNorm((48,), eps=1e-06)',
      '    )',
      '    (3): ReLU()',
      '    (4-5): 2 x Dropout(p=0.1, inplace=False)',
      '  )',
      ')',
    ].join('\n');
    expect(new Model().toString()).toBe(expected);
    // Unfolded, the same children print one by one exactly as a container that does not fold.
    const s = new nn.Sequential(new Layer(), new Layer());
    expect(s.toString()).toContain('(0): Layer(\n    (q_proj)');
    expect(s.toString()).toContain('(1): Layer(');
  });
});

describe('Sequential', () => {
  test('numbered and named forms print as PyTorch', () => {
    const s = new nn.Sequential(new nn.Linear(8, 6), new nn.GELU(), new nn.Linear(6, 2));
    expect(s.toString()).toBe(reprs.Sequential);
    expect(s.length).toBe(3);
    expect(s.at(-1)).toBe(s.at(2));
    const named = new nn.Sequential({ conv1: new nn.Linear(4, 4), act: new nn.GELU() });
    expect(named.toString()).toBe(reprs.SequentialNamed);
    expect(Object.keys(named.stateDict())).toEqual(['conv1.weight', 'conv1.bias']);
    s.dispose();
    named.dispose();
  });
});

describe('ModuleDict', () => {
  test('set/get/has/delete/keys/entries in insertion order, integer-like keys included', () => {
    const d = new nn.ModuleDict();
    expect(d.toString()).toBe(reprs.ModuleDictEmpty);
    d.set('b', new nn.ReLU()).set('1', new nn.SiLU()).set('a', new nn.Linear(2, 2));
    expect(d.keys()).toEqual(['b', '1', 'a']);
    expect(Object.keys(d.stateDict())).toEqual(['a.weight', 'a.bias']);
    expect(d.get('1')).toBeInstanceOf(nn.SiLU);
    expect(d.get('zz')).toBeUndefined();
    expect(d.get('training')).toBeUndefined();
    expect(d.has('b')).toBe(true);
    expect(d.has('keys')).toBe(false);
    expect(d.delete('b')).toBe(true);
    expect(d.delete('b')).toBe(false);
    expect(d.keys()).toEqual(['1', 'a']);
    expect(d.values().map((m) => m.reprName())).toEqual(['SiLU', 'Linear']);
    expect([...d].map(([k]) => k)).toEqual(['1', 'a']);
    // Replacing keeps the position.
    d.set('1', new nn.Tanh());
    expect(d.entries().map(([k, m]) => `${k}:${m.reprName()}`)).toEqual(['1:Tanh', 'a:Linear']);
    d.dispose();
  });

  test('keys that would shadow attributes, or hold a dot, are refused', () => {
    const d = new nn.ModuleDict();
    expect(() => d.set('training', new nn.ReLU())).toThrow(/'training' clashes with an attribute/);
    expect(() => d.set('keys', new nn.ReLU())).toThrow(/clashes/);
    expect(() => d.set('a.b', new nn.ReLU())).toThrow(/can't contain '\.'/);
    expect(() => d.set('', new nn.ReLU())).toThrow(/non-empty/);
    expect(() => d.set('x', {} as nn.Module)).toThrow(/must be a Module/);
    expect(d.training).toBe(true);
  });

  test('prints as PyTorch; adapter-style nesting', () => {
    const d = new nn.ModuleDict({ default: new nn.Dropout(0.1), b: new nn.ReLU() });
    expect(d.toString()).toBe(reprs.ModuleDict);
  });
});

describe('ParameterDict', () => {
  test('entries are parameters named by their keys; plain tensors are wrapped', () => {
    const p = new nn.ParameterDict();
    expect(p.toString()).toBe(reprs.ParameterDictEmpty);
    const t = scope(() => zeros([4, 20]));
    p.set('default', t);
    const got = p.get('default')!;
    expect(got).toBeInstanceOf(nn.Parameter);
    expect(got.requiresGrad).toBe(true);
    t.dispose(); // the Parameter shares the memory but is its own handle
    expect(got.shape).toEqual([4, 20]);
    expect(p.toString()).toBe(reprs.ParameterDictOne);
    const q = zerosParam([3], 'float64');
    p.set('b', q);
    expect(p.get('b')).toBe(q);
    expect(p.keys()).toEqual(['default', 'b']);
    expect([...p.namedParameters('lora_embedding_A')].map(([k]) => k)).toEqual(['lora_embedding_A.default', 'lora_embedding_A.b']);
    expect(p.delete('default')).toBe(true);
    expect(p.has('default')).toBe(false);
    expect(p.keys()).toEqual(['b']);
    expect(() => p.set('training', q)).toThrow(/clashes/);
    got.dispose();
    p.dispose();
  });

  test('from a plain object, sorted keys as PyTorch; prints as PyTorch', () => {
    const p = new nn.ParameterDict({ default: zerosParam([4, 20]), b: zerosParam([3], 'float64') });
    expect(p.keys()).toEqual(['b', 'default']);
    expect(p.toString()).toBe(reprs.ParameterDictTwo);
    p.dispose();
  });
});

test('building and disposing a tree leaves no tensors behind', () => {
  const before = memory().tensors;
  const t = new Tree();
  expect(memory().tensors).toBeGreaterThan(before);
  t.dispose();
  expect(memory().tensors).toBe(before);
});
