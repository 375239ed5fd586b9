// modules_to_save: a module trained in full alongside the adapter (a new classification head, a resized
// lm_head). PEFT keeps the frozen original as `original_module` and a trainable copy per adapter under
// `modules_to_save.<adapter>`; the forward uses the active adapter's copy.
import { Module, ModuleDict, ModuleList, ParameterDict } from '../../nn';
import { cloneModule } from '../clone-module';
import { LoraLayer, setRequiresGrad } from './lora-layer';

export class ModulesToSaveWrapper extends Module {
  original_module: Module;
  modules_to_save = new ModuleDict();
  /** Adapters that have a copy here. */
  readonly adapters = new Set<string>();
  private active: string[];
  private disabled = false;

  constructor(moduleToSave: Module, adapterName: string) {
    super();
    if (moduleToSave instanceof ModuleDict || moduleToSave instanceof ModuleList || moduleToSave instanceof ParameterDict)
      throw new TypeError(`modules_to_save cannot be applied to modules of type ${moduleToSave.reprName()}`);
    if (moduleToSave instanceof LoraLayer)
      throw new TypeError(`modules_to_save cannot be applied to modules of type ${moduleToSave.reprName()} (a LoRA layer)`);
    this.original_module = moduleToSave;
    this.active = [adapterName];
    this.update(adapterName);
  }

  get activeAdapters(): string[] {
    return [...this.active];
  }
  get disableAdapters(): boolean {
    return this.disabled;
  }

  /** Adds a trainable copy of the original for `adapterName` (if it has none yet). */
  update(adapterName: string): void {
    this.adapters.add(adapterName);
    if (!this.modules_to_save.has(adapterName)) this.modules_to_save.set(adapterName, cloneModule(this.original_module));
    this.original_module.requiresGrad_(false);
    if (this.active.length === 1 && this.active[0] === adapterName) setRequiresGrad(this.modules_to_save.get(adapterName)!, true);
  }

  /* eslint-disable @typescript-eslint/no-explicit-any */
  forward(...args: any[]): any {
    if (this.disabled || this.active.length === 0 || this.active.some((a) => !this.adapters.has(a)))
      return this.original_module.forward(...args);
    return this.modules_to_save.get(this.active[0])!.forward(...args);
  }
  /* eslint-enable @typescript-eslint/no-explicit-any */

  enableAdapters(enabled: boolean): void {
    this.disabled = !enabled;
    if (enabled) for (const a of this.active) setRequiresGrad(this.modules_to_save.get(a)!, true);
    else for (const m of this.modules_to_save.values()) setRequiresGrad(m, false);
  }

  /** Makes `names` (at most one) the active copy, trainable unless inferenceMode; [] uses the original. */
  setAdapter(names: string | string[], inferenceMode = false): void {
    const list = typeof names === 'string' ? [names] : names;
    if (list.length > 1) throw new Error(`Attempted to set multiple (${list.join(', ')}) adapters at once for modules_to_save.`);
    for (const a of this.active) {
      const m = this.modules_to_save.get(a);
      if (m) setRequiresGrad(m, false);
    }
    if (list.length === 0) {
      this.active = [];
      return;
    }
    if (!this.adapters.has(list[0])) throw new Error(`Adapter ${list[0]} not found in ${[...this.adapters].join(', ')}`);
    setRequiresGrad(this.modules_to_save.get(list[0])!, !inferenceMode);
    this.active = [list[0]];
  }

  /** Of the adapters a model activates, the one this wrapper has (undefined: none). */
  adapterToSet(names: string | string[]): string | undefined {
    if (typeof names === 'string') return names;
    const mine = names.filter((n) => this.modules_to_save.has(n));
    if (mine.length > 1) throw new Error(`Only one adapter can be set at a time for modules_to_save, got ${mine.length}`);
    return mine[0];
  }

  /** Drops an adapter's copy (disposing it) and activates `newActive` where this wrapper has it. */
  deleteAdapter(name: string, newActive: string[] | undefined): void {
    const m = this.modules_to_save.get(name);
    if (m === undefined) return;
    if (newActive && newActive.length > 1) throw new Error(`Attempted to set multiple (${newActive.join(', ')}) adapters at once for ModulesToSaveWrapper, which is not allowed.`);
    this.adapters.delete(name);
    const next = newActive?.[0];
    if (next === undefined || !this.modules_to_save.has(next)) this.active = [];
    else if (next !== this.active[0]) this.setAdapter(next);
    this.modules_to_save.delete(name);
    m.dispose();
  }

  /** The copy's state dict keys as saved (no wrapper prefix) -> the tensors. */
  adapterStateDict(adapterName: string): Record<string, import('../../tensor').Tensor> {
    const m = this.modules_to_save.get(adapterName);
    return m === undefined || !this.adapters.has(adapterName) ? {} : m.stateDict();
  }
  /** Saved key -> key inside this wrapper. */
  adapterStateDictLoadMap(adapterName: string): Record<string, string> {
    const m = this.modules_to_save.get(adapterName);
    if (m === undefined || !this.adapters.has(adapterName)) return {};
    return Object.fromEntries(Object.keys(m.stateDict()).map((k) => [k, `modules_to_save.${adapterName}.${k}`]));
  }

  /** What unload puts back: the active copy (as trained), or the original when no copy is active. */
  unloadModule(): Module {
    if (this.active.length === 0) return this.original_module;
    return this.modules_to_save.get(this.active[0])!;
  }

  reprName(): string {
    return 'ModulesToSaveWrapper';
  }
}
