/**
 * Birthday probing (lib/peer/path/birthday.ts): the arithmetic, the search machine on its own (agreement
 * before any probe, pacing, bounds, one search per client, sockets released), and whole rooms
 * in the simulator: an easy NAT and a random-port symmetric NAT end up direct; symmetric ↔
 * symmetric stays relayed without a single search probe.
 */
import { systemRandom } from "../../lib/io/random.ts";
import assert from "node:assert/strict";
import {
  BirthdayPool,
  BirthdaySearch,
  type BirthdayView,
  DEFAULT_BIRTHDAY,
  missProbability,
  type NatInfo,
  predictPorts,
} from "../../lib/peer/path/birthday.ts";
import { MsgType, peekType } from "../../lib/wire/header.ts";
import {
  BirthdayStage,
  decodeHandshake,
  encodeHandshake,
  NatMapping,
} from "../../lib/wire/peer_frame.ts";
import { noiseFactory } from "../../lib/peer/handshake/handshake.ts";
import { pairPrologue } from "../../lib/peer/handshake/secure_link.ts";
import { seededRandom } from "../support/prng.ts";
import { addPeer, natPair, SimNet, type SimPeer, simRoom } from "../support/sim.ts";
import { SimNat } from "../support/sim_nat.ts";
import { OneAddressServer, SERVER_PORT2 } from "../support/sim_one_address.ts";

Deno.test("birthday: miss probability matches the birthday bound", () => {
  const range = 64512;
  // 256 mappings: 1024 probes hit 98.3 % of the time, 2048 probes 99.97 %.
  assert.ok(Math.abs(1 - missProbability(256, 1024, range) - 0.983) < 0.002);
  assert.ok(1 - missProbability(256, 2048, range) > 0.9996);
  assert.equal(missProbability(0, 100, range), 1);
  assert.equal(missProbability(10, range, range), 0);
  // Without replacement it is never worse than with it.
  assert.ok(missProbability(256, 1024, range) <= (1 - 256 / range) ** 1024);
});

Deno.test("birthday: a sequential NAT's next ports are predicted, others are not", () => {
  assert.deepEqual(predictPorts([40000, 40001, 40002], 3), [40003, 40004, 40005]);
  assert.deepEqual(predictPorts([5000, 5004], 2), [5008, 5012]);
  assert.deepEqual(predictPorts([40000, 51234], 3), []);
  assert.deepEqual(predictPorts([40000, 40001, 40005], 3), []);
  assert.deepEqual(predictPorts([40000], 3), []);
  assert.deepEqual(predictPorts([65534, 65535], 3), []);
});

const EASY: NatInfo = { mapping: NatMapping.EndpointIndependent, ports: [41000, 41000] };
const HARD: NatInfo = { mapping: NatMapping.AddressDependent, ports: [52001, 8113] };
const PEER_PUBLIC = { hostname: "203.0.113.9", port: 41000 };

function view(self: NatInfo, peer: NatInfo | null, direct = false): BirthdayView {
  return { self, peer, peerPublic: PEER_PUBLIC, direct, via: 0, pathStart: 0 };
}

function drain<T>(poll: () => T | undefined): T[] {
  const out: T[] = [];
  for (let x = poll(); x !== undefined; x = poll()) out.push(x);
  return out;
}

Deno.test("birthday: nothing is probed before the peer agreed; then paced and bounded", () => {
  const random = seededRandom(3);
  const hard = new BirthdaySearch(new BirthdayPool(), random);
  const easy = new BirthdaySearch(new BirthdayPool(), random);
  const hv = view(HARD, EASY), ev = view(EASY, HARD);
  assert.equal(BirthdaySearch.role(hv), "hard");
  assert.equal(BirthdaySearch.role(ev), "easy");
  // Too early: ordinary punching gets its chance first.
  hard.tick(500, hv);
  assert.equal(drain(() => hard.pollFrame()).length, 0);
  const at = hard.nextTimeout(hv)!;
  assert.equal(at, DEFAULT_BIRTHDAY.startAfter);
  hard.tick(at, hv);
  const [propose] = drain(() => hard.pollFrame());
  assert.equal(propose?.stage, BirthdayStage.Propose);
  assert.equal(drain(() => hard.pollProbe()).length, 0, "no socket opened before Accept");
  // A Go without an Accept makes the easy side do nothing.
  easy.onFrame(at, { stage: BirthdayStage.Go, round: propose!.round, sockets: 256 }, ev);
  easy.tick(at + 5000, ev);
  assert.equal(drain(() => easy.pollProbe()).length, 0, "no scan without a proposal");
  easy.onFrame(at, propose!, ev);
  const [accept] = drain(() => easy.pollFrame());
  assert.equal(accept?.stage, BirthdayStage.Accept);
  assert.equal(drain(() => easy.pollProbe()).length, 0, "no scan before Go");
  hard.onFrame(at + 20, accept!, hv);
  // The hard side opens its sockets at openRate, then says Go.
  let t = at + 20;
  const opened = new Set<number>();
  while (hard.state === "opening") {
    t = hard.nextTimeout(hv)!;
    hard.tick(t, hv);
    for (const p of drain(() => hard.pollProbe())) {
      assert.deepEqual(p.to, PEER_PUBLIC);
      opened.add(p.via);
    }
  }
  assert.equal(opened.size, DEFAULT_BIRTHDAY.sockets);
  assert.ok(t - (at + 20) <= (DEFAULT_BIRTHDAY.sockets * 1000) / DEFAULT_BIRTHDAY.openRate);
  const [go] = drain(() => hard.pollFrame());
  assert.equal(go?.stage, BirthdayStage.Go);
  easy.onFrame(t + 20, go!, ev);
  // The scan: at most `rate` a second, at most `probes`, distinct ports, never the known one.
  const ports = new Set<number>();
  let last = t + 20, sent = 0;
  const start = last;
  while (easy.state === "scanning") {
    for (const p of drain(() => easy.pollProbe())) {
      assert.equal(p.via, 0);
      assert.equal(p.to.hostname, PEER_PUBLIC.hostname);
      assert.notEqual(p.to.port, PEER_PUBLIC.port);
      assert.ok(p.to.port >= 1024 && p.to.port <= 65535);
      ports.add(p.to.port);
      sent++;
      const allowed = Math.floor(((last - start) * DEFAULT_BIRTHDAY.rate) / 1000) + 1;
      assert.ok(sent <= allowed, `${sent} probes after ${last - start} ms`);
    }
    last = easy.nextTimeout(ev)!;
    easy.tick(last, ev);
  }
  assert.equal(sent, DEFAULT_BIRTHDAY.probes);
  assert.equal(ports.size, sent, "every probe goes to another port");
  // Failed: not again before retryAfter, even when proposed.
  easy.onFrame(last + 1, { stage: BirthdayStage.Propose, round: 2, sockets: 256 }, ev);
  assert.equal(drain(() => easy.pollFrame()).length, 0);
});

Deno.test("birthday: one search per client; sockets come back on success, failure and close", () => {
  const pool = new BirthdayPool(512);
  const random = seededRandom(4);
  const a = new BirthdaySearch(pool, random), b = new BirthdaySearch(pool, random);
  const hv = view(HARD, EASY);
  // b's peer is another one, at another address (searches are budgeted per address too).
  const bv = { ...hv, peerPublic: { hostname: "203.0.113.10", port: 41000 } };
  a.tick(5000, hv);
  b.tick(5000, bv);
  assert.equal(drain(() => a.pollFrame()).length, 1);
  assert.equal(drain(() => b.pollFrame()).length, 0, "the second pair waits for the sockets");
  a.onFrame(5010, { stage: BirthdayStage.Accept, round: 1, sockets: 256 }, hv);
  for (let t = 5010; a.state === "opening"; t += 10) a.tick(t, hv);
  a.onDirect(6000, 17);
  assert.equal(a.kept, 17);
  assert.equal(pool.kept, 1);
  assert.equal(drain(() => pool.pollRelease()).length, 255, "spare sockets close at once");
  assert.ok(pool.inUse(17), "the kept socket is in use");
  assert.ok(!pool.inUse(18) && !pool.inUse(0) && !pool.inUse(513), "released ones are not");
  b.tick(7000, bv);
  assert.equal(drain(() => b.pollFrame()).length, 1, "now the second pair may search");
  b.close();
  a.close();
  assert.equal(pool.kept, 0);
  assert.equal(drain(() => pool.pollRelease()).length, 257);
});

// ---------------------------------------------------------------------------------------------
// Whole rooms in the simulator

function direct(p: SimPeer, name: string): boolean {
  return p.client.peers().some((i) => i.name === name && i.path === "direct");
}

Deno.test("birthday sim: port-restricted ↔ random symmetric ends up direct; data moves over", () => {
  const { net, a, b } = natPair(11, "port-restricted", "symmetric-random");
  net.runUntilTrue(() => direct(a, "bob") && direct(b, "alice"), 30_000);
  const hard = b.client.birthdayStats(), easy = a.client.birthdayStats();
  assert.equal(hard.hits, 1);
  assert.equal(easy.hits, 1);
  assert.ok(easy.probes > 0 && easy.probes <= DEFAULT_BIRTHDAY.probes, `${easy.probes} probes`);
  // The hard side keeps one socket for the pair; the spare ones are closed.
  net.run(100);
  assert.equal(net.auxSockets(b.client), 1);
  assert.equal(b.lastPath("alice")?.addr?.hostname, "203.0.113.1");
  assert.equal(a.lastPath("bob")?.addr?.hostname, "203.0.113.2");
  // Chat flows over the found path, exactly once, in order, both ways.
  for (let i = 0; i < 20; i++) {
    a.client.send(net.now, `a${i}`);
    b.client.send(net.now, `b${i}`);
    net.run(5);
  }
  net.runUntilTrue(() => b.messages().length === 20 && a.messages().length === 20, 10_000);
  assert.deepEqual(b.messages(), Array.from({ length: 20 }, (_, i) => `alice: a${i}`));
  assert.deepEqual(a.messages(), Array.from({ length: 20 }, (_, i) => `bob: b${i}`));
  // ...and it stays direct through keepalives (the kept socket's mapping is refreshed).
  net.run(120_000);
  assert.ok(direct(a, "bob") && direct(b, "alice"));
});

Deno.test("birthday sim: a sequential symmetric NAT is found by prediction in a few probes", () => {
  const { net, a, b } = natPair(12, "port-restricted", "symmetric");
  net.runUntilTrue(() => direct(a, "bob") && direct(b, "alice"), 30_000);
  const easy = a.client.birthdayStats();
  assert.equal(easy.hits, 1);
  // Random probing needs about 250 probes on average; the predicted ports come first.
  assert.ok(easy.probes <= 16, `${easy.probes} probes`);
});

/**
 * alice behind a port-restricted NAT and bob behind a symmetric one, with only a plain
 * `p2p serve` (one address; its second port unless `port2` is false) and no `--stun` servers.
 */
function oneAddressPair(seed: number, port2: boolean) {
  const net = new SimNet(seed, { latency: 25 });
  const server = new OneAddressServer(net, port2);
  const peer = (name: string, n: number, type: "port-restricted" | "symmetric-random") =>
    addPeer(
      net,
      name,
      { hostname: `10.${n}.0.2`, port: 5000 },
      new SimNat(`203.0.113.${n}`, type, undefined, seed * 2 + n),
    );
  return {
    net,
    server,
    a: peer("alice", 1, "port-restricted"),
    b: peer("bob", 2, "symmetric-random"),
  };
}

Deno.test("birthday sim: with a one-address server alone, port-restricted ↔ symmetric ends up direct", () => {
  for (const seed of [31, 32, 33]) {
    const { net, a, b } = oneAddressPair(seed, true);
    const took = net.runUntilTrue(() => direct(a, "bob") && direct(b, "alice"), 30_000);
    assert.equal(b.client.birthdayStats().hits, 1, `seed ${seed}`);
    assert.ok(took < 15_000, `seed ${seed}: ${took} ms`);
    // Both asked the server's second port, once its reachability check had had its chance.
    const asked = net.log.filter((d) =>
      d.from.hostname === SERVER_PORT2.hostname &&
      d.from.port === SERVER_PORT2.port
    );
    assert.ok(asked.length >= 2, `seed ${seed}: answers from the second port`);
    // Only the symmetric side was told its NAT maps per destination.
    const notice = (p: SimPeer) =>
      p.drain().some((e) => e.type === "notice" && e.kind === "symmetric-nat");
    assert.deepEqual([notice(a), notice(b)], [false, true], `seed ${seed}`);
  }
});

Deno.test("birthday sim: a one-address server without its second port: no verdict, stays relayed", () => {
  const { net, a, b } = oneAddressPair(34, false);
  net.run(20_000);
  assert.ok(!direct(a, "bob") && !direct(b, "alice"));
  assert.equal(a.client.birthdayStats().searches + b.client.birthdayStats().searches, 0);
});

Deno.test("birthday sim: without any STUN verdict, a third peer's views make port-restricted ↔ symmetric direct", () => {
  // A server without its second port and no --stun: nobody knows its mapping from STUN. carol
  // (full cone) reaches both directly; her PROBE_ACKs tell alice she is seen where the server
  // sees her (endpoint-independent) and bob that he is not (a mapping per destination).
  const { net, a, b } = oneAddressPair(35, false);
  const c = addPeer(
    net,
    "carol",
    { hostname: "10.3.0.2", port: 5000 },
    new SimNat("203.0.113.3", "full-cone", undefined, 35 * 2 + 3),
  );
  net.runUntilTrue(() => direct(a, "bob") && direct(b, "alice"), 40_000);
  assert.ok(direct(c, "alice") && direct(c, "bob"));
  assert.deepEqual(a.client.mapping, { mapping: NatMapping.EndpointIndependent, basis: "proven" });
  assert.deepEqual(b.client.mapping, { mapping: NatMapping.AddressDependent, basis: "proven" });
  assert.equal(b.client.birthdayStats().hits, 1);
});

Deno.test("birthday sim: a mapping per destination host that two server ports cannot see is caught by a peer's view", () => {
  // alice's NAT maps per destination host, not per port: the server's two ports agree ("not
  // per port", told as endpoint-independent), until carol sees her at another port.
  const net = new SimNet(36, { latency: 25 });
  new OneAddressServer(net, true);
  const a = addPeer(
    net,
    "alice",
    { hostname: "10.1.0.2", port: 5000 },
    new SimNat(
      "203.0.113.1",
      {
        mapping: "address-dependent",
        filtering: "address-and-port-dependent",
        ports: "random",
      },
      undefined,
      1,
    ),
  );
  net.run(3_000);
  assert.deepEqual(a.client.mapping, {
    mapping: NatMapping.EndpointIndependent,
    basis: "not-port-dependent",
  });
  const c = addPeer(
    net,
    "carol",
    { hostname: "10.3.0.2", port: 5000 },
    new SimNat("203.0.113.3", "full-cone", undefined, 3),
  );
  net.runUntilTrue(() => direct(a, "carol") && direct(c, "alice"), 20_000);
  // Her next probe of the direct path (a keepalive) brings carol's view.
  const took = net.runUntilTrue(() => a.client.mapping.basis === "proven", 30_000);
  console.log(`alice learnt her mapping from carol's view ${took} ms after going direct`);
  assert.deepEqual(a.client.mapping, { mapping: NatMapping.AddressDependent, basis: "proven" });
  assert.ok(
    a.drain().some((e) => e.type === "notice" && e.kind === "symmetric-nat"),
    "alice is told her NAT maps per destination",
  );
});

Deno.test("birthday sim: symmetric ↔ symmetric stays relayed and nobody scans", () => {
  const { net, a, b } = natPair(13, "symmetric-random", "symmetric-random");
  net.run(20_000);
  assert.ok(!direct(a, "bob") && !direct(b, "alice"));
  assert.ok(a.client.peers().some((i) => i.name === "bob" && i.path === "relay"));
  assert.equal(a.client.birthdayStats().searches + b.client.birthdayStats().searches, 0);
  assert.equal(net.auxSockets(a.client) + net.auxSockets(b.client), 0);
});

Deno.test("birthday sim: without NAT verdicts (no STUN) nothing is searched", () => {
  const { net, a, b } = natPair(14, "port-restricted", "symmetric-random", { stun: false });
  net.run(20_000);
  assert.ok(!direct(a, "bob"));
  assert.equal(a.client.birthdayStats().searches + b.client.birthdayStats().searches, 0);
  // No datagram from alice went to any port of bob's NAT but the one the server saw.
  const seen = new Set(
    net.log.filter((d) => d.from.hostname === "203.0.113.1" && d.to.hostname === "203.0.113.2")
      .map((d) => d.to.port),
  );
  assert.ok(seen.size <= 1, `alice sent to ${seen.size} ports of bob's NAT`);
});

Deno.test("birthday sim: the relay carries chat during the search; probes stay bounded", () => {
  const { net, a, b } = natPair(15, "port-restricted", "symmetric-random");
  net.runUntilTrue(() => a.client.birthdayStats().searches > 0, 30_000);
  for (let i = 0; i < 10; i++) a.client.send(net.now, `during ${i}`);
  net.runUntilTrue(() => b.messages().length === 10, 5_000);
  assert.ok(!direct(b, "alice"), "delivered before the search ended, through the relay");
  net.runUntilTrue(() => direct(a, "bob") && direct(b, "alice"), 30_000);
  net.run(30_000);
  // Everything alice sent to bob's NAT: the search's probes plus the pair's ordinary traffic.
  const toBob = net.log.filter((d) =>
    d.from.hostname === "203.0.113.1" && d.to.hostname === "203.0.113.2"
  );
  const ports = new Set(toBob.map((d) => d.to.port));
  assert.ok(ports.size <= a.client.birthdayStats().probes + 2, `${ports.size} ports`);
  assert.ok(a.client.birthdayStats().probes <= DEFAULT_BIRTHDAY.probes);
});

Deno.test("birthday sim: a pair refused mid-search gives its auxiliary sockets back", () => {
  const { net, a, b } = natPair(16, "port-restricted", "symmetric-random");
  // Bob (the hard side) has opened his sockets; the easy side has not hit yet.
  net.runUntilTrue(() => net.auxSockets(b.client) === DEFAULT_BIRTHDAY.sockets, 30_000);
  assert.ok(!direct(b, "alice"));
  // An insider with the room secret runs a handshake as alice under another identity, directly
  // to bob: bob refuses alice for good (two identities).
  const own = noiseFactory({ staticKey: net.bytes(32), psk: simRoom().psk, random: systemRandom })(
    true,
    pairPrologue(simRoom().id, a.client.id, b.client.id),
  );
  const payload = (attempt: number, name = "") => {
    const t = new TextEncoder().encode(name);
    const out = new Uint8Array(4 + t.length);
    new DataView(out.buffer).setUint32(0, attempt);
    out.set(t, 4);
    return out;
  };
  const attempt = 0x7fff_fff0;
  const from = { hostname: "192.0.2.99", port: 4444 };
  const send = (stage: number, message: Uint8Array) =>
    b.client.handleDatagram(
      net.now,
      from,
      encodeHandshake({ from: a.client.id, to: b.client.id, stage, attempt, cookie: 5, message }),
    );
  send(1, own.writeMessage(payload(attempt)));
  let msg2: Uint8Array | undefined;
  for (let t = b.client.pollTransmit(); t; t = b.client.pollTransmit()) {
    const p = peekType(t.data);
    const h = p.ok && p.value === MsgType.Handshake ? decodeHandshake(t.data) : null;
    if (h?.ok && h.value.stage === 2 && h.value.attempt === attempt) msg2 = h.value.message;
  }
  assert.ok(msg2 && own.readMessage(msg2), "bob answered the insider's message 1");
  send(3, own.writeMessage(payload(attempt, "alice")));
  assert.ok(
    b.drain().some((e) => e.type === "warning" && e.kind === "auth-failed"),
    "alice is refused",
  );
  net.run(30_000);
  assert.equal(net.auxSockets(b.client), 0, "no socket stays open for a refused pair");
});

Deno.test("birthday: a hard side that cannot propose (no public endpoint of the peer) asks for no wake-up in the past", () => {
  const search = new BirthdaySearch(new BirthdayPool(), () => new Uint8Array(512));
  const v = { ...view(HARD, EASY), peerPublic: null };
  for (const now of [5_000, 5_001, 60_000]) {
    search.tick(now, v);
    assert.equal(drain(() => search.pollFrame()).length, 0);
    const at = search.nextTimeout(v);
    // A deadline at or before now makes the driver call again at once, for ever (a busy loop).
    assert.ok(at === undefined || at > now, `wake-up at ${at}, now ${now}`);
  }
});

Deno.test("birthday sim: after a failed search no auxiliary socket is opened again", () => {
  const { net, a, b } = natPair(17, "port-restricted", "symmetric-random");
  // Nothing gets from bob's NAT to alice's directly: alice's probes reach bob's sockets, but
  // neither side ever hears back, so the search fails.
  net.block = (from, to) => from.hostname === "203.0.113.2" && to.hostname === "203.0.113.1";
  net.runUntilTrue(() => net.auxSockets(b.client) === DEFAULT_BIRTHDAY.sockets, 30_000);
  net.runUntilTrue(() => net.auxSockets(b.client) === 0, 30_000);
  assert.ok(a.client.birthdayStats().probes > 0, "alice scanned");
  assert.ok(!direct(b, "alice"));
  // The next search waits for retryAfter; until then nothing holds a socket.
  let most = 0;
  for (let t = 0; t < 60_000; t += 100) {
    net.run(100);
    most = Math.max(most, net.auxSockets(b.client));
  }
  assert.equal(most, 0, "a released socket was opened again");
});
