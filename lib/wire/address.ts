/**
 * Addresses on the wire: the {@link Endpoint} type (a literal IP and a UDP port), parsing and
 * formatting of IPv4 and IPv6 literals (RFC 5952 text for IPv6, the dotted form for IPv4-mapped
 * addresses), and which endpoints are worth probing as a peer's candidates. Pure.
 *
 * @module
 */
import { parseIPv4, parseIPv6 } from "../core/ip.ts";

export { parseIPv4, parseIPv6 };

/**
 * A UDP endpoint with a literal IP address, or a stream connection (TCP or TLS) that carries
 * the same datagrams (`stream` set; `docs/protocol.md` 22).
 */
export interface Endpoint {
  /** Literal IPv4 or IPv6 address. */
  hostname: string;
  /** UDP port, 0 to 65535 (a stream's: the TCP port of its other end). */
  port: number;
  /**
   * Set when this is a stream connection rather than UDP: which one (on a server, a connection
   * id; on a peer, its stream to a server). Never on the wire: an endpoint a message carries is
   * a UDP one, and two endpoints with different `stream` values are different addresses.
   */
  stream?: number;
}

/**
 * True when `ep` is worth probing as a peer's candidate: a unicast address with a port.
 * Unspecified, multicast, broadcast, reserved and IPv4-mapped IPv6 addresses never are; loopback
 * only when `loopback` is set (the server observed a peer on loopback, so both run on one host).
 */
export function isUsableCandidate(ep: Endpoint, loopback = false): boolean {
  if (ep.port === 0) return false;
  const v4 = parseIPv4(ep.hostname);
  if (v4) {
    const a = v4[0]!;
    if (a === 0 || a >= 224) return false; // 0/8, multicast 224/4, reserved 240/4, broadcast
    return loopback || a !== 127;
  }
  const v6 = parseIPv6(ep.hostname);
  if (!v6) return false;
  if (v6[0] === 0xff) return false; // multicast
  // IPv4-mapped (::ffff:a.b.c.d): sent to the IPv4 address, loopback too; IPv4 is family 4.
  if (v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) {
    return false;
  }
  const zeroUntil15 = v6.subarray(0, 15).every((b) => b === 0);
  if (zeroUntil15 && v6[15] === 0) return false; // ::
  if (zeroUntil15 && v6[15] === 1) return loopback; // ::1
  return true;
}

/** Formats an endpoint as `IP:PORT` (IPv6 in brackets); a stream as `tcp://IP:PORT`. */
export function formatEndpoint(ep: Endpoint): string {
  const at = ep.hostname.includes(":")
    ? `[${ep.hostname}]:${ep.port}`
    : `${ep.hostname}:${ep.port}`;
  return ep.stream === undefined ? at : `tcp://${at}`;
}

/**
 * An endpoint as text that tells every two different endpoints apart: {@link formatEndpoint},
 * with a stream's number (`tcp://IP:PORT#N`). What the server's address cookies cover.
 */
export function endpointKey(ep: Endpoint): string {
  return ep.stream === undefined ? formatEndpoint(ep) : `${formatEndpoint(ep)}#${ep.stream}`;
}

/** True when both endpoints name the same address and port (and the same stream, if one). */
export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.hostname === b.hostname && a.stream === b.stream;
}

/** Formats 16 bytes as an IPv6 address the way sockets report it (RFC 5952 compression). */
export function formatIPv6(b: Uint8Array): string {
  // IPv4-mapped (::ffff:a.b.c.d) in the dotted form sockets report.
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // Compress the longest run of zero groups.
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  const left = groups.slice(0, bestStart).join(":");
  const right = groups.slice(bestStart + bestLen).join(":");
  return `${left}::${right}`;
}
