// What the terminal shows while training: on a TTY a progress bar redrawn in place (tqdm's layout,
// with the last loss and lr), elsewhere (a pipe, a CI log) one plain line per log entry.
import { LogEntry } from './log-entry';

/** Where the text goes: process.stdout or anything with write (tests pass a collector). */
export interface ReportStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export type ProgressMode = 'progress' | 'plain' | 'none';

/** 'auto' -> a bar on a terminal, plain lines otherwise. */
export function progressModeFor(mode: 'auto' | ProgressMode, stream: ReportStream): ProgressMode {
  if (mode !== 'auto') return mode;
  return stream.isTTY ? 'progress' : 'plain';
}

/** mm:ss, or h:mm:ss past an hour. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

function num(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(digits);
}

/** One log entry as a line: `step 10/100 | epoch 0.40 | loss 1.2345 | lr 2.00e-04 | grad_norm 0.5120 | 5234 tok/s`. */
export function formatLogLine(e: LogEntry, totalSteps: number): string {
  const parts = [`step ${e.step}/${totalSteps}`];
  if (e.epoch !== undefined) parts.push(`epoch ${e.epoch.toFixed(2)}`);
  if (e.loss !== undefined) parts.push(`loss ${num(e.loss)}`);
  if (e.eval_loss !== undefined) parts.push(`eval_loss ${num(e.eval_loss)}`);
  if (e.eval_perplexity !== undefined) parts.push(`perplexity ${num(e.eval_perplexity, 2)}`);
  // computeMetrics' metrics (eval_accuracy ...), in the order it returned them.
  for (const [k, v] of Object.entries(e))
    if (k.startsWith('eval_') && !['eval_loss', 'eval_perplexity', 'eval_runtime'].includes(k) && typeof v === 'number') parts.push(`${k} ${num(v)}`);
  if (e.learning_rate !== undefined) parts.push(`lr ${e.learning_rate.toExponential(2)}`);
  if (e.grad_norm !== undefined) parts.push(`grad_norm ${num(e.grad_norm)}`);
  if (e.tokens_per_second !== undefined) parts.push(`${Math.round(e.tokens_per_second)} tok/s`);
  if (e.train_loss !== undefined) parts.push(`train_loss ${num(e.train_loss)}`);
  if (e.train_runtime !== undefined) parts.push(`${formatDuration(e.train_runtime)} in all`);
  return parts.join(' | ');
}

export class ProgressReporter {
  readonly mode: ProgressMode;
  private readonly stream: ReportStream;
  private readonly total: number;
  private startStep = 0;
  private step = 0;
  private startTime = Date.now();
  private lastDraw = 0;
  private barShown = false;
  private postfix = '';

  constructor(opts: { mode: 'auto' | ProgressMode; totalSteps: number; stream?: ReportStream }) {
    this.stream = opts.stream ?? process.stdout;
    this.mode = progressModeFor(opts.mode, this.stream);
    this.total = opts.totalSteps;
  }

  /** Starts the clock at `step` (non-zero when resuming, so the rate counts only this run's steps). */
  start(step = 0): void {
    this.startStep = step;
    this.step = step;
    this.startTime = Date.now();
    if (this.mode === 'progress') this.draw(true);
  }

  /** A step is done; `postfix` shows after the bar (the last loss and lr). */
  update(step: number, postfix?: string): void {
    this.step = step;
    if (postfix !== undefined) this.postfix = postfix;
    if (this.mode === 'progress') this.draw(step === this.total);
  }

  /** A log entry: its own line (above the bar on a terminal). */
  log(entry: LogEntry): void {
    this.message(formatLogLine(entry, this.total));
  }

  /** Any line (above the bar on a terminal). */
  message(line: string): void {
    if (this.mode === 'none') return;
    if (this.mode === 'progress' && this.barShown) this.stream.write('\r\x1b[2K');
    this.stream.write(line + '\n');
    if (this.mode === 'progress' && this.barShown) this.draw(true);
  }

  /** Ends the bar's line. */
  finish(): void {
    if (this.mode === 'progress' && this.barShown) {
      this.draw(true);
      this.stream.write('\n');
      this.barShown = false;
    }
  }

  /** tqdm's layout: ` 37%|███████░░░░░░░░░░░░░| 37/100 [00:12<00:20, 3.05 it/s, loss 1.234]`. */
  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return; // at most ten redraws a second
    this.lastDraw = now;
    const elapsed = (now - this.startTime) / 1000;
    const done = this.step - this.startStep;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (this.total - this.step) / rate : NaN;
    const frac = this.total > 0 ? Math.min(1, this.step / this.total) : 0;
    const right = ` ${this.step}/${this.total} [${formatDuration(elapsed)}<${formatDuration(eta)}, ${rate.toFixed(2)} it/s${this.postfix ? ', ' + this.postfix : ''}]`;
    const left = `${String(Math.floor(frac * 100)).padStart(3)}%|`;
    const columns = this.stream.columns || 100; // 0 or undefined: not known
    const width = Math.max(10, Math.min(40, columns - left.length - right.length - 2));
    const filled = Math.round(frac * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    this.stream.write(`\r\x1b[2K${left}${bar}|${right}`);
    this.barShown = true;
  }
}
