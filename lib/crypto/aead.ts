/**
 * ChaCha20-Poly1305 (RFC 8439) through `node:crypto`: the AEAD of the Noise handshake and of
 * every sealed frame.
 *
 * Where the primitive runs: Node.js hands `"chacha20-poly1305"` to OpenSSL; Deno's `node:crypto`
 * hands it to AWS-LC (`EVP_chacha20_poly1305`, of the BoringSSL lineage). Either library
 * computes the keystream and the Poly1305 tag and, when opening, compares the tag itself in
 * constant time; nothing here touches a key stream or a tag byte by byte.
 *
 * Cost: `node:crypto` builds a cipher object per message (in Deno a Transform stream around a
 * native context), about 2 µs before the first byte, then runs at native speed: sealing takes
 * about 3 µs for 64 bytes, 4–5 µs for a 1,058-byte frame and 40–50 µs for 64 KiB
 * (`bench/aead_bench.ts`). A message that does not authenticate costs more to refuse, 12–15 µs,
 * because `node:crypto` reports it by throwing. The key is kept as bytes: a `KeyObject` would be
 * exported back to bytes by every `createCipheriv` call in Deno, which costs more than it
 * saves.
 *
 * Hostile input never throws: {@link ChaCha20Poly1305.open} returns null for a wrong nonce
 * length, a message shorter than a tag, or a tag that does not authenticate. Only programmer
 * errors throw: a key of the wrong length, sealing with a wrong nonce length or into a buffer
 * without room.
 *
 * @module
 */
import { createCipheriv, createDecipheriv } from "node:crypto";

/** Length of a key. */
export const KEY_LEN = 32;
/** Length of a nonce. */
export const NONCE_LEN = 12;
/** Length of an authentication tag. */
export const TAG_LEN = 16;

const ALGORITHM = "chacha20-poly1305";
const OPTIONS = { authTagLength: TAG_LEN } as const;

/** One key's ChaCha20-Poly1305 AEAD (RFC 8439), 16-byte tags appended to the ciphertext. */
export class ChaCha20Poly1305 {
  #key: Uint8Array;

  /** An AEAD under the 32-byte `key` (copied). Throws RangeError on another length. */
  constructor(key: Uint8Array) {
    if (key.length !== KEY_LEN) throw new RangeError(`A ChaCha20-Poly1305 key is ${KEY_LEN} bytes`);
    this.#key = key.slice();
  }

  /** Encrypts `plaintext` with `aad` bound in: ciphertext followed by the 16-byte tag. */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + TAG_LEN);
    this.sealInto(nonce, aad, plaintext, out, 0);
    return out;
  }

  /**
   * {@link seal} into `out` at `at` (it needs `plaintext.length + TAG_LEN` bytes there; throws
   * RangeError when they are not, since writes past a typed array's end vanish silently).
   * `plaintext` may be the very bytes it is sealed over (`out` at `at`).
   */
  sealInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void {
    if (nonce.length !== NONCE_LEN) throw new RangeError(`A nonce is ${NONCE_LEN} bytes`);
    const len = plaintext.length;
    if (!Number.isInteger(at) || at < 0 || at + len + TAG_LEN > out.length) {
      throw new RangeError("No room in the output for the ciphertext and tag");
    }
    const c = createCipheriv(ALGORITHM, this.#key, nonce, OPTIONS);
    c.setAAD(aad, { plaintextLength: len });
    out.set(c.update(plaintext), at);
    c.final();
    out.set(c.getAuthTag(), at + len);
  }

  /** Authenticates and decrypts ciphertext ‖ tag; null when it does not authenticate. */
  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    if (nonce.length !== NONCE_LEN || sealed.length < TAG_LEN) return null;
    const len = sealed.length - TAG_LEN;
    try {
      const d = createDecipheriv(ALGORITHM, this.#key, nonce, OPTIONS);
      d.setAAD(aad, { plaintextLength: len });
      d.setAuthTag(sealed.subarray(len));
      const plain = d.update(sealed.subarray(0, len));
      // Throws when the tag does not authenticate: the plaintext above is then dropped.
      d.final();
      return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
    } catch {
      return null;
    }
  }
}
