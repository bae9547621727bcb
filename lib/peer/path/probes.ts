/**
 * The probes of one path machine (`lib/peer/path/path.ts`) and what they proved: the probes
 * awaiting a reply (by transaction id, at most {@link MAX_PROBES_PENDING}, forgotten after 10 s),
 * the endpoints the peer proved it answers from (at most 16), and the budget that probes to
 * unproven endpoints go through. {@link ProbeLedger} holds them. Pure.
 *
 * @module
 */
import { type Endpoint, formatEndpoint } from "../../wire/address.ts";

/** Most probes awaiting a reply (a birthday search sends up to a few thousand). */
export const MAX_PROBES_PENDING = 4096;
/** How long a probe awaits its reply, in ms. */
const PROBE_EXPIRY = 10_000;
/** Most endpoints remembered as proven (all are forgotten when more come). */
const MAX_PROVEN = 16;

/** A probe awaiting its reply. */
export interface SentProbe {
  /** Where it went. */
  to: Endpoint;
  /** When. */
  sentAt: number;
  /** From our local socket `via` (0: the main one). */
  via: number;
}

/** The budget of probes to unproven endpoints (`ProbeBudget` of `lib/peer/path/path.ts`). */
export interface UnprovenBudget {
  /** Takes one probe to `target` at `now`; false when over budget. */
  take(now: number, target: string): boolean;
  /** Probes held back. */
  readonly throttled: number;
}

/**
 * One path machine's probes in flight and proven endpoints.
 *
 * Call order: {@link send} for each probe (it returns the txid, or undefined when the budget
 * holds it back); {@link ack} for each authenticated reply; {@link prove} for authenticated
 * traffic from an endpoint; {@link expire} on every timeout.
 */
export class ProbeLedger {
  #txid = 0;
  #probes = new Map<number, SentProbe>();
  /** Endpoints the peer proved it answers from (authenticated traffic came from them). */
  #proven = new Set<string>();
  #budget: UnprovenBudget;

  /** Probes to unproven endpoints go through `budget`. */
  constructor(budget: UnprovenBudget) {
    this.#budget = budget;
  }

  /** Probes the budget held back (for this machine's budget; shared budgets count for all). */
  get throttled(): number {
    return this.#budget.throttled;
  }

  /** True when the peer proved it answers from `to` (authenticated traffic came from it). */
  proven(to: Endpoint): boolean {
    return this.#proven.has(formatEndpoint(to));
  }

  /** Marks `from` as an endpoint the peer answers from (no probe budget for it). */
  prove(from: Endpoint): void {
    const key = formatEndpoint(from);
    if (this.#proven.has(key)) return;
    if (this.#proven.size >= MAX_PROVEN) this.#proven.clear();
    this.#proven.add(key);
  }

  /**
   * A probe to `to` from our socket `via` at `now`: its txid, or undefined when `budgeted` and
   * the budget for unproven endpoints holds it back.
   */
  send(now: number, to: Endpoint, via: number, budgeted: boolean): number | undefined {
    if (budgeted && !this.#mayProbe(now, to)) return undefined;
    const txid = this.#txid = (this.#txid + 1) >>> 0;
    if (this.#probes.size >= MAX_PROBES_PENDING) {
      // Oldest first (insertion order): a birthday search can have thousands out at once.
      this.#probes.delete(this.#probes.keys().next().value!);
    }
    this.#probes.set(txid, { to, sentAt: now, via });
    return txid;
  }

  /**
   * A reply to probe `txid` came to our socket `via`: the probe (forgotten now), or undefined
   * when no such probe awaits a reply there.
   */
  ack(txid: number, via: number): SentProbe | undefined {
    const probe = this.#probes.get(txid);
    if (!probe || probe.via !== via) return undefined;
    this.#probes.delete(txid);
    return probe;
  }

  /** Forgets the probes that went out more than 10 s before `now`. */
  expire(now: number): void {
    // Probes sit in the order they were sent: only the oldest can have expired.
    for (const [txid, p] of this.#probes) {
      if (now - p.sentAt <= PROBE_EXPIRY) break;
      this.#probes.delete(txid);
    }
  }

  /** Probes to endpoints this peer never answered from go through the (shared) budget. */
  #mayProbe(now: number, to: Endpoint): boolean {
    const key = formatEndpoint(to);
    return this.#proven.has(key) || this.#budget.take(now, key);
  }
}
