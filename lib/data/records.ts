// Reading training records from JSONL or JSON files, each checked against the shapes TRL's SFTTrainer
// knows: {"text"}, {"prompt","completion"} and {"messages"} (prompt and completion may also be message
// lists). Every error names the file and the line.
import * as fs from 'fs';
import { ChatMessage } from './chat_template';

export type DataRecord =
  | { kind: 'text'; text: string }
  | { kind: 'prompt_completion'; prompt: string; completion: string }
  | { kind: 'chat_prompt_completion'; prompt: ChatMessage[]; completion: ChatMessage[] }
  | { kind: 'messages'; messages: ChatMessage[] };

/** A record and where it came from. */
export type SourcedRecord = DataRecord & { source: { file: string; line: number } };

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the key is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function messagesOf(v: unknown, key: string, at: string): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0)
    throw new Error(`${at}: expected "${key}" to be a non-empty list of {"role", "content"} messages, got ${describe(v)}`);
  v.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m))
      throw new Error(`${at}: ${key}[${i}] must be an object with "role" and "content", got ${describe(m)}`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string') throw new Error(`${at}: ${key}[${i}].role must be a string, got ${describe(role)}`);
    if (typeof content !== 'string')
      throw new Error(`${at}: ${key}[${i}].content must be a string, got ${describe(content)}`);
  });
  return v as ChatMessage[];
}

/** Checks one parsed value against the known shapes. `at` is "file:line" for the messages. */
export function toRecord(v: unknown, at: string): DataRecord {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new Error(`${at}: expected a JSON object (a record), got ${describe(v)}`);
  const o = v as Record<string, unknown>;
  if ('messages' in o) return { kind: 'messages', messages: messagesOf(o.messages, 'messages', at) };
  if ('prompt' in o || 'completion' in o) {
    if (!('prompt' in o) || !('completion' in o))
      throw new Error(`${at}: a prompt-completion record needs both "prompt" and "completion"; it has keys ${keysOf(o)}`);
    const { prompt, completion } = o;
    if (typeof prompt === 'string' && typeof completion === 'string') return { kind: 'prompt_completion', prompt, completion };
    if (Array.isArray(prompt) && Array.isArray(completion))
      return {
        kind: 'chat_prompt_completion',
        prompt: messagesOf(prompt, 'prompt', at),
        completion: messagesOf(completion, 'completion', at),
      };
    throw new Error(
      `${at}: "prompt" and "completion" must both be strings or both be message lists, got ${describe(prompt)} and ${describe(completion)}`,
    );
  }
  if ('text' in o) {
    if (typeof o.text !== 'string') throw new Error(`${at}: "text" must be a string, got ${describe(o.text)}`);
    return { kind: 'text', text: o.text };
  }
  throw new Error(
    `${at}: a record needs "text", "prompt" and "completion", or "messages"; this one has keys ${keysOf(o)}`,
  );
}

function keysOf(o: Record<string, unknown>): string {
  const keys = Object.keys(o);
  return keys.length ? `[${keys.map((k) => JSON.stringify(k)).join(', ')}]` : '[] (an empty object)';
}

/** 1-based line of a character offset. */
function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** JSON.parse, with V8's "position N" turned into a line number of the file. */
function parseWithLine(text: string, file: string, baseLine: number, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const line = pos ? baseLine + lineAt(text, Number(pos[1])) - 1 : baseLine;
    throw new Error(`${file}:${line}: ${what} is not valid JSON (${msg})`);
  }
}

/**
 * The offsets where the top-level elements of a JSON array start (text is valid JSON, checked before).
 * Lets a record of a .json file be named by its line as a .jsonl record is.
 */
function arrayElementOffsets(text: string): number[] {
  const starts: number[] = [];
  let depth = 0;
  let inString = false;
  let expectValue = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
    if (depth === 1 && expectValue && c !== ']') {
      starts.push(i);
      expectValue = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectValue = true;
  }
  return starts;
}

/**
 * Reads records from a .jsonl file (one JSON object a line; blank lines skipped) or a .json file (one
 * array of objects). Other names go by content: a file that starts with '[' is a JSON array.
 */
export function readRecords(file: string): SourcedRecord[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read data file ${file}: ${(err as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const first = text.trimStart()[0];
  const out: SourcedRecord[] = [];
  if (file.endsWith('.json') || (!file.endsWith('.jsonl') && first === '[')) {
    const v = parseWithLine(text, file, 1, 'the file');
    if (!Array.isArray(v))
      throw new Error(`${file}:1: expected a JSON array of records (or use .jsonl, one record a line), got ${describe(v)}`);
    const offsets = arrayElementOffsets(text);
    let line = 1;
    let at = 0;
    v.forEach((item, i) => {
      const off = offsets[i] ?? 0;
      for (; at < off; at++) if (text.charCodeAt(at) === 10) line++;
      out.push({ ...toRecord(item, `${file}:${line} (record ${i})`), source: { file, line } });
    });
  } else {
    const lines = text.split('\n');
    lines.forEach((raw, i) => {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line.trim() === '') return;
      const at = `${file}:${i + 1}`;
      const v = parseWithLine(line, file, i + 1, 'the line');
      out.push({ ...toRecord(v, at), source: { file, line: i + 1 } });
    });
  }
  if (out.length === 0) throw new Error(`${file}: no records`);
  return out;
}
