// What LlamaForCausalLM and GPT2LMHeadModel share: a base model (embeddings, decoder layers, final norm)
// under an LM head, and the forward, forwardLoss and segments built on it. Each architecture keeps its
// own field names (model / transformer, as its checkpoints name them) and says where its parts are.
import { scope } from '../memory';
import type { BitsAndBytesConfig } from '../quant/bnb-config';
import { Embedding, Linear, Module } from '../nn';
import { Tensor } from '../tensor';
import { KVCache } from './cache';
import { generate, GenerateOptions } from './generate';
import { GenerationConfig } from './generation-config';
import { BaseModelInput, CausalLM, CausalLMInput, CausalLMOutput, causalLMLoss, DecoderSegments } from './causal-lm';
import { CausalLMConfig } from './config';
import { lmHeadLoss, LmHeadLossOptions } from './lm-head-loss';
import { savePretrained, SavedCheckpoint, SavePretrainedOptions } from './save-pretrained';
import { getMemoryFootprint } from './memory-footprint';
import { decoderSegments } from './segments';
import { resizeTokenEmbeddings, ResizeTokenEmbeddingsOptions } from './resize-token-embeddings';

/** Where a decoder-only model's parts are; C is what its layers take besides the hidden states. */
export interface DecoderParts<C> {
  /** The base model: final hidden states [B, S, hidden]. */
  model: { forward(input: BaseModelInput): Tensor };
  embed(input: BaseModelInput): { hidden: Tensor; ctx: C };
  layers: Iterable<{ forward(hidden: Tensor, ctx: C): Tensor }>;
  finalNorm: { forward(x: Tensor): Tensor };
  /** The input embedding, which the LM head shares when config.tieWordEmbeddings. */
  embedTokens: Embedding;
}

/**
 * A base model's forward after embed(): every layer in turn, each layer's input freed as soon as it is
 * used (autograd keeps what it needs), then the final norm. Runs in the caller's scope.
 */
export function runDecoderLayers<C>(
  embedded: { hidden: Tensor; ctx: C },
  layers: Iterable<{ forward(hidden: Tensor, ctx: C): Tensor }>,
  finalNorm: { forward(x: Tensor): Tensor },
): Tensor {
  let hidden = embedded.hidden;
  for (const layer of layers) {
    const next = layer.forward(hidden, embedded.ctx);
    hidden.dispose();
    hidden = next;
  }
  return finalNorm.forward(hidden);
}

export abstract class DecoderOnlyLM<C> extends Module implements CausalLM {
  // Abstract, so that no field is defined here: a subclass's fields are its state-dict keys, in
  // checkpoint order (base model first, lm_head last).
  abstract readonly config: CausalLMConfig;
  abstract lm_head: Linear;
  /** generation_config.json's defaults for generate(), when the model was loaded from a folder with one. */
  generationConfig?: GenerationConfig;
  /** The folder fromPretrained read (transformers' name_or_path): PEFT records it as base_model_name_or_path. */
  nameOrPath?: string;
  /** The bitsandbytes quantization the model was loaded with (config.json's quantization_config). */
  quantizationConfig?: BitsAndBytesConfig;

  protected abstract decoder(): DecoderParts<C>;

  /** Gemma 2's final_logit_softcapping: logits become cap·tanh(logits / cap). None by default. */
  protected finalLogitSoftcapping(): number | undefined {
    return undefined;
  }

  /** The LM head, followed by the soft-cap where the model has one (what forward's logits are). */
  private head(): { forward(hidden: Tensor): Tensor } | Linear {
    const cap = this.finalLogitSoftcapping();
    if (cap === undefined) return this.lm_head;
    return { forward: (hidden: Tensor) => scope(() => (this.lm_head.forward(hidden) as Tensor).div(cap).tanh().mul(cap)) };
  }

  /** Makes lm_head use the input embedding's weight (tie_word_embeddings), freeing its own. */
  protected tieWeightsIfConfigured(): void {
    if (!this.config.tieWordEmbeddings) return;
    const own = this.lm_head.weight;
    this.lm_head.weight = this.decoder().embedTokens.weight;
    own.dispose();
  }

  /** The token embedding (get_input_embeddings; a PEFT wrapper once one is injected). */
  getInputEmbeddings(): Module {
    return this.decoder().embedTokens;
  }
  /** The LM head (get_output_embeddings). */
  getOutputEmbeddings(): Module {
    return this.lm_head;
  }
  /** Replaces the LM head (set_output_embeddings). */
  setOutputEmbeddings(head: Linear): void {
    this.lm_head = head;
  }

  /**
   * transformers' resize_token_embeddings: the token embedding (and an untied LM head) get `newNumTokens`
   * rows (rounded up to opts.padToMultipleOf), new rows near the old rows' mean (opts.meanResizing, the
   * default) or from N(0, initializer_range²); config.vocabSize follows. Call it on the base model, before
   * getPeftModel. Returns the input embedding.
   */
  resizeTokenEmbeddings(newNumTokens?: number | null, opts: ResizeTokenEmbeddingsOptions = {}): Module {
    return resizeTokenEmbeddings(this as unknown as Parameters<typeof resizeTokenEmbeddings>[0], newNumTokens, opts);
  }

  /** forward() (without a cache) cut into embeddings, decoder layers and head, for gradient checkpointing. */
  segments(input: CausalLMInput): DecoderSegments {
    const d = this.decoder();
    return decoderSegments(input, { embed: (x) => d.embed(x), layers: d.layers, finalNorm: d.finalNorm, lmHead: this.head() });
  }

  forward(input: CausalLMInput): CausalLMOutput {
    const pastKeyValues = input.pastKeyValues ?? (input.useCache ? new KVCache() : undefined);
    return scope(() => {
      const hidden = this.decoder().model.forward({ ...input, pastKeyValues });
      const logits = this.head().forward(hidden);
      const out: CausalLMOutput = { logits };
      if (input.labels !== undefined) out.loss = causalLMLoss(logits, input.labels);
      if (pastKeyValues !== undefined) out.pastKeyValues = pastKeyValues;
      return out;
    });
  }

  /**
   * forward(input).loss without the [tokens, vocab] logits: the LM head and the shifted cross-entropy run
   * chunk by chunk (F.causalLmLoss), in the forward and the backward. For training steps.
   */
  forwardLoss(input: CausalLMInput & { labels: Tensor }, opts: LmHeadLossOptions = {}): Tensor {
    return scope(() => lmHeadLoss(this.head(), this.decoder().model.forward(input), input.labels, opts));
  }

  /**
   * Writes the model as transformers' save_pretrained: config.json + model.safetensors, or shards with
   * model.safetensors.index.json above opts.maxShardSize (default '50GB'). transformers'
   * from_pretrained and AutoModelForCausalLM.fromPretrained load the folder.
   */
  /** Bytes of the parameters (and buffers, unless returnBuffers is false), as transformers' get_memory_footprint. */
  getMemoryFootprint(opts: { returnBuffers?: boolean } = {}): number {
    return getMemoryFootprint(this, opts);
  }

  savePretrained(dir: string, opts: SavePretrainedOptions = {}): Promise<SavedCheckpoint> {
    return savePretrained(this, dir, opts);
  }

  /** Continues inputIds [B, S] by up to opts.maxNewTokens tokens, as transformers' model.generate (see generate()). */
  generate(inputIds: Tensor, opts: GenerateOptions = {}): Tensor {
    return generate(this, inputIds, opts);
  }
}
