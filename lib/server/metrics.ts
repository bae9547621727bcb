/**
 * The server's metrics in the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). Pure: the caller gathers a
 * {@link MetricsSnapshot} (registry and driver counters, `Deno.memoryUsage()`) and
 * {@link renderMetrics} turns it into text; `lib/io/metrics_http.ts` serves that text.
 *
 * The registry has no counters of registrations and introductions, so {@link EventCounts}
 * counts them from the {@link RegistryEvent}s the server already polls.
 *
 * @module
 */
import type { ClusterStats, RegistryEvent, RegistryStats } from "./registry.ts";

/** The `Content-Type` of {@link renderMetrics}' output. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Counters of the UDP driver; `DriverStats` of `lib/io/udp.ts` fits as it is. */
export interface DriverCounters {
  /** Datagrams received. */
  received: number;
  /** Datagrams sent. */
  sent: number;
  /** Sends the OS refused. */
  sendErrors?: number;
  /** Receives that failed. */
  receiveErrors?: number;
  /** Datagrams dropped by the driver's filter. */
  filtered?: number;
}

/** Process memory in bytes; `Deno.memoryUsage()` fits as it is. */
export interface MemoryCounters {
  /** Resident set size. */
  rss: number;
  /** V8 heap in use. */
  heapUsed: number;
  /** V8 heap reserved. */
  heapTotal: number;
  /** Memory of objects outside the V8 heap (buffers). */
  external?: number;
}

/** Everything {@link renderMetrics} shows, read at one moment. */
export interface MetricsSnapshot {
  /** Registered peers (`registry.peerCount`). */
  peers: number;
  /** Non-empty rooms (`registry.roomCount`). */
  rooms: number;
  /** Registrations so far ({@link EventCounts.registrations}). */
  registrations: number;
  /** Pair introductions so far, re-introductions included ({@link EventCounts.introductions}). */
  introductions: number;
  /** The registry's counters (`registry.stats`): relayed datagrams and bytes, drops by reason. */
  registry: Pick<RegistryStats, "relayedPackets" | "relayedBytes" | "drops"> & {
    cookies?: number;
    cookiesRefreshed?: number;
    reachSent?: number;
    reachPassed?: number;
  };
  /** The UDP driver's counters (`driver.stats`). */
  driver: DriverCounters;
  /** STUN Binding requests answered (0 or absent while the server has no STUN). */
  stunRequests?: number;
  /** TCP and TLS connections (absent without `lib/io/tcp.ts`'s listeners). */
  streams?: {
    /** Open now. */
    open: number;
    /** Accepted so far. */
    accepted: number;
    /** Refused or closed by the server, by reason (`idle`, `slow-reader`, `source-full`, ...). */
    dropped: Partial<Record<string, number>>;
  };
  /** Process memory (`Deno.memoryUsage()`). */
  memory: MemoryCounters;
  /** With `--cluster`: the cluster part's counters and the engine's round trip (ms). */
  cluster?: { stats: ClusterStats; rttMs: number | null };
}

/**
 * Counts the registry events that have no counter in `registry.stats`: feed it every event
 * polled with `registry.pollEvent()` (before or after logging it).
 */
export class EventCounts {
  /** `registered` events: peers that registered (a new registration, not a move). */
  registrations = 0;
  /** `introduced` events: pairs introduced to each other, re-introductions included. */
  introductions = 0;

  /** Counts `e` if it is one of the kinds counted here. */
  count(e: RegistryEvent): void {
    if (e.type === "registered") this.registrations++;
    else if (e.type === "introduced") this.introductions++;
  }
}

/** A label value escaped for the text format: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => c === "\\" ? "\\\\" : c === '"' ? '\\"' : "\\n");
}

/** HELP text escaped for the text format: backslash and line feed. */
export function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => c === "\\" ? "\\\\" : "\\n");
}

/** A sample value: integers as they are, `NaN`, `+Inf` and `-Inf` as the format spells them. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

type Sample = [labels: Record<string, string>, value: number];

/** Writes one metric family: HELP, TYPE and its samples. */
function family(
  out: string[],
  name: string,
  type: "counter" | "gauge",
  help: string,
  samples: Sample[] | number,
): void {
  out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  const list: Sample[] = typeof samples === "number" ? [[{}, samples]] : samples;
  for (const [labels, value] of list) {
    const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",");
    out.push(`${name}${l ? `{${l}}` : ""} ${formatValue(value)}`);
  }
}

/** `snapshot` in the Prometheus text format 0.0.4 (metric names start with `p2p_`). */
export function renderMetrics(s: MetricsSnapshot): string {
  const out: string[] = [];
  const c = (name: string, help: string, v: Sample[] | number) =>
    family(out, name, "counter", help, v);
  const g = (name: string, help: string, v: Sample[] | number) =>
    family(out, name, "gauge", help, v);

  g("p2p_peers", "Registered peers.", s.peers);
  g("p2p_rooms", "Rooms with at least one peer.", s.rooms);
  c("p2p_registrations_total", "Peers that registered.", s.registrations);
  c("p2p_introductions_total", "Pairs of peers introduced to each other.", s.introductions);
  c(
    "p2p_relayed_datagrams_total",
    "Datagrams relayed between peers.",
    s.registry.relayedPackets,
  );
  c("p2p_relayed_bytes_total", "Payload bytes relayed between peers.", s.registry.relayedBytes);
  c(
    "p2p_drops_total",
    "Datagrams the registry dropped, by reason.",
    Object.keys(s.registry.drops).sort().map((reason) => [
      { reason },
      s.registry.drops[reason] ?? 0,
    ]),
  );
  c("p2p_cookies_total", "COOKIE replies sent.", s.registry.cookies ?? 0);
  c(
    "p2p_cookies_refreshed_total",
    "COOKIEs sent unasked to members, once a period, in a cluster that shares cookies.",
    s.registry.cookiesRefreshed ?? 0,
  );
  c(
    "p2p_reach_checks_total",
    "Reachability probes sent to peers offering to be supernodes.",
    s.registry.reachSent ?? 0,
  );
  c(
    "p2p_supernodes_total",
    "Peers that passed the reachability check (supernodes).",
    s.registry.reachPassed ?? 0,
  );
  c("p2p_stun_requests_total", "STUN Binding requests answered.", s.stunRequests ?? 0);
  processMetrics(s, c, g);
  if (s.cluster) clusterMetrics(s.cluster.stats, s.cluster.rttMs, c, g);
  return out.join("\n") + "\n";
}

/** Writes one counter or gauge family (see {@link family}). */
type Family = (name: string, help: string, v: Sample[] | number) => void;

/** The families of the process: its UDP datagrams, TCP and TLS connections, memory. */
function processMetrics(
  s: Pick<MetricsSnapshot, "driver" | "streams" | "memory">,
  c: Family,
  g: Family,
): void {
  c("p2p_datagrams_received_total", "UDP datagrams received.", s.driver.received);
  c("p2p_datagrams_sent_total", "UDP datagrams sent.", s.driver.sent);
  c("p2p_send_errors_total", "UDP sends the OS refused.", s.driver.sendErrors ?? 0);
  c("p2p_receive_errors_total", "UDP receives that failed.", s.driver.receiveErrors ?? 0);
  c(
    "p2p_datagrams_filtered_total",
    "UDP datagrams dropped by the driver's filter.",
    s.driver.filtered ?? 0,
  );
  if (s.streams) {
    const t = s.streams;
    g("p2p_tcp_connections", "TCP and TLS connections open.", t.open);
    c("p2p_tcp_accepted_total", "TCP and TLS connections accepted.", t.accepted);
    c(
      "p2p_tcp_dropped_total",
      "TCP and TLS connections the server refused or closed, by reason.",
      Object.keys(t.dropped).sort().map((reason) => [{ reason }, t.dropped[reason] ?? 0]),
    );
  }
  g("process_resident_memory_bytes", "Resident memory size in bytes.", s.memory.rss);
  g("p2p_heap_used_bytes", "V8 heap in use, in bytes.", s.memory.heapUsed);
  g("p2p_heap_total_bytes", "V8 heap reserved, in bytes.", s.memory.heapTotal);
  g(
    "p2p_external_memory_bytes",
    "Memory of objects outside the V8 heap, in bytes.",
    s.memory.external ?? 0,
  );
}

/** The `p2p_cluster_*` families of a server in a cluster. */
function clusterMetrics(
  st: ClusterStats,
  rttMs: number | null,
  c: Family,
  g: Family,
): void {
  g("p2p_cluster_engine_up", "1 while the cluster's engine is connected.", st.engineUp ? 1 : 0);
  g(
    "p2p_cluster_engine_rtt_seconds",
    "Latest round trip to the cluster's engine (NaN before one).",
    rttMs === null ? NaN : rttMs / 1000,
  );
  g("p2p_cluster_servers", "Other servers of the cluster heard within their lease.", st.servers);
  g("p2p_cluster_remote_peers", "Peers of other servers known here.", st.remoteMembers);
  g(
    "p2p_cluster_remote_records",
    "Peers of other servers held in full (in rooms with peers of this server).",
    st.remoteRecords,
  );
  c(
    "p2p_cluster_remote_introductions_total",
    "Introductions of peers of other servers sent to this server's peers.",
    st.remoteIntroductions,
  );
  c("p2p_cluster_relay_bytes_total", "Payload bytes relayed across servers, by direction.", [
    [{ direction: "out" }, st.relayBytesOut],
    [{ direction: "in" }, st.relayBytesIn],
  ]);
  c("p2p_cluster_relay_datagrams_total", "Datagrams relayed across servers, by direction.", [
    [{ direction: "out" }, st.relayPacketsOut],
    [{ direction: "in" }, st.relayPacketsIn],
  ]);
  c("p2p_cluster_syncs_total", "Snapshots asked of other servers (digests differed).", st.syncs);
  c(
    "p2p_cluster_takeovers_total",
    "Peers of other servers that failed over to this one.",
    st.takeovers,
  );
  c(
    "p2p_cluster_drops_total",
    "Cluster messages dropped, by reason.",
    Object.keys(st.drops).sort().map((reason) => [{ reason }, st.drops[reason] ?? 0]),
  );
}
