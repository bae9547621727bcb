/**
 * Tests of the AEAD module ({@link ChaCha20Poly1305} of `lib/crypto/aead.ts`): the RFC 8439
 * AEAD vector, agreement with a plain `node:crypto` call on random keys, nonces, lengths and
 * associated data (so our wrapper adds or drops nothing), `sealInto` at offsets and in place,
 * refusal of every tampered bit, and hostile input that returns null rather than throwing.
 * Wycheproof's vectors run through it in tests/crypto/wycheproof_test.ts; the Noise vectors
 * (tests/crypto/noise_test.ts) exercise it as Noise's cipher.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { ChaCha20Poly1305, KEY_LEN, NONCE_LEN, TAG_LEN } from "../../lib/crypto/aead.ts";
import { prng } from "../support/prng.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

function nodeSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array) {
  const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_LEN });
  c.setAAD(aad, { plaintextLength: pt.length });
  const parts = [c.update(pt), c.final(), c.getAuthTag()];
  const out = new Uint8Array(pt.length + TAG_LEN);
  let o = 0;
  for (const p of parts) (out.set(p, o), o += p.length);
  return out;
}

Deno.test("aead: the AEAD vector of RFC 8439 section 2.8.2", () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
  const nonce = unhex("070000004041424344454647");
  const aad = unhex("50515253c0c1c2c3c4c5c6c7");
  const pt = new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const sealed = new ChaCha20Poly1305(key).seal(nonce, aad, pt);
  assert.equal(sealed.length, pt.length + 16);
  assert.equal(hex(sealed.subarray(0, 16)), "d31a8d34648e60db7b86afbc53ef7ec2");
  assert.equal(hex(sealed.subarray(pt.length)), "1ae10b594f09e26a7e902ecbd0600691");
  assert.deepEqual(new ChaCha20Poly1305(key).open(nonce, aad, sealed), pt);
});

Deno.test("aead: matches a plain node:crypto call on random inputs of every length to 300 bytes, also sealed into a larger buffer or in place", () => {
  const rand = prng(0xc4a4);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
  for (let len = 0; len <= 300; len++) {
    const key = bytes(32), nonce = bytes(12), aad = bytes(Math.floor(rand() * 40));
    const pt = bytes(len);
    const aead = new ChaCha20Poly1305(key);
    const sealed = aead.seal(nonce, aad, pt);
    assert.deepEqual(sealed, nodeSeal(key, nonce, aad, pt), `length ${len}`);
    assert.deepEqual(aead.open(nonce, aad, sealed), pt, `length ${len}`);
    // sealInto writes the same bytes at an offset of a larger buffer.
    const big = new Uint8Array(len + TAG_LEN + 9).fill(0xee);
    aead.sealInto(nonce, aad, pt, big, 5);
    assert.deepEqual(big.subarray(5, 5 + len + TAG_LEN), sealed);
    assert.equal(big[4], 0xee);
    assert.equal(big[5 + len + TAG_LEN], 0xee);
    // In place: the plaintext sits where its ciphertext goes.
    const inPlace = new Uint8Array(len + TAG_LEN);
    inPlace.set(pt);
    aead.sealInto(nonce, aad, inPlace.subarray(0, len), inPlace, 0);
    assert.deepEqual(inPlace, sealed, `in place, length ${len}`);
  }
  // Large and all-ones inputs (the Poly1305 limbs at their largest).
  for (const len of [1000, 1024, 4096, 65_535]) {
    const key = new Uint8Array(32).fill(0xff), nonce = new Uint8Array(12).fill(0xff);
    const pt = new Uint8Array(len).fill(0xff), aad = new Uint8Array(28).fill(0xff);
    assert.deepEqual(new ChaCha20Poly1305(key).seal(nonce, aad, pt), nodeSeal(key, nonce, aad, pt));
  }
});

Deno.test("aead: any changed bit of the ciphertext, tag, aad or nonce fails to open", () => {
  const key = unhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
  const nonce = unhex("000000000102030405060708");
  const aad = new TextEncoder().encode("header");
  const aead = new ChaCha20Poly1305(key);
  const sealed = aead.seal(
    nonce,
    aad,
    new TextEncoder().encode("a message of 33 bytes, or nearly"),
  );
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice();
    bad[i]! ^= 1 << (i % 8);
    assert.equal(aead.open(nonce, aad, bad), null, `byte ${i}`);
  }
  assert.equal(aead.open(nonce, new TextEncoder().encode("headeR"), sealed), null);
  assert.equal(aead.open(unhex("000000000102030405060709"), aad, sealed), null);
  assert.equal(aead.open(nonce, aad, sealed.subarray(0, TAG_LEN - 1)), null, "shorter than a tag");
  assert.equal(aead.open(nonce.subarray(1), aad, sealed), null, "short nonce");
  assert.equal(aead.open(new Uint8Array(NONCE_LEN + 1), aad, sealed), null, "long nonce");
  assert.equal(aead.open(nonce, aad, new Uint8Array(0)), null, "empty");
  // A tag alone (an empty plaintext's sealing) opens to nothing when genuine, else fails.
  const tagOnly = aead.seal(nonce, aad, new Uint8Array(0));
  assert.equal(tagOnly.length, TAG_LEN);
  assert.deepEqual(aead.open(nonce, aad, tagOnly), new Uint8Array(0));
  tagOnly[3]! ^= 4;
  assert.equal(aead.open(nonce, aad, tagOnly), null);
  assert.throws(() => new ChaCha20Poly1305(new Uint8Array(KEY_LEN - 1)), RangeError);
  assert.throws(() => aead.seal(nonce.subarray(1), aad, sealed), RangeError);
});

Deno.test("aead: the key is copied; opened plaintexts are plain Uint8Arrays of their own", () => {
  const key = new Uint8Array(KEY_LEN).fill(9), nonce = new Uint8Array(NONCE_LEN);
  const aead = new ChaCha20Poly1305(key);
  const pt = new TextEncoder().encode("copied");
  const sealed = aead.seal(nonce, new Uint8Array(0), pt);
  key.fill(0);
  const opened = aead.open(nonce, new Uint8Array(0), sealed)!;
  assert.deepEqual(opened, pt, "changing the caller's key bytes changes nothing");
  assert.equal(Object.getPrototypeOf(opened), Uint8Array.prototype);
  assert.equal(opened.byteLength, pt.length);
  // Opening twice gives two independent arrays.
  const again = aead.open(nonce, new Uint8Array(0), sealed)!;
  again[0] = 0;
  assert.deepEqual(opened, pt);
});

Deno.test("aead: sealInto refuses a buffer without room, rather than writing a frame cut short", () => {
  const aead = new ChaCha20Poly1305(new Uint8Array(32).fill(7));
  const nonce = new Uint8Array(12), pt = new Uint8Array(40).fill(1);
  // Typed arrays drop writes past their end silently: the tag (or the ciphertext) would be lost.
  for (const [size, at] of [[40 + TAG_LEN - 1, 0], [40 + TAG_LEN, 1], [100, -1]] as const) {
    assert.throws(
      () => aead.sealInto(nonce, new Uint8Array(0), pt, new Uint8Array(size), at),
      RangeError,
      `${size} bytes at ${at}`,
    );
  }
  const out = new Uint8Array(40 + TAG_LEN + 3);
  aead.sealInto(nonce, new Uint8Array(0), pt, out, 3);
  assert.deepEqual(out.subarray(3), aead.seal(nonce, new Uint8Array(0), pt));
});
