// The LoRA layers: what the injector puts in place of a targeted module.
export { LoraLayer } from './lora-layer';
export type { AdapterSpec } from './lora-layer';
export { LoraLinear, fusedLoraStats, resetFusedLoraStats } from './linear';
export type { FusedLoraStats } from './linear';
export { LoraEmbedding } from './embedding';
export { DoraLinearLayer, DoraEmbeddingLayer } from './dora';
export { ModulesToSaveWrapper } from './modules-to-save';
export { TrainableTokensLayer, TrainableTokensWrapper } from './trainable-tokens';
export { LoraMergedLinear } from './merged-linear';
export type { MergedAdapterSpec } from './merged-linear';
