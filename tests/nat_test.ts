/**
 * End-to-end NAT traversal tests in a network-namespace lab (see `support/natlab.ts`).
 *
 * 1. `natlab self-check`: validates the lab itself with a tiny UDP tool (no p2p): mapping and
 *    filtering behaviour of every NAT type, and hole punching between two port-restricted NATs.
 * 2. Two p2p peers behind port-restricted NATs connect directly; messages arrive exactly once
 *    and in order.
 * 3. Two p2p peers behind symmetric NATs fall back to the relay; same message guarantees.
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
} from "./support/natlab.ts";
import {
  type P2pEvent,
  type P2pProcess,
  prepareProduct,
  startPeer,
  startServer,
} from "./support/proc.ts";

const SERVER_PORT = 7000;
const CASE_TIMEOUT_MS = 30_000;
const MESSAGES_EACH_WAY = 20;

/** A wall-clock budget shared by all waits of one test case. */
class Deadline {
  #end: number;

  constructor(ms: number) {
    this.#end = Date.now() + ms;
  }

  /** Remaining milliseconds, capped at `cap` (never below 1). */
  left(cap = Infinity): number {
    return Math.max(1, Math.min(cap, this.#end - Date.now()));
  }
}

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

// -------------------------------------------------------------------------------------------
// p2p end to end

/**
 * Server on the public segment, alice and bob each behind its own `nat` router. Waits for both
 * to see the other on `path`, exchanges messages both ways, closes stdin and checks delivery.
 */
async function runPair(nat: NatType, path: "direct" | "relay"): Promise<void> {
  await prepareProduct(); // outside the budget: may compile or fetch dependencies once
  const deadline = new Deadline(CASE_TIMEOUT_MS);
  await using lab = await NatLab.create();
  const srvHost = await lab.addPublicHost("srv");
  const ra = await lab.addRouter({ nat, name: "ra" });
  const rb = await lab.addRouter({ nat, name: "rb" });
  const ha = await lab.addHost(ra, "alice");
  const hb = await lab.addHost(rb, "bob");

  const procs: P2pProcess[] = [];
  try {
    const server = await startServer({
      host: srvHost.ip,
      port: SERVER_PORT,
      netns: srvHost.ns,
      timeoutMs: deadline.left(15_000),
    });
    procs.push(server.proc);
    const room = `room-${nat}`;
    const alice = startPeer({ server: server.addr, room, name: "alice", netns: ha.ns });
    const bob = startPeer({ server: server.addr, room, name: "bob", netns: hb.ns });
    procs.push(alice, bob);
    const sides = [
      { me: alice, name: "alice", router: ra, other: "bob", otherRouter: rb },
      { me: bob, name: "bob", router: rb, other: "alice", otherRouter: ra },
    ] as const;

    try {
      // Registered, and the server saw each peer at its router's WAN address.
      const readies = await Promise.all(
        sides.map((s) => s.me.waitForEvent("ready", {}, deadline.left(15_000))),
      );
      sides.forEach((s, i) => {
        assert.equal(readies[i]?.name, s.name, `${s.name}: ready name`);
        assert.equal(hostOf(readies[i]?.public), s.router.wanIp, `${s.name}: ready.public`);
      });

      // Each side reaches the other on the expected path.
      const peerEvents = await Promise.all(sides.map((s) =>
        s.me.waitFor(
          (e) => e.event === "peer" && e.name === s.other && e.path === path,
          deadline.left(15_000),
          `peer ${s.other} on path ${path}`,
        )
      ));
      sides.forEach((s, i) => {
        const ev = peerEvents[i]!;
        if (path === "direct") {
          assert.equal(
            hostOf(ev.addr),
            s.otherRouter.wanIp,
            `${s.name}: direct addr of ${s.other}`,
          );
        }
      });

      // Messages both ways, interleaved.
      const texts = (from: string) =>
        Array.from({ length: MESSAGES_EACH_WAY }, (_, i) => `${from} says #${i + 1}`);
      for (let i = 0; i < MESSAGES_EACH_WAY; i++) {
        for (const s of sides) await s.me.send(texts(s.name)[i]!);
      }
      await Promise.all(sides.map((s) => {
        const last = texts(s.other).at(-1)!;
        return s.me.waitFor(
          (e) => e.event === "message" && e.from === s.other && e.text === last,
          deadline.left(),
          `last message from ${s.other}`,
        );
      }));

      // Leave: deliver what is queued, exit 0.
      await Promise.all(sides.map((s) => s.me.closeStdin()));
      const codes = await Promise.all(sides.map((s) => s.me.wait(deadline.left(10_000))));
      assert.deepEqual(codes, [0, 0], "both peers exit 0 after stdin is closed");

      for (const s of sides) {
        const paths = s.me.eventsOf("peer").filter((e) => e.name === s.other).map((e) => e.path);
        assert.equal(paths.at(-1), path, `${s.name}: final path to ${s.other} (all: ${paths})`);
        if (path === "relay") {
          assert.ok(!paths.includes("direct"), `${s.name}: no direct path through symmetric NATs`);
        }
        const got = s.me.eventsOf("message").map((e: P2pEvent) => ({ from: e.from, text: e.text }));
        const want = texts(s.other).map((text) => ({ from: s.other, text }));
        assert.deepEqual(got, want, `${s.name}: messages exactly once, in order`);
      }
    } catch (e) {
      const diag = [
        `*** ${nat} case failed: ${firstLine(e)} (details below and in the cause)`,
        await lab.conntrackDump(ra),
        await lab.conntrackDump(rb),
        alice.describe(8000),
        bob.describe(8000),
        server.proc.describe(4000),
      ].join("\n\n");
      throw new Error(diag, { cause: e });
    }
  } finally {
    for (const p of procs) await p.close();
  }
}

Deno.test(labTest("p2p: two peers behind port-restricted NATs connect directly", async () => {
  await runPair("port-restricted", "direct");
}));

Deno.test(labTest("p2p: two peers behind symmetric NATs fall back to the relay", async () => {
  await runPair("symmetric", "relay");
}));
