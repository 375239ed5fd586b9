// The fields of Llama-2-7B's config.json (meta-llama/Llama-2-7b-hf) that shape the model: the seed
// article's model, built on 'meta' by the tests that count its parameters (6,738,415,616) without
// allocating them.
export const LLAMA2_7B_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  vocab_size: 32000,
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  torch_dtype: 'float16',
};
