// Tokenizers from a Hugging Face folder: tokenizer.json run by @huggingface/tokenizers (a maintained
// pure-JS implementation of the tokenizers library), tokenizer_config.json for the special tokens,
// padding/truncation defaults and the chat template, as transformers' AutoTokenizer reads them.
// Batches come back as int64 tensors, as transformers' return_tensors='pt'.
import * as fs from 'fs';
import * as path from 'path';
import { SequencePreTokenizer, Tokenizer as HfTokenizer, WhitespacePreTokenizer } from '@huggingface/tokenizers';
import { tensor } from '../creation';
import { requireLocalFolder } from '../io/local-folder';
import { Device, Tensor } from '../tensor';
import { BUILTIN_CHAT_TEMPLATES } from './builtin_chat_templates';
import { ChatMessage, ChatTemplate, chatTemplatesOf, ChatTemplateConfig, RenderedChat } from './chat_template';

export type PaddingSide = 'left' | 'right';
/** true is 'longest', as in transformers. */
export type PaddingStrategy = boolean | 'longest' | 'max_length' | 'do_not_pad';

export interface EncodeOptions {
  /** Add what the tokenizer adds around a text (BOS for Llama). Default true. */
  addSpecialTokens?: boolean;
  /** Cut to maxLength (the special tokens included). Default false. */
  truncation?: boolean;
  /** Defaults to the tokenizer's modelMaxLength where a length is needed. */
  maxLength?: number;
  truncationSide?: PaddingSide;
}

export interface BatchEncodeOptions extends EncodeOptions {
  /** 'longest' (or true) pads to the longest text, 'max_length' to maxLength. Default 'longest'. */
  padding?: PaddingStrategy;
  paddingSide?: PaddingSide;
  padToMultipleOf?: number;
  device?: Device;
}

export interface PadOptions {
  padding?: PaddingStrategy;
  maxLength?: number;
  paddingSide?: PaddingSide;
  padToMultipleOf?: number;
  device?: Device;
}

/** inputIds and attentionMask, both int64 [batch, length]. The caller disposes them. */
export interface BatchEncoding {
  inputIds: Tensor;
  attentionMask: Tensor;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** Default: tokenizer_config.json's clean_up_tokenization_spaces, else false (transformers 5). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface ApplyChatTemplateOptions {
  /** End with the header that starts an assistant turn. Default false. */
  addGenerationPrompt?: boolean;
  /** Return token ids (tokenized without adding special tokens: the template has them). Default false. */
  tokenize?: boolean;
  /** A template name from tokenizer_config.json's list, or a Jinja template itself. */
  chatTemplate?: string;
  tools?: unknown[];
  documents?: unknown[];
  /** More variables for the template (e.g. enable_thinking). */
  templateVariables?: Record<string, unknown>;
}

/** tokenizer_config.json, as far as it is read here. */
export interface TokenizerConfig {
  bos_token?: SpecialTokenValue;
  eos_token?: SpecialTokenValue;
  pad_token?: SpecialTokenValue;
  unk_token?: SpecialTokenValue;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  chat_template?: ChatTemplateConfig;
  model_max_length?: number;
  padding_side?: PaddingSide;
  truncation_side?: PaddingSide;
  clean_up_tokenization_spaces?: boolean;
  additional_special_tokens?: SpecialTokenValue[];
  [key: string]: unknown;
}
/** A special token as tokenizer_config.json writes it: a string or an AddedToken object. */
type SpecialTokenValue = string | { content: string; [key: string]: unknown } | null;

// transformers' VERY_LARGE_INTEGER (1e30) and anything near it mean "no limit".
const NO_LIMIT = 1e29;

function tokenString(v: unknown, key: string, file: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  throw new TypeError(`${file}: ${key} must be a string or an object with "content", got ${JSON.stringify(v)}`);
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
}

// The Rust library's Whitespace pre-tokenizer splits on Unicode \w (letters, marks, digits, connector
// punctuation); @huggingface/tokenizers 0.2 uses JavaScript's ASCII \w, which cuts 'café' into 'caf',
// 'é'. Same words as Rust: the Unicode classes.
const UNICODE_WORDS = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\s]+/gu;
function fixWhitespacePreTokenizer(pt: unknown): void {
  if (pt instanceof WhitespacePreTokenizer) pt.pre_tokenize_text = (text: string) => text.match(UNICODE_WORDS) ?? [];
  else if (pt instanceof SequencePreTokenizer)
    for (const p of (pt as unknown as { tokenizers: unknown[] }).tokenizers) fixWhitespacePreTokenizer(p);
}

function int64Tensor(rows: ArrayLike<number>[], length: number, device?: Device): Tensor {
  const flat = new BigInt64Array(rows.length * length);
  rows.forEach((r, i) => {
    for (let j = 0; j < length; j++) flat[i * length + j] = BigInt(r[j]);
  });
  return tensor(flat, { shape: [rows.length, length], device });
}

export class Tokenizer {
  /** Where it was loaded from ('' when built from objects). */
  readonly nameOrPath: string;
  readonly config: TokenizerConfig;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly unkToken: string | null;
  /** Settable, e.g. `tok.padToken = tok.eosToken` for a model that has none, as in transformers. */
  padToken: string | null;
  paddingSide: PaddingSide;
  truncationSide: PaddingSide;
  /** The longest input the model takes; Infinity when the config sets none. */
  modelMaxLength: number;
  /** The vocabulary of the model (transformers' vocab_size: added tokens not counted). */
  readonly vocabSize: number;
  /** Every token id, added tokens included (transformers' len(tokenizer)). */
  readonly length: number;
  /** Named chat templates ('default' for a single one). */
  readonly chatTemplates: Map<string, string>;

  private readonly hf: HfTokenizer;
  private readonly specialIds: Set<number>;
  /** Ids added before and after a text when addSpecialTokens (see specialTokenFrame). */
  private readonly prefix: number[];
  private readonly suffix: number[];
  private readonly compiled = new Map<string, ChatTemplate>();

  constructor(tokenizerJson: Record<string, unknown>, config: TokenizerConfig = {}, nameOrPath = '') {
    this.nameOrPath = nameOrPath;
    this.config = config;
    const where = nameOrPath ? path.join(nameOrPath, 'tokenizer_config.json') : 'tokenizer_config.json';
    this.bosToken = tokenString(config.bos_token, 'bos_token', where);
    this.eosToken = tokenString(config.eos_token, 'eos_token', where);
    this.unkToken = tokenString(config.unk_token, 'unk_token', where);
    this.padToken = tokenString(config.pad_token, 'pad_token', where);
    const side = (v: unknown, key: string): PaddingSide => {
      if (v === undefined || v === null) return 'right';
      if (v !== 'left' && v !== 'right') throw new TypeError(`${where}: ${key} must be "left" or "right", got ${JSON.stringify(v)}`);
      return v;
    };
    this.paddingSide = side(config.padding_side, 'padding_side');
    this.truncationSide = side(config.truncation_side, 'truncation_side');
    const mml = config.model_max_length;
    this.modelMaxLength = typeof mml === 'number' && mml < NO_LIMIT ? mml : Infinity;
    this.chatTemplates = chatTemplatesOf(config.chat_template);

    const model = tokenizerJson.model as { vocab?: unknown } | undefined;
    if (model === undefined || typeof model !== 'object')
      throw new Error(`${nameOrPath ? path.join(nameOrPath, 'tokenizer.json') : 'tokenizer.json'}: no "model" section`);
    // The library wants every section present (null when unused), as the Rust library writes them.
    tokenizerJson = { ...tokenizerJson };
    for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) if (!(k in tokenizerJson)) tokenizerJson[k] = null;
    if (!Array.isArray(tokenizerJson.added_tokens)) tokenizerJson.added_tokens = [];
    // The library reads the special tokens it skips in decode from the config; give it string forms.
    const libConfig: Record<string, unknown> = { ...config };
    Object.assign(libConfig, {
      bos_token: this.bosToken ?? undefined,
      eos_token: this.eosToken ?? undefined,
      unk_token: this.unkToken ?? undefined,
      pad_token: this.padToken ?? undefined,
    });
    if (Array.isArray(config.additional_special_tokens))
      libConfig.additional_special_tokens = config.additional_special_tokens.map((t, i) =>
        tokenString(t, `additional_special_tokens[${i}]`, where),
      );
    delete libConfig.chat_template;
    // The library runs WordLevel models through its Legacy model, which maps unknown words to the
    // config's unk_token; the Rust library uses the model's own.
    const modelUnk = (model as { type?: unknown; unk_token?: unknown }).unk_token;
    if ((model as { type?: unknown }).type === 'WordLevel' && typeof modelUnk === 'string') libConfig.unk_token = modelUnk;
    this.hf = new HfTokenizer(tokenizerJson, libConfig);
    fixWhitespacePreTokenizer(this.hf.pre_tokenizer);

    const vocab = model.vocab;
    const modelIds = new Set<number>(
      Array.isArray(vocab) ? vocab.map((_, i) => i) : Object.values((vocab ?? {}) as Record<string, number>),
    );
    this.vocabSize = modelIds.size;
    const added = tokenizerJson.added_tokens as { id: number; special?: boolean; content: string }[];
    for (const t of added) modelIds.add(t.id);
    this.length = modelIds.size;
    this.specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));
    for (const t of [this.bosToken, this.eosToken, this.unkToken, this.padToken]) {
      const id = t === null ? undefined : this.hf.token_to_id(t);
      if (id !== undefined) this.specialIds.add(id);
    }
    [this.prefix, this.suffix] = this.specialTokenFrame();
  }

  /**
   * What addSpecialTokens puts around a text. When tokenizer_config.json says add_bos_token /
   * add_eos_token, those decide (BOS before, EOS after, as transformers 4's Llama and Gemma tokenizers
   * rebuild their post-processor from them; this is how a config asks for an EOS on every text).
   * Otherwise it is tokenizer.json's post-processor, read off once by encoding a probe text with and
   * without it (every single-text template is prefix + text + suffix).
   */
  private specialTokenFrame(): [number[], number[]] {
    if (this.config.add_bos_token !== undefined || this.config.add_eos_token !== undefined) {
      const pre: number[] = [];
      const post: number[] = [];
      if (this.config.add_bos_token && this.bosTokenId !== null) pre.push(this.bosTokenId);
      if (this.config.add_eos_token && this.eosTokenId !== null) post.push(this.eosTokenId);
      return [pre, post];
    }
    let probe = '';
    let raw: number[] = [];
    for (probe of ['a b', 'hello', '0', '.']) {
      raw = this.hf.encode(probe, { add_special_tokens: false }).ids;
      if (raw.length > 0) break;
    }
    const withSpecial = this.hf.encode(probe, { add_special_tokens: true }).ids;
    for (let k = 0; k + raw.length <= withSpecial.length; k++) {
      if (raw.every((id, j) => withSpecial[k + j] === id))
        return [withSpecial.slice(0, k), withSpecial.slice(k + raw.length)];
    }
    throw new Error(
      `tokenizer${this.nameOrPath ? ` in ${this.nameOrPath}` : ''}: the post-processor does not put the text between ` +
        `a fixed prefix and suffix (probe ${JSON.stringify(raw)} -> ${JSON.stringify(withSpecial)}); not supported`,
    );
  }

  // ---- special tokens ----
  private idOf(token: string | null): number | null {
    if (token === null) return null;
    return this.hf.token_to_id(token) ?? null;
  }
  get bosTokenId(): number | null {
    return this.idOf(this.bosToken);
  }
  get eosTokenId(): number | null {
    return this.idOf(this.eosToken);
  }
  get padTokenId(): number | null {
    return this.idOf(this.padToken);
  }
  get unkTokenId(): number | null {
    return this.idOf(this.unkToken);
  }
  /** Whether addSpecialTokens adds a BOS / an EOS (after the config's add_bos_token / add_eos_token). */
  get addsBosToken(): boolean {
    return this.bosTokenId !== null && this.prefix.includes(this.bosTokenId);
  }
  get addsEosToken(): boolean {
    return this.eosTokenId !== null && this.suffix.includes(this.eosTokenId);
  }
  /** The ids addSpecialTokens puts before a text (e.g. [BOS]). */
  get specialPrefixIds(): number[] {
    return this.prefix.slice();
  }
  /** The ids addSpecialTokens puts after a text (e.g. [EOS] with add_eos_token). */
  get specialSuffixIds(): number[] {
    return this.suffix.slice();
  }
  /** The ids decode(skipSpecialTokens) drops: special added tokens and the named special tokens. */
  get allSpecialIds(): number[] {
    return [...this.specialIds].sort((a, b) => a - b);
  }
  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  // ---- encoding ----
  /** The token strings of a text (no special tokens added). */
  tokenize(text: string): string[] {
    return this.hf.tokenize(text);
  }

  /** Token ids of one text. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode: expected a string, got ${typeof text}`);
    const addSpecial = opts.addSpecialTokens ?? true;
    let ids = this.hf.encode(text, { add_special_tokens: false }).ids;
    if (opts.truncation) {
      const maxLength = this.resolveMaxLength(opts.maxLength, 'truncation');
      const room = maxLength - (addSpecial ? this.prefix.length + this.suffix.length : 0);
      if (room < 0)
        throw new RangeError(
          `encode: maxLength ${maxLength} leaves no room for the ${this.prefix.length + this.suffix.length} special tokens`,
        );
      if (ids.length > room) {
        const side = opts.truncationSide ?? this.truncationSide;
        ids = side === 'right' ? ids.slice(0, room) : ids.slice(ids.length - room);
      }
    }
    return addSpecial ? [...this.prefix, ...ids, ...this.suffix] : ids;
  }

  /** Token ids of many texts, padded into int64 tensors with an attention mask (1 = a real token). */
  encodeBatch(texts: string[], opts: BatchEncodeOptions = {}): BatchEncoding {
    if (!Array.isArray(texts)) throw new TypeError('encodeBatch: expected an array of strings');
    const seqs = texts.map((t) => this.encode(t, opts));
    return this.pad(seqs, { ...opts, padding: opts.padding ?? 'longest' });
  }

  /**
   * Pads token id lists into int64 tensors (transformers' tokenizer.pad). Needs a pad token unless
   * nothing is to pad.
   */
  pad(seqs: number[][], opts: PadOptions = {}): BatchEncoding {
    const strategy = opts.padding === true || opts.padding === undefined ? 'longest' : opts.padding;
    const longest = seqs.reduce((m, s) => Math.max(m, s.length), 0);
    let length = longest;
    if (strategy === 'max_length') length = this.resolveMaxLength(opts.maxLength, "padding 'max_length'");
    else if (strategy === false || strategy === 'do_not_pad') {
      if (seqs.some((s) => s.length !== longest))
        throw new Error('pad: the sequences differ in length and padding is off; a tensor needs one length');
    }
    if (opts.padToMultipleOf && length % opts.padToMultipleOf !== 0)
      length += opts.padToMultipleOf - (length % opts.padToMultipleOf);
    const tooLong = seqs.findIndex((s) => s.length > length);
    if (tooLong >= 0)
      throw new Error(`pad: sequence ${tooLong} has ${seqs[tooLong].length} tokens, more than maxLength ${length}; pass truncation: true`);
    const needsPad = seqs.some((s) => s.length < length);
    const padId = this.padTokenId;
    if (needsPad && padId === null)
      throw new Error(
        'pad: the tokenizer has no pad token. Set one, e.g. tokenizer.padToken = tokenizer.eosToken, or pad to one length',
      );
    const side = opts.paddingSide ?? this.paddingSide;
    const ids: number[][] = [];
    const mask: number[][] = [];
    for (const s of seqs) {
      const n = length - s.length;
      const fill = new Array<number>(n).fill(padId ?? 0);
      const zeros = new Array<number>(n).fill(0);
      const ones = new Array<number>(s.length).fill(1);
      ids.push(side === 'right' ? [...s, ...fill] : [...fill, ...s]);
      mask.push(side === 'right' ? [...ones, ...zeros] : [...zeros, ...ones]);
    }
    const inputIds = int64Tensor(ids, length, opts.device);
    try {
      return { inputIds, attentionMask: int64Tensor(mask, length, opts.device) };
    } catch (err) {
      inputIds.dispose();
      throw err;
    }
  }

  private resolveMaxLength(maxLength: number | undefined, what: string): number {
    const m = maxLength ?? this.modelMaxLength;
    if (!Number.isFinite(m))
      throw new Error(`${what} needs maxLength: the tokenizer config sets no model_max_length`);
    if (!Number.isInteger(m) || m < 0) throw new RangeError(`maxLength must be a non-negative integer, got ${m}`);
    return m;
  }

  // ---- decoding ----
  decode(ids: ArrayLike<number | bigint> | Tensor, opts: DecodeOptions = {}): string {
    let list: number[];
    if (ids instanceof Tensor) {
      if (ids.ndim !== 1) throw new Error(`decode: expected a 1-d tensor of ids, got shape [${ids.shape.join(', ')}]`);
      list = Array.from(ids.data() as ArrayLike<number | bigint>, Number);
    } else list = Array.from(ids, Number);
    if (opts.skipSpecialTokens) list = list.filter((id) => !this.specialIds.has(id));
    if (list.length === 0) return '';
    const bad = list.find((id) => !Number.isInteger(id) || id < 0 || this.hf.id_to_token(id) === undefined);
    if (bad !== undefined) throw new RangeError(`decode: ${bad} is not a token id of this tokenizer (0..${this.length - 1})`);
    return this.hf.decode(list, {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: opts.cleanUpTokenizationSpaces ?? this.config.clean_up_tokenization_spaces ?? false,
    });
  }

  batchDecode(rows: (ArrayLike<number | bigint>)[] | Tensor, opts: DecodeOptions = {}): string[] {
    if (rows instanceof Tensor) {
      if (rows.ndim !== 2) throw new Error(`batchDecode: expected a 2-d tensor, got shape [${rows.shape.join(', ')}]`);
      const [n, l] = rows.shape;
      const flat = Array.from(rows.data() as ArrayLike<number | bigint>, Number);
      return Array.from({ length: n }, (_, i) => this.decode(flat.slice(i * l, (i + 1) * l), opts));
    }
    return rows.map((r) => this.decode(r, opts));
  }

  // ---- chat ----
  /**
   * The chat template `name`: one of the tokenizer's named templates, a Jinja source itself, a
   * built-in format ('chatml', 'llama3', 'gemma') or a path to a .jinja file. Without a name, the
   * tokenizer's default one.
   */
  chatTemplate(name?: string): ChatTemplate {
    const where = this.nameOrPath ? ` in ${this.nameOrPath}` : '';
    const own = [...this.chatTemplates.keys()].map((k) => JSON.stringify(k)).join(', ');
    const builtins = [...BUILTIN_CHAT_TEMPLATES.keys()].map((k) => `'${k}'`).join(', ');
    let source: string | undefined;
    if (name !== undefined) {
      if (typeof name !== 'string' || name === '') throw new TypeError(`chatTemplate: expected a template name, a Jinja source or a .jinja file, got ${JSON.stringify(name)}`);
      source = this.chatTemplates.get(name) ?? (/\{[{%]/.test(name) ? name : BUILTIN_CHAT_TEMPLATES.get(name)?.source);
      if (source === undefined && (/\.(jinja2?|j2)$/i.test(name) || /[\\/]/.test(name) || fs.existsSync(name))) source = readTemplateFile(name);
      if (source === undefined)
        throw new Error(
          `no chat template named ${JSON.stringify(name)}${where}: ` +
            (own ? `it has ${own}; ` : 'it has none of its own; ') +
            `the built-in ones are ${builtins}, or give a .jinja file`,
        );
    } else {
      const only = this.chatTemplates.size === 1 ? [...this.chatTemplates.values()][0] : undefined;
      source = this.chatTemplates.get('default') ?? only;
      if (source === undefined) {
        if (this.chatTemplates.size === 0)
          throw new Error(
            `this tokenizer${where} has no chat template: tokenizer_config.json has no "chat_template" and there is no ` +
              `chat_template.jinja. Choose one with { chatTemplate } (--chat-template): a built-in format (${builtins}), ` +
              'a .jinja file or the Jinja source',
          );
        throw new Error(`no chat template named "default"${where}; it has ${own}: choose one with { chatTemplate } (--chat-template)`);
      }
    }
    let t = this.compiled.get(source);
    if (t === undefined) {
      t = new ChatTemplate(source);
      this.compiled.set(source, t);
    }
    return t;
  }

  /**
   * The marker tokens of a built-in format (chatTemplate 'chatml' ...) that this tokenizer would split
   * into pieces because it lacks them as tokens; empty for the tokenizer's own templates and files.
   */
  missingTemplateTokens(name: string | undefined): string[] {
    if (name === undefined || this.chatTemplates.has(name)) return [];
    const builtin = BUILTIN_CHAT_TEMPLATES.get(name);
    if (builtin === undefined) return [];
    return builtin.markers.filter((m) => {
      const ids = this.encode(m, { addSpecialTokens: false });
      return ids.length !== 1;
    });
  }

  /** Renders messages with the chat template and the variables transformers passes to it. */
  renderChat(messages: ChatMessage[], opts: ApplyChatTemplateOptions = {}): RenderedChat {
    if (!Array.isArray(messages) || messages.length === 0)
      throw new Error('applyChatTemplate: expected a non-empty array of { role, content } messages');
    const vars: Record<string, unknown> = {};
    const named: [string, string | null][] = [
      ['bos_token', this.bosToken],
      ['eos_token', this.eosToken],
      ['unk_token', this.unkToken],
      ['pad_token', this.padToken],
    ];
    for (const [k, v] of named) if (v !== null) vars[k] = v;
    if (Array.isArray(this.config.additional_special_tokens))
      vars.additional_special_tokens = this.config.additional_special_tokens.map((t) =>
        tokenString(t, 'additional_special_tokens', 'tokenizer_config.json'),
      );
    Object.assign(vars, opts.templateVariables ?? {});
    vars.add_generation_prompt = opts.addGenerationPrompt ?? false;
    if (opts.tools !== undefined) vars.tools = opts.tools;
    if (opts.documents !== undefined) vars.documents = opts.documents;
    return this.chatTemplate(opts.chatTemplate).render(messages, vars);
  }

  /** The chat as text, or as token ids with tokenize: true (the template writes its own special tokens). */
  applyChatTemplate(messages: ChatMessage[], opts: ApplyChatTemplateOptions & { tokenize: true }): number[];
  applyChatTemplate(messages: ChatMessage[], opts?: ApplyChatTemplateOptions): string;
  applyChatTemplate(messages: ChatMessage[], opts: ApplyChatTemplateOptions = {}): string | number[] {
    const { text } = this.renderChat(messages, opts);
    return opts.tokenize ? this.encode(text, { addSpecialTokens: false }) : text;
  }

  toString(): string {
    return (
      `Tokenizer(name_or_path='${this.nameOrPath}', vocab_size=${this.vocabSize}, len=${this.length}, ` +
      `bos=${JSON.stringify(this.bosToken)}, eos=${JSON.stringify(this.eosToken)}, pad=${JSON.stringify(this.padToken)}, ` +
      `padding_side='${this.paddingSide}', model_max_length=${this.modelMaxLength})`
    );
  }
}

/** A chat template from a .jinja file, with an error that names the file. */
function readTemplateFile(file: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new Error(`chat template file '${file}' does not exist (give a template name, a .jinja file or the Jinja source)`);
  }
  if (!st.isFile()) throw new Error(`chat template file '${file}' is not a file`);
  const text = fs.readFileSync(file, 'utf8');
  if (text.trim() === '') throw new Error(`chat template file '${file}' is empty`);
  return text;
}

/** Loads tokenizers from Hugging Face folders, as transformers' AutoTokenizer. */
export class AutoTokenizer {
  /**
   * Reads dir/tokenizer.json and dir/tokenizer_config.json (optional), and dir/chat_template.jinja,
   * which takes the place of the config's chat_template as in transformers.
   */
  static fromPretrainedSync(dir: string): Tokenizer {
    requireLocalFolder(dir, 'tokenizer folder');
    const tokFile = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(tokFile))
      throw new Error(
        `${dir} has no tokenizer.json; only fast (tokenizer.json) tokenizers are supported, ` +
          'not a sentencepiece .model or vocabulary files alone',
      );
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const config = (fs.existsSync(cfgFile) ? readJson(cfgFile) : {}) as TokenizerConfig;
    const jinja = path.join(dir, 'chat_template.jinja');
    if (fs.existsSync(jinja)) {
      const own = fs.readFileSync(jinja, 'utf8');
      const others = chatTemplatesOf(config.chat_template);
      others.set('default', own);
      config.chat_template = others.size === 1 ? own : [...others].map(([name, template]) => ({ name, template }));
    }
    try {
      return new Tokenizer(readJson(tokFile), config, dir);
    } catch (err) {
      const msg = (err as Error).message;
      throw new Error(msg.includes(dir) ? msg : `${tokFile}: ${msg}`);
    }
  }

  static async fromPretrained(dir: string): Promise<Tokenizer> {
    return AutoTokenizer.fromPretrainedSync(dir);
  }
}
