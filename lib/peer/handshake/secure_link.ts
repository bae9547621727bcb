/**
 * The encrypted link to one remote peer: the two room-secret handshakes ({@link PairHandshake}:
 * ours, whose key we seal with, and the peer's, whose key we open with), the current key of
 * each direction, the previous ones while a re-key is being confirmed, and sealing and opening
 * of SEALED frames. Nothing can be sealed before our handshake reached message 2, nothing
 * opened before the peer's reached message 3; frames that do not open under any key of the
 * receiving direction are refused. Both handshakes must reveal the same static key, else the
 * pair is refused (`mismatch`). Pure and synchronous.
 *
 * Each side starts its own handshake at every introduction epoch (so a lost introduction on
 * one side delays only that side's direction, and the server's resync repairs it).
 *
 * @module
 */
import { bytesEqual, compareBytes } from "../../core/bytes.ts";
import { PairSession, SEAL_OVERHEAD, type TransportCipher } from "../../crypto/session.ts";
import {
  type HandshakeOut,
  type HandshakeResult,
  type NoiseFactory,
  PairHandshake,
} from "./handshake.ts";
import { encodeSealedHeader, SEALED_HEADER_LEN, type SealedFrame } from "../../wire/peer_frame.ts";

/** The label that starts every pair prologue (ASCII `p2p v5 pair`, no terminator). */
export const PROLOGUE: Uint8Array = new TextEncoder().encode("p2p v5 pair");

/**
 * The Noise prologue of the handshake `initiator` starts with `responder`: a label, the room id
 * and both peer ids, initiator first. The order binds the role: a pair's two handshakes have
 * different prologues, so a message of one never passes as the other's (nor reflected back).
 */
export function pairPrologue(
  roomId: Uint8Array,
  initiator: Uint8Array,
  responder: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(
    PROLOGUE.length + roomId.length + initiator.length + responder.length,
  );
  let o = 0;
  for (const part of [PROLOGUE, roomId, initiator, responder]) {
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
  const h = new Uint8Array(SEALED_HEADER_LEN);
  writeCounter(h, template, counter);
  return h;
}

/** Writes the SEALED header `template` with `counter` in its last 8 bytes into `h`. */
function writeCounter(h: Uint8Array, template: Uint8Array, counter: bigint): void {
  h.set(template.subarray(0, SEALED_HEADER_LEN));
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
}

/** Receiving keys kept besides the current one until it is used (see `SecureLink`). */
const RECV_OLD = 2;

/** A cipher for the direction a one-way session does not use. */
const NONE: TransportCipher = {
  sealInto() {
    throw new Error("This session only opens");
  },
  open: () => null,
};

/** What {@link SecureLink.handle} made of a handshake message. */
export type LinkResult = HandshakeResult | {
  kind: "mismatch";
  first: Uint8Array;
  second: Uint8Array;
};

/** The encrypted link to one peer. */
export class SecureLink {
  #theirId: Uint8Array;
  #leader: boolean;
  /** The SEALED header to the peer with counter 0 (the counter is its last 8 bytes). */
  #header: Uint8Array;
  #hs: PairHandshake;
  /** Our direction: the key of our newest completed handshake, and which attempt it was. */
  #send: { session: PairSession; attempt: number } | null = null;
  /** The sending key before the last re-key, used until the peer confirms the new one. */
  #sendPrevious: PairSession | null = null;
  /** The peer confirmed the current sending key (it completed our handshake). */
  #sendConfirmed = false;
  /** The peer's direction: the key of its newest completed handshake. */
  #recv: PairSession | null = null;
  /**
   * The receiving keys before it, newest first (at most {@link RECV_OLD}), kept until a frame
   * opens under the current one: the peer seals under its last confirmed key, which can be two
   * re-keys behind when two new epochs come in quick succession.
   */
  #recvOld: PairSession[] = [];
  /** The peer's static key, as the first completed handshake revealed it. */
  #peerKey: Uint8Array | null = null;

  /** Makes the link; nothing is sent until {@link rekey}. */
  constructor(o: {
    now: number;
    myId: Uint8Array;
    theirId: Uint8Array;
    roomId: Uint8Array;
    myName: string;
    noise: NoiseFactory;
  }) {
    this.#theirId = o.theirId;
    this.#leader = compareBytes(o.myId, o.theirId) < 0;
    this.#header = encodeSealedHeader(o.myId, o.theirId, 0n);
    this.#hs = new PairHandshake({
      factory: o.noise,
      mine: pairPrologue(o.roomId, o.myId, o.theirId),
      theirs: pairPrologue(o.roomId, o.theirId, o.myId),
      myName: o.myName,
    });
  }

  /** Our name changed (`/nick`): handshake messages built from now on carry `name`. */
  rename(name: string): void {
    this.#hs.rename(name);
  }

  /** True once our handshake completed: we know who the peer is and frames can be sealed. */
  get established(): boolean {
    return this.#send !== null;
  }

  /** True when we have the lower id (this side asks the server for coordinated re-punches). */
  get leader(): boolean {
    return this.#leader;
  }

  /** The attempt of our handshake under way or last completed. */
  get attempt(): number {
    return this.#hs.attempt;
  }

  /** (Re-)keys: starts a new attempt of our handshake. */
  rekey(now: number): void {
    this.#hs.start(now);
  }

  /** Takes the next handshake message to send. */
  poll(): HandshakeOut | undefined {
    return this.#hs.poll();
  }

  /** When a handshake repeat is due. */
  nextTimeout(): number | undefined {
    return this.#hs.nextTimeout();
  }

  /** Sends due repeats. */
  handleTimeout(now: number): void {
    this.#hs.handleTimeout(now);
  }

  /** Handles a HANDSHAKE frame; a completed handshake replaces its direction's key. */
  handle(now: number, stage: number, attempt: number, message: Uint8Array): LinkResult {
    const r = this.#hs.handle(now, stage, attempt, message);
    if (r.kind !== "sending" && r.kind !== "receiving") return r;
    const key = r.half.remoteStatic;
    if (this.#peerKey && !bytesEqual(this.#peerKey, key)) {
      return { kind: "mismatch", first: this.#peerKey, second: key };
    }
    this.#peerKey = key;
    if (r.kind === "sending") {
      // Until the peer confirms the new key, the previous one keeps sealing (the last one the
      // peer confirmed, or else the last one we used).
      if (this.#send) {
        this.#sendPrevious = this.#sendConfirmed
          ? this.#send.session
          : this.#sendPrevious ?? this.#send.session;
      }
      this.#send = { session: new PairSession(r.half.cipher, NONE), attempt: r.half.attempt };
      this.#sendConfirmed = false;
    } else {
      if (this.#recv) this.#recvOld.unshift(this.#recv);
      if (this.#recvOld.length > RECV_OLD) this.#recvOld.pop();
      this.#recv = new PairSession(NONE, r.half.cipher);
    }
    return r;
  }

  /** The peer confirmed (sealed, so authentic) that it completed our attempt `attempt`. */
  confirm(attempt: number): void {
    if (this.#send?.attempt !== attempt) return;
    this.#hs.confirm(attempt);
    this.#sendConfirmed = true;
    this.#sendPrevious = null;
  }

  /**
   * Seals `inner` for the peer under the current sending key (the previous one while a re-key
   * awaits confirmation); undefined before our handshake completed.
   */
  seal(inner: Uint8Array): Uint8Array | undefined {
    return this.sealWith(inner.length, (into) => into.set(inner));
  }

  /**
   * {@link seal} of the `length` bytes `write` puts into the frame itself (where they are then
   * sealed in place): an inner frame encoded straight into its datagram, with no copy of its own.
   */
  sealWith(length: number, write: (into: Uint8Array) => void): Uint8Array | undefined {
    const s = this.#sendConfirmed || !this.#sendPrevious ? this.#send?.session : this.#sendPrevious;
    if (!s) return undefined;
    const frame = new Uint8Array(SEALED_HEADER_LEN + length + SEAL_OVERHEAD);
    const plain = frame.subarray(SEALED_HEADER_LEN, SEALED_HEADER_LEN + length);
    write(plain);
    const counter = s.nextCounter();
    const header = frame.subarray(0, SEALED_HEADER_LEN);
    writeCounter(header, this.#header, counter);
    s.sealInto(counter, header, plain, frame, SEALED_HEADER_LEN);
    return frame;
  }

  /**
   * Opens a sealed frame from the peer: under the current receiving key or, until a frame
   * opened under that one, the previous ones (the last two). `replay` when its counter was already seen (a
   * duplicate or a replay: harmless, dropped quietly), `unkeyed` before the peer's handshake
   * completed (its first frames can overtake its message 3), `failed` when it does not
   * authenticate.
   */
  open(s: SealedFrame): Uint8Array | "replay" | "unkeyed" | "failed" {
    // Peer ids are public: a plain comparison will do.
    if (compareBytes(s.from, this.#theirId) !== 0) return "failed";
    const cur = this.#recv, old = this.#recvOld;
    if (!cur) return "unkeyed";
    if (!cur.fresh(s.counter) && !old.some((k) => k.fresh(s.counter))) return "replay";
    const plain = cur.open(s.counter, s.header, s.body);
    if (plain) {
      old.length = 0;
      return plain;
    }
    for (let i = 0; i < old.length; i++) {
      const p = old[i]!.open(s.counter, s.header, s.body);
      // The peer seals under this one now: the ones before it are done with.
      if (p) {
        old.length = i + 1;
        return p;
      }
    }
    return "failed";
  }
}
