// PEFT's AutoPeftModelForCausalLM: an adapter folder is enough, since its adapter_config.json names the
// base model (base_model_name_or_path); the base is loaded from there and the adapter put on it.
import * as fs from 'fs';
import * as path from 'path';
import { DType } from '../dtype';
import { AutoModelForCausalLM, CausalLM } from '../models';
import { checkOptions } from '../options';
import { Device } from '../tensor';
import { LoraConfig } from './config';
import { CONFIG_NAME } from './constants';
import { PeftModel } from './peft-model';

export interface AutoPeftModelOptions {
  /** false (default): the adapter is frozen and the model put in eval mode. */
  isTrainable?: boolean;
  adapterName?: string;
  /** Where the base model is loaded (default 'cpu'). */
  device?: Device;
  /** The base model's dtype (default 'auto': its config's). */
  dtype?: DType | 'auto';
}

/**
 * The base model folder an adapter names in base_model_name_or_path, or an Error saying what to do: it
 * must be a local folder (torch-lora reads no Hub ids).
 */
export function baseModelPathOf(adapterDir: string): string {
  const file = path.join(adapterDir, CONFIG_NAME);
  if (!fs.existsSync(file)) throw new Error(`adapter folder '${adapterDir}' has no ${CONFIG_NAME}`);
  const base = LoraConfig.fromPretrained(adapterDir).baseModelNameOrPath;
  if (base === null || base === '')
    throw new Error(`'${file}' names no base model (base_model_name_or_path); load the base model and use PeftModel.fromPretrained(base, '${adapterDir}')`);
  if (!fs.existsSync(path.join(base, 'config.json')))
    throw new Error(
      `the base model '${base}' that '${file}' names (base_model_name_or_path) is not a model folder here (no config.json); ` +
        `load the base model yourself and use PeftModel.fromPretrained(base, '${adapterDir}') (the CLI: --model DIR)`,
    );
  return base;
}

export class AutoPeftModelForCausalLM {
  /** The base model that `adapterDir`'s adapter_config.json names, with the adapter on it. */
  static async fromPretrained(adapterDir: string, opts: AutoPeftModelOptions = {}): Promise<PeftModel<CausalLM>> {
    checkOptions(opts, { isTrainable: true, adapterName: true, device: true, dtype: true }, 'AutoPeftModelForCausalLM.fromPretrained');
    const base = await AutoModelForCausalLM.fromPretrained(baseModelPathOf(adapterDir), { device: opts.device, dtype: opts.dtype ?? 'auto' });
    try {
      return await PeftModel.fromPretrained(base, adapterDir, { isTrainable: opts.isTrainable, adapterName: opts.adapterName });
    } catch (e) {
      base.dispose();
      throw e;
    }
  }
}
