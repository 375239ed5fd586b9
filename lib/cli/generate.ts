// torch-lora generate: continues prompts with a base model, optionally with an adapter on it; greedy by
// default, or sampled (temperature, top-k, top-p), as transformers' generate().
import * as fs from 'fs';
import * as path from 'path';
import { manualSeed } from '../autograd';
import { tensor } from '../creation';
import type { Tokenizer } from '../data';
import { DType } from '../dtype';
import { scope } from '../memory';
import { configDType, generate, readConfig } from '../models';
import { CpuFloat16Error, resolveCpuDType } from '../train/precision';
import { CliIO, say } from './io';
import { checkDevice, DTYPE_CHOICES, float16FlagError, loadAdapter, loadBaseModel, loadTokenizer, modelDirOf, requireModelDir } from './load-model';
import type { Command } from './main';
import { CommandSpec, Parsed, requireOptions, UsageError } from './options';
import { applyThreads, threadsOption } from './threads';

const spec: CommandSpec = {
  name: 'generate',
  usage: '(--model DIR [--adapter DIR] | --adapter DIR) --prompt TEXT [options]',
  summary: 'Continues prompts with a model, with or without a LoRA adapter, and prints the text.',
  options: [
    { name: 'model', type: 'string', placeholder: 'DIR', description: "base model folder (config.json, model.safetensors, tokenizer.json) [default: the adapter's base_model_name_or_path]" },
    { name: 'adapter', type: 'string', placeholder: 'DIR', description: 'a PEFT adapter folder to apply' },
    { name: 'tokenizer', type: 'string', placeholder: 'DIR', description: 'tokenizer folder [default: the model folder]' },
    { name: 'prompt', short: 'p', type: 'string', placeholder: 'TEXT', multiple: true, required: true, description: 'the text to continue' },
    { name: 'chat', type: 'boolean', description: "wrap each prompt as a user message in the chat template (the adapter's chat_template.jinja, else the tokenizer's)" },
    { name: 'chat-template', type: 'string', placeholder: 'NAME|FILE', description: 'with --chat: a named template of the tokenizer, a built-in format (chatml, llama3, gemma) or a .jinja file' },
    { name: 'max-new-tokens', type: 'integer', placeholder: 'N', default: 64, description: 'tokens to generate at most' },
    { name: 'do-sample', type: 'boolean', description: "sample instead of taking the most likely token (default: the model's generation_config.json, else no)" },
    { name: 'temperature', type: 'number', placeholder: 'X', description: "sampling temperature (default: generation_config.json's, else 1)" },
    { name: 'top-k', type: 'integer', placeholder: 'N', description: "sample among the N most likely tokens, 0: all (default: generation_config.json's, else 50)" },
    { name: 'top-p', type: 'number', placeholder: 'X', description: "sample among the most likely tokens of total probability X (default: generation_config.json's, else 1)" },
    { name: 'seed', type: 'integer', placeholder: 'N', description: 'random seed for sampling' },
    { name: 'only-new', type: 'boolean', description: 'print only the generated text, not the prompt' },
    { name: 'device', type: 'string', placeholder: 'DEV', default: 'cpu', description: 'cpu, cuda or cuda:N' },
    { name: 'dtype', type: 'string', placeholder: 'TYPE', default: 'auto', choices: DTYPE_CHOICES, description: "weights' dtype (auto: the config's)" },
    threadsOption(),
  ],
  details:
    'Examples:\n  torch-lora generate --model ./my-llama --adapter ./out --prompt "Once upon a time" --max-new-tokens 40\n' +
    '  torch-lora generate --adapter ./out --prompt "Once upon a time"   (the base model the adapter names)',
};

/**
 * The dtype to load for generation: where libtorch cannot multiply float16 matrices on the CPU (1.x),
 * --dtype float16 is a usage error and 'auto' on a float16 checkpoint loads float32, with a note.
 */
function generationDType(modelDir: string, device: string, dtype: DType | 'auto', io: CliIO): DType | 'auto' {
  try {
    const r = resolveCpuDType(dtype, () => configDType(readConfig(modelDir)), device, { purpose: 'inference' });
    if (r.note !== undefined) say(io, `note: ${r.note}`);
    return r.dtype;
  } catch (e) {
    if (e instanceof CpuFloat16Error) throw float16FlagError(e);
    throw e;
  }
}

/**
 * The template --chat uses: --chat-template, else the one the adapter was trained with (train
 * --chat-template saves it beside the adapter), else the tokenizer's (undefined).
 */
function chatTemplateFor(tokenizer: Tokenizer, given: string | undefined, adapter: string | undefined): string | undefined {
  const saved = adapter !== undefined ? path.join(adapter, 'chat_template.jinja') : undefined;
  const choice = given ?? (saved !== undefined && fs.existsSync(saved) ? saved : undefined);
  if (choice === undefined) return undefined;
  try {
    tokenizer.chatTemplate(choice);
  } catch (e) {
    throw given !== undefined ? new UsageError(`--chat-template: ${(e as Error).message}`) : e;
  }
  return choice;
}

async function run(parsed: Parsed, io: CliIO): Promise<void> {
  const v = parsed.values;
  requireOptions(spec, v);
  applyThreads(v.threads);
  if ((v.maxNewTokens as number) < 0) throw new UsageError(`--max-new-tokens must be non-negative, got ${v.maxNewTokens}`);
  if (!v.chat && v.chatTemplate !== undefined) throw new UsageError('--chat-template applies with --chat');
  const prompts = v.prompt as string[];
  const device = checkDevice(v.device as string);
  const modelDir = modelDirOf(v.model as string | undefined, v.adapter as string | undefined);
  requireModelDir(modelDir);
  const tokenizer = await loadTokenizer((v.tokenizer as string | undefined) ?? modelDir);
  const chatTemplate = v.chat ? chatTemplateFor(tokenizer, v.chatTemplate as string | undefined, v.adapter as string | undefined) : undefined;
  const base = await loadBaseModel(modelDir, { device, dtype: generationDType(modelDir, device, v.dtype as DType | 'auto', io) });
  // The adapter's layers go into `base` itself, so generating with `base` uses them.
  const peft = v.adapter !== undefined ? await loadAdapter(base, v.adapter as string) : undefined;
  base.eval();
  if (v.seed !== undefined) manualSeed(v.seed as number);
  const eos = tokenizer.eosTokenId;
  prompts.forEach((prompt, i) => {
    const text = scope(() => {
      const ids = v.chat
        ? tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true, tokenize: true, chatTemplate })
        : tokenizer.encode(prompt);
      const input = tensor([ids], { dtype: 'int64', device });
      const out = generate(base, input, {
        maxNewTokens: v.maxNewTokens as number,
        // Options not given fall to the model's generation_config.json (generate()'s defaults), as in transformers.
        doSample: v.doSample ? true : undefined,
        temperature: v.temperature as number | undefined,
        topK: v.topK as number | undefined,
        topP: v.topP as number | undefined,
        eosTokenId: base.generationConfig?.eosTokenId !== undefined ? undefined : (eos ?? undefined),
        padTokenId: tokenizer.padTokenId ?? eos ?? undefined,
      });
      const fresh = out.narrow(1, ids.length, out.shape[1] - ids.length);
      return tokenizer.decode(fresh.reshape(-1), { skipSpecialTokens: true });
    });
    if (i > 0) say(io);
    say(io, v.onlyNew ? text : prompt + text);
  });
  (peft ?? base).dispose();
}

export const command: Command = { spec, run };
