/**
 * Deterministic tests of {@link ReliableChannel}, driven with virtual time.
 *
 * A tiny simulator connects two channels through a link that loses, duplicates and delays
 * (hence reorders) DATA and ACK frames in both directions, using a seeded PRNG. Time jumps
 * to the earliest of the channels' `nextTimeout()`s, scheduled deliveries, scheduled pushes
 * and scheduled path changes (`expedite`); ACKs go out when `onData` says so or, delayed,
 * from `pollAck`. Focused tests then pin down retransmission backoff, Karn's rule, the window as
 * a span of sequence numbers, `expedite` (resends that are not timeouts), duplicates, selective
 * acknowledgement, the receive buffer limit, the send queue limit, stream resynchronisation
 * after either side is recreated, sequence-number wrap, delayed ACK timing (and which frames
 * are acknowledged at once), RTT samples under delayed ACKs, fast retransmit and the byte
 * window.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type DataFrame,
  DEFAULT_RELIABLE,
  type OutAck,
  type OutData,
  ReliableChannel,
  type ReliableOptions,
} from "../../lib/peer/reliable.ts";
import { prng } from "../support/prng.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

type Side = "A" | "B";
type Frame =
  | ({ kind: "data" } & OutData)
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
  /** Initial stream ids of the two senders (default 0 for both). */
  streams?: Partial<Record<Side, number>>;
  /** Times at which both sides learn of a path change and call `expedite`. */
  expediteAt?: number[];
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
  /** Stream ids each side sent on, in order of first use. */
  streamsUsed: Record<Side, number[]>;
  /** `reset` flags each side's receiver reported. */
  resets: Record<Side, number>;
  lost: number;
  duplicated: number;
  reordered: number;
  end: number;
}

const keyOf = (stream: number, seq: number) => `${stream}:${seq}`;

/**
 * Runs two channels against each other until everything pushed has been acknowledged and the
 * link is empty. Checks invariants at every step: time never goes backwards, timers are in the
 * future after polling, every DATA carries the true lowest unacknowledged sequence as `base`,
 * the window is a span (seq < base + window), nothing in flight straddles two streams, a
 * retransmission is of something sent and not yet acknowledged, and a receiver never
 * acknowledges selectively beyond its window.
 */
function simulate(o: SimOptions): SimResult {
  const rng = prng(o.seed);
  const opts = { ...DEFAULT_RELIABLE, ...o.reliable };
  const ch: Record<Side, ReliableChannel> = {
    A: new ReliableChannel(o.reliable, o.streams?.A ?? 0),
    B: new ReliableChannel(o.reliable, o.streams?.B ?? 0),
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
  const expedites = [...(o.expediteAt ?? [])].sort((x, y) => x - y);

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

  // Mirror of each sender: what it ever sent as new, what is unacknowledged (by stream:seq).
  const everSent: Record<Side, Set<string>> = { A: new Set(), B: new Set() };
  const unacked: Record<Side, Map<string, { stream: number; seq: number }>> = {
    A: new Map(),
    B: new Map(),
  };
  const lastNew: Record<Side, { stream: number; seq: number }> = {
    A: { stream: ch.A.stream, seq: 0 },
    B: { stream: ch.B.stream, seq: 0 },
  };
  const streamsUsed: Record<Side, number[]> = { A: [], B: [] };
  const maxInflight: Record<Side, number> = { A: 0, B: 0 };
  const delivered: Record<Side, Delivered[]> = { A: [], B: [] };
  const pushedCount: Record<Side, number> = { A: 0, B: 0 };
  // Payloads sent as new (a batch carries several), and each frame's payloads by stream:seq.
  const sentPayloads: Record<Side, number> = { A: 0, B: 0 };
  const framePayloads: Record<Side, Map<string, string[]>> = { A: new Map(), B: new Map() };
  // Mirror of each receiver: the stream it follows.
  const following: Record<Side, number | undefined> = { A: undefined, B: undefined };
  const left: Record<Side, Set<number>> = { A: new Set(), B: new Set() };
  const resets: Record<Side, number> = { A: 0, B: 0 };

  /** The lowest unacknowledged sequence as the mirror sees it (the next one if none). */
  const mirrorBase = (side: Side): number => {
    let lo = Infinity;
    for (const u of unacked[side].values()) lo = Math.min(lo, u.seq);
    return lo === Infinity ? lastNew[side].seq + 1 : lo;
  };

  const poll = (side: Side) => {
    const c = ch[side];
    // Every frame of one poll carries the base as it was when the poll began (1 on a new stream).
    let expectBase = mirrorBase(side);
    const out: OutData[] = c.pollData(now);
    for (const d of out) {
      assert.ok(Number.isInteger(d.seq) && d.seq >= 1, `bad seq ${d.seq}`);
      assert.ok(d.seq <= opts.maxSeq, `seq ${d.seq} beyond maxSeq ${opts.maxSeq}`);
      const k = keyOf(d.stream, d.seq);
      const parts = [d, ...(d.packed ?? [])];
      const texts = parts.map((p) => dec.decode(p.text));
      if (d.packed) {
        // A batch: at least two payloads, within batchBytes (counting 3 bytes per payload).
        assert.ok(d.packed.length > 0, `${side} sent an empty batch ${k}`);
        const bytes = parts.reduce((n, p) => n + 3 + p.text.length, 0);
        assert.ok(bytes <= opts.batchBytes, `${side}'s batch ${k} has ${bytes} bytes`);
      }
      if (d.reason !== "new") {
        assert.deepEqual(texts, framePayloads[side].get(k), `${side} resent ${k} changed`);
        assert.ok(everSent[side].has(k), `${d.reason} of never-sent ${k}`);
        assert.ok(unacked[side].has(k), `${side} resent acknowledged ${k} (${d.reason})`);
        assert.equal(d.base, expectBase, `${side} resent ${k} with a wrong base`);
      } else {
        assert.ok(!everSent[side].has(k), `${side} sent ${k} twice as new`);
        if (d.stream !== lastNew[side].stream) {
          // A new stream starts at seq 1 only once the old one is entirely acknowledged.
          assert.equal(unacked[side].size, 0, `${side} changed stream with data in flight`);
          assert.equal(d.seq, 1, `${side}'s new stream ${d.stream} starts at ${d.seq}`);
          expectBase = 1;
          assert.equal(d.base, 1);
        } else {
          assert.equal(d.seq, lastNew[side].seq + 1, `${side} skipped a sequence number`);
          assert.equal(d.base, expectBase, `${side} sent ${k} with a wrong base`);
        }
        if (streamsUsed[side].at(-1) !== d.stream) streamsUsed[side].push(d.stream);
        everSent[side].add(k);
        sentPayloads[side] += parts.length;
        framePayloads[side].set(k, texts);
        unacked[side].set(k, { stream: d.stream, seq: d.seq });
        lastNew[side] = { stream: d.stream, seq: d.seq };
      }
      // The window is a span of sequence numbers above the lowest unacknowledged one.
      assert.ok(d.seq < d.base + opts.window, `${side} sent ${k} beyond base ${d.base}`);
      send(side, { kind: "data", ...d });
    }
    const ack = c.pollAck(now);
    if (ack) send(side, { kind: "ack", ack });
    const inflight = unacked[side].size;
    assert.ok(inflight <= opts.window, `${side} has ${inflight} in flight > ${opts.window}`);
    const streams = new Set([...unacked[side].values()].map((u) => u.stream));
    assert.ok(streams.size <= 1, `${side} has two streams in flight`);
    assert.equal(c.base, mirrorBase(side), `${side}.base`);
    assert.equal(c.stream, lastNew[side].stream, `${side}.stream`);
    // The channel's own count agrees with the mirror: queued + in flight.
    let inflightPayloads = 0;
    for (const k of unacked[side].keys()) inflightPayloads += framePayloads[side].get(k)!.length;
    assert.equal(c.outstanding, pushedCount[side] - sentPayloads[side] + inflightPayloads);
    maxInflight[side] = Math.max(maxInflight[side], inflight);
    const t = c.nextTimeout();
    if (t !== undefined) assert.ok(t > now, `${side}.nextTimeout() ${t} not after ${now}`);
    // A timer runs while in flight or an ACK is delayed (it may outlive the ACK sent early).
    if (inflight > 0 || c.ackPending) assert.ok(t !== undefined, `${side} has no timer`);
  };

  let steps = 0;
  for (;;) {
    assert.ok(++steps < 500_000, "simulation does not terminate");
    while (pushes.length > 0 && pushes[0]!.at <= now) {
      const p = pushes.shift()!;
      assert.ok(ch[p.side].push(enc.encode(p.text), p.more), "the queue refused a payload");
      pushedCount[p.side]++;
    }
    wire.sort((x, y) => x.at - y.at || x.order - y.order);
    while (wire.length > 0 && wire[0]!.at <= now) {
      const w = wire.shift()!;
      assert.equal(w.at, now, "a delivery was skipped");
      const c = ch[w.to];
      if (w.frame.kind === "data") {
        const { stream, base, seq, first, more, text, packed } = w.frame;
        const r = c.onData({ stream, base, seq, first, more, text, packed }, now);
        // A late frame of a stream the peer left behind is acknowledged, never followed back.
        const stale = left[w.to].has(stream);
        const changed = !stale && following[w.to] !== undefined && following[w.to] !== stream;
        assert.equal(r.reset, changed, `${w.to}: reset flag on stream ${stream}`);
        if (r.reset) resets[w.to]++;
        if (changed) left[w.to].add(following[w.to]!);
        if (!stale) following[w.to] = stream;
        if (stale) assert.deepEqual(r.deliver, [], `${w.to}: delivered from a stale stream`);
        for (const d of r.deliver) delivered[w.to].push({ more: d.more, text: dec.decode(d.text) });
        assert.equal(r.ack.stream, stream, "an ACK names the stream of the DATA it answers");
        // Nothing beyond the receive span (cumulative + window) is acknowledged selectively.
        for (let i = 0; i < 32; i++) {
          if ((r.ack.selective >>> i) & 1) {
            assert.ok(i <= opts.window - 2, `${w.to} buffered beyond its window (bit ${i})`);
          }
        }
        // Sent now, or later by pollAck (a delayed ACK).
        if (r.ackNow) send(w.to, { kind: "ack", ack: r.ack });
      } else {
        const { stream, cumulative, selective } = w.frame.ack;
        for (const [k, u] of unacked[w.to]) {
          if (u.stream !== stream) continue;
          const bit = u.seq - cumulative - 2;
          if (u.seq <= cumulative || (bit >= 0 && bit < 32 && ((selective >>> bit) & 1) === 1)) {
            unacked[w.to].delete(k);
          }
        }
        c.onAck(now, w.frame.ack);
      }
    }
    while (expedites.length > 0 && expedites[0]! <= now) {
      expedites.shift();
      ch.A.expedite(now);
      ch.B.expedite(now);
    }
    poll("A");
    poll("B");
    const candidates = [
      pushes[0]?.at,
      expedites[0],
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
    streamsUsed,
    resets,
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
  const sentA = r.a.stats.sent + r.a.stats.batched, sentB = r.b.stats.sent + r.b.stats.batched;
  assert.equal(sentA, r.pushed.A.length, `${label}: A first-sent count`);
  assert.equal(r.b.stats.delivered, r.pushed.A.length, `${label}: B delivered count`);
  assert.equal(sentB, r.pushed.B.length, `${label}: B first-sent count`);
  assert.equal(r.a.stats.delivered, r.pushed.B.length, `${label}: A delivered count`);
}

const SEEDS = [1, 2, 3, 7, 42, 1234];

/**
 * A channel for the focused tests: one payload per DATA frame (`batchBytes` 0) unless a test
 * asks for batching, so they can follow payloads by sequence number.
 */
class Channel extends ReliableChannel {
  constructor(options: Partial<ReliableOptions> = {}, stream = 0) {
    super({ batchBytes: 0, ...options }, stream);
  }
}

/** When focused tests hand DATA to a receiver (they read its ACKs from `onData`, untimed). */
const NOW = 0;

/** A DATA frame as the peer would receive it (stream 0 and base 1 unless given). */
function data(seq: number, more: boolean, text: string, base = 1, stream = 0): DataFrame {
  return { stream, base, seq, first: true, more, text: enc.encode(text) };
}

/** Only the fields that travel, as the peer would decode them from the wire. */
function travel(d: OutData): DataFrame {
  return {
    stream: d.stream,
    base: d.base,
    seq: d.seq,
    first: d.first,
    more: d.more,
    text: d.text,
    ...(d.packed ? { packed: d.packed } : {}),
  };
}

/** Sequences a receiver's ACK acknowledges selectively. */
function sacked(ack: OutAck): number[] {
  const out: number[] = [];
  for (let i = 0; i < 32; i++) if ((ack.selective >>> i) & 1) out.push(ack.cumulative + 2 + i);
  return out;
}

Deno.test("reliable sim: lossless link with reordering delivers everything once, in order, without retransmissions", () => {
  for (const seed of SEEDS) {
    // Round trips stay below minRto (2 * 60 < 150), so nothing may be retransmitted.
    const r = simulate({
      seed,
      messages: 120,
      pushSpread: 3_000,
      reliable: { batchBytes: 0 }, // Frames are payloads: ACKs are counted against them.
      link: { loss: 0, dup: 0, minDelay: 10, maxDelay: 60 },
    });
    assertExactlyOnceInOrder(r, `seed ${seed}`);
    assert.ok(r.reordered > 0, `seed ${seed}: the link should have reordered frames`);
    assert.equal(r.lost, 0);
    assert.equal(r.a.stats.retransmits, 0, `seed ${seed}: spurious retransmission by A`);
    assert.equal(r.b.stats.retransmits, 0, `seed ${seed}: spurious retransmission by B`);
    // Reordering within the RTT estimate is not taken for loss.
    assert.equal(r.a.stats.fastRetransmits + r.b.stats.fastRetransmits, 0, `seed ${seed}: fast`);
    assert.equal(r.a.stats.duplicates + r.b.stats.duplicates, 0);
    assert.equal(r.a.struggling, false);
    // Delayed ACKs: fewer ACKs than DATA frames.
    assert.ok(r.b.stats.acks < r.a.stats.sent, `seed ${seed}: ${r.b.stats.acks} ACKs`);
  }
});

Deno.test("reliable sim: ACK every frame, or every 16th, under loss: exactly once, in order", () => {
  for (const reliable of [{ ackEvery: 1, ackDelay: 0 }, { ackEvery: 16, ackDelay: 40 }]) {
    for (const seed of SEEDS) {
      const r = simulate({
        seed: seed + 70,
        messages: 200,
        pushSpread: 2_000,
        reliable,
        link: { loss: 0.15, dup: 0.05, minDelay: 5, maxDelay: 80 },
      });
      assertExactlyOnceInOrder(r, `ackEvery ${reliable.ackEvery}, seed ${seed}`);
    }
  }
});

Deno.test("reliable sim: a burst through a lossy link is repaired by fast retransmits", () => {
  // A window the selective bitmap covers (cumulative + 1 + 32): every loss in flight can be
  // seen with three later payloads acknowledged.
  for (const seed of SEEDS) {
    const r = simulate({
      seed: seed + 80,
      messages: 400,
      pushSpread: 100,
      reliable: { window: 32, batchBytes: 0 },
      link: { loss: 0.05, dup: 0, minDelay: 10, maxDelay: 12 },
    });
    assertExactlyOnceInOrder(r, `seed ${seed}`);
    for (const c of [r.a, r.b]) {
      const { fastRetransmits: fast, retransmits: timeouts } = c.stats;
      assert.ok(
        fast > 2 * timeouts,
        `seed ${seed}: ${fast} fast retransmits, ${timeouts} timeouts`,
      );
    }
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
      assert.equal(r.a.stats.streamResets + r.b.stats.streamResets, 0, `${label}: no resets`);
    }
  });
}

Deno.test("reliable sim: batches (payloads packed behind a full window) under loss, duplication and reordering: exactly once, in order", () => {
  // A burst against a small window makes the queue build, so new frames carry batches; the
  // simulator checks each batch's size, that a resend carries the same payloads, and the
  // channel's outstanding count against payloads sent.
  for (const batchBytes of [40, 200, 1_000]) {
    for (const loss of [0, 0.1, 0.3]) {
      for (const seed of SEEDS) {
        const label = `batchBytes ${batchBytes}, loss ${loss}, seed ${seed}`;
        const r = simulate({
          seed: seed * 7 + batchBytes + Math.round(loss * 100),
          messages: 300,
          pushSpread: 200,
          reliable: { window: 8, batchBytes, minRto: 100, maxRto: 2_000 },
          link: { loss, dup: 0.1, minDelay: 5, maxDelay: 60 },
        });
        assertExactlyOnceInOrder(r, label);
        for (const c of [r.a, r.b]) {
          assert.ok(c.stats.batched > 0, `${label}: nothing was batched`);
          assert.ok(c.stats.sent < 300, `${label}: ${c.stats.sent} frames for 300 payloads`);
        }
        if (loss > 0) {
          const resent = [r.a, r.b].reduce(
            (n, c) => n + c.stats.retransmits + c.stats.fastRetransmits,
            0,
          );
          assert.ok(resent > 0, `${label}: nothing was resent`);
        }
      }
    }
  }
});

Deno.test("reliable: a batch takes queued payloads up to batchBytes (3 bytes each besides the text) and the byte window; one pushed into an open window goes alone", () => {
  const a = new Channel({ window: 1, batchBytes: 30, windowBytes: 1_000 });
  const b = new Channel();
  a.push(enc.encode("alone"));
  const first = a.pollData(0);
  assert.deepEqual(first.map((d) => [dec.decode(d.text), d.packed]), [["alone", undefined]]);
  for (const t of ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]) a.push(enc.encode(t), t === "p2");
  assert.deepEqual(a.pollData(1), [], "the window is full: the payloads wait");
  a.onAck(10, b.onData(travel(first[0]!), NOW).ack);
  // 30 bytes: six parts of 2 + 3 bytes fit exactly; a seventh would make 35.
  const batch = a.pollData(10);
  assert.equal(batch.length, 1);
  const parts = [batch[0]!, ...batch[0]!.packed!];
  assert.deepEqual(parts.map((p) => dec.decode(p.text)), ["p1", "p2", "p3", "p4", "p5", "p6"]);
  assert.deepEqual(parts.map((p) => [p.first, p.more]).slice(0, 3), [
    [true, false],
    [true, true],
    [false, false],
  ]);
  assert.equal(a.stats.batched, 5);
  // The receiver delivers every part, in order, with its flags.
  const r = b.onData(travel(batch[0]!), NOW);
  assert.deepEqual(r.deliver.map((d) => dec.decode(d.text)), ["p1", "p2", "p3", "p4", "p5", "p6"]);
  assert.deepEqual(r.deliver[2], { first: false, more: false, text: enc.encode("p3") });
  assert.equal(b.stats.delivered, 7);
  // A duplicate of the batch delivers nothing again.
  assert.deepEqual(b.onData(travel(batch[0]!), NOW).deliver, []);
  // Lost: it is resent whole, then acknowledged as one frame.
  const re = a.pollData(10 + DEFAULT_RELIABLE.initialRto);
  assert.deepEqual(re.map((d) => [d.seq, d.reason, d.packed?.length]), [[2, "timeout", 5]]);
  a.onAck(600, r.ack);
  assert.deepEqual(a.pollData(600).map((d) => [dec.decode(d.text), d.packed]), [["p7", undefined]]);
  // The byte window bounds a batch too.
  const c = new Channel({ window: 1, windowBytes: 6 });
  c.push(enc.encode("x"));
  const x = c.pollData(0);
  for (const t of ["aa", "bb", "cc", "dd"]) c.push(enc.encode(t));
  c.onAck(1, { stream: 0, cumulative: x[0]!.seq, selective: 0 });
  const bounded = c.pollData(1);
  assert.deepEqual(bounded.map((d) => [dec.decode(d.text), d.packed?.length ?? 0]), [["aa", 0]]);
  const d2 = new Channel({ window: 1, windowBytes: 6, batchBytes: 1_000 });
  d2.push(enc.encode("x"));
  const y = d2.pollData(0);
  for (const t of ["aa", "bb", "cc", "dd"]) d2.push(enc.encode(t));
  d2.onAck(1, { stream: 0, cumulative: y[0]!.seq, selective: 0 });
  const three = d2.pollData(1);
  assert.deepEqual(three.map((d) => [dec.decode(d.text), d.packed?.length]), [["aa", 2]]);
});

Deno.test("reliable sim: small window under 30% loss still delivers exactly once", () => {
  for (const seed of SEEDS) {
    const reliable = { window: 16, minRto: 100, maxRto: 2_000, batchBytes: 0 };
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

Deno.test("reliable sim: frequent path changes (expedite) under loss: exactly once, resends counted apart", () => {
  for (const seed of SEEDS) {
    const expediteAt = Array.from({ length: 40 }, (_, i) => 37 + i * 97);
    const lossy = simulate({
      seed: seed + 500,
      messages: 150,
      pushSpread: 4_000,
      expediteAt,
      link: { loss: 0.2, dup: 0.05, minDelay: 5, maxDelay: 120 },
    });
    assertExactlyOnceInOrder(lossy, `seed ${seed}`);
    assert.ok(lossy.a.stats.resends > 0, `seed ${seed}: expedite caused no resend`);
    // On a lossless link with round trips below minRto, only path changes resend anything.
    const clean = simulate({
      seed: seed + 600,
      messages: 150,
      pushSpread: 4_000,
      expediteAt,
      link: { loss: 0, dup: 0, minDelay: 10, maxDelay: 60 },
    });
    assertExactlyOnceInOrder(clean, `clean seed ${seed}`);
    assert.ok(clean.a.stats.resends + clean.b.stats.resends > 0, `seed ${seed}: no resends`);
    assert.equal(clean.a.stats.retransmits + clean.b.stats.retransmits, 0, "resends are timeouts");
    assert.equal(clean.a.struggling || clean.b.struggling, false);
  }
});

Deno.test("reliable: retransmissions of one seq back off exponentially under 100% loss, capped at maxRto", () => {
  for (const options of [{}, { initialRto: 300, maxRto: 5_000 }, { initialRto: 1_000 }]) {
    const o = { ...DEFAULT_RELIABLE, ...options };
    const a = new Channel(options);
    a.push(enc.encode("lost forever"), true);
    const first = a.pollData(0);
    assert.equal(first.length, 1);
    assert.equal(first[0]!.reason, "new");
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
      assert.equal(out[0]!.reason, "timeout");
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
    assert.equal(a.stats.resends, 0);
    assert.equal(a.stats.sent, 1);
    assert.equal(a.struggling, true);
    assert.equal(a.outstanding, 1);
  }
});

Deno.test("reliable: Karn's rule — no RTT sample from a retransmitted or expedited payload", () => {
  const a = new Channel();
  assert.equal(a.srtt, undefined);
  a.push(enc.encode("x"));
  assert.equal(a.pollData(0).length, 1);
  const re = a.pollData(DEFAULT_RELIABLE.initialRto);
  assert.equal(re.length, 1);
  assert.equal(re[0]!.reason, "timeout");
  // The ACK is ambiguous (for the original or the retransmission): no sample.
  a.onAck(DEFAULT_RELIABLE.initialRto + 20, { stream: 0, cumulative: 1, selective: 0 });
  assert.equal(a.outstanding, 0);
  assert.equal(a.srtt, undefined, "an ambiguous ACK must not produce an RTT sample");
  assert.equal(a.rto, DEFAULT_RELIABLE.initialRto);
  assert.equal(a.stats.retransmits, 1);

  // An expedited payload is resent as "resend", is not a retransmission, and is just as
  // ambiguous.
  a.push(enc.encode("y"));
  assert.deepEqual(a.pollData(1_000).map((d) => [d.seq, d.reason]), [[2, "new"]]);
  a.expedite(1_010);
  assert.deepEqual(a.pollData(1_010).map((d) => [d.seq, d.reason]), [[2, "resend"]]);
  assert.equal(a.stats.retransmits, 1, "a path-change resend is not a retransmission");
  assert.equal(a.stats.resends, 1);
  a.onAck(1_030, { stream: 0, cumulative: 2, selective: 0 });
  assert.equal(a.srtt, undefined, "an ACK after a resend must not produce an RTT sample");

  // A first transmission does give a sample.
  a.push(enc.encode("z"));
  a.pollData(2_000);
  a.onAck(2_080, { stream: 0, cumulative: 3, selective: 0 });
  assert.equal(a.srtt, 80);
  // RFC 6298: RTO = SRTT + max(G, 4 * RTTVAR) with RTTVAR = R / 2, clamped to minRto.
  assert.equal(a.rto, Math.max(DEFAULT_RELIABLE.minRto, 80 + 4 * 40));

  // seedRtt is ignored once a real sample exists.
  a.seedRtt(1);
  assert.equal(a.srtt, 80);
});

Deno.test("reliable: RTT sampling from selective ACKs and smoothing of later samples", () => {
  const a = new Channel();
  a.push(enc.encode("1"));
  a.push(enc.encode("2"));
  a.pollData(0);
  // Seq 2 acknowledged selectively at 100 (bit 0 = cumulative + 2).
  a.onAck(100, { stream: 0, cumulative: 0, selective: 0b1 });
  assert.equal(a.srtt, 100);
  assert.equal(a.outstanding, 1);
  a.onAck(200, { stream: 0, cumulative: 2, selective: 0 });
  // Second sample 200: srtt = 7/8 * 100 + 1/8 * 200.
  assert.equal(a.srtt, 112.5);
  assert.equal(a.outstanding, 0);
  // seedRtt only seeds a fresh channel.
  const b = new Channel();
  b.seedRtt(40);
  assert.equal(b.srtt, 40);
  assert.equal(b.rto, DEFAULT_RELIABLE.minRto);
  b.seedRtt(400);
  assert.equal(b.srtt, 40);
});

Deno.test("reliable: the window is a span: seq < lowest unacknowledged + window; acks of the base open it", () => {
  // Only the timer resends here (fast retransmit has its own tests).
  const a = new Channel({ window: 4, fastThreshold: Infinity });
  for (let i = 0; i < 12; i++) a.push(enc.encode(`m${i}`));
  assert.equal(a.outstanding, 12);
  assert.equal(a.base, 1);
  const first = a.pollData(0);
  assert.deepEqual(first.map((d) => d.seq), [1, 2, 3, 4]);
  assert.ok(first.every((d) => d.base === 1 && d.reason === "new"));
  assert.deepEqual(a.pollData(1), [], "window full: nothing more may be sent");
  a.onAck(50, { stream: 0, cumulative: 2, selective: 0 });
  assert.equal(a.base, 3);
  assert.equal(a.outstanding, 10);
  const second = a.pollData(50);
  assert.deepEqual(second.map((d) => d.seq), [5, 6], "up to base 3 + window 4 - 1");
  assert.ok(second.every((d) => d.base === 3));
  // A selective ack of 6 does not move the base: the span stays 3..6, nothing more is sent
  // (a count-based window would send 7 here).
  a.onAck(60, { stream: 0, cumulative: 2, selective: 1 << (6 - 2 - 2) });
  assert.equal(a.outstanding, 9);
  assert.equal(a.base, 3);
  assert.deepEqual(a.pollData(60), []);
  // Even with only one payload (3) in flight, nothing beyond 3 + 4 - 1 = 6 goes out.
  a.onAck(61, { stream: 0, cumulative: 2, selective: 0b111 }); // 4, 5, 6
  assert.equal(a.base, 3);
  assert.deepEqual(a.pollData(61), []);
  // Retransmissions happen even when the window is full. nextTimeout() may be early (it still
  // counts the acknowledged 5 and 6): a wake-up then finds nothing, and the next one is later.
  let t = a.nextTimeout()!;
  let re = a.pollData(t);
  while (re.length === 0) {
    const next = a.nextTimeout()!;
    assert.ok(next > t, "nextTimeout() advances after an empty poll");
    re = a.pollData(t = next);
  }
  assert.equal(t, DEFAULT_RELIABLE.initialRto, "3 was sent at 0 with the initial RTO");
  assert.deepEqual(re.map((d) => [d.seq, d.reason, d.base]), [[3, "timeout", 3]]);
  // Acknowledging 3 moves the base to 7: 7..10 go out.
  a.onAck(t + 10, { stream: 0, cumulative: 6, selective: 0 });
  assert.equal(a.base, 7);
  assert.deepEqual(a.pollData(t + 10).map((d) => d.seq), [7, 8, 9, 10]);
  a.onAck(t + 20, { stream: 0, cumulative: 10, selective: 0 });
  assert.deepEqual(a.pollData(t + 20).map((d) => [d.seq, d.base]), [[11, 11], [12, 11]]);
  a.onAck(t + 30, { stream: 0, cumulative: 12, selective: 0 });
  assert.equal(a.outstanding, 0);
  assert.equal(a.base, 13, "with nothing in flight, the base is the next sequence");
  assert.equal(a.nextTimeout(), undefined);
});

Deno.test("reliable: expedite makes every in-flight payload due now, and only those", () => {
  const a = new Channel();
  for (let i = 1; i <= 4; i++) a.push(enc.encode(`p${i}`), i % 2 === 1);
  assert.equal(a.pollData(0).length, 4);
  // Seq 2 is acknowledged; seq 5 is still queued.
  a.onAck(30, { stream: 0, cumulative: 0, selective: 0b1 });
  a.push(enc.encode("p5"));
  assert.equal(a.nextTimeout(), DEFAULT_RELIABLE.initialRto);
  a.expedite(100);
  assert.equal(a.nextTimeout(), 100);
  const out = a.pollData(100);
  const re = out.filter((d) => d.reason === "resend");
  assert.deepEqual(re.map((d) => d.seq), [1, 3, 4]);
  assert.deepEqual(re.map((d) => d.more), [true, true, false]);
  assert.deepEqual(re.map((d) => dec.decode(d.text)), ["p1", "p3", "p4"]);
  assert.deepEqual(out.filter((d) => d.reason === "new").map((d) => d.seq), [5]);
  assert.equal(out.length, 4, "nothing goes out as a timeout");
  assert.ok(a.nextTimeout()! > 100);
  // Expedite never delays a payload that is already due, and that one is a timeout.
  const b = new Channel();
  b.push(enc.encode("q"));
  b.pollData(0);
  b.expedite(10_000);
  assert.equal(b.nextTimeout(), DEFAULT_RELIABLE.initialRto);
  assert.deepEqual(b.pollData(10_000).map((d) => d.reason), ["timeout"]);
  assert.equal(b.stats.retransmits, 1);
  assert.equal(b.stats.resends, 0);
  // Nothing in flight: expedite is a no-op.
  const c = new Channel();
  c.expedite(5);
  assert.equal(c.nextTimeout(), undefined);
});

Deno.test("reliable: path-change resends are not timeouts: not counted, no backoff, not struggling", () => {
  const rto = DEFAULT_RELIABLE.initialRto;
  const a = new Channel();
  for (let i = 1; i <= 3; i++) a.push(enc.encode(`r${i}`));
  assert.equal(a.pollData(0).length, 3);
  // Three path changes in a row: each resends everything at once.
  for (const at of [100, 200, 300]) {
    a.expedite(at);
    const out = a.pollData(at);
    assert.deepEqual(out.map((d) => [d.seq, d.reason]), [[1, "resend"], [2, "resend"], [
      3,
      "resend",
    ]]);
    // No backoff: the timer restarts at one RTO.
    assert.equal(a.nextTimeout(), at + rto, "a resend must not back off");
  }
  assert.equal(a.stats.retransmits, 0, "resends are not retransmissions");
  assert.equal(a.stats.resends, 9);
  assert.equal(a.stats.sent, 3);
  assert.equal(a.struggling, false, "resends say nothing about the path");
  // A real timeout afterwards is a retransmission and starts the backoff.
  const timeout = a.pollData(300 + rto);
  assert.deepEqual(timeout.map((d) => d.reason), ["timeout", "timeout", "timeout"]);
  assert.equal(a.stats.retransmits, 3);
  assert.equal(a.nextTimeout(), 300 + rto + 2 * rto);
  assert.equal(a.struggling, true);
  // A resend after timeouts keeps the backed-off timer (it does not reset the backoff).
  a.expedite(1_000);
  assert.deepEqual(a.pollData(1_000).map((d) => d.reason), ["resend", "resend", "resend"]);
  assert.equal(a.nextTimeout(), 1_000 + 2 * rto);
  assert.equal(a.stats.retransmits, 3);
  assert.equal(a.stats.resends, 12);
});

Deno.test("reliable: a duplicate DATA frame delivers nothing and is still acknowledged", () => {
  const b = new Channel();
  const one = b.onData(data(1, false, "one"), NOW);
  assert.deepEqual(one.deliver.map((d) => dec.decode(d.text)), ["one"]);
  assert.deepEqual(one.ack, { stream: 0, cumulative: 1, selective: 0 });
  assert.equal(one.reset, false, "the first stream seen is not a reset");
  const again = b.onData(data(1, false, "one"), NOW);
  assert.deepEqual(again.deliver, []);
  assert.deepEqual(again.ack, { stream: 0, cumulative: 1, selective: 0 });
  assert.equal(b.stats.duplicates, 1);
  // A duplicate of a buffered, out-of-order frame: no delivery, same ACK.
  const three = b.onData(data(3, true, "three", 2), NOW);
  assert.deepEqual(three.deliver, []);
  assert.deepEqual(three.ack, { stream: 0, cumulative: 1, selective: 0b1 });
  const threeAgain = b.onData(data(3, true, "three", 2), NOW);
  assert.deepEqual(threeAgain.deliver, []);
  assert.deepEqual(threeAgain.ack, three.ack);
  assert.equal(b.stats.duplicates, 2);
  // The gap fills: 2 and 3 come out in order, `more` flags unchanged.
  const two = b.onData(data(2, false, "two", 2), NOW);
  assert.deepEqual(two.deliver.map((d) => [dec.decode(d.text), d.more]), [
    ["two", false],
    ["three", true],
  ]);
  assert.deepEqual(two.ack, { stream: 0, cumulative: 3, selective: 0 });
  assert.equal(b.stats.delivered, 3);
  assert.equal(b.stats.streamResets, 0);
});

Deno.test("reliable: selective ACK bits acknowledge out-of-order frames so they are not retransmitted", () => {
  const a = new Channel({ window: 64 });
  const b = new Channel({ window: 64 });
  for (let i = 1; i <= 34; i++) a.push(enc.encode(`s${i}`), i % 3 === 0);
  const out = a.pollData(0);
  assert.equal(out.length, 34);
  // Seq 1 is lost; 2..34 arrive (33 = cumulative + 2 + 31 is the bitmap's top bit).
  let ack: OutAck | undefined;
  for (const d of out.slice(1)) {
    const r = b.onData(travel(d), NOW);
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
  const r1 = b.onData(travel(re[0]!), NOW);
  assert.deepEqual(r1.deliver.map((d) => dec.decode(d.text)), out.map((d) => dec.decode(d.text)));
  assert.deepEqual(
    r1.deliver.map((d) => d.more),
    out.map((d) => d.more),
    "`more` flags pass through unchanged",
  );
  const r34 = b.onData(travel(re[1]!), NOW);
  assert.deepEqual(r34.deliver, []);
  assert.equal(b.stats.duplicates, 1);
  a.onAck(600, r34.ack);
  assert.equal(a.outstanding, 0);

  // A sparse bitmap: bits for seqs 3 and 5 only.
  const c = new Channel();
  const d = new Channel();
  for (let i = 1; i <= 5; i++) c.push(enc.encode(`${i}`));
  const cs = c.pollData(0);
  let last: OutAck | undefined;
  for (const f of cs) if (f.seq === 3 || f.seq === 5) last = d.onData(travel(f), NOW).ack;
  assert.deepEqual(last, { stream: 0, cumulative: 0, selective: 0b1010 });
  c.onAck(50, last!);
  assert.deepEqual(c.pollData(DEFAULT_RELIABLE.initialRto).map((f) => f.seq), [1, 2, 4]);
});

Deno.test("reliable: the receive buffer holds at most `window` sequences; frames beyond are dropped, not acknowledged", () => {
  const window = 4;
  // The sender's window is larger than the receiver's, so it can overrun it.
  const a = new Channel({ window: 16 });
  const b = new Channel({ window });
  for (let i = 1; i <= 10; i++) a.push(enc.encode(`r${i}`), i === 4);
  const out = a.pollData(0);
  assert.equal(out.length, 10);
  // Seq 1 is lost; the rest arrive. Only 2..4 (within 1..window) are kept.
  let ack: OutAck | undefined;
  for (const d of out.slice(1)) ack = b.onData(travel(d), NOW).ack;
  assert.equal(ack!.cumulative, 0);
  assert.deepEqual(sacked(ack!), [2, 3, 4], "frames beyond the span are not acknowledged");
  assert.equal(b.stats.duplicates, 0, "a dropped frame is not a duplicate");
  a.onAck(40, ack!);
  // Dropped frames stay in flight and come back with seq 1.
  const re = a.pollData(DEFAULT_RELIABLE.initialRto);
  assert.deepEqual(re.map((d) => d.seq), [1, 5, 6, 7, 8, 9, 10]);
  const got: string[] = [];
  const mores: boolean[] = [];
  let last: OutAck | undefined;
  for (const d of re) {
    const r = b.onData(travel(d), NOW);
    for (const x of r.deliver) {
      got.push(dec.decode(x.text));
      mores.push(x.more);
    }
    last = r.ack;
  }
  assert.deepEqual(got, out.map((d) => dec.decode(d.text)));
  assert.deepEqual(mores, out.map((d) => d.more));
  assert.deepEqual(last, { stream: 0, cumulative: 10, selective: 0 });
  a.onAck(600, last!);
  assert.equal(a.outstanding, 0);
  assert.equal(b.stats.delivered, 10);

  // A frame dropped for being beyond the span is not delivered when the gap below it fills.
  const c = new Channel({ window });
  assert.deepEqual(sacked(c.onData(data(5, false, "five"), NOW).ack), []);
  const filled: string[] = [];
  for (let s = 1; s <= 4; s++) {
    for (const x of c.onData(data(s, false, `${s}`), NOW).deliver) filled.push(dec.decode(x.text));
  }
  assert.deepEqual(filled, ["1", "2", "3", "4"], "5 was dropped, so it is not delivered yet");
  assert.deepEqual(c.onData(data(5, false, "five"), NOW).deliver.map((x) => dec.decode(x.text)), [
    "five",
  ]);

  // Random arrival orders: the buffer never exceeds the span below cumulative + window.
  const rand = prng(77);
  for (const w of [2, 5, 16, 32]) {
    const r = new Channel({ window: w });
    const seqs = Array.from({ length: 60 }, (_, i) => i + 1);
    const arrivals = [...seqs, ...seqs, ...seqs].sort(() => rand() - 0.5);
    const deliveredSeqs: number[] = [];
    for (const s of arrivals) {
      const { deliver, ack } = r.onData(data(s, false, `${s}`), NOW);
      for (const x of deliver) deliveredSeqs.push(Number(dec.decode(x.text)));
      const held = sacked(ack);
      assert.ok(held.length <= w - 1, `window ${w}: ${held.length} buffered`);
      assert.ok(held.every((h) => h <= ack.cumulative + w), `window ${w}: beyond span ${held}`);
    }
    // Each sequence arrived three times in random order: what was delivered is a gap-free
    // prefix, once each.
    assert.deepEqual(deliveredSeqs, seqs.slice(0, deliveredSeqs.length), `window ${w}`);
  }
});

Deno.test("reliable: `more` flags pass through unchanged from push to delivery", () => {
  const a = new Channel();
  const b = new Channel();
  const flags = [true, true, false, false, true, false, true, true, true, false];
  flags.forEach((m, i) => a.push(enc.encode(`f${i}`), m));
  a.push(enc.encode("default")); // `more` defaults to false
  const out = a.pollData(0);
  assert.deepEqual(out.map((d) => d.more), [...flags, false]);
  const got: boolean[] = [];
  // Deliver in reverse order: delivery is still in order with the right flags.
  for (const d of [...out].reverse()) {
    for (const x of b.onData(travel(d), NOW).deliver) got.push(x.more);
  }
  assert.deepEqual(got, [...flags, false]);
});

Deno.test("reliable: outstanding returns to 0 after all acks and stale acks are harmless", () => {
  const a = new Channel();
  assert.equal(a.outstanding, 0);
  assert.equal(a.nextTimeout(), undefined);
  a.push(enc.encode("a"));
  a.push(enc.encode("b"));
  assert.equal(a.outstanding, 2, "queued payloads count");
  a.pollData(0);
  assert.equal(a.outstanding, 2, "in-flight payloads count");
  a.onAck(10, { stream: 0, cumulative: 1, selective: 0 });
  assert.equal(a.outstanding, 1);
  // An older ACK arriving late changes nothing.
  a.onAck(11, { stream: 0, cumulative: 0, selective: 0 });
  assert.equal(a.outstanding, 1);
  a.onAck(12, { stream: 0, cumulative: 2, selective: 0 });
  assert.equal(a.outstanding, 0);
  assert.equal(a.nextTimeout(), undefined);
  assert.equal(a.struggling, false);
  // Acks beyond anything sent do not break later sends.
  a.onAck(13, { stream: 0, cumulative: 2, selective: 0xffffffff });
  a.push(enc.encode("c"));
  assert.deepEqual(a.pollData(20).map((d) => d.seq), [3]);
  assert.equal(a.outstanding, 1);
});

Deno.test("reliable: ACKs of another stream are ignored", () => {
  const a = new Channel({}, 7);
  assert.equal(a.stream, 7);
  for (let i = 1; i <= 3; i++) a.push(enc.encode(`x${i}`));
  const out = a.pollData(0);
  assert.ok(out.every((d) => d.stream === 7));
  // An ACK naming another stream (the peer answering an older incarnation of us) acknowledges
  // nothing and gives no RTT sample, however much it claims.
  for (const stream of [0, 6, 8, 7 + 2 ** 32 - 1]) {
    a.onAck(40, { stream, cumulative: 3, selective: 0xffffffff });
    assert.equal(a.outstanding, 3, `stream ${stream}`);
  }
  assert.equal(a.srtt, undefined);
  assert.equal(a.nextTimeout(), DEFAULT_RELIABLE.initialRto);
  assert.deepEqual(a.pollData(DEFAULT_RELIABLE.initialRto).map((d) => d.seq), [1, 2, 3]);
  // The right stream acknowledges; a 32-bit stream id compares as unsigned.
  a.onAck(600, { stream: 7, cumulative: 3, selective: 0 });
  assert.equal(a.outstanding, 0);
  const big = new Channel({}, 0xffff_fff0);
  big.push(enc.encode("y"));
  big.pollData(0);
  big.onAck(10, { stream: 0xffff_fff0 | 0, cumulative: 1, selective: 0 }); // signed form
  assert.equal(big.outstanding, 0);
});

Deno.test("reliable: maxQueue bounds the send queue; push refuses when full", () => {
  const a = new Channel({ maxQueue: 3, window: 2 });
  assert.equal(a.queueRoom, 3);
  for (let i = 1; i <= 3; i++) assert.equal(a.push(enc.encode(`q${i}`)), true);
  assert.equal(a.queueRoom, 0);
  assert.equal(a.push(enc.encode("refused")), false, "a full queue refuses");
  assert.equal(a.queued, 3);
  assert.equal(a.outstanding, 3);
  // Sending moves payloads into flight and frees queue room (in-flight ones do not count).
  assert.deepEqual(a.pollData(0).map((d) => d.seq), [1, 2]);
  assert.equal(a.queued, 1);
  assert.equal(a.queueRoom, 2);
  assert.equal(a.push(enc.encode("q4")), true);
  assert.equal(a.push(enc.encode("q5")), true);
  assert.equal(a.push(enc.encode("refused too")), false);
  assert.equal(a.outstanding, 5);
  // Everything accepted, and nothing refused, reaches the peer.
  const b = new Channel({ window: 2 });
  const got: string[] = [];
  let now = 0;
  const deliver = (frames: OutData[]) => {
    for (const d of frames) {
      const r = b.onData(travel(d), NOW);
      for (const x of r.deliver) got.push(dec.decode(x.text));
      a.onAck(now, r.ack);
    }
  };
  deliver(a.pollData(now).concat()); // nothing new yet
  for (let i = 0; i < 10 && a.outstanding > 0; i++) {
    now = a.nextTimeout() ?? now + 1;
    deliver(a.pollData(now));
  }
  assert.deepEqual(got, ["q1", "q2", "q3", "q4", "q5"]);
  assert.equal(a.outstanding, 0);
  assert.equal(a.queueRoom, 3);
});

Deno.test("reliable: a recreated receiver resynchronises to the sender's stream via base", () => {
  const a = new Channel({ fastThreshold: Infinity }, 5);
  let b = new Channel();
  for (let i = 1; i <= 5; i++) a.push(enc.encode(`m${i}`));
  const out = a.pollData(0);
  // 1..3 arrive and are acknowledged; 4 and 5 are lost.
  const before: string[] = [];
  for (const d of out.slice(0, 3)) {
    const r = b.onData(travel(d), NOW);
    for (const x of r.deliver) before.push(dec.decode(x.text));
    a.onAck(30, r.ack);
  }
  assert.deepEqual(before, ["m1", "m2", "m3"]);
  assert.equal(a.base, 4);
  // B forgets A (its state was dropped) and makes a fresh channel; A keeps its stream.
  b = new Channel();
  for (let i = 6; i <= 7; i++) a.push(enc.encode(`m${i}`));
  const fresh = a.pollData(40);
  assert.deepEqual(fresh.map((d) => [d.stream, d.seq, d.base]), [[5, 6, 4], [5, 7, 4]]);
  const after: string[] = [];
  const take = (d: OutData) => {
    const r = b.onData(travel(d), NOW);
    assert.equal(r.reset, false, "the first stream a channel sees is not a reset");
    for (const x of r.deliver) after.push(dec.decode(x.text));
    return r.ack;
  };
  // 6 and 7 are buffered above base 4 (and acknowledged selectively), not waiting for 1..3.
  let ack = take(fresh[0]!);
  ack = take(fresh[1]!);
  assert.deepEqual(ack, { stream: 5, cumulative: 3, selective: 0b110 });
  a.onAck(60, ack);
  assert.equal(a.outstanding, 2);
  // The timeout resends exactly the unacknowledged 4 and 5.
  const re = a.pollData(DEFAULT_RELIABLE.initialRto);
  assert.deepEqual(re.map((d) => [d.seq, d.reason, d.base]), [[4, "timeout", 4], [
    5,
    "timeout",
    4,
  ]]);
  for (const d of re) ack = take(d);
  // Replays of anything are duplicates.
  for (const d of [...re, ...fresh]) ack = take(d);
  a.onAck(600, ack);
  assert.deepEqual(after, ["m4", "m5", "m6", "m7"], "exactly the unacknowledged, none twice");
  assert.equal(a.outstanding, 0);
  assert.equal(b.stats.delivered, 4);
  assert.equal(b.stats.duplicates, 4);
  assert.equal(b.stats.streamResets, 0);
});

Deno.test("reliable: a receiver follows a recreated sender's new stream (not mistaken for duplicates)", () => {
  const b = new Channel();
  let a = new Channel({}, 100);
  for (let i = 1; i <= 3; i++) a.push(enc.encode(`old${i}`));
  const got: string[] = [];
  for (const d of a.pollData(0)) {
    const r = b.onData(travel(d), NOW);
    for (const x of r.deliver) got.push(dec.decode(x.text));
    a.onAck(20, r.ack);
  }
  assert.deepEqual(got, ["old1", "old2", "old3"]);
  // A forgets B and makes a fresh channel with another stream id: it starts again at seq 1.
  a = new Channel({}, 200);
  for (let i = 1; i <= 4; i++) a.push(enc.encode(`new${i}`), i === 2);
  const fresh = a.pollData(100);
  assert.deepEqual(fresh.map((d) => [d.stream, d.seq, d.base]), [
    [200, 1, 1],
    [200, 2, 1],
    [200, 3, 1],
    [200, 4, 1],
  ]);
  // Out of order: 2 first. The stream change resets the receiver (a partial message is void).
  const r2 = b.onData(travel(fresh[1]!), NOW);
  assert.equal(r2.reset, true);
  assert.deepEqual(r2.deliver, []);
  assert.deepEqual(r2.ack, { stream: 200, cumulative: 0, selective: 0b1 });
  for (const d of [fresh[0]!, fresh[2]!, fresh[3]!]) {
    const r = b.onData(travel(d), NOW);
    assert.equal(r.reset, false, "only the change of stream is a reset");
    for (const x of r.deliver) got.push(dec.decode(x.text));
    a.onAck(150, r.ack);
  }
  assert.deepEqual(got, ["old1", "old2", "old3", "new1", "new2", "new3", "new4"]);
  assert.equal(b.stats.duplicates, 0, "new messages are not mistaken for duplicates");
  assert.equal(b.stats.streamResets, 1);
  assert.equal(a.outstanding, 0, "the new sender accepts ACKs of its own stream");
});

Deno.test("reliable: maxSeq: the sender waits for every ACK, then continues on stream + 1", () => {
  const a = new Channel({ maxSeq: 3 }, 10);
  const b = new Channel();
  for (let i = 1; i <= 7; i++) a.push(enc.encode(`w${i}`), i === 3);
  const got: string[] = [];
  const take = (frames: OutData[], now: number, ackIt = true) => {
    const resets: boolean[] = [];
    for (const d of frames) {
      const r = b.onData(travel(d), NOW);
      resets.push(r.reset);
      for (const x of r.deliver) got.push(`${dec.decode(x.text)}${x.more ? "+" : ""}`);
      if (ackIt) a.onAck(now, r.ack);
    }
    return resets;
  };
  const first = a.pollData(0);
  assert.deepEqual(first.map((d) => [d.stream, d.seq]), [[10, 1], [10, 2], [10, 3]]);
  assert.deepEqual(a.pollData(1), [], "sequence space used up");
  take(first.slice(0, 2), 2);
  assert.deepEqual(a.pollData(2), [], "3 is still in flight: no new stream yet");
  assert.equal(a.stream, 10);
  take(first.slice(2), 3);
  const second = a.pollData(3);
  assert.equal(a.stream, 11);
  assert.deepEqual(second.map((d) => [d.stream, d.seq, d.base]), [[11, 1, 1], [11, 2, 1], [
    11,
    3,
    1,
  ]]);
  assert.deepEqual(take(second, 4), [true, false, false]);
  const third = a.pollData(4);
  assert.deepEqual(third.map((d) => [d.stream, d.seq]), [[12, 1]]);
  take(third, 5);
  assert.deepEqual(got, ["w1", "w2", "w3+", "w4", "w5", "w6", "w7"]);
  assert.equal(a.outstanding, 0);
  assert.equal(b.stats.streamResets, 2);
  assert.equal(b.stats.duplicates, 0);
});

Deno.test("reliable sim: maxSeq wrap on a reordering, lossy link: every payload once, in order", () => {
  for (const seed of SEEDS) {
    const maxSeq = 7;
    const r = simulate({
      seed: seed + 2000,
      messages: 100,
      pushSpread: 2_000,
      reliable: { maxSeq, window: 4, minRto: 100, maxRto: 1_000, batchBytes: 0 },
      streams: { A: 0xffff_fffe, B: 40 },
      link: { loss: 0.2, dup: 0.1, minDelay: 5, maxDelay: 150 },
    });
    const label = `seed ${seed}`;
    assertExactlyOnceInOrder(r, label);
    const wraps = Math.ceil(100 / maxSeq) - 1;
    // Stream ids are 32-bit and wrap too.
    assert.deepEqual(
      r.streamsUsed.A,
      Array.from({ length: wraps + 1 }, (_, i) => (0xffff_fffe + i) >>> 0),
      label,
    );
    assert.deepEqual(r.streamsUsed.B, Array.from({ length: wraps + 1 }, (_, i) => 40 + i));
    assert.equal(r.b.stats.streamResets, wraps, `${label}: B follows each new stream of A`);
    assert.equal(r.a.stats.streamResets, wraps, `${label}: A follows each new stream of B`);
    assert.ok(r.a.stats.retransmits > 0, `${label}: the link should have lost frames`);
  }
});

// A late copy of a frame of a stream the peer left behind (a network duplicate, or a
// retransmission still in flight when the ACK that emptied the window arrived) must never make
// the receiver switch back to that stream and deliver the payload again.
Deno.test({
  name: "reliable: a late copy of the previous stream's frame after a wrap is not delivered again",
  fn() {
    const a = new Channel({ maxSeq: 1 });
    const b = new Channel();
    a.push(enc.encode("m1"));
    a.push(enc.encode("m2"));
    const f1 = a.pollData(0)[0]!;
    const r1 = b.onData(travel(f1), NOW);
    a.onAck(10, r1.ack);
    const f2 = a.pollData(10)[0]!;
    assert.deepEqual([f2.stream, f2.seq], [1, 1]);
    const r2 = b.onData(travel(f2), NOW);
    a.onAck(20, r2.ack);
    const got = [...r1.deliver, ...r2.deliver].map((x) => dec.decode(x.text));
    assert.deepEqual(got, ["m1", "m2"]);
    // The network delivers a second copy of f1 late.
    const late = b.onData(travel(f1), NOW);
    assert.deepEqual(late.deliver.map((x) => dec.decode(x.text)), [], "m1 delivered twice");
  },
});

Deno.test("reliable: delayed ACK: every ackEvery-th in-order frame, else after ackDelay", () => {
  const { ackEvery, ackDelay } = DEFAULT_RELIABLE;
  assert.ok(ackEvery > 1 && ackDelay > 0, "ACKs are delayed by default");
  const b = new Channel();
  assert.equal(b.nextTimeout(), undefined);
  // In-order frames: the ackEvery-th is acknowledged at once, the others wait.
  for (let s = 1; s <= ackEvery; s++) {
    const r = b.onData(data(s, false, `${s}`, 1), 100 + s);
    assert.equal(r.ackNow, s === ackEvery, `frame ${s}`);
    assert.deepEqual(r.ack, { stream: 0, cumulative: s, selective: 0 });
    if (s < ackEvery) {
      assert.equal(b.ackPending, true);
      assert.equal(b.nextTimeout(), 101 + ackDelay, "timed from the first frame waiting");
    }
  }
  assert.equal(b.ackPending, false);
  // The timer may outlive the ACK sent early: a wake-up then finds nothing and it stops.
  const wake = b.nextTimeout();
  if (wake !== undefined) {
    assert.equal(b.pollAck(wake), undefined);
    assert.equal(b.nextTimeout(), undefined);
  }
  // A lone frame is acknowledged ackDelay after it arrived, not before.
  const lone = b.onData(data(ackEvery + 1, false, "lone", 1), 200);
  assert.equal(lone.ackNow, false);
  assert.equal(b.nextTimeout(), 200 + ackDelay);
  assert.equal(b.pollAck(200 + ackDelay - 0.5), undefined);
  assert.deepEqual(b.pollAck(200 + ackDelay), {
    stream: 0,
    cumulative: ackEvery + 1,
    selective: 0,
  });
  assert.equal(b.pollAck(200 + ackDelay), undefined, "handed out once");
  assert.equal(b.nextTimeout(), undefined);
  assert.equal(b.stats.acks, 2);
});

Deno.test("reliable: out-of-order, gap-filling, duplicate and new-stream frames are acknowledged at once", () => {
  const b = new Channel();
  assert.equal(b.onData(data(1, false, "1"), 0).ackNow, false, "in order: may wait");
  const gap = b.onData(data(3, false, "3"), 1);
  assert.equal(gap.ackNow, true, "out of order: a loss to repair");
  assert.deepEqual(gap.ack, { stream: 0, cumulative: 1, selective: 0b1 });
  assert.equal(b.ackPending, false, "the immediate ACK covers the waiting one");
  const fill = b.onData(data(2, false, "2"), 2);
  assert.equal(fill.ackNow, true, "fills the gap");
  assert.deepEqual(fill.ack, { stream: 0, cumulative: 3, selective: 0 });
  assert.equal(b.onData(data(2, false, "2"), 3).ackNow, true, "a duplicate: our ACK was lost");
  assert.equal(b.onData(data(4, false, "4"), 4).ackNow, false);
  const reset = b.onData(data(1, false, "new stream", 1, 9), 5);
  assert.equal(reset.reset, true);
  assert.equal(reset.ackNow, true, "a new stream");
  assert.deepEqual(reset.ack, { stream: 9, cumulative: 1, selective: 0 });
  // ackEvery 1 (or ackDelay 0) acknowledges every frame at once, as before.
  for (const o of [{ ackEvery: 1 }, { ackDelay: 0 }]) {
    const c = new Channel(o);
    for (let s = 1; s <= 5; s++) assert.equal(c.onData(data(s, false, `${s}`), s).ackNow, true);
    assert.equal(c.nextTimeout(), undefined);
  }
});

Deno.test("reliable: with delayed ACKs the RTT sample is the newest payload's, none after a repair", () => {
  const a = new Channel();
  for (let i = 0; i < 3; i++) {
    a.push(enc.encode(`${i}`));
    a.pollData(i * 10); // Sent at 0, 10, 20.
  }
  // One ACK for all three at 25: the sample is 25 - 20, not 25 - 0.
  a.onAck(25, { stream: 0, cumulative: 3, selective: 0 });
  assert.equal(a.srtt, 5);
  // 4 is lost and resent after its timeout; 5 and 6 arrive. The ACK that acknowledges the
  // resent 4 with them gives no sample (5 and 6 waited behind the loss).
  for (const t of ["4", "5", "6"]) a.push(enc.encode(t));
  a.pollData(100);
  const re = a.pollData(a.nextTimeout()!);
  assert.deepEqual(re.map((d) => [d.seq, d.reason]), [[4, "timeout"], [5, "timeout"], [
    6,
    "timeout",
  ]]);
  a.onAck(400, { stream: 0, cumulative: 6, selective: 0 });
  assert.equal(a.srtt, 5, "no sample from an ACK of retransmitted payloads");
  assert.equal(a.outstanding, 0);
});

Deno.test("reliable: fast retransmit: a payload with three later ones acknowledged is resent once the loss delay passed", () => {
  const a = new Channel();
  a.seedRtt(20); // srtt 20, rttvar 10: loss delay 20 + 4 * 10 = 60; RTO 150 (the floor).
  assert.equal(a.rto, DEFAULT_RELIABLE.minRto);
  for (let i = 1; i <= 8; i++) a.push(enc.encode(`${i}`));
  assert.equal(a.pollData(0).length, 8);
  // 2 is lost: 3 and 4 acknowledged are not enough (reordering)...
  a.onAck(22, { stream: 0, cumulative: 1, selective: 0b11 });
  assert.equal(a.nextTimeout(), 150, "nothing but the timer so far");
  // ...5 makes three later payloads: 2 is due at 0 + loss delay (60), not at the RTO (150).
  a.onAck(23, { stream: 0, cumulative: 1, selective: 0b111 });
  const due = a.nextTimeout()!;
  assert.ok(due > 23 && due < DEFAULT_RELIABLE.minRto, `fast retransmit at ${due}`);
  assert.deepEqual(a.pollData(due - 0.1), []);
  const fast = a.pollData(due);
  assert.deepEqual(fast.map((d) => [d.seq, d.reason]), [[2, "fast"]]);
  assert.equal(a.stats.fastRetransmits, 1);
  assert.equal(a.stats.retransmits, 0, "not a timeout");
  assert.equal(a.struggling, false, "no backoff, nothing said about the path");
  // More ACKs of later payloads do not resend it again before its own timer...
  a.onAck(due + 1, { stream: 0, cumulative: 1, selective: 0b1111 });
  assert.deepEqual(a.pollData(due + 1), []);
  // ...and its ACK gives no RTT sample (Karn).
  const srtt = a.srtt;
  a.onAck(due + 30, { stream: 0, cumulative: 8, selective: 0 });
  assert.equal(a.srtt, srtt);
  assert.equal(a.outstanding, 0);
  assert.equal(a.nextTimeout(), undefined);
});

Deno.test("reliable: fast retransmit: an ACK arriving within the loss delay prevents the resend (reordering)", () => {
  const a = new Channel();
  a.seedRtt(20);
  for (let i = 1; i <= 6; i++) a.push(enc.encode(`${i}`));
  a.pollData(0);
  a.onAck(22, { stream: 0, cumulative: 1, selective: 0b1111 }); // 3..6: 2 is late.
  const due = a.nextTimeout()!;
  assert.ok(due < DEFAULT_RELIABLE.minRto);
  a.onAck(30, { stream: 0, cumulative: 6, selective: 0 }); // 2 arrives after all.
  assert.deepEqual(a.pollData(due), []);
  assert.equal(a.stats.fastRetransmits, 0);
  // fastThreshold Infinity: only the timer resends.
  const b = new Channel({ fastThreshold: Infinity });
  b.seedRtt(20);
  for (let i = 1; i <= 6; i++) b.push(enc.encode(`${i}`));
  b.pollData(0);
  b.onAck(22, { stream: 0, cumulative: 1, selective: 0b1111 });
  assert.equal(b.nextTimeout(), DEFAULT_RELIABLE.minRto);
});

Deno.test("reliable: windowBytes bounds the payload bytes in flight (one payload always goes)", () => {
  const a = new Channel({ window: 100, windowBytes: 1000 });
  for (let i = 0; i < 6; i++) a.push(new Uint8Array(400).fill(i));
  assert.deepEqual(a.pollData(0).map((d) => d.seq), [1, 2], "800 bytes; a third makes 1200");
  assert.deepEqual(a.pollData(1), []);
  a.onAck(10, { stream: 0, cumulative: 1, selective: 0 });
  assert.deepEqual(a.pollData(10).map((d) => d.seq), [3]);
  a.onAck(20, { stream: 0, cumulative: 3, selective: 0 });
  assert.deepEqual(a.pollData(20).map((d) => d.seq), [4, 5]);
  a.onAck(30, { stream: 0, cumulative: 5, selective: 0 });
  assert.deepEqual(a.pollData(30).map((d) => d.seq), [6]);
  // A payload larger than windowBytes still goes out, alone.
  const b = new Channel({ windowBytes: 100 });
  b.push(new Uint8Array(500));
  b.push(new Uint8Array(10));
  assert.deepEqual(b.pollData(0).map((d) => d.seq), [1]);
  b.onAck(5, { stream: 0, cumulative: 1, selective: 0 });
  assert.deepEqual(b.pollData(5).map((d) => d.seq), [2]);
  // Timeouts resend what is in flight whatever the byte count.
  assert.deepEqual(b.pollData(b.nextTimeout()!).map((d) => [d.seq, d.reason]), [[2, "timeout"]]);
});

Deno.test("reliable: takeAck hands out a delayed ACK at once (before leaving), else nothing", () => {
  const b = new Channel();
  assert.equal(b.takeAck(), undefined);
  b.onData(data(1, false, "1"), 0);
  assert.equal(b.ackPending, true);
  assert.deepEqual(b.takeAck(), { stream: 0, cumulative: 1, selective: 0 });
  assert.equal(b.ackPending, false);
  assert.equal(b.takeAck(), undefined);
  assert.equal(b.pollAck(1_000), undefined);
  assert.equal(b.nextTimeout(), undefined);
});

Deno.test("reliable: a base beyond what was delivered: buffered frames delivered, the rest missed", () => {
  const b = new ReliableChannel();
  const data = (seq: number, base: number, text: string): DataFrame => ({
    stream: 7,
    base,
    seq,
    first: true,
    more: false,
    text: enc.encode(text),
  });
  const got: string[] = [];
  const take = (r: { deliver: { text: Uint8Array }[] }) => {
    for (const x of r.deliver) got.push(dec.decode(x.text));
  };
  take(b.onData(data(1, 1, "one"), 0));
  take(b.onData(data(3, 1, "three"), 0)); // 2 is lost on the way, 3 waits for it
  // The sender gave 2 to 5 up (its base is 6): 3 is delivered, 2, 4 and 5 are missed.
  const r = b.onData(data(6, 6, "six"), 0);
  take(r);
  assert.equal(r.missed, 3);
  assert.equal(r.ackNow, true, "acknowledged at once");
  assert.deepEqual(r.ack, { stream: 7, cumulative: 6, selective: 0 });
  assert.deepEqual(got, ["one", "three", "six"]);
  assert.equal(b.stats.missed, 3);
  // An honest base (nothing skipped) is never a miss, and a far one costs no walk.
  assert.equal(b.onData(data(7, 7, "seven"), 0).missed, 0);
  assert.equal(b.onData(data(0xffff_fff0, 0xffff_fff0, "far"), 0).missed, 0xffff_fff0 - 8);
});

Deno.test("reliable: a silent peer gets one retry per timeout, no more; an ACK sends the rest", () => {
  const a = new ReliableChannel({}, 5);
  a.push(enc.encode("line 0"));
  let now = 0;
  assert.equal(a.pollData(now).length, 1);
  // A line a second for two minutes while the peer sleeps.
  const sent: OutData[] = [];
  for (let i = 1; i <= 120; i++) {
    now += 1_000;
    a.push(enc.encode(`line ${i}`));
    sent.push(...a.pollData(now));
  }
  // Until its first retry it looked alive; after that, only the oldest frame is retried, at
  // most every maxRto, and nothing new goes out.
  const late = sent.filter((d) => d.reason !== "new" || d.seq > 3);
  assert.ok(
    late.every((d) => d.seq === 1 && d.reason === "timeout"),
    JSON.stringify(late.map((d) => [d.seq, d.reason])),
  );
  // Backing off 0.5, 1, 2, 4 s, then every 8 s.
  assert.ok(late.length <= 4 + 120_000 / DEFAULT_RELIABLE.maxRto, `${late.length} retries`);
  assert.equal(a.outstanding, 121, "nothing given up");
  // The peer wakes and acknowledges the oldest: the rest goes at once.
  a.onAck(now, { stream: 5, cumulative: 1, selective: 0 });
  const rest = a.pollData(now);
  assert.ok(rest.some((d) => d.reason === "resend") || rest.every((d) => d.reason === "new"));
  assert.equal(a.queued, 0, "every line waiting went out");
});

Deno.test("reliable: giving up when leaving: the receiver gets what it holds and counts the rest missed", () => {
  const a = new ReliableChannel({}, 3);
  const b = new ReliableChannel();
  const got: string[] = [];
  const take = (d: OutData) => {
    const r = b.onData(d, 0);
    for (const x of r.deliver) if (x.text.length) got.push(dec.decode(x.text));
    return r;
  };
  assert.equal(a.giveUp(), undefined, "nothing outstanding, nothing to give up");
  a.push(enc.encode("one"));
  take(a.pollData(0)[0]!);
  a.onAck(10, b.takeAck() ?? { stream: 3, cumulative: 1, selective: 0 });
  a.push(enc.encode("two"));
  a.push(enc.encode("three"));
  a.pollData(20); // both go out (one batch or two), and are lost
  // The peer stopped answering: the oldest is retried, later lines wait in the queue.
  a.pollData(5_000);
  a.push(enc.encode("four"));
  a.push(enc.encode("five"));
  assert.equal(a.outstanding, 4);
  const gap = a.giveUp()!;
  assert.equal(a.outstanding, 0, "nothing waits any more");
  assert.equal(a.nextTimeout(), undefined, "no timer left");
  assert.equal(gap.text.length, 0, "the frame carries no payload");
  assert.equal(gap.base, gap.seq);
  const r = take(gap);
  assert.equal(r.missed, gap.seq - 2, "every frame after the first, sent or queued, is missed");
  assert.ok(r.missed >= 3);
  assert.deepEqual(got, ["one"]);
  assert.equal(a.giveUp(), undefined, "given up once");
});
