/**
 * The owner tag (`lib/crypto/owner.ts`): HKDF-SHA256 of the identity's private key salted with
 * the room id, 16 bytes; the same for one identity in one room, unrelated otherwise. (The exact
 * bytes are held to an independent implementation by the protocol vectors.)
 *
 * @module
 */
import assert from "node:assert/strict";
import { hkdfSync } from "node:crypto";
import { OWNER_TAG_INFO, OWNER_TAG_LEN, ownerTag } from "../../lib/crypto/owner.ts";
import { seededRandom } from "../support/prng.ts";

Deno.test("owner tag: one identity, one room, one tag; another room or identity, another tag", () => {
  const random = seededRandom(21);
  const alice = random(32), bob = random(32), room1 = random(32), room2 = random(32);
  const tag = ownerTag(alice, room1);
  assert.equal(tag.length, OWNER_TAG_LEN);
  assert.deepEqual(ownerTag(alice.slice(), room1.slice()), tag, "deterministic");
  const others = [ownerTag(alice, room2), ownerTag(bob, room1), ownerTag(bob, room2)];
  for (const other of others) assert.notDeepEqual(other, tag);
  // Flipping one bit of the key changes it.
  const near = alice.slice();
  near[31]! ^= 1;
  assert.notDeepEqual(ownerTag(near, room1), tag);
  // HKDF with the room id as salt and the label as info, truncated (not a different length).
  const info = new TextEncoder().encode(OWNER_TAG_INFO);
  const long = new Uint8Array(hkdfSync("sha256", alice, room1, info, 32));
  assert.deepEqual(tag, long.subarray(0, OWNER_TAG_LEN));
  assert.equal(OWNER_TAG_INFO, "p2p owner tag v1");
});
