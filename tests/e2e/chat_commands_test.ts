/**
 * The room's chat commands between real processes on 127.0.0.1 (`--json`): a peer that joins
 * late gets the earlier lines as history, `/msg` reaches one peer only and marked private, and
 * `/nick` renames a peer live for the others.
 */
import assert from "node:assert/strict";
import type { P2pEvent } from "../support/proc.ts";
import { withRoom } from "../support/room.ts";

const WAIT = 15_000;

const isPeer = (name: string) => (e: P2pEvent) => e.event === "peer" && e.name === name;

Deno.test({
  name: "chat commands: history for a late joiner, /msg to one peer, /nick renames live",
  sanitizeResources: false,
  async fn() {
    await withRoom({ room: "commands", peers: ["ann", "ben"] }, async (room) => {
      const [ann, ben] = room.peers;
      await ann.waitFor(isPeer("ben"), WAIT);
      await ben.waitFor(isPeer("ann"), WAIT);
      await ann.send("before cat came");
      await ben.waitFor((e) => e.event === "message" && e.text === "before cat came", WAIT);

      const cat = room.join("cat");
      await cat.waitFor(isPeer("ann"), WAIT);
      const old = await cat.waitFor((e) => e.event === "message" && e.from === "ann", WAIT);
      assert.equal(old.text, "before cat came");
      assert.equal(old.history, true);
      assert.equal(typeof old.ago, "number");

      await ann.send("/msg ben only for ben");
      await ann.send("for all");
      await cat.waitFor((e) => e.event === "message" && e.text === "for all", WAIT);
      const priv = await ben.waitFor(
        (e) => e.event === "message" && e.text === "only for ben",
        WAIT,
      );
      assert.equal(priv.private, true);
      assert.ok(!cat.eventsOf("message").some((e) => e.text === "only for ben"), cat.describe());

      await ben.send("/nick benjamin");
      await ben.send("renamed now");
      const heard = await ann.waitFor(
        (e) => e.event === "message" && e.text === "renamed now",
        WAIT,
      );
      assert.equal(heard.from, "benjamin");
      assert.ok(
        ann.eventsOf("notice").some((e) =>
          e.kind === "nick" && /ben is now known as benjamin/.test(String(e.message))
        ),
        ann.describe(),
      );
    });
  },
});
