/**
 * `p2p serve`: the rendezvous and relay server. Wires the pure {@link Registry} to a UDP
 * driver, logs one line per significant event (at most `logPerSecond` per kind of event, the
 * rest counted and reported) and a periodic summary. Names, rooms and reasons go into log lines
 * only as properties, escaped when rendered (see `lib/log.ts`).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { Registry, type RegistryEvent, type RegistryOptions } from "./lib/registry.ts";
import { RateLimitedLog } from "./lib/log.ts";
import { UdpDriver } from "./lib/udp.ts";
import { formatEndpoint } from "./lib/wire.ts";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** Address to bind (a literal IP). */
  host: string;
  /** UDP port to bind. */
  port: number;
  /** Print `{"event":"listening",...}` on stdout once bound. */
  json: boolean;
  /** Forget peers silent for this long, in ms. */
  expireAfter: number;
  /** Capacity and abuse limits (defaults in `DEFAULT_REGISTRY`). */
  limits?: Partial<RegistryOptions>;
  /** Interval of the summary log line, in ms (0 disables it). */
  summaryInterval: number;
  /** Stops the server when aborted; SIGINT and SIGTERM also stop it. */
  signal?: AbortSignal;
  /** At most this many log lines per second for each kind of registry event (default 10). */
  logPerSecond?: number;
}

const log = getLogger(["p2p", "serve"]);

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
    case "registered":
      return {
        level: "info",
        kind: e.type,
        template: e.relayOnly
          ? 'Peer "{name}" registered in room "{room}" from {addr} (relay only)'
          : 'Peer "{name}" registered in room "{room}" from {addr}',
        props: { name: e.name, room: e.room, addr: formatEndpoint(e.addr) },
      };
    case "moved":
      return {
        level: "info",
        kind: e.type,
        template: 'Peer "{name}" in room "{room}" moved to {addr}',
        props: { name: e.name, room: e.room, addr: formatEndpoint(e.addr) },
      };
    case "introduced":
      // Re-introductions for background punch retries are routine: debug level.
      return e.repunch
        ? {
          level: "debug",
          kind: "introduced-again",
          template: 'Introduced "{a}" and "{b}" in room "{room}" again',
          props: { a: e.a, b: e.b, room: e.room },
        }
        : {
          level: "info",
          kind: e.type,
          template: 'Introduced "{a}" and "{b}" in room "{room}"',
          props: { a: e.a, b: e.b, room: e.room },
        };
    case "relaying":
      return {
        level: "info",
        kind: e.type,
        template: 'Relaying from "{from}" to "{to}" in room "{room}"',
        props: { from: e.from, to: e.to, room: e.room },
      };
    case "left":
      return {
        level: "info",
        kind: e.type,
        template: 'Peer "{name}" left room "{room}" ({reason})',
        props: { name: e.name, room: e.room, reason: e.reason },
      };
    case "refused":
      return {
        level: "info",
        kind: e.type,
        template: "Refused {addr}: {why}",
        props: { addr: formatEndpoint(e.addr), why: e.why },
      };
    case "limited":
      return {
        level: "info",
        kind: e.type,
        template: 'Peer "{name}" in room "{room}" hit the {what} limit',
        props: { name: e.name, room: e.room, what: e.what },
      };
  }
}

/** Logs a registry event through the rate limiter; returns whether the line was written. */
export function logEvent(out: RateLimitedLog, e: RegistryEvent): boolean {
  const l = describeEvent(e);
  return out.log(l.level, l.kind, l.template, l.props);
}

/** Runs the server until the signal aborts or SIGINT/SIGTERM arrives. */
export async function serve(o: ServeOptions): Promise<void> {
  const registry = new Registry({ ...o.limits, expireAfter: o.expireAfter });
  const events = new RateLimitedLog(log, { perSecond: o.logPerSecond ?? 10 });
  const driver = UdpDriver.bind(o.host, o.port, registry, {
    onStep: () => {
      for (let e = registry.pollEvent(); e; e = registry.pollEvent()) logEvent(events, e);
      events.flush();
    },
  });
  const addr = formatEndpoint(driver.localAddr);
  if (o.json) console.log(JSON.stringify({ event: "listening", addr }));
  log.info("Listening on UDP {addr}", { addr });
  driver.start();

  const summary = o.summaryInterval > 0
    ? setInterval(() => {
      const s = registry.stats;
      const drops = Object.entries(s.drops).map(([k, v]) => `${k}=${v}`).join(" ") || "none";
      events.flush();
      log.info(
        "Summary: {peers} peers in {rooms} rooms; relayed {packets} datagrams ({bytes} bytes); received {received}, sent {sent}, send errors {sendErrors}; drops: {drops}",
        {
          peers: registry.peerCount,
          rooms: registry.roomCount,
          packets: s.relayedPackets,
          bytes: s.relayedBytes,
          received: driver.stats.received,
          sent: driver.stats.sent,
          sendErrors: driver.stats.sendErrors,
          drops,
        },
      );
    }, o.summaryInterval)
    : undefined;

  const stopped = Promise.withResolvers<void>();
  const stop = () => stopped.resolve();
  o.signal?.addEventListener("abort", stop, { once: true });
  if (o.signal?.aborted) stop();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  try {
    await stopped.promise;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, stop);
    o.signal?.removeEventListener("abort", stop);
    if (summary !== undefined) clearInterval(summary);
    await driver.close();
    events.flush(true);
    log.info("Server stopped");
  }
}
