/**
 * Per-peer path selection in sans-IO style: candidates, probes, selection, keepalive,
 * liveness, relay fallback and upgrade back to direct.
 *
 * The machine is told about candidate endpoints (from the server's introduction), about
 * authenticated probes and probe replies, and about time. It answers with actions (send a
 * probe to an endpoint; ask the server to re-introduce both sides) and path events. Data
 * goes wherever {@link PathMachine.route} says: a direct endpoint, or `null` for the relay.
 *
 * Lifecycle:
 * - `punching`: probes go to every candidate, 25 ms apart at first and then every
 *   `probeInterval` (the spacing doubles per probe); data already flows via
 *   the relay. The first probe reply selects a direct path. After `punchTimeout` without one
 *   the machine settles on `relay`.
 * - `relay`: background punch rounds retry the direct path with growing spacing
 *   (`retryMin` … `retryMax`); a reply switches to `direct` (make-before-break: the relay
 *   keeps working until then).
 * - `direct`: a keepalive probe goes out after `keepalive` ms without sending on the path.
 *   When a probe or suspected data loss goes unanswered for `deadAfter` ms the path is dead:
 *   back to `relay` at once, and a new punch round starts, coordinated through the server.
 *
 * A probe (or a handshake message) from an endpoint that is not a candidate adds it as a
 * peer-reflexive candidate and, when no round is running, starts one (a triggered check, as in
 * ICE), so both sides punch at the same time even when only one of them was told to. The
 * handshake is the first check: a message 2 answering a direct copy of message 1 selects its
 * endpoint like a probe reply ({@link PathMachine.onHandshakeDirect}, or `proven` at
 * construction).
 *
 * @module
 */
import { type Endpoint, sameEndpoint } from "../../wire/address.ts";
import { ProbeLedger } from "./probes.ts";

/**
 * Where a candidate came from; higher ranks win when several work: a LAN address (`private`:
 * IPv4 private or IPv6 ULA) over a global IPv6 address (`ipv6`: no NAT in the way, only
 * stateful firewalls that both sides' probes open) over what the server saw (`public`) over an
 * address a probe came from (`reflexive`).
 */
export type CandidateKind = "private" | "ipv6" | "public" | "reflexive";

const RANK: Record<CandidateKind, number> = { private: 4, ipv6: 3, public: 2, reflexive: 1 };
const MAX_REFLEXIVE = 4;
/** Most extra candidates a peer may tell us about. */
const MAX_EXTRA = 4;

/** A remote endpoint worth probing. */
export interface Candidate {
  /** The endpoint. */
  addr: Endpoint;
  /** How it was learned. */
  kind: CandidateKind;
  /**
   * Our local socket for it: 0 or absent for the main one, n for auxiliary socket n (a pair
   * found by birthday probing, `lib/peer/path/birthday.ts`).
   */
  via?: number;
}

/** True when `c` is the pair (remote `addr`, local socket `via`). */
function isPair(c: { addr: Endpoint; via?: number }, addr: Endpoint, via: number): boolean {
  return (c.via ?? 0) === via && sameEndpoint(c.addr, addr);
}

/** Timing of the path machine, all in ms. */
export interface PathOptions {
  /** How long the first punch round runs before settling on the relay. */
  punchTimeout: number;
  /** First spacing of probes within a round; it doubles per probe up to `probeInterval`. */
  firstProbeInterval: number;
  /** Largest spacing of probes within a round. */
  probeInterval: number;
  /** Length of a background punch round. */
  roundLength: number;
  /** First spacing between background rounds while on the relay. */
  retryMin: number;
  /** Largest spacing between background rounds. */
  retryMax: number;
  /** Send a keepalive probe after this long without sending on the direct path. */
  keepalive: number;
  /** Spacing of liveness probes while a reply is awaited. */
  livenessInterval: number;
  /** Declare the direct path dead after this long without any reply. */
  deadAfter: number;
  /** Most probes a minute to one endpoint the peer never answered from. */
  unprovenPerMinute: number;
  /** Most probes in a burst to never-answering endpoints; refilled at one a second. */
  unprovenBurst: number;
}

/** Defaults modelled on what works for Tailscale and WebRTC across home NATs. */
export const DEFAULT_PATH: PathOptions = {
  punchTimeout: 3_000,
  firstProbeInterval: 25,
  probeInterval: 200,
  roundLength: 3_000,
  retryMin: 2_000,
  retryMax: 30_000,
  keepalive: 25_000,
  livenessInterval: 500,
  deadAfter: 3_000,
  unprovenPerMinute: 20,
  unprovenBurst: 60,
};

/** What the machine wants done. */
export type PathAction =
  | { type: "probe"; to: Endpoint; txid: number; via: number }
  | { type: "repunch" };

/** A change of the path (also the first decision). */
export interface PathEvent {
  /** `direct` or `relay`. */
  path: "direct" | "relay";
  /** The direct endpoint, or null on the relay. */
  addr: Endpoint | null;
  /** Kind of the direct candidate, or null. */
  kind: CandidateKind | null;
  /** Round-trip time of the direct path in ms, or null. */
  rtt: number | null;
}

/** Lifecycle state. */
export type PathState = "punching" | "direct" | "relay";

interface Selected {
  addr: Endpoint;
  kind: CandidateKind;
  rtt: number;
  via: number;
}

/** The per-peer path state machine. */
export class PathMachine {
  #o: PathOptions;
  #relayOnly: boolean;
  #initiator: boolean;
  #state: PathState = "punching";
  #candidates: Candidate[] = [];
  #selected: Selected | undefined;
  #round: { end: number; nextProbe: number; sent: number } | undefined;
  #nextRound: number | undefined;
  #backoff: number;
  /** Probes awaiting replies, the endpoints the peer proved, the budget for the others. */
  #probes: ProbeLedger;
  #lastSent = 0;
  #awaitingSince: number | undefined;
  #nextLiveness = 0;
  #actions: PathAction[] = [];
  /** Candidates the peer told us about itself (kept across re-introductions). */
  #extra: Candidate[] = [];
  #events: PathEvent[] = [];

  /**
   * Makes a machine. `relayOnly`: never punch (either side asked for it). `initiator`: this
   * side asks the server for coordinated re-introductions (one side per pair is enough).
   */
  constructor(
    now: number,
    candidates: Candidate[],
    opts: {
      relayOnly: boolean;
      initiator: boolean;
      options?: Partial<PathOptions>;
      /** Shared by all of a client's path machines (a fresh one per machine by default). */
      budget?: ProbeBudget;
      /**
       * A direct path the handshake already proved (its message 2 came back directly from
       * where a direct copy of message 1 went): selected at once, as if a probe were answered.
       */
      proven?: { addr: Endpoint; via: number; rtt: number };
    },
  ) {
    this.#o = { ...DEFAULT_PATH, ...opts.options };
    this.#probes = new ProbeLedger(opts.budget ?? new ProbeBudget(this.#o));
    this.#relayOnly = opts.relayOnly;
    this.#initiator = opts.initiator;
    this.#backoff = this.#o.retryMin;
    this.startedAt = now;
    this.#candidates = opts.relayOnly ? [] : dedupe(candidates);
    const p = opts.proven;
    if (p && !opts.relayOnly) {
      this.onHandshakeDirect(now, p.addr, p.via, p.rtt);
      // Probe only what could beat it (#probeAll's floor), for the first punch window.
      const kind = this.#selected!.kind;
      if (this.#candidates.some((c) => RANK[c.kind] > RANK[kind])) {
        this.#startRound(now, this.#o.punchTimeout);
      }
    } else if (this.#candidates.length === 0) {
      this.#toRelay(now, false);
    } else {
      this.#startRound(now, this.#o.punchTimeout);
    }
  }

  /** Current lifecycle state. */
  get state(): PathState {
    return this.#state;
  }

  /** The selected direct endpoint, or null when data should go through the relay. */
  route(): Endpoint | null {
    return this.#state === "direct" ? this.#selected!.addr : null;
  }

  /** Our local socket of the direct path (0: the main one; n: auxiliary socket n). */
  routeVia(): number {
    return this.#state === "direct" ? this.#selected!.via : 0;
  }

  /** When this machine started (a birthday search waits a while after it). */
  readonly startedAt: number;

  /** The current direct path's RTT in ms, if direct. */
  get rtt(): number | null {
    return this.#state === "direct" ? this.#selected!.rtt : null;
  }

  /** Known candidates (for diagnostics). */
  get candidates(): readonly Candidate[] {
    return this.#candidates;
  }

  /** Takes the next action, if any. */
  pollAction(): PathAction | undefined {
    return this.#actions.shift();
  }

  /** Takes the next path event, if any. */
  pollEvent(): PathEvent | undefined {
    return this.#events.shift();
  }

  /** Earliest time {@link handleTimeout} has work. */
  nextTimeout(): number | undefined {
    // Asked after every datagram of a transfer: a running minimum, no array.
    let t: number | undefined;
    if (this.#round) t = Math.min(this.#round.nextProbe, this.#round.end);
    if (this.#nextRound !== undefined) {
      t = t === undefined ? this.#nextRound : Math.min(t, this.#nextRound);
    }
    if (this.#state === "direct") {
      const d = this.#awaitingSince === undefined
        ? this.#lastSent + this.#o.keepalive
        : Math.min(this.#nextLiveness, this.#awaitingSince + this.#o.deadAfter);
      t = t === undefined ? d : Math.min(t, d);
    }
    return t;
  }

  /**
   * New candidates from a (re-)introduction. Peer-reflexive ones are kept. Unless the current
   * direct path is still among them, a punch round starts, so both sides punch together.
   */
  updateCandidates(now: number, candidates: Candidate[]): void {
    if (this.#relayOnly) return;
    const reflexive = this.#candidates.filter((c) => c.kind === "reflexive");
    this.#candidates = dedupe([...candidates, ...this.#extra, ...reflexive]);
    if (this.#state === "direct") {
      const sel = this.#selected!;
      if (this.#candidates.some((c) => isPair(c, sel.addr, sel.via))) return;
      this.suspect(now);
    }
    if (!this.#round && this.#candidates.length > 0) this.#startRound(now, this.#o.roundLength);
  }

  /**
   * More candidates the peer told us about (addresses STUN servers saw for it): kept besides
   * the server's, at most MAX_EXTRA of them; a punch round starts unless the path is direct.
   */
  addCandidates(now: number, list: Endpoint[]): void {
    if (this.#relayOnly) return;
    let added = 0;
    for (const addr of list) {
      if (this.#extra.length >= MAX_EXTRA) break;
      if (this.#candidates.some((c) => isPair(c, addr, 0))) continue;
      const c: Candidate = { addr, kind: "public" };
      this.#extra.push(c);
      this.#candidates.push(c);
      added++;
    }
    if (added > 0 && this.#state !== "direct" && !this.#round) {
      this.#startRound(now, this.#o.roundLength);
    }
  }

  /**
   * An authenticated probe arrived from `from` on our socket `via`; the caller answers it with
   * a probe reply (through the same socket).
   */
  onProbe(now: number, from: Endpoint, via = 0): void {
    if (this.#relayOnly) return;
    this.#probes.prove(from);
    this.onDirectTraffic(now, from, via);
    this.onPeerSeen(now, from, via);
  }

  /**
   * A handshake message of the peer's came directly from `from` to our socket `via`: a
   * peer-reflexive candidate if it is new (probed within the budget: a handshake message can be
   * replayed from anywhere, so this proves nothing), and a punch round unless direct.
   */
  onPeerSeen(now: number, from: Endpoint, via = 0): void {
    if (this.#relayOnly) return;
    if (!this.#candidates.some((c) => isPair(c, from, via))) {
      // Keep only the newest few peer-reflexive candidates (never the selected one).
      const sel = this.#selected;
      const reflexive = this.#candidates.filter((c) =>
        c.kind === "reflexive" && !(sel && isPair(c, sel.addr, sel.via))
      );
      if (reflexive.length >= MAX_REFLEXIVE) {
        this.#candidates = this.#candidates.filter((c) => c !== reflexive[0]);
      }
      this.#candidates.push(
        via ? { addr: from, kind: "reflexive", via } : { addr: from, kind: "reflexive" },
      );
      if (this.#round) this.#probe(now, from, via);
    }
    if (this.#state !== "direct" && !this.#round) this.#startRound(now, this.#o.roundLength);
  }

  /**
   * An authenticated reply to probe `txid` arrived from `from` on our socket `via`. It proves
   * only the endpoint the probe went to: a reply from elsewhere (a NAT that maps the peer's
   * answer anew, or a captured reply replayed from a spoofed source) makes `from` a candidate
   * worth a probe of its own, never a proven path by itself. True when it proved the endpoint.
   */
  onProbeAck(now: number, from: Endpoint, txid: number, via = 0): boolean {
    if (this.#relayOnly) return false;
    const probe = this.#probes.ack(txid, via);
    if (!probe) return false;
    if (!sameEndpoint(probe.to, from)) {
      this.onPeerSeen(now, from, via);
      return false;
    }
    this.#answered(now, from, via, Math.round((now - probe.sentAt) * 10) / 10);
    return true;
  }

  /**
   * The handshake proved the pair (`from`, our socket `via`) both ways: a message 2 came back
   * directly from where a direct copy of our message 1 went, `rtt` ms before. Selects it like
   * a probe reply would.
   */
  onHandshakeDirect(now: number, from: Endpoint, via: number, rtt: number): void {
    if (this.#relayOnly) return;
    this.#answered(now, from, via, rtt);
  }

  #answered(now: number, from: Endpoint, via: number, rtt: number): void {
    this.#probes.prove(from);
    const kind = this.#candidates.find((c) => isPair(c, from, via))?.kind ?? "reflexive";
    const cur = this.#selected;
    if (this.#state === "direct" && cur && isPair(cur, from, via)) {
      cur.rtt = Math.round((0.75 * cur.rtt + 0.25 * rtt) * 10) / 10;
      this.#awaitingSince = undefined;
      return;
    }
    const better = this.#state !== "direct" || this.#awaitingSince !== undefined ||
      RANK[kind] > RANK[cur!.kind];
    if (!better) return;
    this.#selected = { addr: from, kind, rtt, via };
    this.#state = "direct";
    this.#awaitingSince = undefined;
    this.#lastSent = now;
    this.#nextRound = undefined;
    this.#backoff = this.#o.retryMin;
    // Stop probing what cannot beat the selection; keep trying better ones this round.
    if (this.#round && !this.#candidates.some((c) => RANK[c.kind] > RANK[kind])) {
      this.#round = undefined;
    }
    this.#emit();
  }

  /** Any authenticated frame arrived directly from `from` on socket `via`: the path is alive. */
  onDirectTraffic(_now: number, from: Endpoint, via = 0): void {
    if (this.#state === "direct" && isPair(this.#selected!, from, via)) {
      this.#awaitingSince = undefined;
    }
  }

  /** Something was just sent on the direct path (refreshes the keepalive timer). */
  onSentDirect(now: number): void {
    this.#lastSent = now;
  }

  /** Data on the direct path seems lost: check liveness now. */
  suspect(now: number): void {
    if (this.#state !== "direct" || this.#awaitingSince !== undefined) return;
    this.#awaitingSince = now;
    this.#liveness(now);
  }

  /** Advances timers. */
  handleTimeout(now: number): void {
    if (this.#round) {
      if (now >= this.#round.end) {
        this.#round = undefined;
        if (this.#state === "punching") this.#toRelay(now, false);
        else if (this.#state === "relay") this.#scheduleRetry(now);
      } else if (now >= this.#round.nextProbe) {
        this.#probeAll(now);
      }
    }
    if (this.#nextRound !== undefined && now >= this.#nextRound) {
      this.#nextRound = undefined;
      if (this.#initiator) this.#actions.push({ type: "repunch" });
      this.#startRound(now, this.#o.roundLength);
    }
    if (this.#state === "direct") {
      if (this.#awaitingSince === undefined) {
        if (now - this.#lastSent >= this.#o.keepalive) {
          this.#awaitingSince = now;
          this.#liveness(now);
        }
      } else if (now - this.#awaitingSince >= this.#o.deadAfter) {
        this.#toRelay(now, true);
      } else if (now >= this.#nextLiveness) {
        this.#liveness(now);
      }
    }
    this.#probes.expire(now);
  }

  #liveness(now: number): void {
    this.#probe(now, this.#selected!.addr, this.#selected!.via);
    this.#nextLiveness = now + this.#o.livenessInterval;
  }

  #toRelay(now: number, dead: boolean): void {
    this.#state = "relay";
    this.#selected = undefined;
    this.#awaitingSince = undefined;
    this.#emit();
    if (this.#relayOnly || this.#candidates.length === 0) return;
    if (dead) {
      // Re-punch at once, through the server so the other side punches too.
      this.#backoff = this.#o.retryMin;
      this.#actions.push({ type: "repunch" });
      this.#startRound(now, this.#o.roundLength);
    } else {
      this.#scheduleRetry(now);
    }
  }

  #scheduleRetry(now: number): void {
    this.#nextRound = now + this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, this.#o.retryMax);
  }

  #startRound(now: number, length: number): void {
    this.#nextRound = undefined;
    this.#round = { end: now + length, nextProbe: now, sent: 0 };
    this.#probeAll(now);
  }

  #probeAll(now: number): void {
    // While the direct path is healthy only better candidates are worth probing; while its
    // liveness is in doubt, every candidate is.
    const floor = this.#state === "direct" && this.#awaitingSince === undefined
      ? RANK[this.#selected!.kind]
      : 0;
    for (const c of this.#candidates) {
      if (RANK[c.kind] > floor) this.#probe(now, c.addr, c.via ?? 0);
    }
    // Tight spacing first (the other side's first probes often arrive just after ours opened
    // the way), then every probeInterval.
    if (this.#round) {
      const gap = this.#o.firstProbeInterval * 2 ** this.#round.sent++;
      this.#round.nextProbe = now + Math.min(gap, this.#o.probeInterval);
    }
  }

  #probe(now: number, to: Endpoint, via: number, budgeted = true): void {
    const txid = this.#probes.send(now, to, via, budgeted);
    if (txid === undefined) return;
    if (this.#selected && isPair(this.#selected, to, via)) this.#lastSent = now;
    this.#actions.push({ type: "probe", to, txid, via });
  }

  /**
   * Forgets candidates on auxiliary sockets that are no longer ours (`held` false: a birthday
   * search released them), so no probe reopens a released socket. The selected pair stays.
   */
  forgetSockets(held: (via: number) => boolean): void {
    const sel = this.#selected;
    if (!this.#candidates.some((c) => c.via && !held(c.via))) return;
    this.#candidates = this.#candidates.filter((c) =>
      !c.via || held(c.via) || (sel !== undefined && isPair(sel, c.addr, c.via))
    );
  }

  /**
   * A probe for a birthday search (`lib/peer/path/birthday.ts`), which the peer agreed to and which
   * bounds and paces them itself: outside the unproven-endpoint budget. Its reply selects the
   * pair like any other.
   */
  searchProbe(now: number, to: Endpoint, via: number): void {
    if (this.#relayOnly || this.#state === "direct") return;
    this.#probe(now, to, via, false);
  }

  /** True when the peer proved it answers from `to` (authenticated traffic came from it). */
  proven(to: Endpoint): boolean {
    return this.#probes.proven(to);
  }

  /** Probes the budget held back (for this machine's budget; shared budgets count for all). */
  get throttled(): number {
    return this.#probes.throttled;
  }

  #emit(): void {
    const s = this.#selected;
    this.#events.push(
      this.#state === "direct" && s
        ? { path: "direct", addr: s.addr, kind: s.kind, rtt: s.rtt }
        : { path: "relay", addr: null, kind: null, rtt: null },
    );
  }
}

function dedupe(list: Candidate[]): Candidate[] {
  const out: Candidate[] = [];
  for (const c of list) {
    const i = out.findIndex((o) => isPair(o, c.addr, c.via ?? 0));
    if (i < 0) out.push(c);
    else if (RANK[c.kind] > RANK[out[i]!.kind]) out[i] = c;
  }
  return out;
}

/**
 * The budget for probes to endpoints that never answered (a member could advertise third
 * parties' addresses, and re-join under fresh ids, to make us probe them): at most
 * `unprovenPerMinute` a minute to each address, and `unprovenBurst` in a burst refilled at one
 * a second across all of them. A client shares one among all its path machines, so the bound
 * holds per client, whatever the number of peers. Memory: at most 1024 addresses tracked.
 */
export class ProbeBudget {
  #perMinute: number;
  #burst: number;
  #tokens: number;
  #at = 0;
  #targets = new Map<string, { since: number; n: number }>();
  /** Probes held back. */
  throttled = 0;

  /** A full budget with the given limits. */
  constructor(o: Pick<PathOptions, "unprovenPerMinute" | "unprovenBurst"> = DEFAULT_PATH) {
    this.#perMinute = o.unprovenPerMinute;
    this.#burst = o.unprovenBurst;
    this.#tokens = o.unprovenBurst;
  }

  /** Takes one probe to `target` at `now`; false when over budget. */
  take(now: number, target: string): boolean {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) / 1_000);
      this.#at = now;
    }
    let c = this.#targets.get(target);
    if (!c || now - c.since >= 60_000) {
      if (!c && this.#targets.size >= 1024) this.#targets.clear();
      c = { since: now, n: 0 };
      this.#targets.set(target, c);
    }
    if (this.#tokens < 1 || c.n >= this.#perMinute) {
      this.throttled++;
      return false;
    }
    this.#tokens--;
    c.n++;
    return true;
  }
}
