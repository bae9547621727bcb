/**
 * What a forged handshake message 1 costs a peer (issue: a flood of them, knowing only two peer
 * ids, once burned an X25519 each). In Noise_XXpsk0 message 1 is authenticated under the room's
 * PSK before any Diffie-Hellman: a forgery must fail there and cost no scalar multiplication.
 */
import assert from "node:assert/strict";
import { noiseFactory } from "../../lib/peer/handshake/handshake.ts";
import { pairPrologue } from "../../lib/peer/handshake/secure_link.ts";
import { x25519Work } from "../../lib/crypto/x25519.ts";
import { prng, randomBytesFrom, seededRandom } from "../support/prng.ts";

const ROOM = new Uint8Array(32).fill(7);
const A = new Uint8Array(8).fill(1), B = new Uint8Array(8).fill(2);

function member(seed: number, psk = new Uint8Array(32).fill(9)) {
  const random = seededRandom(seed);
  return noiseFactory({ staticKey: random(32), psk, random });
}

Deno.test("handshake cost: a forged message 1 is refused without any X25519", () => {
  const bob = member(2);
  const r = prng(5);
  const prologue = pairPrologue(ROOM, A, B);
  const before = { ...x25519Work };
  for (let i = 0; i < 200; i++) {
    const forged = randomBytesFrom(r, 32 + 16 + Math.floor(r() * 64));
    assert.equal(bob(false, prologue).readMessage(forged), null);
  }
  // A stranger's real message 1, made with another PSK: refused as cheaply.
  const stranger = member(3, new Uint8Array(32).fill(1));
  const theirs = stranger(true, prologue).writeMessage(new Uint8Array(0));
  const afterStranger = { ...x25519Work };
  assert.equal(bob(false, prologue).readMessage(theirs), null);
  assert.deepEqual(x25519Work, afterStranger, "the stranger's message 1 cost no X25519");
  // Only the stranger's side did any work: its static key once, its ephemeral key.
  assert.equal(x25519Work.agreements, before.agreements);
  assert.equal(x25519Work.keyPairs, before.keyPairs + 2);
});

Deno.test("handshake cost: a member's message 1 is read without X25519; DH starts at message 2", () => {
  const alice = member(1), bob = member(2);
  const prologue = pairPrologue(ROOM, A, B);
  const a = alice(true, prologue);
  const m1 = a.writeMessage(new Uint8Array(0));
  const before = { ...x25519Work };
  const b = bob(false, prologue);
  assert.notEqual(b.readMessage(m1), null);
  assert.deepEqual(x25519Work, before, "reading a genuine message 1 needs no DH either");
  b.writeMessage(new Uint8Array(0));
  assert.ok(x25519Work.agreements > before.agreements, "message 2 does the DH work");
});
