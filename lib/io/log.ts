/**
 * Logging setup: LogTape with one synchronous sink on stderr (or a log file, `--log-file`), so
 * stdout stays free for chat and `--json` events, and no line is lost when the process exits
 * right after logging. Lines
 * are text (coloured only when stderr is a terminal and `NO_COLOR` is unset) or, for log
 * collectors, JSON lines ({@link jsonLogFormatter}).
 *
 * Rules for log calls: the message is a constant template and everything that came from the
 * network or the user (names, rooms, reasons) is passed as a property,
 * `log.info("Peer {name} joined", { name })`, never interpolated into the template (LogTape
 * would read `{x}` in a name as a placeholder). {@link renderValue} escapes string properties
 * with {@link displayName}, and {@link RateLimitedLog} caps lines that a remote party can
 * trigger at will.
 *
 * @module
 */
import {
  configure,
  getAnsiColorFormatter,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  type TextFormatter,
} from "@logtape/logtape";
import { displayName, escapeUnsafeInJson } from "../core/names.ts";

const encoder = new TextEncoder();

/**
 * How a property shows in a log line: strings through {@link displayName} (control, bidi,
 * zero-width and other invisible characters become visible escapes, a backslash `\\`; no quotes,
 * templates add them), anything else with Deno.inspect on one line.
 */
export function renderValue(v: unknown): string {
  if (typeof v === "string") return displayName(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return displayName(Deno.inspect(v, { colors: false, compact: true, breakLength: Infinity }));
}

/** Log levels, least severe first (logtape's; the command line picks one: `--log-level`). */
export type { LogLevel };

/** How {@link setupLogging} writes lines: text for people, JSON lines for log collectors. */
export type LogFormat = "text" | "json";

/** The values `--log-format` accepts. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** The values `--log-level` accepts, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = [
  "trace",
  "debug",
  "info",
  "warning",
  "error",
  "fatal",
];

/** Options of {@link logFormatter}. */
export interface FormatterOptions {
  /** `false` leaves the time out (tests). */
  timestamp?: boolean;
  /** ANSI colours for level, time and category (text only; default off). */
  color?: boolean;
}

/** The text formatter of {@link setupLogging}; `timestamp: false` leaves the time out (tests). */
export function logFormatter(o: FormatterOptions = {}): TextFormatter {
  const options = {
    timestamp: o.timestamp === false ? "disabled" : "date-time-tz",
    value: (v: unknown) => renderValue(v),
  } as const;
  return o.color ? getAnsiColorFormatter(options) : getTextFormatter(options);
}

/[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;

/** A property value as JSON can carry it: bigints as decimal strings, errors as their text. */
function jsonValue(_key: string, v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Error) return { name: v.name, message: v.message };
  if (v instanceof Uint8Array) {
    return Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return v;
}

/** `props` as JSON, each property rendered as text if the whole cannot be (cycles). */
function jsonProperties(props: Record<string, unknown>): string {
  try {
    return JSON.stringify(props, jsonValue);
  } catch {
    const safe: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(props)) {
      try {
        safe[k] = JSON.parse(JSON.stringify(v, jsonValue) ?? "null");
      } catch {
        safe[k] = Deno.inspect(v, { colors: false, compact: true, breakLength: Infinity });
      }
    }
    return JSON.stringify(safe);
  }
}

/**
 * The JSON lines formatter of {@link setupLogging}: one object per line,
 * `{"time","level","category","message","properties"}`. `message` is the record's constant
 * template (`Peer "{name}" joined`), so lines group by it and everything that came from the
 * network or the user is only in `properties`, exactly as it was (no display escaping: JSON
 * escapes what needs it, and characters that act on terminals are written as `\uXXXX`).
 * `level` is LogTape's name (`debug`, `info`, `warning`, `error`, ...); `category` joins the
 * category with dots (`p2p.serve`); `time` is ISO 8601 in UTC.
 */
export function jsonLogFormatter(record: LogRecord): string {
  const raw = record.rawMessage;
  const message = typeof raw === "string" ? raw : raw.join("{}");
  const head = JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    category: record.category.join("."),
    message,
  });
  const line = `${head.slice(0, -1)},"properties":${jsonProperties(record.properties)}}`;
  return escapeUnsafeInJson(line) + "\n";
}

/**
 * Whether log lines get colours: only on a terminal, and not when `NO_COLOR` is set to a
 * non-empty value (https://no-color.org).
 */
export function colorWanted(isTerminal: boolean, noColor: string | undefined): boolean {
  return isTerminal && !noColor;
}

/** {@link colorWanted} for stderr and this process's `NO_COLOR`; off without env permission. */
export function stderrWantsColor(): boolean {
  try {
    return colorWanted(Deno.stderr.isTerminal(), Deno.env.get("NO_COLOR"));
  } catch {
    return false;
  }
}

/** Options of {@link setupLogging}. */
export interface LoggingOptions {
  /** The lowest level written (default `info`). */
  level?: LogLevel;
  /** `text` (default) or `json` lines. */
  format?: LogFormat;
  /** Colour text lines (default {@link stderrWantsColor}); JSON lines never have colour. */
  color?: boolean;
  /**
   * Append lines to this file (made with mode 0600; never coloured) instead of writing them to
   * stderr. Throws when it cannot be opened, saying which file and what to do.
   */
  file?: string | undefined;
}

/** The formatter {@link setupLogging} uses for `o`. */
export function formatterFor(o: LoggingOptions = {}): TextFormatter {
  if (o.format === "json") return jsonLogFormatter;
  return logFormatter({ color: o.color ?? stderrWantsColor() });
}

/**
 * Configures the `p2p` logger category to write to stderr: at `level` and above, as `format`,
 * with colour when `color` (by default, when stderr is a terminal and `NO_COLOR` is unset).
 * A bare level (`setupLogging("debug")`) is `{ level }`.
 */
export async function setupLogging(o: LoggingOptions | LogLevel = {}): Promise<void> {
  const opts: LoggingOptions = typeof o === "string" ? { level: o } : o;
  const file = opts.file === undefined ? null : openLogFile(opts.file);
  const format = formatterFor(file ? { ...opts, color: false } : opts);
  const out = file ?? Deno.stderr;
  await configure({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) => {
        if (redirect) {
          if (LOG_LEVELS.indexOf(record.level) >= LOG_LEVELS.indexOf(redirect.lowest)) {
            redirect.to(logFormatter({ color: false })(record).trimEnd());
          }
          // A log file still gets every line; stderr would write into the input line.
          if (!file) return;
        }
        try {
          out.writeSync(encoder.encode(format(record)));
        } catch {
          // stderr closed, or the disk full: nothing sensible left to do with a log line.
        }
      },
    },
    loggers: [
      { category: ["p2p"], lowestLevel: opts.level ?? "info", sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Opens `path` to append log lines (a new file is made with mode 0600). */
function openLogFile(path: string): Deno.FsFile {
  try {
    return Deno.openSync(path, { append: true, create: true, mode: 0o600 });
  } catch (e) {
    throw new Error(
      `Cannot open the log file ${path} (${
        e instanceof Error ? e.message : String(e)
      }); choose another --log-file`,
    );
  }
}

let redirect: { to: (line: string) => void; lowest: LogLevel } | null = null;

/**
 * While a chat screen owns the terminal, log lines at `lowest` and above go to `to` (one plain
 * line each, shown above the input) and the rest are dropped, instead of stderr writing into
 * the input line; `null` gives stderr back.
 */
export function redirectLogs(
  to: ((line: string) => void) | null,
  lowest: LogLevel = "warning",
): void {
  redirect = to ? { to, lowest } : null;
}

/** The levels {@link RateLimitedLog} writes at. */
export type LimitedLevel = "debug" | "info" | "warning";

const RANK: Record<LimitedLevel, number> = { debug: 0, info: 1, warning: 2 };

/** Options of {@link RateLimitedLog}. */
export interface RateLimitOptions {
  /** Lines per kind per second that are written; more are counted and reported (default 10). */
  perSecond?: number;
  /** The clock, in ms (default `performance.now`). */
  now?: () => number;
}

interface Window {
  start: number;
  written: number;
  suppressed: number;
  level: LimitedLevel;
}

/**
 * A logger that writes at most `perSecond` lines of each kind (say, one kind per server event
 * type) in any one-second window, so a peer flooding the server cannot flood its log. Lines
 * over the limit are counted; when the window ends (seen at the next line of that kind or at
 * {@link RateLimitedLog.flush}) one line reports how many were left out, at the highest level
 * among them.
 */
export class RateLimitedLog {
  #log: Pick<Logger, LimitedLevel>;
  #perSecond: number;
  #now: () => number;
  #windows = new Map<string, Window>();
  #suppressedTotal = 0;

  /** Wraps `log`; see {@link RateLimitOptions} for the defaults. */
  constructor(log: Pick<Logger, LimitedLevel>, o: RateLimitOptions = {}) {
    this.#log = log;
    this.#perSecond = Math.max(1, Math.floor(o.perSecond ?? 10));
    this.#now = o.now ?? (() => performance.now());
  }

  /** Lines left out so far, over all kinds. */
  get suppressedTotal(): number {
    return this.#suppressedTotal;
  }

  /**
   * Writes `template` with `props` at `level` unless `kind` has had its `perSecond` lines in
   * the current window; returns whether the line was written.
   */
  log(
    level: LimitedLevel,
    kind: string,
    template: string,
    props: Record<string, unknown> = {},
  ): boolean {
    const now = this.#now();
    let w = this.#windows.get(kind);
    if (w && now - w.start >= 1000) {
      this.#report(kind, w);
      w = undefined;
    }
    if (!w) {
      w = { start: now, written: 0, suppressed: 0, level: "debug" };
      this.#windows.set(kind, w);
    }
    if (w.written < this.#perSecond) {
      w.written++;
      this.#log[level](template, props);
      return true;
    }
    w.suppressed++;
    this.#suppressedTotal++;
    if (RANK[level] > RANK[w.level]) w.level = level;
    return false;
  }

  /**
   * Reports the kinds whose window has ended with lines left out, and forgets ended windows;
   * with `all`, reports every kind with lines left out at once (call it when stopping).
   */
  flush(all = false): void {
    // Called after every datagram a server handles: nothing to do costs no clock read.
    if (this.#windows.size === 0) return;
    const now = this.#now();
    for (const [kind, w] of this.#windows) {
      if (all || now - w.start >= 1000) {
        this.#report(kind, w);
        this.#windows.delete(kind);
      }
    }
  }

  #report(kind: string, w: Window): void {
    if (w.suppressed === 0) return;
    this.#log[w.level]("Left out {count} {kind} log lines (more than {limit} per second)", {
      count: w.suppressed,
      kind,
      limit: this.#perSecond,
    });
  }
}
