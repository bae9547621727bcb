/**
 * The room holds together through churn (issue 21): a short seeded churn run on loopback
 * (`tests/support/soak.ts`, the long one is `deno task soak`) with one leave and rejoin, one
 * peer suspended 15 s, the server killed and restarted, and the server suspended 8 s, while
 * every running peer types lines; then every invariant of `tests/support/soak_check.ts` must
 * hold. First, the checks themselves on hand-made records: each must catch what it is for.
 */
import assert from "node:assert/strict";
import type { P2pEvent } from "../support/proc.ts";
import { runSoak, summarize } from "../support/soak.ts";
import { checkSoak } from "../support/soak_check.ts";
import type { Disruption } from "../support/soak_plan.ts";
import { type InstanceRecord, lineText, type SoakRecord } from "../support/soak_record.ts";

const S = 1000;

/** An instance of `slot` that ran from 0 to 100 s, with `events` at the given seconds. */
function inst(
  id: number,
  slot: number,
  events: Array<[number, P2pEvent]> = [],
  more: Partial<InstanceRecord> = {},
): InstanceRecord {
  return {
    id,
    slot,
    name: `p${slot}`,
    startAt: 0,
    readyAt: 1 * S,
    readyName: `p${slot}`,
    fingerprint: `fp${slot}`,
    suspended: [],
    events: events.map(([s, event]) => ({ at: s * S, event })),
    ...more,
  };
}

const peer = (slot: number): P2pEvent => ({
  event: "peer",
  name: `p${slot}`,
  fingerprint: `fp${slot}`,
});
const msg = (slot: number, seq: number): P2pEvent => ({
  event: "message",
  from: `p${slot}`,
  text: lineText(slot, seq),
});

/** A record of instances that ran 0–100 s, lines typed by slot 0 at 10, 20, 30 s. */
function record(instances: InstanceRecord[], lines = [10, 20, 30]): SoakRecord {
  return {
    seed: 1,
    origin: 0,
    phaseAt: 3 * S,
    trafficEndAt: 90 * S,
    endAt: 100 * S,
    instances,
    lines: lines.map((s, i) => ({ slot: 0, seq: i + 1, instance: 0, at: s * S })),
    servers: [],
    actions: [],
    samples: [],
    finalPeers: [],
    failedStarts: 0,
  };
}

Deno.test("soak checks: a gap, a duplicate, a line out of order and a made-up line are caught", () => {
  const a = inst(0, 0, [[2, peer(1)]]);
  const b = inst(1, 1, [[2, peer(0)], [21, msg(0, 2)], [22, msg(0, 1)], [23, msg(0, 1)], [
    24,
    msg(0, 9),
  ]]);
  const r = checkSoak(record([a, b]));
  assert.equal(r.delivery.required, 3);
  assert.equal(r.delivery.delivered, 2);
  assert.equal(r.delivery.missing, 1);
  assert.equal(r.delivery.duplicates, 1);
  assert.equal(r.delivery.outOfOrder, 1);
  assert.equal(r.delivery.fabricated, 1);
  assert.equal(r.delivery.examples[0]?.line, "0:3");
  const ok = inst(1, 1, [[2, peer(0)], [11, msg(0, 1)], [21, msg(0, 2)], [31, msg(0, 3)]]);
  assert.deepEqual(checkSoak(record([a, ok])).failures, []);
});

Deno.test("soak checks: a line to a peer asleep is required only if it runs long enough after", () => {
  const a = inst(0, 0, [[2, peer(1)]]);
  // Asleep from 5 s to 95 s: after the lines, 5 s awake, under the 12 s grace.
  const b = inst(1, 1, [[2, peer(0)]], { suspended: [{ from: 5 * S, to: 95 * S }] });
  assert.equal(checkSoak(record([a, b])).delivery.required, 0);
  // Asleep from 5 s to 60 s: 40 s awake after, so every line is due, and none came.
  const c = inst(1, 1, [[2, peer(0)]], { suspended: [{ from: 5 * S, to: 60 * S }] });
  assert.equal(checkSoak(record([a, c])).delivery.missing, 3);
  // Asleep from 5 s to 80 s: the server may expire it after 50 s (75 s expiry − 25 s
  // keepalive), so only the line typed before that is due.
  const d = inst(1, 1, [[2, peer(0)]], { suspended: [{ from: 5 * S, to: 80 * S }] });
  assert.equal(checkSoak(record([a, d], [10, 60, 70])).delivery.required, 1);
});

Deno.test("soak checks: a left about a running peer is false, about a long-suspended one not", () => {
  const left: P2pEvent = { event: "left", name: "p1", reason: "gone" };
  const b = inst(1, 1, [[2, peer(0)]]);
  const r = checkSoak(record([inst(0, 0, [[2, peer(1)], [50, left]]), b]));
  assert.equal(r.left.false, 1);
  assert.match(r.failures.join("\n"), /left: 1 of 1 left events false/);
  // Asleep 60 s by then: the server may have expired it (75 s − 25 s keepalive).
  const slept = inst(1, 1, [[2, peer(0)]], { suspended: [{ from: 10 * S, to: 80 * S }] });
  const r2 = checkSoak(record([inst(0, 0, [[2, peer(1)], [70, left]]), slept]));
  assert.equal(r2.left.false, 0);
  assert.equal(r2.left.whileSuspended, 1);
  // It had typed /quit: true.
  const quit = inst(1, 1, [[2, peer(0)]], { leaveAt: 49 * S, exitAt: 49.5 * S });
  assert.equal(checkSoak(record([inst(0, 0, [[2, peer(1)], [50, left]]), quit])).left.true, 1);
});

Deno.test("soak checks: a row names the instance the client showed, not the newest of its identity", () => {
  const at = (port: number) => `127.0.0.1:${port}`;
  const shown = (port: number): P2pEvent => ({ ...peer(1), path: "direct", addr: at(port) });
  const ready = (port: number): P2pEvent => ({ event: "ready", name: "p1", public: at(port) });
  const gone: P2pEvent = { event: "left", name: "p1", reason: "gone" };
  // p1 quits at 30 s and comes back from another port at 41 s while p0 is stopped (20–59.9 s).
  const old = inst(1, 1, [[1, ready(1001)], [2, peer(0)]], { leaveAt: 30 * S, exitAt: 30.5 * S });
  const back = inst(2, 1, [[41, ready(1002)], [42, peer(0)]], { startAt: 40 * S, readyAt: 41 * S });
  const asleep = { suspended: [{ from: 20 * S, to: 59.9 * S }] };
  // On waking p0 reads what waited: a path change of the old instance, then its departure.
  const a = inst(
    0,
    0,
    [[2, shown(1001)], [60, shown(1001)], [60.1, gone], [61, shown(1002)]],
    asleep,
  );
  const r = checkSoak(record([a, old, back], []));
  assert.deepEqual([r.left.true, r.left.false], [1, 0]);
  // The old instance shown anew after a `left` (its handshake completed from what waited): its
  // address names it; its `left` later is true, and the time it was listed gone is a defect.
  const a2 = inst(0, 0, [[2, shown(1001)], [60, gone], [60, shown(1001)], [70, gone], [
    70,
    shown(1002),
  ]], asleep);
  const r2 = checkSoak(record([a2, old, back], []));
  assert.deepEqual([r2.left.true, r2.left.false], [2, 0]);
  assert.ok(r2.whole.longest.some((d) => d.why === "p0#0 lists p1#1, gone" && d.ms > 10 * S));
});

Deno.test("soak checks: an undelivered warning is false if the peer then shows every line", () => {
  const warn: P2pEvent = { event: "warning", kind: "undelivered", name: "p1", message: "" };
  const asleep = { suspended: [{ from: 5 * S, to: 80 * S }] };
  const shown = inst(
    1,
    1,
    [[2, peer(0)], [81, msg(0, 1)], [81, msg(0, 2)], [81, msg(0, 3)]],
    asleep,
  );
  const r = checkSoak(record([inst(0, 0, [[2, peer(1)], [70, warn]]), shown]));
  assert.equal(r.undelivered.false, 1);
  const lost = inst(1, 1, [[2, peer(0)], [81, msg(0, 1)]], asleep);
  const r2 = checkSoak(record([inst(0, 0, [[2, peer(1)], [70, warn]]), lost]));
  assert.equal(r2.undelivered.true, 1);
  assert.equal(r2.undelivered.false, 0);
});

Deno.test("soak checks: a ghost keeps the room from being whole until its left arrives", () => {
  // p1 quits at 20 s; p0 still lists it until 50 s: 30 s not whole.
  const a = inst(0, 0, [[2, peer(1)], [50, { event: "left", name: "p1", reason: "expired" }]]);
  const b = inst(1, 1, [[2, peer(0)]], { leaveAt: 20 * S, exitAt: 20.5 * S });
  const r = checkSoak(record([a, b], []));
  assert.equal(r.whole.longestMs, 29_500);
  assert.match(r.whole.longest[0]!.why, /p0#0 lists p1#1, gone/);
  assert.match(r.failures.join("\n"), /^whole: .* for up to 29\.5 s/m);
});

Deno.test("soak checks: time to whole counts from a disruption's end, 0 when the room was whole", () => {
  const a = inst(0, 0, [[2, peer(1)], [33, peer(2)]]);
  const b = inst(1, 1, [[2, peer(0)], [34, peer(2)]]);
  const c = inst(2, 2, [[31, peer(0)], [32, peer(1)]], { startAt: 30 * S, readyAt: 30 * S });
  const rec = record([a, b, c], []);
  rec.actions = [
    { at: 10 * S, kind: "server-suspend", slot: -1 },
    { at: 20 * S, kind: "server-resume", slot: -1 },
    { at: 30 * S, kind: "join", slot: 2 },
  ];
  const r = checkSoak(rec);
  // The server came back to a whole room (no event followed for 10 s: still 0); the join
  // took 4 s until everyone listed everyone.
  assert.equal(r.whole.maxAfterDisruptionMs, 4_000);
  rec.actions = rec.actions.slice(0, 2);
  assert.equal(checkSoak(rec).whole.maxAfterDisruptionMs, 0);
});

/** The short churn: every disruption kind once, ≤ 60 s of wall time. */
const PLAN: Disruption[] = [
  // p3 leaves and is back before the server is killed: in its first seconds it PINGs each
  // second, so it is the first to register with the restarted server.
  { kind: "leave", at: 500, slot: 3, awayMs: 2_000, how: "quit" },
  { kind: "server-kill", at: 5_000, downMs: 1_000 },
  { kind: "suspend", at: 9_000, slot: 2, forMs: 15_000 },
  { kind: "server-suspend", at: 29_000, forMs: 8_000 },
];

Deno.test({
  name: "a room of 5 holds together through a leave, a suspended peer and a server restart",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const result = await runSoak({
      seed: 21,
      peers: 5,
      durationMs: 40_000,
      settleMs: 8_000,
      plan: PLAN,
    });
    const summary = summarize(result, 5).join("\n");
    assert.equal(result.report.actions["server-restart"], 1, summary);
    assert.ok(result.report.delivery.required > 200, summary);
    assert.deepEqual(result.report.failures, [], summary);
  },
});
