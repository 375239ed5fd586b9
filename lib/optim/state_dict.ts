// The optimizer's state dict, shaped as PyTorch's (state by parameter index, then the parameter
// groups with their hyperparameters and the indices of their parameters), and its split into
// tensors for a .safetensors file plus a JSON-able rest, which is how it goes to disk:
//
//   const { tensors, meta } = flattenOptimizerState(optimizer.stateDict());
//   saveSafetensorsSync(tensors, 'optimizer.safetensors');        // 'state.0.exp_avg', ...
//   fs.writeFileSync('optimizer.json', JSON.stringify(meta));     // steps and param groups
//   ...
//   optimizer.loadStateDict(unflattenOptimizerState(loadSafetensorsSync('optimizer.safetensors'),
//                                                   JSON.parse(fs.readFileSync('optimizer.json', 'utf8'))));
import { Tensor } from '../tensor';

/** One parameter's state: tensors (exp_avg, exp_avg_sq, momentum_buffer ...) and numbers (step). */
export type ParamState = Record<string, Tensor | number>;

/** A parameter group as saved: its hyperparameters and the indices of its parameters. */
export type SavedParamGroup = Record<string, unknown> & { params: number[] };

/**
 * `state`: parameter index (counting through the groups in order) -> that parameter's state, for
 * the parameters that have one (those that have had a gradient at a step). State keys are PyTorch's
 * (`step`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `momentum_buffer`); hyperparameters are ours
 * (`lr`, `betas`, `eps`, `weightDecay`, `amsgrad`, `maximize`, `momentum`, `dampening`, `nesterov`,
 * and `initialLr` once a scheduler has been attached). The tensors are the optimizer's own, not
 * copies: do not dispose them, and copy them before the next step() if you need a snapshot.
 */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  paramGroups: SavedParamGroup[];
}

/** The JSON part of a flattened state dict: the numbers of each state and the groups. */
export interface OptimizerStateMeta {
  state: Record<string, Record<string, number>>;
  paramGroups: SavedParamGroup[];
}

/**
 * Splits a state dict into `tensors` named `state.<index>.<key>` (for saveSafetensors) and `meta`
 * (for JSON.stringify). The tensors are the state dict's, not copies.
 */
export function flattenOptimizerState(sd: OptimizerStateDict): { tensors: Record<string, Tensor>; meta: OptimizerStateMeta } {
  const tensors: Record<string, Tensor> = {};
  const meta: OptimizerStateMeta = { state: {}, paramGroups: sd.paramGroups.map((g) => JSON.parse(JSON.stringify(g))) };
  for (const [index, entry] of Object.entries(sd.state)) {
    const numbers: Record<string, number> = {};
    for (const [key, v] of Object.entries(entry)) {
      if (v instanceof Tensor) tensors[`state.${index}.${key}`] = v;
      else numbers[key] = v;
    }
    meta.state[index] = numbers;
  }
  return { tensors, meta };
}

/** The inverse of flattenOptimizerState. Every tensor must be named `state.<index>.<key>`. */
export function unflattenOptimizerState(tensors: Record<string, Tensor> | Map<string, Tensor>, meta: OptimizerStateMeta): OptimizerStateDict {
  if (meta === null || typeof meta !== 'object' || !Array.isArray(meta.paramGroups) || typeof meta.state !== 'object')
    throw new TypeError('unflattenOptimizerState: meta must be an object with `state` and `paramGroups` (from flattenOptimizerState)');
  const state: Record<number, ParamState> = {};
  for (const [index, numbers] of Object.entries(meta.state)) state[Number(index)] = { ...numbers };
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) {
    const m = /^state\.(\d+)\.(.+)$/.exec(name);
    if (m === null) throw new Error(`unflattenOptimizerState: tensor '${name}' is not named state.<index>.<key>`);
    const index = Number(m[1]);
    (state[index] ??= {})[m[2]] = t;
  }
  return { state, paramGroups: meta.paramGroups.map((g) => ({ ...g, params: [...g.params] })) };
}
