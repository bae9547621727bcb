import assert from "node:assert/strict";
import {
  ACK_EVERY,
  ACK_EVERY_FAST,
  BulkReceiver,
  FAST_SPAN,
} from "../../lib/files/bulk_receiver.ts";
import { BETA, Cubic, INITIAL_WINDOW, MIN_WINDOW, MSS, Pacer } from "../../lib/files/congestion.ts";
import { decodeFileFrame, encodeFileFrame, FileKind } from "../../lib/wire/file_frame.ts";
import { prng } from "../support/prng.ts";

Deno.test("the receiver's ranges match a model under random arrival, duplicates told apart", () => {
  const r = prng(1);
  for (let round = 0; round < 50; round++) {
    const rx = new BulkReceiver();
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const pn = Math.floor(r() * 60); // at most 30 ranges: none forgotten
      assert.equal(rx.handlePacket(pn, i), !seen.has(pn), `pn ${pn}`);
      seen.add(pn);
    }
    const ack = rx.pollAck(1000);
    assert.ok(ack && ack.kind === FileKind.Ack);
    // The ack round-trips through the codec and lists exactly the highest ranges seen.
    const d = decodeFileFrame(encodeFileFrame(ack));
    assert.ok(d.ok);
    const listed = new Set<number>();
    for (const [hi, lo] of ack.ranges) for (let p = lo; p <= hi; p++) listed.add(p);
    const lowest = ack.ranges[ack.ranges.length - 1]![1];
    for (const p of seen) if (p >= lowest) assert.ok(listed.has(p), `pn ${p}`);
    for (const p of listed) assert.ok(seen.has(p));
  }
});

Deno.test("acks: every few in-order packets, at once on a gap, else after a short delay", () => {
  const rx = new BulkReceiver();
  for (let pn = 0; pn < ACK_EVERY - 1; pn++) rx.handlePacket(pn, 0);
  // The first packet opened a range: acknowledged at once.
  assert.ok(rx.pollAck(0));
  rx.handlePacket(ACK_EVERY - 1, 1);
  assert.equal(rx.pollAck(1), undefined);
  assert.equal(rx.nextTimeout(), 6);
  assert.ok(rx.pollAck(6));
  rx.handlePacket(ACK_EVERY + 5, 7);
  assert.deepEqual(rx.pollAck(7)?.kind === FileKind.Ack && rx.nextTimeout(), undefined);
});

Deno.test("acks: a fast stream is acknowledged half as often, a burst's tail soon after", () => {
  const rx = new BulkReceiver();
  rx.handlePacket(0, 0);
  assert.ok(rx.pollAck(0));
  // Packets 0.05 ms apart: no acknowledgement at ACK_EVERY, one at ACK_EVERY_FAST.
  let pn = 1, t = 0;
  const sent: number[] = [];
  for (; pn <= 4 * ACK_EVERY_FAST; pn++, t += 0.05) {
    rx.handlePacket(pn, t);
    if (rx.pollAck(t)) sent.push(pn);
  }
  assert.deepEqual(sent, [1, 2, 3, 4].map((i) => i * ACK_EVERY_FAST));
  // A burst that stops between the two thresholds is acknowledged FAST_SPAN after it began.
  for (let i = 0; i < ACK_EVERY + 2; i++, pn++) rx.handlePacket(pn, 10 + i * 0.01);
  assert.equal(rx.pollAck(10.5), undefined);
  assert.equal(rx.nextTimeout(), 10 + FAST_SPAN);
  assert.ok(rx.pollAck(10 + FAST_SPAN));
  // A slower stream (0.5 ms apart) is acknowledged every ACK_EVERY packets, as before.
  const slow: number[] = [];
  for (let i = 1; i <= 2 * ACK_EVERY; i++, pn++) {
    rx.handlePacket(pn, 20 + i / 2);
    if (rx.pollAck(20 + i / 2)) slow.push(i);
  }
  assert.deepEqual(slow, [ACK_EVERY, 2 * ACK_EVERY]);
});

Deno.test("CUBIC: slow start doubles, a loss cuts to β once per round trip, growth is cubic", () => {
  const cc = new Cubic();
  assert.equal(cc.cwnd, INITIAL_WINDOW);
  cc.onAcked(INITIAL_WINDOW, 0, 10, 10, true);
  assert.equal(cc.cwnd, 2 * INITIAL_WINDOW);
  // Not using the window (application-limited): no growth.
  cc.onAcked(INITIAL_WINDOW, 1, 11, 10, false);
  assert.equal(cc.cwnd, 2 * INITIAL_WINDOW);
  const before = cc.cwnd;
  // Losses under the tolerated loss rate are no congestion: the window stays.
  for (let i = 0; i < 5; i++) cc.onLost(5, 20);
  assert.equal(cc.cwnd, before);
  assert.equal(cc.events, 0);
  cc.onLost(5, 20); // over it now
  assert.equal(cc.cwnd, before * BETA);
  cc.onLost(15, 21); // sent before the recovery started: the same event
  assert.equal(cc.cwnd, before * BETA);
  assert.equal(cc.events, 1);
  // Congestion avoidance: concave back to W_max, then convex beyond it.
  let now = 30;
  const trace: number[] = [];
  for (let i = 0; i < 4000; i++) {
    now += 1;
    cc.onAcked(MSS, now - 1, now, 20, true);
    if (i % 500 === 0) trace.push(cc.cwnd);
  }
  assert.ok(trace.every((w, i) => i === 0 || w >= trace[i - 1]!));
  assert.ok(cc.cwnd > before, `${cc.cwnd} vs ${before}`);
  cc.onPersistentCongestion(now);
  assert.equal(cc.cwnd, MIN_WINDOW);
});

Deno.test("the pacer spreads a window over the RTT, with bounded bursts", () => {
  const p = new Pacer();
  p.update(120_000, 100, false, 0); // 1.25 × 1200 bytes per ms
  let sent = 0, now = 0;
  while (now < 100) {
    while (p.canSend(now, MSS)) (p.onSent(now, MSS), sent++);
    now = p.nextSend(now, MSS);
  }
  // 10 packets of initial burst, then 1.25 × cwnd over the RTT.
  assert.ok(sent >= 120 && sent <= 140, `sent ${sent}`);
});

Deno.test("CUBIC: sparse acknowledgements under heavy loss never cap the pacing rate at nothing", () => {
  const cc = new Cubic();
  // One packet acknowledged every 150 ms (probe timeouts), the rest lost.
  for (let t = 150; t < 3000; t += 150) {
    cc.onAcked(MSS, t - 1, t, 10, true);
    for (let i = 0; i < 10; i++) cc.onLost(t - 1, t);
    assert.ok(cc.paceCap > 0, `capped at ${cc.paceCap} at ${t} ms`);
  }
  assert.ok(cc.events > 0);
});
