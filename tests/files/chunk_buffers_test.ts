/**
 * The chunk buffers of a transfer are used again: a receiver assembles chunks in at most a
 * window's worth of buffers (one is free again once the disk wrote its chunk), a sender keeps
 * chunks in at most a few buffers more than it serves at once and reads only a few chunks ahead of
 * the one it sends, and neither hands out bytes that a later chunk overwrote before the disk or
 * the datagram had them.
 */
import assert from "node:assert/strict";
import { IncomingFile, MAX_WINDOW_CHUNKS } from "../../lib/files/incoming.ts";
import { leafHash, MerkleTree } from "../../lib/files/merkle.ts";
import { OutgoingFile, SPARE_PAYLOADS } from "../../lib/files/outgoing.ts";
import { PeerUplink, READ_AHEAD } from "../../lib/files/uplink.ts";
import { toHex } from "../../lib/wire/codec.ts";
import { Sha256 } from "../../lib/crypto/sha256.ts";
import { FILE_BLOCK, type FileOffer } from "../../lib/wire/file_frame.ts";
import { prng, randomBytesFrom } from "../support/prng.ts";

const SHIFT = 14;

function fileOf(size: number): { data: Uint8Array; offer: FileOffer; tree: MerkleTree } {
  const data = randomBytesFrom(prng(3), size);
  const leaves: Uint8Array[] = [];
  for (let p = 0; p < size; p += 2 ** SHIFT) {
    leaves.push(leafHash(data.subarray(p, p + 2 ** SHIFT)));
  }
  const tree = new MerkleTree(leaves);
  const offer = {
    id: new Uint8Array(8).fill(1),
    name: "f.bin",
    size,
    chunkShift: SHIFT,
    sha256: new Sha256().update(data).digest(),
    root: tree.root,
  };
  return { data, offer, tree };
}

Deno.test("a receiver assembles a long file in a window's worth of buffers, each write intact", () => {
  const { data, offer, tree } = fileOf(200 * 2 ** SHIFT - 1234);
  const f = new IncomingFile(offer);
  const buffers = new Set<ArrayBufferLike>();
  const disk = new Uint8Array(offer.size);
  // Writes complete three at a time, later than they are asked for.
  const pending: { chunk: number; position: number; data: Uint8Array; copy: Uint8Array }[] = [];
  for (let round = 0; !f.complete && round < 10_000; round++) {
    for (const c of f.wanted(round)) {
      const start = c * 2 ** SHIFT;
      const chunk = data.subarray(start, Math.min(offer.size, start + 2 ** SHIFT));
      const payload = new Uint8Array([...tree.proof(c), ...chunk]);
      for (let o = 0; o < payload.length; o += FILE_BLOCK) {
        const v = f.handleData(c, o, payload.subarray(o, o + FILE_BLOCK), round);
        assert.ok(v === "stored" || v === "verified", `${c}@${o}: ${v}`);
      }
    }
    for (let w = f.pollWrite(); w; w = f.pollWrite()) {
      buffers.add(w.data.buffer);
      pending.push({ ...w, copy: w.data.slice() });
    }
    for (const w of pending.splice(0, 3)) {
      // What the disk reads is what was verified, until the write is done.
      assert.deepEqual(w.data, w.copy, `chunk ${w.chunk} changed before it was written`);
      disk.set(w.data, w.position);
      f.handleWritten(w.chunk);
    }
  }
  assert.ok(f.complete);
  assert.deepEqual(disk, data);
  assert.ok(buffers.size <= MAX_WINDOW_CHUNKS, `${buffers.size} buffers for 200 chunks`);
});

Deno.test("a sender keeps a long file's chunks in a few buffers, each payload intact while served", () => {
  const { data, offer, tree } = fileOf(300 * 2 ** SHIFT);
  const f = new OutgoingFile(offer, (c) => tree.proof(c));
  const buffers = new Set<ArrayBufferLike>();
  const serving: number[] = [];
  const read = new Uint8Array(2 ** SHIFT); // the I/O side's one read buffer
  for (let c = 0; c < f.layout.chunks; c++) {
    f.want(c);
    serving.push(c);
    for (let r = f.pollRead(); r !== undefined; r = f.pollRead()) {
      read.set(data.subarray(f.layout.start(r), f.layout.start(r) + f.layout.length(r)));
      assert.ok(f.handleRead(r, read.subarray(0, f.layout.length(r))));
    }
    buffers.add(f.payload(c)!.buffer);
    // Eight chunks served at once; the oldest is done with.
    if (serving.length > 8) f.unwant(serving.shift()!);
    for (const s of serving) {
      const p = f.payload(s)!;
      const proof = tree.proof(s);
      assert.deepEqual(p.subarray(0, proof.length), proof);
      const start = f.layout.start(s);
      assert.deepEqual(p.subarray(proof.length), data.subarray(start, start + f.layout.length(s)));
    }
  }
  assert.ok(buffers.size <= 9 + SPARE_PAYLOADS, `${buffers.size} buffers for 300 chunks`);
});

Deno.test("a sender reads only a few chunks ahead of the one it sends, however many are asked", () => {
  const { data, offer, tree } = fileOf(64 * 2 ** SHIFT);
  const f = new OutgoingFile(offer, (c) => tree.proof(c));
  const up = new PeerUplink("peer");
  const serveReads = () => {
    const read: number[] = [];
    for (let r = f.pollRead(); r !== undefined; r = f.pollRead()) {
      const start = f.layout.start(r);
      assert.ok(f.handleRead(r, data.subarray(start, start + f.layout.length(r))));
      read.push(r);
    }
    return read;
  };
  for (let c = 0; c < 40; c++) assert.ok(up.request(f, c));
  assert.deepEqual(serveReads(), [0, 1, 2, 3, 4, 5, 6, 7].slice(0, READ_AHEAD));
  // Chunk 0 sent in full: one more is read; its blocks acknowledged: its buffer is let go.
  const refs = [];
  for (let b = 0; b < f.layout.blocks(0); b++) refs.push(up.nextBlock()!.ref);
  assert.ok(refs.every((r) => r.chunk === 0));
  assert.deepEqual(serveReads(), [READ_AHEAD]);
  assert.equal(f.cached, READ_AHEAD + 1);
  for (const r of refs) up.release(r, true);
  assert.equal(f.cached, READ_AHEAD);
  assert.deepEqual(up.pollFinished(), [toHex(offer.id), 0, 2 ** SHIFT]);
  // Everything asked for is still sent, in order.
  const chunks: number[] = [];
  for (let x = up.nextBlock(); x; x = up.nextBlock() ?? (serveReads(), up.nextBlock())) {
    if (chunks.at(-1) !== x.ref.chunk) chunks.push(x.ref.chunk);
    up.release(x.ref, true);
    serveReads();
  }
  assert.deepEqual(chunks, Array.from({ length: 39 }, (_, i) => i + 1));
  assert.equal(f.cached, 0);
});
