/**
 * Byte helpers for tests.
 *
 * @module
 */

/** Joins byte arrays (or plain number lists) into one Uint8Array. */
export function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * `n` bytes of a file's stand-in, the same for the same `seed` (a linear congruential generator's
 * top byte: cheap enough for tens of megabytes, not random enough to compress).
 */
export function fileBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
