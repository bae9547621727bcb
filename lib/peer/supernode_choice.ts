/**
 * Which of the room's supernodes a member registers with, by measurement (issue 17 #5): the
 * one whose relayed path would be shortest, not the one with the lowest id (anyone reachable
 * becomes a supernode, and a distant or hostile one with a low id would otherwise draw every
 * member of the room).
 *
 * A relayed path through supernode S is our leg to S and the peer's leg from S. We measure our
 * leg (the direct path RTT to S, a member like any other, or the PING RTT of our registration
 * with it); the peer's leg is counted as long as ours, so the estimate is twice our RTT to S.
 * Candidates within {@link TIE} of the best are tied and the lowest id among them wins, so
 * members that see about the same RTTs (most of a room) still converge on one supernode, and
 * a pair relays through it only when both are registered there. The supernode in use is kept
 * while it is tied with the best: noise moves nobody. Candidates not measured yet count only
 * when none is (then the one in use, else the lowest id). A supernode that answers probes
 * promptly but delays or drops what it relays is the relay watch's business
 * (`lib/peer/relay_watch.ts`): its pairs move to the server's relay.
 *
 * Pure: RTTs come from the caller.
 *
 * @module
 */

/** A supernode of the room as a member sees it. */
export interface SupernodeCandidate {
  /** Its peer id, hex. */
  readonly key: string;
  /** Our RTT to it in ms; null: not measured yet. */
  readonly rtt: number | null;
}

/** Estimates within this of the best are tied: `ms` or `share` of the best, whichever is more. */
export const TIE = { ms: 10, share: 0.25 } as const;

/** The relayed path estimate through `c` in ms: both legs, each as long as ours. */
export function relayedEstimate(c: SupernodeCandidate): number {
  return c.rtt === null ? Infinity : 2 * c.rtt;
}

/**
 * The supernode to use among `candidates` (eligible ones: not failed lately, reachable by our
 * address family), given the one in use (`current`, its key), or undefined when there is none.
 */
export function chooseSupernode(
  candidates: readonly SupernodeCandidate[],
  current?: string,
): string | undefined {
  const measured = candidates.filter((c) => c.rtt !== null);
  if (measured.length === 0) {
    return candidates.some((c) => c.key === current) ? current : lowestId(candidates);
  }
  let best = Infinity;
  for (const c of measured) best = Math.min(best, relayedEstimate(c));
  const bound = best + Math.max(TIE.ms, TIE.share * best);
  const tied = measured.filter((c) => relayedEstimate(c) <= bound);
  if (current !== undefined && tied.some((c) => c.key === current)) return current;
  return lowestId(tied);
}

function lowestId(cs: readonly SupernodeCandidate[]): string | undefined {
  let low: string | undefined;
  for (const c of cs) if (low === undefined || c.key < low) low = c.key;
  return low;
}
