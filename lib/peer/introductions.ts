/**
 * What an INTRO from a rendezvous point (the server, or a supernode of the room) tells a
 * joining peer about another member, as its remote peer needs it ({@link Introduction}): the
 * pair's epoch, whether either side is relay-only, and which of the endpoints it names are
 * worth punching to. Only unicast endpoints are taken (a defence against a hostile server);
 * link-local IPv6 is useless without an interface; without an IPv6 socket no IPv6 endpoint is.
 *
 * @module
 */
import type { Candidate, CandidateKind } from "./path/path.ts";
import type { Introduction } from "./remote_context.ts";
import { type Endpoint, isUsableCandidate, parseIPv6 } from "../wire/address.ts";
import { FLAG_RELAY_ONLY, type MsgOf } from "../wire/server_msg.ts";
import { type MsgType } from "../wire/header.ts";

/**
 * The introduction INTRO `m` makes, from the supernode with hex id `supernode` (undefined: the
 * server); IPv6 candidates only when we have an IPv6 socket (`ipv6`).
 */
export function introductionOf(
  m: MsgOf<typeof MsgType.Intro>,
  supernode: string | undefined,
  ipv6: boolean,
): Introduction {
  return {
    id: m.id,
    epoch: m.epoch,
    relayOnly: (m.flags & FLAG_RELAY_ONLY) !== 0,
    candidates: candidatesOf(m, ipv6),
    source: supernode !== undefined ? `supernode:${supernode}` : "server",
  };
}

/**
 * The candidates an INTRO names. Private-list addresses are `private` (IPv4, IPv6 ULA
 * fc00::/7) or `ipv6` (global IPv6); link-local IPv6 (fe80::/10, unusable without an
 * interface) is skipped. Without an IPv6 socket (`ipv6` false) IPv6 candidates are skipped.
 */
export function candidatesOf(m: MsgOf<typeof MsgType.Intro>, ipv6: boolean): Candidate[] {
  const out: Candidate[] = [];
  for (const addr of m.privateEndpoints) {
    const kind = isUsableCandidate(addr) ? privateKind(addr.hostname) : undefined;
    if (kind && (ipv6 || !isIPv6(addr))) out.push({ addr, kind });
  }
  const pub = m.publicEndpoint;
  if (pub && isUsableCandidate(pub, true) && (ipv6 || !isIPv6(pub))) {
    out.push({ addr: pub, kind: "public" });
  }
  return out;
}

/** True for an IPv6 endpoint. */
export function isIPv6(ep: Endpoint): boolean {
  return ep.hostname.includes(":");
}

/** The kind of an address from a peer's private list; undefined when it is of no use. */
function privateKind(hostname: string): CandidateKind | undefined {
  const b = hostname.includes(":") ? parseIPv6(hostname) : null;
  if (!b) return "private";
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return undefined; // link-local fe80::/10
  if ((b[0]! & 0xfe) === 0xfc) return "private"; // ULA fc00::/7: a LAN
  return "ipv6";
}
