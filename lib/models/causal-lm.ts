// What every causal LM here takes and returns, and the loss transformers computes for it.
import { DType } from '../dtype';
import type { BitsAndBytesConfig } from '../quant/bnb-config';
import { crossEntropy, pad } from '../functional';
import { Module } from '../nn';
import { Device, Tensor } from '../tensor';
import { KVCache } from './cache';
import { CausalLMConfig } from './config';
import type { GenerateOptions } from './generate';
import type { GenerationConfig } from './generation-config';
import type { SavedCheckpoint, SavePretrainedOptions } from './save-pretrained';
import type { ResizeTokenEmbeddingsOptions } from './resize-token-embeddings';

/** Where and in which dtype a model's parameters are made ('meta': shapes only, no memory). */
export interface ModelFactoryOptions {
  device?: Device;
  dtype?: DType;
}

/** The inputs of a base model (LlamaModel, GPT2Model): CausalLMInput without labels. */
export interface BaseModelInput {
  inputIds: Tensor;
  attentionMask?: Tensor;
  positionIds?: Tensor;
  pastKeyValues?: KVCache;
}

/** Checks the token ids and returns [batch, seq]. */
export function checkInputIds(inputIds: Tensor): [number, number] {
  const s = inputIds.shape;
  if (s.length !== 2) throw new Error(`inputIds must be [batch, seq] token ids, got shape [${s.join(', ')}]`);
  const d = inputIds.dtype;
  if (d !== 'int64' && d !== 'int32') throw new Error(`inputIds must be int64 token ids, got ${d}`);
  return [s[0], s[1]];
}

export interface CausalLMInput {
  /** int64 [B, S] token ids. */
  inputIds: Tensor;
  /** [B, past + S], 1 for real tokens and 0 for padding: padded keys are not attended to. */
  attentionMask?: Tensor;
  /** int64 [B, S]; the loss predicts labels[:, t+1] from position t; -100 is ignored. */
  labels?: Tensor;
  /**
   * int64 [B, S] (or [1, S]); default past .. past + S - 1, as transformers' forward (the mask does not
   * shift them; generate() passes positions that count real tokens only, for left-padded prompts).
   */
  positionIds?: Tensor;
  /** A cache from an earlier forward: its positions precede inputIds. It is updated in place. */
  pastKeyValues?: KVCache;
  /** Start a new cache when none is given and return it (default false). */
  useCache?: boolean;
}

export interface CausalLMOutput {
  /** [B, S, vocab] in the model's dtype. */
  logits: Tensor;
  /** Mean cross-entropy of the shifted labels (float32 scalar), when labels were given. */
  loss?: Tensor;
  /** The cache, updated with this forward's keys and values, when one was given or useCache. */
  pastKeyValues?: KVCache;
}

/**
 * A causal LM's training forward cut where gradient checkpointing cuts it: embed() (token embeddings; it
 * also makes what the layers need, so it runs first), the decoder layers one by one (hidden -> hidden),
 * and loss() (final norm, LM head and the loss of input.labels, as forwardLoss computes it). embed ->
 * every layer -> loss computes what forwardLoss(input) computes. Tensors are made in the caller's scope.
 */
export interface DecoderSegments {
  embed(): Tensor;
  readonly layers: ((hidden: Tensor) => Tensor)[];
  loss(hidden: Tensor): Tensor;
}

/** A model generate() can drive: LlamaForCausalLM, GPT2LMHeadModel. */
export interface CausalLM extends Module {
  readonly config: CausalLMConfig;
  forward(input: CausalLMInput): CausalLMOutput;
  /** forward() in pieces (see DecoderSegments), for architectures that offer it. */
  segments?(input: CausalLMInput): DecoderSegments;
  /** generation_config.json's defaults for generate(), when the model was loaded from a folder with one. */
  generationConfig?: GenerationConfig;
  /** The folder fromPretrained read (transformers' name_or_path). */
  nameOrPath?: string;
  /**
   * generate(): whether the cache (pastLength positions) must be dropped and the whole sequence
   * (totalLength tokens) recomputed before the next step; none of the architectures but Phi-3 do.
   */
  dropCacheBeforeStep?(totalLength: number, pastLength: number): boolean;
  /** The bitsandbytes quantization the model was loaded with (config.json's quantization_config). */
  quantizationConfig?: BitsAndBytesConfig;
  /** Continues inputIds [B, S] by up to opts.maxNewTokens tokens (greedy or sampled), as transformers' generate. */
  generate(inputIds: Tensor, opts?: GenerateOptions): Tensor;
  /** Bytes of the parameters (and buffers, unless returnBuffers is false), as transformers' get_memory_footprint. */
  getMemoryFootprint(opts?: { returnBuffers?: boolean }): number;
  /** Writes a Hugging Face model folder (config.json + model.safetensors or shards), as transformers' save_pretrained. */
  savePretrained(dir: string, opts?: SavePretrainedOptions): Promise<SavedCheckpoint>;
  /** Gives the token embedding (and an untied LM head) `newNumTokens` rows, as transformers' resize_token_embeddings. */
  resizeTokenEmbeddings(newNumTokens?: number | null, opts?: ResizeTokenEmbeddingsOptions): Module;
}

/**
 * transformers' ForCausalLMLoss: the labels padded with one ignored position and shifted left, so that
 * position t is scored against token t+1; cross-entropy in float32, mean over the positions whose label
 * is not ignoreIndex. (Shifting the labels rather than the logits avoids copying the logits.)
 */
export function causalLMLoss(logits: Tensor, labels: Tensor, ignoreIndex = -100): Tensor {
  const [b, s, v] = logits.shape;
  const ls = labels.shape;
  if (ls.length !== 2 || ls[0] !== b || ls[1] !== s)
    throw new Error(`labels must be [batch, seq] = [${b}, ${s}] like the inputs, got [${ls.join(', ')}]`);
  const onDevice = labels.to({ device: logits.device, dtype: 'int64' });
  const padded = pad(onDevice, [0, 1], ignoreIndex);
  const shifted = padded.narrow(1, 1, s);
  const target = shifted.reshape(-1);
  const f = logits.float();
  const flat = f.reshape(b * s, v);
  const loss = crossEntropy(flat, target, { ignoreIndex });
  for (const t of [onDevice, padded, shifted, target, f, flat]) t.dispose();
  return loss;
}
