/**
 * The UDP driver (`lib/udp.ts`) on a real loopback socket: its timer only calls `handleTimeout`
 * when the machine's deadline is due, however the deadline moves (a timer armed early is kept
 * and re-armed when it fires), and `close()` waits for every send it started.
 *
 * @module
 */

import assert from "node:assert/strict";
import { monotonicNow, type SansIo, UdpDriver } from "../lib/udp.ts";
import type { Endpoint, Transmit } from "../lib/wire.ts";

class Machine implements SansIo {
  deadline: number | undefined;
  out: Transmit[] = [];
  timeouts: { now: number; deadline: number | undefined }[] = [];
  handleDatagram(): void {}
  handleTimeout(now: number): void {
    this.timeouts.push({ now, deadline: this.deadline });
    if (this.deadline !== undefined && now >= this.deadline) this.deadline = undefined;
  }
  pollTransmit(): Transmit | undefined {
    return this.out.shift();
  }
  nextTimeout(): number | undefined {
    return this.deadline;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `ok()` holds, for at most 2 s. */
async function until(ok: () => boolean): Promise<void> {
  const end = monotonicNow() + 2_000;
  while (!ok()) {
    if (monotonicNow() > end) throw new Error("timed out");
    await sleep(2);
  }
}

Deno.test("udp driver: handleTimeout runs only when due, as the deadline moves later and earlier", async () => {
  const m = new Machine();
  const d = UdpDriver.bind("127.0.0.1", 0, m);
  try {
    d.start();
    d.step((now) => m.deadline = now + 10);
    // Later, again and again (a relay server moves its expiry deadline with most datagrams):
    // the timer armed for the first deadline fires early and must not call handleTimeout.
    for (let i = 0; i < 5; i++) {
      await sleep(4);
      d.step((now) => m.deadline = now + 30);
    }
    await until(() => m.timeouts.length > 0);
    // Earlier than an armed timer: re-armed for the earlier one.
    d.step((now) => m.deadline = now + 10_000);
    d.step((now) => m.deadline = now + 10);
    await until(() => m.timeouts.length > 1);
    assert.equal(m.timeouts.length, 2);
    for (const t of m.timeouts) assert.ok(t.now >= t.deadline!, "never called before due");
    assert.equal(m.deadline, undefined);
  } finally {
    await d.close();
  }
});

Deno.test("udp driver: close() waits for every send; each is counted", async () => {
  const sink = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const to: Endpoint = { hostname: "127.0.0.1", port: (sink.addr as Deno.NetAddr).port };
  const m = new Machine();
  const d = UdpDriver.bind("127.0.0.1", 0, m);
  d.start();
  d.step(() => {
    for (let i = 0; i < 50; i++) m.out.push({ to, data: new Uint8Array([i]) });
  });
  await d.close();
  assert.equal(d.stats.sent + d.stats.sendErrors, 50);
  assert.equal(d.stats.sent, 50);
  const buf = new Uint8Array(16);
  const got = new Set<number>();
  while (got.size < 50) got.add((await sink.receive(buf))[0][0]!);
  sink.close();
});
