// Tracking the best evaluation and stopping early, as transformers' Trainer._determine_best_metric and
// EarlyStoppingCallback do: the metric is named with or without the 'eval_' prefix; an evaluation is the
// new best when strictly better than best_metric; early stopping counts evaluations in a row that do not
// beat the best so far (before this evaluation updates it) by more than the threshold, in absolute value.

/** What trainer_state.json keeps of the best model (transformers' TrainerState keys). */
export interface BestModelState {
  best_metric: number | null;
  best_global_step: number | null;
  best_model_checkpoint: string | null;
}

/** transformers' EarlyStoppingCallback's exported state, kept under trainer_state.json's stateful_callbacks. */
export interface EarlyStoppingState {
  args: { early_stopping_patience: number; early_stopping_threshold: number };
  attributes: { early_stopping_patience_counter: number };
}

/** The key of a metric in the evaluation's results: 'loss' → 'eval_loss'. */
export function evalMetricKey(metric: string): string {
  return metric.startsWith('eval_') ? metric : `eval_${metric}`;
}

/** The metric's value among an evaluation's results; throws naming the metrics there are when it is missing. */
export function metricValue(metrics: Record<string, number | undefined>, metric: string): number {
  const key = evalMetricKey(metric);
  const v = metrics[key];
  if (typeof v !== 'number')
    throw new Error(
      `metricForBestModel is '${metric}', but the evaluation has no '${key}'; it has ${Object.keys(metrics).join(', ')}. ` +
        "Choose one of those, or return it from computeMetrics (without or with the 'eval_' prefix)",
    );
  return v;
}

/** Whether `value` is better than `best` (strictly; NaN never is), as np.greater / np.less. */
export function isBetter(value: number, best: number, greaterIsBetter: boolean): boolean {
  return greaterIsBetter ? value > best : value < best;
}

/**
 * Updates best_metric / best_global_step with an evaluation at `step` (null when no checkpoints are saved)
 * as transformers' _determine_best_metric; returns whether it is the new best.
 */
export function updateBest(state: BestModelState, value: number, step: number | null, greaterIsBetter: boolean): boolean {
  const best = state.best_metric ?? (greaterIsBetter ? -Infinity : Infinity);
  if (!isBetter(value, best, greaterIsBetter)) {
    if (state.best_metric === null) state.best_metric = best; // transformers sets it to ±inf on the first evaluation
    return false;
  }
  state.best_metric = value;
  if (step !== null) state.best_global_step = step; // transformers: only when checkpoints are saved
  return true;
}

/** transformers' EarlyStoppingCallback: counts evaluations that do not improve on the best so far. */
export class EarlyStopping {
  counter = 0;

  constructor(
    readonly patience: number,
    readonly threshold: number,
  ) {}

  /**
   * An evaluation's metric against the best before it (null: none yet). Returns true when training should
   * stop: `patience` evaluations in a row have not improved by more than the threshold.
   */
  onEvaluate(value: number, bestBefore: number | null, greaterIsBetter: boolean): boolean {
    if (bestBefore === null || (isBetter(value, bestBefore, greaterIsBetter) && Math.abs(value - bestBefore) > this.threshold)) this.counter = 0;
    else this.counter++;
    return this.counter >= this.patience;
  }

  state(): EarlyStoppingState {
    return {
      args: { early_stopping_patience: this.patience, early_stopping_threshold: this.threshold },
      attributes: { early_stopping_patience_counter: this.counter },
    };
  }

  /** Takes a checkpoint's counter (transformers' _load_callback_state restores the attributes only). */
  loadState(s: EarlyStoppingState | undefined): void {
    const c = s?.attributes?.early_stopping_patience_counter;
    if (typeof c === 'number' && Number.isInteger(c) && c >= 0) this.counter = c;
  }
}
