/**
 * Tests of what the user is shown of a peer ({@link ShownPath}) and of a peer's signs of life
 * ({@link Responsiveness}): pure bookkeeping, virtual time.
 */
import assert from "node:assert/strict";
import { ShownPath } from "../../lib/peer/shown_path.ts";
import { notice } from "../../lib/peer/notices.ts";
import {
  NOT_RESPONDING_AFTER,
  Responsiveness,
  UNANSWERED_AFTER,
} from "../../lib/peer/responsiveness.ts";

const A = { hostname: "192.0.2.1", port: 1000 };
const B = { hostname: "192.0.2.1", port: 2000 };

Deno.test("shown: a dead direct path is held until the peer is heard relayed; the same path is no news", () => {
  const s = new ShownPath();
  assert.equal(s.news("direct", A), "show");
  s.showed("direct", A);
  assert.equal(s.news("relay", null), "hold", "it may have stopped answering");
  assert.equal(s.heardRelayed(true), false, "direct again before: nothing to show");
  assert.equal(s.news("relay", null), "hold");
  assert.equal(s.heardRelayed(false), true, "heard through the relay: show it");
  s.showed("relay", null);
  assert.equal(s.news("direct", A), "show", "direct after a shown relay is news");
  s.showed("direct", A);
  assert.equal(s.news("direct", A), "same");
  assert.equal(s.news("direct", B), "show", "another endpoint is news");
});

Deno.test("shown: a peer back after departing is not shown relayed before it is heard", () => {
  const s = new ShownPath();
  s.showed("relay", null);
  assert.equal(s.shown, true);
  s.hide();
  assert.equal(s.shown, false);
  s.returned();
  assert.equal(s.announced, false);
  assert.equal(s.news("relay", null), "hold");
  s.heard();
  assert.equal(s.news("relay", null), "show");
});

Deno.test("responsiveness: not responding once after a minute of silence, responding on the next ACK", () => {
  const r = new Responsiveness(0);
  assert.equal(r.nextTimeout(undefined), undefined, "nothing waits: nothing to judge");
  const oldest = 1_000;
  assert.equal(r.nextTimeout(oldest), oldest + NOT_RESPONDING_AFTER);
  assert.equal(r.answering(oldest + UNANSWERED_AFTER - 1, oldest), true);
  assert.equal(r.answering(oldest + UNANSWERED_AFTER, oldest), false);
  assert.equal(r.check(oldest + NOT_RESPONDING_AFTER - 1, oldest, true), false);
  assert.equal(r.check(oldest + NOT_RESPONDING_AFTER, oldest, true), true);
  assert.equal(r.check(oldest + 2 * NOT_RESPONDING_AFTER, oldest, true), false, "told once");
  assert.equal(r.nextTimeout(oldest), undefined);
  assert.equal(r.acked(200_000), true, "responding is owed");
  assert.equal(r.acked(200_001), false);
});

Deno.test("responsiveness: our own stop is not the peer's silence", () => {
  const r = new Responsiveness(0);
  r.stalled(90_000); // we were stopped until 90 s
  assert.equal(r.answering(95_000, 1_000), true);
  assert.equal(r.check(95_000, 1_000, true), false);
  assert.equal(r.nextTimeout(1_000), 90_000 + NOT_RESPONDING_AFTER);
  // A peer that never proved who it is is not told about, and so not told back.
  const q = new Responsiveness(0);
  assert.equal(q.check(NOT_RESPONDING_AFTER, 0, false), false);
  assert.equal(q.acked(NOT_RESPONDING_AFTER + 1), false);
});

Deno.test("notices: plurals agree with their counts", () => {
  const waiting = (n: number) =>
    notice({ kind: "not-responding", name: "bob", seconds: 60, waiting: n }).message;
  assert.match(waiting(1), /; 1 message part waits for it$/);
  assert.match(waiting(3), /; 3 message parts wait for it$/);
});
