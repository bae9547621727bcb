/**
 * The CPU a file transfer costs in p2p's own code, without sockets or a scheduler in the way:
 * two real {@link Client}s (Noise links, ChaCha20-Poly1305, the file-transfer core and the
 * codecs) in one process on the simulated network (`tests/support/sim.ts`, loopback-like
 * latency, no loss), the sender's disk reads and the receiver's writes answered from memory.
 * Everything runs synchronously on the main thread, whose CPU time (Linux schedstat, so a busy
 * machine's other work does not count) is what both peers' code took, the simulator's share
 * included. Prints CPU µs per FILE_DATA datagram and per MB, and the largest heap seen.
 *
 * `deno run -A bench/file_stack.ts [--mb 20] [--runs 3]`; with `--cpu-prof` a V8 profile of
 * the run (`bench/profile_summary.ts` reads it).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Sha256 } from "../lib/crypto/sha256.ts";
import { leafHash, MerkleTree } from "../lib/files/merkle.ts";
import { chunkShiftFor } from "../lib/io/file_store.ts";
import type { FileOp } from "../lib/files/file_outputs.ts";
import { FILE_BLOCK } from "../lib/wire/file_frame.ts";
import { threadCpuMs } from "./support.ts";
import { addPeer, addServer, SimNet, type SimPeer } from "../tests/support/sim.ts";

const { values: ARGS } = parseArgs({
  args: Deno.args,
  options: { mb: { type: "string", default: "20" }, runs: { type: "string", default: "3" } },
});

/** One transfer of `size` random bytes; returns ms of CPU, datagrams and the heap's peak. */
function run(
  size: number,
  seed: number,
): { ms: number; packets: number; heap: number; acks: number } {
  const net = new SimNet(seed, { latency: 0.05 });
  addServer(net);
  const a = addPeer(net, "alice", { hostname: "192.0.2.10", port: 1010 });
  const b = addPeer(net, "bob", { hostname: "192.0.2.20", port: 1020 });
  const met = (p: SimPeer, n: string) => p.lastPath(n)?.path === "direct";
  net.runUntilTrue(() => met(a, "bob") && met(b, "alice"));
  // The simulator logs every datagram; a long transfer would keep them all.
  const log = net.log;
  const data = new Uint8Array(size);
  for (let o = 0; o < size; o += 65536) crypto.getRandomValues(data.subarray(o, o + 65536));
  const shift = chunkShiftFor(size), chunk = 2 ** shift;
  const whole = new Sha256(), leaves: Uint8Array[] = [];
  for (let pos = 0; pos < size; pos += chunk) {
    const c = data.subarray(pos, Math.min(size, pos + chunk));
    whole.update(c);
    leaves.push(leafHash(c));
  }
  const tree = new MerkleTree(leaves);
  const offer = {
    id: net.bytes(8),
    name: "file.bin",
    size,
    chunkShift: shift,
    sha256: whole.digest(),
    root: tree.root,
  };
  let written = 0, done = false, heap = 0;
  const live: number[] = [];
  const serve = (p: SimPeer) => {
    const ops: FileOp[] = [];
    for (let op = p.client.files.pollOp(); op; op = p.client.files.pollOp()) ops.push(op);
    for (const op of ops) {
      const f = p.client;
      if (op.op === "read") {
        const bytes = data.slice(op.position, op.position + op.length);
        f.fileStep(net.now, (x) => x.core.handleRead(op.id, op.chunk, bytes));
      } else if (op.op === "write") {
        written += op.data.length;
        f.fileStep(net.now, (x) => x.core.handleWritten(op.id, op.chunk, true, net.now));
      } else if (op.op === "finish") {
        f.fileStep(net.now, (x) => x.core.handleFinished(op.id, { ok: true, path: "/x" }));
      }
    }
    for (let e = p.client.pollEvent(); e; e = p.client.pollEvent()) {
      if (e.type !== "file") continue;
      if (e.state === "offered") p.client.fileStep(net.now, (x) => x.core.accept(e.id, net.now));
      if (e.state === "done" && e.from !== undefined) done = true;
    }
  };
  const t0 = mainCpuMs();
  a.client.fileStep(net.now, (f) => f.offer(net.now, offer, tree, f.recipients(["bob"])));
  let rounds = 0, nextGc = 0;
  while (!done) {
    net.run(0.1);
    rounds++;
    log.length = 0;
    serve(a);
    serve(b);
    heap = Math.max(heap, Deno.memoryUsage().heapUsed);
    // With --v8-flags=--expose-gc: the live heap now and then (growth is retention, not garbage).
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc && written >= nextGc) {
      nextGc += 10e6;
      gc();
      live.push(Math.round(Deno.memoryUsage().heapUsed / 2 ** 20));
    }
    if (net.now > 600_000) throw new Error(`no end: ${written} of ${size} bytes written`);
  }
  const ms = mainCpuMs() - t0;
  if (live.length > 0) console.log(`live heap after GC along the transfer, MB: ${live.join(" ")}`);
  const packets = a.client.files.core.senderOf(keyOf(a, "bob"))?.stats.packets ??
    Math.ceil(size / FILE_BLOCK);
  const acks = b.client.files.core.receiverOf(keyOf(b, "alice"))?.acks ?? NaN;
  return { ms, packets, heap, acks };
}

/** CPU time of this process's main thread, ms. */
function mainCpuMs(): number {
  for (const [k, v] of threadCpuMs(Deno.pid)) if (k.endsWith(`/${Deno.pid}`)) return v;
  return NaN;
}

function keyOf(p: SimPeer, name: string): string {
  return p.client.files.recipients([name])[0]!.key;
}

const size = Math.round(Number(ARGS.mb) * 1e6);
const results: { ms: number; packets: number; heap: number; acks: number }[] = [];
for (let i = 0; i < Number(ARGS.runs); i++) {
  const r = run(size, 11 + i);
  results.push(r);
  console.log(
    `run ${i + 1}: ${(r.ms * 1000 / r.packets).toFixed(1)} µs per datagram, ${
      (r.ms * 1000 / (size / 1e6)).toFixed(0)
    } µs per MB, ${
      (size / 1e3 / r.ms).toFixed(1)
    } MB/s, ${r.packets} datagrams, ${r.acks} FILE_ACKs, heap ${
      (r.heap / 2 ** 20).toFixed(0)
    } MB, rss ${(Deno.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
  );
}
const us = results.map((r) => r.ms * 1000 / r.packets).sort((x, y) => x - y);
// The least is the best estimate of the code's own cost on a machine shared with others.
console.log(
  JSON.stringify({ name: "file_stack_us_per_datagram", min: us[0], median: us[us.length >> 1] }),
);
