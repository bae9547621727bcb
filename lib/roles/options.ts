/**
 * Command-line options as a table: each option's name, value, default, help text and check
 * written once ({@link OptionTable}); {@link parseOptions} reads arguments through the table
 * and {@link helpText} writes the help from it, so the help's defaults and ranges are those
 * the parser uses. Pure (`node:util`'s parseArgs does the splitting).
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

// ---------------------------------------------------------------------------------------------
// Errors

/** Bad command-line arguments: `p2p` prints {@link formatUsageError} and exits 2. */
export class UsageError extends Error {
  /** The subcommand whose help to point at (`""` for the main help). */
  readonly command: string;

  /** Makes an error for `command` (`"serve"`, `"join"`, `"doctor"` or `""`). */
  constructor(message: string, command: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** The one line `p2p` prints on stderr for a usage error. */
export function formatUsageError(e: UsageError): string {
  return `p2p: ${e.message} (see "p2p ${e.command ? e.command + " " : ""}--help")`;
}

/** A bad value of one option (its message says what was wrong); {@link parseOptions} makes it a {@link UsageError}. */
export class BadValue extends Error {}

// ---------------------------------------------------------------------------------------------
// The table's vocabulary

/** What every option has. */
interface OptionBase {
  /** One-letter alias (`-v`). */
  short?: string;
  /** What it does, without its default (the help adds that). */
  help: string;
  /** A paragraph or heading printed before the option in the help. */
  before?: string;
  /** A paragraph printed after the option in the help. */
  after?: string;
}

/** An option without a value: false unless given. */
export interface FlagSpec extends OptionBase {
  /** Discriminant. */
  kind: "flag";
}

/** An option with one value, given at most once (the last one counts). */
export interface ValueSpec<T> extends OptionBase {
  /** Discriminant. */
  kind: "value";
  /** The value's name in the help (`PORT`, `SECONDS`). */
  arg: string;
  /** A usage error when missing (or empty). */
  required?: boolean;
  /** The value when the option is not given, in the units the user types. */
  default: T;
  /** How the help describes a default that is no value (`this host's name`, `off`). */
  shows?: string;
  /** The text taken when the option is given without a value (`--lifetime`). */
  bare?: string;
  /** The bounds a number option's check uses (see {@link num}). */
  range?: Range;
  /** Checks and converts the text; throws {@link BadValue} saying what was wrong. */
  parse(text: string): T;
}

/** A repeatable option: every value, in order. */
export interface ListSpec<T> extends OptionBase {
  /** Discriminant. */
  kind: "list";
  /** The value's name in the help. */
  arg: string;
  /** A usage error when missing (or the first one empty). */
  required?: boolean;
  /** Most values taken. */
  max?: number;
  /** Checks and converts one value. */
  parse(text: string): T;
}

/** Any option. */
export type OptionSpec = FlagSpec | ValueSpec<unknown> | ListSpec<unknown>;

/** A subcommand's options by long name (without `--`), in help order. */
export type OptionTable = Record<string, OptionSpec>;

/** What {@link parseOptions} returns for a table: each option's value. */
export type OptionValues<S extends OptionTable> = {
  [K in keyof S]: S[K] extends FlagSpec ? boolean
    : S[K] extends ListSpec<infer T> ? T[]
    : S[K] extends ValueSpec<infer T> ? T
    : never;
};

/** A subcommand: its name, usage line, description and options. */
export interface CommandSpec<S extends OptionTable> {
  /** `serve`, `join` or `doctor`. */
  name: string;
  /** The usage line without `Usage: `. */
  usage: string;
  /** What it does; paragraphs separated by a blank line. */
  about: string;
  /** The options. */
  options: S;
}

/** An option without a value. */
export function flag(help: string, more: Partial<FlagSpec> = {}): FlagSpec {
  return { kind: "flag", help, ...more };
}

/** A value option with a default. */
export function value<T>(o: Omit<ValueSpec<T>, "kind">): ValueSpec<T> {
  return { kind: "value", ...o };
}

/**
 * A value option that must be given (a usage error otherwise; an empty value counts as
 * missing).
 */
export function required<T>(o: Omit<ValueSpec<T>, "kind" | "default" | "required">): ValueSpec<T> {
  // Never read: parseOptions refuses arguments without the option.
  return { kind: "value", required: true, default: undefined as T, ...o };
}

/** A value option that is undefined unless given; `shows` says what happens then. */
export function optional<T>(
  o: Omit<ValueSpec<T>, "kind" | "default"> & { shows: string },
): ValueSpec<T | undefined> {
  return { kind: "value", default: undefined, ...o };
}

/** A repeatable option. */
export function list<T>(o: Omit<ListSpec<T>, "kind">): ListSpec<T> {
  return { kind: "list", ...o };
}

/** The numbers a number option takes. */
export interface Range {
  /** Least value. */
  min: number;
  /** Greatest value. */
  max: number;
  /** Whole numbers only. */
  whole?: boolean;
}

/** Reads a number in `r`; the words of the old checks, so error messages stay as they were. */
export function numberIn(flagName: string, r: Range): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < r.min || n > r.max) {
      throw new BadValue(`--${flagName} must be a number from ${r.min} to ${r.max}, got "${v}"`);
    }
    if (r.whole && !Number.isInteger(n)) throw new BadValue(`--${flagName} must be a whole number`);
    return n;
  };
}

/**
 * A number option: `help` may say `{min}` and `{max}`, which become the bounds the check uses,
 * so the help cannot promise another range.
 */
export function num(
  name: string,
  o: Omit<ValueSpec<number>, "kind" | "parse"> & Range,
): ValueSpec<number> {
  const { min, max, whole, ...rest } = o;
  const help = o.help.replaceAll("{min}", String(min)).replaceAll("{max}", String(max));
  const range = { min, max, whole };
  return value({ ...rest, help, range, parse: numberIn(name, range) });
}

/** A whole-number option (see {@link num}). */
export function int(name: string, o: Omit<ValueSpec<number>, "kind" | "parse"> & Range) {
  return num(name, { ...o, whole: true });
}

/** Reads one of `values`. */
export function oneOf<T extends string>(flagName: string, values: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(values as readonly string[]).includes(v)) {
      throw new BadValue(`--${flagName} must be one of ${values.join(", ")}`);
    }
    return v as T;
  };
}

/** Reads a file name (not empty). */
export function fileName(flagName: string): (v: string) => string {
  return (v) => {
    if (v === "") throw new BadValue(`--${flagName} needs a file name`);
    return v;
  };
}

// ---------------------------------------------------------------------------------------------
// Reading arguments and writing help through a table

/**
 * Reads `args` through `table`: each option's value, its default when not given. Returns null
 * when `--help` was given (before any value is checked). Throws {@link UsageError} naming
 * `command` for an unknown option, a missing required one or a bad value.
 */
export function parseOptions<S extends OptionTable>(
  command: string,
  table: S,
  args: readonly string[],
): OptionValues<S> | null {
  const config: ParseArgsOptionsConfig = {};
  for (const [name, s] of Object.entries(table)) {
    config[name] = {
      type: s.kind === "flag" ? "boolean" : "string",
      ...(s.short ? { short: s.short } : {}),
      ...(s.kind === "list" ? { multiple: true } : {}),
    };
  }
  // An option with a bare value, given with no value (last, or an option next) takes it.
  const given = args.map((a, i) => {
    const s = a.startsWith("--") ? table[a.slice(2)] : undefined;
    const last = i + 1 >= args.length || args[i + 1]!.startsWith("-");
    return s?.kind === "value" && s.bare !== undefined && last ? `${a}=${s.bare}` : a;
  });
  let raw: Record<string, unknown>;
  try {
    raw = parseArgs({ args: given, options: config, strict: true, allowPositionals: false })
      .values;
  } catch (e) {
    // node:util messages are fine but long, some several lines; keep the first sentence.
    const msg = (e as Error).message.split("\n")[0]!.split(". ")[0]!.replace(/\.$/, "");
    throw new UsageError(msg, command);
  }
  if (raw.help) return null;
  for (const [name, s] of Object.entries(table)) {
    if (s.kind === "flag" || !s.required) continue;
    const v = raw[name] as string | string[] | undefined;
    if (!(Array.isArray(v) ? v[0] : v)) {
      throw new UsageError(`--${name} ${s.arg} is required`, command);
    }
  }
  const out: Record<string, unknown> = {};
  try {
    for (const [name, s] of Object.entries(table)) {
      const v = raw[name];
      if (s.kind === "flag") out[name] = v === true;
      else if (s.kind === "value") out[name] = v === undefined ? s.default : s.parse(v as string);
      else {
        const vs = (v as string[] | undefined) ?? [];
        if (s.max !== undefined && vs.length > s.max) {
          throw new BadValue(`--${name} may be given at most ${s.max} times`);
        }
        out[name] = vs.map((x) => s.parse(x));
      }
    }
  } catch (e) {
    if (e instanceof BadValue) throw new UsageError(e.message, command);
    throw e;
  }
  return out as OptionValues<S>;
}

/** Width of the help text; the option column's descriptions start at {@link COLUMN}. */
const WIDTH = 84;
const COLUMN = 26;

/** `text` in lines of at most `width - indent` characters after `first`'s start. */
function wrap(text: string, first: string, indent: number): string[] {
  const lines: string[] = [];
  let line = first;
  let fresh = true;
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (!fresh && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = " ".repeat(indent) + word;
    } else {
      line += (fresh ? "" : " ") + word;
    }
    fresh = false;
  }
  lines.push(line);
  return lines;
}

/** The option as the help shows it on the left: `-v, --verbose`, `--port PORT`. */
function synopsis(name: string, s: OptionSpec): string {
  const short = s.short ? `-${s.short}, ` : "";
  if (s.kind === "flag") return `${short}--${name}`;
  if (s.kind === "value" && s.bare !== undefined) return `${short}--${name}[=${s.arg}]`;
  return `${short}--${name} ${s.arg}`;
}

/**
 * How the help names an option's default, if it has one: `(default 25)`, `(default: off)`, or
 * `(required)`.
 */
export function defaultText(s: OptionSpec): string | null {
  if (s.kind !== "flag" && s.required) return "(required)";
  if (s.kind !== "value") return null;
  if (s.bare !== undefined) return `(default ${s.bare})`;
  if (s.shows !== undefined) return `(default: ${s.shows})`;
  if (s.default !== undefined) return `(default ${String(s.default)})`;
  return null;
}

/** The help of a subcommand, made from its table. */
export function helpText(c: CommandSpec<OptionTable>): string {
  const out = [`Usage: ${c.usage}`, ""];
  for (const para of c.about.split("\n\n")) out.push(...wrap(para, "", 0), "");
  out.push("Options:");
  for (const [name, s] of Object.entries(c.options)) {
    if (s.before) out.push("", ...wrap(s.before, "", 0));
    const left = `  ${synopsis(name, s)}`;
    const first = left.length + 2 <= COLUMN ? left.padEnd(COLUMN) : `${left}  `;
    const what = [s.help, defaultText(s)].filter((x) => x).join(" ");
    out.push(...wrap(what, first, COLUMN));
    if (s.after) out.push(...wrap(s.after, "", 0));
  }
  return out.join("\n") + "\n";
}
