/**
 * How many birthday searches one client takes part in, whoever asks: searches are costly (the
 * hard side opens 256 sockets, each a conntrack entry in its router; the easy side sends 2,048
 * probes to random ports of the address the peer claims), and a member can leave and re-join
 * under fresh ids at will, each time a new remote with a new search. So the budget is per client
 * and per peer address, not per id: a search with an address (as `sourceKey` counts it) may start
 * at most once per {@link HOST_GAP}, and all searches together draw from one token bucket
 * ({@link CLIENT_SEARCHES}). Both sides spend from it: proposing (hard) and accepting (easy).
 *
 * Pure; time from the caller. Memory: at most {@link MAX_HOSTS} addresses.
 *
 * @module
 */
import { sourceKey, TokenBucket } from "../../core/limits.ts";

/** Least time between two searches with one peer address (ms): the failed-search retry time. */
export const HOST_GAP = 120_000;
/** Searches a client may start in a burst, and one more per `everyMs`. */
export const CLIENT_SEARCHES = { burst: 2, everyMs: 60_000 } as const;
/** Peer addresses remembered. */
export const MAX_HOSTS = 256;

/** The client-wide budget of birthday searches. */
export class SearchBudget {
  #hosts = new Map<string, number>();
  #bucket = new TokenBucket(1000 / CLIENT_SEARCHES.everyMs, CLIENT_SEARCHES.burst, 0);

  /** When a search with the peer at `host` may start (≤ `now`: now). */
  nextAllowed(now: number, host: string): number {
    const last = this.#hosts.get(sourceKey(host));
    const byHost = last === undefined ? now : last + HOST_GAP;
    const byClient = this.#bucket.has(now, 1) ? now : now + CLIENT_SEARCHES.everyMs / 4;
    return Math.max(byHost, byClient);
  }

  /** True when a search with the peer at `host` may start now. */
  allows(now: number, host: string): boolean {
    return this.nextAllowed(now, host) <= now;
  }

  /** A search with the peer at `host` starts now. */
  spend(now: number, host: string): void {
    this.#bucket.take(now, 1);
    const key = sourceKey(host);
    this.#hosts.delete(key);
    if (this.#hosts.size >= MAX_HOSTS) {
      for (const [k, at] of this.#hosts) {
        if (now - at >= HOST_GAP || this.#hosts.size >= MAX_HOSTS) this.#hosts.delete(k);
        else break;
      }
    }
    this.#hosts.set(key, now);
  }
}
