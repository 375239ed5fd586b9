// PEFT-compatible LoRA: configs, layers, the injector, the PeftModel and PEFT's files.
export { LoraConfig } from './config';
export type { LoraConfigOptions, LoraBias, InitLoraWeights, TaskType } from './config';
export { PeftModel, getPeftModel, formatTrainableParameters } from './peft-model';
export { AutoPeftModelForCausalLM, baseModelPathOf } from './auto-peft-model';
export type { AutoPeftModelOptions } from './auto-peft-model';
export type { SavePretrainedOptions, FromPretrainedOptions } from './peft-model';
export { LoraModel } from './tuner';
export type { AddWeightedAdapterOptions, CombinationType } from './tuner';
export { LoraLayer, LoraLinear, LoraEmbedding, DoraLinearLayer, DoraEmbeddingLayer, ModulesToSaveWrapper, TrainableTokensLayer, TrainableTokensWrapper, LoraMergedLinear, fusedLoraStats, resetFusedLoraStats } from './layers';
export type { FusedLoraStats } from './layers';
export type { AdapterSpec, MergedAdapterSpec } from './layers';
export { getPeftModelStateDict, setPeftModelStateDict, loadPeftWeights, removeAdapterNameFromKey } from './save-and-load';
export { checkTargetModuleExists, findMinimalTargetModules } from './target-modules';
export { prepareModelForKbitTraining } from './prepare-kbit';
export { createLoraplusOptimizer, loraplusParameterGroups, LORAPLUS_GROUP_NAMES, LORAPLUS_LR_EMBEDDING } from './loraplus';
export type { LoraplusOptions, LoraplusGroupName } from './loraplus';
export type { PrepareModelForKbitTrainingOptions } from './prepare-kbit';
export {
  PEFT_VERSION,
  CONFIG_NAME,
  SAFETENSORS_WEIGHTS_NAME,
  WEIGHTS_NAME,
  TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING,
} from './constants';
