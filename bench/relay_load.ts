/**
 * Relay load generator: server CPU per relayed packet, measured from outside the server.
 *
 * The relay under test runs as its own process on 127.0.0.1:
 *
 * - `p2p`: `p2p serve` (main.ts), relay budgets raised out of the way (still checked);
 * - `raw`: `bench/raw_forwarder.ts`, a Deno UDP forwarder with the same socket loop as
 *   `lib/io/udp.ts` (the baseline: what any Deno relay pays);
 * - `coturn`: `turnserver` (when installed), unauthenticated, one allocation whose channel is
 *   bound to the receiving socket: a ChannelData in, a plain datagram out, so it does the same
 *   socket work per packet as the others (one receive, one send).
 *
 * This process plays two peers, A and B, per relay, over the real protocol: for `p2p` both
 * register (HELLO, COOKIE, HELLO with the cookie, WELCOME) and A sends RELAY datagrams to B; for
 * `raw` A sends the same RELAY bytes; for `coturn` A sends ChannelData. B counts what arrives.
 * Each case sends at a fixed rate (or as fast as this process can, `rate` 0) for a warm-up and
 * then for the measured period; the server's CPU time (user + system, every thread, from
 * `/proc/<pid>/task/* /schedstat`) over the measured period and the drain after it, divided by
 * the datagrams B received, is the cost per relayed packet. With several relays, all are started
 * and take turns within each case, a fraction of a second each (`--slices` turns per case), so
 * they are compared under the same conditions on a machine whose load varies. Linux only.
 *
 * `deno run -A bench/relay_load.ts --relay p2p,raw,coturn [--payload 100,1172] [--rate 0,10000]
 * [--seconds 2] [--warmup 0.5] [--slices 4] [--rotate N] [--pin] [--threads] [--profile DIR]
 * [--root DIR]`
 * prints one JSON object per case and relay. `--rotate` picks which relay goes first; `--pin`
 * puts the relays and the generator on different CPUs; `--threads` adds each relay's CPU time
 * per thread; `--profile` runs the p2p server or the raw forwarder with `--cpu-prof` into DIR;
 * `--root` runs the p2p server of another checkout (before/after comparisons).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { MAX_DATAGRAM, MsgType } from "../lib/wire/header.ts";
import { decodeServerMsg, encodeServerMsg } from "../lib/wire/server_msg.ts";
import { allocateChannel, channelData, FIRST_CHANNEL } from "./turn_client.ts";
import { signedHello, testPeerId } from "../tests/support/hello.ts";
import {
  addrOf,
  bindUdp,
  LO,
  processCpuMs,
  receiveEach,
  sleep,
  startListening,
  stopChild,
  threadCpuMs,
} from "./support.ts";

/** A relay implementation under test. */
export type RelayKind = "p2p" | "raw" | "coturn";

/** One load: a payload size and a rate in packets a second (0: as fast as possible). */
export interface LoadCase {
  /** Relayed payload bytes (the peer frame inside RELAY, or the ChannelData body). */
  payload: number;
  /** Datagrams a second A sends; 0 sends unpaced. */
  rate: number;
}

/** What one case measured. */
export interface LoadResult extends LoadCase {
  /** Which relay. */
  relay: RelayKind;
  /** Datagrams A sent in the measured period. */
  sent: number;
  /** Of those, datagrams B received. */
  received: number;
  /** `1 - received / sent`. */
  loss: number;
  /** Length of the measured period, in s. */
  seconds: number;
  /** Datagrams B received a second. */
  pps: number;
  /** Server CPU time over the period and its drain, in ms. */
  cpuMs: number;
  /** Server CPU per relayed packet, in µs. */
  cpuPerPacketUs: number;
  /** Relayed packets per second of server CPU (1e6 / cpuPerPacketUs). */
  packetsPerCpuSecond: number;
  /** With {@link LoadOptions.threads}: the server's CPU per thread (`name/tid`), in ms. */
  threads?: Record<string, number>;
}

/** Options of {@link runRelayLoad}. */
export interface LoadOptions {
  /** Measured period of each case, in ms. */
  measureMs: number;
  /** Warm-up before each case, in ms. */
  warmupMs: number;
  /** p2p and raw: write a V8 CPU profile of the server into this directory. */
  profileDir?: string;
  /** Report the server's CPU time per thread too. */
  threads?: boolean;
  /** Which relay goes first in the first case (they take turns); 0 by default. */
  rotate?: number;
  /** Slices the measured period is cut into, the relays taking turns slice by slice (1). */
  slices?: number;
  /** p2p only: the checkout whose `main.ts serve` runs (default: this one), e.g. an older one. */
  p2pRoot?: string | URL;
  /**
   * With two CPUs or more and `taskset` installed: pin the relay to the last CPU and this process
   * to the first, so they neither share nor swap cores.
   */
  pin?: boolean;
}

const ROOT = new URL("../", import.meta.url);
/** Relay budgets high enough never to bind (KiB/s, the largest `p2p serve` accepts). */
const UNLIMITED_KIB = "10000000";
/** RELAY header: magic, version, type, from id, token, to id. */
const RELAY_OVERHEAD = 4 + 8 + 8 + 8;
/** The largest payload a RELAY may carry. */
export const LARGEST_PAYLOAD: number = MAX_DATAGRAM - RELAY_OVERHEAD;

/** A started relay process. */
interface Server {
  child: Deno.ChildProcess;
  addr: Deno.NetAddr;
  stop(): Promise<void>;
}

/** The CPU to pin the relay to, when pinning is possible. */
function pinCpu(): number | undefined {
  const cpus = navigator.hardwareConcurrency;
  if (cpus < 2) return undefined;
  try {
    const ok = new Deno.Command("taskset", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
    return ok ? cpus - 1 : undefined;
  } catch {
    return undefined;
  }
}

/** Pins every thread of process `pid` to `cpu`. */
function pin(pid: number, cpu: number): void {
  new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", String(cpu), String(pid)],
    stdout: "null",
    stderr: "null",
  }).outputSync();
}

async function startDeno(args: string[], cwd: string | URL = ROOT): Promise<Server> {
  const { child, addr } = await startListening(args, cwd, "Relay process");
  return { child, addr, stop: () => stopChild(child) };
}

function freePort(): number {
  const s = bindUdp();
  const port = addrOf(s).port;
  s.close();
  return port;
}

function startCoturn(): Server {
  const port = freePort();
  const child = new Deno.Command("turnserver", {
    args: [
      "-n",
      "--no-cli",
      "--no-tls",
      "--no-dtls",
      "--no-tcp",
      "--no-tcp-relay",
      "-z",
      "--allow-loopback-peers",
      "-L",
      LO,
      "-E",
      LO,
      "-p",
      String(port),
      "--min-port",
      "49200",
      "--max-port",
      "49999",
      "--no-stdout-log",
      "--simple-log",
      "--log-file",
      "/dev/null",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    child,
    addr: { transport: "udp", hostname: LO, port },
    stop: () => stopChild(child),
  };
}

/** Registers a peer with a p2p server the way a client does; returns its token. */
async function register(
  conn: Deno.DatagramConn,
  server: Deno.NetAddr,
  id: Uint8Array,
  room: string,
): Promise<Uint8Array> {
  const buf = new Uint8Array(2048);
  let cookie: Uint8Array = new Uint8Array(8);
  let pending: Promise<[Uint8Array, Deno.Addr]> | undefined;
  for (let attempt = 0; attempt < 50; attempt++) {
    const hello = encodeServerMsg(signedHello(room, { id, cookie, nameTag: id }));
    await conn.send(hello, server);
    pending ??= conn.receive(buf);
    const got = await Promise.race([pending, sleep(200).then(() => undefined)]);
    if (!got) continue;
    pending = undefined;
    const m = decodeServerMsg(got[0]);
    if (!m.ok) continue;
    if (m.value.type === MsgType.Cookie) cookie = m.value.cookie;
    else if (m.value.type === MsgType.Welcome) return m.value.token;
    else if (m.value.type === MsgType.Refused) throw new Error(m.value.message);
  }
  throw new Error("p2p server did not register the load generator");
}

/** Counts datagrams arriving at `conn` that `accept` takes, until `conn` closes. */
class Counter {
  count = 0;
  accept: (d: Uint8Array, from: Deno.NetAddr) => boolean = () => false;
  readonly done: Promise<void>;
  constructor(conn: Deno.DatagramConn) {
    this.done = receiveEach(conn, (d, from) => {
      if (this.accept(d, from)) this.count++;
    });
  }
}

/** Sends `dgram` to `to` at `rate` a second (0: unpaced) for `ms`; returns how many were sent. */
async function blast(
  conn: Deno.DatagramConn,
  to: Deno.NetAddr,
  dgram: Uint8Array,
  rate: number,
  ms: number,
): Promise<number> {
  let sent = 0;
  const t0 = performance.now();
  for (;;) {
    const elapsed = performance.now() - t0;
    if (elapsed >= ms) return sent;
    const due = rate > 0 ? Math.ceil(elapsed * rate / 1000) : sent + 64;
    // Up to 32 sends in flight at once: far cheaper than awaiting each.
    while (sent < due) {
      const n = Math.min(32, due - sent);
      const batch: Promise<number>[] = [];
      for (let i = 0; i < n; i++) batch.push(conn.send(dgram, to));
      // ENOBUFS and the like: counted as sent, and lost.
      await Promise.allSettled(batch);
      sent += n;
    }
    // Let the receiving side run (and, paced, wait for the next millisecond).
    await sleep(rate > 0 ? 1 : 0);
  }
}

/** Waits until `c.count` has not moved for `quiet` ms (at most 3 s). */
async function settle(c: Counter, quiet = 150): Promise<void> {
  const end = performance.now() + 3_000;
  let last = -1;
  while (c.count !== last && performance.now() < end) {
    last = c.count;
    await sleep(quiet);
  }
}

/** One relay under test, with its two peers connected through it. */
interface Rig {
  relay: RelayKind;
  server: Server;
  a: Deno.DatagramConn;
  b: Deno.DatagramConn;
  counter: Counter;
  frame: (payload: Uint8Array) => Uint8Array;
  expect: (payload: number) => (d: Uint8Array, from: Deno.NetAddr) => boolean;
}

/** Starts `relay` and connects two peers through it. */
async function rig(relay: RelayKind, o: LoadOptions): Promise<Rig> {
  const a = bindUdp(), b = bindUdp();
  const bAddr = addrOf(b);
  const prof = o.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.profileDir}`] : [];
  let server: Server;
  if (relay === "p2p") {
    server = await startDeno([
      "run",
      "--allow-net",
      "--allow-sys",
      "--allow-env",
      ...prof,
      "main.ts",
      "serve",
      "--host",
      LO,
      "--port",
      "0",
      "--json",
      "-q",
      "--relay-rate",
      UNLIMITED_KIB,
      "--pair-rate",
      UNLIMITED_KIB,
      // The per-receiver and server-wide caps are policy too (issue 17 #10): lifted here.
      "--receive-rate",
      UNLIMITED_KIB,
      "--total-relay-rate",
      UNLIMITED_KIB,
    ], o.p2pRoot);
  } else if (relay === "raw") {
    server = await startDeno([
      "run",
      "--allow-net",
      ...prof,
      "bench/raw_forwarder.ts",
      String(addrOf(a).port),
      String(bAddr.port),
    ]);
  } else {
    server = startCoturn();
  }
  try {
    const idA = testPeerId("load a"), idB = testPeerId("load b");
    const room = `load ${crypto.randomUUID()}`;
    let frame: Rig["frame"], expect: Rig["expect"];
    if (relay === "coturn") {
      const relayed = await allocateChannel(a, server.addr, bAddr);
      frame = (p) => channelData(FIRST_CHANNEL, p);
      expect = (n) => (d, from) => d.length === n && from.port === relayed.port;
    } else {
      let tokenA: Uint8Array = new Uint8Array(8);
      if (relay === "p2p") {
        tokenA = await register(a, server.addr, idA, room);
        await register(b, server.addr, idB, room);
      }
      frame = (payload) =>
        encodeServerMsg({ type: MsgType.Relay, from: idA, token: tokenA, to: idB, payload });
      expect = relay === "p2p"
        ? (n) => (d) => d.length === n + 20 && d[3] === MsgType.Relayed
        : (n) => (d) => d.length === n + RELAY_OVERHEAD;
    }
    return { relay, server, a, b, counter: new Counter(b), frame, expect };
  } catch (e) {
    await server.stop();
    a.close();
    b.close();
    throw e;
  }
}

/** Per-relay totals of one case. */
interface Tally {
  sent: number;
  ms: number;
  cpuMs: number;
  threads: Map<string, number>;
}

/**
 * Runs one case through every relay: a warm-up each, then the measured period cut into
 * `o.slices` slices, the relays taking turns slice by slice (`first` goes first), so each one's
 * figure is spread over the same stretch of time as the others'.
 */
async function measureCase(
  rigs: Rig[],
  k: LoadCase,
  o: LoadOptions,
  first: number,
): Promise<LoadResult[]> {
  const payload = crypto.getRandomValues(new Uint8Array(k.payload));
  const dgrams = rigs.map((r) => r.frame(payload));
  const order = rigs.map((_, j) => (first + j) % rigs.length);
  for (const j of order) {
    const r = rigs[j]!;
    r.counter.accept = r.expect(k.payload);
    await blast(r.a, r.server.addr, dgrams[j]!, k.rate, o.warmupMs);
    await settle(r.counter);
    r.counter.count = 0;
  }
  const tallies: Tally[] = rigs.map(() => ({ sent: 0, ms: 0, cpuMs: 0, threads: new Map() }));
  const slices = Math.max(1, o.slices ?? 1);
  for (let s = 0; s < slices; s++) {
    for (const j of order) {
      const r = rigs[j]!, t = tallies[j]!, pid = r.server.child.pid;
      const cpu0 = processCpuMs(pid), threads0 = threadCpuMs(pid);
      const t0 = performance.now();
      t.sent += await blast(r.a, r.server.addr, dgrams[j]!, k.rate, o.measureMs / slices);
      t.ms += performance.now() - t0;
      // What is still queued is the relay's work of this slice: let it drain before the next.
      await settle(r.counter, s + 1 < slices ? 30 : 150);
      t.cpuMs += processCpuMs(pid) - cpu0;
      for (const [name, ms] of threadCpuMs(pid)) {
        t.threads.set(name, (t.threads.get(name) ?? 0) + ms - (threads0.get(name) ?? ms));
      }
    }
  }
  return rigs.map((r, j) => {
    const t = tallies[j]!, received = r.counter.count;
    r.counter.accept = () => false;
    const perPacket = received > 0 ? t.cpuMs * 1000 / received : Infinity;
    const threads: Record<string, number> = {};
    for (const [name, ms] of t.threads) if (ms >= 1) threads[name] = Math.round(ms);
    return {
      relay: r.relay,
      ...k,
      sent: t.sent,
      received,
      loss: t.sent > 0 ? Math.max(0, 1 - received / t.sent) : 0,
      seconds: t.ms / 1000,
      pps: received / (t.ms / 1000),
      cpuMs: t.cpuMs,
      cpuPerPacketUs: perPacket,
      packetsPerCpuSecond: 1e6 / perPacket,
      ...(o.threads ? { threads } : {}),
    };
  });
}

/**
 * Starts every relay of `relays`, connects two peers through each, then runs each case through
 * all of them, taking turns slice by slice (see `measureCase`; another relay starts each case),
 * so that they are compared under the same conditions. Results come case by case, in the order
 * of `relays` within a case.
 */
export async function runRelayLoad(
  relays: RelayKind[],
  cases: LoadCase[],
  o: LoadOptions,
): Promise<LoadResult[]> {
  const rigs: Rig[] = [];
  const results: LoadResult[] = [];
  try {
    for (const relay of relays) rigs.push(await rig(relay, o));
    const cpu = o.pin ? pinCpu() : undefined;
    if (cpu !== undefined) {
      for (const r of rigs) pin(r.server.child.pid, cpu);
      pin(Deno.pid, 0);
    }
    for (const [i, k] of cases.entries()) {
      results.push(...await measureCase(rigs, k, o, (i + (o.rotate ?? 0)) % rigs.length));
    }
  } finally {
    for (const r of rigs) {
      await r.server.stop();
      r.a.close();
      r.b.close();
      await r.counter.done;
    }
  }
  return results;
}

function list(s: string | undefined, dflt: number[]): number[] {
  return s === undefined ? dflt : s.split(",").map(Number);
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      relay: { type: "string", default: "p2p" },
      payload: { type: "string" },
      rate: { type: "string" },
      seconds: { type: "string", default: "2" },
      warmup: { type: "string", default: "0.5" },
      profile: { type: "string" },
      threads: { type: "boolean" },
      pin: { type: "boolean" },
      root: { type: "string" },
      rotate: { type: "string", default: "0" },
      slices: { type: "string", default: "4" },
    },
  });
  const relays = String(v.relay).split(",") as RelayKind[];
  for (const r of relays) {
    if (!["p2p", "raw", "coturn"].includes(r)) throw new Error(`Unknown relay ${r}`);
  }
  const cases: LoadCase[] = [];
  for (const payload of list(v.payload, [100, LARGEST_PAYLOAD])) {
    for (const rate of list(v.rate, [0, 10_000, 20_000])) cases.push({ payload, rate });
  }
  const watchdog = setTimeout(() => {
    console.error("relay_load: timed out");
    Deno.exit(1);
  }, 120_000);
  const results = await runRelayLoad(relays, cases, {
    measureMs: Number(v.seconds) * 1000,
    warmupMs: Number(v.warmup) * 1000,
    ...(v.profile ? { profileDir: v.profile } : {}),
    threads: Boolean(v.threads),
    pin: Boolean(v.pin),
    rotate: Number(v.rotate),
    slices: Number(v.slices),
    ...(v.root ? { p2pRoot: v.root } : {}),
  });
  clearTimeout(watchdog);
  for (const r of results) console.log(JSON.stringify(r));
}
