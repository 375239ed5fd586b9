// What PEFT asks of a base model, answered for our models (lib/models) and for plain Modules:
// its config (model_type, tie_word_embeddings), its name_or_path, its input and output embeddings,
// and the class PEFT records in auto_mapping.
import { Module } from '../nn';

type Loose = Record<string, unknown>;

export interface ModelConfigInfo {
  modelType?: string;
  tieWordEmbeddings: boolean;
  nameOrPath?: string;
  vocabSize?: number;
}

/** BaseTuner.get_model_config: our camelCase configs or a raw config.json object. */
export function modelConfigInfo(model: Module): ModelConfigInfo | undefined {
  const c = (model as unknown as Loose).config as Loose | undefined;
  if (c === null || typeof c !== 'object') return undefined;
  const str = (...vs: unknown[]) => vs.find((v) => typeof v === 'string') as string | undefined;
  return {
    modelType: str(c.modelType, c.model_type),
    tieWordEmbeddings: Boolean(c.tieWordEmbeddings ?? c.tie_word_embeddings ?? false),
    nameOrPath: str(c.nameOrPath, c._name_or_path, c.name_or_path),
    vocabSize: (c.vocabSize ?? c.vocab_size) as number | undefined,
  };
}

/** True for a transformers-like model (one with a config), the models PEFT treats as PreTrainedModel. */
export function isPretrainedLike(model: Module): boolean {
  return modelConfigInfo(model) !== undefined;
}

/** model.name_or_path: where it was loaded from, if it says. */
export function modelNameOrPath(model: Module): string | null {
  const m = model as unknown as Loose;
  for (const v of [m.nameOrPath, m.name_or_path, modelConfigInfo(model)?.nameOrPath]) if (typeof v === 'string' && v) return v;
  return null;
}

/** get_input_embeddings(): the model's own answer, else the first embed_tokens/wte module. */
export function inputEmbeddings(model: Module): Module | undefined {
  const fn = (model as unknown as Loose).getInputEmbeddings;
  if (typeof fn === 'function') return fn.call(model) as Module | undefined;
  for (const [name, m] of model.namedModules()) if (/(^|\.)(embed_tokens|wte|word_embeddings)$/.test(name)) return m;
  return undefined;
}

/** get_output_embeddings(): the model's own answer, else its lm_head child. */
export function outputEmbeddings(model: Module): Module | undefined {
  const fn = (model as unknown as Loose).getOutputEmbeddings;
  if (typeof fn === 'function') return fn.call(model) as Module | undefined;
  const head = (model as unknown as Loose).lm_head;
  return head instanceof Module ? head : undefined;
}

/** The transformers module each of our model classes mirrors (auto_mapping's parent_library). */
const PARENT_LIBRARIES: Record<string, string> = {
  LlamaForCausalLM: 'transformers.models.llama.modeling_llama',
  LlamaModel: 'transformers.models.llama.modeling_llama',
  GPT2LMHeadModel: 'transformers.models.gpt2.modeling_gpt2',
  GPT2Model: 'transformers.models.gpt2.modeling_gpt2',
};

/**
 * auto_mapping as PEFT writes it for models without a task type: the class name and the module it comes
 * from. A class can say with a static `parentLibrary`; classes defined by users are '__main__', as for a
 * Python script's own classes.
 */
export function autoMappingOf(model: Module): Record<string, string> {
  const cls = model.constructor as unknown as { parentLibrary?: string };
  const name = model.reprName();
  return { base_model_class: name, parent_library: cls.parentLibrary ?? PARENT_LIBRARIES[name] ?? '__main__' };
}
