// The Trainer's `packing` option: its datasets packed as TRL's SFTTrainer(packing=True) packs them, by
// packDataset (lib/data/pack.ts), before the loader batches them.
import { Dataset, Example, MaybeMasked, packDataset, PackingStrategy } from '../data';
import { checkOptions } from '../options';

export interface TrainerPackingOptions {
  /** The longest row ('bfd') or the length of every block ('wrapped'); TRL's max_length. */
  seqLen: number;
  /** 'bfd' (default: whole examples, each attending to itself only) or 'wrapped'. TRL's packing_strategy. */
  strategy?: PackingStrategy;
  /** Put after each example that lacks it (default: the tokenizer's EOS, else the model config's; null: none). */
  eosTokenId?: number | null;
}

/** The (first) eos_token_id of a model's config, else null. */
export function configEosToken(model: object): number | null {
  const eos = (model as { config?: { eosTokenId?: number | number[] | null } }).config?.eosTokenId;
  const first = Array.isArray(eos) ? eos[0] : eos;
  return typeof first === 'number' ? first : null;
}

/** `ds` packed for the Trainer; a dataset that is packed already (rows with seqLengths) is refused. */
export function packForTrainer(ds: Dataset<Example | MaybeMasked>, opts: TrainerPackingOptions, defaultEos: number | null, what: string): Dataset<MaybeMasked> {
  checkOptions(opts, { seqLen: true, strategy: true, eosTokenId: true }, 'Trainer: packing');
  for (const e of ds)
    if ((e as MaybeMasked).seqLengths !== undefined || (e as MaybeMasked).attentionMask !== undefined)
      throw new Error(`Trainer: the ${what} dataset is packed already (packDataset); give it without the packing option, or give the unpacked examples`);
  const eosTokenId = opts.eosTokenId !== undefined ? opts.eosTokenId : defaultEos;
  try {
    return packDataset(ds as Dataset<Example>, { seqLen: opts.seqLen, strategy: opts.strategy, eosTokenId });
  } catch (e) {
    (e as Error).message = (e as Error).message.replace(/^packDataset:/, `Trainer: packing the ${what} dataset:`);
    throw e;
  }
}
