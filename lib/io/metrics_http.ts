/**
 * The HTTP listener of `p2p serve --metrics HOST:PORT`: `GET /metrics` answers
 * {@link renderMetrics} of a fresh snapshot, any other path 404. I/O only; what is shown is
 * decided in `lib/server/metrics.ts`.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { METRICS_CONTENT_TYPE, type MetricsSnapshot, renderMetrics } from "../server/metrics.ts";

const log = getLogger(["p2p", "metrics"]);

/** A running metrics listener. */
export interface MetricsServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Stops listening and waits for open requests to finish. */
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (and `HEAD`) on `host:port` (port 0 picks a free one), calling
 * `snapshot` once per request. Other paths get 404, other methods on `/metrics` 405. Throws
 * an error naming the address and what to do when it cannot be bound.
 */
export function serveMetrics(
  host: string,
  port: number,
  snapshot: () => MetricsSnapshot,
): MetricsServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = listen(host, port, snapshot);
  } catch (e) {
    const where = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    throw new Error(
      `Cannot serve metrics on ${where} (${(e as Error).message}); choose another --metrics ` +
        "address or port",
    );
  }
  return {
    addr: server.addr,
    async close() {
      await server.shutdown();
      await server.finished;
    },
  };
}

function listen(
  host: string,
  port: number,
  snapshot: () => MetricsSnapshot,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: host,
    port,
    // Deno.serve prints "Listening on ..." to stdout by default; stdout is not ours.
    onListen: () => {},
    onError: (err) => {
      log.error("Metrics request failed: {error}", { error: String(err) });
      return new Response("internal error\n", { status: 500 });
    },
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (path !== "/metrics") return new Response("not found\n", { status: 404 });
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    return new Response(req.method === "HEAD" ? null : renderMetrics(snapshot()), {
      headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
    });
  });
}
