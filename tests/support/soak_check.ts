/**
 * The invariants of a churn run (`deno task soak`, `tests/e2e/soak_test.ts`), checked from what
 * the peers printed (`--json` events) against what the harness did to them: pure functions over
 * a {@link SoakRecord}, no I/O. Times are milliseconds on the harness's clock.
 *
 * The words for an instance's state (alive, present, running, sending) are defined in
 * `soak_record.ts`.
 *
 * The invariants:
 *
 * 1. **delivery**: every line is displayed at most once by each instance, in the order sent,
 *    attributed to its sender's name, and never made up. A line is *required* at a receiver
 *    that was present when it was typed (ready for a grace time, not leaving, and not asleep so
 *    long that the server may have expired it: a short sleep does not take a peer out of the
 *    room) if, afterwards, the sender was sending while the receiver was running for
 *    {@link CheckOptions.deliveryGraceMs} in all, or both were so through the whole settle
 *    phase at the end (which waits for the lines still due). Whether the sender listed the
 *    receiver does not matter.
 * 2. **left**: a `left` event about an instance that was not leaving is false, unless that
 *    instance was suspended long enough for the server to expire it (suspended at least
 *    expiry − keepalive, and still or until less than {@link CheckOptions.leftLagMs} before):
 *    those are counted apart as "left while suspended". A `left` names an instance by the name
 *    it registered with and the fingerprint the observer listed under that name (and, when the
 *    row showed a direct address, the instance registered from it: see `instanceListed`); a
 *    ghost (an instance that exited without its goodbye arriving) going away is a true `left`:
 *    the ghost itself shows in (4), and a returning identity's changed name in (6). A `left`
 *    about a name the observer no longer listed (a second `left` without a `peer` between) is
 *    judged by the row it last listed, and counted as *repeated*: that fails too.
 * 3. **undelivered**: an `undelivered` warning is false when the peer it names was running when
 *    it was raised, or displayed every line the warning's sender sent it.
 * 4. **whole**: the room is whole when every running instance lists every other running one
 *    (by its name and fingerprint) and none lists an instance that exited. Each *defect* (this
 *    running peer does not list that one, or lists that one gone) is timed from when it appears
 *    to when it goes; the longest must stay under {@link CheckOptions.wholeLimitMs}, none may be
 *    left when the run ends, and the final `/peers` answers must be right. (Defects rather than
 *    room-wide intervals: disruptions overlap, and a room that never settles because something
 *    new happens every second is not at fault; the room-wide figures are reported too.)
 * 5. **resources**: RSS and open descriptors of the server and of the long-lived peer: the last
 *    sample at most twice the first plus a margin.
 * 6. **names**: an identity gets the name it asked for (a returning one takes its name back);
 *    and no peer crashes (exits without being asked to leave, after registering).
 *
 * @module
 */
import type { P2pEvent } from "./proc.ts";
import {
  type ActionRecord,
  alive,
  apply,
  boundaries,
  displayedBy,
  instanceListed,
  type InstanceRecord,
  isPresent,
  isRunning,
  isSending,
  jointTime,
  label,
  leaving,
  type LineRecord,
  parseLineText,
  type Presence,
  ready,
  type Sample,
  slotsByFingerprint,
  type SoakRecord,
  type View,
  viewBefore,
} from "./soak_record.ts";

/** The limits of the checks. */
export interface CheckOptions {
  /** A pair is required this long after the later of the two registered, ms. */
  joinGraceMs: number;
  /** Joint sending/running time after which a line is required, ms. */
  deliveryGraceMs: number;
  /** The server's expiry (`--expire`), ms. */
  expireMs: number;
  /** The peers' keepalive interval, ms. */
  keepaliveMs: number;
  /** A `left` this soon after the peer resumed still counts as "while suspended", ms. */
  leftLagMs: number;
  /** Longest episode of a room that is not whole, ms. */
  wholeLimitMs: number;
  /** Sampled from this long after a process started, ms (start-up growth is not a leak). */
  warmupMs: number;
  /** RSS may grow to twice the first sample plus this, KiB. */
  rssMarginKiB: number;
  /** Descriptors may grow to twice the first sample plus this. */
  fdMargin: number;
  /** How many examples of each kind of failure the report keeps. */
  examples: number;
}

/** Defaults of {@link CheckOptions}. */
export const DEFAULT_CHECK: CheckOptions = {
  joinGraceMs: 2_000,
  deliveryGraceMs: 12_000,
  expireMs: 75_000,
  keepaliveMs: 25_000,
  leftLagMs: 5_000,
  wholeLimitMs: 10_000,
  warmupMs: 5_000,
  rssMarginKiB: 32 * 1024,
  fdMargin: 16,
  examples: 12,
};

/** The presence rule of the checks (see `isPresent` in `soak_record.ts`). */
function presence(o: CheckOptions): Presence {
  return { graceMs: o.joinGraceMs, silentMs: o.expireMs - o.keepaliveMs };
}

/** A required delivery that never happened, and why we think so. */
export interface Missing {
  /** The line (slot, seq) and when it was sent, relative to the origin. */
  line: string;
  /** Sent at, s from the origin. */
  sentS: number;
  /** Receiver instance label. */
  to: string;
  /**
   * `unlisted`: the sender did not list the receiver when the line was typed; `given-up`: the
   * sender warned `undelivered` about it afterwards; `lost`: neither.
   */
  why: "unlisted" | "given-up" | "lost";
}

/** A `left` or warning event judged false, for the report. */
export interface FalseEvent {
  /** When, s from the origin. */
  atS: number;
  /** Who printed it. */
  observer: string;
  /** About whom. */
  about: string;
  /** The most recent disruption before it (kind, slot, s before). */
  after: string;
}

/** One interval during which one running peer missed another, or listed one gone. */
export interface Defect {
  /** Start, s from the origin. */
  fromS: number;
  /** Length, ms (to the end of the run if it lasted). */
  ms: number;
  /** Still there when the run ended. */
  open: boolean;
  /** What: `A does not list B` or `A lists B, gone`. */
  why: string;
  /** The most recent disruption at its start. */
  after: string;
}

/** What a churn run measured, and which invariants failed. */
export interface SoakReport {
  /** The seed. */
  seed: number;
  /** Counts of what the harness did. */
  actions: Record<string, number>;
  /** Invariant 1. */
  delivery: {
    sent: number;
    required: number;
    delivered: number;
    missing: number;
    missingBy: Record<Missing["why"], number>;
    extra: number;
    duplicates: number;
    outOfOrder: number;
    fabricated: number;
    wrongName: number;
    examples: Missing[];
  };
  /** Invariant 2. */
  left: {
    total: number;
    true: number;
    false: number;
    whileSuspended: number;
    repeated: number;
    unknown: number;
    examples: FalseEvent[];
  };
  /** Invariant 3. */
  undelivered: {
    total: number;
    true: number;
    false: number;
    unknown: number;
    examples: FalseEvent[];
  };
  /** Invariant 4. */
  whole: {
    /** The longest a defect may last, ms. */
    limitMs: number;
    /** Defects seen (each pair, each time). */
    defects: number;
    /** The longest defect, ms: what fails. */
    longestMs: number;
    /** Defects still there at the end. */
    open: number;
    /** Intervals where the room as a whole was not whole (they may span disruptions). */
    episodes: number;
    /** The longest of them, ms. */
    longestEpisodeMs: number;
    /** Time to whole after each disruption ended (join, resume, server restart/resume), ms. */
    maxAfterDisruptionMs: number;
    /** Wrong rows in the final `/peers` answers. */
    finalMismatches: number;
    /** The longest defects. */
    longest: Defect[];
  };
  /** Invariant 5: first and last sample of the server (longest-lived process) and the anchor. */
  resources: Record<
    string,
    { rssFirstKiB: number; rssLastKiB: number; fdsFirst: number; fdsLast: number; samples: number }
  >;
  /** Invariant 6. */
  names: { renamed: number; crashed: number; failedStarts: number; nonZeroExits: number };
  /** Human-readable failures; empty when every invariant holds. */
  failures: string[];
}

/** The most recent action before `t`, as text (`server-kill 3.2 s before`). */
function lastActionBefore(rec: SoakRecord, t: number): string {
  const text = (a: ActionRecord) =>
    `${a.kind}${a.slot < 0 ? "" : ` p${a.slot}`} ${((t - a.at) / 1000).toFixed(1)} s before`;
  let last: ActionRecord | undefined, server: ActionRecord | undefined;
  for (const a of rec.actions) {
    if (a.at > t) break;
    last = a;
    if (a.slot < 0) server = a;
  }
  if (!last) return "none";
  return server && server !== last ? `${text(last)}; ${text(server)}` : text(last);
}

function rel(rec: SoakRecord, t: number): number {
  return Math.round((t - rec.origin) / 100) / 10;
}

// ---------------------------------------------------------------------------------------------
// 1. Delivery

function checkDelivery(rec: SoakRecord, o: CheckOptions): SoakReport["delivery"] {
  const slots = slotsByFingerprint(rec);
  const lines = new Map<string, LineRecord>();
  for (const l of rec.lines) lines.set(`${l.slot}:${l.seq}`, l);
  const byId = new Map(rec.instances.map((i) => [i.id, i]));
  const out: SoakReport["delivery"] = {
    sent: rec.lines.length,
    required: 0,
    delivered: 0,
    missing: 0,
    missingBy: { unlisted: 0, "given-up": 0, lost: 0 },
    extra: 0,
    duplicates: 0,
    outOfOrder: 0,
    fabricated: 0,
    wrongName: 0,
    examples: [],
  };
  // What each instance displayed: line key to arrival time.
  const shown = new Map<number, Set<string>>();
  for (const r of rec.instances) {
    const seen = new Set<string>();
    const last = new Map<number, number>();
    for (const { event } of r.events) {
      if (event.event !== "message") continue;
      const p = parseLineText(event.text);
      const line = p ? lines.get(`${p.slot}:${p.seq}`) : undefined;
      if (!p || !line || p.slot === r.slot) {
        out.fabricated++;
        continue;
      }
      const key = `${p.slot}:${p.seq}`;
      if (seen.has(key)) {
        out.duplicates++;
        continue;
      }
      if (p.seq < (last.get(p.slot) ?? 0)) out.outOfOrder++;
      last.set(p.slot, Math.max(p.seq, last.get(p.slot) ?? 0));
      seen.add(key);
      if (event.from !== byId.get(line.instance)?.readyName) out.wrongName++;
    }
    shown.set(r.id, seen);
  }
  for (const l of rec.lines) {
    const s = byId.get(l.instance)!;
    for (const r of rec.instances) {
      if (r.slot === l.slot || !alive(r, l.at)) continue;
      const key = `${l.slot}:${l.seq}`;
      const got = shown.get(r.id)!.has(key);
      if (!required(rec, s, r, l, o)) {
        if (got) out.extra++;
        continue;
      }
      out.required++;
      if (got) {
        out.delivered++;
        continue;
      }
      out.missing++;
      const why = missingWhy(rec, slots, s, r, l);
      out.missingBy[why]++;
      if (out.examples.length < o.examples) {
        out.examples.push({ line: key, sentS: rel(rec, l.at), to: label(r), why });
      }
    }
  }
  return out;
}

function required(
  rec: SoakRecord,
  s: InstanceRecord,
  r: InstanceRecord,
  l: LineRecord,
  o: CheckOptions,
): boolean {
  if (!isPresent(r, l.at, presence(o)) || !isPresent(s, l.at, presence(o))) return false;
  if (jointTime(s, r, l.at, rec.endAt) >= o.deliveryGraceMs) return true;
  // Both there through the settle phase at the end, which waited for the line.
  const settle = rec.endAt - rec.trafficEndAt;
  return l.at <= rec.trafficEndAt && jointTime(s, r, rec.trafficEndAt, rec.endAt) >= settle;
}

/**
 * Deliveries still to come: lines typed by an instance still sending at `rec.endAt` to an
 * instance running then, present when the line was typed, that it has not displayed yet. The
 * harness waits for this to reach 0 before it ends a run (or for its settle time to pass).
 */
export function pendingDeliveries(rec: SoakRecord, options: Partial<CheckOptions> = {}): number {
  const o = { ...DEFAULT_CHECK, ...options };
  const byId = new Map(rec.instances.map((i) => [i.id, i]));
  const shown = displayedBy(rec);
  let n = 0;
  for (const l of rec.lines) {
    const s = byId.get(l.instance)!;
    if (!isSending(s, rec.endAt) || !isPresent(s, l.at, presence(o))) continue;
    for (const r of rec.instances) {
      if (r.slot === l.slot || !isRunning(r, rec.endAt) || !isPresent(r, l.at, presence(o))) {
        continue;
      }
      if (!shown.get(r.id)!.has(`${l.slot}:${l.seq}`)) n++;
    }
  }
  return n;
}

function missingWhy(
  rec: SoakRecord,
  slots: ReadonlyMap<string, number>,
  s: InstanceRecord,
  r: InstanceRecord,
  l: LineRecord,
): Missing["why"] {
  const row = r.readyName === undefined ? undefined : viewBefore(s, l.at).get(r.readyName);
  if (!row || instanceListed(rec, slots, r.readyName!, row) !== r) return "unlisted";
  const gaveUp = s.events.some(({ at, event }) =>
    at >= l.at && event.event === "warning" && event.kind === "undelivered" &&
    event.name === r.readyName
  );
  return gaveUp ? "given-up" : "lost";
}

// ---------------------------------------------------------------------------------------------
// 2. Left

function checkLeft(rec: SoakRecord, o: CheckOptions): SoakReport["left"] {
  const slots = slotsByFingerprint(rec);
  const out: SoakReport["left"] = {
    total: 0,
    true: 0,
    false: 0,
    whileSuspended: 0,
    repeated: 0,
    unknown: 0,
    examples: [],
  };
  for (const r of rec.instances) {
    const view: View = new Map();
    // The latest row of every name ever listed: a repeated `left` is judged by it.
    const ever: View = new Map();
    for (const { at, event } of r.events) {
      if (at > rec.endAt) break;
      let row = apply(view, event, at);
      if (event.event === "peer") apply(ever, event, at);
      if (event.event !== "left") continue;
      out.total++;
      const name = String(event.name);
      if (!row) {
        out.repeated++;
        row = ever.get(name);
      }
      const k = row && instanceListed(rec, slots, name, row);
      if (k === undefined) {
        out.unknown++;
        continue;
      }
      if (leaving(k, at) || !alive(k, at)) {
        out.true++;
        continue;
      }
      if (expirable(k, at, o)) {
        out.whileSuspended++;
        continue;
      }
      out.false++;
      out.examples.push({
        atS: rel(rec, at),
        observer: label(r),
        about: label(k),
        after: lastActionBefore(rec, at),
      });
    }
  }
  out.examples = firstExamples(out.examples, o.examples);
  return out;
}

/** The earliest `n` of a list. */
function firstExamples(list: FalseEvent[], n: number): FalseEvent[] {
  return list.sort((a, b) => a.atS - b.atS).slice(0, n);
}

/** `k` was (or just was) suspended long enough for the server to expire it by `t`. */
function expirable(k: InstanceRecord, t: number, o: CheckOptions): boolean {
  const silent = o.expireMs - o.keepaliveMs;
  return k.suspended.some((s) =>
    s.from <= t && t < s.to + o.leftLagMs && Math.min(t, s.to) - s.from >= silent
  );
}

// ---------------------------------------------------------------------------------------------
// 3. Undelivered warnings

function checkUndelivered(rec: SoakRecord, o: CheckOptions): SoakReport["undelivered"] {
  const slots = slotsByFingerprint(rec);
  const shownBy = displayedBy(rec);
  const out: SoakReport["undelivered"] = { total: 0, true: 0, false: 0, unknown: 0, examples: [] };
  for (const s of rec.instances) {
    // The latest row of every name this sender ever listed (a departed one included).
    const ever: View = new Map();
    for (const { at, event } of s.events) {
      if (at > rec.endAt) break;
      if (event.event === "peer") apply(ever, event, at);
      if (event.event !== "warning" || event.kind !== "undelivered") continue;
      out.total++;
      const name = typeof event.name === "string" ? event.name : undefined;
      const row = name === undefined ? undefined : ever.get(name);
      const k = row && instanceListed(rec, slots, name!, row);
      if (k === undefined) {
        out.unknown++;
        continue;
      }
      const shown = shownBy.get(k.id)!;
      // What this sender typed while that peer was in the room (whether listed or not).
      const sentToIt = rec.lines.filter((l) =>
        l.instance === s.id && l.at <= at && ready(k, l.at) && !leaving(k, l.at)
      );
      const allShown = sentToIt.every((l) => shown.has(`${l.slot}:${l.seq}`));
      if (isRunning(k, at) || allShown) {
        out.false++;
        out.examples.push({
          atS: rel(rec, at),
          observer: label(s),
          about: `${label(k)} (${
            isRunning(k, at)
              ? "running"
              : sentToIt.length
              ? `displayed all ${sentToIt.length} lines`
              : "nothing was due to it"
          })`,
          after: lastActionBefore(rec, at),
        });
      } else out.true++;
    }
  }
  out.examples = firstExamples(out.examples, o.examples);
  return out;
}

// ---------------------------------------------------------------------------------------------
// 4. Whole room

/**
 * What keeps the room from being whole at `t`, one entry per defect: a running instance that
 * does not list another running one, or lists an instance that has exited.
 */
function defects(
  rec: SoakRecord,
  views: ReadonlyMap<number, View>,
  slots: ReadonlyMap<string, number>,
  t: number,
): Set<string> {
  const out = new Set<string>();
  const running = rec.instances.filter((i) => isRunning(i, t));
  for (const a of running) {
    const v = views.get(a.id)!;
    for (const b of running) {
      if (b === a || b.readyName === undefined) continue;
      const row = v.get(b.readyName);
      if (!row || instanceListed(rec, slots, b.readyName, row) !== b) {
        out.add(`${label(a)} does not list ${label(b)}`);
      }
    }
    for (const [name, row] of v) {
      const k = instanceListed(rec, slots, name, row);
      if (!k || !alive(k, t)) out.add(`${label(a)} lists ${k ? label(k) : name}, gone`);
    }
  }
  return out;
}

/** Why the room is not whole at `t` (events up to `t` count; one reason), or null if it is. */
export function roomWholeAt(rec: SoakRecord, t: number): string | null {
  const views = new Map(rec.instances.map((i) => [i.id, viewBefore(i, t + 1e-3)]));
  const found = defects(rec, views, slotsByFingerprint(rec), t);
  return found.size ? found.values().next().value! : null;
}

/** Every moment the room's state may change: a `peer` or `left` event, or an instance's state. */
function wholeSteps(
  rec: SoakRecord,
): Array<{ at: number; inst?: InstanceRecord; event?: P2pEvent }> {
  const steps: Array<{ at: number; inst?: InstanceRecord; event?: P2pEvent }> = [];
  for (const i of rec.instances) {
    for (const e of i.events) {
      if (e.event.event === "peer" || e.event.event === "left") {
        steps.push({ at: e.at, inst: i, event: e.event });
      }
    }
    for (const at of boundaries(i)) steps.push({ at });
  }
  return steps.sort((a, b) => a.at - b.at);
}

function checkWhole(rec: SoakRecord, o: CheckOptions): SoakReport["whole"] {
  const slots = slotsByFingerprint(rec);
  const steps = wholeSteps(rec);
  const views = new Map(rec.instances.map((i) => [i.id, new Map() as View]));
  const spans: Defect[] = [];
  const open = new Map<string, number>();
  const timeline: Array<{ at: number; whole: boolean }> = [];
  const close = (why: string, from: number, to: number, still: boolean) =>
    spans.push({
      fromS: rel(rec, from),
      ms: Math.round(to - from),
      open: still,
      why,
      after: lastActionBefore(rec, from),
    });
  for (let k = 0; k < steps.length;) {
    const at = steps[k]!.at;
    for (; k < steps.length && steps[k]!.at === at; k++) {
      const s = steps[k]!;
      if (s.inst && s.event) apply(views.get(s.inst.id)!, s.event, at);
    }
    if (at < rec.phaseAt || at > rec.endAt) continue;
    const now = defects(rec, views, slots, at);
    timeline.push({ at, whole: now.size === 0 });
    for (const [why, from] of open) {
      if (!now.has(why)) (close(why, from, at, false), open.delete(why));
    }
    for (const why of now) if (!open.has(why)) open.set(why, at);
  }
  for (const [why, from] of open) close(why, from, rec.endAt, true);
  // Room-wide: intervals not whole, and time to whole after each disruption ended.
  let episodes = 0, longestEpisode = 0, since: number | null = null;
  for (const p of timeline) {
    if (!p.whole && since === null) (since = p.at, episodes++);
    if (p.whole && since !== null) {
      (longestEpisode = Math.max(longestEpisode, p.at - since), since = null);
    }
  }
  if (since !== null) longestEpisode = Math.max(longestEpisode, rec.endAt - since);
  const ends = rec.actions.filter((a) =>
    a.at >= rec.phaseAt &&
    (a.kind === "join" || a.kind === "resume" || a.kind === "server-restart" ||
      a.kind === "server-resume")
  );
  let maxAfter = 0;
  for (const a of ends) {
    // Whole already when the disruption ended: 0 (a server's return is no step of the timeline,
    // and the next step may come much later).
    if (roomWholeAt(rec, a.at) === null) continue;
    const whole = timeline.find((p) => p.at >= a.at && p.whole);
    maxAfter = Math.max(maxAfter, (whole?.at ?? rec.endAt) - a.at);
  }
  return {
    limitMs: o.wholeLimitMs,
    defects: spans.length,
    longestMs: Math.max(0, ...spans.map((e) => e.ms)),
    open: spans.filter((e) => e.open).length,
    episodes,
    longestEpisodeMs: Math.round(longestEpisode),
    maxAfterDisruptionMs: Math.round(maxAfter),
    finalMismatches: finalMismatches(rec),
    longest: [...spans].sort((a, b) => b.ms - a.ms).slice(0, o.examples),
  };
}

/** Pairs the final `/peers` answers get wrong: a running peer missing, or an exited one listed. */
function finalMismatches(rec: SoakRecord): number {
  const t = rec.endAt;
  const running = rec.instances.filter((i) => isRunning(i, t));
  let n = 0;
  for (const { instance, rows } of rec.finalPeers) {
    const a = rec.instances.find((i) => i.id === instance)!;
    const listed = new Set(
      rows.filter((r) => r.path !== "pending").map((r) => `${r.name}/${r.fingerprint}`),
    );
    for (const b of running) {
      if (b !== a && !listed.has(`${b.readyName}/${b.fingerprint}`)) n++;
    }
    for (const row of rows) {
      if (!running.some((b) => b.readyName === row.name && b.fingerprint === row.fingerprint)) n++;
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// 5. Resources

function checkResources(rec: SoakRecord, o: CheckOptions): SoakReport["resources"] {
  const groups = new Map<string, Sample[]>();
  for (const s of rec.samples) {
    const g = groups.get(s.who) ?? [];
    g.push(s);
    groups.set(s.who, g);
  }
  const out: SoakReport["resources"] = {};
  // The server process sampled longest, and the anchor peer.
  const servers = [...groups.keys()].filter((k) => k.startsWith("server"));
  const longest = servers.sort((a, b) => groups.get(b)!.length - groups.get(a)!.length)[0];
  for (const who of [longest, "anchor"]) {
    const g = who === undefined ? undefined : groups.get(who);
    if (!g || g.length === 0) continue;
    const first = g.find((s) => s.age >= o.warmupMs) ?? g[0]!;
    const last = g[g.length - 1]!;
    out[who === "anchor" ? "anchor" : "server"] = {
      rssFirstKiB: first.rssKiB,
      rssLastKiB: last.rssKiB,
      fdsFirst: first.fds,
      fdsLast: last.fds,
      samples: g.length,
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** Checks every invariant of `rec`. */
export function checkSoak(rec: SoakRecord, options: Partial<CheckOptions> = {}): SoakReport {
  const o = { ...DEFAULT_CHECK, ...options };
  const actions: Record<string, number> = {};
  for (const a of rec.actions) {
    if (a.at >= rec.phaseAt) actions[a.kind] = (actions[a.kind] ?? 0) + 1;
  }
  const delivery = checkDelivery(rec, o);
  const left = checkLeft(rec, o);
  const undelivered = checkUndelivered(rec, o);
  const whole = checkWhole(rec, o);
  const resources = checkResources(rec, o);
  const names = {
    renamed: rec.instances.filter((i) => i.readyName !== undefined && i.readyName !== i.name)
      .length,
    crashed: rec.instances.filter((i) =>
      i.readyAt !== undefined && i.exitAt !== undefined &&
      (i.leaveAt === undefined || i.exitAt < i.leaveAt)
    ).length,
    failedStarts: rec.failedStarts,
    nonZeroExits: rec.instances.filter((i) => i.readyAt !== undefined && i.exitCode !== 0).length,
  };
  const failures: string[] = [];
  const d = delivery;
  if (d.missing > 0) {
    failures.push(
      `delivery: ${d.missing} of ${d.required} required deliveries missing ` +
        `(${d.missingBy.unlisted} to peers the sender did not list, ${
          d.missingBy["given-up"]
        } given up, ${d.missingBy.lost} lost)`,
    );
  }
  if (d.duplicates > 0) failures.push(`delivery: ${d.duplicates} lines displayed twice`);
  if (d.outOfOrder > 0) failures.push(`delivery: ${d.outOfOrder} lines out of order`);
  if (d.fabricated > 0) failures.push(`delivery: ${d.fabricated} lines never sent`);
  if (d.wrongName > 0) failures.push(`delivery: ${d.wrongName} lines under another name`);
  if (left.false > 0) failures.push(`left: ${left.false} of ${left.total} left events false`);
  if (left.repeated > 0) {
    failures.push(`left: ${left.repeated} left events about peers no longer listed (repeated)`);
  }
  if (left.unknown > 0) failures.push(`left: ${left.unknown} left events about unknown peers`);
  if (undelivered.false > 0) {
    failures.push(
      `undelivered: ${undelivered.false} of ${undelivered.total} undelivered warnings false`,
    );
  }
  if (whole.longestMs > o.wholeLimitMs || whole.open > 0) {
    failures.push(
      `whole: a running peer missed another or listed one gone for up to ${
        (whole.longestMs / 1000).toFixed(1)
      } s (limit ${o.wholeLimitMs / 1000} s)${
        whole.open ? `; ${whole.open} still at the end` : ""
      }`,
    );
  }
  if (whole.finalMismatches > 0) {
    failures.push(`whole: ${whole.finalMismatches} wrong rows in the final /peers listings`);
  }
  for (const [who, r] of Object.entries(resources)) {
    if (r.samples < 2) continue;
    if (r.rssLastKiB > 2 * r.rssFirstKiB + o.rssMarginKiB) {
      failures.push(`resources: ${who} RSS grew from ${r.rssFirstKiB} to ${r.rssLastKiB} KiB`);
    }
    if (r.fdsLast > 2 * r.fdsFirst + o.fdMargin) {
      failures.push(`resources: ${who} descriptors grew from ${r.fdsFirst} to ${r.fdsLast}`);
    }
  }
  if (names.renamed > 0) failures.push(`names: ${names.renamed} peers did not get their name`);
  if (names.crashed > 0) failures.push(`names: ${names.crashed} peers exited unasked`);
  return {
    seed: rec.seed,
    actions,
    delivery,
    left,
    undelivered,
    whole,
    resources,
    names,
    failures,
  };
}
