/**
 * File transfer between real processes through the NAT lab's routers, every file's SHA-256
 * checked: two peers behind port-restricted NATs (hole punched: direct), two behind symmetric
 * NATs (relayed through the server, or direct if a birthday search wins).
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
  "file lab: a file through port-restricted NATs (direct) and through symmetric NATs",
  async () => {
    await prepareProduct();
    const dir = await Deno.makeTempDir({ prefix: "p2p-file-lab-" });
    await using lab = await NatLab.create();
    const srvHost = await lab.addPublicHost("srv");
    const r1 = await lab.addRouter({ nat: "port-restricted", name: "r1" });
    const r2 = await lab.addRouter({ nat: "port-restricted", name: "r2" });
    const r3 = await lab.addRouter({ nat: "symmetric", name: "r3" });
    const r4 = await lab.addRouter({ nat: "symmetric", name: "r4" });
    const hosts = {
      ann: await lab.addHost(r1, "ann"),
      ben: await lab.addHost(r2, "ben"),
      cat: await lab.addHost(r3, "cat"),
      dan: await lab.addHost(r4, "dan"),
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
    } finally {
      await Promise.all(peers.map((p) => p.close()));
      await server.proc.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
));
