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
