/**
 * `p2p serve --cluster` end to end on loopback, with a real `nats-server` started by the test
 * on a free port (and stopped by its PID): peers registered at different servers chat; killing
 * one server moves its peers to another within 10 s and loses or duplicates nothing, with no
 * COOKIE round trip (the servers share cookies through their secret); stopping
 * the engine leaves each server serving its own rooms, and restarting it makes the rosters
 * converge. Skipped with the reason where `nats-server` is missing, but fails under `CI=true`
 * (`.ci/run` installs it).
 *
 * @module
 */
import assert from "node:assert/strict";
import { NatsServer } from "../support/nats.ts";
import {
  type P2pEvent,
  P2pProcess,
  prepareProduct,
  type RunningServer,
  startPeer,
  startServer,
} from "../support/proc.ts";
import { toolTest } from "../support/tools.ts";
import { BLOCKING_JOIN_URL } from "../support/room.ts";

const WAIT = 15_000;
const LO = "127.0.0.1";

function isPeer(name: string) {
  return (e: P2pEvent) => e.event === "peer" && e.name === name;
}

function messagesFrom(p: P2pProcess, from: string): string[] {
  return p.eventsOf("message").filter((e) => e.from === from).map((e) => String(e.text));
}

async function waitMessages(p: P2pProcess, from: string, expected: string[]): Promise<void> {
  const last = expected.at(-1)!;
  await p.waitFor((e) => e.event === "message" && e.from === from && e.text === last, WAIT);
  assert.deepEqual(messagesFrom(p, from), expected, p.describe());
}

/** Starts `n` servers in one cluster on `nats`. */
async function cluster(
  nats: NatsServer,
  n: number,
  extra: string[] = [],
): Promise<RunningServer[]> {
  const out: RunningServer[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await startServer({
        host: LO,
        port: 0,
        label: `server${i}`,
        extraArgs: ["--cluster", nats.url, "--summary", "0", "--metrics", `${LO}:0`, ...extra],
        env: { P2P_CLUSTER_SECRET: "a cluster secret for the tests" },
      }),
    );
  }
  // Each server has heard the others (a HEARTBEAT a second): peers then learn of them.
  for (const s of out) await waitServers(s, n - 1);
  return out;
}

/** Waits until `s` reports `count` other servers on its metrics page. */
async function waitServers(s: RunningServer, count: number): Promise<void> {
  await s.proc.waitFor((e) => e.event === "metrics", WAIT);
  await waitMetric(s, "p2p_cluster_servers", (v) => v === count);
}

/** Polls `s`'s metrics (every 100 ms, at most WAIT) until `metric` satisfies `ok`. */
async function waitMetric(
  s: RunningServer,
  metric: string,
  ok: (v: number) => boolean,
): Promise<number> {
  const url = String(s.proc.eventsOf("metrics")[0]!.url);
  const until = Date.now() + WAIT;
  for (;;) {
    const text = await (await fetch(url)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${metric} `));
    const v = line ? Number(line.split(" ")[1]) : NaN;
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`${metric} is ${v}:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One sample of `s`'s metrics page (`name` with its labels, as the page writes it). */
async function metric(s: RunningServer, name: string): Promise<number> {
  const url = String(s.proc.eventsOf("metrics")[0]!.url);
  const text = await (await fetch(url)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

async function closeAll(procs: (P2pProcess | RunningServer)[]): Promise<void> {
  await Promise.all(procs.map((p) => ("proc" in p ? p.proc : p).close()));
}

Deno.test({
  ...toolTest(
    "nats-server",
    "nats-server",
    "cluster: three servers on one engine; peers at each chat, every line once and in order",
    async () => {
      await prepareProduct();
      await using nats = await new NatsServer().start();
      const servers = await cluster(nats, 3);
      const names = ["ann", "ben", "cat"];
      const peers = names.map((name, i) =>
        startPeer({ server: servers[i]!.addr, room: "c3", name })
      );
      try {
        for (const [i, p] of peers.entries()) {
          for (const other of names.filter((n) => n !== names[i])) {
            await p.waitFor(isPeer(other), WAIT);
          }
        }
        const lines = names.map((n) => Array.from({ length: 10 }, (_, i) => `${n} ${i + 1}`));
        for (const [i, p] of peers.entries()) for (const l of lines[i]!) await p.send(l);
        for (const [i, p] of peers.entries()) {
          for (const [j, from] of names.entries()) {
            if (i !== j) await waitMessages(p, from, lines[j]!);
          }
        }
        const remote = await waitMetric(servers[0]!, "p2p_cluster_remote_peers", (v) => v === 2);
        assert.equal(remote, 2);
        // Each of the three pairs: the side that registered first heard of the other through
        // its own server, from the other's record (a remote introduction).
        let remoteIntros = 0;
        for (const s of servers) {
          remoteIntros += await metric(s, "p2p_cluster_remote_introductions_total");
        }
        assert.ok(remoteIntros >= 3, `remote introductions: ${remoteIntros}`);
      } finally {
        await closeAll([...peers, ...servers]);
      }
    },
  ),
  sanitizeResources: false,
});

Deno.test({
  ...toolTest(
    "nats-server",
    "nats-server",
    "cluster: a pair that cannot go direct relays through both servers, one hop between them",
    async () => {
      await prepareProduct();
      await using nats = await new NatsServer().start();
      const [a, b] = await cluster(nats, 2);
      const alice = startPeer({
        server: a!.addr,
        room: "rl",
        name: "alice",
        main: BLOCKING_JOIN_URL,
        cwd: new URL("../../", import.meta.url),
      });
      const bob = startPeer({ server: b!.addr, room: "rl", name: "bob" });
      try {
        assert.equal((await alice.waitFor(isPeer("bob"), WAIT)).path, "relay");
        assert.equal((await bob.waitFor(isPeer("alice"), WAIT)).path, "relay");
        const lines = Array.from({ length: 20 }, (_, i) => `relayed ${i + 1}`);
        for (const l of lines) await alice.send(l);
        await waitMessages(bob, "alice", lines);
        await bob.send("back");
        await waitMessages(alice, "bob", ["back"]);
        const out = await metric(a!, 'p2p_cluster_relay_bytes_total{direction="out"}');
        const inB = await metric(b!, 'p2p_cluster_relay_bytes_total{direction="in"}');
        assert.ok(out > 0 && inB > 0, `relayed across: out ${out}, in ${inB}`);
      } finally {
        await closeAll([alice, bob, a!, b!]);
      }
    },
  ),
  sanitizeResources: false,
});

Deno.test({
  ...toolTest(
    "nats-server",
    "nats-server",
    "cluster: a killed server's peers move to another within 10 s; nothing lost or duplicated",
    async () => {
      await prepareProduct();
      await using nats = await new NatsServer().start();
      const [a, b] = await cluster(nats, 2);
      const alice = startPeer({ server: a!.addr, room: "fo", name: "alice" });
      const bob = startPeer({ server: b!.addr, room: "fo", name: "bob" });
      try {
        await alice.waitFor(isPeer("bob"), WAIT);
        await bob.waitFor(isPeer("alice"), WAIT);
        const before = ["a 1", "a 2", "a 3"];
        for (const l of before) await alice.send(l);
        await waitMessages(bob, "alice", before);
        // The servers share cookies (one secret): alice's HELLO at b needs no COOKIE first.
        const cookies = await metric(b!, "p2p_cookies_total");
        a!.proc.kill("SIGKILL");
        const killed = Date.now();
        // alice goes on typing while her server is gone.
        const during = ["a 4", "a 5"];
        for (const l of during) await alice.send(l);
        await alice.waitFor((e) => e.event === "server" && e.state === "back", WAIT);
        const moved = Date.now() - killed;
        console.log(`failover: alice registered again ${moved} ms after her server died`);
        assert.ok(moved < 10_000, `moved after ${moved} ms`);
        const after = ["a 6", "a 7"];
        for (const l of after) await alice.send(l);
        await bob.send("b 1");
        await waitMessages(bob, "alice", [...before, ...during, ...after]);
        await waitMessages(alice, "bob", ["b 1"]);
        assert.equal(bob.eventsOf("left").length, 0, bob.describe());
        assert.equal(alice.eventsOf("left").length, 0, alice.describe());
        await waitMetric(b!, "p2p_cluster_takeovers_total", (v) => v === 1);
        const round = await metric(b!, "p2p_cookies_total") - cookies;
        console.log(`failover: ${round} COOKIE round trips at the new server`);
        assert.equal(round, 0, "alice kept the cookie her first server gave her");
      } finally {
        await closeAll([alice, bob, a!, b!]);
      }
    },
  ),
  sanitizeResources: false,
});

Deno.test({
  ...toolTest(
    "nats-server",
    "nats-server",
    "cluster: without the engine each server keeps its rooms; with it back, rosters converge",
    async () => {
      await prepareProduct();
      const nats = await new NatsServer().start();
      const [a, b] = await cluster(nats, 2, ["--cluster-lease", "3"]);
      const peers: P2pProcess[] = [];
      try {
        const alice = startPeer({ server: a!.addr, room: "eo", name: "alice" });
        const bob = startPeer({ server: b!.addr, room: "eo", name: "bob" });
        peers.push(alice, bob);
        await alice.waitFor(isPeer("bob"), WAIT);
        await nats.stop();
        await waitMetric(a!, "p2p_cluster_engine_up", (v) => v === 0);
        // A room held by one server works alone.
        const carol = startPeer({ server: a!.addr, room: "eo", name: "carol" });
        const dave = startPeer({ server: b!.addr, room: "eo", name: "dave" });
        peers.push(carol, dave);
        await carol.waitFor(isPeer("alice"), WAIT);
        await carol.send("c 1");
        await waitMessages(alice, "carol", ["c 1"]);
        await dave.waitFor(isPeer("bob"), WAIT);
        // The engine returns: carol and dave (who registered while it was gone) meet.
        await nats.start();
        await waitMetric(a!, "p2p_cluster_engine_up", (v) => v === 1);
        await carol.waitFor(isPeer("dave"), WAIT);
        await dave.waitFor(isPeer("carol"), WAIT);
        await dave.send("d 1");
        await waitMessages(carol, "dave", ["d 1"]);
        await waitMetric(a!, "p2p_cluster_remote_peers", (v) => v === 2);
        await waitMetric(b!, "p2p_cluster_remote_peers", (v) => v === 2);
      } finally {
        await closeAll([...peers, a!, b!]);
        await nats.stop();
      }
    },
  ),
  sanitizeResources: false,
});

Deno.test({
  name: "cluster: a server whose engine never answers serves alone, says so, and stops on SIGTERM",
  sanitizeResources: false,
  async fn() {
    await prepareProduct();
    const server = await startServer({
      host: LO,
      port: 0,
      extraArgs: ["--cluster", `nats://127.0.0.1:${new NatsServer().port}`, "--summary", "0"],
    });
    const alice = startPeer({ server: server.addr, room: "alone", name: "alice" });
    const bob = startPeer({ server: server.addr, room: "alone", name: "bob" });
    try {
      await alice.waitFor(isPeer("bob"), WAIT);
      await bob.send("hi");
      await waitMessages(alice, "bob", ["hi"]);
      // The warning comes 5 s after the start.
      const warned = /no engine at nats:\/\/127\.0\.0\.1:\d+ yet; serving alone/;
      await server.proc.waitForStderr(warned, 10_000);
      server.proc.kill("SIGTERM");
      assert.equal(await server.proc.wait(5_000), 0, server.proc.describe());
    } finally {
      await closeAll([alice, bob, server]);
    }
  },
});
