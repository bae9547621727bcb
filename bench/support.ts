/**
 * Helpers the benchmarks share: loopback UDP sockets, the receive loop of `lib/io/udp.ts`, child
 * Deno processes that print one JSON line when ready, and per-thread CPU time from `/proc`.
 *
 * @module
 */

/** The loopback address every benchmark binds. */
export const LO = "127.0.0.1";

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise<void>((r) => setTimeout(r, ms));

/** A UDP socket on `hostname` (loopback by default), any port. */
export function bindUdp(hostname: string = LO): Deno.DatagramConn {
  return Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
}

/** The bound address of `c`. */
export function addrOf(c: Deno.DatagramConn): Deno.NetAddr {
  return c.addr as Deno.NetAddr;
}

/**
 * Receives on `conn` into one reused buffer (`buf`, 64 KiB by default) and hands each datagram
 * to `onDatagram`, until `conn` closes or `onDatagram` returns `"stop"`.
 */
export async function receiveEach(
  conn: Deno.DatagramConn,
  onDatagram: (data: Uint8Array, from: Deno.NetAddr) => void | "stop",
  buf: Uint8Array = new Uint8Array(65_536),
): Promise<void> {
  for (;;) {
    let data: Uint8Array, from: Deno.Addr;
    try {
      [data, from] = await conn.receive(buf);
    } catch {
      return;
    }
    if (onDatagram(data, from as Deno.NetAddr) === "stop") return;
  }
}

/** Starts `deno args…` in `cwd` with stdout piped and stdin and stderr discarded. */
export function spawnDeno(args: string[], cwd: string | URL): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

/**
 * The first stdout line of `child`, parsed as JSON; the rest of stdout is drained so the child
 * never blocks on a full pipe. Throws `"<what> ended before it was ready"` if stdout ends first.
 */
export async function firstJsonLine(
  child: Deno.ChildProcess,
  what: string,
): Promise<Record<string, unknown>> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${what} ended before it was ready`);
    text += value;
    const nl = text.indexOf("\n");
    if (nl >= 0) {
      // Keep draining stdout so the child never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })().catch(() => {});
      return JSON.parse(text.slice(0, nl));
    }
  }
}

/** The UDP address written `host:port`. */
export function parseAddr(s: string): Deno.NetAddr {
  const i = s.lastIndexOf(":");
  return { transport: "udp", hostname: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/**
 * Starts `deno args…` in `cwd` (see {@link spawnDeno}) and waits for its first stdout line, a
 * JSON object whose `addr` is the `host:port` it listens on.
 */
export async function startListening(
  args: string[],
  cwd: string | URL,
  what: string,
): Promise<{ child: Deno.ChildProcess; addr: Deno.NetAddr }> {
  const child = spawnDeno(args, cwd);
  const ready = await firstJsonLine(child, what);
  return { child, addr: parseAddr(String(ready.addr)) };
}

/** Stops `child` with SIGTERM, then SIGKILL after 5 s, and waits for it to end. */
export async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, 5_000);
  await child.status;
  clearTimeout(timer);
}

/** CPU time of each thread of process `pid` so far, in ms, by `name/tid` (Linux schedstat). */
export function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(
        Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ")[0],
      );
      const name = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/comm`).trim();
      out.set(`${name}/${t.name}`, ns / 1e6);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** CPU time of every thread of process `pid` so far, in ms. */
export function processCpuMs(pid: number): number {
  let ms = 0;
  for (const v of threadCpuMs(pid).values()) ms += v;
  return ms;
}

/** What a {@link JsonChild} is started with besides its arguments. */
export interface JsonChildOptions {
  /** Extra environment. */
  env?: Record<string, string>;
  /** Whether its stdin is a pipe ({@link JsonChild.send}); else null. */
  stdin?: boolean;
  /** Each stdout line that is not JSON. */
  other?: (line: string) => void;
  /** Each stderr line (stderr is discarded without it). */
  stderr?: (line: string) => void;
}

/**
 * A child Deno process (`deno ARGS`) whose stdout lines are JSON objects, kept in
 * {@link JsonChild.lines} with `at` (when read) and waited for with {@link JsonChild.wait}.
 */
export class JsonChild {
  readonly proc: Deno.ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  #waiters: (() => void)[] = [];
  #done: Promise<unknown>;

  /** Starts `deno args` as `o` says. */
  constructor(args: string[], o: JsonChildOptions = {}) {
    const proc = new Deno.Command(Deno.execPath(), {
      args,
      env: o.env ?? {},
      stdin: o.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: o.stderr ? "piped" : "null",
    }).spawn();
    this.proc = proc;
    const out = eachLine(proc.stdout, (line) => {
      try {
        this.lines.push({ ...JSON.parse(line), at: performance.now() });
      } catch {
        o.other?.(line);
      }
    }, () => {
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#done = Promise.all([out, o.stderr ? eachLine(proc.stderr, o.stderr) : undefined]);
  }

  /** The first line for which `pred` holds (waiting at most `ms`). */
  async wait(pred: (v: Record<string, unknown>) => boolean, ms: number, what: string) {
    const end = performance.now() + ms;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 250);
      });
    }
  }

  /** Writes a line to its stdin. */
  async send(line: string): Promise<void> {
    const w = this.proc.stdin.getWriter();
    await w.write(new TextEncoder().encode(line + "\n"));
    w.releaseLock();
  }

  /** Stops it ({@link stopChild}) and waits for its output to end. */
  async close(): Promise<void> {
    await stopChild(this.proc);
    await this.#done.catch(() => {});
  }
}

/** Calls `line` for each line of `stream`, then `chunk` after each chunk read. */
async function eachLine(
  stream: ReadableStream<Uint8Array>,
  line: (l: string) => void,
  chunk: () => void = () => {},
): Promise<void> {
  let text = "";
  for await (const c of stream.pipeThrough(new TextDecoderStream())) {
    text += c;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
      line(text.slice(0, nl));
      text = text.slice(nl + 1);
    }
    chunk();
  }
}
