/**
 * HELLO nonces that registered someone, per peer id, remembered as long as a captured HELLO
 * could still pass the cookie check ({@link SPENT_KEEP}, two cookie periods). A HELLO carries a
 * fresh nonce per registration attempt (`docs/protocol.md` 5.2), so one whose (id, nonce) already
 * registered a member that is gone (it said BYE, expired, or was replaced) is a replay, or a
 * late duplicate: registering it again would make a ghost member that an on-path observer keeps
 * alive with the WELCOME's clear token. Pure; time from the caller.
 *
 * Memory: at most {@link MAX_SPENT} entries (one per registration in the last two minutes; the
 * oldest is forgotten first, which only matters past that rate).
 *
 * @module
 */
import { COOKIE_ROTATION } from "./cookies.ts";

/** How long a nonce that registered someone stays spent (ms): a cookie's longest life. */
export const SPENT_KEEP = 2 * COOKIE_ROTATION;
/** Most spent nonces remembered. */
export const MAX_SPENT = 262_144;

/** The (id, nonce) pairs that registered someone lately. */
export class SpentNonces {
  /** `id:nonce` (numbers) → when it registered, oldest first. */
  #spent = new Map<string, number>();

  /** True when `nonce` already registered the peer id `num`. */
  has(num: bigint, nonce: Uint8Array): boolean {
    return this.#spent.has(keyOf(num, nonce));
  }

  /** `nonce` registered the peer id `num` at `now`. */
  spend(now: number, num: bigint, nonce: Uint8Array): void {
    const k = keyOf(num, nonce);
    this.#spent.delete(k);
    if (this.#spent.size >= MAX_SPENT) this.#spent.delete(this.#spent.keys().next().value!);
    this.#spent.set(k, now);
  }

  /** Forgets nonces spent more than {@link SPENT_KEEP} ago. */
  prune(now: number): void {
    for (const [k, at] of this.#spent) {
      if (now - at < SPENT_KEEP) break;
      this.#spent.delete(k);
    }
  }

  /** Nonces remembered now. */
  get size(): number {
    return this.#spent.size;
  }
}

function keyOf(num: bigint, nonce: Uint8Array): string {
  const v = new DataView(nonce.buffer, nonce.byteOffset, nonce.byteLength);
  return `${num}:${v.getBigUint64(0)}`;
}
