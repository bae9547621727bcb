/**
 * Port mapping against a real router daemon: Debian's `miniupnpd-nftables` 2.3.1 on a
 * symmetric NAT router in the NAT lab. The {@link PortMapper} runs on a real UDP socket in a
 * LAN host (`tests/support/portmap_child.ts`) with one protocol at a time (PCP, NAT-PMP, UPnP
 * IGD), then all three at once. Each must get a mapping on the router's WAN address, a
 * datagram from the Internet to that address must then reach the host (and its answer come
 * back from the mapped endpoint), and stopping must delete the mapping from the router.
 *
 * The router's WAN side uses 100.200.0.0/24 rather than the lab's usual 203.0.113.0/24:
 * miniupnpd 2.3.1 treats documentation ranges as reserved and then refuses every mapping.
 * There is no route out of the lab, so the addresses never meet the real network.
 *
 * A second test runs the product: `p2p join` behind that router gets a mapping (and says so),
 * and a peer behind another symmetric NAT then reaches it directly; with `--no-portmap` the
 * pair stays relayed.
 *
 * Needs the lab (root, `ip`, `nft`, `conntrack`) and `miniupnpd` (Debian package
 * `miniupnpd-nftables`); otherwise skipped with the reason, or failed under `CI=true`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Host, labToolTest, NatLab, type Router, UdpTool } from "../support/natlab.ts";
import { P2pProcess, prepareProduct, startPeer, startServer } from "../support/proc.ts";
import { dnatRules, startMiniupnpd } from "../support/miniupnpd.ts";

const CHILD = fileURLToPath(new URL("../support/portmap_child.ts", import.meta.url));
const LAN = "192.168.77";

interface Outcome {
  protocol: string;
  external: string;
  ms: number;
}

/** Runs the mapper with `protocols` in `host`; checks mapping, traffic, deletion. */
async function mapAndReach(
  lab: NatLab,
  router: Router,
  host: Host,
  outside: UdpTool,
  protocols: string,
): Promise<Outcome> {
  const t0 = performance.now();
  const child = new P2pProcess([
    Deno.execPath(),
    "run",
    "-A",
    CHILD,
    "--gateway",
    `${LAN}.1`,
    "--local",
    host.ip,
    "--protocols",
    protocols,
  ], { netns: host.ns, label: `mapper ${protocols}` });
  try {
    const bound = await child.waitFor((e) => e.event === "bound", 15_000, "bound");
    const m = await child.waitFor(
      (e) => e.event === "mapped" || e.event === "none",
      15_000,
      "a mapping",
    );
    const ms = performance.now() - t0;
    assert.equal(m.event, "mapped", `${protocols}: ${child.describe()}`);
    const external = String(m.external);
    assert.equal(external.split(":")[0], router.wanIp, `${protocols}: on the WAN address`);
    if (!protocols.includes(",")) assert.equal(m.protocol, protocols);
    assert.equal((await dnatRules(lab, router)).length >= 1, true, "miniupnpd added a rule");
    // The Internet reaches the host through the mapping, and the answer comes back from it.
    const text = `hello-${protocols}`;
    await outside.send(external, text);
    const got = await child.waitFor((e) => e.event === "recv" && e.text === text, 5000, text);
    assert.equal(String(got.from).split(":")[0], outside.addrs[0]!.split(":")[0]);
    await outside.recv(`reply:${text}`, 5000, external);
    // Stopping deletes the mapping on the router.
    await child.send("stop");
    const stopped = await child.waitFor((e) => e.event === "stopped", 10_000, "stopped");
    assert.equal(stopped.idle, true, "every deletion was answered");
    assert.deepEqual(await dnatRules(lab, router), [], `${protocols}: mapping deleted`);
    assert.ok(Number(bound.port) > 0);
    return { protocol: String(m.protocol), external, ms };
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${child.describe()}`);
  } finally {
    await child.close();
  }
}

Deno.test(labToolTest(
  "portmap lab: PCP, NAT-PMP and UPnP each get a mapping from miniupnpd; the Internet then reaches the host; stop deletes it",
  ["miniupnpd"],
  "miniupnpd-nftables",
  async () => {
    await using lab = await NatLab.create({ publicPrefix: "100.200.0" });
    const router = await lab.addRouter({ nat: "symmetric", name: "gw", lanPrefix: LAN });
    const host = await lab.addHost(router, "h");
    const net = await lab.addPublicHost("net");
    const dir = await Deno.makeTempDir({ prefix: "p2p-portmap-lab-" });
    let daemon: P2pProcess | undefined;
    const outside = await UdpTool.start(net, [`${net.ip}:0`], { label: "internet" });
    try {
      daemon = await startMiniupnpd(lab, router, dir);
      const results: Outcome[] = [];
      for (const p of ["pcp", "natpmp", "upnp", "pcp,natpmp,upnp"]) {
        results.push(await mapAndReach(lab, router, host, outside, p));
      }
      assert.equal(results[3]!.protocol, "pcp", "PCP is preferred when all answer");
      console.log(
        "portmap lab:",
        results.map((r) => `${r.protocol} ${r.external} in ${Math.round(r.ms)} ms`).join("; "),
      );
    } catch (e) {
      const log = daemon ? daemon.describe() : "(miniupnpd not started)";
      throw new Error(`${(e as Error).message}\n--- miniupnpd ---\n${log}`);
    } finally {
      await outside.close();
      await daemon?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
));

Deno.test(labToolTest(
  "portmap lab: symmetric NAT with port mapping ↔ symmetric NAT goes direct; with --no-portmap it stays relayed",
  ["miniupnpd"],
  "miniupnpd-nftables",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create({ publicPrefix: "100.200.0" });
    const router = await lab.addRouter({ nat: "symmetric", name: "gw", lanPrefix: LAN });
    const host = await lab.addHost(router, "a");
    const other = await lab.addRouter({ nat: "symmetric", name: "sym" });
    const hostB = await lab.addHost(other, "b");
    const srvHost = await lab.addPublicHost("srv");
    const dir = await Deno.makeTempDir({ prefix: "p2p-portmap-lab-" });
    let daemon: P2pProcess | undefined;
    const server = await startServer({ host: srvHost.ip, port: 7777, netns: srvHost.ns });
    const procs: P2pProcess[] = [];
    try {
      daemon = await startMiniupnpd(lab, router, dir);
      for (const portmap of [true, false]) {
        const room = portmap ? "mapped" : "unmapped";
        const extra = portmap ? [] : ["--no-portmap"];
        const a = startPeer({
          server: server.addr,
          room,
          name: "a",
          netns: host.ns,
          extraArgs: extra,
        });
        const b = startPeer({ server: server.addr, room, name: "b", netns: hostB.ns });
        procs.push(a, b);
        const t0 = performance.now();
        if (portmap) {
          const n = await a.waitFor(
            (e) => e.event === "notice" && e.kind === "portmap",
            10_000,
            "the port mapping notice",
          );
          assert.match(String(n.message), new RegExp(`\\(PCP\\): ${router.wanIp}:\\d+ → you`));
          const direct = await b.waitFor(
            (e) => e.event === "peer" && e.name === "a" && e.path === "direct",
            20_000,
            "b reaches a directly",
          );
          assert.match(String(direct.addr), new RegExp(`^${router.wanIp}:`));
          await a.waitFor(
            (e) => e.event === "peer" && e.name === "b" && e.path === "direct",
            10_000,
            "a direct",
          );
          console.log(`portmap lab: direct after ${Math.round(performance.now() - t0)} ms`);
          await a.closeStdin();
          assert.equal(await a.wait(10_000), 0);
          assert.deepEqual(await dnatRules(lab, router), [], "the mapping was deleted on exit");
        } else {
          await b.waitFor(
            (e) => e.event === "peer" && e.name === "a" && e.path === "relay",
            20_000,
            "relayed",
          );
          await new Promise((r) => setTimeout(r, 3000));
          assert.equal(
            b.eventsOf("peer").filter((e) => e.name === "a" && e.path === "direct").length,
            0,
            "symmetric ↔ symmetric without a mapping stays relayed",
          );
          assert.equal(
            a.eventsOf("notice").filter((e) => e.kind === "portmap").length,
            0,
          );
          assert.deepEqual(await dnatRules(lab, router), [], "--no-portmap asked for nothing");
        }
      }
    } catch (e) {
      const log = [daemon?.describe(), ...procs.map((p) => p.describe())].join("\n");
      throw new Error(`${(e as Error).message}\n${log}`);
    } finally {
      await Promise.all(procs.map((p) => p.close()));
      await server.proc.close();
      await daemon?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
));
