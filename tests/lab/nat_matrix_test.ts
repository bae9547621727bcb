/**
 * The NAT traversal matrix as tests: every cell of `tests/support/matrix.ts`, run once, must
 * reach the path theory predicts, see the other side's real address on direct paths, and
 * deliver every message exactly once and in order. The table is printed at the end.
 *
 * Cells run one after another (each within `runCell`'s 60 s budget; the birthday-probing and
 * port-mapping cells start on the relay and need a few seconds more to go direct). A cell that
 * needs an external tool (miniupnpd) is skipped with the reason when it is missing, and fails
 * under `CI=true`.
 */
import assert from "node:assert/strict";
import { type CellResult, CELLS, runCell, textTable } from "../support/matrix.ts";
import { labTest, labToolTest, NatLab, UdpTool, waitUntil } from "../support/natlab.ts";
import { prepareProduct, startServer } from "../support/proc.ts";

const results: CellResult[] = [];

// The one-address cells run in one_address_lab_test.ts.
for (const cell of CELLS.filter((c) => c.server !== "one-address")) {
  const name = `nat matrix: ${cell.title} → ${cell.expect}${
    cell.upgrade ? ` (${cell.upgrade})` : ""
  }`;
  const fn = async () => {
    const r = await runCell(cell);
    results.push(r);
    if (r.error) throw new Error(r.error);
  };
  const options = { sanitizeResources: false, sanitizeOps: false };
  Deno.test(
    cell.needs
      ? labToolTest(name, cell.needs.tools, cell.needs.pkg, fn, options)
      : labTest(name, fn, options),
  );
}

// The whole table once every cell has run (visible in CI output).
globalThis.addEventListener("unload", () => {
  if (results.length > 0) console.log(`\nNAT matrix:\n${textTable(results)}\n`);
});

// The lab side of the port-mapping cell on its own, without p2p: miniupnpd on a symmetric router
// grants NAT-PMP and UPnP IGD mappings, and only mapped ports let outside traffic in.
Deno.test(labToolTest(
  "nat matrix lab: miniupnpd on a symmetric router maps ports by NAT-PMP and UPnP IGD",
  ["miniupnpd", "natpmpc", "upnpc"],
  "miniupnpd-nftables natpmpc miniupnpc",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const alt = await lab.addAddress(srv);
    const router = await lab.addRouter({ nat: "symmetric", name: "ra", portmap: true });
    const host = await lab.addHost(router, "alice");
    const server = await startServer({
      host: srv.ip,
      port: 7000,
      netns: srv.ns,
      extraArgs: ["--alt-host", alt, "--alt-port", "7001"],
    });
    try {
      await lab.startPortmap(router, server.addr);
      const gw = `${router.lanPrefix}.1`;
      const pmp = await lab.execCheck(
        host.ns,
        "natpmpc",
        "-g",
        gw,
        "-a",
        "40000",
        "40000",
        "udp",
        "60",
      );
      assert.match(pmp, /Mapped public port 40000 protocol UDP to local port 40000/);
      const igd = await lab.execCheck(
        host.ns,
        "upnpc",
        "-u",
        `http://${gw}:5000/rootDesc.xml`,
        "-a",
        host.ip,
        "40001",
        "40001",
        "UDP",
      );
      assert.match(igd, new RegExp(`external ${router.wanIp}:40001 UDP is redirected`));
      await using inside = await UdpTool.start(host, [
        "0.0.0.0:40000",
        "0.0.0.0:40001",
        "0.0.0.0:40002",
      ]);
      await using outside = await UdpTool.start(srv, [`${srv.ip}:5000`]);
      const dropsBefore = await lab.drops(router);
      for (const port of [40000, 40001, 40002]) {
        await outside.send(`${router.wanIp}:${port}`, `to ${port}`);
      }
      await inside.recv("to 40000", 3000, `${srv.ip}:5000`);
      await inside.recv("to 40001", 3000, `${srv.ip}:5000`);
      await waitUntil(
        async () => (await lab.drops(router)) > dropsBefore,
        3000,
        "the router dropping the unmapped port's datagram",
      );
      assert.deepEqual(inside.received().filter((t) => t === "to 40002"), []);
    } finally {
      await server.proc.close();
    }
  },
));
