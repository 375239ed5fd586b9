// LoRA+ (Hayou et al. 2024, arXiv 2402.12354), PEFT's create_loraplus_optimizer: the B matrices learn
// loraplusLrRatio times faster than the A matrices, and LoRA on embedding tables at its own rate. Built
// as four parameter groups of any optimizer, in PEFT's order (empty groups kept, so that state dicts
// line up with PEFT's):
//   0 groupA           lr,                        weight decay loraplusWeightDecay: lora_A and other matrices
//   1 embedding        loraplusLrEmbedding,       weight decay loraplusWeightDecay: the parameters of LoRA Embedding layers
//   2 groupB           lr * loraplusLrRatio,      weight decay loraplusWeightDecay: lora_B and 1-d parameters
//   3 groupB_no_decay  lr * loraplusLrRatio,      no weight decay: those of them that are biases or LayerNorm weights
import { LayerNorm, Module, Parameter } from '../nn';
import { Optimizer, ParamGroupInput } from '../optim';
import { BaseHyper } from '../optim/optimizer';
import { LoraEmbedding } from './layers';

/** PEFT's names of the four groups, in the optimizer's order. */
export const LORAPLUS_GROUP_NAMES = ['groupA', 'embedding', 'groupB', 'groupB_no_decay'] as const;
export type LoraplusGroupName = (typeof LORAPLUS_GROUP_NAMES)[number];

/** PEFT's default rate of LoRA on embeddings (loraplus_lr_embedding). */
export const LORAPLUS_LR_EMBEDDING = 1e-6;

export interface LoraplusOptions {
  /** The rate of the A matrices (PEFT's lr). */
  lr: number;
  /** ηB / ηA: how many times faster B learns (PEFT's loraplus_lr_ratio; the paper suggests ≥ 1, e.g. 16). */
  loraplusLrRatio: number;
  /** The rate of LoRA on embedding layers (default 1e-6, as PEFT). */
  loraplusLrEmbedding?: number;
  /** Weight decay of every group but groupB_no_decay (default 0, as PEFT). */
  loraplusWeightDecay?: number;
}

/**
 * The trainable parameters of `model` by LoRA+ group, as PEFT sorts them: a parameter of a LoRA Embedding
 * layer (the module two names up, past the adapter dict) goes to embedding; else one named lora_B, or
 * with one dimension, to groupB, or groupB_no_decay when its name has "bias" or it is in a LayerNorm (the
 * parameters transformers' get_parameter_names(model, ALL_LAYERNORM_LAYERS) leaves out); the rest to groupA.
 */
export function loraplusParameterGroups(model: Module): Record<LoraplusGroupName, [string, Parameter][]> {
  const modules = new Map(model.namedModules());
  const inLayerNorm = new Set<Parameter>();
  for (const m of modules.values()) if (m instanceof LayerNorm) for (const p of m.parameters()) inLayerNorm.add(p);
  const groups: Record<LoraplusGroupName, [string, Parameter][]> = { groupA: [], embedding: [], groupB: [], groupB_no_decay: [] };
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const parts = name.split('.');
    const owner = parts.length > 2 ? modules.get(parts.slice(0, -2).join('.')) : undefined;
    if (owner instanceof LoraEmbedding) groups.embedding.push([name, p]);
    else if (name.includes('lora_B') || p.ndim === 1) {
      const decays = !name.includes('bias') && !inLayerNorm.has(p);
      groups[decays ? 'groupB' : 'groupB_no_decay'].push([name, p]);
    } else groups.groupA.push([name, p]);
  }
  return groups;
}

function checkRate(what: string, v: unknown, positive: boolean): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (positive && v === 0))
    throw new RangeError(`createLoraplusOptimizer: ${what} must be a ${positive ? 'positive' : 'non-negative'} finite number, got ${JSON.stringify(v)}`);
}

/**
 * PEFT's create_loraplus_optimizer: `optimizerCls` (AdamW, SGD or an Optimizer subclass taking
 * (params, options)) over the four LoRA+ groups of the model's trainable parameters; `optimizerOptions`
 * are its other settings (betas, eps ...). Throws when the model has no trainable LoRA B or embedding
 * weights, for which LoRA+ would be plain training at one rate.
 *
 *   const opt = createLoraplusOptimizer(peftModel, AdamW, { lr: 2e-4, loraplusLrRatio: 16 });
 */
export function createLoraplusOptimizer<H extends BaseHyper, O extends object>(
  model: Module,
  optimizerCls: new (params: Iterable<ParamGroupInput<H>>, options: O) => Optimizer<H>,
  opts: LoraplusOptions,
  optimizerOptions: Omit<O, 'lr'> = {} as O,
): Optimizer<H> {
  if (!(model instanceof Module)) throw new TypeError('createLoraplusOptimizer: `model` must be a Module (a PeftModel)');
  if (typeof optimizerCls !== 'function') throw new TypeError('createLoraplusOptimizer: `optimizerCls` must be an optimizer class, such as AdamW');
  if (opts === null || typeof opts !== 'object') throw new TypeError('createLoraplusOptimizer: expected options { lr, loraplusLrRatio, ... }');
  for (const k of Object.keys(opts))
    if (!['lr', 'loraplusLrRatio', 'loraplusLrEmbedding', 'loraplusWeightDecay'].includes(k))
      throw new TypeError(`createLoraplusOptimizer: unknown option '${k}' (the optimizer's own settings go in the fourth argument)`);
  const { lr, loraplusLrRatio, loraplusLrEmbedding = LORAPLUS_LR_EMBEDDING, loraplusWeightDecay = 0 } = opts;
  checkRate('lr', lr, false);
  checkRate('loraplusLrRatio', loraplusLrRatio, true);
  checkRate('loraplusLrEmbedding', loraplusLrEmbedding, false);
  checkRate('loraplusWeightDecay', loraplusWeightDecay, false);
  const g = loraplusParameterGroups(model);
  const lora = [...g.groupB, ...g.groupB_no_decay, ...g.embedding].some(([name]) => /\.lora_(B|embedding_[AB])\./.test(`${name}.`));
  if (!lora)
    throw new Error(
      `createLoraplusOptimizer: ${model.reprName()} has no trainable LoRA B or embedding weights (lora_B, lora_embedding_B), whose rate ` +
        'LoRA+ sets apart; wrap the model with getPeftModel (a LoRA adapter, trainable) first',
    );
  const params = (k: LoraplusGroupName) => g[k].map(([, p]) => p);
  // The optimizer's weightDecay (any given in optimizerOptions) is each group's default only; every group sets its own, as PEFT.
  const groups = [
    { params: params('groupA'), weightDecay: loraplusWeightDecay, lr },
    { params: params('embedding'), weightDecay: loraplusWeightDecay, lr: loraplusLrEmbedding },
    { params: params('groupB'), weightDecay: loraplusWeightDecay, lr: lr * loraplusLrRatio },
    { params: params('groupB_no_decay'), weightDecay: 0, lr: lr * loraplusLrRatio },
  ] as unknown as ParamGroupInput<H>[];
  return new optimizerCls(groups, { ...optimizerOptions, lr } as O);
}
