/**
 * The sealed control frames a pair exchanges besides data, ACKs, probes and birthday
 * agreement (see `lib/wire/peer_frame.ts` for their bytes):
 *
 * - ANNOUNCE: we completed the peer's handshake attempt; it may stop repeating message 3 and
 *   seal with the new key.
 * - CANDIDATES: our extra addresses (STUN reflexive ones the server's view lacks, the router's
 *   port mapping), for its path machine.
 * - NAT: our NAT's mapping and recent ports, for birthday searches.
 * - RELAYS: our RTTs to the server and to our supernode, for the relay choice.
 *
 * {@link ControlFrames} keeps what we still owe the peer (everything is told again whenever a
 * new path starts) and what it told us. Pure: it builds frames and reads frames; the remote
 * peer seals and sends them.
 *
 * @module
 */
import type { NatInfo } from "./path/birthday.ts";
import type { PeerRelays, RelaysFrame } from "./supernodes.ts";
import { type Endpoint, isUsableCandidate } from "../wire/address.ts";
import { idHex } from "../wire/header.ts";
import { type InnerFrame, InnerKind, NatMapping } from "../wire/peer_frame.ts";

/** A control frame (ANNOUNCE, CANDIDATES, NAT or RELAYS). */
export type ControlFrame = Extract<
  InnerFrame,
  {
    kind:
      | typeof InnerKind.Announce
      | typeof InnerKind.Candidates
      | typeof InnerKind.Nat
      | typeof InnerKind.Relays;
  }
>;

/** A frame we owe the peer, and whether it goes relayed whatever the path (NAT, RELAYS). */
export interface Owed {
  /** The frame. */
  frame: ControlFrame;
  /** True: through the relay; false: along the current path. */
  relayed: boolean;
}

/** What we tell the peer, read when a frame is built. */
export interface OurFacts {
  /** Our extra candidates. */
  candidates(): Endpoint[];
  /** Our NAT's mapping. */
  nat(): NatInfo;
  /** Our relay RTTs (null: none measured). */
  relays(): RelaysFrame | null;
}

/** What a control frame from the peer asks of the remote peer. */
export type ControlEffect =
  /** Our handshake attempt `attempt` is confirmed. */
  | { kind: "confirmed"; attempt: number }
  /** Endpoints to add to the path machine's candidates (only usable ones). */
  | { kind: "candidates"; endpoints: Endpoint[] }
  /** Nothing beyond what was recorded ({@link ControlFrames.peerNat}, `peerRelays`). */
  | { kind: "recorded" };

/** The control frames of one pair: what we owe, what it told us. */
export class ControlFrames {
  /** The peer's NAT mapping, as it told us (NAT frame). */
  peerNat: NatInfo | null = null;
  /** The peer's RTTs to the server and to its supernode (RELAYS frame), once told. */
  peerRelays: PeerRelays | null = null;
  /** The peer's handshake attempt we completed and still have to confirm (0: none). */
  #confirm = 0;
  #candidates = false;
  #nat = true;
  #relays = true;

  /** A path starts: our candidates (when we have some), NAT and RTTs are owed again. */
  pathStarted(haveCandidates: boolean): void {
    this.#candidates = haveCandidates;
    this.#nat = true;
    this.#relays = true;
  }

  /** We completed the peer's handshake attempt `attempt`: an ANNOUNCE is owed. */
  owe(attempt: number): void {
    this.#confirm = attempt;
  }

  /** Everything owed, in order (ANNOUNCE, CANDIDATES, NAT, RELAYS), taken off the debts. */
  takeOwed(ours: OurFacts): Owed[] {
    const out: Owed[] = [];
    if (this.#confirm) {
      out.push({ frame: { kind: InnerKind.Announce, attempt: this.#confirm }, relayed: false });
      this.#confirm = 0;
    }
    if (this.#candidates) push(out, this.candidates(ours, true));
    if (this.#nat) push(out, this.nat(ours, true));
    if (this.#relays) push(out, this.relays(ours, true));
    return out;
  }

  /** Our CANDIDATES (null: none, or not `sendable` now); no longer owed either way. */
  candidates(ours: OurFacts, sendable: boolean): Owed | null {
    this.#candidates = false;
    const endpoints = ours.candidates();
    if (!sendable || endpoints.length === 0) return null;
    return { frame: { kind: InnerKind.Candidates, endpoints }, relayed: false };
  }

  /** Our NAT frame (null: mapping unknown, or not `sendable` now); no longer owed either way. */
  nat(ours: OurFacts, sendable: boolean): Owed | null {
    this.#nat = false;
    const nat = ours.nat();
    if (!sendable || nat.mapping === NatMapping.Unknown) return null;
    return { frame: { kind: InnerKind.Nat, ...nat }, relayed: true };
  }

  /** Our RELAYS frame (null: nothing measured, or not `sendable` now); no longer owed. */
  relays(ours: OurFacts, sendable: boolean): Owed | null {
    this.#relays = false;
    const f = ours.relays();
    if (!sendable || !f) return null;
    return { frame: f, relayed: true };
  }

  /** A control frame from the peer. */
  receive(f: ControlFrame): ControlEffect {
    switch (f.kind) {
      case InnerKind.Announce:
        return { kind: "confirmed", attempt: f.attempt };
      case InnerKind.Candidates:
        return { kind: "candidates", endpoints: f.endpoints.filter((e) => isUsableCandidate(e)) };
      case InnerKind.Nat:
        this.peerNat = { mapping: f.mapping, ports: f.ports };
        return { kind: "recorded" };
      case InnerKind.Relays:
        this.peerRelays = {
          serverRtt: f.serverRtt,
          supernode: idHex(f.supernode),
          supernodeRtt: f.supernodeRtt,
        };
        return { kind: "recorded" };
    }
  }
}

function push(out: Owed[], o: Owed | null): void {
  if (o) out.push(o);
}
