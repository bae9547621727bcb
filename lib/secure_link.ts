/**
 * The encrypted link to one remote peer: the room-secret handshake ({@link PairHandshake}),
 * the current session, the previous one while a re-key is being confirmed, and sealing and
 * opening of SEALED frames. Until a handshake completes nothing can be sealed; frames that do
 * not open under either session are refused. Pure and synchronous.
 *
 * Who starts: the peer with the lower id initiates; the other one, if it hears nothing, sends a
 * small unauthenticated "poke" (stage 0) asking it to start, repeated with backoff, so a lost
 * introduction on either side is repaired.
 *
 * @module
 */
import { compareBytes, PairSession } from "./crypto.ts";
import {
  type Established,
  HANDSHAKE_RETRY,
  HANDSHAKE_RETRY_MAX,
  type HandshakeOut,
  type HandshakeResult,
  type NoiseFactory,
  PairHandshake,
} from "./handshake.ts";
import { encodeSealedHeader, SEALED_HEADER_LEN, type SealedFrame } from "./wire.ts";

/** Least time between two handshakes started because the peer poked us (ms). */
const POKE_INTERVAL = 2_000;

const PROLOGUE = new TextEncoder().encode("p2p v3 pair");

/** The Noise prologue: a label, the room id and both peer ids (lower first). */
export function pairPrologue(roomId: Uint8Array, a: Uint8Array, b: Uint8Array): Uint8Array {
  const [lo, hi] = compareBytes(a, b) < 0 ? [a, b] : [b, a];
  const out = new Uint8Array(PROLOGUE.length + roomId.length + lo.length + hi.length);
  let o = 0;
  for (const part of [PROLOGUE, roomId, lo, hi]) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}

/** Counters up to here are exact as numbers. */
const MAX_SAFE_COUNTER = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A copy of the SEALED header `template` with `counter` in its last 8 bytes (big-endian, as
 * `encodeSealedHeader` writes it): the ids and type are the same for every frame to a peer.
 */
export function withCounter(template: Uint8Array, counter: bigint): Uint8Array {
  const h = template.slice(0, SEALED_HEADER_LEN);
  const at = SEALED_HEADER_LEN - 8;
  let hi: number, lo: number;
  if (counter <= MAX_SAFE_COUNTER) {
    const c = Number(counter);
    hi = Math.floor(c / 0x1_0000_0000);
    lo = c >>> 0;
  } else {
    hi = Number((counter >> 32n) & 0xffff_ffffn);
    lo = Number(counter & 0xffff_ffffn);
  }
  for (let i = 3; i >= 0; i--, hi >>>= 8, lo >>>= 8) {
    h[at + i] = hi & 0xff;
    h[at + 4 + i] = lo & 0xff;
  }
  return h;
}

/** The encrypted link to one peer. */
export class SecureLink {
  #myId: Uint8Array;
  #theirId: Uint8Array;
  /** The SEALED header to the peer with counter 0 (the counter is its last 8 bytes). */
  #header: Uint8Array;
  #hs: PairHandshake;
  #session: PairSession | null = null;
  /** The session before the last re-key, kept until the new one is confirmed. */
  #previous: PairSession | null = null;
  /**
   * The current session is confirmed: always for the responder (message 3 proved the
   * initiator), for the initiator once a frame from the responder opened under it.
   */
  #confirmed = false;
  #everConfirmed = false;
  #pokes = 0;
  #nextPoke: number;
  #lastPoked = -Infinity;
  #pokeOut = false;

  /** Makes the link; nothing is sent until {@link start} (initiator) or a poke is due. */
  constructor(o: {
    now: number;
    myId: Uint8Array;
    theirId: Uint8Array;
    roomId: Uint8Array;
    myName: string;
    noise: NoiseFactory;
  }) {
    this.#myId = o.myId;
    this.#theirId = o.theirId;
    this.#header = encodeSealedHeader(o.myId, o.theirId, 0n);
    this.#hs = new PairHandshake({
      initiator: compareBytes(o.myId, o.theirId) < 0,
      factory: o.noise,
      prologue: pairPrologue(o.roomId, o.myId, o.theirId),
      myName: o.myName,
    });
    this.#nextPoke = Infinity;
  }

  /** True once a session has been confirmed by both sides (frames can be sealed). */
  get established(): boolean {
    return this.#everConfirmed;
  }

  /** True when this side starts handshakes. */
  get initiator(): boolean {
    return this.#hs.initiator;
  }

  /** (Re-)keys: the initiator starts a handshake; the responder asks for one by poking. */
  rekey(now: number): void {
    if (this.#hs.initiator) this.#hs.start(now);
    else {
      // At once: the initiator may have been introduced earlier and be waiting for us.
      this.#pokes = 0;
      this.#nextPoke = now;
    }
  }

  /** Takes the next handshake frame to send (stage 0 is a poke). */
  poll(): HandshakeOut | undefined {
    if (this.#pokeOut) {
      this.#pokeOut = false;
      return { stage: 0, attempt: 0, message: new Uint8Array(0) };
    }
    return this.#hs.poll();
  }

  /** When a handshake repeat or poke is due. */
  nextTimeout(): number | undefined {
    const h = this.#hs.nextTimeout();
    if (this.#nextPoke === Infinity) return h;
    return h === undefined ? this.#nextPoke : Math.min(h, this.#nextPoke);
  }

  /** Sends due repeats and pokes. */
  handleTimeout(now: number): void {
    this.#hs.handleTimeout(now);
    if (now >= this.#nextPoke) {
      this.#pokeOut = true;
      this.#nextPoke = now + Math.min(HANDSHAKE_RETRY * 2 ** this.#pokes++, HANDSHAKE_RETRY_MAX);
    }
  }

  /** Handles a HANDSHAKE frame; a completed handshake replaces the session. */
  handle(now: number, stage: number, attempt: number, message: Uint8Array): HandshakeResult {
    if (stage === 0) {
      // A poke (unauthenticated, so rate-limited): start a handshake or repeat message 1.
      if (now - this.#lastPoked >= POKE_INTERVAL && this.#hs.nudge(now)) this.#lastPoked = now;
      return { kind: "ignored" };
    }
    const r = this.#hs.handle(now, stage, attempt, message);
    if (r.kind === "established") this.#install(r.session);
    return r;
  }

  #install(e: Established): void {
    // Until the new session is confirmed the previous one (if confirmed) keeps sealing.
    if (this.#confirmed) this.#previous = this.#session;
    this.#session = new PairSession(e.send, e.recv);
    this.#confirmed = !this.#hs.initiator;
    if (this.#confirmed) this.#everConfirmed = true;
    this.#nextPoke = Infinity;
  }

  /**
   * Seals `inner` for the peer under the confirmed session (the previous one while a re-key
   * awaits confirmation); undefined before any session was confirmed.
   */
  seal(inner: Uint8Array): Uint8Array | undefined {
    const s = this.#confirmed ? this.#session : this.#previous;
    if (!s) return undefined;
    const counter = s.nextCounter();
    const header = this.#sealedHeader(counter);
    const body = s.seal(counter, header, inner);
    const frame = new Uint8Array(header.length + body.length);
    frame.set(header);
    frame.set(body, header.length);
    return frame;
  }

  /** The SEALED header for `counter` (the codec's, without re-encoding the ids each time). */
  #sealedHeader(counter: bigint): Uint8Array {
    return withCounter(this.#header, counter);
  }

  /**
   * Opens a sealed frame from the peer: under the current session (which confirms a re-key to
   * the initiator) or, until then, the previous one. `replay` when its counter was already
   * seen (a duplicate or a replay: harmless, dropped quietly), `failed` when it does not
   * authenticate.
   */
  open(s: SealedFrame): Uint8Array | "replay" | "failed" {
    // Peer ids are public: a plain comparison will do.
    if (compareBytes(s.from, this.#theirId) !== 0) return "failed";
    const cur = this.#session, prev = this.#previous;
    if (cur && !cur.fresh(s.counter) && (!prev || !prev.fresh(s.counter))) return "replay";
    const plain = cur?.open(s.counter, s.header, s.body) ?? null;
    if (plain) {
      if (!this.#confirmed || prev) {
        this.#hs.confirm();
        this.#confirmed = this.#everConfirmed = true;
        this.#previous = null;
      }
      return plain;
    }
    return prev?.open(s.counter, s.header, s.body) ?? "failed";
  }
}
