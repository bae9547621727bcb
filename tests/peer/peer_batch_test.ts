/**
 * Batching in the peer data plane (Registry + Clients in the simulator, virtual time): the
 * chat lines of one step share DATA frames, a line on its own goes out at once, alone, and
 * everything arrives once and in order.
 */
import assert from "node:assert/strict";
import { sameEndpoint } from "../../lib/wire/address.ts";
import { MAX_FRAGMENT } from "../../lib/wire/peer_frame.ts";
import { addPeer, addServer, SimNet } from "../support/sim.ts";

const A = { hostname: "192.0.2.10", port: 1000 };
const B = { hostname: "192.0.2.20", port: 2000 };

Deno.test("peer batching: one step's lines share DATA frames; a lone line goes at once", () => {
  const net = new SimNet(21);
  addServer(net);
  const a = addPeer(net, "alice", A), b = addPeer(net, "bob", B);
  net.runUntilTrue(() => a.lastPath("bob") !== undefined && b.lastPath("alice") !== undefined);
  net.run(1_000);
  // Datagrams alice sends bob, counted as they leave (at send time).
  const sent: number[] = [];
  net.block = (from, to) => {
    if (sameEndpoint(from, A) && sameEndpoint(to, B)) sent.push(net.now);
    return false;
  };

  // 40 lines of 100 bytes in one step: 9 fit a frame (103 bytes each), so 5 frames, not 40.
  const t0 = net.now;
  const lines = Array.from({ length: 40 }, (_, i) => `${i}`.padEnd(100, "x"));
  for (const l of lines) a.client.send(net.now, l);
  net.flush();
  assert.equal(sent.length, Math.ceil(40 / Math.floor(MAX_FRAGMENT / 103)));
  assert.ok(sent.every((t) => t === t0), "all sent in the step that took the lines");
  net.run(1_000);
  assert.deepEqual(b.messages(), lines.map((l) => `alice: ${l}`));
  assert.equal(a.client.outstanding, 0);

  // A line on its own: one datagram, sent in the step that took it.
  sent.length = 0;
  a.client.send(net.now, "alone");
  net.flush();
  assert.equal(sent.length, 1);
  net.run(1_000);
  assert.equal(b.messages().at(-1), "alice: alone");
});
