/**
 * How the handshake messages of one remote peer travel (see `lib/peer/handshake/handshake.ts` for what they
 * are): through the relay, and directly to the peer's candidate endpoints from our main socket.
 * Each direct copy of our message 1 gets a fresh random cookie ({@link DirectCopies}); a message 2
 * that comes back directly from where a copy went, echoing its cookie, proves that path both ways
 * ({@link HandshakeTransport.proof}). The peer's message 1 is answered the way it came: relayed, or
 * directly to its source with its cookie, one datagram for one.
 *
 * Nothing goes directly when either side is relay-only. Direct copies and answers to endpoints
 * the peer never proved take a token from the client-wide handshake budget (a `ProbeBudget` of its
 * own, so opening NATs does not eat the probes of later upgrades). Pure: what it sends is
 * polled (see {@link HandshakeTransport}).
 *
 * @module
 */
import type { Candidate, PathMachine, ProbeBudget } from "../path/path.ts";
import type { HandshakeOut } from "./handshake.ts";
import { type Endpoint, formatEndpoint, sameEndpoint } from "../../wire/address.ts";
import { encodeHandshake } from "../../wire/peer_frame.ts";

/** A handshake datagram to send: through the relay (`to` null), or straight to the peer. */
export interface HandshakeTransmit {
  /** The peer's endpoint, or null for the relay. */
  to: Endpoint | null;
  /** The encoded HANDSHAKE frame. */
  data: Uint8Array;
  /** Our socket it leaves from (0: the main one). */
  via: number;
}

/** A copy of message 1 sent directly. */
interface Copy {
  to: Endpoint;
  via: number;
  sentAt: number;
  attempt: number;
}

/** Most direct copies remembered (the oldest are forgotten first). */
const MAX_COPIES = 256;

/**
 * The direct copies of our message 1, each with its own random cookie: a message 2 that comes
 * back directly from the endpoint a copy went to, echoing that copy's cookie, proves the path
 * both ways (as a probe's reply does) and gives its round-trip time. Message 2 is the same for
 * every copy (the relay sees it too), so the cookie, which only the copy's path carried, is what
 * ties the answer to the path. Each cookie answers once.
 */
export class DirectCopies {
  #copies = new Map<number, Copy>();

  /** Records a copy of `attempt` sent to `to` from our socket `via` with `cookie`. */
  sent(now: number, attempt: number, cookie: number, to: Endpoint, via: number): void {
    if (this.#copies.size >= MAX_COPIES) this.#copies.delete(this.#copies.keys().next().value!);
    this.#copies.set(cookie, { to, via, sentAt: now, attempt });
  }

  /** True when a message 2 of `attempt` from `from` on `via` echoing `cookie` answers a copy. */
  expects(attempt: number, cookie: number, from: Endpoint, via: number): boolean {
    const c = this.#copies.get(cookie);
    return !!c && c.attempt === attempt && c.via === via && sameEndpoint(c.to, from);
  }

  /**
   * A message 2 of `attempt` echoing `cookie` arrived directly from `from` on socket `via`: the
   * round-trip time if it answers a copy sent there, else null.
   */
  answered(
    now: number,
    attempt: number,
    cookie: number,
    from: Endpoint,
    via: number,
  ): number | null {
    if (!this.expects(attempt, cookie, from, via)) return null;
    const c = this.#copies.get(cookie)!;
    this.#copies.delete(cookie);
    return Math.round((now - c.sentAt) * 10) / 10;
  }
}

/** A direct path the handshake proved: the peer's endpoint, our socket, the round-trip time. */
export interface Proof {
  /** The peer's endpoint. */
  addr: Endpoint;
  /** Our socket (0: the main one). */
  via: number;
  /** Milliseconds since the answered copy left. */
  rtt: number;
}

/** What the route works with. */
export interface RouteOptions {
  /** Our peer id. */
  readonly id: Uint8Array;
  /** Randomness (cookies). */
  random(n: number): Uint8Array;
  /** The client-wide budget for handshake copies to endpoints that never answered. */
  readonly budget: ProbeBudget;
}

/** What the route needs to know of the peer at the moment. */
export interface RouteView {
  /** Either side asked never to send directly. */
  relayOnly: boolean;
  /** Its candidates (the path machine's, or the introduction's before there is one). */
  candidates: readonly Candidate[];
  /** The path machine, once there is one. */
  path: PathMachine | null;
}

/**
 * The handshake messages of one remote peer, relayed and direct.
 *
 * Driving it: after {@link send} or {@link answer}, drain {@link pollTransmit} until undefined.
 */
export class HandshakeTransport {
  #io: RouteOptions;
  #peer: Uint8Array;
  #copies = new DirectCopies();
  #out: HandshakeTransmit[] = [];

  /** A route to peer `peer`. */
  constructor(io: RouteOptions, peer: Uint8Array) {
    this.#io = io;
    this.#peer = peer;
  }

  /** The next handshake datagram to send, if any. */
  pollTransmit(): HandshakeTransmit | undefined {
    return this.#out.shift();
  }

  #relay(data: Uint8Array): void {
    this.#out.push({ to: null, data, via: 0 });
  }

  #direct(to: Endpoint, data: Uint8Array, via = 0): void {
    this.#out.push({ to, data, via });
  }

  /** Sends one of our handshake messages the way it asks ({@link HandshakeOut.route}). */
  send(now: number, h: HandshakeOut, view: RouteView): void {
    const frame = { from: this.#io.id, to: this.#peer, stage: h.stage, attempt: h.attempt };
    if (h.route !== "direct") {
      this.#relay(encodeHandshake({ ...frame, cookie: 0, message: h.message }));
    }
    if (view.relayOnly) return;
    if (h.route === "path") {
      const to = view.path?.route();
      if (to) {
        const data = encodeHandshake({ ...frame, cookie: 0, message: h.message });
        this.#direct(to, data, view.path!.routeVia());
      }
      return;
    }
    // Handshakes go from the main socket only (auxiliary sockets take sealed frames only).
    for (const c of view.candidates) {
      if ((c.via ?? 0) !== 0 || !this.#mayReach(now, c.addr, view)) continue;
      const r = this.#io.random(4);
      const cookie = (((r[0]! << 24) | (r[1]! << 16) | (r[2]! << 8) | r[3]!) >>> 0) || 1;
      this.#copies.sent(now, h.attempt, cookie, c.addr, 0);
      this.#direct(c.addr, encodeHandshake({ ...frame, cookie, message: h.message }));
    }
  }

  /**
   * Answers a copy of the peer's message 1 with our message 2 the way the copy came: relayed
   * (`from` null), or directly to `from` from our socket `via`, echoing its `cookie`.
   */
  answer(
    now: number,
    o: { attempt: number; message: Uint8Array; cookie: number },
    from: Endpoint | null,
    via: number,
    view: RouteView,
  ): void {
    const frame = { from: this.#io.id, to: this.#peer, stage: 2, ...o };
    if (!from) this.#relay(encodeHandshake({ ...frame, cookie: 0 }));
    else if (!view.relayOnly && this.#mayReach(now, from, view)) {
      this.#direct(from, encodeHandshake(frame), via);
    }
  }

  /**
   * The direct path a message 2 of `attempt` proves: it came directly (`from` not null) to our
   * socket `via`, echoing the cookie of a copy sent there. Each cookie proves once.
   */
  proof(
    now: number,
    attempt: number,
    cookie: number,
    from: Endpoint | null,
    via: number,
  ): Proof | null {
    if (!from || !cookie) return null;
    const rtt = this.#copies.answered(now, attempt, cookie, from, via);
    return rtt === null ? null : { addr: from, via, rtt };
  }

  /**
   * True when a message 2 that came directly from `from` to our socket `via` echoes the cookie
   * of a copy of our message 1 `attempt` sent there (only whoever got that copy knows it).
   */
  answersCopy(attempt: number, cookie: number, from: Endpoint, via: number): boolean {
    return cookie !== 0 && this.#copies.expects(attempt, cookie, from, via);
  }

  /** May a handshake copy go to `to` now: a proven endpoint, or within the budget? */
  #mayReach(now: number, to: Endpoint, view: RouteView): boolean {
    return view.path?.proven(to) || this.#io.budget.take(now, formatEndpoint(to));
  }
}
