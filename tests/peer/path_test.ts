/**
 * Deterministic tests of {@link PathMachine}, driven with virtual time.
 *
 * A {@link Driver} owns the machine and a virtual clock. It drains actions and events after
 * every call, and simulates the remote peer: a probe to an endpoint the test marked reachable
 * is answered (`onProbeAck`) one RTT later. Time only moves to the machine's `nextTimeout()`
 * or to the next scheduled reply, and the driver checks that timers are never in the past
 * and that every timeout makes progress.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Candidate,
  type CandidateKind,
  DEFAULT_PATH,
  PathMachine,
  type PathOptions,
  ProbeBudget,
} from "../../lib/peer/path/path.ts";
import type { Endpoint } from "../../lib/wire/address.ts";

const ep = (hostname: string, port: number): Endpoint => ({ hostname, port });
const key = (e: Endpoint): string => `${e.hostname}:${e.port}`;
const cand = (addr: Endpoint, kind: CandidateKind): Candidate => ({ addr, kind });

const PRIV = ep("192.168.1.20", 40000);
const PUB = ep("203.0.113.7", 51000);
const PUB2 = ep("203.0.113.7", 51999);
const REFL = ep("198.51.100.9", 62000);
const OTHER = ep("198.51.100.77", 1234);

/**
 * Most tests use a flat probe schedule (every probeInterval) so that one probe per round is
 * outstanding when a 40 ms reply arrives; the default doubling schedule has its own test.
 */
const O: PathOptions = {
  ...DEFAULT_PATH,
  firstProbeInterval: DEFAULT_PATH.probeInterval,
  // Timing tests probe endpoints that never answer for minutes; the budget has its own test.
  unprovenPerMinute: Infinity,
  unprovenBurst: Infinity,
};

interface Probe {
  at: number;
  to: string;
  txid: number;
}

interface Ev {
  at: number;
  path: "direct" | "relay";
  addr: string | null;
  kind: CandidateKind | null;
  rtt: number | null;
}

/** A path machine on a virtual clock, with a scripted remote peer. */
class Driver {
  now: number;
  readonly m: PathMachine;
  /** Endpoints that answer probes, with the RTT of the answer. Tests change it over time. */
  readonly reachable = new Map<string, number>();
  readonly probes: Probe[] = [];
  readonly repunches: number[] = [];
  readonly events: Ev[] = [];
  /** `[time, route]` after every step, to check make-before-break. */
  readonly routes: [number, string | null][] = [];
  /** Replies in flight. */
  readonly replies: { at: number; from: Endpoint; txid: number }[] = [];
  /** Extra `handleTimeout` calls every `tick` ms (the client calls it for other reasons too). */
  tick: number | undefined;
  steps = 0;

  constructor(
    now: number,
    candidates: Candidate[],
    opts: { relayOnly?: boolean; initiator?: boolean; options?: Partial<PathOptions> } = {},
    reachable: [Endpoint, number][] = [],
  ) {
    this.now = now;
    for (const [e, rtt] of reachable) this.reachable.set(key(e), rtt);
    this.m = new PathMachine(now, candidates, {
      relayOnly: opts.relayOnly ?? false,
      initiator: opts.initiator ?? true,
      options: {
        firstProbeInterval: O.firstProbeInterval,
        unprovenPerMinute: O.unprovenPerMinute,
        unprovenBurst: O.unprovenBurst,
        ...opts.options,
      },
    });
    this.drain();
  }

  /** Takes all actions and events; answers probes to reachable endpoints. */
  drain(): void {
    for (let a = this.m.pollAction(); a; a = this.m.pollAction()) {
      if (a.type === "repunch") {
        this.repunches.push(this.now);
        continue;
      }
      this.probes.push({ at: this.now, to: key(a.to), txid: a.txid });
      const rtt = this.reachable.get(key(a.to));
      if (rtt !== undefined) this.replies.push({ at: this.now + rtt, from: a.to, txid: a.txid });
    }
    for (let e = this.m.pollEvent(); e; e = this.m.pollEvent()) {
      this.events.push({
        at: this.now,
        path: e.path,
        addr: e.addr && key(e.addr),
        kind: e.kind,
        rtt: e.rtt,
      });
    }
    const r = this.m.route();
    this.routes.push([this.now, r && key(r)]);
  }

  /** Runs the machine and the remote until `t` (inclusive), then sets the clock to `t`. */
  runUntil(t: number): void {
    assert.ok(t >= this.now, "virtual time never goes backwards");
    for (;;) {
      assert.ok(++this.steps < 100_000, "the machine does not make progress");
      const nt = this.m.nextTimeout();
      if (nt !== undefined) {
        assert.ok(nt >= this.now, `nextTimeout() ${nt} is in the past (now ${this.now})`);
      }
      const candidates = [nt, ...this.replies.map((r) => r.at)];
      if (this.tick !== undefined) candidates.push(this.now + this.tick);
      const due = candidates.filter((x): x is number => x !== undefined);
      if (due.length === 0) break;
      const next = Math.min(...due);
      if (next > t) break;
      this.now = next;
      this.replies.sort((a, b) => a.at - b.at);
      while (this.replies.length > 0 && this.replies[0]!.at <= this.now) {
        const r = this.replies.shift()!;
        this.m.onProbeAck(this.now, r.from, r.txid);
        this.drain();
      }
      const nt2 = this.m.nextTimeout();
      if ((nt2 !== undefined && nt2 <= this.now) || this.tick !== undefined) {
        this.m.handleTimeout(this.now);
        this.drain();
        const after = this.m.nextTimeout();
        assert.ok(
          after === undefined || after > this.now,
          `handleTimeout(${this.now}) made no progress: nextTimeout() is ${after}`,
        );
      }
    }
    this.now = t;
  }

  /** Does something to the machine at the current time, then drains. */
  act(f: (m: PathMachine, now: number) => void): void {
    f(this.m, this.now);
    this.drain();
  }

  probesTo(e: Endpoint, from = -Infinity, to = Infinity): Probe[] {
    return this.probes.filter((p) => p.to === key(e) && p.at >= from && p.at <= to);
  }

  probesBetween(from: number, to: number): Probe[] {
    return this.probes.filter((p) => p.at >= from && p.at <= to);
  }

  /** Start times of probe bursts: a probe with no probe within the preceding interval. */
  roundStarts(interval: number): number[] {
    const times = [...new Set(this.probes.map((p) => p.at))].sort((a, b) => a - b);
    return times.filter((t, i) => i === 0 || t - times[i - 1]! > interval);
  }
}

/** Probe times of one round from `start` until `end`: gaps double from firstProbeInterval. */
function probeTimes(
  start: number,
  end: number,
  o: { firstProbeInterval: number; probeInterval: number },
): number[] {
  const out: number[] = [];
  for (
    let t = start, k = 0;
    t < end;
    t += Math.min(o.firstProbeInterval * 2 ** k++, o.probeInterval)
  ) {
    out.push(t);
  }
  return out;
}

Deno.test("path: punch success — the first event is `direct` with the answering endpoint and its RTT", () => {
  // Both answer; the slower reply of an equally ranked candidate must not move the path.
  const d = new Driver(1_000, [cand(PUB, "public"), cand(OTHER, "public")], {}, [
    [PUB, 40],
    [OTHER, 60],
  ]);
  assert.equal(d.m.state, "punching");
  assert.equal(d.m.route(), null, "data goes via the relay while punching");
  assert.equal(d.m.rtt, null);
  // Every candidate is probed at once.
  assert.deepEqual(d.probes.map((p) => [p.at, p.to]), [[1_000, key(PUB)], [1_000, key(OTHER)]]);
  assert.equal(new Set(d.probes.map((p) => p.txid)).size, 2, "txids are distinct");
  assert.deepEqual(d.events, []);
  d.runUntil(1_039);
  assert.deepEqual(d.events, []);
  assert.equal(d.m.route(), null);
  d.runUntil(5_000);
  assert.deepEqual(d.events[0], {
    at: 1_040,
    path: "direct",
    addr: key(PUB),
    kind: "public",
    rtt: 40,
  });
  assert.equal(d.events.length, 1, "no relay event or second switch after a successful punch");
  assert.equal(d.m.state, "direct");
  assert.deepEqual(d.m.route(), PUB);
  assert.equal(d.m.rtt, 40);
  // Before the reply, route() was null at every step.
  for (const [t, r] of d.routes) assert.equal(r, t < 1_040 ? null : key(PUB), `route at ${t}`);
  assert.deepEqual(d.repunches, []);
});

Deno.test("path: no answers — `relay` at punchTimeout, probes on a doubling schedule, route() null meanwhile", () => {
  for (const options of [{}, { punchTimeout: 2_000, probeInterval: 250 }]) {
    const o = { ...O, ...options };
    const d = new Driver(0, [cand(PRIV, "private"), cand(PUB, "public")], { options });
    d.runUntil(o.punchTimeout - 1);
    assert.deepEqual(d.events, []);
    assert.equal(d.m.state, "punching");
    for (const [, r] of d.routes) assert.equal(r, null);
    d.runUntil(o.punchTimeout);
    assert.deepEqual(d.events, [{
      at: o.punchTimeout,
      path: "relay",
      addr: null,
      kind: null,
      rtt: null,
    }]);
    assert.equal(d.m.state, "relay");
    assert.equal(d.m.route(), null);
    // Probes to every candidate at 0, then with doubling gaps capped at probeInterval.
    const expected = probeTimes(0, o.punchTimeout, o);
    assert.deepEqual(d.probesTo(PRIV).map((p) => p.at), expected);
    assert.deepEqual(d.probesTo(PUB).map((p) => p.at), expected);
    // No repunch for the first round: the introduction already coordinated it.
    assert.deepEqual(d.repunches, []);
  }
});

Deno.test("path: no candidates or relayOnly — `relay` at once and never a probe", () => {
  const cases: [string, Candidate[], boolean][] = [
    ["no candidates", [], false],
    ["relayOnly", [cand(PRIV, "private"), cand(PUB, "public")], true],
  ];
  for (const [label, candidates, relayOnly] of cases) {
    const d = new Driver(500, candidates, { relayOnly }, [[PRIV, 5], [PUB, 10], [REFL, 10]]);
    assert.deepEqual(d.events, [{ at: 500, path: "relay", addr: null, kind: null, rtt: null }]);
    assert.equal(d.m.state, "relay", label);
    assert.equal(d.m.route(), null, label);
    assert.equal(d.m.nextTimeout(), undefined, `${label}: nothing to do`);
    d.runUntil(200_000);
    assert.deepEqual(d.probes, [], label);
    assert.deepEqual(d.repunches, [], label);
    assert.equal(d.events.length, 1, label);
  }
  // relayOnly ignores everything that could lead to a direct path.
  const d = new Driver(0, [cand(PUB, "public")], { relayOnly: true }, [[PUB, 10]]);
  d.act((m, now) => m.onProbe(now, REFL));
  d.act((m, now) => m.updateCandidates(now, [cand(PRIV, "private")]));
  d.act((m, now) => m.onProbeAck(now, PUB, 1));
  d.act((m, now) => m.suspect(now));
  d.runUntil(100_000);
  assert.deepEqual(d.probes, []);
  assert.deepEqual(d.m.candidates, []);
  assert.equal(d.m.route(), null);
  assert.equal(d.events.length, 1);
});

Deno.test("path: no candidates at first, then an introduction with candidates starts a round", () => {
  const d = new Driver(0, [], {}, [[PUB, 25]]);
  assert.equal(d.m.state, "relay");
  d.runUntil(1_000);
  d.act((m, now) => m.updateCandidates(now, [cand(PUB, "public")]));
  assert.deepEqual(d.probes.map((p) => [p.at, p.to]), [[1_000, key(PUB)]]);
  d.runUntil(2_000);
  assert.deepEqual(d.events.map((e) => [e.at, e.path, e.addr]), [
    [0, "relay", null],
    [1_025, "direct", key(PUB)],
  ]);
});

Deno.test("path: background rounds on the relay back off from retryMin, doubling up to retryMax", () => {
  for (const options of [{}, { retryMin: 1_000, retryMax: 5_000, roundLength: 1_000 }]) {
    const o = { ...O, ...options };
    const d = new Driver(0, [cand(PUB, "public")], { options });
    d.runUntil(400_000);
    assert.equal(d.events.length, 1);
    assert.equal(d.events[0]!.path, "relay");
    const relayAt = d.events[0]!.at;
    assert.equal(relayAt, o.punchTimeout);
    const starts = d.roundStarts(o.probeInterval).filter((t) => t > relayAt);
    assert.ok(starts.length >= 6, `too few background rounds: ${starts}`);
    // The initiator asks the server to re-introduce both sides at every background round.
    assert.deepEqual(d.repunches, starts);
    // Each round lasts roundLength, probes spaced as in the first round.
    for (const s of starts) {
      const inRound = d.probesBetween(s, s + o.roundLength).map((p) => p.at);
      assert.deepEqual(inRound, probeTimes(s, s + o.roundLength, o), `round at ${s}`);
    }
    // Spacing between the end of one round and the start of the next.
    const gaps = [starts[0]! - relayAt];
    for (let i = 1; i < starts.length; i++) gaps.push(starts[i]! - starts[i - 1]! - o.roundLength);
    assert.equal(gaps[0], o.retryMin);
    for (let i = 1; i < gaps.length; i++) {
      assert.equal(gaps[i], Math.min(gaps[i - 1]! * 2, o.retryMax), `gaps ${gaps}`);
    }
    assert.equal(gaps.at(-1), o.retryMax, `spacing must reach retryMax: ${gaps}`);
    for (const [, r] of d.routes) assert.equal(r, null);
  }
});

Deno.test("path: upgrade from relay — a background round's reply switches to direct (make-before-break)", () => {
  const d = new Driver(0, [cand(PUB, "public")]);
  d.runUntil(20_000);
  assert.equal(d.m.state, "relay");
  const before = d.probes.length;
  d.reachable.set(key(PUB), 30);
  // Background rounds start at 5 000, 12 000, 23 000 (after 2 s, 4 s, 8 s of spacing).
  d.runUntil(22_999);
  assert.equal(d.probes.length, before, "no probes between rounds");
  assert.equal(d.m.route(), null);
  d.runUntil(60_000);
  assert.deepEqual(d.probesTo(PUB, 20_000).map((p) => p.at).slice(0, 1), [23_000]);
  assert.deepEqual(d.events.map((e) => [e.at, e.path, e.addr, e.rtt]), [
    [3_000, "relay", null, null],
    [23_030, "direct", key(PUB), 30],
  ]);
  for (const [t, r] of d.routes) assert.equal(r, t < 23_030 ? null : key(PUB), `route at ${t}`);
  // The round stopped with the switch; no more background rounds.
  assert.deepEqual(d.repunches, [5_000, 12_000, 23_000]);
  assert.deepEqual(d.probesBetween(23_001, 23_030 + O.keepalive - 1), []);
});

Deno.test("path: a private candidate is preferred over a public one when both answer", () => {
  // Private answers first: selected at once; the public reply that follows changes nothing.
  {
    const d = new Driver(0, [cand(PUB, "public"), cand(PRIV, "private")], {}, [
      [PRIV, 10],
      [PUB, 50],
    ]);
    d.runUntil(10_000);
    assert.deepEqual(d.events.map((e) => [e.at, e.path, e.addr, e.kind]), [
      [10, "direct", key(PRIV), "private"],
    ]);
    assert.deepEqual(d.m.route(), PRIV);
    assert.equal(d.m.rtt, 10);
    // Nothing can beat a private candidate: the round stops.
    assert.deepEqual(d.probesBetween(1, 9_999), []);
  }
  // Public answers first, private later in the same round: upgrade to private.
  {
    const d = new Driver(0, [cand(PUB, "public"), cand(PRIV, "private")], {}, [
      [PRIV, 50],
      [PUB, 10],
    ]);
    d.runUntil(10_000);
    assert.deepEqual(d.events.map((e) => [e.at, e.path, e.addr, e.kind, e.rtt]), [
      [10, "direct", key(PUB), "public", 10],
      [50, "direct", key(PRIV), "private", 50],
    ]);
    assert.deepEqual(d.m.route(), PRIV);
  }
});

Deno.test("path: upgrade from public to private when the private candidate answers later in the round", () => {
  const d = new Driver(0, [cand(PRIV, "private"), cand(PUB, "public")], {}, [[PUB, 20]]);
  d.runUntil(999);
  assert.deepEqual(d.events.map((e) => [e.at, e.addr]), [[20, key(PUB)]]);
  // While direct on the public endpoint, the round keeps probing only better candidates.
  const later = d.probesBetween(21, 999);
  assert.ok(later.length > 0, "the round continues for the private candidate");
  assert.ok(later.every((p) => p.to === key(PRIV)), "the public endpoint is not re-probed");
  d.reachable.set(key(PRIV), 3);
  d.runUntil(10_000);
  assert.deepEqual(d.events.map((e) => [e.at, e.path, e.addr, e.kind]), [
    [20, "direct", key(PUB), "public"],
    [1_003, "direct", key(PRIV), "private"],
  ]);
  assert.deepEqual(d.m.route(), PRIV);
  assert.deepEqual(d.probesBetween(1_004, 9_999), [], "round over after the best candidate");
  for (const [t, r] of d.routes) if (t >= 20) assert.notEqual(r, null, `never relay at ${t}`);

  // If the private candidate never answers, the round ends quietly and the public path stays.
  const e = new Driver(0, [cand(PRIV, "private"), cand(PUB, "public")], {}, [[PUB, 20]]);
  e.runUntil(20_000);
  assert.equal(e.events.length, 1);
  assert.deepEqual(e.m.route(), PUB);
  assert.equal(e.probesTo(PRIV, O.punchTimeout).length, 0, "no private probes after the round");
});

Deno.test("path: keepalive probes the selected endpoint after `keepalive` ms without sending", () => {
  for (const options of [{}, { keepalive: 5_000 }]) {
    const o = { ...O, ...options };
    const d = new Driver(0, [cand(PUB, "public")], { options }, [[PUB, 40]]);
    d.runUntil(40);
    assert.equal(d.m.state, "direct");
    assert.equal(d.m.nextTimeout(), 40 + o.keepalive);
    d.runUntil(40 + o.keepalive - 1);
    assert.deepEqual(d.probesBetween(1, 40 + o.keepalive - 1), []);
    d.reachable.set(key(PUB), 60);
    d.runUntil(40 + o.keepalive + 100);
    assert.deepEqual(d.probesBetween(1, Infinity).map((p) => [p.at, p.to]), [
      [40 + o.keepalive, key(PUB)],
    ]);
    // The reply refreshes the RTT (smoothed 3:1) without an event.
    assert.equal(d.m.rtt, 45);
    assert.equal(d.events.length, 1);
    // The probe itself counts as sending: the next keepalive is one interval later.
    d.runUntil(40 + 3 * o.keepalive);
    assert.deepEqual(d.probesBetween(1, Infinity).map((p) => p.at), [
      40 + o.keepalive,
      40 + 2 * o.keepalive,
      40 + 3 * o.keepalive,
    ]);
    assert.equal(d.events.length, 1, "answered keepalives never change the path");
  }
});

Deno.test("path: onSentDirect postpones the keepalive", () => {
  const d = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 40]]);
  d.runUntil(10_000);
  d.act((m, now) => m.onSentDirect(now));
  assert.equal(d.m.nextTimeout(), 10_000 + O.keepalive);
  d.runUntil(10_000 + O.keepalive - 1);
  assert.deepEqual(d.probesBetween(1, Infinity), [], "no keepalive while traffic flows");
  d.runUntil(10_000 + O.keepalive);
  assert.deepEqual(d.probesBetween(1, Infinity).map((p) => [p.at, p.to]), [
    [10_000 + O.keepalive, key(PUB)],
  ]);
});

for (const initiator of [true, false]) {
  Deno.test(`path: unanswered keepalive → relay after deadAfter, repunch and a new round (initiator: ${initiator})`, () => {
    const d = new Driver(0, [cand(PUB, "public")], { initiator }, [[PUB, 40]]);
    d.runUntil(1_000);
    d.reachable.delete(key(PUB));
    const k = 40 + O.keepalive;
    d.runUntil(k + O.deadAfter - 1);
    assert.equal(d.m.state, "direct");
    assert.deepEqual(d.m.route(), PUB);
    // Liveness probes every livenessInterval while the reply is awaited.
    const live: number[] = [];
    for (let t = k; t < k + O.deadAfter; t += O.livenessInterval) live.push(t);
    assert.deepEqual(d.probesBetween(1, Infinity).map((p) => p.at), live);
    d.runUntil(k + O.deadAfter);
    assert.deepEqual(d.events.map((e) => [e.at, e.path]), [[40, "direct"], [
      k + O.deadAfter,
      "relay",
    ]]);
    assert.equal(d.m.route(), null);
    // Both sides ask for a coordinated re-introduction when the path dies.
    assert.deepEqual(d.repunches, [k + O.deadAfter]);
    assert.deepEqual(d.probesTo(PUB, k + O.deadAfter).map((p) => p.at), [k + O.deadAfter]);
    // The new round runs roundLength; the next one comes retryMin later (backoff was reset).
    d.runUntil(k + O.deadAfter + O.roundLength + O.retryMin + 1);
    const starts = d.roundStarts(O.probeInterval).filter((t) => t >= k + O.deadAfter);
    assert.deepEqual(starts, [k + O.deadAfter, k + O.deadAfter + O.roundLength + O.retryMin]);
  });
}

Deno.test("path: suspect() checks liveness at once; unanswered → relay after deadAfter", () => {
  const d = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 40]]);
  d.runUntil(5_000);
  d.reachable.delete(key(PUB));
  d.act((m, now) => m.suspect(now));
  assert.deepEqual(d.probesBetween(1, Infinity).map((p) => [p.at, p.to]), [[5_000, key(PUB)]]);
  // A second suspicion while one is pending adds nothing.
  d.runUntil(5_100);
  d.act((m, now) => m.suspect(now));
  assert.equal(d.probesBetween(1, Infinity).length, 1);
  d.runUntil(7_999);
  assert.equal(d.m.state, "direct");
  d.runUntil(8_000);
  assert.equal(d.events.at(-1)!.path, "relay");
  assert.equal(d.events.at(-1)!.at, 5_000 + O.deadAfter);
  assert.deepEqual(d.repunches, [8_000]);
  // suspect() on the relay does nothing.
  d.runUntil(8_050);
  const n = d.probes.length;
  d.act((m, now) => m.suspect(now));
  assert.equal(d.probes.length, n);
  assert.equal(d.m.state, "relay");
});

Deno.test("path: an answered suspicion keeps the direct path", () => {
  const d = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 40]]);
  d.runUntil(5_000);
  d.reachable.set(key(PUB), 80);
  d.act((m, now) => m.suspect(now));
  d.runUntil(20_000);
  assert.equal(d.events.length, 1);
  assert.deepEqual(d.m.route(), PUB);
  assert.equal(d.m.rtt, 50, "0.75 * 40 + 0.25 * 80");
  assert.deepEqual(d.probesBetween(1, 20_000).map((p) => p.at), [5_000]);
});

Deno.test("path: onDirectTraffic from the selected endpoint cancels a pending liveness failure", () => {
  const d = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 40]]);
  d.runUntil(5_000);
  d.reachable.delete(key(PUB));
  d.act((m, now) => m.suspect(now));
  d.runUntil(6_900);
  d.act((m, now) => m.onDirectTraffic(now, PUB));
  d.runUntil(20_000);
  assert.equal(d.events.length, 1, "no relay event");
  assert.deepEqual(d.m.route(), PUB);
  // Liveness probes stopped with the traffic (the last went out at 6 500).
  assert.deepEqual(d.probesBetween(1, 20_000).map((p) => p.at), [5_000, 5_500, 6_000, 6_500]);
  assert.equal(d.m.nextTimeout(), 6_500 + O.keepalive);

  // Traffic from some other endpoint proves nothing about the selected path.
  const e = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 40]]);
  e.runUntil(5_000);
  e.reachable.delete(key(PUB));
  e.act((m, now) => m.suspect(now));
  e.runUntil(6_900);
  e.act((m, now) => m.onDirectTraffic(now, OTHER));
  e.runUntil(20_000);
  assert.deepEqual(e.events.map((x) => [x.at, x.path]), [[40, "direct"], [8_000, "relay"]]);
});

Deno.test("path: onProbe from an unknown endpoint adds a reflexive candidate and triggers a check on the relay", () => {
  const d = new Driver(0, [cand(PUB, "public")], { initiator: false }, [[REFL, 20]]);
  d.runUntil(4_000); // relay since 3 000; the next background round would start at 5 000
  assert.equal(d.m.state, "relay");
  d.act((m, now) => m.onProbe(now, REFL));
  assert.deepEqual(d.m.candidates.map((c) => [key(c.addr), c.kind]), [
    [key(PUB), "public"],
    [key(REFL), "reflexive"],
  ]);
  assert.deepEqual(
    d.probesBetween(4_000, 4_000).map((p) => p.to).sort(),
    [key(PUB), key(REFL)].sort(),
  );
  d.runUntil(10_000);
  assert.deepEqual(d.events.map((e) => [e.at, e.path, e.addr, e.kind, e.rtt]), [
    [3_000, "relay", null, null, null],
    [4_020, "direct", key(REFL), "reflexive", 20],
  ]);
  assert.deepEqual(d.repunches, []);
});

Deno.test("path: onProbe while punching probes the new endpoint at once; while direct it starts nothing", () => {
  const d = new Driver(0, [cand(PUB, "public")]);
  d.runUntil(100);
  d.act((m, now) => m.onProbe(now, REFL));
  assert.deepEqual(d.probesBetween(100, 100).map((p) => p.to), [key(REFL)]);
  d.runUntil(200);
  assert.deepEqual(d.probesBetween(200, 200).map((p) => p.to).sort(), [key(PUB), key(REFL)].sort());
  // A probe from a known endpoint adds nothing.
  d.act((m, now) => m.onProbe(now, PUB));
  assert.equal(d.m.candidates.length, 2);

  const e = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 10]]);
  e.runUntil(1_000);
  assert.equal(e.m.state, "direct");
  const n = e.probes.length;
  e.act((m, now) => m.onProbe(now, REFL));
  assert.ok(e.m.candidates.some((c) => key(c.addr) === key(REFL) && c.kind === "reflexive"));
  e.runUntil(5_000);
  assert.equal(e.probes.length, n, "no round while direct");
  assert.deepEqual(e.m.route(), PUB);
  // A probe from the selected endpoint counts as traffic: it answers a pending suspicion.
  e.reachable.delete(key(PUB));
  e.act((m, now) => m.suspect(now));
  e.runUntil(6_000);
  e.act((m, now) => m.onProbe(now, PUB));
  e.runUntil(30_000);
  assert.equal(e.events.length, 1);
});

Deno.test("path: onProbe from a known candidate on the relay between rounds starts a round", () => {
  const d = new Driver(0, [cand(PUB, "public")], {}, []);
  d.runUntil(4_000);
  d.reachable.set(key(PUB), 15);
  d.act((m, now) => m.onProbe(now, PUB));
  assert.deepEqual(d.probesBetween(4_000, 4_000).map((p) => p.to), [key(PUB)]);
  d.runUntil(4_015);
  assert.equal(d.events.at(-1)!.path, "direct");
  assert.deepEqual(d.repunches, [], "a triggered check needs no repunch");
});

Deno.test("path: only the initiator emits repunch for background rounds; both probe alike", () => {
  const run = (initiator: boolean) => {
    const d = new Driver(0, [cand(PRIV, "private"), cand(PUB, "public")], { initiator });
    d.runUntil(100_000);
    return d;
  };
  const a = run(true), b = run(false);
  assert.ok(a.repunches.length >= 4);
  assert.deepEqual(a.repunches, a.roundStarts(O.probeInterval).filter((t) => t > 0));
  assert.deepEqual(b.repunches, []);
  assert.deepEqual(a.probes.map((p) => [p.at, p.to]), b.probes.map((p) => [p.at, p.to]));
  assert.deepEqual(a.events, b.events);
});

Deno.test("path: updateCandidates with the selected endpoint still present leaves the path alone", () => {
  const d = new Driver(0, [cand(PRIV, "private"), cand(PUB, "public")], {}, [[PUB, 20]]);
  d.runUntil(10_000);
  d.act((m, now) => m.onProbe(now, REFL));
  const n = d.probes.length;
  const nt = d.m.nextTimeout();
  d.act((m, now) =>
    m.updateCandidates(now, [cand(PUB, "public"), cand(ep("192.168.1.21", 1), "private")])
  );
  assert.equal(d.probes.length, n, "no probes");
  assert.equal(d.m.nextTimeout(), nt, "no timers");
  assert.equal(d.events.length, 1);
  assert.deepEqual(d.m.route(), PUB);
  assert.ok(d.m.candidates.some((c) => key(c.addr) === key(REFL)), "reflexive ones are kept");
  assert.ok(!d.m.candidates.some((c) => key(c.addr) === key(PRIV)), "replaced by the new list");
});

Deno.test("path: updateCandidates without the selected endpoint checks liveness; dead → relay", () => {
  const d = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 20]]);
  d.runUntil(10_000);
  d.reachable.delete(key(PUB));
  d.act((m, now) => m.updateCandidates(now, [cand(PUB2, "public")]));
  assert.ok(d.probesTo(PUB, 10_000, 10_000).length === 1, "liveness probe to the selected one");
  d.runUntil(10_000 + O.deadAfter);
  assert.deepEqual(d.events.map((e) => [e.at, e.path]), [[20, "direct"], [13_000, "relay"]]);
  assert.deepEqual(d.repunches, [13_000]);
  assert.ok(d.probesTo(PUB2, 13_000, 13_000).length === 1, "the new round probes the new list");

  // The selected endpoint still answers: the path stays.
  const e = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 20]]);
  e.runUntil(10_000);
  e.act((m, now) => m.updateCandidates(now, [cand(PUB2, "public")]));
  e.runUntil(30_000);
  assert.equal(e.events.length, 1);
  assert.deepEqual(e.m.route(), PUB);
});

Deno.test("path: updateCandidates without the selected endpoint punches the new candidates before the old path dies", () => {
  // The peer's NAT rebound: its public endpoint moved from PUB to PUB2. The documented punch
  // round should probe PUB2 while PUB is being checked, so the path moves over without a
  // detour through the relay.
  const d = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 20], [PUB2, 20]]);
  d.runUntil(10_000);
  d.reachable.delete(key(PUB));
  d.act((m, now) => m.updateCandidates(now, [cand(PUB2, "public")]));
  d.runUntil(10_000 + O.deadAfter - 1);
  assert.ok(
    d.probesTo(PUB2, 10_000).length > 0,
    "no probe went to the new candidate before the old path was declared dead",
  );
  assert.deepEqual(d.m.route(), PUB2);
  assert.ok(!d.events.some((e) => e.path === "relay"));
});

Deno.test("path: stale, duplicate and unknown txid acks are ignored", () => {
  // Unknown txid while punching.
  const d = new Driver(0, [cand(PUB, "public")]);
  const maxTxid = Math.max(...d.probes.map((p) => p.txid));
  d.act((m, now) => m.onProbeAck(now + 10, PUB, maxTxid + 1000));
  assert.deepEqual(d.events, []);
  assert.equal(d.m.state, "punching");

  // A duplicate of an already consumed reply does not count as a new RTT sample.
  const e = new Driver(0, [cand(PUB, "public")], {}, [[PUB, 40]]);
  e.runUntil(1_000);
  const first = e.probes[0]!;
  e.act((m, now) => m.onProbeAck(now, PUB, first.txid));
  assert.equal(e.m.rtt, 40);
  e.act((m, now) => m.suspect(now));
  const live = e.probes.at(-1)!;
  e.runUntil(1_040);
  assert.equal(e.m.rtt, 40);
  e.runUntil(1_500);
  e.act((m, now) => m.onProbeAck(now, PUB, live.txid));
  assert.equal(e.m.rtt, 40, "a replayed txid must not update the RTT");

  // A reply to a probe older than 10 s is ignored; a fresh one is not.
  const f = new Driver(0, [cand(PUB, "public")]);
  f.runUntil(12_000); // relay since 3 000, a background round started at 12 000
  assert.equal(f.m.state, "relay");
  const old = f.probes[0]!;
  const fresh = f.probes.at(-1)!;
  assert.equal(fresh.at, 12_000);
  f.act((m, now) => m.onProbeAck(now + 1, PUB, old.txid));
  assert.equal(f.m.state, "relay", "a stale reply must not select a path");
  assert.equal(f.events.length, 1);
  f.act((m, now) => m.onProbeAck(now + 5, PUB, fresh.txid));
  assert.equal(f.m.state, "direct");
  assert.equal(f.events.at(-1)!.rtt, 5);
});

Deno.test("path: extra handleTimeout calls at arbitrary times change nothing", () => {
  const script = (tick: number | undefined) => {
    const d = new Driver(0, [cand(PRIV, "private"), cand(PUB, "public")], {}, []);
    d.tick = tick;
    d.runUntil(9_000);
    d.reachable.set(key(PUB), 30);
    d.runUntil(13_000);
    d.reachable.set(key(PRIV), 4);
    d.runUntil(40_000);
    d.reachable.clear();
    d.runUntil(80_000);
    d.act((m, now) => m.onProbe(now, REFL));
    d.reachable.set(key(REFL), 7);
    d.runUntil(120_000);
    return d;
  };
  const base = script(undefined);
  assert.ok(base.events.length >= 4, `the script should change paths: ${base.events.length}`);
  for (const tick of [37, 250, 1_001]) {
    const d = script(tick);
    assert.deepEqual(d.events, base.events, `events with tick ${tick}`);
    assert.deepEqual(d.probes, base.probes, `probes with tick ${tick}`);
    assert.deepEqual(d.repunches, base.repunches, `repunches with tick ${tick}`);
  }
});

Deno.test("path: default schedule probes at 0, 25, 75, 175, 375 ms, then every 200 ms", () => {
  const d = new Driver(0, [cand(PUB, "public")], {
    options: { firstProbeInterval: DEFAULT_PATH.firstProbeInterval },
  });
  d.runUntil(1_000);
  assert.deepEqual(d.probesTo(PUB).map((p) => p.at), [0, 25, 75, 175, 375, 575, 775, 975]);
  // With a 10 ms RTT the first probe's reply selects the path before a second probe is due.
  const e = new Driver(0, [cand(PUB, "public")], {
    options: { firstProbeInterval: DEFAULT_PATH.firstProbeInterval },
  }, [[PUB, 10]]);
  e.runUntil(100);
  assert.equal(e.events[0]?.path, "direct");
  assert.equal(e.events[0]?.at, 10);
  assert.deepEqual(e.probesTo(PUB).map((p) => p.at), [0]);
});

Deno.test("path: peer-reflexive candidates are capped at the newest four", () => {
  const d = new Driver(0, [cand(PUB, "public")]);
  for (let i = 0; i < 10; i++) d.act((m, now) => m.onProbe(now, ep("198.51.100.9", 2000 + i)));
  const reflexive = d.m.candidates.filter((c) => c.kind === "reflexive").map((c) => c.addr.port);
  assert.deepEqual(reflexive, [2006, 2007, 2008, 2009]);
  assert.ok(d.m.candidates.some((c) => c.kind === "public"), "introduced candidates stay");
});

Deno.test("path: probes to endpoints that never answer are budgeted in rate and total", () => {
  // A member advertises many third-party addresses; we keep re-punching (upgrade rounds,
  // repunches) for ten minutes. Without the budget that is hundreds of probes each.
  const victims = Array.from({ length: 8 }, (_, i) => ep(`198.51.100.${i + 1}`, 9000 + i));
  const d = new Driver(0, victims.map((addr) => ({ addr, kind: "private" as const })), {
    initiator: true,
    options: {
      retryMax: 2_000,
      unprovenPerMinute: DEFAULT_PATH.unprovenPerMinute,
      unprovenBurst: DEFAULT_PATH.unprovenBurst,
    },
  });
  for (let t = 0; t < 600_000; t += 1_000) {
    d.runUntil(t);
    d.m.updateCandidates(t, victims.map((addr) => ({ addr, kind: "private" as const })));
  }
  d.runUntil(600_000);
  const total = d.probes.length;
  // Per endpoint at most unprovenPerMinute a minute; overall the burst plus one a second.
  for (const v of victims) {
    const n = d.probesTo(v).length;
    assert.ok(n <= DEFAULT_PATH.unprovenPerMinute * 11, `${key(v)} got ${n} probes`);
  }
  assert.ok(total <= DEFAULT_PATH.unprovenBurst + 600 + 1, `${total} probes in 10 minutes`);
  assert.ok(d.m.throttled > 0, "the budget held probes back");
  // An endpoint that answers is not budgeted: a live path's keepalives never stop.
  const ok = new Driver(0, [{ addr: PUB, kind: "public" }], {
    options: {
      unprovenPerMinute: DEFAULT_PATH.unprovenPerMinute,
      unprovenBurst: DEFAULT_PATH.unprovenBurst,
    },
  }, [[PUB, 20]]);
  ok.runUntil(600_000);
  assert.equal(ok.m.throttled, 0);
  assert.equal(ok.m.route() && key(ok.m.route()!), key(PUB));
});

Deno.test("path: one probe budget shared by many machines bounds the whole client", () => {
  // A member re-joining under fresh ids gets a fresh path machine each time; with a shared
  // budget the victims still see no more than one budget's worth.
  const victims = Array.from({ length: 4 }, (_, i) => ep(`198.51.100.${i + 1}`, 9000 + i));
  const budget = new ProbeBudget(DEFAULT_PATH);
  let sent = 0;
  for (let k = 0; k < 20; k++) {
    const m = new PathMachine(
      k * 3_000,
      victims.map((addr) => ({ addr, kind: "private" as const })),
      {
        relayOnly: false,
        initiator: true,
        options: { unprovenPerMinute: 20, unprovenBurst: 60 },
        budget,
      },
    );
    for (let t = k * 3_000; t <= k * 3_000 + 3_000; t += 25) {
      m.handleTimeout(t);
      for (let a = m.pollAction(); a; a = m.pollAction()) if (a.type === "probe") sent++;
    }
  }
  assert.ok(sent <= 60 + 60 + 1, `${sent} probes in a minute from 20 fresh machines`);
  assert.ok(budget.throttled > 0);
});

Deno.test("path: candidates the peer tells us start a round, survive re-introductions, are capped", () => {
  const d = new Driver(0, [cand(PRIV, "private")], {}, [[PUB2, 30]]);
  d.runUntil(5_000);
  assert.equal(d.m.state, "relay", "the private address does not answer");
  d.m.addCandidates(d.now, [PUB2, PUB2]);
  d.runUntil(5_500);
  assert.equal(d.m.route() && key(d.m.route()!), key(PUB2), "the told address answers: direct");
  d.m.updateCandidates(d.now, [cand(PRIV, "private")]);
  assert.ok(d.m.candidates.some((c) => key(c.addr) === key(PUB2)), "kept on re-introduction");
  const many = Array.from({ length: 10 }, (_, i) => ep(`198.51.100.${i + 1}`, 4000));
  d.m.addCandidates(d.now, many);
  assert.ok(d.m.candidates.length <= 1 + 4 + 4, `${d.m.candidates.length} candidates`);
});

Deno.test("path: a probe's reply from another address proves nothing by itself; that address is probed", () => {
  // A captured (or remapped) reply to the probe sent to PUB arrives from SPOOF: SPOOF must not
  // become the direct path (everything would go there) before it answers a probe of its own.
  const SPOOF: Endpoint = { hostname: "192.0.2.99", port: 9999 };
  const d = new Driver(0, [cand(PUB, "public")]);
  const probe = d.probesTo(PUB)[0]!;
  d.act((m, now) => m.onProbeAck(now + 10, SPOOF, probe.txid));
  assert.equal(d.m.state, "punching", "not direct on a reply from elsewhere");
  assert.ok(!d.m.proven(SPOOF));
  assert.deepEqual(d.m.route(), null);
  assert.ok(d.probesTo(SPOOF).length > 0, "the other address gets a probe of its own");
  // Its own reply proves it.
  const own = d.probesTo(SPOOF)[0]!;
  d.act((m, now) => m.onProbeAck(now + 20, SPOOF, own.txid));
  assert.equal(d.m.state, "direct");
  assert.ok(d.m.proven(SPOOF));
});
