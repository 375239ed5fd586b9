// Hugging Face causal LMs in TypeScript: config.json, the architectures, AutoModelForCausalLM, generate().
export { AutoModelForCausalLM, numParameters } from './auto';
export type { FromConfigOptions, FromPretrainedOptions } from './auto';
export { KVCache } from './cache';
export type { KVCacheOptions } from './cache';
export { causalLMLoss } from './causal-lm';
export { lmHeadLoss } from './lm-head-loss';
export type { LmHeadLossOptions } from './lm-head-loss';
export type { CausalLM, CausalLMInput, CausalLMOutput, BaseModelInput, DecoderSegments, ModelFactoryOptions } from './causal-lm';
export {
  readConfig,
  parseLlamaConfig,
  parseGPT2Config,
  ropeParameters,
  configDType,
  configToJSON,
  llamaConfigToJSON,
  gpt2ConfigToJSON,
  configJSONString,
} from './config';
export type { HFConfig, LlamaConfig, GPT2Config, CausalLMConfig, RopeParameters, ConfigToJSONOptions } from './config';
export { savePretrained, parseShardSize, DEFAULT_MAX_SHARD_SIZE } from './save-pretrained';
export type { SavePretrainedOptions, SavedCheckpoint } from './save-pretrained';
export { generate, samplingDistribution } from './generate';
export type { GenerateOptions } from './generate';
export {
  LlamaForCausalLM,
  LlamaModel,
  LlamaDecoderLayer,
  LlamaAttention,
  LlamaMLP,
  LlamaRMSNorm,
  LlamaRotaryEmbedding,
  applyRotaryPosEmb,
  ropeInverseFrequencies,
} from './llama';
export { GPT2LMHeadModel, GPT2Model, GPT2Block, GPT2Attention, GPT2MLP } from './gpt2';
export { getMemoryFootprint } from './memory-footprint';
