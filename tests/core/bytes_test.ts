/**
 * Tests of the byte comparisons for public values (`lib/core/bytes.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { bytesEqual, compareBytes } from "../../lib/core/bytes.ts";

Deno.test("bytesEqual: same bytes, whatever the buffer or offset; any difference or length is unequal", () => {
  const a = Uint8Array.from([1, 2, 3, 4]);
  assert.equal(bytesEqual(a, a.slice()), true);
  assert.equal(bytesEqual(new Uint8Array(0), new Uint8Array(0)), true);
  const big = Uint8Array.from([9, 1, 2, 3, 4, 9]);
  assert.equal(bytesEqual(big.subarray(1, 5), a), true);
  for (let i = 0; i < a.length; i++) {
    const x = a.slice();
    x[i]! ^= 0x80;
    assert.equal(bytesEqual(a, x), false, `differs at ${i}`);
  }
  assert.equal(bytesEqual(a, a.subarray(0, 3)), false);
  assert.equal(bytesEqual(a.subarray(0, 0), a), false);
});

Deno.test("compareBytes: lexicographic, a prefix first, equal is zero", () => {
  const cases: [number[], number[], number][] = [
    [[], [], 0],
    [[1, 2], [1, 2], 0],
    [[1, 2], [1, 3], -1],
    [[2], [1, 255], 1],
    [[1], [1, 0], -1],
    [[255], [0, 0, 0], 1],
  ];
  for (const [x, y, sign] of cases) {
    const c = compareBytes(Uint8Array.from(x), Uint8Array.from(y));
    assert.equal(Math.sign(c), sign, `${x} vs ${y}`);
    assert.equal(
      Math.sign(compareBytes(Uint8Array.from(y), Uint8Array.from(x))),
      sign === 0 ? 0 : -sign,
    );
  }
});
