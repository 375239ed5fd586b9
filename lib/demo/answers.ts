// Greedy answers of a causal LM to a list of prompts, as the demo prints them before and after
// fine-tuning: the prompts are left-padded into one batch, generated until </s>, and only the new
// tokens are decoded.
import { scope } from '../memory';
import { CausalLM, generate } from '../models';
import { Tokenizer } from '../data/tokenizer';

export interface AnswerOptions {
  /** Tokens to add at most (default 16: every answer of the demo language is shorter). */
  maxNewTokens?: number;
}

/** The text each prompt is continued with (special tokens left out), greedily, in one batch. */
export function greedyAnswers(model: CausalLM, tokenizer: Tokenizer, prompts: string[], opts: AnswerOptions = {}): string[] {
  if (prompts.length === 0) return [];
  const eos = tokenizer.eosTokenId;
  const pad = tokenizer.padTokenId ?? eos;
  if (pad === null) throw new Error('greedyAnswers: the tokenizer has neither a pad nor an eos token to pad the prompts with');
  const wasTraining = model.training;
  model.eval();
  try {
    return scope(() => {
      // The prompts go where the model's weights are (the demo runs on CUDA too).
      const device = model.parameters().next().value?.device;
      const { inputIds, attentionMask } = tokenizer.encodeBatch(prompts, { paddingSide: 'left', device });
      const out = generate(model, inputIds, {
        attentionMask,
        maxNewTokens: opts.maxNewTokens ?? 16,
        eosTokenId: eos,
        padTokenId: pad,
      });
      const width = inputIds.shape[1];
      const fresh = out.narrow(1, width, out.shape[1] - width);
      return tokenizer.batchDecode(fresh, { skipSpecialTokens: true });
    });
  } finally {
    model.train(wasTraining);
  }
}
