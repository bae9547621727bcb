/**
 * Turns a `HOST:PORT` the user typed into an endpoint: literal addresses as they are (IPv6 as
 * `[addr]:port`; an IPv4-mapped one, typed or from DNS, as its IPv4 address), `localhost` as
 * 127.0.0.1, other names through DNS: A records first, then AAAA (a dual-stack server is reached
 * over IPv4, which works from every network; an IPv6-only name over IPv6). Used by the roles (`peer.ts`, `doctor.ts`); this is I/O (a DNS lookup), so pure
 * modules do not import it.
 *
 * @module
 */
import { splitHostPort } from "../core/host_port.ts";
import { type Endpoint, formatIPv6, parseIPv4, parseIPv6 } from "../wire/address.ts";

/** A `HOST:PORT` that cannot be used; the message says why and what to do. */
export class ResolveError extends Error {
  /** Makes an error with a user-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "ResolveError";
  }
}

/** Which address families a lookup may return. */
export type Families = "any" | "ipv4";

/** The dotted IPv4 address of an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else null. */
function mappedIPv4(b: Uint8Array): string | null {
  if (!b.subarray(0, 10).every((x) => x === 0) || b[10] !== 0xff || b[11] !== 0xff) return null;
  return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
}

/** Why an IPv6 literal cannot be a server, if it cannot. */
function badIPv6(b: Uint8Array): string | undefined {
  if (b.every((x) => x === 0)) return "the unspecified address";
  if (b[0] === 0xff) return "a multicast address";
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) {
    return "link-local (it needs an interface; use a global or ULA address)";
  }
  return undefined;
}

/**
 * Resolves `spec` (`HOST:PORT`, IPv6 as `[addr]:port`) to an endpoint; `what` names it in
 * errors ("Server", "STUN server"). With `families: "ipv4"` (for tools that only speak IPv4)
 * an IPv6 address is refused and names are looked up as A records only. Throws
 * {@link ResolveError}.
 */
export async function resolveHostPort(
  spec: string,
  what = "Server",
  families: Families = "any",
): Promise<Endpoint> {
  const hp = splitHostPort(spec);
  if (!hp) {
    const hint = (spec.match(/:/g)?.length ?? 0) > 1
      ? `; an IPv6 address goes in brackets, for example [2001:db8::7]:7777`
      : `; for example 203.0.113.7:7777 or [2001:db8::7]:7777`;
    throw new ResolveError(`${what} "${spec}" is not HOST:PORT${hint}`);
  }
  const v6 = parseIPv6(hp.host);
  const v4 = v6 && mappedIPv4(v6);
  // An IPv4-mapped address is the IPv4 address: replies are reported from its plain form.
  if (v4) return { hostname: v4, port: hp.port };
  if (v6) {
    if (families === "ipv4") {
      throw new ResolveError(
        `${what} "${spec}" is an IPv6 address; this command speaks IPv4 only: use its IPv4 address or a host name with an A record`,
      );
    }
    const bad = badIPv6(v6);
    if (bad) throw new ResolveError(`${what} "${spec}" is ${bad}`);
    // The form sockets report replies from, so `sameEndpoint` matches them.
    return { hostname: formatIPv6(v6), port: hp.port };
  }
  if (parseIPv4(hp.host)) return { hostname: hp.host, port: hp.port };
  if (hp.host === "localhost") return { hostname: "127.0.0.1", port: hp.port };
  const types: ("A" | "AAAA")[] = families === "ipv4" ? ["A"] : ["A", "AAAA"];
  for (const type of types) {
    try {
      const ips = await Deno.resolveDns(hp.host, type);
      const mapped = ips[0] && type === "AAAA" ? parseIPv6(ips[0]) : null;
      if (ips[0]) return { hostname: (mapped && mappedIPv4(mapped)) || ips[0], port: hp.port };
    } catch {
      // No such record: try the next type; reported below.
    }
  }
  throw new ResolveError(
    `Cannot resolve ${what.toLowerCase()} host "${hp.host}" (${
      types.join(" or ")
    } records); check the name or use its IP`,
  );
}
