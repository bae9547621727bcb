/**
 * Server capacity load generator: memory, keepalive CPU and registration CPU of `p2p serve` with
 * many registered peers, each against a baseline measured in the same run. Loopback only, Linux
 * only (CPU time from `/proc/<pid>/task/* /schedstat`, memory from `/proc/<pid>/status`).
 *
 * - **Registration**: this process registers `--peers` peers (rooms of `--room` peers) with the
 *   real protocol (HELLO without a cookie, COOKIE, HELLO with the cookie signed by the room key,
 *   WELCOME), from `--sources` sockets on as many loopback addresses (127.1.x.y), each socket
 *   registering its peers one after the other. The server's per-source limits and `--max-peers`
 *   are raised so they never bind, and `--expire` so no peer expires during the run. Figure: the
 *   server's CPU time over the phase divided by the peers registered. Baseline: a pure
 *   {@link Registry} in this process doing the same two HELLOs per peer for `--baseline-peers`
 *   peers in rooms of the same size (signatures made beforehand, outside the timing), including
 *   the encoding of every reply and the draining of its events.
 * - **Memory**: the server's RSS after registration minus its RSS idle (after start-up, before any
 *   peer), divided by the peers.
 * - **Keepalive**: PINGs at `--ping-rate` a second (default 4000, what 100k peers pinging every
 *   25 s send), each from the next peer in turn (round robin over all peers, from the address it
 *   registered from, with the digest of its room so no resync is triggered), no time compression.
 *   Figure: the server's CPU per PING, and the PONGs lost. Baseline: a plain Deno UDP echo server
 *   (`--echo`, the socket loop of `lib/io/udp.ts`) receiving the same PING datagrams at the same rate
 *   and sending each back. The two take turns in `--slices` slices each of `--seconds`.
 *
 * `deno run -A bench/capacity.ts [--peers 100000] [--room 10] [--sources 250] [--ping-rate 4000]
 * [--seconds 10] [--slices 2] [--baseline-peers 20000] [--profile DIR] [--root DIR]` prints
 * one JSON object on stdout. `--profile` runs the server under `--cpu-prof` into DIR.
 *
 * @module
 */
import { MsgType } from "../lib/wire/header.ts";
import { parseArgs } from "node:util";
import { Registry } from "../lib/server/registry.ts";
import { systemRandom } from "../lib/io/random.ts";
import {
  COOKIE_LEN,
  decodeServerMsg,
  encodeServerMsg,
  ID_KEY_LEN,
  idDigest,
  NONCE_LEN,
  OWNER_TAG_LEN,
  SIGNATURE_LEN,
} from "../lib/wire/server_msg.ts";
import { signedHello as testHello, testPeerId, testRoom } from "../tests/support/hello.ts";
import {
  bindUdp,
  LO,
  processCpuMs,
  receiveEach,
  sleep,
  startListening,
  stopChild,
} from "./support.ts";

/** What one capacity run measured. */
export interface CapacityResult {
  /** Peers registered. */
  peers: number;
  /** Peers per room. */
  room: number;
  /** Server RSS before any peer, in KiB. */
  rssIdleKiB: number;
  /** Server RSS with every peer registered, in KiB. */
  rssKiB: number;
  /** (rss - idle) / peers, in bytes. */
  rssPerPeerB: number;
  /**
   * Where RSS per peer goes, from the server's `--metrics` at the same two moments: the V8 heap
   * in use and reserved, and memory outside it (`external`: buffers), each (loaded - idle) /
   * peers in bytes; the rest of RSS is the allocator's (native objects, freed memory kept).
   */
  memoryPerPeerB: { heapUsed: number; heapTotal: number; external: number };
  /**
   * RSS per peer once the server has settled (V8's memory reducer has given back the heap the
   * registration burst grew: at least 25 s, then RSS stopped falling for 10 s; at most 45 s).
   */
  rssSettledPerPeerB: number;
  /** When it settled, in s after the first reading. */
  settledSeconds: number;
  /** {@link memoryPerPeerB} at the same moment. */
  memorySettledPerPeerB: { heapUsed: number; heapTotal: number; external: number };
  /** Server CPU per registration, in µs. */
  registerUs: number;
  /** Pure Registry CPU per registration (same two HELLOs), in µs. */
  registerPureUs: number;
  /** Wall time of the registration phase, in s. */
  registerSeconds: number;
  /** PINGs a second. */
  pingRate: number;
  /** Server CPU per PING, in µs. */
  keepaliveUs: number;
  /** Echo server CPU per datagram at the same rate, in µs. */
  echoUs: number;
  /** Server CPU share of one core under keepalive load. */
  keepaliveCore: number;
  /** Echo CPU share of one core. */
  echoCore: number;
  /** PINGs sent to / PONGs received from the server. */
  pings: number;
  pongs: number;
  /** 1 - pongs / pings. */
  pongLoss: number;
  /** The echo baseline's loss. */
  echoLoss: number;
}

const ROOT = new URL("../", import.meta.url);

/** The echo baseline: the receive loop of `lib/io/udp.ts`, every datagram sent back. */
async function echoServer(): Promise<void> {
  const conn = bindUdp();
  const a = conn.addr as Deno.NetAddr;
  console.log(JSON.stringify({ event: "listening", addr: `${a.hostname}:${a.port}` }));
  const buf = new Uint8Array(65_536);
  const ok = () => {}, fail = () => {};
  for (;;) {
    const [data, addr] = await conn.receive(buf);
    const from = addr as Deno.NetAddr;
    const to = { hostname: from.hostname, port: from.port };
    conn.send(data.slice(), { transport: "udp", hostname: to.hostname, port: to.port }).then(
      ok,
      fail,
    );
  }
}

interface Proc {
  child: Deno.ChildProcess;
  addr: Deno.NetAddr;
}

function start(args: string[], cwd: string | URL): Promise<Proc> {
  return startListening(args, cwd, "Server");
}

async function stop(p: Proc): Promise<void> {
  await stopChild(p.child);
}

/** The server's memory gauges (`p2p_heap_used_bytes` etc.) from its `/metrics`. */
async function memoryGauges(
  port: number,
): Promise<{ heapUsed: number; heapTotal: number; external: number }> {
  const text = await (await fetch(`http://${LO}:${port}/metrics`)).text();
  const gauge = (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    heapUsed: gauge("p2p_heap_used_bytes"),
    heapTotal: gauge("p2p_heap_total_bytes"),
    external: gauge("p2p_external_memory_bytes"),
  };
}

/**
 * The server's RSS and memory gauges once settled: read every 2 s for at least 25 s (V8's
 * memory reducer gives back the heap grown for a burst some 8 to 15 s after allocation stops),
 * then until RSS has not fallen for 10 s, at most 45 s in all.
 */
async function settledRss(
  pid: number,
  metricsPort: number,
): Promise<
  { rssKiB: number; seconds: number; heapUsed: number; heapTotal: number; external: number }
> {
  const t0 = performance.now();
  let low = rssKiB(pid), lowAt = t0;
  for (;;) {
    const at = performance.now();
    if (at - t0 >= 45_000 || (at - t0 >= 25_000 && at - lowAt >= 10_000)) break;
    await sleep(2_000);
    const r = rssKiB(pid);
    if (r < low * 0.99) [low, lowAt] = [r, performance.now()];
  }
  const g = await memoryGauges(metricsPort);
  return { rssKiB: rssKiB(pid), seconds: (performance.now() - t0) / 1000, ...g };
}

/** A free TCP port on loopback (for the server's `--metrics`). */
function freePort(): number {
  const l = Deno.listen({ hostname: LO, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A process's resident set size, in KiB (`/proc/PID/status`). */
export function rssKiB(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s*(\d+)/.exec(s)?.[1] ?? 0);
}

/** One simulated peer. */
export interface Peer {
  id: Uint8Array;
  room: number;
  source: number;
  token?: Uint8Array;
  ping?: Uint8Array;
}

/** The id of simulated peer `i` (`salt` keeps runs apart). */
export function peerId(i: number, salt: number): Uint8Array {
  return testPeerId(`${salt}/${i}`);
}

/** The loopback address of source `s` (127.1.x.y). */
export function sourceHost(s: number): string {
  return `127.1.${(s >> 8) & 255}.${(s & 255) + 1}`;
}

/** A HELLO without a cookie: the server answers with a COOKIE before it checks anything else. */
function bareHello(p: Peer): Uint8Array {
  return encodeServerMsg({
    type: MsgType.Hello,
    id: p.id,
    cookie: new Uint8Array(COOKIE_LEN),
    nonce: new Uint8Array(NONCE_LEN),
    flags: 0,
    nameTag: p.id,
    owner: new Uint8Array(OWNER_TAG_LEN),
    room: testRoom(`cap-${p.room}`).publicKey,
    idKey: new Uint8Array(ID_KEY_LEN),
    signature: new Uint8Array(SIGNATURE_LEN),
    idSignature: new Uint8Array(SIGNATURE_LEN),
    pow: new Uint8Array(8),
    privateEndpoints: [],
  });
}

function signedHello(p: Peer, cookie: Uint8Array): Uint8Array {
  return encodeServerMsg(testHello(`cap-${p.room}`, {
    id: p.id,
    cookie,
    nonce: p.id,
    nameTag: p.id,
    owner: new Uint8Array(OWNER_TAG_LEN),
  }));
}

/** A socket of the generator: one source address, a queue of replies a worker waits on. */
export class Source {
  readonly conn: Deno.DatagramConn;
  pongs = 0;
  other = 0;
  #waiter: ((m: Uint8Array) => boolean) | undefined;
  #wake: (() => void) | undefined;
  done: Promise<void>;
  constructor(host: string) {
    const conn = bindUdp(host);
    this.conn = conn;
    this.done = receiveEach(conn, (d) => {
      if (d[3] === MsgType.Pong || d[3] === MsgType.Ping) this.pongs++;
      else if (this.#waiter?.(d)) {
        this.#waiter = undefined;
        this.#wake?.();
      } else this.other++;
    });
  }

  /** Sends `dgram` until `accept` takes a reply (retries every 250 ms, at most 40 times). */
  async ask(to: Deno.NetAddr, dgram: Uint8Array, accept: (m: Uint8Array) => boolean) {
    for (let attempt = 0; attempt < 40; attempt++) {
      let woke = false;
      const got = new Promise<void>((r) => this.#wake = () => r(void (woke = true)));
      this.#waiter = accept;
      await this.conn.send(dgram, to);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([got, new Promise<void>((r) => timer = setTimeout(r, 250))]);
      clearTimeout(timer);
      if (woke) return;
    }
    throw new Error("No answer from the server");
  }
}

/**
 * Registers `peers` with `server` (COOKIE round trip, then the signed HELLO), each from its
 * source; a source's peers one after the other, the sources at once.
 */
export async function register(
  server: Deno.NetAddr,
  sources: Source[],
  peers: Peer[],
): Promise<void> {
  const bySource = sources.map(() => [] as Peer[]);
  for (const p of peers) bySource[p.source]!.push(p);
  await Promise.all(sources.map(async (s, i) => {
    for (const p of bySource[i]!) {
      let cookie: Uint8Array = new Uint8Array(0);
      await s.ask(server, bareHello(p), (d) => {
        const m = decodeServerMsg(d);
        // The answer echoes the HELLO's nonce (zeros), unlike a cluster's shared cookie that
        // follows the previous peer's WELCOME (it echoes that peer's token).
        if (!m.ok || m.value.type !== MsgType.Cookie || m.value.echo.some((b) => b !== 0)) {
          return false;
        }
        cookie = m.value.cookie;
        return true;
      });
      await s.ask(server, signedHello(p, cookie), (d) => {
        const m = decodeServerMsg(d);
        if (!m.ok) return false;
        if (m.value.type === MsgType.Refused) throw new Error(m.value.message);
        if (m.value.type !== MsgType.Welcome || m.value.nonce[7] !== p.id[7]) return false;
        if (m.value.id.some((b, k) => b !== p.id[k])) return false;
        p.token = m.value.token;
        return true;
      });
    }
  }));
}

/** PING datagrams with the room digest each peer would have. */
function makePings(peers: Peer[]): void {
  const roomDigest = new Map<number, number>();
  for (const p of peers) roomDigest.set(p.room, (roomDigest.get(p.room) ?? 0) ^ idDigest(p.id));
  for (const p of peers) {
    const digest = ((roomDigest.get(p.room) ?? 0) ^ idDigest(p.id)) >>> 0;
    p.ping = encodeServerMsg({
      type: MsgType.Ping,
      id: p.id,
      token: p.token!,
      cookie: new Uint8Array(COOKIE_LEN),
      digest,
    });
  }
}

/** Sends PINGs round robin from `next` at `rate` a second for `ms`; returns [sent, next]. */
async function pingFor(
  to: Deno.NetAddr,
  sources: Source[],
  peers: Peer[],
  next: number,
  rate: number,
  ms: number,
): Promise<[number, number]> {
  let sent = 0;
  const t0 = performance.now();
  for (;;) {
    const elapsed = performance.now() - t0;
    if (elapsed >= ms) return [sent, next];
    const due = Math.ceil(elapsed * rate / 1000);
    const batch: Promise<number>[] = [];
    while (sent < due) {
      const p = peers[next]!;
      next = (next + 1) % peers.length;
      batch.push(sources[p.source]!.conn.send(p.ping!, to));
      sent++;
    }
    await Promise.all(batch);
    await sleep(2);
  }
}

/** The pure Registry doing the same registrations: µs per peer (CPU of this process). */
function pureRegistration(n: number, room: number, sources: number): number {
  const reg = new Registry({
    maxPeers: 2 * n + 2,
    maxPerSource: n + 1,
    maxRoomsPerSource: n + 1,
    maxPerNetwork: n + 1,
    maxRoomsPerNetwork: n + 1,
    expireAfter: 3_600_000,
  }, systemRandom);
  const now = 1_000;
  const peers: Peer[] = [];
  for (let i = 0; i < n; i++) {
    peers.push({ id: peerId(i, 0x0b5e), room: Math.floor(i / room), source: i % sources });
  }
  const from = peers.map((p) => ({ hostname: sourceHost(p.source), port: 40_000 }));
  const first = peers.map(bareHello);
  const second = peers.map((p, i) => signedHello(p, reg.cookieFor(p.id, from[i]!, now)));
  const drain = () => {
    while (reg.pollTransmit());
    while (reg.pollEvent());
  };
  const c0 = processCpuMs(Deno.pid);
  for (let i = 0; i < n; i++) {
    reg.handleDatagram(now, from[i]!, first[i]!);
    drain();
    reg.handleDatagram(now, from[i]!, second[i]!);
    drain();
  }
  const ms = processCpuMs(Deno.pid) - c0;
  if (reg.peerCount !== n) throw new Error(`pure registry registered ${reg.peerCount} of ${n}`);
  return ms * 1000 / n;
}

/** Runs the whole measurement. */
export async function runCapacity(o: {
  peers: number;
  room: number;
  sources: number;
  pingRate: number;
  seconds: number;
  slices: number;
  baselinePeers: number;
  profileDir?: string;
  root?: string | URL;
}): Promise<CapacityResult> {
  const n = o.peers;
  const metricsPort = freePort();
  const serverArgs = [
    "run",
    "--allow-net",
    "--allow-sys",
    "--allow-env",
    ...(o.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.profileDir}`] : []),
    "main.ts",
    "serve",
    "--host",
    LO,
    "--port",
    "0",
    "--json",
    "--expire",
    "3600",
    "--summary",
    "0",
    "--max-peers",
    // Twice the peers: below half the cap, so no registration puzzle (lib/server/pressure.ts).
    String(2 * n + 1000),
    "--max-per-source",
    String(n + 1000),
    "--max-rooms-per-source",
    String(n + 1000),
    "--max-per-network",
    String(n + 1000),
    "--max-rooms-per-network",
    String(n + 1000),
    "--hello-rate",
    String(n + 1000),
    "--metrics",
    `${LO}:${metricsPort}`,
  ];
  const server = await start(serverArgs, o.root ?? ROOT);
  const echo = await start(
    ["run", "--allow-net", new URL(import.meta.url).pathname, "--echo"],
    ROOT,
  );
  const sources: Source[] = [];
  try {
    await sleep(1_000);
    const pid = server.child.pid;
    // Scraped first, so the metrics endpoint's own start-up is in the idle figure.
    const memIdle = await memoryGauges(metricsPort);
    const rssIdleKiB = rssKiB(pid);
    for (let s = 0; s < o.sources; s++) sources.push(new Source(sourceHost(s)));
    const peers: Peer[] = [];
    for (let i = 0; i < n; i++) {
      peers.push({ id: peerId(i, 0xca9a), room: Math.floor(i / o.room), source: i % o.sources });
    }
    for (let r = 0; r * o.room < n; r++) testRoom(`cap-${r}`);
    console.error(`[capacity] registering ${n} peers from ${o.sources} addresses`);
    const c0 = processCpuMs(pid), t0 = performance.now();
    await register(server.addr, sources, peers);
    const registerSeconds = (performance.now() - t0) / 1000;
    await sleep(300);
    const registerUs = (processCpuMs(pid) - c0) * 1000 / n;
    await sleep(2_000);
    const rss = rssKiB(pid);
    const mem = await memoryGauges(metricsPort);
    // V8 keeps the heap it grew during the burst until its memory reducer runs, some seconds
    // after allocation stops: RSS is read again once it stops falling (see settledRss).
    const settled = await settledRss(pid, metricsPort);
    makePings(peers);
    for (const s of sources) s.pongs = 0;
    console.error(`[capacity] keepalive: ${o.pingRate} PING/s, ${o.slices} slices each`);
    let next = 0, pings = 0, echoes = 0, pCpu = 0, eCpu = 0, pongs = 0, back = 0;
    const slice = o.seconds * 1000 / o.slices;
    const pongCount = () => sources.reduce((a, s) => a + s.pongs, 0);
    for (let k = 0; k < o.slices; k++) {
      for (const [target, isEcho] of [[server, false], [echo, true]] as const) {
        const before = pongCount(), c = processCpuMs(target.child.pid);
        const [sent, nx] = await pingFor(target.addr, sources, peers, next, o.pingRate, slice);
        next = nx;
        await sleep(300);
        const cpu = processCpuMs(target.child.pid) - c;
        const got = pongCount() - before;
        if (isEcho) [echoes, eCpu, back] = [echoes + sent, eCpu + cpu, back + got];
        else [pings, pCpu, pongs] = [pings + sent, pCpu + cpu, pongs + got];
      }
    }
    const wall = (slice + 300) * o.slices;
    console.error(`[capacity] pure Registry: ${o.baselinePeers} registrations in process`);
    const registerPureUs = pureRegistration(o.baselinePeers, o.room, o.sources);
    return {
      peers: n,
      room: o.room,
      rssIdleKiB,
      rssKiB: rss,
      rssPerPeerB: (rss - rssIdleKiB) * 1024 / n,
      memoryPerPeerB: {
        heapUsed: (mem.heapUsed - memIdle.heapUsed) / n,
        heapTotal: (mem.heapTotal - memIdle.heapTotal) / n,
        external: (mem.external - memIdle.external) / n,
      },
      rssSettledPerPeerB: (settled.rssKiB - rssIdleKiB) * 1024 / n,
      settledSeconds: settled.seconds,
      memorySettledPerPeerB: {
        heapUsed: (settled.heapUsed - memIdle.heapUsed) / n,
        heapTotal: (settled.heapTotal - memIdle.heapTotal) / n,
        external: (settled.external - memIdle.external) / n,
      },
      registerUs,
      registerPureUs,
      registerSeconds,
      pingRate: o.pingRate,
      keepaliveUs: pCpu * 1000 / pings,
      echoUs: eCpu * 1000 / echoes,
      keepaliveCore: pCpu / wall,
      echoCore: eCpu / wall,
      pings,
      pongs,
      pongLoss: 1 - pongs / pings,
      echoLoss: 1 - back / echoes,
    };
  } finally {
    for (const s of sources) s.conn.close();
    await Promise.all(sources.map((s) => s.done));
    await stop(server);
    await stop(echo);
  }
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      echo: { type: "boolean", default: false },
      peers: { type: "string", default: "100000" },
      room: { type: "string", default: "10" },
      sources: { type: "string", default: "250" },
      "ping-rate": { type: "string", default: "4000" },
      seconds: { type: "string", default: "10" },
      slices: { type: "string", default: "2" },
      "baseline-peers": { type: "string", default: "20000" },
      profile: { type: "string" },
      root: { type: "string" },
    },
  });
  if (v.echo) await echoServer();
  else {
    const r = await runCapacity({
      peers: Number(v.peers),
      room: Number(v.room),
      sources: Number(v.sources),
      pingRate: Number(v["ping-rate"]),
      seconds: Number(v.seconds),
      slices: Number(v.slices),
      baselinePeers: Number(v["baseline-peers"]),
      ...(v.profile ? { profileDir: v.profile } : {}),
      ...(v.root ? { root: v.root } : {}),
    });
    console.log(JSON.stringify(r));
  }
}
