/**
 * One ticket to join: a peer makes a room with `--new-room` (no `--room`: the name is made up),
 * another joins with nothing but its ticket in `P2P_TICKET`, and they chat; `--server` still
 * overrides the ticket's servers.
 */
import assert from "node:assert/strict";
import { freeUdpPort, P2pProcess, startServer } from "../support/proc.ts";
import { encodeTicket } from "../../lib/roles/ticket.ts";

const WAIT = 20_000;

Deno.test("ticket: --new-room's ticket alone lets another peer join and chat", async () => {
  const server = await startServer({ host: "127.0.0.1", port: 0 });
  const alice = P2pProcess.p2p(
    ["join", "--server", server.addr, "--new-room", "--name", "alice", "--json"],
    { label: "alice" },
  );
  let bob: P2pProcess | undefined, carol: P2pProcess | undefined;
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
    // --server still wins over the ticket's servers (a server that moved).
    const moved = encodeTicket({
      servers: [`127.0.0.1:${freeUdpPort()}`],
      room: String(room.room),
      passphrase: String(room.passphrase),
    });
    carol = P2pProcess.p2p(["join", "--name", "carol", "--json", "--server", server.addr], {
      label: "carol",
      env: { P2P_TICKET: moved },
    });
    await carol.waitFor((e) => e.event === "peer" && e.name === "alice", WAIT);
  } finally {
    await Promise.all([alice.close(), bob?.close(), carol?.close(), server.proc.close()]);
  }
});
