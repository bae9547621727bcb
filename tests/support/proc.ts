/**
 * Spawn and drive processes that speak JSON lines on stdout: the `p2p` CLI (`serve`, `join`)
 * and small helper tools. Works on loopback and, with {@link ProcessOptions.netns}, inside a
 * Linux network namespace (`ip netns exec NS ...`).
 *
 * Every {@link P2pProcess} is registered for emergency cleanup: if the test process gets
 * SIGINT/SIGTERM or unloads, live children are killed (see {@link registerEmergencyCleanup}).
 *
 * Every `p2p join` runs like a fresh user: with its own temporary `XDG_CONFIG_HOME` (so its own
 * identity and known peers, removed when the process is closed) and the room passphrase in
 * `P2P_PASSPHRASE` (the same for every peer of a room, see {@link testPassphrase}); neither is
 * inherited from the environment of the tests.
 *
 * @module
 */

/** One JSON object read from a child's stdout. `event` names its kind. */
export type P2pEvent = { event: string } & Record<string, unknown>;

/** Predicate used by {@link P2pProcess.waitFor}. */
export type EventPredicate = (event: P2pEvent) => boolean;

/** Options for spawning any JSON-lines process. */
export interface ProcessOptions {
  /** Run inside this network namespace (via `ip netns exec`). */
  netns?: string;
  /** Name used in diagnostics (defaults to the command). */
  label?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string | URL;
  /**
   * Give the process its own new temporary directory as `XDG_CONFIG_HOME` (unless `env` sets
   * one); {@link P2pProcess.close} removes it. {@link P2pProcess.p2p} does this for `join`.
   */
  configHome?: boolean;
  /** Variables of this process's environment the child must not inherit. */
  unsetEnv?: readonly string[];
}

/** The environment of the tests without `names`, with `extra` on top. */
export function childEnv(
  names: readonly string[],
  extra: Record<string, string> = {},
): Record<string, string> {
  const env = Deno.env.toObject();
  for (const n of names) delete env[n];
  return { ...env, ...extra };
}

/** Variables a spawned `p2p join` must not inherit: it gets its own. */
export const PEER_ENV = ["P2P_PASSPHRASE", "XDG_CONFIG_HOME"] as const;

/** The room passphrase test peers use unless told otherwise: the same for one room name. */
export function testPassphrase(room: string): string {
  return `test passphrase of room ${room}`;
}

/** Options for spawning the p2p CLI. */
export interface P2pOptions extends ProcessOptions {
  /** Path or URL of `main.ts` (default: the checkout's `main.ts`). */
  main?: string | URL;
}

/** URL of the product's entry point, relative to this file. */
export const MAIN_URL: URL = new URL("../../main.ts", import.meta.url);

const MAX_STDERR = 256 * 1024;
const encoder = new TextEncoder();

/**
 * Deno's own progress lines (`Download https://...`, `Initialize npm:...`), written to a child's
 * stderr when its dependencies are not cached yet (a fresh `DENO_DIR`). Uncoloured: stderr is a
 * pipe.
 */
const DENO_PROGRESS = /^(?:Download|Initialize) \S+\r?(?:\n|$)/gm;

/**
 * Removes Deno's own `Download ...` / `Initialize ...` lines from a child's stderr, so that
 * assertions about what the program writes hold on the first run with an empty Deno cache too.
 */
export function stripDenoProgress(stderr: string): string {
  return stderr.replace(DENO_PROGRESS, "");
}

// ---------------------------------------------------------------------------------------------
// Emergency cleanup (signals, unload, and a reaper for abrupt deaths)
//
// Three layers: (1) SIGINT/SIGTERM listeners and (2) an `unload` listener run the registered
// synchronous cleanups; (3) a tiny `sh` "reaper" child, which ignores signals and blocks reading
// its stdin, learns which pids and namespace prefixes are live. If this process dies without
// cleaning up (SIGKILL, or `deno test`'s own SIGINT handling, which exits without running JS
// listeners), the reaper sees EOF on stdin and kills those pids and deletes those namespaces.

/** A synchronous emergency cleanup. */
export type CleanupFn = () => void;

/** What the reaper should clean up if this process dies abruptly. */
export interface ReapTarget {
  /** Kill this process id. */
  pid?: number;
  /** Delete every namespace named `<nsPrefix>-*` (after killing the processes inside). */
  nsPrefix?: string;
}

const cleanups = new Set<CleanupFn>();
let signalsInstalled = false;

const REAPER_SCRIPT = `
trap '' INT TERM HUP PIPE
pids=" "; prefixes=" "
while IFS=' ' read -r cmd arg; do
  case "$cmd" in
    pid) pids="$pids$arg ";;
    ns) prefixes="$prefixes$arg ";;
    unpid) n=" "; for p in $pids; do [ "$p" = "$arg" ] || n="$n$p "; done; pids=$n;;
    unns) n=" "; for p in $prefixes; do [ "$p" = "$arg" ] || n="$n$p "; done; prefixes=$n;;
  esac
done
for p in $pids; do kill -9 "$p" 2>/dev/null; done
for pre in $prefixes; do
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case "$ns" in
      "$pre"-*)
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null;;
    esac
  done
done
`;

interface Reaper {
  child: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  queue: Promise<void>;
}

let reaper: Reaper | null = null;
let reapTargets = 0;

function reaperLine(line: string): void {
  if (!reaper) {
    const child = new Deno.Command("sh", {
      args: ["-c", REAPER_SCRIPT],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    reaper = { child, writer: child.stdin.getWriter(), queue: Promise.resolve() };
  }
  const r = reaper;
  r.queue = r.queue.then(() => r.writer.write(encoder.encode(line + "\n"))).catch(() => {});
}

function runCleanups(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // Best effort: keep going with the others.
    }
  }
}

function onSignal(): void {
  runCleanups();
  uninstallSignals();
  Deno.exit(130);
}

function installSignals(): void {
  if (signalsInstalled || Deno.build.os === "windows") return;
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  signalsInstalled = true;
}

function uninstallSignals(): void {
  if (!signalsInstalled) return;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  signalsInstalled = false;
}

globalThis.addEventListener("unload", runCleanups);

/**
 * Register a synchronous cleanup that runs if the test process gets SIGINT/SIGTERM or unloads
 * before it is unregistered. With `reap`, the reaper child also kills that pid / deletes those
 * namespaces if this process dies without running any JS. Signal listeners and the reaper exist
 * only while something is registered; call {@link settleEmergencyCleanup} after unregistering
 * so that the reaper is awaited (test sanitizers).
 *
 * @returns a function that unregisters the cleanup without running it (idempotent).
 */
export function registerEmergencyCleanup(fn: CleanupFn, reap?: ReapTarget): () => void {
  cleanups.add(fn);
  installSignals();
  const lines: Array<[string, string]> = [];
  if (reap?.pid !== undefined) lines.push(["pid", String(reap.pid)]);
  if (reap?.nsPrefix !== undefined) lines.push(["ns", reap.nsPrefix]);
  for (const [cmd, arg] of lines) reaperLine(`${cmd} ${arg}`);
  reapTargets += lines.length ? 1 : 0;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    cleanups.delete(fn);
    if (cleanups.size === 0) uninstallSignals();
    for (const [cmd, arg] of lines) reaperLine(`un${cmd} ${arg}`);
    reapTargets -= lines.length ? 1 : 0;
  };
}

/**
 * If nothing is registered any more, stop the reaper and wait for it to exit. Called by
 * {@link P2pProcess.close} and the lab's `destroy`; harmless at any time.
 */
export async function settleEmergencyCleanup(): Promise<void> {
  const r = reaper;
  if (!r || reapTargets > 0) return;
  reaper = null;
  await r.queue;
  try {
    await r.writer.close();
  } catch {
    // reaper already gone
  }
  await r.child.status;
}

// ---------------------------------------------------------------------------------------------

interface Waiter {
  predicate: EventPredicate;
  description: string;
  timeoutMs: number;
  resolve: (event: P2pEvent) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Format events compactly for error messages (the last `max` of them). */
export function formatEvents(events: readonly P2pEvent[], max = 60): string {
  const shown = events.slice(-max);
  const skipped = events.length - shown.length;
  const lines = shown.map((e) => "  " + JSON.stringify(e));
  if (skipped > 0) lines.unshift(`  ... (${skipped} earlier events)`);
  return lines.length ? lines.join("\n") : "  (none)";
}

/** Last `maxChars` characters of a text, marked if cut. */
export function tail(text: string, maxChars = 4000): string {
  if (text.length <= maxChars) return text;
  return "...[cut]..." + text.slice(-maxChars);
}

/**
 * A child process whose stdout is JSON lines. Stdout is parsed into {@link events}; non-JSON
 * lines are kept in {@link nonJsonLines}; stderr is collected as text.
 */
export class P2pProcess implements AsyncDisposable {
  #label: string;
  #child: Deno.ChildProcess;
  #events: P2pEvent[] = [];
  #times = new WeakMap<P2pEvent, number>();
  #nonJson: string[] = [];
  #stderr = "";
  #stderrCut = 0;
  /** Who waits for stderr to match a pattern (see {@link waitForStderr}). */
  #stderrWaiters = new Set<{ pattern: RegExp; resolve: () => void }>();
  #waiters = new Set<Waiter>();
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #stdinClosed = false;
  #stdoutReader: ReadableStreamDefaultReader<Uint8Array>;
  #stderrReader: ReadableStreamDefaultReader<Uint8Array>;
  #stdoutDone: Promise<void>;
  #stderrDone: Promise<void>;
  #stdoutEnded = false;
  #code: number | null = null;
  #status: Promise<Deno.CommandStatus>;
  #unregister: () => void;
  #configHome: string | undefined;

  /**
   * Spawn `cmd[0]` with arguments `cmd[1..]` (inside `opts.netns` if given). Stdin, stdout and
   * stderr are piped.
   */
  constructor(cmd: readonly string[], opts: ProcessOptions = {}) {
    if (cmd.length === 0) throw new Error("P2pProcess: empty command");
    const full = opts.netns ? ["ip", "netns", "exec", opts.netns, ...cmd] : [...cmd];
    const [program, ...args] = full as [string, ...string[]];
    this.#label = opts.label ?? cmd.join(" ");
    const options: Deno.CommandOptions = {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    };
    const env = { ...opts.env };
    if (opts.configHome && env.XDG_CONFIG_HOME === undefined) {
      this.#configHome = Deno.makeTempDirSync({ prefix: "p2p-config-" });
      env.XDG_CONFIG_HOME = this.#configHome;
    }
    if (opts.unsetEnv?.length) {
      options.clearEnv = true;
      options.env = childEnv(opts.unsetEnv, env);
    } else if (Object.keys(env).length > 0) {
      options.env = env;
    }
    if (opts.cwd) options.cwd = opts.cwd;
    try {
      this.#child = new Deno.Command(program, options).spawn();
    } catch (e) {
      this.#removeConfigHome();
      throw e;
    }
    const child = this.#child;
    this.#unregister = registerEmergencyCleanup(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      this.#removeConfigHome();
    }, { pid: child.pid });
    this.#writer = this.#child.stdin.getWriter();
    this.#status = this.#child.status.then((s) => {
      this.#code = s.code;
      this.#unregister();
      return s;
    });
    this.#stdoutReader = this.#child.stdout.getReader();
    this.#stderrReader = this.#child.stderr.getReader();
    this.#stdoutDone = this.#readStdout().catch((e) => {
      this.#nonJson.push(`[stdout read error: ${e}]`);
    });
    this.#stderrDone = this.#readStderr().catch((e) => {
      this.#stderr += `\n[stderr read error: ${e}]`;
    });
    // When stdout ends, fail pending waiters once the exit status is known.
    this.#stdoutDone.then(() => this.#status).then(() => this.#failWaiters());
  }

  /**
   * Spawn the p2p CLI: `deno run -A main.ts ...args`, with the checkout as working directory
   * (so its `deno.json` applies). A `join` gets its own temporary `XDG_CONFIG_HOME` and inherits
   * neither `P2P_PASSPHRASE` nor `XDG_CONFIG_HOME` (pass the passphrase in `opts.env`).
   */
  static p2p(args: readonly string[], opts: P2pOptions = {}): P2pProcess {
    const main = opts.main ?? MAIN_URL;
    const mainPath = main instanceof URL ? fromFileUrl(main) : main;
    const cwd = opts.cwd ?? dirname(mainPath);
    const label = opts.label ?? `p2p ${args[0] ?? ""}`;
    const peer = args[0] === "join";
    return new P2pProcess([Deno.execPath(), "run", "-A", mainPath, ...args], {
      configHome: peer,
      unsetEnv: peer ? PEER_ENV : [],
      ...opts,
      cwd,
      label,
    });
  }

  /** The temporary `XDG_CONFIG_HOME` of this process (see {@link ProcessOptions.configHome}). */
  get configHome(): string | undefined {
    return this.#configHome;
  }

  /** Name used in diagnostics. */
  get label(): string {
    return this.#label;
  }

  /** OS process id (inside a netns this is the command itself: `ip netns exec` execs it). */
  get pid(): number {
    return this.#child.pid;
  }

  /** All events parsed so far, in arrival order. */
  get events(): readonly P2pEvent[] {
    return this.#events;
  }

  /** Stdout lines that were not JSON objects with a string `event`. */
  get nonJsonLines(): readonly string[] {
    return this.#nonJson;
  }

  /**
   * Stderr text collected so far, without Deno's download progress lines (the first bytes are
   * dropped beyond 256 KiB).
   */
  get stderr(): string {
    const text = stripDenoProgress(this.#stderr);
    return this.#stderrCut ? `...[${this.#stderrCut} chars cut]...` + text : text;
  }

  /** Exit code once the process has exited, else `null`. */
  get exitCode(): number | null {
    return this.#code;
  }

  /** When `event` arrived, on the `performance.now()` clock of this test process. */
  receivedAt(event: P2pEvent): number | undefined {
    return this.#times.get(event);
  }

  /** Events whose `event` field equals `kind`. */
  eventsOf(kind: string): P2pEvent[] {
    return this.#events.filter((e) => e.event === kind);
  }

  /** Human-readable summary: label, pid, exit code, events, non-JSON lines, stderr tail. */
  describe(stderrChars = 4000): string {
    const parts = [
      `--- ${this.#label} (pid ${this.pid}, exit ${this.#code ?? "running"}) ---`,
      `events (${this.#events.length}):`,
      formatEvents(this.#events),
    ];
    if (this.#nonJson.length) {
      parts.push(`non-JSON stdout lines (${this.#nonJson.length}):`);
      parts.push(...this.#nonJson.slice(-20).map((l) => "  " + l));
    }
    parts.push("stderr tail:", tail(this.stderr, stderrChars) || "  (empty)");
    return parts.join("\n");
  }

  /**
   * Resolve with the first event (already seen or future) matching `predicate`. Rejects after
   * `timeoutMs`, or as soon as the process has exited without a match; the error includes the
   * events seen and the stderr tail.
   */
  waitFor(
    predicate: EventPredicate,
    timeoutMs: number,
    description = predicate.toString(),
  ): Promise<P2pEvent> {
    const found = this.#events.find(predicate);
    if (found) return Promise.resolve(found);
    if (this.#stdoutEnded && this.#code !== null) {
      return Promise.reject(this.#waitError(description, "process exited", timeoutMs));
    }
    return new Promise<P2pEvent>((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        description,
        timeoutMs,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(this.#waitError(description, `timed out after ${timeoutMs} ms`, timeoutMs));
        }, Math.max(0, timeoutMs)),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Like {@link waitFor} but matches `event === kind` plus optional field equality. */
  waitForEvent(
    kind: string,
    fields: Record<string, unknown> = {},
    timeoutMs = 10_000,
  ): Promise<P2pEvent> {
    return this.waitFor(
      (e) => e.event === kind && Object.entries(fields).every(([k, v]) => e[k] === v),
      timeoutMs,
      JSON.stringify({ event: kind, ...fields }),
    );
  }

  /** Resolves once stderr matches `pattern` (rejects after `timeoutMs`, with what it has). */
  waitForStderr(pattern: RegExp, timeoutMs: number): Promise<void> {
    if (pattern.test(this.#stderr)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        pattern,
        resolve: () => (clearTimeout(timer), resolve()),
      };
      const timer = setTimeout(() => {
        this.#stderrWaiters.delete(w);
        reject(new Error(`stderr never matched ${pattern} in ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
      this.#stderrWaiters.add(w);
    });
  }

  /** Write `line` plus a newline to stdin. */
  async send(line: string): Promise<void> {
    if (this.#stdinClosed) throw new Error(`${this.#label}: send after closeStdin`);
    if (line.includes("\n")) throw new Error(`${this.#label}: line contains a newline`);
    await this.#writer.write(encoder.encode(line + "\n"));
  }

  /** Close stdin (idempotent). Errors (process already gone) are ignored. */
  async closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    try {
      await this.#writer.close();
    } catch {
      try {
        await this.#writer.abort();
      } catch {
        // nothing left to release
      }
    }
  }

  /**
   * Wait for exit and return the exit code. With `timeoutMs`, rejects (without killing) if the
   * process is still running then.
   */
  async wait(timeoutMs?: number): Promise<number> {
    if (timeoutMs === undefined) return (await this.#status).code;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `${this.#label}: still running after ${timeoutMs} ms\n${this.describe()}`,
              ),
            ),
          timeoutMs,
        );
      });
      return (await Promise.race([this.#status, timeout])).code;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send a signal (default SIGTERM). No-op if the process has already exited. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    if (this.#code !== null) return;
    try {
      this.#child.kill(signal);
    } catch {
      // exited meanwhile
    }
  }

  /**
   * Kill if still running (SIGTERM, then SIGKILL after `graceMs`), then await the exit status
   * and every reader loop. Idempotent.
   */
  async close(graceMs = 2000): Promise<void> {
    await this.closeStdin();
    if (this.#code === null) {
      this.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = await Promise.race([
        this.#status.then(() => true),
        new Promise<false>((r) => timer = setTimeout(() => r(false), graceMs)),
      ]);
      clearTimeout(timer);
      if (!killed) this.kill("SIGKILL");
    }
    await this.#status;
    // A grandchild may still hold the pipes open: give the readers a moment, then cancel them.
    const readers = Promise.allSettled([this.#stdoutDone, this.#stderrDone]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      readers.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), 1000)),
    ]);
    clearTimeout(timer);
    if (!drained) {
      await Promise.allSettled([this.#stdoutReader.cancel(), this.#stderrReader.cancel()]);
      await readers;
    }
    this.#failWaiters();
    this.#unregister();
    this.#removeConfigHome();
    await settleEmergencyCleanup();
  }

  #removeConfigHome(): void {
    if (this.#configHome === undefined) return;
    try {
      Deno.removeSync(this.#configHome, { recursive: true });
    } catch {
      // Best effort: a temporary directory.
    }
    this.#configHome = undefined;
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #waitError(description: string, why: string, timeoutMs: number): Error {
    return new Error(
      `${this.#label}: ${why} while waiting for ${description} (limit ${timeoutMs} ms)\n` +
        this.describe(),
    );
  }

  #failWaiters(): void {
    for (const w of [...this.#waiters]) {
      this.#waiters.delete(w);
      clearTimeout(w.timer);
      w.reject(this.#waitError(w.description, "process exited", w.timeoutMs));
    }
  }

  #push(event: P2pEvent): void {
    this.#times.set(event, performance.now());
    this.#events.push(event);
    for (const w of [...this.#waiters]) {
      if (w.predicate(event)) {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(event);
      }
    }
  }

  #line(line: string): void {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.#nonJson.push(line);
      return;
    }
    if (
      typeof value === "object" && value !== null && !Array.isArray(value) &&
      typeof (value as Record<string, unknown>).event === "string"
    ) {
      this.#push(value as P2pEvent);
    } else {
      this.#nonJson.push(line);
    }
  }

  async #readStdout(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await this.#stdoutReader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          this.#line(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
      buf += dec.decode();
    } finally {
      if (buf) this.#line(buf);
      this.#stdoutEnded = true;
    }
  }

  async #readStderr(): Promise<void> {
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await this.#stderrReader.read();
      if (done) break;
      this.#stderr += dec.decode(value, { stream: true });
      if (this.#stderr.length > MAX_STDERR) {
        const cut = this.#stderr.length - MAX_STDERR;
        this.#stderrCut += cut;
        this.#stderr = this.#stderr.slice(cut);
      }
      for (const w of [...this.#stderrWaiters]) {
        if (w.pattern.test(this.#stderr)) (this.#stderrWaiters.delete(w), w.resolve());
      }
    }
    this.#stderr += dec.decode();
  }
}

// ---------------------------------------------------------------------------------------------
// p2p helpers

/** Options for {@link startServer}. */
export interface ServerOptions extends P2pOptions {
  /** Address to bind (`--host`). */
  host: string;
  /** Port to bind (`--port`). */
  port: number;
  /** How long to wait for the `listening` event (default 15 s). */
  timeoutMs?: number;
  /** Extra CLI arguments appended after the standard ones. */
  extraArgs?: readonly string[];
}

/** A running rendezvous server. */
export interface RunningServer {
  /** The server process. */
  proc: P2pProcess;
  /** `IP:PORT` from the `listening` event. */
  addr: string;
}

/**
 * Spawn `p2p serve --host H --port N --json` and wait for its `listening` event. Closes the
 * process if it does not come up in time.
 */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const args = ["serve", "--host", opts.host, "--port", String(opts.port), "--json"];
  const proc = P2pProcess.p2p([...args, ...(opts.extraArgs ?? [])], {
    label: "server",
    ...opts,
  });
  try {
    const ev = await proc.waitFor(
      (e) => e.event === "listening",
      opts.timeoutMs ?? 15_000,
      '{"event":"listening"}',
    );
    if (typeof ev.addr !== "string") {
      throw new Error(`server: listening event without addr: ${JSON.stringify(ev)}`);
    }
    return { proc, addr: ev.addr };
  } catch (e) {
    await proc.close();
    throw e;
  }
}

/** Options for {@link startPeer}. */
export interface PeerOptions extends P2pOptions {
  /** Server `IP:PORT`. */
  server: string;
  /** Room name. */
  room: string;
  /** Peer name (also the default label). */
  name: string;
  /** `--bind IP`. */
  bind?: string;
  /** `--relay-only`. */
  relayOnly?: boolean;
  /** `--keepalive SECONDS`. */
  keepaliveSec?: number;
  /** Extra CLI arguments appended after the standard ones. */
  extraArgs?: readonly string[];
  /** Room passphrase, in `P2P_PASSPHRASE` (default {@link testPassphrase} of the room). */
  passphrase?: string;
}

/** Build the argument list for `p2p join ... --json`. */
export function joinArgs(opts: PeerOptions): string[] {
  const args = ["join", "--server", opts.server, "--room", opts.room, "--name", opts.name];
  args.push("--json");
  if (opts.bind !== undefined) args.push("--bind", opts.bind);
  if (opts.relayOnly) args.push("--relay-only");
  if (opts.keepaliveSec !== undefined) args.push("--keepalive", String(opts.keepaliveSec));
  args.push(...(opts.extraArgs ?? []));
  return args;
}

/**
 * Spawn `p2p join ... --json` (does not wait for `ready`), with the room passphrase in
 * `P2P_PASSPHRASE` and its own temporary `XDG_CONFIG_HOME`.
 */
export function startPeer(opts: PeerOptions): P2pProcess {
  const env = { P2P_PASSPHRASE: opts.passphrase ?? testPassphrase(opts.room), ...opts.env };
  return P2pProcess.p2p(joinArgs(opts), { label: opts.name, ...opts, env });
}

/** Outcome of {@link runP2p}. */
export interface P2pResult {
  /** Exit code. */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr, without Deno's download progress lines. */
  stderr: string;
  /** Wall time from spawn to exit, in ms. */
  ms: number;
}

/** Options of {@link runP2p}. */
export interface RunOptions {
  /** Kill the child after this long (default 30 s: a guard against hangs). */
  killAfterMs?: number;
  /** Path or URL of `main.ts` (default: the checkout's `main.ts`). */
  main?: string | URL;
  /** Extra environment variables (such as `P2P_PASSPHRASE`). */
  env?: Record<string, string>;
}

/**
 * Run `deno run -A main.ts ...args` to completion with stdin closed and `NO_COLOR=1`, from the
 * checkout (so its `deno.json` and `deno.lock` apply), after {@link prepareProduct}. Like a
 * fresh user: a new temporary `XDG_CONFIG_HOME` (removed afterwards) and no `P2P_PASSPHRASE`
 * unless `opts.env` sets them. Its stderr comes without Deno's own download lines.
 */
export async function runP2p(args: readonly string[], opts: RunOptions = {}): Promise<P2pResult> {
  const main = opts.main ?? MAIN_URL;
  await prepareProduct(main);
  const mainPath = main instanceof URL ? fromFileUrl(main) : main;
  const configHome = await Deno.makeTempDir({ prefix: "p2p-config-" });
  try {
    const started = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", mainPath, ...args],
      cwd: dirname(mainPath),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: childEnv(PEER_ENV, { NO_COLOR: "1", XDG_CONFIG_HOME: configHome, ...opts.env }),
      signal: AbortSignal.timeout(opts.killAfterMs ?? 30_000),
    }).output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: stripDenoProgress(dec.decode(out.stderr)),
      ms: performance.now() - started,
    };
  } finally {
    await Deno.remove(configHome, { recursive: true }).catch(() => {});
  }
}

let prepared: Promise<void> | undefined;

/**
 * Make sure the product's dependencies are in Deno's cache (`deno cache main.ts`, once per
 * process), so that later runs inside network namespaces need no network and start quickly.
 * Throws with the output if main.ts is missing or does not resolve.
 */
export function prepareProduct(main: string | URL = MAIN_URL): Promise<void> {
  prepared ??= (async () => {
    const mainPath = main instanceof URL ? fromFileUrl(main) : main;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["cache", "--quiet", mainPath],
      cwd: dirname(mainPath),
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      throw new Error(`deno cache ${mainPath} failed (exit ${out.code}):\n${tail(text)}`);
    }
  })();
  return prepared;
}

function fromFileUrl(url: URL): string {
  if (url.protocol !== "file:") throw new Error(`not a file URL: ${url}`);
  return decodeURIComponent(url.pathname);
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** A UDP port on 127.0.0.1 where nothing listens (bound, then released). */
export function freeUdpPort(): number {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}
