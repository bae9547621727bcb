/**
 * The birthday search of one pair as its remote peer drives it (the search itself is
 * {@link BirthdaySearch} in `./birthday.ts`): what the search looks at (our NAT's mapping and
 * the peer's, the peer's public address, the path's state), when it can act at all, and where
 * its output goes (agreement frames relayed to the peer, probes into the path machine, which
 * sends them from the search's auxiliary sockets).
 *
 * The common case, on every datagram of a pair, is a search that cannot act: it is idle and
 * either the path is direct or we are not the hard side. {@link PairSearch.quiet} answers that
 * without building a view.
 *
 * @module
 */
import {
  type BirthdayFrame,
  type BirthdayPool,
  BirthdaySearch,
  type BirthdayStats,
  type BirthdayView,
  type NatInfo,
} from "./birthday.ts";
import type { PathMachine } from "./path.ts";
import type { Endpoint } from "../../wire/address.ts";

/** What the search of one pair reads of the pair, at the moment it looks. */
export interface PairFacts {
  /** Either side asked never to punch: no search can run. */
  relayOnly(): boolean;
  /** Our NAT's mapping (from STUN). */
  ourNat(): NatInfo;
  /** The peer's NAT mapping, as it told us (null: not yet). */
  peerNat(): NatInfo | null;
  /** The peer's public address from its introduction, if any. */
  peerPublic(): Endpoint | null;
}

/** One pair's birthday search, driven through its path machine. */
export class PairSearch {
  #search: BirthdaySearch;
  #facts: PairFacts;

  /** A search with sockets from `pool` and ports from `random`, about the pair `facts` tells. */
  constructor(pool: BirthdayPool, random: (n: number) => Uint8Array, facts: PairFacts) {
    this.#search = new BirthdaySearch(pool, random);
    this.#facts = facts;
  }

  /** Search counters with this peer. */
  get stats(): Readonly<BirthdayStats> {
    return this.#search.stats;
  }

  /** True while the search holds auxiliary socket `slot`. */
  holds(slot: number): boolean {
    return this.#search.holds(slot);
  }

  /**
   * True when the search cannot act: it is idle with nothing queued, and either the path is
   * direct or we are not the hard side (only the hard side proposes; the easy side answers
   * BIRTHDAY frames, which build their own view).
   */
  quiet(path: PathMachine): boolean {
    return this.#search.quiet &&
      (path.state === "direct" ||
        BirthdaySearch.roleOf(this.#facts.ourNat(), this.#facts.peerNat()) !== "hard");
  }

  /** What the search looks at (none without a path or when punching is off). */
  view(path: PathMachine | null): BirthdayView | null {
    if (!path || this.#facts.relayOnly()) return null;
    return {
      self: this.#facts.ourNat(),
      peer: this.#facts.peerNat(),
      peerPublic: this.#facts.peerPublic(),
      direct: path.state === "direct",
      via: path.routeVia(),
      pathStart: path.startedAt,
    };
  }

  /** When {@link drive} next has work (none while quiet). */
  nextTimeout(path: PathMachine): number | undefined {
    const view = this.quiet(path) ? null : this.view(path);
    return view ? this.#search.nextTimeout(view) : undefined;
  }

  /** A BIRTHDAY frame from the peer, on `path` (null: no path yet, it is ignored). */
  onFrame(now: number, f: BirthdayFrame, path: PathMachine | null): void {
    const view = this.view(path);
    if (view) this.#search.onFrame(now, f, view);
  }

  /**
   * Runs the search on `path`: its probes go into the path machine (which sends them), and
   * the path forgets sockets the search gave back. Returns the agreement frames to send the
   * peer, relayed.
   */
  drive(now: number, path: PathMachine): BirthdayFrame[] {
    // No search can run (e.g. the peer is relay-only now): give back what one holds.
    if (this.#facts.relayOnly()) {
      this.#search.close();
      return [];
    }
    // The common case, on every datagram: nothing a search could do; build no view.
    if (this.quiet(path)) return [];
    this.#search.tick(now, this.view(path)!);
    const frames: BirthdayFrame[] = [];
    for (let b = this.#search.pollFrame(); b; b = this.#search.pollFrame()) frames.push(b);
    for (let p = this.#search.pollProbe(); p; p = this.#search.pollProbe()) {
      path.searchProbe(now, p.to, p.via);
    }
    path.forgetSockets((slot) => this.#search.holds(slot));
    return frames;
  }

  /** The path went direct on our socket `slot`: the search keeps that socket, gives back the rest. */
  onDirect(now: number, slot: number): void {
    this.#search.onDirect(now, slot);
  }

  /** Ends the search and gives back its sockets. */
  close(): void {
    this.#search.close();
  }
}
