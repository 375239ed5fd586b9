// The training loss of a causal LM from its final hidden states, without holding the [tokens, vocab]
// logits whenever the LM head allows it.
import { causalLmLoss } from '../functional';
import { Linear, Module } from '../nn';
import { scope } from '../memory';
import { Tensor } from '../tensor';
import { causalLMLoss } from './causal-lm';

export interface LmHeadLossOptions {
  /** Labels equal to this are not scored (default -100). */
  ignoreIndex?: number;
  /** Tokens per chunk of logits (default: about 128 MiB of float32 logits per chunk). */
  chunkSize?: number;
}

/**
 * transformers' causal-LM loss of lmHead(hidden) against labels [B, S]: chunk by chunk (F.causalLmLoss)
 * when the head is a plain bias-free nn.Linear; any other head (a PEFT wrapper, a bias, a soft-capped head) runs its own
 * forward and the composite loss.
 */
export function lmHeadLoss(lmHead: Module | { forward(hidden: Tensor): Tensor }, hidden: Tensor, labels: Tensor, opts: LmHeadLossOptions = {}): Tensor {
  if (lmHead.constructor === Linear && (lmHead as Linear).bias === undefined)
    return causalLmLoss(hidden, (lmHead as Linear).weight, labels, opts);
  return scope(() => causalLMLoss(lmHead.forward(hidden) as Tensor, labels, opts.ignoreIndex ?? -100));
}
