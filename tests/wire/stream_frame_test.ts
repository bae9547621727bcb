/**
 * Datagrams over a byte stream: the exact bytes of a frame, frames cut back out of any split
 * of the stream (every split point, random chunkings), and the framing errors that close a
 * stream (length 0, above the maximum), with the bytes held bounded.
 */
import assert from "node:assert/strict";
import { Deframer, frame, FRAME_PREFIX, MAX_STREAM_FRAME } from "../../lib/wire/stream_frame.ts";
import { prng, randomBytesFrom } from "../support/prng.ts";

/** Every frame `d` gives for `chunks`, copied. */
function cut(d: Deframer, chunks: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of chunks) {
    d.push(c);
    for (let f = d.next(); f; f = d.next()) out.push(f.slice());
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("stream frame: a length prefix (2 bytes, big-endian) and the datagram", () => {
  assert.deepEqual(frame(new Uint8Array([0x70, 0x32, 6])), new Uint8Array([0, 3, 0x70, 0x32, 6]));
  const big = frame(new Uint8Array(MAX_STREAM_FRAME).fill(7))!;
  assert.equal(big.length, FRAME_PREFIX + 1200);
  assert.deepEqual([...big.subarray(0, 2)], [0x04, 0xb0]);
  assert.equal(frame(new Uint8Array(0)), null);
  assert.equal(frame(new Uint8Array(MAX_STREAM_FRAME + 1)), null);
});

Deno.test("stream frame: frames come back whole from every split of the stream", () => {
  const datagrams = [new Uint8Array([1]), new Uint8Array(300).fill(2), new Uint8Array([3, 3])];
  const stream = concat(datagrams.map((d) => frame(d)!));
  for (let a = 0; a <= stream.length; a++) {
    for (let b = a; b <= stream.length; b += 37) {
      const chunks = [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)];
      assert.deepEqual(cut(new Deframer(), chunks), datagrams, `split at ${a}, ${b}`);
    }
  }
  // One byte at a time.
  const bytes = [...stream].map((x) => new Uint8Array([x]));
  assert.deepEqual(cut(new Deframer(), bytes), datagrams);
});

Deno.test("stream frame: random datagrams in random chunks, 200 seeded runs", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rng = prng(seed);
    const datagrams = Array.from(
      { length: 1 + Math.floor(rng() * 20) },
      () => randomBytesFrom(rng, 1 + Math.floor(rng() * MAX_STREAM_FRAME)),
    );
    const stream = concat(datagrams.map((d) => frame(d)!));
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < stream.length;) {
      const n = Math.floor(rng() * 3000);
      chunks.push(stream.subarray(at, at + n));
      at += n;
    }
    const d = new Deframer();
    assert.deepEqual(cut(d, chunks), datagrams, `seed ${seed}`);
    assert.equal(d.buffered, 0);
    assert.equal(d.failed, false);
  }
});

Deno.test("stream frame: length 0 or above the maximum is a framing error; nothing after it", () => {
  for (const prefix of [[0, 0], [0x04, 0xb1], [0xff, 0xff]]) {
    const d = new Deframer();
    const good = frame(new Uint8Array([9]))!;
    const frames = cut(d, [good, new Uint8Array([...prefix, 1, 2, 3]), good]);
    assert.deepEqual(frames, [new Uint8Array([9])], `prefix ${prefix}`);
    assert.equal(d.failed, true);
    assert.equal(d.buffered, 0);
  }
  // The bad length split across chunks is caught too.
  const d = new Deframer();
  assert.deepEqual(cut(d, [new Uint8Array([0xff]), new Uint8Array([0xff, 1])]), []);
  assert.equal(d.failed, true);
});

Deno.test("stream frame: a frame split across chunks holds at most one frame's bytes", () => {
  const d = new Deframer();
  const f = frame(new Uint8Array(MAX_STREAM_FRAME).fill(5))!;
  // Everything but the last byte, in two chunks: held, not yet a frame.
  assert.deepEqual(cut(d, [f.subarray(0, 600), f.subarray(600, f.length - 1)]), []);
  assert.equal(d.buffered, f.length - 1);
  assert.deepEqual(cut(d, [f.subarray(f.length - 1)]), [f.subarray(FRAME_PREFIX)]);
  assert.equal(d.buffered, 0);
  // A smaller maximum refuses what the default takes.
  const small = new Deframer(100);
  assert.deepEqual(cut(small, [frame(new Uint8Array(101))!]), []);
  assert.equal(small.failed, true);
});
