/**
 * Tests of {@link SecureLink}'s sealing: the SEALED header it writes (from a per-peer template)
 * is exactly the codec's for every counter, frames open on the other side once, and a replay
 * is refused.
 */
import assert from "node:assert/strict";
import { noiseFactory } from "../lib/handshake.ts";
import { SecureLink, withCounter } from "../lib/secure_link.ts";
import { decodeSealed, encodeSealedHeader, SEALED_HEADER_LEN } from "../lib/wire.ts";
import { prng, randomBytesFrom } from "./support/prng.ts";

const A_ID = Uint8Array.of(1, 1, 1, 1, 1, 1, 1, 1);
const B_ID = Uint8Array.of(2, 2, 2, 2, 2, 2, 2, 2);
const ROOM = new Uint8Array(16).fill(9);

Deno.test("secure link: the header template with a counter equals the codec's header", () => {
  const template = encodeSealedHeader(A_ID, B_ID, 0n);
  const counters = [
    1n,
    255n,
    256n,
    0xffff_ffffn,
    0x1_0000_0000n,
    0x1234_5678_9abcn,
    BigInt(Number.MAX_SAFE_INTEGER),
    BigInt(Number.MAX_SAFE_INTEGER) + 2n,
    0xffff_ffff_ffff_ffffn,
  ];
  for (const c of counters) {
    const h = withCounter(template, c);
    assert.equal(h.length, SEALED_HEADER_LEN);
    assert.deepEqual(h, encodeSealedHeader(A_ID, B_ID, c), `counter ${c}`);
  }
  // The template itself is never written to.
  assert.deepEqual(template, encodeSealedHeader(A_ID, B_ID, 0n));
});

/** Makes the links of peers A and B (same room secret, seeded keys). */
function pair(seed = 5, psk?: Uint8Array) {
  const rng = prng(seed);
  const random = (n: number) => randomBytesFrom(rng, n);
  const secret = psk ?? random(32);
  const make = (myId: Uint8Array, theirId: Uint8Array, name: string, key = random(32)) =>
    new SecureLink({
      now: 0,
      myId,
      theirId,
      roomId: ROOM,
      myName: name,
      noise: noiseFactory({ staticKey: key, psk: secret, random }),
    });
  return { make, random, a: make(A_ID, B_ID, "a"), b: make(B_ID, A_ID, "b") };
}

type Sent = { from: SecureLink; stage: number; attempt: number; message: Uint8Array };

/** Delivers every queued handshake message between the two links, `rounds` times over. */
function exchange(a: SecureLink, b: SecureLink, rounds = 4, drop = (_m: Sent) => false): Sent[] {
  const seen: Sent[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      for (let h = from.poll(); h; h = from.poll()) {
        const m = { from, stage: h.stage, attempt: h.attempt, message: h.message };
        seen.push(m);
        if (drop(m)) continue;
        const r = to.handle(0, h.stage, h.attempt, h.message);
        // Message 2 answers message 1 directly (the caller routes it): deliver it back.
        if (r.kind === "answer") {
          const back = { from: to, stage: 2, attempt: r.attempt, message: r.message };
          seen.push(back);
          if (!drop(back)) from.handle(0, 2, r.attempt, r.message);
        }
      }
    }
  }
  return seen;
}

/** Two links whose handshakes (one each way) both completed. */
function linkedPair(): { a: SecureLink; b: SecureLink } {
  const { a, b } = pair();
  a.rekey(0);
  b.rekey(0);
  exchange(a, b);
  assert.ok(a.established && b.established, "both sides established");
  return { a, b };
}

Deno.test("secure link: sealed frames carry the codec's header, open once, in any order", () => {
  const { a, b } = linkedPair();
  const enc = new TextEncoder();
  const frames = [1, 2, 3, 4].map((i) => b.seal(enc.encode(`frame ${i}`))!);
  for (const [i, f] of frames.entries()) {
    const s = decodeSealed(f);
    assert.ok(s.ok);
    assert.equal(s.value.counter, BigInt(i + 1));
    assert.deepEqual(s.value.header, encodeSealedHeader(B_ID, A_ID, BigInt(i + 1)));
  }
  // Out of order is fine; each opens once.
  for (const i of [2, 0, 3, 1]) {
    const s = decodeSealed(frames[i]!);
    assert.ok(s.ok);
    const plain = a.open(s.value);
    assert.ok(plain instanceof Uint8Array, `frame ${i + 1} opens`);
    assert.equal(new TextDecoder().decode(plain), `frame ${i + 1}`);
    assert.equal(a.open(s.value), "replay");
  }
  // The other direction uses the other handshake's key.
  const back = a.seal(enc.encode("back"))!;
  const s = decodeSealed(back);
  assert.ok(s.ok);
  assert.deepEqual(s.value.header, encodeSealedHeader(A_ID, B_ID, 1n));
  assert.equal(new TextDecoder().decode(b.open(s.value) as Uint8Array), "back");
  // A frame claiming another sender does not open.
  assert.equal(b.open({ ...s.value, from: B_ID }), "failed");
});
