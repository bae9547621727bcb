/**
 * Tests of {@link DeadlineQueue}: focused cases, then a seeded property test that runs long
 * random sequences of set / clear / popDue against a naive model (a Map scanned in full).
 *
 * @module
 */

import assert from "node:assert/strict";
import { DeadlineQueue } from "../../lib/core/deadlines.ts";
import { prng } from "../support/prng.ts";

Deno.test("DeadlineQueue: empty queue", () => {
  const q = new DeadlineQueue<string>();
  assert.equal(q.size, 0);
  assert.equal(q.peek(), undefined);
  assert.equal(q.get("x"), undefined);
  assert.deepEqual(q.popDue(Infinity), []);
  q.set("x", undefined); // clearing an unknown item is a no-op
  assert.equal(q.size, 0);
});

Deno.test("DeadlineQueue: popDue returns only due items, earliest first, and removes them", () => {
  const q = new DeadlineQueue<string>();
  q.set("c", 30);
  q.set("a", 10);
  q.set("e", 50);
  q.set("b", 20);
  q.set("d", 40);
  assert.equal(q.size, 5);
  assert.equal(q.peek(), 10);
  assert.deepEqual(q.popDue(9), [], "nothing is due before the earliest deadline");
  assert.deepEqual(q.popDue(10), ["a"], "a deadline equal to now is due");
  assert.deepEqual(q.popDue(35), ["b", "c"]);
  assert.equal(q.size, 2);
  assert.equal(q.get("b"), undefined, "popped items have no deadline");
  assert.equal(q.peek(), 40);
  assert.deepEqual(q.popDue(1_000), ["d", "e"]);
  assert.equal(q.size, 0);
  assert.equal(q.peek(), undefined);
});

Deno.test("DeadlineQueue: set moves an item's deadline either way; undefined clears it", () => {
  const q = new DeadlineQueue<{ name: string }>();
  const a = { name: "a" }, b = { name: "b" }, c = { name: "c" };
  q.set(a, 100);
  q.set(b, 200);
  q.set(c, 300);
  q.set(c, 50); // earlier
  assert.equal(q.peek(), 50);
  assert.equal(q.get(c), 50);
  q.set(c, 250); // later again
  assert.equal(q.peek(), 100);
  q.set(a, 100); // unchanged
  assert.equal(q.size, 3, "one entry per item, however often it is set");
  q.set(a, undefined);
  assert.equal(q.get(a), undefined);
  assert.equal(q.size, 2);
  assert.equal(q.peek(), 200);
  // Items are keyed by identity: an equal-looking object is another item.
  q.set({ name: "b" }, 1);
  assert.equal(q.size, 3);
  assert.equal(q.get(b), 200);
  assert.deepEqual(q.popDue(260).map((x) => x.name), ["b", "b", "c"]);
  assert.equal(q.size, 0);
});

Deno.test("DeadlineQueue: equal deadlines all come out, and fractional and negative times work", () => {
  const q = new DeadlineQueue<number>();
  for (let i = 0; i < 20; i++) q.set(i, i % 2 === 0 ? 5 : -1.5);
  assert.equal(q.peek(), -1.5);
  const first = q.popDue(-1);
  assert.deepEqual(first.sort((x, y) => x - y), [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
  const second = q.popDue(5);
  assert.deepEqual(second.sort((x, y) => x - y), [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
  assert.equal(q.size, 0);
});

Deno.test("DeadlineQueue: seeded property test against a naive model (10k operations per seed)", () => {
  const cases = [[1, 3], [2, 17], [3, 64], [0xdead, 250], [20240601, 1000]] as const;
  for (const [seed, items] of cases) {
    const rand = prng(seed);
    const int = (n: number) => Math.floor(rand() * n);
    const q = new DeadlineQueue<number>();
    const model = new Map<number, number>();
    // A small item space makes re-setting, clearing and popping the same items frequent, a
    // large one makes the heap deep; integer deadlines make ties frequent.
    let now = 0;
    let largest = 0;
    const counts = { set: 0, move: 0, clear: 0, pop: 0, popped: 0 };
    for (let op = 0; op < 10_000; op++) {
      const where = `seed ${seed}, op ${op}`;
      const r = rand();
      if (r < 0.5) {
        const item = int(items);
        const at = now + int(200 + 10 * items) - 20; // sometimes already in the past
        if (model.has(item)) counts.move++;
        else counts.set++;
        q.set(item, at);
        model.set(item, at);
      } else if (r < 0.65) {
        const item = int(items);
        q.set(item, undefined);
        model.delete(item);
        counts.clear++;
      } else {
        // Time mostly moves forward, but popDue must not care.
        now += rand() < 0.9 ? int(40) : -int(40);
        const got = q.popDue(now);
        const due = [...model].filter(([, at]) => at <= now);
        counts.pop++;
        counts.popped += got.length;
        assert.deepEqual(
          [...got].sort((x, y) => x - y),
          due.map(([item]) => item).sort((x, y) => x - y),
          `${where}: popDue(${now}) returned the wrong items`,
        );
        // Earliest first.
        const times = got.map((item) => model.get(item)!);
        for (let i = 1; i < times.length; i++) {
          assert.ok(times[i - 1]! <= times[i]!, `${where}: not earliest first: ${times}`);
        }
        for (const item of got) model.delete(item);
      }
      // After every operation the queue agrees with the model.
      assert.equal(q.size, model.size, `${where}: size`);
      largest = Math.max(largest, model.size);
      const earliest = model.size === 0 ? undefined : Math.min(...model.values());
      assert.equal(q.peek(), earliest, `${where}: peek`);
      if (op % 97 === 0) {
        for (let item = 0; item < items; item++) {
          assert.equal(q.get(item), model.get(item), `${where}: get(${item})`);
        }
      }
    }
    // Drain: everything comes out, earliest first.
    const rest = q.popDue(Infinity);
    assert.equal(rest.length, model.size);
    const times = rest.map((item) => model.get(item)!);
    assert.deepEqual(times, [...times].sort((x, y) => x - y));
    assert.equal(q.size, 0);
    // The sequence exercised every operation.
    for (const [k, v] of Object.entries(counts)) {
      assert.ok(v > 100, `seed ${seed}: few ${k} (${v})`);
    }
    assert.ok(
      largest >= Math.min(items / 2, 50),
      `seed ${seed}: the heap stayed small (${largest})`,
    );
  }
});
