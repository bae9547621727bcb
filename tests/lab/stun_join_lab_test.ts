/**
 * `p2p join --stun` in the NAT lab against coturn's `turnserver --stun-only` on a second public
 * host: behind a symmetric NAT the p2p server and coturn see different public ports, and the
 * peer tells the user once, early, that some peers will be relayed; behind a port-restricted
 * NAT they agree and the peer says nothing.
 *
 * Needs the lab (root, `ip`, `nft`, `conntrack`) and coturn (`apt-get install coturn`);
 * otherwise skipped with the reason, or failed under `CI=true`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { labToolTest, NatLab, type NatType } from "../support/natlab.ts";
import { type P2pProcess, prepareProduct, startPeer, startServer } from "../support/proc.ts";

Deno.test(labToolTest(
  "stun join lab: a symmetric NAT is reported (with --stun against coturn, or by a server with --alt-host), a cone NAT not",
  ["turnserver"],
  "coturn",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const stunHost = await lab.addPublicHost("stun");
    const coturn = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        stunHost.ns,
        "turnserver",
        "--stun-only",
        "--listening-ip",
        stunHost.ip,
        "--listening-port",
        "3478",
        "--no-cli",
        "--log-file",
        "stdout",
        "--simple-log",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const peers: P2pProcess[] = [];
    // No second port: the verdict must come from --stun (coturn) here.
    const server = await startServer({
      host: srv.ip,
      port: 7777,
      netns: srv.ns,
      extraArgs: ["--no-alt-port"],
    });
    const servers = [server];
    try {
      await new Promise((r) => setTimeout(r, 500)); // coturn binds its socket
      const cases: { nat: NatType; notice: boolean }[] = [
        { nat: "symmetric", notice: true },
        { nat: "port-restricted", notice: false },
      ];
      for (const c of cases) {
        const router = await lab.addRouter({
          nat: c.nat,
          name: c.nat === "symmetric" ? "rs" : "rp",
        });
        const host = await lab.addHost(router, c.nat === "symmetric" ? "hs" : "hp");
        const p = startPeer({
          server: server.addr,
          room: "stunlab",
          name: c.nat === "symmetric" ? "sym" : "cone",
          netns: host.ns,
          extraArgs: ["--stun", `${stunHost.ip}:3478`],
        });
        peers.push(p);
        await p.waitFor((e) => e.event === "ready", 15_000, "ready");
        if (c.notice) {
          const n = await p.waitFor(
            (e) => e.event === "notice" && e.kind === "symmetric-nat",
            10_000,
            "the symmetric-NAT notice",
          );
          assert.match(String(n.message), /relayed/);
        } else {
          // Both STUN servers answer within a second in the lab; give them five.
          await new Promise((r) => setTimeout(r, 5_000));
          const wrong = p.eventsOf("notice").filter((e) => e.kind === "symmetric-nat");
          assert.deepEqual(wrong, [], "a cone NAT is not reported as symmetric");
        }
      }
      const sym = peers[0]!.eventsOf("notice").filter((e) => e.kind === "symmetric-nat");
      assert.equal(sym.length, 1, "told once");

      // Without --stun: a server with --alt-host names its other address (OTHER-ADDRESS) and
      // that second answer is enough for the same verdict.
      const altIp = await lab.addAddress(srv);
      const alt = await startServer({
        host: srv.ip,
        port: 7778,
        netns: srv.ns,
        label: "server (alt)",
        extraArgs: ["--alt-host", altIp, "--alt-port", "7779"],
      });
      servers.push(alt);
      const router = await lab.addRouter({ nat: "symmetric", name: "rs2" });
      const host = await lab.addHost(router, "hs2");
      const p = startPeer({ server: alt.addr, room: "stunlab2", name: "sym2", netns: host.ns });
      peers.push(p);
      await p.waitFor(
        (e) => e.event === "notice" && e.kind === "symmetric-nat",
        10_000,
        "the symmetric-NAT notice from the server's own STUN answers",
      );
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(
        `${msg}\n\n${await lab.diagnostics()}\n\n${peers.map((p) => p.describe(2000)).join("\n")}`,
        { cause: e },
      );
    } finally {
      for (const p of peers) await p.close();
      for (const s of servers) await s.proc.close();
      try {
        coturn.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await coturn.status;
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
));
