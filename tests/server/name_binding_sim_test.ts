/**
 * Names bind to identities, end to end in the simulator: real clients (their owner tag from
 * their identity and the room, `linkOptionsOf`) and a real registry. A peer whose process
 * ended without a BYE comes back with the same identity and takes its own name at once; the
 * room sees the ghost leave right away instead of 75 s later. Another identity still gets a
 * suffix.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Identity } from "../../lib/crypto/identity.ts";
import type { ClientEvent } from "../../lib/peer/client_options.ts";
import { addPeer, addServer, SimNet } from "../support/sim.ts";

/** The events of `list` from index `from` on. */
function since(list: ClientEvent[], from: number): ClientEvent[] {
  return list.slice(from);
}

Deno.test("sim: a peer back after a crash takes its own name; the room sees the ghost leave at once", () => {
  const net = new SimNet(2101);
  const server = addServer(net);
  const alice = addPeer(net, "alice", { hostname: "192.0.2.10", port: 1000 });
  const identity = Identity.fromPrivate(net.bytes(32));
  const bob = addPeer(net, "bob", { hostname: "192.0.2.20", port: 2000 }, undefined, { identity });
  net.runUntilTrue(() =>
    alice.lastPath("bob") !== undefined && bob.lastPath("alice") !== undefined
  );
  // Bob's process dies: no BYE. He starts again (a new peer id, a new port), the same identity.
  net.detach(bob.client);
  net.run(3_000);
  const mark = alice.drain().length;
  const t0 = net.now;
  const again = addPeer(net, "bob", { hostname: "192.0.2.20", port: 2001 }, undefined, {
    identity,
  });
  net.runUntilTrue(() => again.drain().some((e) => e.type === "ready"), 10_000);
  const ready = again.events.find((e) => e.type === "ready");
  assert.equal(ready?.type === "ready" && ready.name, "bob", "his own name, no -2");
  assert.ok(!again.events.some((e) => e.type === "notice" && e.kind === "renamed"));
  assert.equal(server.peerCount, 2, "the ghost is gone");
  net.runUntilTrue(
    () => since(alice.drain(), mark).some((e) => e.type === "left" && e.name === "bob"),
    5_000,
  );
  assert.ok(net.now - t0 < 5_000, `the ghost left after ${net.now - t0} ms, not at expiry`);
  // And the new bob is in the room with alice.
  net.runUntilTrue(() => again.lastPath("alice") !== undefined, 30_000);
});

Deno.test("sim: another identity asking for a held name still gets a suffix", () => {
  const net = new SimNet(2102);
  const server = addServer(net);
  addPeer(net, "sam", { hostname: "192.0.2.10", port: 1000 });
  net.run(500);
  const other = addPeer(net, "sam", { hostname: "192.0.2.20", port: 2000 });
  net.runUntilTrue(() => other.drain().some((e) => e.type === "ready"), 10_000);
  const ready = other.events.find((e) => e.type === "ready");
  assert.equal(ready?.type === "ready" && ready.name, "sam-2");
  assert.equal(server.peerCount, 2);
});
