// Well-known chat formats for tokenizers that ship no chat template (base models), chosen by name
// with chatTemplate: 'chatml' / --chat-template chatml. Each marks what the assistant writes with
// {% generation %} blocks (as TRL's training templates do), so assistant-only labels come straight
// from one render. A tokenizer's own template of the same name wins over these.

/** ChatML (Qwen, many fine-tunes): <|im_start|>role\n ... <|im_end|>\n; no BOS. */
const CHATML =
  "{% for message in messages %}" +
  "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}" +
  "{% generation %}{{ message['content'] + '<|im_end|>\\n' }}{% endgeneration %}" +
  "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Llama 3 / 3.1 instruct: BOS, header tokens around the role, content trimmed, <|eot_id|> ends a turn. */
const LLAMA3 =
  "{{ bos_token }}{% for message in messages %}" +
  "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}" +
  "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] | trim + '<|eot_id|>' }}{% endgeneration %}" +
  "{% else %}{{ message['content'] | trim + '<|eot_id|>' }}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** Gemma: no system role (a system message is put before the first user turn), 'model' for the assistant. */
const GEMMA =
  "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] | trim + '\\n\\n' %}" +
  "{% set loop_messages = messages[1:] %}{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}" +
  "{% for message in loop_messages %}" +
  "{% if message['role'] == 'assistant' %}{{ '<start_of_turn>model\\n' }}" +
  "{% generation %}{{ message['content'] | trim + '<end_of_turn>\\n' }}{% endgeneration %}" +
  "{% else %}{{ '<start_of_turn>' + message['role'] + '\\n' + (system if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";

export interface BuiltinChatTemplate {
  source: string;
  /** The marker tokens the format uses; a tokenizer should have each as one (added) token. */
  markers: string[];
}

export const BUILTIN_CHAT_TEMPLATES: ReadonlyMap<string, BuiltinChatTemplate> = new Map([
  ['chatml', { source: CHATML, markers: ['<|im_start|>', '<|im_end|>'] }],
  ['llama3', { source: LLAMA3, markers: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'] }],
  ['gemma', { source: GEMMA, markers: ['<start_of_turn>', '<end_of_turn>'] }],
]);
