/**
 * File transfer between real processes through the NAT lab's routers, every file's SHA-256
 * checked: two peers behind port-restricted NATs (hole punched: direct), two behind symmetric
 * NATs (relayed through the server, or direct if a birthday search wins), and a port-restricted ↔
 * symmetric pair that goes direct by birthday probing first (the one-address server's second
 * port tells the symmetric side that its NAT is hard).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { labTest, NatLab } from "../support/natlab.ts";
import {
  type P2pEvent,
  type P2pProcess,
  prepareProduct,
  startPeer,
  startServer,
} from "../support/proc.ts";
import { fileBytes } from "../support/bytes.ts";

const WAIT = 60_000;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const done = (e: P2pEvent) => e.event === "file" && e.state === "done";
const peerShown = (name: string) => (e: P2pEvent) => e.event === "peer" && e.name === name;

Deno.test(labTest(
  "file lab: a file through port-restricted NATs (direct), symmetric NATs, and a birthday-punched path",
  async () => {
    await prepareProduct();
    const dir = await Deno.makeTempDir({ prefix: "p2p-file-lab-" });
    await using lab = await NatLab.create();
    const srvHost = await lab.addPublicHost("srv");
    const r1 = await lab.addRouter({ nat: "port-restricted", name: "r1" });
    const r2 = await lab.addRouter({ nat: "port-restricted", name: "r2" });
    const r3 = await lab.addRouter({ nat: "symmetric", name: "r3" });
    const r4 = await lab.addRouter({ nat: "symmetric", name: "r4" });
    const r5 = await lab.addRouter({ nat: "port-restricted", name: "r5" });
    const r6 = await lab.addRouter({ nat: "symmetric", name: "r6" });
    const hosts = {
      ann: await lab.addHost(r1, "ann"),
      ben: await lab.addHost(r2, "ben"),
      cat: await lab.addHost(r3, "cat"),
      dan: await lab.addHost(r4, "dan"),
      eve: await lab.addHost(r5, "eve"),
      fay: await lab.addHost(r6, "fay"),
    };
    const server = await startServer({ host: srvHost.ip, port: 7777, netns: srvHost.ns });
    const peers: P2pProcess[] = [];
    const join_ = (name: keyof typeof hosts, room: string, extra: string[] = []) => {
      const p = startPeer({
        server: server.addr,
        room,
        name,
        netns: hosts[name].ns,
        extraArgs: ["--port", "4000", ...extra],
      });
      peers.push(p);
      return p;
    };
    try {
      const data = fileBytes(3_000_000, 1);
      const path = join(dir, "lab.bin");
      await Deno.writeFile(path, data);
      const rx = (name: string) => ["--auto-accept", "--downloads", join(dir, name)];

      // Port-restricted ↔ port-restricted: punched, direct.
      const ann = join_("ann", "files-a");
      const ben = join_("ben", "files-a", rx("ben"));
      const toBen = await ann.waitFor(peerShown("ben"), 15_000, "ann sees ben");
      await ben.waitFor(peerShown("ann"), 15_000, "ben sees ann");
      assert.equal(toBen.path, "direct", ann.describe());
      await ann.send(`/send ${path}`);
      const got = await ben.waitFor(done, WAIT, "ben has the file");
      assert.equal(got.sha256, sha(data));
      assert.equal(sha(await Deno.readFile(String(got.path))), sha(data));

      // Symmetric ↔ symmetric: whatever path they get (relay or birthday-punched), the file.
      const cat = join_("cat", "files-b");
      const dan = join_("dan", "files-b", rx("dan"));
      const toDan = await cat.waitFor(peerShown("dan"), 15_000, "cat sees dan");
      await dan.waitFor(peerShown("cat"), 15_000, "dan sees cat");
      const small = data.subarray(0, 1_000_000);
      const smallPath = join(dir, "small.bin");
      await Deno.writeFile(smallPath, small);
      await cat.send(`/send ${smallPath}`);
      const got2 = await dan.waitFor(done, WAIT, "dan has the file");
      assert.equal(sha(await Deno.readFile(String(got2.path))), sha(small));
      const route = dan.eventsOf("file").find((e) => e.state === "progress")?.route ?? toDan.path;
      console.log(`symmetric ↔ symmetric: the file went ${route}`);

      // Port-restricted ↔ symmetric: relayed at first, then direct by birthday probing; the file
      // goes over the punched path.
      const eve = join_("eve", "files-c");
      const fay = join_("fay", "files-c", rx("fay"));
      const direct = (name: string) => (e: P2pEvent) => peerShown(name)(e) && e.path === "direct";
      await eve.waitFor(direct("fay"), 30_000, "eve has fay direct (birthday probing)");
      await fay.waitFor(direct("eve"), 30_000, "fay has eve direct");
      const mid = data.subarray(0, 2_000_000);
      const midPath = join(dir, "mid.bin");
      await Deno.writeFile(midPath, mid);
      await eve.send(`/send ${midPath}`);
      const got3 = await fay.waitFor(done, WAIT, "fay has the file");
      assert.equal(got3.sha256, sha(mid));
      assert.equal(sha(await Deno.readFile(String(got3.path))), sha(mid));
      // Every progress event said direct (a quick transfer may show none), and the path to eve
      // stayed direct throughout.
      const routes = fay.eventsOf("file").filter((e) => e.state === "progress").map((e) => e.route);
      assert.ok(routes.every((r) => r === "direct"), JSON.stringify(routes));
      const paths = fay.eventsOf("peer").filter((e) => e.name === "eve").map((e) => e.path);
      assert.equal(paths.at(-1), "direct", JSON.stringify(paths));
      console.log(`port-restricted ↔ symmetric: direct; ${routes.length} progress events`);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
      await server.proc.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
));
