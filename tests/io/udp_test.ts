/**
 * The UDP driver (`lib/io/udp.ts`) on real loopback sockets: its timer only calls `handleTimeout`
 * when the machine's deadline is due, however the deadline moves (a timer armed early is kept
 * and re-armed when it fires), `close()` waits for every send it started, auxiliary sockets
 * (`via`) send from their own port, deliver replies with their slot and close on `pollRelease`,
 * and the IPv6 main socket carries IPv6 (alone, or dual-stack on the IPv4 socket's port).
 *
 * @module
 */

import assert from "node:assert/strict";
import { monotonicNow, type SansIo, UdpDriver } from "../../lib/io/udp.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MAX_AUX_SOCKETS, type Transmit } from "../../lib/wire/transmit.ts";

class Machine implements SansIo {
  deadline: number | undefined;
  out: Transmit[] = [];
  releases: number[] = [];
  got: { from: Endpoint; via: number | undefined; data: number[] }[] = [];
  timeouts: { now: number; deadline: number | undefined }[] = [];
  handleDatagram(_now: number, from: Endpoint, data: Uint8Array, via?: number): void {
    this.got.push({ from, via, data: [...data] });
  }
  pollRelease(): number | undefined {
    return this.releases.shift();
  }
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

function sink(hostname: string): { conn: Deno.DatagramConn; ep: Endpoint } {
  const conn = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
  return { conn, ep: { hostname, port: (conn.addr as Deno.NetAddr).port } };
}

async function receiveFrom(conn: Deno.DatagramConn): Promise<{ port: number; byte: number }> {
  const [data, addr] = await conn.receive(new Uint8Array(16));
  return { port: (addr as Deno.NetAddr).port, byte: data[0]! };
}

Deno.test("udp driver: an auxiliary socket sends from its own port, gets replies as via=n, closes on release", async () => {
  const far = sink("127.0.0.1");
  const m = new Machine();
  const d = UdpDriver.bind("127.0.0.1", 0, m);
  let taken: Deno.DatagramConn | undefined;
  try {
    d.start();
    d.step(() => m.out.push({ to: far.ep, data: new Uint8Array([1]) }));
    d.step(() => m.out.push({ to: far.ep, data: new Uint8Array([2]), via: 3 }));
    const first = await receiveFrom(far.conn), second = await receiveFrom(far.conn);
    const byByte = new Map([[first.byte, first.port], [second.byte, second.port]]);
    assert.equal(byByte.get(1), d.localAddr.port, "via undefined leaves from the main socket");
    const auxPort = byByte.get(2)!;
    assert.notEqual(auxPort, d.localAddr.port, "via 3 leaves from another port");
    assert.equal(d.auxAddr(3)?.port, auxPort);
    assert.equal(d.auxOpen, 1);

    await far.conn.send(new Uint8Array([7]), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: auxPort,
    });
    await far.conn.send(new Uint8Array([8]), { ...d.localAddr, transport: "udp" });
    await until(() => m.got.length === 2);
    const vias = new Map(m.got.map((g) => [g.data[0], g.via]));
    assert.equal(vias.get(7), 3, "a reply to the auxiliary port arrives with via=3");
    assert.ok(!vias.get(8), "a datagram to the main socket arrives with via 0");
    assert.deepEqual(m.got[0]!.from, far.ep);

    // Released: the port is free again (we can bind it) and what is sent there is not delivered.
    d.step(() => m.releases.push(3, 9));
    assert.equal(d.auxOpen, 0);
    assert.equal(d.auxAddr(3), undefined);
    assert.deepEqual(d.auxStats, { opened: 1, released: 1, bindErrors: 0 });
    // The OS frees the port once the receive pending on it is cancelled, an event-loop turn on.
    await until(() => {
      try {
        taken = Deno.listenDatagram({ hostname: "127.0.0.1", port: auxPort, transport: "udp" });
        return true;
      } catch {
        return false;
      }
    });
    await far.conn.send(new Uint8Array([9]), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: auxPort,
    });
    assert.equal((await taken!.receive(new Uint8Array(4)))[0][0], 9);
    assert.equal(m.got.length, 2, "nothing more reached the machine");

    // A later send via 3 opens a fresh socket.
    d.step(() => m.out.push({ to: far.ep, data: new Uint8Array([4]), via: 3 }));
    const again = await receiveFrom(far.conn);
    assert.equal(again.byte, 4);
    assert.notEqual(again.port, auxPort);
    assert.notEqual(again.port, d.localAddr.port);
    assert.equal(d.auxStats.opened, 2);
  } finally {
    await d.close();
    taken?.close();
    far.conn.close();
  }
  assert.equal(d.auxOpen, 0, "close() closes the auxiliary sockets");
});

Deno.test("udp driver: a via out of range, or through a family with no socket, is a send error", async () => {
  const far = sink("127.0.0.1");
  const m = new Machine();
  const d = UdpDriver.bind("127.0.0.1", 0, m);
  try {
    d.start();
    const v6: Endpoint = { hostname: "::1", port: 9 };
    d.step(() => {
      for (const via of [-1, MAX_AUX_SOCKETS + 1, 1.5, NaN]) {
        m.out.push({ to: far.ep, data: new Uint8Array([0]), via });
      }
      m.out.push({ to: v6, data: new Uint8Array([0]) }); // no IPv6 main socket
      m.out.push({ to: v6, data: new Uint8Array([0]), via: 2 }); // auxiliary sockets are IPv4
      m.out.push({ to: far.ep, data: new Uint8Array([5]), via: MAX_AUX_SOCKETS });
    });
    assert.equal(d.stats.sendErrors, 6);
    assert.equal(d.auxOpen, 1, "only the in-range via opened a socket");
    assert.equal((await receiveFrom(far.conn)).byte, 5);
  } finally {
    await d.close();
    far.conn.close();
  }
  assert.equal(d.stats.sent, 1);
});

/** Whether this host can bind `::1` (some containers have no IPv6 loopback). */
function hasIPv6Loopback(): boolean {
  try {
    Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" }).close();
    return true;
  } catch {
    return false;
  }
}
const noV6 = hasIPv6Loopback() ? "" : " (SKIPPED: this host cannot bind ::1)";

Deno.test({
  name: `udp driver: an IPv6 main socket carries IPv6 next to the IPv4 one${noV6}`,
  ignore: noV6 !== "",
  fn: async () => {
    const far4 = sink("127.0.0.1"), far6 = sink("::1");
    const m = new Machine();
    const d = UdpDriver.bind("127.0.0.1", 0, m, { ipv6: { hostname: "::1", port: 0 } });
    try {
      d.start();
      const local6 = d.localAddr6!;
      assert.equal(local6.hostname, "::1");
      d.step(() => {
        m.out.push({ to: far6.ep, data: new Uint8Array([6]) });
        m.out.push({ to: far4.ep, data: new Uint8Array([4]) });
      });
      assert.deepEqual(await receiveFrom(far6.conn), { port: local6.port, byte: 6 });
      assert.deepEqual(await receiveFrom(far4.conn), { port: d.localAddr.port, byte: 4 });
      await far6.conn.send(new Uint8Array([16]), { transport: "udp", ...local6 });
      await until(() => m.got.length === 1);
      assert.deepEqual(m.got[0], { from: far6.ep, via: 0, data: [16] });
    } finally {
      await d.close();
      far4.conn.close();
      far6.conn.close();
    }
  },
});

Deno.test({
  name: `udp driver: IPv4 and IPv6 on one port (0.0.0.0 and ::), sources as plain addresses${noV6}`,
  ignore: noV6 !== "",
  fn: async () => {
    const probe = Deno.listenDatagram({ hostname: "::", port: 0, transport: "udp" });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const far4 = sink("127.0.0.1"), far6 = sink("::1");
    const m = new Machine();
    const d = UdpDriver.bind("0.0.0.0", port, m, { ipv6: { hostname: "::", port } });
    try {
      d.start();
      assert.deepEqual(d.localAddr, { hostname: "0.0.0.0", port });
      assert.equal(d.localAddr6?.port, port);
      await far4.conn.send(new Uint8Array([4]), { transport: "udp", hostname: "127.0.0.1", port });
      await far6.conn.send(new Uint8Array([6]), { transport: "udp", hostname: "::1", port });
      await until(() => m.got.length === 2);
      const from = new Map(m.got.map((g) => [g.data[0], g.from]));
      assert.deepEqual(from.get(4), far4.ep, "an IPv4 source is reported as IPv4");
      assert.deepEqual(from.get(6), far6.ep);
      d.step(() => {
        m.out.push({ to: far4.ep, data: new Uint8Array([40]) });
        m.out.push({ to: far6.ep, data: new Uint8Array([60]) });
      });
      assert.deepEqual(await receiveFrom(far4.conn), { port, byte: 40 });
      assert.deepEqual(await receiveFrom(far6.conn), { port, byte: 60 });
    } finally {
      await d.close();
      far4.conn.close();
      far6.conn.close();
    }
  },
});
