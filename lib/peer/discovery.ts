/**
 * How a joining peer learns about its own addresses beyond what the server sees: the STUN
 * probe (the p2p server, which answers STUN on its port and names a second port of its address
 * (ALT-PORT) or, with `--alt-host`, a second address, plus any `--stun` servers: two answers give
 * the NAT mapping verdict and the reflexive addresses; two ports of one address that agree give
 * "not per port", told to peers as endpoint-independent, see `docs/protocol.md` 11.7) and the router's port mapping (NAT-PMP, PCP, UPnP IGD). What they yield:
 * our NAT's mapping (for birthday searches) and up to four extra candidates (a granted mapping
 * first, then reflexive addresses the server's view lacks), which the client tells its peers.
 *
 * A peer offering to be a supernode holds back asking the server's other address (or port)
 * until the server's reachability check (a REACH from there) came or had its chance
 * ({@link REACH_WAIT} after registering): asking first would open an address-restricted NAT to
 * it and let the check pass.
 *
 * @module
 */
import type { NatInfo } from "./path/birthday.ts";
import { MappingEvidence } from "./mapping_evidence.ts";
import { SYMMETRIC_NOTICE } from "../nat/stun_probe.ts";
import { StunProbe } from "../nat/stun_probe.ts";
import type {
  HttpResult,
  PortMapHttp,
  PortMapper,
  PortMapProtocol,
} from "../nat/portmap/mapper.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { MAX_NAT_PORTS, NatMapping } from "../wire/peer_frame.ts";
import { type Transmit } from "../wire/transmit.ts";

/**
 * How long after registering a peer offering to be a supernode waits for the server's
 * reachability check (a REACH from the server's other address) before its STUN probe asks that
 * other address too, in ms.
 */
export const REACH_WAIT = 750;
/** Most extra candidates told to peers. */
const MAX_EXTRA = 4;

/** What {@link Discovery} works with. */
export interface DiscoveryOptions {
  /** The p2p server (asked first) and the `--stun` servers. */
  readonly stun: readonly Endpoint[];
  /** Randomness for STUN transaction ids. */
  readonly random: (n: number) => Uint8Array;
  /** Hold back the server's other address until {@link Discovery.releaseOther}. */
  readonly holdOther: boolean;
  /** The router's port mapper, if mapping is on. */
  readonly portmap?: PortMapper;
  /** We never reveal addresses: no extra candidates. */
  readonly relayOnly: boolean;
  /** Our registration with the server: where it sees us (not worth telling peers again). */
  readonly server: { readonly public: Endpoint | undefined };
}

/** What discovery reports, in the order it learnt it. */
export type DiscoveryEvent =
  /** Our NAT's mapping is known ({@link Discovery.nat}): tell the peers. */
  | { type: "nat" }
  /** The extra candidates changed and are not empty ({@link Discovery.candidates}): tell them. */
  | { type: "candidates" }
  /** The probe's verdict came with something to tell the user (a symmetric NAT). */
  | { type: "mapping-notice"; message: string }
  /** The router granted a port mapping. */
  | { type: "port-mapped"; protocol: PortMapProtocol; external: Endpoint };

/**
 * The STUN probe and the port mapper of one peer, and what they found.
 *
 * Driving it: after {@link start}, any `handle*` call, {@link releaseOther} or {@link stop},
 * drain {@link pollTransmit} until undefined (and {@link pollHttp}, whose answers come back
 * through {@link handleHttp}), then {@link pollEvent} until undefined; then read
 * {@link nextTimeout}. Events are taken from the probe and the mapper as they are polled, so
 * {@link nat} and {@link candidates} read during the handling of one event describe that event.
 */
export class Discovery {
  #o: DiscoveryOptions;
  #probe: StunProbe;
  /** When the probe may ask the server's other address (see {@link REACH_WAIT}). */
  #releaseAt: number | undefined;
  #released = false;
  #nat: NatInfo = { mapping: NatMapping.Unknown, ports: [] };
  /** The STUN verdict and what peers saw, combined. */
  #evidence = new MappingEvidence();
  /** What STUN servers reported, and the router's port mapping: the sources of #extra. */
  #reflexive: Endpoint[] = [];
  #mapped: Endpoint | undefined;
  /** Whether the last extra candidates included {@link #mapped}. */
  #mappedTold = false;
  /** Addresses peers may reach us at that the server's introductions do not carry. */
  #extra: Endpoint[] = [];
  #events: DiscoveryEvent[] = [];

  /** A probe of `options.stun` and the mapper, neither started. */
  constructor(options: DiscoveryOptions) {
    this.#o = options;
    this.#probe = new StunProbe({
      servers: options.stun,
      random: options.random,
      holdOther: options.holdOther,
    });
  }

  /** Our NAT's mapping as STUN told it (unknown until the probe's verdict). */
  get nat(): NatInfo {
    return this.#nat;
  }

  /** Extra candidates to tell peers (at most four). */
  get candidates(): Endpoint[] {
    return this.#extra;
  }

  /** True when the port mapper has nothing pending (after {@link stop}: its deletions are done). */
  get mapperIdle(): boolean {
    return this.#o.portmap?.idle ?? true;
  }

  /** Starts the probe and the mapper. */
  start(now: number): void {
    this.#probe.start(now);
    this.#o.portmap?.start(now);
  }

  /** Deletes the router's mapping (leaving); only the mapper runs on. */
  stop(now: number): void {
    this.#o.portmap?.stop(now);
  }

  /** A STUN answer; false when no request of ours asked for it. */
  handleStun(now: number, from: Endpoint, data: Uint8Array): boolean {
    return this.#probe.handleDatagram(now, from, data);
  }

  /** A datagram that may be the router's (NAT-PMP, PCP, SSDP); false when it is not. */
  handleMapper(now: number, from: Endpoint, data: Uint8Array): boolean {
    return this.#o.portmap?.handleDatagram(now, from, data) ?? false;
  }

  /** The mapper's next HTTP request (UPnP). */
  pollHttp(): PortMapHttp | undefined {
    return this.#o.portmap?.pollHttp();
  }

  /** The answer to the mapper's HTTP request `id`. */
  handleHttp(now: number, id: number, res: HttpResult): void {
    this.#o.portmap?.handleHttp(now, id, res);
  }

  /**
   * A peer at `peer` saw our main socket's probe come from `observed` (its PROBE_ACK): evidence
   * of our mapping (see `lib/peer/mapping_evidence.ts`). A changed mapping is told to peers.
   */
  handlePeerView(observed: Endpoint, peer: Endpoint): void {
    const before = this.#evidence.mapping;
    const server = this.#o.stun[0]?.hostname ?? "";
    if (!this.#evidence.peerView(observed, peer, this.#o.server.public, server)) return;
    const after = this.#evidence.mapping;
    if (after === before) return;
    if (after === NatMapping.AddressDependent) {
      this.#events.push({ type: "mapping-notice", message: SYMMETRIC_NOTICE });
    }
    this.#nat = { mapping: after, ports: this.#nat.ports };
    this.#events.push({ type: "nat" });
  }

  /** How our mapping is known (for tests and the user). */
  get mappingBasis(): string {
    return this.#evidence.basis;
  }

  /** Our registration with the server is up: the reachability check has its chance now. */
  handleRegistered(now: number): void {
    if (!this.#released) this.#releaseAt ??= now + REACH_WAIT;
    // Where the server sees us decides whether a router's mapping is worth telling.
    if (this.#mapped && this.#mappedTold !== this.#mappedCounts()) this.#extraFrom(this.#reflexive);
  }

  /**
   * Lets the probe ask the server's other address: the reachability check came, or had its
   * chance.
   */
  releaseOther(now: number): void {
    if (this.#released) return;
    this.#released = true;
    this.#releaseAt = undefined;
    this.#probe.releaseOther(now);
  }

  /** When the mapper's timers are next due (the only ones left after leaving). */
  nextMapperTimeout(): number | undefined {
    return this.#o.portmap?.nextTimeout();
  }

  /** The mapper's timers (they run on after leaving, for the deletions). */
  handleMapperTimeout(now: number): void {
    this.#o.portmap?.handleTimeout(now);
  }

  /** When {@link handleTimeout} next has work (the mapper's timers apart). */
  nextTimeout(): number | undefined {
    const t = Math.min(this.#probe.nextTimeout() ?? Infinity, this.#releaseAt ?? Infinity);
    return t === Infinity ? undefined : t;
  }

  /** The probe's timers and the end of the wait for the reachability check. */
  handleTimeout(now: number): void {
    if (this.#releaseAt !== undefined && now >= this.#releaseAt) this.releaseOther(now);
    this.#probe.handleTimeout(now);
  }

  /** The next datagram to send: a STUN request, or one to the router. */
  pollTransmit(): Transmit | undefined {
    return this.#probe.pollTransmit() ?? this.#o.portmap?.pollTransmit();
  }

  /** The next event, if any. */
  pollEvent(): DiscoveryEvent | undefined {
    while (this.#events.length === 0 && this.#pull()) { /* one source event at a time */ }
    return this.#events.shift();
  }

  /** Takes one event from the probe or the mapper and acts on it; false when there is none. */
  #pull(): boolean {
    const e = this.#probe.pollEvent();
    if (e) {
      const before = this.#evidence.mapping;
      this.#evidence.stun(e.mapping);
      // "Not per port" goes out as endpoint-independent (docs/protocol.md 11.7).
      const after = this.#evidence.mapping;
      if (e.notice && before !== NatMapping.AddressDependent) {
        this.#events.push({ type: "mapping-notice", message: e.notice });
      }
      this.#nat = { mapping: after, ports: this.#probe.mappedPorts().slice(0, MAX_NAT_PORTS) };
      this.#events.push({ type: "nat" });
      this.#extraFrom(e.reflexive);
      return true;
    }
    const m = this.#o.portmap?.pollEvent();
    if (!m) return false;
    if (m.type === "mapped") {
      this.#mapped = m.external;
      this.#events.push({ type: "port-mapped", protocol: m.protocol, external: m.external });
    } else if (m.type === "lost") this.#mapped = undefined;
    if (m.type !== "none") this.#extraFrom(this.#reflexive);
    return true;
  }

  /**
   * True when the router's mapping is worth telling peers: it is on the public IP the server
   * sees us at. A NAT-PMP answer has no nonce (a LAN neighbour can forge one), and a router
   * behind another NAT maps an address nobody can reach; peers would probe it, unproven.
   */
  #mappedCounts(): boolean {
    const seen = this.#o.server.public;
    return this.#mapped !== undefined && seen?.hostname === this.#mapped.hostname;
  }

  /**
   * The extra candidates from reflexive addresses (and the router's mapping): those the
   * server's view lacks, each once, at most {@link MAX_EXTRA}.
   */
  #extraFrom(reflexive: Endpoint[]): void {
    if (this.#o.relayOnly) return;
    this.#reflexive = reflexive;
    const seen = this.#o.server.public;
    this.#mappedTold = this.#mappedCounts();
    const all = this.#mappedTold ? [this.#mapped!, ...reflexive] : reflexive;
    const extra = all.filter((r, i) =>
      (!seen || !sameEndpoint(r, seen)) && all.findIndex((o) => sameEndpoint(o, r)) === i
    ).slice(0, MAX_EXTRA);
    this.#extra = extra;
    if (extra.length > 0) this.#events.push({ type: "candidates" });
  }
}
