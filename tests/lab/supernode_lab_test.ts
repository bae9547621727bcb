/**
 * Supernodes with real processes in the NAT lab. One server with a second address
 * (`--alt-host`, so it can check reachability); alice on a public address; bob and carol each
 * behind a symmetric NAT (no direct path between them); pat behind a port-restricted NAT; fion
 * behind a full-cone NAT and ari behind an address-restricted one.
 *
 * - alice and fion pass the reachability check; pat and ari never do (all asked with
 *   `--supernode`).
 * - bob ↔ carol relay through alice: 20 messages each way arrive exactly once, in order, and
 *   the server's own counter (its summary line) shows it relayed (almost) none of their bytes;
 *   a file bob sends carol goes through alice too, verified.
 * - A second room (alice2, bob2, carol2): alice2 is killed (no goodbye); bob2 ↔ carol2 move to
 *   the server's relay within seconds and nothing is lost or duplicated.
 * - The server stops: bob and carol keep talking through alice; dave, started with
 *   `--server <server> --server <alice>`, joins through alice and reaches everyone.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join as joinPath } from "node:path";
import { labTest, NatLab } from "../support/natlab.ts";
import { type P2pProcess, prepareProduct, startPeer, startServer } from "../support/proc.ts";
import {
  lines,
  relayedVia,
  sendAll,
  serverRelayedBytes,
  textsFrom,
  waitTexts,
} from "../support/supernode_lab.ts";

const SERVING = (e: { event: string; kind?: unknown }) =>
  e.event === "notice" && e.kind === "supernode";

Deno.test(labTest(
  "supernode lab: bob ↔ carol (symmetric NATs) relay via alice; server stopped, alice stopped; port-restricted never a supernode",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srvHost = await lab.addPublicHost("srv");
    const altIp = await lab.addAddress(srvHost);
    const [aHost, a2Host] = [await lab.addPublicHost("alice"), await lab.addPublicHost("alice2")];
    const rb = await lab.addRouter({ nat: "symmetric", name: "rb" });
    const rc = await lab.addRouter({ nat: "symmetric", name: "rc" });
    const rd = await lab.addRouter({ nat: "symmetric", name: "rd" });
    const rp = await lab.addRouter({ nat: "port-restricted", name: "rp" });
    const rf = await lab.addRouter({ nat: "full-cone", name: "rf" });
    const ra = await lab.addRouter({ nat: "address-restricted", name: "ra" });
    const hosts = {
      bob: await lab.addHost(rb, "bob"),
      bob2: await lab.addHost(rb, "bob2"),
      carol: await lab.addHost(rc, "carol"),
      carol2: await lab.addHost(rc, "carol2"),
      dave: await lab.addHost(rd, "dave"),
      pat: await lab.addHost(rp, "pat"),
      fion: await lab.addHost(rf, "fion"),
      ari: await lab.addHost(ra, "ari"),
    };
    const server = await startServer({
      host: srvHost.ip,
      port: 7777,
      netns: srvHost.ns,
      extraArgs: [
        "--alt-host",
        altIp,
        "--alt-port",
        "7779",
        "--summary",
        "1",
        "--log-format",
        "json",
      ],
    });
    const peers: P2pProcess[] = [];
    const files = await Deno.makeTempDir({ prefix: "p2p-sn-files-" });
    const join = (
      name: string,
      room: string,
      ns: string,
      extra: string[] = [],
      srv = server.addr,
    ) => {
      const p = startPeer({
        server: srv,
        room,
        name,
        netns: ns,
        extraArgs: ["--port", "4000", ...extra],
      });
      peers.push(p);
      return p;
    };
    try {
      // alice lends more of her uplink than the default (64 and 32 KiB/s) for the file below.
      const alice = join("alice", "sn-a", aHost.ns, [
        "--supernode",
        "--supernode-relay-rate",
        "128",
        "--supernode-pair-rate",
        "128",
      ]);
      const alice2 = join("alice2", "sn-b", a2Host.ns, ["--supernode"]);
      await alice.waitFor(SERVING, 10_000, "alice: serving as a supernode");
      await alice2.waitFor(SERVING, 10_000, "alice2: serving as a supernode");
      const pat = join("pat", "sn-a", hosts.pat.ns, ["--supernode"]);
      // A room of their own (else they would compete with alice): full cone passes, address-
      // restricted does not (its STUN discovery waits, so it cannot open the NAT to the probe).
      const fion = join("fion", "sn-c", hosts.fion.ns, ["--supernode"]);
      const ari = join("ari", "sn-c", hosts.ari.ns, ["--supernode"]);
      const bob = join("bob", "sn-a", hosts.bob.ns);
      const carol = join("carol", "sn-a", hosts.carol.ns, [
        "--auto-accept",
        "--downloads",
        joinPath(files, "down"),
      ]);
      const bob2 = join("bob2", "sn-b", hosts.bob2.ns);
      const carol2 = join("carol2", "sn-b", hosts.carol2.ns);
      await Promise.all([
        bob.waitFor(relayedVia("carol", "alice"), 15_000, "bob: carol relayed via alice"),
        carol.waitFor(relayedVia("bob", "alice"), 15_000, "carol: bob relayed via alice"),
        bob2.waitFor(relayedVia("carol2", "alice2"), 15_000, "bob2: carol2 via alice2"),
        carol2.waitFor(relayedVia("bob2", "alice2"), 15_000, "carol2: bob2 via alice2"),
      ]);

      // Room B: alice2 stops mid-conversation; the pair moves to the server's relay.
      const b1 = lines("b2", 10), c1 = lines("c2", 10);
      await Promise.all([sendAll(bob2, b1), sendAll(carol2, c1)]);
      await Promise.all([waitTexts(carol2, "bob2", 10), waitTexts(bob2, "carol2", 10)]);
      // Killed, so no goodbye: the members notice by themselves.
      const stoppedAt = performance.now();
      alice2.kill("SIGKILL");
      const b2 = lines("b2", 10, 10), c2 = lines("c2", 10, 10);
      await Promise.all([sendAll(bob2, b2), sendAll(carol2, c2)]);
      const moved = await bob2.waitFor(relayedVia("carol2", "server"), 10_000, "bob2: via server");
      const moveMs = Math.round(bob2.receivedAt(moved)! - stoppedAt);
      await Promise.all([waitTexts(carol2, "bob2", 20), waitTexts(bob2, "carol2", 20)]);
      assert.deepEqual(textsFrom(carol2, "bob2"), [...b1, ...b2], "exactly once, in order");
      assert.deepEqual(textsFrom(bob2, "carol2"), [...c1, ...c2], "exactly once, in order");

      // Room A: 20 messages each way through alice; the server's relay counter barely moves.
      const before = await serverRelayedBytes(server.proc);
      const b = lines("b", 20), c = lines("c", 20);
      await Promise.all([sendAll(bob, b), sendAll(carol, c)]);
      await Promise.all([waitTexts(carol, "bob", 20), waitTexts(bob, "carol", 20)]);
      const after = await serverRelayedBytes(server.proc);
      assert.deepEqual(textsFrom(carol, "bob"), b);
      assert.deepEqual(textsFrom(bob, "carol"), c);
      assert.ok(after - before < 1_000, `the server relayed ${after - before} bytes of it`);

      // A file bob → carol goes through alice as well, verified; the server carries none of it.
      const data = new Uint8Array(1_500_000).map((_, i) => (i * 7919 + (i >> 10)) & 0xff);
      const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
      await Deno.writeFile(joinPath(files, "photo.raw"), data);
      const fileStart = performance.now(), eventsBefore = bob.events.length;
      await bob.send(`/send carol ${joinPath(files, "photo.raw")}`);
      const got = await carol.waitFor(
        (e) => e.event === "file" && e.state === "done",
        60_000,
        "carol: the file via alice",
      );
      const fileMs = Math.round(performance.now() - fileStart);
      assert.equal(sha(await Deno.readFile(String(got.path))), sha(data));
      // Within alice's pair rate (128 KiB/s after a burst of 4 s of it): not faster than that.
      const floor = 0.9 * ((data.length - 4 * 128 * 1024) / (128 * 1024)) * 1000;
      assert.ok(fileMs > floor, `${fileMs} ms, faster than alice allows (${floor} ms)`);
      const afterFile = await serverRelayedBytes(server.proc);
      assert.ok(
        afterFile - after < 20_000,
        `the server relayed ${afterFile - after} bytes of a ${data.length}-byte file`,
      );
      assert.ok(
        !bob.events.slice(eventsBefore).some((e) =>
          e.event === "peer" && e.name === "carol" && e.via === "server"
        ),
        "bob and carol stayed on alice during the transfer",
      );
      // The sender is told which relay holds the transfer to its rate, and by which option.
      await bob.waitFor(
        (e) =>
          e.event === "notice" && e.kind === "file" &&
          /through alice's relay \(a supernode\).*--supernode-pair-rate/.test(String(e.message)),
        10_000,
        "bob: the transfer keeps to alice's relay rate",
      );

      // pat (port-restricted) was never found reachable, and nobody relays via pat.
      await pat.waitFor(
        (e) => e.event === "notice" && e.kind === "not-supernode",
        10_000,
        "pat: not a supernode",
      );
      assert.equal(pat.events.filter(SERVING).length, 0);
      for (const p of [bob, carol]) {
        assert.equal(p.events.filter((e) => e.event === "peer" && e.via === "pat").length, 0);
      }
      await fion.waitFor(SERVING, 10_000, "fion (full cone): serving as a supernode");
      await ari.waitFor(
        (e) => e.event === "notice" && e.kind === "not-supernode",
        10_000,
        "ari (address-restricted): not a supernode",
      );
      // The server's own word: exactly alice, alice2 and fion passed its check.
      const marked = server.proc.stderr.split("\n").filter((l) => l.includes(": a supernode"))
        .map((l) => JSON.parse(l).properties.addr).sort();
      assert.deepEqual(
        marked,
        [`${aHost.ip}:4000`, `${a2Host.ip}:4000`, `${rf.wanIp}:4000`].sort(),
      );

      // The server stops: bob and carol keep talking; dave joins through alice.
      await server.proc.close();
      const b3 = lines("b-after", 5), c3 = lines("c-after", 5);
      await Promise.all([sendAll(bob, b3), sendAll(carol, c3)]);
      const aliceAt = `${aHost.ip}:4000`;
      const dave = join("dave", "sn-a", hosts.dave.ns, ["--server", aliceAt]);
      await Promise.all([waitTexts(carol, "bob", 25), waitTexts(bob, "carol", 25)]);
      assert.deepEqual(textsFrom(carol, "bob"), [...b, ...b3]);
      assert.deepEqual(textsFrom(bob, "carol"), [...c, ...c3]);
      await dave.waitFor((e) => e.event === "ready", 15_000, "dave: registered (via alice)");
      for (const n of ["alice", "bob", "carol"]) {
        await dave.waitFor((e) => e.event === "peer" && e.name === n, 15_000, `dave meets ${n}`);
      }
      await dave.send("hello from dave");
      for (const [p, n] of [[alice, "alice"], [bob, "bob"], [carol, "carol"]] as const) {
        await waitTexts(p, "dave", 1);
        await p.send(`hi dave from ${n}`);
      }
      for (const n of ["alice", "bob", "carol"]) await waitTexts(dave, n, 1);
      console.log(
        `supernode lab: server relayed ${after - before} bytes of 40 messages via alice; ` +
          `a 1.5 MB file via alice in ${fileMs} ms; ` +
          `bob2 moved to the server's relay ${moveMs} ms after alice2 stopped`,
      );
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(
        `${msg}\n\n${await lab.diagnostics()}\n\n${
          [server.proc, ...peers].map((p) => p.describe(3000)).join("\n")
        }`,
        { cause: e },
      );
    } finally {
      for (const p of peers) await p.close();
      await server.proc.close();
      await Deno.remove(files, { recursive: true });
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
));
