/**
 * Tests of transport sessions made by a real handshake: frames open on the other side only,
 * tampering and other sessions' keys are rejected, replayed and too-old frames are refused, two
 * handshakes between the same identities never share keys (fresh ephemerals), `sealInto`
 * writes what `seal` returns, and a fuzz of mutated frames never opens nor moves the window.
 */
import assert from "node:assert/strict";
import { type PairSession, REPLAY_WINDOW, SEAL_OVERHEAD } from "../../lib/crypto/session.ts";
import { prng, randomBytesFrom } from "../support/prng.ts";
import { handshakeSessions as pair } from "../support/sessions.ts";

const enc = new TextEncoder();
const aad = enc.encode("header");

/** Seals `text` as the session's first outgoing frame (counter 1). */
function firstFrame(s: PairSession, text: string): { c: bigint; sealed: Uint8Array } {
  const c = s.nextCounter();
  assert.equal(c, 1n);
  return { c, sealed: s.seal(c, aad, enc.encode(text)) };
}

Deno.test("session: a sealed frame opens on the other side, in both directions", () => {
  const { ab, ba } = pair();
  const c1 = ab.nextCounter();
  assert.deepEqual(ba.open(c1, aad, ab.seal(c1, aad, enc.encode("hi"))), enc.encode("hi"));
  const c2 = ba.nextCounter();
  assert.deepEqual(ab.open(c2, aad, ba.seal(c2, aad, enc.encode("yo"))), enc.encode("yo"));
});

Deno.test("session: the two directions use different keys (a frame is not reflected back)", () => {
  const { ab, ba } = pair();
  const x = firstFrame(ab, "same text");
  const y = firstFrame(ba, "same text");
  assert.notDeepEqual(x.sealed, y.sealed, "same counter and text, different direction keys");
  assert.equal(ab.open(x.c, aad, x.sealed), null, "a's own frame does not open at a");
  assert.deepEqual(ba.open(x.c, aad, x.sealed), enc.encode("same text"));
});

Deno.test("session: tampered ciphertext, header or counter, or a third party's key, fail", () => {
  const { ab, ba } = pair();
  const c = ab.nextCounter();
  const sealed = ab.seal(c, aad, enc.encode("secret"));
  const flipped = sealed.slice();
  flipped[0]! ^= 1;
  assert.equal(ba.open(c, aad, flipped), null);
  const tag = sealed.slice();
  tag[tag.length - 1]! ^= 0x80;
  assert.equal(ba.open(c, aad, tag), null);
  assert.equal(ba.open(c, enc.encode("other"), sealed), null);
  assert.equal(ba.open(c + 1n, aad, sealed), null);
  assert.equal(ba.open(c, aad, sealed.subarray(0, 15)), null, "shorter than a tag");
  const mallory = pair().ba;
  assert.equal(mallory.open(c, aad, sealed), null, "another session's keys");
  // Failed attempts do not burn the counter: the genuine frame still opens.
  assert.deepEqual(ba.open(c, aad, sealed), enc.encode("secret"));
});

Deno.test("session: a replayed frame is refused; reordering inside the window is fine", () => {
  const { ab, ba } = pair();
  const frames = Array.from({ length: 5 }, (_, i) => {
    const c = ab.nextCounter();
    return { c, s: ab.seal(c, aad, enc.encode(`m${i}`)) };
  });
  for (const i of [0, 3, 1, 4, 2]) assert.ok(ba.open(frames[i]!.c, aad, frames[i]!.s));
  for (const f of frames) assert.equal(ba.open(f.c, aad, f.s), null, `replay of ${f.c}`);
});

Deno.test("session: frames older than the replay window are refused", () => {
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

Deno.test("session: two handshakes never give the same keys (no nonce reuse across sessions)", () => {
  // Sessions restart their counters at 1; only fresh keys per handshake make that safe.
  const x = firstFrame(pair().ab, "same text"), y = firstFrame(pair().ab, "same text");
  const ct = (s: Uint8Array) => [...s.subarray(0, s.length - 16)];
  assert.notDeepEqual(ct(x.sealed), ct(y.sealed), "counter 1 under two sessions: same keystream");
});

Deno.test("session: sealInto writes what seal returns, at an offset, and refuses a buffer without room", () => {
  const { ab, ba } = pair();
  const text = enc.encode("sealed in place");
  const c1 = ab.nextCounter(), c2 = ab.nextCounter();
  const frame = new Uint8Array(aad.length + text.length + SEAL_OVERHEAD);
  frame.set(aad);
  ab.sealInto(c1, aad, text, frame, aad.length);
  assert.deepEqual(ba.open(c1, aad, frame.subarray(aad.length)), text);
  assert.throws(() => ab.sealInto(c2, aad, text, frame, aad.length + 1), RangeError);
  assert.throws(() => ab.sealInto(c2, aad, text, new Uint8Array(text.length), 0), RangeError);
});

Deno.test("session: 20,000 mutated frames never open, and the genuine ones still do", () => {
  const { ab, ba } = pair();
  const rng = prng(0x5e55);
  const frames = Array.from({ length: 8 }, (_, i) => {
    const c = ab.nextCounter();
    return {
      c,
      h: enc.encode(`header ${i}`),
      s: ab.seal(c, enc.encode(`header ${i}`), enc.encode(`frame ${i}`)),
    };
  });
  let opened = 0;
  for (let k = 0; k < 20_000; k++) {
    const f = frames[Math.floor(rng() * frames.length)]!;
    let c = f.c, h = f.h, s: Uint8Array = f.s.slice();
    const r = Math.floor(rng() * 5);
    if (r === 0) s[Math.floor(rng() * s.length)]! ^= 1 + Math.floor(rng() * 255);
    if (r === 1) s = s.subarray(0, Math.floor(rng() * s.length));
    if (r === 2) s = randomBytesFrom(rng, Math.floor(rng() * 64));
    if (r === 3) c = f.c + 1n + BigInt(Math.floor(rng() * 16));
    if (r === 4) (h = h.slice(), h[Math.floor(rng() * h.length)]! ^= 1 << Math.floor(rng() * 8));
    if (ba.open(c, h, s) !== null) opened++;
  }
  assert.equal(opened, 0, "a mutated frame opened");
  // Failures moved nothing: every genuine frame opens once, in any order, then never again.
  for (const f of [...frames].reverse()) {
    assert.deepEqual(ba.open(f.c, f.h, f.s), enc.encode(`frame ${frames.indexOf(f)}`));
  }
  for (const f of frames) assert.equal(ba.open(f.c, f.h, f.s), null);
});
