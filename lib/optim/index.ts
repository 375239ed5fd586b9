// torch.optim (and clip_grad_norm_) plus transformers' learning-rate schedules.
export { Optimizer } from './optimizer';
export type { BaseHyper, ParamGroup, ParamGroupInput, ParamsInput } from './optimizer';
export { AdamW } from './adamw';
export type { AdamWHyper, AdamWOptions } from './adamw';
export { SGD } from './sgd';
export type { SGDHyper, SGDOptions } from './sgd';
export { LambdaLR } from './lr_scheduler';
export type { LrLambda, LRSchedulerState } from './lr_scheduler';
export {
  getScheduler,
  getConstantSchedule,
  getConstantScheduleWithWarmup,
  getLinearScheduleWithWarmup,
  getCosineScheduleWithWarmup,
  SCHEDULER_TYPES,
} from './schedules';
export type { SchedulerType, SchedulerOptions } from './schedules';
export { clipGradNorm } from './clip_grad';
export { flattenOptimizerState, unflattenOptimizerState } from './state_dict';
export type { OptimizerStateDict, OptimizerStateMeta, ParamState, SavedParamGroup } from './state_dict';
