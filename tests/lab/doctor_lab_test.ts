/**
 * `p2p doctor --json` in the NAT lab (`support/natlab.ts`), behind a router of every type, a
 * hairpinning router, two carrier-grade NATs (a home router behind a carrier's), on the public
 * segment, and behind a router whose UDP mappings expire after 3 s (`--lifetime`). The server
 * is a `p2p serve` with `--alt-host` and `--alt-port` on a public lab host. The lab knows the
 * truth: the router types (checked by `nat_test.ts`'s self-check), the public mapping from the
 * outermost router's conntrack table, whether hairpinning is on, the mapping timeout. Every
 * cell runs once, all at the same time.
 *
 * Needs the lab (root, `ip`, `nft`, `conntrack`); otherwise skipped with the reason, or failed
 * under `CI=true`.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Behaviour, DoctorReport } from "../../lib/nat/doctor.ts";
import { type Host, labTest, NatLab, type NatType, type Router } from "../support/natlab.ts";
import { P2pProcess, prepareProduct, type RunningServer, startServer } from "../support/proc.ts";

const EI: Behaviour = "endpoint-independent";
const AD: Behaviour = "address-dependent";
const APD: Behaviour = "address-and-port-dependent";

/** Mapping and filtering of each lab router type (RFC 4787 terms). */
const BEHAVIOUR: Record<NatType, { mapping: Behaviour; filtering: Behaviour }> = {
  "public": { mapping: EI, filtering: EI },
  "full-cone": { mapping: EI, filtering: EI },
  "address-restricted": { mapping: EI, filtering: AD },
  "port-restricted": { mapping: EI, filtering: APD },
  "symmetric": { mapping: APD, filtering: APD },
};

const ORDER = [EI, AD, APD];
const stricter = (a: Behaviour, b: Behaviour) => ORDER.indexOf(a) >= ORDER.indexOf(b) ? a : b;

/** What the traversal matrix (docs/nat-matrix.md) says a NAT is relayed with. */
function relayedWith(mapping: Behaviour, filtering: Behaviour): string[] {
  return mapping === EI || filtering === EI ? [] : ["symmetric"];
}

/** The start of the verdict for a NAT relayed with `relayed`. */
function verdictStart(relayed: string[]): RegExp {
  if (relayed.length === 0) return /^direct with peers behind any common NAT/;
  return /^direct with peers behind most NATs .*; relayed with peers behind symmetric NATs/;
}

interface Cell {
  name: string;
  /** Routers from the host's own outwards (empty: public). */
  routers: Router[];
  host: Host;
  args: string[];
}

/**
 * The public `IP:PORT` the outermost router mapped for UDP to `dst` (`IP:PORT`): the reply
 * tuple's destination in its conntrack table. Throws unless there is exactly one such flow.
 */
async function conntrackMapping(lab: NatLab, router: Router, dst: string): Promise<string> {
  const [dstIp, dstPort] = dst.split(":");
  const out = await lab.execCheck(router.ns!, "conntrack", "-L", "-p", "udp");
  const found = new Set<string>();
  for (const line of out.split("\n")) {
    const dsts = [...line.matchAll(/dst=(\S+)/g)].map((m) => m[1]);
    const dports = [...line.matchAll(/dport=(\d+)/g)].map((m) => m[1]);
    if (dsts[0] === dstIp && dports[0] === dstPort && dsts[1]) found.add(`${dsts[1]}:${dports[1]}`);
  }
  assert.equal(found.size, 1, `one conntrack flow to ${dst} on ${router.name}:\n${out}`);
  return [...found][0]!;
}

/**
 * Lets the bridge that stands for `router`'s LAN switch send a frame back out of the port it
 * came in on. The lab's routers see LAN traffic through br_netfilter, which bridges a
 * hairpinned datagram instead of routing it; without this a host's datagram to its own public
 * address dies in the bridge (a router's switch and CPU port do not have that problem).
 * `p2p doctor` tests hairpinning from a second socket of the same host, so it needs this.
 */
async function bridgeHairpin(lab: NatLab, router: Router): Promise<void> {
  const out = await lab.execCheck(router.ns!, "ip", "-j", "link", "show", "master", "lan0");
  for (const { ifname } of JSON.parse(out) as { ifname: string }[]) {
    await lab.execCheck(
      router.ns!,
      "ip",
      "link",
      "set",
      "dev",
      ifname,
      "type",
      "bridge_slave",
      "hairpin",
      "on",
    );
  }
}

Deno.test(labTest(
  "doctor lab: p2p doctor --json behind every router type, CGNAT and hairpin",
  async () => {
    await prepareProduct(); // Namespaces have no route to a registry: cache dependencies first.
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const altIp = await lab.addAddress(srv);
    const cells: Cell[] = [];
    const fast = ["--timeout", "1"]; // Answers in the lab take well under a millisecond.
    cells.push({ name: "public", routers: [], host: await lab.addHost(null, "hpub"), args: [] });
    for (
      const nat of ["full-cone", "address-restricted", "port-restricted", "symmetric"] as const
    ) {
      const short = nat.split("-").map((w) => w[0]).join("");
      // Hairpinning on one router, so both answers are seen.
      const router = await lab.addRouter({
        nat,
        name: `r${short}`,
        hairpin: nat === "address-restricted",
      });
      const host = await lab.addHost(router, `h${short}`);
      if (router.options.hairpin) await bridgeHairpin(lab, router);
      cells.push({ name: nat, routers: [router], host, args: fast });
    }
    for (
      const [home, carrier, i] of [
        ["full-cone", "port-restricted", 1],
        ["port-restricted", "symmetric", 2],
      ] as const
    ) {
      const cg = await lab.addRouter({ nat: carrier, name: `cg${i}`, lanPrefix: `100.64.${i}` });
      const r = await lab.addRouter({ nat: home, name: `home${i}`, upstream: cg });
      cells.push({
        name: `${home} behind a ${carrier} CGNAT`,
        routers: [r, cg],
        host: await lab.addHost(r, `hcg${i}`),
        args: fast,
      });
    }
    const rlt = await lab.addRouter({ nat: "port-restricted", name: "rlt", udpTimeoutSec: 3 });
    cells.push({
      name: "port-restricted, 3 s UDP timeout",
      routers: [rlt],
      host: await lab.addHost(rlt, "hlt"),
      args: [...fast, "--lifetime", "10"],
    });

    let server: RunningServer | undefined;
    const procs: P2pProcess[] = [];
    try {
      server = await startServer({
        host: srv.ip,
        port: 3478,
        netns: srv.ns,
        label: "server",
        extraArgs: ["--alt-host", altIp, "--alt-port", "3479"],
      });
      const runs = await Promise.all(cells.map(async (c) => {
        const proc = P2pProcess.p2p(
          ["doctor", "--server", `${srv.ip}:3478`, "--json", ...c.args],
          { netns: c.host.ns, label: `doctor@${c.name}` },
        );
        procs.push(proc);
        const code = await proc.wait(60_000);
        await proc.close();
        const last = proc.nonJsonLines[proc.nonJsonLines.length - 1] ?? "";
        let report: DoctorReport | null = null;
        try {
          report = JSON.parse(last) as DoctorReport;
        } catch {
          // reported below
        }
        return { cell: c, code, report, proc };
      }));

      const problems: string[] = [];
      for (const { cell, code, report: r, proc } of runs) {
        const check = (what: string, got: unknown, want: unknown) => {
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            problems.push(
              `${cell.name}: ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`,
            );
          }
        };
        if (code !== 0 || r === null) {
          problems.push(`${cell.name}: exit ${code}, no report\n${proc.describe(2000)}`);
          continue;
        }
        const types = cell.routers.map((x) => x.nat);
        let truth = BEHAVIOUR.public;
        for (const t of types) {
          truth = {
            mapping: stricter(truth.mapping, BEHAVIOUR[t].mapping),
            filtering: stricter(truth.filtering, BEHAVIOUR[t].filtering),
          };
        }
        const localPort = r.local?.split(":")[1];
        const outer = cell.routers[cell.routers.length - 1];
        let publicTruth: string | null = `${cell.host.ip}:${localPort}`;
        if (outer && !cell.args.includes("--lifetime")) {
          publicTruth = await conntrackMapping(lab, outer, `${srv.ip}:3478`);
        } else if (outer) {
          publicTruth = null; // Expired by now (3 s): only the address is checked.
          check("public address", r.public?.split(":")[0], outer.wanIp);
        }
        const hairpin = cell.routers.length === 0 ||
          (cell.routers.length === 1 && cell.routers[0]!.options.hairpin === true);
        const relayed = relayedWith(truth.mapping, truth.filtering);
        const line = `  ${cell.name}: mapping ${r.mapping}, filtering ${r.filtering}, ` +
          `port kept ${r.port_preserved}, hairpin ${r.hairpin}, lifetime ${r.lifetime_s}` +
          `..${r.lifetime_expired_s} s; ${r.verdict}`;
        console.log(line);
        check("udp", r.udp, true);
        check("rfc5780", r.rfc5780, true);
        check("mapping", r.mapping, truth.mapping);
        check("filtering", r.filtering, truth.filtering);
        if (publicTruth !== null) {
          check("public", r.public, publicTruth);
          check("port_preserved", r.port_preserved, publicTruth.split(":")[1] === localPort);
        }
        if (cell.routers.every((x) => x.nat !== "symmetric")) {
          check("port_preserved (no symmetric NAT on the way)", r.port_preserved, true);
        }
        check("hairpin", r.hairpin, hairpin);
        check("relayed_with", r.relayed_with, relayed);
        if (!verdictStart(relayed).test(r.verdict)) {
          problems.push(
            `${cell.name}: verdict "${r.verdict}" does not match ${verdictStart(relayed)}`,
          );
        }
        if (cell.args.includes("--lifetime")) {
          // The mapping lasts 3 s: the lower bound must not exceed it, the expiry not precede it.
          const lo = r.lifetime_s, hi = r.lifetime_expired_s;
          if (lo === null || hi === null || lo > 3.2 || lo < 1 || hi < 2.5 || hi > 5) {
            problems.push(`${cell.name}: lifetime ${lo}..${hi} s does not bracket 3 s`);
          }
          if (!/--keepalive/.test(r.verdict)) problems.push(`${cell.name}: no keepalive advice`);
        } else {
          check("lifetime_s", r.lifetime_s, null);
        }
      }
      if (problems.length) {
        throw new Error(problems.join("\n") + "\n\n" + server.proc.describe(2000));
      }
      assert.equal(server.proc.exitCode, null, "the server still runs");
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(`${msg}\n\n${await lab.diagnostics()}`, { cause: e });
    } finally {
      for (const p of procs) await p.close();
      await server?.proc.close();
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
));
