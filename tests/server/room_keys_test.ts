/** The room key cache: keys as the room ids say, bounded, the least recently used forgotten. */
import assert from "node:assert/strict";
import { RoomKeys } from "../../lib/server/room_keys.ts";
import { idHex } from "../../lib/wire/header.ts";
import { ed25519Sign, ed25519Verify } from "../../lib/crypto/ed25519.ts";
import { testRoom } from "../support/hello.ts";

Deno.test("room keys: a room id's key verifies the room's signatures; no key for a non-key", () => {
  const keys = new RoomKeys(4);
  const room = testRoom("keys-a");
  const key = keys.get(idHex(room.publicKey), room.publicKey);
  assert.ok(key);
  const data = new TextEncoder().encode("hello");
  assert.ok(ed25519Verify(key, data, ed25519Sign(room.privateKey, data)));
  assert.ok(!ed25519Verify(key, data, ed25519Sign(testRoom("keys-b").privateKey, data)));
  assert.equal(keys.get("ab", new Uint8Array(31)), undefined);
  assert.equal(keys.size, 1);
});

Deno.test("room keys: at most the bound, the least recently used forgotten first", () => {
  const keys = new RoomKeys(2);
  const [a, b, c] = ["keys-1", "keys-2", "keys-3"].map((l) => testRoom(l).publicKey);
  const ka = keys.get(idHex(a!), a!), kb = keys.get(idHex(b!), b!);
  assert.equal(keys.get(idHex(a!), a!), ka); // a used again: b is now the oldest
  keys.get(idHex(c!), c!);
  assert.equal(keys.size, 2);
  assert.equal(keys.get(idHex(a!), a!), ka);
  assert.notEqual(keys.get(idHex(b!), b!), kb); // b was forgotten: made again
});
