/**
 * Tests of identities and X25519 key pairs: RFC 7748 section 6.1's key pairs and shared
 * secret, `Identity.generate` drawing exactly its 32 bytes from the caller's randomness, and
 * wrong lengths refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Identity } from "../../lib/crypto/identity.ts";
import { x25519, x25519KeyPair, x25519PublicKey } from "../../lib/crypto/x25519.ts";
import { prng, randomBytesFrom } from "../support/prng.ts";

const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// RFC 7748, section 6.1.
const ALICE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const BOB_PUB = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

Deno.test("identity: RFC 7748 key pairs and shared secret", () => {
  const alice = Identity.fromPrivate(unhex(ALICE)), bob = Identity.fromPrivate(unhex(BOB));
  assert.equal(hex(alice.publicKey), ALICE_PUB);
  assert.equal(hex(bob.publicKey), BOB_PUB);
  assert.equal(hex(alice.privateKey), ALICE);
  assert.equal(hex(x25519PublicKey(unhex(BOB))), BOB_PUB);
  const ab = x25519(x25519KeyPair(alice.privateKey).privateKey, bob.publicKey);
  const ba = x25519(x25519KeyPair(bob.privateKey).privateKey, alice.publicKey);
  assert.equal(hex(ab!), SHARED);
  assert.equal(hex(ba!), SHARED);
});

Deno.test("identity: generate takes exactly 32 bytes from the caller's randomness", () => {
  const calls: number[] = [];
  const rng = prng(42);
  const random = (n: number) => (calls.push(n), randomBytesFrom(rng, n));
  const a = Identity.generate(random);
  assert.deepEqual(calls, [32]);
  const again = prng(42);
  assert.deepEqual(a.privateKey, randomBytesFrom(again, 32), "the private key is those bytes");
  assert.deepEqual(a.publicKey, x25519PublicKey(a.privateKey));
  // Another seed, another identity; a source that gives too few bytes is refused.
  assert.notDeepEqual(
    Identity.generate((n) => randomBytesFrom(prng(43), n)).publicKey,
    a.publicKey,
  );
  assert.throws(() => Identity.generate(() => new Uint8Array(31)), RangeError);
});

Deno.test("identity: the private key is copied, and wrong lengths are refused", () => {
  const d = unhex(ALICE);
  const alice = Identity.fromPrivate(d);
  d.fill(0);
  assert.equal(hex(alice.privateKey), ALICE);
  assert.throws(() => Identity.fromPrivate(new Uint8Array(31)), RangeError);
  assert.throws(() => x25519KeyPair(new Uint8Array(33)), RangeError);
  const k = x25519KeyPair(unhex(ALICE)).privateKey;
  assert.equal(x25519(k, new Uint8Array(31)), null, "a short public key: null, no throw");
  assert.equal(x25519(k, new Uint8Array(32)), null, "the zero point: null, no throw");
});
