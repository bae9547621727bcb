/**
 * Tests of `lib/nat/stun_probe.ts` in virtual time: simulated STUN servers (the real
 * `StunResponder` of `lib/nat/stun.ts`) behind a simulated NAT, with seeded loss; forged and fuzzed
 * responses.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Attr,
  bindingRequest,
  encodeAddress,
  encodeStun,
  StunClass,
  StunResponder,
} from "../../lib/nat/stun.ts";
import {
  DEFAULT_PROBE_TIMEOUT,
  StunProbe,
  type StunProbeEvent,
  SYMMETRIC_NOTICE,
} from "../../lib/nat/stun_probe.ts";
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";
import { prng, randomBytesFrom, seededRandom } from "../support/prng.ts";

const A: Endpoint = { hostname: "198.51.100.1", port: 3478 };
const B: Endpoint = { hostname: "203.0.113.7", port: 3478 };
const C: Endpoint = { hostname: "192.0.2.44", port: 19302 };
const PUBLIC_IP = "100.64.9.9";

/** A NAT: the public address our one socket has towards `dst`. */
type Nat = (dst: Endpoint) => Endpoint;
const eim: Nat = () => ({ hostname: PUBLIC_IP, port: 40000 });
const symmetric: Nat = (dst) => ({
  hostname: PUBLIC_IP,
  port: 40000 + (Number(dst.hostname.split(".")[3]) * 7 + dst.port) % 20000,
});

interface SimOptions {
  nat?: Nat;
  /** Servers that never answer. */
  silent?: Endpoint[];
  /** Drop a datagram (seeded loss): `dir` "up" for requests, "down" for answers. */
  drop?: (dir: "up" | "down", server: Endpoint) => boolean;
  latency?: number;
  /** Stop after this virtual time, ms. */
  until?: number;
}

interface SimResult {
  events: StunProbeEvent[];
  /** Requests sent, by server, with their send times. */
  sends: Map<string, number[]>;
  /** Virtual time when `done` first became true. */
  doneAt: number | null;
  /** Virtual time of the mapping event. */
  eventAt: number | null;
}

/** Runs `probe` against simulated servers until it is done and nothing is in flight. */
function simulate(probe: StunProbe, servers: Endpoint[], o: SimOptions = {}): SimResult {
  const nat = o.nat ?? eim;
  const latency = o.latency ?? 20;
  const responders = new Map<string, StunResponder>();
  for (const s of servers) {
    if (o.silent?.some((x) => formatEndpoint(x) === formatEndpoint(s))) continue;
    responders.set(formatEndpoint(s), new StunResponder({ sockets: [s] }));
  }
  const sends = new Map<string, number[]>();
  const queue: { at: number; from: Endpoint; data: Uint8Array }[] = [];
  const events: StunProbeEvent[] = [];
  let doneAt: number | null = null;
  let eventAt: number | null = null;
  let now = 1000;
  const until = o.until ?? 60_000;
  probe.start(now);
  for (let steps = 0; steps < 10_000; steps++) {
    for (let t = probe.pollTransmit(); t; t = probe.pollTransmit()) {
      const k = formatEndpoint(t.to);
      sends.set(k, [...(sends.get(k) ?? []), now]);
      if (o.drop?.("up", t.to)) continue;
      const r = responders.get(k);
      const reply = r?.handle(now + latency, 0, nat(t.to), t.data);
      if (!reply || o.drop?.("down", t.to)) continue;
      queue.push({ at: now + 2 * latency, from: t.to, data: reply.data });
    }
    for (let e = probe.pollEvent(); e; e = probe.pollEvent()) {
      events.push(e);
      eventAt ??= now;
    }
    if (probe.done && doneAt === null) doneAt = now;
    queue.sort((x, y) => x.at - y.at);
    const timer = probe.nextTimeout();
    const next = Math.min(queue[0]?.at ?? Infinity, timer ?? Infinity);
    if (next === Infinity || next > until) break;
    assert(next >= now, "time never goes back");
    now = next;
    if (queue[0] && queue[0].at === now) {
      const d = queue.shift()!;
      assert(probe.handleDatagram(now, d.from, d.data), "a real answer is claimed");
    } else {
      probe.handleTimeout(now);
    }
  }
  return { events, sends, doneAt, eventAt };
}

function maxSends(r: SimResult): number {
  return Math.max(0, ...[...r.sends.values()].map((v) => v.length));
}

/** A Binding success response with XOR-MAPPED-ADDRESS `mapped` for transaction `tid`. */
function response(tid: Uint8Array, mapped: Endpoint, cls = StunClass.Success): Uint8Array {
  return encodeStun({
    cls,
    transactionId: tid,
    attributes: [{ type: Attr.XorMappedAddress, value: encodeAddress(mapped, tid)! }],
    fingerprint: true,
  });
}

/** Starts a probe and returns the requests it sent, by server. */
function started(
  servers: Endpoint[],
  seed = 1,
): { probe: StunProbe; sent: Map<string, Uint8Array> } {
  const probe = new StunProbe({ servers, random: seededRandom(seed) });
  probe.start(0);
  const sent = new Map<string, Uint8Array>();
  for (let t = probe.pollTransmit(); t; t = probe.pollTransmit()) {
    sent.set(formatEndpoint(t.to), t.data);
  }
  return { probe, sent };
}

const tidOf = (request: Uint8Array) => request.slice(8, 20);

Deno.test("stun probe: agreeing servers → endpoint-independent, one reflexive address", () => {
  const probe = new StunProbe({ servers: [A, B, C], random: seededRandom(7) });
  const r = simulate(probe, [A, B, C]);
  assert(probe.done);
  assert.deepEqual(probe.mapping(), "endpoint-independent");
  assert.deepEqual(probe.reflexive(), [{ hostname: PUBLIC_IP, port: 40000 }]);
  assert.deepEqual(r.events, [{
    type: "mapping",
    mapping: "endpoint-independent",
    reflexive: [{ hostname: PUBLIC_IP, port: 40000 }],
  }]);
  assert.deepEqual(maxSends(r), 1, "no retransmission on a clean path");
  assert.deepEqual(probe.nextTimeout(), undefined);
});

Deno.test("stun probe: disagreeing servers → address-dependent with a notice, early", () => {
  const probe = new StunProbe({ servers: [A, B], random: seededRandom(8) });
  const r = simulate(probe, [A, B], { nat: symmetric });
  assert.deepEqual(probe.mapping(), "address-dependent");
  assert.deepEqual(probe.reflexive().length, 2);
  assert.deepEqual(r.events.length, 1);
  const e = r.events[0]!;
  assert.deepEqual(e.mapping, "address-dependent");
  assert.deepEqual(e.notice, SYMMETRIC_NOTICE);
  assert(e.notice!.includes("symmetric") && e.notice!.includes("p2p doctor"));
  assert.deepEqual(e.reflexive, probe.reflexive());

  // With a silent third server the verdict comes as soon as A and B disagree, not at the end.
  const p2 = new StunProbe({ servers: [A, B, C], random: seededRandom(9) });
  const r2 = simulate(p2, [A, B, C], { nat: symmetric, silent: [C] });
  assert.deepEqual(r2.events.length, 1);
  assert.deepEqual(r2.events[0]!.mapping, "address-dependent");
  assert(r2.eventAt! < r2.doneAt!, "address-dependent is reported before the silent server ends");
  assert.deepEqual(r2.doneAt! - 1000, DEFAULT_PROBE_TIMEOUT);
});

Deno.test("stun probe: loss is recovered by retries, never more than 3 requests a server", () => {
  let recovered = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const rng = prng(seed);
    const probe = new StunProbe({ servers: [A, B, C], random: seededRandom(seed) });
    const r = simulate(probe, [A, B, C], { drop: () => rng() < 0.4 });
    assert(probe.done, `seed ${seed}: done`);
    assert(maxSends(r) <= 3, `seed ${seed}: ${maxSends(r)} requests to one server`);
    assert(r.doneAt! - 1000 <= DEFAULT_PROBE_TIMEOUT, `seed ${seed}: ends by the timeout`);
    for (const times of r.sends.values()) {
      // Backoff: every gap at least as long as the one before.
      for (let i = 2; i < times.length; i++) {
        assert(times[i]! - times[i - 1]! >= times[i - 1]! - times[i - 2]!);
      }
    }
    const m = probe.mapping();
    assert(m === null || m === "endpoint-independent", `seed ${seed}: ${m}`);
    if (r.sends.size === 3 && maxSends(r) > 1 && probe.reflexive().length === 1) recovered++;
    assert(r.events.length <= 1);
  }
  assert(recovered > 50, `retries recovered answers in ${recovered} runs`);
});

Deno.test("stun probe: a silent server is given up after the retries, at the timeout", () => {
  const probe = new StunProbe({ servers: [A], random: seededRandom(3) });
  const r = simulate(probe, [A], { silent: [A] });
  const times = r.sends.get(formatEndpoint(A))!.map((t) => t - 1000);
  assert.deepEqual(times.length, 3);
  assert.deepEqual(times[0], 0);
  assert(times[1]! > 0 && times[2]! - times[1]! === 2 * times[1]!, `backoff ${times}`);
  assert(times[2]! < DEFAULT_PROBE_TIMEOUT);
  assert.deepEqual(r.doneAt! - 1000, DEFAULT_PROBE_TIMEOUT);
  assert(probe.done);
  assert.deepEqual(probe.mapping(), null);
  assert.deepEqual(probe.reflexive(), []);
  assert.deepEqual(r.events, [], "no verdict, no event");
  assert.deepEqual(probe.nextTimeout(), undefined);

  // One server answering and one silent: a reflexive address, but no verdict.
  const p2 = new StunProbe({ servers: [A, B], random: seededRandom(4), timeout: 1000 });
  const r2 = simulate(p2, [A, B], { silent: [B] });
  assert.deepEqual(p2.reflexive(), [{ hostname: PUBLIC_IP, port: 40000 }]);
  assert.deepEqual(p2.mapping(), null);
  assert.deepEqual(r2.events, []);
  assert.deepEqual(r2.doneAt! - 1000, 1000);
  assert.deepEqual(r2.sends.get(formatEndpoint(B))!.length, 3);
});

Deno.test("stun probe: retries option is capped at 2 and 0 means one request", () => {
  for (const [retries, expected] of [[0, 1], [1, 2], [2, 3], [5, 3], [100, 3], [-1, 1]]) {
    const probe = new StunProbe({ servers: [A, B], random: seededRandom(5), retries });
    const r = simulate(probe, [A, B], { silent: [A, B] });
    assert.deepEqual(maxSends(r), expected, `retries ${retries}`);
    assert(probe.done);
  }
  // A late or coarse timer (one call long after everything was due) still sends ≤ 3.
  const probe = new StunProbe({ servers: [A], random: seededRandom(6) });
  probe.start(0);
  let n = 0;
  for (const now of [0, 10, 5000, 5001, 9000]) {
    probe.handleTimeout(now);
    while (probe.pollTransmit()) n++;
  }
  assert(n <= 3 && probe.done);
});

Deno.test("stun probe: forged and unsolicited responses are ignored", () => {
  const { probe, sent } = started([A, B]);
  const tidA = tidOf(sent.get(formatEndpoint(A))!);
  const tidB = tidOf(sent.get(formatEndpoint(B))!);
  const evil: Endpoint = { hostname: "10.6.6.6", port: 1 };
  const wrongTid = tidA.slice();
  wrongTid[0]! ^= 1;
  const forged: [Endpoint, Uint8Array, string][] = [
    [A, response(wrongTid, evil), "wrong transaction id"],
    [A, response(new Uint8Array(12), evil), "unsolicited"],
    [B, response(tidA, evil), "A's transaction from B"],
    [evil, response(tidA, evil), "from a stranger"],
    [{ hostname: A.hostname, port: A.port + 1 }, response(tidA, evil), "from A's other port"],
    [{ hostname: "198.51.100.2", port: A.port }, response(tidA, evil), "from another host"],
    [A, bindingRequest(tidA), "a request with our id"],
    [A, encodeStun({ cls: StunClass.Indication, transactionId: tidA, attributes: [] }), "ind"],
    [
      A,
      encodeStun({ method: 2, cls: StunClass.Success, transactionId: tidA, attributes: [] }),
      "m2",
    ],
    [A, response(tidA, evil).slice(0, 30), "truncated"],
    [A, new Uint8Array([0x70, 0x32, 1, 2, 3]), "a p2p datagram"],
    [A, new Uint8Array(0), "empty"],
    [A, new Uint8Array(2000), "zeros"],
  ];
  // A corrupted FINGERPRINT.
  const bad = response(tidA, evil);
  bad[bad.length - 1]! ^= 0xff;
  forged.push([A, bad, "bad fingerprint"]);
  for (const [from, data, what] of forged) {
    assert.equal(probe.handleDatagram(10, from, data), false, what);
  }
  assert.deepEqual(probe.reflexive(), [], "no forged address became a candidate");
  assert.deepEqual(probe.pollEvent(), undefined);
  assert.equal(probe.done, false);

  // The genuine answers still count; IPv4-mapped IPv6 sources (dual-stack sockets) match.
  assert(probe.handleDatagram(20, A, response(tidA, { hostname: PUBLIC_IP, port: 5 })));
  const mappedB = { hostname: `::ffff:${B.hostname}`, port: B.port };
  assert(probe.handleDatagram(20, mappedB, response(tidB, { hostname: PUBLIC_IP, port: 5 })));
  assert(probe.done);
  assert.deepEqual(probe.mapping(), "endpoint-independent");
  // Late duplicates are claimed (they are ours) but change nothing.
  assert(probe.handleDatagram(30, A, response(tidA, { hostname: PUBLIC_IP, port: 6 })));
  assert.deepEqual(probe.reflexive(), [{ hostname: PUBLIC_IP, port: 5 }]);
  assert.deepEqual(probe.pollEvent()?.mapping, "endpoint-independent");
  assert.deepEqual(probe.pollEvent(), undefined, "one event only");
});

Deno.test("stun probe: error responses and answers without an address end that server", () => {
  const { probe, sent } = started([A, B, C]);
  const tid = (s: Endpoint) => tidOf(sent.get(formatEndpoint(s))!);
  const err = encodeStun({
    cls: StunClass.Error,
    transactionId: tid(A),
    attributes: [{ type: Attr.ErrorCode, value: new Uint8Array([0, 0, 4, 20]) }],
    fingerprint: true,
  });
  assert(probe.handleDatagram(5, A, err));
  const empty = encodeStun({ cls: StunClass.Success, transactionId: tid(B), attributes: [] });
  assert(probe.handleDatagram(5, B, empty));
  assert.equal(probe.done, false);
  assert(probe.handleDatagram(5, C, response(tid(C), { hostname: PUBLIC_IP, port: 9 })));
  assert(probe.done);
  assert.deepEqual(probe.mapping(), null);
  assert.deepEqual(probe.reflexive(), [{ hostname: PUBLIC_IP, port: 9 }]);
  assert.deepEqual(probe.pollEvent(), undefined);
  // No retransmission to servers that answered.
  probe.handleTimeout(10_000);
  assert.deepEqual(probe.pollTransmit(), undefined);
});

Deno.test("stun probe: verdict needs two server addresses of one family", () => {
  // Two ports of one host agreeing: only "not per port" (an address-dependent NAT would agree
  // too), never endpoint-independent.
  const a2 = { hostname: A.hostname, port: 3479 };
  const p1 = new StunProbe({ servers: [A, a2], random: seededRandom(11) });
  const r1 = simulate(p1, [A, a2]);
  assert.deepEqual(p1.mapping(), "not-port-dependent");
  assert.deepEqual(r1.events.map((e) => e.mapping), ["not-port-dependent"]);
  // ... but disagreeing, they prove a destination-dependent mapping.
  const p2 = new StunProbe({ servers: [A, a2], random: seededRandom(12) });
  const r2 = simulate(p2, [A, a2], { nat: symmetric });
  assert.deepEqual(p2.mapping(), "address-dependent");
  assert.deepEqual(r2.events.length, 1);
  // An IPv6 server sees another address: not compared with the IPv4 ones.
  const v6: Endpoint = { hostname: "2001:db8::1", port: 3478 };
  const six: Endpoint = { hostname: "2001:db8:ffff::9", port: 50000 };
  const nat: Nat = (dst) => dst.hostname.includes(":") ? six : eim(dst);
  const p3 = new StunProbe({ servers: [A, v6], random: seededRandom(13) });
  simulate(p3, [A, v6], { nat });
  assert.deepEqual(p3.mapping(), null);
  assert.deepEqual(p3.reflexive().length, 2);
  // Duplicate servers are asked once.
  const p4 = new StunProbe({ servers: [A, A, { ...A }], random: seededRandom(14) });
  const r4 = simulate(p4, [A]);
  assert.deepEqual(r4.sends.size, 1);
  assert.deepEqual(maxSends(r4), 1);
  // No servers: done at once, nothing sent, no event.
  const p5 = new StunProbe({ servers: [], random: seededRandom(15) });
  assert.equal(p5.done, false);
  p5.start(0);
  assert(p5.done);
  assert.deepEqual([p5.pollTransmit(), p5.pollEvent(), p5.nextTimeout()], [
    undefined,
    undefined,
    undefined,
  ]);
});

Deno.test("stun probe: a repeating random source never makes servers share an id", () => {
  const probe = new StunProbe({ servers: [A, B], random: (n) => new Uint8Array(n) });
  probe.start(0);
  const first = probe.pollTransmit()!;
  assert.deepEqual(probe.pollTransmit(), undefined, "B got no request: its id would collide");
  assert(probe.done === false);
  assert(probe.handleDatagram(1, A, response(tidOf(first.data), { hostname: PUBLIC_IP, port: 1 })));
  assert(probe.done);
  // Nothing before start is claimed.
  const idle = new StunProbe({ servers: [A], random: seededRandom(1) });
  assert.equal(idle.handleDatagram(0, A, response(new Uint8Array(12), A)), false);
});

Deno.test("stun probe: 10k seeded fuzz inputs never throw and forge nothing", () => {
  const rng = prng(0x5eed);
  const { probe, sent } = started([A, B], 21);
  const tidA = tidOf(sent.get(formatEndpoint(A))!);
  const real = response(tidA, { hostname: PUBLIC_IP, port: 7 });
  const sources: Endpoint[] = [A, B, { hostname: "::1", port: 3478 }, { hostname: "", port: -1 }];
  let claimed = 0;
  const isOurs = (from: Endpoint, d: Uint8Array) =>
    from === A && d.length >= 20 && tidA.every((x, k) => d[8 + k] === x);
  for (let i = 0; i < 10_000; i++) {
    let data: Uint8Array;
    const kind = i % 4;
    if (kind === 0) {
      data = randomBytesFrom(rng, Math.floor(rng() * 120));
    } else if (kind === 1) {
      // A STUN-looking header with our transaction id and random attributes.
      data = randomBytesFrom(rng, 20 + 4 * Math.floor(rng() * 20));
      data[0] = 0x01;
      data[1] = 0x01;
      data[2] = 0;
      data[3] = data.length - 20;
      data.set([0x21, 0x12, 0xa4, 0x42], 4);
      data.set(tidA, 8);
    } else if (kind === 2) {
      // A real answer with a few bytes flipped, or truncated.
      data = real.slice(0, rng() < 0.3 ? Math.floor(rng() * real.length) : real.length);
      for (let k = 0; k < 1 + Math.floor(rng() * 3); k++) {
        const at = Math.floor(rng() * data.length);
        if (data.length > 0) data[at]! ^= 1 + Math.floor(rng() * 255);
      }
    } else {
      // A valid answer with a random transaction id (unsolicited).
      data = response(randomBytesFrom(rng, 12), { hostname: "10.0.0.1", port: 9 });
    }
    const from = sources[Math.floor(rng() * sources.length)]!;
    if (probe.handleDatagram(i, from, data)) {
      // Only what carries A's transaction id and comes from A itself may be claimed.
      assert(isOurs(from, data), `input ${i} claimed`);
      claimed++;
    }
    probe.handleTimeout(i);
    while (probe.pollTransmit());
  }
  assert(claimed > 0 && claimed < 2500, `claimed ${claimed}`);
  for (const ep of probe.reflexive()) {
    assert.notEqual(ep.hostname, "10.0.0.1", "an unsolicited address became a candidate");
  }
  assert.deepEqual(probe.mapping(), null);
});

/** An RFC 5780 STUN server on two addresses and two ports, as `serve --alt-host --alt-port` runs. */
function rfc5780Server() {
  const primary = { hostname: "192.0.2.1", port: 3478 };
  const sockets = [
    primary,
    { hostname: "192.0.2.1", port: 3479 },
    { hostname: "192.0.2.2", port: 3478 },
    { hostname: "192.0.2.2", port: 3479 },
  ];
  return { primary, sockets, responder: new StunResponder({ sockets }) };
}

Deno.test("stun probe: a server's OTHER-ADDRESS is asked too, so one RFC 5780 server gives a verdict", () => {
  const { primary, sockets, responder } = rfc5780Server();
  for (const symmetric of [false, true]) {
    const probe = new StunProbe({ servers: [primary], random: seededRandom(symmetric ? 2 : 1) });
    probe.start(0);
    let port = 40_000;
    for (let round = 0; round < 3; round++) {
      for (let t = probe.pollTransmit(); t; t = probe.pollTransmit()) {
        const role = sockets.findIndex((s) => s.hostname === t.to.hostname && s.port === t.to.port);
        assert.ok(role >= 0, `asked ${t.to.hostname}:${t.to.port}`);
        // A symmetric NAT gives each destination its own public port.
        const from = { hostname: "203.0.113.5", port: symmetric ? port++ : 40_000 };
        const r = responder.handle(0, role, from, t.data)!;
        assert.ok(probe.handleDatagram(0, sockets[r.via]!, r.data));
      }
    }
    assert.equal(probe.mapping(), symmetric ? "address-dependent" : "endpoint-independent");
  }
});

Deno.test("stun probe: holdOther keeps the OTHER-ADDRESS unasked until released (a REACH comes first)", () => {
  const { primary, sockets, responder } = rfc5780Server();
  const probe = new StunProbe({
    servers: [primary],
    random: seededRandom(3),
    holdOther: true,
  });
  probe.start(0);
  const asked: string[] = [];
  const answer = (now: number) => {
    for (let t = probe.pollTransmit(); t; t = probe.pollTransmit()) {
      asked.push(`${t.to.hostname}:${t.to.port}`);
      const role = sockets.findIndex((s) => s.hostname === t.to.hostname && s.port === t.to.port);
      const r = responder.handle(now, role, { hostname: "203.0.113.5", port: 40_000 }, t.data)!;
      probe.handleDatagram(now, sockets[r.via]!, r.data);
    }
  };
  answer(0);
  answer(1);
  assert.deepEqual(asked, ["192.0.2.1:3478"], "the other address is not contacted yet");
  assert.equal(probe.mapping(), null);
  probe.releaseOther(500);
  answer(500);
  assert.deepEqual(asked, ["192.0.2.1:3478", "192.0.2.2:3479"]);
  assert.equal(probe.mapping(), "endpoint-independent");
});

Deno.test("stun probe: a one-address server's ALT-PORT is asked too (held like OTHER-ADDRESS): per port or not", () => {
  const primary = { hostname: "192.0.2.1", port: 7777 };
  const sockets = [primary, { hostname: "192.0.2.1", port: 7778 }];
  const responder = new StunResponder({ sockets });
  for (const symmetric of [false, true]) {
    const probe = new StunProbe({
      servers: [primary],
      random: seededRandom(symmetric ? 5 : 4),
      holdOther: true,
    });
    probe.start(0);
    const asked: string[] = [];
    let port = 40_000;
    const answer = (now: number) => {
      for (let t = probe.pollTransmit(); t; t = probe.pollTransmit()) {
        asked.push(`${t.to.hostname}:${t.to.port}`);
        const role = sockets.findIndex((s) => s.port === t.to.port);
        // A symmetric NAT gives each destination (here: each port) its own public port.
        const from = { hostname: "203.0.113.5", port: symmetric ? port++ : 40_000 };
        const r = responder.handle(now, role, from, t.data)!;
        assert.ok(probe.handleDatagram(now, sockets[r.via]!, r.data));
      }
    };
    answer(0);
    answer(1);
    assert.deepEqual(asked, ["192.0.2.1:7777"], "the other port is not contacted before release");
    assert.equal(probe.mapping(), null);
    probe.releaseOther(500);
    answer(500);
    answer(501);
    assert.deepEqual(asked, ["192.0.2.1:7777", "192.0.2.1:7778"], "each port once");
    assert.equal(probe.mapping(), symmetric ? "address-dependent" : "not-port-dependent");
    assert.equal(
      probe.pollEvent()?.mapping,
      symmetric ? "address-dependent" : "not-port-dependent",
    );
  }
  // A server without a second port names none: nothing more is asked.
  const plain = new StunResponder({ sockets: [primary] });
  const probe = new StunProbe({ servers: [primary], random: seededRandom(6) });
  probe.start(0);
  const t = probe.pollTransmit()!;
  const r = plain.handle(0, 0, { hostname: "203.0.113.5", port: 40_000 }, t.data)!;
  assert.ok(probe.handleDatagram(0, primary, r.data));
  assert.equal(probe.pollTransmit(), undefined);
  assert.equal(probe.mapping(), null);
});
