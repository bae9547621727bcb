/**
 * `p2p serve`: the rendezvous and relay server. Wires the pure {@link Registry} to a UDP
 * driver, logs one line per significant event and a periodic summary.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { Registry, type RegistryEvent } from "./lib/registry.ts";
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
  /** Interval of the summary log line, in ms (0 disables it). */
  summaryInterval: number;
  /** Stops the server when aborted; SIGINT and SIGTERM also stop it. */
  signal?: AbortSignal;
}

const log = getLogger(["p2p", "serve"]);

function describe(e: RegistryEvent): string {
  switch (e.type) {
    case "registered":
      return `Peer "${e.name}" registered in room "${e.room}" from ${formatEndpoint(e.addr)}${
        e.relayOnly ? " (relay only)" : ""
      }`;
    case "moved":
      return `Peer "${e.name}" in room "${e.room}" moved to ${formatEndpoint(e.addr)}`;
    case "introduced":
      return `Introduced "${e.a}" and "${e.b}" in room "${e.room}"${e.repunch ? " again" : ""}`;
    case "relaying":
      return `Relaying from "${e.from}" to "${e.to}" in room "${e.room}"`;
    case "left":
      return `Peer "${e.name}" left room "${e.room}" (${e.reason})`;
    case "refused":
      return `Refused ${formatEndpoint(e.addr)}: ${e.why}`;
  }
}

/** Runs the server until the signal aborts or SIGINT/SIGTERM arrives. */
export async function serve(o: ServeOptions): Promise<void> {
  const registry = new Registry({ expireAfter: o.expireAfter });
  const driver = UdpDriver.bind(o.host, o.port, registry, {
    onStep: () => {
      for (let e = registry.pollEvent(); e; e = registry.pollEvent()) {
        // Re-introductions for background punch retries are routine: debug level.
        if (e.type === "introduced" && e.repunch) log.debug(describe(e));
        else log.info(describe(e));
      }
    },
  });
  const addr = formatEndpoint(driver.localAddr);
  if (o.json) console.log(JSON.stringify({ event: "listening", addr }));
  log.info(`Listening on UDP ${addr}`);
  driver.start();

  const summary = o.summaryInterval > 0
    ? setInterval(() => {
      const s = registry.stats;
      const drops = Object.entries(s.drops).map(([k, v]) => `${k}=${v}`).join(" ") || "none";
      log.info(
        `Summary: ${registry.peerCount} peers in ${registry.roomCount} rooms; relayed ${s.relayedPackets} datagrams (${s.relayedBytes} bytes); received ${driver.stats.received}, sent ${driver.stats.sent}, send errors ${driver.stats.sendErrors}; drops: ${drops}`,
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
    log.info("Server stopped");
  }
}
