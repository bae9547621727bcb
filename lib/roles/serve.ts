/**
 * `p2p serve`: the rendezvous and relay server. Wires the pure {@link Registry} to a UDP
 * driver, logs one line per significant event (at most `logPerSecond` per kind of event, the
 * rest counted and reported) and a periodic summary. Names, rooms and reasons go into log lines
 * only as properties, escaped when rendered (see `lib/io/log.ts`).
 *
 * @module
 */
import { RefuseCode } from "../wire/server_msg.ts";
import { getLogger } from "@logtape/logtape";
import { Registry, type RegistryEvent, type RegistryOptions } from "../server/registry.ts";
import { RateLimitedLog } from "../io/log.ts";
import { systemRandom } from "../io/random.ts";
import { EventCounts } from "../server/metrics.ts";
import { type SansIo, UdpDriver } from "../io/udp.ts";
import { looksLikeStun, StunResponder, type StunStats } from "../nat/stun.ts";
import { type Endpoint, formatEndpoint } from "../wire/address.ts";
import type { Transmit } from "../wire/transmit.ts";
import { StreamServer, withStreams } from "../io/tcp.ts";
import { DEFAULT_STREAM_LIMITS } from "../core/stream_policy.ts";
import { serverCertificateProblem } from "./tls_advice.ts";
import { type ServeCluster, type ServeClusterOptions, startCluster } from "./serve_cluster.ts";
import { announceListening, type Served, startMetrics, startSummary } from "./serve_report.ts";

export { plural } from "./serve_report.ts";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Address to bind (a literal IP). */
  host: string;
  /** UDP port to bind. */
  port: number;
  /**
   * Also serve IPv6 on this address, same port (`--host6`; `::` by default when `host` is
   * 0.0.0.0). Not `required`: a host without IPv6 serves IPv4 alone, with a warning.
   */
  ipv6?: { host: string; required: boolean };
  /** Print `{"event":"listening",...}` on stdout once bound. */
  json: boolean;
  /** Forget peers silent for this long, in ms. */
  expireAfter: number;
  /** Serve Prometheus metrics at http://host:port/metrics (off when absent). */
  metrics?: { host: string; port: number };
  /** Capacity and abuse limits (defaults in `DEFAULT_REGISTRY`). */
  limits?: Partial<RegistryOptions>;
  /** Interval of the summary log line, in ms (0 disables it). */
  summaryInterval: number;
  /** Stops the server when aborted; SIGINT and SIGTERM also stop it. */
  signal?: AbortSignal;
  /** At most this many log lines per second for each kind of registry event (default 10). */
  logPerSecond?: number;
  /**
   * A second UDP port (`--alt-port`, PORT+1 by default; 0: any free port): the server also
   * binds `host:altPort` and, with {@link altHost}, `altHost:port` and `altHost:altPort`. It
   * answers STUN there (RFC 5780 CHANGE-REQUEST "change port"; peers asking both ports learn
   * whether their NAT maps per port) and, without {@link altHost}, sends its reachability
   * probes from it.
   */
  altPort?: number;
  /**
   * The second port is the default, not asked for: when it cannot be bound the server runs
   * without it (a warning), instead of failing.
   */
  altPortOptional?: boolean;
  /** A second local address for STUN behaviour discovery ("change IP"); needs {@link altPort}. */
  altHost?: string;
  /** Accept peers over TCP on `host`, on `port` (default: the UDP port's number); off when absent. */
  tcp?: { port?: number };
  /** Accept peers over TLS on `host:port` with this certificate chain and key (PEM files). */
  tls?: { port: number; cert: string; key: string };
  /**
   * Bounds on TCP and TLS connections: open at once in all, and from one source address
   * (defaults in `DEFAULT_STREAM_LIMITS` of `lib/core/stream_policy.ts`).
   */
  streamLimits?: { maxConnections?: number; maxPerSource?: number };
  /** Share rooms with other servers through an engine (`lib/roles/serve_cluster.ts`). */
  cluster?: ServeClusterOptions;
}

const log = getLogger(["p2p", "serve"]);

/** The socket role reachability probes leave from: `--alt-host` with the main port. */
const REACH_ROLE = 2;
/** Without `--alt-host`: the second port of the same address. */
const REACH_ROLE_ONE_ADDRESS = 1;

/**
 * One log line for a registry event: a constant `template` whose `{placeholders}` name entries
 * of `props`, the `level`, and the `kind` it is rate-limited under. Names, rooms and reasons
 * are only ever properties (rendered escaped by the log formatter), never part of the
 * template, so a name like `{x}` cannot be read as a placeholder.
 */
export interface EventLine {
  /** `debug` for routine re-introductions, `info` otherwise. */
  level: "debug" | "info";
  /** The rate-limit bucket: the event type (`introduced-again` for re-introductions). */
  kind: string;
  /** The message template. */
  template: string;
  /** The values of the template's placeholders. */
  props: Record<string, unknown>;
}

/** The log line for a registry event (see {@link EventLine}). */
export function describeEvent(e: RegistryEvent): EventLine {
  switch (e.type) {
    case "registered": {
      const relayOnly = e.relayOnly ? " (relay only)" : "";
      return line(e.type, `Peer "{name}" registered in room "{room}" from {addr}${relayOnly}`, {
        name: e.name,
        room: e.room,
        addr: formatEndpoint(e.addr),
      });
    }
    case "moved":
      return line(e.type, 'Peer "{name}" in room "{room}" moved to {addr}', {
        name: e.name,
        room: e.room,
        addr: formatEndpoint(e.addr),
      });
    case "introduced":
      return introducedLine(e);
    case "relaying":
      // Every pair's handshake starts relayed, even pairs that go direct a round trip later:
      // one line per pair is debug detail, the summary counts what was relayed.
      return line(e.type, 'Relaying from "{from}" to "{to}" in room "{room}"', {
        from: e.from,
        to: e.to,
        room: e.room,
      }, "debug");
    case "left":
      return line(e.type, 'Peer "{name}" left room "{room}" ({reason})', {
        name: e.name,
        room: e.room,
        reason: e.reason,
      });
    case "refused":
      // Unknown answers a PING the registry does not know (after a restart or an expiry): the
      // normal way back, not news.
      return line(e.type, "Refused {addr}: {why}", {
        addr: formatEndpoint(e.addr),
        why: e.why,
      }, e.code === RefuseCode.Unknown ? "debug" : "info");
    case "limited":
      return line(e.type, 'Peer "{name}" in room "{room}" hit the {what} limit', {
        name: e.name,
        room: e.room,
        what: e.what,
      });
    case "supernode":
      return line(e.type, 'Peer "{name}" in room "{room}" is reachable at {addr}: a supernode', {
        name: e.name,
        room: e.room,
        addr: formatEndpoint(e.addr),
      });
  }
}

/** An introduction's line; re-introductions for background punch retries are routine: debug. */
function introducedLine(e: Extract<RegistryEvent, { type: "introduced" }>): EventLine {
  const props = { a: e.a, b: e.b, room: e.room };
  return e.repunch
    ? line("introduced-again", 'Introduced "{a}" and "{b}" in room "{room}" again', props, "debug")
    : line(e.type, 'Introduced "{a}" and "{b}" in room "{room}"', props);
}

/** An {@link EventLine}. */
function line(
  kind: string,
  template: string,
  props: Record<string, unknown>,
  level: EventLine["level"] = "info",
): EventLine {
  return { level, kind, template, props };
}

/** Logs a registry event through the rate limiter; returns whether the line was written. */
export function logEvent(out: RateLimitedLog, e: RegistryEvent): boolean {
  const l = describeEvent(e);
  return out.log(l.level, l.kind, l.template, l.props);
}

/**
 * STUN on the server's sockets: one {@link StunResponder} for all of them and, per socket, the
 * answers waiting to leave from it. An answer to a CHANGE-REQUEST leaves from another socket
 * than the request came in on; that socket's driver is stepped so it sends at once. Requests
 * over IPv6 (on the primary socket's IPv6 side) get a responder of their own that knows only
 * that socket: the alternate sockets are IPv4, so it offers no behaviour discovery.
 */
export class StunHub {
  #responder: StunResponder | undefined;
  #responder6: StunResponder | undefined;
  #queues: Transmit[][] = [[], [], [], []];
  #drivers: (UdpDriver | undefined)[] = [];

  /** Registers the bound socket of role `role` (see `StunSockets` in `lib/nat/stun.ts`). */
  attach(role: number, driver: UdpDriver): void {
    this.#drivers[role] = driver;
  }

  /** Makes the responder once every socket is attached; datagrams before that are ignored. */
  ready(): StunResponder {
    const addrs = [0, 1, 2, 3].map((r) => this.#drivers[r]?.localAddr ?? null);
    const v6 = this.#drivers[0]?.localAddr6;
    if (v6) this.#responder6 = new StunResponder({ sockets: [v6] });
    return this.#responder = new StunResponder({ sockets: addrs });
  }

  /** Counters of both responders together (after {@link ready}). */
  get stats(): StunStats | undefined {
    const a = this.#responder?.stats, b = this.#responder6?.stats;
    if (!a || !b) return a;
    const drops = { ...a.drops };
    for (const [k, v] of Object.entries(b.drops)) drops[k] = (drops[k] ?? 0) + v;
    return {
      answered: a.answered + b.answered,
      errors: a.errors + b.errors,
      changed: a.changed + b.changed,
      classic: a.classic + b.classic,
      drops,
    };
  }

  /** The responder (after {@link ready}). */
  get responder(): StunResponder | undefined {
    return this.#responder;
  }

  /** Handles a STUN datagram that arrived on the socket of role `role`. */
  handle(role: number, now: number, from: Endpoint, data: Uint8Array): void {
    const responder = from.hostname.includes(":") ? this.#responder6 : this.#responder;
    const r = responder?.handle(now, role, from, data);
    if (!r) return;
    this.#queues[r.via]!.push({ to: r.to, data: r.data });
    // The receiving driver flushes its own socket after this step; another one needs a step.
    if (r.via !== role) this.#drivers[r.via]?.step(() => {});
  }

  /** The next STUN answer to send from the socket of role `role`. */
  poll(role: number): Transmit | undefined {
    return this.#queues[role]!.shift();
  }

  /**
   * Sends `t` from the socket of role `role` (a registry's reachability probe from the
   * alternate address); dropped when that socket is not bound.
   */
  sendFrom(role: number, t: Transmit): void {
    const d = this.#drivers[role];
    if (!d) return;
    this.#queues[role]!.push({ to: t.to, data: t.data });
    d.step(() => {});
  }
}

/**
 * The primary socket's machine: STUN (first two bits zero) goes to the STUN responder, every
 * other datagram (p2p's start with `0x70 0x32`) to the registry.
 */
export class PrimaryMachine implements SansIo {
  #registry: Registry;
  #stun: StunHub;

  /** Demultiplexes between `registry` and `stun` (role 0). */
  constructor(registry: Registry, stun: StunHub) {
    this.#registry = registry;
    this.#stun = stun;
  }

  /** Routes one datagram by its first bytes. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    if (looksLikeStun(data)) this.#stun.handle(0, now, from, data);
    else this.#registry.handleDatagram(now, from, data);
  }

  /** The registry's timers. */
  handleTimeout(now: number): void {
    this.#registry.handleTimeout(now);
  }

  /**
   * Registry datagrams first (a reachability probe, marked `via`, leaves from the alternate
   * address's socket), then STUN answers.
   */
  pollTransmit(): Transmit | undefined {
    for (let t = this.#registry.pollTransmit(); t; t = this.#registry.pollTransmit()) {
      if (!t.via) return t;
      this.#stun.sendFrom(t.via, t);
    }
    return this.#stun.poll(0);
  }

  /** The registry's next deadline. */
  nextTimeout(): number | undefined {
    return this.#registry.nextTimeout();
  }
}

/** An alternate socket's machine: STUN only; anything else is ignored. */
class AltMachine implements SansIo {
  #role: number;
  #stun: StunHub;

  constructor(role: number, stun: StunHub) {
    this.#role = role;
    this.#stun = stun;
  }

  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    if (looksLikeStun(data)) this.#stun.handle(this.#role, now, from, data);
  }

  handleTimeout(): void {}

  pollTransmit(): Transmit | undefined {
    return this.#stun.poll(this.#role);
  }

  nextTimeout(): number | undefined {
    return undefined;
  }
}

/**
 * Where reachability probes leave from, given the sockets bound: the alternate address (the
 * full check), else the second port of our one address (only peers without a NAT are checked
 * then, see `lib/server/reach.ts`), else nowhere.
 */
export function reachOf(
  roles: ReadonlySet<number>,
): { reachVia: number | undefined; reachNoNatOnly: boolean } {
  if (roles.has(REACH_ROLE)) return { reachVia: REACH_ROLE, reachNoNatOnly: false };
  if (roles.has(REACH_ROLE_ONE_ADDRESS)) {
    return { reachVia: REACH_ROLE_ONE_ADDRESS, reachNoNatOnly: true };
  }
  return { reachVia: undefined, reachNoNatOnly: false };
}

/**
 * Binds the primary socket and the alternate ones `o.altPort` and `o.altHost` ask for (roles
 * 1: host + alt port, 2: alt host + port, 3: alt host + alt port), then makes the registry for
 * the roles bound (`makeRegistry`); on a failure closes what was bound and throws the bind
 * error. The default second port ({@link ServeOptions.altPortOptional}) is bound first and
 * skipped, with `skipped` set to the reason, when it cannot be.
 */
async function bindSockets(
  o: ServeOptions,
  makeRegistry: (roles: ReadonlySet<number>) => Registry,
  onStep: () => void,
): Promise<{
  drivers: UdpDriver[];
  stun: StunHub;
  registry: Registry;
  streams: StreamServer | undefined;
  skipped?: string;
}> {
  const stun = new StunHub();
  const drivers: UdpDriver[] = [];
  const roles = new Set<number>([0]);
  let skipped: string | undefined;
  const held: { streams?: StreamServer | undefined } = {};
  try {
    if (o.altPort !== undefined && o.altHost === undefined) {
      // One address: the second port does not depend on the primary's.
      try {
        const d = UdpDriver.bind(o.host, o.altPort, new AltMachine(1, stun));
        drivers.push(d);
        stun.attach(1, d);
        roles.add(1);
      } catch (e) {
        if (!o.altPortOptional) throw e;
        skipped = e instanceof Error ? e.message : String(e);
      }
    }
    const registry = makeRegistry(
      new Set([...roles, ...(o.altHost !== undefined ? [1, 2, 3] : [])]),
    );
    const main = await bindPrimary(o, new PrimaryMachine(registry, stun), onStep, drivers, held);
    stun.attach(0, main);
    // With --port 0 the alternate address reuses the port the primary socket got.
    const port = main.localAddr.port;
    const alts: [number, string, number][] = [];
    if (o.altPort !== undefined && o.altHost !== undefined) {
      alts.push([1, o.host, o.altPort], [2, o.altHost, port], [3, o.altHost, o.altPort]);
    }
    for (const [role, host, p] of alts) {
      const d = UdpDriver.bind(host, p, new AltMachine(role, stun));
      drivers.push(d);
      stun.attach(role, d);
    }
    stun.ready();
    const streams = held.streams;
    return { drivers, stun, registry, streams, ...(skipped ? { skipped } : {}) };
  } catch (e) {
    await Promise.all(drivers.map((d) => d.close()));
    await held.streams?.close();
    throw e;
  }
}

/**
 * Binds the primary socket (put first in `drivers`) and the TCP and TLS listeners on its port
 * (into `held`); with `--port 0`, when TCP cannot have the port the OS gave UDP, binds again.
 */
async function bindPrimary(
  o: ServeOptions,
  primary: PrimaryMachine,
  onStep: () => void,
  drivers: UdpDriver[],
  held: { streams?: StreamServer | undefined },
): Promise<UdpDriver> {
  // Datagrams to a TCP or TLS peer leave on its connection.
  const machine = withStreams(primary, (t) => held.streams?.send(t));
  const bindMain = () =>
    UdpDriver.bind(o.host, o.port, machine, {
      onStep,
      ipv6: o.ipv6 && { hostname: o.ipv6.host, port: o.port, optional: !o.ipv6.required },
    });
  let main = bindMain();
  drivers.unshift(main);
  const deliver = (from: Endpoint, data: Uint8Array) => {
    main.step((now) => primary.handleDatagram(now, from, data));
  };
  for (let attempt = 1;; attempt++) {
    try {
      held.streams = await listenStreams(o, main.localAddr.port, deliver);
      return main;
    } catch (e) {
      // With --port 0 the OS picked the UDP port, and TCP wants the same number, which a TCP
      // socket (an outgoing connection's) may hold: let the OS pick again.
      const taken = e instanceof Error && e.cause instanceof Deno.errors.AddrInUse;
      if (!taken || o.port !== 0 || o.tcp?.port !== undefined || attempt >= 8) throw e;
      drivers.shift();
      await main.close();
      main = bindMain();
      drivers.unshift(main);
    }
  }
}

/** The TCP and TLS listeners `o` asks for (none: undefined); `udpPort` is the bound UDP port. */
async function listenStreams(
  o: ServeOptions,
  udpPort: number,
  deliver: (from: Endpoint, data: Uint8Array) => void,
): Promise<StreamServer | undefined> {
  if (!o.tcp && !o.tls) return undefined;
  let files: { cert: string; key: string } | undefined;
  if (o.tls) {
    try {
      files = {
        cert: await Deno.readTextFile(o.tls.cert),
        key: await Deno.readTextFile(o.tls.key),
      };
    } catch (e) {
      throw new Error(
        `Cannot read the TLS certificate or key (${
          (e as Error).message
        }); check --tls-cert and --tls-key`,
      );
    }
  }
  const problem = files && serverCertificateProblem(files.cert);
  if (problem) log.warning("{problem}", { problem });
  return StreamServer.listen({
    hostname: o.host,
    ...(o.ipv6 ? { hostname6: o.ipv6.host } : {}),
    ...(o.tcp ? { port: o.tcp.port ?? udpPort } : {}),
    ...(o.tls && files ? { tls: { port: o.tls.port, files } } : {}),
    limits: { ...DEFAULT_STREAM_LIMITS, ...o.streamLimits },
  }, deliver);
}

/** Runs the server until the signal aborts or SIGINT/SIGTERM arrives. */
export async function serve(o: ServeOptions): Promise<void> {
  // With a second address, peers offering to be supernodes get a reachability probe from it
  // (role 2: the alternate address, main port), an address they never contacted; with one
  // address, from its second port, and only peers without a NAT (see reachOf).
  let made: Registry | undefined;
  const makeRegistry = (roles: ReadonlySet<number>) =>
    made = new Registry({
      ...o.limits,
      expireAfter: o.expireAfter,
      ...reachOf(roles),
    }, systemRandom);
  const events = new RateLimitedLog(log, { perSecond: o.logPerSecond ?? 10 });
  const counts = new EventCounts();
  let cluster: ServeCluster | undefined;
  const { drivers, stun, skipped, registry, streams } = await bindSockets(o, makeRegistry, () => {
    if (!made) return;
    cluster?.onStep();
    for (let e = made.pollEvent(); e; e = made.pollEvent()) {
      counts.count(e);
      logEvent(events, e);
    }
    events.flush();
  });
  try {
    cluster = await startCluster(o.cluster, o.host, registry, drivers[0]!);
  } catch (e) {
    await Promise.all(drivers.map((d) => d.close()));
    await streams?.close();
    throw e;
  }
  const served: Served = { registry, drivers, streams, stun, events, counts, cluster };
  announceListening(served, o.json, o.altPort, skipped);
  for (const d of drivers) d.start();
  const metrics = startMetrics(served, o.metrics, o.json);
  const summary = startSummary(served, o.summaryInterval);
  try {
    await stopSignal(o.signal);
  } finally {
    if (summary !== undefined) clearInterval(summary);
    await streams?.close();
    await Promise.all(drivers.map((d) => d.close()));
    await metrics?.close();
    await cluster?.close();
    events.flush(true);
    log.info("Server stopped");
  }
}

/** Resolves when `signal` aborts (or had) or SIGINT or SIGTERM arrives. */
async function stopSignal(signal: AbortSignal | undefined): Promise<void> {
  const stopped = Promise.withResolvers<void>();
  const stop = () => stopped.resolve();
  signal?.addEventListener("abort", stop, { once: true });
  if (signal?.aborted) stop();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  try {
    await stopped.promise;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
    signal?.removeEventListener("abort", stop);
  }
}
