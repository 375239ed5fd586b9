// The training log: one entry per logging step, evaluation and the end, with transformers' key names
// (they are what trainer_state.json's log_history holds), kept as a JSON-lines file in the output folder.
import * as fs from 'fs';
import { writeFileAtomicSync } from '../io/fs-atomic';

export interface LogEntry {
  step: number;
  epoch?: number;
  /** Mean training loss of the steps since the last log. */
  loss?: number;
  learning_rate?: number;
  grad_norm?: number;
  /** Non-padding tokens per second since the last log. */
  tokens_per_second?: number;
  num_input_tokens_seen?: number;
  eval_loss?: number;
  /** exp(eval_loss). */
  eval_perplexity?: number;
  eval_runtime?: number;
  /** At the end: the mean loss over all steps, the time and the rates. */
  train_loss?: number;
  train_runtime?: number;
  train_samples_per_second?: number;
  train_steps_per_second?: number;
  train_tokens_per_second?: number;
  [key: string]: number | undefined;
}

/** JSON.stringify writes NaN and Infinity as null; a log keeps them readable as strings instead. */
function entryJSON(e: LogEntry): string {
  return JSON.stringify(e, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/** trainer_log.jsonl: appended to line by line; rewritten whole when a run resumes from a checkpoint. */
export class JsonlLog {
  constructor(readonly file: string) {}

  /** Replaces the file with `entries` (a resumed run's history up to its checkpoint), atomically. */
  reset(entries: LogEntry[] = []): void {
    writeFileAtomicSync(this.file, entries.map((e) => entryJSON(e) + '\n').join(''));
  }

  append(entry: LogEntry): void {
    fs.appendFileSync(this.file, entryJSON(entry) + '\n');
  }

  /** The entries of a log file. */
  static read(file: string): LogEntry[] {
    const text = fs.readFileSync(file, 'utf8');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          return JSON.parse(l, (_k, v) => (v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? Number(v) : v)) as LogEntry;
        } catch (e) {
          throw new Error(`${file}:${i + 1}: not a JSON log entry: ${(e as Error).message}`);
        }
      });
  }
}
