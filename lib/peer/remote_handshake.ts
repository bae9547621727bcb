/**
 * The handshake side of one remote peer: HANDSHAKE frames in (the cookie check of direct
 * copies, the {@link SecureLink}'s verdict, where the peer was seen), handshake messages out
 * ({@link HandshakeTransport}: relayed, and directly with cookies that prove paths). What the
 * remote must act on (a failure, two identities, our handshake completed, a confirmation owed)
 * comes back as a {@link HandshakeStep}; the identity judgement and the path's start stay with
 * {@link RemotePeer} (`lib/peer/remote.ts`). Its datagrams go out through the remote's outbox:
 * straight to an endpoint, or through the relay that reaches the peer now. Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import type { HandshakeFrame } from "../wire/peer_frame.ts";
import type { TokenBucket } from "../core/limits.ts";
import { type FailureGate, gateKey } from "./handshake/failure_gate.ts";
import type { Half } from "./handshake/handshake.ts";
import type { SecureLink } from "./handshake/secure_link.ts";
import type { HandshakeTransport, Proof, RouteView } from "./handshake/transport.ts";
import type { Candidate, PathMachine } from "./path/path.ts";
import type { RemoteOutbox } from "./remote_outbox.ts";
import type { RemoteRoute } from "./remote_route.ts";

/** What {@link RemoteHandshake.handle} leaves to the remote. */
export type HandshakeStep =
  /** Dropped before the link saw it, counted under `reason`. */
  | { kind: "dropped"; reason: string }
  /** It did not authenticate. */
  | { kind: "failed" }
  /** The peer used two identities: refuse it. */
  | { kind: "mismatch"; first: Uint8Array; second: Uint8Array }
  /** Our handshake completed with `half`, on the direct path `proven` if it proved one. */
  | { kind: "established"; half: Half; proven: Proof | null }
  /** We completed the peer's handshake `attempt`: an ANNOUNCE is owed. */
  | { kind: "owe"; attempt: number }
  /** Nothing more to do (ignored, answered, or a repeat). */
  | { kind: "none" };

/** Where the peer is, as the handshake's route needs it (see {@link RouteView}). */
export interface HandshakePlace {
  /** Relayed only (ours or the peer's setting). */
  relayOnly: boolean;
  /** The introduction's candidates (used while there is no path machine). */
  candidates: readonly Candidate[];
  /** The path machine, once it started. */
  path: PathMachine | null;
}

/** What a {@link RemoteHandshake} sends through and reads of its remote. */
export interface HandshakeParts {
  /** The pair's link. */
  readonly secure: SecureLink;
  /** How handshake messages travel (relayed, and directly with cookies). */
  readonly transport: HandshakeTransport;
  /** Where direct datagrams are queued. */
  readonly tx: RemoteOutbox;
  /** The path (once started) and the relay that reaches the peer now. */
  readonly route: RemoteRoute;
  /** Where the peer is (relay-only, the introduction's candidates). */
  readonly place: () => Omit<HandshakePlace, "path">;
}

/**
 * One remote's handshake traffic. Its datagrams are queued on the remote's outbox at once.
 */
export class RemoteHandshake {
  #p: HandshakeParts;
  #secure: SecureLink;
  #route: HandshakeTransport;
  /** Where the peer's handshake messages last came from directly, before a path existed. */
  #seenAt: { addr: Endpoint; via: number } | null = null;

  /** Handshake traffic made of `parts`. */
  constructor(parts: HandshakeParts) {
    this.#p = parts;
    this.#secure = parts.secure;
    this.#route = parts.transport;
  }

  /** Moves what the transport queued into the remote's outbox. */
  #out(): void {
    for (let t = this.#route.pollTransmit(); t; t = this.#route.pollTransmit()) {
      if (t.to) this.#p.tx.direct(t.to, t.data, t.via);
      else this.#p.route.relay(t.data);
    }
  }

  /** Where the peer is now. */
  #place(): HandshakePlace {
    return { ...this.#p.place(), path: this.#p.route.path };
  }

  /** Takes where the peer was last seen directly before a path existed (for a new path). */
  takeSeen(): { addr: Endpoint; via: number } | null {
    const seen = this.#seenAt;
    this.#seenAt = null;
    return seen;
  }

  /** Queues the handshake messages the link has to send now. */
  sendPending(now: number): void {
    const place = this.#place();
    for (let h = this.#secure.poll(); h; h = this.#secure.poll()) {
      this.#route.send(now, h, viewOf(place));
    }
    this.#out();
  }

  /**
   * Handles a HANDSHAKE frame, relayed (`from` null) or sent directly from `from` to our socket
   * `via`: a direct message 2 without a copy's cookie spends from `uncookied`; a source whose
   * messages failed too often (`gate`) is dropped before any cryptography. `heard` in the
   * answer: the frame was the peer's (it counts as a sign of life).
   */
  handle(
    now: number,
    f: HandshakeFrame,
    from: Endpoint | null,
    via: number,
    uncookied: TokenBucket,
    gate: FailureGate,
  ): { step: HandshakeStep; heard: boolean } {
    const r = this.#handle(now, f, from, via, uncookied, gate);
    this.#out();
    return r;
  }

  #handle(
    now: number,
    f: HandshakeFrame,
    from: Endpoint | null,
    via: number,
    uncookied: TokenBucket,
    gate: FailureGate,
  ): { step: HandshakeStep; heard: boolean } {
    const key = gateKey(from, f.from);
    if (!gate.allows(now, key)) {
      return { step: { kind: "dropped", reason: "handshake-limited" }, heard: false };
    }
    const place = this.#place();
    if (
      from && f.stage === 2 && !this.#route.answersCopy(f.attempt, f.cookie ?? 0, from, via) &&
      !uncookied.take(now, 1)
    ) {
      return { step: { kind: "dropped", reason: "handshake-uncookied" }, heard: false };
    }
    const r = this.#secure.handle(now, f.stage, f.attempt, f.message);
    if (r.kind === "failed") gate.failed(now, key);
    const heard = r.kind !== "ignored" && r.kind !== "failed" && r.kind !== "mismatch";
    if (from && heard) {
      // The peer's messages come from its NAT's mapping towards us: worth probing.
      if (place.path) place.path.onPeerSeen(now, from, via);
      else this.#seenAt = { addr: from, via };
    }
    switch (r.kind) {
      case "failed":
        return { step: { kind: "failed" }, heard };
      case "mismatch":
        return { step: { kind: "mismatch", first: r.first, second: r.second }, heard };
      case "answer":
        this.#route.answer(
          now,
          { attempt: r.attempt, message: r.message, cookie: f.cookie ?? 0 },
          from,
          via,
          viewOf(place),
        );
        break;
      case "sending": {
        const proven = this.#route.proof(now, f.attempt, f.cookie ?? 0, from, via);
        return { step: { kind: "established", half: r.half, proven }, heard };
      }
      case "again": {
        const proven = this.#route.proof(now, f.attempt, f.cookie ?? 0, from, via);
        if (proven) place.path?.onHandshakeDirect(now, proven.addr, proven.via, proven.rtt);
        break;
      }
      case "receiving":
      case "reconfirm":
        return {
          step: { kind: "owe", attempt: r.kind === "receiving" ? r.half.attempt : r.attempt },
          heard,
        };
    }
    return { step: { kind: "none" }, heard };
  }
}

/** What the handshake route needs to know of the peer now. */
function viewOf(place: HandshakePlace): RouteView {
  return {
    relayOnly: place.relayOnly,
    candidates: place.path?.candidates ?? place.candidates,
    path: place.path,
  };
}
