/**
 * The peer data plane in the simulator (Registry + Clients, virtual time): a flood of messages
 * is acknowledged with fewer ACKs than messages (delayed ACKs), and a peer that leaves sends
 * the ACK it was still delaying, so the sender does not keep waiting for it.
 */
import assert from "node:assert/strict";
import { DEFAULT_RELIABLE } from "../../lib/peer/reliable.ts";
import { sameEndpoint } from "../../lib/wire/address.ts";
import { addPeer, addServer, SimNet, type SimPeer } from "../support/sim.ts";

const A = { hostname: "192.0.2.10", port: 1000 };
const B = { hostname: "192.0.2.20", port: 2000 };

function pair(seed: number): { net: SimNet; a: SimPeer; b: SimPeer } {
  const net = new SimNet(seed);
  addServer(net);
  const a = addPeer(net, "alice", A), b = addPeer(net, "bob", B);
  net.runUntilTrue(() => a.lastPath("bob") !== undefined && b.lastPath("alice") !== undefined);
  assert.equal(a.lastPath("bob")?.path, "direct");
  net.run(1_000);
  return { net, a, b };
}

Deno.test("a flood of messages is acknowledged with a fraction of the datagrams", () => {
  const { net, a, b } = pair(11);
  const from = net.log.length;
  const sent: string[] = [];
  for (let i = 0; i < 200; i++) {
    a.client.send(net.now, `m${i}`);
    sent.push(`alice: m${i}`);
    if (i % 10 === 9) net.run(1);
  }
  net.run(1_000);
  assert.deepEqual(b.messages(), sent);
  assert.equal(a.client.outstanding, 0);
  const toA = net.log.slice(from).filter((d) => sameEndpoint(d.to, A) && sameEndpoint(d.from, B));
  // One ACK per ackEvery DATA frames (plus the odd delayed one), not one per frame.
  const most = Math.ceil(200 / DEFAULT_RELIABLE.ackEvery) + 10;
  assert.ok(toA.length <= most, `${toA.length} datagrams from bob for 200 messages`);
});

Deno.test("a peer that leaves sends the ACK it was delaying", () => {
  for (const leave of [true, false]) {
    const { net, a, b } = pair(12);
    a.client.send(net.now, "one");
    a.client.send(net.now, "two");
    net.run(11); // Delivered after 10 ms; bob's ACK waits for more (ackEvery) or ackDelay.
    assert.deepEqual(b.messages(), ["alice: one", "alice: two"]);
    assert.equal(a.client.outstanding, 2, "not acknowledged yet");
    if (leave) b.client.leave(net.now);
    net.flush();
    net.detach(b.client); // Gone: it answers nothing more.
    net.run(2_000);
    // Without the ACK on leaving, alice would keep resending until she gives up (60 s).
    assert.equal(a.client.outstanding, leave ? 0 : 2, `leave: ${leave}`);
  }
});
