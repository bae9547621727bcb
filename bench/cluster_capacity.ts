/**
 * Cluster capacity: three `p2p serve --cluster` processes on one `nats-server` with `--per-server`
 * registered peers each (rooms of `--room`, every room spread over the three servers, or with
 * `--affinity` every room at one server), against
 * one plain `p2p serve` holding the same total, measured in the same run on 127.0.0.1. Peers are
 * simulated as in `bench/capacity.ts` (the real registration: COOKIE round trip, signed HELLO,
 * WELCOME, from `--sources` loopback addresses per server). Reported (one JSON object on stdout,
 * a summary on stderr):
 *
 * - **The engine**: `nats-server`'s RSS growth per peer of the cluster, its CPU per registration
 *   (every registration is one MEMBERS message to the two other servers), and its CPU while the
 *   servers only heartbeat (keepalives never reach it).
 * - **Each server**: its RSS (and V8 heap in use) growth per peer it holds itself (which includes
 *   the records of the other servers' 2 × N members it keeps: in full in rooms with a member of
 *   its own, compact in the others; `--affinity` puts every room at one server), its CPU per
 *   registration of its own (publishing and taking the others' records included), against three
 *   plain servers (no cluster) registering the same numbers beside them at the same time (the
 *   same load on the machine: an A/A run, both groups plain, gave 1.01–1.02): the issue's
 *   "cluster on vs off, per server" (goal ≥ 0.8× with `--affinity`).
 * - **One server** with all 3 × N peers: RSS (and heap) growth per peer, CPU per registration, and the
 *   wall time of the registrations against the cluster's (the three servers register at once).
 *
 * RSS is sampled 2 s after the last registration (the V8 heap is not collected on demand, so the
 * figures carry a few hundred KiB of noise: prefer large N). Linux only (`/proc`). Stdout: four
 * figures as JSON lines for `deno task bench` (a server's RSS per member it holds against one
 * server's per peer, the cluster's CPU per registration against the plain servers' beside it and
 * against the single server's, the engine's RSS per peer; named `..._spread` without
 * `--affinity`) and a summary line;
 * stderr: the whole result as JSON.
 *
 * ```sh
 * deno run -A bench/cluster_capacity.ts [--per-server 5000] [--room 10] [--sources 100] [--affinity]
 * deno run -A bench/cluster_capacity.ts --receivers [--per-server 5000]   # runClusterReceivers
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { freeTcpPort, NatsServer } from "../tests/support/nats.ts";
import { testRoom } from "../tests/support/hello.ts";
import { type Peer, peerId, register, rssKiB, Source, sourceHost } from "./capacity.ts";
import { LO, processCpuMs, sleep, startListening, stopChild } from "./support.ts";

const ROOT = new URL("../", import.meta.url);

/** What one run measured. */
export interface ClusterCapacityResult {
  /** Peers per server in the cluster (the single server holds three times as many). */
  perServer: number;
  /** Peers per room. */
  room: number;
  /** The engine: RSS idle and with every peer (KiB), growth per cluster peer (bytes). */
  engineRssIdleKiB: number;
  engineRssKiB: number;
  engineRssPerPeerB: number;
  /** The engine's CPU per registration in the cluster, µs. */
  engineRegisterUs: number;
  /** The engine's CPU share of one core while the servers only heartbeat, with every peer. */
  engineIdleCore: number;
  /** Each server: RSS growth per peer it holds itself (bytes), in server order. */
  serverRssPerPeerB: number[];
  /** Each server: RSS growth per member it holds (its own and the other servers'), bytes. */
  serverRssPerHeldB: number[];
  /**
   * Each server: V8 heap growth (in use, as its metrics say: garbage not yet collected
   * included) per peer it holds itself, bytes.
   */
  serverHeapPerPeerB: number[];
  /** Each server: RSS with every peer, KiB. */
  serverRssKiB: number[];
  /** The three servers' CPU per registration, µs (all three servers' CPU over all peers). */
  clusterRegisterUs: number;
  /** Wall time of the cluster's registrations (three servers at once), s. */
  clusterRegisterSeconds: number;
  /** One server with all peers: RSS growth per peer (bytes), RSS (KiB). */
  singleRssPerPeerB: number;
  /** One server: V8 heap growth per peer (as {@link serverHeapPerPeerB}), bytes. */
  singleHeapPerPeerB: number;
  singleRssKiB: number;
  /** One server: CPU per registration, µs. */
  singleRegisterUs: number;
  /** Wall time of the single server's registrations, s. */
  singleRegisterSeconds: number;
  /**
   * Three plain servers (no cluster) registering the same peers as the cluster's three, at the
   * same time as they do: CPU per registration, µs. The baseline of "per server, cluster on vs
   * off" under the same load on the machine (the single server runs alone, later).
   */
  aloneRegisterUs: number;
  /** Cluster (3 servers + engine) RSS growth per peer over the single server's. */
  memoryRatio: number;
}

/** `p2p serve` with limits that never bind for `total` peers (and `extra` arguments). */
function serverArgs(total: number, extra: string[]): string[] {
  const big = String(total + 1000);
  return [
    "run",
    "--allow-net",
    "--allow-sys",
    "--allow-env",
    "--allow-read",
    "main.ts",
    "serve",
    "--host",
    LO,
    "--port",
    "0",
    "--json",
    "-q",
    "--no-alt-port",
    "--expire",
    "3600",
    "--summary",
    "0",
    // Twice the peers: below half the cap, so no registration puzzle.
    "--max-peers",
    String(2 * total + 1000),
    "--max-per-source",
    big,
    "--max-rooms-per-source",
    big,
    "--max-per-network",
    big,
    "--max-rooms-per-network",
    big,
    "--hello-rate",
    big,
    ...extra,
  ];
}

/** One sample of metric `name` from the metrics page at `port`. */
async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://${LO}:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

/** Polls `name` at `port` every 200 ms until `ok` (at most `ms`). */
async function waitMetric(port: number, name: string, ok: (v: number) => boolean, ms: number) {
  const until = performance.now() + ms;
  for (;;) {
    const v = await metric(port, name);
    if (ok(v)) return v;
    if (performance.now() > until) throw new Error(`${name} stuck at ${v}`);
    await sleep(200);
  }
}

/**
 * `n` peers in rooms of `room`; peer `i` belongs to server `i % servers`, or with `affinity` to
 * server `r % servers` for its room `r` (every room on one server).
 */
function makePeers(
  n: number,
  room: number,
  servers: number,
  sources: number,
  salt: number,
  affinity = false,
) {
  const by: Peer[][] = Array.from({ length: servers }, () => []);
  for (let i = 0; i < n; i++) {
    const k = (affinity ? Math.floor(i / room) : i) % servers, local = by[k]!.length;
    by[k]!.push({ id: peerId(i, salt), room: Math.floor(i / room), source: local % sources });
  }
  for (let r = 0; r * room < n; r++) testRoom(`cap-${r}`);
  return by;
}

/** `count` sources (at most 255) of block `k`: the loopback addresses 127.1.k.1 on. */
function sourcesOf(k: number, count: number): Source[] {
  if (count > 255) throw new RangeError("--sources: at most 255");
  return Array.from({ length: count }, (_, s) => new Source(sourceHost(k * 256 + s)));
}

async function closeSources(sources: Source[]): Promise<void> {
  for (const s of sources) s.conn.close();
  await Promise.all(sources.map((s) => s.done));
}

const cpuOf = (pids: number[]) => pids.reduce((a, p) => a + processCpuMs(p), 0);

/**
 * Three plain `p2p serve` (no cluster), each registering its third of the peers as the cluster's
 * servers do. Started with {@link startAlone}; {@link AloneServers.register} runs at the same
 * time as the cluster's registrations, so both see the same load on the machine (measured one
 * after the other, the ratio moved by ±15 % with whatever else ran).
 */
class AloneServers {
  servers: { child: Deno.ChildProcess; addr: Deno.NetAddr }[] = [];
  sources: Source[][] = [];

  /** Registers the peers; their CPU per registration, µs. */
  async register(o: ClusterRun): Promise<number> {
    const total = 3 * o.perServer, pids = this.servers.map((s) => s.child.pid);
    const by = makePeers(total, o.room, 3, o.sources, 0xa10e, o.affinity);
    // Their sources are 127.1.3.1 on (the cluster's are 127.1.0.1 to 127.1.2.255).
    for (let k = 0; k < 3; k++) this.sources.push(sourcesOf(3 + k, o.sources));
    const s0 = cpuOf(pids);
    await Promise.all(this.servers.map((s, k) => register(s.addr, this.sources[k]!, by[k]!)));
    await sleep(300);
    return (cpuOf(pids) - s0) * 1000 / total;
  }

  /** Stops the servers and closes the sources (once). */
  async stop(): Promise<void> {
    const sources = this.sources.splice(0), servers = this.servers.splice(0);
    for (const s of sources) await closeSources(s);
    await Promise.all(servers.map((s) => stopChild(s.child)));
  }
}

async function startAlone(total: number): Promise<AloneServers> {
  const a = new AloneServers();
  for (let k = 0; k < 3; k++) {
    a.servers.push(await startListening(serverArgs(total, []), ROOT, "p2p serve"));
  }
  return a;
}

/** What {@link runClusterCapacity} is asked to run. */
interface ClusterRun {
  perServer: number;
  room: number;
  sources: number;
  /** Every room at one server (a room's affinity), instead of spread over the three. */
  affinity?: boolean;
}

/** Runs the cluster and three plain servers side by side, then the single server. */
export async function runClusterCapacity(o: ClusterRun): Promise<ClusterCapacityResult> {
  const n = o.perServer, total = 3 * n;
  Deno.env.set("P2P_CLUSTER_SECRET", "the cluster capacity bench's secret");
  const nats = await new NatsServer().start();
  const natsPid = nats.pid!;
  const ports = [freeTcpPort(), freeTcpPort(), freeTcpPort()];
  const servers: { child: Deno.ChildProcess; addr: Deno.NetAddr }[] = [];
  const sources: Source[][] = [];
  let cluster: Omit<ClusterCapacityResult, `single${string}` | "memoryRatio">;
  const alone = await startAlone(total);
  try {
    for (const port of ports) {
      servers.push(
        await startListening(
          serverArgs(total, ["--cluster", nats.url, "--metrics", `${LO}:${port}`]),
          ROOT,
          "p2p serve --cluster",
        ),
      );
    }
    for (const port of ports) await waitMetric(port, "p2p_cluster_servers", (v) => v === 2, 15_000);
    await sleep(1_000);
    const pids = servers.map((s) => s.child.pid);
    const idle = pids.map(rssKiB), engineIdle = rssKiB(natsPid);
    const heapIdle = await Promise.all(ports.map((p) => metric(p, "p2p_heap_used_bytes")));
    const by = makePeers(total, o.room, 3, o.sources, 0xc1a5, o.affinity);
    for (let k = 0; k < 3; k++) sources.push(sourcesOf(k, o.sources));
    console.error(`[cluster capacity] registering 3 × ${n} peers at three servers`);
    const e0 = processCpuMs(natsPid), s0 = cpuOf(pids), t0 = performance.now();
    const aloneDone = alone.register(o);
    await Promise.all(servers.map((s, k) => register(s.addr, sources[k]!, by[k]!)));
    // Every server holds the other two servers' members.
    for (const port of ports) {
      await waitMetric(port, "p2p_cluster_remote_peers", (v) => v === 2 * n, 30_000);
    }
    const clusterRegisterSeconds = (performance.now() - t0) / 1000;
    await sleep(300);
    const engineRegisterUs = (processCpuMs(natsPid) - e0) * 1000 / total;
    const clusterRegisterUs = (cpuOf(pids) - s0) * 1000 / total;
    const aloneRegisterUs = await aloneDone;
    await alone.stop();
    await sleep(2_000);
    const rss = pids.map(rssKiB), engineRss = rssKiB(natsPid);
    const heap = await Promise.all(ports.map((p) => metric(p, "p2p_heap_used_bytes")));
    // Heartbeats only: the engine's steady cost with every peer registered.
    const e1 = processCpuMs(natsPid), t1 = performance.now();
    await sleep(5_000);
    const engineIdleCore = (processCpuMs(natsPid) - e1) / (performance.now() - t1);
    cluster = {
      perServer: n,
      room: o.room,
      engineRssIdleKiB: engineIdle,
      engineRssKiB: engineRss,
      engineRssPerPeerB: (engineRss - engineIdle) * 1024 / total,
      engineRegisterUs,
      engineIdleCore,
      serverRssPerPeerB: rss.map((r, k) => (r - idle[k]!) * 1024 / n),
      serverRssPerHeldB: rss.map((r, k) => (r - idle[k]!) * 1024 / total),
      serverHeapPerPeerB: heap.map((h, k) => (h - heapIdle[k]!) / n),
      serverRssKiB: rss,
      clusterRegisterUs,
      clusterRegisterSeconds,
      aloneRegisterUs,
    };
  } finally {
    for (const s of sources) await closeSources(s);
    await Promise.all(servers.map((s) => stopChild(s.child)));
    await alone.stop();
    await nats.stop();
  }

  console.error(`[cluster capacity] registering ${total} peers at one server`);
  const singlePort = freeTcpPort();
  const single = await startListening(
    serverArgs(total, ["--metrics", `${LO}:${singlePort}`]),
    ROOT,
    "p2p serve",
  );
  const singleSources = [0, 1, 2].flatMap((k) => sourcesOf(k, o.sources));
  try {
    await sleep(1_000);
    const pid = single.child.pid;
    const idle = rssKiB(pid), heapIdle = await metric(singlePort, "p2p_heap_used_bytes");
    const [peers] = makePeers(total, o.room, 1, 3 * o.sources, 0x5196);
    const c0 = processCpuMs(pid), t0 = performance.now();
    await register(single.addr, singleSources, peers!);
    const singleRegisterSeconds = (performance.now() - t0) / 1000;
    await sleep(300);
    const singleRegisterUs = (processCpuMs(pid) - c0) * 1000 / total;
    await sleep(2_000);
    const rss = rssKiB(pid);
    const singleHeapPerPeerB = (await metric(singlePort, "p2p_heap_used_bytes") - heapIdle) /
      total;
    const singleRssPerPeerB = (rss - idle) * 1024 / total;
    const clusterGrowth = cluster.serverRssPerPeerB.reduce((a, b) => a + b, 0) * n +
      cluster.engineRssPerPeerB * total;
    return {
      ...cluster,
      singleRssPerPeerB,
      singleHeapPerPeerB,
      singleRssKiB: rss,
      singleRegisterUs,
      singleRegisterSeconds,
      memoryRatio: clusterGrowth / (singleRssPerPeerB * total),
    };
  } finally {
    await closeSources(singleSources);
    await stopChild(single.child);
  }
}

/**
 * What the other servers' members cost a server that has none of their rooms: `n` peers (rooms
 * of `room`) register at the first of three servers only; the other two take their records
 * (kept compact). Their CPU per record taken (µs) and RSS growth per record (bytes), and the
 * first server's CPU per registration (µs).
 */
export async function runClusterReceivers(o: { n: number; room: number; sources: number }) {
  Deno.env.set("P2P_CLUSTER_SECRET", "the cluster capacity bench's secret");
  const nats = await new NatsServer().start();
  const ports = [freeTcpPort(), freeTcpPort(), freeTcpPort()];
  const servers: { child: Deno.ChildProcess; addr: Deno.NetAddr }[] = [];
  const sources = sourcesOf(0, o.sources);
  try {
    for (const port of ports) {
      servers.push(
        await startListening(
          serverArgs(o.n, ["--cluster", nats.url, "--metrics", `${LO}:${port}`]),
          ROOT,
          "p2p serve --cluster",
        ),
      );
    }
    for (const port of ports) await waitMetric(port, "p2p_cluster_servers", (v) => v === 2, 15_000);
    await sleep(1_000);
    const pids = servers.map((s) => s.child.pid);
    const idle = pids.map(rssKiB), c0 = pids.map(processCpuMs);
    const [peers] = makePeers(o.n, o.room, 1, o.sources, 0x7ec5);
    console.error(`[cluster receivers] registering ${o.n} peers at one of three servers`);
    await register(servers[0]!.addr, sources, peers!);
    for (const port of ports.slice(1)) {
      await waitMetric(port, "p2p_cluster_remote_peers", (v) => v === o.n, 30_000);
    }
    await sleep(300);
    const cpu = pids.map((p, k) => (processCpuMs(p) - c0[k]!) * 1000 / o.n);
    await sleep(2_000);
    const rss = pids.map((p, k) => (rssKiB(p) - idle[k]!) * 1024 / o.n);
    return {
      n: o.n,
      senderRegisterUs: cpu[0]!,
      receiverUsPerRecord: cpu.slice(1),
      receiverRssPerRecordB: rss.slice(1),
    };
  } finally {
    await closeSources(sources);
    await Promise.all(servers.map((s) => stopChild(s.child)));
    await nats.stop();
  }
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    args: Deno.args,
    options: {
      "per-server": { type: "string", default: "5000" },
      room: { type: "string", default: "10" },
      sources: { type: "string", default: "100" },
      affinity: { type: "boolean", default: false },
      receivers: { type: "boolean", default: false },
    },
  });
  if (v.receivers) {
    const o = { n: Number(v["per-server"]), room: Number(v.room), sources: Number(v.sources) };
    console.log(JSON.stringify(await runClusterReceivers(o)));
    Deno.exit(0);
  }
  const r = await runClusterCapacity({
    perServer: Number(v["per-server"]),
    room: Number(v.room),
    sources: Number(v.sources),
    affinity: v.affinity,
  });
  // Figures for `deno task bench` (costs: the ratio is the baseline over the value; no goals).
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  // With every room at one server (`--affinity`, a room's affinity: the design) the figures are
  // the gated ones; with rooms spread over the servers (the worst case) they are named
  // `..._spread` and carry no goal.
  const figure = (name: string, value: number, baseline: number, goal: number | null = null) =>
    console.log(JSON.stringify({
      name: v.affinity ? name : `${name}_spread`,
      value,
      baseline,
      ratio: baseline / value,
      goal: v.affinity ? goal : null,
    }));
  figure("cluster_server_rss_per_member", mean(r.serverRssPerHeldB), r.singleRssPerPeerB);
  // The goal: registrations per CPU-second per server, cluster on vs off, ≥ 0.8×.
  figure("cluster_register_cpu_us", r.clusterRegisterUs, r.aloneRegisterUs, 0.8);
  figure("cluster_register_cpu_vs_one_us", r.clusterRegisterUs, r.singleRegisterUs);
  figure("cluster_engine_rss_per_peer", r.engineRssPerPeerB, r.singleRssPerPeerB);
  console.error(`result: ${JSON.stringify(r)}`);
  const b = (x: number) => `${Math.round(x)} B`;
  console.log(
    `cluster of 3 × ${r.perServer} peers (${
      v.affinity ? "every room at one server" : "rooms spread over the servers"
    }): nats-server ${b(r.engineRssPerPeerB)} RSS and ` +
      `${r.engineRegisterUs.toFixed(1)} µs CPU per peer registered ` +
      `(${(r.engineIdleCore * 100).toFixed(2)} % of a core while heartbeating); servers ` +
      `${r.serverRssPerPeerB.map(b).join(", ")} RSS per own peer (` +
      `${r.serverRssPerHeldB.map(b).join(", ")} per member held, its own and the others'), ` +
      `heap ${r.serverHeapPerPeerB.map(b).join(", ")} per own peer, ` +
      `${r.clusterRegisterUs.toFixed(0)} µs CPU per registration (all three), ` +
      `${r.clusterRegisterSeconds.toFixed(1)} s to register; three plain servers at once ` +
      `${r.aloneRegisterUs.toFixed(0)} µs per registration. One server with ${3 * r.perServer}: ` +
      `${b(r.singleRssPerPeerB)} RSS (heap ${b(r.singleHeapPerPeerB)}) per peer, ${
        r.singleRegisterUs.toFixed(0)
      } µs per ` +
      `registration, ${r.singleRegisterSeconds.toFixed(1)} s. Cluster memory growth ` +
      `${r.memoryRatio.toFixed(2)} × one server's.`,
  );
  // The test support's emergency cleanup keeps signal listeners: leave explicitly.
  Deno.exit(0);
}
