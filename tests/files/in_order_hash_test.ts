import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { InOrderHash, MAX_AHEAD } from "../../lib/files/in_order_hash.ts";

const sha = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());

function bytesOf(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 131 + (i >> 7)) & 0xff);
}

/** Writes `order`'s chunks of `file` (chunk size `c`), reading ranges back from `file`. */
function run(h: InOrderHash, file: Uint8Array, c: number, order: number[]): number {
  let readBacks = 0;
  for (const k of order) {
    h.written(k * c, file.subarray(k * c, Math.min((k + 1) * c, file.length)));
    for (let r = h.pollReadBack(); r; r = h.pollReadBack()) {
      readBacks++;
      h.readBack(r.position, file.slice(r.position, r.position + r.length));
    }
  }
  return readBacks;
}

Deno.test("in-order hash: chunks in order are hashed as written, nothing read back", () => {
  const file = bytesOf(10_000), h = new InOrderHash();
  assert.equal(run(h, file, 1024, [...Array(10).keys()]), 0);
  assert.equal(h.hashed, 10_000);
  assert.deepEqual(h.digest(10_000), sha(file));
});

Deno.test("in-order hash: chunks out of order are read back once the gap before them fills", () => {
  const file = bytesOf(10_000);
  for (const order of [[9, 8, 7, 6, 5, 4, 3, 2, 1, 0], [1, 3, 5, 7, 9, 0, 2, 4, 6, 8]]) {
    const h = new InOrderHash();
    const readBacks = run(h, file, 1024, order);
    assert.equal(readBacks, order[0] === 9 ? 9 : 5, JSON.stringify(order));
    assert.deepEqual(h.digest(10_000), sha(file));
  }
});

Deno.test("in-order hash: a chunk written twice is taken once; an overlap or a failed read gives up", () => {
  const file = bytesOf(4096);
  const twice = new InOrderHash();
  run(twice, file, 1024, [0, 0, 2, 2, 1, 1, 3]);
  assert.deepEqual(twice.digest(4096), sha(file));

  const overlap = new InOrderHash();
  overlap.written(0, file.subarray(0, 1024));
  overlap.written(512, file.subarray(512, 2048));
  assert.equal(overlap.following, false);
  assert.equal(overlap.digest(4096), undefined, "the caller hashes the file instead");

  const unread = new InOrderHash();
  unread.written(1024, file.subarray(1024, 2048));
  unread.written(0, file.subarray(0, 1024));
  const r = unread.pollReadBack()!;
  unread.readBack(r.position, null);
  assert.equal(unread.following, false);
});

Deno.test("in-order hash: at most MAX_AHEAD chunks are remembered, then it gives up", () => {
  const h = new InOrderHash();
  const one = new Uint8Array(1);
  for (let k = 1; k <= MAX_AHEAD; k++) h.written(k, one);
  assert.equal(h.following, true);
  h.written(MAX_AHEAD + 1, one);
  assert.equal(h.following, false);
  assert.equal(h.pollReadBack(), undefined);
});

Deno.test("in-order hash: no digest before every byte is hashed", () => {
  const file = bytesOf(3000), h = new InOrderHash();
  run(h, file, 1000, [0, 2]);
  assert.equal(h.digest(3000), undefined);
  assert.equal(h.following, true, "still following: chunk 1 may come");
});
