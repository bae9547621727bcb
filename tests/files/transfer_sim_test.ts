import assert from "node:assert/strict";
import { FileSim, offerOf, type SimNode } from "../support/file_sim.ts";
import { decodeResume } from "../../lib/files/incoming.ts";
import { ChunkLayout } from "../../lib/files/chunks.ts";
import { FILE_BLOCK, FileKind, FileStatus } from "../../lib/wire/file_frame.ts";
import { prng } from "../support/prng.ts";

function fileOf(seed: number, size: number): Uint8Array {
  const r = prng(seed), out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = Math.floor(r() * 256);
  return out;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return !!a && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A peer id as a 16-hex-digit key (group transfers list receivers by id). */
const key = (i: number) => i.toString(16).padStart(16, "0");

/** `from` offers `data` to `receivers` as a group transfer; each accepts. Returns the id. */
function groupStarted(
  sim: FileSim,
  from: string,
  name: string,
  data: Uint8Array,
  receivers: SimNode[],
): string {
  const id = sim.offer(from, name, data, receivers.map((r) => r.name));
  sim.run(2000, () => receivers.every((r) => r.events.some((e) => e.state === "offered")));
  for (const r of receivers) {
    assert.ok(r.core.accept(id, sim.now));
    sim.pump(r);
  }
  return id;
}

Deno.test("a file crosses a clean 10 Mbit/s link verified, near the link's rate", () => {
  const sim = new FileSim(1);
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(2, 3_000_000);
  const id = sim.offer("a", "photo.jpg", data, ["b"]);
  sim.run(1000, () => b.events.some((e) => e.state === "offered"));
  assert.ok(b.core.accept(id, sim.now));
  sim.pump(b);
  const start = sim.now;
  assert.ok(sim.run(60_000, () => a.events.some((e) => e.state === "done")));
  assert.ok(sameBytes(b.finished.get(id), data));
  const secs = (sim.now - start) / 1000;
  const goodput = data.length / secs / 1250_000; // fraction of the 10 Mbit/s link
  console.log(`goodput ${(goodput * 100).toFixed(1)} % of the link, ${secs.toFixed(2)} s`);
  assert.ok(goodput > 0.8, `goodput ${goodput}`);
  const done = b.events.find((e) => e.state === "done")!;
  assert.equal(done.path, `/downloads/${id}`);
  assert.equal(done.bytes, data.length);
});

/** Offers `data` from a to b, accepts, and returns the id. */
function started(sim: FileSim, data: Uint8Array, shift = 16): string {
  const b = sim.nodes.get("b")!;
  const id = sim.offer("a", "f.bin", data, ["b"], shift);
  sim.run(sim.now + 1000, () => b.events.some((e) => e.state === "offered" && e.id === id));
  assert.ok(b.core.accept(id, sim.now));
  sim.pump(b);
  return id;
}

Deno.test("loss, duplication and reordering: the file arrives whole, lost blocks sent again", () => {
  const sim = new FileSim(3, { loss: 0.03, dup: 0.03, jitter: 15 });
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(4, 1_500_000);
  const id = started(sim, data);
  assert.ok(sim.run(120_000, () => b.finished.has(id)));
  const took = sim.now;
  assert.ok(sim.run(120_000, () => a.events.some((e) => e.state === "done")));
  assert.ok(sameBytes(b.finished.get(id), data));
  const s = a.core.senderOf("b")!;
  assert.ok(s.stats.retransmits > 20, `retransmits ${s.stats.retransmits}`);
  assert.ok((b.core.drops.get("data-duplicate-packet") ?? 0) > 0);
  // Goodput stays reasonable under 3 % loss on a 20 ms path (until the receiver has the file;
  // the sender hears of it a round trip later, or after a repeat if that word is lost).
  assert.ok(took < 30_000, `took ${took} ms`);
});

Deno.test("a path change mid-transfer (relay to direct: RTT, rate, a blackout) is survived", () => {
  const sim = new FileSim(5, { latency: 40, rate: 500 });
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(6, 2_000_000);
  const id = started(sim, data);
  sim.run(60_000, () => (b.downloads.get(id) ? b.events.length > 1 : false) && sim.now > 2500);
  const before = a.core.senderOf("b")!.srtt!;
  for (const [x, y] of [["a", "b"], ["b", "a"]]) {
    Object.assign(sim.link(x!, y!), { loss: 1 });
  }
  sim.run(sim.now + 300);
  for (const [x, y] of [["a", "b"], ["b", "a"]]) {
    Object.assign(sim.link(x!, y!), { loss: 0, latency: 3, rate: 2500 });
  }
  assert.ok(sim.run(120_000, () => a.events.some((e) => e.state === "done")));
  assert.ok(sameBytes(b.finished.get(id), data));
  const after = a.core.senderOf("b")!.srtt!;
  assert.ok(before > 80 && after < 40, `srtt ${before} → ${after}`);
});

Deno.test("a receiver that stops writing stops the sender; memory stays bounded; it resumes", () => {
  const sim = new FileSim(7);
  const a = sim.add("a"), b = sim.add("b");
  b.holdWrites = true;
  const data = fileOf(8, 8_000_000);
  const id = started(sim, data);
  sim.run(sim.now + 5000);
  const sent = a.core.senderOf("b")!.stats.packets;
  sim.run(sim.now + 5000);
  assert.equal(a.core.senderOf("b")!.stats.packets, sent, "the sender went on sending");
  assert.ok(a.core.outgoing(id)!.cached <= 48);
  // What sits in the receiver's memory: the held chunks, within the 8 MiB window.
  const heldBytes = b.held.reduce((n, op) => n + (op.op === "write" ? op.data.length : 0), 0);
  assert.ok(heldBytes <= 8 * 1024 * 1024 && heldBytes > 0, `held ${heldBytes}`);
  sim.release("b");
  assert.ok(sim.run(120_000, () => a.events.some((e) => e.state === "done")));
  assert.ok(sameBytes(b.finished.get(id), data));
});

Deno.test("a sender that lies about the file's SHA-256: verified chunks, no file in place", () => {
  const sim = new FileSim(9);
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(10, 300_000);
  const { offer, tree } = offerOf(new Uint8Array(8).fill(7), "x.bin", data);
  offer.sha256 = new Uint8Array(32).fill(1);
  a.files.set("0707070707070707", data);
  a.core.offer(offer, tree, ["b"], sim.now);
  sim.pump(a);
  sim.run(1000, () => b.events.length > 0);
  b.core.accept("0707070707070707", sim.now);
  sim.pump(b);
  sim.run(60_000, () => b.events.some((e) => e.state === "failed"));
  const failed = b.events.find((e) => e.state === "failed")!;
  assert.equal(failed.reason, "sha256 mismatch");
  assert.equal(b.finished.size, 0);
  assert.ok(b.ops.some((op) => op.op === "discard"));
  sim.run(sim.now + 1000);
  assert.ok(a.events.some((e) => e.state === "failed" && e.to === "b"));
});

Deno.test("a sender whose data does not match its offer: nothing written, given up", () => {
  const sim = new FileSim(11);
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(12, 400_000), other = fileOf(13, 400_000);
  a.readHook = (_id, position, length) => other.slice(position, position + length);
  started(sim, data);
  sim.run(120_000, () => b.events.some((e) => e.state === "failed"));
  assert.equal(b.events.find((e) => e.state === "failed")?.reason, "data failed verification");
  assert.equal(b.ops.filter((op) => op.op === "write").length, 0);
  assert.ok((b.core.drops.get("data-corrupt-chunk") ?? 0) > 16);
});

Deno.test("a sender that lies about the size: its short reads cancel the transfer", () => {
  const sim = new FileSim(13);
  const a = sim.add("a"), b = sim.add("b");
  const claimed = fileOf(14, 500_000);
  a.readHook = (_id, position, length) => claimed.slice(position, position + length / 2);
  started(sim, claimed);
  sim.run(60_000, () => b.events.some((e) => e.state === "failed"));
  assert.equal(b.events.find((e) => e.state === "failed")?.reason, "cancelled by the sender");
  assert.equal(b.ops.filter((op) => op.op === "write").length, 0);
});

Deno.test("one corrupted block: only its chunk is fetched again", () => {
  const sim = new FileSim(15);
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(16, 1_000_000);
  let tampered = 0;
  sim.tamper = (_f, _t, f) => {
    if (f.kind === FileKind.Data && f.chunk === 5 && f.offset === FILE_BLOCK * 3 && !tampered) {
      tampered++;
      const d = f.data.slice();
      d[10]! ^= 1;
      return { ...f, data: d };
    }
    return f;
  };
  const id = started(sim, data);
  assert.ok(sim.run(60_000, () => a.events.some((e) => e.state === "done")));
  assert.ok(sameBytes(b.finished.get(id), data));
  assert.equal(b.core.drops.get("data-corrupt-chunk"), 1);
  const layout = new ChunkLayout({ size: data.length, chunkShift: 16 });
  let blocks = 0;
  for (let c = 0; c < layout.chunks; c++) blocks += layout.blocks(c);
  const s = a.core.senderOf("b")!.stats;
  // Every block once, plus chunk 5's blocks again (besides retransmissions of lost packets).
  assert.equal(s.packets - s.retransmits, blocks + layout.blocks(5));
});

Deno.test("blocks for a transfer that was not accepted are dropped, nothing reaches the disk", () => {
  const sim = new FileSim(17);
  const b = sim.add("b");
  const data = fileOf(18, 70_000);
  const { offer } = offerOf(new Uint8Array(8).fill(3), "a.bin", data);
  b.core.handleFrame("m", { kind: FileKind.Offer, ...offer }, 0);
  sim.pump(b);
  for (let pn = 0; pn < 100; pn++) {
    const block = data.subarray(0, FILE_BLOCK);
    b.core.handleFrame("m", {
      kind: FileKind.Data,
      id: offer.id,
      pn,
      chunk: 0,
      offset: 0,
      data: block,
    }, 1);
    b.core.handleFrame("m", {
      kind: FileKind.Data,
      id: new Uint8Array(8).fill(9),
      pn: 1000 + pn,
      chunk: 0,
      offset: 0,
      data: block,
    }, 1);
    sim.pump(b);
  }
  assert.equal(b.ops.length, 0);
  assert.equal(b.core.drops.get("data-unaccepted"), 200);
  // Another peer cannot feed a transfer accepted from m.
  b.core.accept("0303030303030303", 2);
  sim.pump(b);
  b.core.handleFrame("x", {
    kind: FileKind.Data,
    id: offer.id,
    pn: 1,
    chunk: 0,
    offset: 0,
    data: data.subarray(0, FILE_BLOCK),
  }, 3);
  assert.equal(b.core.drops.get("data-unaccepted"), 201);
});

Deno.test("an offer flood: a few are shown, the rest refused, nothing stored, disk untouched", () => {
  const sim = new FileSim(19);
  const b = sim.add("b");
  const replies = new Map<number, number>();
  for (let i = 0; i < 1000; i++) {
    const id = new Uint8Array(8);
    new DataView(id.buffer).setUint32(4, i);
    b.core.handleFrame("m", {
      kind: FileKind.Offer,
      id,
      name: `f${i}`,
      size: 1e12,
      chunkShift: 22,
      sha256: new Uint8Array(32),
      root: new Uint8Array(32),
    }, i);
    for (let f = b.core.pollFrame(i); f; f = b.core.pollFrame(i)) {
      if (f.frame.kind === FileKind.Reply) {
        replies.set(f.frame.status, (replies.get(f.frame.status) ?? 0) + 1);
      }
    }
    for (let e = b.core.pollEvent(); e; e = b.core.pollEvent()) b.events.push(e);
  }
  assert.equal(b.events.length, 8);
  assert.equal(replies.get(FileStatus.Pending), 8);
  assert.equal(replies.get(FileStatus.Rejected), 992);
  assert.equal(b.core.pollOp(), undefined);
  assert.equal(b.core.drops.get("offer-flood"), 992);
});

Deno.test("resume: a restarted receiver takes the re-offer and fetches only what it lacked", () => {
  const sim = new FileSim(21);
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(22, 3_000_000);
  const id = started(sim, data);
  sim.run(60_000, () => {
    const s = b.saved.get(id);
    return !!s && (decodeResume(s)!.bitmap.reduce((n, x) => n + popcount(x), 0) >= 20);
  });
  const saved = decodeResume(b.saved.get(id)!)!;
  const had = new Set<number>();
  for (let c = 0; c < 46; c++) if (saved.bitmap[c >> 3]! & (1 << (c & 7))) had.add(c);
  sim.nodes.get("b")!.alive = false;
  sim.run(sim.now + 2000);
  const nb = sim.restart("b");
  nb.alive = true;
  nb.events = [];
  const refetched: number[] = [];
  sim.tamper = (from, _to, f) => {
    if (from === "a" && f.kind === FileKind.Data && had.has(f.chunk)) refetched.push(f.chunk);
    return f;
  };
  // The sender offers again once the receiver has been silent a while.
  assert.ok(sim.run(sim.now + 15_000, () => nb.events.some((e) => e.state === "offered")));
  const before = refetched.length;
  assert.ok(nb.core.accept(id, sim.now, saved.bitmap));
  sim.pump(nb);
  assert.ok(sim.run(120_000, () => a.events.some((e) => e.state === "done")));
  assert.ok(sameBytes(nb.finished.get(id), data));
  assert.equal(refetched.length - before, 0, `refetched ${refetched.slice(before)}`);
});

Deno.test("one seed gives one trace", () => {
  const run = () => {
    const sim = new FileSim(23, { loss: 0.02, jitter: 5 });
    const a = sim.add("a");
    sim.add("b");
    started(sim, fileOf(24, 500_000));
    sim.run(60_000, () => a.events.some((e) => e.state === "done"));
    return [sim.now, a.core.senderOf("b")!.stats];
  };
  assert.deepEqual(run(), run());
});

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

Deno.test("a deep bottleneck queue stays short: queueing delay is held near its target", () => {
  // 10 Mbit/s with a 1 MB buffer (800 ms of it): a loss-based window alone would fill it.
  const sim = new FileSim(25, { latency: 10, queue: 1_000_000 });
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(26, 4_000_000);
  const id = started(sim, data);
  const samples: number[] = [];
  const start = sim.now;
  while (!a.events.some((e) => e.state === "done") && sim.now < 120_000) {
    sim.run(sim.now + 100, () => a.events.some((e) => e.state === "done"));
    const s = a.core.senderOf("b");
    if (s?.srtt && sim.now - start > 1000) samples.push(s.srtt);
  }
  assert.ok(sameBytes(b.finished.get(id), data));
  samples.sort((x, y) => x - y);
  const p90 = samples[Math.floor(samples.length * 0.9)]!;
  assert.ok(p90 < 20 + 40, `srtt p90 ${p90} ms on a 20 ms path`);
  const goodput = data.length / ((sim.now - start) / 1000) / 1250_000;
  assert.ok(goodput > 0.75, `goodput ${goodput}`);
});

Deno.test("a path change to a longer path (direct to relay) keeps going at the new path's rate", () => {
  const sim = new FileSim(27, { latency: 2, rate: 2500 });
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(28, 6_000_000);
  const id = started(sim, data);
  sim.run(sim.now + 1000);
  for (const [x, y] of [["a", "b"], ["b", "a"]]) {
    Object.assign(sim.link(x!, y!), { latency: 40, rate: 1250, queue: 200_000 });
  }
  const before = a.core.senderOf("b")!.stats.bytesAcked;
  sim.run(sim.now + 4000);
  const rate = (a.core.senderOf("b")!.stats.bytesAcked - before) / 4000 / 1250;
  assert.ok(rate > 0.6, `${rate} of the new path's rate in the 4 s after the change`);
  assert.ok(sim.run(120_000, () => a.events.some((e) => e.state === "done")));
  assert.ok(sameBytes(b.finished.get(id), data));
});

Deno.test("group transfer: four receivers fetch from each other; the sender uploads about one copy", () => {
  const sim = new FileSim(29, { latency: 10, rate: 2500, queue: 128_000 });
  const sender = sim.add(key(1));
  const receivers = [2, 3, 4, 5].map((i) => sim.add(key(i)));
  const data = fileOf(30, 3_000_000);
  const id = groupStarted(sim, key(1), "film.mkv", data, receivers);
  assert.ok(sim.run(300_000, () => receivers.every((r) => r.finished.has(id))));
  for (const r of receivers) assert.ok(sameBytes(r.finished.get(id), data), r.name);
  let uploaded = 0;
  for (const [link, bytes] of sim.sent) if (link.startsWith(`${key(1)}>`)) uploaded += bytes;
  const ratio = uploaded / data.length;
  console.log(`sender uploaded ${ratio.toFixed(2)} × the file for 4 receivers`);
  assert.ok(ratio <= 1.5, `sender uploaded ${ratio} × the file`);
  // Each receiver passed chunks on to the others.
  for (const r of receivers) {
    let passed = 0;
    for (const [link, bytes] of sim.sent) {
      if (link.startsWith(`${r.name}>`) && !link.endsWith(key(1))) passed += bytes;
    }
    assert.ok(passed > data.length / 4, `${r.name} passed on ${passed}`);
  }
  assert.ok(
    sim.run(
      sim.now + 5000,
      () =>
        receivers.every((r) => sender.events.some((e) => e.state === "done" && e.to === r.name)),
    ),
  );
});

/** Bytes `from` sent on its links to every node but `except`. */
function uploadedBy(sim: FileSim, from: string, except?: string): number {
  let n = 0;
  for (const [link, bytes] of sim.sent) {
    if (link.startsWith(`${from}>`) && link !== `${from}>${except}`) n += bytes;
  }
  return n;
}

Deno.test("group transfer over a slow sender uplink: receivers wait for each other, not for the sender", () => {
  // The sender's links carry 2 Mbit/s, the receivers' link 20: each receiver's half arrives
  // over seconds, so the other asks for a chunk long before its owner has it.
  const sim = new FileSim(35, { latency: 10, rate: 2500, queue: 128_000 });
  const sender = sim.add(key(1));
  const receivers = [sim.add(key(2)), sim.add(key(3))];
  for (const r of receivers) Object.assign(sim.link(key(1), r.name), { rate: 250 });
  const data = fileOf(36, 3_000_000);
  const id = groupStarted(sim, key(1), "slow.bin", data, receivers);
  assert.ok(sim.run(300_000, () => receivers.every((r) => r.finished.has(id))));
  for (const r of receivers) assert.ok(sameBytes(r.finished.get(id), data), r.name);
  const ratio = uploadedBy(sim, sender.name) / data.length;
  console.log(`sender uploaded ${ratio.toFixed(2)} × the file for 2 receivers at ${sim.now} ms`);
  assert.ok(ratio <= 1.25, `sender uploaded ${ratio} × the file`);
  // Two copies at 250 B/ms in parallel take 12 s; about one copy takes about 6.
  assert.ok(sim.now < 10_000, `done at ${sim.now} ms`);
});

Deno.test("group transfer: a receiver that vanishes mid-transfer; the others get its share from the sender", () => {
  const sim = new FileSim(37, { latency: 10, rate: 2500, queue: 128_000 });
  const receivers = [sim.add(key(2)), sim.add(key(3)), sim.add(key(4))];
  sim.add(key(1));
  const data = fileOf(38, 3_000_000);
  const id = groupStarted(sim, key(1), "gone.bin", data, receivers);
  sim.run(sim.now + 300);
  // The third receiver goes silent both ways (its machine slept): nothing it owns reaches r1 or r2 from it.
  for (const other of [1, 2, 3].map(key)) {
    sim.link(key(4), other).loss = 1;
    sim.link(other, key(4)).loss = 1;
  }
  const gone = sim.now;
  assert.ok(sim.run(300_000, () => receivers.slice(0, 2).every((r) => r.finished.has(id))));
  for (const r of receivers.slice(0, 2)) assert.ok(sameBytes(r.finished.get(id), data), r.name);
  assert.ok(sim.now - gone < 15_000, `done ${sim.now - gone} ms after the third went silent`);
});

Deno.test("group transfer: a receiver whose FILE_SWARM copies were lost gets it again on asking", () => {
  const sim = new FileSim(39, { latency: 10, rate: 2500, queue: 128_000 });
  sim.add(key(1));
  const receivers = [sim.add(key(2)), sim.add(key(3))];
  let lost = 0;
  sim.tamper = (_from, to, f) => {
    // Both copies sent with the offer are lost; the receiver accepts and asks for everything.
    if (f.kind === FileKind.Swarm && to === key(3) && lost < 2) return (lost++, null);
    return f;
  };
  const data = fileOf(40, 12_000_000);
  const id = groupStarted(sim, key(1), "lost.bin", data, receivers);
  assert.ok(sim.run(300_000, () => receivers.every((r) => r.finished.has(id))));
  for (const r of receivers) assert.ok(sameBytes(r.finished.get(id), data), r.name);
  assert.equal(lost, 2);
  // Only the first window's requests (2 MiB) went to the sender in full.
  const ratio = uploadedBy(sim, key(1)) / data.length;
  assert.ok(ratio <= 1.25, `sender uploaded ${ratio} × the file`);
  // The receiver that lacked the swarm passed chunks on too.
  assert.ok(uploadedBy(sim, key(3), key(1)) > data.length / 4);
});

Deno.test("a swarm list from anyone but the sender is ignored; its listed peers' data only", () => {
  const sim = new FileSim(31);
  const a = sim.add("a"), b = sim.add("b");
  const data = fileOf(32, 200_000);
  const id = started(sim, data);
  const idBytes = a.core.outgoing(id)!.offer.id;
  const x = new Uint8Array(8).fill(0x6d), self = new Uint8Array(8).fill(0x62);
  // "m" (6d…) lists itself as a receiver of a's transfer: b takes nothing from it.
  b.core.handleFrame("6d6d6d6d6d6d6d6d", {
    kind: FileKind.Swarm,
    id: idBytes,
    index: 1,
    peers: [x, self],
  }, sim.now);
  b.core.handleFrame("6d6d6d6d6d6d6d6d", {
    kind: FileKind.Data,
    id: idBytes,
    pn: 0,
    chunk: 1,
    offset: 0,
    data: new Uint8Array(FILE_BLOCK),
  }, sim.now);
  assert.equal(b.core.drops.get("data-unaccepted"), 1);
  assert.ok(sim.run(60_000, () => a.events.some((e) => e.state === "done")));
  assert.ok(sameBytes(b.finished.get(id), data));
});

Deno.test("a long-lived peer meets more peers than it keeps links for: idle ones give way", () => {
  const sim = new FileSim(33);
  const b = sim.add("b");
  let offered = 0;
  for (let i = 0; i < 300; i++) {
    const id = new Uint8Array(8);
    new DataView(id.buffer).setUint32(4, i);
    b.core.handleFrame(`peer-${i}`, {
      kind: FileKind.Offer,
      id,
      name: `f${i}`,
      size: 10,
      chunkShift: 16,
      sha256: new Uint8Array(32),
      root: new Uint8Array(32),
    }, i * 1000);
    for (let e = b.core.pollEvent(); e; e = b.core.pollEvent()) {
      if (e.state === "offered") (offered++, b.core.reject(e.id));
    }
    while (b.core.pollFrame(i * 1000)) { /* drain */ }
  }
  assert.equal(offered, 300);
  assert.equal(b.core.drops.get("offer-flood"), undefined);
});

Deno.test("two files at once between the same pair share its bulk stream and both arrive", () => {
  const sim = new FileSim(35, { loss: 0.01, jitter: 3 });
  const a = sim.add("a"), b = sim.add("b");
  const one = fileOf(36, 1_200_000), two = fileOf(37, 900_000);
  const id1 = sim.offer("a", "one.bin", one, ["b"]);
  const id2 = sim.offer("a", "two.bin", two, ["b"]);
  sim.run(2000, () => b.events.filter((e) => e.state === "offered").length === 2);
  assert.ok(b.core.accept(id1, sim.now) && b.core.accept(id2, sim.now));
  sim.pump(b);
  assert.ok(sim.run(120_000, () => b.finished.size === 2));
  assert.ok(sameBytes(b.finished.get(id1), one) && sameBytes(b.finished.get(id2), two));
  // One packet number space for the pair: one bulk sender carried both.
  const s = a.core.senderOf("b")!;
  assert.ok(s.stats.packets >= Math.ceil((one.length + two.length) / FILE_BLOCK));
});
