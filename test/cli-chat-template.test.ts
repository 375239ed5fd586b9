// `torch-lora train --train-on-inputs` and `--chat-template`: the loss on every token trains exactly what
// the same records as plain {"text"} train; a template from a .jinja file trains what the tokenizer's own
// (the same text) trains; a built-in format is used and its missing marker tokens are said; bad values
// are usage errors before anything is trained.
import * as fs from 'fs';
import * as path from 'path';
import { DEMO_CHAT_TEMPLATE } from '../lib/demo/demo-tokenizer';
import { finetuneSamples } from '../lib/demo/synthetic-language';
import { adapterFile, cli, CliResult, loggedLosses, makeModelDir } from './helpers/cli';
import { maxFileDiff, tmpDir } from './helpers/train';

let dir: string;
let model: string;
const COMMON = ['--r', '4', '--lora-alpha', '8', '--lora-dropout', '0', '--lr', '0.01', '--batch-size', '4', '--max-steps', '2', '--logging-steps', '1', '--seed', '1', '--report', 'none'];
const samples = finetuneSamples(8, 0);

function write(name: string, records: unknown[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return f;
}
async function train(name: string, ...argv: string[]): Promise<{ out: string; r: CliResult }> {
  const out = path.join(dir, name);
  const r = await cli('train', '--model', model, '--output', out, ...COMMON, ...argv);
  expect([name, r.code, r.err]).toEqual([name, 0, '']);
  return { out, r };
}
const losses = loggedLosses;
const chats = () =>
  samples.map((s) => ({ messages: [{ role: 'user', content: s.prompt.slice(0, -' ->'.length) }, { role: 'assistant', content: s.completion.slice(1) }] }));

beforeAll(() => {
  dir = tmpDir('cli-chat');
  model = makeModelDir(dir);
});

test('--train-on-inputs: prompt/completion records train as the same text as {"text"} records; without it, not', async () => {
  const pc = write('pc.jsonl', samples);
  const text = write('text.jsonl', samples.map((s) => ({ text: s.prompt + s.completion })));
  const all = (await train('all', '--data', pc, '--train-on-inputs')).out;
  const plain = (await train('plain', '--data', text)).out;
  const masked = (await train('masked', '--data', pc)).out;
  expect(losses(all)).toEqual(losses(plain));
  expect(maxFileDiff(adapterFile(all), adapterFile(plain))).toBe(0);
  expect(losses(masked)).not.toEqual(losses(plain));
  // The same from a --config file.
  const config = path.join(dir, 'run.json');
  fs.writeFileSync(config, JSON.stringify({ 'train-on-inputs': true }));
  const fromConfig = (await train('config', '--data', pc, '--config', config)).out;
  expect(maxFileDiff(adapterFile(fromConfig), adapterFile(plain))).toBe(0);
});

test("--chat-template FILE: the tokenizer's own template from a file trains the same; a built-in format says what it lacks", async () => {
  const data = write('chat.jsonl', chats());
  const jinja = path.join(dir, 'demo.jinja');
  fs.writeFileSync(jinja, DEMO_CHAT_TEMPLATE);
  const own = (await train('own', '--data', data)).out;
  const file = (await train('file', '--data', data, '--chat-template', jinja)).out;
  expect(maxFileDiff(adapterFile(file), adapterFile(own))).toBe(0);
  const { out, r } = await train('chatml', '--data', data, '--chat-template', 'chatml');
  expect(r.out).toMatch(/warning: the 'chatml' chat format's <\|im_start\|> <\|im_end\|> are not tokens of this tokenizer/);
  expect(losses(out)).not.toEqual(losses(own));
});

test.each([
  [['--chat-template', 'chatlm'], /^torch-lora train: --chat-template: no chat template named "chatlm" in .*: it has "default"; the built-in ones are 'chatml', 'llama3', 'gemma', or give a \.jinja file\n/],
  [['--chat-template', 'missing.jinja'], /^torch-lora train: --chat-template: chat template file 'missing\.jinja' does not exist/],
  [['--train-on-inputs', 'maybe'], /^torch-lora train: unexpected argument 'maybe'/],
])('train %j is a usage error, and nothing is written', async (argv, message) => {
  const out = path.join(dir, 'never');
  const r = await cli('train', '--model', model, '--data', write('d.jsonl', samples), '--output', out, ...COMMON, ...(argv as string[]));
  expect(r.code).toBe(2);
  expect(r.err).toMatch(message as RegExp);
  expect(fs.existsSync(out)).toBe(false);
});

test("generate --chat uses the template the adapter was trained with (saved beside it), unless --chat-template says otherwise", async () => {
  // Marks the assistant with {% generation %} (so training never renders a generation prompt) and refuses
  // to render one: generating with it fails with this message, which shows which template was used.
  const refusing =
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] + ' ->' }}" +
    "{% else %}{% generation %}{{ ' ' + m['content'] + eos_token }}{% endgeneration %}{% endif %}{% endfor %}" +
    "{% if add_generation_prompt %}{{ raise_exception('the adapter template was used') }}{% endif %}";
  const jinja = path.join(dir, 'refusing.jinja');
  fs.writeFileSync(jinja, refusing);
  const { out } = await train('saved', '--data', write('chat2.jsonl', chats()), '--chat-template', jinja);
  expect(fs.readFileSync(path.join(out, 'chat_template.jinja'), 'utf8')).toBe(refusing);
  const gen = (...argv: string[]) => cli('generate', '--adapter', out, '--prompt', 'shift cat', '--max-new-tokens', '2', ...argv);
  const used = await gen('--chat');
  expect(used.code).not.toBe(0);
  expect(used.err).toContain('the adapter template was used');
  const own = await gen('--chat', '--chat-template', 'default');
  expect([own.code, own.err]).toEqual([0, '']);
  expect(own.out.startsWith('shift cat')).toBe(true);
  const plain = await gen();
  expect([plain.code, plain.err]).toEqual([0, '']); // no --chat: no template at all
  const alone = await gen('--chat-template', 'default');
  expect([alone.code, alone.err]).toEqual([2, "torch-lora generate: --chat-template applies with --chat\nSee 'torch-lora generate --help'.\n"]);
  const bad = await gen('--chat', '--chat-template', 'nope.jinja');
  expect(bad.code).toBe(2);
  expect(bad.err).toMatch(/^torch-lora generate: --chat-template: chat template file 'nope\.jinja' does not exist/);
});
