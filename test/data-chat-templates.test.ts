// Chat templates for training: the built-in formats (chatml, llama3, gemma) against transformers'
// renders and assistant masks, templates from .jinja files, templates that re-render earlier turns
// (trained turn by turn), and trainOnInputs / completionOnlyLoss (loss on every token). Reference values:
// test/fixtures/data/chat-templates/reference.json, written by make_chat_template_fixtures.py.
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer, BUILTIN_CHAT_TEMPLATES, datasetFromRecords, Example, IGNORE_INDEX, loadDataset, Tokenizer } from '../lib/data';
import { tmpDir } from './helpers/tmp-dir';

const FIX = path.join(__dirname, 'fixtures', 'data');
const TEMPLATES = path.join(FIX, 'chat-templates');
const THINKING = path.join(TEMPLATES, 'thinking.jinja');
const REF = JSON.parse(fs.readFileSync(path.join(TEMPLATES, 'reference.json'), 'utf8'));
const CONVS: { role: string; content: string }[][] = REF.conversations;

let tok: Tokenizer;
beforeAll(() => {
  tok = AutoTokenizer.fromPretrainedSync(path.join(FIX, 'tiny-bpe'));
});

const plain = (e: Example) => ({ input_ids: Array.from(e.inputIds), labels: Array.from(e.labels) });
const records = () => CONVS.map((messages) => ({ messages }));

describe('built-in chat formats = transformers with the same template', () => {
  test.each(['chatml', 'llama3', 'gemma'])('%s: text, generation prompt, ids and assistant labels', (name) => {
    const ref = REF.builtin[name];
    expect(BUILTIN_CHAT_TEMPLATES.get(name)!.source).toBe(ref.template); // the generator's copy is this template
    const warnings: string[] = [];
    const ds = datasetFromRecords(records(), tok, { chatTemplate: name, onWarning: (m) => warnings.push(m) });
    CONVS.forEach((conv, i) => {
      const r = ref.renders[i];
      expect(tok.applyChatTemplate(conv, { chatTemplate: name })).toBe(r.text);
      expect(tok.applyChatTemplate(conv.slice(0, -1), { chatTemplate: name, addGenerationPrompt: true })).toBe(r.generation_prompt);
      expect(plain(ds.get(i))).toEqual({ input_ids: r.input_ids, labels: r.labels });
    });
    // tiny-bpe has ChatML's markers as tokens, not Llama 3's or Gemma's: said once, naming them.
    if (name === 'chatml') expect(warnings).toEqual([]);
    else {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(new RegExp(`'${name}' chat format's .*${name === 'llama3' ? '<\\|eot_id\\|>' : '<end_of_turn>'} are not tokens of this tokenizer`));
    }
  });

  test("a tokenizer's own template of the same name wins over the built-in one", () => {
    const own = AutoTokenizer.fromPretrainedSync(path.join(FIX, 'tiny-bpe'));
    own.chatTemplates.set('chatml', '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}');
    expect(own.applyChatTemplate([{ role: 'user', content: 'hi' }], { chatTemplate: 'chatml' })).toBe('<user>hi');
    expect(own.missingTemplateTokens('chatml')).toEqual([]);
  });

  test('a tokenizer without a template: the error names the built-in formats; one of them works', () => {
    const none = AutoTokenizer.fromPretrainedSync(path.join(FIX, 'tiny-wordlevel'));
    const msgs = [{ role: 'user', content: 'hello' }];
    expect(() => none.applyChatTemplate(msgs)).toThrow(/has no chat template.*--chat-template.*'chatml', 'llama3', 'gemma'.*\.jinja file/);
    expect(() => datasetFromRecords([{ messages: msgs }], none)).toThrow(/^record 0: this tokenizer .* has no chat template/);
    expect(none.applyChatTemplate(msgs, { chatTemplate: 'chatml' })).toBe('<|im_start|>user\nhello<|im_end|>\n');
    expect(() => tok.applyChatTemplate(msgs, { chatTemplate: 'chatlm' })).toThrow(
      /no chat template named "chatlm" in .*tiny-bpe: it has "default", "generation", "strict"; the built-in ones are 'chatml', 'llama3', 'gemma', or give a \.jinja file/,
    );
  });
});

describe('templates from .jinja files', () => {
  test('a file path renders as the same template given as source', () => {
    const source = fs.readFileSync(THINKING, 'utf8');
    expect(tok.applyChatTemplate(CONVS[1], { chatTemplate: THINKING })).toBe(tok.applyChatTemplate(CONVS[1], { chatTemplate: source }));
    expect(tok.applyChatTemplate(CONVS[1], { chatTemplate: THINKING })).toBe(REF.thinking[1].full_text);
  });

  test('a missing, empty or folder path is an error naming it', () => {
    const dir = tmpDir('chat-templates');
    const missing = path.join(dir, 'nope.jinja');
    expect(() => tok.chatTemplate(missing)).toThrow(`chat template file '${missing}' does not exist`);
    fs.writeFileSync(path.join(dir, 'empty.jinja'), '\n');
    expect(() => tok.chatTemplate(path.join(dir, 'empty.jinja'))).toThrow(/chat template file '.*empty\.jinja' is empty/);
    expect(() => tok.chatTemplate(dir)).toThrow(`chat template file '${dir}' is not a file`);
    fs.writeFileSync(path.join(dir, 'bad.jinja'), '{% for m in messages %}');
    expect(() => tok.chatTemplate(path.join(dir, 'bad.jinja'))).toThrow(/cannot parse the Jinja source/);
  });
});

describe('a template that re-renders earlier turns is trained turn by turn', () => {
  test('one example per assistant turn = TRL conversational prompt-completion on each prefix; said once', () => {
    const warnings: string[] = [];
    const ds = datasetFromRecords(records(), tok, { chatTemplate: THINKING, onWarning: (m) => warnings.push(m) });
    const expected = REF.thinking.flatMap((t: { examples: unknown[] }) => t.examples);
    expect(ds.length).toBe(5);
    expect(ds.toArray().map(plain)).toEqual(expected);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /renders earlier turns differently .* so 2 of 3 conversations were rendered turn by turn: one example per assistant turn .* 5 examples from 3 records/,
    );
    // Each labelled run is that turn as generated (its thinking shown), and nothing else.
    const labelled = ds.toArray().map((e) => tok.decode(Array.from(e.labels).filter((l) => l !== IGNORE_INDEX)));
    expect(labelled[1]).toBe('<think>\nbe kind\n</think>\n\nHello! How are you today?<|im_end|>\n');
    expect(labelled[2]).toBe('<think>\n\n</think>\n\none two three<|im_end|>\n');
  });

  test('maxLength cuts each turn example; a file of records does the same', () => {
    const dir = tmpDir('chat-templates');
    const file = path.join(dir, 'chat.jsonl');
    fs.writeFileSync(file, records().map((r) => JSON.stringify(r)).join('\n') + '\n');
    const ds = loadDataset(file, tok, { chatTemplate: THINKING, maxLength: 30, onWarning: () => undefined });
    const expected = REF.thinking.flatMap((t: { examples: { input_ids: number[]; labels: number[] }[] }) => t.examples);
    expect(ds.toArray().map(plain)).toEqual(expected.map((e: { input_ids: number[]; labels: number[] }) => ({ input_ids: e.input_ids.slice(0, 30), labels: e.labels.slice(0, 30) })));
  });

  test('a template whose generation prompt is not the start of the turn still throws, naming the ways out', () => {
    // The generation prompt says "bot:", the turn itself "assistant:".
    const odd = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}bot:{% endif %}";
    expect(() => datasetFromRecords([{ messages: CONVS[0] }], tok, { chatTemplate: odd })).toThrow(
      /record 0: .*up to message 1 \(the assistant turn\) .*\(at character 30: "bot:" with the generation prompt, "assistant: <think>\\nadd t" through the turn\).*\{% generation %\}.*--chat-template.*--train-on-inputs/,
    );
    // With the loss on every token there is nothing to find.
    const [e] = datasetFromRecords([{ messages: CONVS[0] }], tok, { chatTemplate: odd, trainOnInputs: true }).toArray();
    expect(tok.decode(Array.from(e.labels))).toBe('user: What is two plus three?\nassistant: <think>\nadd them\n</think>\n\nTwo plus three is five.\n');
  });
});

describe('trainOnInputs / completionOnlyLoss: the loss on every token', () => {
  const pc = { prompt: 'What is two plus three?', completion: ' Two plus three is five.' };
  const q = { role: 'user', content: 'What is two plus three?' };
  const a = { role: 'assistant', content: 'Two plus three is five.' };

  test('every record kind: labels = input ids, the ids unchanged', () => {
    const recs = [{ text: 'Hello world!' }, pc, { messages: CONVS[1] }, { prompt: [q], completion: [a] }];
    const masked = datasetFromRecords(recs, tok).toArray();
    for (const opts of [{ trainOnInputs: true }, { completionOnlyLoss: false }, { trainOnInputs: true, completionOnlyLoss: false }]) {
      const all = datasetFromRecords(recs, tok, opts).toArray();
      all.forEach((e, i) => {
        expect(Array.from(e.inputIds)).toEqual(Array.from(masked[i].inputIds));
        expect(Array.from(e.labels)).toEqual(Array.from(e.inputIds));
      });
      // The masked ones do mask something in each but the text record.
      masked.slice(1).forEach((e) => expect(Array.from(e.labels)).toContain(IGNORE_INDEX));
    }
    expect(Array.from(datasetFromRecords([pc], tok, { trainOnInputs: true }).get(0).labels)).toEqual(tok.encode(pc.prompt + pc.completion + '</s>'));
    // Explicit defaults change nothing.
    expect(datasetFromRecords(recs, tok, { trainOnInputs: false, completionOnlyLoss: true }).toArray().map(plain)).toEqual(masked.map(plain));
  });

  test('a re-rendering template keeps one example per conversation (the whole render)', () => {
    const warnings: string[] = [];
    const ds = datasetFromRecords(records(), tok, { chatTemplate: THINKING, trainOnInputs: true, onWarning: (m) => warnings.push(m) });
    expect(ds.length).toBe(3);
    ds.toArray().forEach((e, i) => {
      expect(Array.from(e.inputIds)).toEqual(tok.encode(REF.thinking[i].full_text, { addSpecialTokens: false }));
      expect(Array.from(e.labels)).toEqual(Array.from(e.inputIds));
    });
    expect(warnings).toEqual([]);
  });

  test('contradicting or non-boolean values are errors that name the options', () => {
    expect(() => datasetFromRecords([pc], tok, { trainOnInputs: true, completionOnlyLoss: true })).toThrow(
      /trainOnInputs: true and completionOnlyLoss: true contradict each other/,
    );
    expect(() => datasetFromRecords([pc], tok, { trainOnInputs: 'yes' as unknown as boolean })).toThrow(/trainOnInputs: expected true or false, got "yes"/);
    expect(() => datasetFromRecords([pc], tok, { trainOnInput: true } as never)).toThrow(/trainOnInput/);
  });
});
