// Command-line options, declared once per command as a table that gives both the parser (node's
// util.parseArgs) and the --help text. Values are checked here (numbers, choices, required ones), so
// that a wrong flag is a UsageError naming the flag, which main() turns into a message and exit code 2.
import { parseArgs } from 'util';

/** A mistake in how the command was called (exit code 2, with a pointer to --help). */
export class UsageError extends Error {}

/** 'integers': a comma-separated list of integers; 'map': NAME=NUMBER pairs, comma-separated (a JSON object in a config file). */
export type OptionType = 'string' | 'number' | 'integer' | 'boolean' | 'list' | 'integers' | 'map';
export type OptionValue = string | number | boolean | string[] | number[] | Record<string, number>;

export interface OptionSpec {
  /** kebab-case: --learning-rate; the value is found under its camelCase name (learningRate). */
  name: string;
  type: OptionType;
  description: string;
  /** What the value is, in the help: DIR, FILE, N, X. */
  placeholder?: string;
  short?: string;
  default?: OptionValue;
  required?: boolean;
  choices?: readonly string[];
  /** 'string' options that may be given more than once (collected into a list). */
  multiple?: boolean;
  /** Help heading the option is listed under. */
  group?: string;
}

export interface CommandSpec {
  name: string;
  /** One line after `Usage: torch-lora <name>`. */
  usage: string;
  summary: string;
  /** Further paragraphs of help (examples). */
  details?: string;
  options: OptionSpec[];
  /** Names of positional arguments, as shown in usage; undefined: none accepted. */
  positionals?: { name: string; description: string; optional?: boolean };
}

export function camel(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

const HELP: OptionSpec = { name: 'help', short: 'h', type: 'boolean', description: 'show this help and exit', group: 'Other' };

/** The --help text of a command. */
export function helpText(cmd: CommandSpec): string {
  const lines = [`Usage: torch-lora ${cmd.name} ${cmd.usage}`, '', cmd.summary];
  if (cmd.positionals) lines.push('', `  ${cmd.positionals.name.padEnd(30)}${cmd.positionals.description}`);
  const groups = new Map<string, OptionSpec[]>();
  for (const o of [...cmd.options, HELP]) {
    const g = o.group ?? 'Options';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(o);
  }
  for (const [g, opts] of groups) {
    lines.push('', `${g}:`);
    for (const o of opts) {
      const placeholder = o.placeholder ?? { string: 'VALUE', list: 'A,B', integers: 'N,M', map: 'A=N,B=M' }[o.type as string] ?? 'N';
      const flag = `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.type === 'boolean' ? '' : ` ${placeholder}`}`;
      let desc = o.description;
      if (o.choices) desc += ` (${o.choices.join(', ')})`;
      if (o.default !== undefined && o.type !== 'boolean') desc += ` [default: ${Array.isArray(o.default) ? o.default.join(',') : String(o.default)}]`;
      if (o.required) desc += ' (required)';
      if (o.multiple) desc += ' (may be repeated)';
      lines.push(flag.length < 30 ? `  ${flag.padEnd(30)}${desc}` : `  ${flag}\n  ${' '.repeat(30)}${desc}`);
    }
  }
  if (cmd.details) lines.push('', cmd.details.trimEnd());
  return lines.join('\n') + '\n';
}

/** Converts one raw value (from the command line, or a config file) to the option's type, or throws a UsageError. */
export function convertValue(o: OptionSpec, raw: unknown, where: string): OptionValue {
  const bad = (want: string): never => {
    throw new UsageError(`${where} expects ${want}, got ${JSON.stringify(raw)}`);
  };
  switch (o.type) {
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === 'false') return raw === 'true';
      return bad('true or false');
    case 'number':
    case 'integer': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) return bad(o.type === 'integer' ? 'an integer' : 'a number');
      if (o.type === 'integer' && !Number.isInteger(n)) return bad('an integer');
      return n;
    }
    case 'list': {
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
      if (typeof raw !== 'string' || raw.trim() === '') return bad('a comma-separated list');
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    }
    case 'integers': {
      if (typeof raw === 'number') raw = [raw];
      const items = Array.isArray(raw) ? raw : typeof raw === 'string' && raw.trim() !== '' ? raw.split(',').map((s) => s.trim()) : undefined;
      const ints = items?.map((x) => (typeof x === 'number' ? x : typeof x === 'string' && /^-?\d+$/.test(x) ? Number(x) : NaN));
      if (ints === undefined || ints.length === 0 || !ints.every((n) => Number.isInteger(n))) return bad('a comma-separated list of integers');
      return ints;
    }
    case 'map': {
      const out: Record<string, number> = {};
      if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
        for (const [k, v] of Object.entries(raw)) {
          if (typeof v !== 'number' || !Number.isFinite(v)) return bad('an object of name: number');
          out[k] = v;
        }
        return out;
      }
      if (typeof raw !== 'string' || raw.trim() === '') return bad('NAME=NUMBER pairs separated by commas');
      for (const pair of raw.split(',')) {
        const m = /^\s*([^=\s]+)\s*=\s*(\S+)\s*$/.exec(pair);
        const n = m ? Number(m[2]) : NaN;
        if (!m || !Number.isFinite(n)) return bad('NAME=NUMBER pairs separated by commas');
        out[m[1]] = n;
      }
      return out;
    }
    case 'string': {
      if (o.multiple && Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw as string[];
      // A config file may write a choice that is a boolean ("true"/"false") as a JSON boolean.
      if (typeof raw === 'boolean' && o.choices?.includes(String(raw))) return String(raw);
      if (typeof raw !== 'string') return bad('a string');
      if (o.choices && !o.choices.includes(raw)) throw new UsageError(`${where} must be one of ${o.choices.join(', ')}, got '${raw}'`);
      return raw;
    }
  }
}

export interface Parsed {
  /** camelCase name -> value, for the options given (and defaults, unless withoutDefaults). */
  values: Record<string, OptionValue | undefined>;
  /** The options that were given on the command line (camelCase). */
  given: Set<string>;
  positionals: string[];
  help: boolean;
  /** The command's arguments as typed (to print a command to run again, e.g. to resume). */
  argv?: string[];
}

/** Parses argv for a command. Throws a UsageError for an unknown flag, a missing or malformed value. */
export function parseCommand(cmd: CommandSpec, argv: string[], opts: { defaults?: boolean } = {}): Parsed {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const o of [...cmd.options, HELP]) {
    config[o.name] = { type: o.type === 'boolean' ? 'boolean' : 'string' };
    if (o.short) config[o.name].short = o.short;
    if (o.multiple) config[o.name].multiple = true;
  }
  // A value that starts with '-' (--lr -1, --lora-alpha -8) is the flag's value, not another flag: it is
  // joined to it (--lr=-1), so that the check of its range, not the parser, answers.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const o = cmd.options.find((x) => argv[i] === `--${x.name}` || (x.short !== undefined && argv[i] === `-${x.short}`));
    if (o !== undefined && o.type !== 'boolean' && i + 1 < argv.length && /^-(\d|\.\d|Infinity|NaN)/.test(argv[i + 1])) {
      args.push(`--${o.name}=${argv[i + 1]}`);
      i++;
    } else args.push(argv[i]);
  }
  let raw: { values: Record<string, unknown>; positionals: string[] };
  try {
    raw = parseArgs({ args, options: config, allowPositionals: true, strict: true }) as typeof raw;
  } catch (e) {
    const err = e as Error & { code?: string };
    const flag = /'(?:-\w, )?(--?[\w-]+)/.exec(err.message)?.[1]; // "Option '-h, --help' ..." -> --help
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option '${flag ?? err.message}'`);
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const spec = cmd.options.find((o) => `--${o.name}` === flag || `-${o.short}` === flag);
      if (spec && spec.type !== 'boolean') throw new UsageError(`option '${flag}' needs a value (${spec.placeholder ?? spec.type})`);
      throw new UsageError(`option '${flag}' takes no value`);
    }
    throw new UsageError(err.message);
  }
  if (raw.values.help) return { values: {}, given: new Set(), positionals: raw.positionals, help: true };
  const values: Record<string, OptionValue | undefined> = {};
  const given = new Set<string>();
  for (const o of cmd.options) {
    const v = raw.values[o.name];
    const key = camel(o.name);
    if (v !== undefined) {
      values[key] = convertValue(o, v, `--${o.name}`);
      given.add(key);
    } else if (opts.defaults !== false) values[key] = o.default;
  }
  if (!cmd.positionals && raw.positionals.length) throw new UsageError(`unexpected argument '${raw.positionals[0]}'`);
  if (cmd.positionals && raw.positionals.length > 1) throw new UsageError(`unexpected argument '${raw.positionals[1]}'`);
  return { values, given, positionals: raw.positionals, help: false, argv: [...argv] };
}

/** Throws a UsageError naming the required options that have no value. */
export function requireOptions(cmd: CommandSpec, values: Record<string, OptionValue | undefined>): void {
  for (const o of cmd.options)
    if (o.required && (values[camel(o.name)] === undefined || values[camel(o.name)] === ''))
      throw new UsageError(`missing --${o.name} ${o.placeholder ?? ''}`.trimEnd() + ` (${o.description})`);
}
