/**
 * A churn run on loopback, for `deno task soak` and `tests/e2e/soak_test.ts`: one real
 * `p2p serve` and N real `p2p join --json` peers, lines typed into every running peer all the
 * while, and a schedule of disruptions (peers leaving and rejoining with the same identity,
 * peers and the server suspended with SIGSTOP, the server killed and restarted on the same
 * port). The harness keeps the ground truth (who ran, slept, left when; which line was typed
 * where and when); `soak_check.ts` judges what the peers printed against it.
 *
 * Everything is bounded: the schedule ends within its duration, every wait has a limit, and
 * every process started is ended by its own handle in `finally` blocks.
 *
 * @module
 */
import { P2pProcess, prepareProduct, startPeer, startServer, testPassphrase } from "./proc.ts";
import { LO } from "./room.ts";
import { prng } from "./prng.ts";
import { between, checkPlan, type Disruption, randomPlan } from "./soak_plan.ts";
import {
  type CheckOptions,
  checkSoak,
  pendingDeliveries,
  roomWholeAt,
  type SoakReport,
} from "./soak_check.ts";
import {
  type ActionRecord,
  type InstanceRecord,
  isRunning,
  lineText,
  type PeerRow,
  type Sample,
  type ServerRecord,
  type SoakRecord,
} from "./soak_record.ts";

/** Options of {@link runSoak}. */
export interface SoakOptions {
  /** Seed of the one PRNG everything random derives from. */
  seed: number;
  /** Peer slots (at least 2). */
  peers: number;
  /** Length of the disrupted phase, ms. */
  durationMs: number;
  /** The schedule (default: {@link randomPlan} from the seed). */
  plan?: readonly Disruption[];
  /** Each running peer types a line every this many ms (uniform; default 1–3 s). */
  sendEveryMs?: readonly [number, number];
  /** After the phase, wait at most this long for deliveries still due (default 20 s). */
  settleMs?: number;
  /** Resource samples every this many ms (default 2 s). */
  sampleEveryMs?: number;
  /** `--keepalive` of the peers, s (default: theirs, 25). */
  keepaliveSec?: number;
  /** `--expire` of the server, s (default: its own, 75). */
  expireSec?: number;
  /** Debug logging (`-v`) on every process's stderr. */
  verbose?: boolean;
  /** Write every process's events and stderr, and the record, into this directory. */
  logDir?: string;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
  /** Limits of the checks. */
  check?: Partial<CheckOptions>;
}

/** What {@link runSoak} returns. */
export interface SoakResult {
  /** The schedule that ran. */
  plan: readonly Disruption[];
  /** What happened. */
  record: SoakRecord;
  /** The verdict. */
  report: SoakReport;
  /** Wall time of the whole run, ms. */
  wallMs: number;
}

/** Ends a sleep early. */
class Stop {
  #ctl = new AbortController();
  /** Whether {@link stop} was called. */
  get stopped(): boolean {
    return this.#ctl.signal.aborted;
  }
  /** Wakes every sleeper. */
  stop(): void {
    this.#ctl.abort();
  }
  /** Sleeps `ms` or until stopped. */
  sleep(ms: number): Promise<void> {
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#ctl.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#ctl.signal.addEventListener("abort", done);
    });
  }
}

/** Sleeps `ms` (nothing if it is not positive). */
function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/** An instance's record while it runs (events are read from the process at the end). */
type LiveRecord = Omit<InstanceRecord, "events">;

/** A running `p2p join` and its record. */
interface Live {
  proc: P2pProcess;
  rec: LiveRecord;
  exited: Promise<void>;
}

/** One identity: its name, configuration directory (identity file), and its line counter. */
interface Slot {
  index: number;
  name: string;
  dir: string;
  rng: () => number;
  seq: number;
  cur: Live | undefined;
}

const READY_WAIT = 20_000;
/** A peer told to leave delivers its queue first: at most 30 s (its drain timeout). */
const LEAVE_WAIT = 40_000;
/** At the end (after the settle phase), peers get less time before SIGTERM. */
const END_WAIT = 5_000;
const START_ATTEMPTS = 4;

/** One churn run; see {@link runSoak}. */
class SoakRun {
  #o: SoakOptions;
  #plan: readonly Disruption[];
  #slots: Slot[] = [];
  #instances: Live[] = [];
  #lines: SoakRecord["lines"] = [];
  #servers: Array<{ proc: P2pProcess; rec: ServerRecord }> = [];
  #actions: ActionRecord[] = [];
  #samples: Sample[] = [];
  #finalPeers: SoakRecord["finalPeers"] = [];
  #failedStarts = 0;
  #origin = performance.now();
  #phaseAt = 0;
  #trafficEndAt = 0;
  #endAt = 0;
  #port = 0;
  #addr = "";
  #room: string;
  #traffic = new Stop();
  #sampling = new Stop();
  #allProcs = new Set<P2pProcess>();

  constructor(o: SoakOptions) {
    if (o.peers < 2) throw new Error(`A churn run needs at least 2 peers, not ${o.peers}`);
    this.#o = o;
    const rng = prng(o.seed);
    this.#plan = o.plan ?? randomPlan(rng, { peers: o.peers, durationMs: o.durationMs });
    checkPlan(this.#plan, o.peers);
    this.#room = `soak-${o.seed}`;
    for (let i = 0; i < o.peers; i++) {
      this.#slots.push({
        index: i,
        name: `p${i}`,
        dir: Deno.makeTempDirSync({ prefix: `p2p-soak-p${i}-` }),
        rng: prng(Math.floor(rng() * 2 ** 32)),
        seq: 0,
        cur: undefined,
      });
    }
  }

  get plan(): readonly Disruption[] {
    return this.#plan;
  }

  #say(line: string): void {
    const s = ((performance.now() - this.#origin) / 1000).toFixed(1).padStart(6);
    this.#o.progress?.(`[${s} s] ${line}`);
  }

  #act(kind: ActionRecord["kind"], slot: number): void {
    this.#actions.push({ at: performance.now(), kind, slot });
    this.#say(slot < 0 ? kind : `${kind} p${slot}`);
  }

  /** Runs the whole thing; always ends every process it started. */
  async run(): Promise<SoakRecord> {
    try {
      await prepareProduct();
      await this.#startServer(0);
      await Promise.all(this.#slots.map((s) => this.#join(s)));
      await this.#waitWhole(30_000);
      this.#phaseAt = performance.now();
      this.#say(`disruptions begin: ${this.#plan.length} planned`);
      const senders = this.#slots.map((s) => this.#sender(s));
      const sampler = this.#sampler();
      const targets = new Map<number, Disruption[]>();
      for (const d of this.#plan) {
        const key = "slot" in d ? d.slot : -1;
        targets.set(key, [...(targets.get(key) ?? []), d]);
      }
      await Promise.all([...targets.values()].map((list) => this.#perform(list)));
      await sleep(this.#phaseAt + this.#o.durationMs - performance.now());
      this.#trafficEndAt = performance.now();
      this.#traffic.stop();
      await Promise.all(senders);
      this.#say(`traffic ends: ${this.#lines.length} lines typed`);
      await this.#settle(this.#o.settleMs ?? 20_000);
      await this.#askPeers();
      this.#endAt = performance.now();
      this.#sampling.stop();
      await sampler;
    } finally {
      this.#traffic.stop();
      this.#sampling.stop();
      await this.#closeAll();
    }
    return this.#snapshot();
  }

  // -------------------------------------------------------------------------------------------
  // Processes

  async #startServer(port: number): Promise<void> {
    const extraArgs = [
      ...(this.#o.expireSec !== undefined ? ["--expire", String(this.#o.expireSec)] : []),
      ...(this.#o.verbose ? ["-v"] : []),
    ];
    for (let attempt = 1;; attempt++) {
      const rec: ServerRecord = { startAt: performance.now(), killed: false, suspended: [] };
      try {
        const s = await startServer({
          host: LO,
          port,
          extraArgs,
          label: `server#${this.#servers.length}`,
        });
        this.#allProcs.add(s.proc);
        const listening = s.proc.events.find((e) => e.event === "listening")!;
        rec.readyAt = s.proc.receivedAt(listening);
        this.#servers.push({ proc: s.proc, rec });
        this.#addr = s.addr;
        this.#port = Number(s.addr.slice(s.addr.lastIndexOf(":") + 1));
        return;
      } catch (e) {
        if (attempt >= 3) throw e;
        this.#say(`server did not start (${(e as Error).message.split("\n")[0]}); again`);
        await sleep(1_000);
      }
    }
  }

  get #server(): { proc: P2pProcess; rec: ServerRecord } | undefined {
    const s = this.#servers.at(-1);
    return s && s.rec.endAt === undefined ? s : undefined;
  }

  /** Starts the slot's peer and waits for it to register, a few times if it does not. */
  async #join(slot: Slot): Promise<void> {
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      if (await this.#startInstance(slot)) return;
      this.#failedStarts++;
      await sleep(2_000);
    }
    this.#say(`p${slot.index} did not register in ${START_ATTEMPTS} attempts`);
  }

  async #startInstance(slot: Slot): Promise<boolean> {
    const id = this.#instances.length;
    const extraArgs = this.#o.verbose ? ["-v"] : [];
    const proc = startPeer({
      server: this.#addr,
      room: this.#room,
      name: slot.name,
      bind: LO,
      label: `${slot.name}#${id}`,
      passphrase: testPassphrase(this.#room),
      env: { XDG_CONFIG_HOME: slot.dir },
      extraArgs,
      ...(this.#o.keepaliveSec !== undefined ? { keepaliveSec: this.#o.keepaliveSec } : {}),
    });
    this.#allProcs.add(proc);
    const rec: LiveRecord = {
      id,
      slot: slot.index,
      name: slot.name,
      startAt: performance.now(),
      suspended: [],
    };
    const exited = proc.wait().then((code) => {
      rec.exitAt = performance.now();
      rec.exitCode = code;
    }, () => {});
    const live: Live = { proc, rec, exited };
    this.#instances.push(live);
    try {
      const ev = await proc.waitFor((e) => e.event === "ready", READY_WAIT, '{"event":"ready"}');
      rec.readyAt = proc.receivedAt(ev);
      rec.readyName = String(ev.name);
      rec.fingerprint = String(ev.fingerprint);
      slot.cur = live;
      this.#actions.push({ at: rec.readyAt!, kind: "join", slot: slot.index });
      this.#say(`p${slot.index} registered as ${rec.readyName} (instance ${id})`);
      return true;
    } catch {
      this.#say(`p${slot.index} (instance ${id}) did not register`);
      rec.leaveAt ??= performance.now();
      rec.leaveHow = "end";
      await proc.close();
      return false;
    }
  }

  /** Makes the slot's peer leave and waits for it to exit (killing it if it hangs). */
  async #leave(slot: Slot, how: "quit" | "eof" | "end"): Promise<void> {
    const live = slot.cur;
    if (!live) return;
    slot.cur = undefined;
    live.rec.leaveAt = Math.max(performance.now(), this.#endAt + 1);
    live.rec.leaveHow = how;
    if (how !== "end") this.#act("leave", slot.index);
    for (const s of live.rec.suspended) {
      if (s.to === Infinity) {
        live.proc.kill("SIGCONT");
        s.to = performance.now();
      }
    }
    if (how === "quit") await live.proc.send("/quit").catch(() => {});
    else await live.proc.closeStdin();
    try {
      await live.proc.wait(how === "end" ? END_WAIT : LEAVE_WAIT);
    } catch {
      if (how !== "end") this.#say(`${live.proc.label} did not exit in time; stopped`);
    }
    await live.proc.close();
    await live.exited;
  }

  async #closeAll(): Promise<void> {
    for (const s of this.#servers) {
      for (const i of s.rec.suspended) if (i.to === Infinity) i.to = performance.now();
      s.proc.kill("SIGCONT");
    }
    this.#endAt ||= performance.now();
    await Promise.all(this.#slots.map((s) => this.#leave(s, "end")));
    await Promise.all([...this.#allProcs].map((p) => p.close()));
    for (const s of this.#servers) s.rec.endAt ??= performance.now();
    if (this.#o.logDir) await this.#writeLogs(this.#o.logDir);
    for (const s of this.#slots) Deno.removeSync(s.dir, { recursive: true });
  }

  // -------------------------------------------------------------------------------------------
  // The schedule

  /** Performs one target's disruptions in order, each not before its time. */
  async #perform(list: readonly Disruption[]): Promise<void> {
    for (const d of list) {
      await sleep(this.#phaseAt + d.at - performance.now());
      switch (d.kind) {
        case "leave":
          await this.#leaveAndRejoin(this.#slots[d.slot]!, d.how, d.awayMs);
          break;
        case "suspend":
          await this.#suspendPeer(this.#slots[d.slot]!, d.forMs);
          break;
        case "server-suspend":
          await this.#suspendServer(d.forMs);
          break;
        case "server-kill":
          await this.#restartServer(d.downMs);
          break;
      }
    }
  }

  async #leaveAndRejoin(slot: Slot, how: "quit" | "eof", awayMs: number): Promise<void> {
    const from = performance.now();
    await this.#leave(slot, how);
    await sleep(from + awayMs - performance.now());
    await this.#join(slot);
  }

  async #suspendPeer(slot: Slot, ms: number): Promise<void> {
    const live = slot.cur;
    if (!live || live.rec.exitAt !== undefined) return;
    const span = { from: performance.now(), to: Infinity };
    live.proc.kill("SIGSTOP");
    live.rec.suspended.push(span);
    this.#act("suspend", slot.index);
    await sleep(ms);
    live.proc.kill("SIGCONT");
    span.to = performance.now();
    this.#act("resume", slot.index);
  }

  async #suspendServer(ms: number): Promise<void> {
    const s = this.#server;
    if (!s) return;
    const span = { from: performance.now(), to: Infinity };
    s.proc.kill("SIGSTOP");
    s.rec.suspended.push(span);
    this.#act("server-suspend", -1);
    await sleep(ms);
    s.proc.kill("SIGCONT");
    span.to = performance.now();
    this.#act("server-resume", -1);
  }

  async #restartServer(downMs: number): Promise<void> {
    const s = this.#server;
    if (!s) return;
    s.proc.kill("SIGKILL");
    s.rec.killed = true;
    s.rec.endAt = performance.now();
    this.#act("server-kill", -1);
    await s.proc.close();
    await sleep(s.rec.endAt + downMs - performance.now());
    await this.#startServer(this.#port);
    this.#act("server-restart", -1);
  }

  // -------------------------------------------------------------------------------------------
  // Traffic, samples, settling

  /** Types a line into the slot's peer every 1–3 s while it runs. */
  async #sender(slot: Slot): Promise<void> {
    const [lo, hi] = this.#o.sendEveryMs ?? [1_000, 3_000];
    while (!this.#traffic.stopped) {
      await this.#traffic.sleep(between(slot.rng, lo, hi));
      const live = slot.cur;
      const now = performance.now();
      if (this.#traffic.stopped || !live || !isRunning({ ...live.rec, events: [] }, now)) continue;
      const seq = ++slot.seq;
      this.#lines.push({ slot: slot.index, seq, instance: live.rec.id, at: now });
      await live.proc.send(lineText(slot.index, seq)).catch(() => {});
    }
  }

  /** Samples RSS and descriptors of the server and the anchor peer (slot 0). */
  async #sampler(): Promise<void> {
    const every = this.#o.sampleEveryMs ?? 2_000;
    while (!this.#sampling.stopped) {
      const server = this.#server;
      const anchor = this.#slots[0]!.cur;
      const now = performance.now();
      if (server) {
        const s = await sample(server.proc.pid);
        const who = `server#${this.#servers.indexOf(server)}`;
        if (s) this.#samples.push({ who, at: now, age: now - server.rec.startAt, ...s });
      }
      if (anchor) {
        const s = await sample(anchor.proc.pid);
        if (s) this.#samples.push({ who: "anchor", at: now, age: now - anchor.rec.startAt, ...s });
      }
      await this.#sampling.sleep(every);
    }
  }

  /** Waits until the first room is whole (or `ms` passed). */
  async #waitWhole(ms: number): Promise<void> {
    const until = performance.now() + ms;
    let why: string | null = "";
    while (performance.now() < until) {
      why = roomWholeAt(this.#snapshot(performance.now()), performance.now());
      if (why === null) break;
      await sleep(200);
    }
    this.#say(why === null ? "the room is whole" : `the room is not whole yet (${why}); going on`);
  }

  /** Waits until no delivery is due any more, at most `ms`. */
  async #settle(ms: number): Promise<void> {
    const until = performance.now() + ms;
    let pending = 0;
    do {
      pending = pendingDeliveries(this.#snapshot(performance.now()), this.#o.check);
      if (pending === 0) break;
      await sleep(500);
    } while (performance.now() < until);
    this.#say(pending === 0 ? "every due line delivered" : `${pending} deliveries still due`);
  }

  /** Asks every running peer for `/peers`. */
  async #askPeers(): Promise<void> {
    await Promise.all(this.#slots.map(async (slot) => {
      const live = slot.cur;
      if (!live || !isRunning({ ...live.rec, events: [] }, performance.now())) return;
      const before = live.proc.eventsOf("peers").length;
      await live.proc.send("/peers").catch(() => {});
      try {
        await live.proc.waitFor(
          (e) => e.event === "peers" && live.proc.eventsOf("peers").length > before,
          5_000,
          '{"event":"peers"}',
        );
        const ev = live.proc.eventsOf("peers").at(-1)!;
        const rows = (Array.isArray(ev.peers) ? ev.peers : []) as PeerRow[];
        this.#finalPeers.push({ instance: live.rec.id, rows });
      } catch {
        this.#finalPeers.push({ instance: live.rec.id, rows: [] });
      }
    }));
  }

  // -------------------------------------------------------------------------------------------
  // The record

  #snapshot(endAt = this.#endAt): SoakRecord {
    return {
      seed: this.#o.seed,
      origin: this.#origin,
      phaseAt: this.#phaseAt || endAt,
      trafficEndAt: this.#trafficEndAt || endAt,
      endAt,
      instances: this.#instances.map(({ proc, rec }) => ({
        ...rec,
        suspended: rec.suspended.map((s) => ({ ...s })),
        events: proc.events.map((event) => ({ at: proc.receivedAt(event) ?? 0, event })),
      })),
      lines: [...this.#lines],
      servers: this.#servers.map((s) => ({ ...s.rec })),
      actions: [...this.#actions],
      samples: [...this.#samples],
      finalPeers: [...this.#finalPeers],
      failedStarts: this.#failedStarts,
    };
  }

  async #writeLogs(dir: string): Promise<void> {
    const procs = [...this.#instances.map((i) => i.proc), ...this.#servers.map((s) => s.proc)];
    await writeProcessLogs(dir, procs);
    const rec = this.#snapshot();
    const json = JSON.stringify(rec, (_k, v) => v === Infinity ? null : v);
    await Deno.writeTextFile(`${dir}/record.json`, json + "\n");
    await Deno.writeTextFile(`${dir}/plan.json`, JSON.stringify(this.#plan, null, 1) + "\n");
  }
}

/**
 * Writes each process's events (`LABEL.events.jsonl`, with `at`, the arrival time on the
 * harness clock) and stderr (`LABEL.stderr`) into `dir`.
 */
export async function writeProcessLogs(dir: string, procs: readonly P2pProcess[]): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const p of procs) {
    const events = p.events.map((e) => JSON.stringify({ at: p.receivedAt(e), ...e })).join("\n");
    await Deno.writeTextFile(`${dir}/${p.label}.events.jsonl`, events + "\n");
    await Deno.writeTextFile(`${dir}/${p.label}.stderr`, p.stderr);
  }
}

/** RSS (KiB) and open descriptors of a process, from /proc; null if it is gone. */
async function sample(pid: number): Promise<{ rssKiB: number; fds: number } | null> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    let fds = 0;
    for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
    return m ? { rssKiB: Number(m[1]), fds } : null;
  } catch {
    return null;
  }
}

/** Runs a churn run and checks it. */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const started = performance.now();
  const run = new SoakRun(o);
  const record = await run.run();
  const check = {
    ...(o.keepaliveSec !== undefined ? { keepaliveMs: o.keepaliveSec * 1000 } : {}),
    ...(o.expireSec !== undefined ? { expireMs: o.expireSec * 1000 } : {}),
    ...o.check,
  };
  const report = checkSoak(record, check);
  return { plan: run.plan, record, report, wallMs: performance.now() - started };
}

/** `1.2 s` */
function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The human summary of a run: one line per invariant, then examples of what failed. */
export function summarize(r: SoakResult, peers: number): string[] {
  const p = r.report;
  const mark = (bad: boolean) => bad ? "FAIL" : "ok  ";
  const has = (prefix: string) => p.failures.some((f) => f.startsWith(prefix));
  const d = p.delivery;
  const actions = Object.entries(p.actions).filter(([k]) =>
    k !== "join" && k !== "resume" &&
    k !== "server-resume" && k !== "server-restart"
  ).map(([k, n]) => `${n} ${k}`).join(", ");
  const res = Object.entries(p.resources).map(([who, x]) =>
    `${who} RSS ${Math.round(x.rssFirstKiB / 1024)}→${Math.round(x.rssLastKiB / 1024)} MiB, ` +
    `fds ${x.fdsFirst}→${x.fdsLast} (${x.samples} samples)`
  ).join("; ");
  const lines = [
    `soak: seed ${p.seed}, ${peers} peers, wall ${secs(r.wallMs)}; ${actions || "no disruption"}`,
    `1 delivery    ${mark(has("delivery"))} ${d.sent} lines, ${d.required} required deliveries: ` +
    `${d.delivered} delivered, ${d.missing} missing (${d.missingBy.unlisted} unlisted by the ` +
    `sender, ${d.missingBy["given-up"]} given up, ${d.missingBy.lost} lost); ${d.duplicates} ` +
    `duplicate, ${d.outOfOrder} out of order, ${d.fabricated} fabricated, ${d.wrongName} ` +
    `misattributed; ${d.extra} more not required`,
    `2 left        ${mark(has("left"))} ${p.left.total} left events: ${p.left.true} true, ` +
    `${p.left.false} false, ${p.left.whileSuspended} while suspended; ${p.left.repeated} ` +
    `repeated, ${p.left.unknown} unknown`,
    `3 undelivered ${mark(has("undelivered"))} ${p.undelivered.total} warnings: ` +
    `${p.undelivered.true} true, ${p.undelivered.false} false, ${p.undelivered.unknown} unknown`,
    `4 whole       ${mark(has("whole"))} longest defect ${secs(p.whole.longestMs)} (limit ` +
    `${secs(p.whole.limitMs)}; ${p.whole.defects} defects, ${p.whole.open} left at the end); ` +
    `room not whole ${p.whole.episodes} times, longest ${secs(p.whole.longestEpisodeMs)}; ` +
    `longest to whole after a disruption ended ${secs(p.whole.maxAfterDisruptionMs)}; ` +
    `${p.whole.finalMismatches} wrong rows in the final /peers`,
    `5 resources   ${mark(has("resources"))} ${res || "no samples"}`,
    `6 names       ${mark(has("names"))} ${p.names.renamed} renamed, ${p.names.crashed} ` +
    `crashed; ${p.names.failedStarts} registrations retried, ${p.names.nonZeroExits} exits not 0`,
  ];
  for (const m of d.examples) {
    lines.push(`  missing ${m.line} (sent at ${m.sentS} s) at ${m.to}: ${m.why}`);
  }
  for (const e of p.left.examples) {
    lines.push(`  false left at ${e.atS} s: ${e.observer} says ${e.about} left (after ${e.after})`);
  }
  for (const e of p.undelivered.examples) {
    lines.push(
      `  false undelivered at ${e.atS} s: ${e.observer} about ${e.about} (after ${e.after})`,
    );
  }
  for (const e of p.whole.longest) {
    lines.push(
      `  defect from ${e.fromS} s for ${secs(e.ms)}${e.open ? " (still at the end)" : ""}: ` +
        `${e.why} (after ${e.after})`,
    );
  }
  for (const f of p.failures) lines.push(`FAIL ${f}`);
  return lines;
}
