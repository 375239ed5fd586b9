// The embedded demo: the synthetic language generator, the character tokenizer, and the pretrained base
// in assets/demo-base (it must know the language and must not know the fine-tuning task yet).
import * as fs from 'fs';
import * as path from 'path';
import { AutoTokenizer, readRecords, Tokenizer, tokenizeRecord, IGNORE_INDEX } from '../lib/data';
import { AutoModelForCausalLM, CausalLM, generate } from '../lib/models';
import { memory, scope } from '../lib/memory';
import { greedyAnswers } from '../lib/demo/answers';
import { DEMO_CONFIG, GENERATION_CONFIG } from '../scripts/pretrain-demo-base';
import {
  BOS_ID,
  demoCharacters,
  demoTokenizerConfig,
  demoTokenizerJson,
  demoWords,
  EOS_ID,
  PAD_ID,
  UNK_ID,
} from '../lib/demo/demo-tokenizer';
import {
  answer,
  EVAL_WORDS,
  evalSamples,
  FINETUNE_TASK,
  finetuneSamples,
  LETTERS,
  nextChar,
  PRETRAIN_TASKS,
  pretrainingText,
  pretrainProbeSamples,
  SyntheticLanguage,
  toJsonl,
} from '../lib/demo/synthetic-language';

const ROOT = path.join(__dirname, '..');
const BASE = path.join(ROOT, 'assets', 'demo-base');
const DATA = path.join(ROOT, 'assets', 'demo-data');

describe('synthetic language', () => {
  test('the same seed gives the same text, another seed other text', () => {
    const a = pretrainingText(500, 7);
    expect(pretrainingText(500, 7)).toEqual(a);
    const b = pretrainingText(500, 8);
    expect(b).not.toEqual(a);
    expect(finetuneSamples(300, 3)).toEqual(finetuneSamples(300, 3));
    expect(finetuneSamples(300, 3)).not.toEqual(finetuneSamples(300, 4));
  });

  test('every task occurs, every sentence is <question> -> <answer> with the right answer', () => {
    const lang = new SyntheticLanguage(1);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const s = lang.pretrainSample();
      seen.add(s.task);
      expect(s.prompt.endsWith(' ->')).toBe(true);
      expect(s.completion.startsWith(' ')).toBe(true);
      const question = s.prompt.slice(0, -3);
      const arg = s.task === 'add' ? question : question.slice(s.task.length + 1);
      expect(s.completion).toBe(` ${answer(s.task, arg)}`);
    }
    expect([...seen].sort()).toEqual([...PRETRAIN_TASKS].sort());
  });

  test('answers follow their definitions', () => {
    const lang = new SyntheticLanguage(2);
    for (let i = 0; i < 200; i++) {
      const w = lang.word();
      expect(answer('reverse', answer('reverse', w))).toBe(w);
      expect(answer('copy', w)).toBe(w);
      expect(Number(answer('count', w))).toBe(w.length);
      expect(answer('first', w)).toBe(answer('last', answer('reverse', w)));
      expect(answer('last', w)).toBe(w[w.length - 1]);
      const shifted = answer(FINETUNE_TASK, w);
      // Shifting 26 times gives the word back; each letter moves by one (mod 26).
      let back = shifted;
      for (let k = 0; k < 25; k++) back = answer(FINETUNE_TASK, back);
      expect(back).toBe(w);
      [...w].forEach((c, j) => expect((LETTERS.indexOf(shifted[j]) - LETTERS.indexOf(c) + 26) % 26).toBe(1));
      const a = lang.int(0, 99);
      const b = lang.int(0, 99);
      expect(Number(answer('add', `${a}+${b}`))).toBe(a + b);
    }
    expect(nextChar('z')).toBe('a');
    expect(nextChar('9')).toBe('0');
    expect(() => answer('divide', '1')).toThrow(/unknown task 'divide'/);
    expect(() => nextChar('A')).toThrow(/not a lowercase letter or a digit/);
  });

  test('the fine-tuning set leaves out the evaluation words', () => {
    const words = new Set(finetuneSamples(5000, 0).map((s) => s.prompt.slice(FINETUNE_TASK.length + 1, -3)));
    for (const w of EVAL_WORDS) expect(words.has(w)).toBe(false);
  });

  test('assets/demo-data holds what the generator writes', () => {
    const train = fs.readFileSync(path.join(DATA, 'finetune.jsonl'), 'utf8');
    const n = train.trim().split('\n').length;
    expect(train).toBe(toJsonl(finetuneSamples(n, 0)));
    expect(fs.readFileSync(path.join(DATA, 'eval.jsonl'), 'utf8')).toBe(toJsonl(evalSamples()));
    // The trainer's reader takes them as prompt-completion records.
    const records = readRecords(path.join(DATA, 'finetune.jsonl'));
    expect(records.length).toBe(n);
    expect(records[0].kind).toBe('prompt_completion');
  });
});

describe('demo tokenizer', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await AutoTokenizer.fromPretrained(BASE);
  });

  test('the committed files are what demo-tokenizer.ts builds', () => {
    expect(JSON.parse(fs.readFileSync(path.join(BASE, 'tokenizer.json'), 'utf8'))).toEqual(demoTokenizerJson());
    expect(JSON.parse(fs.readFileSync(path.join(BASE, 'tokenizer_config.json'), 'utf8'))).toEqual(demoTokenizerConfig());
  });

  test('special tokens and vocabulary', () => {
    expect([tok.unkTokenId, tok.bosTokenId, tok.eosTokenId, tok.padTokenId]).toEqual([UNK_ID, BOS_ID, EOS_ID, PAD_ID]);
    expect(tok.vocabSize).toBe(4 + demoCharacters().length + demoWords().length);
    expect(tok.addsBosToken).toBe(true);
    expect(tok.addsEosToken).toBe(false);
    expect(tok.modelMaxLength).toBe(128);
    const config = JSON.parse(fs.readFileSync(path.join(BASE, 'config.json'), 'utf8'));
    expect(config.vocab_size).toBeGreaterThanOrEqual(tok.length);
    expect([config.bos_token_id, config.eos_token_id, config.pad_token_id]).toEqual([BOS_ID, EOS_ID, PAD_ID]);
  });

  test('instruction words and -> are one token, everything else one token per character; decoding gives the text back', () => {
    expect(tok.tokenize('reverse kqz -> zqk')).toEqual(['reverse', ' ', 'k', 'q', 'z', ' ', '->', ' ', 'z', 'q', 'k']);
    expect(tok.tokenize('12+7 -> 19')).toEqual(['1', '2', '+', '7', ' ', '->', ' ', '1', '9']);
    // Only a whole piece between spaces is a word: inside a longer piece it is spelled out.
    expect(tok.tokenize('copycat ->>')).toEqual([...'copycat', ' ', '-', '>', '>']);
    for (const w of demoWords()) expect(tok.tokenize(w)).toEqual([w]);
    const texts = [...pretrainingText(300, 5), ...finetuneSamples(50, 5).map((s) => s.prompt + s.completion)];
    texts.push(demoCharacters().join(''), 'Hello, World! {"a": [1, 2]}\n~`|\\', '  copy  next\nlast ');
    for (const text of texts) {
      const ids = tok.encode(text);
      expect(ids[0]).toBe(BOS_ID);
      const pieces = ids.slice(1).map((id) => tok.idToToken(id)!);
      expect(pieces.join('')).toBe(text);
      for (const p of pieces) expect(p.length === 1 || demoWords().includes(p)).toBe(true);
      expect(ids).not.toContain(UNK_ID);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
      expect(tok.decode(tok.encode(text, { addSpecialTokens: false }))).toBe(text);
    }
    expect(tok.encode('aé', { addSpecialTokens: false })).toEqual([tok.tokenToId('a'), UNK_ID]);
  });

  test('prompt-completion records take the loss on the completion and </s> only', () => {
    const [s] = finetuneSamples(1, 0);
    const r = tokenizeRecord(tok, { kind: 'prompt_completion', prompt: s.prompt, completion: s.completion });
    const n = tok.encode(s.prompt).length; // <s> and the prompt's tokens
    expect(Array.from(r.inputIds)).toEqual([...tok.encode(s.prompt + s.completion), EOS_ID]);
    expect(Array.from(r.labels.slice(0, n))).toEqual(new Array(n).fill(IGNORE_INDEX));
    expect(Array.from(r.labels.slice(n))).toEqual(Array.from(r.inputIds.slice(n)));
  });

  test('the chat template writes a conversation as a sentence of the language', () => {
    const text = tok.applyChatTemplate([
      { role: 'user', content: 'reverse abc' },
      { role: 'assistant', content: 'cba' },
    ]);
    expect(text).toBe('<s>reverse abc -> cba</s>');
    expect(tok.applyChatTemplate([{ role: 'user', content: 'copy xyz' }], { addGenerationPrompt: true })).toBe('<s>copy xyz ->');
    expect(tok.applyChatTemplate([{ role: 'user', content: 'next a' }], { tokenize: true })).toEqual(tok.encode('next a ->'));
  });
});

describe('demo base model', () => {
  let tok: Tokenizer;
  let model: CausalLM;
  beforeAll(async () => {
    tok = await AutoTokenizer.fromPretrained(BASE);
    model = await AutoModelForCausalLM.fromPretrained(BASE);
  });
  afterAll(() => model?.dispose());

  test('is a small Llama in the Hugging Face layout', () => {
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'README.md'])
      expect(fs.existsSync(path.join(BASE, f))).toBe(true);
    expect(model.reprName()).toBe('LlamaForCausalLM');
    expect(model.config.modelType).toBe('llama');
    expect(fs.statSync(path.join(BASE, 'model.safetensors')).size).toBeLessThan(8 * 2 ** 20);
    expect(model.training).toBe(false);
    // config.json is the script's LlamaConfig, and sets what the tokenizer needs.
    expect(JSON.parse(fs.readFileSync(path.join(BASE, 'config.json'), 'utf8'))).toEqual(DEMO_CONFIG);
    expect(JSON.parse(fs.readFileSync(path.join(BASE, 'generation_config.json'), 'utf8'))).toEqual(GENERATION_CONFIG);
  });

  test('answers pretraining-style prompts right (it learned the language)', () => {
    const probes = pretrainProbeSamples();
    const answers = greedyAnswers(model, tok, probes.map((s) => s.prompt));
    const wrong = probes.flatMap((s, i) => (answers[i] === s.completion ? [] : [`${s.prompt}${answers[i]}`]));
    expect(wrong).toEqual([]);
    // Fresh sentences of every task, from a seed the pretraining never used.
    const lang = new SyntheticLanguage(424242);
    const fresh = Array.from({ length: 70 }, () => lang.pretrainSample());
    const got = greedyAnswers(model, tok, fresh.map((s) => s.prompt));
    const right = fresh.filter((s, i) => got[i] === s.completion).length;
    expect(right / fresh.length).toBeGreaterThanOrEqual(0.9);
  });

  test('does not know the fine-tuning task yet: most demo prompts are answered wrong', () => {
    const evals = evalSamples();
    const answers = greedyAnswers(model, tok, evals.map((s) => s.prompt));
    const right = evals.filter((s, i) => answers[i] === s.completion).length;
    expect(right).toBeLessThanOrEqual(Math.floor(evals.length / 4));
  });

  test('batched answers (left padding) equal one prompt at a time', () => {
    const prompts = ['reverse torch ->', '3+5 ->', 'shift lora ->'];
    const batched = greedyAnswers(model, tok, prompts);
    const before = memory().tensors;
    const single = prompts.map((p) =>
      scope(() => {
        const { inputIds } = tok.encodeBatch([p]);
        const n = inputIds.shape[1];
        const out = generate(model, inputIds, { maxNewTokens: 16, eosTokenId: EOS_ID });
        return tok.decode(out.select(0, 0).narrow(0, n, out.shape[1] - n), { skipSpecialTokens: true });
      }),
    );
    expect(batched).toEqual(single);
    expect(memory().tensors).toBe(before);
  });
});
