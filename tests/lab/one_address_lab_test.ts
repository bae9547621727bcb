/**
 * A plain `p2p serve` (one address, no flags) in the NAT lab: what its second port (PORT+1)
 * gives peers that a server with a second address used to be needed for.
 *
 * - The one-address rows of the traversal matrix (`tests/support/matrix.ts`): port-restricted
 *   ↔ symmetric goes direct by birthday probing (the symmetric side learns it is hard from the
 *   server's two ports), and the other rows end where theory says.
 * - Supernodes: alice on a public address passes the check (a REACH from the second port) and
 *   relays for bob and carol behind symmetric NATs (the server relays almost none of their
 *   bytes; stopped, they keep talking through her). In another room, fion behind a full cone passes too, checked by a REACH that alice
 *   sends for the server (CHECK); peers behind address-restricted, port-restricted and symmetric
 *   NATs never become supernodes.
 * - `p2p doctor` reports the per-port half of mapping and filtering exactly, and says what one
 *   address cannot tell.
 *
 * Needs the lab (root, `ip`, `nft`, `conntrack`); otherwise skipped with the reason, or failed
 * under `CI=true`.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { DoctorReport } from "../../lib/nat/doctor.ts";
import { CELLS, runCell, textTable } from "../support/matrix.ts";
import { labTest, NatLab } from "../support/natlab.ts";
import {
  P2pProcess,
  type P2pProcess as Proc,
  prepareProduct,
  startPeer,
  startServer,
} from "../support/proc.ts";
import {
  lines,
  relayedVia,
  sendAll,
  serverRelayedBytes,
  textsFrom,
  waitTexts,
} from "../support/supernode_lab.ts";

const LAB = { sanitizeResources: false, sanitizeOps: false };

for (const cell of CELLS.filter((c) => c.server === "one-address")) {
  const how = cell.upgrade ? ` (${cell.upgrade})` : "";
  Deno.test(labTest(`one-address lab: ${cell.title} → ${cell.expect}${how}`, async () => {
    const r = await runCell(cell);
    console.log(`${textTable([r])}\n`);
    if (r.error) throw new Error(r.error);
  }, LAB));
}

const SERVING = (e: { event: string; kind?: unknown }) =>
  e.event === "notice" && e.kind === "supernode";
const NOT_SERVING = (e: { event: string; kind?: unknown }) =>
  e.event === "notice" && e.kind === "not-supernode";

Deno.test(labTest(
  "one-address lab: a public peer becomes a supernode and relays for two symmetric peers, also with the server stopped; a full cone passes via a helper; other NATs never do",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srvHost = await lab.addPublicHost("srv");
    const aHost = await lab.addPublicHost("alice");
    const natted = {
      fion: await lab.addRouter({ nat: "full-cone", name: "rf" }),
      ari: await lab.addRouter({ nat: "address-restricted", name: "ra" }),
      pat: await lab.addRouter({ nat: "port-restricted", name: "rp" }),
      sam: await lab.addRouter({ nat: "symmetric", name: "rs" }),
    };
    const rb = await lab.addRouter({ nat: "symmetric", name: "rb" });
    const rc = await lab.addRouter({ nat: "symmetric", name: "rc" });
    const bobHost = await lab.addHost(rb, "bob");
    const carolHost = await lab.addHost(rc, "carol");
    const nattedHosts = await Promise.all(
      Object.entries(natted).map(async ([name, r]) => ({ name, host: await lab.addHost(r, name) })),
    );
    // No --alt-host, no --alt-port: the second port is PORT+1 by default.
    const server = await startServer({
      host: srvHost.ip,
      port: 7777,
      netns: srvHost.ns,
      extraArgs: ["--summary", "1", "--log-format", "json"],
    });
    const peers: Proc[] = [];
    const join = (name: string, room: string, ns: string, extra: string[] = []) => {
      const p = startPeer({
        server: server.addr,
        room,
        name,
        netns: ns,
        extraArgs: ["--port", "4000", ...extra],
      });
      peers.push(p);
      return p;
    };
    try {
      const alice = join("alice", "one-a", aHost.ns, ["--supernode"]);
      await alice.waitFor(SERVING, 10_000, "alice: serving as a supernode");
      // Their own room, so nobody relays through them (they would not be asked anyway).
      const others = nattedHosts.map(({ name, host }) =>
        join(name, "one-x", host.ns, ["--supernode"])
      );
      const bob = join("bob", "one-a", bobHost.ns);
      const carol = join("carol", "one-a", carolHost.ns);
      await Promise.all([
        bob.waitFor(relayedVia("carol", "alice"), 15_000, "bob: carol relayed via alice"),
        carol.waitFor(relayedVia("bob", "alice"), 15_000, "carol: bob relayed via alice"),
      ]);
      const before = await serverRelayedBytes(server.proc);
      const b = lines("b", 20), c = lines("c", 20);
      await Promise.all([sendAll(bob, b), sendAll(carol, c)]);
      await Promise.all([waitTexts(carol, "bob", 20), waitTexts(bob, "carol", 20)]);
      const after = await serverRelayedBytes(server.proc);
      assert.deepEqual(textsFrom(carol, "bob"), b, "exactly once, in order");
      assert.deepEqual(textsFrom(bob, "carol"), c, "exactly once, in order");
      assert.ok(after - before < 1_000, `the server relayed ${after - before} bytes of it`);

      // The full cone passes (alice sent its REACH); the other NATs never do.
      await others[0]!.waitFor(SERVING, 15_000, "fion (full cone): serving, checked via alice");
      await Promise.all(
        others.slice(1).map((p, i) =>
          p.waitFor(NOT_SERVING, 15_000, `${nattedHosts[i + 1]!.name}: not a supernode`)
        ),
      );
      for (const p of others.slice(1)) assert.equal(p.events.filter(SERVING).length, 0);
      // The server's own word: alice and fion passed, nobody else.
      const log = server.proc.stderr.split("\n").filter((l) => l.startsWith("{"));
      const marked = log.filter((l) => l.includes(": a supernode"))
        .map((l) => JSON.parse(l).properties.addr).sort();
      assert.deepEqual(marked, [`${aHost.ip}:4000`, `${natted.fion.wanIp}:4000`].sort());

      // The server stops: the room does not die with it; bob and carol keep talking via alice.
      await server.proc.close();
      const b3 = lines("b-after", 5), c3 = lines("c-after", 5);
      await Promise.all([sendAll(bob, b3), sendAll(carol, c3)]);
      await Promise.all([waitTexts(carol, "bob", 25), waitTexts(bob, "carol", 25)]);
      assert.deepEqual(textsFrom(carol, "bob"), [...b, ...b3], "exactly once, in order");
      assert.deepEqual(textsFrom(bob, "carol"), [...c, ...c3], "exactly once, in order");
      console.log(
        `one-address supernode lab: server relayed ${
          after - before
        } bytes of 40 messages via alice`,
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
    }
  },
  LAB,
));

Deno.test(labTest(
  "one-address lab: p2p doctor reports the mapping per port, and what one address cannot tell",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const cells = [
      { nat: "public", host: await lab.addHost(null, "hpub") },
      ...await Promise.all(
        (["address-restricted", "port-restricted", "symmetric"] as const).map(async (nat, i) => ({
          nat,
          host: await lab.addHost(await lab.addRouter({ nat, name: `r${i}` }), `h${i}`),
        })),
      ),
    ];
    const server = await startServer({ host: srv.ip, port: 3478, netns: srv.ns });
    const procs: Proc[] = [];
    try {
      const runs = await Promise.all(cells.map(async (c) => {
        const proc = P2pProcess.p2p(
          ["doctor", "--server", `${srv.ip}:3478`, "--json", "--timeout", "1"],
          { netns: c.host.ns, label: `doctor@${c.nat}` },
        );
        procs.push(proc);
        const code = await proc.wait(30_000);
        await proc.close();
        const human = P2pProcess.p2p(
          ["doctor", "--server", `${srv.ip}:3478`, "--timeout", "1"],
          { netns: c.host.ns, label: `doctor@${c.nat} (words)` },
        );
        procs.push(human);
        await human.wait(30_000);
        await human.close();
        const report = JSON.parse(proc.nonJsonLines.at(-1) ?? "null") as DoctorReport | null;
        return { nat: c.nat, code, report, words: human.nonJsonLines.join("\n") };
      }));
      for (const { nat, code, report: r, words } of runs) {
        assert.equal(code, 0, nat);
        assert.ok(r, `${nat}: a report`);
        console.log(`  ${nat}: ${JSON.stringify(r)}`);
        const symmetric = nat === "symmetric";
        const portFilter = nat === "port-restricted" || symmetric;
        assert.equal(r.rfc5780, false, nat);
        // The two ports prove a per-port mapping; the same port leaves the rest unknown.
        assert.equal(r.mapping_per_port, symmetric, `${nat}: mapping per port`);
        assert.equal(r.mapping, symmetric ? "address-and-port-dependent" : null, nat);
        assert.equal(r.filtering_per_port, portFilter, `${nat}: filtering per port`);
        assert.equal(r.filtering, portFilter ? "address-and-port-dependent" : null, nat);
        if (symmetric) {
          assert.deepEqual(r.relayed_with, ["symmetric"], nat);
          assert.match(words, /Mapping: +address-and-port-dependent: /, nat);
        } else {
          assert.match(
            words,
            /Mapping: +endpoint-independent or address-dependent: .*one server address cannot tell these apart/,
            nat,
          );
          assert.match(r.verdict, /one server address cannot tell these apart/, nat);
        }
      }
    } finally {
      for (const p of procs) await p.close();
      await server.proc.close();
    }
  },
  LAB,
));
