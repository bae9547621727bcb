/**
 * Tests of the leave timing ({@link Farewell}): GOODBYE repeats until answered or a second
 * passed, three BYE copies 100 ms apart.
 */
import assert from "node:assert/strict";
import { BYE_REPEAT, Farewell, GOODBYE_FOR, GOODBYE_REPEAT } from "../../lib/peer/farewell.ts";

const BYE = { to: { hostname: "198.51.100.1", port: 7777 }, data: new Uint8Array([1]) };

/** Runs `f` to `until`, returning what each due time asked for. */
function run(f: Farewell, until: number): Array<[number, string[], boolean]> {
  const out: Array<[number, string[], boolean]> = [];
  for (let t = f.nextTimeout(); t !== undefined && t <= until; t = f.nextTimeout()) {
    const due = f.handleTimeout(t);
    out.push([t, due.goodbyes, due.bye !== undefined]);
  }
  return out;
}

Deno.test("farewell: GOODBYEs repeat every 200 ms until answered; BYE twice more, 100 ms apart", () => {
  const f = new Farewell();
  f.start(0, ["a", "b"], BYE);
  assert.equal(f.done, false);
  assert.deepEqual(run(f, 250), [[100, [], true], [200, ["a", "b"], true]]);
  f.handleAck("a");
  assert.equal(f.awaits("a"), false);
  assert.deepEqual(run(f, 450), [[400, ["b"], false]]);
  f.handleAck("b");
  assert.equal(f.done, true);
  assert.equal(f.nextTimeout(), undefined);
});

Deno.test("farewell: a peer that never answers is given up after a second", () => {
  const f = new Farewell();
  f.start(0, ["a"], BYE);
  const due = run(f, 5_000);
  const repeats = due.filter(([, g]) => g.length > 0).map(([t]) => t);
  assert.deepEqual(repeats, [200, 400, 600, 800]);
  assert.equal(due.at(-1)![0], GOODBYE_FOR);
  assert.equal(f.done, true);
  assert.equal(f.nextTimeout(), undefined);
  assert.equal(GOODBYE_REPEAT, 200);
  assert.equal(BYE_REPEAT, 100);
});

Deno.test("farewell: unregistered and alone, there is nothing to wait for", () => {
  const f = new Farewell();
  f.start(0, [], undefined);
  assert.equal(f.done, true);
  assert.equal(f.nextTimeout(), undefined);
});
