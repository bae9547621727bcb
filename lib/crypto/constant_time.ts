/**
 * Comparison of secrets (MACs, cookies, tokens, challenge nonces) in time independent of their
 * contents, so that a forger cannot learn from response times how many leading bytes of a guess
 * were right.
 *
 * What JavaScript cannot promise: `timingSafeEqual` (in Deno a JavaScript loop that XORs every
 * byte into one accumulator and looks at it once, at the end) has no data-dependent branch and
 * no early exit, but nothing stops the JIT from compiling it differently, the garbage collector
 * from pausing in the middle, or the caches from remembering; and comparing lengths is a branch
 * (lengths are public here: every MAC, cookie and token has a fixed size). It removes the
 * timing signal an ordinary comparison gives by construction; it is not a guarantee of the
 * kind constant-time C or assembly code makes. The AEAD's tag is not compared here at all: the
 * native library (OpenSSL, or AWS-LC in Deno) checks it inside `final()` (see
 * `lib/crypto/aead.ts`).
 *
 * Public values (peer ids, public keys, handshake messages seen on the wire) are compared with
 * `bytesEqual` of `lib/core/bytes.ts`, which may stop at the first difference.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";

/**
 * True when the secrets `a` and `b` have the same length and bytes, compared with
 * `timingSafeEqual`. Different lengths are unequal (never a throw).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
