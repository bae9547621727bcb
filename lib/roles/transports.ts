/**
 * How `p2p join` reaches its servers: over UDP, and over TCP or TLS where UDP does not get
 * through. {@link serverRoutes} turns the `--server` values (`HOST:PORT`, `tcp://HOST:PORT`,
 * `tls://HOST:PORT`) and `--tcp` into the ordered list the server link tries, each entry with
 * its same-server group (a server over UDP and over a stream is one group: the link moves its
 * registration between them). {@link ServerTransports} resolves them, runs one
 * {@link StreamDialer} per stream entry and sends the client's datagrams to stream endpoints
 * through them (I/O).
 *
 * @module
 */
import { splitHostPort } from "../core/host_port.ts";
import { type DialTarget, StreamDialer } from "../io/tcp.ts";
import { type Endpoint, formatEndpoint, sameEndpoint } from "../wire/address.ts";
import type { Transmit } from "../wire/transmit.ts";

/** How one server entry is reached. */
export type Scheme = "udp" | "tcp" | "tls";

/** One entry of the list the server link tries. */
export interface ServerRoute {
  /** Over UDP, plain TCP or TLS. */
  scheme: Scheme;
  /** `HOST:PORT` as given (IPv6 in brackets). */
  hostPort: string;
  /** Entries with the same group are the same server over different transports. */
  group: number;
}

/** A `--server` value split into its scheme and `HOST:PORT`. */
export function parseServerSpec(spec: string): { scheme: Scheme; hostPort: string } {
  const m = /^(tcp|tls):\/\/(.*)$/i.exec(spec);
  if (!m) return { scheme: "udp", hostPort: spec };
  return { scheme: m[1]!.toLowerCase() as Scheme, hostPort: m[2]! };
}

function hostOf(hostPort: string): string {
  return splitHostPort(hostPort)?.host ?? hostPort;
}

/**
 * The entries the server link tries, in order, for `--server` values `specs`:
 *
 * - `HOST:PORT`: UDP; without `tcp` its TCP twin (same port) comes after every value's first
 *   entry, as the fallback when UDP gets no answer; with `tcp` the order is reversed.
 * - `tcp://HOST:PORT`, `tls://HOST:PORT`: that stream first; its UDP twin (same host and port)
 *   after every value's first entry, unless a `HOST:PORT` value already names the host.
 *
 * A stream to a host some earlier value names (same host; for `tcp://`, same port too) is in
 * that value's group.
 */
export function serverRoutes(specs: readonly string[], tcp: boolean): ServerRoute[] {
  const first: ServerRoute[] = [], later: ServerRoute[] = [];
  const given = specs.map(parseServerSpec);
  given.forEach((g, i) => {
    const earlier = given.findIndex((o, j) =>
      j < i && hostOf(o.hostPort) === hostOf(g.hostPort) &&
      (g.scheme === "tls" || o.hostPort === g.hostPort)
    );
    const group = earlier >= 0 ? earlier : i;
    const udpNamed = given.some((o, j) =>
      j !== i && o.scheme === "udp" && hostOf(o.hostPort) === hostOf(g.hostPort)
    );
    if (g.scheme === "udp") {
      const udp = { scheme: "udp" as const, hostPort: g.hostPort, group };
      const stream = { scheme: "tcp" as const, hostPort: g.hostPort, group };
      const explicit = given.some((o) => o.scheme === "tcp" && o.hostPort === g.hostPort);
      if (tcp && !explicit) first.push(stream), later.push(udp);
      else {
        first.push(udp);
        if (!explicit) later.push(stream);
      }
    } else {
      first.push({ scheme: g.scheme, hostPort: g.hostPort, group });
      if (!udpNamed) later.push({ scheme: "udp", hostPort: g.hostPort, group });
    }
  });
  // The same entry twice (a value repeated) is tried once.
  const all = [...first, ...later];
  return all.filter((r, i) =>
    all.findIndex((o) => o.scheme === r.scheme && o.hostPort === r.hostPort) === i
  );
}

/** The servers of a join, resolved, with one dialer per stream entry. */
export class ServerTransports {
  /** The entries as endpoints, in the order the server link tries them. */
  readonly servers: Endpoint[];
  /** Their same-server groups (see {@link ServerRoute.group}). */
  readonly groups: number[];
  #routes: ServerRoute[];
  #dialers: StreamDialer[];

  private constructor(
    routes: ServerRoute[],
    servers: Endpoint[],
    dialers: StreamDialer[],
  ) {
    this.#routes = routes;
    this.servers = servers;
    this.groups = routes.map((r) => r.group);
    this.#dialers = dialers;
  }

  /**
   * Resolves `routes` with `resolve` (`HOST:PORT` to an endpoint) and makes their dialers:
   * frames received go to `deliver`, connection failures to `onError`, the end of an open
   * stream (to the server's endpoint) to `onClose`; `caCerts` are trusted for TLS besides the
   * public CAs.
   */
  static async open(
    routes: ServerRoute[],
    resolve: (hostPort: string) => Promise<Endpoint>,
    deliver: (from: Endpoint, data: Uint8Array) => void,
    onError: (message: string) => void,
    caCerts: string[] = [],
    onClose: (server: Endpoint) => void = () => {},
  ): Promise<ServerTransports> {
    const servers: Endpoint[] = [];
    const dialers: StreamDialer[] = [];
    for (const r of routes) {
      const at = await resolve(r.hostPort);
      if (r.scheme === "udp") {
        servers.push(at);
        continue;
      }
      const ep: Endpoint = { hostname: at.hostname, port: at.port, stream: dialers.length };
      // TLS checks the certificate against the name as given; plain TCP takes the address.
      const host = hostOf(r.hostPort).replace(/^\[|\]$/g, "");
      const target: DialTarget = r.scheme === "tls"
        ? { hostname: host, port: at.port, tls: { caCerts } }
        : { hostname: at.hostname, port: at.port };
      dialers.push(new StreamDialer(target, ep, deliver, onError, () => onClose(ep)));
      servers.push(ep);
    }
    return new ServerTransports(routes, servers, dialers);
  }

  /** Sends `t` on the stream its endpoint names. */
  send(t: Transmit): void {
    this.#dialers[t.to.stream!]?.send(t.data);
  }

  /** `ep` as the user named it: `HOST:PORT`, `tcp://HOST:PORT` or `tls://HOST:PORT`. */
  describe(ep: Endpoint): string {
    if (ep.stream === undefined) return formatEndpoint(ep);
    const i = this.servers.findIndex((s) => sameEndpoint(s, ep));
    const r = i >= 0 ? this.#routes[i] : undefined;
    const plain = formatEndpoint({ hostname: ep.hostname, port: ep.port });
    return `${r?.scheme ?? "tcp"}://${plain}`;
  }

  /** The group of `ep` (an entry of {@link servers}), or -1. */
  groupOf(ep: Endpoint): number {
    const i = this.servers.findIndex((s) => sameEndpoint(s, ep));
    return i >= 0 ? this.groups[i]! : -1;
  }

  /** Closes every stream. */
  async close(): Promise<void> {
    await Promise.all(this.#dialers.map((d) => d.close()));
  }
}
