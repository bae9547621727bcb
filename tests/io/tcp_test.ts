/**
 * Datagrams over TCP and TLS on real loopback connections (`lib/io/tcp.ts`): frames both ways,
 * each connection its own endpoint; idle and slowloris connections dropped at their deadline;
 * connections per source and in all bounded; a peer that stops reading dropped with the bytes
 * queued for it bounded; a malformed frame closes its connection; TLS with a private CA, and
 * refused without it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type StreamLimits } from "../../lib/core/stream_policy.ts";
import { StreamDialer, StreamServer } from "../../lib/io/tcp.ts";
import { monotonicNow } from "../../lib/io/udp.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { frame } from "../../lib/wire/stream_frame.ts";
import { makeTestCert } from "../support/tls_cert.ts";
import { toolTest } from "../support/tools.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `ok()` holds, for at most `ms`. */
async function until(ok: () => boolean, ms = 5_000): Promise<void> {
  const end = monotonicNow() + ms;
  while (!ok()) {
    if (monotonicNow() > end) throw new Error("timed out");
    await sleep(5);
  }
}

const LIMITS: StreamLimits = {
  maxConnections: 1_000,
  maxPerSource: 1_000,
  firstFrameWithin: 400,
  idleAfter: 5_000,
  maxQueued: 32 * 1024,
  writeStallAfter: 1_000,
};

interface Got {
  from: Endpoint;
  data: number[];
}

function listen(limits: Partial<StreamLimits> = {}) {
  const got: Got[] = [];
  const server = StreamServer.listen(
    { hostname: "127.0.0.1", port: 0, limits: { ...LIMITS, ...limits } },
    (from, data) => got.push({ from, data: [...data] }),
  );
  return { server, got, port: server.tcpAddr!.port };
}

/** True once the server closed `conn` (a read returns end of stream or fails). */
async function closedByServer(conn: Deno.Conn, ms = 5_000): Promise<boolean> {
  const buf = new Uint8Array(64 * 1024);
  const end = monotonicNow() + ms;
  try {
    while (monotonicNow() < end) {
      const n = await Promise.race([conn.read(buf), sleep(end - monotonicNow()).then(() => 0)]);
      if (n === null) return true;
      if (n === 0) return false;
    }
  } catch {
    return true;
  }
  return false;
}

Deno.test("tcp: datagrams both ways; each connection is an endpoint of its own", async () => {
  const { server, got, port } = listen();
  const back: Got[] = [];
  const serverEp = { hostname: "127.0.0.1", port, stream: 0 };
  const dialers = [0, 1].map(() =>
    new StreamDialer(
      { hostname: "127.0.0.1", port },
      serverEp,
      (from, data) => back.push({ from, data: [...data] }),
    )
  );
  try {
    dialers[0]!.send(new Uint8Array([1, 2, 3]));
    dialers[0]!.send(new Uint8Array(1200).fill(9));
    dialers[1]!.send(new Uint8Array([7]));
    await until(() => got.length === 3);
    const a = got.filter((g) => g.data.length !== 1 || g.data[0] !== 7);
    const b = got.find((g) => g.data[0] === 7)!;
    assert.deepEqual(a.map((g) => g.data.length), [3, 1200]);
    assert.equal(a[0]!.from.stream, a[1]!.from.stream);
    assert.notEqual(b.from.stream, a[0]!.from.stream, "two connections, two endpoints");
    assert.equal(a[0]!.from.hostname, "127.0.0.1");
    server.send({ to: b.from, data: new Uint8Array([4, 5]) });
    server.send({ to: a[0]!.from, data: new Uint8Array([6]) });
    await until(() => back.length === 2);
    assert.deepEqual(back.map((g) => g.data).sort(), [[4, 5], [6]]);
    assert.deepEqual(back[0]!.from, serverEp);
    assert.equal(server.open, 2);
    // A datagram too large to frame, or for a connection that is gone, is counted, not sent.
    server.send({ to: b.from, data: new Uint8Array(1201) });
    server.send({ to: { ...b.from, stream: 999 }, data: new Uint8Array([1]) });
    assert.equal(server.stats.sendErrors, 2);
  } finally {
    await Promise.all(dialers.map((d) => d.close()));
    await server.close();
  }
});

Deno.test("tcp: 300 idle connections and a slowloris are dropped at the first-frame deadline", async () => {
  const { server, port } = listen();
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 300; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    const slow = conns[0]!;
    // A 1,200-byte frame's prefix, then a byte every 50 ms: never a whole frame, so its
    // deadline never moves.
    let trickling = true;
    const trickle = (async () => {
      await slow.write(new Uint8Array([0x04, 0xb0]));
      while (trickling) {
        await sleep(50);
        try {
          await slow.write(new Uint8Array([0x01]));
        } catch {
          return;
        }
      }
    })();
    await until(() => server.stats.accepted === 300);
    const accepted = monotonicNow();
    await until(() => server.open === 0, 3_000);
    const took = monotonicNow() - accepted;
    trickling = false;
    await trickle;
    assert.ok(took < 1_000, `the last dropped ${Math.round(took)} ms after (deadline 400 ms)`);
    assert.equal(server.stats.dropped["no-first-frame"], 300);
    assert.equal(await closedByServer(conns[1]!), true);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    await server.close();
  }
});

Deno.test("tcp: connections per source and in all are bounded; refused ones closed at once", async () => {
  const { server, port } = listen({ maxPerSource: 3, maxConnections: 5 });
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 5; i++) conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await until(() => (server.stats.dropped["source-full"] ?? 0) === 2);
    assert.equal(server.open, 3);
    const closed = await Promise.all(conns.map((c) => closedByServer(c, 300)));
    assert.deepEqual(closed.filter((x) => x).length, 2);
  } finally {
    for (const c of conns) c.close();
    await server.close();
  }
});

Deno.test("tcp: a peer that stops reading is dropped; what waits for it stays bounded", async () => {
  const { server, got, port } = listen();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(frame(new Uint8Array([1]))!);
    await until(() => got.length === 1);
    const to = got[0]!.from;
    let most = 0;
    // 20 MiB offered, 1,200 bytes at a time, while the peer reads nothing.
    for (let i = 0; i < 17_000 && server.open === 1; i++) {
      server.send({ to, data: new Uint8Array(1200) });
      most = Math.max(most, server.queued);
      if (i % 100 === 0) await sleep(0);
    }
    await until(() => server.open === 0, 3_000);
    const why = server.stats.dropped;
    assert.equal((why["queue-full"] ?? 0) + (why["slow-reader"] ?? 0), 1, JSON.stringify(why));
    assert.ok(most <= LIMITS.maxQueued, `at most ${most} bytes queued`);
    assert.equal(server.queued, 0);
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test("tcp: a malformed frame (length 0) closes its connection", async () => {
  const { server, got, port } = listen();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new Uint8Array([0, 1, 42, 0, 0, 9, 9]));
    assert.equal(await closedByServer(conn), true);
    assert.deepEqual(got.map((g) => g.data), [[42]]);
    assert.equal(server.stats.dropped["bad-frame"], 1);
  } finally {
    conn.close();
    await server.close();
  }
});

Deno.test(toolTest(
  "openssl",
  "openssl",
  "tls: datagrams over TLS with a private CA; refused without it",
  async () => {
    const cert = await makeTestCert();
    const got: Got[] = [];
    const server = StreamServer.listen(
      {
        hostname: "127.0.0.1",
        tls: { port: 0, files: { cert: cert.cert, key: cert.key } },
        limits: LIMITS,
      },
      (from, data) => got.push({ from, data: [...data] }),
    );
    const port = server.tlsAddr!.port;
    const back: number[][] = [];
    const errors: string[] = [];
    const ep = { hostname: "127.0.0.1", port, stream: 0 };
    const good = new StreamDialer(
      { hostname: "localhost", port, tls: { caCerts: [cert.ca] } },
      ep,
      (_f, d) => back.push([...d]),
    );
    const untrusting = new StreamDialer(
      { hostname: "localhost", port, tls: { caCerts: [] } },
      ep,
      () => back.push([0]),
      (why) => errors.push(why),
    );
    try {
      good.send(new Uint8Array([1, 2]));
      await until(() => got.length === 1);
      server.send({ to: got[0]!.from, data: new Uint8Array([3]) });
      await until(() => back.length === 1);
      assert.deepEqual(back, [[3]]);
      untrusting.send(new Uint8Array([5]));
      await until(() => errors.length === 1);
      assert.match(errors[0]!, /^TLS to localhost:\d+: /);
      assert.equal(got.length, 1, "nothing arrives from a peer that does not trust the server");
    } finally {
      await good.close();
      await untrusting.close();
      await server.close();
      await Deno.remove(cert.dir, { recursive: true });
    }
  },
));

function canBind6(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}
const v6 = canBind6();

Deno.test({
  name: `tcp: 0.0.0.0 and :: on one port; an IPv4 client is its plain address${
    v6 ? "" : " (SKIPPED: no IPv6 here)"
  }`,
  ignore: !v6,
  async fn() {
    const got: Got[] = [];
    const server = StreamServer.listen(
      { hostname: "0.0.0.0", hostname6: "::", port: 0, limits: LIMITS },
      (from, data) => got.push({ from, data: [...data] }),
    );
    const port = server.tcpAddr!.port;
    assert.equal(server.tcpAddr!.hostname, "0.0.0.0");
    const a = await Deno.connect({ hostname: "127.0.0.1", port });
    const b = await Deno.connect({ hostname: "::1", port });
    try {
      await a.write(frame(new Uint8Array([4]))!);
      await b.write(frame(new Uint8Array([6]))!);
      await until(() => got.length === 2);
      const byData = Object.fromEntries(got.map((g) => [g.data[0], g.from.hostname]));
      assert.deepEqual(byData, { 4: "127.0.0.1", 6: "::1" });
    } finally {
      a.close();
      b.close();
      await server.close();
    }
  },
});

Deno.test("tcp: a dialer hears when the server ends its stream, not when it closes it itself", async () => {
  const { server, got, port } = listen();
  const closes: string[] = [];
  const ep = { hostname: "127.0.0.1", port, stream: 0 };
  const a = new StreamDialer({ hostname: "127.0.0.1", port }, ep, () => {}, () => {}, () => {
    closes.push("a");
  });
  const b = new StreamDialer({ hostname: "127.0.0.1", port }, ep, () => {}, () => {}, () => {
    closes.push("b");
  });
  try {
    a.send(new Uint8Array([1]));
    b.send(new Uint8Array([2]));
    await until(() => got.length === 2);
    await b.close();
    await server.close();
    // b closed first: had it been reported, it would come before a.
    await until(() => closes.length > 0);
    assert.deepEqual(closes, ["a"]);
    assert.equal(a.connected, false);
  } finally {
    await a.close();
    await server.close();
  }
});
