/**
 * Peer data plane benchmark: chat messages per second from one `p2p join` to another, sealing,
 * the reliable channel and stdio included, against the raw UDP message rate of the same path
 * measured in the same run.
 *
 * Everything runs as separate processes on loopback, as users run it (the issue measured 50k
 * lines piped through real processes):
 *
 * - `raw direct`: a sender process sends N datagrams of the size of a sealed DATA frame to a
 *   receiver process, both in lib/io/udp.ts's style (one awaited `receive` per datagram into a
 *   reused buffer; fire-and-forget `send`s whose promises are tracked). The rate is the
 *   receiver's: datagrams received over the time from the first to the last one.
 * - `raw relayed`: the same through a third process that forwards every datagram in that style
 *   (a raw Deno forwarder), as the relay sits between two peers.
 * - `p2p direct` / `p2p relayed`: a `p2p serve` (its relay rate limits lifted: they
 *   are policy, not data plane) and two `p2p join --json` processes (relayed: both
 *   `--relay-only`). N lines are piped into the sender's stdin as fast as it takes them; the
 *   rate is measured on the receiver's stdout the same way (first to last message). Every
 *   message must arrive exactly once and in order (checked).
 * - CPU per message: the CPU time (all threads, Linux schedstat) the p2p sender and receiver
 *   processes spent from the first line written to the last message read, over the messages;
 *   its baseline is the raw sender's and receiver's CPU per datagram (each measures its own,
 *   from its first send or receive to its last). On a machine shared with other work this
 *   varies far less than the rates, which follow whatever else runs.
 * - Latency under load: a second, paced run at half the rate p2p carried (or at
 *   `--latency-rate`, to compare versions at one load). Each line carries
 *   the time the bench wrote it to the sender's stdin; the latency runs to when the bench read
 *   it from the receiver's stdout. Its baseline is raw UDP at the same rate (send to receive,
 *   one-way).
 *
 * Bounded: at most `--count` messages (default 50,000) and `--seconds` (default 30) per run.
 * Prints a table, then one JSON line per figure: `{"name":"peer_direct_rate","value":...,
 * "baseline":...,"ratio":...,"goal":...}` for `peer_<path>_rate` (msgs/s), `_cpu` (µs per
 * message), `_latency_p50` and `_latency_p99` (ms); ratio: higher is better; only the rate has
 * a goal. `scripts/bench.ts` runs it as part of `deno task bench`. `--runs 3` reports the median of three runs.
 *
 * Usage: `deno run -A bench/peer_throughput.ts [--count N] [--seconds S] [--size BYTES]
 * [--runs R] [--only direct|relayed] [--latency-rate MSGS] [--verbose] [--prof DIR]` (`--prof`:
 * CPU profiles of the p2p processes, as `deno run --cpu-prof` writes them).
 *
 * @module
 */

import { bindUdp, LO, processCpuMs, receiveEach } from "./support.ts";

const ROOT = new URL("../", import.meta.url);
const SELF = new URL(import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** The lowest acceptable p2p/raw message rate ratio (issue 8). */
const GOAL = 0.5;
/** Bytes of a sealed DATA datagram around the text: header 28, inner frame 14, tag 16. */
const SEALED_DATA_OVERHEAD = 28 + 14 + 16;
/** The paced runs write (or send) what is due every this many ms. */
const PACE_MS = 1;

const encoder = new TextEncoder();

interface Args {
  count: number;
  seconds: number;
  size: number;
  runs: number;
  only: "direct" | "relayed" | undefined;
  verbose: boolean;
  prof: string | undefined;
  /** Child roles (this file runs its raw senders, receivers and forwarders). */
  role: string | undefined;
  to: number;
  rate: number;
  /** Offered rate of the latency runs (default: half the rate p2p carried). */
  latencyRate: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    count: 50_000,
    seconds: 30,
    size: 100,
    runs: 1,
    only: undefined,
    verbose: false,
    prof: undefined,
    role: undefined,
    to: 0,
    rate: 0,
    latencyRate: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!, v = argv[i + 1];
    const num = () => {
      i++;
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${k} needs a positive number`);
      return n;
    };
    if (k === "--count") a.count = Math.floor(num());
    else if (k === "--seconds") a.seconds = num();
    else if (k === "--size") a.size = Math.max(24, Math.floor(num()));
    else if (k === "--runs") a.runs = Math.floor(num());
    else if (k === "--to") a.to = Math.floor(num());
    else if (k === "--rate") a.rate = num();
    else if (k === "--latency-rate") a.latencyRate = num();
    else if (k === "--verbose") a.verbose = true;
    else if (k === "--only" && (v === "direct" || v === "relayed")) (a.only = v, i++);
    else if (k === "--role" && v) (a.role = v, i++);
    else if (k === "--prof" && v) (a.prof = v, i++);
    else throw new Error(`Unknown argument ${k}`);
  }
  return a;
}

const ARGS = parseArgs(Deno.args);

// ---------------------------------------------------------------------------------------------
// Raw roles (child processes of this file)

/** Milliseconds on a clock every process on the machine shares (for one-way latencies). */
function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/**
 * Receives until `count` datagrams, or 1 s of silence after the first; reports the time from
 * the first to the last and, for paced senders (which stamp each datagram), latencies.
 */
async function rawReceiver(count: number, stamped: boolean): Promise<void> {
  const conn = bindUdp();
  console.log(JSON.stringify({ port: (conn.addr as Deno.NetAddr).port }));
  const buf = new Uint8Array(65_536);
  const view = new DataView(buf.buffer);
  const latencies: number[] = [];
  let n = 0, first = 0, last = 0, cpuFirst = 0, cpuLast = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const done = () => {
    clearTimeout(idle);
    latencies.sort((x, y) => x - y);
    const p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99);
    const cpuMs = cpuLast - cpuFirst;
    console.log(JSON.stringify({ received: n, first, last, p50, p99, cpuMs }));
    conn.close();
  };
  const rearm = () => {
    clearTimeout(idle);
    idle = setTimeout(done, 1000);
  };
  rearm();
  await receiveEach(conn, (data, a) => {
    // The per-datagram work of lib/io/udp.ts's loop: an endpoint object and a clock read.
    const from = { hostname: a.hostname, port: a.port };
    const now = performance.now();
    if (stamped && data.length >= 8 && from.port > 0) {
      latencies.push(wallNow() - view.getFloat64(0));
    }
    if (n === 0) (first = now, cpuFirst = selfCpuMs());
    last = now;
    if (++n >= count) {
      cpuLast = selfCpuMs();
      done();
      return "stop";
    }
    if ((n & 1023) === 0) (rearm(), cpuLast = selfCpuMs());
  }, buf);
}

/** This process's CPU time so far (all threads), ms. */
function selfCpuMs(): number {
  return processCpuMs(Deno.pid);
}

/** Forwards every datagram to `to` (a raw relay), in lib/io/udp.ts's send style. */
async function rawForwarder(to: number): Promise<void> {
  const conn = bindUdp();
  console.log(JSON.stringify({ port: (conn.addr as Deno.NetAddr).port }));
  const sends = new Set<Promise<void>>();
  await receiveEach(conn, (data) => {
    const p: Promise<void> = conn.send(data.slice(), { transport: "udp", hostname: LO, port: to })
      .then(() => {}, () => {}).finally(() => sends.delete(p));
    sends.add(p);
  });
}

/**
 * Sends `count` datagrams of `size` bytes to `to` in lib/io/udp.ts's send style: as fast as the
 * socket takes them (batches of 64), or at `rate` a second, each stamped with the time sent.
 */
async function rawSender(to: number, count: number, size: number, rate: number): Promise<void> {
  const conn = bindUdp();
  const sends = new Set<Promise<void>>();
  const send = (d: Uint8Array) => {
    const p: Promise<void> = conn.send(d, { transport: "udp", hostname: LO, port: to })
      .then(() => {}, () => {}).finally(() => sends.delete(p));
    sends.add(p);
  };
  if (rate > 0) {
    const start = performance.now();
    for (let sent = 0; sent < count;) {
      const due = Math.min(count, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
      for (; sent < due; sent++) {
        const d = new Uint8Array(size);
        new DataView(d.buffer).setFloat64(0, wallNow());
        send(d);
      }
      await new Promise((r) => setTimeout(r, PACE_MS));
    }
  } else {
    const cpu0 = selfCpuMs();
    for (let i = 0; i < count; i += 64) {
      for (let j = i; j < Math.min(count, i + 64); j++) send(new Uint8Array(size));
      await Promise.all([...sends]);
    }
    await Promise.all([...sends]);
    console.log(JSON.stringify({ sent: count, cpuMs: selfCpuMs() - cpu0 }));
  }
  await Promise.all([...sends]);
  conn.close();
}

// ---------------------------------------------------------------------------------------------
// Child processes

/** A child process whose stdout is read line by line. */
class Child {
  readonly label: string;
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #waiters: { pred: (line: string) => boolean; resolve: (l: string) => void }[] = [];
  /** Called for every stdout line with the time it was read. */
  onLine: ((line: string, now: number) => void) | undefined;
  #tmp: string | undefined;
  #reading: Promise<void>;

  constructor(label: string, args: string[], o: { stdin?: boolean; env?: Record<string, string> }) {
    this.label = label;
    const env: Record<string, string> = { ...o.env };
    if (args.includes("join")) {
      // Every peer gets its own identity and known peers, removed on close.
      this.#tmp = Deno.makeTempDirSync({ prefix: "p2p-bench-" });
      env.XDG_CONFIG_HOME = this.#tmp;
    }
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env,
      stdin: o.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: ARGS.verbose ? "inherit" : "null",
    }).spawn();
    if (o.stdin) this.#stdin = this.#child.stdin.getWriter();
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    let rest = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      const now = performance.now();
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        this.onLine?.(line, now);
        if (this.#waiters.length === 0) continue;
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.pred(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    }
  }

  /** The next stdout line for which `pred` holds. */
  waitLine(pred: (line: string) => boolean, ms: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.label}: no ${what} in ${ms} ms`)), ms);
      this.#waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  }

  /** The next stdout line that is a JSON object with `key`. */
  async waitJson(key: string, ms: number): Promise<Record<string, unknown>> {
    return JSON.parse(await this.waitLine((l) => l.includes(`"${key}"`), ms, key));
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.#stdin!.write(bytes);
  }

  /**
   * Closes stdin and waits for the exit: a peer whose input ended delivers what is queued and
   * leaves by itself (profiles are written then); anything still running after 5 s, or
   * without stdin, gets SIGTERM.
   */
  async close(): Promise<void> {
    await this.#stdin?.close().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), this.#stdin ? 5000 : 0)),
    ]);
    clearTimeout(timer);
    if (!exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch {
        // Exited meanwhile.
      }
    }
    await this.#child.status;
    await this.#reading.catch(() => {});
    if (this.#tmp) await Deno.remove(this.#tmp, { recursive: true }).catch(() => {});
  }
}

/** `deno run` with the CPU profiler when `--prof` is given. */
function denoRun(label: string): string[] {
  if (!ARGS.prof) return ["run", "-A"];
  return [
    "run",
    "-A",
    "--cpu-prof",
    `--cpu-prof-dir=${ARGS.prof}`,
    `--cpu-prof-name=${label}.cpuprofile`,
  ];
}

function role(name: string, ...args: (string | number)[]): Child {
  return new Child(name, ["run", "-A", SELF, "--role", name, ...args.map(String)], {});
}

// ---------------------------------------------------------------------------------------------
// Raw runs

interface RawResult {
  /** Datagrams a second at the receiver, first to last. */
  rate: number;
  received: number;
  /** One-way latency percentiles (paced runs), ms. */
  p50: number;
  p99: number;
  /** CPU µs per datagram, sender and receiver together (unpaced runs). */
  cpuUs: number;
}

/** Raw UDP from a sender to a receiver process (through a forwarder when `relayed`). */
async function rawRun(relayed: boolean, count: number, rate = 0): Promise<RawResult> {
  const size = ARGS.size + SEALED_DATA_OVERHEAD;
  const recv = role("raw-recv", "--count", count, ...(rate > 0 ? ["--rate", rate] : []));
  const children = [recv];
  try {
    let target = Number((await recv.waitJson("port", 15_000)).port);
    if (relayed) {
      const fwd = role("raw-fwd", "--to", target);
      children.push(fwd);
      target = Number((await fwd.waitJson("port", 15_000)).port);
    }
    const report = recv.waitJson("received", (ARGS.seconds + 15) * 1000);
    const args = ["--to", target, "--count", count, "--size", size];
    const sender = role("raw-send", ...args, ...(rate > 0 ? ["--rate", rate] : []));
    children.push(sender);
    const sent = rate > 0 ? undefined : sender.waitJson("sent", (ARGS.seconds + 15) * 1000);
    const r = (await report) as unknown as
      & { first: number; last: number; cpuMs: number }
      & RawResult;
    const senderCpu = sent ? Number((await sent).cpuMs) : NaN;
    const perSecond = r.received > 1 ? (r.received - 1) / ((r.last - r.first) / 1000) : 0;
    const cpuUs = (senderCpu * 1000) / count + (r.cpuMs * 1000) / Math.max(1, r.received);
    return { rate: perSecond, received: r.received, p50: r.p50, p99: r.p99, cpuUs };
  } finally {
    await Promise.all(children.map((c) => c.close()));
  }
}

// ---------------------------------------------------------------------------------------------
// p2p runs

interface Room {
  server: Child;
  sender: Child;
  receiver: Child;
}

async function startRoom(relayed: boolean): Promise<Room> {
  const path = relayed ? "relayed" : "direct";
  const server = new Child("server", [
    ...denoRun(`server-${path}`),
    MAIN,
    "serve",
    "--host",
    LO,
    "--port",
    "0",
    "--json",
    "--relay-rate",
    "10000000",
    "--pair-rate",
    "10000000",
    "--receive-rate",
    "10000000",
    "--total-relay-rate",
    "10000000",
  ], {});
  const addr = String((await server.waitJson("listening", 15_000)).addr);
  const room = `bench-${crypto.randomUUID().slice(0, 8)}`;
  const env = { P2P_PASSPHRASE: `bench passphrase of ${room}` };
  const peer = (name: string) =>
    new Child(name, [
      ...denoRun(`${name}-${path}`),
      MAIN,
      "join",
      "--server",
      addr,
      "--room",
      room,
      "--name",
      name,
      "--json",
      "--bind",
      LO,
      ...(relayed ? ["--relay-only"] : []),
      ...(ARGS.verbose ? ["-v"] : []),
    ], { stdin: true, env });
  const receiver = peer("receiver");
  const sender = peer("sender");
  const want = `"path":"${relayed ? "relay" : "direct"}"`;
  const up = (c: Child) =>
    c.waitLine((l) => l.includes('"event":"peer"') && l.includes(want), 20_000, want);
  await Promise.all([up(receiver), up(sender)]);
  return { server, sender, receiver };
}

async function closeRoom(r: Room): Promise<void> {
  await Promise.all([r.sender.close(), r.receiver.close()]);
  await r.server.close();
}

/** A chat line of `size` bytes: sequence number, time written (ms), padding. */
function line(i: number, t: number, size: number): string {
  const head = `${i} ${t.toFixed(3)} `;
  return head + "x".repeat(Math.max(0, size - head.length)) + "\n";
}

interface Received {
  count: number;
  first: number;
  last: number;
  latencies: number[];
  /** Messages out of order (or missing in between). */
  disorder: number;
  /** Resolves once `n` arrived or the time is up. */
  done: Promise<void>;
}

/** Watches the receiver's stdout for messages numbered 0..n-1: once each, in order. */
function expect(receiver: Child, n: number, seconds: number): Received {
  const finished = Promise.withResolvers<void>();
  const timer = setTimeout(finished.resolve, seconds * 1000);
  const r: Received = {
    count: 0,
    first: 0,
    last: 0,
    latencies: [],
    disorder: 0,
    done: finished.promise.then(() => clearTimeout(timer)),
  };
  const textKey = '"text":"';
  receiver.onLine = (l, now) => {
    if (!l.includes('"event":"message"')) return;
    const at = l.indexOf(textKey) + textKey.length;
    const sp = l.indexOf(" ", at), sp2 = l.indexOf(" ", sp + 1);
    if (Number(l.slice(at, sp)) !== r.count) r.disorder++;
    if (r.count === 0) r.first = now;
    r.last = now;
    r.count++;
    r.latencies.push(now - Number(l.slice(sp + 1, sp2)));
    if (r.count >= n) finished.resolve();
  };
  return r;
}

interface FloodResult {
  rate: number;
  received: number;
  disorder: number;
  /** CPU µs per message of the sender and receiver processes together. */
  cpuUs: number;
}

/** Pipes `count` lines into the sender as fast as its stdin takes them. */
async function flood(room: Room): Promise<FloodResult> {
  const n = ARGS.count;
  const got = expect(room.receiver, n, ARGS.seconds);
  const cpu = () => processCpuMs(room.sender.pid) + processCpuMs(room.receiver.pid);
  const cpu0 = cpu();
  let cpu1 = cpu0;
  void got.done.then(() => cpu1 = cpu());
  const writing = (async () => {
    for (let i = 0; i < n; i += 1000) {
      let s = "";
      const t = performance.now();
      for (let j = i; j < Math.min(n, i + 1000); j++) s += line(j, t, ARGS.size);
      await room.sender.write(encoder.encode(s));
    }
  })();
  await got.done;
  await writing;
  const rate = got.count > 1 ? (got.count - 1) / ((got.last - got.first) / 1000) : 0;
  const cpuUs = ((cpu1 - cpu0) * 1000) / Math.max(1, got.count);
  return { rate, received: got.count, disorder: got.disorder, cpuUs };
}

interface Latency {
  offered: number;
  sent: number;
  received: number;
  p50: number;
  p99: number;
  disorder: number;
}

/** Writes lines at `rate` a second for `seconds` (at most `--count`); their latencies. */
async function paced(room: Room, rate: number, seconds: number): Promise<Latency> {
  const n = Math.min(ARGS.count, Math.ceil(rate * seconds));
  // Numbered from 0 again: the receiver's channel goes on, the check restarts.
  const got = expect(room.receiver, n, seconds + 10);
  const start = performance.now();
  let sent = 0;
  while (sent < n) {
    const due = Math.min(n, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    if (due > sent) {
      let s = "";
      for (; sent < due; sent++) s += line(sent, performance.now(), ARGS.size);
      await room.sender.write(encoder.encode(s));
    }
    await new Promise((r) => setTimeout(r, PACE_MS));
  }
  await got.done;
  const lat = got.latencies.sort((a, b) => a - b);
  return {
    offered: rate,
    sent,
    received: got.count,
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    disorder: got.disorder,
  };
}

// ---------------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Run {
  raw: number;
  p2p: number;
  /** CPU µs per message (p2p) and per datagram (raw), sender and receiver together. */
  p2pCpu: number;
  rawCpu: number;
  latency: Latency;
  rawLatency: RawResult;
}

async function measureOnce(relayed: boolean): Promise<Run> {
  const label = relayed ? "relayed" : "direct";
  const raw = await rawRun(relayed, ARGS.count);
  if (raw.received < ARGS.count) {
    console.error(`  raw ${label}: ${raw.received}/${ARGS.count} datagrams arrived`);
  }
  const room = await startRoom(relayed);
  let f: FloodResult, latency: Latency;
  try {
    f = await flood(room);
    if (f.received < ARGS.count || f.disorder > 0) {
      throw new Error(
        `p2p ${label}: ${f.received}/${ARGS.count} messages in ${ARGS.seconds} s, ${f.disorder} out of order`,
      );
    }
    // Latency under load: at half the rate p2p carried (a load it keeps up with).
    const offered = ARGS.latencyRate || 0.5 * f.rate;
    latency = await paced(room, offered, Math.min(5, ARGS.seconds));
    if (latency.received < latency.sent || latency.disorder > 0) {
      throw new Error(
        `p2p ${label} paced: ${latency.received}/${latency.sent} messages, ${latency.disorder} out of order`,
      );
    }
  } finally {
    await closeRoom(room);
  }
  const rawLatency = await rawRun(relayed, latency.sent, latency.offered);
  const run = {
    raw: raw.rate,
    p2p: f.rate,
    p2pCpu: f.cpuUs,
    rawCpu: raw.cpuUs,
    latency,
    rawLatency,
  };
  if (ARGS.verbose) console.error(`  ${label}: ${JSON.stringify(run)}`);
  return run;
}

interface Figures {
  raw: number;
  p2p: number;
  p2pCpu: number;
  rawCpu: number;
  /** The run with the median p2p/raw ratio (its latencies are reported). */
  median: Run;
  /** Every run. */
  runs: Run[];
}

async function measure(relayed: boolean): Promise<Figures> {
  const runs: Run[] = [];
  for (let i = 0; i < ARGS.runs; i++) runs.push(await measureOnce(relayed));
  const byRatio = runs.slice().sort((a, b) => a.p2p / a.raw - b.p2p / b.raw);
  return {
    raw: median(runs.map((r) => r.raw)),
    p2p: median(runs.map((r) => r.p2p)),
    p2pCpu: median(runs.map((r) => r.p2pCpu)),
    rawCpu: median(runs.map((r) => r.rawCpu)),
    median: byRatio[byRatio.length >> 1]!,
    runs,
  };
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

async function main(): Promise<void> {
  const paths: ("direct" | "relayed")[] = ARGS.only ? [ARGS.only] : ["direct", "relayed"];
  console.log(
    `peer throughput: ${ARGS.count} messages of ${ARGS.size} B, median of ${ARGS.runs} run(s), Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs`,
  );
  const json: object[] = [];
  for (const p of paths) {
    const f = await measure(p === "relayed");
    const ratio = f.p2p / f.raw;
    const l = f.median.latency, rl = f.median.rawLatency;
    console.log(
      `${p.padEnd(8)} msgs/s: p2p ${f.p2p.toFixed(0).padStart(6)}, raw ${
        f.raw.toFixed(0).padStart(6)
      }: ratio ${ratio.toFixed(3)} (goal ${GOAL}); latency at ${l.offered.toFixed(0)} msgs/s: p50 ${
        l.p50.toFixed(2)
      } ms, p99 ${l.p99.toFixed(2)} ms (raw ${rl.p50.toFixed(2)} / ${rl.p99.toFixed(2)} ms)`,
    );
    console.log(
      `${"".padEnd(8)} CPU µs per message (sender + receiver): p2p ${f.p2pCpu.toFixed(1)}, raw ${
        f.rawCpu.toFixed(1)
      }: ratio ${(f.rawCpu / f.p2pCpu).toFixed(3)}`,
    );
    // Every run's figures ride along (`runs`: [p2p, raw] each) for the document.
    json.push({
      name: `peer_${p}_rate`,
      value: Math.round(f.p2p),
      baseline: Math.round(f.raw),
      ratio: round(ratio, 4),
      goal: GOAL,
      runs: f.runs.map((r) => [Math.round(r.p2p), Math.round(r.raw)]),
    });
    json.push({
      name: `peer_${p}_cpu`,
      value: round(f.p2pCpu, 2),
      baseline: round(f.rawCpu, 2),
      ratio: round(f.rawCpu / f.p2pCpu, 4),
      goal: null,
      runs: f.runs.map((r) => [round(r.p2pCpu, 1), round(r.rawCpu, 1)]),
    });
    for (const [q, v, b] of [["p50", l.p50, rl.p50], ["p99", l.p99, rl.p99]] as const) {
      json.push({
        name: `peer_${p}_latency_${q}`,
        value: round(v),
        baseline: round(b),
        ratio: round(b / v, 4),
        goal: null,
        offered_msgs_s: Math.round(l.offered),
      });
    }
  }
  for (const j of json) console.log(JSON.stringify(j));
}

switch (ARGS.role) {
  case undefined:
    await main();
    break;
  case "raw-recv":
    await rawReceiver(ARGS.count, ARGS.rate > 0);
    break;
  case "raw-fwd":
    await rawForwarder(ARGS.to);
    break;
  case "raw-send":
    await rawSender(ARGS.to, ARGS.count, ARGS.size, ARGS.rate);
    break;
  default:
    throw new Error(`Unknown role ${ARGS.role}`);
}
