/**
 * What one cluster server keeps per member of another server, in process: `--members` records
 * of another server (rooms of 10, none with a member of this server, so all kept compact) fed to
 * one registry as MEMBERS messages, then its V8 heap and RSS growth per member after two full
 * collections (run with `--v8-flags=--expose-gc`). RSS includes the heap V8 keeps committed
 * after collecting what decoding left behind; the heap in use is what the records cost.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/cluster_held.ts [10000]
 * ```
 *
 * @module
 */
import { DEFAULT_CLUSTER } from "../lib/server/cluster.ts";
import { type ClusterRecord, ClusterType, encodeCluster } from "../lib/server/cluster_wire.ts";
import { Registry } from "../lib/server/registry.ts";
import { testRoom } from "../tests/support/hello.ts";
import { seededRandom } from "../tests/support/prng.ts";

const N = Number(Deno.args[0] ?? 10000);
const r = new Registry({ maxPeers: 100000 }, seededRandom(1));
r.joinCluster({ ...DEFAULT_CLUSTER, server: new Uint8Array(8).fill(1), key: null, endpoints: [] });
r.handleEngine(1000, true);
while (r.pollPublish());
const rooms = Array.from({ length: Math.ceil(N / 10) }, (_, i) => testRoom(`cap-${i}`).publicKey);
const gc = (globalThis as unknown as { gc: () => void }).gc;
let seq = 1;
const msgs: Uint8Array[] = [];
for (let i = 0; i < N; i += 256) {
  const records: ClusterRecord[] = [];
  for (let j = i; j < Math.min(N, i + 256); j++) {
    const id = new Uint8Array(8);
    new DataView(id.buffer).setUint32(4, j + 1);
    records.push({
      id,
      room: rooms[Math.floor(j / 10)]!,
      nameTag: new Uint8Array(8).fill(j & 255),
      owner: new Uint8Array(16),
      inc: new Uint8Array(8).fill(3),
      flags: 0,
      moves: 0,
      addr: { hostname: `127.1.0.${(j % 100) + 1}`, port: 1000 + j },
      privateEndpoints: [{ hostname: "10.0.0.2", port: 4000 }],
    });
  }
  msgs.push(
    encodeCluster({
      server: new Uint8Array(8).fill(2),
      seq: seq++,
      msg: { type: ClusterType.Members, snapshot: 0, last: false, records },
    }, null),
  );
}
gc();
gc();
const h0 = Deno.memoryUsage().heapUsed, r0 = Deno.memoryUsage().rss;
const t0 = performance.now();
for (const m of msgs) r.handleCluster(1000, m);
const usPerMember = (performance.now() - t0) * 1000 / N;
while (r.pollPublish());
gc();
gc();
const st = r.cluster!.stats;
console.log(
  JSON.stringify({
    N,
    held: st.remoteMembers,
    full: st.remoteRecords,
    usPerMember,
    heapPerMember: (Deno.memoryUsage().heapUsed - h0) / N,
    rssPerMember: (Deno.memoryUsage().rss - r0) / N,
  }),
);
