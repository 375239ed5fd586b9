// The demo model's tokenizer, written as Hugging Face's tokenizer.json and tokenizer_config.json: a
// small word-level vocabulary over a character-level one. The text is split at spaces (each space its
// own piece); a piece that is a whole vocabulary entry (an instruction word of the demo language, or
// "->") is one token, and any other piece falls apart into its characters. In tokenizers' terms: a
// Split pre-tokenizer on " " (isolated), a BPE model with ignore_merges and no merges (a BPE without
// merges splits a piece into its characters), a template post-processor that puts <s> first, and the
// Fuse decoder, which joins tokens with nothing between them. The vocabulary is Llama's special tokens
// first, then space, newline and every printable ASCII character (so any typed ASCII prompt has
// tokens; anything else is <unk>), then the words. Single-token instructions let a small model tell
// the tasks apart from one position, which it learns far faster than from spelled-out words.
import { FINETUNE_TASK, PRETRAIN_TASKS } from './synthetic-language';

/** Llama's order: <unk> 0, <s> 1, </s> 2; then <pad>. */
export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>'] as const;
export const UNK_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
export const PAD_ID = 3;

/** The longest sequence the demo model takes (its max_position_embeddings). */
export const DEMO_MAX_LENGTH = 128;

/** The characters of the vocabulary, in id order after the special tokens. */
export function demoCharacters(): string[] {
  const chars = [' ', '\n'];
  for (let c = 33; c <= 126; c++) chars.push(String.fromCharCode(c));
  return chars;
}

/** Whole-word tokens: the arrow and the instruction words (addition is written without one). */
export function demoWords(): string[] {
  return ['->', ...PRETRAIN_TASKS.filter((t) => t !== 'add'), FINETUNE_TASK];
}

/** token -> id: special tokens, characters, words. */
export function demoVocab(): Record<string, number> {
  const vocab: Record<string, number> = {};
  [...SPECIAL_TOKENS, ...demoCharacters(), ...demoWords()].forEach((t, i) => {
    vocab[t] = i;
  });
  return vocab;
}

/**
 * A chat template that writes a conversation in the demo language: a user turn is its content and
 * ` ->`, an assistant turn a space, its content and </s>; other roles' content ends with a newline.
 * So [{user: 'reverse abc'}, {assistant: 'cba'}] renders as `<s>reverse abc -> cba</s>`, a
 * pretraining sentence, and the generation prompt needs nothing added after the user's ` ->`.
 */
export const DEMO_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] == 'user' %}{{ message['content'] + ' ->' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}" +
  "{% else %}{{ message['content'] + '\\n' }}{% endif %}{% endfor %}";

/** tokenizer.json, as the tokenizers library serializes it. */
export function demoTokenizerJson(): Record<string, unknown> {
  const added = SPECIAL_TOKENS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const bos = SPECIAL_TOKENS[BOS_ID];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'Isolated', invert: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [BOS_ID], tokens: [bos] } },
    },
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: SPECIAL_TOKENS[UNK_ID],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab: demoVocab(),
      merges: [],
    },
  };
}

/** tokenizer_config.json: the special tokens, the length limit and the chat template. */
export function demoTokenizerConfig(): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  SPECIAL_TOKENS.forEach((content, id) => {
    decoder[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  });
  return {
    added_tokens_decoder: decoder,
    bos_token: SPECIAL_TOKENS[BOS_ID],
    chat_template: DEMO_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: SPECIAL_TOKENS[EOS_ID],
    model_max_length: DEMO_MAX_LENGTH,
    pad_token: SPECIAL_TOKENS[PAD_ID],
    padding_side: 'right',
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: SPECIAL_TOKENS[UNK_ID],
  };
}

/** JSON as Hugging Face writes its files: two-space indent, a final newline. */
export function jsonFileText(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
