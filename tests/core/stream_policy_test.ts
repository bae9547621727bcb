/**
 * What one TCP or TLS connection may cost the server, in virtual time: connections in all and
 * per source (an IPv6 source is its /64), the first frame's deadline, idleness (slowloris:
 * bytes without a complete frame never move the deadline), the write queue's bound and a
 * write that stops progressing (a peer that stopped reading).
 */
import assert from "node:assert/strict";
import {
  DEFAULT_STREAM_LIMITS,
  type StreamDropReason,
  StreamPolicy,
} from "../../lib/core/stream_policy.ts";

const LIMITS = {
  maxConnections: 4,
  maxPerSource: 2,
  firstFrameWithin: 1_000,
  idleAfter: 5_000,
  maxQueued: 100,
  writeStallAfter: 2_000,
};

function drops(p: StreamPolicy): { id: number; reason: StreamDropReason }[] {
  const out = [];
  for (let d = p.pollDrop(); d; d = p.pollDrop()) out.push(d);
  return out;
}

/** Runs `p`'s timers up to `until`, as a driver would. */
function runUntil(p: StreamPolicy, until: number): void {
  for (let at = p.nextTimeout(); at !== undefined && at <= until; at = p.nextTimeout()) {
    p.handleTimeout(at);
  }
}

Deno.test("stream policy: connections in all and per source; an IPv6 source is its /64", () => {
  const p = new StreamPolicy(LIMITS);
  assert.equal(p.admit(0, 1, "198.51.100.1"), null);
  assert.equal(p.admit(0, 2, "198.51.100.1"), null);
  assert.equal(p.admit(0, 3, "198.51.100.1"), "source-full");
  assert.equal(p.admit(0, 4, "2001:db8:1:2::1"), null);
  assert.equal(p.admit(0, 5, "2001:db8:1:2::ffff"), null);
  assert.equal(p.admit(0, 6, "2001:db8:1:2::7"), "full");
  assert.equal(p.size, 4);
  p.closed(1);
  assert.equal(p.admit(0, 7, "198.51.100.1"), null, "a closed connection no longer counts");
  assert.equal(p.admit(0, 8, "2001:db8:1:3::1"), "full");
  p.closed(4);
  assert.equal(p.admit(0, 9, "2001:db8:1:2::9"), null);
});

Deno.test("stream policy: no first frame within the deadline, or idle: dropped", () => {
  const p = new StreamPolicy(LIMITS);
  p.admit(0, 1, "198.51.100.1");
  p.admit(0, 2, "198.51.100.2");
  p.received(500, 2);
  runUntil(p, 999);
  assert.deepEqual(drops(p), []);
  runUntil(p, 1_000);
  assert.deepEqual(drops(p), [{ id: 1, reason: "no-first-frame" }]);
  // Frames keep the other one: idle only 5 s after its last.
  p.received(4_000, 2);
  runUntil(p, 8_999);
  assert.deepEqual(drops(p), []);
  runUntil(p, 9_000);
  assert.deepEqual(drops(p), [{ id: 2, reason: "idle" }]);
  assert.equal(p.size, 0);
  assert.equal(p.nextTimeout(), undefined);
});

Deno.test("stream policy: slowloris (bytes but never a whole frame) is dropped on time", () => {
  const p = new StreamPolicy(LIMITS);
  p.admit(0, 1, "198.51.100.1");
  // Partial frames are not reported to the policy at all: nothing moves the deadline.
  runUntil(p, 1_000);
  assert.deepEqual(drops(p), [{ id: 1, reason: "no-first-frame" }]);
});

Deno.test("stream policy: the write queue is bounded; a write that does not progress drops", () => {
  const p = new StreamPolicy(LIMITS);
  p.admit(0, 1, "198.51.100.1");
  p.received(0, 1);
  assert.equal(p.queue(10, 1, 60), true);
  assert.equal(p.queue(10, 1, 40), true);
  assert.equal(p.queued(1), 100);
  assert.equal(p.queue(10, 1, 1), false, "one byte more than maxQueued");
  assert.deepEqual(drops(p), [{ id: 1, reason: "queue-full" }]);
  assert.equal(p.size, 0);

  p.admit(0, 2, "198.51.100.1");
  p.received(0, 2);
  p.queue(100, 2, 50);
  // Progress moves the stall deadline; none drops the connection 2 s after the last.
  p.wrote(1_500, 2, 10);
  runUntil(p, 3_499);
  assert.deepEqual(drops(p), []);
  runUntil(p, 3_500);
  assert.deepEqual(drops(p), [{ id: 2, reason: "slow-reader" }]);

  p.admit(0, 3, "198.51.100.1");
  p.received(0, 3);
  p.queue(100, 3, 50);
  p.wrote(200, 3, 50);
  assert.equal(p.queued(3), 0);
  // All written: only idleness counts again.
  runUntil(p, 4_999);
  assert.deepEqual(drops(p), []);
  runUntil(p, 5_000);
  assert.deepEqual(drops(p), [{ id: 3, reason: "idle" }]);
});

Deno.test("stream policy: a bad frame drops; reports about unknown connections are ignored", () => {
  const p = new StreamPolicy(LIMITS);
  p.admit(0, 1, "198.51.100.1");
  p.badFrame(1);
  p.badFrame(1);
  p.received(0, 1);
  p.wrote(0, 1, 5);
  assert.equal(p.queue(0, 1, 5), false);
  p.closed(1);
  assert.deepEqual(drops(p), [{ id: 1, reason: "bad-frame" }]);
  assert.equal(p.size, 0);
});

Deno.test("stream policy: 100,000 idle connections from many sources cost O(limit) state", () => {
  const p = new StreamPolicy(DEFAULT_STREAM_LIMITS);
  let admitted = 0;
  for (let i = 0; i < 100_000; i++) {
    if (p.admit(0, i, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`) === null) admitted++;
  }
  assert.equal(admitted, DEFAULT_STREAM_LIMITS.maxConnections);
  runUntil(p, DEFAULT_STREAM_LIMITS.firstFrameWithin);
  assert.equal(drops(p).length, admitted);
  assert.equal(p.size, 0);
});

Deno.test("stream policy: new connections per source are rate-limited (burst 4x, then the rate)", () => {
  const p = new StreamPolicy({
    ...LIMITS,
    maxPerSource: 1_000,
    maxConnections: 1_000,
    acceptRate: 5,
  });
  const admit = (now: number, id: number, ip = "198.51.100.1") => p.admit(now, id, ip);
  let id = 0;
  for (let i = 0; i < 20; i++) assert.equal(admit(0, ++id), null, `burst ${i}`);
  assert.equal(admit(0, ++id), "source-rate");
  // Closing does not give the budget back: reopening is what the limit is about.
  p.closed(1);
  assert.equal(admit(0, ++id), "source-rate");
  assert.equal(admit(0, ++id, "198.51.100.2"), null, "another source has its own");
  assert.equal(admit(200, ++id), null, "5 a second: one more after 200 ms");
  assert.equal(admit(200, ++id), "source-rate");
  assert.equal(DEFAULT_STREAM_LIMITS.acceptRate, 10);
});
