/**
 * A user's long-term identity: an X25519 key pair whose private half is the static key of the
 * Noise handshakes (`lib/peer/handshake/handshake.ts`) and whose public half the peers see,
 * as a fingerprint (`lib/crypto/fingerprint.ts`).
 *
 * Synchronous and free of I/O: a new identity takes its randomness from the caller (the roles
 * pass `systemRandom` of `lib/io/random.ts`; tests pass seeded sources).
 *
 * @module
 */
import { DHLEN, x25519PublicKey } from "./x25519.ts";

/** A peer's X25519 key pair. */
export class Identity {
  #raw: Uint8Array;
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array;

  private constructor(raw: Uint8Array, pub: Uint8Array) {
    this.#raw = raw;
    this.publicKey = pub;
  }

  /**
   * A fresh identity from 32 bytes of `random(32)` (X25519 takes any 32 bytes as a private
   * key). Throws when `random` returns another number of bytes.
   */
  static generate(random: (n: number) => Uint8Array): Identity {
    const d = random(DHLEN);
    if (d.length !== DHLEN) throw new RangeError(`Identity.generate needs ${DHLEN} random bytes`);
    return Identity.fromPrivate(d);
  }

  /** Rebuilds an identity from a 32-byte private key (a stored identity, or tests). */
  static fromPrivate(d: Uint8Array): Identity {
    return new Identity(d.slice(), x25519PublicKey(d));
  }

  /** The raw private key, for the Noise handshake (never leaves the process). */
  get privateKey(): Uint8Array {
    return this.#raw;
  }
}
