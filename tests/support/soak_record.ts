/**
 * What a churn run (`tests/support/soak.ts`) records: the ground truth the harness keeps (who
 * ran, slept and left when; which line was typed where and when) and what every peer printed,
 * as plain data; and the questions the checks (`soak_check.ts`) ask of it: the state of an
 * instance at a time, and who an instance listed at a time. Times are milliseconds on the
 * harness's clock (`performance.now()`).
 *
 * Words used throughout, for one peer *instance* (one `p2p join` process; a peer that leaves
 * and rejoins is a new instance of the same *slot*, with the same identity):
 *
 * - *alive*: started and not exited;
 * - *ready*: registered (its `ready` event arrived) and not exited;
 * - *leaving*: the harness typed `/quit` or closed its input;
 * - *present*: ready for a grace time, not leaving; a suspended (SIGSTOP) instance is present:
 *   it is still in the room, only asleep;
 * - *running*: ready, not leaving, not suspended: what a user at it sees now;
 * - *sending*: ready, not suspended (a leaving instance still delivers its queue).
 *
 * @module
 */
import type { P2pEvent } from "./proc.ts";

/** SIGSTOP to SIGCONT; `to` is Infinity while still suspended. */
export interface Interval {
  /** When it began. */
  from: number;
  /** When it ended (Infinity: not yet). */
  to: number;
}

/** One `p2p join` process as the harness saw it. */
export interface InstanceRecord {
  /** Index among all instances of the run. */
  id: number;
  /** The identity slot (0..peers-1); a rejoin is a new instance of the same slot. */
  slot: number;
  /** The name asked for (`--name`). */
  name: string;
  /** When it was spawned. */
  startAt: number;
  /** When its `ready` event arrived. */
  readyAt?: number | undefined;
  /** The name the server gave (from `ready`). */
  readyName?: string | undefined;
  /** Its identity's fingerprint (from `ready`). */
  fingerprint?: string | undefined;
  /** When the harness typed `/quit` or closed its input (also at the end of the run). */
  leaveAt?: number | undefined;
  /** How it was made to leave. */
  leaveHow?: "quit" | "eof" | "end" | undefined;
  /** When it exited. */
  exitAt?: number | undefined;
  /** Its exit code (null: killed by a signal). */
  exitCode?: number | null | undefined;
  /** SIGSTOP..SIGCONT intervals, in order. */
  suspended: Interval[];
  /** Its stdout events with their arrival time, in order. */
  events: ReadonlyArray<{ at: number; event: P2pEvent }>;
}

/** One line typed into a peer. */
export interface LineRecord {
  /** Sender slot. */
  slot: number;
  /** Sequence number within the slot (from 1, across its instances). */
  seq: number;
  /** Sender instance id. */
  instance: number;
  /** When it was written to the sender's stdin. */
  at: number;
}

/** One `p2p serve` process. */
export interface ServerRecord {
  /** When it was spawned. */
  startAt: number;
  /** When it printed `listening`. */
  readyAt?: number | undefined;
  /** When it was killed or closed. */
  endAt?: number | undefined;
  /** Killed with SIGKILL by the schedule. */
  killed: boolean;
  /** SIGSTOP..SIGCONT intervals. */
  suspended: Interval[];
}

/** Something the harness did, for the timeline. */
export interface ActionRecord {
  /** When. */
  at: number;
  /** What. */
  kind:
    | "join"
    | "leave"
    | "suspend"
    | "resume"
    | "server-suspend"
    | "server-resume"
    | "server-kill"
    | "server-restart";
  /** The slot, or -1 for the server. */
  slot: number;
}

/** One resource sample of a process. */
export interface Sample {
  /** Which process: `server#K` (the K-th server process) or `anchor` (the long-lived peer). */
  who: string;
  /** When. */
  at: number;
  /** Time since the process started, ms. */
  age: number;
  /** Resident set size, KiB. */
  rssKiB: number;
  /** Open file descriptors. */
  fds: number;
}

/** One row of a `/peers` answer. */
export interface PeerRow {
  /** The name listed. */
  name: string;
  /** Its fingerprint. */
  fingerprint: string;
  /** `direct`, `relay` or `pending`. */
  path: string;
}

/** Everything a churn run recorded (plain data: it can be saved as JSON). */
export interface SoakRecord {
  /** The seed of the run. */
  seed: number;
  /** Time zero of the run (reported times are relative to it). */
  origin: number;
  /** When the disruptions began (after the first room was up). */
  phaseAt: number;
  /** When lines stopped being typed. */
  trafficEndAt: number;
  /** When the harness began closing everything: the end of observation. */
  endAt: number;
  /** Peer instances, in order of start. */
  instances: InstanceRecord[];
  /** Lines typed, in order. */
  lines: LineRecord[];
  /** Server processes, in order. */
  servers: ServerRecord[];
  /** What the harness did, in order. */
  actions: ActionRecord[];
  /** Resource samples. */
  samples: Sample[];
  /** Final `/peers` answers of the instances running at the end. */
  finalPeers: Array<{ instance: number; rows: PeerRow[] }>;
  /** Starts that never registered (retried), per slot. */
  failedStarts: number;
}

/** A line of text a sender types: `soak SLOT SEQ`. */
export function lineText(slot: number, seq: number): string {
  return `soak ${slot} ${seq}`;
}

/** The slot and sequence of a line's text, or null if it is no line of the harness. */
export function parseLineText(text: unknown): { slot: number; seq: number } | null {
  if (typeof text !== "string") return null;
  const m = /^soak (\d{1,4}) (\d{1,9})$/.exec(text);
  return m ? { slot: Number(m[1]), seq: Number(m[2]) } : null;
}

// ---------------------------------------------------------------------------------------------
// Instance state at a time

/** Whether `t` falls in one of the intervals. */
export function suspendedAt(s: readonly Interval[], t: number): boolean {
  return s.some((i) => i.from <= t && t < i.to);
}

/** Registered by `t` and not exited. */
export function ready(i: InstanceRecord, t: number): boolean {
  return i.readyAt !== undefined && i.readyAt <= t && !(i.exitAt !== undefined && i.exitAt <= t);
}

/** Made to leave by `t`. */
export function leaving(i: InstanceRecord, t: number): boolean {
  return i.leaveAt !== undefined && i.leaveAt <= t;
}

/** Ready, not leaving, not exited, not suspended. */
export function isRunning(i: InstanceRecord, t: number): boolean {
  return ready(i, t) && !leaving(i, t) && !suspendedAt(i.suspended, t);
}

/** Ready and not suspended: it can deliver what it has queued (also while leaving). */
export function isSending(i: InstanceRecord, t: number): boolean {
  return ready(i, t) && !suspendedAt(i.suspended, t);
}

/** How presence is judged (see {@link isPresent}). */
export interface Presence {
  /** A peer counts as in the room this long after it registered or woke from a long sleep. */
  graceMs: number;
  /** A sleep this long may get a peer expired by the server (expiry − keepalive). */
  silentMs: number;
}

/**
 * Ready for `p.graceMs`, not leaving, and not asleep so long that the server may have expired it
 * (in a suspension of `p.silentMs` or more, or less than `p.graceMs` after it ended). A short
 * sleep does not take a peer out of the room.
 */
export function isPresent(i: InstanceRecord, t: number, p: Presence): boolean {
  if (!ready(i, t) || i.readyAt! + p.graceMs > t || leaving(i, t)) return false;
  return !i.suspended.some((s) =>
    s.to - s.from >= p.silentMs && s.from + p.silentMs <= t && t < s.to + p.graceMs
  );
}

/** Started by `t` and not exited. */
export function alive(i: InstanceRecord, t: number): boolean {
  return i.startAt <= t && !(i.exitAt !== undefined && i.exitAt <= t);
}

/** Times at which the state of `i` may change. */
export function boundaries(i: InstanceRecord): number[] {
  const out = [i.startAt];
  for (const t of [i.readyAt, i.leaveAt, i.exitAt]) if (t !== undefined) out.push(t);
  for (const s of i.suspended) out.push(s.from, s.to);
  return out;
}

/** How long, within [from, until), `s` was sending while `r` was running. */
export function jointTime(
  s: InstanceRecord,
  r: InstanceRecord,
  from: number,
  until: number,
): number {
  const cuts = [from, until, ...boundaries(s), ...boundaries(r)]
    .filter((t) => t >= from && t <= until)
    .sort((a, b) => a - b);
  let total = 0;
  for (let k = 0; k + 1 < cuts.length; k++) {
    const a = cuts[k]!, b = cuts[k + 1]!;
    if (b <= a) continue;
    const mid = (a + b) / 2;
    if (isSending(s, mid) && isRunning(r, mid)) total += b - a;
  }
  return total;
}

/** How reports name an instance: `NAME#ID`. */
export function label(i: InstanceRecord): string {
  return `${i.readyName ?? i.name}#${i.id}`;
}

// ---------------------------------------------------------------------------------------------
// Views: who an instance lists, from its `peer` and `left` events

/** A row of a view: whom a name stands for, and when a `peer` event last said so. */
export interface Listed {
  /** The fingerprint shown with the name. */
  fingerprint: string;
  /**
   * When the `peer` event that first showed this instance arrived (a later `peer` event of the
   * same row is a path change of the same instance: it keeps this time).
   */
  at: number;
  /** The direct address last shown in the row (the instance's own on loopback), if any. */
  addr?: string;
}

/** What one instance lists: name to the row of its latest `peer` event. */
export type View = Map<string, Listed>;

/**
 * Applies one event (arrived at `at`) to a view; returns the row a `left` removed, if the name
 * was listed.
 */
export function apply(view: View, e: P2pEvent, at: number): Listed | undefined {
  if (e.event === "peer" && typeof e.name === "string" && typeof e.fingerprint === "string") {
    const addr = typeof e.addr === "string" ? e.addr : undefined;
    const row = view.get(e.name);
    // The same name and fingerprint again, without a `left` between: the client says that only
    // of the instance it already shows (another instance of the identity replaces it with a
    // `left` first), unless the direct address says otherwise.
    const same = row?.fingerprint === e.fingerprint &&
      (addr === undefined || row.addr === undefined || row.addr === addr);
    const since = same ? row!.at : at;
    const shown = addr ?? (same ? row!.addr : undefined);
    view.set(e.name, { fingerprint: e.fingerprint, at: since, ...(shown ? { addr: shown } : {}) });
  } else if (e.event === "left" && typeof e.name === "string") {
    const row = view.get(e.name);
    view.delete(e.name);
    return row;
  }
  return undefined;
}

/** The view of `i` just before time `t` (events at `t` excluded). */
export function viewBefore(i: InstanceRecord, t: number): View {
  const v: View = new Map();
  for (const { at, event } of i.events) {
    if (at >= t) break;
    apply(v, event, at);
  }
  return v;
}

/** Fingerprint to slot, from the `ready` events. */
export function slotsByFingerprint(rec: SoakRecord): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of rec.instances) if (i.fingerprint) m.set(i.fingerprint, i.slot);
  return m;
}

/**
 * Another process's `peer` event may reach the harness before the `ready` event of the instance
 * it announces (each pipe is read on its own), by this much at most, ms.
 */
const READ_SKEW = 1_000;

/**
 * The instance a listed name stands for: of the slot with that fingerprint, registered under
 * that name, the one whose address the row shows directly (on loopback a peer's direct address
 * is its own socket's: exact even for an instance that left long before, shown by an observer
 * that reads what waited in its socket after a stop), else the latest that had registered when
 * the row's first `peer` event came. A peer that rejoins is a new instance, announced by a new
 * `peer` event.
 */
export function instanceListed(
  rec: SoakRecord,
  slots: ReadonlyMap<string, number>,
  name: string,
  row: Listed,
): InstanceRecord | undefined {
  const slot = slots.get(row.fingerprint);
  let found: InstanceRecord | undefined;
  for (const i of rec.instances) {
    if (i.slot !== slot || i.readyName !== name || i.readyAt === undefined) continue;
    if (row.addr !== undefined && publicOf(i) === row.addr) return i;
    if (i.readyAt <= row.at + READ_SKEW) found = i;
  }
  return found;
}

/** The address an instance registered from (its `ready` event's `public`). */
function publicOf(i: InstanceRecord): string | undefined {
  for (const { event } of i.events) {
    if (event.event === "ready") return typeof event.public === "string" ? event.public : undefined;
  }
  return undefined;
}

/** Every line (`slot:seq`) each instance displayed, by instance id. */
export function displayedBy(rec: SoakRecord): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const r of rec.instances) {
    const set = new Set<string>();
    for (const { event } of r.events) {
      const p = event.event === "message" ? parseLineText(event.text) : null;
      if (p) set.add(`${p.slot}:${p.seq}`);
    }
    out.set(r.id, set);
  }
  return out;
}
