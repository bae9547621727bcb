/**
 * The cluster's engine connection (**I/O**): a NATS client (`@nats-io/nats-core` over Deno's own
 * sockets, `nats_transport.ts`) that
 * subscribes to the cluster's subjects (`PREFIX.all` and this server's `PREFIX.s.HEX`), hands
 * what arrives to the serve role, publishes what the registry's cluster part gives it, reports
 * when the engine goes and comes back (it reconnects for ever, every half second), and measures
 * the engine's round trip. Also where the settings come from: the engine's URL (`--cluster`,
 * `--cluster-file` or `P2P_CLUSTER_URL`; credentials in it never logged: {@link redactUrl}) and
 * the shared secret (`--cluster-secret-file` or `P2P_CLUSTER_SECRET`).
 *
 * @module
 */
import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import { NatsConnectionImpl, setTransportFactory } from "@nats-io/nats-core/internal";
import { getLogger } from "@logtape/logtape";
import { DenoNatsTransport } from "./nats_transport.ts";

const log = getLogger(["p2p", "serve", "cluster"]);

/** A NATS connection over Deno's own sockets (`nats_transport.ts`). */
function connect(opts: ConnectionOptions): Promise<NatsConnection> {
  setTransportFactory({ factory: () => new DenoNatsTransport(), defaultPort: 4222 });
  return NatsConnectionImpl.connect(opts);
}

/** What the serve role hears from the engine. */
export interface EngineHandlers {
  /** A cluster message arrived (its bytes; the registry authenticates it). */
  message(data: Uint8Array): void;
  /** The connection came up or went down. */
  status(up: boolean): void;
}

/** A connection to the engine. */
export interface EngineLink {
  /** Publishes `data` to every server (`to` null) or to the server whose id is `to` in hex. */
  publish(to: string | null, data: Uint8Array): void;
  /** The latest measured round trip to the engine, ms (null before one). */
  readonly rtt: number | null;
  /** Closes the connection. */
  close(): Promise<void>;
}

/** Where the engine is, and how to log in. */
export interface EngineUrl {
  /** `HOST:PORT`. */
  server: string;
  user?: string;
  pass?: string;
  token?: string;
}

/** The subject prefix of the cluster's messages. */
export const SUBJECT_PREFIX = "p2p";

/** How often the engine's round trip is measured, ms. */
const RTT_INTERVAL = 5_000;

/**
 * Reads `nats://[USER[:PASS]@]HOST[:PORT]` (a user without a password is a token). Throws an
 * Error that says what is wrong, without repeating the credentials.
 */
export function parseEngineUrl(text: string): EngineUrl {
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw new Error(`The cluster URL is not a URL; expected nats://HOST:PORT`);
  }
  if (u.protocol !== "nats:") {
    throw new Error(
      `The cluster URL must start with nats:// (got ${u.protocol}//); NATS is the supported engine`,
    );
  }
  if (!u.hostname) throw new Error("The cluster URL names no host; expected nats://HOST:PORT");
  const server = `${u.hostname}:${u.port || "4222"}`;
  const user = decodeURIComponent(u.username), pass = decodeURIComponent(u.password);
  if (user && pass) return { server, user, pass };
  if (user) return { server, token: user };
  return { server };
}

/** The URL without its credentials, for logs: `nats://HOST:PORT` (and `(with credentials)`). */
export function redactUrl(e: EngineUrl): string {
  return `nats://${e.server}${e.user || e.token ? " (with credentials)" : ""}`;
}

/**
 * The engine's URL: `flag` (`--cluster`), else the first line of `file` (`--cluster-file`),
 * else `P2P_CLUSTER_URL`; undefined when none is given (no cluster).
 */
export async function engineUrlFrom(
  flag: string | undefined,
  file: string | undefined,
): Promise<EngineUrl | undefined> {
  if (flag !== undefined) return parseEngineUrl(flag);
  if (file !== undefined) {
    const text = await Deno.readTextFile(file).catch((e) => {
      throw new Error(`Cannot read the cluster URL from ${file}: ${(e as Error).message}`);
    });
    return parseEngineUrl(text.split("\n")[0] ?? "");
  }
  const env = Deno.env.get("P2P_CLUSTER_URL");
  return env ? parseEngineUrl(env) : undefined;
}

/**
 * The cluster's shared secret: the contents of `file` (`--cluster-secret-file`, trailing
 * newline dropped), else `P2P_CLUSTER_SECRET`; null when neither is given. Refuses one shorter
 * than 16 bytes.
 */
export async function clusterSecretFrom(file: string | undefined): Promise<Uint8Array | null> {
  let text: string | undefined;
  if (file !== undefined) {
    text = await Deno.readTextFile(file).catch((e) => {
      throw new Error(`Cannot read the cluster secret from ${file}: ${(e as Error).message}`);
    });
    text = text.replace(/\r?\n$/, "");
  } else text = Deno.env.get("P2P_CLUSTER_SECRET");
  if (text === undefined || text === "") return null;
  const bytes = new TextEncoder().encode(text);
  if (bytes.length < 16) {
    throw new Error(
      "The cluster secret is shorter than 16 bytes; use a long random one (e.g. openssl rand -hex 32)",
    );
  }
  return bytes;
}

/**
 * Connects to the engine at `url` for server `serverHex`, in the background: the link is
 * returned at once, `status(true)` says when the engine is reached (the client keeps trying
 * for ever, so a server started while the engine is down serves alone until it is up).
 */
export function connectEngine(url: EngineUrl, serverHex: string, h: EngineHandlers): EngineLink {
  let nc: NatsConnection | undefined;
  let closed = false;
  let rtt: number | null = null;
  const measure = () => nc?.rtt().then((ms) => rtt = ms, () => {});
  const timer = setInterval(measure, RTT_INTERVAL);
  void connect({
    servers: url.server,
    ...(url.user ? { user: url.user, pass: url.pass } : {}),
    ...(url.token ? { token: url.token } : {}),
    name: `p2p-serve-${serverHex}`,
    noEcho: true,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 100,
    pingInterval: 2_000,
    maxPingOut: 2,
  }).then((c) => {
    if (closed) return void c.close().catch(() => {});
    nc = c;
    for (const subject of [`${SUBJECT_PREFIX}.all`, `${SUBJECT_PREFIX}.s.${serverHex}`]) {
      // A callback per message (no async iterator: a promise less per message).
      c.subscribe(subject, {
        callback: (err, m) => {
          if (err) return;
          // A throw here would end the client's reader (and with it the connection): log it.
          try {
            h.message(m.data);
          } catch (e) {
            log.error("Cluster: a message from the engine failed: {error}", {
              error: (e as Error).message,
            });
          }
        },
      });
    }
    void (async () => {
      for await (const s of c.status()) {
        if (s.type === "disconnect") h.status(false);
        else if (s.type === "reconnect") h.status(true);
      }
    })().catch(() => {});
    h.status(true);
    measure();
  }, () => {});
  return {
    publish(to, data) {
      try {
        nc?.publish(to === null ? `${SUBJECT_PREFIX}.all` : `${SUBJECT_PREFIX}.s.${to}`, data);
      } catch {
        // Closed or reconnecting: the cluster part resynchronises when the engine is back.
      }
    },
    get rtt() {
      return rtt;
    },
    async close() {
      closed = true;
      clearInterval(timer);
      // A first connection still pending is closed when (if ever) it completes; the process
      // does not wait for it.
      await nc?.close().catch(() => {});
    },
  };
}
