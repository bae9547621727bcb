/**
 * Our NAT's mapping from all the evidence a peer has: the STUN probe's verdict and what peers
 * saw (the `observed` endpoint of a PROBE_ACK: where a peer at another address than the server
 * received our main socket's probe). It decides the mapping told to peers in NAT frames
 * (`docs/protocol.md` 11.7), which birthday probing reads.
 *
 * - STUN servers at two addresses that disagree, or two ports of one address that disagree, prove
 *   a mapping per destination ("address-dependent" on the wire): final.
 * - Two addresses that agree prove endpoint-independent mapping: final (a peer seeing another
 *   port later means our NAT rebound the mapping, or a peer lied; neither is evidence).
 * - Two ports of one address that agree ("not-port-dependent") leave an address-dependent-only
 *   mapping possible. A peer at another IP address that sees us at the very endpoint the server
 *   sees proves endpoint-independent mapping; one that sees us at another port of our public
 *   address proves a mapping per destination host (address-dependent), which makes us the hard
 *   side of a birthday search instead of an easy side that cannot be found.
 * - Without a STUN verdict (a server without its second port, no `--stun`), a peer's view alone
 *   decides the same way.
 *
 * Views at another address than our public one (a peer on our LAN, behind our CGNAT, over
 * IPv6) tell nothing about the NAT and are ignored, as are views from a peer at the server's
 * own address. Pure.
 *
 * @module
 */
import type { ProbeMapping } from "../nat/stun_probe.ts";
import type { Endpoint } from "../wire/address.ts";
import { NatMapping } from "../wire/peer_frame.ts";

/** A NAT mapping value of the wire (NAT frames). */
export type WireMapping = (typeof NatMapping)[keyof typeof NatMapping];

/** What is known of our mapping, and how. */
export type MappingBasis =
  | "none"
  /** STUN: two ports of one address agreed (an address-dependent mapping is still possible). */
  | "not-port-dependent"
  /** Proven, by STUN or by a peer's view. */
  | "proven";

/** The combination of a STUN verdict and peers' views; see the module documentation. */
export class MappingEvidence {
  #stun: ProbeMapping | null = null;
  #peer: "same" | "other" | null = null;

  /** The STUN probe's verdict arrived. */
  stun(verdict: ProbeMapping): void {
    this.#stun = verdict;
  }

  /**
   * A peer at `peer` saw our main socket at `observed`; `server` is where the server sees us,
   * `serverHost` the server's address. Returns whether it was evidence (counted).
   */
  peerView(
    observed: Endpoint,
    peer: Endpoint,
    server: Endpoint | undefined,
    serverHost: string,
  ): boolean {
    if (!server || observed.hostname !== server.hostname) return false;
    if (peer.hostname === serverHost || peer.hostname === server.hostname) return false;
    // A mapping per destination, once seen, stays seen.
    if (this.#peer !== "other") this.#peer = observed.port === server.port ? "same" : "other";
    return true;
  }

  /** The mapping to tell peers. */
  get mapping(): WireMapping {
    const s = this.#stun;
    if (s === "address-dependent") return NatMapping.AddressDependent;
    if (s === "endpoint-independent") return NatMapping.EndpointIndependent;
    if (this.#peer === "other") return NatMapping.AddressDependent;
    if (this.#peer === "same" || s === "not-port-dependent") return NatMapping.EndpointIndependent;
    return NatMapping.Unknown;
  }

  /** How {@link mapping} is known. */
  get basis(): MappingBasis {
    const s = this.#stun;
    if (s === "address-dependent" || s === "endpoint-independent" || this.#peer) return "proven";
    return s === "not-port-dependent" ? "not-port-dependent" : "none";
  }
}
