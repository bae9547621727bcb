/**
 * The system's randomness (OpenSSL through `node:crypto`), for the roles to inject into the pure
 * cores: they take a `(n) => Uint8Array` and never draw randomness of their own, so tests and
 * simulations run them on seeded bytes instead.
 *
 * @module
 */
import { randomBytes } from "node:crypto";

/** `n` cryptographically random bytes. */
export function systemRandom(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}
