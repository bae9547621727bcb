/**
 * The sockets of a `p2p join` peer: its UDP driver bound (IPv4, and IPv6 when this host has an
 * address worth offering or the server is IPv6), the private endpoints its HELLO offers (LAN
 * IPv4 first, then IPv6) and the router's port mapper for the bound port.
 *
 * I/O: sockets, network interfaces.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { type SansIo, UdpDriver } from "../io/udp.ts";
import { findGateway } from "../io/gateway.ts";
import { systemRandom } from "../io/random.ts";
import { PortMapper } from "../nat/portmap/mapper.ts";
import { type Endpoint, formatIPv6, parseIPv6 } from "../wire/address.ts";
import { MAX_PRIVATE_ENDPOINTS } from "../wire/header.ts";
import { JoinError } from "./join_error.ts";

const log = getLogger(["p2p", "join"]);

/** Most IPv6 addresses offered to peers (the IPv4 LAN ones get the rest of the list). */
const MAX_IPV6_ENDPOINTS = 3;

/** The options of `p2p join` that choose its sockets. */
export interface SocketOptions {
  /** `--bind`: local address (0.0.0.0: every IPv4 interface, and IPv6 when worth it). */
  bind: string;
  /** `--port` (0: any). */
  port: number;
  /** `--no-ipv6` sets false. */
  ipv6?: boolean;
  /** `--no-portmap` sets false. */
  portmap?: boolean;
  /** `--relay-only`: no port mapping either. */
  relayOnly: boolean;
  /** Drops datagrams to or from a peer when false (tests only). */
  filter?: ((peer: Endpoint) => boolean) | undefined;
}

/** A peer's bound sockets and what it offers from them. */
export interface BoundPeer {
  /** The UDP driver, bound, not started. */
  driver: UdpDriver;
  /** The HELLO's private endpoints. */
  privateEndpoints: Endpoint[];
  /** The port mapper for the bound port, if mapping is worth trying. */
  portmap: PortMapper | undefined;
}

/**
 * Binds `machine` to UDP for a peer registering with `server`: an IPv6 socket when this host
 * has an IPv6 address to offer (only with the default `--bind`: a concrete one asks for that
 * address alone) or the server is IPv6 (then it is required), on the IPv4 socket's port when
 * that is free (one dual-stack socket). `onStep` runs after every driver step.
 */
export function bindPeer(
  o: SocketOptions,
  server: Endpoint,
  machine: SansIo,
  onStep: () => void,
): BoundPeer {
  const serverV6 = server.hostname.includes(":");
  const v6 = o.ipv6 === false || o.bind !== "0.0.0.0" ? [] : ipv6Addresses();
  const ipv6 = serverV6 || v6.length > 0
    ? { hostname: "::", port: o.port, optional: !serverV6 }
    : undefined;
  let driver: UdpDriver;
  try {
    driver = UdpDriver.bind(o.bind, o.port, machine, { onStep, filter: o.filter, ipv6 });
  } catch (e) {
    throw new JoinError((e as Error).message);
  }
  if (driver.ipv6Error) {
    log.warning("No IPv6 socket, IPv6 peers will be relayed: {why}", { why: driver.ipv6Error });
  }
  const local = driver.localAddr;
  return {
    driver,
    privateEndpoints: withIPv6(privateEndpoints(o.bind, local.port), v6, driver.localAddr6?.port),
    portmap: portMapper(o, local.port, server),
  };
}

/** The LAN IPv4 endpoints on `port` (the `--bind` address alone when it names one). */
function privateEndpoints(bind: string, port: number): Endpoint[] {
  if (bind !== "0.0.0.0") return [{ hostname: bind, port }];
  try {
    return Deno.networkInterfaces()
      .filter((i) =>
        i.family === "IPv4" && !i.address.startsWith("127.") &&
        !i.address.startsWith("169.254.")
      )
      .map((i) => ({ hostname: i.address, port }))
      .filter((e, i, all) => all.findIndex((o) => o.hostname === e.hostname) === i)
      .slice(0, MAX_PRIVATE_ENDPOINTS);
  } catch {
    return [];
  }
}

/**
 * This host's IPv6 addresses worth offering to peers, global ones first, then ULAs (fc00::/7,
 * LAN only); never loopback, link-local (fe80::/10: useless without an interface), multicast
 * or IPv4-mapped ones. At most {@link MAX_IPV6_ENDPOINTS}.
 */
export function ipv6Addresses(
  interfaces: () => Deno.NetworkInterfaceInfo[] = Deno.networkInterfaces,
): string[] {
  let list: Deno.NetworkInterfaceInfo[];
  try {
    list = interfaces();
  } catch {
    return [];
  }
  const global: string[] = [], ula: string[] = [];
  for (const i of list) {
    if (i.family !== "IPv6") continue;
    const b = parseIPv6(i.address.split("%")[0]!);
    if (!b || b[0] === 0xff || (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80)) continue;
    if (b.subarray(0, 10).every((x) => x === 0)) continue; // ::, ::1, IPv4-mapped/compatible
    const a = formatIPv6(b);
    const into = (b[0]! & 0xfe) === 0xfc ? ula : global;
    if (!global.includes(a) && !ula.includes(a)) into.push(a);
  }
  return [...global, ...ula].slice(0, MAX_IPV6_ENDPOINTS);
}

/** The HELLO's private list: LAN IPv4 endpoints first, then the IPv6 ones, within the limit. */
function withIPv6(v4: Endpoint[], v6: string[], port6: number | undefined): Endpoint[] {
  const six = port6 === undefined ? [] : v6.map((hostname) => ({ hostname, port: port6 }));
  return [...v4.slice(0, MAX_PRIVATE_ENDPOINTS - six.length), ...six];
}

/**
 * A port mapper for the socket bound on `port`, unless port mapping is off (`--no-portmap`,
 * `--relay-only`), the server is on this machine (loopback: every peer is here too, no router
 * between them), or there is no non-loopback IPv4 address to map.
 */
function portMapper(o: SocketOptions, port: number, server: Endpoint): PortMapper | undefined {
  if (o.portmap === false || o.relayOnly) return undefined;
  if (server.hostname.startsWith("127.") || server.hostname === "::1") return undefined;
  const gw = findGateway(o.bind);
  if (!gw) return undefined;
  log.debug("Port mapping: gateway {gateway}, local address {local}", {
    gateway: gw.gateway ?? "unknown (UPnP only)",
    local: gw.localAddress,
  });
  return new PortMapper({
    gateway: gw.gateway,
    localAddress: gw.localAddress,
    prefixLength: gw.prefixLength,
    localPort: port,
    random: systemRandom,
  });
}
