// generation_config.json: the decoding defaults a checkpoint ships (end tokens, sampling settings), which
// transformers' generate() uses when the call does not say. Llama-3-Instruct, for instance, ends turns
// with a second eos token that only this file names.
import * as fs from 'fs';
import * as path from 'path';
import { readJsonObject } from '../io/json-file';
import { pythonJsonDumps } from '../io/python-json';

export const GENERATION_CONFIG_NAME = 'generation_config.json';

/** The keys generate() reads, camelCased; `raw` is the whole file as read (written back by savePretrained). */
export interface GenerationConfig {
  eosTokenId?: number | number[];
  padTokenId?: number;
  bosTokenId?: number;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  maxNewTokens?: number;
  raw: Record<string, unknown>;
}

/** Keys that hold floats, written as Python writes floats (1.0, not 1). */
const FLOAT_KEYS = ['temperature', 'top_p', 'repetition_penalty', 'length_penalty', 'typical_p', 'epsilon_cutoff', 'eta_cutoff', 'min_p'];

function field<T>(raw: Record<string, unknown>, key: string, ok: (v: unknown) => boolean, expected: string, file: string): T | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (!ok(v)) throw new Error(`${file}: "${key}" must be ${expected}, got ${JSON.stringify(v)}`);
  return v as T;
}

const isInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
const isTokenIds = (v: unknown) => isInt(v) || (Array.isArray(v) && v.length > 0 && v.every(isInt));

/** Parses a generation_config.json object; `file` names it in errors. */
export function parseGenerationConfig(raw: Record<string, unknown>, file = GENERATION_CONFIG_NAME): GenerationConfig {
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  return {
    eosTokenId: field(raw, 'eos_token_id', isTokenIds, 'a token id or a list of token ids', file),
    padTokenId: field(raw, 'pad_token_id', isInt, 'a token id', file),
    bosTokenId: field(raw, 'bos_token_id', isInt, 'a token id', file),
    doSample: field(raw, 'do_sample', (v) => typeof v === 'boolean', 'true or false', file),
    temperature: field(raw, 'temperature', (v) => num(v) && (v as number) > 0, 'a positive number', file),
    topK: field(raw, 'top_k', isInt, 'a non-negative integer', file),
    topP: field(raw, 'top_p', (v) => num(v) && (v as number) > 0 && (v as number) <= 1, 'a number in (0, 1]', file),
    maxNewTokens: field(raw, 'max_new_tokens', isInt, 'a non-negative integer', file),
    raw,
  };
}

/** Reads `dir/generation_config.json`; undefined when the folder has none (transformers then derives one from config.json). */
export function readGenerationConfig(dir: string): GenerationConfig | undefined {
  const file = path.join(dir, GENERATION_CONFIG_NAME);
  if (!fs.existsSync(file)) return undefined;
  const raw = readJsonObject(file, 'generation config');
  return parseGenerationConfig(raw as Record<string, unknown>, file);
}

/** The file's text as transformers writes it (json.dumps(indent=2, sort_keys=True) and a newline). */
export function generationConfigJSONString(config: GenerationConfig): string {
  return pythonJsonDumps(config.raw, FLOAT_KEYS) + '\n';
}
