/**
 * Turns a `HOST:PORT` the user typed into an IPv4 endpoint: literal addresses as they are,
 * `localhost` as 127.0.0.1, other names through DNS (A records). Used by the roles (`peer.ts`,
 * `doctor.ts`); this is I/O (a DNS lookup), so pure modules do not import it.
 *
 * @module
 */
import { splitHostPort } from "./peer_view.ts";
import { type Endpoint, parseIPv4, parseIPv6 } from "./wire.ts";

/** A `HOST:PORT` that cannot be used; the message says why and what to do. */
export class ResolveError extends Error {
  /** Makes an error with a user-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "ResolveError";
  }
}

/**
 * Resolves `spec` (`HOST:PORT`, IPv6 as `[addr]:port`) to an IPv4 endpoint; `what` names it in
 * errors ("Server", "STUN server"). Throws {@link ResolveError}.
 */
export async function resolveHostPort(spec: string, what = "Server"): Promise<Endpoint> {
  const hp = splitHostPort(spec);
  if (!hp) {
    throw new ResolveError(`${what} "${spec}" is not HOST:PORT; for example 203.0.113.7:7777`);
  }
  if (parseIPv6(hp.host)) {
    // The sockets are IPv4 only: an IPv6 address would just time out, misleadingly.
    throw new ResolveError(
      `${what} "${spec}" is an IPv6 address; p2p speaks IPv4 only for now: use its IPv4 address or a host name with an A record`,
    );
  }
  if (parseIPv4(hp.host)) return { hostname: hp.host, port: hp.port };
  if (hp.host === "localhost") return { hostname: "127.0.0.1", port: hp.port };
  try {
    const ips = await Deno.resolveDns(hp.host, "A");
    if (ips[0]) return { hostname: ips[0], port: hp.port };
  } catch {
    // Reported below.
  }
  throw new ResolveError(
    `Cannot resolve ${what.toLowerCase()} host "${hp.host}"; check the name or use its IP`,
  );
}
