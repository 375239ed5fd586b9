// Which modules an adapter targets, as PEFT decides (tuners_utils.check_target_module_exists and friends):
// exact names or "."-suffixes from a list, a fully matching regex, layer indices, exclusions, and the
// "all-linear" shorthand.
import { Conv1D, Linear, Module } from '../nn';
import { LoraConfig } from './config';
import { INCLUDE_LINEAR_LAYERS_SHORTHAND } from './constants';
import { LoraLayer } from './layers/lora-layer';
import { isPretrainedLike, outputEmbeddings } from './model-info';
import { Linear4bit } from '../quant/linear-4bit';
import { Linear8bit } from '../quant/linear-8bit';
import { pyFullmatch, pyMatch } from './python-regex';

export type TargetMatch = 'matched' | 'unmatched' | 'excluded';

/** Whether module `key` is a target of `config` (exclusions and modules_to_save win). */
export function checkTargetModuleExists(config: LoraConfig, key: string): TargetMatch {
  const ex = config.excludeModules;
  if (ex) {
    if (typeof ex === 'string') {
      if (pyFullmatch(ex, key)) return 'excluded';
    } else if (ex.includes(key) || ex.some((e) => key.endsWith(`.${e}`))) return 'excluded';
  }
  // A module trained in full (modules_to_save) is never also adapted.
  const mts = config.modulesToSave;
  if (mts && mts.some((m) => pyMatch(`(^|.*\\.)${m}($|\\..*)`, key))) return 'excluded';

  const tm = config.targetModules;
  if (tm === null) return 'unmatched';
  if (typeof tm === 'string') return pyFullmatch(tm, key) ? 'matched' : 'unmatched';
  if (tm.includes(key)) return 'matched';
  let found = tm.some((t) => key.endsWith(`.${t}`));
  const idx = config.layersToTransform;
  const usingIndexes = idx !== null && (Array.isArray(idx) ? idx.length !== 0 : true);
  if (usingIndexes && found) {
    let m: RegExpExecArray | null = null;
    const lp = config.layersPattern;
    if (lp === null || lp.length === 0) {
      // The first numbered segment is the layer index (not a nested one like an expert index).
      m = pyMatch('.*?\\.[^.]*\\.(\\d+)\\.', key);
    } else {
      for (const pattern of typeof lp === 'string' ? [lp] : lp) {
        m = pyMatch(`.*?\\.${pattern}\\.(\\d+)\\.`, key);
        if (m) break;
      }
    }
    if (m === null) found = false;
    else {
      const layer = Number(m[1]);
      found = Array.isArray(idx) ? idx.includes(layer) : layer === idx;
    }
  }
  return found ? 'matched' : 'unmatched';
}

/** The rank_pattern/alpha_pattern key that `key` ends with (as a regex), else `key` itself. */
export function getPatternKey(patternKeys: string[], key: string): string {
  for (const p of patternKeys) if (pyMatch(`(.*\\.)?(${p})$`, key)) return p;
  return key;
}

/** The rank and alpha of module `key`: rank_pattern/alpha_pattern, else r and lora_alpha. */
export function rankAndAlpha(config: LoraConfig, key: string): { r: number; loraAlpha: number } {
  const rKey = getPatternKey(Object.keys(config.rankPattern), key);
  const aKey = getPatternKey(Object.keys(config.alphaPattern), key);
  return { r: config.rankPattern[rKey] ?? config.r, loraAlpha: config.alphaPattern[aKey] ?? config.loraAlpha };
}

/**
 * The fewest name suffixes that select exactly `targets` among all module names (PEFT condenses long
 * target lists, e.g. from "all-linear", into q_proj, v_proj, ...). Deterministic: items are visited in
 * sorted order of their suffix lists, shortest suffix first.
 */
export function findMinimalTargetModules(targets: string[], otherNames: string[]): string[] {
  if (targets.length === 0) throw new Error('target_modules should be a list or set of strings.');
  const t = [...new Set(targets)];
  if (t.includes('')) throw new Error('target_modules should not contain an empty string.');
  const others = new Set(otherNames);
  if (t.some((x) => others.has(x))) throw new Error('target_modules and other_module_names contain common elements');
  const suffixes = (s: string) => {
    const parts = s.split('.');
    return parts.map((_, i) => parts.slice(i).join('.')).reverse();
  };
  const otherSuffixes = new Set(otherNames.flatMap(suffixes));
  const cmpLists = (a: string[], b: string[]) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return a.length - b.length;
  };
  const items = t.map((x) => [x, suffixes(x)] as const).sort((a, b) => cmpLists(a[1], b[1]));
  const required: string[] = [];
  for (const [item, sfx] of items) {
    for (const s of sfx) {
      if (required.includes(s) || otherSuffixes.has(s)) continue;
      if (!required.some((r) => item.endsWith('.' + r))) {
        required.push(s);
        break;
      }
    }
  }
  return required.length ? required : t;
}

/**
 * 'all-linear': every Linear/Conv1D (and LoRA linear layer) but the output head of a transformers-like
 * model and the insides of existing LoRA layers. Sets config.targetModules to those names, as PEFT does.
 */
export function includeAllLinearLayers(config: LoraConfig, model: Module): void {
  const tm = config.targetModules;
  if (!(typeof tm === 'string' && tm.toLowerCase() === INCLUDE_LINEAR_LAYERS_SHORTHAND)) return;
  const names: string[] = [];
  for (const [name, m] of model.namedModules()) {
    if (m instanceof Linear || m instanceof Conv1D || m instanceof Linear4bit || m instanceof Linear8bit) names.push(name);
    else if (m instanceof LoraLayer && m.reprName().includes('Linear')) names.push(name);
  }
  const exclude = new Set<string>();
  if (isPretrainedLike(model)) {
    const head = outputEmbeddings(model);
    if (head !== undefined) for (const [name, m] of model.namedModules()) if (m === head) exclude.add(name);
  }
  for (const [prefix, m] of model.namedModules())
    if (m instanceof LoraLayer) for (const [suffix] of m.namedModules()) if (suffix) exclude.add(`${prefix}.${suffix}`);
  config.targetModules = names.filter((n) => n !== '' && !exclude.has(n));
}
