/**
 * Tests of end-to-end sessions: both sides derive matching directional keys bound to both peer
 * ids and the pair's introduction epoch, tampering and wrong keys are rejected, replayed frames
 * are refused, and the same key pair under other ids or another epoch never reuses a nonce.
 */
import assert from "node:assert/strict";
import {
  bytesEqual,
  compareBytes,
  Identity,
  type PairSession,
  REPLAY_WINDOW,
  type SessionBinding,
} from "../lib/crypto.ts";
import { EPOCH_LEN, ID_LEN } from "../lib/wire.ts";

const enc = new TextEncoder();
const aad = enc.encode("header");

function filled(len: number, byte: number): Uint8Array {
  return new Uint8Array(len).fill(byte);
}

const ID_A = filled(ID_LEN, 0xa1), ID_B = filled(ID_LEN, 0xb2), ID_C = filled(ID_LEN, 0xc3);
const EPOCH_1 = filled(EPOCH_LEN, 1), EPOCH_2 = filled(EPOCH_LEN, 2);

/** Both sides of a pair: `ab` is a's session with b, `ba` b's with a. */
function sessions(
  a: Identity,
  b: Identity,
  idA = ID_A,
  idB = ID_B,
  epoch = EPOCH_1,
): { ab: PairSession; ba: PairSession } {
  const ab = a.sessionWith(b.publicKey, { myId: idA, theirId: idB, epoch });
  const ba = b.sessionWith(a.publicKey, { myId: idB, theirId: idA, epoch });
  assert.ok(ab && ba, "valid keys and distinct ids give sessions");
  return { ab, ba };
}

function pair() {
  const a = Identity.generate(), b = Identity.generate();
  return { ...sessions(a, b), a, b };
}

/** Seals `text` as the session's first outgoing frame (counter 1). */
function firstFrame(s: PairSession, text: string): { c: bigint; sealed: Uint8Array } {
  const c = s.nextCounter();
  assert.equal(c, 1n);
  return { c, sealed: s.seal(c, aad, enc.encode(text)) };
}

Deno.test("crypto: a sealed frame opens on the other side, in both directions", () => {
  const { ab, ba } = pair();
  const c1 = ab.nextCounter();
  assert.deepEqual(ba.open(c1, aad, ab.seal(c1, aad, enc.encode("hi"))), enc.encode("hi"));
  const c2 = ba.nextCounter();
  assert.deepEqual(ab.open(c2, aad, ba.seal(c2, aad, enc.encode("yo"))), enc.encode("yo"));
});

Deno.test("crypto: the two directions use different keys (a frame is not reflected back)", () => {
  const { ab, ba } = pair();
  const x = firstFrame(ab, "same text");
  const y = firstFrame(ba, "same text");
  assert.notDeepEqual(x.sealed, y.sealed, "same counter and text, different direction keys");
  assert.equal(ab.open(x.c, aad, x.sealed), null, "a's own frame does not open at a");
  assert.deepEqual(ba.open(x.c, aad, x.sealed), enc.encode("same text"));
});

Deno.test("crypto: tampered ciphertext, header or counter, or a third party's key, fail", () => {
  const { ab, ba, a } = pair();
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
  const mallory = Identity.generate().sessionWith(a.publicKey, {
    myId: ID_B,
    theirId: ID_A,
    epoch: EPOCH_1,
  })!;
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
  const bind: SessionBinding = { myId: ID_A, theirId: ID_B, epoch: EPOCH_1 };
  assert.equal(a.sessionWith(new Uint8Array(31), bind), null);
  assert.equal(a.sessionWith(new Uint8Array(33), bind), null);
  assert.equal(a.sessionWith(new Uint8Array(32), bind), null, "all-zero point: all-zero secret");
  // u = 1 is another low-order point: its shared secret is all zeros too.
  const one = new Uint8Array(32);
  one[0] = 1;
  assert.equal(a.sessionWith(one, bind), null, "low-order point u = 1");
});

Deno.test("crypto: equal ids give no session", () => {
  const a = Identity.generate(), b = Identity.generate();
  assert.equal(a.sessionWith(b.publicKey, { myId: ID_A, theirId: ID_A, epoch: EPOCH_1 }), null);
  assert.equal(
    a.sessionWith(b.publicKey, { myId: ID_A, theirId: ID_A.slice(), epoch: EPOCH_1 }),
    null,
    "equal by content, not identity",
  );
});

Deno.test("crypto: both sides agree whichever id sorts first", () => {
  const a = Identity.generate(), b = Identity.generate();
  for (const [idA, idB] of [[ID_A, ID_B], [ID_B, ID_A], [ID_C, ID_A]] as const) {
    assert.notEqual(compareBytes(idA, idB), 0);
    const { ab, ba } = sessions(a, b, idA, idB);
    const x = firstFrame(ab, "ping");
    assert.deepEqual(ba.open(x.c, aad, x.sealed), enc.encode("ping"));
    const y = firstFrame(ba, "pong");
    assert.deepEqual(ab.open(y.c, aad, y.sealed), enc.encode("pong"));
  }
});

Deno.test("crypto: the same key pair under other ids gives unrelated sessions (no nonce reuse)", () => {
  // The defect this guards against: two introductions carrying one key under two ids used to
  // derive one key, so both sessions sealed their counter-1 frames with the same key and nonce.
  const a = Identity.generate(), b = Identity.generate();
  const variants = [
    sessions(a, b, ID_A, ID_B),
    sessions(a, b, ID_A, ID_C), // b's key, introduced under another id
    sessions(a, b, ID_C, ID_B), // a's key under another id
    sessions(a, b, ID_B, ID_A), // the ids swapped
  ];
  const text = "attack at dawn";
  const frames = variants.map(({ ab }) => firstFrame(ab, text));
  for (let i = 0; i < variants.length; i++) {
    for (let j = 0; j < variants.length; j++) {
      if (i === j) {
        assert.deepEqual(
          variants[j]!.ba.open(frames[i]!.c, aad, frames[i]!.sealed),
          enc.encode(text),
        );
        continue;
      }
      assert.notDeepEqual(
        frames[i]!.sealed,
        frames[j]!.sealed,
        `ids ${i} and ${j}: same ciphertext`,
      );
      assert.equal(
        variants[j]!.ba.open(frames[i]!.c, aad, frames[i]!.sealed),
        null,
        `a frame of binding ${i} opens under binding ${j}`,
      );
    }
  }
});

Deno.test("crypto: the same key pair and ids under another epoch give unrelated sessions", () => {
  const a = Identity.generate(), b = Identity.generate();
  const epochs = [EPOCH_1, EPOCH_2, Uint8Array.from(EPOCH_1, (x, i) => i === 7 ? x ^ 1 : x)];
  const variants = epochs.map((epoch) => sessions(a, b, ID_A, ID_B, epoch));
  const text = "same counter, same text";
  const frames = variants.map(({ ab }) => firstFrame(ab, text));
  const replies = variants.map(({ ba }) => firstFrame(ba, text));
  for (let i = 0; i < epochs.length; i++) {
    for (let j = 0; j < epochs.length; j++) {
      if (i === j) continue;
      assert.notDeepEqual(frames[i]!.sealed, frames[j]!.sealed, `epochs ${i}, ${j}: a→b`);
      assert.notDeepEqual(replies[i]!.sealed, replies[j]!.sealed, `epochs ${i}, ${j}: b→a`);
      assert.equal(variants[j]!.ba.open(frames[i]!.c, aad, frames[i]!.sealed), null);
      assert.equal(variants[j]!.ab.open(replies[i]!.c, aad, replies[i]!.sealed), null);
    }
  }
  // Sides that disagree on the epoch cannot talk at all.
  const ab = a.sessionWith(b.publicKey, { myId: ID_A, theirId: ID_B, epoch: EPOCH_1 })!;
  const ba = b.sessionWith(a.publicKey, { myId: ID_B, theirId: ID_A, epoch: EPOCH_2 })!;
  const x = firstFrame(ab, "hello?");
  assert.equal(ba.open(x.c, aad, x.sealed), null);
});

Deno.test("crypto: bytesEqual compares contents, of any length, without throwing", () => {
  assert.equal(bytesEqual(new Uint8Array(0), new Uint8Array(0)), true);
  assert.equal(bytesEqual(ID_A, ID_A.slice()), true);
  assert.equal(bytesEqual(ID_A, ID_B), false);
  for (let i = 0; i < ID_LEN; i++) {
    const x = ID_A.slice();
    x[i]! ^= 1;
    assert.equal(bytesEqual(ID_A, x), false, `differs at byte ${i}`);
  }
  // Different lengths are unequal (Node's timingSafeEqual alone would throw).
  assert.equal(bytesEqual(ID_A, ID_A.subarray(0, 7)), false);
  assert.equal(bytesEqual(new Uint8Array(0), ID_A), false);
  // Views at offsets into larger buffers compare by their own bytes only.
  const big = new Uint8Array(32).fill(0xee);
  big.set(ID_A, 5);
  assert.equal(bytesEqual(big.subarray(5, 5 + ID_LEN), ID_A), true);
  assert.equal(bytesEqual(big.subarray(4, 4 + ID_LEN), ID_A), false);
});
