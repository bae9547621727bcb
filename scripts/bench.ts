/**
 * `deno task bench`: runs every benchmark, each against a baseline measured in the same run,
 * and writes `docs/benchmarks.md`. `deno task bench:ratios` (`--ratios`) runs only the figures
 * that have a goal and prints them, nothing else on stdout.
 *
 * Both print one JSON object per line and figure on stdout, for scripts:
 * `{"name":"relay_cpu_100B_10kpps","value":...,"baseline":...,"ratio":...,"goal":0.8}`.
 * `ratio` is oriented so that higher is better (p2p's packets per CPU-second over the
 * baseline's, say) and `goal` is the lowest acceptable ratio. Progress goes to stderr.
 *
 * Suites:
 *
 * - `deno bench` over `bench/` (the `Deno.bench` files), `--runs` times; each figure is the
 *   median of the runs' averages, with its group's baseline.
 * - Server capacity (`bench/capacity.ts`, one run): RSS per peer, keepalive CPU against a
 *   plain UDP echo server and registration CPU against the pure Registry, 100k peers.
 * - Relay load (`bench/relay_load.ts`, one generator process per run): the p2p relay against a
 *   raw Deno UDP forwarder, coturn beside them when `turnserver` is installed. Within a run the
 *   relays take turns in slices of each case; each figure is the median of `--runs` runs.
 *
 * - Peer data plane (`bench/peer_throughput.ts --runs N`): chat messages per second from one
 *   `p2p join` to another, direct and relayed, against raw UDP between two processes (and
 *   through a raw forwarder); CPU per message; p50/p99 latency under load.
 *
 * - File transfer (`bench/file_transfer.ts --runs N`): a file's goodput between two `p2p join`
 *   processes against a TCP copy and a raw UDP blast of the same bytes; chat p99 during it; CPU
 *   per MB against the raw blast's. Then `bench/file_group.ts --runs N`: one sender, 4
 *   receivers, 100 MB: the sender's uploaded copies, and the time against one receiver's.
 *
 * Options: `--runs N` (default 3), `--seconds S` measured per relay load case (default 1.5),
 * `--ratios`, `--no-write` (print, but leave the document alone), `--only SUITE` (one of
 * `relay`, `capacity`, `peer`, `files`, `direct`, `deno-bench`: runs that suite alone and prints its
 * figures, and for `capacity`, `files` and `deno-bench` its section of the document; the document is only written by a
 * full run).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LARGEST_PAYLOAD, type LoadResult, type RelayKind } from "../bench/relay_load.ts";
import type { CapacityResult } from "../bench/capacity.ts";

/** One benchmark figure against its baseline. */
export interface Figure {
  /** Stable name; relay figures start with `relay`. */
  name: string;
  /** p2p's figure. */
  value: number;
  /** The baseline's figure, in the same unit. */
  baseline: number;
  /** Higher is better: `value / baseline` for rates, `baseline / value` for costs. */
  ratio: number;
  /** The lowest acceptable ratio, if there is one. */
  goal: number | null;
}

const ROOT = new URL("../", import.meta.url);
const DOC = "docs/benchmarks.md";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "3" },
    seconds: { type: "string", default: "1.5" },
    ratios: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    only: { type: "string" },
  },
});
const SUITES = ["relay", "capacity", "peer", "files", "direct", "cluster", "deno-bench"];
if (args.only !== undefined && !SUITES.includes(args.only)) {
  throw new Error(`--only takes one of ${SUITES.join(", ")}, not ${args.only}`);
}
/** Whether to run `suite` (every one, unless `--only` names another). */
const runs = (suite: string) => args.only === undefined || args.only === suite;
const RUNS = Math.max(1, Number(args.runs));
const SECONDS = Number(args.seconds);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function progress(msg: string): void {
  console.error(`[bench] ${msg}`);
}

async function run(cmd: string, cmdArgs: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args: cmdArgs,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${cmd} ${cmdArgs.join(" ")} failed (${out.code})`);
  return new TextDecoder().decode(out.stdout);
}

async function tryRun(cmd: string, cmdArgs: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, { args: cmdArgs, stdout: "piped", stderr: "piped" })
      .output();
    return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  } catch {
    return undefined;
  }
}

// --- Relay load ---------------------------------------------------------------------------

const RATES = [0, 10_000, 20_000];
const PAYLOADS = [100, LARGEST_PAYLOAD];
/** The relay's goal: at least 0.8 × the raw forwarder's packets per CPU-second. */
const RELAY_GOAL = 0.8;
/**
 * Delivery no worse than the forwarder's, within the noise: a point when paced; unpaced, bursts
 * overflow the relays' default socket buffers now and then (losses of 0.5 to 3 % for either on
 * a busy 2-CPU machine), so three points.
 */
const DELIVERY_GOAL = 0.99;
const DELIVERY_GOAL_UNPACED = 0.97;

function rateLabel(rate: number): string {
  return rate === 0 ? "unpaced" : `${rate / 1000}kpps`;
}

interface CaseMedians {
  cpuPerPacketUs: number;
  pps: number;
  loss: number;
  runs: LoadResult[];
}

async function relayLoad(
  coturn: boolean,
): Promise<{ figures: Figure[]; table: Map<string, Map<RelayKind, CaseMedians>> }> {
  const relays: RelayKind[] = coturn ? ["p2p", "raw", "coturn"] : ["p2p", "raw"];
  const all: LoadResult[] = [];
  for (let i = 1; i <= RUNS; i++) {
    progress(`relay load: run ${i}/${RUNS} (${relays.join(", ")})`);
    const out = await run(Deno.execPath(), [
      "run",
      "--allow-all",
      "bench/relay_load.ts",
      "--relay",
      relays.join(","),
      "--rotate",
      String(i - 1),
      "--payload",
      PAYLOADS.join(","),
      "--rate",
      RATES.join(","),
      "--seconds",
      String(SECONDS),
      "--warmup",
      "0.3",
    ]);
    for (const line of out.split("\n")) if (line.trim()) all.push(JSON.parse(line));
  }
  const table = new Map<string, Map<RelayKind, CaseMedians>>();
  for (const payload of PAYLOADS) {
    for (const rate of RATES) {
      const row = new Map<RelayKind, CaseMedians>();
      for (const relay of relays) {
        const runs = all.filter((r) =>
          r.relay === relay && r.payload === payload && r.rate === rate
        );
        row.set(relay, {
          cpuPerPacketUs: median(runs.map((r) => r.cpuPerPacketUs)),
          pps: median(runs.map((r) => r.pps)),
          loss: median(runs.map((r) => r.loss)),
          runs,
        });
      }
      table.set(`${payload}B_${rateLabel(rate)}`, row);
    }
  }
  const figures: Figure[] = [];
  for (const [key, row] of table) {
    const p2p = row.get("p2p")!, raw = row.get("raw")!;
    const value = 1e6 / p2p.cpuPerPacketUs, baseline = 1e6 / raw.cpuPerPacketUs;
    figures.push({
      name: `relay_cpu_${key}`,
      value,
      baseline,
      ratio: value / baseline,
      goal: RELAY_GOAL,
    });
  }
  for (const [key, row] of table) {
    const value = 1 - row.get("p2p")!.loss, baseline = 1 - row.get("raw")!.loss;
    figures.push({
      name: `relay_delivered_${key}`,
      value,
      baseline,
      ratio: value / baseline,
      goal: key.endsWith("unpaced") ? DELIVERY_GOAL_UNPACED : DELIVERY_GOAL,
    });
  }
  return { figures, table };
}

function relayMarkdown(
  table: Map<string, Map<RelayKind, CaseMedians>>,
  coturnVersion: string | undefined,
): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  const lines = [
    "## Relay: server CPU per relayed packet",
    "",
    "`bench/relay_load.ts` runs each relay as its own process on 127.0.0.1 and plays two peers " +
    "from another process: it registers both with the real protocol (HELLO, COOKIE, HELLO, " +
    "WELCOME), then sends RELAY datagrams from one to the other at a fixed rate, or as fast as it " +
    "can (unpaced), and counts what the other receives. The figure is the relay process's CPU " +
    "time (user + system, all threads, from `/proc/<pid>/task/*/schedstat`) over the measured " +
    `period and its drain, divided by the datagrams delivered; ${SECONDS} s measured per case ` +
    "after a 0.3 s warm-up. All relays run at once, idle but for the one under load, and take " +
    "turns within each case in four slices of the measured period, so that they meet the same " +
    "machine (whose other load varies); each run starts with another relay.",
    "",
    "- **p2p**: `p2p serve` (main.ts), its relay budgets raised so they never bind (they are " +
    "still checked for every packet).",
    "- **raw**: `bench/raw_forwarder.ts`, the baseline: a Deno UDP forwarder with the socket " +
    "loop of `lib/io/udp.ts` (one reused receive buffer, a copy per datagram, sends not awaited) " +
    "that forwards the same RELAY bytes between the two sockets and checks nothing.",
    coturnVersion
      ? `- **coturn** ${coturnVersion}, for comparison: one unauthenticated TURN allocation whose ` +
        "channel is bound to the receiving socket; the generator sends ChannelData, coturn " +
        "sends the payload on from the relayed address. One receive and one send per packet, " +
        "like the others (a relay between two allocations would do two of each and flatter p2p)."
      : "- **coturn**: not installed here (`apt-get install -y coturn` adds it to this table).",
    "",
    "Ratio: p2p's packets per CPU-second over the raw forwarder's (higher is better; goal " +
    `≥ ${RELAY_GOAL}). Unpaced, the generator (one Deno process that sends and receives) is ` +
    "the bottleneck on a small machine, so that row compares CPU per packet at the generator's " +
    "top rate rather than at each relay's saturation. The payload sizes are 100 bytes and the " +
    "largest a RELAY may carry (`MAX_RELAY_PAYLOAD`, making a RELAY of `MAX_DATAGRAM` bytes).",
    "",
    "History: before the relay fast path (commit 357a5cd: RELAY decoded into a message, ids " +
    "looked up as hex strings, RELAYED re-encoded), measured the same way on the machine above, " +
    "p2p took 21–28 µs per packet against the raw forwarder's 12–14 (ratios 0.49–0.53), and " +
    "one registry relay step took 6.4 µs in process (now about 0.15 µs: see `registry relay " +
    "step` below).",
    "",
    "Profiling: `deno run -A bench/relay_load.ts --relay p2p --rate 20000 --profile DIR` runs " +
    "the server under `--cpu-prof`, and `deno run -A bench/profile_summary.ts DIR/*.cpuprofile` " +
    "lists where its main thread went; `--threads` adds each relay's CPU time per thread, " +
    "`--root DIR` runs the p2p server of another checkout (before/after).",
    "",
    "| payload | rate | p2p µs/packet | raw µs/packet | ratio | coturn µs/packet | delivered pps (p2p) | loss p2p / raw / coturn |",
    "| ------- | ---- | ------------: | ------------: | ----: | ---------------: | ------------------: | ----------------------- |",
  ];
  for (const [key, row] of table) {
    const [payload, rate] = key.split("_") as [string, string];
    const p2p = row.get("p2p")!, raw = row.get("raw")!, coturn = row.get("coturn");
    lines.push(
      `| ${payload.replace("B", " B")} | ${rate.replace("kpps", "k pps")} | ${
        f(p2p.cpuPerPacketUs)
      } | ${f(raw.cpuPerPacketUs)} | ${f(raw.cpuPerPacketUs / p2p.cpuPerPacketUs, 2)} | ${
        coturn ? f(coturn.cpuPerPacketUs) : "—"
      } | ${f(p2p.pps, 0)} | ${pct(p2p.loss)} / ${pct(raw.loss)} / ${
        coturn ? pct(coturn.loss) : "—"
      } |`,
    );
  }
  lines.push(
    "",
    "Every run (µs per packet, p2p / raw" + (coturnVersion ? " / coturn" : "") + "):",
    "",
  );
  for (const [key, row] of table) {
    const runs = [...row.values()].map((c) => c.runs.map((r) => f(r.cpuPerPacketUs)).join(", "));
    lines.push(`- ${key.replace("_", ", ")}: ${runs.join(" / ")}`);
  }
  return lines.join("\n");
}

// --- Server capacity ----------------------------------------------------------------------

/** Capacity goals: 1.5 KiB RSS a peer; keepalive and registration CPU ≤ 1.5x their baselines. */
const RSS_BUDGET_B = 1536;
const CAPACITY_GOAL = 1 / 1.5;

/** One `bench/capacity.ts` run (100k peers take about a minute to register, so one run). */
async function capacity(): Promise<{ figures: Figure[]; result: CapacityResult }> {
  progress("capacity: 100k peers (about a minute)");
  const out = await run(Deno.execPath(), ["run", "--allow-all", "bench/capacity.ts"]);
  const r = JSON.parse(out.trim().split("\n").pop()!) as CapacityResult;
  const figures: Figure[] = [
    {
      name: "capacity_rss_per_peer",
      value: r.rssPerPeerB,
      baseline: RSS_BUDGET_B,
      ratio: RSS_BUDGET_B / r.rssPerPeerB,
      // Right after a burst of 100k registrations: heap V8 has not given back yet, a transient.
      goal: null,
    },
    {
      name: "capacity_rss_settled_per_peer",
      value: r.rssSettledPerPeerB,
      baseline: RSS_BUDGET_B,
      ratio: RSS_BUDGET_B / r.rssSettledPerPeerB,
      goal: 1,
    },
    {
      name: "capacity_keepalive_cpu",
      value: r.keepaliveUs,
      baseline: r.echoUs,
      ratio: r.echoUs / r.keepaliveUs,
      goal: CAPACITY_GOAL,
    },
    {
      name: "capacity_pong_delivered",
      value: 1 - r.pongLoss,
      baseline: 1 - r.echoLoss,
      ratio: (1 - r.pongLoss) / (1 - r.echoLoss),
      goal: 1,
    },
    {
      name: "capacity_register_cpu",
      value: r.registerUs,
      baseline: r.registerPureUs,
      ratio: r.registerPureUs / r.registerUs,
      goal: CAPACITY_GOAL,
    },
  ];
  return { figures, result: r };
}

function capacityMarkdown(r: CapacityResult): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  return [
    "## Server capacity",
    "",
    "`bench/capacity.ts` (one run) starts `p2p serve` with its per-source limits, `--max-peers` " +
    "and `--expire` raised out of the way, registers " + r.peers + " peers in rooms of " + r.room +
    " with the real protocol (HELLO, COOKIE, HELLO signed by the room key, WELCOME) from 250 " +
    "loopback addresses, then sends PINGs at " + r.pingRate + "/s (what 100k peers send at the " +
    "default 25 s interval; each PING from the next peer in turn, no time compression). RSS per " +
    "peer is (RSS with the peers − RSS idle) / peers; the 1.5 KiB budget is held to it once " +
    "settled (what the server keeps per peer), while right after the burst it also counts heap " +
    "V8 grew for the burst and gives back seconds later. Keepalive " +
    "CPU is the server's CPU per PING against a plain Deno UDP echo server (the socket loop of " +
    "`lib/io/udp.ts`) sent the same PINGs at the same rate, the two taking turns. Registration " +
    "CPU is the server's CPU per registered peer against a pure `Registry` in process doing the " +
    "same two HELLOs per peer (20k peers, signatures made beforehand).",
    "",
    "| figure | p2p | baseline | ratio (goal) |",
    "| ------ | --: | -------: | -----------: |",
    `| RSS per peer | ${f(r.rssPerPeerB, 0)} B (idle ${f(r.rssIdleKiB / 1024)} MiB, ` +
    `loaded ${f(r.rssKiB / 1024)} MiB) | budget ${RSS_BUDGET_B} B | ` +
    `${f(RSS_BUDGET_B / r.rssPerPeerB, 2)} (—) |`,
    `| RSS per peer, settled | ${f(r.rssSettledPerPeerB, 0)} B (after ` +
    `${f(r.settledSeconds, 0)} s) | budget ${RSS_BUDGET_B} B | ` +
    `${f(RSS_BUDGET_B / r.rssSettledPerPeerB, 2)} (≥ 1) |`,
    `| keepalive CPU per PING | ${f(r.keepaliveUs)} µs (${f(100 * r.keepaliveCore)} % of a ` +
    `core) | echo ${f(r.echoUs)} µs (${f(100 * r.echoCore)} %) | ` +
    `${f(r.echoUs / r.keepaliveUs, 2)} (≥ 0.67) |`,
    `| PONGs lost | ${f(100 * r.pongLoss, 2)} % of ${r.pings} | echo ${f(100 * r.echoLoss, 2)} % ` +
    `| ${f((1 - r.pongLoss) / (1 - r.echoLoss), 3)} (≥ 1) |`,
    `| registration CPU per peer | ${f(r.registerUs)} µs | pure Registry ` +
    `${f(r.registerPureUs)} µs | ${f(r.registerPureUs / r.registerUs, 2)} (≥ 0.67) |`,
    "",
    "Where RSS per peer goes (the server's `--metrics` gauges, (loaded − idle) / peers): right " +
    `after registering, V8 heap in use ${f(r.memoryPerPeerB.heapUsed, 0)} B (live objects and ` +
    `garbage not yet collected), heap reserved ${f(r.memoryPerPeerB.heapTotal, 0)} B, buffers ` +
    `${f(r.memoryPerPeerB.external, 0)} B; settled (once V8's memory reducer has run, RSS ` +
    `stopped falling), heap in use ${f(r.memorySettledPerPeerB.heapUsed, 0)} B, reserved ` +
    `${f(r.memorySettledPerPeerB.heapTotal, 0)} B, buffers ` +
    `${f(r.memorySettledPerPeerB.external, 0)} B. The rest of RSS is native: the allocator's ` +
    "arena (what the burst of datagrams and signature checks left), the key objects of " +
    "`node:crypto` (outside the V8 heap), code paged in.",
  ].join("\n");
}

// --- Peer data plane ------------------------------------------------------------------------

/** A figure of `bench/peer_throughput.ts`, with every run's [p2p, raw] pair when it has them. */
type PeerFigure = Figure & { runs?: [number, number][]; offered_msgs_s?: number };

/** `bench/peer_throughput.ts --runs RUNS`: its figures (medians) and its summary lines. */
async function peerThroughput(): Promise<{ figures: PeerFigure[]; summary: string[] }> {
  progress(`peer data plane: ${RUNS} run(s) of each path`);
  const out = await run(Deno.execPath(), [
    "run",
    "--allow-all",
    "bench/peer_throughput.ts",
    "--runs",
    String(RUNS),
  ]);
  const lines = out.split("\n").filter((l) => l.trim());
  return {
    figures: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
    summary: lines.filter((l) => !l.startsWith("{")),
  };
}

function peerMarkdown(p: { figures: PeerFigure[]; summary: string[] }): string {
  const get = (name: string) => p.figures.find((x) => x.name === name);
  const lines = [
    "## Peer data plane: chat messages between two peers",
    "",
    "`bench/peer_throughput.ts` runs a `p2p serve` and two `p2p join --json` processes on " +
    "127.0.0.1 (relayed: both `--relay-only`; the server's per-peer relay rate limits lifted) " +
    "and pipes 50,000 lines of 100 bytes into the sender's stdin as fast as it takes them; the " +
    "rate is what the receiver prints on stdout, first message to last, every message checked " +
    "once and in order. The baseline is raw UDP between two Deno processes in the socket style " +
    "of `lib/io/udp.ts` (relayed: through a raw Deno forwarder), datagrams of the size of a sealed " +
    "one-message DATA frame, sent as fast as the socket takes them, the rate measured at the " +
    "receiver. CPU per message is the CPU time (all threads) of the sending and the receiving " +
    "process over the flood, divided by the messages; the raw baseline's is its sender's and " +
    "receiver's per datagram. Latency: a second run paced at half the rate p2p carried, each " +
    "line stamped when written to the sender's stdin and timed when read from the receiver's " +
    "stdout, against raw UDP at the same rate (one-way). On a machine shared with other work " +
    "the rates swing from run to run (the raw baseline's most: it loses datagrams it cannot " +
    "take); CPU per message varies far less.",
    "",
    "| path | p2p msgs/s | raw msgs/s | ratio (goal) | p2p CPU µs/msg | raw CPU µs/datagram | " +
    "latency p50 / p99 (offered rate) | raw p50 / p99 |",
    "| ---- | ---------: | ---------: | -----------: | -------------: | ------------------: | " +
    "-------------------------------- | ------------- |",
  ];
  for (const path of ["direct", "relayed"]) {
    const rate = get(`peer_${path}_rate`), cpu = get(`peer_${path}_cpu`);
    const p50 = get(`peer_${path}_latency_p50`), p99 = get(`peer_${path}_latency_p99`);
    if (!rate || !cpu || !p50 || !p99) continue;
    lines.push(
      `| ${path} | ${rate.value.toFixed(0)} | ${rate.baseline.toFixed(0)} | ` +
        `${rate.ratio.toFixed(2)} (≥ ${rate.goal}) | ${cpu.value.toFixed(1)} | ` +
        `${cpu.baseline.toFixed(1)} | ${p50.value.toFixed(2)} / ${p99.value.toFixed(2)} ms ` +
        `(${p50.offered_msgs_s} msgs/s) | ${p50.baseline.toFixed(2)} / ${
          p99.baseline.toFixed(2)
        } ms |`,
    );
  }
  lines.push("", "Every run (p2p / raw):", "");
  for (const path of ["direct", "relayed"]) {
    for (const [kind, unit] of [["rate", "msgs/s"], ["cpu", "CPU µs per message"]]) {
      const r = get(`peer_${path}_${kind}`)?.runs;
      if (!r) continue;
      lines.push(`- ${path}, ${unit}: ${r.map(([a, b]) => `${a} / ${b}`).join(", ")}`);
    }
  }
  return lines.join("\n");
}

/** `bench/direct_time.ts`: time to a direct path in the simulator, in peer round trips. */
async function directTime(): Promise<{ figures: Figure[]; summary: string[] }> {
  progress("time to direct: 100 simulated pairs at 0 % and 5 % loss");
  return figuresAndSummary(
    await run(Deno.execPath(), ["run", "--allow-all", "bench/direct_time.ts", "100"]),
  );
}

/** A suite's output split into its JSON figure lines and the rest (its summary). */
function figuresAndSummary(out: string): { figures: Figure[]; summary: string[] } {
  const lines = out.split("\n").filter((l) => l.trim());
  return {
    figures: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
    summary: lines.filter((l) => !l.startsWith("{")),
  };
}

function directMarkdown(d: { summary: string[] }): string {
  return [
    "## Time to a direct path",
    "",
    "`bench/direct_time.ts` runs two peers behind port-restricted NATs in the virtual-time " +
    "simulator, every link 25 ms one way (a 50 ms peer RTT, the server as far away), the second " +
    "INTRO skewed by 0 to 100 ms, 100 seeds: the time from the later accepted INTRO until both " +
    "peers report a direct path, in peer RTTs. The physical floor (the baseline) is one RTT; " +
    "the goals are a median of at most 1.2 and a worst of at most 2 RTT at 0 % loss.",
    "",
    ...d.summary.map((l) => `- ${l}`),
  ].join("\n");
}

/** `bench/cluster_intro.ts`: introductions across cluster servers (needs nats-server). */
async function clusterIntro(): Promise<{ figures: Figure[]; summary: string[] } | undefined> {
  if ((await tryRun("nats-server", ["--version"])) === undefined) {
    progress("cluster: skipped (nats-server not found; apt-get install nats-server)");
    return undefined;
  }
  progress("cluster: introduction latency across two servers vs one, 200 samples each");
  const intro = figuresAndSummary(
    await run(Deno.execPath(), ["run", "--allow-all", "bench/cluster_intro.ts", "200"]),
  );
  const caps = [];
  for (const layout of ["--affinity", "--spread"]) {
    progress(`cluster: 3 servers x 5,000 peers beside 3 plain ones, ${layout} (about 2 min)`);
    caps.push(figuresAndSummary(
      await run(Deno.execPath(), [
        "run",
        "--allow-all",
        "bench/cluster_capacity.ts",
        ...(layout === "--affinity" ? [layout] : []),
      ]),
    ));
  }
  return {
    figures: [...intro.figures, ...caps.flatMap((c) => c.figures)],
    summary: [...intro.summary, ...caps.flatMap((c) => c.summary)],
  };
}

function clusterMarkdown(d: { summary: string[] }): string {
  return [
    "## Introductions across cluster servers",
    "",
    "`bench/cluster_intro.ts` runs two `p2p serve --cluster` processes on one `nats-server` " +
    "(127.0.0.1) and, in a room of its own per sample, registers peer X with the first, then " +
    "peer Y with the first (the baseline) or the second: the time from Y's HELLO to both " +
    "INTROs. Goal: the median across servers at most 1.2 × the baseline's + 2 ms. " +
    "`bench/cluster_capacity.ts` registers 3 × 5,000 peers (rooms of 10) at three such " +
    "servers while three plain servers register the same numbers beside them (the same load " +
    "on the machine), then 15,000 at one plain server: RSS per peer and CPU per registration " +
    "of each, and nats-server's. Goal: CPU per registration, cluster on vs off, ≥ 0.8× with " +
    "every room at one server (a room's affinity); rooms spread over the servers (the worst " +
    "case: every member held in full everywhere) are reported without a goal.",
    "",
    ...d.summary.map((l) => `- ${l}`),
  ].join("\n");
}

// --- deno bench ---------------------------------------------------------------------------

interface BenchRow {
  file: string;
  group: string;
  name: string;
  baseline: boolean;
  avgNs: number;
}

async function denoBench(): Promise<BenchRow[]> {
  const byKey = new Map<string, { row: Omit<BenchRow, "avgNs">; avgs: number[] }>();
  for (let i = 1; i <= RUNS; i++) {
    progress(`deno bench: run ${i}/${RUNS}`);
    const out = JSON.parse(
      await run(Deno.execPath(), ["bench", "--allow-all", "--json", "bench/"]),
    );
    for (const b of out.benches) {
      const ok = b.results?.[0]?.ok;
      if (!ok) continue;
      const file = String(b.origin).replace(/^.*\/bench\//, "bench/");
      const key = `${file}\0${b.group ?? ""}\0${b.name}`;
      let e = byKey.get(key);
      if (!e) {
        const row = {
          file,
          group: String(b.group ?? ""),
          name: String(b.name),
          baseline: Boolean(b.baseline),
        };
        byKey.set(key, e = { row, avgs: [] });
      }
      e.avgs.push(Number(ok.avg));
    }
  }
  return [...byKey.values()].map((e) => ({ ...e.row, avgNs: median(e.avgs) }));
}

function duration(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

function benchMarkdown(rows: BenchRow[]): string {
  const lines = [
    "## `Deno.bench` files",
    "",
    `\`deno bench bench/\`, ${RUNS} run${RUNS > 1 ? "s" : ""}: each time is the median of the ` +
    "runs' averages per iteration; ratio = the group's baseline time over this one's (higher " +
    "is better; below 1 is slower than the baseline). What each group compares is described at " +
    "the top of its file.",
    "",
    "| file | group | benchmark | time/iter | baseline | ratio |",
    "| ---- | ----- | --------- | --------: | -------- | ----: |",
  ];
  for (const r of rows) {
    const base = rows.find((b) => b.file === r.file && b.group === r.group && b.baseline);
    lines.push(
      `| ${r.file} | ${r.group || "—"} | ${r.name} | ${duration(r.avgNs)} | ${
        base && base !== r ? base.name : r.baseline ? "(baseline)" : "—"
      } | ${base ? (base.avgNs / r.avgNs).toFixed(2) : "—"} |`,
    );
  }
  return lines.join("\n");
}

// --- The document -------------------------------------------------------------------------

async function machine(coturnVersion: string | undefined): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU";
  const memKb = Number(
    /MemTotal:\s*(\d+)/.exec(await Deno.readTextFile("/proc/meminfo").catch(() => ""))?.[1] ?? 0,
  );
  const commit = (await tryRun("git", ["-C", ROOT.pathname, "rev-parse", "--short", "HEAD"]))
    ?.trim();
  const dirty = (await tryRun("git", ["-C", ROOT.pathname, "status", "--porcelain"]))?.trim();
  return [
    `- Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
    `- Machine: ${model}, ${navigator.hardwareConcurrency} logical CPUs, ${
      (memKb / 1024 / 1024).toFixed(1)
    } GiB RAM, ${Deno.build.os} ${Deno.osRelease()}`,
    `- Deno ${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`,
    `- coturn: ${coturnVersion ?? "not installed"}`,
    `- Source: ${
      commit ? `commit ${commit}${dirty ? " with uncommitted changes" : ""}` : "unknown"
    }`,
    `- Each figure is the median of ${RUNS} run${RUNS > 1 ? "s" : ""}.`,
  ].join("\n");
}

function ratiosMarkdown(figures: Figure[]): string {
  return [
    "## Ratios",
    "",
    "What `deno task bench:ratios` prints (higher is better; the goal is the lowest acceptable " +
    "ratio). `relay_cpu_*`: relayed packets per CPU-second, p2p against the raw forwarder; " +
    "`peer_*_rate`: chat messages per second between two peers against raw UDP on the same " +
    "path (goal 0.5); `peer_*_cpu` and `peer_*_latency_*`: the raw baseline's cost over p2p's; " +
    "`relay_delivered_*`: the fraction of datagrams delivered, against the forwarder's (goal " +
    `${DELIVERY_GOAL} paced; ${DELIVERY_GOAL_UNPACED} unpaced, where bursts overflow the default ` +
    "socket buffers of either now and then).",
    "",
    "| name | value | baseline | ratio | goal | met |",
    "| ---- | ----: | -------: | ----: | ---: | --- |",
    ...figures.map((x) =>
      `| ${x.name} | ${num(x.value)} | ${num(x.baseline)} | ${x.ratio.toFixed(2)} | ${
        x.goal === null ? "—" : Number(x.goal.toFixed(2))
      } | ${x.goal === null ? "—" : x.ratio >= x.goal ? "yes" : "**no**"} |`
    ),
  ].join("\n");
}

// --- File transfer --------------------------------------------------------------------------

/** `bench/file_transfer.ts --runs RUNS`: its figures (medians) and its summary lines. */
async function fileTransfer(): Promise<{ figures: Figure[]; summary: string[] }> {
  progress(`file transfer: ${RUNS} run(s) of p2p, a TCP copy and a raw UDP blast`);
  const out = await run(Deno.execPath(), [
    "run",
    "--allow-all",
    "bench/file_transfer.ts",
    "--runs",
    String(RUNS),
  ]);
  progress(`file transfer: ${RUNS} run(s) of one sender to 4 receivers against one, 100 MB`);
  const group = await run(Deno.execPath(), [
    "run",
    "--allow-all",
    "bench/file_group.ts",
    "--runs",
    String(RUNS),
  ]);
  const lines = (out + "\n" + group).split("\n").filter((l) => l.trim());
  return {
    figures: lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
    summary: lines.filter((l) => !l.startsWith("{")),
  };
}

function filesMarkdown(p: { figures: Figure[]; summary: string[] }): string {
  return [
    "## File transfer",
    "",
    "`bench/file_transfer.ts` moves one 50 MB file between two Deno processes on 127.0.0.1 three " +
    "ways: `p2p join`'s `/send` to an `--auto-accept` peer (offered to done: every chunk " +
    "verified, the SHA-256 checked, the file in place), a Deno TCP copy written to disk, and a raw " +
    "UDP blast of FILE_DATA-sized datagrams (goodput at the receiver). Chat latency: lines sent " +
    "every 50 ms between the same peers without and during the transfer. CPU: the sender's and " +
    "receiver's CPU time over the transfer per MB, against the raw blast's. Group " +
    "(`bench/file_group.ts`): one sender `/send`s 100 MB to a room of 4 receivers, which fetch " +
    "from each other too; `files_group_upload` is the file's size over the sender's uploaded " +
    "file bytes (goal: at most 1.5 copies), `files_group_time` a single transfer's time over the " +
    "group's. Memory during a 2 GB transfer: `deno task bench:memory` (not run here: minutes; " +
    "peers with the V8 flags of `deno task join` and the binaries, `V8_FLAGS` in " +
    "scripts/compile_all.ts). Measured at commit 391e798, two runs: the sender's RSS 66 MB " +
    "before, at most 96 and 93 MB (RssAnon 52 and 48 MB, RssFile 44–45 MB: the mapped deno " +
    "binary), mean 85 MB over the first quarter of the transfer and 93 and 88 MB over the last; " +
    "the receiver's 66 and 65 MB before, at most 93 and 88 MB (anon 48 and 43 MB), 80 and 78 MB " +
    "over the first quarter, 89 and 84 MB over the last. With V8's defaults (commit 89fce34): " +
    "sender 69 -> 200 MB (anon 155 MB; 120 MB over the first quarter, 184 MB over the last), " +
    "receiver 69 -> 166 MB (anon 122 MB; 103, 160 MB).",
    "",
    ...p.summary,
  ].join("\n");
}

function num(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(3);
}

const coturnVersion = (await tryRun("turnserver", ["--version"]))?.trim().split("\n")[0];
const coturn = coturnVersion !== undefined && /^\d/.test(coturnVersion);
const bench = args.ratios || !runs("deno-bench") ? [] : await denoBench();
const relay = runs("relay") ? await relayLoad(coturn) : undefined;
const cap = runs("capacity") ? await capacity() : undefined;
const peer = runs("peer") ? await peerThroughput() : undefined;
const files = runs("files") ? await fileTransfer() : undefined;
const direct = runs("direct") ? await directTime() : undefined;
const clusterRun = runs("cluster") ? await clusterIntro() : undefined;
const peerFigures: Figure[] = (peer?.figures ?? [])
  .filter((x) => !args.ratios || x.goal !== null)
  .map(({ name, value, baseline, ratio, goal }) => ({ name, value, baseline, ratio, goal }));
const directFigures = (direct?.figures ?? []).filter((x) => !args.ratios || x.goal !== null);
const fileFigures = (files?.figures ?? []).filter((x) => !args.ratios || x.goal !== null);
const figures = [
  ...relay?.figures ?? [],
  ...cap?.figures ?? [],
  ...peerFigures,
  ...fileFigures,
  ...directFigures,
  ...clusterRun?.figures ?? [],
];
for (const x of figures) console.log(JSON.stringify(x));
if (args.only === "deno-bench") console.log(benchMarkdown(bench));
if (args.only === "capacity" && cap) console.log(capacityMarkdown(cap.result));

if (args.only === "files" && files) console.log(filesMarkdown(files));

if (!args.ratios && !args["no-write"] && relay && cap && peer && files && direct) {
  const doc = [
    "# Benchmarks",
    "",
    "Written by `deno task bench` (`scripts/bench.ts`); `deno task bench:ratios` prints the " +
    "ratios alone as JSON lines. Every figure has a baseline measured in the same run.",
    "",
    await machine(coturn ? coturnVersion : undefined),
    "",
    ratiosMarkdown(figures),
    "",
    relayMarkdown(relay.table, coturn ? coturnVersion : undefined),
    "",
    capacityMarkdown(cap.result),
    "",
    peerMarkdown(peer),
    "",
    filesMarkdown(files),
    "",
    directMarkdown(direct),
    "",
    ...(clusterRun ? [clusterMarkdown(clusterRun), ""] : []),
    benchMarkdown(bench),
    "",
  ].join("\n");
  await Deno.writeTextFile(new URL(DOC, ROOT), doc);
  // deno fmt pads the tables and wraps the prose; run from the root so deno.json's options apply.
  const fmt = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", DOC],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!fmt.success) {
    console.error(`deno fmt ${DOC} failed (exit code ${fmt.code})`);
    Deno.exit(1);
  }
  progress(`wrote ${DOC}`);
}
