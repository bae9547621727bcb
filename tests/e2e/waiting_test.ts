/**
 * Waiting is visible: a join that gets no answer says which server it is still trying, a
 * failover to the next `--server` is announced, and a peer alone in its room for a while is
 * told what that may mean (a wrong passphrase or room name is a room too).
 */
import assert from "node:assert/strict";
import { freeUdpPort, P2pProcess, startPeer, startServer } from "../support/proc.ts";

const WAIT = 20_000;

Deno.test("waiting: still trying, failover announced, then alone in the room", async () => {
  const server = await startServer({ host: "127.0.0.1", port: 0 });
  const silent = `127.0.0.1:${freeUdpPort()}`;
  const peer = startPeer({
    server: silent,
    room: "lonely",
    name: "solo",
    extraArgs: ["--server", server.addr],
  });
  try {
    const failover = await peer.waitFor((e) => e.event === "notice" && e.kind === "failover", WAIT);
    assert.match(String(failover.message), new RegExp(server.addr.replaceAll(".", "\\.")));
    await peer.waitFor((e) => e.event === "ready", WAIT);
    const alone = await peer.waitFor((e) => e.event === "notice" && e.kind === "alone", WAIT);
    assert.match(String(alone.message), /wrong passphrase or room name/);
  } finally {
    await Promise.all([peer.close(), server.proc.close()]);
  }
});

Deno.test("waiting: a server that never answers is named every few seconds until the timeout", async () => {
  const silent = `127.0.0.1:${freeUdpPort()}`;
  const peer = P2pProcess.p2p(
    ["join", "--server", silent, "--room", "r", "--name", "w", "--json", "--timeout", "7"],
    { label: "w", env: { P2P_PASSPHRASE: "pass-for-waiting" } },
  );
  try {
    const n = await peer.waitFor((e) => e.event === "notice" && e.kind === "waiting", WAIT);
    assert.equal(n.message, `Still trying ${silent}…`);
  } finally {
    await peer.close();
  }
});
