/**
 * Seeded pseudo-random generators for deterministic tests: one seed, one sequence.
 *
 * @module
 */

/** Mulberry32: returns a function giving floats in [0, 1), the same sequence for a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` bytes drawn from `rng` (seeded ids and keys for reproducible simulations). */
export function randomBytesFrom(rng: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng() * 256);
  return out;
}

/**
 * The randomness the protocol cores take (`(n) => n bytes`), drawn from {@link prng} with
 * `seed`: what tests inject wherever the roles inject node:crypto.
 */
export function seededRandom(seed: number): (n: number) => Uint8Array {
  const rng = prng(seed);
  return (n) => randomBytesFrom(rng, n);
}
