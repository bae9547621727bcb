/**
 * One ticket to join: a peer makes a room with `--new-room` (no `--room`: the name is made up),
 * another joins with nothing but its ticket in `P2P_TICKET`, and they chat.
 */
import assert from "node:assert/strict";
import { P2pProcess, startServer } from "../support/proc.ts";

const WAIT = 20_000;

Deno.test("ticket: --new-room's ticket alone lets another peer join and chat", async () => {
  const server = await startServer({ host: "127.0.0.1", port: 0 });
  const alice = P2pProcess.p2p(
    ["join", "--server", server.addr, "--new-room", "--name", "alice", "--json"],
    { label: "alice" },
  );
  let bob: P2pProcess | undefined;
  try {
    const room = await alice.waitFor((e) => e.event === "room", WAIT);
    assert.match(String(room.room), /^room-[a-z2-7]{6}$/);
    await alice.waitFor((e) => e.event === "ready", WAIT);
    bob = P2pProcess.p2p(["join", "--name", "bob", "--json"], {
      label: "bob",
      env: { P2P_TICKET: String(room.ticket).toUpperCase().replaceAll("-", " ") },
    });
    await bob.waitFor((e) => e.event === "peer" && e.name === "alice", WAIT);
    await bob.send("hello from a ticket");
    const m = await alice.waitFor((e) => e.event === "message" && e.from === "bob", WAIT);
    assert.equal(m.text, "hello from a ticket");
  } finally {
    await Promise.all([alice.close(), bob?.close(), server.proc.close()]);
  }
});
