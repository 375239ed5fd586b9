// Tokenizers against what Hugging Face's tokenizers/transformers produced for the same files
// (test/fixtures/data/make_data_fixtures.py wrote reference.json): ids with and without special tokens,
// decoding, batch padding and truncation, chat templates.
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer, ChatTemplate, Tokenizer } from '../lib/data';
import { memory } from '../lib/memory';
import { tmpDir } from './helpers/tmp-dir';

const FIX = path.join(__dirname, 'fixtures', 'data');
const REF = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8'));
const NAMES = ['tiny-bpe', 'tiny-sp'] as const;

/** A copy of a fixture tokenizer folder with its config changed by `edit`. */
function variant(name: string, edit: (cfg: Record<string, unknown>) => void, extra: Record<string, string> = {}): string {
  const dir = tmpDir('tok');
  fs.copyFileSync(path.join(FIX, name, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const cfg = JSON.parse(fs.readFileSync(path.join(FIX, name, 'tokenizer_config.json'), 'utf8'));
  edit(cfg);
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
  for (const [f, text] of Object.entries(extra)) fs.writeFileSync(path.join(dir, f), text);
  return dir;
}

const toks: Record<string, Tokenizer> = {};
beforeAll(async () => {
  for (const n of NAMES) toks[n] = await AutoTokenizer.fromPretrained(path.join(FIX, n));
});

describe.each(NAMES)('%s against transformers', (name) => {
  const ref = REF[name];

  test('special token ids and vocabulary sizes', () => {
    const t = toks[name];
    expect(t.bosTokenId).toBe(ref.bos_token_id);
    expect(t.eosTokenId).toBe(ref.eos_token_id);
    expect(t.padTokenId).toBe(ref.pad_token_id);
    expect(t.unkTokenId).toBe(ref.unk_token_id);
    expect(t.vocabSize).toBe(ref.vocab_size);
    expect(t.length).toBe(ref.len);
    expect(t.addsBosToken).toBe(true);
    expect(t.addsEosToken).toBe(false);
  });

  test('encode with and without special tokens, decode with and without skipping them', () => {
    const t = toks[name];
    for (const e of ref.encode) {
      expect(t.encode(e.text)).toEqual(e.ids);
      expect(t.encode(e.text, { addSpecialTokens: false })).toEqual(e.ids_no_special);
      expect(t.decode(e.ids)).toBe(e.decoded);
      expect(t.decode(e.ids, { skipSpecialTokens: true })).toBe(e.decoded_skip_special);
    }
  });

  test('truncation keeps the special tokens and cuts the text on the truncation side', () => {
    const t = toks[name];
    const e = ref.encode[1];
    const raw: number[] = e.ids_no_special;
    expect(raw.length).toBeGreaterThan(6);
    const bos = t.bosTokenId!;
    expect(t.encode(e.text, { truncation: true, maxLength: 5 })).toEqual([bos, ...raw.slice(0, 4)]);
    expect(t.encode(e.text, { truncation: true, maxLength: 5, truncationSide: 'left' })).toEqual([bos, ...raw.slice(-4)]);
    expect(t.encode(e.text, { truncation: true, maxLength: 5, addSpecialTokens: false })).toEqual(raw.slice(0, 5));
    expect(t.encode(e.text, { truncation: true, maxLength: 1000 })).toEqual(e.ids);
    expect(() => t.encode(e.text, { truncation: true, maxLength: 0 })).toThrow(/no room for the 1 special tokens/);
  });

  test('chat templates render as jinja2 does and tokenize as transformers does', () => {
    const t = toks[name];
    expect(ref.chat.length).toBeGreaterThan(0);
    for (const c of ref.chat) {
      const opts = { addGenerationPrompt: c.add_generation_prompt, chatTemplate: c.template ?? undefined };
      expect(t.applyChatTemplate(c.messages, opts)).toBe(c.text);
      expect(t.applyChatTemplate(c.messages, { ...opts, tokenize: true })).toEqual(c.ids);
    }
  });
});

describe('tiny-wordlevel (WordLevel model)', () => {
  const ref = REF['tiny-wordlevel'];
  test('ids are the vocabulary lookup of the whitespace/punctuation words; the rest as transformers', () => {
    const t = AutoTokenizer.fromPretrainedSync(path.join(FIX, 'tiny-wordlevel'));
    const vocab = JSON.parse(fs.readFileSync(path.join(FIX, 'tiny-wordlevel', 'tokenizer.json'), 'utf8')).model.vocab;
    for (const e of ref.encode) {
      const words: string[] = e.text.match(/[\p{L}\p{N}\p{M}_]+|[^\p{L}\p{N}\p{M}_\s]+/gu) ?? [];
      expect(t.encode(e.text)).toEqual(words.map((w) => vocab[w] ?? vocab['[UNK]']));
      expect(t.encode(e.text)).toEqual(e.ids);
      expect(t.decode(e.ids)).toBe(e.decoded);
      expect(t.decode(e.ids, { skipSpecialTokens: true })).toBe(e.decoded_skip_special);
    }
    expect([t.bosTokenId, t.eosTokenId, t.padTokenId, t.unkTokenId]).toEqual([ref.bos_token_id, ref.eos_token_id, ref.pad_token_id, ref.unk_token_id]);
    expect([t.vocabSize, t.length]).toEqual([ref.vocab_size, ref.len]);
    for (const b of ref.batch) {
      const out = t.encodeBatch(b.texts, { padding: b.padding, maxLength: b.max_length ?? undefined, truncation: b.truncation, paddingSide: b.padding_side });
      expect([out.inputIds.tolist(), out.attentionMask.tolist()]).toEqual([b.input_ids, b.attention_mask]);
      out.inputIds.dispose();
      out.attentionMask.dispose();
    }
    // The model's own unk_token maps unknown words when the config names none.
    const noUnk = AutoTokenizer.fromPretrainedSync(variant('tiny-wordlevel', (c) => delete c.unk_token));
    expect(noUnk.encode('zzz Hello')).toEqual([vocab['[UNK]'], vocab['Hello']]);
  });
});

describe('tiny-bpe batches against transformers', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const cases: [string, any][] = REF['tiny-bpe'].batch.map((b: { padding: string; max_length: number | null; padding_side: string }) => [
    `${b.padding} ${b.max_length} ${b.padding_side}`,
    b,
  ]);
  test.each(cases)('%s', (_label, b) => {
    const t = toks['tiny-bpe'];
    const before = memory().tensors;
    const out = t.encodeBatch(b.texts, {
      padding: b.padding,
      maxLength: b.max_length ?? undefined,
      truncation: b.truncation,
      paddingSide: b.padding_side,
    });
    expect(out.inputIds.dtype).toBe('int64');
    expect(out.attentionMask.dtype).toBe('int64');
    expect(out.inputIds.tolist()).toEqual(b.input_ids);
    expect(out.attentionMask.tolist()).toEqual(b.attention_mask);
    out.inputIds.dispose();
    out.attentionMask.dispose();
    expect(memory().tensors).toBe(before);
  });
});

describe('tokenizer_config.json settings', () => {
  test('padding side and pad token come from the config; no pad token is a clear error', () => {
    const sp = toks['tiny-sp'];
    expect(sp.paddingSide).toBe('left');
    expect(sp.modelMaxLength).toBe(Infinity);
    expect(() => sp.encodeBatch(['Hello world!', 'Hello'])).toThrow(/no pad token.*padToken = tokenizer.eosToken/);
    expect(() => sp.encodeBatch(['Hello'], { padding: 'max_length' })).toThrow(/needs maxLength.*model_max_length/);
    const t = new Tokenizer(
      JSON.parse(fs.readFileSync(path.join(FIX, 'tiny-sp', 'tokenizer.json'), 'utf8')),
      JSON.parse(fs.readFileSync(path.join(FIX, 'tiny-sp', 'tokenizer_config.json'), 'utf8')),
    );
    t.padToken = t.eosToken;
    const a = t.encode('Hello world!');
    const b = t.encode('Hello');
    const out = t.encodeBatch(['Hello world!', 'Hello']);
    const eos = t.eosTokenId!;
    const pad = new Array(a.length - b.length).fill(eos);
    expect(out.inputIds.tolist()).toEqual([a, [...pad, ...b]]);
    expect(out.attentionMask.tolist()).toEqual([a.map(() => 1), [...pad.map(() => 0), ...b.map(() => 1)]]);
    out.inputIds.dispose();
    out.attentionMask.dispose();
  });

  test('model_max_length bounds truncation and max_length padding; padToMultipleOf rounds up', () => {
    const t = toks['tiny-bpe'];
    expect(t.modelMaxLength).toBe(64);
    const long = 'one two three '.repeat(40);
    expect(t.encode(long, { truncation: true })).toHaveLength(64);
    const out = t.encodeBatch(['Hello', 'Hello world!'], { padToMultipleOf: 8 });
    expect(out.inputIds.shape).toEqual([2, 8]);
    out.inputIds.dispose();
    out.attentionMask.dispose();
    expect(() => t.encodeBatch([long], { padding: 'max_length', maxLength: 10 })).toThrow(/more than maxLength 10; pass truncation/);
  });

  test('add_bos_token / add_eos_token in the config decide what encode adds', () => {
    const base = toks['tiny-bpe'];
    const raw = base.encode('Hello world!', { addSpecialTokens: false });
    const withEos = AutoTokenizer.fromPretrainedSync(variant('tiny-bpe', (c) => (c.add_eos_token = true)));
    expect(withEos.encode('Hello world!')).toEqual([base.bosTokenId, ...raw, base.eosTokenId]);
    expect(withEos.addsEosToken).toBe(true);
    const neither = AutoTokenizer.fromPretrainedSync(
      variant('tiny-bpe', (c) => {
        c.add_bos_token = false;
      }),
    );
    expect(neither.encode('Hello world!')).toEqual(raw);
    // Without the keys, tokenizer.json's post-processor decides (it adds BOS).
    const fromJson = AutoTokenizer.fromPretrainedSync(
      variant('tiny-bpe', (c) => {
        delete c.add_bos_token;
        delete c.add_eos_token;
      }),
    );
    expect(fromJson.encode('Hello world!')).toEqual([base.bosTokenId, ...raw]);
  });

  test('no chat template is a clear error; unknown names list the known ones; chat_template.jinja wins', () => {
    const none = AutoTokenizer.fromPretrainedSync(variant('tiny-bpe', (c) => delete c.chat_template));
    const msgs = [{ role: 'user', content: 'hi' }];
    expect(() => none.applyChatTemplate(msgs)).toThrow(/has no chat template.*chat_template/);
    expect(() => toks['tiny-bpe'].applyChatTemplate(msgs, { chatTemplate: 'nope' })).toThrow(
      /no chat template named "nope".*"default", "generation", "strict"/,
    );
    // A template passed as source text.
    expect(none.applyChatTemplate(msgs, { chatTemplate: '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}' })).toBe(
      '[user]hi',
    );
    const jinja = AutoTokenizer.fromPretrainedSync(
      variant('tiny-bpe', () => undefined, { 'chat_template.jinja': '{{ eos_token }}{{ messages[0].content }}\n' }),
    );
    expect(jinja.applyChatTemplate(msgs)).toBe('</s>hi');
    expect(jinja.applyChatTemplate(msgs, { chatTemplate: 'strict' })).toBe('<s>[INST] hi [/INST]');
  });

  test('a missing folder or tokenizer.json is named in the error', () => {
    expect(() => AutoTokenizer.fromPretrainedSync('/nonexistent/tok')).toThrow(/tokenizer folder '\/nonexistent\/tok' does not exist/);
    const dir = tmpDir('tok');
    expect(() => AutoTokenizer.fromPretrainedSync(dir)).toThrow(/has no tokenizer.json/);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"model": ');
    expect(() => AutoTokenizer.fromPretrainedSync(dir)).toThrow(/tokenizer.json: not valid JSON/);
  });
});

describe('chat template semantics', () => {
  test('ChatML renders as the template literally says', () => {
    const t = toks['tiny-bpe'];
    const msgs = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'naïve café 🙂?' },
      { role: 'assistant', content: 'Oui.' },
    ];
    const expected = '<s>' + msgs.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('');
    expect(t.applyChatTemplate(msgs)).toBe(expected);
    expect(t.applyChatTemplate(msgs, { addGenerationPrompt: true })).toBe(expected + '<|im_start|>assistant\n');
    // Tokenized without adding another BOS: the template wrote it.
    expect(t.applyChatTemplate(msgs, { tokenize: true })).toEqual(t.encode(expected, { addSpecialTokens: false }));
    expect(t.applyChatTemplate(msgs, { tokenize: true })[0]).toBe(t.bosTokenId);
  });

  test('raise_exception in a template becomes an Error with its message', () => {
    const bad = [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ];
    expect(REF['tiny-bpe'].strict_error).toMatch(/alternate/);
    expect(() => toks['tiny-bpe'].applyChatTemplate(bad, { chatTemplate: 'strict' })).toThrow(REF['tiny-bpe'].strict_error);
    expect(() => toks['tiny-bpe'].applyChatTemplate([])).toThrow(/non-empty array/);
  });

  test('{% generation %} blocks render as without them and give the spans they printed', () => {
    const src = "{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}!{% endgeneration %}{% else %}{{ m.content }}{% endif %}{{ '\\n' }}{% endfor %}";
    const plain = src.replace(/\{% (end)?generation %\}/g, '');
    const msgs = [
      { role: 'user', content: 'q1' },
      { role: 'assistant', content: 'a1' },
      { role: 'user', content: 'q2' },
      { role: 'assistant', content: 'a22' },
    ];
    const r = new ChatTemplate(src).render(msgs, {});
    expect(r.text).toBe(new ChatTemplate(plain).render(msgs, {}).text);
    expect(r.text).toBe('<user>q1\n<assistant>a1!\n<user>q2\n<assistant>a22!\n');
    expect(r.generationSpans.map(([s, e]) => r.text.slice(s, e))).toEqual(['a1!', 'a22!']);
    // Tags on their own indented lines: lstrip_blocks and trim_blocks apply to them as to any block
    // tag (jinja2 with transformers' settings renders this as 'a1\n').
    const indented = "{% for m in messages %}\n  {% if m.role == 'assistant' %}\n    {% generation %}\n{{ m.content }}\n    {% endgeneration %}\n  {% endif %}\n{% endfor %}";
    const r2 = new ChatTemplate(indented).render([{ role: 'assistant', content: 'a1' }], {});
    expect(r2.text).toBe('a1\n');
    expect(r2.generationSpans).toEqual([[0, 3]]);
  });
});

describe('decode inputs', () => {
  test('tensors, empty lists and ids out of range', () => {
    const t = toks['tiny-bpe'];
    const e = REF['tiny-bpe'].encode[0];
    const out = t.encodeBatch([e.text]);
    expect(t.batchDecode(out.inputIds, { skipSpecialTokens: true })).toEqual([e.decoded_skip_special]);
    out.inputIds.dispose();
    out.attentionMask.dispose();
    expect(t.decode([])).toBe('');
    expect(t.decode([t.bosTokenId!], { skipSpecialTokens: true })).toBe('');
    expect(() => t.decode([100000])).toThrow(/100000 is not a token id/);
  });
});
