/**
 * Logging setup: LogTape with one synchronous sink on stderr, so stdout stays free for chat
 * and `--json` events, and no line is lost when the process exits right after logging.
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
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  type TextFormatter,
} from "@logtape/logtape";
import { displayName } from "./names.ts";

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

/** The text formatter of {@link setupLogging}; `timestamp: false` leaves the time out (tests). */
export function logFormatter(o: { timestamp?: boolean } = {}): TextFormatter {
  return getTextFormatter({
    timestamp: o.timestamp === false ? "disabled" : "date-time-tz",
    value: (v) => renderValue(v),
  });
}

/** Configures the `p2p` logger category to write to stderr at `level` and above. */
export async function setupLogging(level: LogLevel = "info"): Promise<void> {
  const format = logFormatter();
  await configure({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) => {
        try {
          Deno.stderr.writeSync(encoder.encode(format(record)));
        } catch {
          // stderr closed: nothing sensible left to do with a log line.
        }
      },
    },
    loggers: [
      { category: ["p2p"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
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
