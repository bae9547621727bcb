/**
 * The relay over TCP and TLS with real processes on 127.0.0.1: two `join --tcp` / `tcp://`
 * peers register over TCP, see each other relayed with `"transport": "tcp"` and chat both
 * ways; UDP gets through on loopback, so both move their registration to UDP within seconds
 * and keep chatting, every message delivered once. Over TLS with a private CA (`--tls-ca`);
 * a peer without the CA cannot register. A peer whose UDP gets no answer falls back to TCP by
 * itself.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  freeUdpPort,
  type P2pEvent,
  type P2pProcess,
  prepareProduct,
  runP2p,
  startPeer,
  startServer,
} from "../support/proc.ts";
import { makeSelfSignedCert, makeTestCert } from "../support/tls_cert.ts";
import { toolTest } from "../support/tools.ts";
import { decodeTicket } from "../../lib/roles/ticket.ts";

const WAIT = 20_000;

const peerEvent = (name: string, transport?: string) => (e: P2pEvent) =>
  e.event === "peer" && e.name === name && e.path === "relay" && e.transport === transport;

function messagesFrom(p: P2pProcess, from: string): string[] {
  return p.eventsOf("message").filter((e) => e.from === from).map((e) => String(e.text));
}

/** `from` says `lines` to `to`, which gets all of them, once, in order (after `before`). */
async function chat(from: P2pProcess, name: string, to: P2pProcess, lines: string[]) {
  const before = messagesFrom(to, name);
  for (const l of lines) await from.send(l);
  await to.waitFor(
    (e) => e.event === "message" && e.from === name && e.text === lines.at(-1),
    WAIT,
  );
  assert.deepEqual(messagesFrom(to, name), [...before, ...lines], to.describe());
}

const numbered = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag} ${i + 1}`);

Deno.test({
  name: "tcp: two peers register over TCP, chat relayed over TCP, then move to UDP",
  sanitizeResources: false,
  async fn() {
    await prepareProduct();
    const server = await startServer({ host: "127.0.0.1", port: 0 });
    assert.equal(server.proc.eventsOf("listening")[0]!.tcp, server.addr, "TCP on the UDP port");
    const ann = startPeer({
      server: server.addr,
      room: "tcp",
      name: "ann",
      relayOnly: true,
      extraArgs: ["--tcp"],
    });
    const bob = startPeer({
      server: `tcp://${server.addr}`,
      room: "tcp",
      name: "bob",
      relayOnly: true,
    });
    try {
      const reg = await ann.waitFor((e) => e.event === "registering", WAIT);
      assert.equal(reg.server, `tcp://${server.addr}`);
      const over = await ann.waitFor((e) => e.event === "notice" && e.kind === "transport", WAIT);
      assert.match(String(over.message), new RegExp(`reached over tcp://${server.addr}`));
      await ann.waitFor(peerEvent("bob", "tcp"), WAIT);
      await bob.waitFor(peerEvent("ann", "tcp"), WAIT);
      await chat(ann, "ann", bob, numbered("ann over tcp", 20));
      await chat(bob, "bob", ann, numbered("bob over tcp", 20));
      // UDP gets through on loopback: both move (the first background try is 5 s after).
      for (const [p, other] of [[ann, "bob"], [bob, "ann"]] as const) {
        const n = await p.waitFor(
          (e) =>
            e.event === "notice" && e.kind === "transport" && /over UDP/.test(String(e.message)),
          WAIT,
        );
        assert.ok(n);
        await p.waitFor(peerEvent(other, undefined), WAIT);
      }
      await chat(ann, "ann", bob, numbered("ann over udp", 20));
      await chat(bob, "bob", ann, numbered("bob over udp", 20));
      const moved = server.proc.stderr.match(/moved to 127\.0\.0\.1:\d+/g) ?? [];
      assert.ok(moved.length >= 2, server.proc.stderr);
    } finally {
      await Promise.all([ann.close(), bob.close()]);
      await server.proc.close();
    }
  },
});

Deno.test({
  name: "tcp: a peer whose UDP gets no answer registers over TCP by itself",
  sanitizeResources: false,
  async fn() {
    await prepareProduct();
    // TCP on a port where nothing answers UDP: HELLOs over UDP go unanswered.
    const tcpPort = freeUdpPort();
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      extraArgs: ["--tcp-port", String(tcpPort)],
    });
    const at = `127.0.0.1:${tcpPort}`;
    const solo = startPeer({ server: at, room: "fallback", name: "solo" });
    try {
      const reg = await solo.waitFor((e) => e.event === "registering", WAIT);
      assert.equal(reg.server, at, "UDP first");
      const t0 = Date.now();
      await solo.waitFor((e) => e.event === "ready", WAIT);
      const took = Date.now() - t0;
      // UDP for 2 s (its next HELLO after that goes over TCP, at 3.75 s), then TCP.
      assert.ok(took < 8_000, `registered over TCP after ${took} ms`);
      // The server's log line may come a moment after the peer's `ready`.
      await server.proc.waitForStderr(/registered in room .* from tcp:\/\/127\.0\.0\.1:\d+/, WAIT);
    } finally {
      await solo.close();
      await server.proc.close();
    }
  },
});

/** A TLS-only server on 127.0.0.1 with `cert`; the `tls://localhost:PORT` peers name. */
async function tlsServer(cert: { certFile: string; keyFile: string }) {
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    extraArgs: [
      "--no-tcp",
      "--tls-port",
      "0",
      "--tls-cert",
      cert.certFile,
      "--tls-key",
      cert.keyFile,
    ],
  });
  const listening = server.proc.eventsOf("listening")[0]!;
  assert.equal(listening.tcp, undefined);
  return { server, spec: `tls://localhost:${String(listening.tls).split(":")[1]}` };
}

Deno.test({
  ...toolTest(
    "openssl",
    "openssl",
    "tls: two peers over TLS with a private CA chat; without the CA no registration, and told why",
    async () => {
      await prepareProduct();
      const cert = await makeTestCert();
      const { server, spec } = await tlsServer(cert);
      const peer = (name: string, ca = true) =>
        startPeer({
          server: spec,
          room: "tls",
          name,
          relayOnly: true,
          extraArgs: [...(ca ? ["--tls-ca", cert.caFile] : []), "--timeout", "4"],
        });
      const ann = peer("ann"), bob = peer("bob"), eve = peer("eve", false);
      try {
        await ann.waitFor(peerEvent("bob", "tcp"), WAIT);
        await bob.waitFor(peerEvent("ann", "tcp"), WAIT);
        await chat(ann, "ann", bob, numbered("ann over tls", 10));
        await chat(bob, "bob", ann, numbered("bob over tls", 10));
        // Without the CA the certificate is not trusted: no registration, a clear exit.
        assert.equal(await eve.wait(WAIT), 1);
        assert.match(eve.stderr, /No answer from the server/);
        assert.match(eve.stderr, /no CA this machine trusts signed it: give --tls-ca/);
        assert.equal(ann.eventsOf("peer").some((e) => e.name === "eve"), false);
      } finally {
        await Promise.all([ann.close(), bob.close(), eve.close()]);
        await server.proc.close();
        await Deno.remove(cert.dir, { recursive: true });
      }
    },
  ),
  sanitizeResources: false,
});

Deno.test({
  ...toolTest(
    "openssl",
    "openssl",
    "tls: a self-signed server certificate that --tls-ca names; a self-signed CA certificate as the server's: refused, both sides say why",
    async () => {
      await prepareProduct();
      const leaf = await makeSelfSignedCert();
      const caCert = await makeSelfSignedCert([], { ca: true });
      const { server, spec } = await tlsServer(leaf);
      const bad = await tlsServer(caCert);
      const peer = (name: string, at: string, ca: string) =>
        startPeer({
          server: at,
          room: "self-signed",
          name,
          relayOnly: true,
          extraArgs: ["--tls-ca", ca, "--timeout", "4"],
        });
      const ann = peer("ann", spec, leaf.caFile), bob = peer("bob", spec, leaf.caFile);
      const eve = peer("eve", bad.spec, caCert.caFile);
      try {
        await ann.waitFor(peerEvent("bob", "tcp"), WAIT);
        await bob.waitFor(peerEvent("ann", "tcp"), WAIT);
        await chat(ann, "ann", bob, numbered("ann self-signed", 5));
        await chat(bob, "bob", ann, numbered("bob self-signed", 5));
        assert.doesNotMatch(server.proc.stderr, /CA certificate/);
        // openssl req -x509's default (CA:TRUE): TLS refuses it even when told to trust it.
        assert.equal(await eve.wait(WAIT), 1);
        assert.match(eve.stderr, /it is a CA certificate .*basicConstraints=critical,CA:FALSE/);
        assert.match(bad.server.proc.stderr, /--tls-cert is a CA certificate/);
      } finally {
        await Promise.all([ann.close(), bob.close(), eve.close()]);
        await Promise.all([server.proc.close(), bad.server.proc.close()]);
        for (const c of [leaf, caCert]) await Deno.remove(c.dir, { recursive: true });
      }
    },
  ),
  sanitizeResources: false,
});

Deno.test("tcp: a new room's ticket names a tcp:// server by HOST:PORT; a tls:// one is refused", async () => {
  const room = await runP2p(
    ["join", "--new-room", "--server", "tcp://127.0.0.1:9", "--json", "--timeout", "0.5"],
  );
  const made = JSON.parse(room.stdout.split("\n")[0]!);
  assert.equal(made.event, "room");
  // Peers with the ticket try UDP there and fall back to TCP on the same port by themselves.
  assert.deepEqual(decodeTicket(made.ticket).servers, ["127.0.0.1:9"]);
  const t = await runP2p(["join", "--server", "tls://127.0.0.1:9", "--new-room", "--json"]);
  assert.equal(t.code, 1, t.stderr);
  assert.match(
    t.stderr,
    /A ticket cannot name tls:\/\/127\.0\.0\.1:9: give --new-room the server's UDP address/,
  );
});

Deno.test("tcp: serve on a port whose TCP twin is taken says so; --no-tcp serves UDP alone", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    const r = await runP2p(["serve", "--host", "127.0.0.1", "--port", String(port), "--json"], {
      killAfterMs: 15_000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`Cannot listen on TCP 127\\.0\\.0\\.1:${port} .*--no-tcp`));
    const udp = await startServer({ host: "127.0.0.1", port, extraArgs: ["--no-tcp"] });
    assert.equal(udp.proc.eventsOf("listening")[0]!.tcp, undefined);
    await udp.proc.close();
  } finally {
    taken.close();
  }
});

Deno.test({
  name: "tcp: peers over TCP come back after the server restarts, and keep chatting",
  sanitizeResources: false,
  async fn() {
    await prepareProduct();
    const udp = freeUdpPort();
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const tcpPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const args = ["--tcp-port", String(tcpPort)];
    let server = await startServer({ host: "127.0.0.1", port: udp, extraArgs: args });
    // Only over TCP (nothing answers UDP on the TCP port's number).
    const join = (name: string) =>
      startPeer({
        server: `tcp://127.0.0.1:${tcpPort}`,
        room: "restart",
        name,
        relayOnly: true,
        keepaliveSec: 5,
      });
    const ann = join("ann"), bob = join("bob");
    try {
      await ann.waitFor(peerEvent("bob", "tcp"), WAIT);
      await bob.waitFor(peerEvent("ann", "tcp"), WAIT);
      await chat(ann, "ann", bob, numbered("before", 5));
      await server.proc.close();
      server = await startServer({ host: "127.0.0.1", port: udp, extraArgs: args });
      const t0 = performance.now();
      for (const p of [ann, bob]) {
        await p.waitFor((e) => e.event === "server" && e.state === "back", WAIT, "server back");
      }
      console.log(`back ${Math.round(performance.now() - t0)} ms after the restart`);
      await chat(ann, "ann", bob, numbered("after", 5));
      await chat(bob, "bob", ann, numbered("bob after", 5));
    } finally {
      await Promise.all([ann.close(), bob.close()]);
      await server.proc.close();
    }
  },
});
