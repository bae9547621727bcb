/**
 * SHA-256 through node:crypto: one-shot digests of byte strings and an incremental hasher for
 * data that arrives in pieces (a file read chunk by chunk). Pure.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** Bytes of a SHA-256 digest. */
export const SHA256_LEN = 32;

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** An incremental SHA-256: `update` any number of times, then `digest` once. */
export class Sha256 {
  #h: Hash = createHash("sha256");

  /** Adds `data` to the hashed stream. */
  update(data: Uint8Array): this {
    this.#h.update(data);
    return this;
  }

  /** The digest of everything added; the hasher cannot be used afterwards. */
  digest(): Uint8Array {
    return new Uint8Array(this.#h.digest());
  }
}
