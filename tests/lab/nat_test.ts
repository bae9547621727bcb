/**
 * End-to-end NAT traversal tests in a network-namespace lab (see `support/natlab.ts`).
 *
 * 1. `natlab self-check`: validates the lab itself with a tiny UDP tool (no p2p): mapping and
 *    filtering behaviour of every NAT type, and hole punching between two port-restricted NATs.
 *
 * The p2p cases (port-restricted pair goes direct, symmetric pair relays, and the rest of the
 * matrix) are in `nat_matrix_test.ts`.
 *
 * Needs root, `ip`, `nft` and `conntrack`; otherwise skipped (or failed when `CI=true`).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Host,
  labTest,
  NatLab,
  type NatType,
  type Router,
  UdpTool,
} from "../support/natlab.ts";

function hostOf(addr: unknown): string {
  assert.equal(typeof addr, "string", `expected "IP:PORT", got ${JSON.stringify(addr)}`);
  const s = addr as string;
  return s.slice(0, s.lastIndexOf(":"));
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "";
}

// -------------------------------------------------------------------------------------------
// Lab self-check (no p2p involved)

interface Expectation {
  /** Same public mapping for different destinations (endpoint-independent mapping). */
  eim: boolean;
  /** Unsolicited packet from another IP gets in. */
  fromOtherIp: boolean;
  /** Unsolicited packet from the contacted IP but another port gets in. */
  fromOtherPort: boolean;
}

const EXPECTED: Record<Exclude<NatType, "public">, Expectation> = {
  "full-cone": { eim: true, fromOtherIp: true, fromOtherPort: true },
  "address-restricted": { eim: true, fromOtherIp: false, fromOtherPort: true },
  "port-restricted": { eim: true, fromOtherIp: false, fromOtherPort: false },
  "symmetric": { eim: false, fromOtherIp: false, fromOtherPort: false },
};

Deno.test(
  labTest("natlab self-check: NAT mapping/filtering and punching with a UDP tool", async () => {
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const other = await lab.addPublicHost("other");
    const natted: Array<{ nat: Exclude<NatType, "public">; router: Router; host: Host }> = [];
    for (const nat of Object.keys(EXPECTED) as Array<Exclude<NatType, "public">>) {
      const short = nat.split("-").map((w) => w[0]).join("");
      const router = await lab.addRouter({ nat, name: `r${short}` });
      natted.push({ nat, router, host: await lab.addHost(router, `h${short}`) });
    }
    const r2 = await lab.addRouter({ nat: "port-restricted", name: "rpr2" });
    const h2 = await lab.addHost(r2, "hpr2");

    // Reflectors on srv:3478 and srv:3479, plain sockets on srv:3480 and other:3480.
    await using refl = await UdpTool.start(srv, [`${srv.ip}:3478`, `${srv.ip}:3479`], {
      reflect: true,
    });
    await using srvPlain = await UdpTool.start(srv, [`${srv.ip}:3480`]);
    await using otherPlain = await UdpTool.start(other, [`${other.ip}:3480`]);
    const [r3478, r3479] = refl.addrs as [string, string];

    const tools: UdpTool[] = [];
    try {
      for (const { nat, router, host } of natted) {
        const exp = EXPECTED[nat];
        const tool = await UdpTool.start(host, ["0.0.0.0:4000"]);
        tools.push(tool);
        const m1 = await tool.observe(r3478);
        const m2 = await tool.observe(r3479);
        assert.equal(hostOf(m1), router.wanIp, `${nat}: reflected address is the router WAN IP`);
        assert.equal(m1 === m2, exp.eim, `${nat}: mapping to :3478 ${m1}, to :3479 ${m2}`);

        // Unsolicited probes first; count the router's WAN drops until they are accounted for.
        const before = await lab.drops(router);
        const expectDrops = (exp.fromOtherIp ? 0 : 1) + (exp.fromOtherPort ? 0 : 1);
        await otherPlain.send(m1, "probe-other-ip");
        await srvPlain.send(m1, "probe-other-port");
        if (exp.fromOtherIp) await tool.recv("probe-other-ip", 3000);
        if (exp.fromOtherPort) await tool.recv("probe-other-port", 3000);
        let drops = before;
        const until = Date.now() + 3000;
        while ((drops = await lab.drops(router)) < before + expectDrops && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(drops - before, expectDrops, `${nat}: WAN drops for the unsolicited probes`);
        // The contacted endpoint always gets through.
        await refl.send(m1, "probe-contacted", 0);
        await tool.recv("probe-contacted", 3000, r3478);
        const got = tool.received().filter((t) => t.startsWith("probe-"));
        const want = [
          ...(exp.fromOtherIp ? ["probe-other-ip"] : []),
          ...(exp.fromOtherPort ? ["probe-other-port"] : []),
          "probe-contacted",
        ];
        assert.deepEqual(got.sort(), want.sort(), `${nat}: probes received`);
      }

      // Hole punching between two port-restricted NATs via their reflected mappings.
      const a = tools[natted.findIndex((n) => n.nat === "port-restricted")];
      assert.ok(a);
      const b = await UdpTool.start(h2, ["0.0.0.0:4000"]);
      tools.push(b);
      const ma = await a.observe(r3478);
      const mb = await b.observe(r3478);
      assert.equal(hostOf(mb), r2.wanIp);
      const until = Date.now() + 5000;
      let round = 0;
      while (!(a.received(mb).length && b.received(ma).length)) {
        assert.ok(Date.now() < until, "punching between two port-restricted NATs timed out");
        await a.send(mb, `punch-a-${round}`);
        await b.send(ma, `punch-b-${round}`);
        round++;
        await Promise.race([
          a.recv(`punch-b-${round - 1}`, 200, mb).catch(() => {}),
          b.recv(`punch-a-${round - 1}`, 200, ma).catch(() => {}),
        ]);
      }
    } catch (e) {
      throw new Error(
        `${firstLine(e)}\n\n${await lab.diagnostics()}\n\n` +
          tools.map((t) => t.proc.describe()).join("\n"),
        { cause: e },
      );
    } finally {
      for (const t of tools) await t.close();
    }
  }),
);
