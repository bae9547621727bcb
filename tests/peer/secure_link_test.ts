/**
 * Tests of {@link SecureLink}: the SEALED header it writes (from a per-peer template) is exactly
 * the codec's for every counter, frames open on the other side once, and a replay is refused;
 * each side's own handshake gives its sending key, reflected or spliced handshakes are refused,
 * a re-key keeps the previous key until confirmed, and handshake repeats are bounded.
 */
import assert from "node:assert/strict";
import {
  DENSE_GAP,
  DENSE_SPAN,
  MAX_ANSWERS,
  noiseFactory,
} from "../../lib/peer/handshake/handshake.ts";
import { SecureLink, withCounter } from "../../lib/peer/handshake/secure_link.ts";
import { decodeSealed, encodeSealedHeader, SEALED_HEADER_LEN } from "../../lib/wire/peer_frame.ts";
import { seededRandom } from "../support/prng.ts";

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
  const random = seededRandom(seed);
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

Deno.test("secure link: each side's own handshake gives its sending key; both need both", () => {
  const { a, b } = pair(6);
  a.rekey(0);
  b.rekey(0);
  // Only A's handshake runs (B's message 1 is lost): A can seal, B cannot yet.
  exchange(a, b, 4, (m) => m.from === b && m.stage === 1);
  assert.equal(a.established, true);
  assert.equal(b.established, false);
  const f = decodeSealed(a.seal(new TextEncoder().encode("early"))!);
  assert.ok(f.ok);
  assert.equal(new TextDecoder().decode(b.open(f.value) as Uint8Array), "early");
  // B has no sending key, and A cannot open anything yet: nothing B could send opens.
  assert.equal(b.seal(new Uint8Array(1)), undefined);
  assert.equal(a.open({ ...f.value, from: B_ID }), "unkeyed");
});

Deno.test("secure link: a message 1 reflected back to its sender is refused (roles are in the prologue)", () => {
  const { a, b } = pair(7);
  a.rekey(0);
  const msg1 = a.poll()!;
  assert.equal(msg1.stage, 1);
  // Reflected: A takes its own message 1 for B's. The prologue names A as the initiator of
  // its own handshake and B as the initiator of the one A answers, so it does not read.
  assert.equal(a.handle(0, 1, msg1.attempt, msg1.message).kind, "failed");
  // B answers it.
  assert.equal(b.handle(0, 1, msg1.attempt, msg1.message).kind, "answer");
});

Deno.test("secure link: two handshakes revealing different identities are refused", () => {
  const { make, a } = pair(8);
  // B answers A's handshake with one identity and initiates its own with another; both with
  // the room secret (an insider splicing two sessions).
  const b1 = make(B_ID, A_ID, "b"), b2 = make(B_ID, A_ID, "b");
  a.rekey(0);
  b2.rekey(0);
  const m1 = a.poll()!;
  const r = b1.handle(0, 1, m1.attempt, m1.message);
  assert.equal(r.kind, "answer");
  if (r.kind !== "answer") return;
  assert.equal(a.handle(0, 2, r.attempt, r.message).kind, "sending");
  const n1 = b2.poll()!;
  const back = a.handle(0, 1, n1.attempt, n1.message);
  assert.equal(back.kind, "answer");
  if (back.kind !== "answer") return;
  assert.equal(b2.handle(0, 2, back.attempt, back.message).kind, "sending");
  let n3 = b2.poll();
  while (n3 && n3.stage !== 3) n3 = b2.poll();
  const last = a.handle(0, 3, n3!.attempt, n3!.message);
  assert.equal(last.kind, "mismatch");
  // Nothing from the second session opens.
  const f = decodeSealed(b2.seal(new Uint8Array(4))!);
  assert.ok(f.ok);
  assert.equal(a.open(f.value), "unkeyed");
});

Deno.test("secure link: a re-key seals with the previous key until the peer confirms the new one", () => {
  const { a, b } = linkedPair();
  const enc = new TextEncoder(), dec = new TextDecoder();
  const opens = (from: SecureLink, to: SecureLink, text: string) => {
    const s = decodeSealed(from.seal(enc.encode(text))!);
    assert.ok(s.ok);
    const plain = to.open(s.value);
    return plain instanceof Uint8Array ? dec.decode(plain) : plain;
  };
  const first = a.attempt;
  a.confirm(first); // B's confirmation of A's first handshake.
  a.rekey(200);
  // Messages 1 and 2 go through; message 3 is lost: B does not have A's new key.
  exchange(a, b, 2, (m) => m.stage === 3);
  assert.notEqual(a.attempt, first);
  assert.equal(opens(a, b, "still old"), "still old", "sealed under the previous key");
  // Message 3 arrives, and B's confirmation.
  exchange(a, b, 1);
  a.handleTimeout(10_000); // The repeat of message 3.
  exchange(a, b, 1);
  a.confirm(a.attempt);
  assert.equal(opens(a, b, "new"), "new", "sealed under the new key, which B now has");
  assert.equal(opens(b, a, "back"), "back");
});

Deno.test("handshake: message 1 goes densely and directly first, then backs off; bounded", () => {
  const { a } = pair(9);
  a.rekey(0);
  const sent: { at: number; route: string }[] = [];
  for (let now = 0; now <= 60_000; now++) {
    if ((a.nextTimeout() ?? Infinity) <= now) a.handleTimeout(now);
    for (let h = a.poll(); h; h = a.poll()) sent.push({ at: now, route: h.route });
  }
  const dense = sent.filter((s) => s.at < DENSE_SPAN);
  assert.equal(dense[0]!.route, "all", "the first goes relayed and direct");
  assert.ok(dense.slice(1).every((s) => s.route === "direct"), "dense repeats are direct only");
  assert.equal(dense.length, DENSE_SPAN / DENSE_GAP, JSON.stringify(dense));
  // Then 0.5, 1, 2, 4, 8, 8, ... s: about a dozen more in the minute, never faster.
  const later = sent.filter((s) => s.at >= DENSE_SPAN);
  assert.ok(later.every((s) => s.route === "all"));
  assert.ok(later.length >= 8 && later.length <= 14, `${later.length} repeats`);
});

Deno.test("handshake: copies of one message 1 are answered a bounded number of times", () => {
  const { a, b } = pair(10);
  a.rekey(0);
  const m1 = a.poll()!;
  let answers = 0;
  for (let i = 0; i < 200; i++) {
    if (b.handle(i, 1, m1.attempt, m1.message).kind === "answer") answers++;
  }
  assert.equal(answers, MAX_ANSWERS);
});

Deno.test("handshake: only a copy of the real message 3 asks for a reconfirmation, not a forgery", () => {
  const { a, b } = pair(11);
  a.rekey(0);
  b.rekey(0);
  const seen = exchange(a, b);
  const m3 = seen.find((m) => m.from === a && m.stage === 3)!;
  // The attempt travels in clear: a forger needs nothing else to build a "message 3".
  const forged = new Uint8Array(m3.message.length).fill(0x42);
  assert.equal(b.handle(5_000, 3, m3.attempt, forged).kind, "ignored");
  // A repeat of the real one (our confirmation was lost) is still reconfirmed.
  assert.equal(b.handle(10_000, 3, m3.attempt, m3.message).kind, "reconfirm");
});

Deno.test("secure link: two re-keys before a confirmation still open what the peer seals", () => {
  const { a, b } = linkedPair();
  const enc = new TextEncoder(), dec = new TextDecoder();
  /** Delivers A's handshake messages to B and B's answers back at `now`; no confirmation. */
  const run = (now: number) => {
    for (let round = 0; round < 3; round++) {
      for (let h = a.poll(); h; h = a.poll()) {
        const r = b.handle(now, h.stage, h.attempt, h.message);
        if (r.kind === "answer") a.handle(now, 2, r.attempt, r.message);
      }
    }
  };
  a.confirm(a.attempt);
  // Two new epochs in quick succession (say, both sides re-registered after a server restart):
  // B completes both of A's handshakes; A's confirmations are still on their way.
  a.rekey(1_000);
  run(1_000);
  a.rekey(1_300);
  run(1_300);
  // Until a confirmation arrives A seals under the key B last confirmed: B must still open it.
  const s = decodeSealed(a.seal(enc.encode("in between"))!);
  assert.ok(s.ok);
  const plain = b.open(s.value);
  assert.equal(plain instanceof Uint8Array ? dec.decode(plain) : plain, "in between");
});

Deno.test("secure link: a frame that arrives before its key is dropped, not kept; later it opens once, its replays never", () => {
  const { a, b } = pair(9);
  a.rekey(0);
  b.rekey(0);
  // B's message 3 (which gives A the key to open what B seals) is held back.
  let held: Sent | undefined;
  exchange(a, b, 4, (m) => {
    if (m.from === b && m.stage === 3 && !held) {
      held = m;
      return true;
    }
    return false;
  });
  assert.ok(held && b.established, "B can seal; A cannot open yet");
  const f = decodeSealed(b.seal(new TextEncoder().encode("early"))!);
  assert.ok(f.ok);
  // Before the key: unkeyed, however often it comes (nothing is buffered to be opened later).
  for (let i = 0; i < 5; i++) assert.equal(a.open(f.value), "unkeyed");
  a.handle(0, held.stage, held.attempt, held.message);
  // With the key: once, and never again.
  const plain = a.open(f.value);
  assert.ok(plain instanceof Uint8Array);
  assert.equal(new TextDecoder().decode(plain), "early");
  for (let i = 0; i < 5; i++) assert.equal(a.open(f.value), "replay");
});
