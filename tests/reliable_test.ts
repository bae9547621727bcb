/**
 * Deterministic tests of {@link ReliableChannel}, driven with virtual time.
 *
 * A tiny simulator connects two channels through a link that loses, duplicates and delays
 * (hence reorders) DATA and ACK frames in both directions, using a seeded PRNG. Time jumps
 * to the earliest of the channels' `nextTimeout()`s, scheduled deliveries and scheduled
 * pushes. Focused tests then pin down retransmission backoff, Karn's rule, the window,
 * `expedite`, duplicates, selective acknowledgement and the receive buffer limit.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  DEFAULT_RELIABLE,
  type OutAck,
  type OutData,
  ReliableChannel,
  type ReliableOptions,
} from "../lib/reliable.ts";
import { prng } from "./support/prng.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

type Side = "A" | "B";
type Frame =
  | { kind: "data"; seq: number; more: boolean; text: Uint8Array; retransmit: boolean }
  | { kind: "ack"; ack: OutAck };

interface LinkOptions {
  /** Probability that a frame is lost. */
  loss: number;
  /** Probability that a delivered frame is delivered twice. */
  dup: number;
  /** Smallest one-way delay in ms (at least 1). */
  minDelay: number;
  /** Largest one-way delay in ms; a spread reorders frames. */
  maxDelay: number;
  /** Scripted drop on top of random loss: return true to lose this frame. */
  drop?: (from: Side, frame: Frame, now: number) => boolean;
}

interface SimOptions {
  seed: number;
  link: LinkOptions;
  reliable?: Partial<ReliableOptions>;
  /** Payloads pushed on A (and as many on B, so both directions carry data). */
  messages: number;
  /** Pushes are spread over [0, pushSpread] ms of virtual time. */
  pushSpread: number;
}

interface Delivered {
  more: boolean;
  text: string;
}

interface SimResult {
  a: ReliableChannel;
  b: ReliableChannel;
  pushed: Record<Side, Delivered[]>;
  delivered: Record<Side, Delivered[]>;
  maxInflight: Record<Side, number>;
  lost: number;
  duplicated: number;
  reordered: number;
  end: number;
}

/**
 * Runs two channels against each other until everything pushed has been acknowledged and the
 * link is empty. Checks invariants at every step (time never goes backwards, timers are in the
 * future after polling, the window is respected).
 */
function simulate(o: SimOptions): SimResult {
  const rng = prng(o.seed);
  const opts = { ...DEFAULT_RELIABLE, ...o.reliable };
  const ch: Record<Side, ReliableChannel> = {
    A: new ReliableChannel(o.reliable),
    B: new ReliableChannel(o.reliable),
  };
  const other = (s: Side): Side => s === "A" ? "B" : "A";

  // Scheduled pushes, sorted by time.
  const pushes: { at: number; side: Side; more: boolean; text: string }[] = [];
  const pushed: Record<Side, Delivered[]> = { A: [], B: [] };
  for (const side of ["A", "B"] as const) {
    let at = 0;
    let i = 0;
    while (i < o.messages) {
      // Messages of 1 to 3 fragments: every fragment but the last has `more` set.
      const fragments = Math.min(1 + Math.floor(rng() * 3), o.messages - i);
      for (let f = 0; f < fragments; f++, i++) {
        const more = f < fragments - 1;
        const text = `${side}:${i}:${rng().toString(36).slice(2, 8)}`;
        pushes.push({ at, side, more, text });
        pushed[side].push({ more, text });
      }
      at = Math.min(o.pushSpread, at + Math.floor(rng() * 8 * o.pushSpread / o.messages));
    }
  }
  pushes.sort((x, y) => x.at - y.at);

  // The link: a list of scheduled deliveries, ordered by time then by send order.
  let order = 0;
  const wire: { at: number; order: number; to: Side; frame: Frame }[] = [];
  let lost = 0, duplicated = 0, reordered = 0;
  const lastArrival: Record<Side, number> = { A: -1, B: -1 };
  let now = 0;
  const send = (from: Side, frame: Frame) => {
    if (o.link.drop?.(from, frame, now) || rng() < o.link.loss) {
      lost++;
      return;
    }
    const copies = rng() < o.link.dup ? 2 : 1;
    if (copies === 2) duplicated++;
    for (let c = 0; c < copies; c++) {
      const delay = o.link.minDelay +
        Math.floor(rng() * (o.link.maxDelay - o.link.minDelay + 1));
      const at = now + delay;
      const to = other(from);
      if (at < lastArrival[to]) reordered++;
      lastArrival[to] = Math.max(lastArrival[to], at);
      wire.push({ at, order: order++, to, frame });
    }
  };

  // Mirror of what each sender has sent for the first time and what the peer acknowledged.
  const sentFirst: Record<Side, Set<number>> = { A: new Set(), B: new Set() };
  const acked: Record<Side, Set<number>> = { A: new Set(), B: new Set() };
  const maxInflight: Record<Side, number> = { A: 0, B: 0 };
  const delivered: Record<Side, Delivered[]> = { A: [], B: [] };
  const pushedCount: Record<Side, number> = { A: 0, B: 0 };

  const poll = (side: Side) => {
    const c = ch[side];
    const out: OutData[] = c.pollData(now);
    for (const d of out) {
      assert.ok(Number.isInteger(d.seq) && d.seq >= 1, `bad seq ${d.seq}`);
      if (d.retransmit) {
        assert.ok(sentFirst[side].has(d.seq), `retransmit of never-sent seq ${d.seq}`);
        assert.ok(!acked[side].has(d.seq), `${side} retransmitted acknowledged seq ${d.seq}`);
      } else {
        assert.ok(!sentFirst[side].has(d.seq), `${side} sent seq ${d.seq} twice as new`);
        sentFirst[side].add(d.seq);
      }
      send(side, { kind: "data", ...d });
    }
    const inflight = sentFirst[side].size - acked[side].size;
    assert.ok(inflight <= opts.window, `${side} has ${inflight} in flight > ${opts.window}`);
    // The channel's own count agrees with the mirror: queued + in flight.
    assert.equal(c.outstanding, pushedCount[side] - sentFirst[side].size + inflight);
    maxInflight[side] = Math.max(maxInflight[side], inflight);
    const t = c.nextTimeout();
    if (t !== undefined) assert.ok(t > now, `${side}.nextTimeout() ${t} not after ${now}`);
    assert.equal(t === undefined, inflight === 0, "a timer runs exactly while in flight");
  };

  let steps = 0;
  for (;;) {
    assert.ok(++steps < 500_000, "simulation does not terminate");
    while (pushes.length > 0 && pushes[0]!.at <= now) {
      const p = pushes.shift()!;
      ch[p.side].push(enc.encode(p.text), p.more);
      pushedCount[p.side]++;
    }
    wire.sort((x, y) => x.at - y.at || x.order - y.order);
    while (wire.length > 0 && wire[0]!.at <= now) {
      const w = wire.shift()!;
      assert.equal(w.at, now, "a delivery was skipped");
      const c = ch[w.to];
      if (w.frame.kind === "data") {
        const r = c.onData(w.frame.seq, w.frame.more, w.frame.text);
        for (const d of r.deliver) delivered[w.to].push({ more: d.more, text: dec.decode(d.text) });
        send(w.to, { kind: "ack", ack: r.ack });
      } else {
        const { cumulative, selective } = w.frame.ack;
        for (const seq of sentFirst[w.to]) {
          const bit = seq - cumulative - 2;
          if (seq <= cumulative || (bit >= 0 && bit < 32 && ((selective >>> bit) & 1) === 1)) {
            acked[w.to].add(seq);
          }
        }
        c.onAck(now, w.frame.ack);
      }
    }
    poll("A");
    poll("B");
    const candidates = [
      pushes[0]?.at,
      wire.length ? Math.min(...wire.map((w) => w.at)) : undefined,
      ch.A.nextTimeout(),
      ch.B.nextTimeout(),
    ].filter((t): t is number => t !== undefined);
    if (candidates.length === 0) break;
    const next = Math.min(...candidates);
    assert.ok(next > now, `time must advance: next ${next} <= now ${now}`);
    now = next;
  }
  return {
    a: ch.A,
    b: ch.B,
    pushed,
    delivered,
    maxInflight,
    lost,
    duplicated,
    reordered,
    end: now,
  };
}

function assertExactlyOnceInOrder(r: SimResult, label: string): void {
  // B received A's payloads and vice versa, each exactly once, in order, `more` intact.
  assert.deepEqual(r.delivered.B, r.pushed.A, `${label}: B's deliveries differ from A's pushes`);
  assert.deepEqual(r.delivered.A, r.pushed.B, `${label}: A's deliveries differ from B's pushes`);
  assert.equal(r.a.outstanding, 0, `${label}: A still has outstanding payloads`);
  assert.equal(r.b.outstanding, 0, `${label}: B still has outstanding payloads`);
  assert.equal(r.a.nextTimeout(), undefined, `${label}: A keeps a timer with nothing in flight`);
  assert.equal(r.b.nextTimeout(), undefined, `${label}: B keeps a timer with nothing in flight`);
  assert.equal(r.a.stats.sent, r.pushed.A.length, `${label}: A first-sent count`);
  assert.equal(r.b.stats.delivered, r.pushed.A.length, `${label}: B delivered count`);
  assert.equal(r.b.stats.sent, r.pushed.B.length, `${label}: B first-sent count`);
  assert.equal(r.a.stats.delivered, r.pushed.B.length, `${label}: A delivered count`);
}

const SEEDS = [1, 2, 3, 7, 42, 1234];

Deno.test("reliable sim: lossless link with reordering delivers everything once, in order, without retransmissions", () => {
  for (const seed of SEEDS) {
    // Round trips stay below minRto (2 * 60 < 150), so nothing may be retransmitted.
    const r = simulate({
      seed,
      messages: 120,
      pushSpread: 3_000,
      link: { loss: 0, dup: 0, minDelay: 10, maxDelay: 60 },
    });
    assertExactlyOnceInOrder(r, `seed ${seed}`);
    assert.ok(r.reordered > 0, `seed ${seed}: the link should have reordered frames`);
    assert.equal(r.lost, 0);
    assert.equal(r.a.stats.retransmits, 0, `seed ${seed}: spurious retransmission by A`);
    assert.equal(r.b.stats.retransmits, 0, `seed ${seed}: spurious retransmission by B`);
    assert.equal(r.a.stats.duplicates + r.b.stats.duplicates, 0);
    assert.equal(r.a.struggling, false);
  }
});

for (const loss of [0, 0.1, 0.3, 0.5]) {
  Deno.test(`reliable sim: ${loss * 100}% loss with duplication and reordering, several seeds`, () => {
    for (const seed of SEEDS) {
      const r = simulate({
        seed: seed * 31 + Math.round(loss * 100),
        messages: 150,
        pushSpread: 4_000,
        link: { loss, dup: 0.15, minDelay: 5, maxDelay: 120 },
      });
      const label = `loss ${loss}, seed ${seed}`;
      assertExactlyOnceInOrder(r, label);
      assert.ok(r.duplicated > 0, `${label}: the link should have duplicated frames`);
      assert.ok(r.reordered > 0, `${label}: the link should have reordered frames`);
      if (loss > 0) {
        assert.ok(r.lost > 0, `${label}: the link should have lost frames`);
        assert.ok(r.a.stats.retransmits > 0, `${label}: losses must cause retransmissions`);
      }
      // Duplicated DATA frames are recognised as such by the receivers.
      assert.ok(r.a.stats.duplicates + r.b.stats.duplicates > 0, `${label}: no duplicates seen`);
    }
  });
}

Deno.test("reliable sim: small window and small receive buffer under 30% loss still deliver exactly once", () => {
  for (const seed of SEEDS) {
    const reliable = { window: 16, receiveBuffer: 4, minRto: 100, maxRto: 2_000 };
    const r = simulate({
      seed: seed + 1000,
      messages: 200,
      pushSpread: 500,
      reliable,
      link: { loss: 0.3, dup: 0.1, minDelay: 1, maxDelay: 150 },
    });
    assertExactlyOnceInOrder(r, `seed ${seed}`);
    assert.ok(r.maxInflight.A <= 16 && r.maxInflight.B <= 16);
    assert.equal(r.maxInflight.A, 16, `seed ${seed}: the window should have been filled`);
  }
});

Deno.test("reliable sim: every ACK lost for a while, then the link heals: no loss, no duplicate delivery", () => {
  // All ACKs from B are lost during the first 5 s: A keeps retransmitting, B sees duplicates and
  // must not deliver them again.
  const r = simulate({
    seed: 99,
    messages: 40,
    pushSpread: 1_000,
    link: {
      loss: 0,
      dup: 0,
      minDelay: 20,
      maxDelay: 40,
      drop: (from, f, now) => from === "B" && f.kind === "ack" && now < 5_000,
    },
  });
  assertExactlyOnceInOrder(r, "acks lost");
  assert.ok(r.a.stats.retransmits > 0);
  assert.ok(r.b.stats.duplicates > 0, "B must have recognised retransmissions as duplicates");
});

Deno.test("reliable: retransmissions of one seq back off exponentially under 100% loss, capped at maxRto", () => {
  for (const options of [{}, { initialRto: 300, maxRto: 5_000 }, { initialRto: 1_000 }]) {
    const o = { ...DEFAULT_RELIABLE, ...options };
    const a = new ReliableChannel(options);
    a.push(enc.encode("lost forever"), true);
    const first = a.pollData(0);
    assert.equal(first.length, 1);
    assert.equal(first[0]!.retransmit, false);
    const times = [0];
    let now = 0;
    for (let i = 0; i < 12; i++) {
      const t = a.nextTimeout();
      assert.ok(t !== undefined && t > now, "a retransmission must be scheduled in the future");
      // Nothing is resent before the timer.
      assert.deepEqual(a.pollData(t - 1), []);
      now = t;
      const out = a.pollData(now);
      assert.equal(out.length, 1);
      assert.equal(out[0]!.seq, 1);
      assert.equal(out[0]!.retransmit, true);
      assert.equal(out[0]!.more, true, "the `more` flag survives retransmission");
      assert.equal(dec.decode(out[0]!.text), "lost forever");
      times.push(now);
    }
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    assert.equal(gaps[0], o.initialRto, "first retransmission after the initial RTO");
    for (let i = 1; i < gaps.length; i++) {
      assert.ok(gaps[i]! >= gaps[i - 1]!, `gap ${i} shrank: ${gaps}`);
      assert.ok(gaps[i]! <= o.maxRto, `gap ${i} exceeds maxRto: ${gaps}`);
      assert.equal(gaps[i], Math.min(gaps[i - 1]! * 2, o.maxRto), `not doubling: ${gaps}`);
    }
    assert.equal(gaps.at(-1), o.maxRto, "backoff must reach the cap");
    assert.equal(a.stats.retransmits, 12);
    assert.equal(a.stats.sent, 1);
    assert.equal(a.struggling, true);
    assert.equal(a.outstanding, 1);
  }
});

Deno.test("reliable: Karn's rule — no RTT sample from a retransmitted payload", () => {
  const a = new ReliableChannel();
  assert.equal(a.srtt, undefined);
  a.push(enc.encode("x"));
  assert.equal(a.pollData(0).length, 1);
  const re = a.pollData(DEFAULT_RELIABLE.initialRto);
  assert.equal(re.length, 1);
  assert.equal(re[0]!.retransmit, true);
  // The ACK is ambiguous (for the original or the retransmission): no sample.
  a.onAck(DEFAULT_RELIABLE.initialRto + 20, { cumulative: 1, selective: 0 });
  assert.equal(a.outstanding, 0);
  assert.equal(a.srtt, undefined, "an ambiguous ACK must not produce an RTT sample");
  assert.equal(a.rto, DEFAULT_RELIABLE.initialRto);

  // An expedited (resent) payload is just as ambiguous.
  a.push(enc.encode("y"));
  assert.deepEqual(a.pollData(1_000).map((d) => [d.seq, d.retransmit]), [[2, false]]);
  a.expedite(1_010);
  assert.deepEqual(a.pollData(1_010).map((d) => [d.seq, d.retransmit]), [[2, true]]);
  a.onAck(1_030, { cumulative: 2, selective: 0 });
  assert.equal(a.srtt, undefined);

  // A first transmission does give a sample.
  a.push(enc.encode("z"));
  a.pollData(2_000);
  a.onAck(2_080, { cumulative: 3, selective: 0 });
  assert.equal(a.srtt, 80);
  // RFC 6298: RTO = SRTT + max(G, 4 * RTTVAR) with RTTVAR = R / 2, clamped to minRto.
  assert.equal(a.rto, Math.max(DEFAULT_RELIABLE.minRto, 80 + 4 * 40));

  // seedRtt is ignored once a real sample exists.
  a.seedRtt(1);
  assert.equal(a.srtt, 80);
});

Deno.test("reliable: RTT sampling from selective ACKs and smoothing of later samples", () => {
  const a = new ReliableChannel();
  a.push(enc.encode("1"));
  a.push(enc.encode("2"));
  a.pollData(0);
  // Seq 2 acknowledged selectively at 100 (bit 0 = cumulative + 2).
  a.onAck(100, { cumulative: 0, selective: 0b1 });
  assert.equal(a.srtt, 100);
  assert.equal(a.outstanding, 1);
  a.onAck(200, { cumulative: 2, selective: 0 });
  // Second sample 200: srtt = 7/8 * 100 + 1/8 * 200.
  assert.equal(a.srtt, 112.5);
  assert.equal(a.outstanding, 0);
  // seedRtt only seeds a fresh channel.
  const b = new ReliableChannel();
  b.seedRtt(40);
  assert.equal(b.srtt, 40);
  assert.equal(b.rto, DEFAULT_RELIABLE.minRto);
  b.seedRtt(400);
  assert.equal(b.srtt, 40);
});

Deno.test("reliable: no more than `window` payloads in flight; acks open the window", () => {
  const a = new ReliableChannel({ window: 4 });
  for (let i = 0; i < 10; i++) a.push(enc.encode(`m${i}`));
  assert.equal(a.outstanding, 10);
  const first = a.pollData(0);
  assert.deepEqual(first.map((d) => d.seq), [1, 2, 3, 4]);
  assert.deepEqual(a.pollData(1), [], "window full: nothing more may be sent");
  a.onAck(50, { cumulative: 2, selective: 0 });
  assert.equal(a.outstanding, 8);
  assert.deepEqual(a.pollData(50).map((d) => d.seq), [5, 6]);
  // A selective ack of 6 frees exactly one slot.
  a.onAck(60, { cumulative: 2, selective: 1 << (6 - 2 - 2) });
  assert.deepEqual(a.pollData(60).map((d) => d.seq), [7]);
  assert.deepEqual(a.pollData(61), []);
  // Retransmissions happen even when the window is full, and do not count twice.
  const t = a.nextTimeout()!;
  const re = a.pollData(t);
  assert.ok(re.length > 0, "something is due at nextTimeout()");
  assert.ok(re.every((d) => d.retransmit && [3, 4, 5, 7].includes(d.seq)), "no new sends");
  a.onAck(t + 10, { cumulative: 7, selective: 0 });
  assert.deepEqual(a.pollData(t + 10).map((d) => d.seq), [8, 9, 10]);
  a.onAck(t + 20, { cumulative: 10, selective: 0 });
  assert.equal(a.outstanding, 0);
  assert.equal(a.nextTimeout(), undefined);
});

Deno.test("reliable: expedite makes every in-flight payload due now, and only those", () => {
  const a = new ReliableChannel();
  for (let i = 1; i <= 4; i++) a.push(enc.encode(`p${i}`), i % 2 === 1);
  assert.equal(a.pollData(0).length, 4);
  // Seq 2 is acknowledged; seq 5 is still queued.
  a.onAck(30, { cumulative: 0, selective: 0b1 });
  a.push(enc.encode("p5"));
  assert.equal(a.nextTimeout(), DEFAULT_RELIABLE.initialRto);
  a.expedite(100);
  assert.equal(a.nextTimeout(), 100);
  const out = a.pollData(100);
  const re = out.filter((d) => d.retransmit);
  assert.deepEqual(re.map((d) => d.seq), [1, 3, 4]);
  assert.deepEqual(re.map((d) => d.more), [true, true, false]);
  assert.deepEqual(re.map((d) => dec.decode(d.text)), ["p1", "p3", "p4"]);
  assert.deepEqual(out.filter((d) => !d.retransmit).map((d) => d.seq), [5]);
  assert.ok(a.nextTimeout()! > 100);
  // Expedite never delays a payload that is already due.
  const b = new ReliableChannel();
  b.push(enc.encode("q"));
  b.pollData(0);
  b.expedite(10_000);
  assert.equal(b.nextTimeout(), DEFAULT_RELIABLE.initialRto);
  // Nothing in flight: expedite is a no-op.
  const c = new ReliableChannel();
  c.expedite(5);
  assert.equal(c.nextTimeout(), undefined);
});

Deno.test("reliable: a duplicate DATA frame delivers nothing and is still acknowledged", () => {
  const b = new ReliableChannel();
  const one = b.onData(1, false, enc.encode("one"));
  assert.deepEqual(one.deliver.map((d) => dec.decode(d.text)), ["one"]);
  assert.deepEqual(one.ack, { cumulative: 1, selective: 0 });
  const again = b.onData(1, false, enc.encode("one"));
  assert.deepEqual(again.deliver, []);
  assert.deepEqual(again.ack, { cumulative: 1, selective: 0 });
  assert.equal(b.stats.duplicates, 1);
  // A duplicate of a buffered, out-of-order frame: no delivery, same ACK.
  const three = b.onData(3, true, enc.encode("three"));
  assert.deepEqual(three.deliver, []);
  assert.deepEqual(three.ack, { cumulative: 1, selective: 0b1 });
  const threeAgain = b.onData(3, true, enc.encode("three"));
  assert.deepEqual(threeAgain.deliver, []);
  assert.deepEqual(threeAgain.ack, three.ack);
  assert.equal(b.stats.duplicates, 2);
  // The gap fills: 2 and 3 come out in order, `more` flags unchanged.
  const two = b.onData(2, false, enc.encode("two"));
  assert.deepEqual(two.deliver.map((d) => [dec.decode(d.text), d.more]), [
    ["two", false],
    ["three", true],
  ]);
  assert.deepEqual(two.ack, { cumulative: 3, selective: 0 });
  assert.equal(b.stats.delivered, 3);
});

Deno.test("reliable: selective ACK bits acknowledge out-of-order frames so they are not retransmitted", () => {
  const a = new ReliableChannel({ window: 64 });
  const b = new ReliableChannel();
  for (let i = 1; i <= 34; i++) a.push(enc.encode(`s${i}`), i % 3 === 0);
  const out = a.pollData(0);
  assert.equal(out.length, 34);
  // Seq 1 is lost; 2..34 arrive (33 = cumulative + 2 + 31 is the bitmap's top bit).
  let ack: OutAck | undefined;
  for (const d of out.slice(1)) {
    const r = b.onData(d.seq, d.more, d.text);
    assert.deepEqual(r.deliver, []);
    ack = r.ack;
  }
  assert.equal(ack!.cumulative, 0);
  assert.equal(ack!.selective, 0xffffffff, "bits 0..31 for seqs 2..33");
  // Seq 34 is beyond the bitmap and cannot be acknowledged yet.
  a.onAck(40, ack!);
  assert.equal(a.outstanding, 2);
  const re = a.pollData(DEFAULT_RELIABLE.initialRto);
  assert.deepEqual(re.map((d) => d.seq), [1, 34], "only unacknowledged frames are resent");
  const r1 = b.onData(1, re[0]!.more, re[0]!.text);
  assert.deepEqual(r1.deliver.map((d) => dec.decode(d.text)), out.map((d) => dec.decode(d.text)));
  assert.deepEqual(
    r1.deliver.map((d) => d.more),
    out.map((d) => d.more),
    "`more` flags pass through unchanged",
  );
  const r34 = b.onData(34, re[1]!.more, re[1]!.text);
  assert.deepEqual(r34.deliver, []);
  assert.equal(b.stats.duplicates, 1);
  a.onAck(600, r34.ack);
  assert.equal(a.outstanding, 0);

  // A sparse bitmap: bits for seqs 3 and 5 only.
  const c = new ReliableChannel();
  const d = new ReliableChannel();
  for (let i = 1; i <= 5; i++) c.push(enc.encode(`${i}`));
  const cs = c.pollData(0);
  let last: OutAck | undefined;
  for (const f of cs) if (f.seq === 3 || f.seq === 5) last = d.onData(f.seq, f.more, f.text).ack;
  assert.deepEqual(last, { cumulative: 0, selective: 0b1010 });
  c.onAck(50, last!);
  assert.deepEqual(c.pollData(DEFAULT_RELIABLE.initialRto).map((f) => f.seq), [1, 2, 4]);
});

Deno.test("reliable: frames too far ahead of the receive buffer are dropped, then delivered after retransmission", () => {
  const receiveBuffer = 4;
  const a = new ReliableChannel({ window: 16 });
  const b = new ReliableChannel({ receiveBuffer });
  for (let i = 1; i <= 10; i++) a.push(enc.encode(`r${i}`), i === 4);
  const out = a.pollData(0);
  assert.equal(out.length, 10);
  // Seq 1 is lost; the rest arrive.
  let ack: OutAck | undefined;
  for (const d of out.slice(1)) ack = b.onData(d.seq, d.more, d.text).ack;
  const sacked: number[] = [];
  for (let i = 0; i < 32; i++) if ((ack!.selective >>> i) & 1) sacked.push(ack!.cumulative + 2 + i);
  assert.equal(ack!.cumulative, 0);
  assert.ok(sacked.length > 0, "frames within the buffer are kept");
  assert.ok(sacked.length <= receiveBuffer, `at most ${receiveBuffer} buffered: ${sacked}`);
  assert.deepEqual(sacked, [2, 3, 4].concat(sacked.includes(5) ? [5] : []));
  for (const far of [6, 7, 8, 9, 10]) assert.ok(!sacked.includes(far), `seq ${far} was buffered`);
  a.onAck(40, ack!);
  // Dropped frames stay in flight and come back with seq 1.
  const re = a.pollData(DEFAULT_RELIABLE.initialRto);
  assert.deepEqual(re.map((d) => d.seq), [
    1,
    ...[5, 6, 7, 8, 9, 10].filter((s) => !sacked.includes(s)),
  ]);
  const got: string[] = [];
  const mores: boolean[] = [];
  let last: OutAck | undefined;
  for (const d of re) {
    const r = b.onData(d.seq, d.more, d.text);
    for (const x of r.deliver) {
      got.push(dec.decode(x.text));
      mores.push(x.more);
    }
    last = r.ack;
  }
  assert.deepEqual(got, out.map((d) => dec.decode(d.text)));
  assert.deepEqual(mores, out.map((d) => d.more));
  assert.deepEqual(last, { cumulative: 10, selective: 0 });
  a.onAck(600, last!);
  assert.equal(a.outstanding, 0);
  assert.equal(b.stats.delivered, 10);
});

Deno.test("reliable: `more` flags pass through unchanged from push to delivery", () => {
  const a = new ReliableChannel();
  const b = new ReliableChannel();
  const flags = [true, true, false, false, true, false, true, true, true, false];
  flags.forEach((m, i) => a.push(enc.encode(`f${i}`), m));
  a.push(enc.encode("default")); // `more` defaults to false
  const out = a.pollData(0);
  assert.deepEqual(out.map((d) => d.more), [...flags, false]);
  const got: boolean[] = [];
  // Deliver in reverse order: delivery is still in order with the right flags.
  for (const d of [...out].reverse()) {
    for (const x of b.onData(d.seq, d.more, d.text).deliver) got.push(x.more);
  }
  assert.deepEqual(got, [...flags, false]);
});

Deno.test("reliable: outstanding returns to 0 after all acks and stale acks are harmless", () => {
  const a = new ReliableChannel();
  assert.equal(a.outstanding, 0);
  assert.equal(a.nextTimeout(), undefined);
  a.push(enc.encode("a"));
  a.push(enc.encode("b"));
  assert.equal(a.outstanding, 2, "queued payloads count");
  a.pollData(0);
  assert.equal(a.outstanding, 2, "in-flight payloads count");
  a.onAck(10, { cumulative: 1, selective: 0 });
  assert.equal(a.outstanding, 1);
  // An older ACK arriving late changes nothing.
  a.onAck(11, { cumulative: 0, selective: 0 });
  assert.equal(a.outstanding, 1);
  a.onAck(12, { cumulative: 2, selective: 0 });
  assert.equal(a.outstanding, 0);
  assert.equal(a.nextTimeout(), undefined);
  assert.equal(a.struggling, false);
  // Acks beyond anything sent do not break later sends.
  a.onAck(13, { cumulative: 2, selective: 0xffffffff });
  a.push(enc.encode("c"));
  assert.deepEqual(a.pollData(20).map((d) => d.seq), [3]);
  assert.equal(a.outstanding, 1);
});
