// What test/fixtures/make_nn_reference.py wrote with PyTorch 1.13, for the test/nn-*.test.ts files:
// nn-reference.safetensors (initialisations, forwards, gradients) and nn-reference.json (what print(module)
// shows, state-dict key orders and parameter counts).
import * as fs from 'fs';
import * as path from 'path';
import { loadReferenceFile, ReferenceTensors } from './reference';

const FIX = path.join(__dirname, '..', 'fixtures');

export interface NnReferenceInfo {
  torch: string;
  /** repr(module) by case name. */
  reprs: Record<string, string>;
  'SimpleMLP.numParameters': number;
  'SimpleMLP.stateDictKeys': string[];
  'Tree.stateDictKeys': string[];
  'Tree.namedParameters': string[];
  'Tree.namedModules': string[];
  'Tree.namedBuffers': string[];
  'Tree.numParameters': number;
  'SimpleMLP.namedChildren': string[];
  'Nested.namedChildren': string[];
  'Nested.namedModules': string[];
  'Nested.repr': string;
  'Nested.namedChildren.reassigned': string[];
  'SequentialShared.len': number;
  'SequentialShared.namedChildren': string[];
  'SequentialShared.iter': string[];
  'SequentialShared.repr': string;
}

export const NN_INFO = JSON.parse(fs.readFileSync(path.join(FIX, 'nn-reference.json'), 'utf8')) as NnReferenceInfo;

/** nn-reference.safetensors as name -> Tensor (call the returned dispose in afterAll). */
export function loadNnReference(): ReferenceTensors {
  return loadReferenceFile(path.join(FIX, 'nn-reference.safetensors'), 'make_nn_reference.py');
}
