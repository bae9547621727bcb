/**
 * Tests of transport sessions made by a real handshake: frames open on the other side only,
 * tampering and other sessions' keys are rejected, replayed and too-old frames are refused, and
 * two handshakes between the same identities never share keys (fresh ephemerals).
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  addressCookie,
  bytesEqual,
  type PairSession,
  REPLAY_WINDOW,
} from "../../lib/crypto/crypto.ts";
import { HmacSha256 } from "../../lib/crypto/sha256.ts";
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";
import { prng } from "../support/prng.ts";
import { handshakeSessions as pair } from "../support/sessions.ts";

const enc = new TextEncoder();
const aad = enc.encode("header");
const ID_LEN = 8;
const ID_A = new Uint8Array(ID_LEN).fill(0xa1), ID_B = new Uint8Array(ID_LEN).fill(0xb2);

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

Deno.test("crypto: two handshakes never give the same keys (no nonce reuse across sessions)", () => {
  // Sessions restart their counters at 1; only fresh keys per handshake make that safe.
  const x = firstFrame(pair().ab, "same text"), y = firstFrame(pair().ab, "same text");
  const ct = (s: Uint8Array) => [...s.subarray(0, s.length - 16)];
  assert.notDeepEqual(ct(x.sealed), ct(y.sealed), "counter 1 under two sessions: same keystream");
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

// ---------------------------------------------------------------------------------------------
// HMAC-SHA256 and address cookies

Deno.test("crypto: HmacSha256 agrees with node:crypto for keys of 0 to 200 bytes and inputs of 0 to 183", () => {
  const rand = prng(0x5a256);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
  for (let i = 0; i < 600; i++) {
    const key = bytes(i < 200 ? i : Math.floor(rand() * 200));
    const a = bytes(Math.floor(rand() * 90)), b = bytes(Math.floor(rand() * (184 - a.length)));
    const want = createHmac("sha256", key).update(a).update(b).digest();
    assert.deepEqual(new HmacSha256(key).mac(a, b), new Uint8Array(want), `case ${i}`);
  }
  // Every length across the padding boundaries, under one prepared key.
  const key = bytes(32), mac = new HmacSha256(key);
  for (let n = 0; n <= 183; n++) {
    const m = bytes(n);
    const want = new Uint8Array(createHmac("sha256", key).update(m).digest());
    assert.deepEqual(mac.mac(m), want, `length ${n}`);
  }
  assert.throws(() => mac.mac(new Uint8Array(184)), RangeError);
});

Deno.test("crypto: addressCookie is the first 8 bytes of HMAC-SHA256(secret, id ‖ 'IP:PORT'), for any secret, also one changed in place", () => {
  const rand = prng(77);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
  const want = (secret: Uint8Array, id: Uint8Array, addr: Endpoint) =>
    new Uint8Array(
      createHmac("sha256", secret).update(id).update(formatEndpoint(addr)).digest().subarray(0, 8),
    );
  const addrs: Endpoint[] = [
    { hostname: "127.0.0.1", port: 1 },
    { hostname: "203.0.113.250", port: 65535 },
    { hostname: "2001:db8::1", port: 443 },
    { hostname: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", port: 65535 },
  ];
  const secrets = Array.from({ length: 7 }, () => bytes(32));
  for (let round = 0; round < 3; round++) {
    for (const secret of secrets) {
      for (const addr of addrs) {
        const id = bytes(8);
        const c = addressCookie(secret, id, addr);
        assert.equal(c.length, 8);
        assert.equal(c.buffer.byteLength, 8, "a cookie holds no more than its bytes");
        assert.deepEqual(c, want(secret, id, addr));
      }
    }
  }
  const secret = bytes(32), id = bytes(8), addr = addrs[0]!;
  const before = addressCookie(secret, id, addr);
  secret[5]! ^= 1;
  assert.notDeepEqual(addressCookie(secret, id, addr), before);
  assert.deepEqual(addressCookie(secret, id, addr), want(secret, id, addr));
});
