/**
 * STUN on the rendezvous port against coturn's standard clients, in the NAT lab
 * (`support/natlab.ts`):
 *
 * - `turnutils_stunclient` behind a symmetric NAT (random public ports) reports exactly the
 *   mapping the router made, read from the router's conntrack table.
 * - With `--alt-host` and `--alt-port` on a public lab host, `turnutils_natdiscovery -m -f`
 *   (RFC 5780 mapping and filtering discovery) behind a router of every type, and on the public
 *   segment, reports the behaviour the router really has (the lab's routers are checked by
 *   `nat_test.ts`'s self-check).
 *
 * Needs the lab (root, `ip`, `nft`, `conntrack`) and coturn's tools (`apt-get install coturn`);
 * otherwise skipped with the reason, or failed under `CI=true`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Host, labToolTest, NatLab, type NatType, type Router } from "../support/natlab.ts";
import { prepareProduct, type RunningServer, startServer } from "../support/proc.ts";

/** RFC 4787 behaviours, as `turnutils_natdiscovery` names them. */
type Behaviour = "Endpoint Independent" | "Address Dependent" | "Address and Port Dependent";

const EXPECTED: Record<NatType, { mapping: Behaviour; filtering: Behaviour }> = {
  "public": { mapping: "Endpoint Independent", filtering: "Endpoint Independent" },
  "full-cone": { mapping: "Endpoint Independent", filtering: "Endpoint Independent" },
  "address-restricted": { mapping: "Endpoint Independent", filtering: "Address Dependent" },
  "port-restricted": { mapping: "Endpoint Independent", filtering: "Address and Port Dependent" },
  "symmetric": { mapping: "Address and Port Dependent", filtering: "Address and Port Dependent" },
};

const TOOLS = ["turnutils_stunclient", "turnutils_natdiscovery", "timeout"];

/** The verdict line `NAT with <behaviour> <kind>!` of natdiscovery's output, or null. */
function verdict(out: string, kind: "Mapping" | "Filtering"): Behaviour | null {
  const m = new RegExp(
    `NAT with (Endpoint Independent|Address and Port Dependent|Address Dependent) ${kind}`,
    "i",
  ).exec(out);
  if (!m) return null;
  const v = m[1]!.toLowerCase();
  return v.startsWith("endpoint")
    ? "Endpoint Independent"
    : v.includes("port")
    ? "Address and Port Dependent"
    : "Address Dependent";
}

/** Every `UDP reflexive addr: IP:PORT` turnutils_stunclient printed. */
function reflexive(out: string): string[] {
  return [...out.matchAll(/UDP reflexive addr:\s*(\d+\.\d+\.\d+\.\d+:\d+)/g)].map((m) => m[1]!);
}

/**
 * The public `IP:PORT` the router mapped for UDP from `host` to `dst` (`IP:PORT`): the reply
 * tuple's destination in its conntrack table. Throws unless there is exactly one such flow.
 */
async function conntrackMapping(lab: NatLab, router: Router, host: Host, dst: string) {
  const [dstIp, dstPort] = dst.split(":");
  const out = await lab.execCheck(router.ns!, "conntrack", "-L", "-p", "udp");
  const found = new Set<string>();
  for (const line of out.split("\n")) {
    const src = [...line.matchAll(/src=(\S+)/g)].map((m) => m[1]);
    const dsts = [...line.matchAll(/dst=(\S+)/g)].map((m) => m[1]);
    const dports = [...line.matchAll(/dport=(\d+)/g)].map((m) => m[1]);
    if (src[0] === host.ip && dsts[0] === dstIp && dports[0] === dstPort && dsts[1]) {
      found.add(`${dsts[1]}:${dports[1]}`);
    }
  }
  assert.equal(found.size, 1, `one conntrack flow ${host.ip} → ${dst}:\n${out}`);
  return [...found][0]!;
}

Deno.test(labToolTest(
  "stun lab: coturn's stunclient and natdiscovery against p2p serve behind every NAT type",
  TOOLS,
  "coturn",
  async (t) => {
    await prepareProduct(); // Namespaces have no route to a registry: cache dependencies first.
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const altIp = await lab.addAddress(srv);
    const clients: { nat: NatType; router: Router | null; host: Host }[] = [];
    for (const nat of Object.keys(EXPECTED) as NatType[]) {
      const short = nat.split("-").map((w) => w[0]).join("");
      const router = nat === "public" ? null : await lab.addRouter({ nat, name: `r${short}` });
      clients.push({ nat, router, host: await lab.addHost(router, `h${short}`) });
    }
    const servers: RunningServer[] = [];
    try {
      // A plain server (no --alt-*), and one for RFC 5780 discovery on a second address.
      const [plain, discovery] = await Promise.all([
        startServer({ host: srv.ip, port: 7777, netns: srv.ns, label: "server (plain)" }),
        startServer({
          host: srv.ip,
          port: 3478,
          netns: srv.ns,
          label: "server (alt)",
          extraArgs: ["--alt-host", altIp, "--alt-port", "3479"],
        }),
      ]);
      servers.push(plain, discovery);
      assert.deepEqual(discovery.proc.eventsOf("listening")[0]?.alt, [
        `${srv.ip}:3479`,
        `${altIp}:3478`,
        `${altIp}:3479`,
      ]);

      await t.step("stunclient behind a symmetric NAT reports the router's mapping", async () => {
        const c = clients.find((c) => c.nat === "symmetric")!;
        const r = await lab.exec(
          c.host.ns,
          "timeout",
          "10",
          "turnutils_stunclient",
          "-p",
          "7777",
          srv.ip,
        );
        const got = reflexive(r.stdout);
        assert.ok(got.length > 0, `no reflexive address (exit ${r.code}):\n${r.stdout}${r.stderr}`);
        const truth = await conntrackMapping(lab, c.router!, c.host, `${srv.ip}:7777`);
        assert.ok(truth.startsWith(`${c.router!.wanIp}:`), `mapped on the WAN address: ${truth}`);
        for (const addr of got) assert.equal(addr, truth, `stunclient said ${addr}`);
      });

      await t.step("natdiscovery -m -f: mapping and filtering of every router type", async () => {
        // All at once: the restricted types wait out two 3 s timeouts each.
        const runs = await Promise.all(clients.map(async (c) => {
          const local = c.router === null ? ["-L", c.host.ip] : [];
          const r = await lab.exec(
            c.host.ns,
            "timeout",
            "30",
            "turnutils_natdiscovery",
            "-m",
            "-f",
            ...local,
            "-p",
            "3478",
            srv.ip,
          );
          return { ...c, out: r.stdout + r.stderr, code: r.code };
        }));
        const problems: string[] = [];
        for (const run of runs) {
          const want = EXPECTED[run.nat];
          const got = {
            mapping: verdict(run.out, "Mapping"),
            filtering: verdict(run.out, "Filtering"),
          };
          const rfc5780 = /RFC 5780 response/.test(run.out);
          console.log(
            `  ${run.nat}: mapping ${got.mapping ?? "?"}, filtering ${got.filtering ?? "?"}`,
          );
          if (!rfc5780 || got.mapping !== want.mapping || got.filtering !== want.filtering) {
            problems.push(
              `${run.nat}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)} ` +
                `(exit ${run.code}, RFC 5780 responses: ${rfc5780})\n${run.out}`,
            );
          }
          if (run.nat === "public") {
            assert.match(run.out, /No NAT!/, `public host: no NAT\n${run.out}`);
          }
        }
        assert.deepEqual(problems, [], problems.join("\n\n"));
        const st = discovery.proc;
        assert.equal(st.exitCode, null, "the discovery server still runs");
      });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(
        `${msg}\n\n${await lab.diagnostics()}\n\n` +
          servers.map((s) => s.proc.describe(2000)).join("\n"),
        { cause: e },
      );
    } finally {
      for (const s of servers) await s.proc.close();
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
));
