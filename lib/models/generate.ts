// Autoregressive decoding as transformers' generate(): greedy or sampled (temperature, top-k, top-p),
// stopping at end-of-sequence tokens, with a key/value cache so that each step runs only the new token.
import { noGrad } from '../autograd';
import { ones } from '../creation';
import { scope } from '../memory';
import { cat, multinomial } from '../ops';
import { Tensor } from '../tensor';
import { KVCache } from './cache';
import { generationPositionIds } from './attention-mask';
import { CausalLM } from './causal-lm';
import { checkOptions } from '../options';

/** Every option left out takes the model's generation_config.json value if it has one, else the default named. */
export interface GenerateOptions {
  /** Tokens to add (default 20). */
  maxNewTokens?: number;
  /** Sample from the distribution (true) or take the most likely token (false, default). */
  doSample?: boolean;
  /** Divides the logits before sampling (default 1). */
  temperature?: number;
  /** Sample among the k most likely tokens only (transformers' default 50; 0 turns it off). */
  topK?: number;
  /** Sample among the most likely tokens whose probabilities sum to at least p (default 1: off). */
  topP?: number;
  /** Tokens that end a sequence (default eos_token_id of generation_config.json, else of config.json; null: never stop early). */
  eosTokenId?: number | number[] | null;
  /** Appended to sequences that have ended while others go on (default the config's pad_token_id, else the first eos). */
  padTokenId?: number;
  /** [B, S] 1 for real tokens, 0 for (left) padding of the prompts. */
  attentionMask?: Tensor;
  /** Reuse keys and values of earlier positions (default true); false recomputes the whole sequence each step. */
  useCache?: boolean;
}

function asList(x: number | number[] | null | undefined): number[] {
  if (x === null || x === undefined) return [];
  return Array.isArray(x) ? x : [x];
}

/**
 * The distribution sampling draws from: transformers' logits warpers in their order (temperature, top-k,
 * top-p) and a softmax. [B, V] float logits -> [B, V] probabilities, zero outside the kept tokens.
 */
export function samplingDistribution(logits: Tensor, opts: { temperature?: number; topK?: number; topP?: number } = {}): Tensor {
  const temperature = opts.temperature ?? 1;
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  return scope(() => {
    let scores = logits;
    if (temperature !== 1) scores = scores.div(temperature);
    const vocab = scores.shape[scores.ndim - 1];
    if (topK > 0 && topK < vocab) {
      const [values] = scores.topk(topK, -1);
      const kth = values.narrow(-1, topK - 1, 1);
      scores = scores.maskedFill(scores.lt(kth), -Infinity); // ties with the k-th are kept, as transformers
    }
    if (topP < 1) {
      const [sorted, order] = scores.sort(-1, false);
      const cumulative = sorted.softmax(-1).cumsum(-1);
      const drop = cumulative.le(1 - topP);
      const last = drop.narrow(-1, vocab - 1, 1);
      last.fill_(false); // keep at least the most likely token
      const dropAt = drop.scatter(-1, order, drop);
      scores = scores.maskedFill(dropAt, -Infinity);
    }
    return scores.softmax(-1);
  });
}

function sampleNext(logits: Tensor, temperature: number, topK: number, topP: number): Tensor {
  return scope(() => multinomial(samplingDistribution(logits, { temperature, topK, topP }), 1).squeeze(1));
}

/**
 * Generates up to maxNewTokens tokens after inputIds [B, S] (int64) and returns the sequences with
 * them, [B, S + n]. Greedy unless doSample. With a cache, the prompt runs once and every later step
 * runs one token; the result equals the uncached step-by-step argmax.
 */
export function generate(model: CausalLM, inputIds: Tensor, opts: GenerateOptions = {}): Tensor {
  checkOptions(opts, { maxNewTokens: true, doSample: true, temperature: true, topK: true, topP: true, eosTokenId: true, padTokenId: true, attentionMask: true, useCache: true }, 'generate');
  // What the call leaves out comes from the model's generation_config.json, as transformers' generate().
  const g = model.generationConfig;
  const maxNewTokens = opts.maxNewTokens ?? g?.maxNewTokens ?? 20;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new RangeError(`generate: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  const shape = inputIds.shape;
  if (shape.length !== 2) throw new Error(`generate: inputIds must be [batch, seq], got [${shape.join(', ')}]`);
  const [batch, promptLength] = shape;
  const doSample = opts.doSample ?? g?.doSample ?? false;
  const temperature = opts.temperature ?? g?.temperature ?? 1;
  if (doSample && !(temperature > 0)) throw new RangeError(`generate: temperature must be positive, got ${temperature}`);
  const topK = opts.topK ?? g?.topK ?? 50;
  const topP = opts.topP ?? g?.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`generate: topP must be in (0, 1], got ${topP}`);
  const eos = asList(opts.eosTokenId === undefined ? (g?.eosTokenId ?? model.config.eosTokenId) : opts.eosTokenId);
  const padTokenId = opts.padTokenId ?? g?.padTokenId ?? model.config.padTokenId ?? eos[0] ?? 0;
  const useCache = opts.useCache ?? true;
  const device = inputIds.device;

  return noGrad(() =>
    scope(() => {
      let sequences = inputIds;
      let mask = opts.attentionMask;
      let unfinished: Tensor | undefined = eos.length ? ones([batch], { dtype: 'bool', device }) : undefined;
      const cache = useCache ? new KVCache({ capacity: promptLength + maxNewTokens }) : undefined;
      try {
        for (let step = 0; step < maxNewTokens; step++) {
          const next = scope(() => {
            // A model may need its cache rebuilt at some length (Phi-3's longrope past its original context).
            const rebuild = cache !== undefined && step > 0 && model.dropCacheBeforeStep?.(sequences.shape[1], cache.length()) === true;
            if (rebuild) cache.dispose();
            const input = cache !== undefined && step > 0 && !rebuild ? sequences.narrow(1, sequences.shape[1] - 1, 1) : sequences;
            // As transformers' generate(): with a mask, positions count real tokens (left padding).
            const positionIds = mask === undefined ? undefined : generationPositionIds(mask, input.shape[1]);
            const { logits } = model.forward({ inputIds: input, attentionMask: mask, positionIds, pastKeyValues: cache });
            const last = logits.select(1, logits.shape[1] - 1).float(); // [B, V]
            let token = doSample ? sampleNext(last, temperature, topK, topP) : last.argmax(-1);
            let stillGoing = unfinished;
            if (unfinished !== undefined) {
              token = token.where(unfinished, padTokenId);
              let hit = token.eq(eos[0]);
              for (const id of eos.slice(1)) hit = hit.logicalOr(token.eq(id));
              stillGoing = unfinished.logicalAnd(hit.logicalNot());
            }
            const grown = cat([sequences, token.unsqueeze(1)], 1);
            const grownMask = mask === undefined ? undefined : cat([mask, ones([batch, 1], { dtype: mask.dtype, device })], 1);
            return { grown, grownMask, stillGoing };
          });
          // Free the previous step's tensors (never the caller's inputs).
          if (sequences !== inputIds) sequences.dispose();
          if (mask !== undefined && mask !== opts.attentionMask) mask.dispose();
          if (unfinished !== undefined && unfinished !== next.stillGoing) unfinished.dispose();
          sequences = next.grown;
          mask = next.grownMask;
          unfinished = next.stillGoing;
          // The one host sync per step, and only when there is an end token to watch for.
          if (unfinished !== undefined) {
            const any = unfinished.any();
            const goOn = any.item() as boolean;
            any.dispose();
            if (!goOn) break;
          }
        }
      } finally {
        cache?.dispose();
      }
      return sequences === inputIds ? inputIds.clone() : sequences;
    }),
  );
}

