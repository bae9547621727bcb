/**
 * `p2p serve --cluster`: joins the registry to a cluster (`lib/server/cluster.ts`) through the
 * engine (`lib/io/cluster_engine.ts`): settings from options, files and environment (the URL's
 * credentials and the secret never logged), the engine's messages and its coming and going fed
 * to the registry on the driver's step, what the registry publishes carried to the engine after
 * every step (member updates in a burst a few ms later, so that they go as one message), the cluster's events as log lines, its counters for the metrics.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { clusterCookieKey, clusterKey } from "../crypto/cluster_mac.ts";
import {
  clusterSecretFrom,
  connectEngine,
  type EngineLink,
  engineUrlFrom,
  redactUrl,
} from "../io/cluster_engine.ts";
import { systemRandom } from "../io/random.ts";
import type { UdpDriver } from "../io/udp.ts";
import type { ClusterEvent, ClusterStats, Registry } from "../server/registry.ts";
import { DEFAULT_CLUSTER } from "../server/cluster.ts";
import type { Endpoint } from "../wire/address.ts";

/** `p2p serve`'s cluster options (all unset: no cluster, unless `P2P_CLUSTER_URL` is). */
export interface ServeClusterOptions {
  /** `--cluster URL`. */
  url?: string | undefined;
  /** `--cluster-file FILE`: the URL on its first line. */
  urlFile?: string | undefined;
  /** `--cluster-secret-file FILE` (else `P2P_CLUSTER_SECRET`). */
  secretFile?: string | undefined;
  /** `--cluster-advertise`: where peers reach this server (default: a concrete --host). */
  advertise: Endpoint[];
  /** The lease of this server's members at the others, ms. */
  lease: number;
  /** The keepalive interval peers are asked to keep, s. */
  keepalive: number;
}

/** A running cluster membership, as the serve role uses it. */
export interface ServeCluster {
  /** After every driver step: what the registry publishes goes to the engine; events logged. */
  onStep(): void;
  /** Counters and the engine's round trip, for the metrics. */
  metrics(): { stats: ClusterStats; rttMs: number | null };
  /** Leaves the engine. */
  close(): Promise<void>;
}

const log = getLogger(["p2p", "serve", "cluster"]);

/** How long the engine may take to answer at start before the log says it is missing, ms. */
const ENGINE_PATIENCE = 5_000;

/** Member updates published within this long of the last publication wait for more, ms. */
const BATCH_AFTER = 20;
/**
 * How long they wait, ms: at most this much later an introduction across servers in a burst of
 * registrations (one alone goes at once), for fewer messages for every server to take. Measured
 * (`bench/cluster_capacity.ts --receivers`, 3,000 records): 27–35 µs of a receiver's CPU per
 * record at 20 ms against 39–54 µs at 5 ms.
 */
const BATCH_WAIT = 20;

/** How often the wall clock is read for shared cookies' periods, ms. */
const WALL_CLOCK_EVERY = 10_000;

/**
 * Joins `registry` (running on `driver`, bound to `host`) to the cluster `o` names, or returns
 * undefined when no cluster URL is given. Throws an Error saying what is wrong with a URL,
 * file or secret.
 */
export async function startCluster(
  o: ServeClusterOptions | undefined,
  host: string,
  registry: Registry,
  driver: UdpDriver,
): Promise<ServeCluster | undefined> {
  const url = await engineUrlFrom(o?.url, o?.urlFile);
  if (!url) return undefined;
  o ??= { advertise: [], lease: DEFAULT_CLUSTER.lease, keepalive: DEFAULT_CLUSTER.keepalive };
  const secret = await clusterSecretFrom(o.secretFile);
  const port = driver.localAddr.port;
  const endpoints = o.advertise.length > 0
    ? o.advertise
    : host !== "0.0.0.0"
    ? [{ hostname: host, port }]
    : [];
  const server = systemRandom(8);
  registry.joinCluster({
    server,
    key: secret && clusterKey(secret),
    heartbeat: 1_000,
    lease: o.lease,
    endpoints,
    keepalive: o.keepalive,
    cookieKey: secret && clusterCookieKey(secret),
  });
  // Shared cookies count their periods on the wall clock: read now and every few seconds.
  const wallClock = () => driver.step((now) => registry.handleWallClock(now, Date.now()));
  let clock: ReturnType<typeof setInterval> | undefined;
  if (secret) {
    wallClock();
    clock = setInterval(wallClock, WALL_CLOCK_EVERY);
  }
  const view = registry.cluster!;
  log.info("Cluster: joining through {engine} as server {server}", {
    engine: redactUrl(url),
    server: view.serverHex,
  });
  if (!secret) {
    log.warning(
      "Cluster: no shared secret (P2P_CLUSTER_SECRET or --cluster-secret-file): trusting the engine's access control for cluster messages",
    );
  }
  if (endpoints.length === 0) {
    log.warning(
      "Cluster: peers will not be told where this server is (--host is 0.0.0.0); give --cluster-advertise IP:PORT",
    );
  }
  let reached = false;
  const link: EngineLink = connectEngine(url, view.serverHex, {
    message: (data) => driver.step((now) => registry.handleCluster(now, data)),
    status: (up) => {
      reached ||= up;
      driver.step((now) => registry.handleEngine(now, up));
    },
  });
  // The client keeps trying for ever, silently: say so once if the engine is not there.
  const unreached = setTimeout(() => {
    if (reached) return;
    log.warning("Cluster: no engine at {engine} yet; serving alone, still trying", {
      engine: redactUrl(url),
    });
  }, ENGINE_PATIENCE);
  // Member updates of a burst (another published less than BATCH_AFTER ago) wait BATCH_WAIT,
  // so that they go out as one message (fewer for every server to take); alone, and anything
  // else, they go at once (no delay to an introduction across servers).
  let batch: ReturnType<typeof setTimeout> | undefined;
  let last = -Infinity;
  const publish = () => {
    if (batch !== undefined) clearTimeout(batch);
    batch = undefined;
    last = performance.now();
    for (let p = registry.pollPublish(); p; p = registry.pollPublish()) {
      link.publish(p.to, p.data);
    }
  };
  return {
    onStep() {
      const pending = view.pending;
      if (pending === "urgent") publish();
      else if (pending === "batch" && batch === undefined) {
        if (performance.now() - last >= BATCH_AFTER) publish();
        else batch = setTimeout(publish, BATCH_WAIT);
      }
      for (let e = view.pollEvent(); e; e = view.pollEvent()) logClusterEvent(e);
    },
    metrics: () => ({ stats: view.stats, rttMs: link.rtt }),
    close: () => {
      publish();
      clearTimeout(unreached);
      clearInterval(clock);
      return link.close();
    },
  };
}

/** One log line per cluster event. */
function logClusterEvent(e: ClusterEvent): void {
  switch (e.type) {
    case "engine":
      if (e.up) log.info("Cluster: engine reached; sharing rooms with the other servers");
      else {
        log.warning(
          "Cluster: engine lost; serving this server's rooms alone until it is back (peers at other servers leave rosters when their lease ends)",
        );
      }
      return;
    case "server-up":
      log.info("Cluster: server {server} joined", { server: e.server });
      return;
    case "server-gone":
      log.warning("Cluster: server {server} gone (lease over); its {members} peers removed", {
        server: e.server,
        members: e.members,
      });
      return;
    case "sync":
      log.debug("Cluster: asked server {server} for its members (digests differ)", {
        server: e.server,
      });
      return;
  }
}
