/** The room's chat memory: line ids, the last 50 public lines, each line shown once, bounds. */
import assert from "node:assert/strict";
import { ChatLog, HISTORY_LINES, MAX_SEEN } from "../../lib/peer/chat_log.ts";

const run = new Uint8Array([0xa, 0xb, 0xc, 0xd]);

Deno.test("chat log: ids are the run id and a counter", () => {
  const log = new ChatLog(run);
  assert.deepEqual([...log.nextId()], [0xa, 0xb, 0xc, 0xd, 0, 0, 0, 0]);
  assert.deepEqual([...log.nextId()], [0xa, 0xb, 0xc, 0xd, 0, 0, 0, 1]);
});

Deno.test("chat log: own history is our lines among the room's last 50, oldest first", () => {
  const log = new ChatLog(run);
  for (let i = 0; i < 30; i++) log.wrote(i, log.nextId(), `mine ${i}`);
  for (let i = 0; i < 40; i++) {
    assert.ok(log.received("fp-bob", new Uint8Array([1, 1, 1, 1, 0, 0, 0, i]), false));
  }
  // 70 lines seen: the last 50 hold our lines 20..29 and bob's 40.
  const own = log.ownHistory();
  assert.deepEqual(own.map((l) => l.text), Array.from({ length: 10 }, (_, i) => `mine ${i + 20}`));
  assert.equal(HISTORY_LINES, 50);
  // History and private lines received do not push ours out.
  for (let i = 0; i < 60; i++) {
    log.received("fp-carol", new Uint8Array([2, 2, 2, 2, 0, 0, 0, i]), true);
  }
  assert.equal(log.ownHistory().length, 10);
});

Deno.test("chat log: a line is shown once per sender, even as live and as history", () => {
  const log = new ChatLog(run);
  const id = new Uint8Array([9, 9, 9, 9, 0, 0, 0, 1]);
  assert.equal(log.received("fp-bob", id, false), true);
  assert.equal(log.received("fp-bob", id, true), false);
  assert.equal(log.received("fp-bob", id, false), false);
  // The same id from another sender is another line.
  assert.equal(log.received("fp-carol", id, true), true);
});

Deno.test("chat log: at most MAX_SEEN ids are remembered, the oldest forgotten first", () => {
  const log = new ChatLog(run);
  const idOf = (i: number) => {
    const id = new Uint8Array(8);
    new DataView(id.buffer).setUint32(4, i);
    return id;
  };
  for (let i = 0; i <= MAX_SEEN; i++) log.received("fp", idOf(i), true);
  // Id 0 was forgotten (shown again), the newest is still known.
  assert.equal(log.received("fp", idOf(MAX_SEEN), true), false);
  assert.equal(log.received("fp", idOf(0), true), true);
});
