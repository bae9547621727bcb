/**
 * The hash tree over a file's chunks, as RFC 9162 (Certificate Transparency v2, section 2.1)
 * defines it for any number of leaves: a leaf is `SHA-256(0x00 ‖ chunk)`, an inner node
 * `SHA-256(0x01 ‖ left ‖ right)`, and a tree of n > 1 leaves splits after the largest power of
 * two below n. An offer carries the root; each chunk travels with its audit path (the sibling
 * hashes from the leaf up), so a receiver verifies every chunk on its own as it arrives and
 * re-fetches only a corrupt one, while neither side holds more than the tree's 2n hashes (the
 * sender) or nothing but the root (the receiver). Pure.
 *
 * @module
 */
import { sha256, SHA256_LEN } from "../crypto/sha256.ts";

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

/** The hash of one leaf (a chunk's bytes). */
export function leafHash(chunk: Uint8Array): Uint8Array {
  return sha256(LEAF, chunk);
}

/** The hash of an inner node from its two children. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(NODE, left, right);
}

/** The largest power of two strictly below `n` (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** How many hashes the audit path of leaf `m` in a tree of `n` leaves has. */
export function proofLength(m: number, n: number): number {
  let len = 0;
  while (n > 1) {
    const k = split(n);
    if (m < k) n = k;
    else (m -= k, n -= k);
    len++;
  }
  return len;
}

/**
 * The root the audit path `path` (sibling hashes, leaf level first, concatenated) leads to
 * from leaf `m`'s hash in a tree of `n` leaves; null when the path has the wrong length.
 */
export function rootFromPath(
  m: number,
  n: number,
  leaf: Uint8Array,
  path: Uint8Array,
): Uint8Array | null {
  if (n < 1 || m < 0 || m >= n) return null;
  if (path.length !== proofLength(m, n) * SHA256_LEN) return null;
  // Walk down to record the sides, then hash back up from the leaf.
  const sides: boolean[] = []; // true: our subtree is the left child
  while (n > 1) {
    const k = split(n);
    if (m < k) (sides.push(true), n = k);
    else (sides.push(false), m -= k, n -= k);
  }
  let h = leaf;
  for (let i = sides.length - 1, o = 0; i >= 0; i--, o += SHA256_LEN) {
    const sibling = path.subarray(o, o + SHA256_LEN);
    h = sides[i] ? nodeHash(h, sibling) : nodeHash(sibling, h);
  }
  return h;
}

/**
 * A whole tree built from its leaf hashes (the sender's): the root and any leaf's audit path.
 * Keeps the 2n - 1 node hashes.
 */
export class MerkleTree {
  readonly leaves: number;
  readonly root: Uint8Array;
  /** Node hashes by subtree: key `start * 2^23 + size`. */
  #nodes = new Map<number, Uint8Array>();

  /** Builds the tree of `leafHashes` (at least one, at most 2^22). */
  constructor(leafHashes: readonly Uint8Array[]) {
    if (leafHashes.length < 1 || leafHashes.length > 2 ** 22) {
      throw new RangeError(`A hash tree needs 1 to 2^22 leaves, got ${leafHashes.length}`);
    }
    this.leaves = leafHashes.length;
    this.root = this.#build(leafHashes, 0, leafHashes.length);
  }

  #build(leaves: readonly Uint8Array[], start: number, size: number): Uint8Array {
    let h: Uint8Array;
    if (size === 1) h = leaves[start]!;
    else {
      const k = split(size);
      h = nodeHash(this.#build(leaves, start, k), this.#build(leaves, start + k, size - k));
    }
    this.#nodes.set(start * 2 ** 23 + size, h);
    return h;
  }

  /** The audit path of leaf `m`: sibling hashes, leaf level first, concatenated. */
  proof(m: number): Uint8Array {
    if (!Number.isInteger(m) || m < 0 || m >= this.leaves) {
      throw new RangeError(`Leaf ${m} is not in a tree of ${this.leaves}`);
    }
    const siblings: Uint8Array[] = [];
    let start = 0, size = this.leaves;
    while (size > 1) {
      const k = split(size);
      if (m - start < k) {
        siblings.push(this.#nodes.get((start + k) * 2 ** 23 + size - k)!);
        size = k;
      } else {
        siblings.push(this.#nodes.get(start * 2 ** 23 + k)!);
        start += k;
        size -= k;
      }
    }
    const out = new Uint8Array(siblings.length * SHA256_LEN);
    for (let i = 0; i < siblings.length; i++) {
      out.set(siblings[siblings.length - 1 - i]!, i * SHA256_LEN);
    }
    return out;
  }
}
