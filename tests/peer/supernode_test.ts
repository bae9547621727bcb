/**
 * Supernodes in virtual time: the server's reachability check (REACH from its second address),
 * relay through a supernode of the room, a supernode's room and membership checks, forged
 * probes, and what happens when the server or the supernode goes away.
 */
import assert from "node:assert/strict";
import { MsgType } from "../../lib/wire/header.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  FLAG_SUPERNODE,
  RELAY_HEADER_LEN,
} from "../../lib/wire/server_msg.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import { reachMac } from "../../lib/crypto/cookie.ts";
import { Registry } from "../../lib/server/registry.ts";
import { signedHello, testPeerId } from "../support/hello.ts";
import { seededRandom } from "../support/prng.ts";
import { JsonView, pathText } from "../../lib/roles/view.ts";
import { addPeer, SERVER, SimNet, type SimPeer, simRoom } from "../support/sim.ts";
import { SimNat } from "../support/sim_nat.ts";
import { addCheckingServer, addressOf, addRoomPeer, SERVER_ALT } from "../support/supernode_sim.ts";

/** `n` numbered lines from `from`, sent one a step. */
function talk(net: SimNet, from: SimPeer, tag: string, n: number): string[] {
  const sent: string[] = [];
  for (let i = 0; i < n; i++) {
    const text = `${tag} ${i}`;
    from.client.send(net.now, text);
    sent.push(text);
    net.run(50);
  }
  return sent;
}

/** The texts `peer` received from `name`, in order. */
function from(peer: SimPeer, name: string): string[] {
  return peer.messages().filter((m) => m.startsWith(`${name}: `)).map((m) =>
    m.slice(name.length + 2)
  );
}

Deno.test("reachability: public and full-cone peers pass, port-restricted and symmetric fail", () => {
  const net = new SimNet(21);
  const { registry } = addCheckingServer(net);
  const alice = addRoomPeer(net, "alice", "public");
  const bob = addRoomPeer(net, "bob", "full-cone");
  const carol = addRoomPeer(net, "carol", "port-restricted");
  const dave = addRoomPeer(net, "dave", "symmetric");
  net.run(5_000);
  assert.equal(registry.stats.reachSent, 4);
  assert.equal(registry.stats.reachPassed, 2);
  assert.equal(alice.client.supernode, true);
  assert.equal(bob.client.supernode, true);
  assert.equal(carol.client.supernode, false);
  assert.equal(dave.client.supernode, false);
  // Members learn only the two that passed (and pick the lower id); carol's claim went nowhere.
  const passed = [idHexOf(alice), idHexOf(bob)].sort();
  assert.equal(carol.client.supernodeKey, passed[0]);
  assert.equal(dave.client.supernodeKey, passed[0]);
});

Deno.test("reachability with one address: only a peer without a NAT is probed (from the second port) and passes", () => {
  const net = new SimNet(22);
  const { registry } = addCheckingServer(net, "port");
  const alice = addRoomPeer(net, "alice", "public");
  const others = (["full-cone", "address-restricted", "port-restricted", "symmetric"] as const)
    .map((nat) => addRoomPeer(net, `p-${nat}`, nat));
  net.run(5_000);
  assert.equal(registry.stats.reachSent, 1, "only alice, on her own address, is probed");
  assert.equal(registry.stats.reachPassed, 1);
  assert.equal(alice.client.supernode, true);
  for (const p of others) {
    assert.equal(p.client.supernode, false);
    assert.equal(p.client.supernodeKey, idHexOf(alice));
  }
});

Deno.test("reachability with one address: a member of another room checks NATted peers; only the full cone passes", () => {
  const net = new SimNet(26);
  const { registry } = addCheckingServer(net, "port");
  // alice (public) offers to serve in her room: the helper of later checks in other rooms.
  const alice = addRoomPeer(net, "alice", "public");
  net.run(2_000);
  assert.equal(alice.client.supernode, true);
  const other = { room: simRoom("other room") };
  const fion = addRoomPeer(net, "fion", "full-cone", other);
  const ari = addRoomPeer(net, "ari", "address-restricted", other);
  const pat = addRoomPeer(net, "pat", "port-restricted", other);
  const sam = addRoomPeer(net, "sam", "symmetric", other);
  net.run(5_000);
  assert.equal(registry.stats.reachSent, 5, "alice from the second port, the others via alice");
  assert.equal(fion.client.supernode, true, "a full cone lets a stranger's REACH in");
  for (const p of [ari, pat, sam]) assert.equal(p.client.supernode, false);
  assert.equal(registry.stats.reachPassed, 2);
  // fion's REACH came from alice's address, which fion had never contacted (the others' NATs
  // dropped theirs).
  const at = addressOf.get(alice)!;
  const reaches = net.log.filter((d) => d.from.hostname === at.hostname && d.data[3] === 0x0e);
  assert.equal(reaches.length, 1);
});

Deno.test("reachability with one address: no helper (no supernode of another room), no check", () => {
  const net = new SimNet(27);
  const { registry } = addCheckingServer(net, "port");
  const fion = addRoomPeer(net, "fion", "full-cone");
  const fay = addRoomPeer(net, "fay", "full-cone");
  net.run(5_000);
  // Each is the other's room-mate: it contacts the other's address, so it cannot check it.
  assert.equal(registry.stats.reachSent, 0);
  assert.equal(fion.client.supernode || fay.client.supernode, false);
});

Deno.test("reachability with one address: a --no-supernode member never sends a check's REACH", () => {
  const net = new SimNet(28);
  const { registry } = addCheckingServer(net, "port");
  addRoomPeer(net, "alice", "public", { supernode: "off" });
  const fion = addRoomPeer(net, "fion", "full-cone", { room: simRoom("other room") });
  net.run(5_000);
  // alice never offered: she is no helper, so fion is not probed at all.
  assert.equal(registry.stats.reachSent, 0);
  assert.equal(fion.client.supernode, false);
});

Deno.test("reachability with one address: probing NATted peers from the second port would pass an address-restricted NAT", () => {
  // Why only peers without a NAT are probed: a REACH from the server's own address (another
  // port) gets through a NAT that filters on the address alone, yet strangers cannot.
  const net = new SimNet(23);
  const { registry } = addCheckingServer(net, "port", { reachNoNatOnly: false });
  const ari = addRoomPeer(net, "ari", "address-restricted");
  const pat = addRoomPeer(net, "pat", "port-restricted");
  net.run(5_000);
  assert.equal(registry.stats.reachSent, 2);
  assert.equal(ari.client.supernode, true, "the false positive the guard prevents");
  assert.equal(pat.client.supernode, false);
});

Deno.test("reachability: a public peer behind a stateful firewall fails the one-address probe", () => {
  // A host on its own address whose firewall lets in only replies (per address and port):
  // probed, and the REACH from the second port is dropped.
  const net = new SimNet(24);
  const { registry } = addCheckingServer(net, "port");
  const own = { hostname: "192.0.2.99", port: 5000 };
  const firewall = (filtering: "address-and-port-dependent" | "address-dependent") =>
    new SimNat(own.hostname, { mapping: "endpoint-independent", filtering, ports: "preserve" });
  const fw = addPeer(net, "fw", own, firewall("address-and-port-dependent"));
  net.run(5_000);
  assert.equal(registry.stats.reachSent, 1, "probed: it is seen on its own address");
  assert.equal(registry.stats.reachPassed, 0);
  assert.equal(fw.client.supernode, false);
  // The limit of one address, documented: a firewall that filters on the address alone (rare;
  // conntrack-based ones filter per address and port) lets the probe in.
  const net2 = new SimNet(25);
  const { registry: r2 } = addCheckingServer(net2, "port");
  addPeer(net2, "fw2", own, firewall("address-dependent"));
  net2.run(5_000);
  assert.equal(r2.stats.reachPassed, 1);
});

Deno.test("reachability: a REACHED without the registration's token or nonce changes nothing", () => {
  const net = new SimNet(32);
  const { registry } = addCheckingServer(net);
  const carol = addRoomPeer(net, "carol", "port-restricted");
  net.run(3_000);
  assert.equal(registry.stats.reachSent, 1);
  // An off-path attacker guessing: carol's id is known to members, her token is not.
  const forged = encodeServerMsg({
    type: MsgType.Reached,
    id: carol.client.id,
    token: new Uint8Array(8),
    nonce: new Uint8Array(8),
  });
  net.inject({ hostname: "192.0.2.200", port: 1 }, SERVER, forged);
  net.run(1_000);
  assert.equal(registry.stats.reachPassed, 0);
  assert.equal(registry.stats.drops["reached-unknown"], 1);
});

Deno.test("the view says which relay: relayed via carol, via in --json", () => {
  assert.equal(pathText("relay", null, null, "carol"), "relayed via carol");
  assert.equal(pathText("relay", null, null), "relayed via server");
  const json = new JsonView();
  const ev = { type: "peer", name: "bob", fingerprint: "f", addr: null, rtt: null } as const;
  const line = (relayedBy: string | null) =>
    JSON.parse(json.event({ ...ev, path: "relay", relayedBy })[0]!) as Record<string, unknown>;
  assert.equal(line("carol").via, "carol");
  assert.equal(line(null).via, "server");
  assert.equal(JSON.parse(json.event({ ...ev, path: "direct" })[0]!).via, undefined);
});

Deno.test("reachability: claiming is not enough (no second address, or --no-supernode)", () => {
  const net = new SimNet(22);
  const { registry } = addCheckingServer(net, false);
  const alice = addRoomPeer(net, "alice", "public", { supernode: "ask" });
  const bob = addRoomPeer(net, "bob", "symmetric");
  net.run(5_000);
  assert.equal(registry.stats.reachSent, 0);
  assert.equal(alice.client.supernode, false);
  assert.equal(bob.client.supernodeKey, undefined);

  const net2 = new SimNet(23);
  const checking = addCheckingServer(net2);
  const carol = addRoomPeer(net2, "carol", "public", { supernode: "off" });
  net2.run(5_000);
  assert.equal(checking.registry.stats.reachSent, 0);
  assert.equal(carol.client.supernode, false);
});

Deno.test("--supernode ask: the user is told once whether the check passed", () => {
  const notices = (p: SimPeer) =>
    p.drain().flatMap((e) => e.type === "notice" && e.kind.includes("supernode") ? [e.kind] : []);
  for (const alt of [true, false]) {
    const net = new SimNet(26);
    addCheckingServer(net, alt);
    const alice = addRoomPeer(net, "alice", "public", { supernode: "ask" });
    const bob = addRoomPeer(net, "bob", "public");
    net.run(10_000);
    assert.deepEqual(notices(alice), [alt ? "supernode" : "not-supernode"], `alt ${alt}`);
    assert.deepEqual(notices(bob), [], "auto says nothing either way");
  }
});

Deno.test("reachability: a forged REACH is ignored", () => {
  const net = new SimNet(24);
  addCheckingServer(net, false);
  const alice = addRoomPeer(net, "alice", "public");
  net.run(3_000);
  const nonce = new Uint8Array(8).fill(7);
  // An attacker who does not know alice's registration token.
  const forged = encodeServerMsg({
    type: MsgType.Reach,
    nonce,
    mac: reachMac(new Uint8Array(8).fill(1), nonce),
  });
  net.inject(SERVER_ALT, addressOf.get(alice)!, forged);
  net.run(1_000);
  assert.equal(alice.client.supernode, false);
  assert.equal(alice.client.drops["reach-forged"], 1);
});

/** Alice public (the supernode), bob and carol behind random-port symmetric NATs. */
function supernodeRoom(seed: number) {
  const net = new SimNet(seed);
  const server = addCheckingServer(net);
  const alice = addRoomPeer(net, "alice", "public");
  const bob = addRoomPeer(net, "bob", "symmetric-random", { supernode: "off" });
  const carol = addRoomPeer(net, "carol", "symmetric-random", { supernode: "off" });
  net.runUntilTrue(
    () =>
      bob.lastPath("carol")?.relayedBy === "alice" && carol.lastPath("bob")?.relayedBy === "alice",
    30_000,
  );
  return { net, server, alice, bob, carol };
}

Deno.test("relay through the supernode: no server relay bytes, exactly once, in order", () => {
  const { net, server, alice, bob, carol } = supernodeRoom(25);
  assert.equal(alice.client.supernode, true);
  assert.equal(bob.client.supernodeKey, idHexOf(alice));
  // RELAYS frames (the relay RTTs, once measured) always go through the server: let them pass.
  net.run(1_000);
  const before = server.registry.stats.relayedBytes;
  const hostBefore = alice.client.supernodeStats()!.relayedBytes;
  const b = talk(net, bob, "b", 20);
  const c = talk(net, carol, "c", 20);
  net.run(3_000);
  assert.deepEqual(from(carol, "bob"), b);
  assert.deepEqual(from(bob, "carol"), c);
  assert.equal(server.registry.stats.relayedBytes, before, "the server relayed none of it");
  assert.ok(alice.client.supernodeStats()!.relayedBytes > hostBefore + 40 * 20);
  const row = bob.client.peers().find((p) => p.name === "carol")!;
  assert.equal(row.path, "relay");
  assert.equal(row.relayedBy, "alice");
});

Deno.test("introduced by the server and the supernode: one handshake per pair, no churn", () => {
  const { net } = supernodeRoom(36);
  net.run(30_000);
  // HANDSHAKE frames inside RELAYs (to the server or to alice), by stage.
  const stages: number[] = [];
  for (const d of net.log) {
    if (d.data[3] !== MsgType.Relay) continue;
    const inner = d.data.subarray(RELAY_HEADER_LEN);
    if (inner[3] === MsgType.Handshake) stages.push(inner[4 + 16]!);
  }
  // Three pairs (alice-bob, alice-carol, bob-carol); both sides of a pair initiate their own
  // XX handshake (3 messages, each relayed once): six of each stage, no second round.
  for (const stage of [1, 2, 3]) {
    assert.equal(stages.filter((s) => s === stage).length, 6, `stages ${stages}`);
  }
});

function idHexOf(p: SimPeer): string {
  return [...p.client.id].map((x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("server gone: the pair keeps talking through the supernode", () => {
  const { net, server, bob, carol } = supernodeRoom(26);
  net.detach(server.machine);
  const b = talk(net, bob, "b", 20);
  const c = talk(net, carol, "c", 20);
  net.run(5_000);
  assert.deepEqual(from(carol, "bob"), b);
  assert.deepEqual(from(bob, "carol"), c);
});

Deno.test("server gone: a new peer given the supernode as a second --server joins through it", () => {
  const { net, server, alice, bob, carol } = supernodeRoom(29);
  net.detach(server.machine);
  net.run(1_000);
  const dave = addRoomPeer(net, "dave", "symmetric-random", {
    supernode: "off",
    fallbacks: [addressOf.get(alice)!],
  });
  net.runUntilTrue(() => dave.client.registered, 15_000);
  net.runUntilTrue(
    () => ["alice", "bob", "carol"].every((n) => dave.lastPath(n) !== undefined),
    20_000,
  );
  dave.client.send(net.now, "hello from dave");
  net.run(3_000);
  for (const p of [alice, bob, carol]) {
    assert.deepEqual(from(p, "dave"), ["hello from dave"], "everyone hears dave");
  }
  for (const [p, n] of [[alice, "alice"], [bob, "bob"], [carol, "carol"]] as const) {
    p.client.send(net.now, `hi dave from ${n}`);
  }
  net.run(3_000);
  assert.deepEqual(from(dave, "alice"), ["hi dave from alice"]);
  assert.deepEqual(from(dave, "bob"), ["hi dave from bob"]);
  assert.deepEqual(from(dave, "carol"), ["hi dave from carol"]);
});

Deno.test("server lost while registered: a peer fails over to its next --server", () => {
  const net = new SimNet(34);
  const server = addCheckingServer(net);
  const alice = addRoomPeer(net, "alice", "public");
  net.run(2_000);
  const at = addressOf.get(alice)!;
  const bob = addRoomPeer(net, "bob", "symmetric-random", { supernode: "off", fallbacks: [at] });
  const carol = addRoomPeer(net, "carol", "symmetric-random", { supernode: "off" });
  net.runUntilTrue(() =>
    bob.lastPath("carol") !== undefined && carol.lastPath("bob") !== undefined
  );
  net.detach(server.machine);
  // Lost after PONGs are missing 10 s (keepalive 25 s): then bob registers with alice.
  net.runUntilTrue(() => bob.drain().some((e) => e.type === "server-back"), 60_000);
  bob.client.send(net.now, "after failover");
  net.run(5_000);
  assert.deepEqual(from(carol, "bob"), ["after failover"]);
  assert.deepEqual(from(alice, "bob"), ["after failover"]);
});

Deno.test("supernode gone: the pair moves to the server's relay, nothing lost or duplicated", () => {
  const { net, server, alice, bob, carol } = supernodeRoom(27);
  const first = talk(net, bob, "b", 10);
  alice.client.leave(net.now);
  net.detach(alice.client);
  const rest = talk(net, bob, "b-late", 10);
  const back = talk(net, carol, "c", 10);
  net.runUntilTrue(() => from(carol, "bob").length >= 20 && from(bob, "carol").length >= 10);
  net.run(3_000);
  assert.deepEqual(from(carol, "bob"), [...first, ...rest]);
  assert.deepEqual(from(bob, "carol"), back);
  assert.equal(bob.lastPath("carol")?.relayedBy, null);
  assert.ok(server.registry.stats.relayedBytes > 0);
});

Deno.test("relay choice: a far supernode loses to the server by RTT sum (told sealed)", () => {
  const net = new SimNet(31);
  const server = addCheckingServer(net);
  const alice = addRoomPeer(net, "alice", "public");
  const far = addressOf.get(alice)!.hostname;
  // 150 ms more each way to and from alice: RTT sums 2 × 320 ms via her, 2 × 20 ms via the server.
  net.delay = (from, to) => (from.hostname === far || to.hostname === far ? 150 : 0);
  const bob = addRoomPeer(net, "bob", "symmetric-random", { supernode: "off" });
  const carol = addRoomPeer(net, "carol", "symmetric-random", { supernode: "off" });
  net.run(15_000);
  assert.equal(bob.client.supernodeKey, idHexOf(alice), "registered with the supernode");
  assert.equal(bob.lastPath("carol")?.relayedBy, null, "but relayed by the server");
  assert.equal(carol.lastPath("bob")?.relayedBy, null);
  const before = alice.client.supernodeStats()!.relayedBytes;
  talk(net, bob, "b", 5);
  net.run(2_000);
  assert.equal(from(carol, "bob").length, 5);
  assert.equal(alice.client.supernodeStats()!.relayedBytes, before, "nothing through alice");
  assert.ok(server.registry.stats.relayedBytes > 0);
});

Deno.test("two supernodes: members converge on the one with the lowest id", () => {
  const net = new SimNet(30);
  addCheckingServer(net);
  const s1 = addRoomPeer(net, "s1", "public");
  const s2 = addRoomPeer(net, "s2", "full-cone");
  const members = ["m1", "m2", "m3"].map((n) =>
    addRoomPeer(net, n, "symmetric-random", { supernode: "off" })
  );
  net.run(10_000);
  assert.ok(s1.client.supernode && s2.client.supernode);
  const lowest = [idHexOf(s1), idHexOf(s2)].sort()[0];
  for (const m of members) assert.equal(m.client.supernodeKey, lowest);
  const via = idHexOf(s1) === lowest ? "s1" : "s2";
  assert.equal(members[0]!.lastPath("m2")?.relayedBy, via);
});

Deno.test("supernode crashes (no goodbye): its pairs move to the server's relay within seconds", () => {
  const { net, alice, bob, carol } = supernodeRoom(33);
  const first = talk(net, bob, "b", 5);
  net.detach(alice.client);
  const crashedAt = net.now;
  const rest = talk(net, bob, "b-late", 5);
  net.runUntilTrue(() => bob.lastPath("carol")?.relayedBy === null, 20_000);
  const moved = net.now - crashedAt;
  net.runUntilTrue(() => from(carol, "bob").length >= 10, 30_000);
  net.run(2_000);
  assert.deepEqual(from(carol, "bob"), [...first, ...rest]);
  assert.ok(moved < 6_000, `moved after ${moved} ms`);
});

Deno.test("two supernodes: when the one in use dies, pairs move to the other", () => {
  const net = new SimNet(35);
  addCheckingServer(net);
  const s1 = addRoomPeer(net, "s1", "public");
  const s2 = addRoomPeer(net, "s2", "public");
  const bob = addRoomPeer(net, "bob", "symmetric-random", { supernode: "off" });
  const carol = addRoomPeer(net, "carol", "symmetric-random", { supernode: "off" });
  net.run(10_000);
  const [used, spare] = idHexOf(s1) < idHexOf(s2) ? [s1, s2] : [s2, s1];
  const usedName = used === s1 ? "s1" : "s2", spareName = used === s1 ? "s2" : "s1";
  assert.equal(bob.lastPath("carol")?.relayedBy, usedName);
  const first = talk(net, bob, "b", 5);
  net.detach(used.client);
  const rest = talk(net, bob, "b-late", 5);
  net.runUntilTrue(() => bob.lastPath("carol")?.relayedBy === spareName, 30_000);
  net.runUntilTrue(() => from(carol, "bob").length >= 10, 30_000);
  net.run(2_000);
  assert.deepEqual(from(carol, "bob"), [...first, ...rest]);
  assert.equal(bob.client.supernodeKey, idHexOf(spare));
});

Deno.test("a supernode serves only its room, and only members", () => {
  const { net, alice } = supernodeRoom(28);
  const members = alice.client.supernodeStats()!.members;
  const at = addressOf.get(alice)!;
  // A member of another room, pointed at alice as its server.
  const mallory = addRoomPeer(net, "mallory", "public", {
    server: at,
    room: simRoom("other room"),
  });
  // Someone with the room's name but not its passphrase.
  const eve = addRoomPeer(net, "eve", "public", {
    server: at,
    room: simRoom("room", "wrong passphrase"),
  });
  net.run(12_000);
  assert.equal(mallory.client.registered, false);
  assert.equal(eve.client.registered, false);
  assert.equal(alice.client.supernodeStats()!.members, members);
  const refusal = mallory.drain().find((e) => e.type === "fatal");
  assert.match(refusal?.type === "fatal" ? refusal.message : "", /serves only its room/);
  // A wrong passphrase derives another room id: refused like another room.
  assert.ok(eve.drain().some((e) => e.type === "fatal"));
  assert.ok((alice.client.supernodeStats()!.drops["hello-other-room"] ?? 0) >= 2);
});

Deno.test("registry: one REACH per registration, within the server-wide rate, only with the flag", () => {
  const reg = new Registry(
    { reachVia: 2, reachRate: 2 },
    seededRandom(1),
    new Uint8Array(32).fill(1),
  );
  const reaches = () => {
    const out: Transmit[] = [];
    for (let t = reg.pollTransmit(); t; t = reg.pollTransmit()) if (t.via === 2) out.push(t);
    return out;
  };
  const hello = (n: number, flags: number) => {
    const from = { hostname: `192.0.2.${n}`, port: 4000 };
    const id = testPeerId(`reach ${n}`);
    const m = signedHello("reach", {
      id,
      flags,
      nameTag: new Uint8Array(8).fill(n),
      cookie: reg.cookieFor(id, from, 0),
    });
    reg.handleDatagram(0, from, encodeServerMsg(m));
  };
  hello(1, FLAG_SUPERNODE);
  hello(1, FLAG_SUPERNODE); // repeated (a lost WELCOME): no second probe
  hello(2, 0); // not offered: none
  const first = reaches();
  assert.equal(first.length, 1);
  assert.equal(first[0]!.data.length, 4 + 8 + 16, "REACH is 28 bytes, smaller than a HELLO");
  // Burst 4x the rate (8): the ninth and later wait for tokens.
  for (let n = 10; n < 30; n++) hello(n, FLAG_SUPERNODE);
  assert.equal(reaches().length, 7);
  assert.equal(reg.stats.drops["reach-rate"], 13);
});

Deno.test("registry with one address: REACH from the second port only to members seen at their own endpoint, IPv4", () => {
  const reg = new Registry(
    { reachVia: 1, reachNoNatOnly: true },
    seededRandom(2),
    new Uint8Array(32).fill(2),
  );
  const hello = (n: number, from: { hostname: string; port: number }, own: typeof from[]) => {
    const id = testPeerId(`reach1 ${n}`);
    const m = signedHello("reach1", {
      id,
      flags: FLAG_SUPERNODE,
      nameTag: new Uint8Array(8).fill(n),
      cookie: reg.cookieFor(id, from, 0),
      privateEndpoints: own,
    });
    reg.handleDatagram(0, from, encodeServerMsg(m));
    const out: Transmit[] = [];
    for (let t = reg.pollTransmit(); t; t = reg.pollTransmit()) {
      if (t.via !== undefined) out.push(t);
    }
    return out;
  };
  const pub = { hostname: "192.0.2.1", port: 4000 };
  const probed = hello(1, pub, [pub]);
  assert.deepEqual(probed.map((t) => [t.via, t.to]), [[1, pub]]);
  // Behind a NAT: its interface is another address (or the same address, another port).
  assert.deepEqual(
    hello(2, { hostname: "192.0.2.2", port: 4000 }, [{ hostname: "10.0.0.2", port: 4000 }]),
    [],
  );
  assert.deepEqual(
    hello(3, { hostname: "192.0.2.3", port: 5000 }, [{ hostname: "192.0.2.3", port: 4000 }]),
    [],
  );
  // On its own IPv6 address: the second port is IPv4, no probe.
  const six = { hostname: "2001:db8::5", port: 4000 };
  assert.deepEqual(hello(4, six, [six]), []);
  assert.equal(reg.stats.reachSent, 1);
});

Deno.test("registry with one address: a NATted member's CHECK goes to a supernode of another room at an address its room never had", () => {
  const reg = new Registry(
    { reachVia: 1, reachNoNatOnly: true },
    seededRandom(3),
    new Uint8Array(32).fill(3),
  );
  /** Registers `n`; returns the CHECKs sent, and passes the REACH (REACHED) when one came. */
  const hello = (n: number, room: string, from: Endpoint, own: Endpoint[]) => {
    const id = testPeerId(`check ${n}`);
    const m = signedHello(room, {
      id,
      flags: FLAG_SUPERNODE,
      nameTag: new Uint8Array(8).fill(n),
      cookie: reg.cookieFor(id, from, 0),
      privateEndpoints: own,
    });
    reg.handleDatagram(0, from, encodeServerMsg(m));
    const checks: { to: Endpoint; target: Endpoint }[] = [];
    let token: Uint8Array | undefined, nonce: Uint8Array | undefined;
    for (let t = reg.pollTransmit(); t; t = reg.pollTransmit()) {
      const d = decodeServerMsg(t.data);
      if (!d.ok) continue;
      if (d.value.type === MsgType.Check) checks.push({ to: t.to, target: d.value.target });
      if (d.value.type === MsgType.Welcome) token = d.value.token;
      if (d.value.type === MsgType.Reach && t.via === 1) nonce = d.value.nonce;
    }
    if (token && nonce) {
      reg.handleDatagram(0, from, encodeServerMsg({ type: MsgType.Reached, id, token, nonce }));
      while (reg.pollTransmit()) { /* the INTROs of its room */ }
    }
    return checks;
  };
  const lan = (n: number) => [{ hostname: `10.0.0.${n}`, port: 4000 }];
  const h1 = { hostname: "192.0.2.50", port: 4000 };
  const h2 = { hostname: "192.0.2.60", port: 4000 };
  // A NATted member before any supernode exists: nobody can check it.
  assert.deepEqual(hello(9, "r9", { hostname: "198.51.100.99", port: 1 }, lan(9)), []);
  assert.deepEqual(hello(1, "r3", h2, [h2]), [], "h2: on its own address, probed directly");
  assert.deepEqual(hello(2, "r1", h1, [h1]), [], "h1 too");
  assert.equal(reg.stats.reachPassed, 2);
  // m shares h1's address (the same NAT) and sits in r2: r2's members have contacted h1's address.
  const m = { hostname: "192.0.2.50", port: 5000 };
  const toM = hello(3, "r2", m, lan(3));
  assert.deepEqual(toM.map((c) => c.to), [h2], "m is checked by h2 (h1 shares its address)");
  const c = { hostname: "198.51.100.9", port: 4000 };
  assert.deepEqual(hello(4, "r2", c, lan(4)), [{ to: h2, target: c }], "not by h1 (m's address)");
  // A newcomer in h2's own room: the newest supernode of another room, h1 (m and c are none).
  const d = { hostname: "198.51.100.10", port: 4000 };
  assert.deepEqual(hello(5, "r3", d, lan(5)).map((x) => x.to), [h1]);
  // A helper is asked no more than it sends (burst 8): h2 has 6 left, h1 7; then nobody.
  let asked = 0;
  for (let n = 20; n < 36; n++) {
    asked += hello(n, "r4", { hostname: `198.51.100.${n}`, port: 4000 }, lan(n)).length;
  }
  assert.equal(asked, 6 + 7);
});

Deno.test("a supernode that stays up but drops a pair's frames: the pair moves to the server's relay", () => {
  const { net, alice, bob, carol } = supernodeRoom(27);
  const at = addressOf.get(alice)!;
  // alice keeps answering PINGs and relays carol's frames, but drops every RELAY bob sends.
  let dropped = 0;
  net.block = (_from, to, data) => {
    const drop = to.hostname === at.hostname && to.port === at.port &&
      data[3] === MsgType.Relay && data.length > 40 &&
      data.subarray(4, 12).every((b, i) => b === bob.client.id[i]);
    if (drop) dropped++;
    return drop;
  };
  const b = talk(net, bob, "b", 10);
  net.runUntilTrue(() => from(carol, "bob").length === 10, 20_000);
  assert.ok(dropped > 0, "the supernode did drop bob's frames");
  assert.deepEqual(from(carol, "bob"), b, "exactly once, in order");
  assert.equal(bob.lastPath("carol")?.relayedBy, null, "relayed by the server now");
});

/**
 * A hostile supernode (issue 17 #5) answers PINGs at once, so its RTT looks fine, but holds back
 * what it relays: each RELAYED `delayMs` late, or every `dropEvery`th one dropped. The pairs it
 * relays must notice from their own traffic (acknowledgement delay, loss) and move to the
 * server's relay, with every line delivered once.
 */
const HOSTILE_SUPERNODES: [string, number, number][] = [
  ["delays every relayed frame 1.4 s", 1_400, 0],
  ["drops half of the relayed frames", 0, 2],
  ["drops a third of the relayed frames", 0, 3],
];
for (const [what, delayMs, dropEvery] of HOSTILE_SUPERNODES) {
  Deno.test(`a supernode that ${what} (PINGs answered at once): the pairs move to the server's relay`, () => {
    const { net, alice, bob, carol } = supernodeRoom(31);
    const at = addressOf.get(alice)!;
    const relayedByAlice = (from: Endpoint, data: Uint8Array) =>
      from.hostname === at.hostname && from.port === at.port && data[3] === MsgType.Relayed;
    let n = 0;
    net.delay = (f, _t, data) => relayedByAlice(f, data) ? delayMs : 0;
    net.block = (f, _t, data) => dropEvery > 0 && relayedByAlice(f, data) && ++n % dropEvery === 0;
    const b = talk(net, bob, "b", 40);
    const c = talk(net, carol, "c", 40);
    net.runUntilTrue(
      () => bob.lastPath("carol")?.relayedBy === null && carol.lastPath("bob")?.relayedBy === null,
      30_000,
    );
    net.runUntilTrue(() => from(carol, "bob").length === 40 && from(bob, "carol").length === 40);
    assert.deepEqual(from(carol, "bob"), b, "exactly once, in order");
    assert.deepEqual(from(bob, "carol"), c);
    // The members left that supernode altogether (every pair it relays would fare the same).
    const left = [bob, carol].filter((p) => p.client.supernodeKey !== idHexOf(alice));
    assert.ok(left.length >= 1, "at least the member that measured it left the supernode");
  });
}
