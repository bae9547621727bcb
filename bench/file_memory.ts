/**
 * Memory during a large transfer (issue 19, "Measure": flat, below 100 MB RSS): a `p2p serve`
 * and two `p2p join` processes on loopback, the sender's `/send` of a 2 GB file (by default) to
 * an `--auto-accept` receiver. The resident set of the sender and of the receiver is sampled from
 * `/proc/PID/status` every 250 ms, from before the offer to the receiver's `done`; the run gives
 * up after `--timeout` seconds (reporting what it saw).
 *
 * Prints, for each process: RSS before, the largest during, the mean of the first and of the last
 * quarter of the transfer (flat: about equal), and the anonymous and file-backed parts at its
 * peak; then one JSON line per process (`files_memory_sender_rss_mb`, `..._receiver_...`: value
 * the largest RSS in MB, baseline the goal's 100 MB, ratio baseline ÷ value, goal 1).
 * The peers run with the V8 flags of `deno task join` and the binaries (`V8_FLAGS` in
 * scripts/compile_all.ts). `deno run -A bench/file_memory.ts [--mb 2000] [--timeout 600]
 * [--v8-flags FLAGS]`: FLAGS for both peers instead (`none`: V8's defaults), e.g.
 * `--optimize-for-size,--trace-gc` (the last full collections are then printed).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { Peer } from "./file_group.ts";
import { LO } from "./support.ts";
import { V8_FLAG_ARG } from "../lib/roles/v8_flags.ts";

const { values: ARGS } = parseArgs({
  args: Deno.args,
  options: {
    mb: { type: "string", default: "2000" },
    timeout: { type: "string", default: "600" },
    "v8-flags": { type: "string" },
  },
});

/** The goal: a peer's resident set stays below this many MB. */
const GOAL_MB = 100;

interface Sample {
  at: number;
  rss: number;
  anon: number;
  file: number;
}

/** `VmRSS`, `RssAnon` and `RssFile` of `pid`, MB (zeros when it cannot be read). */
function memOf(pid: number, at: number): Sample {
  let text = "";
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    // gone
  }
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0);
  return { at, rss: kb("VmRSS") / 1024, anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024 };
}

/** Writes `size` random bytes to `path`, 16 MB at a time (never the whole file in memory). */
async function randomFile(path: string, size: number): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(16 << 20);
  try {
    for (let done = 0; done < size;) {
      const n = Math.min(block.length, size - done);
      for (let o = 0; o < n; o += 65536) {
        crypto.getRandomValues(block.subarray(o, Math.min(n, o + 65536)));
      }
      let w = 0;
      while (w < n) w += await f.write(block.subarray(w, n));
      done += n;
    }
  } finally {
    f.close();
  }
}

function summary(name: string, before: Sample, xs: Sample[]) {
  const q = Math.max(1, Math.floor(xs.length / 4));
  const mean = (s: Sample[]) => s.reduce((a, b) => a + b.rss, 0) / Math.max(1, s.length);
  const peak = xs.reduce((a, b) => (b.rss > a.rss ? b : a), before);
  const line = `${name}: RSS ${before.rss.toFixed(0)} MB before, largest ${
    peak.rss.toFixed(0)
  } MB (anon ${peak.anon.toFixed(0)}, file ${peak.file.toFixed(0)}), mean ${
    mean(xs.slice(0, q)).toFixed(0)
  } MB over the first quarter, ${mean(xs.slice(-q)).toFixed(0)} MB over the last`;
  return { line, peak: peak.rss };
}

async function main(): Promise<void> {
  const size = Math.round(Number(ARGS.mb) * 1e6);
  const timeoutMs = Number(ARGS.timeout) * 1000;
  const dir = await Deno.makeTempDir({ prefix: "p2p-bench-memory-" });
  const server = new Peer(["serve", "--host", LO, "--port", "0", "--json"], {});
  const peers: Peer[] = [];
  try {
    const file = join(dir, "big.bin");
    console.error(`[bench] writing a ${ARGS.mb} MB file`);
    await randomFile(file, size);
    const addr = String((await server.wait((v) => v.event === "listening", 15_000, "server")).addr);
    const room = `memory-${crypto.randomUUID().slice(0, 8)}`;
    const peer = (name: string, extra: string[]) => {
      const home = Deno.makeTempDirSync({ dir, prefix: "home-" });
      const args = ["join", "--server", addr, "--room", room, "--name", name, "--json"];
      const v8 = ARGS["v8-flags"];
      const flags = v8 === undefined ? [V8_FLAG_ARG] : v8 === "none" ? [] : [`--v8-flags=${v8}`];
      const p = new Peer([...args, "--bind", LO, ...extra], {
        P2P_PASSPHRASE: `bench ${room}`,
        XDG_CONFIG_HOME: home,
      }, flags);
      peers.push(p);
      return p;
    };
    const receiver = peer("receiver", ["--auto-accept", "--downloads", join(dir, "down")]);
    const sender = peer("sender", []);
    const direct = (v: Record<string, unknown>) => v.event === "peer" && v.path === "direct";
    await Promise.all([receiver.wait(direct, 20_000, "a path"), sender.wait(direct, 20_000, "")]);
    const pids = [sender.proc.pid, receiver.proc.pid];
    const before = pids.map((pid) => memOf(pid, 0));
    const samples: Sample[][] = [[], []];
    const t0 = performance.now();
    const timer = setInterval(() => {
      const at = performance.now() - t0;
      pids.forEach((pid, i) => samples[i]!.push(memOf(pid, at)));
    }, 250);
    let outcome = "";
    try {
      await sender.send(`/send ${file}`);
      const done = await receiver.wait(
        (v) => v.event === "file" && (v.state === "done" || v.state === "failed"),
        timeoutMs,
        "the file",
      );
      outcome = done.state === "done"
        ? `${ARGS.mb} MB in ${((Number(done.at) - t0) / 1000).toFixed(0)} s`
        : `failed: ${done.reason}`;
    } catch (e) {
      const got = receiver.lines.filter((v) => v.event === "file" && v.state === "progress").at(
        -1,
      );
      outcome = `gave up after ${ARGS.timeout} s (${e}) at ${
        ((Number(got?.bytes ?? 0)) / 1e6).toFixed(0)
      } MB`;
    } finally {
      clearInterval(timer);
    }
    const s = summary("sender", before[0]!, samples[0]!);
    const r = summary("receiver", before[1]!, samples[1]!);
    console.log(`memory during a ${ARGS.mb} MB transfer (${outcome}, goal < ${GOAL_MB} MB):`);
    console.log(`  ${s.line}`);
    console.log(`  ${r.line}`);
    for (const [who, p] of [["sender", sender], ["receiver", receiver]] as const) {
      if (p.gc.length === 0) continue;
      console.log(`  ${who}'s last full collections (heap MB before -> after):`);
      for (const line of p.gc.slice(-5)) console.log(`    ${line.replace(/^\[[^\]]*\]\s*/, "")}`);
    }
    for (const [who, x] of [["sender", s], ["receiver", r]] as const) {
      console.log(JSON.stringify({
        name: `files_memory_${who}_rss_mb`,
        value: x.peak,
        baseline: GOAL_MB,
        ratio: GOAL_MB / x.peak,
        goal: 1,
      }));
    }
  } finally {
    for (const p of peers) await p.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

await main();
