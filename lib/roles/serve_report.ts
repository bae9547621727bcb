/**
 * What a running `p2p serve` tells: the `listening` line and the start-up log lines (streams,
 * IPv6, the second port, STUN), the periodic summary, and the Prometheus metrics endpoint.
 *
 * I/O: stdout, timers, the metrics HTTP listener.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { RateLimitedLog } from "../io/log.ts";
import { type MetricsServer, serveMetrics } from "../io/metrics_http.ts";
import type { StreamServer } from "../io/tcp.ts";
import type { UdpDriver } from "../io/udp.ts";
import type { StunResponder, StunStats } from "../nat/stun.ts";
import type { EventCounts } from "../server/metrics.ts";
import type { Registry } from "../server/registry.ts";
import { formatEndpoint } from "../wire/address.ts";
import type { ServeCluster } from "./serve_cluster.ts";

const log = getLogger(["p2p", "serve"]);

/** A server as bound and running: what its reports read. */
export interface Served {
  registry: Registry;
  /** The UDP drivers, the primary first. */
  drivers: UdpDriver[];
  /** The TCP and TLS listeners, if any. */
  streams: StreamServer | undefined;
  /** The STUN side (`StunHub`). */
  stun: { readonly stats: StunStats | undefined; readonly responder: StunResponder | undefined };
  /** The registry's events, rate-limited on their way to the log. */
  events: RateLimitedLog;
  /** Registrations and introductions counted from the events. */
  counts: EventCounts;
  /** The cluster this server is in, if any. */
  cluster: ServeCluster | undefined;
}

/** `1 peer`, `2 peers`. */
export function plural(n: number, word: string): string {
  return `${n} ${n === 1 ? word : `${word}s`}`;
}

/**
 * The `listening` line (`--json`) and the start-up log lines; `skipped` is why the default
 * second port `altPort` could not be bound.
 */
export function announceListening(
  s: Served,
  json: boolean,
  altPort: number | undefined,
  skipped: string | undefined,
): void {
  const driver = s.drivers[0]!;
  const addr = formatEndpoint(driver.localAddr);
  const local6 = driver.localAddr6;
  const addr6 = local6 ? formatEndpoint(local6) : undefined;
  const alt = s.drivers.slice(1).map((d) => formatEndpoint(d.localAddr));
  const tcp = s.streams?.tcpAddr, tls = s.streams?.tlsAddr;
  if (json) {
    console.log(JSON.stringify({
      event: "listening",
      addr,
      ...(addr6 ? { addr6 } : {}),
      ...(alt.length ? { alt } : {}),
      ...(tcp ? { tcp: formatEndpoint(tcp) } : {}),
      ...(tls ? { tls: formatEndpoint(tls) } : {}),
    }));
  }
  if (tcp || tls) {
    log.info("Peers without UDP: {streams}", {
      streams: [tcp && `TCP ${formatEndpoint(tcp)}`, tls && `TLS ${formatEndpoint(tls)}`]
        .filter((x) => x).join(", "),
    });
  }
  if (addr6) log.info("Listening on UDP {addr} and {addr6}", { addr, addr6 });
  else log.info("Listening on UDP {addr}", { addr });
  if (skipped) {
    log.warning(
      "Not serving the second port {port}: {why}; peers cannot tell whether their NAT maps per " +
        "port and no peer becomes a supernode. Give --alt-port a free port, or --no-alt-port",
      { port: altPort, why: skipped },
    );
  }
  if (driver.ipv6Error) {
    log.warning("Not serving IPv6: {why}; give --host6 an address of this box or --no-ipv6", {
      why: driver.ipv6Error,
    });
  }
  if (alt.length) {
    log.info("STUN also on UDP {alt} ({discovery})", {
      alt: alt.join(", "),
      discovery: s.stun.responder?.behaviourDiscovery
        ? "RFC 5780 behaviour discovery"
        : "peers learn whether their NAT maps per port; reachability checks of peers " +
          "without a NAT; --alt-host adds RFC 5780 behaviour discovery",
    });
  }
}

/** Serves `/metrics` on `at` (none: undefined), announced in the log and with `--json`. */
export function startMetrics(
  s: Served,
  at: { host: string; port: number } | undefined,
  json: boolean,
): MetricsServer | undefined {
  if (!at) return undefined;
  const { registry, counts, streams, stun, cluster } = s;
  const driver = s.drivers[0]!;
  const metrics = serveMetrics(at.host, at.port, () => ({
    peers: registry.peerCount,
    rooms: registry.roomCount,
    registrations: counts.registrations,
    introductions: counts.introductions,
    registry: registry.stats,
    driver: driver.stats,
    stunRequests: stun.stats?.answered ?? 0,
    ...(streams
      ? {
        streams: {
          open: streams.open,
          accepted: streams.stats.accepted,
          dropped: streams.stats.dropped,
        },
      }
      : {}),
    memory: Deno.memoryUsage(),
    ...(cluster ? { cluster: cluster.metrics() } : {}),
  }));
  const url = `http://${formatEndpoint(metrics.addr)}/metrics`;
  log.info("Metrics at {at}", { at: url });
  if (json) console.log(JSON.stringify({ event: "metrics", url }));
  return metrics;
}

/** Logs the summary every `every` ms (0: never); returns the interval to clear. */
export function startSummary(
  s: Served,
  every: number,
): ReturnType<typeof setInterval> | undefined {
  return every > 0 ? setInterval(() => summarize(s), every) : undefined;
}

/** The summary lines: peers, rooms, relaying, drops; TCP/TLS and STUN when they served. */
function summarize({ registry, drivers, streams, stun, events }: Served): void {
  const s = registry.stats, driver = drivers[0]!;
  const drops = Object.entries(s.drops).map(([k, v]) => `${k}=${v}`).join(" ") || "none";
  events.flush();
  log.info(
    "Summary: {peers} in {rooms}; relayed {packets} datagrams ({bytes} bytes); received {received}, sent {sent}, send errors {sendErrors}; drops: {drops}",
    {
      peers: plural(registry.peerCount, "peer"),
      rooms: plural(registry.roomCount, "room"),
      packets: s.relayedPackets,
      bytes: s.relayedBytes,
      received: driver.stats.received,
      sent: driver.stats.sent,
      sendErrors: driver.stats.sendErrors,
      drops,
    },
  );
  if (streams) {
    const t = streams.stats;
    const tcpDrops = Object.entries(t.dropped).map(([k, v]) => `${k}=${v}`).join(" ");
    log.info(
      "TCP/TLS: {open} connections open, {accepted} accepted; frames in {framesIn}, out {framesOut}; drops: {drops}",
      { ...t, open: streams.open, drops: tcpDrops || "none" },
    );
  }
  const st = stun.stats;
  const stunDrops = Object.entries(st?.drops ?? {}).map(([k, v]) => `${k}=${v}`).join(" ");
  if (st && (st.answered || st.errors || stunDrops)) {
    log.info(
      "STUN: answered {answered} Binding requests ({classic} RFC 3489, {changed} from another socket), {errors} errors; drops: {drops}",
      { ...st, drops: stunDrops || "none" },
    );
  }
}
