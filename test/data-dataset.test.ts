// Datasets: records -> input ids and labels as TRL builds them (reference.json, written by
// test/fixtures/data/make_data_fixtures.py with transformers), packing and padding, the DataLoader,
// the seeded split, and errors that name the file and the line.
import * as fs from 'fs';
import * as path from 'path';
import {
  AutoTokenizer,
  collate,
  DataLoader,
  Dataset,
  datasetFromRecords,
  Example,
  IGNORE_INDEX,
  loadDataset,
  packDataset,
  Tokenizer,
} from '../lib/data';
import { memory } from '../lib/memory';
import { tmpDir } from './helpers/tmp-dir';

const FIX = path.join(__dirname, 'fixtures', 'data');
const DATA = path.join(FIX, 'datasets');
const REF = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8')).datasets;

let tok: Tokenizer;
beforeAll(() => {
  tok = AutoTokenizer.fromPretrainedSync(path.join(FIX, 'tiny-bpe'));
});

const plain = (e: Example) => ({ input_ids: Array.from(e.inputIds), labels: Array.from(e.labels) });

/** The runs of labelled tokens, decoded. */
function labelledText(e: Example): string[] {
  const runs: number[][] = [];
  let cur: number[] | null = null;
  e.labels.forEach((l) => {
    if (l === IGNORE_INDEX) cur = null;
    else {
      if (cur === null) runs.push((cur = []));
      cur.push(l);
    }
  });
  return runs.map((r) => tok.decode(r));
}

function tmpFile(name: string, text: string): string {
  const dir = tmpDir('data');
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

describe('records -> ids and labels, against TRL with transformers', () => {
  test('{"text"}: loss everywhere, EOS appended', () => {
    const ds = loadDataset(path.join(DATA, 'text.jsonl'), tok);
    expect(ds.toArray().map(plain)).toEqual(REF.text);
  });

  test('{"prompt","completion"}: -100 on the prompt tokens', () => {
    const ds = loadDataset(path.join(DATA, 'prompt_completion.jsonl'), tok);
    expect(ds.toArray().map(plain)).toEqual(REF.prompt_completion);
    const pc = fs.readFileSync(path.join(DATA, 'prompt_completion.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    ds.toArray().forEach((e, i) => expect(labelledText(e)).toEqual([pc[i].completion + '</s>']));
  });

  test('{"messages"}: loss on assistant turns, found by rendering incrementally = transformers {% generation %} masks', () => {
    const incremental = loadDataset(path.join(DATA, 'chat.jsonl'), tok);
    expect(incremental.toArray().map(plain)).toEqual(REF.chat);
    const tagged = loadDataset(path.join(DATA, 'chat.jsonl'), tok, { chatTemplate: 'generation' });
    expect(tagged.toArray().map(plain)).toEqual(REF.chat);
    // A JSON array file gives the same.
    expect(loadDataset(path.join(DATA, 'chat.json'), tok).toArray().map(plain)).toEqual(REF.chat);
    // What carries a loss is what each assistant wrote, with the turn's end.
    const chats = fs.readFileSync(path.join(DATA, 'chat.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    incremental.toArray().forEach((e, i) => {
      const said = chats[i].messages.filter((m: { role: string }) => m.role === 'assistant');
      expect(labelledText(e)).toEqual(said.map((m: { content: string }) => m.content + '<|im_end|>\n'));
    });
  });

  test('a Llama-2 style template: assistant text and EOS carry the loss, [INST] turns do not', () => {
    const chats = fs.readFileSync(path.join(DATA, 'chat.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const ds = loadDataset(path.join(DATA, 'chat.jsonl'), tok, { chatTemplate: 'strict' });
    ds.toArray().forEach((e, i) => {
      const said = chats[i].messages.filter((m: { role: string }) => m.role === 'assistant');
      expect(labelledText(e)).toEqual(said.map((m: { content: string }) => ` ${m.content} </s>`));
      expect(Array.from(e.inputIds)).toEqual(tok.applyChatTemplate(chats[i].messages, { chatTemplate: 'strict', tokenize: true }));
    });
  });

  test('conversational prompt-completion: loss on the completion messages', () => {
    const q = { role: 'user', content: 'What is two plus three?' };
    const a = { role: 'assistant', content: 'Two plus three is five.' };
    const [e] = datasetFromRecords([{ prompt: [q], completion: [a] }], tok).toArray();
    expect(Array.from(e.inputIds)).toEqual(tok.applyChatTemplate([q, a], { tokenize: true }));
    expect(labelledText(e)).toEqual(['Two plus three is five.<|im_end|>\n']);
    expect(Array.from(e.labels)).toEqual(REF.chat[0].labels);
  });

  test('a boundary inside a token: the token goes to the completion, and one warning says so', () => {
    const warnings: string[] = [];
    const [e] = datasetFromRecords([{ prompt: 'Hel', completion: 'lo world!' }], tok, { onWarning: (m) => warnings.push(m) }).toArray();
    const full = tok.encode('Hello world!');
    const head = tok.encode('Hel');
    expect(full.slice(0, head.length)).not.toEqual(head); // the tokenizer merged across the boundary
    let lcp = 0;
    while (full[lcp] === head[lcp]) lcp++;
    expect(Array.from(e.inputIds)).toEqual([...full, tok.eosTokenId]);
    expect(Array.from(e.labels)).toEqual([...full.map((id, i) => (i < lcp ? IGNORE_INDEX : id)), tok.eosTokenId]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/1 of 1 records have a prompt\/assistant boundary inside a token/);
  });

  test('maxLength cuts ids and labels; addEos: false leaves EOS out', () => {
    const ds = loadDataset(path.join(DATA, 'prompt_completion.jsonl'), tok, { maxLength: 10 });
    ds.toArray().forEach((e, i) => {
      expect(plain(e)).toEqual({
        input_ids: REF.prompt_completion[i].input_ids.slice(0, 10),
        labels: REF.prompt_completion[i].labels.slice(0, 10),
      });
    });
    const [t] = datasetFromRecords([{ text: 'Hello world!' }], tok, { addEos: false }).toArray();
    expect(Array.from(t.inputIds)).toEqual(tok.encode('Hello world!'));
  });
});

describe('errors name the file, the line and what was expected', () => {
  test('a malformed JSONL line', () => {
    const f = tmpFile('bad.jsonl', '{"text": "a"}\n\n{"text": "b"\n{"text": "c"}\n');
    expect(() => loadDataset(f, tok)).toThrow(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: the line is not valid JSON`));
  });

  test('a record of no known shape names its keys and line', () => {
    const f = tmpFile('odd.jsonl', '{"text": "a"}\n{"question": "q", "answer": "a"}\n');
    expect(() => loadDataset(f, tok)).toThrow(/odd\.jsonl:2: a record needs "text", "prompt" and "completion", or "messages"; this one has keys \["question", "answer"\]/);
    const g = tmpFile('half.jsonl', '{"prompt": "q"}\n');
    expect(() => loadDataset(g, tok)).toThrow(/half\.jsonl:1: a prompt-completion record needs both/);
    const h = tmpFile('num.jsonl', '{"text": 5}\n');
    expect(() => loadDataset(h, tok)).toThrow(/num\.jsonl:1: "text" must be a string, got a number/);
    const k = tmpFile('arr.jsonl', '[1, 2]\n');
    expect(() => loadDataset(k, tok)).toThrow(/arr\.jsonl:1: expected a JSON object \(a record\), got an array/);
  });

  test('a bad message names the line and the message', () => {
    const f = tmpFile('chat.jsonl', '{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}\n');
    expect(() => loadDataset(f, tok)).toThrow(/chat\.jsonl:2: messages\[1\]\.content must be a string, got nothing \(the key is missing\)/);
    const g = tmpFile('empty.jsonl', '{"messages": []}\n');
    expect(() => loadDataset(g, tok)).toThrow(/empty\.jsonl:1: expected "messages" to be a non-empty list/);
  });

  test('JSON array files: the record line, and syntax errors by line', () => {
    const f = tmpFile('data.json', '[\n  {"text": "a"},\n  {"text": "b"},\n  {"txt": "c"}\n]\n');
    expect(() => loadDataset(f, tok)).toThrow(/data\.json:4 \(record 2\): .*keys \["txt"\]/);
    const g = tmpFile('broken.json', '[\n  {"text": "a"},\n  {"text": "b",}\n]\n');
    expect(() => loadDataset(g, tok)).toThrow(/broken\.json:3: the file is not valid JSON/);
    const h = tmpFile('obj.json', '{"text": "a"}');
    expect(() => loadDataset(h, tok)).toThrow(/obj\.json:1: expected a JSON array of records/);
  });

  test('a template that fails on a record names the line; missing files are named', () => {
    const f = tmpFile('roles.jsonl', '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}\n');
    expect(() => loadDataset(f, tok, { chatTemplate: 'strict' })).toThrow(/roles\.jsonl:2: chat template: .*alternate/);
    expect(() => loadDataset('/nonexistent/x.jsonl', tok)).toThrow(/cannot read data file \/nonexistent\/x\.jsonl/);
    const e = tmpFile('empty.jsonl', '\n\n');
    expect(() => loadDataset(e, tok)).toThrow(/empty\.jsonl: no records/);
  });
});

describe("packing 'wrapped'", () => {
  test('blocks of seqLen cut from the concatenation; labels follow; no EOS doubled', () => {
    const ds = loadDataset(path.join(DATA, 'prompt_completion.jsonl'), tok);
    const ids = REF.prompt_completion.flatMap((r: { input_ids: number[] }) => r.input_ids);
    const labels = REF.prompt_completion.flatMap((r: { labels: number[] }) => r.labels);
    const packed = packDataset(ds, { seqLen: 8, eosTokenId: tok.eosTokenId, strategy: 'wrapped' });
    expect(packed.length).toBe(Math.floor(ids.length / 8));
    packed.toArray().forEach((b, i) => {
      expect(Array.from(b.inputIds)).toEqual(ids.slice(i * 8, (i + 1) * 8));
      expect(Array.from(b.labels)).toEqual(labels.slice(i * 8, (i + 1) * 8));
    });
  });

  test('EOS between examples that lack it: labelled after a labelled end, -100 after a masked one', () => {
    const a: Example = { inputIds: Int32Array.from([10, 11, 12]), labels: Int32Array.from([10, 11, 12]) };
    const b: Example = { inputIds: Int32Array.from([20, 21]), labels: Int32Array.from([20, IGNORE_INDEX]) };
    const c: Example = { inputIds: Int32Array.from([30, 1]), labels: Int32Array.from([30, 1]) };
    const packed = packDataset(new Dataset([a, b, c]), { seqLen: 3, eosTokenId: 1, strategy: 'wrapped' });
    // stream: 10 11 12 EOS 20 21 EOS 30 EOS(own)  -> 9 tokens, 3 blocks
    expect(packed.toArray().map((x) => Array.from(x.inputIds))).toEqual([
      [10, 11, 12],
      [1, 20, 21],
      [1, 30, 1],
    ]);
    expect(packed.toArray().map((x) => Array.from(x.labels))).toEqual([
      [10, 11, 12],
      [1, 20, IGNORE_INDEX],
      [IGNORE_INDEX, 30, 1],
    ]);
  });

  test("the remainder is dropped, or padded with attention 0 and labels -100", () => {
    const a: Example = { inputIds: Int32Array.from([5, 6, 7, 8, 9]), labels: Int32Array.from([5, 6, 7, 8, 9]) };
    expect(packDataset(new Dataset([a]), { seqLen: 4, eosTokenId: null, strategy: 'wrapped' }).length).toBe(1);
    const padded = packDataset(new Dataset([a]), { seqLen: 4, eosTokenId: null, strategy: 'wrapped', remainder: 'pad', padTokenId: 0 });
    expect(padded.length).toBe(2);
    const batch = collate(padded.toArray(), { padTokenId: 0 });
    expect(batch.inputIds.tolist()).toEqual([
      [5, 6, 7, 8],
      [9, 0, 0, 0],
    ]);
    expect(batch.attentionMask.tolist()).toEqual([
      [1, 1, 1, 1],
      [1, 0, 0, 0],
    ]);
    expect(batch.labels.tolist()).toEqual([
      [5, 6, 7, 8],
      [9, -100, -100, -100],
    ]);
    for (const t of Object.values(batch)) t.dispose();
    expect(() => packDataset(new Dataset([a]), { seqLen: 8, eosTokenId: null, strategy: 'wrapped' })).toThrow(/make no block of seqLen 8/);
  });
});

describe('padding collate', () => {
  const a: Example = { inputIds: Int32Array.from([1, 2, 3]), labels: Int32Array.from([IGNORE_INDEX, 2, 3]) };
  const b: Example = { inputIds: Int32Array.from([4]), labels: Int32Array.from([4]) };

  test('right and left padding: pad id, attention 0, labels -100', () => {
    const r = collate([a, b], { padTokenId: 9 });
    expect(r.inputIds.dtype).toBe('int64');
    expect(r.labels.dtype).toBe('int64');
    expect(r.inputIds.tolist()).toEqual([
      [1, 2, 3],
      [4, 9, 9],
    ]);
    expect(r.attentionMask.tolist()).toEqual([
      [1, 1, 1],
      [1, 0, 0],
    ]);
    expect(r.labels.tolist()).toEqual([
      [-100, 2, 3],
      [4, -100, -100],
    ]);
    const l = collate([a, b], { padTokenId: 9, paddingSide: 'left', padding: 'max_length', maxLength: 4 });
    expect(l.inputIds.tolist()).toEqual([
      [9, 1, 2, 3],
      [9, 9, 9, 4],
    ]);
    expect(l.attentionMask.tolist()).toEqual([
      [0, 1, 1, 1],
      [0, 0, 0, 1],
    ]);
    expect(l.labels.tolist()).toEqual([
      [-100, -100, 2, 3],
      [-100, -100, -100, 4],
    ]);
    for (const t of [...Object.values(r), ...Object.values(l)]) t.dispose();
  });

  test('errors: no pad id, too long, mismatched labels', () => {
    expect(() => collate([a, b])).toThrow(/no padTokenId/);
    expect(() => collate([a], { padding: 'max_length', maxLength: 2, padTokenId: 0 })).toThrow(/example 0 has 3 tokens, more than maxLength 2/);
    expect(() => collate([{ inputIds: Int32Array.from([1, 2]), labels: Int32Array.from([1]) }])).toThrow(/2 input ids but 1 labels/);
  });
});

describe('DataLoader', () => {
  const examples = Array.from({ length: 10 }, (_, i): Example => {
    const ids = Int32Array.from({ length: 1 + (i % 4) }, (_, j) => 100 + i * 10 + j);
    return { inputIds: ids, labels: ids.slice() };
  });
  const ds = new Dataset(examples);

  test('batches in order with the tokenizer pad id; tensors made per batch; dropLast', () => {
    const before = memory().tensors;
    const loader = new DataLoader(ds, { batchSize: 4, tokenizer: tok });
    expect(memory().tensors).toBe(before);
    expect(loader.length).toBe(3);
    const seen: number[][] = [];
    for (const batch of loader) {
      expect(memory().tensors).toBe(before + 3);
      expect(batch.inputIds.dtype).toBe('int64');
      const rows = batch.inputIds.tolist() as number[][];
      const mask = batch.attentionMask.tolist() as number[][];
      rows.forEach((r, k) => seen.push(r.filter((_, j) => mask[k][j] === 1)));
      const padded = rows.flat().filter((_, j) => mask.flat()[j] === 0);
      expect(padded.length).toBeGreaterThan(0);
      expect(padded.every((x) => x === tok.padTokenId)).toBe(true);
      expect((batch.labels.tolist() as number[][]).flat().filter((_, j) => mask.flat()[j] === 0).every((x) => x === -100)).toBe(true);
      for (const t of Object.values(batch)) t.dispose();
    }
    expect(memory().tensors).toBe(before);
    expect(seen).toEqual(examples.map((e) => Array.from(e.inputIds)));
    expect(new DataLoader(ds, { batchSize: 4, dropLast: true, padTokenId: 0 }).length).toBe(2);
  });

  test('shuffle: a permutation that depends on seed and epoch only; resume from a batch', () => {
    const l1 = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 7, padTokenId: 0 });
    const l2 = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 7, padTokenId: 0 });
    const l3 = new DataLoader(ds, { batchSize: 3, shuffle: true, seed: 8, padTokenId: 0 });
    expect(l1.order(0)).toEqual(l2.order(0));
    expect([...l1.order(0)].sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    expect(l1.order(0)).not.toEqual(l1.order(1));
    expect(l1.order(0)).not.toEqual(l3.order(0));
    const firstRow = (b: { inputIds: { tolist(): unknown }; attentionMask: unknown; labels: unknown }) => {
      const v = (b.inputIds.tolist() as number[][])[0][0];
      for (const t of Object.values(b)) (t as { dispose(): void }).dispose();
      return v;
    };
    const all = [...l1.batches({ epoch: 2 })].map(firstRow);
    const tail = [...l2.batches({ epoch: 2, start: 2 })].map(firstRow);
    expect(tail).toEqual(all.slice(2));
    expect(all[0]).toBe(100 + l1.order(2)[0] * 10);
  });
});

describe('trainTestSplit', () => {
  const ds = new Dataset(Array.from({ length: 25 }, (_, i) => i));

  test('sizes as datasets rounds them; disjoint; the same seed gives the same split', () => {
    const a = ds.trainTestSplit({ testSize: 0.1, seed: 3 });
    expect(a.test.length).toBe(3);
    expect(a.train.length).toBe(22);
    expect([...a.train, ...a.test].sort((x, y) => x - y)).toEqual([...ds]);
    const b = ds.trainTestSplit({ testSize: 0.1, seed: 3 });
    expect(b.test.toArray()).toEqual(a.test.toArray());
    expect(b.train.toArray()).toEqual(a.train.toArray());
    const c = ds.trainTestSplit({ testSize: 0.1, seed: 4 });
    expect(c.test.toArray()).not.toEqual(a.test.toArray());
    expect(ds.trainTestSplit({ testSize: 5, trainSize: 10, seed: 1 }).train.length).toBe(10);
    const ordered = ds.trainTestSplit({ testSize: 5, shuffle: false });
    expect(ordered.test.toArray()).toEqual([20, 21, 22, 23, 24]);
    expect(() => ds.trainTestSplit({ testSize: 25 })).toThrow(/25 items cannot give 0 train and 25 test/);
    expect(() => ds.trainTestSplit({ testSize: 1.5 })).toThrow(/a fraction in \(0, 1\) or a count/);
  });

  test('a split of a loaded dataset, then loaders over each', () => {
    const full = loadDataset(path.join(DATA, 'text.jsonl'), tok);
    const { train, test } = full.trainTestSplit({ testSize: 0.4, seed: 0 });
    expect(train.length + test.length).toBe(full.length);
    expect(new DataLoader(packDataset(train, { seqLen: 16, eosTokenId: tok.eosTokenId }), { batchSize: 2 }).length).toBeGreaterThan(0);
    expect(new DataLoader(test, { batchSize: 2, tokenizer: tok }).length).toBe(1);
  });
});
