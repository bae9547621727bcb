/**
 * The server's limits: token buckets, per-source counts, and what a registry under abuse does
 * (refuses the 65th registration from one address, drops relay traffic over budget and tells the
 * sender), all in virtual time.
 */
import assert from "node:assert/strict";
import { networkKey, SourceCounts, sourceKey, TokenBucket } from "../../lib/core/limits.ts";
import { DEFAULT_REGISTRY, Registry } from "../../lib/server/registry.ts";

const HELLO_RATE = DEFAULT_REGISTRY.helloRate;
import type { Endpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  RefuseCode,
  type ServerMsg,
} from "../../lib/wire/server_msg.ts";
import { signedHello, testPeerId } from "../support/hello.ts";
import { seededRandom } from "../support/prng.ts";

const SECRET = new Uint8Array(32).fill(3);

function drain(r: Registry): { to: Endpoint; m: ServerMsg }[] {
  const out: { to: Endpoint; m: ServerMsg }[] = [];
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
    const d = decodeServerMsg(t.data);
    if (d.ok) out.push({ to: t.to, m: d.value });
  }
  return out;
}

let nextId = 1;

/** Registers a fresh peer from `addr` in `room`; returns its id and token, or the refusal. */
function register(r: Registry, now: number, addr: Endpoint, room: number) {
  const id = testPeerId(`limits ${nextId++}`);
  r.handleDatagram(
    now,
    addr,
    encodeServerMsg(
      signedHello(`room ${room}`, { id, cookie: r.cookieFor(id, addr, now), nameTag: id }),
    ),
  );
  const out = drain(r);
  const welcome = out.find((o) => o.m.type === MsgType.Welcome)?.m;
  const refused = out.find((o) => o.m.type === MsgType.Refused)?.m;
  return {
    id,
    addr,
    token: welcome?.type === MsgType.Welcome ? welcome.token : undefined,
    refused: refused?.type === MsgType.Refused ? refused : undefined,
  };
}

Deno.test("limits: a token bucket gives its burst, then its rate", () => {
  const b = new TokenBucket(1000, 5000, 0);
  assert.equal(b.take(0, 5000), true);
  assert.equal(b.take(0, 1), false);
  assert.equal(b.take(999, 1000), false, "999 ms refill 999 units");
  assert.equal(b.take(1000, 1000), true);
  assert.equal(b.take(100_000, 6000), false, "never more than the burst");
  assert.equal(b.take(100_000, 5000), true);
});

Deno.test("limits: source counts follow registrations and rooms", () => {
  const c = new SourceCounts();
  c.add("1.2.3.4", "a");
  c.add("1.2.3.4", "a");
  c.add("1.2.3.4", "b");
  assert.equal(c.peers("1.2.3.4"), 3);
  assert.equal(c.rooms("1.2.3.4"), 2);
  assert.equal(c.inRoom("1.2.3.4", "b"), true);
  c.remove("1.2.3.4", "b");
  assert.equal(c.inRoom("1.2.3.4", "b"), false);
  c.remove("1.2.3.4", "a");
  c.remove("1.2.3.4", "a");
  assert.equal(c.size, 0, "nothing kept for an address without registrations");
});

Deno.test("limits: one address cannot fill the server; others still get in", () => {
  const r = new Registry({ maxPerSource: 8, maxRoomsPerSource: 3 }, seededRandom(3), SECRET);
  const ip = (port: number) => ({ hostname: "192.0.2.66", port });
  for (let i = 0; i < 8; i++) assert.ok(register(r, 0, ip(1000 + i), i % 3).token);
  const ninth = register(r, 0, ip(2000), 0);
  assert.equal(ninth.refused?.code, RefuseCode.Limit);
  assert.match(ninth.refused!.message, /Too many peers from your address \(8\)/);
  assert.equal(r.peerCount, 8);
  // Rooms: a fourth room from the same address is refused even below the peer limit.
  const s = new Registry({ maxPerSource: 100, maxRoomsPerSource: 3 }, seededRandom(3), SECRET);
  for (let i = 0; i < 3; i++) assert.ok(register(s, 0, ip(3000 + i), i).token);
  assert.ok(register(s, 0, ip(3100), 2).token, "more peers in a room it already uses");
  const fourth = register(s, 0, ip(3200), 9);
  assert.match(fourth.refused!.message, /Too many rooms from your address \(3\)/);
  // Somebody else is not affected.
  assert.ok(register(r, 0, { hostname: "198.51.100.5", port: 5000 }, 0).token);
  // Expiry gives the address its share back.
  r.handleTimeout(DEFAULT_REGISTRY.expireAfter);
  drain(r);
  assert.ok(register(r, DEFAULT_REGISTRY.expireAfter, ip(4000), 0).token);
});

Deno.test("limits: relayed bytes are capped per peer and per pair, and the sender is told", () => {
  const r = new Registry(
    { relayRate: 10_000, relayBurst: 20_000, pairRate: 10_000 },
    seededRandom(3),
    SECRET,
  );
  const a = register(r, 0, { hostname: "192.0.2.1", port: 1 }, 1);
  const b = register(r, 0, { hostname: "192.0.2.2", port: 2 }, 1);
  drain(r);
  const payload = new Uint8Array(1000);
  const relay = encodeServerMsg({
    type: MsgType.Relay,
    from: a.id,
    token: a.token!,
    to: b.id,
    payload,
  });
  let relayed = 0, notices = 0;
  // 10 s of a peer pushing 1000 datagrams a second at a peer that never reads.
  for (let t = 0; t < 10_000; t++) {
    r.handleDatagram(t, a.addr, relay);
    for (const o of drain(r)) {
      if (o.m.type === MsgType.Relayed) relayed += o.m.payload.length;
      if (o.m.type === MsgType.Refused && o.m.code === RefuseCode.Limit) {
        notices++;
        assert.deepEqual(o.to, a.addr, "only the sender hears about it");
        assert.match(o.m.message, /Relay limit reached/);
      }
    }
  }
  assert.ok(relayed <= 20_000 + 10 * 10_000, `relayed ${relayed} bytes`);
  assert.ok(relayed >= 10 * 10_000, `the rate is honoured: ${relayed}`);
  assert.ok(notices >= 1 && notices <= 3, `${notices} notices in 10 s (at most one per 5 s)`);
  assert.ok((r.stats.drops["relay-limit"] ?? 0) > 8_000);
});

Deno.test("limits: one address gets a bounded number of HELLO signature checks a second", () => {
  const r = new Registry(
    { maxPerSource: 1_000, maxRoomsPerSource: 1_000 },
    seededRandom(3),
    SECRET,
  );
  const ip = (port: number) => ({ hostname: "192.0.2.77", port });
  let ok = 0;
  for (let i = 0; i < 4 * HELLO_RATE + 50; i++) {
    if (register(r, 0, ip(1000 + i), i % 10).token) ok++; // Rooms stay below their size limit.
  }
  assert.equal(ok, 4 * HELLO_RATE, "the burst, then nothing within the same moment");
  assert.equal(r.stats.drops["hello-rate"], 50);
  // A second later there is room again, and other addresses were never affected.
  assert.ok(register(r, 1_000, ip(5000), 1).token);
  assert.ok(register(r, 0, { hostname: "198.51.100.9", port: 1 }, 1).token);
});

Deno.test("limits: an IPv6 source is its /64; IPv4 and IPv4-mapped addresses are themselves", () => {
  assert.equal(sourceKey("192.0.2.7"), "192.0.2.7");
  assert.equal(sourceKey("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(sourceKey("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  assert.equal(sourceKey("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
  assert.equal(sourceKey("2001:0db8:0001:0002:0:0:0:9"), "2001:db8:1:2::/64");
  assert.notEqual(sourceKey("2001:db8:1:3::1"), sourceKey("2001:db8:1:2::1"));
});

Deno.test("limits: one IPv6 /64 cannot fill the server by hopping addresses; another /64 gets in", () => {
  const r = new Registry({ maxPerSource: 8, maxRoomsPerSource: 3 }, seededRandom(3), SECRET);
  // Every registration from another address of the same /64, as a host picking fresh ones.
  const in64 = (i: number) => ({
    hostname: `2001:db8:66:1:${(i + 1).toString(16)}::1`,
    port: 4000,
  });
  for (let i = 0; i < 8; i++) assert.ok(register(r, 0, in64(i), i % 3).token, `peer ${i}`);
  const ninth = register(r, 0, in64(100), 0);
  assert.equal(ninth.refused?.code, RefuseCode.Limit);
  assert.match(ninth.refused!.message, /Too many peers from your address \(8\)/);
  const rooms = new Registry({ maxPerSource: 100, maxRoomsPerSource: 3 }, seededRandom(3), SECRET);
  for (let i = 0; i < 3; i++) assert.ok(register(rooms, 0, in64(i), i).token);
  assert.match(register(rooms, 0, in64(50), 9).refused!.message, /Too many rooms/);
  assert.ok(register(r, 0, { hostname: "2001:db8:66:2::1", port: 4000 }, 0).token);
});

Deno.test("limits: HELLO signature checks are budgeted per IPv6 /64, not per address", () => {
  const r = new Registry(
    { helloRate: 1, maxPerSource: 1000, maxRoomsPerSource: 1000 },
    seededRandom(3),
    SECRET,
  );
  let ok = 0;
  // Burst 4x the rate: 4 checks, whatever address of the /64 each comes from.
  for (let i = 0; i < 10; i++) {
    if (register(r, 0, { hostname: `2001:db8:77:1::${(i + 1).toString(16)}`, port: 1 }, 0).token) {
      ok++;
    }
  }
  assert.equal(ok, 4);
  assert.equal(r.stats.drops["hello-rate"], 6);
});

Deno.test("limits: many senders cannot flood one member through the relay (receive rate)", () => {
  const rate = 20_000;
  const r = new Registry(
    { relayRate: 100_000, relayBurst: 100_000, pairRate: 100_000, receiveRate: rate },
    seededRandom(4),
    SECRET,
  );
  const victim = register(r, 0, { hostname: "192.0.2.99", port: 9 }, 7);
  const senders = Array.from(
    { length: 32 },
    (_, i) => register(r, 0, { hostname: `198.51.100.${i + 1}`, port: 1000 + i }, 7),
  );
  drain(r);
  const payload = new Uint8Array(1000);
  const relays = senders.map((s) =>
    encodeServerMsg({ type: MsgType.Relay, from: s.id, token: s.token!, to: victim.id, payload })
  );
  let received = 0, other = 0;
  // 5 s: each of 32 senders sends 10 KB/s to the victim (each within its own budgets):
  // 320 KB/s aimed at one member.
  for (let t = 0; t < 5_000; t += 100) {
    senders.forEach((s, i) => r.handleDatagram(t, s.addr, relays[i]!));
    for (const o of drain(r)) {
      if (o.m.type !== MsgType.Relayed) continue;
      if (o.to.hostname === victim.addr.hostname) received += o.m.payload.length;
      else other++;
    }
  }
  assert.equal(other, 0);
  // Burst (2 s of the rate) plus 5 s of it, give or take one datagram.
  assert.ok(received <= 2 * rate + 5 * rate + 1000, `received ${received} bytes`);
  assert.ok(received >= 5 * rate, `the receive rate is honoured: ${received}`);
  assert.ok((r.stats.drops["relay-receiver-limit"] ?? 0) > 1000);
  assert.equal(r.stats.drops["relay-limit"] ?? 0, 0, "no sender is over its own budget");
});

Deno.test("limits: addresses spread over one /24 or one IPv6 /56 cannot fill the server", () => {
  const r = new Registry({ maxPerNetwork: 300, maxPerSource: 64 }, seededRandom(5), SECRET);
  let t = 0, accepted = 0;
  // 158 IPv4 addresses of one /24, and 160 /64s inside one /56: as many registrations as
  // each address is allowed, each in a room of its own making.
  for (let i = 1; i <= 158; i++) {
    for (let k = 0; k < 4; k++) {
      if (register(r, t += 10, { hostname: `203.0.113.${i}`, port: 1000 + k }, 10_000 + i).token) {
        accepted++;
      }
    }
  }
  assert.equal(accepted, 300, "one /24 holds at most maxPerNetwork registrations");
  const v6 = (i: number) => `2001:db8:0:${(0x100 + i).toString(16)}::${i + 1}`;
  let v6accepted = 0;
  for (let i = 0; i < 160; i++) {
    for (let k = 0; k < 4; k++) {
      if (register(r, t += 10, { hostname: v6(i), port: 2000 + k }, 20_000 + i).token) {
        v6accepted++;
      }
    }
  }
  assert.equal(v6accepted, 300, "one /48 (here a /56 inside it) holds at most maxPerNetwork");
  // Someone else, elsewhere, still gets in and is introduced to a friend.
  const alice = register(r, t += 10, { hostname: "198.51.100.7", port: 1 }, 1);
  const bob = register(r, t += 10, { hostname: "192.0.2.50", port: 2 }, 1);
  assert.ok(alice.token && bob.token, "a legitimate pair registers");
  assert.equal(networkKey("2001:db8:0:1ff::1"), "2001:db8:0::/48");
  assert.equal(networkKey("203.0.113.9"), "203.0.113.0/24");
  assert.equal(networkKey("::ffff:203.0.113.9"), "203.0.113.0/24");
});
