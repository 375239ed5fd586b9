// torch-lora: libtorch tensors with autograd for TypeScript, and LoRA fine-tuning on top.
export { Tensor } from './tensor';
export type { Device, Scalar, TensorOrScalar, NestedArray } from './tensor';
export type { DType, TypedArray } from './dtype';
export {
  tensor,
  fromTypedArray,
  empty,
  zeros,
  ones,
  full,
  arange,
  linspace,
  eye,
  randn,
  rand,
  randint,
  randperm,
  zerosLike,
  onesLike,
  fullLike,
  randnLike,
  randLike,
} from './creation';
export type { TensorOptions } from './creation';
export { cat, stack, where, matmul, einsum, multinomial, addmm, baddbmm } from './ops';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled, manualSeed, getNumThreads, setNumThreads } from './autograd';
export { runtimeInfo, runtimeSummary } from './runtime-info';
export type { RuntimeInfo, BlasReport } from './runtime-info';
export { defaultNumThreads } from './threads';
export { scope, keep, dispose, memory } from './memory';
export type { MemoryInfo } from './memory';
export { cuda } from './cuda';
export * as F from './functional';
export * as nn from './nn';
export * as models from './models';
export { AutoModelForCausalLM, LlamaForCausalLM, GPT2LMHeadModel, KVCache, generate } from './models';
export type { CausalLM, CausalLMInput, CausalLMOutput, GenerateOptions } from './models';
export * as optim from './optim';
export { AdamW, SGD, getScheduler, clipGradNorm } from './optim';
export {
  loadSafetensors,
  loadSafetensorsSync,
  saveSafetensors,
  saveSafetensorsSync,
  readSafetensorsHeader,
} from './io/safetensors';
export type { SafetensorsHeader, SafetensorsEntry } from './io/safetensors';
export { loadTorchBin, loadTorchBinSync, saveTorchBin, saveTorchBinSync } from './io/torch-bin';
export type { TorchBinLoadOptions } from './io/torch-bin';
export * as linalg from './linalg';
export * as peft from './peft';
export { LoraConfig, PeftModel, AutoPeftModelForCausalLM, LoraModel, getPeftModel, getPeftModelStateDict, setPeftModelStateDict, createLoraplusOptimizer } from './peft';
export type { LoraConfigOptions, SavePretrainedOptions, FromPretrainedOptions } from './peft';
export * as data from './data';
export { AutoTokenizer, Tokenizer, Dataset, DataLoader, loadDataset, datasetFromRecords, packDataset, collate } from './data';
export type { Batch, BatchEncoding, ChatMessage, Example, MaybeMasked, PackingStrategy, PackOptions } from './data';
export * as train from './train';
export * as dist from './distributed';
export { Trainer, resolveTrainingArguments } from './train';
export type { TrainingArgumentsOptions, TrainOutput, TrainerOptions, TrainerPackingOptions, LogEntry, EvalPrediction, ComputeMetrics } from './train';
export { getRngState, setRngState } from './random-state';
export * as quant from './quant';
export { BitsAndBytesConfig, Linear4bit } from './quant';
export type { BitsAndBytesConfigOptions } from './quant';

import { native } from './native';
/** The libtorch version the addon was built against, e.g. '1.13.0' or '2.11.0'. */
export const torchVersion: string = native.torchVersion();
