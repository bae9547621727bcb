/**
 * The NATS client's socket (`lib/io/nats_transport.ts`) against what an engine can do wrong: a
 * port that accepts and never speaks, a port nobody listens on, and a real `nats-server` that is
 * stopped for a while (skipped with the reason where `nats-server` is missing, failing under
 * `CI=true`).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ConnectionOptions, Server } from "@nats-io/nats-core";
import { DenoNatsTransport } from "../../lib/io/nats_transport.ts";
import { connectEngine, parseEngineUrl } from "../../lib/io/cluster_engine.ts";
import { freeTcpPort, NatsServer } from "../support/nats.ts";
import { toolTest } from "../support/tools.ts";

const at = (port: number) => ({ hostname: "127.0.0.1", port, tlsName: "" }) as Server;
const OPTS = {} as ConnectionOptions;

Deno.test("nats transport: a dial abandoned while the engine says nothing closes its socket", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const t = new DenoNatsTransport();
    const dialing = t.connect(at(port), OPTS);
    const conn = await listener.accept();
    // The client gives up on the dial (its timeout): the socket must go with it.
    t.discard();
    await assert.rejects(dialing);
    const eof = await conn.read(new Uint8Array(16)).catch(() => null);
    assert.equal(eof, null, "the server side sees the connection closed");
    conn.close();
  } finally {
    listener.close();
  }
});

Deno.test("nats transport: a failed dial is no disconnection (closed() stays pending)", async () => {
  const t = new DenoNatsTransport();
  await assert.rejects(t.connect(at(freeTcpPort()), OPTS));
  await t.close(new Error("the client closes after a failed dial"));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    t.closed().then(() => "resolved"),
    new Promise<string>((r) => timer = setTimeout(() => r("pending"), 100)),
  ]);
  clearTimeout(timer);
  assert.equal(settled, "pending");
});

Deno.test({
  ...toolTest(
    "nats-server",
    "nats-server",
    "nats transport: an engine stopped for 3 s is one disconnection and one reconnection",
    async () => {
      const nats = await new NatsServer().start();
      const seen: boolean[] = [];
      const changed = () => new Promise<void>((resolve) => wake = resolve);
      let wake = () => {};
      const link = connectEngine(
        parseEngineUrl(`nats://127.0.0.1:${nats.port}`),
        "0011223344556677",
        {
          message: () => {},
          status: (up) => (seen.push(up), wake()),
        },
      );
      try {
        while (!seen.includes(true)) await changed();
        await nats.stop();
        while (seen.length < 2) await changed();
        // Down for 3 s: about six failed dials at the client's half-second retries.
        await new Promise((r) => setTimeout(r, 3_000));
        await nats.start();
        while (seen.at(-1) !== true) await changed();
        // Anything more would have come with the reconnection.
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(seen, [true, false, true]);
      } finally {
        await link.close();
        await nats.stop();
      }
    },
  ),
  sanitizeOps: false,
  sanitizeResources: false,
});
