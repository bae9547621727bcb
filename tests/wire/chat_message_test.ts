/**
 * The chat message envelope: every kind round-trips, the decoder never throws on any input and
 * what it accepts encodes back to the same bytes, and hostile NICKs are refused.
 */
import assert from "node:assert/strict";
import {
  CHAT_OVERHEAD,
  ChatKind,
  type ChatMessage,
  decodeChat,
  encodeChat,
  MAX_NICK_BYTES,
} from "../../lib/wire/chat_message.ts";
import { seededRandom } from "../support/prng.ts";

const id = new Uint8Array([1, 2, 3, 4, 0, 0, 0, 9]);

Deno.test("chat message: each kind round-trips", () => {
  const samples: ChatMessage[] = [
    { kind: ChatKind.Line, id, text: "hello 👋" },
    { kind: ChatKind.Line, id, text: "" },
    { kind: ChatKind.Private, id, text: "psst" },
    { kind: ChatKind.History, id, age: 4_000_000_000, text: "long ago" },
    { kind: ChatKind.Nick, name: "Zoë" },
  ];
  for (const m of samples) {
    const d = decodeChat(encodeChat(m));
    assert.deepEqual(d, { ok: true, value: m });
  }
  const long = "x".repeat(65_536);
  const b = encodeChat({ kind: ChatKind.History, id, age: 1, text: long });
  assert.equal(b.length, long.length + CHAT_OVERHEAD);
});

Deno.test("chat message: unknown kinds, short bodies and bad nicks are dropped with a reason", () => {
  assert.deepEqual(decodeChat(new Uint8Array()), { ok: false, reason: "chat-short" });
  assert.deepEqual(decodeChat(new Uint8Array([9, 1, 2])), {
    ok: false,
    reason: "chat-unknown-kind",
  });
  assert.deepEqual(decodeChat(new Uint8Array([1, 1, 2, 3])), { ok: false, reason: "chat-short" });
  assert.deepEqual(decodeChat(new Uint8Array([3, ...id, 0, 0])), {
    ok: false,
    reason: "chat-short",
  });
  assert.deepEqual(decodeChat(new Uint8Array([4])), { ok: false, reason: "chat-bad-nick" });
  const tooLong = new Uint8Array(2 + MAX_NICK_BYTES).fill(0x61);
  tooLong[0] = 4;
  assert.deepEqual(decodeChat(tooLong), { ok: false, reason: "chat-bad-nick" });
  assert.deepEqual(decodeChat(new Uint8Array([4, 0xff, 0xfe])), {
    ok: false,
    reason: "chat-bad-nick",
  });
});

Deno.test("chat message: random bytes never throw; whatever decodes encodes back the same", () => {
  const random = seededRandom(5);
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const len = random(1)[0]! % 40;
    const b = random(len);
    if (len > 0) b[0] = 1 + (b[0]! % 5);
    const d = decodeChat(b);
    if (!d.ok) continue;
    accepted++;
    // Text is shown as decoded (invalid UTF-8 replaced), so only valid text re-encodes exactly.
    const again = decodeChat(encodeChat(d.value));
    assert.deepEqual(again, d);
  }
  assert.ok(accepted > 1000, `accepted ${accepted}`);
});
