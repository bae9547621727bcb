/**
 * A thundering herd on loopback (`deno task soak -- --herd 40`): one `p2p serve` and N
 * `p2p join --json` peers started within a couple of seconds, at seeded offsets. Reports how
 * long until every peer registered, until every peer listed every other (from their `peer`
 * events), and, once the observation time has passed, how many ordered pairs are direct,
 * relayed or still missing (from each peer's `/peers` answer). Every process is ended in a
 * `finally` block.
 *
 * @module
 */
import {
  type P2pProcess,
  prepareProduct,
  type RunningServer,
  startPeer,
  startServer,
  testPassphrase,
} from "./proc.ts";
import { LO } from "./room.ts";
import { prng } from "./prng.ts";
import { writeProcessLogs } from "./soak.ts";

/** Options of {@link runHerd}. */
export interface HerdOptions {
  /** Seed of the start offsets. */
  seed: number;
  /** How many peers. */
  peers: number;
  /** Every peer is started within this long, ms (default 2 s). */
  spreadMs?: number;
  /** Pairs are counted this long after the first start, ms (default 30 s). */
  observeMs?: number;
  /** Debug logging (`-v`) on every process's stderr. */
  verbose?: boolean;
  /** Write every process's events and stderr into this directory. */
  logDir?: string;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
}

/** What a herd measured. */
export interface HerdResult {
  /** The seed. */
  seed: number;
  /** Peers started. */
  peers: number;
  /** Start spread, ms. */
  spreadMs: number;
  /** Peers that registered. */
  registered: number;
  /** From the first start until the last peer registered, ms (null: not all did). */
  allRegisteredMs: number | null;
  /** From the first start until the last peer was started, ms (spawning takes time too). */
  startedWithinMs: number;
  /** The longest a peer took from its spawn to registering (Deno's start-up included), ms. */
  slowestRegisterMs: number | null;
  /** The median of the same, ms. */
  medianRegisterMs: number | null;
  /**
   * The longest a peer took from its `registering` event (socket bound, first HELLO) to
   * `ready`: what its `--timeout` (10 s) limits, ms.
   */
  slowestHelloMs: number | null;
  /** From the first start until every peer listed every other, ms (null: not within the time). */
  allSeeMs: number | null;
  /** Ordered pairs by path in the `/peers` answers, asked at {@link atMs}. */
  pairs: { total: number; direct: number; relay: number; pending: number; missing: number };
  /** When `/peers` was asked, ms after the first start. */
  atMs: number;
  /** What missed the goal (every peer registered, everyone listed, every pair direct). */
  failures: string[];
}

interface HerdPeer {
  proc: P2pProcess;
  startAt: number;
}

/** Starts the herd, watches it, ends every process. */
export async function runHerd(o: HerdOptions): Promise<HerdResult> {
  const spreadMs = o.spreadMs ?? 2_000;
  const observeMs = o.observeMs ?? 30_000;
  const say = (line: string) => o.progress?.(line);
  await prepareProduct();
  const rng = prng(o.seed);
  const offsets = Array.from({ length: o.peers }, () => Math.floor(rng() * spreadMs)).sort((a, b) =>
    a - b
  );
  const room = `herd-${o.seed}`;
  const extraArgs = o.verbose ? ["-v"] : [];
  let server: RunningServer | undefined;
  const herd: HerdPeer[] = [];
  try {
    server = await startServer({ host: LO, port: 0, extraArgs });
    const t0 = performance.now();
    for (const [i, offset] of offsets.entries()) {
      await sleep(t0 + offset - performance.now());
      const proc = startPeer({
        server: server.addr,
        room,
        name: `h${i}`,
        bind: LO,
        passphrase: testPassphrase(room),
        extraArgs,
      });
      herd.push({ proc, startAt: performance.now() });
    }
    say(`${o.peers} peers started in ${Math.round(performance.now() - t0)} ms`);
    const deadline = t0 + observeMs;
    await until(() => herd.every((p) => readyOf(p.proc) || p.proc.exitCode !== null), deadline);
    say(`${herd.filter((p) => readyOf(p.proc)).length} registered`);
    await until(() => seesAll(herd), deadline);
    await sleep(deadline - performance.now());
    const atMs = performance.now() - t0;
    const answers = await Promise.all(herd.map((p) => askPeers(p.proc)));
    return measure(o, spreadMs, t0, atMs, herd, answers);
  } finally {
    await Promise.all(herd.map((p) => p.proc.close()));
    await server?.proc.close();
    const procs = [...herd.map((p) => p.proc), ...(server ? [server.proc] : [])];
    if (o.logDir) await writeProcessLogs(o.logDir, procs);
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

/** Polls `cond` every 200 ms until it holds or `deadline` (performance.now()) passes. */
async function until(cond: () => boolean, deadline: number): Promise<void> {
  while (!cond() && performance.now() < deadline) await sleep(200);
}

function readyOf(p: P2pProcess) {
  return p.events.find((e) => e.event === "ready");
}

/** Names each peer lists (from its `peer` and `left` events). */
function listed(p: P2pProcess): Set<string> {
  const names = new Set<string>();
  for (const e of p.events) {
    if (e.event === "peer") names.add(String(e.name));
    if (e.event === "left") names.delete(String(e.name));
  }
  return names;
}

function seesAll(herd: readonly HerdPeer[]): boolean {
  const names = herd.map((p) => readyOf(p.proc)?.name);
  if (names.some((n) => n === undefined)) return false;
  return herd.every((p, i) => {
    const l = listed(p.proc);
    return names.every((n, j) => j === i || l.has(String(n)));
  });
}

/** The peer's `/peers` rows (path by name), or null if it did not answer. */
async function askPeers(p: P2pProcess): Promise<Map<string, string> | null> {
  if (!readyOf(p) || p.exitCode !== null) return null;
  const before = p.eventsOf("peers").length;
  try {
    await p.send("/peers");
    await p.waitFor(() => p.eventsOf("peers").length > before, 5_000, '{"event":"peers"}');
  } catch {
    return null;
  }
  const ev = p.eventsOf("peers").at(-1)!;
  const rows = Array.isArray(ev.peers) ? ev.peers as Array<Record<string, unknown>> : [];
  return new Map(rows.map((r) => [String(r.name), String(r.path)]));
}

function measure(
  o: HerdOptions,
  spreadMs: number,
  t0: number,
  atMs: number,
  herd: readonly HerdPeer[],
  answers: ReadonlyArray<Map<string, string> | null>,
): HerdResult {
  const readyAt = herd.map((p) => {
    const ev = readyOf(p.proc);
    return ev ? p.proc.receivedAt(ev)! : undefined;
  });
  const registered = readyAt.filter((t) => t !== undefined).length;
  const own = herd.flatMap((p, i) => readyAt[i] === undefined ? [] : [readyAt[i]! - p.startAt])
    .sort((a, b) => a - b);
  const hello = herd.flatMap((p, i) => {
    const ev = p.proc.events.find((e) => e.event === "registering");
    return readyAt[i] === undefined || !ev ? [] : [readyAt[i]! - p.proc.receivedAt(ev)!];
  });
  // Everyone lists everyone: the latest first `peer` event of any pair.
  const names = herd.map((p) => readyOf(p.proc)?.name);
  let allSee: number | null = registered === herd.length ? 0 : null;
  for (const [i, p] of herd.entries()) {
    for (const [j, n] of names.entries()) {
      if (i === j || allSee === null) continue;
      const ev = p.proc.events.find((e) => e.event === "peer" && e.name === n);
      const at = ev ? p.proc.receivedAt(ev)! - t0 : null;
      allSee = at === null || at > atMs ? null : Math.max(allSee, at);
    }
  }
  const pairs = {
    total: herd.length * (herd.length - 1),
    direct: 0,
    relay: 0,
    pending: 0,
    missing: 0,
  };
  for (const [i, rows] of answers.entries()) {
    for (const [j, n] of names.entries()) {
      if (i === j) continue;
      const path = n === undefined ? undefined : rows?.get(String(n));
      if (path === "direct") pairs.direct++;
      else if (path === "relay") pairs.relay++;
      else if (path === "pending") pairs.pending++;
      else pairs.missing++;
    }
  }
  const allRegistered = registered === herd.length
    ? Math.max(...readyAt.map((t) => t! - t0))
    : null;
  const failures: string[] = [];
  if (registered < herd.length) failures.push(`${herd.length - registered} peers never registered`);
  if (allSee === null) failures.push(`not every peer listed every other within ${secs(atMs)}`);
  if (pairs.direct < pairs.total) {
    failures.push(
      `${pairs.total - pairs.direct} of ${pairs.total} pairs not direct after ${secs(atMs)} ` +
        `(${pairs.relay} relayed, ${pairs.pending} pending, ${pairs.missing} missing)`,
    );
  }
  return {
    seed: o.seed,
    peers: herd.length,
    spreadMs,
    registered,
    allRegisteredMs: allRegistered === null ? null : Math.round(allRegistered),
    startedWithinMs: Math.round(herd.at(-1)!.startAt - t0),
    slowestRegisterMs: own.length ? Math.round(own[own.length - 1]!) : null,
    slowestHelloMs: hello.length ? Math.round(Math.max(...hello)) : null,
    medianRegisterMs: own.length ? Math.round(own[Math.floor(own.length / 2)]!) : null,
    allSeeMs: allSee === null ? null : Math.round(allSee),
    pairs,
    atMs: Math.round(atMs),
    failures,
  };
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The human summary of a herd. */
export function summarizeHerd(r: HerdResult): string[] {
  const ms = (v: number | null) => v === null ? "never" : secs(v);
  const lines = [
    `herd: seed ${r.seed}, ${r.peers} peers started within ${secs(r.startedWithinMs)} ` +
    `(asked: ${secs(r.spreadMs)})`,
    `registered ${r.registered}/${r.peers}; all registered after ${ms(r.allRegisteredMs)} ` +
    `(slowest peer ${ms(r.slowestRegisterMs)} from its spawn, median ${
      ms(r.medianRegisterMs)
    }; slowest from its first HELLO ${ms(r.slowestHelloMs)})`,
    `every peer listed every other after ${ms(r.allSeeMs)}`,
    `after ${secs(r.atMs)}: ${r.pairs.direct} of ${r.pairs.total} pairs direct, ` +
    `${r.pairs.relay} relayed, ${r.pairs.pending} pending, ${r.pairs.missing} missing`,
  ];
  for (const f of r.failures) lines.push(`FAIL ${f}`);
  return lines;
}
