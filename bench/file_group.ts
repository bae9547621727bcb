/**
 * A group transfer on loopback (issue 19, "Measure"): one `p2p join` sends a file (100 MB by
 * default) to a room of 4 `--auto-accept` receivers, which fetch chunks from each other as well;
 * the baseline, in the same run, is the same sender process kind sending the same file to one
 * receiver in a room of two.
 *
 * - `files_group_upload`: the sender's uploaded file bytes (FILE_DATA packets to every receiver,
 *   retransmissions included, from its `-v` log's per-recipient `packets` count, times the
 *   block size) against the file's size; ratio size ÷ uploaded (higher is better), goal 1 ÷ 1.5
 *   (at most 1.5 copies uploaded for 4 receivers).
 * - `files_group_time`: from `/send` to the last receiver's `done` against the single transfer's
 *   `/send` to `done`; ratio single ÷ group (no goal: 1 would be a group as fast as one pair).
 *
 * Prints a summary and one JSON line per figure (`name`, `value`, `baseline`, `ratio`, `goal`).
 * `deno run -A bench/file_group.ts [--mb 100] [--runs 3] [--receivers 4]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { FILE_BLOCK } from "../lib/wire/file_frame.ts";
import { JsonChild, LO, sleep } from "./support.ts";
import { V8_FLAG_ARG } from "../lib/roles/v8_flags.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * A child `p2p` process (`deno run -A main.ts ARGS`): its `--json` stdout lines as objects (with
 * `at`, when read), and the sender's per-recipient log lines (`File … to …`) from its stderr.
 */
export class Peer extends JsonChild {
  /** The last full garbage collections V8 reported (with `--v8-flags=--trace-gc`). */
  readonly gc: string[];
  readonly #log: { text: string };

  /**
   * `deno run -A [denoFlags] main.ts args` with `env`; `denoFlags` default to the V8 flags
   * `deno task join` and the binaries run with (`V8_FLAG_ARG`).
   */
  constructor(args: string[], env: Record<string, string>, denoFlags: string[] = [V8_FLAG_ARG]) {
    const gc: string[] = [], log = { text: "" };
    super(["run", "-A", ...denoFlags, MAIN, ...args], {
      env,
      stdin: true,
      // Not JSON: V8's --trace-gc lines are kept (the last 20 full collections).
      other: (line) => {
        if (/Mark-Compact/.test(line)) gc.push(line.trim());
        if (gc.length > 20) gc.shift();
      },
      // Keep the log lines that matter, not all the debug output.
      stderr: (line) => {
        if (/File \S+ to /.test(line)) log.text += line + "\n";
      },
    });
    this.gc = gc;
    this.#log = log;
  }

  /** The sender's per-recipient log lines (`File … to …`). */
  get stderr(): string {
    return this.#log.text;
  }
}

const isDone = (v: Record<string, unknown>) =>
  v.event === "file" && (v.state === "done" || v.state === "failed");

/** One room: a sender and `n` receivers; `/send` to done at every receiver. */
async function roomRun(
  server: string,
  file: string,
  n: number,
  dir: string,
): Promise<{ seconds: number; uploaded: number }> {
  const room = `group-${crypto.randomUUID().slice(0, 8)}`;
  const peers: Peer[] = [];
  const peer = (name: string, extra: string[]) => {
    const home = Deno.makeTempDirSync({ dir, prefix: "home-" });
    const args = ["join", "--server", server, "--room", room, "--name", name, "--json"];
    const p = new Peer([...args, "--bind", LO, ...extra], {
      P2P_PASSPHRASE: `bench ${room}`,
      XDG_CONFIG_HOME: home,
    });
    peers.push(p);
    return p;
  };
  try {
    const sender = peer("sender", ["--log-level", "debug"]);
    const receivers = Array.from(
      { length: n },
      (_, i) => peer(`rx${i}`, ["--auto-accept", "--downloads", join(dir, `${room}-rx${i}`)]),
    );
    const direct = (name: string) => (v: Record<string, unknown>) =>
      v.event === "peer" && v.name === name && v.path === "direct";
    const names = ["sender", ...receivers.map((_, i) => `rx${i}`)];
    for (const [i, p] of peers.entries()) {
      for (const other of names) {
        if (other !== names[i]) await p.wait(direct(other), 30_000, `${names[i]} sees ${other}`);
      }
    }
    const t0 = performance.now();
    await sender.send(`/send ${file}`);
    let last = t0;
    for (const r of receivers) {
      const done = await r.wait(isDone, 600_000, "the file");
      if (done.state !== "done") throw new Error(`a receiver failed: ${done.reason}`);
      last = Math.max(last, Number(done.at));
    }
    // The sender logs each recipient's packet count when it reports that recipient done.
    const deadline = performance.now() + 30_000;
    const counts = () => [...sender.stderr.matchAll(/File \S+ to \S+: done; packets (\d+)/g)];
    while (counts().length < n && performance.now() < deadline) await sleep(100);
    if (counts().length < n) throw new Error(`the sender logged ${counts().length} of ${n} done`);
    const packets = counts().reduce((s, m) => s + Number(m[1]), 0);
    return { seconds: (last - t0) / 1000, uploaded: packets * FILE_BLOCK };
  } finally {
    for (const p of peers) await p.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const { values: ARGS } = parseArgs({
    args: Deno.args,
    options: {
      mb: { type: "string", default: "100" },
      runs: { type: "string", default: "3" },
      receivers: { type: "string", default: "4" },
    },
  });
  const size = Math.round(Number(ARGS.mb) * 1e6), runs = Math.max(1, Number(ARGS.runs));
  const n = Math.max(1, Number(ARGS.receivers));
  const dir = await Deno.makeTempDir({ prefix: "p2p-bench-group-" });
  const server = new Peer(["serve", "--host", LO, "--port", "0", "--json"], {});
  try {
    const addr = String((await server.wait((v) => v.event === "listening", 15_000, "server")).addr);
    const file = join(dir, "file.bin");
    const data = new Uint8Array(size);
    for (let o = 0; o < size; o += 65536) crypto.getRandomValues(data.subarray(o, o + 65536));
    await Deno.writeFile(file, data);
    const single: number[] = [], group: number[] = [], copies: number[] = [];
    for (let i = 0; i < runs; i++) {
      const one = await roomRun(addr, file, 1, dir);
      single.push(one.seconds);
      const all = await roomRun(addr, file, n, dir);
      group.push(all.seconds);
      copies.push(all.uploaded / size);
      console.error(
        `[bench] group run ${i + 1}: 1 receiver ${one.seconds.toFixed(1)} s (${
          (one.uploaded / size).toFixed(2)
        } copies), ${n} receivers ${all.seconds.toFixed(1)} s, the sender uploaded ${
          (all.uploaded / size).toFixed(2)
        } copies`,
      );
      for await (const e of Deno.readDir(dir)) {
        if (e.name !== "file.bin") await Deno.remove(join(dir, e.name), { recursive: true });
      }
    }
    const up = median(copies) * size;
    const figures = [
      { name: "files_group_upload", value: up, baseline: size, ratio: size / up, goal: 1 / 1.5 },
      {
        name: "files_group_time",
        value: median(group),
        baseline: median(single),
        ratio: median(single) / median(group),
        goal: null,
      },
    ];
    console.log(
      `group transfer of ${ARGS.mb} MB to ${n} receivers: the sender uploaded ${
        median(copies).toFixed(2)
      } copies (goal ≤ 1.5); ${median(group).toFixed(1)} s against ${
        median(single).toFixed(1)
      } s for one receiver (every run: ${
        group.map((g, i) => `${g.toFixed(1)}/${single[i]!.toFixed(1)} s, ${copies[i]!.toFixed(2)}`)
          .join("; ")
      })`,
    );
    for (const f of figures) console.log(JSON.stringify(f));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
