// torch.nn: modules, parameters and initializers.
export { Module, addIndent } from './module';
export type { LoadStateDictResult, ToTarget } from './module';
export { Parameter } from './parameter';
export { Linear } from './linear';
export type { FactoryOptions } from './linear';
export * as init from './init';
export { Embedding } from './embedding';
export { LayerNorm, RMSNorm } from './normalization';
export { Dropout } from './dropout';
export { Identity } from './identity';
export {
  ReLU,
  GELU,
  SiLU,
  Tanh,
  Sigmoid,
  ReLU6,
  SiLUActivation,
  GELUActivation,
  NewGELUActivation,
  GELUTanh,
  FastGELUActivation,
  QuickGELUActivation,
  AccurateGELUActivation,
  ClippedGELUActivation,
  LinearActivation,
  ReLUSquaredActivation,
  getActivation,
  activationNames,
} from './activation';
export { Sequential, ModuleList, ModuleDict, ParameterDict } from './container';
export { Conv1D } from './conv1d';
export { pyFloat, pyBool, pyTuple } from './format';
