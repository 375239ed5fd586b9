// Chat templates: the Jinja text in tokenizer_config.json (or chat_template.jinja) rendered with
// @huggingface/jinja, with the variables transformers' apply_chat_template passes. Also finds the
// text spans a template's {% generation %} blocks produce (transformers' return_assistant_tokens_mask).
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** A chat template as tokenizer_config.json holds it: one string, or a list of { name, template }. */
export type ChatTemplateConfig = string | { name: string; template: string }[] | Record<string, string>;

/** The named templates of a config ('default' for a single string). */
export function chatTemplatesOf(config: ChatTemplateConfig | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (config === null || config === undefined) return out;
  if (typeof config === 'string') out.set('default', config);
  else if (Array.isArray(config)) {
    for (const entry of config) {
      if (typeof entry?.name !== 'string' || typeof entry?.template !== 'string')
        throw new TypeError('chat_template: expected a list of { "name": string, "template": string }');
      out.set(entry.name, entry.template);
    }
  } else if (typeof config === 'object') {
    for (const [name, template] of Object.entries(config)) {
      if (typeof template !== 'string') throw new TypeError(`chat_template.${name}: expected a string`);
      out.set(name, template);
    }
  } else {
    throw new TypeError(`chat_template: expected a string or a list of named templates, got ${typeof config}`);
  }
  return out;
}

// Private-use characters that mark where a {% generation %} block starts and ends in the rendered
// text; they are removed before anything else sees the text.
const GEN_START = '\uF8F0';
const GEN_END = '\uF8F1';

/**
 * Replaces {% generation %} / {% endgeneration %} with a block that prints the marker. Being block tags
 * themselves, {% if true %} ... {% endif %} keep what Jinja does to the text around the original tag:
 * {%- -%} whitespace control, and (transformers compiles with lstrip_blocks and trim_blocks) the
 * indentation before a tag that starts a line and the one newline after it.
 */
function markGenerationBlocks(source: string): string {
  return source.replace(/\{%(-?)\s*(end)?generation\s*(-?)%\}/g, (_m, l: string, end: string | undefined, r: string) => {
    const marker = end ? GEN_END : GEN_START;
    return `{%${l} if true %}{{ '${marker}' }}{% endif ${r}%}`;
  });
}

export interface RenderedChat {
  text: string;
  /** [start, end) character spans of the {% generation %} blocks; empty if the template has none. */
  generationSpans: [number, number][];
}

/** A compiled chat template. */
export class ChatTemplate {
  readonly source: string;
  /** Whether the template marks the assistant's text with {% generation %} blocks. */
  readonly hasGenerationBlocks: boolean;
  private readonly template: Template;

  constructor(source: string) {
    this.source = source;
    this.hasGenerationBlocks = /\{%-?\s*generation\s*-?%\}/.test(source);
    try {
      this.template = new Template(this.hasGenerationBlocks ? markGenerationBlocks(source) : source);
    } catch (err) {
      throw new Error(`chat template: cannot parse the Jinja source: ${(err as Error).message}`);
    }
  }

  /** Renders `messages` with `variables` (special tokens, add_generation_prompt, tools ...). */
  render(messages: ChatMessage[], variables: Record<string, unknown>): RenderedChat {
    let raw: string;
    try {
      raw = this.template.render({ ...variables, messages });
    } catch (err) {
      throw new Error(`chat template: ${(err as Error).message}`);
    }
    if (!this.hasGenerationBlocks) return { text: raw, generationSpans: [] };
    const spans: [number, number][] = [];
    let text = '';
    let open = -1;
    let last = 0;
    const marks = /[\uF8F0\uF8F1]/g;
    for (let m = marks.exec(raw); m !== null; m = marks.exec(raw)) {
      text += raw.slice(last, m.index);
      last = m.index + 1;
      if (m[0] === GEN_START) open = text.length;
      else {
        if (open >= 0) spans.push([open, text.length]);
        open = -1;
      }
    }
    text += raw.slice(last);
    return { text, generationSpans: spans };
  }
}
