/**
 * Tests of {@link constantTimeEqual}: equality of contents at any length and offset, unequal
 * lengths are unequal (never the throw of a bare `timingSafeEqual`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { constantTimeEqual } from "../../lib/crypto/constant_time.ts";

const A = new Uint8Array(8).fill(0xa1), B = new Uint8Array(8).fill(0xb2);

Deno.test("constantTimeEqual compares contents, of any length, without throwing", () => {
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  assert.equal(constantTimeEqual(A, A.slice()), true);
  assert.equal(constantTimeEqual(A, B), false);
  for (let i = 0; i < A.length; i++) {
    const x = A.slice();
    x[i]! ^= 1;
    assert.equal(constantTimeEqual(A, x), false, `differs at byte ${i}`);
  }
  // Different lengths are unequal (Node's timingSafeEqual alone would throw).
  assert.equal(constantTimeEqual(A, A.subarray(0, 7)), false);
  assert.equal(constantTimeEqual(new Uint8Array(0), A), false);
  // Views at offsets into larger buffers compare by their own bytes only.
  const big = new Uint8Array(32).fill(0xee);
  big.set(A, 5);
  assert.equal(constantTimeEqual(big.subarray(5, 5 + A.length), A), true);
  assert.equal(constantTimeEqual(big.subarray(4, 4 + A.length), A), false);
});
