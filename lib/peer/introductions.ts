/**
 * What an INTRO from a rendezvous point (the server, or a supernode of the room) tells a
 * joining peer about another member, as its remote peer needs it ({@link Introduction}): the
 * pair's epoch, whether either side is relay-only, and which of the endpoints it names are
 * worth punching to. Only unicast endpoints are taken (a defence against a hostile server);
 * link-local IPv6 is useless without an interface; without an IPv6 socket no IPv6 endpoint is.
 *
 * Private endpoints (LAN IPv4, IPv6 ULA) are for peers behind the same NAT, and anyone in the
 * room can claim any address as one: every member would then send handshake copies and probes
 * to it on every join (a reflection through the room). So they are taken only when the public
 * addresses say the two peers share a site ({@link sameSite}): the same public IP as the server
 * sees it, or both in the shared CGNAT range 100.64.0.0/10.
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
  local: LocalSite = { public: undefined, privates: [] },
): Introduction {
  return {
    id: m.id,
    epoch: m.epoch,
    relayOnly: (m.flags & FLAG_RELAY_ONLY) !== 0,
    candidates: candidatesOf(m, ipv6, local),
    source: supernode !== undefined ? `supernode:${supernode}` : "server",
  };
}

/**
 * The candidates an INTRO names. Private-list addresses are `private` (IPv4, IPv6 ULA
 * fc00::/7) or `ipv6` (global IPv6); link-local IPv6 (fe80::/10, unusable without an
 * interface) is skipped. Without an IPv6 socket (`ipv6` false) IPv6 candidates are skipped.
 */
export function candidatesOf(
  m: MsgOf<typeof MsgType.Intro>,
  ipv6: boolean,
  local: LocalSite = { public: undefined, privates: [] },
): Candidate[] {
  const out: Candidate[] = [];
  let global = 0;
  for (const addr of m.privateEndpoints) {
    const kind = isUsableCandidate(addr) ? privateKind(addr.hostname) : undefined;
    if (kind === "private" && !sameSite(m.publicEndpoint, addr, local)) continue;
    // Global IPv6 addresses can be anyone's: a few per claimer are worth trying.
    if (kind === "ipv6" && ++global > MAX_GLOBAL_CLAIMS) continue;
    if (kind && (ipv6 || !isIPv6(addr))) out.push({ addr, kind });
  }
  const pub = m.publicEndpoint;
  if (pub && isUsableCandidate(pub, true) && (ipv6 || !isIPv6(pub))) {
    out.push({ addr: pub, kind: "public" });
  }
  return out;
}

/** Most global IPv6 addresses taken from one peer's private list (a host has one or two). */
export const MAX_GLOBAL_CLAIMS = 2;

/** Where we are, as the server sees us and as our own interfaces say. */
export interface LocalSite {
  /** Our public endpoint as the server saw it (WELCOME's `observed`), if registered. */
  public: Endpoint | undefined;
  /** Our own private endpoints. */
  privates: readonly Endpoint[];
}

/**
 * True when the private endpoint `addr` of a peer whose public endpoint is `peerPublic` may be
 * on our site: the server sees us both at one public IP, or `addr` and one of ours are in the
 * shared CGNAT range (one carrier's network).
 */
export function sameSite(peerPublic: Endpoint | null, addr: Endpoint, local: LocalSite): boolean {
  if (peerPublic && local.public && peerPublic.hostname === local.public.hostname) return true;
  return inCgnat(addr.hostname) && local.privates.some((e) => inCgnat(e.hostname));
}

/** True for an IPv4 address in 100.64.0.0/10 (RFC 6598, shared address space). */
function inCgnat(hostname: string): boolean {
  const parts = hostname.split(".");
  if (parts.length !== 4) return false;
  return Number(parts[0]) === 100 && (Number(parts[1]) & 0xc0) === 64;
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
