/**
 * Tests of `lib/peer/fragment.ts`: splitting a chat line into DATA-sized fragments on code-point
 * boundaries, and the {@link Reassembler} that puts one sender's fragments back together,
 * dropping a message longer than its limit whole and going on with the next one.
 *
 * @module
 */

import { concat } from "../support/bytes.ts";
import assert from "node:assert/strict";
import { fragment, MAX_MESSAGE, type Reassembled, Reassembler } from "../../lib/peer/fragment.ts";
import { MAX_FRAGMENT } from "../../lib/wire/peer_frame.ts";
import { prng } from "../support/prng.ts";

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function checkFragments(text: string): Uint8Array[] {
  const bytes = utf8.encode(text);
  const parts = fragment(bytes);
  assert.ok(parts.length >= 1);
  assert.deepEqual(concat(...parts), bytes, "concatenation equals input");
  for (const [i, p] of parts.entries()) {
    assert.ok(p.length <= MAX_FRAGMENT, `fragment ${i} is ${p.length} bytes`);
    if (bytes.length > 0) assert.ok(p.length > 0, `fragment ${i} is empty`);
    // Each fragment is valid UTF-8 by itself: no code point is split.
    assert.doesNotThrow(() => strictUtf8.decode(p), `fragment ${i} splits a code point`);
    // Only the last fragment may be short by more than one code point.
    if (i < parts.length - 1) assert.ok(p.length > MAX_FRAGMENT - 4, `fragment ${i} too short`);
  }
  return parts;
}

Deno.test("fragment: short and exactly-MAX_FRAGMENT text stays in one piece", () => {
  assert.equal(checkFragments("").length, 1);
  assert.equal(checkFragments("hello").length, 1);
  assert.equal(checkFragments("a".repeat(MAX_FRAGMENT)).length, 1);
  assert.equal(checkFragments("😀".repeat(MAX_FRAGMENT / 4)).length, 1);
});

Deno.test("fragment: long ASCII splits at MAX_FRAGMENT", () => {
  const parts = checkFragments("a".repeat(MAX_FRAGMENT + 1));
  assert.deepEqual(parts.map((p) => p.length), [MAX_FRAGMENT, 1]);
  const parts3 = checkFragments("b".repeat(MAX_FRAGMENT * 2 + 10));
  assert.deepEqual(parts3.map((p) => p.length), [MAX_FRAGMENT, MAX_FRAGMENT, 10]);
});

Deno.test("fragment: never splits a multi-byte code point at the boundary", () => {
  // 2-, 3- and 4-byte code points, and a ZWJ sequence, straddling every boundary offset.
  for (const ch of ["é", "中", "😀", "👩‍💻", "𝄞"]) {
    for (let pad = MAX_FRAGMENT - 8; pad <= MAX_FRAGMENT + 1; pad++) {
      checkFragments("a".repeat(pad) + ch.repeat(6) + "z");
      checkFragments("a".repeat(pad) + ch + "a".repeat(MAX_FRAGMENT) + ch);
    }
  }
  // A boundary falling exactly inside an emoji: 998 ASCII + 😀 (4 bytes) at 998..1001.
  const parts = checkFragments("a".repeat(MAX_FRAGMENT - 2) + "😀");
  assert.deepEqual(parts.map((p) => p.length), [MAX_FRAGMENT - 2, 4]);
});

Deno.test("fragment: long CJK / emoji / mixed text (seeded) round-trips", () => {
  const alphabet = ["a", " ", "é", "ß", "中", "文", "字", "😀", "🎉", "𝄞", "👩‍💻", "\n"];
  const rand = prng(99);
  for (let k = 0; k < 40; k++) {
    const len = 200 + Math.floor(rand() * 3000);
    let s = "";
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
    checkFragments(s);
  }
  const cjk = "中".repeat(1000); // 3000 bytes; 1000 is not a multiple of 3
  const parts = checkFragments(cjk);
  assert.deepEqual(parts.map((p) => p.length), [999, 999, 999, 3]);
});

Deno.test("fragment() still splits bytes that are not UTF-8 (no endless loop)", () => {
  const junk = new Uint8Array(MAX_FRAGMENT * 2 + 5).fill(0x80);
  const parts = fragment(junk);
  assert.equal(parts.reduce((n, p) => n + p.length, 0), junk.length);
  assert.ok(parts.every((p) => p.length > 0 && p.length <= MAX_FRAGMENT));
});

// ---------------------------------------------------------------------------------------------
// Reassembly

/** Whether the last fragment fed to each reassembler had `more` set (as its sender knows). */
const continuing = new WeakMap<Reassembler, boolean>();

/**
 * Pushes one fragment as an honest sender would: it is a message's first fragment unless the
 * previous one had `more` set; `first` overrides that (a sender whose stream restarted).
 */
function push(r: Reassembler, more: boolean, text: Uint8Array, first?: boolean): Reassembled {
  const res = r.push(first ?? !continuing.get(r), more, text);
  continuing.set(r, more);
  return res;
}

/** Feeds fragments; returns each result, with a message's bytes as text. */
function feed(
  r: Reassembler,
  parts: [more: boolean, text: string | Uint8Array, first?: boolean][],
): string[] {
  return parts.map(([more, text, first]) =>
    show(push(r, more, typeof text === "string" ? utf8.encode(text) : text, first))
  );
}

function show(x: Reassembled): string {
  return x.kind === "message" ? `message:${strictUtf8.decode(x.bytes)}` : x.kind;
}

Deno.test("Reassembler: fragments of a message come back as one message, in order", () => {
  const r = new Reassembler();
  assert.equal(r.held, 0);
  assert.deepEqual(feed(r, [[false, "one piece"]]), ["message:one piece"]);
  assert.deepEqual(feed(r, [[true, "he"], [true, "ll"], [false, "o"]]), [
    "partial",
    "partial",
    "message:hello",
  ]);
  assert.equal(r.held, 0, "nothing held between messages");
  // An empty message, and empty fragments inside a message.
  assert.deepEqual(feed(r, [[false, ""]]), ["message:"]);
  assert.deepEqual(feed(r, [[true, ""], [true, "a"], [true, ""], [false, "b"]]), [
    "partial",
    "partial",
    "partial",
    "message:ab",
  ]);
  // held counts the bytes of the message in progress.
  push(r, true, utf8.encode("12345"));
  assert.equal(r.held, 5);
  push(r, true, utf8.encode("678"));
  assert.equal(r.held, 8);
  assert.deepEqual(feed(r, [[false, "9"]]), ["message:123456789"]);
  assert.equal(r.held, 0);
});

Deno.test("Reassembler: long seeded UTF-8 lines survive fragment() then reassembly", () => {
  const alphabet = ["a", " ", "é", "中", "😀", "👩‍💻", "\n"];
  const rand = prng(2024);
  const r = new Reassembler();
  for (let k = 0; k < 30; k++) {
    const len = 1 + Math.floor(rand() * 6000);
    let s = "";
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
    const parts = fragment(utf8.encode(s));
    const results = parts.map((p, i) => push(r, i < parts.length - 1, p));
    assert.ok(results.slice(0, -1).every((x) => x.kind === "partial"));
    const last = results.at(-1)!;
    assert.ok(last.kind === "message", `line ${k}: ${last.kind}`);
    assert.equal(strictUtf8.decode(last.bytes), s);
  }
  // The default limit is MAX_MESSAGE: a line of exactly MAX_MESSAGE bytes passes.
  const max = new Uint8Array(MAX_MESSAGE).fill(0x61);
  const parts = fragment(max);
  const out = parts.map((p, i) => push(r, i < parts.length - 1, p)).at(-1)!;
  assert.ok(out.kind === "message");
  assert.equal(out.bytes.length, MAX_MESSAGE);
});

Deno.test("Reassembler: a too-long message is dropped whole; the next message is still delivered", () => {
  const r = new Reassembler(10);
  // 4 + 4 bytes fit; the third fragment would make 12 > 10: the message is dropped, and its
  // remaining fragments are swallowed until the one without `more`.
  assert.deepEqual(
    feed(r, [[true, "aaaa"], [true, "bbbb"], [true, "cccc"], [true, "dddd"], [false, "ee"]]),
    ["partial", "partial", "too-long", "orphan", "orphan"],
  );
  assert.equal(r.held, 0, "a dropped message holds nothing");
  assert.deepEqual(feed(r, [[true, "ne"], [false, "xt"]]), ["partial", "message:next"]);
  // Too long on its last fragment: nothing to swallow, the very next fragment starts a message.
  assert.deepEqual(feed(r, [[true, "123456"], [false, "78901"], [false, "ok"]]), [
    "partial",
    "too-long",
    "message:ok",
  ]);
  // Too long in its first fragment.
  assert.deepEqual(feed(r, [[true, "x".repeat(11)], [false, "tail"], [false, "fine"]]), [
    "too-long",
    "orphan",
    "message:fine",
  ]);
  // Exactly the limit is fine; one byte more is not.
  assert.deepEqual(feed(r, [[true, "12345"], [false, "67890"]]), ["partial", "message:1234567890"]);
  assert.deepEqual(feed(r, [[false, "12345678901"]]), ["too-long"]);
  assert.deepEqual(feed(r, [[false, "after"]]), ["message:after"]);
  // The default limit is MAX_MESSAGE: one byte more is refused, and the stream goes on.
  const d = new Reassembler();
  const parts = fragment(new Uint8Array(MAX_MESSAGE + 1).fill(0x62));
  const kinds = parts.map((p, i) => push(d, i < parts.length - 1, p).kind);
  assert.equal(kinds.filter((k) => k === "too-long").length, 1);
  assert.ok(!kinds.includes("message"));
  assert.ok(d.held <= MAX_MESSAGE);
  assert.deepEqual(feed(d, [[false, "small"]]), ["message:small"]);
});

Deno.test("Reassembler: never holds more than its limit, whatever the fragments (seeded)", () => {
  const rand = prng(31337);
  for (const limit of [1, 7, 100, 1000]) {
    const r = new Reassembler(limit);
    // A model: the message in progress, and whether it is being discarded.
    let parts: number[] = [];
    let discarding = false;
    for (let i = 0; i < 3000; i++) {
      const more = rand() < 0.7;
      const len = Math.floor(rand() * (limit / 2 + 3));
      const text = new Uint8Array(len).fill(0x41 + (i % 26));
      const got = push(r, more, text);
      let want: Reassembled["kind"];
      if (discarding) {
        discarding = more;
        want = "orphan";
      } else if (parts.reduce((n, x) => n + x, 0) + len > limit) {
        parts = [];
        discarding = more;
        want = "too-long";
      } else if (more) {
        parts.push(len);
        want = "partial";
      } else {
        const total = parts.reduce((n, x) => n + x, 0) + len;
        parts = [];
        want = "message";
        assert.ok(got.kind === "message" && got.bytes.length === total, `limit ${limit}, ${i}`);
      }
      assert.equal(got.kind, want, `limit ${limit}, fragment ${i}`);
      assert.ok(r.held <= limit, `limit ${limit}: holds ${r.held}`);
      assert.equal(r.held, parts.reduce((n, x) => n + x, 0));
    }
  }
});

Deno.test("Reassembler: reset mid-message forgets the partial message", () => {
  const r = new Reassembler();
  assert.deepEqual(feed(r, [[true, "stale "], [true, "half "]]), ["partial", "partial"]);
  assert.equal(r.held, 11);
  r.reset();
  assert.equal(r.held, 0);
  // The rest of the forgotten message is dropped, never shown as a message of its own.
  assert.deepEqual(feed(r, [[false, "tail"]]), ["orphan"]);
  assert.deepEqual(feed(r, [[true, "fresh "], [false, "start"]]), [
    "partial",
    "message:fresh start",
  ]);
  // A reset while swallowing the rest of a too-long message: the next message starts afresh.
  const s = new Reassembler(4);
  assert.deepEqual(feed(s, [[true, "12345"]]), ["too-long"]);
  s.reset();
  assert.deepEqual(feed(s, [[false, "new", true]]), ["message:new"]);
  // Reset between messages changes nothing.
  s.reset();
  assert.deepEqual(feed(s, [[true, "ab"], [false, "cd"]]), ["partial", "message:abcd"]);
});

Deno.test("Reassembler: a stream resumed mid-message never shows a truncated message", () => {
  // A receiver that starts following a stream in the middle of a message (it was recreated,
  // or the sender's stream restarted) sees continuation fragments first: they are dropped.
  const fresh = new Reassembler();
  assert.deepEqual(feed(fresh, [[true, "llo ", false], [false, "world", false]]), [
    "orphan",
    "orphan",
  ]);
  assert.deepEqual(feed(fresh, [[false, "next", true]]), ["message:next"]);
  // A first fragment while a message is in progress: the broken message is void.
  const r = new Reassembler();
  assert.deepEqual(feed(r, [[true, "he"], [true, "new", true], [false, "!"]]), [
    "partial",
    "partial",
    "message:new!",
  ]);
});
