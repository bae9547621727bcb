/**
 * Transport sessions: what a completed handshake leaves two peers with.
 *
 * A {@link TransportCipher} is one direction's AEAD with explicit 64-bit nonces: datagrams
 * arrive out of order, so each sealed frame carries its counter and the receiver sets it before
 * opening, as WireGuard does ({@link transportCipher} makes one of a Noise CipherState). A
 * {@link PairSession} holds both directions, numbers outgoing frames and keeps the replay
 * window for incoming ones.
 *
 * Synchronous and free of I/O.
 *
 * @module
 */
import { TAG_LEN } from "./aead.ts";
import type { CipherState } from "./noise.ts";

/** How far behind the highest counter seen a frame may arrive and still be accepted. */
export const REPLAY_WINDOW = 1024n;

/** Bytes sealing adds to a plaintext: the AEAD tag. */
export const SEAL_OVERHEAD = TAG_LEN;

/** One direction's AEAD with explicit 64-bit nonces (the sealed frame carries the counter). */
export interface TransportCipher {
  /**
   * Encrypts `plaintext` under nonce `counter` with `aad` bound in, writing ciphertext then tag
   * into `out` at `at` (`plaintext.length + SEAL_OVERHEAD` bytes; throws RangeError without
   * room).
   */
  sealInto(
    counter: bigint,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void;
  /** Decrypts and authenticates; null on any failure. */
  open(counter: bigint, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null;
}

/**
 * A Noise transport CipherState used with explicit nonces: the counter of each frame is set as
 * the CipherState's nonce before sealing or opening it (the replay window lives in
 * {@link PairSession}).
 */
export function transportCipher(cs: CipherState): TransportCipher {
  return {
    sealInto(counter, aad, plaintext, out, at) {
      cs.setNonce(counter);
      cs.encryptWithAdInto(aad, plaintext, out, at);
    },
    open(counter, aad, sealed) {
      cs.setNonce(counter);
      return cs.decryptWithAd(aad, sealed);
    },
  };
}

/** {@link REPLAY_WINDOW} as a number of bits. */
const WINDOW_BITS = Number(REPLAY_WINDOW);
/** Counters up to here are exact as numbers. */
const MAX_SAFE_COUNTER = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Directional transport ciphers shared by two peers. Outgoing counters never repeat within a
 * session; incoming ones are checked against a sliding replay window (a ring of
 * {@link REPLAY_WINDOW} bits below the highest counter accepted, as RFC 6479 describes), so a
 * captured frame cannot be played back.
 */
export class PairSession {
  #send: TransportCipher;
  #recv: TransportCipher;
  #counter = 0n;
  /** Highest counter accepted (counters stay far below 2^53: numbers are exact). */
  #highest = 0;
  /** Bit `c % WINDOW_BITS` set: counter `c` (within the window below #highest) was accepted. */
  #seen = new Uint32Array(WINDOW_BITS / 32);

  /** A session from the two directions' ciphers (from a completed handshake). */
  constructor(send: TransportCipher, recv: TransportCipher) {
    this.#send = send;
    this.#recv = recv;
  }

  /** Takes the next nonce counter for an outgoing frame. */
  nextCounter(): bigint {
    return ++this.#counter;
  }

  /** Encrypts `plaintext` with `aad` bound in; returns ciphertext followed by the tag. */
  seal(counter: bigint, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + SEAL_OVERHEAD);
    this.#send.sealInto(counter, aad, plaintext, out, 0);
    return out;
  }

  /**
   * {@link seal} into `out` at `at`, which needs `plaintext.length + SEAL_OVERHEAD` bytes
   * (throws RangeError without them): a frame is built without copying its sealed body.
   */
  sealInto(
    counter: bigint,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void {
    this.#send.sealInto(counter, aad, plaintext, out, at);
  }

  /** False when `counter` was already accepted or is too old for the window (a replay). */
  fresh(counter: bigint): boolean {
    // 2^53 frames would take centuries at any rate; beyond, a counter is never fresh.
    if (counter <= 0n || counter > MAX_SAFE_COUNTER) return false;
    const c = Number(counter);
    if (c > this.#highest) return true;
    if (c + WINDOW_BITS <= this.#highest) return false;
    const bit = c % WINDOW_BITS;
    return (this.#seen[bit >>> 5]! & (1 << (bit & 31))) === 0;
  }

  /** Decrypts and authenticates; returns null on any failure, including a replayed counter. */
  open(counter: bigint, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    if (!this.fresh(counter)) return null;
    const plain = this.#recv.open(counter, aad, sealed);
    if (!plain) return null;
    // Only authenticated frames move the window.
    const c = Number(counter);
    if (c > this.#highest) {
      // Forget the counters the window slides past (they are now too old anyway).
      if (c - this.#highest >= WINDOW_BITS) this.#seen.fill(0);
      else {
        for (let x = this.#highest + 1; x <= c; x++) {
          const bit = x % WINDOW_BITS;
          this.#seen[bit >>> 5]! &= ~(1 << (bit & 31));
        }
      }
      this.#highest = c;
    }
    const bit = c % WINDOW_BITS;
    this.#seen[bit >>> 5]! |= 1 << (bit & 31);
    return plain;
  }
}
