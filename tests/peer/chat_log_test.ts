/** The room's chat memory: line ids, the last 50 public lines, each line shown once, bounds. */
import assert from "node:assert/strict";
import { ChatLog, HISTORY_LINES, MAX_SEEN } from "../../lib/peer/chat_log.ts";
import { ChatKind, encodeLine } from "../../lib/wire/chat_message.ts";

const run = new Uint8Array([0xa, 0xb, 0xc, 0xd]);

Deno.test("chat log: ids are the run id and a counter", () => {
  const log = new ChatLog(run);
  assert.deepEqual([...log.run], [0xa, 0xb, 0xc, 0xd]);
  assert.deepEqual([log.nextSeq(), log.nextSeq()], [0, 1]);
});

/** Our next line's id, as the envelope writes it. */
function nextId(log: ChatLog): Uint8Array {
  return encodeLine(ChatKind.Line, log.run, log.nextSeq(), "").subarray(1, 9);
}

Deno.test("chat log: own history is our lines among the room's last 50, oldest first", () => {
  const log = new ChatLog(run);
  for (let i = 0; i < 30; i++) log.wrote(i, nextId(log), `mine ${i}`);
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

Deno.test("chat log: an older line of a sender's run than the newest shown is not shown again", () => {
  const log = new ChatLog(run);
  const idOf = (r: number, n: number) => new Uint8Array([0, 0, 0, r, 0, 0, 0, n]);
  assert.equal(log.received("fp-bob", idOf(1, 5), false), true);
  assert.equal(log.received("fp-bob", idOf(1, 3), true), false, "history of a line before it");
  assert.equal(log.received("fp-bob", idOf(1, 6), true), true, "a newer one");
  assert.equal(log.received("fp-bob", idOf(2, 0), false), true, "another run of bob's");
});

Deno.test("chat log: at most MAX_SEEN senders' runs are remembered, the oldest forgotten first", () => {
  const log = new ChatLog(run);
  const id = new Uint8Array([0, 0, 0, 1, 0, 0, 0, 1]);
  for (let i = 0; i <= MAX_SEEN; i++) log.received(`fp-${i}`, id, true);
  // The newest sender is still known; the first was forgotten (shown again).
  assert.equal(log.received(`fp-${MAX_SEEN}`, id, true), false);
  assert.equal(log.received("fp-0", id, true), true);
});
