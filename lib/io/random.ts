/**
 * The process's one source of randomness: the roles (`lib/roles/*`) pass {@link systemRandom}
 * to the pure modules, which never draw randomness themselves; tests and simulations pass
 * seeded sources instead.
 *
 * @module
 */
import { randomBytes } from "node:crypto";

/** `n` cryptographically secure random bytes (node:crypto `randomBytes`). */
export function systemRandom(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}
