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
// A template that renders earlier turns differently once later ones follow (Qwen3 drops the thinking of
// earlier assistant turns) has no single render that holds every assistant turn as it was generated:
// such a conversation is rendered turn by turn, one example per assistant turn (the conversation through
// it, the loss on that turn only), each the text the template gives when that turn is generated.
// trainOnInputs (axolotl's train_on_inputs; TRL's completion_only_loss / assistant_only_loss false)
// takes the loss on every token instead.
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
  /**
   * Take the loss on every token, prompts and user turns included (axolotl's train_on_inputs).
   * Default false: the loss is on completions and assistant turns only.
   */
  trainOnInputs?: boolean;
  /** TRL's name for the opposite of trainOnInputs (default true). Give one of the two. */
  completionOnlyLoss?: boolean;
}

/** Whether the loss is on every token, from trainOnInputs or completionOnlyLoss (which must agree). */
export function trainsOnInputs(opts: Pick<TokenizeOptions, 'trainOnInputs' | 'completionOnlyLoss'>): boolean {
  const { trainOnInputs: t, completionOnlyLoss: c } = opts;
  for (const [k, v] of [['trainOnInputs', t], ['completionOnlyLoss', c]] as const)
    if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`${k}: expected true or false, got ${JSON.stringify(v)}`);
  if (t !== undefined && c !== undefined && t === c)
    throw new Error(`trainOnInputs: ${t} and completionOnlyLoss: ${c} contradict each other (one is the other's opposite); give one`);
  return t ?? (c === undefined ? false : !c);
}

/** The result, with whether some boundary fell inside a token (TRL warns on it). */
export interface TokenizedRecord extends Example {
  straddled: boolean;
  /**
   * Set when the chat template re-renders earlier turns, so the conversation was rendered turn by
   * turn: one example per assistant turn. inputIds/labels are then the last of them (the whole
   * conversation, the loss on its last assistant turn).
   */
  perTurn?: Example[];
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

type Render = (msgs: ChatMessage[], addGenerationPrompt: boolean) => string;

function renderer(tok: Tokenizer, opts: TokenizeOptions): Render {
  return (msgs, addGenerationPrompt) =>
    tok.renderChat(msgs, { addGenerationPrompt, chatTemplate: opts.chatTemplate, templateVariables: opts.templateVariables }).text;
}

/** An assistant turn's text: what the conversation through it adds to the conversation before it. */
interface Turn {
  /** The conversation up to the turn, with the generation prompt. */
  before: string;
  /** The conversation through the turn. */
  through: string;
}

function assistantTurns(render: Render, messages: ChatMessage[]): Turn[] {
  const turns: Turn[] = [];
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = i > 0 ? render(messages.slice(0, i), true) : '';
    const through = render(messages.slice(0, i + 1), false);
    if (!through.startsWith(before)) {
      let at = 0;
      while (before[at] === through[at]) at++;
      const show = (t: string) => JSON.stringify(t.slice(at, at + 24));
      throw new Error(
        `the chat template does not render the conversation up to message ${i} (the assistant turn) with the generation ` +
          `prompt as the start of the conversation through it (at character ${at}: ${show(before)} with the generation prompt, ` +
          `${show(through)} through the turn), so the assistant tokens cannot be found; mark them with ` +
          '{% generation %} ... {% endgeneration %} in the template, choose another with chatTemplate (--chat-template), ' +
          'or train on every token with trainOnInputs (--train-on-inputs)',
      );
    }
    turns.push({ before, through });
  });
  return turns;
}

/** The assistant spans in `text` (the whole render), or null when some turn's render is not a prefix of it. */
function chatSpans(turns: Turn[], text: string): [number, number][] | null {
  if (!turns.every((t) => text.startsWith(t.through))) return null;
  return turns.map((t): [number, number] => [t.before.length, t.through.length]);
}

/** ids of `text` with labels on the character spans (a span's edge inside a token: see Boundaries). */
function labelSpans(tok: Tokenizer, text: string, charSpans: [number, number][]): TokenizedRecord {
  const ids = tok.encode(text, { addSpecialTokens: false });
  const b = new Boundaries(tok, text, ids, false);
  const spans = charSpans.filter(([s, e]) => e > s).map(([s, e]): [number, number] => [b.start(s), b.end(e)]);
  return { inputIds: Int32Array.from(ids), labels: maskOutside(ids, spans), straddled: b.straddled };
}

function cut(e: Example, maxLength: number | undefined): Example {
  if (maxLength === undefined || e.inputIds.length <= maxLength) return e;
  return { inputIds: e.inputIds.slice(0, maxLength), labels: e.labels.slice(0, maxLength) };
}

/** Tokenizes one record into ids and labels. Errors say what was wrong, not where (the caller adds that). */
export function tokenizeRecord(tok: Tokenizer, record: DataRecord, opts: TokenizeOptions = {}): TokenizedRecord {
  const addEos = opts.addEos ?? true;
  const allTokens = trainsOnInputs(opts);
  const eos = tok.eosTokenId;
  const withEos = (ids: number[]): number[] => {
    if (!addEos) return ids;
    if (eos === null) throw new Error('addEos: the tokenizer has no eos_token; pass addEos: false');
    return ids[ids.length - 1] === eos ? ids : [...ids, eos];
  };
  let ids: number[];
  let labels: Int32Array;
  let straddled = false;
  let perTurn: Example[] | undefined;
  switch (record.kind) {
    case 'text': {
      ids = withEos(tok.encode(record.text));
      labels = Int32Array.from(ids);
      break;
    }
    case 'prompt_completion': {
      const text = record.prompt + record.completion;
      ids = withEos(tok.encode(text));
      if (allTokens) labels = Int32Array.from(ids);
      else {
        const b = new Boundaries(tok, text, ids, true);
        labels = maskOutside(ids, [[b.start(record.prompt.length), ids.length]]);
        straddled = b.straddled;
      }
      break;
    }
    case 'chat_prompt_completion': {
      const render = renderer(tok, opts);
      const prompt = render(record.prompt, true);
      const text = render([...record.prompt, ...record.completion], false);
      ids = tok.encode(text, { addSpecialTokens: false });
      if (allTokens) labels = Int32Array.from(ids);
      else {
        if (!text.startsWith(prompt))
          throw new Error(
            'the chat template does not render the prompt messages as a prefix of prompt + completion; ' +
              'choose another with chatTemplate (--chat-template), or train on every token with trainOnInputs (--train-on-inputs)',
          );
        const b = new Boundaries(tok, text, ids, false);
        labels = maskOutside(ids, [[b.start(prompt.length), ids.length]]);
        straddled = b.straddled;
      }
      break;
    }
    case 'messages': {
      const rendered = tok.renderChat(record.messages, {
        chatTemplate: opts.chatTemplate,
        templateVariables: opts.templateVariables,
      });
      const text = rendered.text;
      let r: TokenizedRecord;
      if (allTokens) {
        const all = tok.encode(text, { addSpecialTokens: false });
        r = { inputIds: Int32Array.from(all), labels: Int32Array.from(all), straddled: false };
      } else if (tok.chatTemplate(opts.chatTemplate).hasGenerationBlocks) {
        r = labelSpans(tok, text, rendered.generationSpans);
      } else {
        const turns = assistantTurns(renderer(tok, opts), record.messages);
        const spans = chatSpans(turns, text);
        if (spans !== null) r = labelSpans(tok, text, spans);
        else {
          // Turn by turn: each assistant turn in the render the template gives when it is generated.
          const each = turns.map((t) => labelSpans(tok, t.through, [[t.before.length, t.through.length]]));
          r = { ...each[each.length - 1], straddled: each.some((e) => e.straddled) };
          perTurn = each.map((e) => cut({ inputIds: e.inputIds, labels: e.labels }, opts.maxLength));
        }
      }
      ids = Array.from(r.inputIds);
      labels = r.labels;
      straddled = r.straddled;
      break;
    }
  }
  const out = cut({ inputIds: Int32Array.from(ids), labels }, opts.maxLength);
  return perTurn === undefined ? { ...out, straddled } : { ...out, straddled, perTurn };
}
