import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { leafHash, MerkleTree, proofLength, rootFromPath } from "../../lib/files/merkle.ts";

const h = (...parts: Uint8Array[]) => {
  const x = createHash("sha256");
  for (const p of parts) x.update(p);
  return new Uint8Array(x.digest());
};

/** RFC 9162 2.1.1, written from the text: MTH of a list of leaf hashes. */
function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return h(new Uint8Array([1]), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

const leavesOf = (n: number) =>
  Array.from({ length: n }, (_, i) => leafHash(new Uint8Array([i, i >> 8, 7])));

Deno.test("the root is RFC 9162's Merkle tree hash, leaves domain-separated", () => {
  assert.deepEqual(leafHash(new Uint8Array([5])), h(new Uint8Array([0, 5])));
  for (let n = 1; n <= 33; n++) {
    const leaves = leavesOf(n);
    assert.deepEqual(new MerkleTree(leaves).root, mth(leaves), `n = ${n}`);
  }
});

Deno.test("every leaf's audit path leads to the root; any other leaf, index or path does not", () => {
  for (let n = 1; n <= 33; n++) {
    const leaves = leavesOf(n), tree = new MerkleTree(leaves);
    for (let m = 0; m < n; m++) {
      const path = tree.proof(m);
      assert.equal(path.length, proofLength(m, n) * 32);
      assert.deepEqual(rootFromPath(m, n, leaves[m]!, path), tree.root);
      if (n > 1) {
        assert.notDeepEqual(rootFromPath(m, n, leaves[(m + 1) % n]!, path), tree.root);
        const bad = path.slice();
        bad[0]! ^= 1;
        assert.notDeepEqual(rootFromPath(m, n, leaves[m]!, bad), tree.root);
      }
      if (n > 1) assert.equal(rootFromPath(m, n, leaves[m]!, path.subarray(32)), null);
      assert.equal(rootFromPath(n, n, leaves[m]!, path), null);
    }
  }
});
