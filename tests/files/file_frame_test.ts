import assert from "node:assert/strict";
import {
  decodeFileFrame,
  encodeFileDataInto,
  encodeFileFrame,
  FILE_BLOCK,
  FILE_DATA_HEADER,
  type FileFrame,
  FileKind,
  FileStatus,
  MAX_CHUNK_SHIFT,
} from "../../lib/wire/file_frame.ts";
import { decodeResume, encodeResume, IncomingFile } from "../../lib/files/incoming.ts";
import { prng, randomBytesFrom } from "../support/prng.ts";

const offer = {
  id: new Uint8Array(8).fill(1),
  name: "Zoë's report.pdf",
  size: 1_234_567,
  chunkShift: 18,
  sha256: new Uint8Array(32).fill(2),
  root: new Uint8Array(32).fill(3),
};

const frames: FileFrame[] = [
  { kind: FileKind.Offer, ...offer },
  { kind: FileKind.Reply, id: offer.id, status: FileStatus.Complete },
  { kind: FileKind.Request, id: offer.id, chunks: [0, 5, 4_194_303] },
  {
    kind: FileKind.Data,
    id: offer.id,
    pn: 7,
    chunk: 3,
    offset: FILE_BLOCK,
    data: new Uint8Array(FILE_BLOCK),
  },
  { kind: FileKind.Ack, delay: 12, ranges: [[100, 90], [80, 80], [3, 0]] },
  {
    kind: FileKind.Swarm,
    id: offer.id,
    index: 2,
    peers: [1, 2, 3].map((i) => new Uint8Array(8).fill(i)),
  },
];

Deno.test("file frames round-trip; every truncation and extension is refused, never thrown", () => {
  for (const f of frames) {
    const b = encodeFileFrame(f);
    assert.deepEqual(decodeFileFrame(b), { ok: true, value: f });
    for (let n = 0; n < b.length; n++) {
      const d = decodeFileFrame(b.subarray(0, n));
      if (f.kind !== FileKind.Data || n < 21) assert.equal(d.ok, false, `kind ${f.kind} at ${n}`);
    }
    if (f.kind !== FileKind.Data) {
      assert.equal(decodeFileFrame(new Uint8Array([...b, 0])).ok, false);
    }
  }
});

Deno.test("FILE_DATA encoded into a caller's buffer is the codec's bytes; bounds refused", () => {
  const rng = prng(5);
  const rand = (n: number) => randomBytesFrom(rng, n);
  for (const len of [0, 1, 700, FILE_BLOCK]) {
    const f = {
      kind: FileKind.Data,
      id: rand(8),
      pn: 0xfedc_ba98,
      chunk: 0x0102_0304,
      offset: FILE_BLOCK * 3,
      data: rand(len),
    } as const;
    const out = new Uint8Array(FILE_DATA_HEADER + len);
    encodeFileDataInto(f, out);
    assert.deepEqual(out, encodeFileFrame(f));
    assert.throws(() => encodeFileDataInto(f, new Uint8Array(out.length + 1)), RangeError);
    assert.throws(() => encodeFileDataInto({ ...f, pn: 2 ** 32 }, out), RangeError);
  }
  const big = { kind: FileKind.Data, id: rand(8), pn: 0, chunk: 0, offset: 0 } as const;
  const data = new Uint8Array(FILE_BLOCK + 1);
  assert.throws(
    () => encodeFileDataInto({ ...big, data }, new Uint8Array(FILE_DATA_HEADER + data.length)),
    RangeError,
  );
});

Deno.test("file frames' bounds: names, sizes, chunk sizes, counts, ranges", () => {
  const bad = (f: FileFrame) => {
    assert.throws(() => encodeFileFrame(f), RangeError);
  };
  bad({ kind: FileKind.Offer, ...offer, name: "" });
  bad({ kind: FileKind.Offer, ...offer, name: "x".repeat(256) });
  bad({ kind: FileKind.Offer, ...offer, chunkShift: MAX_CHUNK_SHIFT + 1 });
  bad({ kind: FileKind.Offer, ...offer, size: 2 ** 22 * 2 ** 22 + 1 });
  bad({ kind: FileKind.Request, id: offer.id, chunks: [] });
  bad({ kind: FileKind.Request, id: offer.id, chunks: new Array(33).fill(0) });
  bad({
    kind: FileKind.Data,
    id: offer.id,
    pn: 0,
    chunk: 0,
    offset: 0,
    data: new Uint8Array(FILE_BLOCK + 1),
  });
  const enc = encodeFileFrame({ kind: FileKind.Ack, delay: 0, ranges: [[10, 5]] });
  // Overlapping or ascending ranges, a low above its high, a bad status: refused.
  const twice = new Uint8Array([
    FileKind.Ack,
    0,
    0,
    2,
    0,
    0,
    0,
    10,
    0,
    0,
    0,
    5,
    0,
    0,
    0,
    6,
    0,
    0,
    0,
    1,
  ]);
  assert.deepEqual(decodeFileFrame(twice), { ok: false, reason: "bad-ranges" });
  const flipped = enc.slice();
  flipped[7] = 4;
  assert.deepEqual(decodeFileFrame(flipped), { ok: false, reason: "bad-ranges" });
  const reply = encodeFileFrame({ kind: FileKind.Reply, id: offer.id, status: 1 });
  reply[9] = 9;
  assert.deepEqual(decodeFileFrame(reply), { ok: false, reason: "bad-status" });
  // A name that is not UTF-8.
  const o = encodeFileFrame({ kind: FileKind.Offer, ...offer, name: "ab" });
  o[o.length - 1] = 0xff;
  assert.deepEqual(decodeFileFrame(o), { ok: false, reason: "bad-offer" });
});

Deno.test("fuzz: decoding random and mutated frames never throws; decode∘encode∘decode = decode", () => {
  const r = prng(9);
  for (let i = 0; i < 20_000; i++) {
    const base = encodeFileFrame(frames[i % frames.length]!);
    const b = i % 2 ? randomBytesFrom(r, Math.floor(r() * 400)) : base.slice();
    if (i % 2 === 0) {
      for (let k = 0; k < 3; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    }
    if (b.length > 0 && i % 4 === 1) b[0] = 14 + (i % 6);
    const d = decodeFileFrame(b);
    if (d.ok) assert.deepEqual(decodeFileFrame(encodeFileFrame(d.value)), d);
  }
});

Deno.test("the resume state round-trips and refuses anything else", () => {
  const f = new IncomingFile(offer);
  const bitmap = f.bitmap();
  bitmap[0] = 0b101;
  const state = encodeResume(offer, bitmap);
  assert.deepEqual(decodeResume(state), { offer, bitmap });
  const resumed = new IncomingFile(offer, bitmap);
  assert.ok(resumed.isVerified(0) && !resumed.isVerified(1) && resumed.isVerified(2));
  assert.equal(resumed.bytesDone, 2 * 2 ** 18);
  for (let n = 0; n < state.length; n++) assert.equal(decodeResume(state.subarray(0, n)), null);
  assert.equal(decodeResume(new Uint8Array([...state, 0])), null);
});
