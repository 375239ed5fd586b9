// Hugging Face causal LMs in TypeScript: config.json, the architectures, AutoModelForCausalLM, generate().
export { AutoModelForCausalLM, numParameters, supportedArchitectures } from './auto';
export type { FromConfigOptions, FromPretrainedOptions } from './auto';
export { KVCache } from './cache';
export type { KVCacheOptions } from './cache';
export { causalLMLoss } from './causal-lm';
export { lmHeadLoss } from './lm-head-loss';
export { resizeTokenEmbeddings } from './resize-token-embeddings';
export type { ResizeTokenEmbeddingsOptions } from './resize-token-embeddings';
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
  registerLlamaFamily,
  hasConfigWriter,
  configField,
  windowLayerTypes,
} from './config';
export type { HFConfig, LlamaConfig, GPT2Config, CausalLMConfig, RopeParameters, ConfigToJSONOptions, LlamaFamilySpec } from './config';
export { SUPPORTED_ROPE_TYPES, isSequenceDependent } from './rope';
export type { RopeContext } from './rope';
export { causalAttentionMask } from './attention-mask';
export type { AttentionMaskArgs } from './attention-mask';
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
  LLAMA_PARTS,
} from './llama';
export type { LlamaParts, LlamaLayerContext } from './llama';
export * from './mistral';
export * from './qwen2';
export * from './qwen3';
export { GPT2LMHeadModel, GPT2Model, GPT2Block, GPT2Attention, GPT2MLP } from './gpt2';
export {
  GemmaForCausalLM,
  GemmaModel,
  GemmaDecoderLayer,
  GemmaAttention,
  GemmaMLP,
  GemmaRMSNorm,
  GemmaRotaryEmbedding,
  GemmaTextScaledWordEmbedding,
  parseGemmaConfig,
  GEMMA_PARTS,
} from './gemma';
export type { GemmaConfig } from './gemma';
export {
  Gemma2ForCausalLM,
  Gemma2Model,
  Gemma2DecoderLayer,
  Gemma2Attention,
  Gemma2MLP,
  Gemma2RMSNorm,
  Gemma2RotaryEmbedding,
  Gemma2TextScaledWordEmbedding,
  parseGemma2Config,
  GEMMA2_PARTS,
} from './gemma2';
export type { Gemma2Config } from './gemma2';
export { Phi3ForCausalLM, Phi3Model, Phi3DecoderLayer, Phi3Attention, Phi3MLP, Phi3RMSNorm, Phi3RotaryEmbedding, parsePhi3Config, PHI3_PARTS } from './phi3';
export type { Phi3Config } from './phi3';
export {
  Gemma3ForCausalLM,
  Gemma3TextModel,
  Gemma3DecoderLayer,
  Gemma3Attention,
  Gemma3MLP,
  Gemma3RMSNorm,
  Gemma3RotaryEmbedding,
  Gemma3TextScaledWordEmbedding,
  parseGemma3TextConfig,
  GEMMA3_TEXT_PARTS,
} from './gemma3';
export type { Gemma3TextConfig } from './gemma3';
export { getMemoryFootprint } from './memory-footprint';
