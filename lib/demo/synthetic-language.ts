// The small synthetic language the embedded demo model is pretrained on, and the task it is then
// taught with LoRA. Every sentence is one line, `<question> -> <answer>`:
//   12+7 -> 19            addition of numbers of one or two digits
//   copy kqz -> kqz       the word again
//   reverse kqz -> zqk    the word backwards
//   count kqzt -> 4       its length
//   next k -> l           the next letter (z -> a) or digit (9 -> 0)
//   first kqz -> k        its first letter
//   last kqz -> z         its last letter
// The fine-tuning task is new to the base model: `shift kqz -> lra`, every letter replaced by the next
// one (a Caesar shift). It composes two skills the base has (copy, next) that it has never seen
// combined, so a LoRA adapter learns it quickly while the base answers it wrong.
// Everything is generated from a seed alone (mulberry32), so the same seed writes the same files.
import { mixSeed, rng } from '../data/random';

/** One sentence split where the answer starts: prompt + completion is the line. */
export interface Sample {
  /** The task that made it ('add', 'copy', ..., 'shift'). */
  task: string;
  /** `<question> ->` */
  prompt: string;
  /** ` <answer>` (with its leading space, so that prompt + completion is the sentence). */
  completion: string;
}

export const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
export const ARROW = ' ->';

/** The tasks of the pretraining language. */
export const PRETRAIN_TASKS = ['add', 'copy', 'reverse', 'count', 'next', 'first', 'last'] as const;
export type PretrainTask = (typeof PRETRAIN_TASKS)[number];
/** The task the demo's LoRA adapter learns. */
export const FINETUNE_TASK = 'shift';

const RESERVED = new Set<string>([...PRETRAIN_TASKS, FINETUNE_TASK]);

/** Words of the evaluation prompts: readable, and never drawn into the fine-tuning set. */
export const EVAL_WORDS = ['cat', 'lora', 'torch', 'hello', 'zebra', 'node', 'adapter', 'quiz'] as const;

export const MIN_WORD = 2;
export const MAX_WORD = 7;

/** The next letter (z wraps to a) or digit (9 wraps to 0). */
export function nextChar(c: string): string {
  const l = LETTERS.indexOf(c);
  if (l >= 0) return LETTERS[(l + 1) % 26];
  if (c >= '0' && c <= '9') return String((Number(c) + 1) % 10);
  throw new Error(`nextChar: '${c}' is not a lowercase letter or a digit`);
}

/** The answer of a task for an argument (the part after the instruction word). */
export function answer(task: string, arg: string): string {
  switch (task) {
    case 'add': {
      const m = /^(\d+)\+(\d+)$/.exec(arg);
      if (m === null) throw new Error(`answer: 'add' expects "a+b", got '${arg}'`);
      return String(Number(m[1]) + Number(m[2]));
    }
    case 'copy':
      return arg;
    case 'reverse':
      return [...arg].reverse().join('');
    case 'count':
      return String(arg.length);
    case 'next':
      return nextChar(arg);
    case 'first':
      return arg[0];
    case 'last':
      return arg[arg.length - 1];
    case 'shift':
      return [...arg].map(nextChar).join('');
    default:
      throw new Error(`answer: unknown task '${task}'; tasks are ${[...PRETRAIN_TASKS, FINETUNE_TASK].join(', ')}`);
  }
}

/** The sample of a task for an argument. */
export function sampleOf(task: string, arg: string): Sample {
  const question = task === 'add' ? arg : `${task} ${arg}`;
  return { task, prompt: question + ARROW, completion: ` ${answer(task, arg)}` };
}

/** A deterministic stream of samples from one seed. */
export class SyntheticLanguage {
  private readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = rng(mixSeed(seed, 0x5eed));
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /**
   * A random lowercase word of MIN_WORD..MAX_WORD letters (or exactly `length`); never an instruction
   * word (those are single tokens, an argument is spelled out in letters).
   */
  word(length = this.int(MIN_WORD, MAX_WORD)): string {
    for (;;) {
      let w = '';
      for (let i = 0; i < length; i++) w += LETTERS[this.int(0, 25)];
      if (!RESERVED.has(w)) return w;
    }
  }

  /**
   * An operand of 'add': one or two digits with equal chance, so that sums of numbers of unequal length
   * (12+7), which a small model finds hardest to line up, are common (drawn uniformly from 0..99 they
   * would be one in five).
   */
  number(): number {
    return this.next() < 0.5 ? this.int(0, 9) : this.int(10, 99);
  }

  /** One sample of `task`. */
  sample(task: string): Sample {
    switch (task) {
      case 'add':
        return sampleOf(task, `${this.number()}+${this.number()}`);
      case 'next': {
        // Mostly letters (what shift needs), sometimes digits.
        const c = this.next() < 0.8 ? LETTERS[this.int(0, 25)] : String(this.int(0, 9));
        return sampleOf(task, c);
      }
      case 'count':
        return sampleOf(task, this.word(this.int(1, 9)));
      case 'copy':
      case 'reverse':
      case 'first':
      case 'last':
      case 'shift':
        return sampleOf(task, this.word());
      default:
        throw new Error(`sample: unknown task '${task}'`);
    }
  }

  /** A pretraining sample: a task drawn uniformly from PRETRAIN_TASKS. */
  pretrainSample(): Sample {
    return this.sample(PRETRAIN_TASKS[this.int(0, PRETRAIN_TASKS.length - 1)]);
  }
}

/** `n` pretraining sentences (prompt + completion) from `seed`. */
export function pretrainingText(n: number, seed: number): string[] {
  const lang = new SyntheticLanguage(seed);
  return Array.from({ length: n }, () => {
    const s = lang.pretrainSample();
    return s.prompt + s.completion;
  });
}

/** `n` fine-tuning samples of the shift task from `seed`; the evaluation words never occur. */
export function finetuneSamples(n: number, seed: number): Sample[] {
  const lang = new SyntheticLanguage(mixSeed(seed, 1));
  const banned = new Set<string>(EVAL_WORDS);
  const out: Sample[] = [];
  while (out.length < n) {
    const s = lang.sample(FINETUNE_TASK);
    if (!banned.has(s.prompt.slice(FINETUNE_TASK.length + 1, -ARROW.length))) out.push(s);
  }
  return out;
}

/** The evaluation prompts of the demo: the shift task on EVAL_WORDS. */
export function evalSamples(): Sample[] {
  return EVAL_WORDS.map((w) => sampleOf(FINETUNE_TASK, w));
}

/** One pretraining-style prompt per task on fixed arguments (for checking what the base learned). */
export function pretrainProbeSamples(): Sample[] {
  return [
    sampleOf('add', '12+7'),
    sampleOf('add', '45+38'),
    sampleOf('add', '3+5'),
    sampleOf('copy', 'kqz'),
    sampleOf('copy', 'lora'),
    sampleOf('reverse', 'abc'),
    sampleOf('reverse', 'torch'),
    sampleOf('count', 'aaaa'),
    sampleOf('count', 'hello'),
    sampleOf('next', 'c'),
    sampleOf('next', 'z'),
    sampleOf('next', '7'),
    sampleOf('first', 'zebra'),
    sampleOf('last', 'node'),
  ];
}

/** JSONL text of prompt-completion records (the format the trainer reads; loss on the completion only). */
export function toJsonl(samples: Sample[]): string {
  return samples.map((s) => JSON.stringify({ prompt: s.prompt, completion: s.completion })).join('\n') + '\n';
}
