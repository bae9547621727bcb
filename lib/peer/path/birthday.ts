/**
 * Birthday probing: a direct path between an "easy" NAT (endpoint-independent mapping: full
 * cone, address- or port-restricted) and a "hard" one (endpoint-dependent mapping with random
 * ports: symmetric), where ordinary punching cannot work because the hard side's public port
 * towards the easy side is unknown.
 *
 * ## How
 *
 * The hard side opens `sockets` (256) auxiliary sockets and sends one sealed PROBE from each to
 * the easy side's public endpoint: its NAT opens 256 mappings, each on an unknown random port,
 * each accepting datagrams from that endpoint. The easy side then sends sealed PROBEs from its
 * one socket to random ports of the hard side's public address, paced at `rate` a second, at
 * most `probes` (2048) in all: each probe also opens its own NAT's filter towards that port.
 * A probe that lands on one of the 256 mapped ports reaches the hard side, which answers from
 * that socket; the answer passes the easy side's filter, and both path machines select the
 * pair of endpoints (the hard side keeps that one socket, the spare ones close at once).
 *
 * With `k` mapped ports among `R` possible ones and `n` distinct ports probed uniformly at
 * random, the search misses with probability C(R−k, n)/C(R, n) = ∏_{i<n} (R−k−i)/(R−i)
 * ({@link missProbability}). For Linux's random source ports R = 64512 (1024–65535): k = 256
 * and n = 1024 hit with probability 98.3 %, n = 2048 with 99.97 %; the expected number of
 * probes to the first hit is about (R+1)/(k+1) ≈ 251, one second at 250 probes a second.
 *
 * When the hard side's STUN answers show a sequential pattern (ports growing by a small step),
 * the ports its new sockets will get are predictable: those are probed first
 * ({@link predictPorts}).
 *
 * ## Agreement and bounds
 *
 * Nothing is sent to a peer that has not agreed: the hard side proposes (a sealed BIRTHDAY frame
 * through the relay), the easy side accepts, the hard side opens its sockets and says go, and
 * only then does the easy side scan. A search starts only when both sides' mapping behaviour is
 * known and says hard ↔ easy, the path is not direct `startAfter` ms after it started, and no
 * other search of this client holds the sockets (one search at a time per client). Probes are
 * paced and bounded (`rate`, `probes`); a failed search is not retried for `retryAfter` ms. The
 * relay carries data all the while.
 *
 * Pure and sans-IO: {@link BirthdaySearch} is one pair's machine; {@link BirthdayPool} is the
 * client-wide owner of the auxiliary sockets.
 *
 * @module
 */
import type { Endpoint } from "../../wire/address.ts";
import { BirthdayStage, NatMapping } from "../../wire/peer_frame.ts";
import { SearchBudget } from "./search_budget.ts";
import { MAX_AUX_SOCKETS } from "../../wire/transmit.ts";

/** Tunables of birthday probing. */
export interface BirthdayOptions {
  /** Auxiliary sockets the hard side opens. */
  sockets: number;
  /** Most probes the easy side sends in one search. */
  probes: number;
  /** Easy side's probes per second. */
  rate: number;
  /** Hard side's socket openings (one datagram each) per second. */
  openRate: number;
  /** Lowest public port a NAT hands out. */
  portMin: number;
  /** Highest public port a NAT hands out. */
  portMax: number;
  /** Ports predicted from a sequential pattern, probed first. */
  predicted: number;
  /** Wait this long after a path started before searching (ordinary punching may work). */
  startAfter: number;
  /** After a failed search, wait this long before the next one. */
  retryAfter: number;
  /** Resend an unanswered proposal after this long (ms), at most twice. */
  resend: number;
}

/** Defaults: 256 sockets, at most 2048 probes at 250 a second (≤ 8.2 s). */
export const DEFAULT_BIRTHDAY: BirthdayOptions = {
  sockets: 256,
  probes: 2048,
  rate: 250,
  openRate: 2000,
  portMin: 1024,
  portMax: 65535,
  predicted: 256,
  startAfter: 1000,
  retryAfter: 120_000,
  resend: 1000,
};

/** What one side knows of a NAT's mapping: the verdict and the public ports STUN saw, in order. */
export interface NatInfo {
  /** Mapping behaviour (a {@link NatMapping} value). */
  mapping: (typeof NatMapping)[keyof typeof NatMapping];
  /** Public ports STUN servers reported, in the order asked. */
  ports: number[];
}

/**
 * The probability that `probes` distinct ports, drawn uniformly from `range` ports, all miss
 * the `mapped` ones: ∏_{i<probes} (range − mapped − i)/(range − i).
 */
export function missProbability(mapped: number, probes: number, range: number): number {
  let p = 1;
  for (let i = 0; i < probes && p > 0; i++) p *= Math.max(0, range - mapped - i) / (range - i);
  return p;
}

/**
 * Ports a sequential NAT will likely hand out next, when `observed` (public ports for one
 * socket towards different destinations, in order) grow by one small constant step (1–16):
 * the `count` ports after the last one, in that step. Otherwise none.
 */
export function predictPorts(
  observed: readonly number[],
  count: number,
  min = DEFAULT_BIRTHDAY.portMin,
  max = DEFAULT_BIRTHDAY.portMax,
): number[] {
  if (observed.length < 2) return [];
  const step = observed[1]! - observed[0]!;
  if (step < 1 || step > 16) return [];
  for (let i = 2; i < observed.length; i++) {
    if (observed[i]! - observed[i - 1]! !== step) return [];
  }
  const out: number[] = [];
  for (let p = observed.at(-1)! + step; out.length < count && p <= max; p += step) {
    if (p >= min) out.push(p);
  }
  return out;
}

/**
 * The client-wide owner of auxiliary sockets (numbered 1..{@link MAX_AUX_SOCKETS}): one search
 * at a time holds a batch; a successful one keeps a single socket for its pair. Released
 * sockets are queued for the driver to close ({@link pollRelease}).
 */
export class BirthdayPool {
  /** The client's budget of searches, per peer address and in all (`./search_budget.ts`). */
  readonly budget: SearchBudget = new SearchBudget();
  #free: number[] = [];
  /** The same, for lookups. */
  #freeSet = new Set<number>();
  #holder: object | null = null;
  #kept = new Set<number>();
  #released: number[] = [];
  #scanner: object | null = null;

  /** A pool of `size` sockets. */
  constructor(size = MAX_AUX_SOCKETS) {
    for (let i = size; i >= 1; i--) this.#free.push(i);
    for (const i of this.#free) this.#freeSet.add(i);
  }

  /** Takes `n` sockets for `owner`, or null when another search holds some or too few are free. */
  acquire(owner: object, n: number): number[] | null {
    if ((this.#holder && this.#holder !== owner) || this.#free.length < n) return null;
    this.#holder = owner;
    const taken = this.#free.splice(this.#free.length - n, n).reverse();
    for (const s of taken) this.#freeSet.delete(s);
    return taken;
  }

  /** Ends `owner`'s search: every socket in `slots` but `keep` is released. */
  finish(owner: object, slots: readonly number[], keep = 0): void {
    if (this.#holder === owner) this.#holder = null;
    for (const s of slots) {
      if (s === keep) this.#kept.add(s);
      else this.#giveBack(s);
    }
  }

  /** A kept socket is no longer used (its pair left or moved). */
  drop(slot: number): void {
    if (this.#kept.delete(slot)) this.#giveBack(slot);
  }

  /** Takes the scan token (one easy-side scan at a time); false when another pair has it. */
  scan(owner: object): boolean {
    if (this.#scanner && this.#scanner !== owner) return false;
    this.#scanner = owner;
    return true;
  }

  /** Returns the scan token. */
  endScan(owner: object): void {
    if (this.#scanner === owner) this.#scanner = null;
  }

  /**
   * True while auxiliary socket `slot` belongs to a search or a pair that kept it: sending
   * through any other would make the driver open a socket nobody will close.
   */
  inUse(slot: number): boolean {
    return slot >= 1 && slot <= MAX_AUX_SOCKETS && !this.#freeSet.has(slot);
  }

  /** Sockets kept by successful searches. */
  get kept(): number {
    return this.#kept.size;
  }

  /** Sockets held by the running search. */
  get busy(): boolean {
    return this.#holder !== null;
  }

  /** The next socket the driver should close. */
  pollRelease(): number | undefined {
    return this.#released.shift();
  }

  #giveBack(s: number): void {
    this.#released.push(s);
    this.#free.push(s);
    this.#freeSet.add(s);
  }
}

/** What a search needs to know about its pair each time it is asked. */
export interface BirthdayView {
  /** Our NAT's mapping. */
  self: NatInfo;
  /** The peer's, once it told us. */
  peer: NatInfo | null;
  /** The peer's public endpoint as the server saw it. */
  peerPublic: Endpoint | null;
  /** The path is direct. */
  direct: boolean;
  /** Our socket of the direct path (0: the main one). */
  via: number;
  /** When the path machine started. */
  pathStart: number;
}

/** A BIRTHDAY frame's fields. */
export interface BirthdayFrame {
  /** Stage ({@link BirthdayStage}). */
  stage: (typeof BirthdayStage)[keyof typeof BirthdayStage];
  /** Search round (the proposer's counter). */
  round: number;
  /** Sockets the hard side opens. */
  sockets: number;
}

/** A probe a search wants sent: to `to`, from auxiliary socket `via` (0: the main socket). */
export interface BirthdayProbe {
  /** Destination. */
  to: Endpoint;
  /** Local socket. */
  via: number;
}

/** Where a search stands. */
export type BirthdayState = "idle" | "proposed" | "opening" | "waiting" | "accepted" | "scanning";

type State =
  | { s: "idle" }
  | { s: "proposed"; round: number; slots: number[]; resendAt: number; tries: number }
  | { s: "opening"; round: number; slots: number[]; next: number; started: number; to: Endpoint }
  | { s: "waiting"; round: number; slots: number[]; until: number; goAgainAt: number }
  | { s: "accepted"; round: number; until: number }
  | {
    s: "scanning";
    round: number;
    host: string;
    ports: PortOrder;
    started: number;
    sent: number;
    until: number;
  };

/** Counters of one pair's searches. */
export interface BirthdayStats {
  /** Searches started (proposed by us or accepted from the peer). */
  searches: number;
  /** Searches that ended with a direct path. */
  hits: number;
  /** Probes sent (easy side) or sockets opened (hard side). */
  probes: number;
}

/** One pair's birthday search (either side). */
export class BirthdaySearch {
  #o: BirthdayOptions;
  #pool: BirthdayPool;
  #random: (n: number) => Uint8Array;
  #state: State = { s: "idle" };
  #round = 0;
  #notBefore = 0;
  #frames: BirthdayFrame[] = [];
  #probes: BirthdayProbe[] = [];
  /** The socket a successful search kept (0: none). */
  #kept = 0;
  /** Counters. */
  readonly stats: BirthdayStats = { searches: 0, hits: 0, probes: 0 };

  /** A search machine drawing sockets from `pool`. */
  constructor(
    pool: BirthdayPool,
    random: (n: number) => Uint8Array,
    options: Partial<BirthdayOptions> = {},
  ) {
    this.#pool = pool;
    this.#random = random;
    this.#o = { ...DEFAULT_BIRTHDAY, ...options };
  }

  /** Which side of a search we would be, if any. */
  static role(v: Pick<BirthdayView, "self" | "peer">): "hard" | "easy" | null {
    return BirthdaySearch.roleOf(v.self, v.peer);
  }

  /** {@link role} from the two sides' NAT information. */
  static roleOf(mine: NatInfo, theirs: NatInfo | null): "hard" | "easy" | null {
    const self = mine.mapping, peer = theirs?.mapping;
    if (self === NatMapping.AddressDependent && peer === NatMapping.EndpointIndependent) {
      return "hard";
    }
    if (self === NatMapping.EndpointIndependent && peer === NatMapping.AddressDependent) {
      return "easy";
    }
    return null;
  }

  /** The state's name (diagnostics and tests). */
  get state(): BirthdayState {
    return this.#state.s;
  }

  /** The auxiliary socket this pair's direct path uses (0: the main socket). */
  get kept(): number {
    return this.#kept;
  }

  /** True while this pair holds auxiliary socket `slot` (its running search's, or the kept one). */
  holds(slot: number): boolean {
    const st = this.#state;
    return slot === this.#kept || ("slots" in st && st.slots.includes(slot));
  }

  /** Idle with nothing queued: only a new view (the peer's NAT, the path) can start anything. */
  get quiet(): boolean {
    return this.#state.s === "idle" && this.#frames.length === 0 && this.#probes.length === 0;
  }

  /** Takes the next BIRTHDAY frame to send (through the relay). */
  pollFrame(): BirthdayFrame | undefined {
    return this.#frames.shift();
  }

  /** Takes the next probe to send. */
  pollProbe(): BirthdayProbe | undefined {
    return this.#probes.shift();
  }

  /** Earliest time {@link tick} has work. */
  nextTimeout(view: BirthdayView): number | undefined {
    const st = this.#state;
    switch (st.s) {
      case "idle": {
        // As #maybePropose: a deadline it would not act on would come back at once, for ever.
        if (view.direct || BirthdaySearch.role(view) !== "hard" || !view.peerPublic) {
          return undefined;
        }
        return Math.max(this.#notBefore, view.pathStart + this.#o.startAfter);
      }
      case "proposed":
        return st.resendAt;
      case "opening":
        return st.started + (st.next * 1000) / this.#o.openRate;
      case "waiting":
        return Math.min(st.goAgainAt, st.until);
      case "accepted":
        return st.until;
      case "scanning":
        return st.sent < this.#o.probes
          ? Math.min(st.until, st.started + (st.sent * 1000) / this.#o.rate)
          : st.until;
    }
  }

  /** Advances the search: starts one when it is worth it, paces probes, ends at deadlines. */
  tick(now: number, view: BirthdayView): void {
    const st = this.#state;
    if (view.direct && st.s !== "idle") return this.onDirect(now, view.via);
    switch (st.s) {
      case "idle":
        return this.#maybePropose(now, view);
      case "proposed":
        if (now < st.resendAt) return;
        if (st.tries >= 3) return this.#fail(now);
        st.tries++;
        st.resendAt = now + this.#o.resend;
        this.#frames.push({
          stage: BirthdayStage.Propose,
          round: st.round,
          sockets: st.slots.length,
        });
        return;
      case "opening":
        return this.#open(now, st);
      case "waiting":
        if (now >= st.until) return this.#fail(now);
        if (now >= st.goAgainAt) {
          st.goAgainAt = Infinity;
          this.#frames.push({ stage: BirthdayStage.Go, round: st.round, sockets: st.slots.length });
        }
        return;
      case "accepted":
        // The go was lost: the hard side has had time to open its sockets; scan anyway.
        if (now >= st.until) this.#startScan(now, st.round, view);
        return;
      case "scanning":
        if (now >= st.until) return this.#fail(now);
        return this.#scan(now, st);
    }
  }

  /** The hard side opens its sockets at the open rate, then tells the easy side to scan. */
  #open(now: number, st: Extract<State, { s: "opening" }>): void {
    const due = Math.min(
      st.slots.length,
      Math.floor(((now - st.started) * this.#o.openRate) / 1000) + 1,
    );
    for (; st.next < due; st.next++) {
      this.#probes.push({ to: st.to, via: st.slots[st.next]! });
      this.stats.probes++;
    }
    if (st.next < st.slots.length) return;
    this.#frames.push({ stage: BirthdayStage.Go, round: st.round, sockets: st.slots.length });
    this.#state = {
      s: "waiting",
      round: st.round,
      slots: st.slots,
      until: now + this.#scanTime() + 2 * this.#o.resend,
      goAgainAt: now + this.#o.resend / 2,
    };
  }

  /** The easy side probes the hard side's ports at the scan rate, until it has sent them all. */
  #scan(now: number, st: Extract<State, { s: "scanning" }>): void {
    const due = Math.min(
      this.#o.probes,
      Math.floor(((now - st.started) * this.#o.rate) / 1000) + 1,
    );
    for (; st.sent < due; st.sent++) {
      const port = st.ports.next();
      if (port === undefined) break;
      this.#probes.push({ to: { hostname: st.host, port }, via: 0 });
      this.stats.probes++;
    }
    if (st.sent < due) st.sent = this.#o.probes;
  }

  /** A BIRTHDAY frame from the peer (authenticated: it came sealed). */
  onFrame(now: number, f: BirthdayFrame, view: BirthdayView): void {
    const st = this.#state;
    const role = BirthdaySearch.role(view);
    switch (f.stage) {
      case BirthdayStage.Propose: {
        if (role !== "easy" || view.direct || !view.peerPublic) return;
        if ((st.s === "accepted" || st.s === "scanning") && st.round === f.round) {
          this.#frames.push({ stage: BirthdayStage.Accept, round: f.round, sockets: f.sockets });
          return;
        }
        if (st.s !== "idle" || now < this.#notBefore) return;
        // Budgeted per client and per claimed address, not per id (a fresh id is free to make).
        if (!this.#pool.budget.allows(now, view.peerPublic.hostname)) return;
        if (!this.#pool.scan(this)) return;
        this.#pool.budget.spend(now, view.peerPublic.hostname);
        this.stats.searches++;
        this.#state = { s: "accepted", round: f.round, until: now + 2 * this.#o.resend };
        this.#frames.push({ stage: BirthdayStage.Accept, round: f.round, sockets: f.sockets });
        return;
      }
      case BirthdayStage.Accept: {
        if (st.s !== "proposed" || st.round !== f.round || !view.peerPublic) return;
        this.#state = {
          s: "opening",
          round: st.round,
          slots: st.slots,
          next: 0,
          started: now,
          to: view.peerPublic,
        };
        return this.tick(now, view);
      }
      case BirthdayStage.Go:
        if (st.s === "accepted" && st.round === f.round) this.#startScan(now, f.round, view);
        return;
    }
  }

  /**
   * The path became direct (through auxiliary socket `via`, or the main one): a running search
   * ends, keeping that socket and releasing the rest.
   */
  onDirect(_now: number, via: number): void {
    const st = this.#state;
    if (st.s === "idle") return;
    if ("slots" in st) {
      const keep = st.slots.includes(via) ? via : 0;
      if (keep) {
        if (this.#kept) this.#pool.drop(this.#kept);
        this.#kept = keep;
      }
      this.#pool.finish(this, st.slots, keep);
    }
    this.#pool.endScan(this);
    this.stats.hits++;
    this.#state = { s: "idle" };
  }

  /** The pair is gone: everything it holds goes back. */
  close(): void {
    const st = this.#state;
    if (st.s === "idle" && !this.#kept) return; // Holds nothing (an idle search never scans).
    if ("slots" in st) this.#pool.finish(this, st.slots);
    this.#pool.endScan(this);
    if (this.#kept) this.#pool.drop(this.#kept);
    this.#kept = 0;
    this.#state = { s: "idle" };
  }

  #maybePropose(now: number, view: BirthdayView): void {
    if (view.direct || BirthdaySearch.role(view) !== "hard" || !view.peerPublic) return;
    if (now < this.#notBefore || now < view.pathStart + this.#o.startAfter) return;
    const host = view.peerPublic.hostname;
    const allowed = this.#pool.budget.nextAllowed(now, host);
    if (allowed > now) {
      this.#notBefore = allowed; // Budgeted per client and per address, not per id.
      return;
    }
    const slots = this.#pool.acquire(this, this.#o.sockets);
    if (!slots) {
      this.#notBefore = now + this.#o.resend; // Another pair's search runs; look again soon.
      return;
    }
    this.#pool.budget.spend(now, host);
    this.stats.searches++;
    const round = this.#round = (this.#round + 1) >>> 0;
    this.#state = { s: "proposed", round, slots, resendAt: now + this.#o.resend, tries: 1 };
    this.#frames.push({ stage: BirthdayStage.Propose, round, sockets: slots.length });
  }

  #startScan(now: number, round: number, view: BirthdayView): void {
    const peer = view.peerPublic;
    if (!peer) return this.#fail(now);
    const predicted = predictPorts(
      view.peer?.ports ?? [],
      this.#o.predicted,
      this.#o.portMin,
      this.#o.portMax,
    );
    this.#state = {
      s: "scanning",
      round,
      host: peer.hostname,
      ports: new PortOrder(predicted, this.#o, this.#random, peer.port),
      started: now,
      sent: 0,
      until: now + this.#scanTime() + this.#o.resend,
    };
    this.tick(now, view);
  }

  #scanTime(): number {
    return (this.#o.probes * 1000) / this.#o.rate;
  }

  #fail(now: number): void {
    const st = this.#state;
    if ("slots" in st) this.#pool.finish(this, st.slots);
    this.#pool.endScan(this);
    this.#state = { s: "idle" };
    this.#notBefore = now + this.#o.retryAfter;
  }
}

/**
 * The order in which the easy side probes ports: predicted ones first, then distinct random
 * ones from the NAT's range (never `skip`, the port the server saw). At most `probes` in all,
 * so the set of used ports stays bounded.
 */
class PortOrder {
  #predicted: number[];
  #used = new Set<number>();
  #o: BirthdayOptions;
  #random: (n: number) => Uint8Array;
  #bytes: Uint8Array = new Uint8Array(0);
  #at = 0;

  constructor(
    predicted: number[],
    o: BirthdayOptions,
    random: (n: number) => Uint8Array,
    skip: number,
  ) {
    this.#predicted = predicted.reverse();
    this.#o = o;
    this.#random = random;
    this.#used.add(skip);
  }

  next(): number | undefined {
    if (this.#used.size > this.#o.probes + 1) return undefined;
    for (let p = this.#predicted.pop(); p !== undefined; p = this.#predicted.pop()) {
      if (!this.#used.has(p)) return this.#take(p);
    }
    const range = this.#o.portMax - this.#o.portMin + 1;
    if (this.#used.size >= range) return undefined;
    for (;;) {
      if (this.#at + 2 > this.#bytes.length) {
        this.#bytes = this.#random(512);
        this.#at = 0;
      }
      const r = (this.#bytes[this.#at]! << 8) | this.#bytes[this.#at + 1]!;
      this.#at += 2;
      // Rejection sampling keeps the ports uniform over the range.
      const limit = 65536 - (65536 % range);
      if (r >= limit) continue;
      const p = this.#o.portMin + (r % range);
      if (!this.#used.has(p)) return this.#take(p);
    }
  }

  #take(p: number): number {
    this.#used.add(p);
    return p;
  }
}
