/**
 * File transfer goodput on loopback against two baselines measured in the same run, each moving
 * the same bytes between two Deno processes:
 *
 * - `tcp copy`: a Deno TCP connection carrying the file, written to disk by the receiver (what
 *   `scp`-like tools do; the issue's goal is p2p ≥ 0.7 of it);
 * - `raw udp`: a sender blasting datagrams of a FILE_DATA's size as fast as its socket takes
 *   them (in `lib/io/udp.ts`'s send style), goodput counted at the receiver (no reliability, no
 *   crypto, no disk: the ceiling of a UDP transport written in Deno);
 * - `p2p`: a `p2p serve` and two `p2p join --json` processes, the sender's `/send PATH`, the
 *   receiver's `--auto-accept` into a temporary `--downloads`: from the receiver's `offered` to
 *   its `done` (every chunk verified, the whole file's SHA-256 checked, renamed into place).
 *
 * Prints a table and one JSON line per figure (`name`, `value`, `baseline`, `ratio`, `goal`).
 * `deno task bench:files [--mb 50 --runs 3]`; `--only p2p` skips the baselines, `--profile DIR`
 * writes the sender's and the receiver's V8 CPU profiles (`sender.cpuprofile`,
 * `receiver.cpuprofile`) into DIR for `bench/profile_summary.ts`. The two peers run with the V8
 * flags of `deno task join` and the binaries (`V8_FLAGS` in scripts/compile_all.ts);
 * `--peer-v8-flags FLAGS` runs them with `--v8-flags=FLAGS` instead (`none`: V8's defaults). The resident set of the
 * larger of the two is also shown at each quarter of the transfer (flat, or growing?).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { FILE_BLOCK } from "../lib/wire/file_frame.ts";
import { bindUdp, JsonChild, LO, processCpuMs, receiveEach, sleep } from "./support.ts";
import { V8_FLAG_ARG } from "../lib/roles/v8_flags.ts";

const SELF = new URL(import.meta.url).pathname;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
/** A FILE_DATA datagram: the block and its headers, sealed. */
const DATAGRAM = FILE_BLOCK + 21 + 28 + 16;

const { values: ARGS } = parseArgs({
  args: Deno.args,
  options: {
    role: { type: "string" },
    mb: { type: "string", default: "50" },
    runs: { type: "string", default: "3" },
    port: { type: "string" },
    bytes: { type: "string" },
    file: { type: "string" },
    profile: { type: "string" },
    "peer-v8-flags": { type: "string" },
    only: { type: "string" },
  },
});

// ---------------------------------------------------------------------------------------------
// JsonChild roles

async function tcpReceiver(file: string): Promise<void> {
  const listener = Deno.listen({ hostname: LO, port: 0 });
  console.log(JSON.stringify({ port: (listener.addr as Deno.NetAddr).port }));
  const conn = await listener.accept();
  const out = await Deno.open(file, { write: true, create: true, truncate: true });
  const buf = new Uint8Array(1 << 20);
  let bytes = 0, first = 0;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    if (bytes === 0) first = performance.now();
    bytes += n;
    let o = 0;
    while (o < n) o += await out.write(buf.subarray(o, n));
  }
  await out.sync();
  out.close();
  console.log(JSON.stringify({ bytes, ms: performance.now() - first }));
  listener.close();
}

async function tcpSender(port: number, file: string): Promise<void> {
  const conn = await Deno.connect({ hostname: LO, port });
  const f = await Deno.open(file, { read: true });
  await f.readable.pipeTo(conn.writable);
}

async function udpReceiver(): Promise<void> {
  const conn = bindUdp();
  console.log(JSON.stringify({ port: (conn.addr as Deno.NetAddr).port }));
  let bytes = 0, first = 0, last = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const rearm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      console.log(JSON.stringify({ bytes, ms: last - first, cpuMs: processCpuMs(Deno.pid) }));
      conn.close();
    }, 1000);
  };
  rearm();
  let n = 0;
  await receiveEach(conn, (data) => {
    const now = performance.now();
    if (bytes === 0) first = now;
    last = now;
    bytes += data.length - (DATAGRAM - FILE_BLOCK);
    if ((++n & 255) === 0) rearm();
  });
}

async function udpSender(port: number, total: number): Promise<void> {
  const conn = bindUdp();
  const d = new Uint8Array(DATAGRAM);
  const sends = new Set<Promise<void>>();
  for (let sent = 0; sent < total; sent += FILE_BLOCK) {
    const p: Promise<void> = conn.send(d, { transport: "udp", hostname: LO, port })
      .then(() => {}, () => {}).finally(() => sends.delete(p));
    sends.add(p);
    if (sends.size >= 64) await Promise.race(sends);
  }
  await Promise.all(sends);
  conn.close();
  console.log(JSON.stringify({ cpuMs: processCpuMs(Deno.pid) }));
}

// ---------------------------------------------------------------------------------------------
// Runs

/** MB/s of a TCP copy of `file` into `to`. */
async function tcpRun(file: string, to: string): Promise<number> {
  const recv = new JsonChild(["run", "-A", SELF, "--role", "tcp-recv", "--file", to]);
  try {
    const port = Number((await recv.wait((v) => "port" in v, 15_000, "tcp receiver")).port);
    const send = new JsonChild([
      "run",
      "-A",
      SELF,
      "--role",
      "tcp-send",
      "--port",
      `${port}`,
      "--file",
      file,
    ]);
    const r = await recv.wait((v) => "bytes" in v, 300_000, "tcp copy");
    await send.close();
    return Number(r.bytes) / Number(r.ms) / 1000;
  } finally {
    await recv.close();
  }
}

/** MB/s delivered of a raw UDP blast of `bytes`, and CPU µs per MB (sender and receiver). */
async function udpRun(bytes: number): Promise<{ rate: number; cpu: number }> {
  const recv = new JsonChild(["run", "-A", SELF, "--role", "udp-recv"]);
  try {
    const port = Number((await recv.wait((v) => "port" in v, 15_000, "udp receiver")).port);
    const send = new JsonChild([
      "run",
      "-A",
      SELF,
      "--role",
      "udp-send",
      "--port",
      `${port}`,
      "--bytes",
      `${bytes}`,
    ]);
    const r = await recv.wait((v) => "bytes" in v, 300_000, "udp blast");
    const s = await send.wait((v) => "cpuMs" in v, 30_000, "udp sender");
    await send.close();
    const mb = Number(r.bytes) / 1e6;
    return {
      rate: Number(r.bytes) / Number(r.ms) / 1000,
      cpu: (Number(r.cpuMs) + Number(s.cpuMs)) * 1000 / mb,
    };
  } finally {
    await recv.close();
  }
}

/** Chat lines' latency (ms) from `sender` to `receiver`: one line every 50 ms for `ms`. */
async function chatLatency(sender: JsonChild, receiver: JsonChild, tag: string, ms: number) {
  const sent = new Map<string, number>();
  const end = performance.now() + ms;
  for (let i = 0; performance.now() < end; i++) {
    const text = `${tag} ${i}`;
    sent.set(text, performance.now());
    await sender.send(text);
    await sleep(50);
  }
  const latencies: number[] = [];
  for (const [text, at] of sent) {
    const got = await receiver.wait((v) => v.event === "message" && v.text === text, 30_000, text);
    latencies.push(Number(got.at) - at);
  }
  latencies.sort((a, b) => a - b);
  const pick = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { p50: pick(0.5), p99: pick(0.99) };
}

/** One p2p run's figures. */
interface P2pResult {
  /** MB/s from the receiver's `offered` to its `done`. */
  rate: number;
  /** CPU µs per MB, sender and receiver together (offered to done), and each. */
  cpu: number;
  cpuSender: number;
  cpuReceiver: number;
  /** The larger resident set of the two in each quarter of the transfer, MB. */
  quarters: number[];
  /** The larger resident set of the two during the transfer, MB. */
  rss: number;
  /** The larger resident set of the two before it, MB. */
  rssBefore: number;
  /** Chat latency (ms) in the same room without and during the transfer. */
  idle: { p50: number; p99: number };
  busy: { p50: number; p99: number };
}

/** `p2p`'s `/send` of `file` between two peers, offered to done, and chat latency meanwhile. */
async function p2pRun(file: string, size: number, dir: string): Promise<P2pResult> {
  const server = new JsonChild(["run", "-A", MAIN, "serve", "--host", LO, "--port", "0", "--json"]);
  const peers: JsonChild[] = [];
  try {
    const addr = String((await server.wait((v) => v.event === "listening", 15_000, "server")).addr);
    const room = `files-${crypto.randomUUID().slice(0, 8)}`;
    const peer = (name: string, extra: string[]) => {
      const home = Deno.makeTempDirSync({ prefix: "p2p-bench-" });
      const prof = ARGS.profile
        ? ["--cpu-prof", `--cpu-prof-dir=${ARGS.profile}`, `--cpu-prof-name=${name}.cpuprofile`]
        : [];
      const v8 = ARGS["peer-v8-flags"];
      if (v8 === undefined) prof.push(V8_FLAG_ARG);
      else if (v8 !== "none") prof.push(`--v8-flags=${v8}`);
      const c = new JsonChild(
        ["run", "-A", ...prof, MAIN, "join", "--server", addr, "--room", room, "--name", name]
          .concat(["--json", "--bind", LO, ...extra]),
        { env: { P2P_PASSPHRASE: `bench ${room}`, XDG_CONFIG_HOME: home }, stdin: true },
      );
      peers.push(c);
      return c;
    };
    const down = join(dir, `down-${room}`);
    const receiver = peer("receiver", ["--auto-accept", "--downloads", down]);
    const sender = peer("sender", []);
    const direct = (v: Record<string, unknown>) => v.event === "peer" && v.path === "direct";
    await Promise.all([
      receiver.wait(direct, 20_000, "a path"),
      sender.wait(direct, 20_000, "a path"),
    ]);
    const idle = await chatLatency(sender, receiver, "idle", 1000);
    const send0 = processCpuMs(sender.proc.pid), recv0 = processCpuMs(receiver.proc.pid);
    const samples: number[] = [];
    const rssBefore = Math.max(rssMb(sender.proc.pid), rssMb(receiver.proc.pid));
    const sampling = setInterval(() => {
      samples.push(Math.max(rssMb(sender.proc.pid), rssMb(receiver.proc.pid)));
    }, 200);
    await sender.send(`/send ${file}`);
    const offered = await receiver.wait(
      (v) => v.event === "file" && v.state === "offered",
      60_000,
      "offer",
    );
    await receiver.wait((v) => v.event === "file" && v.state === "progress", 60_000, "progress");
    const busy = await chatLatency(sender, receiver, "busy", 1000);
    const done = await receiver.wait(
      (v) => v.event === "file" && (v.state === "done" || v.state === "failed"),
      600_000,
      "the file",
    );
    clearInterval(sampling);
    const perMb = (ms: number) => ms * 1000 / (size / 1e6);
    const cpuSender = perMb(processCpuMs(sender.proc.pid) - send0);
    const cpuReceiver = perMb(processCpuMs(receiver.proc.pid) - recv0);
    const cpu = cpuSender + cpuReceiver;
    const rss = Math.max(0, ...samples);
    // The largest resident set in each quarter of the transfer.
    const quarters = [0, 1, 2, 3].map((q) =>
      Math.max(
        0,
        ...samples.slice(Math.floor(q * samples.length / 4), (q + 1) * samples.length / 4),
      )
    );
    if (done.state !== "done") throw new Error(`p2p transfer failed: ${done.reason}`);
    await Deno.remove(down, { recursive: true }).catch(() => {});
    const rate = size / (Number(done.at) - Number(offered.at)) / 1000;
    return { rate, idle, busy, cpu, cpuSender, cpuReceiver, rss, rssBefore, quarters };
  } finally {
    for (const p of peers) await p.close();
    await server.close();
  }
}

/** Resident set of process `pid`, MB (0 when it cannot be read). */
function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const size = Math.round(Number(ARGS.mb) * 1e6), runs = Math.max(1, Number(ARGS.runs));
  const dir = await Deno.makeTempDir({ prefix: "p2p-bench-files-" });
  try {
    const file = join(dir, "file.bin");
    const data = new Uint8Array(size);
    for (let o = 0; o < size; o += 65536) crypto.getRandomValues(data.subarray(o, o + 65536));
    await Deno.writeFile(file, data);
    const p2p: number[] = [], tcp: number[] = [], udp: number[] = [];
    const idle: number[] = [], busy: number[] = [];
    const cpuP2p: number[] = [], cpuUdp: number[] = [], rss: number[] = [], rss0: number[] = [];
    for (let i = 0; i < runs; i++) {
      const p2pOnly = ARGS.only === "p2p";
      tcp.push(p2pOnly ? NaN : await tcpRun(file, join(dir, "tcp.bin")));
      const u = p2pOnly ? { rate: NaN, cpu: NaN } : await udpRun(size);
      udp.push(u.rate);
      cpuUdp.push(u.cpu);
      const r = await p2pRun(file, size, dir);
      p2p.push(r.rate);
      cpuP2p.push(r.cpu);
      rss.push(r.rss);
      rss0.push(r.rssBefore);
      idle.push(r.idle.p99);
      busy.push(r.busy.p99);
      console.error(
        `[bench] chat latency p50/p99: idle ${r.idle.p50.toFixed(1)}/${
          r.idle.p99.toFixed(1)
        } ms, during the transfer ${r.busy.p50.toFixed(1)}/${r.busy.p99.toFixed(1)} ms`,
      );
      console.error(
        `[bench] p2p CPU µs per MB: sender ${r.cpuSender.toFixed(0)}, receiver ${
          r.cpuReceiver.toFixed(0)
        }; largest RSS by quarter of the transfer: ${
          r.quarters.map((q) => q.toFixed(0)).join(" / ")
        } MB`,
      );
      console.error(
        `[bench] run ${i + 1}: p2p ${p2p.at(-1)!.toFixed(1)} MB/s, tcp ${
          tcp.at(-1)!.toFixed(1)
        }, raw udp ${udp.at(-1)!.toFixed(1)}`,
      );
      await sleep(200);
    }
    const figures = [
      { name: "files_vs_tcp", value: median(p2p), baseline: median(tcp), goal: 0.7 },
      { name: "files_vs_raw_udp", value: median(p2p), baseline: median(udp), goal: null },
    ];
    // Chat latency is a cost: the ratio is idle over busy (1: the transfer adds nothing).
    const chat = { name: "files_chat_p99_ms", value: median(busy), baseline: median(idle) };
    const cpu = { name: "files_cpu_us_per_mb", value: median(cpuP2p), baseline: median(cpuUdp) };
    console.log(`| figure | p2p MB/s | baseline MB/s | ratio (goal) |`);
    console.log(`| ------ | -------: | ------------: | -----------: |`);
    for (const f of figures) {
      const ratio = f.value / f.baseline;
      console.log(
        `| ${f.name} | ${f.value.toFixed(1)} | ${f.baseline.toFixed(1)} | ${ratio.toFixed(2)}${
          f.goal === null ? "" : ` (≥ ${f.goal})`
        } |`,
      );
    }
    console.log(
      `| chat p99 during / without a transfer (ms) | ${chat.value.toFixed(1)} | ${
        chat.baseline.toFixed(1)
      } | ${(chat.baseline / chat.value).toFixed(2)} |`,
    );
    console.log(
      `| CPU µs per MB, sender + receiver (p2p / raw udp) | ${cpu.value.toFixed(0)} | ${
        cpu.baseline.toFixed(0)
      } | ${(cpu.baseline / cpu.value).toFixed(2)} |`,
    );
    console.log(
      `largest RSS of sender or receiver: ${Math.max(...rss0).toFixed(0)} MB before, ${
        Math.max(...rss).toFixed(0)
      } MB during a ${ARGS.mb} MB transfer`,
    );
    for (const f of figures) console.log(JSON.stringify({ ...f, ratio: f.value / f.baseline }));
    console.log(JSON.stringify({ ...cpu, ratio: cpu.baseline / cpu.value, goal: null }));
    console.log(JSON.stringify({ ...chat, ratio: chat.baseline / chat.value, goal: null }));
    console.log(
      `every run (p2p / tcp / raw udp, MB/s): ${
        p2p.map((v, i) => `${v.toFixed(1)} / ${tcp[i]!.toFixed(1)} / ${udp[i]!.toFixed(1)}`).join(
          ", ",
        )
      }`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

switch (ARGS.role) {
  case "tcp-recv":
    await tcpReceiver(ARGS.file!);
    break;
  case "tcp-send":
    await tcpSender(Number(ARGS.port), ARGS.file!);
    break;
  case "udp-recv":
    await udpReceiver();
    break;
  case "udp-send":
    await udpSender(Number(ARGS.port), Number(ARGS.bytes));
    break;
  default:
    await main();
}
