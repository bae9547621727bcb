/**
 * Tests of `p2p doctor` (`lib/nat/doctor.ts`, `doctor.ts`, its arguments in `main.ts`).
 *
 * The machine runs in virtual time against a small simulated network built here: the real
 * {@link StunResponder} of `lib/nat/stun.ts` on a server with two addresses and two ports, and
 * the simulator's NAT ({@link SimNat} of `tests/support/sim_nat.ts`) with every RFC 4787
 * mapping and filtering behaviour, port preservation or not, hairpinning or not, idle timeouts,
 * stacking (CGNAT) and seeded loss. Each case knows the
 * truth and checks what the doctor reports, which datagrams it sent and that it ends.
 *
 * A few real processes run on loopback: `p2p doctor --json` against a real `p2p serve` with
 * `--alt-host 127.0.0.2 --alt-port` (Linux), and against a port where nothing answers (exit 1).
 * The NAT lab cells are in `doctor_lab_test.ts`.
 *
 * @module
 */

import { NAT_BEHAVIOURS, type NatBehaviour, type NatType, SimNat } from "../support/sim_nat.ts";

import assert from "node:assert/strict";
import {
  type Behaviour,
  DEFAULT_TIMEOUT,
  describeReport,
  Doctor,
  type DoctorEvent,
  type DoctorReport,
  relayedWith,
  verdictOf,
} from "../../lib/nat/doctor.ts";
import { Attr, encodeAddress, encodeStun, StunClass, StunResponder } from "../../lib/nat/stun.ts";
import { type Endpoint, formatEndpoint, sameEndpoint } from "../../lib/wire/address.ts";
import { parseCommand, UsageError } from "../../main.ts";
import { doctor } from "../../lib/roles/doctor.ts";
import { prng, seededRandom } from "../support/prng.ts";
import { runP2p, startServer } from "../support/proc.ts";

const BEHAVIOURS: readonly Behaviour[] = [
  "endpoint-independent",
  "address-dependent",
  "address-and-port-dependent",
];

// ---------------------------------------------------------------------------------------------
// A simulated network

const ep = formatEndpoint;

type ServerKind = "rfc5780" | "one-address" | "plain" | "silent";

const IP1 = "203.0.113.1";
const IP2 = "203.0.113.2";
const P1 = 3478;
const P2 = 3479;
const SERVER: Endpoint = { hostname: IP1, port: P1 };

interface SimOptions {
  /** NATs from the doctor's own router outwards (empty: a public host). */
  nats?: NatBehaviour[];
  server?: ServerKind;
  latency?: number;
  loss?: number;
  seed?: number;
}

interface Delivery {
  at: number;
  order: number;
  run: () => void;
}

/** The doctor's host with its two sockets, its NATs and the server, in virtual time. */
class DoctorNet {
  now = 1000;
  readonly nats: SimNat[];
  readonly local: [Endpoint, Endpoint];
  /** Every datagram the doctor sent: socket, destination, time. */
  readonly sent: { socket: number; to: Endpoint; at: number }[] = [];
  #queue: Delivery[] = [];
  #order = 0;
  #rng: () => number;
  #latency: number;
  #loss: number;
  #responder: StunResponder | null;
  #sockets: Endpoint[];
  #doctor: Doctor | null = null;

  constructor(o: SimOptions = {}) {
    this.#rng = prng(o.seed ?? 1);
    this.#latency = o.latency ?? 10;
    this.#loss = o.loss ?? 0;
    const specs = o.nats ?? [];
    this.nats = specs.map((s, i) =>
      new SimNat(i === specs.length - 1 ? "198.51.100.1" : `100.64.${i}.2`, s, undefined, this.#rng)
    );
    const host = specs.length === 0 ? "198.51.100.77" : "192.168.1.10";
    this.local = [{ hostname: host, port: 5000 }, { hostname: host, port: 5001 }];
    const kind = o.server ?? "rfc5780";
    this.#sockets = [
      { hostname: IP1, port: P1 },
      { hostname: IP1, port: P2 },
      { hostname: IP2, port: P1 },
      { hostname: IP2, port: P2 },
    ];
    this.#responder = kind === "silent" ? null : new StunResponder({
      sockets: kind === "rfc5780"
        ? this.#sockets
        : kind === "one-address"
        ? this.#sockets.slice(0, 2)
        : [this.#sockets[0]],
    });
  }

  #at(delay: number, run: () => void): void {
    this.#queue.push({ at: this.now + delay, order: this.#order++, run });
    this.#queue.sort((a, b) => a.at - b.at || a.order - b.order);
  }

  #lost(): boolean {
    return this.#loss > 0 && this.#rng() < this.#loss;
  }

  /** A datagram from doctor socket `socket` to `dst`. */
  #fromDoctor(socket: number, dst: Endpoint, data: Uint8Array): void {
    this.sent.push({ socket, to: dst, at: this.now });
    if (this.#lost()) return;
    this.#at(this.#latency, () => {
      let src = this.local[socket]!;
      for (let i = 0; i < this.nats.length; i++) {
        const nat = this.nats[i]!;
        if (dst.hostname === nat.ip) {
          if (!nat.behaviour.hairpin) return;
          src = nat.outbound(this.now, src, dst);
          const target = nat.hairpinTarget(this.now, dst.port);
          if (target) this.#down(i - 1, src, target, data);
          return;
        }
        src = nat.outbound(this.now, src, dst);
      }
      this.#internet(src, dst, data);
    });
  }

  /** A datagram on the public Internet. */
  #internet(src: Endpoint, dst: Endpoint, data: Uint8Array): void {
    const role = this.#sockets.findIndex((s) => sameEndpoint(s, dst));
    if (role >= 0) {
      const r = this.#responder?.handle(this.now, role, src, data);
      if (r && !this.#lost()) {
        const from = this.#sockets[r.via]!;
        this.#at(this.#latency, () => this.#internet(from, r.to, r.data));
      }
      return;
    }
    const n = this.nats.length;
    if (n === 0) this.#down(-1, src, dst, data);
    else if (dst.hostname === this.nats[n - 1]!.ip) this.#down(n - 1, src, dst, data);
  }

  /** Delivers inwards from NAT `i` (addressed to its public side); -1 is the doctor's host. */
  #down(i: number, src: Endpoint, dst: Endpoint, data: Uint8Array): void {
    for (; i >= 0; i--) {
      const inner = this.nats[i]!.inbound(this.now, src, dst.port);
      if (!inner) return;
      dst = inner;
    }
    const socket = this.local.findIndex((l) => sameEndpoint(l, dst));
    if (socket === 0) this.#doctor?.handleDatagram(this.now, src, data);
    else if (socket === 1) this.#doctor?.secondary.handleDatagram(this.now, src, data);
  }

  /** Injects a datagram to the doctor's socket 0 from `from` (a forgery). */
  inject(from: Endpoint, data: Uint8Array): void {
    this.#at(this.#latency, () => this.#doctor?.handleDatagram(this.now, from, data));
  }

  #flush(d: Doctor): void {
    for (let t = d.pollTransmit(); t; t = d.pollTransmit()) this.#fromDoctor(0, t.to, t.data);
    for (let t = d.secondary.pollTransmit(); t; t = d.secondary.pollTransmit()) {
      this.#fromDoctor(1, t.to, t.data);
    }
  }

  /** Runs `d` to the end (at most `limit` ms of virtual time); returns the events. */
  run(d: Doctor, limit = 3_600_000): DoctorEvent[] {
    this.#doctor = d;
    const start = this.now;
    d.start(this.now, this.local[0]);
    const events: DoctorEvent[] = [];
    for (let steps = 0; steps < 1_000_000 && !d.done; steps++) {
      this.#flush(d);
      for (let e = d.pollEvent(); e; e = d.pollEvent()) events.push(e);
      const next = d.nextTimeout();
      const q = this.#queue[0];
      const at = Math.min(q?.at ?? Infinity, next ?? Infinity);
      if (at === Infinity) break;
      assert.ok(at >= this.now, "time never goes back");
      assert.ok(at - start <= limit, `the doctor ends within ${limit} ms`);
      this.now = at;
      while (this.#queue[0] && this.#queue[0].at <= this.now) this.#queue.shift()!.run();
      const due = d.nextTimeout();
      if (due !== undefined && due <= this.now) d.handleTimeout(this.now);
    }
    this.#flush(d);
    for (let e = d.pollEvent(); e; e = d.pollEvent()) events.push(e);
    assert.ok(d.done, "the doctor is done");
    assert.equal(d.nextTimeout(), undefined, "no timer once done");
    return events;
  }
}

/** Runs a doctor in a new simulated network; returns the report, the net and the time taken. */
function diagnose(
  o: SimOptions & { timeout?: number; lifetime?: { budget: number } } = {},
): { report: DoctorReport; net: DoctorNet; ms: number; events: DoctorEvent[] } {
  const net = new DoctorNet(o);
  const d = new Doctor({
    server: SERVER,
    ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
    ...(o.lifetime ? { lifetime: o.lifetime } : {}),
    random: seededRandom(o.seed ?? 7),
  });
  const start = net.now;
  const events = net.run(d);
  return { report: d.report(), net, ms: net.now - start, events };
}

const STRICTNESS = (b: Behaviour) => BEHAVIOURS.indexOf(b);
const stricter = (a: Behaviour, b: Behaviour) => STRICTNESS(a) >= STRICTNESS(b) ? a : b;

/** Every destination the doctor sent to is the server's, or its own public address. */
function assertOnlyServerTraffic(net: DoctorNet, r: DoctorReport): void {
  for (const s of net.sent) {
    const ok = [IP1, IP2].includes(s.to.hostname) || ep(s.to) === r.public;
    assert.ok(ok, `sent only to the server or itself: ${ep(s.to)}`);
  }
}

function verdictKind(r: DoctorReport): string {
  return r.verdict.split(/[;:]/)[0]!;
}

// ---------------------------------------------------------------------------------------------
// Classification

Deno.test("doctor: every mapping × filtering combination behind one NAT, in virtual time", () => {
  for (const mapping of BEHAVIOURS) {
    for (const filtering of BEHAVIOURS) {
      const what = `${mapping} mapping, ${filtering} filtering`;
      const { report: r, net, ms } = diagnose({ nats: [{ mapping, filtering }] });
      assert.equal(r.udp, true, what);
      assert.equal(r.rfc5780, true, what);
      assert.equal(r.mapping, mapping, what);
      assert.equal(r.filtering, filtering, what);
      assert.equal(r.public, "198.51.100.1:5000", what);
      assert.equal(r.port_preserved, true, what);
      assert.equal(r.hairpin, false, what);
      assert.equal(r.rtt_ms, 20, what);
      assert.equal(r.lifetime_s, null, what);
      assert.deepEqual(r.relayed_with, relayedWith(mapping, filtering), what);
      assertOnlyServerTraffic(net, r);
      // The filtering tests and the hairpin test run at once: about one timeout in all.
      assert.ok(ms <= DEFAULT_TIMEOUT + 100, `${what}: took ${ms} ms`);
    }
  }
});

Deno.test("doctor: each of the simulator's NAT types is reported as the behaviours it has", () => {
  const types = Object.keys(NAT_BEHAVIOURS) as NatType[];
  assert.ok(types.includes("address-restricted"));
  for (const type of types) {
    const nat = NAT_BEHAVIOURS[type];
    const { report: r } = diagnose({ nats: [nat] });
    assert.equal(r.mapping, nat.mapping, type);
    assert.equal(r.filtering, nat.filtering, type);
    // Sequential and random ports both move the port (the doctor's socket is port 5000).
    assert.equal(r.port_preserved, false, type);
    assert.deepEqual(r.relayed_with, relayedWith(nat.mapping, nat.filtering), type);
  }
});

Deno.test("doctor: a public host: endpoint-independent, port kept, hairpin, direct", () => {
  const { report: r, net } = diagnose({ nats: [] });
  assert.deepEqual(
    {
      udp: r.udp,
      public: r.public,
      mapping: r.mapping,
      filtering: r.filtering,
      port_preserved: r.port_preserved,
      hairpin: r.hairpin,
      relayed_with: r.relayed_with,
    },
    {
      udp: true,
      public: "198.51.100.77:5000",
      mapping: "endpoint-independent",
      filtering: "endpoint-independent",
      port_preserved: true,
      hairpin: true,
      relayed_with: [],
    },
  );
  assert.match(r.verdict, /^direct with peers behind any common NAT/);
  assertOnlyServerTraffic(net, r);
});

Deno.test("doctor: port preservation and hairpinning are reported as the NAT does them", () => {
  for (const preserve of [true, false]) {
    for (const hairpin of [true, false]) {
      const nat: NatBehaviour = {
        mapping: "endpoint-independent",
        filtering: "address-and-port-dependent",
        ports: preserve ? "preserve" : "random",
        hairpin,
      };
      const { report: r } = diagnose({ nats: [nat] });
      const what = JSON.stringify(nat);
      assert.equal(r.port_preserved, preserve, what);
      assert.equal(r.hairpin, hairpin, what);
      assert.equal(r.public?.endsWith(":5000"), preserve, what);
      // Port-restricted: direct with everyone (symmetric peers by a birthday search).
      assert.match(r.verdict, /^direct with peers behind any common NAT/, what);
    }
  }
});

Deno.test("doctor: behind a CGNAT, each behaviour is the stricter of the two layers", () => {
  for (const home of BEHAVIOURS) {
    for (const carrier of BEHAVIOURS) {
      const nats: NatBehaviour[] = [
        { mapping: home, filtering: carrier },
        { mapping: carrier, filtering: home },
      ];
      const { report: r } = diagnose({ nats });
      const what = `home ${home}/${carrier}, carrier ${carrier}/${home}`;
      assert.equal(r.mapping, stricter(home, carrier), `${what}: mapping`);
      assert.equal(r.filtering, stricter(home, carrier), `${what}: filtering`);
      assert.equal(r.public?.startsWith("198.51.100.1:"), true, what);
      assert.equal(r.hairpin, false, what);
    }
  }
  // Hairpin on at home only does not help: the public address is the carrier's.
  const homeHairpin = diagnose({
    nats: [
      { mapping: "endpoint-independent", filtering: "endpoint-independent", hairpin: true },
      { mapping: "endpoint-independent", filtering: "address-and-port-dependent" },
    ],
  }).report;
  assert.equal(homeHairpin.hairpin, false);
  const carrierHairpin = diagnose({
    nats: [
      { mapping: "endpoint-independent", filtering: "endpoint-independent" },
      { mapping: "endpoint-independent", filtering: "endpoint-independent", hairpin: true },
    ],
  }).report;
  assert.equal(carrierHairpin.hairpin, true);
});

Deno.test("doctor: right under 5 % loss, across 30 seeds (retransmissions)", () => {
  for (let seed = 1; seed <= 30; seed++) {
    for (
      const nat of [
        { mapping: "endpoint-independent", filtering: "address-dependent" },
        { mapping: "address-and-port-dependent", filtering: "address-and-port-dependent" },
      ] as NatBehaviour[]
    ) {
      const { report: r } = diagnose({ nats: [nat], loss: 0.05, seed });
      assert.equal(r.mapping, nat.mapping, `seed ${seed}`);
      assert.equal(r.filtering, nat.filtering, `seed ${seed}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// What cannot be known

Deno.test("doctor: no answer at all: udp false after one timeout, a plain verdict, few sends", () => {
  for (const timeout of [1000, DEFAULT_TIMEOUT]) {
    const { report: r, net, ms } = diagnose({ server: "silent", timeout });
    assert.equal(r.udp, false);
    assert.equal(r.public, null);
    assert.equal(r.mapping, null);
    assert.equal(r.filtering, null);
    assert.equal(r.port_preserved, null);
    assert.equal(r.hairpin, null);
    assert.equal(r.relayed_with, null);
    assert.equal(ms, timeout, "gives up after exactly the timeout");
    assert.match(
      r.verdict,
      /^no UDP reply from the server at 203\.0\.113\.1:3478: UDP may be blocked by a firewall/,
    );
    assert.ok(net.sent.length <= 5, `${net.sent.length} retransmissions`);
    assert.ok(net.sent.every((s) => sameEndpoint(s.to, SERVER)));
  }
});

Deno.test("doctor: a server without --alt-*: mapping and filtering unknown, the rest known", () => {
  const { report: r, net } = diagnose({
    server: "plain",
    nats: [{ mapping: "endpoint-independent", filtering: "address-and-port-dependent" }],
  });
  assert.equal(r.udp, true);
  assert.equal(r.rfc5780, false);
  assert.equal(r.public, "198.51.100.1:5000");
  assert.equal(r.mapping, null);
  assert.equal(r.filtering, null);
  assert.equal(r.port_preserved, true);
  assert.equal(r.hairpin, false);
  assert.equal(r.relayed_with, null);
  assert.match(r.verdict, /^UDP works; NAT type unknown: .*--no-alt-port, or add --alt-host/);
  // Nothing was sent to an alternate address or with a change request.
  assert.ok(net.sent.every((s) => sameEndpoint(s.to, SERVER) || ep(s.to) === r.public));
});

Deno.test("doctor: a server with one address and two ports: the per-port half, exactly", () => {
  for (const mapping of BEHAVIOURS) {
    for (const filtering of BEHAVIOURS) {
      const what = `${mapping} mapping, ${filtering} filtering`;
      const { report: r, net } = diagnose({
        server: "one-address",
        nats: [{ mapping, filtering }],
      });
      const mapPort = mapping === "address-and-port-dependent";
      const filterPort = filtering === "address-and-port-dependent";
      assert.equal(r.rfc5780, false, what);
      assert.equal(r.mapping_per_port, mapPort, what);
      assert.equal(r.filtering_per_port, filterPort, what);
      // Only what the two ports prove: endpoint-independent and address-dependent stay apart.
      assert.equal(r.mapping, mapPort ? mapping : null, what);
      assert.equal(r.filtering, filterPort ? filtering : null, what);
      if (mapPort && filterPort) assert.deepEqual(r.relayed_with, ["symmetric"], what);
      else assert.equal(r.relayed_with, null, what);
      if (!mapPort || !filterPort) assert.match(r.verdict, /one server address cannot tell/, what);
      const lines = describeReport(r).join("\n");
      if (!mapPort) {
        assert.match(lines, /Mapping: +endpoint-independent or address-dependent: /, what);
      }
      if (!filterPort) {
        assert.match(lines, /Filtering: +endpoint-independent or address-dependent: /, what);
      }
      // Never the other address (there is none), and the other port only after the filter test.
      assert.ok(net.sent.every((s) => s.to.hostname === IP1 || ep(s.to) === r.public), what);
      const firstAlt = net.sent.findIndex((s) => s.to.port === P2);
      assert.ok(firstAlt > 0, what);
    }
  }
});

Deno.test("doctor: forged answers and garbage are ignored", () => {
  const net = new DoctorNet({
    nats: [{ mapping: "endpoint-independent", filtering: "endpoint-independent" }],
  });
  const d = new Doctor({ server: SERVER, random: seededRandom(3) });
  // Before the run starts: a success answer with a transaction id nobody asked for, a
  // non-STUN datagram and a truncated STUN header.
  const fake = encodeStun({
    cls: StunClass.Success,
    transactionId: new Uint8Array(12).fill(9),
    attributes: [{
      type: Attr.XorMappedAddress,
      value: encodeAddress(SERVER, new Uint8Array(12).fill(9))!,
    }],
    fingerprint: true,
  });
  net.inject({ hostname: "192.0.2.66", port: 1 }, new Uint8Array([0x70, 0x32, 1, 2]));
  net.inject({ hostname: "192.0.2.66", port: 1 }, fake);
  net.inject({ hostname: "192.0.2.66", port: 1 }, new Uint8Array(19));
  net.run(d);
  const r = d.report();
  assert.equal(r.mapping, "endpoint-independent");
  assert.equal(r.filtering, "endpoint-independent");
});

// ---------------------------------------------------------------------------------------------
// Lifetime

Deno.test("doctor: --lifetime brackets the NAT's idle timeout within the budget", () => {
  for (const truth of [3_000, 5_000, 30_000, 65_000, 120_000]) {
    const budget = 300_000;
    const { report: r, ms, events } = diagnose({
      nats: [{
        mapping: "endpoint-independent",
        filtering: "address-and-port-dependent",
        timeout: truth,
      }],
      lifetime: { budget },
    });
    const what = `timeout ${truth} ms: ${JSON.stringify(r)}`;
    assert.ok(r.lifetime_s !== null && r.lifetime_s * 1000 < truth, `lower bound, ${what}`);
    assert.ok(r.lifetime_expired_s !== null, `found the expiry, ${what}`);
    assert.ok(r.lifetime_expired_s * 1000 >= truth, `upper bound, ${what}`);
    // Short lifetimes are bisected to a second; long ones to a factor of two at worst, as
    // every probe costs its wait and the budget runs out.
    const gap = r.lifetime_expired_s - r.lifetime_s;
    if (truth <= 30_000) assert.ok(gap <= Math.max(1, r.lifetime_s / 10), `precise: ${what}`);
    else assert.ok(r.lifetime_expired_s <= 2 * r.lifetime_s, `within 2×: ${what}`);
    assert.ok(ms <= budget + 4 * DEFAULT_TIMEOUT, `${ms} ms`);
    assert.ok(events.some((e) => e.type === "lifetime-probe"));
    // Mappings shorter than the keepalive of p2p join get advice.
    assert.equal(/--keepalive/.test(r.verdict), truth <= 30_000, what);
  }
});

Deno.test("doctor: --lifetime with a small budget reports the lower bound it reached", () => {
  const { report: r, ms } = diagnose({
    nats: [{ mapping: "endpoint-independent", filtering: "endpoint-independent" }],
    lifetime: { budget: 30_000 },
  });
  // Waits of 2, 4 and 8 s fit in 30 s with the answers' timeouts; 16 s does not.
  assert.equal(r.lifetime_s, 8);
  assert.equal(r.lifetime_expired_s, null);
  assert.ok(ms <= 30_000 + 4 * DEFAULT_TIMEOUT, `${ms} ms`);
});

Deno.test("doctor: --lifetime says nothing when its probes cannot get through", () => {
  // The first probe follows a refresh at once, so it must come back; when it does not (the
  // second socket blocked here), there is no measurement rather than a wrong number.
  const net = new DoctorNet({
    nats: [{ mapping: "endpoint-independent", filtering: "endpoint-independent" }],
  });
  const d = new Doctor({ server: SERVER, lifetime: { budget: 60_000 }, random: seededRandom(5) });
  // Swallow everything socket 1 sends.
  const original = d.secondary.pollTransmit;
  d.secondary.pollTransmit = () => {
    original();
    return undefined;
  };
  net.run(d);
  const r = d.report();
  assert.equal(r.lifetime_s, null);
  assert.equal(r.lifetime_expired_s, null);
  assert.equal(r.mapping, "endpoint-independent");
});

// ---------------------------------------------------------------------------------------------
// Verdicts and words

Deno.test("doctor: verdicts follow the traversal matrix (docs/nat-matrix.md)", () => {
  // The lab's router types (the simulator's, as mapping/filtering behaviours), and which pairs
  // the matrix saw relayed.
  const kinds = ["full-cone", "address-restricted", "port-restricted", "symmetric"] as const;
  const relayedPairs = new Set(["symmetric|symmetric"]);
  for (const a of kinds) {
    const { mapping: m, filtering: f } = NAT_BEHAVIOURS[a];
    for (const b of kinds) {
      const pair = [a, b].sort().join("|");
      const relayed = relayedWith(m, f).includes(b as "symmetric" | "port-restricted");
      assert.equal(relayed, relayedPairs.has(pair), `${a} with ${b}`);
    }
  }
  const base = {
    server: "203.0.113.1:3478",
    local: "0.0.0.0:5000",
    udp: true,
    tcp: null,
    public: "198.51.100.1:5000",
    rtt_ms: 20,
    rfc5780: true,
    port_preserved: true,
    hairpin: false,
    lifetime_s: null,
    lifetime_expired_s: null,
    mapping_per_port: null,
    filtering_per_port: null,
  };
  const v = (mapping: Behaviour, filtering: Behaviour) =>
    verdictOf({ ...base, mapping, filtering }).verdict;
  assert.match(v("endpoint-independent", "address-dependent"), /^direct with peers behind any/);
  assert.match(v("endpoint-independent", "address-and-port-dependent"), /^direct with .*any/);
  assert.match(
    v("address-and-port-dependent", "address-and-port-dependent"),
    /^direct with peers behind most NATs .*birthday.*; relayed with peers behind symmetric NATs: .*UPnP/,
  );
  const short = verdictOf({
    ...base,
    mapping: "endpoint-independent",
    filtering: "endpoint-independent",
    lifetime_s: 9,
    lifetime_expired_s: 10,
  });
  assert.match(short.verdict, /within 10 s: join with --keepalive 4$/);
});

Deno.test("doctor: the plain-words report names every finding", () => {
  const { report: r } = diagnose({
    nats: [{ mapping: "endpoint-independent", filtering: "address-and-port-dependent" }],
  });
  const text = describeReport(r).join("\n");
  for (
    const s of [
      "UDP:        works",
      "Public:     198.51.100.1:5000 (port kept)",
      "Mapping:    endpoint-independent",
      "Filtering:  address-and-port-dependent",
      "Hairpin:    no",
      "Lifetime:   not measured",
      "Verdict:    direct with peers behind any common NAT",
    ]
  ) assert.ok(text.includes(s), `${s} in\n${text}`);
  assert.equal(verdictKind(r), "direct with peers behind any common NAT, symmetric ones included");
});

// ---------------------------------------------------------------------------------------------
// The command line

Deno.test("doctor: arguments: --server required, --timeout, bare and valued --lifetime", () => {
  const doc = (...a: string[]) => {
    const c = parseCommand(["doctor", ...a], () => "h");
    assert.equal(c.kind, "doctor");
    return (c as Extract<typeof c, { kind: "doctor" }>).options;
  };
  assert.deepEqual(doc("--server", "203.0.113.7:7777"), {
    server: "203.0.113.7:7777",
    json: false,
    timeout: 3000,
    lifetime: null,
  });
  assert.equal(doc("--server", "h:1", "--lifetime").lifetime, 300_000);
  assert.equal(doc("--lifetime", "--server", "h:1").lifetime, 300_000);
  assert.equal(doc("--server", "h:1", "--lifetime", "60").lifetime, 60_000);
  assert.equal(doc("--server", "h:1", "--lifetime=20", "--json").lifetime, 20_000);
  assert.equal(doc("--server", "h:1", "--timeout", "0.5").timeout, 500);
  assert.equal(doc("--server", "h:1", "--json").json, true);
  for (
    const bad of [
      [],
      ["--server", "nope:"],
      ["--server", "h:1", "--timeout", "0"],
      ["--server", "h:1", "--lifetime", "5"],
      ["--server", "h:1", "--room", "x"],
    ]
  ) {
    assert.throws(() => parseCommand(["doctor", ...bad]), UsageError, bad.join(" "));
  }
  const help = parseCommand(["doctor", "--help"]);
  assert.ok(help.kind === "help" && help.code === 0);
  for (const opt of ["--server", "--json", "--timeout", "--lifetime"]) {
    assert.ok(help.text.includes(opt), opt);
  }
  const main = parseCommand(["--help"]);
  assert.ok(main.kind === "help" && main.text.includes("p2p doctor"));
});

// ---------------------------------------------------------------------------------------------
// Real processes on loopback

Deno.test(
  {
    name: "doctor: p2p doctor --json against a real p2p serve with --alt-host on loopback",
    ignore: Deno.build.os !== "linux", // 127.0.0.2 is a loopback address on Linux only
    sanitizeResources: false,
    sanitizeOps: false,
  },
  async () => {
    const srv = await startServer({
      host: "127.0.0.1",
      port: 0,
      extraArgs: ["--alt-host", "127.0.0.2", "--alt-port", String(40_000 + (Deno.pid % 20_000))],
    });
    try {
      const r = await runP2p(["doctor", "--server", srv.addr, "--json", "--timeout", "1"]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      const report = JSON.parse(lines[lines.length - 1]!) as DoctorReport;
      assert.equal(report.udp, true);
      assert.equal(report.rfc5780, true);
      assert.equal(report.mapping, "endpoint-independent");
      assert.equal(report.filtering, "endpoint-independent");
      assert.equal(report.port_preserved, true);
      assert.equal(report.hairpin, true);
      assert.deepEqual(report.relayed_with, []);
      assert.equal(report.public, `127.0.0.1:${report.local!.split(":")[1]}`);
    } finally {
      await srv.proc.close();
    }
  },
);

Deno.test("doctor: nothing answers: exit 1 and a plain sentence, in-process and as a process", {
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  // A port nobody listens on: bind one, note it, close it.
  const probe = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const lines: string[] = [];
  const code = await doctor(
    { server: `127.0.0.1:${port}`, json: false, timeout: 300, lifetime: null },
    { out: (l) => lines.push(l), err: () => {} },
  );
  assert.equal(code, 1);
  assert.match(lines.join("\n"), /Verdict: +no UDP reply from the server at 127\.0\.0\.1:\d+/);
  assert.match(lines.join("\n"), /TCP: +does not connect/);
  const r = await runP2p(["doctor", "--server", `127.0.0.1:${port}`, "--json", "--timeout", "0.3"]);
  assert.equal(r.code, 1);
  const last = JSON.parse(r.stdout.trim().split("\n").pop()!) as DoctorReport;
  assert.deepEqual([last.udp, last.tcp], [false, false]);
  assert.match(r.stderr, /TCP to its port does not connect either: check the address/);
});

Deno.test("doctor: UDP gets no answer but TCP connects: join gets through over TCP, relayed", {
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  // TCP listens on a port where nothing answers UDP (a network that drops UDP looks the same).
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (tcp.addr as Deno.NetAddr).port;
  const accepted = (async () => {
    for await (const c of tcp) c.close();
  })();
  try {
    const out: string[] = [];
    const code = await doctor(
      { server: `127.0.0.1:${port}`, json: true, timeout: 300, lifetime: null },
      { out: (l) => out.push(l), err: () => {} },
    );
    assert.equal(code, 1, "UDP does not reach the server");
    const r = JSON.parse(out.at(-1)!) as DoctorReport;
    assert.deepEqual([r.udp, r.tcp], [false, true]);
    assert.match(
      r.verdict,
      /but TCP to its port connects: .*p2p join registers over TCP by itself/,
    );
    assert.match(describeReport(r).join("\n"), /TCP: +connects to the server's port/);
  } finally {
    tcp.close();
    await accepted.catch(() => {});
  }
});
