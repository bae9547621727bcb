/**
 * The registration puzzle (`docs/protocol.md` 6.11): a stateless proof of work a server under
 * pressure asks of every HELLO, in the COOKIE that answers it. The peer finds 8 bytes `pow` such
 * that SHA-256(`"p2p pow v1"` ‖ 0x00 ‖ cookie ‖ id ‖ nonce ‖ pow) starts with `difficulty` zero
 * bits (about 2^difficulty hashes); the server checks one hash. The cookie binds the work to the
 * peer's id, address and the cookie's two-minute life, the nonce to one registration attempt (a
 * HELLO registers once), so none of it can be reused. Pure (node:crypto only).
 *
 * @module
 */
import { createHash } from "node:crypto";

/** The label hashed first. */
export const PUZZLE_LABEL = "p2p pow v1";
/** Length of a solution. */
export const POW_LEN = 8;
/** The hardest puzzle a peer attempts (about 2^24 hashes) and a server may ask. */
export const MAX_DIFFICULTY = 24;

const PREFIX = new Uint8Array([...new TextEncoder().encode(PUZZLE_LABEL), 0]);

/** The puzzle's input: label, cookie, id, nonce and `pow`, in one buffer. */
function puzzleInput(
  cookie: Uint8Array,
  id: Uint8Array,
  nonce: Uint8Array,
  pow: Uint8Array,
): Uint8Array {
  const b = new Uint8Array(PREFIX.length + cookie.length + id.length + nonce.length + POW_LEN);
  let at = 0;
  for (const part of [PREFIX, cookie, id, nonce]) {
    b.set(part, at);
    at += part.length;
  }
  b.set(pow.subarray(0, POW_LEN), at);
  return b;
}

/** The puzzle's hash of `pow` for (cookie, id, nonce). */
export function puzzleDigest(
  cookie: Uint8Array,
  id: Uint8Array,
  nonce: Uint8Array,
  pow: Uint8Array,
): Uint8Array {
  return new Uint8Array(createHash("sha256").update(puzzleInput(cookie, id, nonce, pow)).digest());
}

/** The number of leading zero bits of `b`. */
export function leadingZeroBits(b: Uint8Array): number {
  let n = 0;
  for (const x of b) {
    if (x === 0) {
      n += 8;
      continue;
    }
    return n + Math.clz32(x) - 24;
  }
  return n;
}

/** True when `pow` solves the puzzle of `difficulty` bits for (cookie, id, nonce). */
export function puzzleSolved(
  difficulty: number,
  cookie: Uint8Array,
  id: Uint8Array,
  nonce: Uint8Array,
  pow: Uint8Array,
): boolean {
  if (difficulty <= 0) return true;
  if (difficulty > MAX_DIFFICULTY || pow.length !== POW_LEN) return false;
  return leadingZeroBits(puzzleDigest(cookie, id, nonce, pow)) >= difficulty;
}

/**
 * A solution of the puzzle of `difficulty` bits for (cookie, id, nonce): the first counter from
 * 0 that solves it (about 2^difficulty hashes, some 2 µs each; null above
 * {@link MAX_DIFFICULTY}, or if none is found in 2^(difficulty + 6) tries).
 */
export function solvePuzzle(
  difficulty: number,
  cookie: Uint8Array,
  id: Uint8Array,
  nonce: Uint8Array,
): Uint8Array | null {
  if (difficulty <= 0) return new Uint8Array(POW_LEN);
  if (difficulty > MAX_DIFFICULTY) return null;
  const input = puzzleInput(cookie, id, nonce, new Uint8Array(POW_LEN));
  const at = input.length - POW_LEN;
  const view = new DataView(input.buffer, at, POW_LEN);
  const limit = 2 ** (difficulty + 6);
  for (let i = 0; i < limit; i++) {
    view.setUint32(0, Math.floor(i / 2 ** 32));
    view.setUint32(4, i >>> 0);
    const d = createHash("sha256").update(input).digest();
    if (leadingZeroBits(d) >= difficulty) return input.slice(at);
  }
  return null;
}
