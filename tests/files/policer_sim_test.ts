/**
 * The bulk stream's congestion control on the paths of issue 19's lab measurements, in the file
 * simulator: a link policed to 20 Mbit/s (a token bucket without a queue, as nftables' `limit
 * rate … drop` or an ISP's policer) and a link with 2 % random loss. Loss-based CUBIC alone lost
 * 10 % of its packets to the policer (it keeps probing into the policer's rate) and ran the lossy
 * link at 8 % of its rate (every random loss halved it).
 */
import assert from "node:assert/strict";
import { FileSim } from "../support/file_sim.ts";
import { fileBytes } from "../support/bytes.ts";

/** 20 Mbit/s in bytes per ms. */
const RATE = 2500;

/** Moves 10 MB from a to b; returns goodput (of the link's rate) and the sender's counters. */
function transfer(sim: FileSim) {
  const a = sim.add("a"), b = sim.add("b");
  const data = fileBytes(10_000_000, 3);
  const id = sim.offer("a", "f.bin", data, ["b"]);
  sim.run(1000, () => b.events.some((e) => e.state === "offered"));
  assert.ok(b.core.accept(id, sim.now));
  sim.pump(b);
  const start = sim.now;
  assert.ok(sim.run(120_000, () => b.finished.has(id)));
  const s = a.core.senderOf("b")!;
  const share = data.length / (sim.now - start) / RATE;
  return { share, s, policed: (sim.policed.get("a>b") ?? 0) / s.stats.packets };
}

for (const latency of [0.5, 5]) {
  Deno.test(`a link policed to 20 Mbit/s, ${2 * latency} ms RTT: ≥ 85 % of it, < 5 % dropped`, () => {
    const sim = new FileSim(7, { latency, rate: RATE, queue: 32 * 1024, police: true });
    const { share, s, policed } = transfer(sim);
    console.log(
      `goodput ${(100 * share).toFixed(1)} % of the link, ${(100 * policed).toFixed(1)} % ` +
        `of the packets policed, pacing cap ${(s.cc.paceCap / RATE * 100).toFixed(0)} % of it`,
    );
    assert.ok(s.cc.policed >= 1, "the policer was found");
    assert.ok(share >= 0.85, `goodput ${share}`);
    assert.ok(policed < 0.05, `policed ${policed}`);
  });
}

for (const latency of [0.5, 20]) {
  Deno.test(`a 20 Mbit/s link with 2 % random loss, ${2 * latency} ms RTT: ≥ 70 % of it`, () => {
    const sim = new FileSim(8, { latency, rate: RATE, queue: 256 * 1024, loss: 0.02 });
    const { share, s } = transfer(sim);
    console.log(`goodput ${(100 * share).toFixed(1)} % of the link, ${s.stats.lost} lost`);
    assert.ok(share >= 0.7, `goodput ${share}`);
  });
}

Deno.test("a relay's pair rate (128 KiB/s behind a 1 MiB burst, 87 % dropped at first) keeps going", () => {
  const rate = 128 * 1024 / 1000;
  const sim = new FileSim(9, { latency: 5, rate, queue: 1024 * 1024, police: true });
  const a = sim.add("a"), b = sim.add("b");
  const data = fileBytes(2_000_000, 5);
  const id = sim.offer("a", "f.bin", data, ["b"]);
  sim.run(1000, () => b.events.some((e) => e.state === "offered"));
  assert.ok(b.core.accept(id, sim.now));
  sim.pump(b);
  const start = sim.now;
  assert.ok(sim.run(60_000, () => b.finished.has(id)), "the file arrives");
  const s = a.core.senderOf("b")!;
  const secs = (sim.now - start) / 1000, least = (data.length - 1024 * 1024) / (rate * 1000);
  console.log(`${secs.toFixed(1)} s (the rate allows ${least.toFixed(1)}), cap ${s.cc.paceCap}`);
  assert.ok(secs < 1.5 * least, `${secs} s`);
});

Deno.test("a policed link with stalls (a busy machine: 150 ms with nothing through, every 1.5 s) stays above 70 %", () => {
  const sim = new FileSim(11, { latency: 0.5, rate: RATE, queue: 32 * 1024, police: true });
  sim.add("a");
  const b = sim.add("b");
  const data = fileBytes(20_000_000, 6);
  const id = sim.offer("a", "f.bin", data, ["b"]);
  sim.run(1000, () => b.events.some((e) => e.state === "offered"));
  assert.ok(b.core.accept(id, sim.now));
  sim.pump(b);
  const start = sim.now;
  let stalled = 0;
  while (!b.finished.has(id) && sim.now - start < 120_000) {
    sim.run(sim.now + 1350, () => b.finished.has(id));
    // Neither direction moves for 150 ms: what a descheduled sender or receiver sees.
    for (const [x, y] of [["a", "b"], ["b", "a"]]) sim.link(x!, y!).loss = 1;
    sim.run(sim.now + 150);
    stalled += 150;
    for (const [x, y] of [["a", "b"], ["b", "a"]]) sim.link(x!, y!).loss = 0;
  }
  assert.ok(b.finished.has(id), "the file arrives");
  const share = data.length / (sim.now - start - stalled) / RATE;
  console.log(`goodput ${(100 * share).toFixed(1)} % of the link's time when it was not stalled`);
  assert.ok(share >= 0.7, `goodput ${share}`);
});
