// Data: tokenizers (tokenizer.json + tokenizer_config.json), chat templates, datasets of text,
// prompt-completion or chat records with their labels, packing/padding and a DataLoader.
export { AutoTokenizer, Tokenizer } from './tokenizer';
export type {
  ApplyChatTemplateOptions,
  BatchEncodeOptions,
  BatchEncoding,
  DecodeOptions,
  EncodeOptions,
  PadOptions,
  PaddingSide,
  PaddingStrategy,
  TokenizerConfig,
} from './tokenizer';
export { ChatTemplate } from './chat_template';
export { BUILTIN_CHAT_TEMPLATES } from './builtin_chat_templates';
export type { ChatMessage, ChatTemplateConfig, RenderedChat } from './chat_template';
export { readRecords } from './records';
export type { DataRecord, SourcedRecord } from './records';
export { IGNORE_INDEX, tokenizeRecord, trainsOnInputs } from './labels';
export type { Example, TokenizedRecord, TokenizeOptions } from './labels';
export { Dataset, loadDataset, datasetFromRecords } from './dataset';
export type { LoadDatasetOptions, SplitOptions } from './dataset';
export { collate } from './collate';
export type { Batch, CollateOptions } from './collate';
export { countOverlong, packDataset, PACKING_STRATEGIES } from './pack';
export type { MaybeMasked, PackingStrategy, PackOptions } from './pack';
export { DataLoader } from './dataloader';
export { DistributedSampler } from './distributed-sampler';
export type { DistributedSamplerOptions } from './distributed-sampler';
export type { DataLoaderOptions } from './dataloader';
export { permutation } from './random';
