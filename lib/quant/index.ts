// bitsandbytes-compatible quantized bases (QLoRA): formats, layers, and the loader's side.
export * from './functional';
export { BitsAndBytesConfig } from './bnb-config';
export type { BitsAndBytesConfigOptions } from './bnb-config';
export { Linear4bit, quantStateJson } from './linear-4bit';
export type { Linear4bitOptions } from './linear-4bit';
export { shouldConvertModule, modulesToNotConvert, quantizeModel } from './load';
export { dequantizeModel, dequantizedLinear } from './dequantize';
export { Linear8bit, int8VectorwiseQuant, int8VectorwiseDequant } from './linear-8bit';
