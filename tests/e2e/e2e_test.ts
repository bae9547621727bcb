/**
 * End-to-end on 127.0.0.1: a real `p2p serve` and real `p2p join` processes (`--json` unless a
 * test checks human mode). {@link withRoom} starts them and always cleans them up; each peer
 * has its own temporary configuration directory and the room's passphrase.
 */
import assert from "node:assert/strict";
import type { P2pEvent, P2pProcess } from "../support/proc.ts";
import { LO, withRoom } from "../support/room.ts";

const FINGERPRINT = /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/;

const WAIT = 15_000;

function isPeer(name: string, path?: string) {
  return (e: P2pEvent) => e.event === "peer" && e.name === name && (!path || e.path === path);
}

function messagesFrom(p: P2pProcess, from: string): string[] {
  return p.eventsOf("message").filter((e) => e.from === from).map((e) => String(e.text));
}

async function waitMessages(p: P2pProcess, from: string, expected: string[]): Promise<void> {
  const last = expected.at(-1)!;
  await p.waitFor((e) => e.event === "message" && e.from === from && e.text === last, WAIT);
  assert.deepEqual(messagesFrom(p, from), expected, p.describe());
}

async function sendAll(p: P2pProcess, lines: string[]): Promise<void> {
  for (const l of lines) await p.send(l);
}

const numbered = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag} ${i + 1}`);

Deno.test({
  name: "three peers on loopback go direct and deliver every message once, in order",
  sanitizeResources: false,
  async fn() {
    const names = ["ann", "ben", "cat"] as const;
    await withRoom({ room: "e2e", peers: names }, async ({ peers }) => {
      for (const [i, p] of peers.entries()) {
        const ready = await p.waitFor((e) => e.event === "ready", WAIT);
        assert.equal(ready.name, names[i]);
        assert.match(String(ready.public), /^127\.0\.0\.1:\d+$/);
      }
      for (const [i, p] of peers.entries()) {
        for (const other of names.filter((n) => n !== names[i])) {
          const ev = await p.waitFor(isPeer(other), WAIT);
          assert.equal(ev.path, "direct", p.describe());
          assert.match(String(ev.addr), /^127\.0\.0\.1:\d+$/);
          assert.equal(typeof ev.rtt_ms, "number");
        }
      }
      const lines = names.map((n) => numbered(`${n} says`, 20));
      await Promise.all(peers.map((p, i) => sendAll(p, lines[i]!)));
      for (const [i, p] of peers.entries()) {
        for (const [j, from] of names.entries()) {
          if (i !== j) await waitMessages(p, from, lines[j]!);
        }
      }
      // End of input: each delivers what is queued, leaves and exits 0.
      await peers[0].closeStdin();
      assert.equal(await peers[0].wait(WAIT), 0);
      await peers[1].waitFor((e) => e.event === "left" && e.name === "ann", WAIT);
    });
  },
});

Deno.test({
  name: "relay-only peers talk through the server and never learn or reveal addresses",
  sanitizeResources: false,
  async fn() {
    await withRoom(
      { room: "ro", peers: ["open", { name: "hidden", relayOnly: true }, "third"] },
      async ({ peers: [open, hidden, third] }) => {
        const h = await open.waitFor(isPeer("hidden"), WAIT);
        assert.equal(h.path, "relay");
        assert.equal(h.addr, null);
        assert.equal(h.rtt_ms, null);
        assert.equal((await hidden.waitFor(isPeer("open"), WAIT)).path, "relay");
        assert.equal((await hidden.waitFor(isPeer("third"), WAIT)).path, "relay");
        assert.equal((await open.waitFor(isPeer("third"), WAIT)).path, "direct");
        const fromHidden = numbered("psst", 10), fromOpen = numbered("hello", 10);
        await sendAll(hidden, fromHidden);
        await sendAll(open, fromOpen);
        await waitMessages(open, "hidden", fromHidden);
        await waitMessages(third, "hidden", fromHidden);
        await waitMessages(hidden, "open", fromOpen);
        await waitMessages(third, "open", fromOpen);
      },
    );
  },
});

Deno.test({
  name: "a blocked direct path relays first, then upgrades to direct losing no message",
  sanitizeResources: false,
  async fn() {
    // tests/support/blocking_join.ts drops direct traffic until SIGUSR1.
    await withRoom({
      room: "up",
      peers: [{ name: "a", blockDirect: true }, { name: "b", blockDirect: true }],
    }, async ({ peers: [a, b] }) => {
      assert.equal((await a.waitFor(isPeer("b"), WAIT)).path, "relay");
      assert.equal((await b.waitFor(isPeer("a"), WAIT)).path, "relay");
      const before = numbered("before", 10);
      await sendAll(a, before);
      await waitMessages(b, "a", before);
      const during = numbered("during", 10);
      await sendAll(a, during.slice(0, 5));
      a.kill("SIGUSR1");
      b.kill("SIGUSR1");
      await sendAll(a, during.slice(5));
      const up = await a.waitFor(isPeer("b", "direct"), 40_000);
      assert.match(String(up.addr), /^127\.0\.0\.1:\d+$/);
      await b.waitFor(isPeer("a", "direct"), 40_000);
      const after = numbered("after", 10);
      await sendAll(a, after);
      await waitMessages(b, "a", [...before, ...during, ...after]);
    });
  },
});

Deno.test({
  name: "end of input delivers queued messages before the peer exits 0",
  sanitizeResources: false,
  async fn() {
    await withRoom({ room: "eof", peers: ["a", "b"] }, async ({ peers: [a, b] }) => {
      await a.waitFor(isPeer("b"), WAIT);
      await b.waitFor(isPeer("a"), WAIT);
      const lines = numbered("burst", 200);
      await sendAll(a, lines);
      await a.closeStdin();
      assert.equal(await a.wait(WAIT), 0, a.describe());
      await waitMessages(b, "a", lines);
      await b.waitFor((e) => e.event === "left" && e.name === "a", WAIT);
    });
  },
});

Deno.test({
  name: "exit codes follow what happened: a refused 70 KB line exits 1, so does a line nobody got",
  sanitizeResources: false,
  async fn() {
    await withRoom({ room: "codes", peers: ["a", "b"] }, async ({ peers: [a, b] }) => {
      await a.waitFor(isPeer("b"), WAIT);
      await b.waitFor(isPeer("a"), WAIT);
      await a.send("y".repeat(70_000));
      await a.send("short");
      await a.waitFor((e) => e.event === "notice" && e.kind === "too-long", WAIT);
      await a.closeStdin();
      assert.equal(await a.wait(WAIT), 1, a.describe());
      assert.match(a.stderr, /1 line typed reached nobody/);
      await waitMessages(b, "a", ["short"]);
      // Alone now: a line nobody receives.
      await b.waitFor((e) => e.event === "left" && e.name === "a", WAIT);
      await b.send("anyone?");
      await b.waitFor((e) => e.event === "notice" && /not sent/.test(String(e.message)), WAIT);
      await b.closeStdin();
      assert.equal(await b.wait(WAIT), 1, b.describe());
    });
  },
});

Deno.test({
  name: "human mode prints status lines and [name] text",
  sanitizeResources: false,
  async fn() {
    await withRoom(
      { room: "hm", peers: [{ name: "hum", human: true }, "a"] },
      async ({ peers: [human, a] }) => {
        await a.waitFor(isPeer("hum"), WAIT);
        await a.send("hello human");
        await a.closeStdin();
        // a exits 0 only after hum acknowledged the message.
        assert.equal(await a.wait(WAIT), 0, a.describe());
        await human.closeStdin();
        assert.equal(await human.wait(WAIT), 0, human.describe());
        const lines = human.nonJsonLines;
        assert.match(
          lines[0] ?? "",
          /^\* Joined as "hum" \(fingerprint [a-z2-7]{4}(-[a-z2-7]{4}){3}\); the server sees us at 127\.0\.0\.1:\d+$/,
          lines.join("\n"),
        );
        assert.ok(
          lines.some((l) =>
            /^\* a is here \(fingerprint [a-z2-7-]+\): (direct 127\.0\.0\.1:\d+(, [\d.]+ ms)?|relayed via server)$/
              .test(l)
          ),
          lines.join("\n"),
        );
        assert.ok(lines.includes("[a] hello human"), lines.join("\n"));
        // Shown once: peer facts are on stdout; the log has them only with -v.
        assert.doesNotMatch(human.stderr, /\bPeer\b/, human.describe());
      },
    );
  },
});

Deno.test({
  name: "lines piped in before registration reach the peers already in the room",
  sanitizeResources: false,
  async fn() {
    await withRoom({ room: "pipe", peers: ["bob"] }, async ({ peers: [bob], join }) => {
      await bob.waitFor((e) => e.event === "ready", WAIT);
      const alice = join("alice");
      const lines = numbered("piped", 3);
      await sendAll(alice, lines); // Before alice has even registered.
      await alice.closeStdin();
      assert.equal(await alice.wait(WAIT), 0, alice.describe());
      await waitMessages(bob, "alice", lines);
    });
  },
});

Deno.test({
  name: "Ctrl-C while the server does not answer ends the peer at once with code 130",
  sanitizeResources: false,
  async fn() {
    const sock = Deno.listenDatagram({ hostname: LO, port: 0, transport: "udp" });
    const deadPort = (sock.addr as Deno.NetAddr).port;
    sock.close();
    await withRoom({
      room: "x",
      server: `${LO}:${deadPort}`,
      peers: [{ name: "a", extraArgs: ["--timeout", "60"] }],
    }, async ({ peers: [p] }) => {
      await p.waitFor((e) => e.event === "registering", WAIT);
      const t0 = performance.now();
      p.kill("SIGINT");
      assert.equal(await p.wait(5_000), 130, p.describe());
      assert.ok(performance.now() - t0 < 3_000);
    });
  },
});

Deno.test({
  name: "human mode shows control characters in received text as escapes",
  sanitizeResources: false,
  async fn() {
    await withRoom(
      { room: "esc", peers: [{ name: "hum", human: true }, "a"] },
      async ({ peers: [human, a] }) => {
        await a.waitFor(isPeer("hum"), WAIT);
        await a.send("\x1b[2Jgotcha\rfake");
        await a.closeStdin();
        assert.equal(await a.wait(WAIT), 0, a.describe());
        await human.closeStdin();
        assert.equal(await human.wait(WAIT), 0, human.describe());
        const line = human.nonJsonLines.find((l) => l.startsWith("[a] "));
        assert.equal(line, "[a] \\x1b[2Jgotcha\\x0dfake");
      },
    );
  },
});

/** Reads `path` as JSON once `ok` holds for it (the peer writes it in the background). */
async function waitForJson(
  path: string,
  ok: (doc: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const end = performance.now() + WAIT;
  let last: unknown;
  for (;;) {
    try {
      const doc = JSON.parse(await Deno.readTextFile(path));
      if (ok(doc)) return doc;
      last = doc;
    } catch (e) {
      last = e;
    }
    if (performance.now() > end) {
      throw new Error(`${path} never became as expected; last: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name: "a peer with another passphrase for the same room name is in another room",
  sanitizeResources: false,
  async fn() {
    await withRoom({
      room: "secret",
      peers: ["ann", { name: "ann", passphrase: "a wrong guess" }, "cat"],
    }, async ({ peers: [ann, stranger, cat] }) => {
      await ann.waitFor(isPeer("cat"), WAIT);
      await cat.waitFor(isPeer("ann"), WAIT);
      // Another room id entirely: the name is free there, and nobody is in it.
      const ready = await stranger.waitFor((e) => e.event === "ready", WAIT);
      assert.equal(ready.name, "ann", stranger.describe());
      await cat.send("members only");
      await ann.waitFor((e) => e.event === "message" && e.text === "members only", WAIT);
      await stranger.send("/peers");
      const listing = await stranger.waitFor((e) => e.event === "peers", WAIT);
      assert.deepEqual(listing.peers, [], stranger.describe());
      // Path changes may repeat a peer event, but only for the one member each has met.
      assert.ok(ann.eventsOf("peer").every((e) => e.name === "cat"), ann.describe());
      assert.ok(cat.eventsOf("peer").every((e) => e.name === "ann"), cat.describe());
      assert.deepEqual(stranger.eventsOf("peer"), []);
      assert.deepEqual(stranger.eventsOf("message"), []);
    });
  },
});

Deno.test({
  name: "identities persist in the configuration directory; peers met are remembered",
  sanitizeResources: false,
  async fn() {
    const home = await Deno.makeTempDir({ prefix: "p2p-e2e-home-" });
    const env = { XDG_CONFIG_HOME: home };
    try {
      await withRoom({ room: "tofu", peers: [{ name: "ann", env }, "ben"] }, async (room) => {
        const [ann, ben] = room.peers;
        const annReady = await ann.waitFor((e) => e.event === "ready", WAIT);
        const benReady = await ben.waitFor((e) => e.event === "ready", WAIT);
        assert.match(String(annReady.fingerprint), FINGERPRINT, ann.describe());
        // Each side sees the other's fingerprint, as the other announced it.
        const annSeen = await ben.waitFor(isPeer("ann"), WAIT);
        const benSeen = await ann.waitFor(isPeer("ben"), WAIT);
        assert.equal(annSeen.fingerprint, annReady.fingerprint, ben.describe());
        assert.equal(benSeen.fingerprint, benReady.fingerprint, ann.describe());
        if (Deno.build.os !== "windows") {
          assert.equal((await Deno.stat(`${home}/p2p/identity`)).mode! & 0o777, 0o600);
          assert.equal((await Deno.stat(`${home}/p2p`)).mode! & 0o777, 0o700);
        }
        const known = await waitForJson(
          `${home}/p2p/known_peers.json`,
          (d) => JSON.stringify(d).includes(String(benReady.fingerprint)),
        );
        const rooms = Object.values(known.rooms as Record<string, Record<string, string>>);
        assert.deepEqual(rooms, [{ ben: benReady.fingerprint }]);
        await ann.closeStdin();
        assert.equal(await ann.wait(WAIT), 0, ann.describe());

        // The same configuration directory: the same identity, and ben is still known.
        const again = room.join({ name: "ann", env });
        const readyAgain = await again.waitFor((e) => e.event === "ready", WAIT);
        assert.equal(readyAgain.fingerprint, annReady.fingerprint);
        assert.equal((await again.waitFor(isPeer("ben"), WAIT)).fingerprint, benReady.fingerprint);
      });
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});
