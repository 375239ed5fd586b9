// PEFT's file names, version and per-architecture defaults (peft/utils/constants.py), as data.

/** The PEFT release whose files we write (adapter_config.json's peft_version, the model card). */
export const PEFT_VERSION = '0.21.0';

export const CONFIG_NAME = 'adapter_config.json';
export const SAFETENSORS_WEIGHTS_NAME = 'adapter_model.safetensors';
export const WEIGHTS_NAME = 'adapter_model.bin';
/** Module names PEFT treats as embedding layers when deciding whether to save them. */
export const EMBEDDING_LAYER_NAMES = ['embed_tokens', 'lm_head'];
/** target_modules shorthand for every Linear/Conv1D but the output head. */
export const INCLUDE_LINEAR_LAYERS_SHORTHAND = 'all-linear';
/** From this many target modules on, PEFT condenses them into minimal suffixes. */
export const MIN_TARGET_MODULES_FOR_OPTIMIZATION = 20;

/** The modules LoRA targets when target_modules is not given, by config.json's model_type. */
export const TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING: Record<string, string[] | string> = {
  t5: ['q', 'v'],
  mt5: ['q', 'v'],
  bart: ['q_proj', 'v_proj'],
  gpt2: ['c_attn'],
  bloom: ['query_key_value'],
  'blip-2': ['q', 'v', 'q_proj', 'v_proj'],
  opt: ['q_proj', 'v_proj'],
  gptj: ['q_proj', 'v_proj'],
  gpt_neox: ['query_key_value'],
  gpt_neo: ['q_proj', 'v_proj'],
  bert: ['query', 'value'],
  roberta: ['query', 'value'],
  'xlm-roberta': ['query', 'value'],
  electra: ['query', 'value'],
  'deberta-v2': ['query_proj', 'value_proj'],
  deberta: ['in_proj'],
  layoutlm: ['query', 'value'],
  llama: ['q_proj', 'v_proj'],
  llama4: ['q_proj', 'v_proj'],
  chatglm: ['query_key_value'],
  gpt_bigcode: ['c_attn'],
  mpt: ['Wqkv'],
  RefinedWebModel: ['query_key_value'],
  RefinedWeb: ['query_key_value'],
  falcon: ['query_key_value'],
  btlm: ['c_proj', 'c_attn'],
  codegen: ['qkv_proj'],
  mistral: ['q_proj', 'v_proj'],
  mixtral: ['q_proj', 'v_proj'],
  stablelm: ['q_proj', 'v_proj'],
  phi: ['q_proj', 'v_proj', 'fc1', 'fc2'],
  gemma: ['q_proj', 'v_proj'],
  gemma2: ['q_proj', 'v_proj'],
  gemma3_text: ['q_proj', 'v_proj'],
  gemma4: '.*language_model\\..*\\.(q_proj|v_proj)',
  qwen2: ['q_proj', 'v_proj'],
  qwen3: ['q_proj', 'v_proj'],
  nemotron_h: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  rwkv: ['key', 'value', 'receptance', 'output'],
  rwkv7: ['r_proj', 'k_proj', 'v_proj', 'o_proj', 'key', 'value'],
};

/** PEFT's TaskType values; a task type picks the PeftModelFor... class name and the model card tag. */
export const TASK_TYPES = ['SEQ_CLS', 'SEQ_2_SEQ_LM', 'CAUSAL_LM', 'TOKEN_CLS', 'QUESTION_ANS', 'FEATURE_EXTRACTION'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** The class PEFT wraps a model in for each task type (its repr's first word). */
export const PEFT_MODEL_CLASS_NAMES: Record<TaskType, string> = {
  SEQ_CLS: 'PeftModelForSequenceClassification',
  SEQ_2_SEQ_LM: 'PeftModelForSeq2SeqLM',
  CAUSAL_LM: 'PeftModelForCausalLM',
  TOKEN_CLS: 'PeftModelForTokenClassification',
  QUESTION_ANS: 'PeftModelForQuestionAnswering',
  FEATURE_EXTRACTION: 'PeftModelForFeatureExtraction',
};
