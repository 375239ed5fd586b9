// Checks of a folder that saves from test/helpers/save-child.ts wrote (or were killed writing): it loads,
// and its files come from one save.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, LoraConfig, loadSafetensors, Tensor } from '../../lib';

export const LLAMA_FIXTURE = path.join(__dirname, '..', 'fixtures', 'tiny-llama');

/** An adapter folder: its config's r is the rank of every LoRA weight in it (a mix of two saves is not). */
export async function checkAdapterFolder(dir: string): Promise<{ r: number }> {
  // (a writer killed between the swap's two renames left the folder aside: LoraConfig.fromPretrained puts it back)
  const config = LoraConfig.fromPretrained(dir);
  const weights = await loadSafetensors(path.join(dir, 'adapter_model.safetensors'));
  try {
    const ranks = Object.entries(weights).map(([k, t]) => (k.includes('lora_A') ? t.shape[0] : t.shape[1]));
    if (ranks.length === 0 || ranks.some((r) => r !== config.r)) throw new Error(`'${dir}': config r=${config.r}, weights of ranks ${[...new Set(ranks)]}`);
    if (!fs.existsSync(path.join(dir, 'README.md'))) throw new Error(`'${dir}' has no README.md`);
  } finally {
    for (const t of Object.values(weights)) t.dispose();
  }
  return { r: config.r };
}

/** A model folder: it loads, and every tensor is tiny-llama's (variant 0) or every one doubled (variant 1). */
export async function checkModelFolder(dir: string, reference: Record<string, Tensor>): Promise<{ variant: number }> {
  const model = await AutoModelForCausalLM.fromPretrained(dir);
  try {
    const variants = new Set<number>();
    for (const [k, t] of Object.entries(model.stateDict())) {
      const ref = reference[k];
      if (t.equal(ref)) variants.add(0);
      else {
        const twice = ref.mul(2);
        if (t.equal(twice)) variants.add(1);
        else variants.add(-1);
        twice.dispose();
      }
    }
    if (variants.size !== 1 || variants.has(-1)) throw new Error(`'${dir}' mixes saves: variants ${[...variants]}`);
    return { variant: [...variants][0] };
  } finally {
    model.dispose();
  }
}

/** What dead writers left: temporary files inside, staging or set-aside folders and lock files beside. */
export function orphans(dir: string): string[] {
  const base = path.basename(dir);
  const inside = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.includes('.tmp-')) : [];
  const beside = fs.readdirSync(path.dirname(dir)).filter((n) => n.startsWith(`.${base}.`));
  return [...inside, ...beside];
}
