/**
 * Entering a room (`lib/roles/join_entry.ts`): once the passphrase and identity are read, the
 * chat screen may open (`entered`), and the room keys are then derived (0.1 s of scrypt) with
 * the event loop running, so the screen is up and answers keys meanwhile.
 */
import assert from "node:assert/strict";
import { credentials } from "../../lib/roles/join_entry.ts";
import { deriveRoomKeys } from "../../lib/crypto/room_key.ts";

Deno.test("credentials: `entered` comes before the room keys, which are derived while timers run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2p-entry-" });
  try {
    await Deno.writeTextFile(`${dir}/pass`, "correct horse battery staple\n");
    let ticks = 0, ticksAtEntry = -1;
    const timer = setInterval(() => ticks++, 1);
    try {
      const creds = await credentials({
        server: "127.0.0.1:7777",
        room: "friends",
        passphraseFile: `${dir}/pass`,
        identityFile: `${dir}/identity`,
        json: true,
      }, () => ticksAtEntry = ticks);
      assert.ok(creds);
      assert.ok(ticksAtEntry >= 0, "entered was called");
      assert.ok(
        ticks - ticksAtEntry >= 3,
        `timers fired while the keys were derived (${ticks - ticksAtEntry})`,
      );
      const want = deriveRoomKeys("friends", "correct horse battery staple");
      assert.deepEqual(creds.room.id, want.id);
      assert.deepEqual(creds.room.psk, want.psk);
      assert.deepEqual(creds.servers, ["127.0.0.1:7777"]);
    } finally {
      clearInterval(timer);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
