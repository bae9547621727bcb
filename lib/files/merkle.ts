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
 * Keeps the 2n - 1 node hashes in one buffer, in post-order (a 2 GB file's 7,630 chunks: 488
 * KB, where a typed array per node cost the heap 2 MB more).
 */
export class MerkleTree {
  readonly leaves: number;
  readonly root: Uint8Array;
  /** Node hashes, {@link SHA256_LEN} bytes each, in post-order (see {@link MerkleTree.#index}). */
  #nodes: Uint8Array;

  /** Builds the tree of `leafHashes` (at least one, at most 2^22, each a SHA-256 hash). */
  constructor(leafHashes: readonly Uint8Array[]) {
    if (leafHashes.length < 1 || leafHashes.length > 2 ** 22) {
      throw new RangeError(`A hash tree needs 1 to 2^22 leaves, got ${leafHashes.length}`);
    }
    this.leaves = leafHashes.length;
    this.#nodes = new Uint8Array((2 * this.leaves - 1) * SHA256_LEN);
    this.#build(leafHashes, 0, this.leaves, 0);
    this.root = this.#node(0, this.leaves, 0).slice();
  }

  /**
   * Where the subtree of `size` leaves from leaf `start` is in post-order, when the way down to
   * it from the root turns right `right` times: the subtrees wholly left of it (the left
   * siblings on the way, 2·start − right nodes) come first, then its own 2·size − 1 nodes.
   */
  static #index(start: number, size: number, right: number): number {
    return 2 * start - right + 2 * size - 2;
  }

  #node(start: number, size: number, right: number): Uint8Array {
    const at = MerkleTree.#index(start, size, right) * SHA256_LEN;
    return this.#nodes.subarray(at, at + SHA256_LEN);
  }

  #build(leaves: readonly Uint8Array[], start: number, size: number, right: number): void {
    let h: Uint8Array;
    if (size === 1) {
      h = leaves[start]!;
      if (h.length !== SHA256_LEN) throw new RangeError(`Leaf ${start} is not a SHA-256 hash`);
    } else {
      const k = split(size);
      this.#build(leaves, start, k, right);
      this.#build(leaves, start + k, size - k, right + 1);
      h = nodeHash(this.#node(start, k, right), this.#node(start + k, size - k, right + 1));
    }
    this.#nodes.set(h, MerkleTree.#index(start, size, right) * SHA256_LEN);
  }

  /** The audit path of leaf `m`: sibling hashes, leaf level first, concatenated. */
  proof(m: number): Uint8Array {
    if (!Number.isInteger(m) || m < 0 || m >= this.leaves) {
      throw new RangeError(`Leaf ${m} is not in a tree of ${this.leaves}`);
    }
    const out = new Uint8Array(proofLength(m, this.leaves) * SHA256_LEN);
    // From the root down: the siblings fill the path from its end (the root level) back.
    let start = 0, size = this.leaves, right = 0, at = out.length;
    while (size > 1) {
      const k = split(size);
      at -= SHA256_LEN;
      if (m - start < k) {
        out.set(this.#node(start + k, size - k, right + 1), at);
        size = k;
      } else {
        out.set(this.#node(start, k, right), at);
        start += k;
        size -= k;
        right++;
      }
    }
    return out;
  }
}
