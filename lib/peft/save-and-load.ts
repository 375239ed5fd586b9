// The adapter's state dict as PEFT saves and loads it (peft/utils/save_and_load.py): only adapter
// tensors (plus biases per `bias`, modules_to_save copies and targeted embedding tables), keys without
// the adapter name (q_proj.lora_A.weight), DoRA magnitudes without ".weight"; loading puts the adapter
// name back. Files: adapter_model.safetensors (metadata {"format": "pt"}) or adapter_model.bin.
import * as fs from 'fs';
import * as path from 'path';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { loadTorchBin, saveTorchBin } from '../io/torch-bin';
import { Embedding, Linear, Module } from '../nn';
import { Device, Tensor } from '../tensor';
import { LoraConfig } from './config';
import { EMBEDDING_LAYER_NAMES, INCLUDE_LINEAR_LAYERS_SHORTHAND, SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME } from './constants';
import { writeFileAtomic } from '../io/fs-atomic';
import { LoraLayer } from './layers/lora-layer';
import { ModulesToSaveWrapper } from './layers/modules-to-save';
import { TrainableTokensWrapper } from './layers/trainable-tokens';
import { inputEmbeddings, isPretrainedLike, modelConfigInfo, outputEmbeddings } from './model-info';
import { pyFullmatch, pyMatch } from './python-regex';
import { peftWarn } from './warn';

/** What getPeftModelStateDict needs of a PeftModel (kept structural to avoid an import cycle). */
export interface PeftModelLike extends Module {
  readonly peftConfig: Map<string, LoraConfig>;
  getBaseModel(): Module;
}

const PEFT_PREFIX = 'base_model.model.';

/** 'model.q_proj.lora_A.default.weight' -> 'model.q_proj.lora_A.weight' (PEFT's key translation). */
export function removeAdapterNameFromKey(key: string, adapterName: string): string {
  if (!key.includes('.')) return key;
  if (key.endsWith(`.${adapterName}`)) return key.slice(0, -(adapterName.length + 1));
  const i = key.lastIndexOf('.');
  let head = key.slice(0, i);
  if (head.endsWith(`.${adapterName}`)) head = head.slice(0, -(adapterName.length + 1));
  return `${head}.${key.slice(i + 1)}`;
}

/** State-dict key prefixes of everything a LoRA layer holds besides its base layer (restricted to one adapter's entries when given). */
function adapterKeyPrefixes(root: Module, adapterName?: string): string[] {
  const prefixes: string[] = [];
  const inWrapper = new Set<string>();
  for (const [name, m] of root.namedModules()) if (m instanceof ModulesToSaveWrapper) inWrapper.add(name + '.');
  for (const [name, m] of root.namedModules()) {
    if (!(m instanceof LoraLayer)) continue;
    if ([...inWrapper].some((w) => name.startsWith(w))) continue;
    const at = name ? `${name}.` : '';
    for (const [k, child] of m.namedChildren()) {
      if (k === 'base_layer') continue;
      const keyed = (child as unknown as { has?: (k: string) => boolean }).has;
      if (adapterName !== undefined && typeof keyed === 'function') {
        if (keyed.call(child, adapterName)) prefixes.push(`${at}${k}.${adapterName}`);
      } else prefixes.push(`${at}${k}`);
    }
    for (const [k] of m.ownParameters()) prefixes.push(`${at}${k}`);
  }
  return prefixes;
}

function underPrefixes(key: string, prefixes: string[]): boolean {
  return prefixes.some((p) => key === p || key.startsWith(p + '.'));
}

function isEmbeddingTargeted(config: LoraConfig, base: Module): boolean {
  const tm = config.targetModules;
  if (typeof tm === 'string') {
    if (tm.toLowerCase() === INCLUDE_LINEAR_LAYERS_SHORTHAND) return false;
    for (const [k] of base.namedModules())
      if (EMBEDDING_LAYER_NAMES.some((e) => pyMatch(`(.*\\.)?${e}$`, k)) && pyFullmatch(tm, k)) return true;
    return false;
  }
  return Array.isArray(tm) && EMBEDDING_LAYER_NAMES.some((e) => tm.includes(e));
}

export interface StateDictOptions {
  /** 'auto' (default): save the embedding tables when target_modules names an embedding layer. */
  saveEmbeddingLayers?: boolean | 'auto';
}

/**
 * The tensors PEFT saves for `adapterName`: name (without the adapter name) -> the model's own tensor
 * (not a copy; do not dispose).
 */
export function getPeftModelStateDict(model: PeftModelLike, adapterName = 'default', opts: StateDictOptions = {}): Map<string, Tensor> {
  const config = model.peftConfig.get(adapterName);
  if (config === undefined) throw new Error(`getPeftModelStateDict: no adapter named '${adapterName}' (have: ${[...model.peftConfig.keys()].join(', ')})`);
  let state = new Map(Object.entries(model.stateDict()));
  const unwanted = [...model.peftConfig.keys()].filter((n) => n !== adapterName);
  const filtered = new Map([...state].filter(([k]) => !unwanted.some((a) => k.includes(`.${a}.`) || k.endsWith(`.${a}`))));
  if (filtered.size > 0) state = filtered;

  const prefixes = adapterKeyPrefixes(model);
  const out = new Map<string, Tensor>();
  for (const [k, t] of state) if (underPrefixes(k, prefixes)) out.set(k, t);
  if (config.bias === 'all') {
    for (const [k, t] of state) if (k === 'bias' || k.endsWith('.bias')) out.set(k, t);
  } else if (config.bias === 'lora_only') {
    for (const [name, m] of model.namedModules())
      if (m instanceof LoraLayer) {
        const k = name ? `${name}.base_layer.bias` : 'base_layer.bias';
        if (state.has(k)) out.set(k, state.get(k)!);
      }
  }
  if (config.useDora) {
    // lora_magnitude_vector.<adapter>.weight is saved as lora_magnitude_vector.<adapter> (PEFT's DoRA format).
    const suffix = `lora_magnitude_vector.${adapterName}.weight`;
    for (const [k, t] of [...out]) if (k.endsWith(suffix)) {
      out.delete(k);
      out.set(k.slice(0, -'.weight'.length), t);
    }
  }
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof ModulesToSaveWrapper)) continue;
    for (const [k] of Object.entries(m.adapterStateDict(adapterName))) {
      const stored = state.get(`${name}.modules_to_save.${adapterName}.${k}`);
      if (stored !== undefined) out.set(`${name}.${k}`, stored);
    }
  }

  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof TrainableTokensWrapper)) continue;
    for (const [k, inside] of Object.entries(m.adapterStateDictLoadMap(adapterName))) {
      const stored = state.get(`${name}.${inside}`);
      if (stored !== undefined) out.set(`${name}.${k}`, stored);
    }
  }

  const base = model.getBaseModel();
  const targeted = isEmbeddingTargeted(config, base);
  let saveEmbeddings = opts.saveEmbeddingLayers ?? 'auto';
  if (saveEmbeddings === 'auto') {
    if (targeted && config.trainableTokenIndices === null) {
      peftWarn('Setting `save_embedding_layers` to `True` as embedding layers found in `target_modules`.');
      saveEmbeddings = true;
    } else saveEmbeddings = vocabResized(base, config);
  }
  if (saveEmbeddings) {
    if (!isPretrainedLike(base)) peftWarn('Could not identify embedding layer(s) because the model is not a 🤗 transformers model.');
    else
      for (const layer of [inputEmbeddings(base), outputEmbeddings(base)]) {
        if (layer === undefined) continue;
        const lb = layer instanceof LoraLayer ? layer.base_layer : undefined;
        const validBase = lb instanceof Linear || lb instanceof Embedding;
        if (targeted && !validBase) continue;
        let found: string | undefined;
        for (const [name, m] of model.namedModules())
          if ((!targeted && m === layer) || (lb !== undefined && m === lb)) {
            found = name;
            break;
          }
        if (found !== undefined) for (const [k, t] of state) if (k.startsWith(found + '.')) out.set(k, t);
      }
  }
  const renamed = new Map<string, Tensor>();
  for (const [k, t] of out) renamed.set(removeAdapterNameFromKey(k, adapterName), t);
  return renamed;
}

/**
 * PEFT's second 'auto' rule: the embedding tables are saved when the model's vocab_size differs from the
 * base model's config.json (base_model_name_or_path, read when it is a local folder): the tokens were resized.
 */
function vocabResized(base: Module, config: LoraConfig): boolean {
  const vocab = modelConfigInfo(base)?.vocabSize;
  const id = config.baseModelNameOrPath;
  if (!vocab || !id) return false;
  const file = path.join(id, 'config.json');
  if (!fs.existsSync(file)) {
    if (config.trainableTokenIndices !== null)
      peftWarn(`Could not find a config file in ${id} - will assume that the vocabulary was not modified.`);
    return false;
  }
  let saved: unknown;
  try {
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    const text = json.text_config as Record<string, unknown> | undefined;
    saved = json.vocab_size ?? text?.vocab_size;
  } catch {
    return false;
  }
  if (typeof saved !== 'number' || saved === vocab) return false;
  peftWarn('Setting `save_embedding_layers` to `True` as the embedding layer has been resized during finetuning.');
  return true;
}

/** Shapes as PyTorch prints them in mismatch messages. */
function shapeText(s: number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * Loads saved adapter tensors (keys as PEFT saves them, with or without "base_model.model.") into
 * adapter `adapterName`. Shape mismatches are an error naming the key and both shapes.
 */
export function setPeftModelStateDict(
  model: PeftModelLike,
  weights: Map<string, Tensor> | Record<string, Tensor>,
  adapterName = 'default',
): { missingKeys: string[]; unexpectedKeys: string[] } {
  const config = model.peftConfig.get(adapterName);
  if (config === undefined) throw new Error(`setPeftModelStateDict: no adapter named '${adapterName}'`);
  let sd = new Map(weights instanceof Map ? weights : Object.entries(weights));
  // Files written without the PeftModel prefix (e.g. by other tools) load the same.
  if ([...sd.keys()].length > 0 && ![...sd.keys()].some((k) => k.startsWith('base_model.')))
    sd = new Map([...sd].map(([k, t]) => [PEFT_PREFIX + k, t]));
  const missingSaved: string[] = [];
  const wrappers: string[] = [];
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof ModulesToSaveWrapper)) continue;
    for (const [k, v] of Object.entries(m.adapterStateDictLoadMap(adapterName))) {
      const t = sd.get(`${name}.${k}`);
      if (t === undefined) {
        missingSaved.push(`${name}.${k}`);
        if (!wrappers.includes(name)) wrappers.push(name);
        continue;
      }
      sd.delete(`${name}.${k}`);
      sd.set(`${name}.${v}`, t);
    }
  }
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof TrainableTokensWrapper)) continue;
    for (const [k, v] of Object.entries(m.adapterStateDictLoadMap(adapterName))) {
      const t = sd.get(`${name}.${k}`);
      if (t === undefined) {
        const strip = (x: string) => (x.startsWith(PEFT_PREFIX) ? x.slice(PEFT_PREFIX.length) : x);
        throw new Error(
          `cannot load adapter '${adapterName}': trainable_token_indices ${JSON.stringify(config.trainableTokenIndices)} names '${strip(name)}', whose trained rows the adapter file does not hold (missing key ${strip(`${name}.${k}`)})`,
        );
      }
      sd.delete(`${name}.${k}`);
      sd.set(`${name}.${v}`, t);
    }
  }
  // PEFT raises (a KeyError) when a modules_to_save module has no saved weights: loading on would leave the
  // module's copy at the base values and drop whatever the file holds for it (LoRA weights, when the config
  // also names it in target_modules).
  if (missingSaved.length) throw modulesToSaveError(config, adapterName, wrappers, missingSaved, [...sd.keys()]);
  sd = new Map([...sd].map(([k, t]) => [k.endsWith('lora_magnitude_vector') ? `${k}.weight` : k, t]));
  const prefixes = adapterKeyPrefixes(model, adapterName);
  const own = model.stateDict();
  const toModel = new Map<string, string>();
  for (const mk of Object.keys(own)) if (underPrefixes(mk, prefixes)) toModel.set(removeAdapterNameFromKey(mk, adapterName), mk);
  const remapped = new Map<string, Tensor>();
  for (const [k, t] of sd) remapped.set(toModel.get(k) ?? k, t);

  const mismatched: string[] = [];
  for (const [k, t] of remapped) {
    const mine = own[k];
    if (mine === undefined) continue;
    const a = mine.shape;
    const b = t.shape;
    if (a.length !== b.length || a.some((d, i) => d !== b[i]))
      mismatched.push(`${k}: found shape ${shapeText(b)} in the checkpoint and ${shapeText(a)} in the model instantiated`);
  }
  if (mismatched.length)
    throw new Error(`Error(s) in loading the adapter '${adapterName}' into ${model.reprName()}: size mismatch for\n  ${mismatched.join('\n  ')}`);
  return model.loadStateDict(remapped, { strict: false });
}

/** The error for modules_to_save modules without saved weights: the keys, and the LoRA keys of an overlap with target_modules. */
function modulesToSaveError(config: LoraConfig, adapterName: string, wrappers: string[], missing: string[], saved: string[]): Error {
  const strip = (k: string) => (k.startsWith(PEFT_PREFIX) ? k.slice(PEFT_PREFIX.length) : k);
  const lines = [
    `cannot load adapter '${adapterName}': modules_to_save ${JSON.stringify(config.modulesToSave)} names modules whose weights the adapter file does not hold: ` +
      `missing keys ${missing.map((k) => strip(k)).join(', ')}`,
  ];
  const lora = saved.filter((k) => wrappers.some((w) => k.startsWith(`${w}.lora_`)));
  if (lora.length) {
    const short = [...new Set(wrappers.map((w) => w.slice(w.lastIndexOf('.') + 1)))];
    lines.push(
      `the file holds LoRA weights for them instead (${lora.slice(0, 4).map(strip).join(', ')}${lora.length > 4 ? ', ...' : ''}): ` +
        `${JSON.stringify(short)} is in both target_modules and modules_to_save, and a module in modules_to_save is trained in full, never with LoRA; ` +
        'remove it from modules_to_save',
    );
  }
  return new Error(lines.join('\n'));
}

/** Reads `dir`/adapter_model.safetensors, else `dir`/adapter_model.bin (PEFT's load_peft_weights). */
export async function loadPeftWeights(dir: string, opts: { device?: Device } = {}): Promise<Map<string, Tensor>> {
  const st = path.join(dir, SAFETENSORS_WEIGHTS_NAME);
  const bin = path.join(dir, WEIGHTS_NAME);
  if (fs.existsSync(st)) return new Map(Object.entries(await loadSafetensors(st, { device: opts.device })));
  if (fs.existsSync(bin)) {
    return new Map(Object.entries(await loadTorchBin(bin, { device: opts.device })));
  }
  throw new Error(`Can't find weights for '${dir}': neither ${SAFETENSORS_WEIGHTS_NAME} nor ${WEIGHTS_NAME} is there`);
}

/**
 * Writes the adapter tensors as PEFT does: safetensors with {"format": "pt"}, or a torch.save .bin. Atomic.
 * Once the new file is in place, the other format's file is removed: loading prefers safetensors, so an
 * old adapter_model.safetensors left beside a new adapter_model.bin would be read instead of it.
 */
export async function saveAdapterWeights(tensors: Map<string, Tensor>, dir: string, safeSerialization: boolean): Promise<string> {
  const file = path.join(dir, safeSerialization ? SAFETENSORS_WEIGHTS_NAME : WEIGHTS_NAME);
  const stale = path.join(dir, safeSerialization ? WEIGHTS_NAME : SAFETENSORS_WEIGHTS_NAME);
  // Both writers are atomic (a temporary file renamed over the target): if they throw, nothing is removed.
  if (safeSerialization) await saveSafetensors(tensors, file, { metadata: { format: 'pt' } });
  else await saveTorchBin(tensors, file);
  await fs.promises.rm(stale, { force: true });
  return file;
}

/** README.md: the model card PEFT keeps beside an adapter (library_name, tags, framework version). */
export async function writeModelCard(
  dir: string,
  info: { peftVersion: string; baseModel: string | null; tags: string[]; pipelineTag?: string },
): Promise<void> {
  const file = path.join(dir, 'README.md');
  const versionLine = `- PEFT ${info.peftVersion}`;
  if (fs.existsSync(file)) {
    let text = await fs.promises.readFile(file, 'utf8');
    if (text.startsWith('---\n') && !/^library_name:/m.test(text.split('\n---', 2)[0])) text = text.replace('---\n', '---\nlibrary_name: peft\n');
    if (!text.split('\n').includes(versionLine)) {
      const heading = '### Framework versions';
      const lines = text.split('\n');
      const at = lines.indexOf(heading);
      if (at >= 0) lines.splice(at + 2, 0, versionLine);
      else lines.push(`${heading}\n\n${versionLine}`);
      text = lines.join('\n');
    }
    await writeFileAtomic(file, text);
    return;
  }
  const front: string[] = [];
  if (info.baseModel) front.push(`base_model: ${info.baseModel}`);
  front.push('library_name: peft');
  if (info.pipelineTag) front.push(`pipeline_tag: ${info.pipelineTag}`);
  if (info.tags.length) front.push('tags:', ...[...info.tags].sort().map((t) => `- ${t}`));
  const body = [
    '---',
    ...front,
    '---',
    '',
    '# Model Card for Model ID',
    '',
    '<!-- Provide a quick summary of what the model is/does. -->',
    '',
    'A LoRA adapter in the Hugging Face PEFT format (adapter_config.json + adapter weights), written by torch-lora.',
    '',
    '## Training procedure',
    '',
    '### Framework versions',
    '',
    versionLine,
  ];
  await writeFileAtomic(file, body.join('\n'));
}
