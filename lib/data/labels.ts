// One record -> token ids and labels, as TRL's SFTTrainer builds them. Labels are the input ids where
// the loss is taken and -100 elsewhere (unshifted: the model shifts them, as transformers' do):
//   {"text"}                  loss everywhere; EOS appended
//   {"prompt","completion"}   loss on the completion (and the appended EOS) only
//   {"messages"}              loss on what the assistant writes only
// Chat spans come from the template's {% generation %} blocks when it has them (transformers'
// return_assistant_tokens_mask), else from rendering the conversation incrementally: an assistant turn
// is the text between the conversation up to it with the generation prompt, and the conversation
// through it. A text span becomes tokens by tokenizing the text before each boundary: where that is a
// prefix of the whole text's tokens the boundary is exact; where a token straddles the boundary (the
// tokenizer merged across it) the token counts as the assistant's / completion's, as transformers'
// char_to_token masks and TRL's prompt-length masks do.
import { ChatMessage } from './chat_template';
import { DataRecord } from './records';
import { Tokenizer } from './tokenizer';

export const IGNORE_INDEX = -100;

/** A tokenized training example: ids and labels of the same length. */
export interface Example {
  inputIds: Int32Array;
  labels: Int32Array;
}

export interface TokenizeOptions {
  /** Append EOS to text and prompt-completion records (TRL does). Default true. */
  addEos?: boolean;
  /** Cut longer examples to this many tokens (from the end). Default: no cut. */
  maxLength?: number;
  /** Template name or source for chat records (default: the tokenizer's). */
  chatTemplate?: string;
  /** Extra template variables for chat records (e.g. enable_thinking). */
  templateVariables?: Record<string, unknown>;
}

/** The result, with whether some boundary fell inside a token (TRL warns on it). */
export interface TokenizedRecord extends Example {
  straddled: boolean;
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let i = 0;
  const n = Math.min(a.length, b.length);
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Maps character boundaries of `text` to token boundaries of `ids` = encode(text). */
class Boundaries {
  straddled = false;
  constructor(
    private readonly tok: Tokenizer,
    private readonly text: string,
    private readonly ids: number[],
    private readonly addSpecialTokens: boolean,
  ) {}

  /** Token index where the span starting at character `pos` starts. */
  start(pos: number): number {
    return this.at(pos, 0);
  }
  /** Token index (exclusive) where the span ending at character `pos` ends. */
  end(pos: number): number {
    return this.at(pos, 1);
  }
  private at(pos: number, straddleExtra: number): number {
    if (pos >= this.text.length) return this.ids.length;
    // The head's tokens with what addSpecialTokens puts before them (a BOS), not after (an EOS).
    const head = [
      ...(this.addSpecialTokens ? this.tok.specialPrefixIds : []),
      ...this.tok.encode(this.text.slice(0, pos), { addSpecialTokens: false }),
    ];
    const lcp = commonPrefix(head, this.ids);
    if (lcp >= head.length) return head.length;
    this.straddled = true;
    return Math.min(lcp + straddleExtra, this.ids.length);
  }
}

function maskOutside(ids: number[], spans: [number, number][]): Int32Array {
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  for (const [s, e] of spans) for (let i = s; i < e; i++) labels[i] = ids[i];
  return labels;
}

function chatSpans(tok: Tokenizer, messages: ChatMessage[], opts: TokenizeOptions, text: string): [number, number][] {
  const render = (msgs: ChatMessage[], addGenerationPrompt: boolean): string =>
    tok.renderChat(msgs, { addGenerationPrompt, chatTemplate: opts.chatTemplate, templateVariables: opts.templateVariables }).text;
  const spans: [number, number][] = [];
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    let before = '';
    if (i > 0) before = render(messages.slice(0, i), true);
    const through = render(messages.slice(0, i + 1), false);
    if (!text.startsWith(before) || !text.startsWith(through) || !through.startsWith(before))
      throw new Error(
        `the chat template does not render the conversation's beginning as a prefix of the whole (at message ${i}, ` +
          'the assistant turn), so the assistant tokens cannot be found by rendering incrementally; ' +
          'mark them with {% generation %} ... {% endgeneration %} in the template, or use prompt/completion records',
      );
    spans.push([before.length, through.length]);
  });
  return spans;
}

/** Tokenizes one record into ids and labels. Errors say what was wrong, not where (the caller adds that). */
export function tokenizeRecord(tok: Tokenizer, record: DataRecord, opts: TokenizeOptions = {}): TokenizedRecord {
  const addEos = opts.addEos ?? true;
  const eos = tok.eosTokenId;
  const withEos = (ids: number[]): number[] => {
    if (!addEos) return ids;
    if (eos === null) throw new Error('addEos: the tokenizer has no eos_token; pass addEos: false');
    return ids[ids.length - 1] === eos ? ids : [...ids, eos];
  };
  let ids: number[];
  let labels: Int32Array;
  let straddled = false;
  switch (record.kind) {
    case 'text': {
      ids = withEos(tok.encode(record.text));
      labels = Int32Array.from(ids);
      break;
    }
    case 'prompt_completion': {
      const text = record.prompt + record.completion;
      ids = withEos(tok.encode(text));
      const b = new Boundaries(tok, text, ids, true);
      labels = maskOutside(ids, [[b.start(record.prompt.length), ids.length]]);
      straddled = b.straddled;
      break;
    }
    case 'chat_prompt_completion': {
      const render = (msgs: ChatMessage[], addGenerationPrompt: boolean): string =>
        tok.renderChat(msgs, { addGenerationPrompt, chatTemplate: opts.chatTemplate, templateVariables: opts.templateVariables }).text;
      const prompt = render(record.prompt, true);
      const text = render([...record.prompt, ...record.completion], false);
      ids = tok.encode(text, { addSpecialTokens: false });
      if (!text.startsWith(prompt))
        throw new Error('the chat template does not render the prompt messages as a prefix of prompt + completion');
      const b = new Boundaries(tok, text, ids, false);
      labels = maskOutside(ids, [[b.start(prompt.length), ids.length]]);
      straddled = b.straddled;
      break;
    }
    case 'messages': {
      const rendered = tok.renderChat(record.messages, {
        chatTemplate: opts.chatTemplate,
        templateVariables: opts.templateVariables,
      });
      const text = rendered.text;
      ids = tok.encode(text, { addSpecialTokens: false });
      const charSpans = tok.chatTemplate(opts.chatTemplate).hasGenerationBlocks
        ? rendered.generationSpans
        : chatSpans(tok, record.messages, opts, text);
      const b = new Boundaries(tok, text, ids, false);
      const spans = charSpans.filter(([s, e]) => e > s).map(([s, e]): [number, number] => [b.start(s), b.end(e)]);
      labels = maskOutside(ids, spans);
      straddled = b.straddled;
      break;
    }
  }
  let inputIds = Int32Array.from(ids);
  if (opts.maxLength !== undefined && inputIds.length > opts.maxLength) {
    inputIds = inputIds.slice(0, opts.maxLength);
    labels = labels.slice(0, opts.maxLength);
  }
  return { inputIds, labels, straddled };
}
