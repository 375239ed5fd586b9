// The loss curve as an SVG picture, written by hand (no plotting dependency): training loss per logging
// step as a line, evaluation loss as dots, with axes, round-number ticks and a legend. Any browser or
// image viewer opens it.
import { writeFileAtomicSync } from '../io/fs-atomic';
import { LogEntry } from './log-entry';

export interface LossPlotOptions {
  title?: string;
  width?: number;
  height?: number;
}

/** About `count` round ticks (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return niceTicks(lo - pad, hi + pad, count);
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[0] > lo) out.unshift(Number((out[0] - step).toPrecision(12)));
  if (out[out.length - 1] < hi) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

function label(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(6)));
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The SVG text of the training (and evaluation) loss over the steps of `history`. */
export function lossCurveSvg(history: LogEntry[], opts: LossPlotOptions = {}): string {
  const width = opts.width ?? 720;
  const height = opts.height ?? 420;
  const m = { left: 70, right: 24, top: 44, bottom: 56 };
  const train = history.filter((e) => e.loss !== undefined && Number.isFinite(e.loss)).map((e) => [e.step, e.loss!] as const);
  const evals = history.filter((e) => e.eval_loss !== undefined && Number.isFinite(e.eval_loss)).map((e) => [e.step, e.eval_loss!] as const);
  const all = [...train, ...evals];
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  // The step axis ends at the last step (ticks inside it); the loss axis at round numbers around the data.
  const [x0, x1] = [Math.min(0, ...xs), Math.max(1, ...xs)];
  const xTicks = niceTicks(x0, x1, 6).filter((t) => t >= x0 && t <= x1);
  const yTicks = niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1);
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const px = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const py = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(1);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(opts.title ?? 'Training loss')}</text>`);
  // Grid and ticks.
  for (const t of yTicks) {
    const y = f(py(t));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${width - m.right}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#444">${label(t)}</text>`);
  }
  for (const t of xTicks) {
    const x = f(px(t));
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle" fill="#444">${label(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${height - 14}" text-anchor="middle">step</text>`);
  out.push(`<text x="18" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${m.top + ph / 2})">loss</text>`);
  // Data.
  if (train.length > 0) {
    const pts = train.map(([x, y]) => `${f(px(x))},${f(py(y))}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="#1f77b4" stroke-width="2" stroke-linejoin="round"/>`);
    if (train.length === 1) out.push(`<circle cx="${f(px(train[0][0]))}" cy="${f(py(train[0][1]))}" r="3" fill="#1f77b4"/>`);
  }
  for (const [x, y] of evals) out.push(`<circle cx="${f(px(x))}" cy="${f(py(y))}" r="4" fill="#ff7f0e"/>`);
  // Legend.
  const lx = width - m.right - 150;
  let ly = m.top + 16;
  if (train.length > 0) {
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="#1f77b4" stroke-width="2"/>`);
    out.push(`<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">training loss</text>`);
    ly += 18;
  }
  if (evals.length > 0) {
    out.push(`<circle cx="${lx + 12}" cy="${ly}" r="4" fill="#ff7f0e"/>`);
    out.push(`<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">evaluation loss</text>`);
  }
  if (all.length === 0)
    out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph / 2}" text-anchor="middle" fill="#888">no loss logged yet</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes lossCurveSvg(history) to `file`. */
export function writeLossPlot(file: string, history: LogEntry[], opts: LossPlotOptions = {}): void {
  writeFileAtomicSync(file, lossCurveSvg(history, opts));
}
