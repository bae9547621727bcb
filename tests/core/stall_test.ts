/**
 * Tests of `lib/core/stall.ts` and of the server's use of it: a server that was stopped reads
 * the PINGs that waited in its socket before it expires anyone.
 */
import assert from "node:assert/strict";
import { STALL_GRACE, STALL_LATE_BY, StallGuard } from "../../lib/core/stall.ts";

Deno.test("stall: on-time and slightly late calls never hold", () => {
  const g = new StallGuard();
  for (let t = 0; t < 100_000; t += 1_000) assert.equal(g.holding(t, t - STALL_LATE_BY), false);
  assert.equal(g.stalls, 0);
  assert.equal(g.wake(5), 5);
});

Deno.test("stall: a call long after a due deadline, after silence, holds for the grace", () => {
  const g = new StallGuard();
  g.holding(0, 10_000);
  const late = 10_000 + STALL_LATE_BY + 20_000;
  assert.equal(g.holding(late, 10_000), true);
  assert.equal(g.stalls, 1);
  assert.equal(g.wake(10_000), 10_000, "an earlier own deadline still comes first");
  assert.equal(g.wake(undefined), late + STALL_GRACE);
  assert.equal(g.holding(late + STALL_GRACE - 1, 10_000), true);
  // After the grace the overdue deadline is acted on: no second hold without another silence.
  assert.equal(g.holding(late + STALL_GRACE, 10_000), false);
  assert.equal(g.stalls, 1);
});

Deno.test("stall: a busy machine with an overdue deadline is not stalled (calls kept coming)", () => {
  const g = new StallGuard();
  for (let t = 0; t <= 30_000; t += 500) assert.equal(g.holding(t, 0), false);
});
