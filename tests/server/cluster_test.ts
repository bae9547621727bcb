/**
 * The cluster part of the registry (`lib/server/cluster.ts`), sans-IO: two or three registries
 * joined through an in-memory engine (every published message delivered to the others, or to
 * the one it names), peers registering with signed HELLOs. What the peers see: introductions
 * across servers with one epoch on both sides, rosters and digests that include the other
 * server's members, relay across servers, departures, a dead server's members leaving after its
 * lease, a peer failing over to another server keeping its epochs, convergence after an engine
 * outage, and forged cluster messages refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { clusterKey } from "../../lib/crypto/cluster_mac.ts";
import { DEFAULT_CLUSTER } from "../../lib/server/cluster.ts";
import {
  type ClusterEnvelope,
  ClusterType,
  decodeCluster,
  encodeCluster,
} from "../../lib/server/cluster_wire.ts";
import { Registry, type RegistryOptions } from "../../lib/server/registry.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { idHex, MsgType } from "../../lib/wire/header.ts";
import { encodeHandshake } from "../../lib/wire/peer_frame.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  FLAG_SUPERNODE,
  LeftReason,
  RefuseCode,
  rosterDigest,
  type ServerMsg,
} from "../../lib/wire/server_msg.ts";
import { signedHello, testPeerId } from "../support/hello.ts";
import { seededRandom } from "../support/prng.ts";

type Msg<T extends ServerMsg["type"]> = Extract<ServerMsg, { type: T }>;

interface Node {
  name: string;
  registry: Registry;
  /** The engine reaches it. */
  connected: boolean;
  /** Its process runs (a dead one neither publishes nor receives). */
  alive: boolean;
  /** What it sent to peers, decoded. */
  sent: { to: Endpoint; msg: ServerMsg }[];
}

interface Peer {
  id: Uint8Array;
  addr: Endpoint;
  tag: Uint8Array;
  token: Uint8Array;
  /** Its last WELCOME. */
  welcome?: Msg<typeof MsgType.Welcome>;
}

/** Registries joined through an in-memory engine, on one virtual clock. */
class Net {
  nodes: Node[] = [];
  now = 1_000;
  key: Uint8Array | null;
  #nonces = 0;

  constructor(n: number, secret?: string, limits: Partial<RegistryOptions> = {}) {
    this.key = secret ? clusterKey(new TextEncoder().encode(secret)) : null;
    for (let i = 0; i < n; i++) {
      const registry = new Registry(limits, seededRandom(100 + i));
      registry.joinCluster({
        ...DEFAULT_CLUSTER,
        server: new Uint8Array(8).fill(i + 1),
        key: this.key,
        endpoints: [{ hostname: "192.0.2.1", port: 7000 + i }],
      });
      const node = { name: "ABC"[i]!, registry, connected: true, alive: true, sent: [] };
      this.nodes.push(node);
      registry.handleEngine(this.now, true);
    }
    this.pump();
  }

  /** Delivers every published message until none is left; collects what went to peers. */
  pump(): void {
    for (let moved = true; moved;) {
      moved = false;
      for (const n of this.nodes) {
        for (let t = n.registry.pollTransmit(); t; t = n.registry.pollTransmit()) {
          const d = decodeServerMsg(t.data);
          if (d.ok) n.sent.push({ to: t.to, msg: d.value });
        }
        for (let p = n.registry.pollPublish(); p; p = n.registry.pollPublish()) {
          if (!n.alive || !n.connected) continue;
          moved = true;
          for (const m of this.nodes) {
            if (m === n || !m.alive || !m.connected) continue;
            if (p.to !== null && p.to !== n.registry.cluster!.serverHex) {
              if (p.to !== m.registry.cluster!.serverHex) continue;
            }
            m.registry.handleCluster(this.now, p.data);
          }
        }
      }
    }
  }

  /** Advances the clock in steps of 500 ms, running every live node's timers. */
  advance(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + 500);
      for (const n of this.nodes) if (n.alive) n.registry.handleTimeout(this.now);
      this.pump();
    }
  }

  /** Registers `p` at `n` in `room` (COOKIE round trip, then HELLO); its token from the WELCOME. */
  register(n: Node, p: Peer, owner?: Uint8Array, room = "room"): void {
    const cookie = n.registry.cookieFor(p.id, p.addr, this.now);
    const nonce = new Uint8Array(8);
    new DataView(nonce.buffer).setUint32(0, ++this.#nonces);
    const hello = signedHello(room, { id: p.id, cookie, nonce, nameTag: p.tag, owner });
    n.registry.handleDatagram(this.now, p.addr, encodeServerMsg(hello));
    this.pump();
    const w = this.take(n, p, MsgType.Welcome).at(-1);
    assert.ok(w, `no WELCOME at ${n.name}`);
    p.token = w.token;
    p.welcome = w;
  }

  /** Sends `m` from `p` to `n`. */
  send(n: Node, p: Peer, m: ServerMsg): void {
    n.registry.handleDatagram(this.now, p.addr, encodeServerMsg(m));
    this.pump();
  }

  /** Takes the messages of `type` node `n` sent to `p` so far. */
  take<T extends ServerMsg["type"]>(n: Node, p: Peer, type: T): Msg<T>[] {
    const out: Msg<T>[] = [];
    n.sent = n.sent.filter((s) => {
      const mine = s.to.hostname === p.addr.hostname && s.to.port === p.addr.port &&
        s.msg.type === type;
      if (mine) out.push(s.msg as Msg<T>);
      return !mine;
    });
    return out;
  }
}

let nextPeer = 1;
function peer(): Peer {
  const i = nextPeer++;
  return {
    id: testPeerId(`cluster peer ${i}`),
    addr: { hostname: `198.51.100.${i}`, port: 40000 + i },
    tag: new Uint8Array(8).fill(0x40 + i),
    token: new Uint8Array(8),
  };
}

function introOf(list: Msg<typeof MsgType.Intro>[], p: Peer) {
  return list.find((m) => idHex(m.id) === idHex(p.id));
}

Deno.test("cluster: members of one room at two servers are introduced to each other, one epoch", () => {
  const net = new Net(2);
  const [a, b] = net.nodes as [Node, Node];
  const alice = peer(), bob = peer();
  net.register(a, alice);
  net.register(b, bob);
  const toBob = introOf(net.take(b, bob, MsgType.Intro), alice);
  const toAlice = introOf(net.take(a, alice, MsgType.Intro), bob);
  assert.ok(toBob && toAlice, "both sides introduced");
  assert.equal(idHex(toBob.epoch), idHex(toAlice.epoch));
  assert.deepEqual(toBob.publicEndpoint, alice.addr);
  assert.deepEqual(toAlice.publicEndpoint, bob.addr);
  // The roster digest counts the other server's member: bob's PING with alice in his set is
  // answered with the same digest.
  net.send(b, bob, {
    type: MsgType.Ping,
    id: bob.id,
    token: bob.token,
    cookie: new Uint8Array(8),
    digest: rosterDigest([alice.id]),
  });
  const pong = net.take(b, bob, MsgType.Pong).at(-1)!;
  assert.equal(pong.digest, rosterDigest([alice.id]));
  // bob was told of the cluster's other server in his WELCOME (no SERVERS after it).
  assert.deepEqual(bob.welcome?.cluster, {
    keepalive: DEFAULT_CLUSTER.keepalive,
    servers: [{ hostname: "192.0.2.1", port: 7000 }],
  });
  assert.deepEqual(net.take(b, bob, MsgType.Servers), []);
});

Deno.test("cluster: a RELAY crosses to the recipient's server, a REPUNCH introduces both sides", () => {
  const net = new Net(2);
  const [a, b] = net.nodes as [Node, Node];
  const alice = peer(), bob = peer();
  net.register(a, alice);
  net.register(b, bob);
  net.take(b, bob, MsgType.Intro);
  const frame = encodeHandshake({
    from: alice.id,
    to: bob.id,
    stage: 1,
    attempt: 1,
    message: new Uint8Array(48),
  });
  net.send(a, alice, {
    type: MsgType.Relay,
    from: alice.id,
    token: alice.token,
    to: bob.id,
    payload: frame,
  });
  const got = net.take(b, bob, MsgType.Relayed);
  assert.equal(got.length, 1);
  assert.equal(idHex(got[0]!.token), idHex(bob.token));
  assert.equal(idHex(got[0]!.from), idHex(alice.id));
  assert.deepEqual(got[0]!.payload, frame);
  assert.equal(a.registry.cluster!.stats.relayBytesOut, frame.length);
  assert.equal(b.registry.cluster!.stats.relayBytesIn, frame.length);
  net.send(a, alice, { type: MsgType.Repunch, id: alice.id, token: alice.token, target: bob.id });
  assert.equal(net.take(a, alice, MsgType.Intro).length, 1 + 1);
  assert.equal(net.take(b, bob, MsgType.Intro).length, 1);
});

Deno.test("cluster: a BYE at one server is a LEFT at the other", () => {
  const net = new Net(2);
  const [a, b] = net.nodes as [Node, Node];
  const alice = peer(), bob = peer();
  net.register(a, alice);
  net.register(b, bob);
  net.send(a, alice, { type: MsgType.Bye, id: alice.id, token: alice.token });
  const left = net.take(b, bob, MsgType.Left);
  assert.equal(left.length, 1);
  assert.equal(left[0]!.reason, LeftReason.Bye);
  assert.equal(b.registry.cluster!.stats.remoteMembers, 0);
});

Deno.test("cluster: a dead server's members leave (Expired) within its lease, not before", () => {
  const net = new Net(2);
  const [a, b] = net.nodes as [Node, Node];
  const alice = peer(), bob = peer();
  net.register(a, alice);
  net.register(b, bob);
  a.alive = false;
  net.advance(DEFAULT_CLUSTER.lease - 1_000);
  assert.equal(net.take(b, bob, MsgType.Left).length, 0, "not before the lease");
  net.advance(1_500);
  const left = net.take(b, bob, MsgType.Left);
  assert.equal(left.length, 1);
  assert.equal(left[0]!.reason, LeftReason.Expired);
});

Deno.test("cluster: a peer failing over to another server keeps its epochs, nobody sees it leave", () => {
  const net = new Net(3);
  const [a, b, c] = net.nodes as [Node, Node, Node];
  const alice = peer(), bob = peer(), carol = peer();
  net.register(a, alice);
  net.register(b, bob);
  net.register(c, carol);
  const epoch = idHex(introOf(net.take(c, carol, MsgType.Intro), alice)!.epoch);
  net.take(b, bob, MsgType.Intro);
  a.alive = false;
  net.advance(3_000);
  // alice's link gave up on A and registers with B: same id, same identity.
  alice.addr = { ...alice.addr };
  net.register(b, alice);
  const toAlice = introOf(net.take(b, alice, MsgType.Intro), carol);
  assert.equal(idHex(toAlice!.epoch), epoch, "the pair's epoch is unchanged");
  const toCarol = introOf(net.take(c, carol, MsgType.Intro), alice);
  assert.equal(idHex(toCarol!.epoch), epoch, "carol hears of alice again, same epoch");
  net.advance(DEFAULT_CLUSTER.lease + 1_000);
  assert.equal(net.take(c, carol, MsgType.Left).length, 0, "no LEFT when A's lease ends");
  assert.equal(net.take(b, bob, MsgType.Left).length, 0);
  assert.equal(b.registry.cluster!.stats.takeovers, 1);
});

Deno.test("cluster: a server cut from the engine keeps its own rooms; back, rosters converge", () => {
  const net = new Net(2);
  const [a, b] = net.nodes as [Node, Node];
  const alice = peer(), bob = peer(), dave = peer();
  net.register(a, alice);
  net.register(b, bob);
  b.connected = false;
  b.registry.handleEngine(net.now, false);
  net.advance(DEFAULT_CLUSTER.lease + 1_000);
  assert.equal(net.take(b, bob, MsgType.Left).length, 1, "alice expired at B");
  // Meanwhile dave registers at A (B misses it) and a local room at B still works.
  net.register(a, dave);
  const erin = peer();
  net.register(b, erin);
  assert.ok(introOf(net.take(b, erin, MsgType.Intro), bob), "B's own room works alone");
  b.connected = true;
  b.registry.handleEngine(net.now, true);
  net.pump();
  net.advance(3_000);
  const intros = net.take(b, bob, MsgType.Intro);
  assert.ok(introOf(intros, alice) && introOf(intros, dave), "B's bob learns alice and dave");
  const atA = net.take(a, dave, MsgType.Intro);
  assert.ok(introOf(atA, bob) && introOf(atA, erin), "A's dave learns bob and erin");
  assert.equal(a.registry.cluster!.stats.remoteMembers, 2);
  assert.equal(b.registry.cluster!.stats.remoteMembers, 2);
});

Deno.test("cluster: with a shared secret, unauthenticated and forged messages change nothing", () => {
  const net = new Net(2, "s3cret");
  const [a, b] = net.nodes as [Node, Node];
  const bob = peer();
  net.register(b, bob);
  net.take(b, bob, MsgType.Intro);
  const forged: ClusterEnvelope = {
    server: new Uint8Array(8).fill(9),
    seq: 1,
    msg: {
      type: ClusterType.Members,
      snapshot: 0,
      last: false,
      records: [{
        id: new Uint8Array(8).fill(0x77),
        room: signedHello("room", { id: bob.id, nameTag: bob.tag }).room,
        nameTag: new Uint8Array(8).fill(1),
        owner: new Uint8Array(16),
        inc: new Uint8Array(8),
        flags: 0,
        moves: 0,
        addr: { hostname: "203.0.113.9", port: 9 },
        privateEndpoints: [],
      }],
    },
  };
  b.registry.handleCluster(net.now, encodeCluster(forged, null));
  b.registry.handleCluster(net.now, encodeCluster(forged, clusterKey(new Uint8Array(8))));
  net.pump();
  assert.equal(net.take(b, bob, MsgType.Intro).length, 0);
  assert.equal(b.registry.cluster!.stats.drops["cluster-mac"], 2);
  // The real key works (the test would not show anything otherwise).
  b.registry.handleCluster(net.now, encodeCluster(forged, net.key));
  net.pump();
  assert.equal(net.take(b, bob, MsgType.Intro).length, 1);
  void a;
});

Deno.test("cluster: per-source limits count the other servers' members too", () => {
  const net = new Net(2, undefined, { maxPerSource: 1 });
  const [a, b] = net.nodes as [Node, Node];
  const alice = peer(), bob = peer();
  bob.addr = { hostname: alice.addr.hostname, port: alice.addr.port + 1 };
  net.register(a, alice);
  // Into another room: B holds alice only compact (no member of B in her room), still counted.
  assert.equal(b.registry.cluster!.stats.remoteRecords, 0);
  const cookie = b.registry.cookieFor(bob.id, bob.addr, net.now);
  net.send(b, bob, signedHello("elsewhere", { id: bob.id, cookie, nameTag: bob.tag }));
  const refused = net.take(b, bob, MsgType.Refused);
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.code, RefuseCode.Limit);
  // Once alice left (at A), bob may register at B.
  net.send(a, alice, { type: MsgType.Bye, id: alice.id, token: alice.token });
  net.register(b, bob, undefined, "elsewhere");
});

Deno.test("cluster: a server holds the others' members in full only in rooms with one of its own", () => {
  const net = new Net(3);
  const [a, b, c] = net.nodes as [Node, Node, Node];
  const alice = peer(), carol = peer(), dave = peer();
  net.register(a, alice, undefined, "far");
  net.register(c, carol, undefined, "far");
  const stats = () => b.registry.cluster!.stats;
  assert.equal(stats().remoteMembers, 2, "B knows both");
  assert.equal(stats().remoteRecords, 0, "but holds neither in full");
  // dave registers at B in the room: the whole roster at once, and both hear of him.
  net.register(b, dave, undefined, "far");
  const intros = net.take(b, dave, MsgType.Intro);
  assert.ok(introOf(intros, alice) && introOf(intros, carol), "dave is introduced to both");
  assert.equal(stats().remoteRecords, 2);
  assert.ok(introOf(net.take(a, alice, MsgType.Intro), dave), "alice hears of dave");
  net.send(b, dave, {
    type: MsgType.Ping,
    id: dave.id,
    token: dave.token,
    cookie: new Uint8Array(8),
    digest: 0,
  });
  assert.equal(
    net.take(b, dave, MsgType.Pong).at(-1)!.digest,
    rosterDigest([alice.id, carol.id]),
  );
  // A HELLO into the room that is refused (alice's name) leaves nothing held in full.
  const eve = peer();
  eve.tag = alice.tag;
  const cookie = b.registry.cookieFor(eve.id, eve.addr, net.now);
  net.send(b, eve, signedHello("far", { id: eve.id, cookie, nameTag: eve.tag }));
  assert.equal(net.take(b, eve, MsgType.Refused)[0]?.code, RefuseCode.NameTaken);
  assert.equal(stats().remoteRecords, 2, "dave's room still held in full");
  // dave leaves: B keeps them compact again; a departure at A still reaches B's count.
  net.send(b, dave, { type: MsgType.Bye, id: dave.id, token: dave.token });
  assert.equal(stats().remoteRecords, 0);
  assert.equal(stats().remoteMembers, 2);
  net.send(b, eve, signedHello("far", { id: eve.id, cookie, nameTag: eve.tag }));
  assert.equal(net.take(b, eve, MsgType.Refused)[0]?.code, RefuseCode.NameTaken);
  assert.equal(stats().remoteRecords, 0, "a refused HELLO leaves them compact");
  net.send(a, alice, { type: MsgType.Bye, id: alice.id, token: alice.token });
  assert.equal(stats().remoteMembers, 1);
  // Digests still agree: no snapshot asked for over a few heartbeats.
  const syncs = stats().syncs;
  net.advance(5_000);
  assert.equal(stats().syncs, syncs);
});

Deno.test("cluster: a failover to a server with nobody of its room keeps its epochs, gets the roster", () => {
  const net = new Net(3);
  const [a, b, c] = net.nodes as [Node, Node, Node];
  const alice = peer(), bob = peer(), carol = peer();
  net.register(a, alice, undefined, "far");
  net.register(b, bob);
  net.register(c, carol, undefined, "far");
  const epoch = idHex(introOf(net.take(c, carol, MsgType.Intro), alice)!.epoch);
  assert.equal(b.registry.cluster!.stats.remoteRecords, 0, "B has nobody in alice's room");
  a.alive = false;
  net.advance(3_000);
  alice.addr = { ...alice.addr };
  net.register(b, alice, undefined, "far");
  const toAlice = introOf(net.take(b, alice, MsgType.Intro), carol);
  assert.ok(toAlice, "alice hears of carol at once (no round trip to the engine)");
  assert.equal(idHex(toAlice.epoch), epoch, "the pair's epoch is unchanged");
  assert.equal(idHex(introOf(net.take(c, carol, MsgType.Intro), alice)!.epoch), epoch);
  net.advance(DEFAULT_CLUSTER.lease + 1_000);
  assert.equal(net.take(c, carol, MsgType.Left).length, 0, "no LEFT when A's lease ends");
  assert.equal(b.registry.cluster!.stats.takeovers, 1);
});

Deno.test("cluster: a peer that moves to another server while its old one runs is dropped there quietly", () => {
  const net = new Net(2);
  const [a, b] = net.nodes as [Node, Node];
  const alice = peer(), dave = peer();
  net.register(a, alice);
  net.register(a, dave);
  const epoch = idHex(introOf(net.take(a, dave, MsgType.Intro), alice)!.epoch);
  // alice lost her way to A (not A itself) and registers with B from a new address.
  alice.addr = { hostname: "198.51.100.200", port: 41000 };
  net.register(b, alice);
  assert.equal(a.registry.peerCount, 1, "A holds only dave now");
  assert.equal(net.take(a, dave, MsgType.Left).length, 0, "dave sees no LEFT");
  const again = introOf(net.take(a, dave, MsgType.Intro), alice)!;
  assert.deepEqual(again.publicEndpoint, alice.addr, "dave learns alice's new address");
  assert.equal(idHex(again.epoch), epoch, "same epoch: no new handshake");
  // Her goodbye at B reaches dave at A.
  net.send(b, alice, { type: MsgType.Bye, id: alice.id, token: alice.token });
  assert.equal(net.take(a, dave, MsgType.Left)[0]?.reason, LeftReason.Bye);
});

Deno.test("cluster: a member that becomes a supernode is introduced as one at the other server", () => {
  const net = new Net(2, undefined, { reachVia: 2 });
  const [a, b] = net.nodes as [Node, Node];
  const alice = peer(), bob = peer();
  net.register(b, bob);
  const cookie = a.registry.cookieFor(alice.id, alice.addr, net.now);
  net.send(a, alice, signedHello("room", { id: alice.id, cookie, nameTag: alice.tag, flags: 2 }));
  alice.token = net.take(a, alice, MsgType.Welcome)[0]!.token;
  const reach = net.take(a, alice, MsgType.Reach)[0]!;
  assert.equal(introOf(net.take(b, bob, MsgType.Intro), alice)!.flags & 2, 0, "not yet");
  net.send(a, alice, {
    type: MsgType.Reached,
    id: alice.id,
    token: alice.token,
    nonce: reach.nonce,
  });
  const intro = introOf(net.take(b, bob, MsgType.Intro), alice);
  assert.ok(intro, "bob hears of alice again");
  assert.equal(intro.flags & FLAG_SUPERNODE, FLAG_SUPERNODE);
});

Deno.test("cluster wire: every message round-trips; truncated, mutated and random input never throws", () => {
  const key = clusterKey(new TextEncoder().encode("k"));
  const record = {
    id: new Uint8Array(8).fill(1),
    room: new Uint8Array(32).fill(2),
    nameTag: new Uint8Array(8).fill(3),
    owner: new Uint8Array(16).fill(4),
    inc: new Uint8Array(8).fill(5),
    flags: 3,
    moves: 7,
    addr: { hostname: "2001:db8::1", port: 9 },
    privateEndpoints: [{ hostname: "10.0.0.1", port: 10 }],
  };
  const server = new Uint8Array(8).fill(6);
  const msgs: ClusterEnvelope["msg"][] = [
    { type: ClusterType.Heartbeat, lease: 10_000, digest: 0xdeadbeef, count: 3, endpoints: [] },
    { type: ClusterType.Members, snapshot: 4, last: true, records: [record, record] },
    { type: ClusterType.Gone, gone: [{ id: record.id, reason: 2 }] },
    { type: ClusterType.Sync, target: server },
    {
      type: ClusterType.Relay,
      target: server,
      from: record.id,
      to: record.id,
      payload: record.owner,
    },
    { type: ClusterType.Repunch, target: server, from: record.id, to: record.id },
  ];
  const random = seededRandom(5);
  for (const [i, msg] of msgs.entries()) {
    for (const k of [null, key]) {
      const env = { server, seq: i + 1, msg };
      const bytes = encodeCluster(env, k);
      const d = decodeCluster(bytes, k);
      assert.ok(d.ok);
      assert.deepEqual(d.value, env);
      // (Without a MAC, a RELAY cut inside its payload is a shorter payload.)
      const whole = k || msg.type !== ClusterType.Relay ? bytes.length : bytes.length - 16;
      for (let cut = 0; cut < whole; cut++) {
        assert.equal(decodeCluster(bytes.subarray(0, cut), k).ok, false, `${msg.type} cut ${cut}`);
      }
      for (let j = 0; j < 200; j++) {
        const m = bytes.slice();
        const at = random(1)[0]! % m.length;
        m[at] = m[at]! ^ (1 + (random(1)[0]! % 255));
        const r = decodeCluster(m, k);
        if (k) assert.equal(r.ok, false, "a MAC catches every change");
      }
    }
  }
  for (let j = 0; j < 500; j++) decodeCluster(random(random(1)[0]!), null);
});

Deno.test("cluster: a burst of registrations goes out as one MEMBERS message, a RELAY at once", () => {
  const net = new Net(2);
  const [a, b] = net.nodes as [Node, Node];
  const bob = peer();
  net.register(b, bob);
  const peers = [peer(), peer(), peer()];
  for (const p of peers) {
    const cookie = a.registry.cookieFor(p.id, p.addr, net.now);
    const hello = signedHello("room", { id: p.id, cookie, nameTag: p.tag });
    a.registry.handleDatagram(net.now, p.addr, encodeServerMsg(hello));
  }
  assert.equal(a.registry.cluster!.pending, "batch", "member updates may wait");
  const sent = [];
  for (let p = a.registry.pollPublish(); p; p = a.registry.pollPublish()) sent.push(p);
  assert.equal(sent.length, 1, "one message");
  const d = decodeCluster(sent[0]!.data, null);
  assert.ok(d.ok && d.value.msg.type === ClusterType.Members);
  assert.equal(d.value.msg.records.length, 3);
  for (const p of sent) b.registry.handleCluster(net.now, p.data);
  net.pump();
  assert.equal(b.registry.cluster!.stats.remoteMembers, 3, "B took all three");
  // A RELAY does not wait.
  const [alice] = peers as [Peer];
  alice.token = net.take(a, alice, MsgType.Welcome).at(-1)!.token;
  net.take(a, alice, MsgType.Intro);
  const frame = encodeHandshake({
    from: alice.id,
    to: bob.id,
    stage: 1,
    attempt: 1,
    message: new Uint8Array(48),
  });
  a.registry.handleDatagram(
    net.now,
    alice.addr,
    encodeServerMsg({
      type: MsgType.Relay,
      from: alice.id,
      token: alice.token,
      to: bob.id,
      payload: frame,
    }),
  );
  assert.equal(a.registry.cluster!.pending, "urgent");
});
