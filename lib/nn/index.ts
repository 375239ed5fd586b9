// torch.nn: modules, parameters and initializers.
export { Module, addIndent } from './module';
export type { LoadStateDictResult, ToTarget } from './module';
export { Parameter } from './parameter';
export { Linear } from './linear';
export type { FactoryOptions } from './linear';
export * as init from './init';
