// The single-adapter LoRA fixtures PEFT 0.21 saved over a causal LM (test/fixtures/<name>, on the base
// model test/fixtures/<base>). Plain data: the interop script (test/interop/save-adapters.ts, run by
// node outside jest) reads it too.
export interface PeftFixture {
  name: string;
  base: 'tiny-llama' | 'tiny-gpt2';
  /** Whether <name>/expect.safetensors also holds PEFT's logits after merge_and_unload (merged_logits). */
  merged: boolean;
}

export const PEFT_FIXTURES: readonly PeftFixture[] = [
  { name: 'llama-qv', base: 'tiny-llama', merged: true },
  { name: 'llama-all-patterns', base: 'tiny-llama', merged: true },
  { name: 'llama-embed-save', base: 'tiny-llama', merged: true },
  { name: 'llama-regex', base: 'tiny-llama', merged: true },
  { name: 'llama-dora', base: 'tiny-llama', merged: true },
  { name: 'gpt2-conv1d', base: 'tiny-gpt2', merged: false },
];
