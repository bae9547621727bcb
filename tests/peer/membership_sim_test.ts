/**
 * Who is in the room when the server's word and the peers' own paths disagree (issue 21), over
 * the simulated network with virtual time: a restarted server's first roster, a server that
 * expired a peer we still talk to, a peer nobody can reach any more, a returning identity; a
 * peer that leaves takes what file transfers kept for it along.
 */
import assert from "node:assert/strict";
import { Registry } from "../../lib/server/registry.ts";
import { UNLISTED_GRACE, UNLISTED_SILENCE } from "../../lib/peer/membership.ts";
import { Identity } from "../../lib/crypto/identity.ts";
import { idHex, MsgType } from "../../lib/wire/header.ts";
import { toHex } from "../../lib/wire/codec.ts";
import { offerOf } from "../support/file_sim.ts";
import type { ClientEvent } from "../../lib/peer/client.ts";
import { addPeer, addServer, SERVER, SimNat, SimNet, type SimPeer } from "../support/sim.ts";

const at = (n: number) => ({ hostname: `192.0.2.${10 * n}`, port: 1000 * n });

function shown(p: SimPeer, name: string): boolean {
  return p.lastPath(name) !== undefined;
}

/** Where each peer's events stood at the last {@link mark}. */
const marks = new WeakMap<SimPeer, number>();

/** From now on, {@link since} returns only the events `p` produces after this call. */
function mark(...ps: SimPeer[]): void {
  for (const p of ps) marks.set(p, p.drain().length);
}

/** The events `p` produced since its {@link mark}. */
function since(p: SimPeer): ClientEvent[] {
  return p.drain().slice(marks.get(p) ?? 0);
}

function lefts(p: SimPeer): Extract<ClientEvent, { type: "left" }>[] {
  return since(p).filter((e): e is Extract<ClientEvent, { type: "left" }> => e.type === "left");
}

function peerEvents(p: SimPeer, name: string): ClientEvent[] {
  return since(p).filter((e) => e.type === "peer" && e.name === name);
}

/** Replaces the server with a fresh one (a restart: it knows nobody). */
function restart(net: SimNet, old: Registry): Registry {
  const fresh = new Registry({}, (n) => net.bytes(n), net.bytes(32));
  net.replace(old, fresh);
  return fresh;
}

Deno.test("a restarted server's first roster makes no peer with a working direct path leave", () => {
  const net = new SimNet(2101);
  const server = addServer(net);
  // alice PINGs every 5 s: she is the first to learn of the restart.
  const peers = ["alice", "bob", "carol"].map((n, i) =>
    addPeer(net, n, at(i + 1), undefined, i === 0 ? { keepalive: 5_000 } : {})
  );
  const [a, b, c] = peers as [SimPeer, SimPeer, SimPeer];
  net.runUntilTrue(() =>
    peers.every((p) => p.client.peers().filter((i) => i.path === "direct").length === 2)
  );
  mark(...peers);
  const fresh = restart(net, server);
  // The first peer to PING learns of the restart, registers again, and gets a roster of one.
  net.runUntilTrue(() => fresh.peerCount >= 1, 30_000);
  const [first, others] = [a, [b, c]];
  assert.equal(first.client.send(net.now, "right after"), 2, "queued for both others");
  net.runUntilTrue(() => first.client.outstanding === 0, 5_000);
  for (const p of others) assert.deepEqual(p.messages(), [`${first.client.name}: right after`]);
  net.runUntilTrue(() => fresh.peerCount === 3, 30_000);
  net.run(UNLISTED_GRACE + 5_000);
  for (const p of [a, b, c]) {
    assert.deepEqual(lefts(p), [], `${p.client.name} saw nobody leave`);
    for (const o of peers) {
      if (o !== p) assert.deepEqual(peerEvents(p, o.client.name), [], "no path change either");
    }
    assert.equal(p.client.peers().length, 2);
  }
});

Deno.test("a server down 3 minutes, then restarted: peers with direct paths keep each other and chat on", () => {
  const net = new SimNet(2102);
  const server = addServer(net);
  const peers = ["alice", "bob", "carol"].map((n, i) => addPeer(net, n, at(i + 1)));
  const [a, b, c] = peers as [SimPeer, SimPeer, SimPeer];
  net.runUntilTrue(() =>
    peers.every((p) => p.client.peers().filter((i) => i.path === "direct").length === 2)
  );
  mark(...peers);
  net.detach(server);
  const sent: string[] = [];
  for (let i = 1; i <= 6; i++) {
    a.client.send(net.now, `during ${i}`);
    sent.push(`alice: during ${i}`);
    net.run(30_000);
  }
  const fresh = restart(net, server);
  net.revive(fresh);
  net.runUntilTrue(() => fresh.peerCount === 3, 60_000);
  a.client.send(net.now, "after");
  net.run(UNLISTED_GRACE + 5_000);
  for (const p of [b, c]) assert.deepEqual(p.messages(), [...sent, "alice: after"]);
  for (const p of peers) {
    const seen = since(p);
    assert.deepEqual(seen.filter((e) => e.type === "left" || e.type === "peer"), [], p.client.name);
    assert.ok(seen.some((e) => e.type === "server-lost"), "the outage is told");
    assert.equal(p.client.peers().filter((i) => i.path === "direct").length, 2);
  }
});

Deno.test("a server restart is learned at once: everyone registers again within 2 s of the first", () => {
  const net = new SimNet(2106, { latency: 20 });
  const server = addServer(net);
  // Started 6 s apart, so their keepalives are out of step.
  const peers = ["alice", "bob", "carol", "dave"].map((n, i) => {
    net.run(6_000);
    return addPeer(net, n, at(i + 1));
  });
  net.runUntilTrue(() =>
    peers.every((p) => p.client.peers().filter((i) => i.path === "direct").length === 3)
  );
  net.run(10_000);
  mark(...peers);
  const fresh = restart(net, server);
  // Whoever PINGs first learns of it (up to a keepalive later) and tells the others.
  net.runUntilTrue(() => fresh.peerCount >= 1, 30_000);
  const took = net.runUntilTrue(() => fresh.peerCount === 4, 30_000);
  assert.ok(took <= 2_000, `the others registered again ${took} ms after the first`);
  net.run(UNLISTED_GRACE + 5_000);
  for (const p of peers) {
    assert.deepEqual(lefts(p), [], `${p.client.name} saw nobody leave`);
    assert.deepEqual(since(p).filter((e) => e.type === "peer"), [], "nor anyone come back");
  }
});

Deno.test("an unlisted peer without a path is kept for the grace; introduced again, it carries on", () => {
  const net = new SimNet(2102);
  const server = addServer(net);
  // Symmetric NATs on both sides: only the server's relay reaches the other.
  const a = addPeer(
    net,
    "alice",
    { hostname: "10.1.0.2", port: 5000 },
    new SimNat("203.0.113.1", "symmetric"),
    {
      keepalive: 5_000,
    },
  );
  const b = addPeer(
    net,
    "bob",
    { hostname: "10.2.0.2", port: 5000 },
    new SimNat("203.0.113.2", "symmetric"),
  );
  net.runUntilTrue(() => shown(a, "bob") && shown(b, "alice"));
  net.run(5_000);
  mark(a, b);
  const fresh = restart(net, server);
  net.runUntilTrue(() => a.client.registered && fresh.peerCount === 1, 10_000);
  // alice's roster does not list bob, and no path reaches him until he registers again.
  assert.equal(a.client.peers().length, 1, "bob is still shown");
  assert.equal(a.client.send(net.now, "queued for bob"), 1);
  net.runUntilTrue(() => fresh.peerCount === 2, UNLISTED_GRACE);
  net.runUntilTrue(() => a.client.outstanding === 0, 10_000);
  assert.deepEqual(b.messages(), ["alice: queued for bob"]);
  net.run(UNLISTED_GRACE);
  assert.deepEqual(lefts(a), []);
  assert.deepEqual(peerEvents(a, "bob"), [], "no left/peer pair");
});

for (const quietBefore of [0, UNLISTED_SILENCE]) {
  Deno.test(`an unlisted peer no path reaches departs as gone after the grace, once silent long enough (quiet ${quietBefore / 1000} s before)`, () => {
    const net = new SimNet(2103);
    const server = addServer(net);
    const a = addPeer(
      net,
      "alice",
      { hostname: "10.1.0.2", port: 5000 },
      new SimNat("203.0.113.1", "symmetric"),
      { keepalive: 5_000 },
    );
    const b = addPeer(
      net,
      "bob",
      { hostname: "10.2.0.2", port: 5000 },
      new SimNat("203.0.113.2", "symmetric"),
    );
    net.runUntilTrue(() => shown(a, "bob") && shown(b, "alice"));
    net.run(quietBefore); // an idle relayed pair: nothing between them, both PING the server
    mark(a);
    const crash = net.now;
    net.detach(b.client); // bob crashes as the server restarts
    const fresh = restart(net, server);
    net.runUntilTrue(() => a.client.registered && fresh.peerCount === 1, 10_000);
    const t0 = net.now;
    // Not before the grace ends, nor before bob was silent as long as a server waits.
    const until = Math.max(t0 + UNLISTED_GRACE, crash + (quietBefore ? 0 : UNLISTED_SILENCE));
    net.runUntil(until - 3_000);
    assert.deepEqual(lefts(a), [], "not too early");
    net.runUntil(until + 1_000);
    assert.deepEqual(lefts(a).map((e) => [e.name, e.reason]), [["bob", "gone"]]);
    assert.deepEqual(a.client.peers(), []);
  });
}

Deno.test("a peer the server expired while a direct path works is kept; it registers again quietly", () => {
  const net = new SimNet(2104);
  addServer(net, { expireAfter: 75_000 });
  const a = addPeer(net, "alice", at(1));
  const b = addPeer(net, "bob", at(2));
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && shown(b, "alice"));
  mark(a);
  // bob's datagrams to the server are lost; the pair's own path is fine.
  let cut = true;
  net.block = (from, to) => cut && from.port === at(2).port && to.port === SERVER.port;
  net.run(90_000);
  assert.equal(a.client.drops["server-bad-token"] ?? 0, 0);
  assert.deepEqual(lefts(a), [], "the server's LEFT (expired) does not make bob leave");
  assert.deepEqual(a.client.peers().map((p) => [p.name, p.path]), [["bob", "direct"]]);
  a.client.send(net.now, "still here?");
  net.run(1_000);
  assert.deepEqual(b.messages(), ["alice: still here?"]);
  cut = false;
  net.runUntilTrue(() => b.client.registered && b.client.synced, 60_000);
  net.run(UNLISTED_GRACE + 5_000);
  assert.deepEqual(lefts(a), []);
  assert.deepEqual(peerEvents(a, "bob"), [], "no left/peer pair, no flip to the relay");
});

Deno.test("a returning identity replaces its earlier instance: one left, no warning", () => {
  const net = new SimNet(2105);
  addServer(net);
  const a = addPeer(net, "alice", at(1));
  const identity = Identity.fromPrivate(net.bytes(32));
  const b = addPeer(net, "bob", at(2), undefined, { identity });
  net.runUntilTrue(() => shown(a, "bob"));
  a.client.send(net.now, "hi bob");
  net.run(500);
  net.detach(b.client); // bob's process dies without a goodbye: a ghost for the server
  a.client.send(net.now, "into the void");
  net.run(2_000);
  mark(a);
  const b2 = addPeer(net, "bob", at(3), undefined, { identity });
  // The server gives the returning identity its own name back (the owner tag): "bob" again.
  net.runUntilTrue(() => shown(b2, "alice"));
  net.run(120_000); // whatever the server still held of the ghost is gone meanwhile
  const after = since(a).filter((e) =>
    e.type === "left" || e.type === "peer" || e.type === "warning" || e.type === "notice"
  );
  const name2 = b2.client.name;
  assert.equal(name2, "bob", "its own name, no -2");
  assert.deepEqual(
    after.map((e) =>
      e.type === "left" ? `left ${e.name}` : `${e.type} ${"name" in e ? e.name : ""}`
    ),
    ["left bob", `peer ${name2}`],
  );
  assert.equal(a.client.departedKept, 0, "nothing kept of the ghost");
  assert.equal(a.client.undelivered, 0, "nothing counted against the new instance");
});

Deno.test("a goodbye reaches the peers directly when the server's BYE is lost; no second left", () => {
  const net = new SimNet(2107);
  addServer(net, { expireAfter: 75_000 });
  const peers = ["alice", "bob", "carol"].map((n, i) => addPeer(net, n, at(i + 1)));
  const [a, b, c] = peers as [SimPeer, SimPeer, SimPeer];
  net.runUntilTrue(() =>
    peers.every((p) => p.client.peers().filter((i) => i.path === "direct").length === 2)
  );
  net.run(2_000);
  mark(b, c);
  // Everything alice sends to the server from now on is lost: her BYEs never arrive.
  net.block = (from, to) => from.port === at(1).port && to.port === SERVER.port;
  const t0 = net.now;
  a.client.leave(net.now);
  net.runUntilTrue(() => a.client.farewellDone, 2_000);
  assert.ok(net.now - t0 <= 300, `answered within ${net.now - t0} ms`);
  for (const p of [b, c]) {
    assert.deepEqual(lefts(p).map((e) => [e.name, e.reason]), [["alice", "bye"]]);
  }
  net.run(120_000); // the server expires alice meanwhile: no second left
  for (const p of [b, c]) assert.equal(lefts(p).length, 1);
  const byes = net.log.filter((d) => d.to.port === SERVER.port && d.data[3] === MsgType.Bye);
  assert.equal(byes.length, 0, "no BYE reached the server");
});

Deno.test("a lost GOODBYE is sent again until the peer answers; the BYE goes three times", () => {
  const net = new SimNet(2108);
  addServer(net);
  const a = addPeer(net, "alice", at(1));
  const b = addPeer(net, "bob", at(2));
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && shown(b, "alice"));
  net.run(2_000);
  mark(b);
  // alice's first two sealed datagrams to bob after she leaves are lost.
  let lost = 0;
  net.block = (from, to, data) =>
    from.port === at(1).port && to.port === at(2).port && data[3] === MsgType.Sealed &&
    lost++ < 2;
  const sent: number[] = [];
  const t0 = net.now;
  net.tamper = (from, to, data) => {
    if (from.port === at(1).port && to.port === SERVER.port && data[3] === MsgType.Bye) {
      sent.push(net.now - t0);
    }
    return data;
  };
  a.client.leave(net.now);
  net.runUntilTrue(() => a.client.farewellDone, 2_000);
  assert.deepEqual(sent, [0, 100, 200], "three BYEs, 100 ms apart");
  assert.ok(lost >= 3, "the GOODBYE was repeated");
  assert.deepEqual(lefts(b).map((e) => [e.name, e.reason]), [["alice", "bye"]]);
  assert.ok(net.now - t0 <= 700, `done after ${net.now - t0} ms`);
});

Deno.test("a peer that leaves takes its file-transfer state with it, not only when the table fills", () => {
  const net = new SimNet(2110);
  addServer(net);
  const a = addPeer(net, "alice", at(1));
  const b = addPeer(net, "bob", at(2));
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && shown(b, "alice"));
  const bob = idHex(b.client.id), alice = idHex(a.client.id);
  // alice offers bob a file and bob accepts: bob's requests give alice a bulk stream to him.
  const { offer, tree } = offerOf(net.bytes(8), "f.bin", new Uint8Array(300_000).fill(7));
  a.client.fileStep(net.now, (f) => f.offer(net.now, offer, tree, f.recipients(["bob"])));
  net.runUntilTrue(() => b.drain().some((e) => e.type === "file" && e.state === "offered"));
  b.client.fileStep(net.now, (f) => f.core.accept(toHex(offer.id), net.now));
  net.runUntilTrue(() => a.client.files.core.senderOf(bob) !== undefined, 2_000);
  assert.ok(b.client.files.core.senderOf(alice), "bob keeps a stream to alice too");
  mark(a);
  b.client.leave(net.now);
  net.runUntilTrue(() => lefts(a).length === 1, 2_000);
  assert.equal(a.client.files.core.senderOf(bob), undefined, "released when bob left");
});
