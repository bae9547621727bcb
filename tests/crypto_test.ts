/**
 * Tests of end-to-end sessions: both sides derive matching directional keys, tampering and
 * wrong keys are rejected, and replayed frames are refused.
 */
import assert from "node:assert/strict";
import { Identity, REPLAY_WINDOW } from "../lib/crypto.ts";

const enc = new TextEncoder();
const aad = enc.encode("header");

function pair() {
  const a = Identity.generate(), b = Identity.generate();
  return { ab: a.sessionWith(b.publicKey)!, ba: b.sessionWith(a.publicKey)!, a, b };
}

Deno.test("crypto: a sealed frame opens on the other side, in both directions", () => {
  const { ab, ba } = pair();
  const c1 = ab.nextCounter();
  assert.deepEqual(ba.open(c1, aad, ab.seal(c1, aad, enc.encode("hi"))), enc.encode("hi"));
  const c2 = ba.nextCounter();
  assert.deepEqual(ab.open(c2, aad, ba.seal(c2, aad, enc.encode("yo"))), enc.encode("yo"));
});

Deno.test("crypto: tampered ciphertext, header or counter, or a third party's key, fail", () => {
  const { ab, ba, a } = pair();
  const c = ab.nextCounter();
  const sealed = ab.seal(c, aad, enc.encode("secret"));
  const flipped = sealed.slice();
  flipped[0]! ^= 1;
  assert.equal(ba.open(c, aad, flipped), null);
  assert.equal(ba.open(c, enc.encode("other"), sealed), null);
  assert.equal(ba.open(c + 1n, aad, sealed), null);
  const mallory = Identity.generate().sessionWith(a.publicKey)!;
  assert.equal(mallory.open(c, aad, sealed), null);
  // Failed attempts do not burn the counter: the genuine frame still opens.
  assert.deepEqual(ba.open(c, aad, sealed), enc.encode("secret"));
});

Deno.test("crypto: a replayed frame is refused; reordering inside the window is fine", () => {
  const { ab, ba } = pair();
  const frames = Array.from({ length: 5 }, (_, i) => {
    const c = ab.nextCounter();
    return { c, s: ab.seal(c, aad, enc.encode(`m${i}`)) };
  });
  for (const i of [0, 3, 1, 4, 2]) assert.ok(ba.open(frames[i]!.c, aad, frames[i]!.s));
  for (const f of frames) assert.equal(ba.open(f.c, aad, f.s), null, `replay of ${f.c}`);
});

Deno.test("crypto: frames older than the replay window are refused", () => {
  const { ab, ba } = pair();
  const first = ab.nextCounter();
  const old = ab.seal(first, aad, enc.encode("old"));
  let last = first;
  for (let i = 0n; i < REPLAY_WINDOW; i++) {
    last = ab.nextCounter();
    assert.ok(ba.open(last, aad, ab.seal(last, aad, enc.encode("x"))));
  }
  assert.equal(ba.open(first, aad, old), null);
  assert.equal(last, first + REPLAY_WINDOW);
});

Deno.test("crypto: an invalid public key gives no session", () => {
  const a = Identity.generate();
  assert.equal(a.sessionWith(new Uint8Array(31)), null);
  assert.equal(a.sessionWith(new Uint8Array(32)), null, "all-zero point gives an all-zero secret");
});
