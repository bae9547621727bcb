/**
 * The relay over TCP with real processes behind real Linux NATs: ann sits behind a
 * port-restricted router that drops all UDP (a network that blocks it), bob behind another
 * port-restricted one. ann is given the server as a plain `HOST:PORT`: her UDP gets no answer,
 * so she registers over TCP by herself, sees bob relayed over TCP (`"transport": "tcp"`) and
 * they chat both ways; `p2p doctor` on her network says UDP gets no answer but TCP does. Then ann's router passes UDP again: within 30 s her registration moves to
 * UDP (and the pair, port-restricted on both sides, goes direct), while both keep talking;
 * every message arrives exactly once, in order. And the other way: a pair talking directly over
 * UDP whose one side's router starts dropping UDP: that side's registration moves to TCP (a PING
 * on the same registration) and the pair keeps talking through the relay, nothing lost. And over
 * TLS on port 443 with a self-signed certificate the test makes (ann trusts it with `--tls-ca`),
 * the server also named by its UDP address: ann registers over TLS while UDP is dropped, chats,
 * and moves to UDP within 30 s when it passes, both talking all along, nothing lost.
 *
 * @module
 */
import assert from "node:assert/strict";
import { labTest, labToolTest, NatLab, type Router } from "../support/natlab.ts";
import { makeSelfSignedCert } from "../support/tls_cert.ts";
import type { DoctorReport } from "../../lib/nat/doctor_report.ts";
import {
  type P2pEvent,
  P2pProcess,
  prepareProduct,
  startPeer,
  startServer,
} from "../support/proc.ts";
import { lines, sendAll, textsFrom, waitTexts } from "../support/supernode_lab.ts";

const BLOCK = "p2pblockudp";

/** Makes `router` drop every UDP datagram it would forward, either way. */
async function blockUdp(lab: NatLab, router: Router): Promise<void> {
  const ns = router.ns!;
  await lab.execCheck(ns, "nft", "add", "table", "inet", BLOCK);
  await lab.execCheck(
    ns,
    "nft",
    `add chain inet ${BLOCK} blk { type filter hook forward priority -300; policy accept; }`,
  );
  await lab.execCheck(ns, "nft", `add rule inet ${BLOCK} blk meta l4proto udp drop`);
}

/** Lets `router` forward UDP again. */
async function unblockUdp(lab: NatLab, router: Router): Promise<void> {
  await lab.execCheck(router.ns!, "nft", "delete", "table", "inet", BLOCK);
}

/** `p` says `n` numbered lines tagged `tag`, one every 250 ms, until `stop()` or `n`. */
function talk(p: P2pProcess, tag: string, said: string[], stop: () => boolean, n = 400) {
  return (async () => {
    for (let i = 0; !stop() && i < n; i++) {
      said.push(`${tag} ${i}`);
      await p.send(said.at(-1)!);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
}

Deno.test(labTest(
  "tcp lab: a host whose router drops UDP joins over TCP, chats relayed, moves to UDP within 30 s once UDP passes",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const ra = await lab.addRouter({ nat: "port-restricted", name: "ra" });
    const rb = await lab.addRouter({ nat: "port-restricted", name: "rb" });
    const annHost = await lab.addHost(ra, "ann");
    const bobHost = await lab.addHost(rb, "bob");
    // ann's network forwards no UDP at all, either way.
    await blockUdp(lab, ra);
    const server = await startServer({ host: srv.ip, port: 7777, netns: srv.ns });
    const peers: P2pProcess[] = [];
    let talking = false, talking_: Promise<unknown> = Promise.resolve();
    const a2: string[] = [], b2: string[] = [];
    try {
      const ann = startPeer({
        server: server.addr,
        room: "tcp-lab",
        name: "ann",
        netns: annHost.ns,
        extraArgs: ["--port", "4000"],
      });
      peers.push(ann);
      const bob = startPeer({
        server: server.addr,
        room: "tcp-lab",
        name: "bob",
        netns: bobHost.ns,
        extraArgs: ["--port", "4000"],
      });
      peers.push(bob);
      const t0 = performance.now();
      await ann.waitFor((e) => e.event === "ready", 15_000, "ann registered (over TCP)");
      const registeredAfter = performance.now() - t0;
      const relayedTcp = (e: P2pEvent) =>
        e.event === "peer" && e.name === "bob" && e.path === "relay" && e.transport === "tcp";
      await ann.waitFor(relayedTcp, 15_000, "ann: bob relayed over TCP");
      await bob.waitFor(
        (e) => e.event === "peer" && e.name === "ann" && e.path === "relay",
        15_000,
        "bob: ann relayed",
      );
      assert.match(server.proc.stderr, /registered in room .* from tcp:\/\//);
      const a1 = lines("ann tcp", 20), b1 = lines("bob tcp", 20);
      await Promise.all([sendAll(ann, a1), sendAll(bob, b1)]);
      await Promise.all([waitTexts(bob, "ann", 20), waitTexts(ann, "bob", 20)]);
      assert.deepEqual(textsFrom(bob, "ann"), a1);
      assert.deepEqual(textsFrom(ann, "bob"), b1);
      // p2p doctor on ann's network: no UDP, but TCP gets through (and join does).
      const doc = P2pProcess.p2p(
        ["doctor", "--server", server.addr, "--json", "--timeout", "1"],
        { netns: annHost.ns, label: "doctor@ann" },
      );
      peers.push(doc);
      assert.equal(await doc.wait(30_000), 1, "exit 1: UDP does not reach the server");
      const report = JSON.parse(doc.nonJsonLines.at(-1) ?? "null") as DoctorReport | null;
      assert.deepEqual([report?.udp, report?.tcp], [false, true], doc.describe());
      assert.match(report!.verdict, /TCP to its port connects: .*p2p join registers over TCP/);

      // Both keep talking (a line each every 250 ms) for 20 s with UDP still blocked (ann's
      // background tries over UDP are 20 s apart by then), and on across the move.
      talking = true;
      const stop = () => !talking;
      talking_ = Promise.all([talk(ann, "ann", a2, stop), talk(bob, "bob", b2, stop)]);
      await waitTexts(bob, "ann", a1.length + 80, 40_000);
      const transport = ann.eventsOf("notice").filter((e) => e.kind === "transport");
      assert.equal(transport.length, 1, "said once at registering; no move while UDP is blocked");
      assert.match(String(transport[0]!.message), /reached over tcp:/);
      // UDP passes again.
      await unblockUdp(lab, ra);
      const unblocked = performance.now();
      const moved = await ann.waitFor(
        (e) => e.event === "notice" && e.kind === "transport" && /over UDP/.test(String(e.message)),
        30_000,
        "ann: the server reached over UDP again",
      );
      const movedAfter = performance.now() - unblocked;
      assert.ok(moved);
      const direct = await ann.waitFor(
        (e) => e.event === "peer" && e.name === "bob" && e.path === "direct",
        30_000,
        "ann: bob direct",
      );
      const directAfter = performance.now() - unblocked;
      assert.ok(directAfter < 30_000, `direct after ${Math.round(directAfter)} ms`);
      assert.ok(direct);
      talking = false;
      await talking_;
      await Promise.all([
        waitTexts(bob, "ann", a1.length + a2.length, 20_000),
        waitTexts(ann, "bob", b1.length + b2.length, 20_000),
      ]);
      assert.deepEqual(textsFrom(bob, "ann"), [...a1, ...a2], "nothing lost or duplicated");
      assert.deepEqual(textsFrom(ann, "bob"), [...b1, ...b2], "nothing lost or duplicated");
      console.log(
        `tcp lab: registered over TCP after ${Math.round(registeredAfter)} ms; UDP again ` +
          `${Math.round(movedAfter)} ms after unblocking, direct after ${
            Math.round(directAfter)
          } ms; ` +
          `${a2.length} lines each way, ${Math.round((performance.now() - t0) / 1000)} s in all`,
      );
    } finally {
      talking = false;
      await talking_.catch(() => {});
      await Promise.all(peers.map((p) => p.close()));
      await server.proc.close();
    }
  },
));

Deno.test(labTest(
  "tcp lab: UDP blocked mid-conversation, the registration moves to TCP and the pair keeps talking",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const ra = await lab.addRouter({ nat: "port-restricted", name: "ra" });
    const rb = await lab.addRouter({ nat: "port-restricted", name: "rb" });
    const annHost = await lab.addHost(ra, "ann");
    const bobHost = await lab.addHost(rb, "bob");
    const server = await startServer({ host: srv.ip, port: 7777, netns: srv.ns });
    const peers: P2pProcess[] = [];
    let talking = false, talking_: Promise<unknown> = Promise.resolve();
    try {
      // A 5 s keepalive: the server is found lost within about 20 s rather than 45.
      const join = (name: string, ns: string) => {
        const p = startPeer({
          server: server.addr,
          room: "tcp-lab-2",
          name,
          netns: ns,
          keepaliveSec: 5,
          extraArgs: ["--port", "4000"],
        });
        peers.push(p);
        return p;
      };
      const ann = join("ann", annHost.ns), bob = join("bob", bobHost.ns);
      await ann.waitFor(
        (e) => e.event === "peer" && e.name === "bob" && e.path === "direct",
        20_000,
        "ann: bob direct",
      );
      const a: string[] = [], b: string[] = [];
      talking = true;
      const stop = () => !talking;
      talking_ = Promise.all([talk(ann, "ann", a, stop), talk(bob, "bob", b, stop)]);
      await waitTexts(bob, "ann", 8, 10_000);
      await blockUdp(lab, ra);
      const blocked = performance.now();
      await ann.waitFor(
        (e) =>
          e.event === "notice" && e.kind === "transport" && /over tcp:/.test(String(e.message)),
        60_000,
        "ann: the server reached over TCP",
      );
      const movedAfter = performance.now() - blocked;
      await ann.waitFor(
        (e) =>
          e.event === "peer" && e.name === "bob" && e.path === "relay" && e.transport === "tcp",
        30_000,
        "ann: bob relayed over TCP",
      );
      const sent = a.length;
      await waitTexts(bob, "ann", sent + 8, 30_000);
      talking = false;
      await talking_;
      await Promise.all([
        waitTexts(bob, "ann", a.length, 60_000),
        waitTexts(ann, "bob", b.length, 60_000),
      ]);
      assert.deepEqual(textsFrom(bob, "ann"), a, "nothing lost or duplicated");
      assert.deepEqual(textsFrom(ann, "bob"), b, "nothing lost or duplicated");
      console.log(
        `tcp lab: over TCP ${Math.round(movedAfter)} ms after UDP was blocked; ` +
          `${a.length} lines each way`,
      );
    } finally {
      talking = false;
      await talking_.catch(() => {});
      await Promise.all(peers.map((p) => p.close()));
      await server.proc.close();
    }
  },
));

Deno.test(labToolTest(
  "tcp lab: over TLS (port 443, a self-signed certificate, --tls-ca) where UDP is dropped, then UDP within 30 s, nothing lost",
  ["openssl"],
  "openssl",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const ra = await lab.addRouter({ nat: "port-restricted", name: "ra" });
    const rb = await lab.addRouter({ nat: "port-restricted", name: "rb" });
    const annHost = await lab.addHost(ra, "ann");
    const bobHost = await lab.addHost(rb, "bob");
    await blockUdp(lab, ra);
    const cert = await makeSelfSignedCert([srv.ip]);
    const server = await startServer({
      host: srv.ip,
      port: 7777,
      netns: srv.ns,
      extraArgs: ["--tls-port", "443", "--tls-cert", cert.certFile, "--tls-key", cert.keyFile],
    });
    const peers: P2pProcess[] = [];
    let talking = false, talking_: Promise<unknown> = Promise.resolve();
    try {
      // The server named twice: UDP (blocked) and TLS on 443 (one server, so UDP is what ann
      // moves back to).
      const ann = startPeer({
        server: server.addr,
        room: "tls-lab",
        name: "ann",
        netns: annHost.ns,
        extraArgs: ["--server", `tls://${srv.ip}:443`, "--tls-ca", cert.caFile, "--port", "4000"],
      });
      const bob = startPeer({
        server: server.addr,
        room: "tls-lab",
        name: "bob",
        netns: bobHost.ns,
        extraArgs: ["--port", "4000"],
      });
      peers.push(ann, bob);
      const over = await ann.waitFor(
        (e) => e.event === "notice" && e.kind === "transport",
        20_000,
        "ann: registered over TLS",
      );
      assert.match(String(over.message), new RegExp(`reached over tls://${srv.ip}:443`));
      await ann.waitFor(
        (e) =>
          e.event === "peer" && e.name === "bob" && e.path === "relay" && e.transport === "tcp",
        15_000,
        "ann: bob relayed over TLS",
      );
      const a1 = lines("ann tls", 10), b1 = lines("bob tls", 10);
      await Promise.all([sendAll(ann, a1), sendAll(bob, b1)]);
      await Promise.all([waitTexts(bob, "ann", 10), waitTexts(ann, "bob", 10)]);
      // Both keep talking (a line each every 250 ms) across the move.
      const a2: string[] = [], b2: string[] = [];
      talking = true;
      const stop = () => !talking;
      talking_ = Promise.all([talk(ann, "ann", a2, stop), talk(bob, "bob", b2, stop)]);
      await waitTexts(bob, "ann", a1.length + 8, 10_000);
      await unblockUdp(lab, ra);
      const unblocked = performance.now();
      await ann.waitFor(
        (e) => e.event === "notice" && e.kind === "transport" && /over UDP/.test(String(e.message)),
        30_000,
        "ann: over UDP within 30 s",
      );
      const movedAfter = performance.now() - unblocked;
      await waitTexts(bob, "ann", a1.length + a2.length + 8, 20_000);
      talking = false;
      await talking_;
      await Promise.all([
        waitTexts(bob, "ann", a1.length + a2.length, 20_000),
        waitTexts(ann, "bob", b1.length + b2.length, 20_000),
      ]);
      assert.deepEqual(textsFrom(bob, "ann"), [...a1, ...a2], "nothing lost or duplicated");
      assert.deepEqual(textsFrom(ann, "bob"), [...b1, ...b2], "nothing lost or duplicated");
      console.log(
        `tls lab: UDP again ${Math.round(movedAfter)} ms after unblocking; ` +
          `${a2.length} lines each way across the move`,
      );
    } finally {
      talking = false;
      await talking_.catch(() => {});
      await Promise.all(peers.map((p) => p.close()));
      await server.proc.close();
      await Deno.remove(cert.dir, { recursive: true });
    }
  },
));
